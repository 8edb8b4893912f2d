"""One compiled program on every local device, and blocks of seeds run over them.

Both engines compute a fixed block of seeds per call of one single-device program, and spread a
chunk's blocks over the local devices. Every device runs *the same executable*: the program is
compiled once, for the first device, and loaded on each other device from its serialized form
(:func:`on_devices`). So a member's numbers cannot depend on the device count: a program sharded
with ``shard_map`` is compiled by XLA's SPMD partitioner once there are two devices or more, and
that pipeline rewrote a division into a multiplication by the reciprocal for one device and not
for two (1 ulp apart; measured, jaxlib 0.10.2 on the CPU).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np


@dataclasses.dataclass(frozen=True)
class OnDevices:
    """One compiled program (``executables[0]``) and its copies, ``executables[i]`` on ``devices[i]``."""

    executables: tuple[Any, ...]
    devices: tuple[Any, ...]
    # How the copies were made: "loaded" (the same executable, deserialized on each device) or
    # "compiled" (compiled again per device from the same lowering: the fallback).
    copies: str = "loaded"

    def __len__(self) -> int:
        return len(self.devices)

    def __call__(self, index: int, *args: Any) -> Any:
        """Run the copy on device ``index`` (asynchronously: the outputs are futures)."""
        return self.executables[index](*args)

    def as_text(self) -> str:
        return self.executables[0].as_text()


def _loaded_on(compiled: Any, device: Any) -> Any:
    """``compiled`` (a single-device program) loaded on ``device`` from its serialized form."""
    from jax._src import compiler
    from jax.experimental import serialize_executable as se

    payload, in_tree, out_tree = se.serialize(compiled)

    class OnDevice(se._JaxPjrtUnpickler):
        def persistent_load(self, pid):
            if pid[0] == "exec":
                options = compiler.get_compile_options(1, 1, device_assignment=np.array([[device]]),
                                                       backend=self.backend)
                return self.backend.deserialize_executable(pid[1], self.execution_devices, options)
            if pid[0] == "device":  # the program's only device
                return device
            return super().persistent_load(pid)

    unloaded, args_info, no_kwargs = OnDevice(io.BytesIO(payload), device.client, [device]).load()
    return jax.stages.Compiled(unloaded.load(), [], in_tree.unflatten(args_info), out_tree, no_kwargs=no_kwargs)


def _on(structs: Any, device: Any) -> Any:
    sharding = jax.sharding.SingleDeviceSharding(device)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), structs)


def lower_on(fn: Callable, structs: Sequence[Any], device: Any | None = None):
    """``jax.jit(fn)`` lowered for ``structs`` (``ShapeDtypeStruct`` pytrees) on one device
    (default: the first local device); returns ``(lowered, seconds)``."""
    device = device if device is not None else jax.local_devices()[0]
    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*_on(tuple(structs), device))
    return lowered, time.perf_counter() - start


def on_devices(fn: Callable, structs: Sequence[Any], devices: int | Sequence[Any],
               lowered: Any = None, compiler_options: dict[str, Any] | None = None) -> tuple[OnDevices, float]:
    """Compile ``jax.jit(fn)`` for ``structs`` once and put the executable on each of ``devices``
    (a count of local devices, or the devices); returns ``(OnDevices, seconds)``.

    The copies are the first device's executable, serialized and loaded on each device, so they
    compute the same bits. Should this jax not serialize the program, each copy is compiled from
    the same lowering instead (``copies == "compiled"``): slower to start, the same machine code
    as far as XLA's compilation is deterministic. ``compiler_options``: XLA debug options for this
    compilation (``{"xla_backend_optimization_level": 1}``, ...), as ``Lowered.compile`` takes them.
    """
    if isinstance(devices, int):
        devices = jax.local_devices()[:devices]
    devices = tuple(devices)
    start = time.perf_counter()
    if lowered is None:
        lowered, _ = lower_on(fn, structs, devices[0])
    first = lowered.compile(compiler_options=compiler_options)
    executables, copies = [first], "loaded"
    for device in devices[1:]:
        try:
            executables.append(_loaded_on(first, device))
        except Exception:  # noqa: BLE001 - jax without executable serialization: compile the copy
            copies = "compiled"
            executables.append(lower_on(fn, structs, device)[0].compile(compiler_options=compiler_options))
    return OnDevices(tuple(executables), devices, copies), time.perf_counter() - start


def run_blocks(n_blocks: int, launch: Callable[[int], Any], in_flight: int) -> list[Any]:
    """Run blocks ``0 .. n_blocks - 1`` with at most ``in_flight`` dispatched and unfinished.

    ``launch(i)`` dispatches block ``i`` (asynchronously, on the device it chooses) and returns its
    outputs, a pytree of device arrays; returns the blocks' outputs as numpy pytrees, in order.
    """
    results: list[Any] = [None] * n_blocks
    pending: collections.deque = collections.deque()
    for i in range(n_blocks):
        while len(pending) >= max(1, in_flight):
            j, out = pending.popleft()
            results[j] = jax.device_get(out)
        pending.append((i, launch(i)))
    while pending:
        j, out = pending.popleft()
        results[j] = jax.device_get(out)
    return results
