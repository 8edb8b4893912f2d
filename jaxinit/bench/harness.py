"""The harness: contenders run end to end in fresh processes, timed from outside.

Wall time is measured around the child, CPU time and peak RSS come from ``os.wait4`` (that child
alone); a worker reports what it measured inside on one ``BENCH_RESULT {json}`` line. Every child gets
the same environment (:class:`Settings`). The parent never starts a JAX backend.

Workers run by file path (``python -P .../flax_worker.py SPEC``), not ``python -m``: ``-m`` would
import the ``jaxinit`` package (hence JAX) first, charging the Flax and PyTorch baselines an import
their users' programs never make. ``-P`` keeps the workers' folder off ``sys.path``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# jaxinit.runtime imports nothing heavy: the flags jaxinit sets for itself, named once.
from jaxinit.runtime import XLA_FAST_COMPILE, XLA_WORKAROUND

__all__ = ["DEFAULT_TIMEOUT_S", "MiB", "RESULT_MARK", "WORKERS", "Proc", "Settings", "byte_compile_package",
           "child_env", "cli_available", "median_run", "openblas_setting", "run_process", "torch_available",
           "worker_command"]

DEFAULT_TIMEOUT_S = 900.0
RESULT_MARK = "BENCH_RESULT "
MiB = 2**20
WORKERS = ("flax_worker", "torch_worker", "ceiling_worker", "sweep_worker")


@dataclasses.dataclass
class Proc:
    returncode: int
    wall_s: float
    cpu_s: float | None
    peak_rss_mb: float | None
    stdout: str
    stderr: str
    timed_out: bool

    def result(self) -> dict[str, Any] | None:
        """The JSON a worker printed on its ``BENCH_RESULT`` line, if any."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(RESULT_MARK):
                return json.loads(line[len(RESULT_MARK):])
        return None

    def failure(self) -> str:
        if self.timed_out:
            return f"timed out after {self.wall_s:.0f} s"
        tail = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return f"exit status {self.returncode}" + (f": {tail[-1].strip()[:300]}" if tail else "")


def _maxrss_mb(ru_maxrss: int) -> float:
    return ru_maxrss / MiB if sys.platform == "darwin" else ru_maxrss / 1024  # bytes on macOS, KiB on Linux


def run_process(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                cwd: str | Path | None = None) -> Proc:
    """Run ``cmd`` to completion; wall time from outside, CPU time and peak RSS of that child alone."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        cpu = rss = None
        try:
            if hasattr(os, "wait4"):
                _, status, usage = os.wait4(proc.pid, 0)
                timer.cancel()
                proc.returncode = os.waitstatus_to_exitcode(status)
                cpu, rss = usage.ru_utime + usage.ru_stime, _maxrss_mb(usage.ru_maxrss)
            else:  # pragma: no cover - Windows
                proc.wait()
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Proc(proc.returncode, wall, cpu, rss, out.read().decode(errors="replace"),
                    err.read().decode(errors="replace"), timed_out.is_set())


def worker_command(worker: str, spec: dict[str, Any]) -> list[str]:
    """``python -P <jaxinit/bench/WORKER.py> SPEC_JSON``: a worker run as a script (see the module doc)."""
    if worker not in WORKERS:
        raise ValueError(f"worker must be one of {', '.join(WORKERS)}; got {worker!r}.")
    return [sys.executable, "-P", str(Path(__file__).with_name(f"{worker}.py")), json.dumps(spec)]


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the children run: the same environment for every contender.

    Attributes:
      timeout: seconds per child process (a child past it is killed and reported as failed).
      openblas_threads: ``OPENBLAS_NUM_THREADS`` (see :func:`openblas_setting`).
      xla_workaround: add ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` to ``XLA_FLAGS``:
        with jaxlib 0.10.2 on a 2-core CPU, a jitted vmap of two or more batched QRs whose R factor is
        used (``jax.nn.initializers.orthogonal`` under ``vmap``, i.e. baseline (b)) never returns (every
        XLA thread idle, the caller waiting); this flag avoids it and did not change the sweep's speed.
      torch_threads: ``torch.set_num_threads`` for the PyTorch baseline (``None``: torch's default).
      same_xla_flags: give the Flax baselines and the ceiling the XLA flags jaxinit's sweep sets for
        itself (``jaxinit.runtime.XLA_FAST_COMPILE``); by default they run with JAX's defaults, as a
        Flax user's program would. The jaxinit sweep always runs with its own settings (its CLI, or
        ``configure_process`` in the python runner), which the report lists.
    """

    timeout: float = DEFAULT_TIMEOUT_S
    openblas_threads: int | None = None
    xla_workaround: bool = True
    torch_threads: int | None = None
    same_xla_flags: bool = False

    def env(self) -> dict[str, str]:
        # Every contender compiles cold: a persistent compilation cache left in the environment would
        # turn the second benchmark run's compile times into cache reads.
        env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        value = openblas_setting(self.openblas_threads)
        if value is not None:
            env["OPENBLAS_NUM_THREADS"] = value
        if self.xla_workaround and XLA_WORKAROUND not in env.get("XLA_FLAGS", ""):
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_WORKAROUND}".strip()
        if self.same_xla_flags and XLA_FAST_COMPILE.split("=")[0] not in env.get("XLA_FLAGS", ""):
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_FAST_COMPILE}".strip()
        return env

    def describe(self) -> dict[str, Any]:
        env = self.env()
        return {"openblas_num_threads": env.get("OPENBLAS_NUM_THREADS"), "xla_flags": env.get("XLA_FLAGS"),
                "torch_threads": self.torch_threads, "timeout_s": self.timeout}


