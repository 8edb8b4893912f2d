"""The report's derived figures: random numbers per network, fractions of the ceiling, the ratios
(baseline time / jaxinit time) and the targets they are held to, and the machine they were measured on.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from typing import Any

from jaxinit.bench.harness import Settings
from jaxinit.bench.work import BASELINES, DEFAULT_INITS, Work

__all__ = ["GROWTH_TARGET", "REPORT_FORMAT", "TARGETS", "compute_ratios", "environment", "evaluate_targets",
           "fill_ceiling_fractions", "loadavg", "note_work", "random_numbers", "target_set"]

REPORT_FORMAT = "jaxinit-bench/1"
# Targets of the benchmark (measured on a 2-core CPU). Each compares jaxinit with a baseline
# as speedup = baseline time / jaxinit time (> 1: jaxinit ahead). "within 2x of torch" is speedup >= 0.5.
TARGETS = {
    "default": (  # the default work: 4 initializers x 32 seeds, depth 50, width 256, batch 128
        ("end_to_end", "flax_vmap", 5.0, "end to end >= 5x faster than jit(vmap(flax))"),
        ("end_to_end", "torch_loop", 0.5, "end to end within 2x of the PyTorch loop"),
        ("per_network", "flax_vmap", 1.0, "warm per-network time ahead of jit(vmap(flax))"),
        ("per_network", "torch_loop", 1.0, "warm per-network time ahead of the PyTorch loop"),
    ),
    "256_seeds": (  # 4 initializers x 256 seeds (1024 networks): compile amortized
        ("end_to_end", "flax_vmap", 2.0, "end to end >= 2x faster than jit(vmap(flax)) at 256 seeds"),
        ("end_to_end", "torch_loop", 1.5, "end to end >= 1.5x faster than the PyTorch loop at 256 seeds"),
        ("per_network", "flax_vmap", 1.0, "warm per-network time ahead of jit(vmap(flax))"),
        ("per_network", "torch_loop", 1.0, "warm per-network time ahead of the PyTorch loop"),
    ),
}
GROWTH_TARGET = 1.5  # depth 1000 / depth 10, for compile time and peak memory


def _distribution(kind: str, members: Sequence[str]) -> str:
    """The JAX sampler a noise group costs like: truncated_normal, normal or uniform."""
    if kind.startswith("raw:"):
        d = kind.split(":", 1)[1]
        return d if d in ("normal", "truncated_normal", "uniform") else "normal"
    return "uniform" if any("uniform" in m for m in members) else "normal"


def _baseline_distribution(name: str, run: str) -> str:
    if name.endswith("uniform"):
        return "uniform"
    if name == "orthogonal" or run == "torch_loop":
        return "normal"
    return "truncated_normal"  # jax.nn.initializers' he/glorot/lecun normals are truncated normals


def random_numbers(work: Work, run: str, ceiling: dict[str, Any] | None = None) -> dict[str, float] | None:
    """Random numbers drawn per network, by distribution, as the run spends them (weights + inputs).

    jaxinit draws one random-bits stream per (seed, layer) for all the noise groups that map the same
    bits (``bit_streams``, from the ceiling run; else one array per group) and shares it between the
    groups' initializers; the baselines draw one per (initializer, seed, layer). ``None`` when the
    engine's groups are unknown (no ceiling).
    """
    per_layer = float(work.width) ** 2
    readout = work.width * 10.0 if work.gradients else 0.0
    weights = per_layer * work.depth + readout
    inputs = float(work.batch * work.width)
    counts: dict[str, float] = {}
    if run == "jaxinit":
        groups = (ceiling or {}).get("noise_groups")
        if not groups:
            return None
        # The forward scan draws each layer's bits one step ahead (one unused stream after the last
        # layer); the gradient probes redraw the hidden layers in the reversed scan and the readout twice.
        weights = per_layer * (work.depth + 1) + (per_layer * (work.depth - 1) + 2 * readout if work.gradients else 0.0)
        streams = (ceiling or {}).get("bit_streams")
        if streams is not None:
            # Charged at the uniform rate: the cheapest map of the bits, the closest to the bits' own cost.
            counts["uniform"] = weights * streams / len(work.inits)
        else:
            for g in groups:
                d = _distribution(g["kind"], g["members"])
                counts[d] = counts.get(d, 0.0) + weights / len(work.inits)
        counts["normal"] = counts.get("normal", 0.0) + inputs / len(work.inits)  # inputs: once per seed
        return counts
    for name in work.inits:
        d = _baseline_distribution(name, run)
        counts[d] = counts.get(d, 0.0) + weights / len(work.inits)
    counts["normal"] = counts.get("normal", 0.0) + inputs
    return counts


def fill_ceiling_fractions(report: dict[str, Any]) -> None:
    """Per run: achieved GFLOP/s, fraction of the matmul peak, ideal per-network time and fraction of it."""
    work, ceiling = Work.from_report(report["work"]), report.get("ceiling") or {}
    peak = ceiling.get("matmul_flops_per_s") if ceiling.get("available") else None
    rates = ceiling.get("rng_per_s") or {}
    flops = work.flops_per_network()
    for key, run in report["runs"].items():
        if not run.get("available") or not run.get("per_network_s"):
            continue
        per = run["per_network_s"]
        run["achieved_flops_per_s"] = flops / per
        run["fraction_of_matmul_peak"] = flops / per / peak if peak else None
        counts = random_numbers(work, key, ceiling)
        run["random_numbers_per_network"] = sum(counts.values()) if counts else None
        run["ideal_per_network_s"] = run["fraction_of_ceiling"] = None
        if peak and counts and key != "torch_loop" and all(d in rates for d in counts):
            ideal = flops / peak + sum(n / rates[d] for d, n in counts.items())
            run["ideal_per_network_s"] = ideal
            run["fraction_of_ceiling"] = ideal / per



def compute_ratios(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """``{baseline: {"end_to_end": b / j, "per_network": b / j, "without_compile": b / j, "cpu_time": b / j}}``:
    how many times faster jaxinit is (> 1: jaxinit ahead); ``None`` where either side did not run.
    ``cpu_time`` compares the children's CPU seconds (user + system), steadier than wall time on a
    loaded machine."""
    j = runs.get("jaxinit") or {}
    out = {}
    for key in BASELINES:
        b = runs.get(key) or {}
        ratios: dict[str, float | None] = {}
        for name, field in (("end_to_end", "end_to_end_s"), ("per_network", "per_network_s"),
                            ("without_compile", "wall_without_compile_s"), ("cpu_time", "cpu_s")):
            ok = j.get("available") and b.get("available") and j.get(field) and b.get(field) is not None
            ratios[name] = b[field] / j[field] if ok else None
        out[key] = ratios
    return out


def target_set(work: Work) -> str:
    return "256_seeds" if work.seeds >= 256 else "default"


def evaluate_targets(work: Work, ratios: dict[str, dict[str, float | None]]) -> list[dict[str, Any]]:
    """The issue's targets beside the measured ratios; ``met`` is True/False, or None (not measured)."""
    out = []
    for kind, baseline, target, text in TARGETS[target_set(work)]:
        measured = (ratios.get(baseline) or {}).get(kind)
        out.append({"target": text, "kind": kind, "baseline": baseline, "at_least": target, "measured": measured,
                    "met": None if measured is None else measured >= target})
    return out


def environment(settings: Settings, loadavg_before: Sequence[float] | None) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg_before": list(loadavg_before) if loadavg_before else None,
        "loadavg_after": loadavg(),
        "jax_platforms": os.environ.get("JAX_PLATFORMS"),
        **settings.describe(),
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return None


def note_work(work: Work) -> str | None:
    if target_set(work) == "default" and not work.matches(inits=DEFAULT_INITS, seeds=32, depth=50, width=256,
                                                          batch=128, gradients=False):
        return "the work differs from the targets' default work (4 inits x 32 seeds, depth 50, width 256, " \
               "batch 128, forward): the marks are indicative"
    if target_set(work) == "256_seeds" and not work.matches(inits=DEFAULT_INITS, seeds=256, depth=50, width=256,
                                                            batch=128, gradients=False):
        return "the work differs from the targets' 256-seed work: the marks are indicative"
    return None


