"""Reproduction 5 in training: do the gains for GELU, SiLU and Mish change how the network trains?

Claim (common advice; :func:`jaxinit.activation_gain`): initializing with the activation's own
gain, Var[W] = gain^2 / fan_in with gain = 1/sqrt(E[phi(z)^2]), rather than ReLU's sqrt(2) or no
gain, makes a network train better: at least as fast as with the ReLU gain, faster than with no
gain, to as good a final accuracy. (At initialization, experiments/repro/gains.py measures q
through depth for the same three scales.)

Measured (experiments/configs/train_gains.toml: gelu, silu and mish MLPs of depth 10, width 64,
Gaussian weights of variance sigma_w^2 / fan_in with sigma_w^2 = 1 (no gain), 2 (ReLU gain) and
activation_gain(phi)^2 (gelu 2.35, silu 2.81, mish 2.21), zero biases, 4 seeds, 400 SGD steps
(momentum 0.9, learning rate 0.01, batch 64, global norm clipped at 1) on digits; every member of a
seed sees the same minibatches), per activation and scale: the steps to 90% test accuracy (median
over seeds, "never" counted as infinite; and per seed in the figure), and the final test accuracy,
median (min-max) over seeds.

Verdicts, each over the three activations (agrees: for all of them; partly: for some; does not:
for none):

* speed: activation_gain's median steps are within one evaluation interval (25 steps) of the ReLU
  gain's or below, and at least one interval below no gain's ("never" is slower than any count);
* accuracy: activation_gain's median final accuracy is within 1 percentage point of the best of
  the three scales or above.

Run:  .venv/bin/python experiments/repro/train_gains.py [--out DIR] [--small]
      (30 s wall on a quiet 2-core machine)
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
from experiments.repro.gains import SCHEMES, scheme_overrides

NAME = "train_gains"
CONFIG = "train_gains"
SMALL = {"network.depth": 3, "network.width": 8, "network.activation": "gelu", "sweep.seeds": 2,
         "train.steps": 20, "train.eval_every": 10, "train.target_accuracy": 0.3}
NO_GAIN, RELU_GAIN, OWN_GAIN = SCHEMES
ACCURACY_TOL = 0.01
COLORS = dict(zip(SCHEMES, ("tab:gray", "tab:orange", "tab:blue"), strict=True))
NAMES = {NO_GAIN: "no gain (σ_w² = 1)", RELU_GAIN: "ReLU gain √2 (σ_w² = 2)",
         OWN_GAIN: "activation_gain(φ) (σ_w² = 1/E[φ(z)²])"}


def _status(held: list[bool]) -> str:
    return AGREES if all(held) else (PARTLY if any(held) else DOES_NOT)


def verdict(numbers: dict) -> list[Verdict]:
    """``numbers["eval_every"]``; ``numbers["acts"][activation][scheme]`` for the three
    :data:`SCHEMES`: dicts with ``steps`` (median, inf = never) and ``final`` (median final test
    accuracy)."""
    tol = numbers["eval_every"]
    acts = numbers["acts"]
    speed, accuracy, speed_why, accuracy_why = [], [], [], []
    for act, by in acts.items():
        own, relu, none = (by[s]["steps"] for s in (OWN_GAIN, RELU_GAIN, NO_GAIN))
        as_fast = own <= relu + tol
        faster = math.isfinite(own) and own <= none - tol
        speed.append(as_fast and faster)
        speed_why.append(f"{act}: activation_gain {train_common.fmt_steps(own)}, ReLU gain "
                         f"{train_common.fmt_steps(relu)}, no gain {train_common.fmt_steps(none)} steps "
                         f"({'as fast as' if as_fast else 'slower than'} the ReLU gain, "
                         f"{'faster than' if faster else 'not faster than'} no gain)")
        best = max(SCHEMES, key=lambda s: by[s]["final"])
        accuracy.append(by[OWN_GAIN]["final"] >= by[best]["final"] - ACCURACY_TOL)
        accuracy_why.append(f"{act}: activation_gain {by[OWN_GAIN]['final']:.3f}, best {best} {by[best]['final']:.3f}")
    return [
        Verdict("activation_gain trains at least as fast as the ReLU gain and faster than no gain",
                _status(speed), "; ".join(speed_why) + f" (tolerance {tol:g} steps)"),
        Verdict("activation_gain ends as accurate as the best of the three scales",
                _status(accuracy), "; ".join(accuracy_why) + f" (tolerance {ACCURACY_TOL:g})"),
    ]


def summarize(res, wanted: dict[str, dict[str, float]]) -> tuple[dict, list, dict]:
    """The numbers, the table's rows and, per activation, each scheme's grid index."""
    points = np.asarray(train_common.grid_values(res, "weight_variance"))
    n_seeds = len(res.coords["seed"])
    numbers: dict = {"eval_every": int(res.config.train.eval_every), "acts": {}}
    rows, index = [], {}
    for p, prog in enumerate(res.coords["program"]):
        act = prog["activation"]
        st = res.get("steps_to_accuracy", p)[0]        # (grid, seed)
        final = res.get("final_test_accuracy", p)[0]
        diverged = res.get("diverged", p)[0]
        index[act] = {s: int(np.argmin(np.abs(points - v))) for s, v in wanted[act].items()}
        for scheme, g in index[act].items():
            m = {"weight_variance": float(points[g]), **train_common.seed_numbers(st[g], final[g], diverged[g])}
            numbers["acts"].setdefault(act, {})[scheme] = m
            rows.append([act, scheme, f"{m['weight_variance']:.3f}", *train_common.seed_cells(m, n_seeds)])
    return numbers, rows, index


def figure(res, numbers: dict, index: dict, path: Path) -> Path:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    programs = res.coords["program"]
    steps = np.asarray(res.coords["step"])
    n_steps = int(res.config.train.steps)
    target = float(res.config.train.target_accuracy)
    n_seeds = len(res.coords["seed"])
    fig, axes = common.new_figure(1, len(programs) + 1, height_per_row=3.8, width=11.0)
    for p, prog in enumerate(programs):
        act = prog["activation"]
        acc = res.get("test_accuracy", p)[0]            # (grid, seed, step)
        own = numbers["acts"][act][OWN_GAIN]["weight_variance"]
        curves = [(acc[g], COLORS[scheme], 2.2 if scheme == OWN_GAIN else 1.3) for scheme, g in index[act].items()]
        train_common.accuracy_bands(axes[0][p], steps, curves, target,
                                    f"{act}: test accuracy\n(activation_gain² = {own:.2f})", title_size=9.5)
    axes[0][0].set_ylabel(f"test accuracy (fraction)\nline: median of seeds; band 25–75%; dotted: {target:g}",
                          fontsize=9)
    train_common.steps_panel(axes[0][-1], numbers["acts"], COLORS, n_steps, target)
    handles = [Line2D([], [], color=COLORS[s], lw=2.2 if s == OWN_GAIN else 1.3) for s in SCHEMES]
    handles.append(Patch(color="0.5", alpha=0.3))
    labels = [NAMES[s] for s in SCHEMES] + [f"band: 25–75% of {n_seeds} seeds"]
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8.5, frameon=False)
    prog = programs[0]
    fig.suptitle(f"Gains in training: depth {prog['depth']}, width {prog['width']} GELU/SiLU/Mish MLPs on digits, "
                 f"Gaussian weights Var = σ_w²/fan_in, {n_seeds} seeds, SGD (momentum 0.9, lr "
                 f"{float(res.config.train.learning_rate):g}, clip 1)", fontsize=10)
    return common.save_figure(fig, path)


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    start = time.perf_counter()
    out = Path(out)
    wanted, overrides = scheme_overrides(CONFIG, SMALL if small else {})
    res = train_common.train(CONFIG, out / "train", overrides)
    numbers, rows, index = summarize(res, wanted)
    verdicts = verdict(numbers)
    png = figure(res, numbers, index, out / f"{NAME}.png")
    seconds = time.perf_counter() - start
    columns = ["activation", "scheme", "σ_w²",
               f"steps to {res.config.train.target_accuracy:g} test acc. (seeds reached)",
               "final test acc. median (min–max)", "diverged"]
    prog = res.coords["program"][0]
    return common.finish(
        out, NAME, verdicts, numbers, seconds, columns, rows,
        title=f"Reproduction 5 in training: gains for GELU, SiLU, Mish, depth {prog['depth']}, width {prog['width']}, "
              f"{len(res.coords['seed'])} seeds, {res.config.train.steps} steps on digits", png=png, publish=publish)


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