def child_env(openblas_threads: int | None = None) -> dict[str, str]:
    """The environment of every child (:meth:`Settings.env` with the defaults but ``openblas_threads``)."""
    return Settings(openblas_threads=openblas_threads).env()


def openblas_setting(openblas_threads: int | None = None) -> str | None:
    """``None``: the environment's value (or 1 where unset); ``0``: the environment as is; ``n``: n."""
    if openblas_threads is None:
        return os.environ.get("OPENBLAS_NUM_THREADS", "1")
    if openblas_threads == 0:
        return os.environ.get("OPENBLAS_NUM_THREADS")
    return str(int(openblas_threads))


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("jaxinit")  # a top-level find_spec imports nothing
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def byte_compile_package() -> bool:
    """Byte-compile jaxinit's sources where no current bytecode exists, as ``pip install`` does.

    An editable install is not byte-compiled, and where ``PYTHONDONTWRITEBYTECODE`` is set Python
    never caches it: each fresh ``jaxinit`` process would compile the sources again (~0.1 s), a
    cost the installed package does not have. Returns whether every module compiled.
    """
    import compileall

    folder = _package_dir()
    return folder is not None and bool(compileall.compile_dir(str(folder), quiet=2))


def cli_available() -> bool:
    """Whether ``python -m jaxinit.cli`` exists (checked without importing jaxinit, hence JAX)."""
    folder = _package_dir()
    return folder is not None and (folder / "cli.py").is_file()


def torch_available() -> bool:
    """Whether the PyTorch baseline can run (``torch`` importable by this interpreter)."""
    return importlib.util.find_spec("torch") is not None


def median_run(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One run from several rounds of it: every numeric figure is its median over the rounds that
    finished; ``rounds`` counts them and ``end_to_end_s_each`` lists each round's end-to-end time."""
    ok = [r for r in rounds if r.get("available")]
    if not ok:
        return dict(rounds[-1])
    if len(ok) == 1 and len(rounds) == 1:
        return dict(ok[0])
    out = dict(ok[0])
    for key, value in ok[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = [r[key] for r in ok if isinstance(r.get(key), int | float) and not isinstance(r[key], bool)]
            if len(set(values)) > 1:  # a figure that moved between rounds (counts that did not keep their type)
                out[key] = float(statistics.median(values))
    out["rounds"] = len(ok)
    out["end_to_end_s_each"] = [r.get("end_to_end_s") for r in ok]
    return out
