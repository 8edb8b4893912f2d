"""Reproduction 2 in training: order, chaos and trainability (Schoenholz et al. 2017).

Claim (Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep Information Propagation",
arXiv:1611.01232; built on Poole et al. 2016): a deep tanh network trains only when its depth is
below a few correlation depth scales xi_c (their Figure 5: about 6 xi_c); xi_c diverges at the
order-to-chaos transition (chi_1 = 1), so networks initialized at criticality train at every depth.

Measured (experiments/configs/train_order_chaos.toml: tanh, width 64, Gaussian weights of variance
sigma_w^2/fan_in over sigma_w^2 in {0.5, 1, 1.5, 1.75, 2, 3, 4}, sigma_b^2 = 0.05, depths 10, 20,
40, 80, 4 seeds, 500 SGD steps (momentum 0.9, learning rate 0.005, global norm clipped at 1), batch
64, on digits): per (sigma_w^2, depth) the final test accuracy, median (min-max) over seeds, and
the steps to 90% test accuracy. A cell "trains" when its median final test accuracy is at least
TRAINS = 0.5 (five times chance). Theory: 6 xi_c from :func:`jaxinit.theory.depth_scales` at each
sigma_w^2 (the critical sigma_w^2 from :func:`jaxinit.theory.critical`).

Verdicts: (a) no cell deeper than 6 xi_c trains (agrees: none; partly: under half of them; does
not: half or more); the cells within the bound that train are reported beside it (the bound is an
upper limit, not a promise); (b) the grid's sigma_w^2 nearest the critical point trains at every
depth (partly: at some).

Run:  .venv/bin/python experiments/repro/train_order_chaos.py [--out DIR] [--small]
      (102 s wall on a quiet 2-core machine)
"""

from __future__ import annotations

import math
import time
from pathlib import Path

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from experiments.repro import common, train_common
from experiments.repro.common import AGREES, DOES_NOT, PARTLY, Verdict

NAME = "train_order_chaos"
CONFIG = "train_order_chaos"
SMALL = {"network.depth": 12, "network.width": 8, "sweep.seeds": 2, "train.steps": 20, "train.eval_every": 10,
         "grid.weight_variance": [0.5, 1.75, 4.0], "train.learning_rate": 0.05}
TRAINS = 0.5     # median final test accuracy: five times chance on 10 classes
BOUND = 6.0      # Schoenholz et al.: trainable up to about 6 xi_c


def bound_depth(activation: str, weight_variance: float, bias_variance: float) -> float:
    """6 xi_c at (sigma_w^2, sigma_b^2): the deepest trainable network by the theory (inf at criticality)."""
    from jaxinit import theory

    _, xi_c = theory.depth_scales(activation, weight_variance, bias_variance)
    return BOUND * xi_c if math.isfinite(xi_c) and xi_c > 0 else math.inf


def verdict(numbers: dict) -> list[Verdict]:
    """``numbers["cells"]``: dicts with ``depth``, ``weight_variance``, ``bound`` (6 xi_c), ``final``
    (median final test accuracy); ``numbers["nearest_critical"]``: the grid's sigma_w^2 nearest the
    critical point; ``numbers["critical"]``: that point."""
    cells = numbers["cells"]
    beyond = [c for c in cells if c["depth"] > c["bound"]]
    within = [c for c in cells if c["depth"] <= c["bound"]]
    beyond_train = [c for c in beyond if c["final"] >= TRAINS]
    within_train = [c for c in within if c["final"] >= TRAINS]

    def name(c):
        return f"σ_w² {c['weight_variance']:g} depth {c['depth']} ({c['final']:.2f})"

    if not beyond:
        status, why = PARTLY, "no cell of the grid is deeper than 6 ξ_c: the bound is not tested"
    else:
        status = AGREES if not beyond_train else (PARTLY if 2 * len(beyond_train) < len(beyond) else DOES_NOT)
        why = (f"{len(beyond_train)} of {len(beyond)} cells deeper than 6 ξ_c train (median final test accuracy "
               f">= {TRAINS:g})" + (": " + ", ".join(name(c) for c in beyond_train) if beyond_train else "")
               + f"; within the bound {len(within_train)} of {len(within)} train"
               + ("; not: " + ", ".join(name(c) for c in within if c["final"] < TRAINS)
                  if len(within_train) < len(within) else ""))
    out = [Verdict("tanh nets deeper than 6 ξ_c do not train", status, why)]
    w = numbers["nearest_critical"]
    crit = [c for c in cells if c["weight_variance"] == w]
    ok = [c for c in crit if c["final"] >= TRAINS]
    out.append(Verdict(
        "at criticality tanh nets train at every depth tried",
        AGREES if crit and len(ok) == len(crit) else (PARTLY if ok else DOES_NOT),
        f"σ_w² = {w:g} (critical {numbers['critical']:.2f}): "
        + ", ".join(f"depth {c['depth']} {c['final']:.2f}" for c in sorted(crit, key=lambda c: c["depth"]))
        + f" median final test accuracy (trains: >= {TRAINS:g})"))
    return out


