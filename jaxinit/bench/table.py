"""The report as text: the runs, the ceiling, the ratios beside their targets, a sanity check that the
contenders computed the same thing (or, in growth mode, the per-depth table)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from jaxinit.bench.work import BASELINES, LEGEND, RUNS

__all__ = ["format_table"]

def _s(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f} s"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.0f} us"


def _mb(x: float | None) -> str:
    return "-" if x is None else (f"{x / 1024:.2f} GiB" if x >= 1024 else f"{x:.0f} MiB")


def _x(x: float | None) -> str:
    return "-" if x is None else (f"{x:.2f}x" if x < 10 else f"{x:.1f}x")


def _pct(x: float | None) -> str:
    return "-" if x is None else (f"{100 * x:.1f}%" if x < 0.1 else f"{100 * x:.0f}%")


def _rate(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.1f} {prefix}{unit}"
    return f"{x:.0f} {unit}"


def _mark(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "MISSED")


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]], first_left: bool = True) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [str(c).ljust(w) if (i == 0 and first_left) else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _env_line(env: dict[str, Any]) -> str:
    load = env.get("loadavg_before")
    after = env.get("loadavg_after")
    text = f"{env.get('cpu_count')} CPUs, python {env.get('python')}"
    if load:
        text += f"; load average {load[0]:.2f} before" + (f", {after[0]:.2f} after" if after else "")
    text += f"; OPENBLAS_NUM_THREADS={env.get('openblas_num_threads') or '(unset)'}"
    if env.get("xla_flags"):
        text += f"; XLA_FLAGS={env['xla_flags']}"
    if env.get("torch_threads"):
        text += f"; torch threads {env['torch_threads']}"
    return text


def format_table(report: dict[str, Any]) -> str:
    """The report as text: runs, ceiling, ratios and targets (or the growth table in growth mode)."""
    if report.get("mode") == "growth":
        return _format_growth(report)
    work, runs = report["work"], report["runs"]
    probes = "forward + gradient probes" if work.get("gradients") else "forward probes"
    lines = [f"jaxinit bench: {len(work['inits'])} initializers x {work['seeds']} seeds = {work['networks']} networks; "
             f"depth {work['depth']}, width {work['width']}, batch {work['batch']}, {probes}",
             f"initializers: {', '.join(work['inits'])}",
             f"machine: {_env_line(report.get('environment', {}))}"]
    own = runs.get("jaxinit") or {}
    if own.get("available"):
        lines.append(f"jaxinit's own process settings: {own.get('device_count')} JAX device(s) sharing the seeds; "
                     f"XLA_FLAGS={own.get('xla_flags') or '(none)'}")
    lines.append("")
    header = ("run", "end to end", "compile", "w/o compile", "warm run", "per network", "peak RSS", "CPU time",
              "FLOP/s", "of ceiling")
    rows, unavailable = [], []
    for key in RUNS:
        run = runs.get(key)
        if run is None:
            continue
        label = run.get("name", RUNS[key]) if key == "jaxinit" else RUNS[key]
        if not run.get("available"):
            unavailable.append(f"{label}: {run.get('reason', 'not run')}")
            continue
        compile_s = None if key == "torch_loop" else run.get("compile_s")
        gflops = run.get("achieved_flops_per_s")
        rows.append((label, _s(run.get("end_to_end_s")), "none" if key == "torch_loop" else _s(compile_s),
                     _s(run.get("wall_without_compile_s")), _s(run.get("run_s")), _s(run.get("per_network_s")),
                     _mb(run.get("peak_rss_mb")), _s(run.get("cpu_s")),
                     _rate(gflops, ""),
                     _pct(run.get("fraction_of_ceiling") if run.get("fraction_of_ceiling") is not None
                          else run.get("fraction_of_matmul_peak"))))
    lines += _grid(header, rows)
    lines += [f"  {u}" for u in unavailable]
    lines += [f"  {RUNS[k]}: {LEGEND[k]}" for k in BASELINES if (runs.get(k) or {}).get("available")]
    lines.append("  per network = warm run / networks; of ceiling = ideal time (FLOPs at the matmul peak + random "
                 "numbers at the RNG rates) / per network (torch: fraction of the matmul peak only)")
    jx = runs.get("jaxinit") or {}
    if jx.get("device_peak_mb"):
        lines.append(f"  jaxinit device peak memory: {_mb(jx['device_peak_mb'])}")
    lines.append("")
    c = report.get("ceiling") or {}
    if c.get("available"):
        rng = c.get("rng_per_s") or {}
        lines.append(f"ceiling ({c.get('backend')}, {c.get('device_kind')}): matmul {c['matmul_n']}^2 f32 HIGHEST "
                     f"{_rate(c.get('matmul_flops_per_s'), 'FLOP/s')}; at the work's shape "
                     f"{'x'.join(map(str, c.get('work_matmul_shape', [])))} "
                     f"{_rate(c.get('work_matmul_flops_per_s'), 'FLOP/s')}")
        large, work_rng = c.get("rng_per_s_large") or {}, c.get("rng_per_s_work") or {}
        if large and work_rng:
            lines.append("  random numbers: " + ", ".join(
                f"{k} {_rate(large[k], '/s')} (one large array) / {_rate(work_rng[k], '/s')} (work-shaped draws, "
                f"{c.get('rng_devices', 1)} device(s) side by side)" for k in rng))
        else:
            lines.append("  random numbers: " + ", ".join(f"{k} {_rate(v, '/s')}" for k, v in rng.items()))
        groups = c.get("noise_groups")
        if groups:
            text = "; ".join(f"{{{', '.join(g['members'])}}}" for g in groups)
            streams = c.get("bit_streams")
            shared = f"; {streams} random-bits stream(s) per seed and layer between them" if streams else ""
            lines.append(f"  sweep noise groups: {text}{shared}")
    else:
        lines.append(f"ceiling: {c.get('reason', 'not measured')}")
    flops = work.get("flops_per_network")
    rn = {k: r.get("random_numbers_per_network") for k, r in runs.items() if r.get("available")}
    text = f"work per network: {_rate(flops, 'FLOP')} of matmuls"
    if rn.get("jaxinit"):
        text += f"; random numbers {_rate(rn['jaxinit'], '')} (jaxinit, shared noise)"
    base = next((rn[k] for k in ("flax_loop", "flax_vmap") if rn.get(k)), None)
    if base:
        text += f" vs {_rate(base, '')} (baselines)"
    lines += [text, ""]

    ratio_rows = []
    for key in BASELINES:
        r = (report.get("ratios") or {}).get(key) or {}
        if all(v is None for v in r.values()):
            ratio_rows.append((f"vs {RUNS[key]}", "-", "-", "-", "-"))
            continue
        ratio_rows.append((f"vs {RUNS[key]}", _x(r.get("end_to_end")), _x(r.get("without_compile")),
                           _x(r.get("per_network")), _x(r.get("cpu_time"))))
    lines.append("ratios: baseline time / jaxinit time (> 1: jaxinit faster)")
    lines += _grid(("jaxinit", "end to end", "w/o compile", "warm per network", "CPU time"), ratio_rows)
    lines.append("")
    lines += _format_targets(report)
    sanity = _format_sanity(report)
    if sanity:
        lines += ["", *sanity]
    for note in report.get("notes") or []:
        lines.append(f"note: {note}")
    return "\n".join(lines).rstrip() + "\n"


def _format_targets(report: dict[str, Any]) -> list[str]:
    which = {"default": "default work", "256_seeds": "256 seeds", None: "depth growth"}[report.get("target_set")]
    rows = []
    for t in report.get("targets") or []:
        bound = f">= {t['at_least']:g}x" if "at_least" in t else f"<= {t['at_most']:g}x"
        rows.append((t["target"], bound, _x(t.get("measured")), _mark(t.get("met"))))
    if not rows:
        return []
    return [f"targets ({which}, set on a 2-core CPU)", *_grid(("", "target", "measured", ""), rows)]


def _format_sanity(report: dict[str, Any]) -> list[str]:
    """Final-layer q per initializer and run: the contenders computed the same thing."""
    runs = report["runs"]
    keys = [k for k in RUNS if (runs.get(k) or {}).get("available") and runs[k].get("q_last")]
    if not keys:
        return []
    rows = []
    for name in report["work"]["inits"]:
        cells = []
        for k in keys:
            first = (runs[k].get("q_first") or {}).get(name)
            last = runs[k]["q_last"].get(name, math.nan)
            cells.append(f"{'-' if first is None else format(first, '.3g')} / {last:.3g}")
        rows.append((name, *cells))
    short = {"jaxinit": "jaxinit", "flax_loop": "flax loop", "flax_vmap": "flax vmap", "torch_loop": "torch"}
    return ["sanity: q at the first / last layer, median over seeds (the same work: the columns agree up to "
            "seed noise, which grows with depth)", *_grid(("", *(short[k] for k in keys)), rows)]


def _format_growth(report: dict[str, Any]) -> str:
    work = report["work"]
    lines = [f"jaxinit bench --growth: {len(work['inits'])} initializers x {work['seeds']} seeds, width "
             f"{work['width']}, batch {work['batch']}, depths {', '.join(map(str, work['depths']))}",
             f"machine: {_env_line(report.get('environment', {}))}", ""]
    rows, failed = [], []
    for r in report["growth"]:
        if not r.get("available"):
            failed.append(f"  depth {r['depth']}: {r.get('reason')}")
            continue
        rows.append((str(r["depth"]), _s(r.get("compile_s")), _s(r.get("run_s")), _s(r.get("end_to_end_s")),
                     _mb(r.get("peak_rss_mb")), _mb(r.get("device_peak_mb"))))
    lines += _grid(("depth", "compile", "run", "end to end", "peak RSS", "device peak"), rows)
    lines += failed
    ratios = report.get("ratios") or {}
    lines += ["", f"ratios depth {work['depths'][-1]} / depth {work['depths'][0]}: compile "
              f"{_x(ratios.get('compile'))}, peak RSS {_x(ratios.get('peak_rss'))}, device peak "
              f"{_x(ratios.get('device_peak'))}, run time per layer {_x(ratios.get('run_per_layer'))}", ""]
    lines += _format_targets(report)
    for note in report.get("notes") or []:
        lines.append(f"note: {note}")
    return "\n".join(lines).rstrip() + "\n"


