"""Reproduction 4, depth (He et al. 2015): ReLU with He, LeCun and Xavier at depths 10, 100, 1000.

Claim: in a ReLU network each layer multiplies the pre-activations' second moment q by
sigma_w^2 / 2, so He (sigma_w^2 = 2) keeps q flat and sigma_w^2 = 1 (LeCun, Xavier on square
layers) halves it per layer until the signal dies (float32 underflow near layer 127).

Measured (experiments/configs/depth_relu.toml, width 256, 16 seeds, Gaussian inputs with q0 = 1):

* the mean per-layer ratio q_{l+1}/q_l over seeds and layers, against sigma_w^2 / 2. For
  zero-mean symmetric weights E[q_{l+1}/q_l] = sigma_w^2 E[|relu(h)|^2/|h|^2] = sigma_w^2 / 2
  exactly, at any width (flip the sign of h), so the tolerance is 6 standard errors of the mean;
* the layer where q first falls below float32's smallest normal number, against the layer where
  the theory's q_l = q_1 (sigma_w^2/2)^(l-1) does (typical-network drift included, below);
* the typical (median) network's q_L / q_1. At finite width N the log of q performs a random walk:
  log(q_{l+1}/q_l) has mean log(sigma_w^2/2) - 5/(2N) and variance 5/N for ReLU (the ratio is
  sigma_w^2 * rho * chi^2_N/N with rho = |relu(h)|^2/|h|^2, Var rho ~ 3/(4N); Hanin & Rolnick
  2018, arXiv:1803.01719), so the median q of He drifts down by exp(-5/(2N)) per layer although its
  mean stays flat.

Run:  .venv/bin/python experiments/repro/depth.py [--out DIR] [--small]   (~1 min on 2 CPU cores)
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

NAME = "depth"
CONFIG = "depth_relu"
SMALL = {"network.depth": [10, 150], "network.width": 32, "sweep.seeds": 2, "inputs.batch": 8}
TINY32 = float(np.finfo(np.float32).tiny)  # 1.18e-38: float32's smallest normal number
Z = 6.0  # z-threshold for a mean with a derived standard error (tests/helpers.py's)
ORDER_ONE = 10.0  # "of order one": the typical q_L within this factor of q_1


def theory_death_layer(q1: float, rate: float, drift: float = 0.0) -> float:
    """First layer l (1-based) with q_1 * (rate * exp(-drift))^(l-1) < TINY32; inf when it never falls."""
    step = math.log(rate) - drift
    if step >= 0:
        return math.inf
    return 1.0 + math.floor(math.log(TINY32 / q1) / step) + 1.0


def measure(q: np.ndarray, underflow: np.ndarray, width: int, weight_variance: float) -> dict:
    """Numbers for one (program, initializer): ``q`` (seed, layer), ``underflow`` (seed,) trace indices."""
    q = np.asarray(q, np.float64)
    depth = q.shape[-1]
    prev, nxt = q[:, :-1], q[:, 1:]
    ok = np.isfinite(prev) & np.isfinite(nxt) & (prev > 1e6 * TINY32) & (nxt > 0)
    ratios = (nxt / np.where(ok, prev, 1.0))[ok]
    n = ratios.size
    mean_ratio = float(ratios.mean()) if n else math.nan
    se = float(ratios.std() / math.sqrt(n)) if n > 1 else math.nan
    logs = np.log(np.where(ok, nxt / np.where(ok, prev, 1.0), 1.0))
    per_seed_rate = np.array([np.exp(logs[s][ok[s]].mean()) if ok[s].any() else np.nan for s in range(q.shape[0])])
    died = underflow >= 0
    rate = weight_variance / 2.0
    drift = 5.0 / (2.0 * width)
    q1 = float(np.median(q[:, 0]))
    typical = theory_death_layer(q1, rate, drift)
    # the spread of the death layer: the sd of log q there, sqrt(5 l / N), over the per-layer log step
    tolerance = 1.0 + 3.0 * math.sqrt(5.0 * typical / width) / abs(math.log(rate) - drift) if rate < 1 else math.nan
    return {
        "depth": depth,
        "weight_variance": weight_variance,
        "theory_ratio": rate,
        "mean_ratio": mean_ratio,
        "ratio_se": se,
        "n_ratios": n,
        "median_geometric_ratio": float(common.seed_quantiles(per_seed_rate, (0.5,))[0]),
        "finite_width_geometric_ratio": rate * math.exp(-drift),
        "median_qL_over_q1": float(np.median(q[:, -1] / q[:, 0])),
        "theory_qL_over_q1": rate ** (depth - 1),
        "finite_width_qL_over_q1": (rate * math.exp(-drift)) ** (depth - 1),
        "seeds_died": int(died.sum()),
        "seeds": int(q.shape[0]),
        "median_death_layer": float(np.median(underflow[died] + 1)) if died.all() else math.inf,
        "theory_death_layer": theory_death_layer(q1, rate),
        "typical_death_layer": typical,
        "death_tolerance": tolerance,
    }


def verdict(numbers: dict) -> list[Verdict]:
    """Three verdicts from ``numbers[label][depth]`` (the dicts of :func:`measure`, each with its ``depth``)."""
    rate_ok, rate_bad = [], []
    for label, by_depth in numbers.items():
        for m in by_depth.values():
            depth = m["depth"]
            off = abs(m["mean_ratio"] - m["theory_ratio"])
            tol = Z * m["ratio_se"]
            (rate_ok if off <= tol else rate_bad).append(
                f"{label} L={depth}: {m['mean_ratio']:.4f} vs {m['theory_ratio']:.2f} (±{tol:.4f})")
    rate = Verdict("mean per-layer ratio of q is sigma_w^2/2 (He x1, LeCun/Xavier x0.5)",
                   AGREES if not rate_bad else (PARTLY if rate_ok else DOES_NOT),
                   "; ".join(rate_bad) if rate_bad else f"all {len(rate_ok)} (init, depth) within 6 SE, e.g. "
                   + "; ".join(rate_ok[:3]))
    death_ok, death_bad = [], []
    for label, by_depth in numbers.items():
        for m in by_depth.values():
            depth = m["depth"]
            predicted = m["typical_death_layer"]
            if math.isinf(predicted) or predicted > depth:  # theory says it survives this depth
                good = m["seeds_died"] == 0
                text = f"{label} L={depth}: {m['seeds_died']}/{m['seeds']} seeds underflow (theory: none)"
            else:
                good = abs(m["median_death_layer"] - predicted) <= m["death_tolerance"]
                text = (f"{label} L={depth}: dies at layer {m['median_death_layer']:g} (theory "
                        f"{m['theory_death_layer']:g}, with the finite-width drift {predicted:g}, "
                        f"±{m['death_tolerance']:.1f})")
            (death_ok if good else death_bad).append(text)
    death_ok.sort(key=lambda text: "theory: none" in text)  # the layers where it dies first
    death = Verdict("the signal dies (float32 underflow) where theory predicts",
                    AGREES if not death_bad else (PARTLY if death_ok else DOES_NOT),
                    "; ".join(death_bad or death_ok[:4]))
    flat_ok, flat_bad = [], []
    for label, by_depth in numbers.items():
        for m in by_depth.values():
            depth = m["depth"]
            if m["theory_ratio"] != 1.0:
                continue
            ratio = m["median_qL_over_q1"]
            text = (f"{label} L={depth}: median q_L/q_1 = {ratio:.2g} (mean-field 1, finite-width "
                    f"{m['finite_width_qL_over_q1']:.2g})")
            (flat_ok if 1 / ORDER_ONE <= ratio <= ORDER_ONE else flat_bad).append(text)
    flat = Verdict("He keeps q of order one in the typical network at every depth",
                   AGREES if not flat_bad else (PARTLY if flat_ok else DOES_NOT),
                   "; ".join(flat_bad + flat_ok))
    return [rate, death, flat]


def figure(res, numbers: dict, path: Path) -> Path:
    labels = res.coords["initializer"]
    programs = res.coords["program"]
    fig, axes = common.new_figure(1, len(programs), height_per_row=3.6)
    colors = {"he_normal": "tab:blue", "lecun_normal": "tab:orange", "xavier_normal": "tab:green"}
    n_seeds = len(res.coords["seed"])
    width = int(programs[0]["width"])
    for p in range(len(programs)):
        ax = axes[0][p]
        q = res.get("q", p)[:, 0]  # (init, seed, layer)
        depth = q.shape[-1]
        layers = np.arange(1, depth + 1)
        for i, label in enumerate(labels):
            qi = np.where(q[i] > 0, q[i], np.nan)
            color = colors.get(label, f"C{i}")
            lo, mid, hi = common.seed_quantiles(qi, (0.05, 0.5, 0.95))
            ax.fill_between(layers, lo, hi, color=color, alpha=0.2, lw=0)
            m = numbers[label][depth]
            ax.plot(layers, mid, color=color, lw=1.6,
                    label=f"{label} (σ_w²={m['weight_variance']:g}): measured median" if p == 0 else None)
            theory = np.median(q[i][:, 0]) * m["theory_ratio"] ** (layers - 1.0)
            ax.plot(layers, np.where(theory > 1e-45, theory, np.nan), color=color, lw=1.2, ls="--",
                    label=f"{label}: theory ×{m['theory_ratio']:g}/layer" if p == 0 else None)
        he = numbers.get("he_normal", {}).get(depth)
        if he is not None and depth >= 100:
            typical = np.median(q[0][:, 0]) * (he["finite_width_geometric_ratio"]) ** (layers - 1.0)
            ax.plot(layers, typical, color="black", lw=1.4, ls=":")
        ax.axhline(TINY32, color="0.3", lw=0.8, ls="-.")
        ax.set_yscale("log")
        if depth >= 100:
            ax.set_ylim(1e-42, 1e3)
        ax.set_xlabel("layer ℓ (pre-activation h^ℓ)")
        ax.set_ylabel("q_ℓ = mean (h^ℓ)² (input q₀ = 1)")
        ax.set_title(f"depth {depth}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    from matplotlib.lines import Line2D

    handles, names = axes[0][0].get_legend_handles_labels()
    handles += [Line2D([], [], color="black", ls=":", lw=1.4),
                Line2D([], [], color="0.3", ls="-.", lw=0.8),
                Line2D([], [], color="0.5", lw=6, alpha=0.3)]
    names += [f"he_normal, typical network at width N={width}: q₁·e^(−5(ℓ−1)/2N) (Hanin & Rolnick 2018)",
              "float32 smallest normal (1.2e-38): below it the signal is gone",
              f"band: 5–95% of {n_seeds} seeds"]
    fig.legend(handles, names, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"ReLU, width {width}: q through depth with He vs LeCun/Xavier (σ_w²=1) — measured (solid) vs "
                 "mean-field theory (dashed)\n(LeCun and Xavier draw the same weights on square layers: "
                 "their curves coincide)", fontsize=10)
    return common.save_figure(fig, path)


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    start = time.perf_counter()
    out = Path(out)
    res = common.sweep(CONFIG, out / "sweep", SMALL if small else None)
    labels = res.coords["initializer"]
    numbers: dict[str, dict[int, dict]] = {label: {} for label in labels}
    from jaxinit.lab.figures import theory_overlay

    for p, prog in enumerate(res.coords["program"]):
        overlay = theory_overlay(res, p)
        q = res.get("q", p)[:, 0]
        under = res.get("first_underflow_layer", p)[:, 0]
        for i, label in enumerate(labels):
            sw = float(overlay["weight_variance"][i, 0])
            numbers[label][int(prog["depth"])] = measure(q[i], under[i], int(prog["width"]), sw)
    verdicts = verdict(numbers)
    png = figure(res, numbers, out / f"{NAME}.png")
    rows = [[label, depth, m["weight_variance"], m["mean_ratio"], m["ratio_se"], m["theory_ratio"],
             m["median_geometric_ratio"], m["finite_width_geometric_ratio"], m["median_qL_over_q1"],
             m["theory_qL_over_q1"], f"{m['seeds_died']}/{m['seeds']}", m["median_death_layer"],
             m["theory_death_layer"]]
            for label, by_depth in numbers.items() for depth, m in by_depth.items()]
    columns = ["initializer", "depth", "σ_w²", "mean q ratio/layer", "SE", "theory", "median geometric ratio",
               "finite-width prediction", "median q_L/q_1", "theory q_L/q_1", "seeds underflowed",
               "median death layer", "theory death layer"]
    seconds = time.perf_counter() - start
    return common.finish(out, NAME, verdicts, numbers, seconds, columns, rows,
                         title="Reproduction 4: depth, ReLU (He et al. 2015)", png=png, publish=publish)


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
