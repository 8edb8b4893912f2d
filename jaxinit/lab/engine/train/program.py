"""Programs and chunks of seeds: the seed layout, the compiled :class:`Program` (init, then the
training of a chunk), running a chunk, the per-member records, and :func:`train_members`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit.errors import check_int
from jaxinit.lab.engine.train.plan import TrainPlan, _wide, eval_steps, grid_arrays
from jaxinit.lab.engine.train.seed import _seed_init, _seed_train


# ---------------------------------------------------------------------------------------------
# Programs, chunks of seeds
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Layout:
    """How one program's seeds are cut: ``block`` seeds per vmap (fixed: a member's numbers depend
    on it, not on ``size`` or ``devices``), ``size`` seeds per chunk, ``devices`` local devices."""

    block: int
    size: int
    devices: int

    def chunks(self, seeds: Sequence[int]) -> list[list[int]]:
        return [list(seeds[i:i + self.size]) for i in range(0, len(seeds), self.size)]


def layout(n_seeds: int, *, chunk: int = 0, block: int | None = None, devices: int | None = None) -> Layout:
    """Seeds per vmap block (default: 4 on the CPU, 32 on accelerators, at most the seeds rounded
    up to a power of two), devices (default: every local device with a block of seeds to run) and a
    chunk size that is a multiple of ``block x devices`` (default: all seeds in one chunk)."""
    n_seeds = check_int("n_seeds", n_seeds, minimum=1)
    if block is None:
        cap = 4 if jax.default_backend() == "cpu" else 32
        block = 1
        while block < min(cap, n_seeds):
            block *= 2
    block = check_int("block", block, minimum=1)
    if devices is None:
        devices = max(1, min(jax.local_device_count(), -(-n_seeds // block)))
    devices = check_int("devices", devices, minimum=1)
    if devices > jax.local_device_count():
        raise ValueError(f"devices must be <= the {jax.local_device_count()} local device(s); got {devices}.")
    unit = block * devices
    chunk = n_seeds if chunk <= 0 else chunk
    return Layout(block=block, size=-(-chunk // unit) * unit, devices=devices)


def _data_structs(plan: TrainPlan, n_train: int, n_test: int) -> tuple[jax.ShapeDtypeStruct, ...]:
    y = (lambda n: jax.ShapeDtypeStruct((n,), jnp.int32)) if plan.task == "classification" else (
        lambda n: jax.ShapeDtypeStruct((n, plan.out_dim), jnp.float32))
    return (jax.ShapeDtypeStruct((n_train, plan.in_dim), jnp.float32), y(n_train),
            jax.ShapeDtypeStruct((n_test, plan.in_dim), jnp.float32), y(n_test))


@dataclasses.dataclass(frozen=True)
class Program:
    """The two compiled programs of one plan: ``init`` (initial parameters of a chunk's members) and
    ``train`` (the training of the chunk from them). Initialization is its own XLA program because
    its random-number code, compiled inside the training loop's nest, tripled the compile time."""

    init: Any
    train: Any


def compile_train(plan: TrainPlan, n_train: int, n_test: int, n_grid: int, chunks: Layout) -> tuple[Program, float]:
    """Compile the :class:`Program` of ``plan`` for chunks of ``chunks.size`` seeds; returns
    ``(program, seconds)``. Run it on every chunk of seeds with :func:`run_chunk` (no
    recompilation per chunk). Outputs have the seed axis first."""
    plan.check_data(n_train, plan.in_dim)
    wide = _wide(plan)

    def init_chunk(base_seed, seeds, wv, bv):
        # lax.map's batching cannot reshape zero-size outputs: depth 1's empty hidden stack is
        # dropped from the map and restored after it.
        def one(s):
            p = _seed_init(plan, base_seed, s, wv, bv)
            return p if plan.depth > 1 else {k: v for k, v in p.items() if k != "hidden"}

        out = jax.lax.map(one, seeds, batch_size=chunks.block)
        if plan.depth == 1:
            n = seeds.shape[0]
            m = plan.n_init * wv.shape[0]
            dt = np.dtype(plan.dtype)
            out["hidden"] = {"kernel": jnp.zeros((n, m, 0, plan.width, plan.width), dt),
                             "bias": jnp.zeros((n, m, 0, plan.width), dt)}
        return out

    def train_chunk(base_seed, seeds, params, lr, *data):
        return jax.lax.map(lambda sp: _seed_train(plan, base_seed, sp[0], sp[1], lr, *data), (seeds, params),
                           batch_size=chunks.block)

    # shard_map even over one device: the per-device program is then the same for every device
    # count (a plain jit of the same function fused the gradient norms differently, 1 ulp apart).
    if True:
        mesh = jax.make_mesh((chunks.devices,), ("seeds",), devices=jax.local_devices()[:chunks.devices])
        P = jax.sharding.PartitionSpec
        seed_sharding = jax.sharding.NamedSharding(mesh, P("seeds"))
        init_chunk = jax.shard_map(init_chunk, mesh=mesh, in_specs=(P(), P("seeds"), P(), P()),
                                   out_specs=P("seeds"), check_vma=False)
        train_chunk = jax.shard_map(train_chunk, mesh=mesh, in_specs=(P(), P("seeds"), P("seeds"), *(P(),) * 5),
                                    out_specs=P("seeds"), check_vma=False)
    base = jax.ShapeDtypeStruct((), jnp.uint32)
    seeds = jax.ShapeDtypeStruct((chunks.size,), jnp.int32, sharding=seed_sharding)
    grid = jax.ShapeDtypeStruct((n_grid,), wide)
    start = time.perf_counter()
    init = jax.jit(init_chunk).lower(base, seeds, grid, grid).compile()
    params = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=seed_sharding),
                          jax.eval_shape(init_chunk, base, seeds, grid, grid))
    train = jax.jit(train_chunk).lower(base, seeds, params, grid, *_data_structs(plan, n_train, n_test)).compile()
    return Program(init, train), time.perf_counter() - start


