"""Programs, chunks and devices: the plan of a config's program, its fixed seed block, chunks and
the blocks in flight from a memory budget, one compiled program per plan on every device, a chunk
run and its arrays; the precision note."""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit import probes
from jaxinit.initializers._base import wide_dtype
from jaxinit.lab.config import READOUT_DIM
from jaxinit.lab.engine.devices import OnDevices, lower_on, on_devices, run_blocks
from jaxinit.lab.engine.sweep.layers import HIGHEST
from jaxinit.lab.engine.sweep.plan import Plan
from jaxinit.lab.engine.sweep.seed import _seed_measure


def accumulation_dtype(dtype: Any) -> str:
    """The dtype XLA accumulates a ``dtype`` matmul in on the default device, measured.

    float32 and float64 matmuls run at ``precision=HIGHEST``: in the dtype itself. For a 16-bit
    dtype with ``m`` mantissa bits, one batched product of the engine's form sums
    ``1 + 62 e - 1`` with ``e = 2^-(m + 2)``: ``1 + e`` rounds to 1 in the dtype, so partial sums
    kept in the dtype lose the ``e``'s (0 or a few ``e``), while float32 partial sums give exactly
    ``62 e`` (representable in the dtype). Returns ``"float32"`` or the dtype's name.
    """
    d = np.dtype(dtype)
    if d == wide_dtype(d):
        return d.name
    e = 2.0 ** -(int(jnp.finfo(d).nmant) + 2)
    row = np.full(64, e)
    row[0], row[-1] = 1.0, -1.0
    a = jnp.asarray(np.stack([row, row[::-1], np.roll(row, 17)]), d)[None]
    y = jax.jit(lambda a, w: jnp.einsum("kbi,kio->kbo", a, w, precision=HIGHEST))(a, jnp.ones((1, 64, 1), d))
    return "float32" if bool(jnp.all(y.astype(jnp.float32) == np.float32(62 * e))) else d.name


def precision_note(dtype: Any) -> dict[str, Any]:
    """What dtype each part of a sweep's computation uses (``meta.json``'s ``"precision"``).

    ``draw``: noise sampled and scaled (the initializer's wide dtype); ``weights``: what the
    network holds; ``matmul``: operands and result, and ``accumulation`` as measured on the device
    (:func:`accumulation_dtype`); ``activations``: pre-activations, activations, tangents and
    backpropagated gradients; ``reductions``: the probes' statistics and norms; ``smallest_normal``:
    the underflow threshold of ``q`` and of the gradient norms; overflow is a non-finite value in
    the dtype.
    """
    d = np.dtype(dtype)
    wide = wide_dtype(d)
    factored = d == wide
    return {
        "dtype": d.name,
        "draw": wide.name,
        "weights": (f"{d.name}, not formed: f_k (rows @ Z), the formed weights' product up to rounding" if factored
                    else f"{d.name}: the {wide.name} draw rounded once, formed per initializer and grid point"),
        "matmul": f"{d.name} operands and result, precision=HIGHEST",
        "accumulation": accumulation_dtype(d),
        "activations": d.name,
        "reductions": np.dtype(probes._stat_dtype(d)).name,
        "smallest_normal": float(jnp.finfo(d).tiny),
        "largest": float(jnp.finfo(d).max),
    }


# ---------------------------------------------------------------------------------------------
# Programs, chunks and devices
# ---------------------------------------------------------------------------------------------
OUT_DIM = READOUT_DIM  # the readout the gradient probes' loss reads (the config's, one home)


def plan_for(config, program) -> Plan:
    """The static :class:`Plan` of one program of a validated :class:`~jaxinit.lab.config.SweepConfig`."""
    inputs, probes = config.inputs, config.probes
    in_dim = config.in_dim(program)
    return Plan(
        depth=program.depth, width=program.width, in_dim=in_dim, out_dim=OUT_DIM, batch=inputs.n_inputs,
        activation=program.activation, initializers=tuple(e.init for e in config.sweep.initializers),
        bias_init=config.network.bias.init, dtype=config.network.dtype, input_kind=inputs.kind,
        correlation=float(inputs.correlation or 0.0), q0=inputs.q0, forward=probes.forward,
        gradients=probes.gradients, jacobian=probes.jacobian, spectrum=probes.spectrum, loss=probes.loss,
        grid_bias="bias_variance" in config.grid.params if config.grid is not None else False,
    )


