"""Reproduction 6: LSUV vs static initializers in deep networks (Mishkin & Matas 2016).

Claim (Mishkin & Matas, "All you need is a good init", ICLR 2016, arXiv:1511.06422): LSUV
(orthogonal weights, then each layer in turn rescaled on a minibatch until its output variance is
1) lets very deep networks train as fast as or faster than the static schemes (He, Xavier/Glorot,
orthogonal), reaching the same or better final accuracy.

Measured (experiments/configs/train_lsuv.toml: relu and tanh MLPs of depth 20, width 64, LSUV with
an orthogonal base vs orthogonal, He, Xavier (normal), LeCun, 6 seeds, 500 SGD steps (momentum 0.9,
learning rate 0.01, batch 64) on digits; every member of a seed sees the same minibatches), per
activation and initializer: the steps to 90% test accuracy (median over seeds, "never" counted as
infinite; and per seed in the figure), and the final test accuracy, median (min-max) over seeds.

Verdict, per activation: agrees when LSUV's median steps are within one evaluation interval (25
steps) of the best static initializer's or below, and its median final accuracy within 1
percentage point of the best static one's or above; partly when one of the two holds; does not
otherwise (also when nothing reaches the target).

Run:  .venv/bin/python experiments/repro/train_lsuv.py [--out DIR] [--small]
      (28 s wall on a quiet 2-core machine)
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

NAME = "train_lsuv"
CONFIG = "train_lsuv"
SMALL = {"network.depth": 3, "network.width": 8, "network.activation": "tanh", "sweep.seeds": 2, "train.steps": 20,
         "train.eval_every": 10, "train.target_accuracy": 0.3,
         "sweep.initializers": [{"name": "lsuv", "base": "orthogonal", "label": "lsuv"}, "orthogonal"]}
LSUV = "lsuv"
ACCURACY_TOL = 0.01
COLORS = {"lsuv": "tab:red", "orthogonal": "tab:purple", "he": "tab:blue", "xavier": "tab:green", "lecun": "tab:orange"}


def verdict(numbers: dict) -> list[Verdict]:
    """``numbers["eval_every"]``; ``numbers["acts"][activation][initializer]``: dicts with ``steps``
    (median, inf = never) and ``final`` (median final test accuracy); the initializer ``lsuv``
    against all the others."""
    tol = numbers["eval_every"]
    out = []
    for act, by in numbers["acts"].items():
        static = [i for i in by if i != LSUV]
        fastest = min(static, key=lambda i: (by[i]["steps"], -by[i]["final"]))
        best = max(static, key=lambda i: by[i]["final"])
        mine = by[LSUV]
        claim = f"LSUV trains a deep {act} net as fast and as well as the best static initializer"
        text = (f"lsuv {train_common.fmt_steps(mine['steps'])} steps, final {mine['final']:.3f}; fastest static "
                f"{fastest} {train_common.fmt_steps(by[fastest]['steps'])} steps; most accurate static {best} "
                f"{by[best]['final']:.3f} (tolerance {tol:g} steps, {ACCURACY_TOL:g})")
        if math.isinf(mine["steps"]) and math.isinf(by[fastest]["steps"]):
            out.append(Verdict(claim, DOES_NOT, text + "; nothing reaches the target"))
            continue
        quick = mine["steps"] <= by[fastest]["steps"] + tol
        accurate = mine["final"] >= by[best]["final"] - ACCURACY_TOL
        out.append(Verdict(claim, AGREES if quick and accurate else (PARTLY if quick or accurate else DOES_NOT), text))
    return out


def summarize(res) -> tuple[dict, list]:
    labels = list(res.coords["initializer"])
    n_seeds = len(res.coords["seed"])
    numbers: dict = {"eval_every": int(res.config.train.eval_every), "acts": {}}
    rows = []
    for p, prog in enumerate(res.coords["program"]):
        act = prog["activation"]
        st = res.get("steps_to_accuracy", p)[:, 0]
        final = res.get("final_test_accuracy", p)[:, 0]
        diverged = res.get("diverged", p)[:, 0]
        for i, label in enumerate(labels):
            m = train_common.seed_numbers(st[i], final[i], diverged[i])
            numbers["acts"].setdefault(act, {})[label] = m
            rows.append([act, label, *train_common.seed_cells(m, n_seeds)])
    return numbers, rows


def figure(res, numbers: dict, path: Path) -> Path:
    from matplotlib.lines import Line2D

    programs = res.coords["program"]
    labels = list(res.coords["initializer"])
    steps = np.asarray(res.coords["step"])
    n_steps = int(res.config.train.steps)
    target = float(res.config.train.target_accuracy)
    colors = {label: COLORS.get(label, f"C{i}") for i, label in enumerate(labels)}
    fig, axes = common.new_figure(1, len(programs) + 1, height_per_row=3.8, width=11.0)
    for p, prog in enumerate(programs):
        acc = res.get("test_accuracy", p)[:, 0]
        curves = [(acc[i], colors[label], 2.2 if label == LSUV else 1.3) for i, label in enumerate(labels)]
        train_common.accuracy_bands(axes[0][p], steps, curves, target, f"{prog['activation']}: test accuracy")
    axes[0][0].set_ylabel(f"test accuracy (fraction)\nline: median of seeds; band 25–75%; dotted: {target:g}",
                          fontsize=9)
    train_common.steps_panel(axes[0][-1], numbers["acts"], colors, n_steps, target)
    handles = [Line2D([], [], color=colors[label], lw=2.2 if label == LSUV else 1.3) for label in labels]
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8.5, frameon=False)
    prog = programs[0]
    fig.suptitle(f"LSUV (orthogonal base) vs static initializers: depth {prog['depth']}, width {prog['width']} MLPs on "
                 f"digits, {len(res.coords['seed'])} seeds, SGD (momentum 0.9, lr "
                 f"{float(res.config.train.learning_rate):g})", fontsize=10.5)
    return common.save_figure(fig, path)


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    start = time.perf_counter()
    out = Path(out)
    ok, why = train_common.lsuv_in_training()
    if not ok:
        raise RuntimeError(f"reproduction 6 needs LSUV in training configs, which this jaxinit refuses: {why}")
    res, notes = train_common.train_noting(CONFIG, out / "train", SMALL if small else None)
    numbers, rows = summarize(res)
    verdicts = verdict(numbers)
    png = figure(res, numbers, out / f"{NAME}.png")
    seconds = time.perf_counter() - start
    columns = ["activation", "initializer", f"steps to {res.config.train.target_accuracy:g} test acc. (seeds reached)",
               "final test acc. median (min–max)", "diverged"]
    prog = res.coords["program"][0]
    return common.finish(
        out, NAME, verdicts, numbers, seconds, columns, rows,
        title=f"Reproduction 6: LSUV vs static, depth {prog['depth']}, width {prog['width']}, "
              f"{len(res.coords['seed'])} seeds, {res.config.train.steps} steps on digits", png=png, publish=publish,
        notes=notes)


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
