"""The training benchmark's derived figures (ratios, fractions of the matmul ceiling, targets, compile-time
flatness) and its text.

Ratios are baseline time / jaxinit time (> 1: jaxinit ahead), on the end-to-end wall time of the fresh
processes (the targets' measure), and beside it without compile, on the warm run alone, and on CPU time
(steadier than wall time on a loaded machine). The matmul ceiling of a work is its training FLOPs at
the measured large-matmul rate, ``ideal = members x steps x 3 x forward FLOPs / peak``; a run's
fraction of it is ``ideal / run_s`` (its warm run, which also evaluates: the fraction is conservative),
and ``with evaluations`` adds the evaluations' forward FLOPs to the ideal.
"""

from __future__ import annotations

import math
from typing import Any

from jaxinit.bench.table import _env_line, _grid, _mark, _mb, _pct, _rate, _s, _x
from jaxinit.bench.train_work import (
    FLATNESS_STEPS,
    FLATNESS_TARGET,
    TRAIN_BASELINES,
    TRAIN_LEGEND,
    TRAIN_RUNS,
    TRAIN_TARGETS,
    TrainWork,
)

__all__ = ["TRAIN_REPORT_FORMAT", "derive", "format_train_table", "train_ratios", "train_targets"]

TRAIN_REPORT_FORMAT = "jaxinit-bench-train/1"
RATIO_FIELDS = (("end_to_end", "end_to_end_s"), ("without_compile", "wall_without_compile_s"), ("run", "run_s"),
                ("cpu_time", "cpu_s"))