def _data_arrays(plan: TrainPlan, data: Any) -> tuple[np.ndarray, ...]:
    arrays = data.arrays() if hasattr(data, "arrays") else tuple(data)
    if len(arrays) != 4:
        raise ValueError(f"data must be (x_train, y_train, x_test, y_test) or a Dataset; got {len(arrays)} arrays.")
    xtr, ytr, xte, yte = (np.asarray(a) for a in arrays)
    ylab = np.int32 if plan.task == "classification" else np.float32
    if plan.task == "regression":
        ytr, yte = (y.reshape(y.shape[0], -1) for y in (ytr, yte))
    plan.check_data(xtr.shape[0], xtr.shape[1])
    return xtr.astype(np.float32), ytr.astype(ylab), xte.astype(np.float32), yte.astype(ylab)


def run_chunk(program: Program, plan: TrainPlan, chunks: Layout, data: Any, base_seed: int,
              seed_ids: Sequence[int], grid: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """Run one chunk of seeds (padded to the compiled size with repeats of its last seed); numpy
    arrays shaped ``(n_init, n_grid, len(seed_ids), ...)``."""
    n = len(seed_ids)
    if not 1 <= n <= chunks.size:
        raise ValueError(f"a chunk holds 1 to {chunks.size} seeds; got {n}.")
    padded = np.asarray(list(seed_ids) + [seed_ids[-1]] * (chunks.size - n), np.int32)
    seeds = jnp.asarray(padded)
    seeds = jax.device_put(seeds, program.init.input_shardings[0][1])
    wide = _wide(plan)
    wv, bv, lr = (np.asarray(a, wide) for a in grid)
    params = program.init(np.uint32(base_seed), seeds, wv, bv)
    out = program.train(np.uint32(base_seed), seeds, params, lr, *_data_arrays(plan, data))
    out = {k: np.moveaxis(np.asarray(v)[:n], 0, 2) for k, v in out.items()}
    return {**out, **_member_summary(plan, out)}


def train_members(plan: TrainPlan, data: Any, base_seed: int = 0, seed_ids: Sequence[int] = (0,),
                  grid: Sequence[Mapping[str, float]] | None = None, *, chunk: int = 0, block: int | None = None,
                  devices: int | None = None) -> dict[str, np.ndarray]:
    """Train every (initializer, grid point, seed) member of ``plan`` on ``data``; one compiled program.

    Args:
      plan: the :class:`TrainPlan`.
      data: a :class:`jaxinit.lab.data.Dataset` or ``(x_train, y_train, x_test, y_test)``.
      base_seed: the root key's seed (``key(base_seed)``).
      seed_ids: the seeds ``s`` to train (keys ``fold_in(key(base_seed), s)``).
      grid: points ``{"weight_variance": ..., "bias_variance": ..., "learning_rate": ...}`` (each
        optional), or ``None`` for the plan as is.
      chunk, block, devices: see :func:`layout`; a member's numbers depend on ``block`` alone.

    Returns:
      numpy arrays with dims ``(initializer, grid_point, seed, ...)``: per evaluation
      ``(..., step)`` and ``(..., step, layer)`` (steps :func:`eval_steps`), per member
      ``(...)`` and ``distinct_units`` ``(..., layer)``; names in the module docstring.

    Example:
      >>> import numpy as np, jaxinit
      >>> from jaxinit.lab.engine.train import TrainPlan, train_members
      >>> rng = np.random.default_rng(0)
      >>> x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 2, 64)
      >>> plan = TrainPlan(2, 8, 4, 2, ("he_normal", "zeros"), steps=10, batch=16, eval_every=5)
      >>> out = train_members(plan, (x, y, x, y), seed_ids=[0, 1])
      >>> out["train_loss"].shape, out["grad_w_norm"].shape, out["distinct_units"][1].max()
      ((2, 1, 2, 3), (2, 1, 2, 3, 3), np.int32(1))
    """
    seed_ids = [check_int("seed_ids entries", s, minimum=0) for s in seed_ids]
    if not seed_ids:
        raise ValueError("seed_ids must name at least one seed; got [].")
    base_seed = check_int("base_seed", base_seed, minimum=0)
    arrays = _data_arrays(plan, data)
    g = grid_arrays(plan, grid)
    chunks = layout(len(seed_ids), chunk=chunk, block=block, devices=devices)
    program, _ = compile_train(plan, arrays[0].shape[0], arrays[2].shape[0], g[0].shape[0], chunks)
    parts = [run_chunk(program, plan, chunks, arrays, base_seed, ids, g) for ids in chunks.chunks(seed_ids)]
    return {k: np.concatenate([p[k] for p in parts], axis=2) for k in parts[0]}


def _member_summary(plan: TrainPlan, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-member scalars, from the evaluations (numpy, after the program: each is a copy or a
    reduction of recorded values, so it cannot round differently from them)."""
    steps = eval_steps(plan).astype(np.float32)

    def first(reached):
        return np.where(reached.any(-1), steps[np.argmax(reached, axis=-1)], np.float32(np.nan))

    res = {"final_train_loss": out["train_loss"][..., -1], "final_test_loss": out["test_loss"][..., -1]}
    with np.errstate(invalid="ignore"):
        if plan.task == "classification":
            acc = out["test_accuracy"]
            res["final_test_accuracy"] = acc[..., -1]
            res["best_test_accuracy"] = np.where(np.isnan(acc).all(-1), np.float32(np.nan),
                                                 np.max(np.nan_to_num(acc, nan=-np.inf), axis=-1))
            if plan.target_accuracy is not None:
                res["steps_to_accuracy"] = first(acc >= plan.target_accuracy)
        if plan.target_loss is not None:
            res["steps_to_loss"] = first(out["train_loss"] <= plan.target_loss)
    return {k: np.asarray(v, np.float32) for k, v in res.items()}

