"""Reproduction 5 at initialization: gains for modern activations (GELU, SiLU, Mish).

Claim (common advice): initialize with the activation's own gain, Var[W] = gain^2 / fan_in with
gain = 1/sqrt(E[phi(z)^2]) (:func:`jaxinit.activation_gain`), rather than ReLU's sqrt(2) or no
gain, to keep the pre-activations' second moment q flat through depth.

Measured (experiments/configs/gains.toml: width 256, depth 50, 16 seeds, Gaussian inputs with
q0 = 1, Gaussian weights, zero biases): q per layer for sigma_w^2 = 1 (no gain), 2 (ReLU gain)
and activation_gain(phi)^2, against the mean-field q map (:mod:`jaxinit.theory`, the figures'
overlay :func:`jaxinit.lab.figures.theory_overlay`). The numbers:

* ``drift``: the largest |log10(q_l / q_1)| over the layers (median over seeds), in decades;
  "flat" means within one decade (a factor of 10) over all 50 layers;
* ``theory_gap``: the largest |log10(q_l measured / q_l theory)| over the layers where both are
  above 1e-30; the measurement follows theory when it is within a factor of 2 (0.30 decades);
* the slope of the q map at its fixed point q = 1 for the gain, d q_{l+1} / d q_l (above 1: the
  fixed point repels, and the first layer's q_1 = gain^2 q_0 starts away from it).

Run:  .venv/bin/python experiments/repro/gains.py [--out DIR] [--small]   (~1-2 min on 2 CPU cores)
"""

from __future__ import annotations

import math
import time
from pathlib import Path

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from experiments.repro import common
from experiments.repro.common import AGREES, DOES_NOT, PARTLY, Verdict

NAME = "gains"
CONFIG = "gains"
SMALL = {"network.depth": 12, "network.width": 32, "sweep.seeds": 2, "inputs.batch": 8,
         "network.activation": "gelu"}
FLAT = 1.0              # decades: "flat" = q within a factor of 10 of q_1 at every layer
THEORY_TOL = math.log10(2.0)
COMPARED_ABOVE = 1e-30  # layers compared with theory: both q above this (float32 resolves them)
SCHEMES = ("no gain", "ReLU gain √2", "activation_gain")


def scheme_variances(activation: str) -> dict[str, float]:
    import jaxinit

    return {"no gain": 1.0, "ReLU gain √2": 2.0, "activation_gain": jaxinit.activation_gain(activation) ** 2}


def scheme_overrides(config: str, overrides: dict) -> tuple[dict[str, dict[str, float]], dict]:
    """Per activation of ``experiments/configs/<config>.toml`` (with ``overrides``), its
    :func:`scheme_variances`; and ``overrides`` with the grid ``grid.weight_variance`` that holds them
    all (sorted, each rounded to 12 decimals)."""
    from jaxinit.lab import config as config_lib

    acts = [prog.activation.name for prog in config_lib.load(common.config_path(config), overrides).programs()]
    wanted = {a: scheme_variances(a) for a in acts}
    grid = sorted({round(v, 12) for by in wanted.values() for v in by.values()})
    return wanted, {**overrides, "grid.weight_variance": grid}


def fixed_point_slope(activation: str, weight_variance: float, q: float = 1.0, h: float = 1e-4) -> float:
    """d q_{l+1} / d q_l of the mean-field q map at ``q`` (central difference)."""
    from jaxinit import theory

    up = theory.q_map(activation, weight_variance, 0.0, q * (1 + h))
    down = theory.q_map(activation, weight_variance, 0.0, q * (1 - h))
    return (up - down) / (2 * q * h)


