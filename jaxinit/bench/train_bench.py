"""``jaxinit bench --train``: jaxinit's training engine against what users write instead (issue 13).

Per work (:data:`~jaxinit.bench.train_work.WORKS`: ``T0``, ``T1``, or the tiny ``quick``), each
contender trains every member end to end in a fresh process (import, compile, train, evaluate), timed
from outside (:mod:`~jaxinit.bench.harness`), compile and run times read from inside; all read the
same digits arrays from one ``.npz`` the parent writes (:func:`~jaxinit.bench.train_work.write_data`):

* ``jaxinit`` -- :mod:`~jaxinit.bench.train_jaxinit_worker`: one compiled program for every member;
* ``flax_loop`` -- baseline (a), :mod:`~jaxinit.bench.train_flax_worker`;
* ``jax_scan`` -- baseline (b), :mod:`~jaxinit.bench.train_jax_worker`;
* ``torch_loop`` -- baseline (c), :mod:`~jaxinit.bench.train_torch_worker`, on :data:`TORCH_THREADS` thread
  unless ``--torch-threads`` says otherwise: torch's default (one OpenMP thread per core, 2 here) spins
  when the cores are shared; measured on the 2-core machine under load 8, T0's first 50 steps took
  372 s on 2 threads against 18.5 s on one (CPU time 137 s against 8.5 s);
* the ceiling -- :mod:`~jaxinit.bench.train_ceiling_worker`, measured first and last (best of each
  rate kept: on a shared machine the load moves);
* compile-time flatness -- jaxinit's compile seconds at 100 and at 10,000 steps of the work's shape,
  each in its own fresh process (``compile_only``).

With ``repeats > 1`` the contenders run that many rounds, interleaved, each figure the median over
rounds (:func:`~jaxinit.bench.harness.median_run`). The report (:mod:`~jaxinit.bench.train_report`)
gives the ratios (baseline time / jaxinit time), the fraction of the matmul ceiling and the targets,
met or missed; a missed target is reported, never raised.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxinit.bench import harness
from jaxinit.bench.harness import Proc, Settings
from jaxinit.bench.report import environment, loadavg
from jaxinit.bench.train_report import TRAIN_REPORT_FORMAT, derive, format_train_table
from jaxinit.bench.train_work import FLATNESS_STEPS, TRAIN_RUNS, WORKS, TrainWork, work_names, write_data

__all__ = ["TORCH_THREADS", "TRAIN_FLAGS", "TRAIN_WORKERS", "measure_flatness", "measure_train",
           "measure_train_ceiling", "run_train_benchmark", "run_train_from_args", "train_worker_command"]

TORCH_THREADS = 1  # the PyTorch baseline's threads unless Settings.torch_threads is set (module docstring)
TRAIN_WORKERS = {"jaxinit": "train_jaxinit_worker", "flax_loop": "train_flax_worker", "jax_scan": "train_jax_worker",
                 "torch_loop": "train_torch_worker", "ceiling": "train_ceiling_worker"}


def train_worker_command(key: str, spec: dict[str, Any]) -> list[str]:
    """``python -P <jaxinit/bench/train_*_worker.py> SPEC_JSON`` (by path: see :mod:`~jaxinit.bench.harness`)."""
    if key not in TRAIN_WORKERS:
        raise ValueError(f"key must be one of {', '.join(TRAIN_WORKERS)}; got {key!r}.")
    return [sys.executable, "-P", str(Path(__file__).with_name(f"{TRAIN_WORKERS[key]}.py")), json.dumps(spec)]


def _failure(name: str, proc: Proc) -> dict[str, Any]:
    return {"name": name, "available": False, "reason": f"failed: {proc.failure()}", "end_to_end_s": proc.wall_s,
            "peak_rss_mb": proc.peak_rss_mb}


def _run(key: str, spec: dict[str, Any], settings: Settings) -> tuple[Proc, dict[str, Any] | None]:
    proc = harness.run_process(train_worker_command(key, spec), env=settings.env(), timeout=settings.timeout)
    return proc, (proc.result() if proc.returncode == 0 else None)


def measure_train(key: str, work: TrainWork, data: str | Path, *, settings: Settings | None = None,
                  block: int | None = None, evals_out: str | Path | None = None) -> dict[str, Any]:
    """One contender (``jaxinit``, ``flax_loop``, ``jax_scan``, ``torch_loop``) trains ``work`` end to end in a
    fresh process; its run (``available``, the outside and inside timings, the sanity figures) or the reason
    it did not run. ``evals_out`` (jaxinit only): where its worker saves every member's evaluations."""
    settings = settings or Settings()
    name = TRAIN_RUNS[key]
    if key == "torch_loop" and not harness.torch_available():
        return {"name": name, "available": False,
                "reason": "unavailable: torch is not importable (pip install 'jaxinit[bench]')"}
    spec = {**work.spec(), "data": str(data)}
    if key == "torch_loop":
        spec["threads"] = settings.torch_threads or TORCH_THREADS
    if key == "jaxinit" and block is not None:
        spec["block"] = block
    if key == "jaxinit" and evals_out is not None:
        spec["evals_out"] = str(evals_out)
    load = loadavg()
    proc, inner = _run(key, spec, settings)
    if inner is None:
        return _failure(name, proc)
    inner.pop("total_s", None)
    run = {"name": name, "available": True, **inner, "end_to_end_s": proc.wall_s, "cpu_s": proc.cpu_s,
           "peak_rss_mb": proc.peak_rss_mb, "load_before": load[0] if load else None}
    run["wall_without_compile_s"] = proc.wall_s - run["compile_s"]
    run["member_steps_per_s"] = work.members * work.steps / run["run_s"] if run["run_s"] > 0 else None
    return run