def figure(res, numbers: dict, path: Path) -> Path:
    import matplotlib.colors as mcolors

    cells = numbers["cells"]
    ws = sorted({c["weight_variance"] for c in cells})
    depths = sorted({c["depth"] for c in cells})
    grid = np.full((len(depths), len(ws)), np.nan)
    for c in cells:
        grid[depths.index(c["depth"]), ws.index(c["weight_variance"])] = c["final"]
    fig, axes = common.new_figure(1, 2, height_per_row=4.4, width=11.0)
    ax = axes[0][0]
    # Equal-width cells, one per grid value; the theory curve is placed by interpolating sigma_w^2
    # between the grid values (exact at every grid value, monotone in between).
    idx = np.arange(len(ws), dtype=float)
    mesh = ax.pcolormesh(np.arange(len(ws) + 1) - 0.5, np.arange(len(depths) + 1) - 0.5, grid, cmap="viridis",
                         norm=mcolors.Normalize(0.0, 1.0))
    for c in cells:
        ax.text(ws.index(c["weight_variance"]), depths.index(c["depth"]), f"{c['final']:.2f}", ha="center",
                va="center", fontsize=8, bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.75,
                                               "lw": 0})
    lo_w = max(ws[0] - 0.5 * (ws[1] - ws[0]), 0.05)
    hi_w = ws[-1] + 0.5 * (ws[-1] - ws[-2])
    # 6 xi_c costs ~30 ms a point (a Gaussian integral per chi): 90 points, a third of them near the critical point
    crit = numbers["critical"]
    fine = np.unique(np.concatenate([np.linspace(lo_w, hi_w, 60),
                                     np.linspace(max(lo_w, crit - 0.4), min(hi_w, crit + 0.4), 30)]))
    x_fine = np.interp(fine, [lo_w, *ws, hi_w], [-0.5, *idx, len(ws) - 0.5])
    bias = numbers["bias_variance"]
    bound = np.array([bound_depth("tanh", float(w), bias) for w in fine])
    log_d = np.log(depths)
    steps_d = np.diff(log_d) if len(depths) > 1 else np.array([1.0])
    y_fine = np.interp(np.log(np.where(np.isfinite(bound), bound, 1e9)),
                       [log_d[0] - steps_d[0], *log_d, log_d[-1] + steps_d[-1]], [-1.0, *np.arange(len(depths)),
                                                                                   len(depths)])
    ax.plot(x_fine, y_fine, color="red", lw=2.2, label="theory: depth = 6 ξ_c (trainable below the curve)")
    x_crit = float(np.interp(numbers["critical"], [lo_w, *ws, hi_w], [-0.5, *idx, len(ws) - 0.5]))
    ax.axvline(x_crit, color="red", lw=1.2, ls="--", label=f"theory: critical σ_w² = {numbers['critical']:.2f}")
    ax.set_xlim(-0.5, len(ws) - 0.5)
    ax.set_ylim(-0.5, len(depths) - 0.5)
    ax.set_xticks(idx, [f"{w:g}" for w in ws])
    ax.set_yticks(np.arange(len(depths)), [str(d) for d in depths])
    ax.set_xlabel("σ_w² (weight variance × fan_in; grid values)")
    ax.set_ylabel("depth L (hidden layers)")
    ax.set_title(f"measured: median final test accuracy of {len(res.coords['seed'])} seeds", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, ncol=1, frameon=False)
    fig.colorbar(mesh, ax=ax, label="test accuracy (fraction)", shrink=0.9)
    ax = axes[0][1]
    for k, d in enumerate(depths):
        row = sorted([c for c in cells if c["depth"] == d], key=lambda c: c["weight_variance"])
        x = [c["weight_variance"] for c in row]
        color = f"C{k}"
        ax.fill_between(x, [c["final_min"] for c in row], [c["final_max"] for c in row], color=color, alpha=0.15, lw=0)
        ax.plot(x, [c["final"] for c in row], "o-", color=color, lw=1.5, ms=4, label=f"depth {d}")
    ax.axhline(TRAINS, color="0.3", ls=":", lw=0.9, label=f"'trains' threshold {TRAINS:g}")
    ax.axvline(numbers["critical"], color="red", ls="--", lw=1, label="theory: critical σ_w²")
    ax.set_ylim(0, 1)
    ax.set_xlabel("σ_w² (weight variance × fan_in)")
    ax.set_ylabel("final test accuracy (fraction)")
    ax.set_title("measured per depth: median (line), min–max of seeds (band)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", ncol=2)
    prog = res.coords["program"][0]
    cfg = res.config
    fig.suptitle(f"Deep tanh MLPs trained on digits vs the 6 ξ_c depth bound (Schoenholz et al. 2017)\n"
                 f"width {prog['width']}, Gaussian weights, σ_b² = {bias:g}, {cfg.train.steps} SGD steps "
                 f"(momentum 0.9, lr {float(cfg.train.learning_rate):g}, clipped at {cfg.train.clip_global_norm:g})",
                 fontsize=10.5)
    return common.save_figure(fig, path)


