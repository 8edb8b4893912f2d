"""The contenders, each measured end to end in a fresh process: jaxinit's sweep, the Flax loop and
``jit(vmap)`` baselines, the PyTorch loop, and the ceiling (the device's rates).

Each ``measure_*`` returns a JSON-able run: ``available`` and, when it ran, the outside figures
(``end_to_end_s``, ``cpu_s``, ``peak_rss_mb``), the inside ones (``compile_s``, ``run_s``, ...) and the
derived ``wall_without_compile_s`` and ``per_network_s``; when it did not, a ``reason``. A failed
child is reported, never raised.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxinit.bench import harness
from jaxinit.bench.harness import MiB, Proc, Settings
from jaxinit.bench.work import RUNS, Work

__all__ = ["combine_ceilings", "measure_ceiling", "measure_flax", "measure_jaxinit", "measure_torch"]


def _worker_failure(name: str, proc: Proc) -> dict[str, Any]:
    return {"name": name, "available": False, "reason": f"failed: {proc.failure()}",
            "end_to_end_s": proc.wall_s, "peak_rss_mb": proc.peak_rss_mb}


def _finish(run: dict[str, Any], work: Work, proc: Proc) -> dict[str, Any]:
    """Fill the derived timings of a run measured by ``proc``."""
    run.update(available=True, end_to_end_s=proc.wall_s, cpu_s=proc.cpu_s, peak_rss_mb=proc.peak_rss_mb)
    run["wall_without_compile_s"] = proc.wall_s - run["compile_s"]
    run["per_network_s"] = run["run_s"] / work.networks
    peak = run.pop("device_peak_bytes", None)
    run["device_peak_mb"] = peak / MiB if peak else None
    return run


def measure_jaxinit(work: Work, *, runner: str = "auto", plots: bool = False, settings: Settings | None = None,
                    workdir: str | Path | None = None) -> dict[str, Any]:
    """The sweep end to end in a fresh process; compile and run time from its ``meta.json``.

    ``runner``: ``"cli"`` (``python -m jaxinit.cli sweep``), ``"python"`` (the
    :mod:`~jaxinit.bench.sweep_worker`, which also reports the device's peak memory), or ``"auto"``
    (the CLI if present).
    """
    settings = settings or Settings()
    if runner == "auto":
        runner = "cli" if harness.cli_available() else "python"
    if runner not in ("cli", "python"):
        raise ValueError(f"runner must be 'auto', 'cli' or 'python'; got {runner!r}.")
    with tempfile.TemporaryDirectory(prefix="jaxinit-bench-", dir=workdir) as tmp:
        config_path, out_dir = Path(tmp) / "bench.toml", Path(tmp) / "results"
        config_path.write_text(work.toml(out_dir))
        if runner == "cli":
            cmd = [sys.executable, "-m", "jaxinit.cli", "sweep", str(config_path), "--out", str(out_dir), "--fresh",
                   "--quiet"] + ([] if plots else ["--no-plots"])
        else:
            cmd = harness.worker_command("sweep_worker", {"config": str(config_path), "out": str(out_dir)})
        proc = harness.run_process(cmd, env=settings.env(), timeout=settings.timeout)
        name = f"jaxinit sweep ({runner})"
        if proc.returncode != 0:
            return _worker_failure(name, proc)
        try:
            meta = json.loads((out_dir / "meta.json").read_text())
            timings = meta["timings"]
        except (OSError, ValueError, KeyError) as err:
            return {"name": name, "available": False, "reason": f"failed: no timings in meta.json ({err})",
                    "end_to_end_s": proc.wall_s, "peak_rss_mb": proc.peak_rss_mb}
        inner = proc.result() or {}
        device = meta.get("device") or {}
        run: dict[str, Any] = {
            "name": name,
            "runner": runner,
            "command": (f"python -m jaxinit.cli sweep CONFIG --out DIR --fresh --quiet{'' if plots else ' --no-plots'}"
                        if runner == "cli" else "python -P jaxinit/bench/sweep_worker.py SPEC"),
            "compile_s": float(sum(timings.get("compile_s", {}).values())),
            "run_s": float(sum(timings.get("run_s", {}).values())),
            "engine_wall_s": timings.get("wall_s"),
            "import_s": inner.get("import_s"),
            "device_peak_bytes": inner.get("device_peak_bytes"),
            "backend": device.get("backend"),
            "chunk_plan": meta.get("chunk_plan"),
            "xla_flags": device.get("xla_flags"),
            "device_count": device.get("local_device_count"),
        }
        run.update(_q_from_results(out_dir, work))
        return _finish(run, work, proc)


def _q_from_results(folder: Path, work: Work) -> dict[str, dict[str, float] | None]:
    """Median over seeds of the first and last layers' q per initializer, from ``arrays.npz`` (a sanity check)."""
    try:
        import numpy as np

        with np.load(folder / "arrays.npz") as arrays:
            q = arrays["q"]  # (program, initializer, grid_point, seed, layer)
        return {key: {name: float(np.median(q[0, i, 0, :, layer])) for i, name in enumerate(work.inits)}
                for key, layer in (("q_first", 0), ("q_last", work.depth - 1))}
    except Exception:  # noqa: BLE001 - a sanity figure, never a reason to fail the benchmark
        return {"q_first": None, "q_last": None}


def _measure_worker(worker: str, name: str, spec: dict[str, Any], work: Work, settings: Settings) -> dict[str, Any]:
    proc = harness.run_process(harness.worker_command(worker, spec), env=settings.env(), timeout=settings.timeout)
    inner = proc.result() if proc.returncode == 0 else None
    if inner is None:
        return _worker_failure(name, proc)
    run = {"name": name, "command": f"python -P jaxinit/bench/{worker}.py SPEC", **inner}
    run.pop("total_s", None)
    return _finish(run, work, proc)


def measure_flax(work: Work, mode: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """Baseline (a) (``mode="loop"``) or (b) (``mode="vmap"``) end to end in a fresh process."""
    if mode not in ("loop", "vmap"):
        raise ValueError(f"mode must be 'loop' or 'vmap'; got {mode!r}.")
    spec = {**work.as_dict(), "mode": mode}
    return _measure_worker("flax_worker", RUNS[f"flax_{mode}"], spec, work, settings or Settings())


def measure_torch(work: Work, *, settings: Settings | None = None) -> dict[str, Any]:
    """Baseline (c) end to end in a fresh process, or ``available: False`` when torch is missing."""
    name = RUNS["torch_loop"]
    if not harness.torch_available():
        return {"name": name, "available": False,
                "reason": "unavailable: torch is not importable (pip install 'jaxinit[bench]')"}
    settings = settings or Settings()
    return _measure_worker("torch_worker", name, {**work.as_dict(), "threads": settings.torch_threads}, work, settings)


def measure_ceiling(work: Work, *, matmul_n: int | None = None, rng_n: int | None = None, reps: int = 3,
                    min_time: float = 0.2, settings: Settings | None = None) -> dict[str, Any]:
    """The device's matmul and random-number rates (best of ``reps``), and the work's noise groups."""
    settings = settings or Settings()
    spec = {**work.as_dict(), "matmul_n": matmul_n, "rng_n": rng_n, "reps": reps, "min_time": min_time}
    proc = harness.run_process(harness.worker_command("ceiling_worker", spec), env=settings.env(),
                               timeout=settings.timeout)
    inner = proc.result() if proc.returncode == 0 else None
    if inner is None:
        return {"available": False, "reason": f"failed: {proc.failure()}"}
    return {"available": True, **inner}


def combine_ceilings(ceilings: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The best of several ceiling measurements: the max of each rate."""
    ok = [c for c in ceilings if c.get("available")]
    if not ok:
        return ceilings[-1] if ceilings else {"available": False, "reason": "not measured"}
    out = dict(ok[0])
    for key in ("matmul_flops_per_s", "work_matmul_flops_per_s"):
        out[key] = max(c[key] for c in ok)
    for key in ("rng_per_s", "rng_per_s_large", "rng_per_s_work"):
        if all(key in c for c in ok):
            out[key] = {k: max(c[key][k] for c in ok) for k in ok[0][key]}
    out["measurements"] = len(ok)
    out["matmul_flops_per_s_each"] = [c["matmul_flops_per_s"] for c in ok]
    return out
