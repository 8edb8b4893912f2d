"""The catalog benchmark's report (:mod:`jaxinit.bench.catalog`) as a fixed-width text table: a row per
cell, the libraries' errors, the shapes an entry refuses by design, a summary of the ratios per mode,
the transformer, and the misses."""

from __future__ import annotations

import statistics
from typing import Any

__all__ = ["format_table", "summary"]


def _fmt_ms(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return "error"
    return f"{value:.3g}"


def _shape(cell: dict[str, Any]) -> str:
    return "x".join(str(d) for d in cell["shape"])


def summary(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per mode, the ratios against each library: how many cells, their median, range, and how many
    are below ``1 - noise``; and jaxinit's ``eager/jit`` over the eager cells."""
    noise = report["meta"].get("noise", 0.1)
    rows = []
    for mode in ("eager", "jit", "vmap"):
        for lib in ("jax", "torch"):
            ratios = [c[f"vs_{lib}"] for c in report["cells"] if c["mode"] == mode and f"vs_{lib}" in c]
            if ratios:
                rows.append({"what": f"{mode} vs {lib} {mode}", "cells": len(ratios),
                             "median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
                             "below": sum(r < 1.0 - noise for r in ratios), "bound": 1.0 - noise})
    ratios = [c["eager/jit"] for c in report["cells"] if "eager/jit" in c]
    if ratios:
        rows.append({"what": "eager / jaxinit's own jit", "cells": len(ratios), "median": statistics.median(ratios),
                     "min": min(ratios), "max": max(ratios), "above": sum(r > 1.5 for r in ratios), "bound": 1.5})
    return rows


def format_table(report: dict[str, Any]) -> str:
    """The report as a fixed-width text table (medians in ms; ratios above 1 favour jaxinit)."""
    meta = report["meta"]
    calls = (f"as many calls as fit in {meta['cell_budget_s']:g} s per cell ({meta['min_calls']} to "
             f"{meta['max_calls']}: the calls column)" if meta.get("cell_budget_s") else f"{meta['repeats']} calls")
    lines = [f"jaxinit catalog benchmark: jax {meta['jax']}, torch {meta['torch'] or 'not installed'}, "
             f"{meta['device']}, medians of {calls}, vmap over {meta['keys_per_vmap']} keys",
             "ratios: vs_jax = jax ms / jaxinit ms, vs_torch = torch ms / jaxinit ms (>1: jaxinit faster); "
             "eager/jit = jaxinit eager ms / jaxinit jit ms",
             ""]
    header = (f"{'entry':<26}{'shape':<13}{'dtype':<9}{'mode':<6}{'jaxinit':>9}{'jax':>9}{'torch':>9}"
              f"{'vs_jax':>8}{'vs_torch':>9}{'eager/jit':>10}{'calls':>6}")
    lines += [header, "-" * len(header)]
    for c in report["cells"]:
        ms = c["ms"]
        ratio = {k: (f"{c[k]:.2f}" if k in c else "-") for k in ("vs_jax", "vs_torch", "eager/jit")}
        ours = "refused" if "refused" in c else _fmt_ms(ms.get("jaxinit"))
        lines.append(f"{c['entry']:<26}{_shape(c):<13}{c['dtype']:<9}{c['mode']:<6}{ours:>9}"
                     f"{_fmt_ms(ms.get('jax')):>9}{_fmt_ms(ms.get('torch')):>9}{ratio['vs_jax']:>8}"
                     f"{ratio['vs_torch']:>9}{ratio['eager/jit']:>10}{c.get('calls', '-'):>6}")
    errors = [(c, lib, v) for c in report["cells"] for lib, v in c["ms"].items() if isinstance(v, str)]
    if errors:
        lines += ["", "errors (a library that cannot fill the shape):"]
        lines += [f"  {c['entry']} {_shape(c)} {c['dtype']} {c['mode']} {lib}: {v}" for c, lib, v in errors]
    refused = {(c["entry"], _shape(c)): c["refused"] for c in report["cells"] if "refused" in c}
    if refused:
        lines += ["", "refused by design (the entry does not fill the shape; every dtype and mode):"]
        lines += [f"  {entry} {shape}: {why}" for (entry, shape), why in refused.items()]
    rows = summary(report)
    if rows:
        lines += ["", "summary (ratios; above 1: jaxinit faster):"]
        for r in rows:
            out = (f"{r['above']} above {r['bound']:g}" if "above" in r else f"{r['below']} below {r['bound']:g}")
            lines.append(f"  {r['what']:<28} {r['cells']:>4} cells, median {r['median']:.2f}, "
                         f"range {r['min']:.2f} - {r['max']:.2f}, {out}")
    model = report.get("model")
    if model:
        lines += ["", f"transformer: {model['blocks']} blocks, width {model['width']}, {model['heads']} heads, "
                      f"vocab {model['vocab']}, seq {model['seq']}, {model['params'] / 1e6:.1f} M parameters",
                  f"  jit(model.init) compile: jax {model['jax_compile_s']:.2f} s, jaxinit "
                  f"{model['jaxinit_compile_s']:.2f} s, vs_jax {model['compile_vs_jax']:.2f}",
                  f"  jit(model.init) run:     jax {model['jax_run_ms']:.1f} ms, jaxinit "
                  f"{model['jaxinit_run_ms']:.1f} ms, vs_jax {model['run_vs_jax']:.2f}"]
    lines += ["", f"misses ({len(report['misses'])}):"]
    for m in report["misses"]:
        shape = "x".join(str(d) for d in m.get("shape", []))
        lines.append(f"  {m['entry']} {shape} {m.get('dtype', '')} {m.get('mode', '')}: "
                     f"{m['target']} missed ({m['value']})")
    return "\n".join(lines) + "\n"
