"""Reproduction 3 in training: dynamical isometry and learning speed (Saxe et al. 2014; Pennington et al. 2017).

Claim: with orthogonal weights a deep linear network learns in a number of steps independent of
its depth, while Gaussian weights of the same variance (sigma_w^2 = 1) learn more slowly as depth
grows (Saxe, McClelland & Ganguli 2014, arXiv:1312.6120, their Figure on learning time vs depth,
each initialization at its best learning rate); the same holds for tanh networks at the critical
point (Pennington, Schoenholz & Ganguli 2017, arXiv:1711.04735). So orthogonal's advantage grows
with depth.

Measured (experiments/configs/train_isometry.toml: linear and tanh MLPs of width 64 (square hidden
weights), depths 4, 16, 64, zero biases, orthogonal vs Gaussian N(0, 1/fan_in), 3 seeds, 500 SGD
steps (momentum 0.9, batch 64) at each learning rate of the grid 3e-4..3e-2, on digits):

* ``steps``: steps until the training loss (softmax cross-entropy on the whole training set) is
  at most 0.3, median over seeds ("never" counted as infinite), at the learning rate of the grid
  that gets there first (ties: the lower final training loss);
* ``advantage`` = steps(gaussian) / steps(orthogonal) at each depth (inf when only orthogonal gets
  there; NaN when neither does).

Verdict, per activation: agrees when the advantage at the deepest depth is above 1 and at least
GROWS (1.25) times the advantage at the shallowest; partly when orthogonal is faster at the
deepest depth but the advantage did not grow by that much; does not otherwise.

Run:  .venv/bin/python experiments/repro/train_isometry.py [--out DIR] [--small]
      (166 s wall on a quiet 2-core machine)
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

NAME = "train_isometry"
CONFIG = "train_isometry"
SMALL = {"network.depth": 4, "network.width": 8, "network.activation": "linear", "sweep.seeds": 2,
         "train.steps": 20, "train.eval_every": 10, "grid.learning_rate": [0.01, 0.05], "train.target_loss": 2.0}
GROWS = 1.25
INITS = ("orthogonal", "gaussian")


def advantage(gauss_steps: float, orth_steps: float) -> float:
    """steps(gaussian) / steps(orthogonal): inf when only orthogonal reaches the target, 0 when only
    Gaussian does, NaN when neither does."""
    if math.isinf(gauss_steps) and math.isinf(orth_steps):
        return math.nan
    if math.isinf(gauss_steps):
        return math.inf
    if math.isinf(orth_steps):
        return 0.0
    return gauss_steps / max(orth_steps, 1e-12)


def _at(by_init: dict, name: str) -> str:
    m = by_init[name]
    return f"{name} {train_common.fmt_steps(m['steps'])} (lr {m['lr']:g})"


def verdict(numbers: dict) -> list[Verdict]:
    """``numbers["acts"][activation][str(depth)][init]``: dicts with ``steps`` (median at the best
    learning rate, inf = never) and ``lr``."""
    out = []
    for act, by_depth in numbers["acts"].items():
        depths = sorted(by_depth, key=int)
        adv = {d: advantage(by_depth[d]["gaussian"]["steps"], by_depth[d]["orthogonal"]["steps"]) for d in depths}
        lo, hi = adv[depths[0]], adv[depths[-1]]
        text = "; ".join(f"depth {d}: {_at(by_depth[d], 'orthogonal')}, {_at(by_depth[d], 'gaussian')}, "
                         f"advantage {adv[d]:.2f}" for d in depths)
        if math.isnan(hi):
            status, text = DOES_NOT, text + f"; neither reaches the target loss at depth {depths[-1]}"
        elif hi <= 1:
            status = DOES_NOT
        elif math.isinf(hi) and math.isinf(lo):
            status, text = PARTLY, text + "; gaussian never reaches it at any depth: no growth to measure"
        elif math.isinf(hi) or (not math.isnan(lo) and hi >= GROWS * lo):
            status = AGREES
        else:
            status = PARTLY
            text += f"; orthogonal faster at depth {depths[-1]} but the advantage grew less than {GROWS:g}x"
        out.append(Verdict(f"orthogonal's advantage over Gaussian grows with depth ({act})", status, text))
    return out


def best_lr(steps: np.ndarray, final_loss: np.ndarray, lrs: list[float]) -> int:
    """Index of the learning rate whose median steps are lowest (ties: lowest median final loss;
    a diverged member's NaN loss counts as infinite)."""
    keys = []
    for g in range(len(lrs)):
        loss = np.where(np.isfinite(final_loss[g]), final_loss[g], np.inf)
        keys.append((train_common.median_steps(steps[g]), float(np.median(loss))))
    return min(range(len(lrs)), key=lambda g: keys[g])


def summarize(res) -> tuple[dict, list]:
    labels = list(res.coords["initializer"])
    lrs = train_common.grid_values(res, "learning_rate")
    n_seeds = len(res.coords["seed"])
    numbers: dict = {"acts": {}, "target_loss": float(res.config.train.target_loss), "curves": {}}
    rows = []
    for p, prog in enumerate(res.coords["program"]):
        act, depth = prog["activation"], str(prog["depth"])
        st = res.get("steps_to_loss", p)                  # (init, grid, seed)
        fl = np.asarray(res.get("final_train_loss", p), np.float64)
        loss = np.asarray(res.get("train_loss", p), np.float64)  # (init, grid, seed, step)
        diverged = res.get("diverged", p)
        for name in INITS:
            i = labels.index(name)
            g = best_lr(st[i], fl[i], lrs)
            m = {"steps": train_common.median_steps(st[i, g]), "reached": train_common.reached(st[i, g]),
                 "lr": lrs[g], "final_loss": float(np.median(fl[i, g])),
                 "steps_by_lr": [train_common.median_steps(st[i, k]) for k in range(len(lrs))],
                 "diverged_by_lr": [int(diverged[i, k].sum()) for k in range(len(lrs))]}
            numbers["acts"].setdefault(act, {}).setdefault(depth, {})[name] = m
            numbers["curves"].setdefault(act, {}).setdefault(depth, {})[name] = np.median(loss[i, g], axis=0)
            rows.append([act, prog["depth"], name, f"{lrs[g]:g}",
                         train_common.fmt_steps(m["steps"], m["reached"], n_seeds), m["final_loss"],
                         " / ".join(train_common.fmt_steps(x) for x in m["steps_by_lr"]), sum(m["diverged_by_lr"])])
    return numbers, rows


def figure(res, numbers: dict, path: Path) -> Path:
    acts = list(numbers["acts"])
    steps_axis = np.asarray(res.coords["step"])
    fig, axes = common.new_figure(1, 1 + len(acts), height_per_row=3.8, width=11.0)
    ax = axes[0][0]
    styles = {"orthogonal": ("tab:purple", "o-"), "gaussian": ("tab:gray", "s--")}
    n_steps = int(res.config.train.steps)
    for act in acts:
        by_depth = numbers["acts"][act]
        depths = sorted(by_depth, key=int)
        for name in INITS:
            color, style = styles[name]
            ys = [by_depth[d][name]["steps"] for d in depths]
            shown = [y if math.isfinite(y) else n_steps * 1.15 for y in ys]
            ax.plot([int(d) for d in depths], shown, style, color=color, alpha=1.0 if act == "linear" else 0.55,
                    mfc="white" if act != "linear" else color, label=f"{act}, {name}")
    ax.axhline(n_steps * 1.15, color="0.5", lw=0.8, ls=":")
    first = min(int(d) for act in acts for d in numbers["acts"][act])
    ax.text(first, n_steps * 1.17, f"never (in {n_steps} steps)", fontsize=7, color="0.3")
    ax.set_xscale("log", base=2)
    all_depths = sorted({int(d) for act in acts for d in numbers["acts"][act]})
    ax.set_xticks(all_depths, [str(d) for d in all_depths])
    ax.minorticks_off()
    ax.set_xlabel("depth L (hidden layers)")
    ax.set_ylabel(f"steps to training loss ≤ {numbers['target_loss']:g}\n(median of seeds, best learning rate)",
                  fontsize=9)
    ax.set_ylim(0, n_steps * 1.3)
    ax.set_title("learning time against depth", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5, loc="center left")
    depth_colors = ["tab:blue", "tab:orange", "tab:red", "tab:green", "tab:brown"]
    for k, act in enumerate(acts):
        ax = axes[0][k + 1]
        curves = numbers["curves"][act]
        depths = sorted(curves, key=int)
        for j, d in enumerate(depths):
            for name in INITS:
                ax.plot(steps_axis, curves[d][name], "-" if name == "orthogonal" else "--",
                        color=depth_colors[j % len(depth_colors)], lw=1.4, label=f"L = {d}, {name}")
        ax.axhline(numbers["target_loss"], color="0.3", ls=":", lw=0.9)
        ax.set_yscale("log")
        ax.set_xlabel("SGD step")
        ax.set_ylabel("training loss (cross-entropy, nats)", fontsize=9)
        ax.set_title(f"{act}: training loss, best learning rate", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=1, loc="upper right", title="solid orthogonal, dashed gaussian", title_fontsize=7)
    prog = res.coords["program"][0]
    fig.suptitle(f"Orthogonal vs Gaussian (σ_w² = 1) weights in training: width {prog['width']} deep linear and tanh "
                 f"MLPs on digits\nSGD (momentum 0.9), {len(res.coords['seed'])} seeds, each at its best learning rate "
                 f"of the grid; curves: median of seeds; dotted: the target loss", fontsize=10)
    return common.save_figure(fig, path)


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    start = time.perf_counter()
    out = Path(out)
    res = train_common.train(CONFIG, out / "train", SMALL if small else None)
    numbers, rows = summarize(res)
    verdicts = verdict(numbers)
    png = figure(res, numbers, out / f"{NAME}.png")
    seconds = time.perf_counter() - start
    lrs = train_common.grid_values(res, "learning_rate")
    columns = ["activation", "depth", "initializer", "best learning rate",
               f"steps to train loss ≤ {numbers['target_loss']:g} (seeds reached)", "final train loss",
               "steps at lr " + " / ".join(f"{x:g}" for x in lrs), "diverged members"]
    return common.finish(
        out, NAME, verdicts, {k: v for k, v in numbers.items() if k != "curves"}, seconds, columns, rows,
        title=f"Reproduction 3 in training: width {res.coords['program'][0]['width']}, "
              f"{len(res.coords['seed'])} seeds, {res.config.train.steps} steps on digits", png=png, publish=publish)


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
