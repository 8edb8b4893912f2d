"""Programs, chunks and devices: the plan of a config's program, seeds in flight from a memory
budget, one compiled program per plan, a chunk run and its arrays; the precision note."""

from __future__ import annotations

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
    """Bytes for the seeds in flight: half the accelerator's memory, or 2 GiB on the CPU."""
    device = jax.local_devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001 - CPU backends may not implement memory_stats
        stats = {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"] * 0.5)
    return 2 * 1024**3


def seeds_in_flight(plan: Plan, n_grid: int, budget: int) -> int:
    """Seeds computed together in one vmap (a power of two); fixed per program, so every seed's
    numbers are the same whichever chunk it lands in. The CPU gains nothing beyond 4."""
    cap = 4 if jax.default_backend() == "cpu" else 64
    fit = max(1, budget // max(1, bytes_per_seed(plan, n_grid)))
    block = 1
    while block * 2 <= min(cap, fit):
        block *= 2
    return block


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
    """How one program's seeds are cut: ``block`` seeds per vmap, ``size`` seeds per chunk."""

    block: int
    size: int
    devices: int

    def chunks(self, seeds: Sequence[int]) -> list[list[int]]:
        return [list(seeds[i:i + self.size]) for i in range(0, len(seeds), self.size)]


def chunk_plan(plan: Plan, n_grid: int, n_seeds: int, chunk: int = 0, memory_budget_mb: float | None = None,
               devices: int | None = None) -> ChunkPlan:
    """Seeds in flight from the memory budget; chunk size a multiple of block x devices.

    By default every local device takes part, but no more devices than there are blocks of seeds
    (more would only compute padding).
    """
    budget = int(memory_budget_mb * 2**20) if memory_budget_mb else default_memory_budget()
    if devices is None:
        devices = jax.local_device_count()
        block = min(seeds_in_flight(plan, n_grid, budget // devices), max(1, n_seeds))
        devices = max(1, min(devices, -(-n_seeds // block)))
    block = min(seeds_in_flight(plan, n_grid, budget // devices), max(1, n_seeds))
    unit = block * devices
    if chunk <= 0:  # about eight chunks: progress to see, and little lost to an interruption
        chunk = max(unit, -(-n_seeds // 8))
    size = -(-chunk // unit) * unit
    return ChunkPlan(block=block, size=size, devices=devices)


def compile_program(plan: Plan, chunks: ChunkPlan, n_grid: int):
    """One compiled program: (base_seed, seed ids of a chunk, grid arrays) -> per-combo arrays.

    Returns ``(compiled, seconds)``. Outputs have the seed axis first: ``(chunk, n_init, n_grid, ...)``.
    """
    lowered, seconds = lower_program(plan, chunks, n_grid)
    start = time.perf_counter()
    compiled = lowered.compile()
    return compiled, seconds + time.perf_counter() - start


def lower_program(plan: Plan, chunks: ChunkPlan, n_grid: int):
    """The traced and lowered program (tracing holds the GIL; XLA compilation, after, does not)."""
    def per_chunk(base_seed, seeds, wv, bv):
        return jax.lax.map(lambda s: _seed_measure(plan, base_seed, s, wv, bv), seeds, batch_size=chunks.block)

    fn, seed_sharding = per_chunk, None
    if chunks.devices > 1:
        # Each device maps over its own slice of the chunk's seeds with the same per-seed program.
        mesh = jax.make_mesh((chunks.devices,), ("seeds",), devices=jax.local_devices()[:chunks.devices])
        P = jax.sharding.PartitionSpec
        seed_sharding = jax.sharding.NamedSharding(mesh, P("seeds"))
        fn = jax.shard_map(per_chunk, mesh=mesh, in_specs=(P(), P("seeds"), P(), P()), out_specs=P("seeds"))
    wide = wide_dtype(np.dtype(plan.dtype))
    args = (jax.ShapeDtypeStruct((), jnp.uint32),
            jax.ShapeDtypeStruct((chunks.size,), jnp.int32, sharding=seed_sharding),
            jax.ShapeDtypeStruct((n_grid,), wide), jax.ShapeDtypeStruct((n_grid,), wide))
    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    return lowered, time.perf_counter() - start


def measure_chunk(compiled, plan: Plan, chunks: ChunkPlan, base_seed: int, seed_ids: Sequence[int],
                  wv: np.ndarray, bv: np.ndarray) -> dict[str, np.ndarray]:
    """Run one chunk (padded to the compiled size with repeats of its last seed) and return numpy
    arrays shaped ``(n_init, n_grid, len(seed_ids), ...)`` as the results folder stores them."""
    n = len(seed_ids)
    bias_values = np.asarray(bv, np.float64)
    if not plan.grid_bias and not np.isnan(bias_values).all():
        raise ValueError(f"bias_variance grid values {bias_values.tolist()} need a program compiled with "
                         "Plan(grid_bias=True); this one draws no bias noise.")
    padded = np.asarray(list(seed_ids) + [seed_ids[-1]] * (chunks.size - n), np.int32)
    wide = wide_dtype(np.dtype(plan.dtype))
    seeds = jnp.asarray(padded)
    if chunks.devices > 1:
        seeds = jax.device_put(seeds, compiled.input_shardings[0][1])
    out = compiled(np.uint32(base_seed), seeds, np.asarray(wv, wide), np.asarray(bv, wide))
    return {k: np.moveaxis(np.asarray(v)[:n], 0, 2) for k, v in out.items()}
