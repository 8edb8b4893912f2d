"""The benchmark's two modes: the comparison (every contender on one work, in rounds) and depth growth
(the sweep's compile time and peak memory per depth). Each returns a JSON-able report dict."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from jaxinit.bench.contenders import combine_ceilings, measure_ceiling, measure_flax, measure_jaxinit, measure_torch
from jaxinit.bench.harness import Settings, byte_compile_package, median_run
from jaxinit.bench.report import (
    GROWTH_TARGET,
    REPORT_FORMAT,
    compute_ratios,
    environment,
    evaluate_targets,
    fill_ceiling_fractions,
    loadavg,
    note_work,
    target_set,
)
from jaxinit.bench.work import BASELINES, RUNS, Work

__all__ = ["GROWTH_DEPTHS", "GROWTH_SEEDS", "run_benchmark", "run_growth"]

GROWTH_DEPTHS = (10, 100, 1000)
GROWTH_SEEDS = 4  # one seed block of the engine: growth measures compile time and memory, not throughput


def run_benchmark(work: Work | None = None, *, runner: str = "auto", skip: Iterable[str] = (), plots: bool = False,
                  settings: Settings | None = None, ceiling_options: dict[str, Any] | None = None,
                  log: Callable[[str], None] | None = None, repeats: int = 1) -> dict[str, Any]:
    """Run every contender on ``work`` one after another and return the report (a JSON-able dict).

    With ``repeats > 1`` the contenders run that many rounds, interleaved, and each figure of a run
    is its median over the rounds (:func:`median_run`).

    The ceiling is measured twice, first and last, and the best of each rate kept (on a shared machine
    the load moves). ``skip``: run keys (``flax_loop``, ``flax_vmap``, ``torch_loop``, ``ceiling``) to
    leave out; ``log``: called with a line before each step (progress).
    """
    work, settings = work or Work(), settings or Settings()
    skip = set(skip)
    unknown = skip - set(BASELINES) - {"ceiling"}
    if unknown:
        raise ValueError(f"skip takes {', '.join((*BASELINES, 'ceiling'))}; got {', '.join(sorted(unknown))}.")
    log = log or (lambda line: None)
    bytecode = byte_compile_package()
    before = loadavg()
    started = time.perf_counter()
    ceilings = []
    if "ceiling" not in skip:
        log("ceiling (1/2): matmul and random-number rates ...")
        ceilings.append(measure_ceiling(work, **(ceiling_options or {}), settings=settings))
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("jaxinit", lambda: measure_jaxinit(work, runner=runner, plots=plots, settings=settings)),
        ("flax_loop", lambda: measure_flax(work, "loop", settings=settings)),
        ("flax_vmap", lambda: measure_flax(work, "vmap", settings=settings)),
        ("torch_loop", lambda: measure_torch(work, settings=settings)),
    ]
    rounds: dict[str, list[dict[str, Any]]] = {}
    for r in range(repeats):  # interleaved, so a change of load hits every contender alike
        for key, step in steps:
            if key in skip:
                rounds[key] = [{"name": RUNS[key], "available": False, "reason": "skipped (--skip)"}]
                continue
            log(f"{RUNS[key] if key != 'jaxinit' else f'jaxinit sweep: {work.networks} networks'} ..."
                + (f" (round {r + 1}/{repeats})" if repeats > 1 else ""))
            rounds.setdefault(key, []).append(step())
    runs = {key: median_run(each) for key, each in rounds.items()}
    if "ceiling" not in skip:
        log("ceiling (2/2) ...")
        ceilings.append(measure_ceiling(work, **(ceiling_options or {}), settings=settings))
    ceiling = combine_ceilings(ceilings) if ceilings else {"available": False, "reason": "skipped (--skip)"}
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "mode": "compare",
        "work": work.as_dict(),
        "environment": {**environment(settings, before), "jaxinit_bytecode": bytecode},
        "runs": runs,
        "ceiling": ceiling,
        "bench_wall_s": time.perf_counter() - started,
    }
    fill_ceiling_fractions(report)
    report["ratios"] = compute_ratios(runs)
    report["target_set"] = target_set(work)
    report["targets"] = evaluate_targets(work, report["ratios"])
    notes = [note_work(work)]
    if any((r.get("fraction_of_ceiling") or 0) > 1 for r in runs.values()):
        notes.append("a fraction of the ceiling above 100% means the run beat the rates measured in the ceiling "
                     "runs (load moved between them on a shared machine, or small draws ran faster than the "
                     "large-array RNG rate)")
    report["notes"] = [n for n in notes if n]
    return report



def run_growth(work: Work | None = None, depths: Sequence[int] = GROWTH_DEPTHS, *,
               settings: Settings | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Compile time and peak memory of the sweep (python runner, fresh process each) per depth."""
    work, settings = work or Work(seeds=GROWTH_SEEDS), settings or Settings()
    log = log or (lambda line: None)
    depths = sorted(set(int(d) for d in depths))
    if not depths or depths[0] < 1:
        raise ValueError(f"depths must be integers >= 1; got {depths!r}.")
    byte_compile_package()
    before = loadavg()
    started = time.perf_counter()
    rows = []
    for depth in depths:
        log(f"growth: depth {depth} ...")
        w = dataclasses.replace(work, depth=depth)
        run = measure_jaxinit(w, runner="python", settings=settings)
        rows.append({"depth": depth, **run})
    first, last = rows[0], rows[-1]

    def ratio(field):
        a, b = first.get(field), last.get(field)
        return b / a if a and b is not None and first.get("available") and last.get("available") else None

    ratios = {"compile": ratio("compile_s"), "peak_rss": ratio("peak_rss_mb"), "device_peak": ratio("device_peak_mb"),
              "run_per_layer": None}
    if first.get("available") and last.get("available") and first.get("run_s"):
        ratios["run_per_layer"] = (last["run_s"] / last["depth"]) / (first["run_s"] / first["depth"])
    targets = []
    for key, text in (("compile", "compile time"), ("peak_rss", "peak memory (RSS)"),
                      ("device_peak", "peak device memory")):
        if key == "device_peak" and ratios[key] is None:
            continue
        measured = ratios[key]
        targets.append({"target": f"{text} at depth {last['depth']} within {GROWTH_TARGET:g}x of depth "
                                  f"{first['depth']}", "kind": key, "at_most": GROWTH_TARGET, "measured": measured,
                        "met": None if measured is None else measured <= GROWTH_TARGET})
    return {
        "format": REPORT_FORMAT,
        "mode": "growth",
        "work": {**work.as_dict(), "depth": None, "depths": depths},
        "environment": environment(settings, before),
        "growth": rows,
        "ratios": ratios,
        "targets": targets,
        "notes": [],
        "bench_wall_s": time.perf_counter() - started,
    }