def measure_flatness(work: TrainWork, data: str | Path, *, settings: Settings | None = None,
                     steps: Sequence[int] = FLATNESS_STEPS, block: int | None = None) -> dict[str, Any]:
    """jaxinit's compile seconds of ``work``'s program at each step count in ``steps`` (a fresh process each)."""
    settings = settings or Settings()
    rows = []
    for n in steps:
        spec = {**work.spec(), "steps": int(n), "data": str(data), "compile_only": True}
        if block is not None:
            spec["block"] = block
        proc, inner = _run("jaxinit", spec, settings)
        rows.append({"steps": int(n), "available": inner is not None,
                     **({"compile_s": inner["compile_s"], "compile_cpu_s": inner["compile_cpu_s"],
                         "end_to_end_s": proc.wall_s} if inner
                        else {"reason": f"failed: {proc.failure()}"})})
    return {"rows": rows}


def measure_train_ceiling(works: Sequence[TrainWork], *, settings: Settings | None = None, matmul_n: int | None = None,
                          reps: int = 3, min_time: float = 0.2) -> dict[str, Any]:
    """The matmul rates: ``matmul_n``-square, and each work's minibatch x width x width."""
    settings = settings or Settings()
    spec = {"matmul_n": matmul_n, "reps": reps, "min_time": min_time,
            "shapes": [[w.batch, w.width, w.width] for w in works]}
    proc, inner = _run("ceiling", spec, settings)
    if inner is None:
        return {"available": False, "reason": f"failed: {proc.failure()}"}
    return {"available": True, **inner}