def curve_numbers(q_median: np.ndarray, q_theory: np.ndarray) -> dict:
    """``drift`` and ``theory_gap`` (decades) from the per-layer median q and the theory's q."""
    q = np.asarray(q_median, np.float64)
    t = np.asarray(q_theory, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.log10(q / q[0])
        both = (q > COMPARED_ABOVE) & (t > COMPARED_ABOVE) & np.isfinite(q) & np.isfinite(t)
        gap = np.abs(np.log10(q[both] / t[both]))
    finite = rel[np.isfinite(rel)]
    lost = bool((~np.isfinite(rel)).any() or (q <= 0).any())
    return {"drift": math.inf if lost else float(np.max(np.abs(finite))),
            "log10_qL_over_q1": float(rel[-1]) if np.isfinite(rel[-1]) else -math.inf,
            "theory_log10_qL_over_q1": float(np.log10(t[-1] / t[0])) if t[-1] > 0 else -math.inf,
            "theory_gap": float(gap.max()) if gap.size else math.nan, "compared_layers": int(both.sum())}


def verdict(numbers: dict) -> list[Verdict]:
    """``numbers[activation][scheme]``: dicts with ``drift`` and ``theory_gap`` (decades)."""
    flat = {a: by["activation_gain"]["drift"] <= FLAT for a, by in numbers.items()}
    v1 = Verdict("activation_gain keeps q flat (within x10 of q_1) through depth",
                 AGREES if all(flat.values()) else (PARTLY if any(flat.values()) else DOES_NOT),
                 "; ".join(f"{a}: q drifts {by['activation_gain']['drift']:.2f} decades" for a, by in numbers.items()))
    best = {a: min(by, key=lambda s: by[s]["drift"]) for a, by in numbers.items()}
    wins = [a for a, s in best.items() if s == "activation_gain"]
    v2 = Verdict("activation_gain keeps q flatter than the ReLU gain and no gain",
                 AGREES if len(wins) == len(best) else (PARTLY if wins else DOES_NOT),
                 "; ".join(f"{a}: " + ", ".join(f"{s} {by[s]['drift']:.2f}" for s in by) + " decades"
                           for a, by in numbers.items()))
    gaps = [(a, s, by[s]["theory_gap"]) for a, by in numbers.items() for s in by]
    close = [g for g in gaps if g[2] <= THEORY_TOL]
    v3 = Verdict("measured q follows the mean-field q map (within x2 at every layer)",
                 AGREES if len(close) == len(gaps) else (PARTLY if close else DOES_NOT),
                 "; ".join(f"{a}/{s}: {g:.2f}" for a, s, g in gaps if not g <= THEORY_TOL) or
                 f"all {len(gaps)} within {THEORY_TOL:.2f} decades (largest "
                 f"{max(g for _, _, g in gaps):.3f})")
    return [v1, v2, v3]


def figure(curves: dict, numbers: dict, width: int, n_seeds: int, path: Path) -> Path:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    acts = list(curves)
    fig, axes = common.new_figure(1, len(acts), height_per_row=3.6)
    colors = dict(zip(SCHEMES, ("tab:gray", "tab:orange", "tab:blue"), strict=True))
    for a, act in enumerate(acts):
        ax = axes[0][a]
        for scheme, c in curves[act].items():
            layers = np.arange(1, c["median"].size + 1)
            ax.fill_between(layers, np.maximum(c["lo"], 1e-45), np.maximum(c["hi"], 1e-45),
                            color=colors[scheme], alpha=0.2, lw=0)
            ax.plot(layers, np.where(c["median"] > 0, c["median"], np.nan), color=colors[scheme], lw=1.8)
            ax.plot(layers, np.where(c["theory"] > 1e-45, c["theory"], np.nan), color=colors[scheme], lw=1.2,
                    ls="--")
        ax.set_yscale("log")
        ax.set_xlabel("layer ℓ")
        ax.set_ylim(1e-33, 1e10)
        sw = {s: curves[act][s]["weight_variance"] for s in curves[act]}
        ax.set_title(f"{act}: activation_gain² = {sw['activation_gain']:.3f}\nq-map slope at its fixed point "
                     f"q = 1: {numbers[act]['activation_gain']['fixed_point_slope']:.2f}", fontsize=9)
        ax.grid(True, alpha=0.3)
        if a == 0:
            ax.set_ylabel("q_ℓ = mean (h^ℓ)² (input q₀ = 1)")
    handles = [Line2D([], [], color=colors[s], lw=1.8) for s in SCHEMES]
    names = ["no gain (σ_w² = 1)", "ReLU gain √2 (σ_w² = 2)", "activation_gain(φ) (σ_w² = 1/E[φ(z)²])"]
    handles += [Line2D([], [], color="black", ls="--", lw=1.2), Patch(color="0.5", alpha=0.3)]
    names += ["mean-field theory (q map)", f"band: 5–95% of {n_seeds} seeds; line: median"]
    fig.legend(handles, names, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"Gains for GELU, SiLU and Mish, width {width}: q through depth, measured (solid) vs mean-field "
                 "theory (dashed)\n(slope > 1: the gain's fixed point q = 1 repels, and q₁ = gain²·q₀ starts off it)",
                 fontsize=10)
    return common.save_figure(fig, path)


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    from jaxinit.lab.figures import theory_overlay

    start = time.perf_counter()
    out = Path(out)
    wanted, overrides = scheme_overrides(CONFIG, SMALL if small else {})
    res = common.sweep(CONFIG, out / "sweep", overrides)
    points = [p["weight_variance"] for p in res.coords["grid_point"]]
    numbers: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    rows = []
    for p, prog in enumerate(res.coords["program"]):
        act = prog["activation"]
        q = res.get("q", p)[0]  # (grid, seed, layer)
        combos = {s: int(np.argmin(np.abs(np.asarray(points) - v))) for s, v in wanted[act].items()}
        overlay = theory_overlay(res, p, combos=[(0, g) for g in combos.values()])
        for scheme, g in combos.items():
            lo, mid, hi = common.seed_quantiles(q[g], (0.05, 0.5, 0.95))
            theory = overlay["q"][0, g]
            m = curve_numbers(mid, theory)
            m["weight_variance"] = float(points[g])
            m["fixed_point_slope"] = fixed_point_slope(act, float(points[g]))
            numbers.setdefault(act, {})[scheme] = m
            curves.setdefault(act, {})[scheme] = {"lo": lo, "median": mid, "hi": hi, "theory": theory,
                                                  "weight_variance": float(points[g])}
            rows.append([act, scheme, m["weight_variance"], m["fixed_point_slope"], m["log10_qL_over_q1"],
                         m["theory_log10_qL_over_q1"], m["drift"], m["theory_gap"], m["compared_layers"]])
    verdicts = verdict(numbers)
    png = figure(curves, numbers, int(res.coords["program"][0]["width"]), len(res.coords["seed"]), out / f"{NAME}.png")
    seconds = time.perf_counter() - start
    columns = ["activation", "scheme", "σ_w²", "q-map slope at q=1", "log10 q_L/q_1 measured", "log10 q_L/q_1 theory",
               "drift (decades)", "largest |log10 measured/theory|", "layers compared"]
    return common.finish(out, NAME, verdicts, numbers, seconds, columns, rows,
                         title="Reproduction 5 at init: gains for GELU, SiLU, Mish", png=png, publish=publish)


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
