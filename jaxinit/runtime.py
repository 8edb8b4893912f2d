"""Process-wide settings that must be chosen before JAX starts its CPU backend.

The CLI and the test suite call :func:`configure_process` first thing; library users who hit the
problems below can call it themselves before importing JAX.
"""

from __future__ import annotations

import os

# jaxlib 0.10.2 on few CPU cores: a vmapped program with two or more QRs whose R factor is used
# (orthogonal init under vmap) can deadlock with the concurrency-optimized scheduler. The cause is
# jaxlib's batched LAPACK kernels, which wait on XLA's thread pool from a pool thread: the scheduler
# only made it likelier by running such calls concurrently, and a multi-device program runs one per
# device anyway. jaxinit._linalg removes the cause (one matrix per LAPACK call on the CPU); the flag
# stays for user programs that batch LAPACK calls themselves.
XLA_WORKAROUND = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
# XLA's newer CPU fusion emitters (jaxlib 0.10's default) compiled the benchmark's sweep program in
# 2.2 s against 1.5 s for the classic emitters, and ran it ~10% slower with a third more memory.
# The weights drawn are bitwise the same either way (tests/test_runtime.py); reductions may round
# differently (~1 ulp).
XLA_FAST_COMPILE = "--xla_cpu_use_fusion_emitters=false"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def cpu_devices_chosen() -> bool:
    """Whether the environment already fixes the number of JAX CPU devices."""
    return "JAX_NUM_CPU_DEVICES" in os.environ or "xla_force_host_platform_device_count" in os.environ.get(
        "XLA_FLAGS", "")


def configure_process(cpu_devices: int | None = None) -> None:
    """Avoid the XLA CPU scheduler deadlock and OpenBLAS/XLA thread contention (QR on the CPU),
    and compile faster.

    Appends ``XLA_WORKAROUND`` and ``XLA_FAST_COMPILE`` to ``XLA_FLAGS`` and sets
    ``OPENBLAS_NUM_THREADS=1``, each unless the environment already chose; child processes
    inherit them. Has no effect on a JAX backend that
    has already started.

    ``cpu_devices``: split the CPU into this many JAX devices (``jax_num_cpu_devices``) unless the
    environment already chose a number. The devices share one XLA thread pool; jaxinit's programs
    give LAPACK one matrix per call so that they cannot deadlock it (:mod:`jaxinit._linalg`).
    The sweep shards seeds over local devices, so on a
    CPU-only machine one device per core runs that many networks side by side; it pays most for
    work that XLA runs on one thread, such as LAPACK's QR in orthogonal init (measured on 2 cores:
    the benchmark's sweep ran 1.6x faster with 2 devices than with 1). Results do not depend on it.
    """
    for flag in (XLA_WORKAROUND, XLA_FAST_COMPILE):
        flags = os.environ.get("XLA_FLAGS", "")
        if flag.split("=")[0] not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if cpu_devices is not None and cpu_devices > 1 and not cpu_devices_chosen():
        import jax

        try:
            jax.config.update("jax_num_cpu_devices", int(cpu_devices))
        except RuntimeError:  # the backend has started: keep the devices it has
            pass