def _combine_ceilings(ceilings: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ok = [c for c in ceilings if c.get("available")]
    if not ok:
        return ceilings[-1] if ceilings else {"available": False, "reason": "not measured"}
    out = dict(ok[0])
    out["matmul_flops_per_s"] = max(c["matmul_flops_per_s"] for c in ok)
    out["matmul_flops_per_s_each"] = [c["matmul_flops_per_s"] for c in ok]
    out["shapes"] = [{"shape": s["shape"], "flops_per_s": max(c["shapes"][i]["flops_per_s"] for c in ok)}
                     for i, s in enumerate(ok[0]["shapes"])]
    out["measurements"] = len(ok)
    return out


def _median_flatness(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for i, row in enumerate(rounds[0]["rows"]):
        each = [r["rows"][i] for r in rounds if r["rows"][i].get("available")]
        rows.append(harness.median_run(each) if each else row)
    return {"rows": rows}


def run_train_benchmark(works: Sequence[str] = ("T0", "T1"), *, repeats: int = 1, settings: Settings | None = None,
                        log: Callable[[str], None] | None = None, ceiling_options: dict[str, Any] | None = None,
                        block: int | None = None, flatness_steps: Sequence[int] = FLATNESS_STEPS,
                        workdir: str | Path | None = None, evals_dir: str | Path | None = None) -> dict[str, Any]:
    """Run every contender on each work in ``works`` (names of :data:`WORKS`) and return the report.

    ``repeats``: rounds, interleaved (figures are medians over them); ``ceiling_options``: keyword
    arguments of :func:`measure_train_ceiling`; ``block``: jaxinit's seeds per vmap (``None``: the
    engine's default); ``flatness_steps``: the two step counts of the compile-time check (``()``: not
    measured); ``workdir``: where the data file goes (a temporary folder); ``evals_dir``: a folder where
    jaxinit's worker saves every member's evaluations as ``WORK.npz`` (last round); ``log``: called
    with a line before each step.
    """
    names = [str(n) for n in works]
    unknown = [n for n in names if n not in WORKS]
    if unknown or not names:
        raise ValueError(f"works must be some of {', '.join(WORKS)}; got {', '.join(unknown) or 'none'}.")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1; got {repeats!r}.")
    flatness_steps = tuple(flatness_steps)
    if flatness_steps and (len(flatness_steps) != 2 or not all(isinstance(n, int) and n >= 1 for n in flatness_steps)):
        raise ValueError(f"flatness_steps must be two step counts >= 1 (or empty); got {flatness_steps!r}.")
    settings = settings or Settings()
    log = log or (lambda line: None)
    harness.byte_compile_package()
    before = loadavg()
    started = time.perf_counter()
    chosen = [WORKS[n] for n in names]
    ceilings = []
    log("ceiling (1/2): matmul rates ...")
    ceilings.append(measure_train_ceiling(chosen, settings=settings, **(ceiling_options or {})))
    sections = []
    with tempfile.TemporaryDirectory(prefix="jaxinit-bench-train-", dir=workdir) as tmp:
        for work in chosen:
            data = Path(tmp) / f"{work.name}.npz"
            sizes = write_data(work, data)
            rounds: dict[str, list[dict[str, Any]]] = {key: [] for key in TRAIN_RUNS}
            flat_rounds = []
            for r in range(repeats):
                suffix = f" (round {r + 1}/{repeats})" if repeats > 1 else ""
                for key in TRAIN_RUNS:
                    log(f"{work.name}: {TRAIN_RUNS[key]}, {work.members} members x {work.steps} steps ...{suffix}")
                    evals_out = Path(evals_dir) / f"{work.name}.npz" if evals_dir and key == "jaxinit" else None
                    rounds[key].append(measure_train(key, work, data, settings=settings, block=block,
                                                     evals_out=evals_out))
                if flatness_steps:
                    log(f"{work.name}: jaxinit compile at {' and '.join(map(str, flatness_steps))} steps ...{suffix}")
                    flat_rounds.append(measure_flatness(work, data, settings=settings, steps=flatness_steps,
                                                        block=block))
            sections.append({"work": work.spec(), "data": sizes,
                             "runs": {key: harness.median_run(each) for key, each in rounds.items()},
                             "flatness": _median_flatness(flat_rounds) if flat_rounds else {"rows": []}})
    log("ceiling (2/2) ...")
    ceilings.append(measure_train_ceiling(chosen, settings=settings, **(ceiling_options or {})))
    report: dict[str, Any] = {
        "format": TRAIN_REPORT_FORMAT,
        "mode": "train",
        "environment": environment(settings, before),
        "repeats": repeats,
        "ceiling": _combine_ceilings(ceilings),
        "works": sections,
        "bench_wall_s": time.perf_counter() - started,
    }
    derive(report)
    return report


# The flags of ``jaxinit bench`` that apply to --train (the others belong to the sweep benchmark).
TRAIN_FLAGS = ("--train", "--work", "--quick", "--out", "--repeats", "--timeout", "--torch-threads",
               "--openblas-threads", "--no-xla-workaround", "--same-xla-flags", "--json")


def _usage_error(args: Any, given: Sequence[str]) -> str | None:
    if not args.train:
        return "--work and --quick belong to --train (jaxinit bench --train --work T0)" if (
            args.work or args.quick) else "--out belongs to --train (the sweep benchmark saves --json)"
    if args.catalog is not None:
        return "--train and --catalog are two benchmarks; run one at a time"
    if args.quick and args.work:
        return f"--quick replaces --work (a tiny work instead of T0/T1); got --work {args.work} too"
    other = [flag for flag in given if flag not in TRAIN_FLAGS]
    if other:
        return (f"{', '.join(other)} belong(s) to the sweep benchmark; --train takes {', '.join(TRAIN_FLAGS[1:])}")
    return None


def run_train_from_args(args: Any, given: Sequence[str] = ()) -> int:
    """``jaxinit bench --train``: run the works the flags name, print the table (and save it with ``--out``,
    the JSON with ``--json``); 0 unless a jaxinit run failed, 2 for flags that do not apply (``given``:
    the flags given a value other than their default)."""
    error = _usage_error(args, given)
    if error:
        print(f"jaxinit bench: {error}", file=sys.stderr)
        return 2

    def log(line: str) -> None:
        print(f"[bench --train] {line}", file=sys.stderr, flush=True)

    names = work_names("quick" if args.quick else (args.work or "both"))
    settings = Settings(timeout=args.timeout, openblas_threads=args.openblas_threads,
                        xla_workaround=not args.no_xla_workaround, torch_threads=args.torch_threads,
                        same_xla_flags=args.same_xla_flags)
    report = run_train_benchmark(names, repeats=args.repeats, settings=settings, log=log)
    text = format_train_table(report)
    print(text, end="")
    for path, content in ((args.out, text), (args.json, json.dumps(report, indent=2, default=str) + "\n")):
        if path:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"report saved to {path}")
    return 0 if all(s["runs"]["jaxinit"].get("available") for s in report["works"]) else 1
