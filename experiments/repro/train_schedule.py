"""Reproduction 7: does a cyclical learning rate with gradient clipping make up for a poor init?

Claim (the tutorials, ../shared/seeds: "combines best weight initialization with cyclical learning
rates to achieve faster convergence and better final performance", with the gradient clipped to
norm 1; the cyclical schedule is Smith 2017, arXiv:1506.01186): (a) with the good initializer, the
cyclical schedule and clipping converge faster than a constant rate; (b) the question of the issue:
does the gap between a poor and a good initializer close, narrow or stay with them? The tutorials
combine the two as if both matter, i.e. the gap stays.

Measured (experiments/configs/train_schedule.toml: relu, depth 6, width 64, N(0, 0.01²) (poor),
Xavier (mediocre for ReLU), He (good), 4 seeds, 500 SGD steps with momentum 0.9, batch 64, on
digits), over the learning rates 0.003..0.3, in three regimes: ``constant``; ``constant+clip``
(global norm 1); ``cyclical+clip`` (triangular between lr/100 and lr, step size 125: two cycles).
Per regime, initializer and learning rate: the median steps to 90% test accuracy ("never"
counted as infinite) and the median final test accuracy. Per regime and initializer, the best over
the learning rates of each.

The gap between a poor initializer P and the good one G in a regime: ``acc_gap`` = best final
accuracy of G minus P's, ``steps_gap`` = best steps of P minus G's (inf when P never gets there). It
*closes* when acc_gap <= 0.01 and steps_gap <= one evaluation interval; it *narrows* (relative to
the constant regime) when acc_gap shrank by at least 0.05 or a finite steps_gap shrank by more than
one evaluation interval; else it *stays*.

A poor initializer with no gap at the best constant rate (it already "closes" there) gets no
verdict of its own: the last verdict's text says so.

Verdicts: (a) agrees when G's best steps under cyclical+clip are below the constant regime's by more
than one evaluation interval and its best final accuracy is within 0.01; partly when it is as fast
(within an interval); does not when slower. (b), per poor initializer: stays -> agrees, narrows ->
partly, closes -> does not.

Run:  .venv/bin/python experiments/repro/train_schedule.py [--out DIR] [--small]
      (49 s wall on a quiet 2-core machine)
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

NAME = "train_schedule"
CONFIG = "train_schedule"
SMALL = {"network.depth": 2, "network.width": 8, "sweep.seeds": 2, "train.steps": 20, "train.eval_every": 10,
         "train.target_accuracy": 0.3, "grid.learning_rate": [0.05],
         "sweep.initializers": [{"name": "normal", "stddev": 0.01, "label": "N(0, 0.01²)"},
                                {"name": "he_normal", "label": "he"}]}
GOOD = "he"
POOR = ("N(0, 0.01²)", "xavier")
CONSTANT, CLIPPED, CYCLICAL = "constant", "constant+clip", "cyclical+clip"
REGIMES = (CONSTANT, CLIPPED, CYCLICAL)
SMALL_REGIMES = (CONSTANT, CYCLICAL)
CLIP = 1.0
BASE_RATIO = 100.0   # the tutorials' base_lr = max_lr / 100
CYCLES = 2           # full triangles in the run: step_size = steps / (2 * CYCLES)
ACCURACY_TOL = 0.01
NARROWS = 0.05       # the accuracy gap shrank by at least 5 percentage points


def regime_overrides(regime: str, lr: float | None, steps: int) -> dict:
    """Overrides of train_schedule.toml for one regime (``lr``: the cyclical schedule's maximum)."""
    if regime == CONSTANT:
        return {}
    if regime == CLIPPED:
        return {"train.clip_global_norm": CLIP}
    if regime == CYCLICAL:
        step_size = max(1, steps // (2 * CYCLES))
        return {"grid.learning_rate": None, "train.clip_global_norm": CLIP,
                "train.learning_rate": {"name": "cyclical", "base": lr / BASE_RATIO, "max": lr, "step_size": step_size}}
    raise ValueError(f"regime must be one of {REGIMES}; got {regime!r}")


def best(by_lr: dict) -> dict:
    """The best over learning rates: fewest median steps (``steps``, with its ``lr``) and highest
    median final accuracy (``final``, with its ``final_lr``)."""
    quick = min(by_lr, key=lambda k: (by_lr[k]["steps"], -by_lr[k]["final"]))
    acc = max(by_lr, key=lambda k: by_lr[k]["final"])
    return {"steps": by_lr[quick]["steps"], "lr": float(quick), "final": by_lr[acc]["final"], "final_lr": float(acc)}


def gap(regime: dict, poor: str, good: str = GOOD) -> dict:
    p, g = best(regime[poor]), best(regime[good])
    steps_gap = math.inf if math.isinf(p["steps"]) else p["steps"] - g["steps"]
    return {"acc_gap": g["final"] - p["final"], "steps_gap": steps_gap}


def gap_outcome(constant: dict, other: dict, eval_every: float) -> str:
    """closes / narrows / stays: ``other``'s gap against the constant regime's."""
    if other["acc_gap"] <= ACCURACY_TOL and other["steps_gap"] <= eval_every:
        return "closes"
    if other["acc_gap"] <= constant["acc_gap"] - NARROWS:
        return "narrows"
    if math.isfinite(other["steps_gap"]) and other["steps_gap"] < constant["steps_gap"] - eval_every:
        return "narrows"
    return "stays"


def _gap_text(g: dict) -> str:
    steps = "never" if math.isinf(g["steps_gap"]) else f"{g['steps_gap']:+.0f}"
    return f"accuracy gap {g['acc_gap']:.3f}, steps gap {steps}"


def verdict(numbers: dict) -> list[Verdict]:
    """``numbers["regimes"][regime][initializer][lr as text]``: dicts with ``steps`` (median, inf =
    never) and ``final`` (median final test accuracy); ``numbers["eval_every"]``."""
    regimes = numbers["regimes"]
    tol = numbers["eval_every"]
    c, y = best(regimes[CONSTANT][GOOD]), best(regimes[CYCLICAL][GOOD])
    text = (f"{GOOD}: constant {train_common.fmt_steps(c['steps'])} steps (lr {c['lr']:g}), final {c['final']:.3f}; "
            f"cyclical+clip {train_common.fmt_steps(y['steps'])} steps (max lr {y['lr']:g}), final {y['final']:.3f}")
    if math.isinf(y["steps"]) and math.isinf(c["steps"]):
        status = DOES_NOT
        text += "; neither reaches the target"
    elif y["steps"] < c["steps"] - tol and y["final"] >= c["final"] - ACCURACY_TOL:
        status = AGREES
    elif y["steps"] <= c["steps"] + tol:
        status = PARTLY
        text += " (as fast within one evaluation interval" + (", less accurate)" if y["final"] < c["final"] -
                                                               ACCURACY_TOL else ")")
    else:
        status = DOES_NOT
    out = [Verdict(f"a cyclical learning rate with clipping makes the good initializer ({GOOD}) converge faster",
                   status, text)]
    no_gap = []
    for poor in POOR:
        if poor not in regimes[CONSTANT]:
            continue
        base = gap(regimes[CONSTANT], poor)
        if gap_outcome(base, base, tol) == "closes":  # no gap at the best constant rate: nothing to close
            no_gap.append(f"{poor} vs {GOOD}: no gap at the best constant rate ({_gap_text(base)}), nothing to close")
            continue
        parts = [f"constant: {_gap_text(base)}"]
        outcome = "stays"
        for r in (CLIPPED, CYCLICAL):
            if r not in regimes:
                continue
            g = gap(regimes[r], poor)
            o = gap_outcome(base, g, tol)
            parts.append(f"{r}: {_gap_text(g)} ({o})")
            if r == CYCLICAL:
                outcome = o
        status = {"stays": AGREES, "narrows": PARTLY, "closes": DOES_NOT}[outcome]
        out.append(Verdict(f"the gap between {poor} and {GOOD} stays with a cyclical rate and clipping "
                           f"(it {outcome})", status, "; ".join(parts)))
    if no_gap:
        out[-1] = Verdict(out[-1].claim, out[-1].status, out[-1].why + "; " + "; ".join(no_gap))
    return out


def summarize(results: dict) -> tuple[dict, list]:
    """``results``: regime -> list of (Results, learning rate or None for a grid run)."""
    numbers: dict = {"regimes": {}}
    rows = []
    for regime, runs in results.items():
        for res, lr in runs:
            numbers["eval_every"] = int(res.config.train.eval_every)
            labels = list(res.coords["initializer"])
            lrs = train_common.grid_values(res, "learning_rate") if lr is None else [lr]
            st = res.get("steps_to_accuracy")                  # (init, grid, seed)
            final = res.get("final_test_accuracy")
            diverged = res.get("diverged")
            n_seeds = len(res.coords["seed"])
            for i, label in enumerate(labels):
                for g, rate in enumerate(lrs):
                    m = train_common.seed_numbers(st[i, g], np.where(np.isfinite(final[i, g]), final[i, g], 0.0),
                                                  diverged[i, g], per_seed=False)
                    numbers["regimes"].setdefault(regime, {}).setdefault(label, {})[f"{rate:g}"] = m
                    rows.append([regime, label, f"{rate:g}", *train_common.seed_cells(m, n_seeds)])
    return numbers, rows


def figure(numbers: dict, meta: dict, path: Path) -> Path:
    regimes = numbers["regimes"]
    fig, axes = common.new_figure(2, len(regimes), height_per_row=3.2, width=11.0)
    colors = {"N(0, 0.01²)": "tab:gray", "xavier": "tab:green", "he": "tab:blue"}
    never = meta["steps"] * 1.12
    for r, (regime, by_init) in enumerate(regimes.items()):
        for label, by_lr in by_init.items():
            lrs = sorted(by_lr, key=float)
            x = [float(k) for k in lrs]
            c = colors.get(label, "k")
            ax = axes[0][r]
            ax.fill_between(x, [by_lr[k]["final_min"] for k in lrs], [by_lr[k]["final_max"] for k in lrs], color=c,
                            alpha=0.15, lw=0)
            ax.plot(x, [by_lr[k]["final"] for k in lrs], "o-", color=c, ms=4, label=label)
            ys = [by_lr[k]["steps"] for k in lrs]
            axes[1][r].plot(x, [y if math.isfinite(y) else never for y in ys], "o-", color=c, ms=4, label=label)
        ax = axes[0][r]
        ax.set_title(f"{regime}: final test accuracy", fontsize=10)
        ax.set_ylim(0, 1)
        ax = axes[1][r]
        ax.axhline(never, color="0.5", ls=":", lw=0.8)
        ax.text(min(float(k) for k in next(iter(by_init.values()))), never * 1.03, "never", fontsize=7, color="0.3")
        ax.set_ylim(0, never * 1.15)
        ax.set_title(f"{regime}: steps to {meta['target']:g} test accuracy", fontsize=10)
        ax.set_xlabel("learning rate (cyclical: its maximum)" if regime == CYCLICAL else "learning rate")
        for ax in (axes[0][r], axes[1][r]):
            ax.set_xscale("log")
            ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("final test accuracy (fraction)\nline: median; band: min–max of seeds", fontsize=9)
    axes[1][0].set_ylabel("steps to target\n(median of seeds)", fontsize=9)
    axes[0][0].legend(fontsize=8, loc="center left", title="initializer", title_fontsize=8)
    fig.suptitle(f"Poor vs good initialization under a constant rate, clipping (global norm {CLIP:g}) and a cyclical "
                 f"rate (lr/{BASE_RATIO:g} to lr, clipped)\nrelu MLPs of depth {meta['depth']}, width {meta['width']} "
                 f"on digits, {meta['seeds']} seeds, {meta['steps']} SGD steps (momentum 0.9)", fontsize=10.5)
    return common.save_figure(fig, path)


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    start = time.perf_counter()
    out = Path(out)
    base = dict(SMALL if small else {})
    data = train_common.config_data(CONFIG)
    steps = int(base.get("train.steps", data["train"]["steps"]))
    lrs = list(base.get("grid.learning_rate", data["grid"]["learning_rate"]))
    results: dict = {}
    for regime in (SMALL_REGIMES if small else REGIMES):
        if regime == CYCLICAL:
            results[regime] = [(train_common.train(CONFIG, out / "train" / f"{regime}-{lr:g}",
                                                   {**base, **regime_overrides(regime, lr, steps)}, label=regime), lr)
                               for lr in lrs]
        else:
            results[regime] = [(train_common.train(CONFIG, out / "train" / regime,
                                                   {**base, **regime_overrides(regime, None, steps)}, label=regime),
                                None)]
    numbers, rows = summarize(results)
    verdicts = verdict(numbers)
    res0 = results[CONSTANT][0][0]
    prog = res0.coords["program"][0]
    meta = {"steps": steps, "target": float(res0.config.train.target_accuracy), "depth": prog["depth"],
            "width": prog["width"], "seeds": len(res0.coords["seed"])}
    png = figure(numbers, meta, out / f"{NAME}.png")
    seconds = time.perf_counter() - start
    columns = ["regime", "initializer", "learning rate (cyclical: max)",
               f"steps to {meta['target']:g} test acc. (seeds reached)", "final test acc. median (min–max)",
               "diverged"]
    return common.finish(
        out, NAME, verdicts, numbers, seconds, columns, rows,
        title=f"Reproduction 7: poor vs good init under constant, clipped and cyclical rates (relu, depth "
              f"{meta['depth']}, width {meta['width']}, {meta['seeds']} seeds, {steps} steps on digits)", png=png,
        publish=publish)


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
