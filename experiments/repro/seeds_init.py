"""Reproduction 1 at initialization: the tutorials' initializer comparison (../shared/seeds).

Claims (the five tutorials): (a) zeros or a constant make every unit of a layer compute the same
thing: nothing breaks the symmetry; (b) small random weights make the signal and the gradients
vanish in deep nets; (c) He initialization suits ReLU, Xavier (and LeCun) suit tanh and sigmoid.
Whether a good initialization then trains faster is the training part (``jaxinit train``).

Measured (experiments/configs/seeds_init.toml: digits inputs, width 256, depth 50, 16 seeds, zero
biases, softmax cross-entropy on random labels for the gradients), per activation and initializer:

* ``distinct_units``: how many different units (kernel columns) a hidden layer starts with (drawn
  with the initializer itself on the (256, 256) hidden shape): 1 means every unit is a copy;
* ``log10 q_L/q_1``: how the pre-activations' second moment changes over the 50 layers (median
  over seeds); ``-inf`` when q is 0;
* ``g_1``, ``log10 g_1/g_L``: the first layer's weight-gradient norm, and over the last's (median
  over seeds): below 0 the gradient vanishes toward the input, above 0 it explodes. Small weights
  shrink every layer's gradient alike in ReLU/tanh nets (``g_1/g_L`` ~ 1, both tiny), so the
  vanishing-gradient claim is judged on ``g_1`` itself (<= 1e-6: a step moves nothing);
* ``score`` = max(|log10 q_L/q_1|, |log10 g_1/g_L|) in decades: how far the network is from
  carrying both signal and gradient through depth; an initializer "suits" an activation when its
  score is the lowest of the eight static initializers and within KEEPS (1 decade, a factor of 10).
  LSUV (orthogonal, then rescaled on the batch) is measured beside them, not ranked with them.

Run:  .venv/bin/python experiments/repro/seeds_init.py [--out DIR] [--small]   (~2-3 min on 2 CPU cores)
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

NAME = "seeds_init"
CONFIG = "seeds_init"
SMALL = {"network.depth": 6, "network.width": 16, "sweep.seeds": 2, "inputs.batch": 8, "network.activation": "relu"}
KEEPS = 1.0      # decades: within a factor of 10 over the whole depth
VANISH = -6.0    # decades: the signal "vanished" = q_L a millionth of q_1 or less
GRADIENT_GONE = 1e-6  # the first layer's gradient norm: a step of learning rate <= 1 moves it by <= 1e-6
SYMMETRIC = ("zeros", "constant(0.01)")
SMALL_RANDOM = ("N(0, 0.01²)", "U(±0.05)")
STYLES = {"xavier": "--", "lecun": ":", "orthogonal": "-."}  # they coincide on ReLU: keep each visible
DATA_DEPENDENT = ("lsuv",)  # fitted on the batch: shown beside the static initializers, not ranked with them
SUITS = {"relu": ("he",), "tanh": ("xavier", "lecun"), "sigmoid": ("xavier", "lecun")}


def distinct_units(kernel: np.ndarray) -> int:
    """Number of different columns (units) of a ``(fan_in, fan_out)`` kernel."""
    return int(np.unique(np.asarray(kernel).T, axis=0).shape[0])


def log_ratio(num: float, den: float) -> float:
    """log10(num / den) with the limits: -inf when num is 0, +inf when den is 0, NaN when both are."""
    if num == 0 and den == 0:
        return math.nan
    if num == 0:
        return -math.inf
    if den == 0:
        return math.inf
    return math.log10(num / den)


def score(q_ratio: float, g_ratio: float) -> float:
    values = [abs(v) for v in (q_ratio, g_ratio)]
    return math.inf if any(math.isnan(v) for v in values) else max(values)


def verdict(numbers: dict) -> list[Verdict]:
    """``numbers["units"][init]``: distinct units; ``numbers["width"]``; ``numbers[activation][init]``:
    dicts with ``q_ratio``, ``g_ratio``, ``score`` (decades)."""
    width = numbers["width"]
    units = numbers["units"]
    sym_ok = [i for i in SYMMETRIC if units[i] == 1]
    rand_ok = [i for i in units if i not in SYMMETRIC and units[i] == width]
    status = AGREES if len(sym_ok) == len(SYMMETRIC) and len(rand_ok) == len(units) - len(SYMMETRIC) else (
        PARTLY if sym_ok else DOES_NOT)
    v1 = Verdict("zeros/constant start every unit identical (symmetry not broken at init)", status,
                 ", ".join(f"{i}: {units[i]}" for i in units) + f" distinct units of {width} (the training part "
                 "checks they stay so)")
    acts = [a for a in numbers if a not in ("units", "width")]
    vanish, stays = [], []
    for a in acts:
        for i in SMALL_RANDOM:
            m = numbers[a][i]
            text = f"{a}/{i}: q_L/q_1 = 10^{m['q_ratio']:.1f}, g_1 = {m['g_1']:.2g}"
            (vanish if m["q_ratio"] <= VANISH and m["g_1"] <= GRADIENT_GONE else stays).append(text)
    v2 = Verdict("small random weights make signal and gradients vanish in deep nets",
                 AGREES if not stays else (PARTLY if vanish else DOES_NOT),
                 (f"both vanish (q_L/q_1 <= 10^{VANISH:g}, g_1 <= {GRADIENT_GONE:g}): " + "; ".join(vanish)
                  if vanish else "") + (("; " if vanish else "") + "not both: " + "; ".join(stays) if stays else ""))
    out = [v1, v2]
    for a, named in SUITS.items():
        by = numbers.get(a, {})
        good = tuple(i for i in named if i in by)
        if not good:
            continue
        static = [i for i in by if i not in DATA_DEPENDENT]  # the tutorials rank the static initializers
        best = min(static, key=lambda i: by[i]["score"])
        best_score = by[best]["score"]
        mine = min(by[i]["score"] for i in good)
        is_best = mine <= best_score
        keeps = mine <= KEEPS
        status = AGREES if is_best and keeps else (PARTLY if is_best or keeps else DOES_NOT)
        ranked = sorted(by, key=lambda i: by[i]["score"])[:4]
        out.append(Verdict(f"{' / '.join(named)} suit{'s' if len(named) == 1 else ''} {a}", status,
                           f"best static {best} ({best_score:.2f} decades); {'/'.join(good)}: {mine:.2f}; ranking "
                           + ", ".join(f"{i} {by[i]['score']:.2f}" for i in ranked)))
    return out


def figure(res, numbers: dict, path: Path) -> Path:
    from matplotlib.lines import Line2D

    programs = res.coords["program"]
    labels = res.coords["initializer"]
    fig, axes = common.new_figure(2, len(programs), height_per_row=3.1, width=11.0)
    colors = {"zeros": "black", "constant(0.01)": "tab:brown", "N(0, 0.01²)": "tab:gray", "U(±0.05)": "tab:olive",
              "xavier": "tab:green", "he": "tab:blue", "lecun": "tab:orange", "orthogonal": "tab:purple",
              "lsuv": "tab:cyan"}
    for p, prog in enumerate(programs):
        q = res.get("q", p)[:, 0]
        g = res.get("grad_w_norm", p)[:, 0]
        layers = np.arange(1, q.shape[-1] + 1)
        for i, label in enumerate(labels):
            c = colors.get(label, f"C{i}")
            for ax, v in ((axes[0][p], q[i]), (axes[1][p], g[i])):
                v = np.where(v > 0, v, np.nan)
                lo, mid, hi = common.seed_quantiles(v, (0.05, 0.5, 0.95))
                ax.fill_between(layers, lo, hi, color=c, alpha=0.15, lw=0)
                ax.plot(layers, mid, color=c, lw=1.5, ls=STYLES.get(label, "-"))
        axes[0][p].set_title(f"{prog['activation']}: signal q_ℓ", fontsize=10)
        axes[1][p].set_title(f"{prog['activation']}: gradient ‖∂L/∂W_ℓ‖", fontsize=10)
        for ax in (axes[0][p], axes[1][p]):
            ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
        axes[0][p].set_ylim(1e-30, 1e12)
        axes[1][p].set_ylim(1e-40, 1e20)
        axes[1][p].set_xlabel("layer ℓ")
    axes[0][0].set_ylabel("q_ℓ = mean (h^ℓ)²\n(digits inputs, q₀ = 1)", fontsize=9)
    axes[1][0].set_ylabel("‖∂L/∂W_ℓ‖_F (softmax\ncross-entropy, random labels)", fontsize=9)
    handles = [Line2D([], [], color=colors.get(label, f"C{i}"), lw=2, ls=STYLES.get(label, "-"))
               for i, label in enumerate(labels)]
    names = [f"{label} ({numbers['units'][label]} distinct units)" if label in SYMMETRIC else label for label in labels]
    names = [n + " — q = 0, gradient 0: not drawn" if n.startswith("zeros") else n for n in names]
    names = [n + " — overflows (relu)" if n.startswith("constant") else n for n in names]
    fig.legend(handles, names, loc="outside lower center", ncol=4, fontsize=8, frameon=False,
               title=f"line: median over {len(res.coords['seed'])} seeds; band: 5–95% of seeds", title_fontsize=8)
    fig.suptitle(f"The tutorials' initializers at initialization, measured: ReLU, tanh and sigmoid MLPs, depth "
                 f"{int(programs[0]['depth'])}, width {int(programs[0]['width'])}, on digits", fontsize=10.5)
    return common.save_figure(fig, path)


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    import jax

    from jaxinit.lab.figures import theory_overlay

    start = time.perf_counter()
    out = Path(out)
    from jaxinit.lsuv import LSUV, LSUVWarning

    res, lsuv_notes = common.sweep_noting(CONFIG, out / "sweep", SMALL if small else None, LSUVWarning)
    config = res.config
    labels = res.coords["initializer"]
    width = int(res.coords["program"][0]["width"])
    numbers: dict = {"width": width, "units": {}}
    for entry in config.sweep.initializers:
        draw = entry.init.base if isinstance(entry.init, LSUV) else entry.init  # LSUV rescales its base's draw
        kernel = draw(jax.random.key(0), (width, width))
        numbers["units"][entry.label] = distinct_units(np.asarray(kernel))
    rows = []
    for p, prog in enumerate(res.coords["program"]):
        act = prog["activation"]
        q = np.asarray(res.get("q", p)[:, 0], np.float64)            # (init, seed, layer)
        g = np.asarray(res.get("grad_w_norm", p)[:, 0], np.float64)
        bad = res.get("first_nonfinite_layer", p)[:, 0]               # (init, seed): -1 when finite
        theory = theory_overlay(res, p)["q"][:, 0]                     # (init, layer); NaN: no prediction
        for i, label in enumerate(labels):
            qs = common.seed_quantiles(q[i], (0.5,))[0]
            gs = common.seed_quantiles(g[i], (0.5,))[0]
            m = {"q_1": float(qs[0]), "q_L": float(qs[-1]), "q_ratio": log_ratio(float(qs[-1]), float(qs[0])),
                 "g_1": float(gs[0]), "g_L": float(gs[-1]), "g_ratio": log_ratio(float(gs[0]), float(gs[-1])),
                 "theory_q_ratio": log_ratio(float(theory[i][-1]), float(theory[i][0]))
                 if np.isfinite(theory[i]).all() else math.nan,
                 "overflow_layer": int(np.median(bad[i])) + 1 if (bad[i] >= 0).sum() * 2 > bad[i].size else None}
            m["score"] = score(m["q_ratio"], m["g_ratio"])
            numbers.setdefault(act, {})[label] = m
            rows.append([act, label, numbers["units"][label], m["q_1"], m["q_L"], m["q_ratio"], m["theory_q_ratio"],
                         m["g_1"], m["g_L"], m["g_ratio"], m["score"],
                         "—" if m["overflow_layer"] is None else f"layer {m['overflow_layer']}"])
    verdicts = verdict(numbers)
    png = figure(res, numbers, out / f"{NAME}.png")
    seconds = time.perf_counter() - start
    columns = ["activation", "initializer", "distinct units", "q_1", "q_L", "log10 q_L/q_1", "theory log10 q_L/q_1",
               "g_1", "g_L", "log10 g_1/g_L", "score (decades)", "overflow (median seed)"]
    return common.finish(out, NAME, verdicts, numbers, seconds, columns, rows,
                         title="Reproduction 1 at init: the tutorials' initializers on digits", png=png,
                         publish=publish, notes=[f"LSUV: {n}" for n in lsuv_notes])


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
