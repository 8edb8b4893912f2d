"""Reproduction 3, dynamical isometry at initialization (Saxe et al. 2014; Pennington et al. 2017).

Claim: at the critical point (sigma_w^2 = 1, sigma_b^2 = 0) the input-output Jacobian of a deep
linear or tanh network has mean squared singular value ~1 with Gaussian or orthogonal weights
alike, but its singular values stay concentrated with depth only with orthogonal weights (exactly
1 for a linear network); with Gaussian weights they spread out (a few large, most small).

Measured (experiments/configs/isometry_depth.toml: width 128, depths 1..128, 8 seeds): the
singular values of dh^L/dx at one Gaussian input, per seed, and per (activation, initializer,
depth):

* ``spread``: log10(s_90 / s_10), the decades between the 90% and 10% quantiles of the singular
  values (a factor of 2 is 0.30), median over seeds. float32 resolves singular values down to
  about s_max * N * eps (eps = 1.2e-7); smaller ones are clipped there, so a spread that reaches
  the floor is a lower bound;
* ``within2``: the fraction of singular values within a factor of 2 of their root mean square,
  median over seeds: the verdict's number (the spread above is resolution-limited for deep
  Gaussian networks: their median singular value falls below float32's floor by depth 32).

Theory drawn: orthogonal linear, every singular value 1; Gaussian linear, the Lyapunov spectrum of
products of L real Gaussian N x N matrices of variance 1/N (exact as L grows at width N;
Newman 1986, Forrester 2013, arXiv:1309.7736): log s_i ~ L/2 (log(2/N) + psi((N - i + 1)/2)).

Run:  .venv/bin/python experiments/repro/isometry.py [--out DIR] [--small]   (~2-3 min on 2 CPU cores)
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

NAME = "isometry"
CONFIG = "isometry_depth"
SMALL = {"network.depth": [2, 8], "network.width": 16, "sweep.seeds": 2, "network.activation": "linear"}
# Pennington et al.'s regime: tanh is close to isometric only where q is small (phi' ~ 1 everywhere);
# with q0 = 1 its first layers saturate. The second sweep runs tanh from q0 = 1/64.
TANH_SMALL_Q = {"network.activation": "tanh", "inputs.q0": 1.0 / 64}
EPS32 = float(np.finfo(np.float32).eps)
STAYS = 0.9    # concentrated: at least 90% of the singular values within a factor of 2 of their RMS
SPREADS = 0.25  # spread: at most a quarter of them are, at the deepest depth


def lyapunov_log10(width: int, depth: int, quantiles) -> np.ndarray:
    """log10 of the singular values at ``quantiles`` (of the index) for a product of ``depth`` real
    Gaussian width x width matrices of variance 1/width, from the Lyapunov exponents."""
    from scipy.special import digamma

    i = np.arange(1, width + 1)
    lam = 0.5 * (np.log(2.0 / width) + digamma((width - i + 1) / 2.0))  # descending exponents
    return np.quantile(depth * lam, quantiles) / math.log(10.0)


def spectrum_numbers(sv: np.ndarray, width: int) -> dict:
    """Numbers from the singular values ``sv`` (seed, k) of one (activation, initializer, depth)."""
    sv = np.asarray(sv, np.float64)
    spreads, within, floors, msv, q10, q50, q90 = [], [], [], [], [], [], []
    for s in sv:
        s = s[np.isfinite(s)]
        if s.size == 0:
            continue
        floor = s.max() * width * EPS32
        clipped = np.maximum(s, floor)
        lo, mid, hi = np.quantile(clipped, [0.1, 0.5, 0.9])
        spreads.append(math.log10(hi / lo))
        rms = math.sqrt(float(np.mean(s * s)))
        within.append(float(np.mean((s >= rms / 2) & (s <= 2 * rms))))
        floors.append(math.log10(floor))
        msv.append(float(np.mean(s * s)))
        q10.append(math.log10(lo))
        q50.append(math.log10(mid))
        q90.append(math.log10(hi))

    def med(v: list) -> float:
        return float(np.median(v)) if v else math.nan

    return {"spread": med(spreads), "within2": med(within), "floor_log10": med(floors),
            "msv": med(msv), "log10_q10": med(q10), "log10_q50": med(q50), "log10_q90": med(q90),
            "spread_at_floor": bool(np.median(q10) <= np.median(floors) + 1e-9) if q10 else False}


def verdict(numbers: dict) -> list[Verdict]:
    """Per network: orthogonal's spectrum *stays* concentrated with depth (at every depth at least
    :data:`STAYS` of its singular values lie within a factor of 2 of their RMS), Gaussian's spreads
    (that fraction falls to at most :data:`SPREADS` at the deepest depth, and below half its value
    at the shallowest).

    ``numbers[network][initializer]`` holds lists ``depths`` and ``within2`` (same order). The
    fraction is robust to float32's resolution: a singular value below it is certainly not within a
    factor of 2 of the RMS, which the largest ones set."""
    out = []
    for net, by_init in numbers.items():
        orth, gauss = by_init["orthogonal"], by_init["gaussian"]
        o_min = min(orth["within2"])
        o_ok = o_min >= STAYS
        g0, g1 = gauss["within2"][0], gauss["within2"][-1]
        g_ok = g1 <= SPREADS and g1 < 0.5 * g0
        status = AGREES if o_ok and g_ok else (PARTLY if o_ok or g_ok else DOES_NOT)
        d0, d1 = orth["depths"][0], orth["depths"][-1]
        why = (f"fraction of singular values within x2 of their RMS, depth {d0} -> {d1}: orthogonal "
               f"{orth['within2'][0]:.2f} -> {orth['within2'][-1]:.2f} (lowest {o_min:.2f}, "
               f"{'>=' if o_ok else '<'} {STAYS}); Gaussian {g0:.2f} -> {g1:.2f} "
               f"({'<=' if g1 <= SPREADS else '>'} {SPREADS}{'' if g1 < 0.5 * g0 else ', not below half'})")
        out.append(Verdict(f"{net}: orthogonal's spectrum stays concentrated with depth, Gaussian's spreads",
                           status, why))
    return out


def figure(numbers: dict, width: int, n_seeds: int, path: Path) -> Path:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    nets = list(numbers)
    fig, axes = common.new_figure(2, len(nets), height_per_row=2.9)
    colors = {"orthogonal": "tab:blue", "gaussian": "tab:red"}
    for a, net in enumerate(nets):
        ax, ax2 = axes[0][a], axes[1][a]
        for init, m in numbers[net].items():
            d = np.asarray(m["depths"])
            c = colors.get(init, "C2")
            ax.fill_between(d, m["log10_q10"], m["log10_q90"], color=c, alpha=0.22, lw=0)
            ax.plot(d, m["log10_q50"], color=c, lw=1.8, marker="o", ms=3)
            ax2.plot(d, m["within2"], color=c, lw=1.8, marker="o", ms=3)
        d = np.asarray(numbers[net]["gaussian"]["depths"])
        ax.plot(d, numbers[net]["gaussian"]["floor_log10"], color="0.4", lw=1, ls="-.")
        if net == "linear":
            lyap = np.array([lyapunov_log10(width, int(L), [0.1, 0.5, 0.9]) for L in d])
            ax.plot(d, lyap[:, 1], color="black", ls="--", lw=1.2)
            ax.plot(d, lyap[:, 0], color="black", ls=":", lw=1.2)
            ax.plot(d, lyap[:, 2], color="black", ls=":", lw=1.2)
            ax.axhline(0.0, color="tab:blue", ls="--", lw=1.2)
        for x in (ax, ax2):
            x.set_xscale("log", base=2)
            x.set_xticks(d, [str(v) for v in d])
            x.grid(True, alpha=0.3)
        ax.set_ylim(-9, 1.5)
        ax2.set_ylim(-0.03, 1.03)
        ax.set_title(f"{net} network", fontsize=10)
        ax2.set_xlabel("depth L (layers)")
        if a == 0:
            ax.set_ylabel("log10 singular value s of ∂h^L/∂x\n(line: median, band: 10–90%)", fontsize=9)
            ax2.set_ylabel("fraction of s within\n×2 of their RMS", fontsize=9)
    handles = [Line2D([], [], color="tab:blue", lw=1.8, marker="o", ms=3), Line2D([], [], color="tab:red", lw=1.8,
               marker="o", ms=3), Patch(color="0.5", alpha=0.3), Line2D([], [], color="tab:blue", ls="--"),
               Line2D([], [], color="black", ls="--"), Line2D([], [], color="black", ls=":"),
               Line2D([], [], color="0.4", ls="-.")]
    names = ["orthogonal (measured)", "Gaussian, same variance (measured)",
             f"band: 10–90% quantiles of the spectrum; each point the median over {n_seeds} seeds",
             "theory, orthogonal linear: every s = 1",
             "theory, Gaussian linear: median s (Lyapunov spectrum)", "theory, Gaussian linear: 10% / 90% s",
             "float32 resolution s_max·N·eps (smaller s are clipped to it)"]
    fig.legend(handles, names, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"Dynamical isometry at σ_w²=1, σ_b²=0 (critical), width {width}: the input-output Jacobian's "
                 "spectrum,\northogonal vs Gaussian weights; tanh from inputs of second moment q0 = 1 and 1/64",
                 fontsize=10.5)
    return common.save_figure(fig, path)


def _collect(res, numbers: dict, rows: list, name_of) -> None:
    labels = res.coords["initializer"]
    width = int(res.coords["program"][0]["width"])
    for p, prog in sorted(enumerate(res.coords["program"]), key=lambda t: (t[1]["activation"], t[1]["depth"])):
        spec = res.get("spectrum", p)[:, 0]  # (init, seed, k)
        net = name_of(prog["activation"])
        for i, label in enumerate(labels):
            m = spectrum_numbers(spec[i], width)
            entry = numbers.setdefault(net, {}).setdefault(label, {"depths": []})
            entry["depths"].append(int(prog["depth"]))
            for k, v in m.items():
                entry.setdefault(k, []).append(v)
            rows.append([net, label, int(prog["depth"]), m["spread"],
                         ("≥ " if m["spread_at_floor"] else "") + f"{10 ** m['spread']:.3g}", m["within2"], m["msv"],
                         m["log10_q10"], m["log10_q50"], m["log10_q90"]])


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    start = time.perf_counter()
    out = Path(out)
    shrink = SMALL if small else {}
    res = common.sweep(CONFIG, out / "sweep", shrink)
    res_small_q = common.sweep(CONFIG, out / "sweep_tanh_q0_small", {**shrink, **TANH_SMALL_Q})
    numbers: dict[str, dict[str, dict]] = {}
    rows: list = []
    _collect(res, numbers, rows, lambda act: act if act == "linear" else f"{act}, q0 = 1")
    _collect(res_small_q, numbers, rows, lambda act: f"{act}, q0 = 1/64")
    verdicts = verdict(numbers)
    width = int(res.coords["program"][0]["width"])
    png = figure(numbers, width, len(res.coords["seed"]), out / f"{NAME}.png")
    seconds = time.perf_counter() - start
    columns = ["network", "initializer", "depth", "spread log10(s90/s10)", "s90/s10", "fraction within ×2 of RMS",
               "mean s²", "log10 s10", "log10 s50", "log10 s90"]
    return common.finish(out, NAME, verdicts, numbers, seconds, columns, rows,
                         title="Reproduction 3: dynamical isometry at init", png=png, publish=publish)


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