def train_ratios(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """``{baseline: {"end_to_end": b / j, "without_compile": ..., "run": ..., "cpu_time": ...}}``; ``None``
    where either side did not run."""
    j = runs.get("jaxinit") or {}
    out = {}
    for key in TRAIN_BASELINES:
        b = runs.get(key) or {}
        out[key] = {name: (b[field] / j[field] if j.get("available") and b.get("available") and j.get(field)
                           and b.get(field) is not None else None) for name, field in RATIO_FIELDS}
    return out


def train_targets(name: str, ratios: dict[str, dict[str, float | None]],
                  ceiling_fraction: float | None) -> list[dict[str, Any]]:
    """Issue 13's targets of the work ``name`` beside the measured figures (``met``: True, False, or None
    when not measured); none for a work without targets (``quick``)."""
    out = []
    for key, bound in TRAIN_TARGETS.get(name, ()):
        if key == "ceiling":
            text, measured = "jaxinit's warm run reaches the matmul ceiling", ceiling_fraction
        else:
            text, measured = f"end to end faster than {TRAIN_RUNS[key]}", (ratios.get(key) or {}).get("end_to_end")
        out.append({"target": text, "kind": key, "at_least": bound, "measured": measured,
                    "met": None if measured is None else measured >= bound})
    return out


def _flatness(section: dict[str, Any]) -> dict[str, Any]:
    """Compile CPU seconds at the larger step count / at the smaller (the rows' two step counts), and the
    same ratio of wall seconds. The target is held to the CPU seconds: compiling is the process's own
    work, which CPU time measures whatever else shares the cores, where wall time moves with the load."""
    rows = sorted(section["flatness"]["rows"], key=lambda r: r["steps"])
    low, high = (rows[0], rows[-1]) if len(rows) == 2 else ({}, {})

    def ratio(field):
        ok = low.get("available") and high.get("available") and low.get(field) and high.get(field) is not None
        return high[field] / low[field] if ok else None

    cpu = ratio("compile_cpu_s")
    return {"ratio": cpu, "wall_ratio": ratio("compile_s"), "at_most": FLATNESS_TARGET,
            "met": None if cpu is None else cpu <= FLATNESS_TARGET,
            "steps": [r["steps"] for r in rows] or list(FLATNESS_STEPS)}


def derive(report: dict[str, Any]) -> None:
    """Fill each work's FLOPs, ideal times, fractions of the ceiling, ratios, targets and flatness."""
    ceiling = report.get("ceiling") or {}
    peak = ceiling.get("matmul_flops_per_s") if ceiling.get("available") else None
    for section in report["works"]:
        work, d = TrainWork.from_spec(section["work"]), section["data"]
        flops = work.flops(d["in_dim"], d["out_dim"], d["n_train"], d["n_test"])
        section["flops"] = flops
        section["ideal_train_s"] = flops["train"] / peak if peak else None
        section["ideal_with_eval_s"] = (flops["train"] + flops["eval"]) / peak if peak else None
        for run in section["runs"].values():
            if not run.get("available") or not run.get("run_s"):
                continue
            run["train_flops_per_s"] = flops["train"] / run["run_s"]
            run["fraction_of_ceiling"] = section["ideal_train_s"] / run["run_s"] if peak else None
            run["fraction_with_eval"] = section["ideal_with_eval_s"] / run["run_s"] if peak else None
        section["ratios"] = train_ratios(section["runs"])
        section["flatness"].update(_flatness(section))
        own = section["runs"].get("jaxinit") or {}
        section["targets"] = train_targets(work.name, section["ratios"], own.get("fraction_of_ceiling"))
        low, high = section["flatness"]["steps"][0], section["flatness"]["steps"][-1]
        section["flatness_target"] = {"target": f"jaxinit's compile (CPU s) at {high:,} steps within "
                                                f"{FLATNESS_TARGET:g}x of {low:,}",
                                      "at_most": FLATNESS_TARGET, "measured": section["flatness"]["ratio"],
                                      "met": section["flatness"]["met"]}


def _work_line(section: dict[str, Any]) -> list[str]:
    w, d = section["work"], section["data"]
    return [f"jaxinit bench --train, work {w['name']}: digits ({d['n_train']} train / {d['n_test']} test examples, "
            f"{d['in_dim']} features, {d['out_dim']} classes); ReLU MLP depth {w['depth']} width {w['width']}; "
            f"minibatch {w['batch']}; {len(w['inits'])} initializers x {w['seeds']} seeds = {w['members']} members; "
            f"{w['steps']} steps of SGD (learning rate {w['learning_rate']:g}, momentum {w['momentum']:g}); "
            f"evaluation on the training and test sets at step 0 and every {w['eval_every']} steps "
            f"({w['evaluations']} per member)",
            f"initializers: {', '.join(w['inits'])}"]


def _format_section(section: dict[str, Any], ceiling: dict[str, Any]) -> list[str]:
    runs, w = section["runs"], section["work"]
    lines = _work_line(section)
    own = runs.get("jaxinit") or {}
    if own.get("available"):
        lines.append(f"jaxinit's process: {own.get('device_count')} JAX CPU device(s) sharing the seeds, "
                     f"{own.get('block')} seeds per call ({own.get('block', 0) * len(w['inits'])} members) trained "
                     f"{own.get('group', '?')} at a time under vmap, "
                     f"XLA_FLAGS={own.get('xla_flags') or '(none)'}")
    torch = runs.get("torch_loop") or {}
    if torch.get("available"):
        lines.append(f"torch: {torch.get('torch_version')}, {torch.get('torch_threads')} thread(s)")
    lines.append("")
    header = ("run", "end to end", "import", "compile", "w/o compile", "run", "member-steps/s", "peak RSS",
              "CPU time", "of ceiling", "load")
    rows, unavailable = [], []
    for key, label in TRAIN_RUNS.items():
        run = runs.get(key) or {}
        if not run.get("available"):
            unavailable.append(f"  {label}: {run.get('reason', 'not run')}")
            continue
        steps = run.get("member_steps_per_s")
        rows.append((label, _s(run.get("end_to_end_s")), _s(run.get("import_s")),
                     "none" if key == "torch_loop" else _s(run.get("compile_s")), _s(run.get("wall_without_compile_s")),
                     _s(run.get("run_s")), "-" if steps is None else f"{steps:,.0f}", _mb(run.get("peak_rss_mb")),
                     _s(run.get("cpu_s")), _pct(run.get("fraction_of_ceiling")),
                     "-" if run.get("load_before") is None else f"{run['load_before']:.1f}"))
    lines += _grid(header, rows)
    lines += unavailable
    lines += [f"  {TRAIN_RUNS[k]}: {TRAIN_LEGEND[k]}" for k in TRAIN_RUNS if (runs.get(k) or {}).get("available")]
    lines.append("  run = training and evaluations, warm; of ceiling = training FLOPs at the matmul peak / run; "
                 "load = the 1-minute load average as the run started (2 cores: above 2, other work shared them)")
    lines.append("")
    flops = section["flops"]
    text = (f"work: {_rate(flops['train'], 'FLOP')} of training matmuls (3 x forward per member-step), "
            f"{_rate(flops['eval'], 'FLOP')} of evaluation forwards")
    if section.get("ideal_train_s"):
        text += (f"; at the matmul peak {_s(section['ideal_train_s'])} (with evaluations "
                 f"{_s(section['ideal_with_eval_s'])})")
    lines.append(text)
    shapes = {tuple(s["shape"]): s["flops_per_s"] for s in ceiling.get("shapes") or []}
    rate = shapes.get((w["batch"], w["width"], w["width"]))
    if ceiling.get("available"):
        lines.append(f"ceiling ({ceiling.get('backend')}, {ceiling.get('device_kind')}): matmul "
                     f"{ceiling['matmul_n']}^2 f32 {_rate(ceiling['matmul_flops_per_s'], 'FLOP/s')}; "
                     "at the work's minibatch shape "
                     f"{w['batch']}x{w['width']}x{w['width']} {_rate(rate, 'FLOP/s')}")
        if own.get("fraction_with_eval") is not None:
            lines.append(f"  jaxinit: {_pct(own['fraction_of_ceiling'])} of the ceiling on training FLOPs, "
                         f"{_pct(own['fraction_with_eval'])} counting the evaluations' FLOPs too")
    else:
        lines.append(f"ceiling: {ceiling.get('reason', 'not measured')}")
    lines.append("")
    ratio_rows = []
    for key in TRAIN_BASELINES:
        r = section["ratios"].get(key) or {}
        ratio_rows.append((f"vs {TRAIN_RUNS[key]}", *(_x(r.get(name)) for name, _ in RATIO_FIELDS)))
    lines.append("ratios: baseline time / jaxinit time (> 1: jaxinit faster)")
    lines += _grid(("jaxinit", "end to end", "w/o compile", "run", "CPU time"), ratio_rows)
    lines.append("")
    flat = section["flatness"]
    cells = ", ".join(f"{r['steps']:,} steps {_s(r.get('compile_cpu_s'))} CPU ({_s(r.get('compile_s'))} wall)"
                      if r.get("available") else f"{r['steps']:,} steps: {r.get('reason')}" for r in flat["rows"])
    lines.append(f"jaxinit compile, each in a fresh process: {cells}; ratio {_x(flat.get('ratio'))} in CPU "
                 f"seconds ({_x(flat.get('wall_ratio'))} wall)" if cells
                 else "jaxinit compile time at two step counts: not measured")
    lines.append("")
    rows = []
    for t in [*section["targets"], section["flatness_target"]]:
        bound = f">= {t['at_least']:g}" if "at_least" in t else f"<= {t['at_most']:g}"
        is_fraction = t.get("kind") == "ceiling"
        rows.append((t["target"], bound + ("" if is_fraction else "x"),
                     _pct(t.get("measured")) if is_fraction else _x(t.get("measured")), _mark(t.get("met"))))
    title = f"targets (issue 13, work {w['name']})" if section["targets"] else \
        f"targets: none for work {w['name']} (issue 13 sets them for T0 and T1); compile-time flatness:"
    lines += [title, *_grid(("", "target", "measured", ""), rows)]
    lines += ["", *_format_sanity(section)]
    return lines


def _format_sanity(section: dict[str, Any]) -> list[str]:
    runs = section["runs"]
    keys = [k for k in TRAIN_RUNS if (runs.get(k) or {}).get("available") and runs[k].get("final_train_loss")]
    if not keys:
        return []
    rows = []
    for name in section["work"]["inits"]:
        cells = []
        for k in keys:
            loss = runs[k]["final_train_loss"].get(name, math.nan)
            acc = (runs[k].get("final_test_accuracy") or {}).get(name, math.nan)
            cells.append(f"{loss:.2g} / {100 * acc:.1f}%")
        rows.append((name, *cells))
    short = {"jaxinit": "jaxinit", "flax_loop": "(a) flax", "jax_scan": "(b) jax", "torch_loop": "(c) torch"}
    return ["sanity: final training loss / test accuracy, mean over seeds (the same training: the columns agree "
            "up to seed noise; each contender draws its own weights and minibatch order)",
            *_grid(("", *(short[k] for k in keys)), rows)]


def format_train_table(report: dict[str, Any]) -> str:
    """The training benchmark's report as text, one block per work."""
    env = report.get("environment") or {}
    lines = [f"machine: {_env_line(env)}"]
    if report.get("repeats", 1) > 1:
        lines.append(f"each figure: the median of {report['repeats']} interleaved rounds")
    lines.append("")
    for i, section in enumerate(report["works"]):
        if i:
            lines += ["", "=" * 100, ""]
        lines += _format_section(section, report.get("ceiling") or {})
    return "\n".join(lines).rstrip() + "\n"