def grid_arrays(points: Sequence[dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Grid points as (weight_variance, bias_variance) arrays; NaN where a point leaves it unset."""
    wv = np.asarray([p.get("weight_variance", np.nan) for p in points], np.float64)
    bv = np.asarray([p.get("bias_variance", np.nan) for p in points], np.float64)
    return wv, bv


def bytes_per_seed(plan: Plan, n_grid: int) -> int:
    """Rough peak working set of one seed in flight (activations, tangents, kept layers, weights)."""
    item = np.dtype(wide_dtype(np.dtype(plan.dtype))).itemsize
    combos = plan.n_init * n_grid
    rows = plan.batch * (1 + (plan.num_projections if plan.jacobian else 0)) + (plan.in_dim if plan.spectrum else 0)
    live = 8 * combos * rows * max(plan.width, plan.in_dim)
    kept = 2 * (plan.depth - 1) * combos * plan.batch * plan.width if plan.gradients else 0
    weights = 3 * len(plan.groups(min(1, plan.depth))[0]) * plan.width * max(plan.width, plan.in_dim)
    if np.dtype(plan.dtype) != wide_dtype(np.dtype(plan.dtype)):  # bfloat16/float16: formed per combo
        weights += 2 * combos * plan.width * max(plan.width, plan.in_dim)
    grams = 4 * combos * plan.batch * plan.batch if plan.gradients else 0
    return item * (live + kept + weights + grams)


def default_memory_budget() -> int:
    """Bytes for the blocks in flight: half the accelerator's memory, or 2 GiB on the CPU."""
    device = jax.local_devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001 - CPU backends may not implement memory_stats
        stats = {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"] * 0.5)
    return 2 * 1024**3


# A block's estimated working set (bytes_per_seed x block) stays under this: a fixed constant, so
# that the block, which a member's numbers depend on, is a function of the program alone.
BLOCK_BYTES = 2**30
# Seeds per vmap block at most: the CPU gains nothing beyond 4 (measured), accelerators want more.
BLOCK_CAP = {"cpu": 4}
BLOCK_CAP_DEFAULT = 64


def seed_block(plan: Plan, n_grid: int, n_seeds: int, backend: str | None = None) -> int:
    """Seeds computed together in one vmap: the largest power of two <= the backend's cap
    (:data:`BLOCK_CAP`: 4 on the CPU, 64 elsewhere) whose estimated working set
    (:func:`bytes_per_seed` x block) fits :data:`BLOCK_BYTES`, and at most ``n_seeds``.

    A member's numbers depend on its block width (XLA may compile a batched op differently for
    another width), so the block is a function of the program (shapes, dtype, probes, grid size),
    the sweep's seed count and the backend: never of the device count, the chunk size or the
    memory budget, which only decide how many blocks run at once (:func:`chunk_plan`).
    """
    cap = BLOCK_CAP.get(backend or jax.default_backend(), BLOCK_CAP_DEFAULT)
    fit = max(1, BLOCK_BYTES // max(1, bytes_per_seed(plan, n_grid)))
    block = 1
    while block * 2 <= min(cap, fit):
        block *= 2
    return min(block, max(1, n_seeds))


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
    """How one program's seeds are cut: ``block`` seeds per vmap (a member's numbers depend on it
    alone), ``size`` seeds per chunk (a multiple of ``block``: only a chunk's last block may be
    padded), blocks spread over ``devices`` local devices, at most ``in_flight`` blocks dispatched
    and unfinished at once (0: two per device)."""

    block: int
    size: int
    devices: int
    in_flight: int = 0

    def chunks(self, seeds: Sequence[int]) -> list[list[int]]:
        return [list(seeds[i:i + self.size]) for i in range(0, len(seeds), self.size)]

    @property
    def blocks_in_flight(self) -> int:
        return self.in_flight or 2 * self.devices


def chunk_plan(plan: Plan, n_grid: int, n_seeds: int, chunk: int = 0, memory_budget_mb: float | None = None,
               devices: int | None = None) -> ChunkPlan:
    """The block (:func:`seed_block`), the devices, the chunk size and the blocks in flight.

    By default every local device takes part, but no more devices than there are blocks of seeds
    (more would have nothing to run). ``chunk = 0`` picks about an eighth of the seeds, at least a
    block per device; a chunk is rounded up to a multiple of the block. The memory budget (default
    :func:`default_memory_budget`) bounds the blocks in flight (at least one, at most two per
    device): it never changes the block, so it never changes a number.
    """
    block = seed_block(plan, n_grid, n_seeds)
    if devices is None:
        devices = max(1, min(jax.local_device_count(), -(-n_seeds // block)))
    budget = int(memory_budget_mb * 2**20) if memory_budget_mb else default_memory_budget()
    in_flight = max(1, min(2 * devices, budget // max(1, block * bytes_per_seed(plan, n_grid))))
    if chunk <= 0:  # about eight chunks: progress to see, and little lost to an interruption
        chunk = max(block * devices, -(-n_seeds // 8))
    size = -(-chunk // block) * block
    return ChunkPlan(block=block, size=size, devices=devices, in_flight=in_flight)


def _block_program(plan: Plan):
    def per_block(base_seed, seeds, wv, bv):
        return jax.vmap(lambda s: _seed_measure(plan, base_seed, s, wv, bv))(seeds)
    return per_block


def _block_structs(plan: Plan, chunks: ChunkPlan, n_grid: int) -> tuple[jax.ShapeDtypeStruct, ...]:
    wide = wide_dtype(np.dtype(plan.dtype))
    return (jax.ShapeDtypeStruct((), jnp.uint32), jax.ShapeDtypeStruct((chunks.block,), jnp.int32),
            jax.ShapeDtypeStruct((n_grid,), wide), jax.ShapeDtypeStruct((n_grid,), wide))


def compile_program(plan: Plan, chunks: ChunkPlan, n_grid: int) -> tuple[OnDevices, float]:
    """One compiled program on ``chunks.devices`` devices: (base_seed, a block of seed ids, grid
    arrays) -> per-combo arrays, seed axis first: ``(block, n_init, n_grid, ...)``.

    The program is compiled once and the same executable is loaded on every device
    (:func:`~jaxinit.lab.engine.devices.on_devices`). The last :data:`PROGRAM_CACHE` programs
    compiled in the process are kept (by plan, block, grid size and devices): a sweep run again in
    the same process, with another chunk size or budget, does not compile again. Returns
    ``(program, seconds)``.
    """
    start = time.perf_counter()
    key = (plan, chunks.block, n_grid, chunks.devices)
    if key in _compiled:
        _compiled.move_to_end(key)
        return _compiled[key], time.perf_counter() - start
    lowered, seconds = lower_program(plan, chunks, n_grid)
    program, more = on_devices(_block_program(plan), _block_structs(plan, chunks, n_grid), chunks.devices,
                               lowered=lowered)
    _compiled[key] = program
    while len(_compiled) > PROGRAM_CACHE:
        _compiled.popitem(last=False)
    return program, seconds + more


PROGRAM_CACHE = 4
_compiled: collections.OrderedDict = collections.OrderedDict()


def lower_program(plan: Plan, chunks: ChunkPlan, n_grid: int):
    """The traced and lowered program of one block (tracing holds the GIL; XLA compilation, after,
    does not); returns ``(lowered, seconds)``."""
    return lower_on(_block_program(plan), _block_structs(plan, chunks, n_grid))


def measure_chunk(compiled: OnDevices, plan: Plan, chunks: ChunkPlan, base_seed: int, seed_ids: Sequence[int],
                  wv: np.ndarray, bv: np.ndarray) -> dict[str, np.ndarray]:
    """Run one chunk, block by block over the devices (the last block padded with repeats of the
    chunk's last seed), and return numpy arrays shaped ``(n_init, n_grid, len(seed_ids), ...)``
    as the results folder stores them."""
    n = len(seed_ids)
    bias_values = np.asarray(bv, np.float64)
    if not plan.grid_bias and not np.isnan(bias_values).all():
        raise ValueError(f"bias_variance grid values {bias_values.tolist()} need a program compiled with "
                         "Plan(grid_bias=True); this one draws no bias noise.")
    block = chunks.block
    n_blocks = -(-n // block)
    padded = np.asarray(list(seed_ids) + [seed_ids[-1]] * (n_blocks * block - n), np.int32)
    wide = wide_dtype(np.dtype(plan.dtype))
    shared = [jax.device_put((np.uint32(base_seed), np.asarray(wv, wide), np.asarray(bv, wide)), d)
              for d in compiled.devices]

    def launch(i):
        d = i % len(compiled)
        base, w, b = shared[d]
        return compiled(d, base, jax.device_put(padded[i * block:(i + 1) * block], compiled.devices[d]), w, b)

    parts = run_blocks(n_blocks, launch, chunks.blocks_in_flight)
    return {k: np.moveaxis(np.concatenate([p[k] for p in parts])[:n], 0, 2) for k in parts[0]}
