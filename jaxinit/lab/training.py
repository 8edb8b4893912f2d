"""One training run, composed: config -> data -> training engine -> results folder, with the
progress bar, resumption and the stall watchdog (those of :mod:`jaxinit.lab.run`).

The folder is the sweep's (:mod:`jaxinit.lab.store`): one chunk file per finished chunk of seeds,
``arrays.npz`` / ``summary.csv`` / ``meta.json`` once every seed of every program is done, and a
rerun of the same command resumes an interrupted run. Arrays have dims ``(program, initializer,
grid_point, seed, ...)``: per evaluation ``(..., step)`` and ``(..., step, layer)``, per member
``(...)`` and ``distinct_units`` ``(..., layer)``; the names are the training engine's
(:mod:`jaxinit.lab.engine.train`), the evaluated steps the ``step`` coordinate.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import numpy as np

from jaxinit.errors import ConfigError
from jaxinit.lab import data as data_lib
from jaxinit.lab.engine.train import (
    EVAL_FIELDS,
    EVAL_LAYER_FIELDS,
    TrainPlan,
    compile_train,
    grid_arrays,
    layout,
    member_bytes,
    run_chunk,
)
from jaxinit.lab.engine.train.plan import warn_lsuv
from jaxinit.lab.run import _ChunkLoop, _discard, _record_session, _take_share

# Trailing dims of what the engine records (anything else is per member, or per member and layer).
_DIMS = {**{name: ("step",) for name in EVAL_FIELDS}, **{name: ("step", "layer") for name in EVAL_LAYER_FIELDS},
         "distinct_units": ("layer",)}


def dataset(config) -> data_lib.Dataset:
    """The training run's :class:`~jaxinit.lab.data.Dataset`, from ``config.data``.

    Raises:
      ConfigError: the data cannot be built (an ``.npz`` that is missing or malformed), naming the key.
    """
    d = config.data
    try:
        if d.name == "digits":
            return data_lib.digits(d.test_fraction, d.seed)
        if d.name == "teacher":
            return data_lib.teacher(d.n, d.in_dim, out_dim=d.out_dim if d.task == "regression" else 1,
                                    task=d.task, n_classes=d.n_classes or 4, noise=d.noise,
                                    test_fraction=d.test_fraction, seed=d.seed)
        return data_lib.from_npz(d.path, task=d.task, n_classes=d.n_classes)
    except FileNotFoundError:
        raise ConfigError(config.source, "data.path", "no such file", d.path) from None
    except (OSError, EOFError, ValueError) as err:
        key = "data.path" if d.name == "npz" else "data"
        raise ConfigError(config.source, key, str(err).rstrip("."),
                          d.path if d.name == "npz" else ConfigError.NO_VALUE) from None


def _fingerprint(data: data_lib.Dataset) -> str:
    """A digest of the arrays the members train on: a resumed run must see the same data."""
    digest = hashlib.sha256()
    for array in data.arrays():
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def plan_for(config, program, data: data_lib.Dataset) -> TrainPlan:
    """The :class:`TrainPlan` of one program (a distinct depth, width and activation) of a training run."""
    t = config.train
    name, kwargs = t.optimizer
    return TrainPlan(
        depth=program.depth, width=program.width, in_dim=data.in_dim, out_dim=data.out_dim,
        initializers=tuple(e.init for e in config.sweep.initializers), activation=program.activation,
        bias_init=config.network.bias.init, dtype=config.network.dtype, task=data.task, loss=t.loss,
        optimizer=name, optimizer_kwargs=kwargs, learning_rate=t.learning_rate, clip_global_norm=t.clip_global_norm,
        steps=t.steps, batch=t.batch, eval_every=t.eval_every, target_loss=t.target_loss,
        target_accuracy=t.target_accuracy)


def train(config, *, out: str | None = None, fresh: bool = False, progress: bool = True,
          stop_after_chunks: int | None = None, stall_timeout: float | None = None,
          notify: Callable[[str], None] | None = None, assemble: bool = True,
          share: tuple[int, int] | None = None):
    """Run a validated training config into its results folder and return the assembled :class:`Results`.

    Every member (initializer x grid point x seed) of one program trains in one compiled program;
    chunks of seeds (``output.chunk``, default one vmap block per device) are written as they
    finish, so an interrupted run resumes from its last finished chunk. ``stop_after_chunks``,
    ``stall_timeout``, ``notify`` and the folder's lifetime are those of :func:`jaxinit.lab.run.run`.

    Several runs of the same config may share one folder at once (processes, hosts), as sweeps do
    (:func:`jaxinit.lab.run.run`): each claims the seeds no run has written or claimed before it
    trains them, then waits for the seeds the others train (taking over a dead run's) and
    assembles; every run returns the arrays of a single run, bit for bit. ``assemble=False``
    returns ``None`` once every seed is written, leaving the assembly to another run (process 0
    of a :mod:`jaxinit.lab.cluster` job); ``share=(i, n)``: process ``i`` of ``n`` started together
    first claims its share of the chunks (:func:`jaxinit.lab.run._take_share`).

    Raises:
      ValueError: ``config`` is a sweep, not a training run.
      ConfigError: the data cannot be built; ResultsError: the folder (another config's results,
      data that changed since the run began).
    """
    from jaxinit.lab import store as results_lib

    if getattr(config, "kind", None) != "train":
        raise ValueError(f"config must be a training run (a config with a [train] section); got a "
                         f"{getattr(config, 'kind', type(config).__name__)} config. Run sweeps with "
                         "jaxinit.lab.run.run.")
    if stall_timeout is not None and not (isinstance(stall_timeout, (int, float)) and stall_timeout >= 0):
        raise ValueError(f"stall_timeout must be a number of seconds >= 0 (0: no limit) or None; got {stall_timeout!r}")
    say = notify or logging.getLogger(__name__).warning
    data = dataset(config)
    plans = {p.id: plan_for(config, p, data) for p in config.programs()}  # a bad plan fails before any file is made
    with results_lib.ResultsFolder(out or config.output.dir) as folder:  # leaves the writers' registry at the end
        return _train_into(folder, config, data, plans, fresh, progress, stop_after_chunks, stall_timeout, say,
                           assemble, share)


def _train_into(folder, config, data, plans, fresh, progress, stop_after_chunks, stall_timeout, say, assemble,
                share):
    from tqdm.auto import tqdm

    from jaxinit.lab.store.layout import _now

    programs = config.programs()
    points = config.grid_points()
    grid = grid_arrays(plans[programs[0].id], [dict(p) for p in points])
    n_seeds = config.sweep.seeds
    fingerprint = _fingerprint(data)
    path = folder.path.absolute()
    created = next((p for p in reversed([path, *path.parents]) if not p.exists()), None)
    loop = _ChunkLoop()
    try:
        resumed = folder.prepare(config, fresh=fresh)
        described = {"name": config.data.name, "task": data.task, "n_train": data.n_train, "n_test": data.n_test,
                     "in_dim": data.in_dim, "out_dim": data.out_dim, "fingerprint": fingerprint}
        old = folder.read_meta().get("data")
        if resumed and old and old.get("fingerprint") != fingerprint:
            raise folder._error(f"was trained on other data (fingerprint {old.get('fingerprint')} != {fingerprint}: "
                                f"the {config.data.name} data changed since the run began); start over with "
                                "fresh=True, or write elsewhere (another output.dir)")
        folder.write_meta({"data": described})
        layouts, work = {}, []
        for program in programs:
            chunks = layouts[program.id] = _layout(config, plans[program.id], len(points), n_seeds)
            todo = chunks.chunks(folder.missing_seeds(program.id))
            work += [(program, i + 1, len(todo), seeds) for i, seeds in enumerate(todo)]
        if share is not None:
            work = _take_share(folder, work, *share)
        if work and config.output.chunk > 0:
            size = layouts[programs[0].id].size
            if size != config.output.chunk and config.output.chunk < n_seeds:
                say(f"output.chunk = {config.output.chunk} rounded up to {size} seeds per chunk: a chunk is a "
                    "multiple of the seeds trained together on every device")
        start, started_at = time.perf_counter(), _now()
        members = len(config.sweep.initializers) * len(points)
        total = sum(len(seeds) for *_, seeds in work) * members * config.train.steps
        bar = tqdm(total=total, desc="training", unit=" member-steps", unit_scale=True,
                   disable=not progress or not work, mininterval=0.5, leave=False)
        try:
            # Each chunk's seeds cut to what no other writer of the folder has written or claimed
            # (lab.run's claims), then the seeds of writers that died; waits for the live ones.
            stopped = loop.run(
                folder, work, programs, layouts, say,
                compile_for=lambda program: compile_train(plans[program.id], data.n_train, data.n_test, len(points),
                                                          layouts[program.id]),
                measure=lambda compiled, program, seeds: run_chunk(
                    compiled, plans[program.id], layouts[program.id], data, config.sweep.base_seed, seeds, grid),
                dims=lambda arrays: {k: v for k, v in _DIMS.items() if k in arrays},
                stall_timeout=stall_timeout, stop_after_chunks=stop_after_chunks, skipped=lambda: None,
                wrote=lambda seeds: bar.update(len(seeds) * members * config.train.steps),
                starting=lambda program, index, count: bar.set_postfix_str(f"{program.id} chunk {index}/{count}",
                                                                            refresh=False),
                keep_lsuv=True)  # what LSUV entries reached is stored, and warned once per run
            warn_lsuv(plans, loop.lsuv_reached, config.sweep.labels)
            if stopped:
                return None
        finally:
            bar.close()
            loop.timings["wall_s"] = time.perf_counter() - start
            _record_session(folder, started_at, loop.timings, loop.written, layouts,
                            "every initializer and grid point of a seed starts from the same keys and sees "
                            "the same minibatches")
    except BaseException:
        if loop.written == 0 and not folder.writers():
            _discard(path, created)
        raise
    return folder.assemble(config) if assemble else None


def _layout(config, plan, n_grid: int, n_seeds: int):
    """Chunks of ``output.chunk`` seeds, default one vmap block per device (the progress bar and
    resumption advance by chunk; a member's numbers depend on neither), vmap groups sized from ``plan``."""
    shape = {"members": plan.n_init * n_grid, "member_bytes": member_bytes(plan)}
    base = layout(n_seeds, **shape)
    chunk = config.output.chunk if config.output.chunk > 0 else base.block * base.devices
    return layout(n_seeds, chunk=chunk, **shape)


__all__ = ["dataset", "plan_for", "train"]
