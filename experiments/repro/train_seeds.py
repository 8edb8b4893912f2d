"""Reproduction 1 in training: the tutorials' initializers (../shared/seeds) trained on digits.

Claims (the five tutorials): (a) zeros or a constant make every unit of a layer compute the same
thing and receive the same update, so the symmetry is never broken; (b) a good initialization
converges faster than small random weights; (c) He initialization suits ReLU, Xavier (and LeCun)
suit tanh and sigmoid.

Measured (experiments/configs/train_seeds.toml: depth 6, width 64, relu/tanh/sigmoid, the nine
initializers incl. LSUV (orthogonal base), 6 seeds, 500 SGD steps (momentum 0.9, learning rate
0.01, batch 64), every member of a seed on the same minibatches), per activation and initializer:

* ``steps``: steps to 90% test accuracy, median over seeds ("never" counted as infinite: the median
  is "never" when half the seeds or more never got there), and how many seeds reached it;
* ``final``: the final test accuracy, median (min-max) over seeds;
* ``units``: the largest ``distinct_units`` over hidden layers and seeds after training (1: every
  unit of every layer is still a copy);
* ``grad``: the raw gradient's global norm over every evaluation and seed: 5%, 50%, 95% quantiles.

Verdicts: (a) agrees when zeros and constant(0.01) end with 1 distinct unit in every layer, seed
and activation; (b) per activation, the suited initializer's median steps below both small random
ones' (N(0, 0.01²), U(±0.05)); (c) per activation, the suited initializer "suits" when its median
steps are within one evaluation interval (25 steps) of the fastest initializer's and its median
final accuracy within 1 percentage point of the best: partly when one of the two holds; "does not"
when no initializer trains that activation at all (best median final accuracy below 0.5).

Run:  .venv/bin/python experiments/repro/train_seeds.py [--out DIR] [--small]
      (38 s wall on a quiet 2-core machine)
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

NAME = "train_seeds"
CONFIG = "train_seeds"
SMALL = {"network.depth": 2, "network.width": 8, "sweep.seeds": 2, "train.steps": 20, "train.eval_every": 10,
         "network.activation": "relu", "train.target_accuracy": 0.3,
         "sweep.initializers": ["zeros", {"name": "normal", "stddev": 0.01, "label": "N(0, 0.01²)"},
                                {"name": "he_normal", "label": "he"}]}
SYMMETRIC = ("zeros", "constant(0.01)")
SMALL_RANDOM = ("N(0, 0.01²)", "U(±0.05)")
SUITS = {"relu": ("he",), "tanh": ("xavier", "lecun"), "sigmoid": ("xavier", "lecun")}
ACCURACY_TOL = 0.01  # "as accurate": within 1 percentage point of the best median final accuracy
TRAINS = 0.5         # an activation nothing trains (best median final test accuracy below this) tests no "suits"
COLORS = {"zeros": "black", "constant(0.01)": "tab:brown", "N(0, 0.01²)": "tab:gray", "U(±0.05)": "tab:olive",
          "xavier": "tab:green", "he": "tab:blue", "lecun": "tab:orange", "orthogonal": "tab:purple",
          "lsuv": "tab:red"}
STYLES = {"xavier": "--", "lecun": ":", "orthogonal": "-.", "lsuv": (0, (5, 1, 1, 1))}


def verdict(numbers: dict) -> list[Verdict]:
    """``numbers["eval_every"]``; ``numbers["acts"][activation][initializer]``: dicts with ``steps``
    (median, inf = never), ``final`` (median final test accuracy), ``units`` (max distinct units)."""
    acts = numbers["acts"]
    tol = numbers["eval_every"]
    sym = {f"{a}/{i}": acts[a][i]["units"] for a in acts for i in SYMMETRIC if i in acts[a]}
    kept = [k for k, u in sym.items() if u == 1]
    out = [Verdict("zeros/constant never break the symmetry (distinct_units 1 after training)",
                   AGREES if sym and len(kept) == len(sym) else (PARTLY if kept else DOES_NOT),
                   ", ".join(f"{k}: {u}" for k, u in sym.items()) + " distinct units at most")]
    faster, slower = [], []
    for a, good in SUITS.items():
        if a not in acts:
            continue
        by = acts[a]
        goods, smalls = [i for i in good if i in by], [i for i in SMALL_RANDOM if i in by]
        if not (goods and smalls):
            continue
        g = min(goods, key=lambda i: by[i]["steps"])
        small = min(smalls, key=lambda i: by[i]["steps"])
        gs, ss = by[g]["steps"], by[small]["steps"]
        text = f"{a}: {g} {train_common.fmt_steps(gs)} vs {small} {train_common.fmt_steps(ss)} steps"
        if not (math.isfinite(gs) or math.isfinite(ss)):
            text += " (neither reaches the target)"
        (faster if gs < ss else slower).append(text)
    if faster or slower:
        out.append(Verdict("a good initialization converges faster than small random weights",
                           AGREES if not slower else (PARTLY if faster else DOES_NOT),
                           "; ".join(faster + [t + " (not faster)" for t in slower])))
    for a, good in SUITS.items():
        if a not in acts or not any(i in acts[a] for i in good):
            continue
        by = acts[a]
        good = tuple(i for i in good if i in by)
        fastest = min(by, key=lambda i: by[i]["steps"])
        best_acc = max(by[i]["final"] for i in by)
        g = min(good, key=lambda i: (by[i]["steps"], -by[i]["final"]))
        claim = f"{' / '.join(good)} suit{'s' if len(good) == 1 else ''} {a} in training"
        if best_acc < TRAINS:
            out.append(Verdict(claim, DOES_NOT, f"no initializer trains {a}: best median final test accuracy "
                               f"{best_acc:.3f} ({max(by, key=lambda i: by[i]['final'])}), {g} {by[g]['final']:.3f}, "
                               f"none reaches the target"))
            continue
        quick = by[g]["steps"] <= by[fastest]["steps"] + tol and math.isfinite(by[g]["steps"])
        accurate = by[g]["final"] >= best_acc - ACCURACY_TOL
        ranked = sorted(by, key=lambda i: (by[i]["steps"], -by[i]["final"]))[:4]
        out.append(Verdict(
            claim, AGREES if quick and accurate else (PARTLY if quick or accurate else DOES_NOT),
            f"{g}: {train_common.fmt_steps(by[g]['steps'])} steps, final {by[g]['final']:.3f}; fastest "
            f"{fastest} {train_common.fmt_steps(by[fastest]['steps'])} steps, best final {best_acc:.3f} "
            f"(tolerance {tol:g} steps, {ACCURACY_TOL:g}); ranking by steps: "
            + ", ".join(f"{i} {train_common.fmt_steps(by[i]['steps'])}" for i in ranked)))
    return out


def figure(res, numbers: dict, path: Path) -> Path:
    from matplotlib.lines import Line2D

    programs = res.coords["program"]
    labels = list(res.coords["initializer"])
    steps = np.asarray(res.coords["step"])
    target = float(res.config.train.target_accuracy)
    fig, axes = common.new_figure(2, len(programs), height_per_row=3.3, width=11.0)
    for p, prog in enumerate(programs):
        act = prog["activation"]
        acc = res.get("test_accuracy", p)[:, 0]           # (init, seed, step)
        gn = res.get("grad_norm", p)[:, 0]
        ax = axes[0][p]
        for i, label in enumerate(labels):
            c = COLORS.get(label, f"C{i}")
            lo, mid, hi = train_common.band(acc[i])
            ax.fill_between(steps, lo, hi, color=c, alpha=0.15, lw=0)
            ax.plot(steps, mid, color=c, lw=1.5, ls=STYLES.get(label, "-"))
        ax.axhline(target, color="0.3", lw=0.8, ls=":")
        ax.set_ylim(0, 1)
        ax.set_title(f"{act}: test accuracy", fontsize=10)
        ax.set_xlabel("SGD step")
        ax.grid(True, alpha=0.3)
        ax = axes[1][p]
        data = [np.log10(np.maximum(np.asarray(gn[i], np.float64).ravel(), 1e-12)) for i in range(len(labels))]
        box = ax.boxplot(data, whis=(5, 95), showfliers=False, patch_artist=True, widths=0.6,
                         medianprops={"color": "black"})
        for i, patch in enumerate(box["boxes"]):
            patch.set_facecolor(COLORS.get(labels[i], f"C{i}"))
            patch.set_alpha(0.6)
        at0 = [np.log10(max(float(np.median(gn[i][:, 0])), 1e-12)) for i in range(len(labels))]
        ax.plot(range(1, len(labels) + 1), at0, "kx", ms=6)
        ax.set_xticks(range(1, len(labels) + 1), [str(i + 1) for i in range(len(labels))], fontsize=8)
        ax.set_title(f"{act}: gradient norm over training", fontsize=10)
        ax.set_xlabel("initializer (numbered as in the legend)", fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"test accuracy (fraction)\n(dotted: target {target:g})", fontsize=9)
    axes[1][0].set_ylabel("log10 ‖∇L‖ (global norm)\nbox 25–75%, whiskers 5–95%", fontsize=9)
    acts = numbers["acts"]
    handles = [Line2D([], [], color=COLORS.get(label, f"C{i}"), lw=2, ls=STYLES.get(label, "-"))
               for i, label in enumerate(labels)]
    first = programs[0]["activation"]
    names = [f"{i + 1} {label}" + (f" ({acts[first][label]['units']} distinct unit)" if label in SYMMETRIC else "")
             for i, label in enumerate(labels)]
    handles.append(Line2D([], [], color="black", marker="x", ls="none", ms=6))
    names.append("× ‖∇L‖ at step 0 (median)")
    fig.legend(handles, names, loc="outside lower center", ncol=5, fontsize=8, frameon=False,
               title=f"top: median over {len(res.coords['seed'])} seeds, band 25–75% of seeds; bottom: all "
                     "seeds and evaluations", title_fontsize=8)
    fig.suptitle(f"The tutorials' initializers in training: depth {programs[0]['depth']}, width "
                 f"{programs[0]['width']} MLPs on digits, SGD (momentum 0.9, lr "
                 f"{float(res.config.train.learning_rate):g})", fontsize=10.5)
    return common.save_figure(fig, path)


def summarize(res) -> tuple[dict, list]:
    """The numbers the verdict reads and the table's rows, from a finished run's results."""
    labels = list(res.coords["initializer"])
    numbers: dict = {"eval_every": int(res.config.train.eval_every), "acts": {}}
    rows = []
    n_seeds = len(res.coords["seed"])
    for p, prog in enumerate(res.coords["program"]):
        act = prog["activation"]
        st = res.get("steps_to_accuracy", p)[:, 0]           # (init, seed)
        final = res.get("final_test_accuracy", p)[:, 0]
        units = res.get("distinct_units", p)[:, 0]           # (init, seed, layer)
        gn = np.asarray(res.get("grad_norm", p)[:, 0], np.float64)
        diverged = res.get("diverged", p)[:, 0]
        for i, label in enumerate(labels):
            fin = train_common.spread(final[i])
            g5, g50, g95 = (float(np.nanquantile(gn[i], q)) for q in (0.05, 0.5, 0.95))
            m = {"steps": train_common.median_steps(st[i]), "reached": train_common.reached(st[i]),
                 "final": fin["median"], "final_min": fin["min"], "final_max": fin["max"],
                 "units": int(units[i].max()), "grad_p5": g5, "grad_median": g50, "grad_p95": g95,
                 "grad_init": float(np.median(gn[i][:, 0])), "diverged": int(diverged[i].sum())}
            numbers["acts"].setdefault(act, {})[label] = m
            rows.append([act, label, train_common.fmt_steps(m["steps"], m["reached"], n_seeds),
                         train_common.final_cell(m), m["units"],
                         m["grad_init"], f"{g5:.2g} / {g50:.2g} / {g95:.2g}", m["diverged"]])
    return numbers, rows


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    start = time.perf_counter()
    out = Path(out)
    ok, why = train_common.lsuv_in_training()
    overrides = dict(SMALL if small else {})
    notes: list[str] = []
    if not ok:
        base = train_common.config_data(CONFIG)
        overrides["sweep.initializers"] = [e for e in base["sweep"]["initializers"]
                                           if not (isinstance(e, dict) and e.get("name") == "lsuv")]
        notes.append(f"LSUV left out: a training config refuses it ({why})")
    res, warned = train_common.train_noting(CONFIG, out / "train", overrides)
    notes += warned
    numbers, rows = summarize(res)
    verdicts = verdict(numbers)
    png = figure(res, numbers, out / f"{NAME}.png")
    seconds = time.perf_counter() - start
    cfg = res.config
    prog0 = res.coords["program"][0]
    columns = ["activation", "initializer", f"steps to {cfg.train.target_accuracy:g} test acc. (seeds reached)",
               "final test acc. median (min–max)", "distinct units (max)", "‖∇L‖ at step 0",
               "‖∇L‖ 5% / 50% / 95% over training", "diverged"]
    return common.finish(
        out, NAME, verdicts, numbers, seconds, columns, rows,
        title=f"Reproduction 1 in training: depth {prog0['depth']}, width {prog0['width']}, "
              f"{len(res.coords['seed'])} seeds, "
              f"{cfg.train.steps} steps on digits", png=png, publish=publish, notes=notes)


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
