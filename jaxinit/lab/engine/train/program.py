"""Programs and chunks of seeds: the seed layout, the compiled :class:`Program` (init, then the
training of a chunk), running a chunk, the per-member records, and :func:`train_members`."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit.errors import check_int
from jaxinit.lab.engine.devices import OnDevices, lower_on, on_devices, run_blocks
from jaxinit.lab.engine.train.plan import TrainPlan, _wide, eval_steps, grid_arrays, warn_lsuv
from jaxinit.lab.engine.train.seed import _block_orders, _block_train, _seed_init


# ---------------------------------------------------------------------------------------------
# Programs, chunks of seeds
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Layout:
    """How one program's seeds are cut: ``block`` seeds per call of the program, whose members are
    trained ``group`` at a time under ``vmap`` (fixed: a member's numbers may depend on ``group``,
    not on ``size``, ``devices`` or ``in_flight``), ``size`` seeds per chunk (a multiple of
    ``block``), blocks spread over ``devices`` local devices, at most ``in_flight`` blocks
    dispatched and unfinished at once (0: two per device)."""

    block: int
    size: int
    devices: int
    in_flight: int = 0
    group: int = 1

    def chunks(self, seeds: Sequence[int]) -> list[list[int]]:
        return [list(seeds[i:i + self.size]) for i in range(0, len(seeds), self.size)]

    @property
    def blocks_in_flight(self) -> int:
        return self.in_flight or 2 * self.devices


# On the CPU the members of a vmap group run their matmuls one after another, so a group whose
# training state outgrows a core's L2 cache (1 MiB on common x86 servers) reloads it from memory at
# every op. Measured on a 2-core EPYC, 1000 steps of bench --train: at T0 (width 128, 1.1 MB per
# member) one member at a time took 585-610 us of CPU per member-step, 4 vmapped 640-660; at T1
# (width 32, 54 kB per member) 16 vmapped members were cheapest (33 us, against 46 us one at a time).
# A constant, not the machine's cache size: a member's numbers may depend on its group, so the
# group depends on the plan alone.
CPU_GROUP_BYTES = 1 << 20


def member_bytes(plan: TrainPlan) -> int:
    """Bytes of one member's training state: its parameters, gradients and one optimizer slot
    (``3 * P * itemsize``, ``P`` the network's parameter count)."""
    w, d = plan.width, plan.depth
    n_params = plan.in_dim * w + (d - 1) * w * w + w * plan.out_dim + d * w + plan.out_dim
    return 3 * n_params * np.dtype(plan.dtype).itemsize


def layout(n_seeds: int, *, chunk: int = 0, block: int | None = None, devices: int | None = None,
           members: int = 1, member_bytes: int = 0, group: int | None = None) -> Layout:
    """Seeds per call, members per vmap group, devices and a chunk size that is a multiple of ``block``.

    ``block`` (default): 4 seeds on the CPU, 32 on accelerators, at most ``n_seeds`` rounded up to
    a power of two. ``group`` (must divide ``block * members``, ``members`` the members of one
    seed): by default every member of the block on accelerators; on the CPU the largest divisor
    whose training state (``group * member_bytes``, :func:`member_bytes`) fits in
    :data:`CPU_GROUP_BYTES`, at least 1. ``devices`` (default): every local device with a block of
    seeds to run. ``chunk`` (default all seeds), rounded up to a multiple of ``block``."""
    n_seeds = check_int("n_seeds", n_seeds, minimum=1)
    members = check_int("members", members, minimum=1)
    member_bytes = check_int("member_bytes", member_bytes, minimum=0)
    cpu = jax.default_backend() == "cpu"
    if block is None:
        cap = 4 if cpu else 32
        block = 1
        while block < min(cap, n_seeds):
            block *= 2
    block = check_int("block", block, minimum=1)
    per_call = block * members
    if group is None:
        fits = [g for g in range(1, per_call + 1) if per_call % g == 0 and g * member_bytes <= CPU_GROUP_BYTES]
        group = max(fits, default=1) if cpu else per_call
    group = check_int("group", group, minimum=1)
    if per_call % group:
        raise ValueError(f"group must divide the {per_call} members of a block ({block} seeds x {members} "
                         f"members); got group={group}.")
    if devices is None:
        devices = max(1, min(jax.local_device_count(), -(-n_seeds // block)))
    devices = check_int("devices", devices, minimum=1)
    if devices > jax.local_device_count():
        raise ValueError(f"devices must be <= the {jax.local_device_count()} local device(s); got {devices}.")
    chunk = n_seeds if chunk <= 0 else chunk
    return Layout(block=block, size=-(-chunk // block) * block, devices=devices, group=group)


# The init program runs once per block: LLVM's level-1 pipeline compiles it 2-3x faster than the
# default level 2, and its random-number code runs as fast (jax.random.normal of 1.6M entries on a
# 2-core EPYC: compile 0.25 s against 0.69 s, run 33 ms against 31 ms).
LLVM_LEVEL_1 = {"xla_backend_optimization_level": 1}
INIT_COMPILER_OPTIONS = LLVM_LEVEL_1
# The init program also draws the blocks' minibatch orders when they take at most this many bytes
# a block (their permutations' random-number code cost the training program's compile 0.7 s of its
# 3 s at T1, measured); longer runs draw them inside the training program, the same rows.
ORDERS_IN_INIT_BYTES = 64 << 20
# The training program of narrow networks compiles at LLVM level 1 as well: at width 32 (bench
# --train T1) it compiled 0.8 s faster (3.3-3.5 s against 4.0-4.7) and ran as fast (34-38 us of
# CPU per member-step against 35-36); at width 128 (T0) level 1 ran 13% slower, so wider networks
# keep XLA's default level.
NARROW_WIDTH = 32


def train_compiler_options(plan: TrainPlan) -> dict[str, Any]:
    """XLA options of ``plan``'s training program: LLVM level 1 up to :data:`NARROW_WIDTH` units
    on the CPU (a member's numbers may depend on it: 1 ulp in a test loss, measured), else none."""
    if plan.width <= NARROW_WIDTH and jax.default_backend() == "cpu":
        return dict(LLVM_LEVEL_1)
    return {}


def _param_structs(plan: TrainPlan, block: int, n_grid: int) -> dict[str, Any]:
    """Shapes of a block's stacked parameters, ``(block, n_init * n_grid, ...)`` per array (what the
    init program returns, known from the plan without tracing it)."""
    lead, dtype = (block, plan.n_init * n_grid), np.dtype(plan.dtype)

    def layer(*kernel):
        return {"kernel": jax.ShapeDtypeStruct(lead + kernel, dtype),
                "bias": jax.ShapeDtypeStruct(lead + kernel[:-2] + kernel[-1:], dtype)}

    return {"input": layer(plan.in_dim, plan.width), "hidden": layer(plan.depth - 1, plan.width, plan.width),
            "readout": layer(plan.width, plan.out_dim)}


def _data_structs(plan: TrainPlan, n_train: int, n_test: int) -> tuple[jax.ShapeDtypeStruct, ...]:
    y = (lambda n: jax.ShapeDtypeStruct((n,), jnp.int32)) if plan.task == "classification" else (
        lambda n: jax.ShapeDtypeStruct((n, plan.out_dim), jnp.float32))
    return (jax.ShapeDtypeStruct((n_train, plan.in_dim), jnp.float32), y(n_train),
            jax.ShapeDtypeStruct((n_test, plan.in_dim), jnp.float32), y(n_test))


@dataclasses.dataclass(frozen=True)
class Program:
    """The two compiled programs of one plan: ``init`` (initial parameters of a block's members, and
    the seeds' minibatch orders while they are small: :data:`ORDERS_IN_INIT_BYTES`) and ``train``
    (the training of the block from them), each one executable loaded on every device
    (:class:`~jaxinit.lab.engine.devices.OnDevices`). Initialization is its own XLA program because
    its random-number code, compiled inside the training loop's nest, tripled the compile time."""

    init: OnDevices
    train: OnDevices


def compile_train(plan: TrainPlan, n_train: int, n_test: int, n_grid: int, chunks: Layout) -> tuple[Program, float]:
    """Compile the :class:`Program` of ``plan`` for blocks of ``chunks.block`` seeds, once, and
    load it on ``chunks.devices`` devices; returns ``(program, seconds)``. Run it on every chunk of
    seeds with :func:`run_chunk` (no recompilation per chunk). Outputs have the seed axis first.

    Every device runs the same executable (:func:`~jaxinit.lab.engine.devices.on_devices`), so a
    member's numbers do not depend on the device count: a ``shard_map`` over the devices was
    compiled differently for one device and for two (1-2 ulp apart in the losses, measured)."""
    plan.check_data(n_train, plan.in_dim)
    wide = _wide(plan)

    order_shape = (chunks.block, plan.n_chunks * plan.chunk_steps, plan.batch)
    early_orders = plan.batch > 0 and 4 * math.prod(order_shape) <= ORDERS_IN_INIT_BYTES

    def init_chunk(base_seed, seeds, wv, bv, x_train):  # x_train: LSUV's fit batch comes from it
        # Batching a zero-size output is avoided: depth 1's empty hidden stack is dropped from the
        # vmap and restored after it.
        def one(s):
            p = _seed_init(plan, base_seed, s, wv, bv, x_train)
            return p if plan.depth > 1 else {k: v for k, v in p.items() if k != "hidden"}

        out = jax.vmap(one)(seeds)
        if plan.depth == 1:
            n = seeds.shape[0]
            m = plan.n_init * wv.shape[0]
            dt = np.dtype(plan.dtype)
            out["hidden"] = {"kernel": jnp.zeros((n, m, 0, plan.width, plan.width), dt),
                             "bias": jnp.zeros((n, m, 0, plan.width), dt)}
        orders = _block_orders(plan, base_seed, seeds, x_train.shape[0]) if early_orders else None
        return out, orders

    def train_chunk(base_seed, seeds, params, orders, lr, *data):
        return _block_train(plan, chunks.group, base_seed, seeds, params, orders, lr, *data)

    base = jax.ShapeDtypeStruct((), jnp.uint32)
    seeds = jax.ShapeDtypeStruct((chunks.block,), jnp.int32)
    grid = jax.ShapeDtypeStruct((n_grid,), wide)
    start = time.perf_counter()
    data = _data_structs(plan, n_train, n_test)
    init_args = (base, seeds, grid, grid, data[0])
    params = _param_structs(plan, chunks.block, n_grid)
    orders = jax.ShapeDtypeStruct(order_shape, jnp.int32) if early_orders else None
    train_args = (base, seeds, params, orders, grid, *data)
    train_lowered, _ = lower_on(train_chunk, train_args)
    # XLA compiles the training program (the longer compile) on a worker thread, outside the GIL,
    # while Python traces and compiles the init program: the two overlap instead of adding up.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(on_devices, train_chunk, train_args, chunks.devices, train_lowered,
                              train_compiler_options(plan))
        init_lowered, _ = lower_on(init_chunk, init_args)
        drawn = jax.tree.map(lambda o: jax.ShapeDtypeStruct(o.shape, o.dtype), init_lowered.out_info)
        if drawn != (params, orders):
            raise RuntimeError(f"the init program's outputs {drawn} are not the inputs the training program "
                               f"was compiled for, {(params, orders)}")
        init, _ = on_devices(init_chunk, init_args, chunks.devices, init_lowered, INIT_COMPILER_OPTIONS)
        train, _ = pending.result()
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
    """Run one chunk of seeds, block by block over the devices (the last block padded with repeats
    of the chunk's last seed); numpy arrays shaped ``(n_init, n_grid, len(seed_ids), ...)``."""
    n = len(seed_ids)
    if not 1 <= n <= chunks.size:
        raise ValueError(f"a chunk holds 1 to {chunks.size} seeds; got {n}.")
    block = chunks.block
    n_blocks = -(-n // block)
    padded = np.asarray(list(seed_ids) + [seed_ids[-1]] * (n_blocks * block - n), np.int32)
    wide = _wide(plan)
    wv, bv, lr = (np.asarray(a, wide) for a in grid)
    arrays = _data_arrays(plan, data)
    devices = program.init.devices
    shared = [jax.device_put((np.uint32(base_seed), wv, bv, lr, arrays), d) for d in devices]

    def launch(i):
        d = i % len(devices)
        base, w, b, rate, xy = shared[d]
        seeds = jax.device_put(padded[i * block:(i + 1) * block], devices[d])
        params, orders = program.init(d, base, seeds, w, b, xy[0])
        return program.train(d, base, seeds, params, orders, rate, *xy)

    parts = run_blocks(n_blocks, launch, chunks.blocks_in_flight)
    out = {k: np.moveaxis(np.concatenate([p[k] for p in parts])[:n], 0, 2) for k in parts[0]}
    return {**out, **_member_summary(plan, out)}


def train_members(plan: TrainPlan, data: Any, base_seed: int = 0, seed_ids: Sequence[int] = (0,),
                  grid: Sequence[Mapping[str, float]] | None = None, *, chunk: int = 0, block: int | None = None,
                  devices: int | None = None, group: int | None = None) -> dict[str, np.ndarray]:
    """Train every (initializer, grid point, seed) member of ``plan`` on ``data``; one compiled program.

    Args:
      plan: the :class:`TrainPlan`.
      data: a :class:`jaxinit.lab.data.Dataset` or ``(x_train, y_train, x_test, y_test)``.
      base_seed: the root key's seed (``key(base_seed)``).
      seed_ids: the seeds ``s`` to train (keys ``fold_in(key(base_seed), s)``).
      grid: points ``{"weight_variance": ..., "bias_variance": ..., "learning_rate": ...}`` (each
        optional), or ``None`` for the plan as is.
      chunk, block, devices, group: see :func:`layout`; a member's numbers depend on ``group`` alone.

    Returns:
      numpy arrays with dims ``(initializer, grid_point, seed, ...)``: per evaluation
      ``(..., step)`` and ``(..., step, layer)`` (steps :func:`eval_steps`), per member
      ``(...)`` and ``distinct_units`` ``(..., layer)``; names in the module docstring. With LSUV
      entries, ``lsuv_variance`` ``(..., layer)`` (layers ``0 .. depth``): each layer's output
      variance on the LSUV fit batch (NaN for the other initializers); members that missed their
      tolerance raise one :class:`~jaxinit.lsuv.LSUVWarning` for the call.

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
    chunks = layout(len(seed_ids), chunk=chunk, block=block, devices=devices, members=plan.n_init * g[0].shape[0],
                    member_bytes=member_bytes(plan), group=group)
    program, _ = compile_train(plan, arrays[0].shape[0], arrays[2].shape[0], g[0].shape[0], chunks)
    parts = [run_chunk(program, plan, chunks, arrays, base_seed, ids, g) for ids in chunks.chunks(seed_ids)]
    out = {k: np.concatenate([p[k] for p in parts], axis=2) for k in parts[0]}
    warn_lsuv({"": plan}, {"": [out.get("lsuv_variance")]})  # once per run, naming the layers that missed
    return out


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

