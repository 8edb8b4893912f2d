"""One sweep, composed: config -> engine -> results folder, with the progress bar, resumption and the
stall watchdog. The only place where the engine's arrays meet files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

from jaxinit.lab.engine.sweep import (
    ChunkPlan,
    _crn_note,
    chunk_plan,
    compile_program,
    grid_arrays,
    measure_chunk,
    plan_for,
    precision_note,
)
from jaxinit.lab.engine.sweep.plan import warn_lsuv


class SweepStalled(RuntimeError):
    """A chunk made no progress within the stall limit (see :func:`run`'s ``stall_timeout``).

    ``program`` and ``chunk`` (1-based, of ``chunks`` this session runs for the program) name what
    was running; ``seeds`` are its seed ids.
    """

    def __init__(self, message: str, program: str, chunk: int, chunks: int, seeds: Sequence[int]):
        super().__init__(message)
        self.program, self.chunk, self.chunks, self.seeds = program, chunk, chunks, list(seeds)


# A chunk is stalled when it has run longer than its limit and, on the CPU, the process has also
# done (almost) no work for the last STALL_IDLE_S of it (a deadlocked XLA runtime sleeps: 0% CPU).
STALL_MIN_S = 60.0
STALL_IDLE_S = 30.0
IDLE_CPU_FRACTION = 0.05  # of one core


def stall_limit(finished: Sequence[float], compile_seconds: float) -> float:
    """The default stall limit of a program's next chunk, in seconds.

    ``max(60, 10 x its slowest finished chunk)`` once the program has finished a chunk in this
    session, else ``max(60, 20 x its compile time)``: generous against a busy machine, finite
    against a hang.
    """
    base = 10.0 * max(finished) if finished else 20.0 * compile_seconds
    return max(STALL_MIN_S, base)


def _watched(fn: Callable[[], Any], limit: float | None, idle_check: bool,
             stalled: Callable[[float, float], Exception]) -> Any:
    """``fn()`` in a daemon thread, waited for by this one; ``raise stalled(elapsed, limit)`` when it
    runs past ``limit`` seconds (and, with ``idle_check``, the process was idle for the last
    ``min(STALL_IDLE_S, limit)`` seconds). A stalled call is abandoned, never killed: the CLI exits."""
    if limit is None:
        return fn()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target():
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - re-raised in the waiting thread
            box["error"] = err
        finally:
            done.set()

    threading.Thread(target=target, name="jaxinit-chunk", daemon=True).start()
    step = min(1.0, max(0.05, limit / 4))
    start = prev = last_active = time.monotonic()
    cpu_prev = time.process_time()
    while not done.wait(step):
        now, cpu = time.monotonic(), time.process_time()
        if cpu - cpu_prev > IDLE_CPU_FRACTION * (now - prev):
            last_active = now
        prev, cpu_prev = now, cpu
        if now - start > limit and (not idle_check or now - last_active >= min(STALL_IDLE_S, limit)):
            raise stalled(now - start, limit)
    if "error" in box:
        raise box["error"]
    return box["value"]


def _chunk_notes(config, chunk_plans: dict[str, ChunkPlan]) -> list[str]:
    """What became of a requested ``output.chunk`` that the engine had to round (one line per outcome)."""
    requested, n_seeds = config.output.chunk, config.sweep.seeds
    if requested <= 0:
        return []
    by_outcome: dict[tuple[int, int], list[str]] = {}
    for pid, cp in chunk_plans.items():
        if min(cp.size, n_seeds) != min(requested, n_seeds):
            by_outcome.setdefault((min(cp.size, n_seeds), cp.block), []).append(pid)
    notes = []
    for (size, block), pids in by_outcome.items():
        where = pids[0] if len(pids) == 1 else f"{len(pids)} programs ({pids[0]}, ...)"
        notes.append(f"output.chunk = {requested} rounded up to {size} seeds per chunk in {where}: a chunk "
                     f"is a multiple of {block} seeds per vmap block (the program's fixed block: a seed's "
                     "numbers depend on it, never on the chunk, the devices or the memory budget)")
    return notes


def _session_timings(meta: dict[str, Any], session: dict[str, Any] | None) -> dict[str, Any]:
    """meta.json's ``sessions`` (every session that computed something) and ``timings``, their totals."""
    sessions = list(meta.get("sessions") or [])
    if not sessions and isinstance(meta.get("timings"), dict):  # written before sessions were kept
        sessions = [{"timings": meta["timings"], "device": meta.get("device")}]
    if session is None:
        return {"sessions": sessions} if sessions else {}
    sessions.append(session)
    total: dict[str, Any] = {"compile_s": {}, "run_s": {}, "wall_s": 0.0}
    for s in sessions:
        t = s.get("timings") or {}
        for kind in ("compile_s", "run_s"):
            for pid, sec in (t.get(kind) or {}).items():
                total[kind][pid] = total[kind].get(pid, 0.0) + float(sec)
        total["wall_s"] += float(t.get("wall_s") or 0.0)
    return {"sessions": sessions, "timings": total, "device": session["device"]}


def _record_session(folder, started_at: str, timings: dict[str, Any], written: int,
                    layouts: dict[str, Any], common_random_numbers: str, **extra: Any) -> None:
    """Write this session into ``meta.json`` under the folder's lock (other writers' sessions are
    kept): its device and timings when it computed something, the chunk layouts and their vmap
    blocks, and ``extra`` keys."""
    from jaxinit.lab.store import device_description

    session = None
    if written or timings["compile_s"]:
        session = {"started": started_at, "device": device_description(), "timings": timings,
                   "chunks_written": written}
    folder.write_meta(lambda meta: {
        **_session_timings(meta, session),
        "chunk_plan": {pid: dataclasses.asdict(c) for pid, c in layouts.items()},
        "engine": {"seed_block": {pid: c.block for pid, c in layouts.items()},
                   "common_random_numbers": common_random_numbers},
        **extra,
    })


def _discard(path: Path, created: Path | None) -> None:
    """Remove a results folder this session created and wrote no chunk into, and the parents it
    created on the way when they are empty; never a folder that existed before."""
    if created is None:
        return
    shutil.rmtree(path, ignore_errors=True)
    for parent in [path, *path.parents]:
        with contextlib.suppress(OSError):
            parent.rmdir()
        if parent == created:
            break


def run(config, *, out: str | None = None, fresh: bool = False, progress: bool = True,
        stop_after_chunks: int | None = None, stall_timeout: float | None = None,
        notify: Callable[[str], None] | None = None, assemble: bool = True,
        share: tuple[int, int] | None = None):
    """Run a validated sweep into its results folder and return the assembled :class:`Results`.

    Resumes an interrupted run of the same config (finished chunks are kept and skipped);
    ``stop_after_chunks`` stops early on purpose (tests of resumption) and returns ``None``.

    ``stall_timeout``: seconds one chunk may run before the sweep stops with :class:`SweepStalled`
    (naming the program and chunk); ``None`` derives a limit per chunk (:func:`stall_limit`), ``0``
    waits forever. On the CPU a chunk must also have left the process idle (under 5% of a core)
    for the last ``min(30 s, limit)``: a slow chunk that computes is never stopped there.

    ``notify`` receives one-line notes (a requested chunk size the engine rounded up); default: the
    ``jaxinit.lab.run`` logger's warnings.

    A run that fails before writing its first chunk leaves no folder behind when it created the
    folder and no other writer holds it; a folder that existed before is never removed.
    ``meta.json`` keeps, under ``sessions``, the device and timings of every session that computed
    something, and their totals under ``timings``.

    Several runs of the same config may share one folder at once (processes, hosts): each takes
    the seeds that no run has written or claimed (:meth:`~jaxinit.lab.store.ResultsFolder.claim`,
    checked again before each chunk), then waits for the seeds the others still compute (taking
    over those of a run that died) and assembles: every run returns the same arrays, bit for bit
    those of a single run (a member's numbers depend on its config and seed alone). ``assemble=False``
    returns ``None`` once every seed is written, leaving the assembly to another run (process 0 of a
    :mod:`jaxinit.lab.cluster` job). ``share=(i, n)``: this run is process ``i`` of ``n`` started
    together; it first claims its share of the chunks at once (:func:`_take_share`).
    """
    from jaxinit.lab import store as results_lib

    if stall_timeout is not None and not (isinstance(stall_timeout, (int, float)) and stall_timeout >= 0):
        raise ValueError(f"stall_timeout must be a number of seconds >= 0 (0: no limit) or None; got {stall_timeout!r}")
    say = notify or logging.getLogger(__name__).warning
    with results_lib.ResultsFolder(out or config.output.dir) as folder:  # leaves the writers' registry at the end
        return _run_into(folder, config, fresh, progress, stop_after_chunks, stall_timeout, say, assemble, share)


# Seconds between looks at seeds that other writers of the folder are computing.
SHARED_POLL_S = 1.0


def _shared_work(folder, work, programs, chunk_plans, say, skipped):
    """``work`` item by item, each chunk's seeds cut to what no writer has written or claimed
    meanwhile (an item left empty: ``skipped()``); then, while seeds are missing, chunks of those
    that no live writer claims (its writer died), waiting for those the other writers compute."""
    for program, index, count, seeds in work:
        seeds = folder.claim(program.id, seeds)
        if seeds:
            yield program, index, count, seeds
        else:
            skipped()
    waited = False
    while True:
        free, elsewhere = [], {}
        for program in programs:
            missing = folder.missing_seeds(program.id)
            claimed = set(folder.claimed_elsewhere(program.id)) if missing else set()
            if claimed:
                elsewhere[program.id] = len(claimed)
            chunks = chunk_plans[program.id].chunks([s for s in missing if s not in claimed])
            free += [(program, i + 1, len(chunks), seeds) for i, seeds in enumerate(chunks)]
        if not free and not elsewhere:
            return
        for program, index, count, seeds in free:
            seeds = folder.claim(program.id, seeds)
            if seeds:
                yield program, index, count, seeds
        if not free:
            if not waited:
                who = ", ".join(f"pid {w.get('pid')} on {w.get('host')}" for w in folder.writers()) or "another writer"
                seeds = ", ".join(f"{n} seeds of {pid}" for pid, n in elsewhere.items())
                say(f"waiting for {who}: it computes {seeds} of this sweep in {folder.path}")
                waited = True
            time.sleep(SHARED_POLL_S)


def _take_share(folder, work, index: int, count: int):
    """Process ``index`` of ``count`` runs started together on one folder (a
    :mod:`jaxinit.lab.cluster` job) claims its share of ``work`` at once and puts it first.

    The shares are contiguous runs of the chunks in program order, of about equal seed counts, so
    each process compiles as few programs as it can (one each when there are as many programs as
    processes). The claims make them robust: a chunk another process wrote or claimed first is
    skipped, a dead process's share is taken over (:func:`_shared_work`).
    """
    total = sum(len(seeds) for *_, seeds in work)
    lo, hi = total * index // count, total * (index + 1) // count
    mine, others, at = [], [], 0
    for item in work:
        (mine if lo <= at < hi else others).append(item)  # by the position of the chunk's first seed
        at += len(item[3])
    wanted: dict[str, tuple[Any, list[int]]] = {}
    for program, _, _, seeds in mine:
        wanted.setdefault(program.id, (program, []))[1].extend(seeds)
    for program, seeds in wanted.values():
        folder.claim(program.id, seeds)
    return mine + others


class _ChunkLoop:
    """The chunk loop of a sweep (:func:`run`) and of a training run (:func:`jaxinit.lab.training.train`),
    and what it has done so far, kept for the session record (:func:`_record_session`) and for the
    clean-up of a failed run even when the loop raises: ``written`` chunks, ``timings`` (``compile_s``
    and ``run_s`` per program), the LSUV variances each program reached (``lsuv_reached``)."""

    def __init__(self):
        self.written = 0
        self.timings: dict[str, Any] = {"compile_s": {}, "run_s": {}}
        self.lsuv_reached: dict[str, list[Any]] = {}
        self._finished: dict[str, list[float]] = {}  # seconds per chunk written, per program
        self._compiled: dict[str, Any] = {}

    def run(self, folder, work, programs, layouts, say, *, compile_for: Callable[[Any], tuple[Any, float]],
            measure: Callable[[Any, Any, list[int]], dict[str, Any]],
            dims: Callable[[dict[str, Any]], dict[str, tuple[str, ...]] | None], stall_timeout: float | None,
            stop_after_chunks: int | None, skipped: Callable[[], None], wrote: Callable[[list[int]], None],
            starting: Callable[[Any, int, int], None] | None = None, keep_lsuv: bool = False) -> bool:
        """Compute and write ``work``'s chunks as :func:`_shared_work` hands them out (``skipped()``
        for a chunk others took); True when it stopped after ``stop_after_chunks`` chunks.

        Per chunk: ``starting(program, index, count)``; ``compile_for(program) -> (compiled, seconds)``
        once per program; ``measure(compiled, program, seeds) -> arrays`` under the stall watchdog
        (:func:`_watched`; the limit ``stall_timeout``, 0 for none, or when None :func:`stall_limit`
        of the program's chunk times and compile time); an ``lsuv_variance`` array collected into
        ``lsuv_reached`` (and written only with ``keep_lsuv``); the arrays written with the trailing
        dims ``dims(arrays)``; the chunk's time (measuring and writing) added to ``run_s``;
        ``wrote(seeds)``.
        """
        from jaxinit.lab.store.layout import _ranges

        for program, index, count, seeds in _shared_work(folder, work, programs, layouts, say, skipped):
            if starting is not None:
                starting(program, index, count)
            if program.id not in self._compiled:
                self._compiled[program.id], seconds = compile_for(program)
                self.timings["compile_s"][program.id] = seconds
            if stall_timeout is None:
                limit = stall_limit(self._finished.get(program.id, []), self.timings["compile_s"][program.id])
            else:
                limit = float(stall_timeout) or None

            def stalled(elapsed, limit, program=program, index=index, count=count, seeds=seeds):
                return SweepStalled(
                    f"no progress for {elapsed:.0f} s in program {program.id}, chunk {index} of {count} "
                    f"(seeds {_ranges(seeds)}; stall limit {limit:g} s). Finished chunks are "
                    f"kept in {folder.path}: run it again to resume, or give a larger "
                    "stall_timeout (seconds; 0 waits forever)", program.id, index, count, seeds)

            t0 = time.perf_counter()
            arrays = _watched(lambda program=program, seeds=seeds: measure(self._compiled[program.id], program, seeds),
                              limit, jax.default_backend() == "cpu", stalled)
            if "lsuv_variance" in arrays:
                reached = arrays["lsuv_variance"] if keep_lsuv else arrays.pop("lsuv_variance")
                self.lsuv_reached.setdefault(program.id, []).append(reached)
            folder.write_chunk(program.id, None, arrays, seeds, dims=dims(arrays))
            seconds = time.perf_counter() - t0
            self._finished.setdefault(program.id, []).append(seconds)
            self.timings["run_s"][program.id] = self.timings["run_s"].get(program.id, 0.0) + seconds
            self.written += 1
            wrote(seeds)
            if stop_after_chunks is not None and self.written >= stop_after_chunks:
                return True
        return False


def _run_into(folder, config, fresh, progress, stop_after_chunks, stall_timeout, say, assemble=True, share=None):
    from tqdm.auto import tqdm

    from jaxinit.lab.store.layout import _now

    path = folder.path.absolute()
    created = next((p for p in reversed([path, *path.parents]) if not p.exists()), None)
    loop = _ChunkLoop()
    try:
        folder.prepare(config, fresh=fresh)
        points = config.grid_points()
        wv, bv = grid_arrays(points)
        programs = config.programs()
        todo = {p.id: folder.missing_seeds(p.id) for p in programs}
        plans, chunk_plans, work = {}, {}, []
        for program in programs:
            plan = plans[program.id] = plan_for(config, program)
            cp = chunk_plans[program.id] = chunk_plan(plan, len(points), config.sweep.seeds, config.output.chunk,
                                                      config.output.memory_budget_mb)
            chunks = cp.chunks(todo[program.id])
            work += [(program, i + 1, len(chunks), seeds) for i, seeds in enumerate(chunks)]
        if share is not None:
            work = _take_share(folder, work, *share)
        for note in _chunk_notes(config, chunk_plans) if work else []:
            say(note)
        start = time.perf_counter()
        started_at = _now()
        bar = tqdm(total=len(work), desc="chunks", unit="chunk", disable=not progress or not work,
                   mininterval=0.5, leave=False)
        try:
            stopped = loop.run(
                folder, work, programs, chunk_plans, say,
                compile_for=lambda program: compile_program(plans[program.id], chunk_plans[program.id], len(points)),
                measure=lambda compiled, program, seeds: measure_chunk(
                    compiled, plans[program.id], chunk_plans[program.id], config.sweep.base_seed, seeds, wv, bv),
                dims=lambda arrays: {"spectrum": ("singular_value",)} if "spectrum" in arrays else None,
                stall_timeout=stall_timeout, stop_after_chunks=stop_after_chunks, skipped=lambda: bar.update(1),
                wrote=lambda seeds: bar.update(1))
            warn_lsuv(plans, loop.lsuv_reached, config.sweep.labels)
            if stopped:
                return None
        finally:
            bar.close()
            loop.timings["wall_s"] = time.perf_counter() - start
            _record_session(folder, started_at, loop.timings, loop.written, chunk_plans, _crn_note(plans),
                            precision=precision_note(config.network.dtype))
    except BaseException:
        if loop.written == 0 and not folder.writers():
            _discard(path, created)
        raise
    return folder.assemble(config) if assemble else None