def summarize(res) -> tuple[dict, list]:
    """The numbers the verdict reads and the table's rows, from a finished run's results."""
    from jaxinit import theory

    bias_values = set(train_common.grid_values(res, "bias_variance"))
    if len(bias_values) != 1:
        raise ValueError(f"{CONFIG}: one bias_variance expected in the grid; got {sorted(bias_values)}")
    bias = bias_values.pop()
    ws = train_common.grid_values(res, "weight_variance")
    critical = float(theory.critical("tanh", bias))
    cells, rows = [], []
    n_seeds = len(res.coords["seed"])
    for p, prog in enumerate(res.coords["program"]):
        depth = int(prog["depth"])
        final = res.get("final_test_accuracy", p)[0]          # (grid, seed)
        st = res.get("steps_to_accuracy", p)[0]
        for g, w in enumerate(ws):
            fin = train_common.spread(final[g])
            c = {"depth": depth, "weight_variance": w, "xi_c": theory.depth_scales("tanh", w, bias)[1],
                 "bound": bound_depth("tanh", w, bias), "final": fin["median"], "final_min": fin["min"],
                 "final_max": fin["max"], "steps": train_common.median_steps(st[g]),
                 "reached": train_common.reached(st[g])}
            cells.append(c)
            rows.append([w, depth, c["xi_c"], c["bound"], "beyond" if depth > c["bound"] else "within",
                         train_common.final_cell(c),
                         "yes" if c["final"] >= TRAINS else "no",
                         train_common.fmt_steps(c["steps"], c["reached"], n_seeds)])
    nearest = min(ws, key=lambda w: abs(w - critical))
    rows.sort(key=lambda r: (r[1], r[0]))
    numbers = {"cells": cells, "critical": critical, "nearest_critical": nearest, "bias_variance": bias}
    return numbers, rows


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    start = time.perf_counter()
    out = Path(out)
    res = train_common.train(CONFIG, out / "train", SMALL if small else None)
    numbers, rows = summarize(res)
    verdicts = verdict(numbers)
    png = figure(res, numbers, out / f"{NAME}.png")
    seconds = time.perf_counter() - start
    cfg = res.config
    columns = ["σ_w²", "depth", "ξ_c (theory)", "6 ξ_c", "depth vs bound", "final test acc. median (min–max)",
               f"trains (>= {TRAINS:g})", f"steps to {cfg.train.target_accuracy:g} (seeds reached)"]
    return common.finish(
        out, NAME, verdicts, numbers, seconds, columns, rows,
        title=f"Reproduction 2 in training: tanh, width {res.coords['program'][0]['width']}, "
              f"σ_b² = {numbers['bias_variance']:g}, {len(res.coords['seed'])} seeds, {cfg.train.steps} steps "
              "on digits", png=png, publish=publish)


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
