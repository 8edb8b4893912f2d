"""Reproduction 2 at initialization, order and chaos (Poole et al. 2016; Schoenholz et al. 2017).

Claims: (a) deep tanh networks have an ordered phase (the correlation c_L between two inputs -> 1)
and a chaotic one (c_L -> c* < 1), split by the critical line chi_1 = 1 of mean-field theory;
(b) correlations converge at the depth scale xi_c = -1/log(chi) (chi_1 in the ordered phase,
chi_c at c* in the chaotic one), which diverges at the critical point: a network remembers how
similar its inputs were for about xi_c layers. Schoenholz et al. bound trainability by 6 xi_c; that
part needs training (`jaxinit train`) and is reproduced there.

Measured (experiments/configs/order_chaos.toml: width 128, depth 200, Gaussian weights, pairs of
inputs of correlation c_0 = 0.5, q_0 = 1):

* the phase diagram: c_L at L = 200 over 15 sigma_w^2 (0.5..4) x 10 sigma_b^2 (0.025..0.25), 4
  seeds x 16 pairs; per sigma_b^2 the measured boundary is where 1 - c_L first exceeds 0.01
  (linear interpolation between grid points), compared with the critical sigma_w^2 of
  :func:`jaxinit.theory.critical` (tolerance: one grid step, 0.25);
* xi_c at sigma_b^2 = 0.05: the row run twice more, 8 seeds x 32 pairs, with c_0 = 0.5 and 0.8 on
  the same weights and base vectors (common random numbers); Delta_L = c_L(0.8) - c_L(0.5), how well
  layer L still tells the two input similarities apart, decays like exp(-L/xi_c) in both phases.
  xi_c is fitted to log|Delta_L| from layer 5 (past the q transient) to the first layer where
  |Delta_L| falls below max(3 standard errors over seeds, 1e-6) (float32 resolves 1 - c to ~1e-7);
  compared with the same fit, on the same layers, of the theory's Delta_L (:func:`jaxinit.theory.predict`
  for both c_0: the asymptotic rate -1/log(chi) holds only near the fixed point, and in the chaotic
  phase the fitted layers are not yet there), where the asymptotic xi_c of
  :func:`jaxinit.theory.depth_scales` is <= 40 (at least 4 xi_c fit inside 200 layers). Agreement:
  within 25% for at least 80% of those sigma_w^2, and the largest measured xi_c at the grid point
  nearest the critical sigma_w^2. The asymptotic xi_c is drawn and tabled beside them.

Run:  .venv/bin/python experiments/repro/order_chaos.py [--out DIR] [--small]   (~3-5 min on 2 CPU cores)
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

NAME = "order_chaos"
CONFIG = "order_chaos"
SMALL = {"network.depth": 40, "network.width": 32, "sweep.seeds": 2, "inputs.batch": 4,
         "grid.weight_variance": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0], "grid.bias_variance": [0.05, 0.15, 0.25]}
ROW_BIAS = 0.05                      # Schoenholz et al.'s sigma_b^2 for the depth-scale figure
ROW = {"grid.bias_variance": [ROW_BIAS], "sweep.seeds": 8, "inputs.batch": 32}
ROW_SMALL = {"grid.bias_variance": [ROW_BIAS], "sweep.seeds": 2, "inputs.batch": 8}
C0_LOW, C0_HIGH = 0.5, 0.8
BOUNDARY = 0.01      # ordered: 1 - c_L below this at the deepest layer
FIT_START = 5        # first layer (1-based) of the xi fit: past the transient of q
FLOOR = 1e-6         # float32 resolves 1 - c to ~1e-7; differences of two c's to ~1e-6
XI_FITTABLE = 40.0   # compare where theory's xi_c <= this (>= 4 xi_c inside 200 layers)
XI_TOL = 1.25        # measured within a factor 1.25 of theory
XI_FRACTION = 0.8    # ... for at least this fraction of the fittable sigma_w^2


def measured_boundary(weight_variances: np.ndarray, one_minus_c: np.ndarray, level: float = BOUNDARY) -> float:
    """The sigma_w^2 where ``1 - c_L`` first rises above ``level`` (ascending sigma_w^2), linearly
    interpolated; NaN when it never does (or is above it from the start)."""
    x, y = np.asarray(weight_variances, float), np.asarray(one_minus_c, float)
    above = np.nonzero(y > level)[0]
    if above.size == 0 or above[0] == 0:
        return math.nan
    k = above[0]
    x0, x1, y0, y1 = x[k - 1], x[k], y[k - 1], y[k]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def fit_range(layers: np.ndarray, values: np.ndarray) -> float:
    """xi of |values| ~ A exp(-layer / xi) by least squares on log|values|; inf when not decaying."""
    slope = np.polyfit(np.asarray(layers, float), np.log(np.abs(np.asarray(values, float))), 1)[0]
    return -1.0 / slope if slope < 0 else math.inf


def fit_xi(delta: np.ndarray, start: int = FIT_START, floor: float = FLOOR) -> tuple[float, int, int]:
    """Fit |Delta_l| ~ A exp(-l / xi) from layer ``start`` (1-based) to the layer before |Delta| first
    falls below its floor. ``delta``: (seed, layer). Returns ``(xi, first, last)`` (1-based layers),
    xi NaN with fewer than 4 layers to fit, inf for a non-decaying fit."""
    delta = np.asarray(delta, np.float64)
    mean = delta.mean(axis=0)
    se = delta.std(axis=0) / math.sqrt(max(delta.shape[0], 1))
    bound = np.maximum(3.0 * se, floor)
    layers = np.arange(1, mean.size + 1)
    below = np.nonzero((np.abs(mean) < bound) | ~np.isfinite(mean))[0]
    stop = below[below >= start - 1][0] if (below >= start - 1).any() else mean.size
    sel = slice(start - 1, stop)
    if stop - (start - 1) < 4:
        return math.nan, start, int(stop)
    return fit_range(layers[sel], mean[sel]), start, int(stop)


def verdict(numbers: dict) -> list[Verdict]:
    """(a) the phase boundary within one grid step of the critical line in every sigma_b^2 row;
    (b) the measured xi_c within XI_TOL of theory's (its Delta_L fitted on the same layers) for
    XI_FRACTION of the sigma_w^2 whose asymptotic xi_c <= XI_FITTABLE, and largest at the grid point
    nearest the critical sigma_w^2.

    ``numbers["boundary"]``: list of ``{bias_variance, measured, critical, step}``;
    ``numbers["xi"]``: list of ``{weight_variance, measured, theory_fit, theory}`` (theory: the
    asymptotic xi_c of :func:`jaxinit.theory.depth_scales`); ``numbers["critical_row"]``:
    the critical sigma_w^2 of the xi row."""
    rows = numbers["boundary"]
    off = [r for r in rows if not (abs(r["measured"] - r["critical"]) <= r["step"])]  # NaN counts as off
    worst = max((abs(r["measured"] - r["critical"]) for r in rows if math.isfinite(r["measured"])), default=math.nan)
    status = AGREES if not off else (PARTLY if len(off) < len(rows) else DOES_NOT)
    why = (f"{len(rows) - len(off)}/{len(rows)} sigma_b^2 rows: measured boundary (1 - c_L > {BOUNDARY}) within one "
           f"grid step of the critical line; largest distance {worst:.3f}")
    if off:
        why += "; off: " + ", ".join(f"sigma_b^2={r['bias_variance']:g}: {r['measured']:.3f} vs {r['critical']:.3f}"
                                     for r in off[:4])
    phase = Verdict("ordered and chaotic phases split along the critical line chi_1 = 1", status, why)

    xi = numbers["xi"]
    fittable = [r for r in xi if r["theory"] <= XI_FITTABLE and math.isfinite(r["theory_fit"])]
    close = [r for r in fittable if math.isfinite(r["measured"]) and r["measured"] > 0
             and abs(math.log(r["measured"] / r["theory_fit"])) <= math.log(XI_TOL)]
    frac = len(close) / len(fittable) if fittable else 0.0
    finite = [r for r in xi if math.isfinite(r["measured"])]
    peak = max(finite, key=lambda r: r["measured"])["weight_variance"] if finite else math.nan
    nearest = min(xi, key=lambda r: abs(r["weight_variance"] - numbers["critical_row"]))["weight_variance"]
    infinite = [r["weight_variance"] for r in xi if r["measured"] == math.inf]
    peak_ok = (peak == nearest) or (nearest in infinite)
    ok = frac >= XI_FRACTION
    status = AGREES if ok and peak_ok else (PARTLY if ok or peak_ok or frac >= 0.5 else DOES_NOT)
    ratios = ", ".join(f"{r['weight_variance']:g}: {r['measured']:.3g}/{r['theory_fit']:.3g}" for r in fittable)
    why = (f"{len(close)}/{len(fittable)} sigma_w^2 (asymptotic xi_c <= {XI_FITTABLE:g}) within x{XI_TOL} of the "
           f"theory's Delta_L fitted on the same layers (measured/theory: {ratios}); largest measured xi_c at "
           f"sigma_w^2 = {peak:g}, critical {numbers['critical_row']:.3f} (nearest grid point {nearest:g})")
    depth = Verdict("correlations converge at the depth scale xi_c of theory, which peaks at criticality",
                    status, why)
    return [phase, depth]


def _theory_xi(weight_variances, bias_variance: float) -> np.ndarray:
    from jaxinit import theory

    return np.array([theory.depth_scales("tanh", float(w), bias_variance)[1] for w in weight_variances])


def figure(wv, bv, c_final, critical, row_wv, delta, xi_rows, fine_wv, fine_xi, depth, width, seeds,
           row_seeds, path: Path) -> Path:
    from matplotlib import colormaps
    from matplotlib.patches import Patch

    fig, axes = common.new_figure(1, 3, height_per_row=3.7, width=13.0)
    ax = axes[0][0]
    edges = lambda v: np.concatenate([[v[0] - (v[1] - v[0]) / 2], (v[1:] + v[:-1]) / 2,  # noqa: E731
                                      [v[-1] + (v[-1] - v[-2]) / 2]])
    mesh = ax.pcolormesh(edges(wv), edges(bv), c_final.T, cmap="viridis", vmin=0, vmax=1, shading="flat")
    fig.colorbar(mesh, ax=ax, pad=0.02).set_label(f"measured c_L, L = {depth} (median)", fontsize=8)
    ax.plot(critical[0], critical[1], color="white", lw=2.2, ls="--", label="theory: critical line χ₁ = 1")
    ax.set_xlabel("weight variance σ_w² (= fan_in·Var W)")
    ax.set_ylabel("bias variance σ_b²")
    ax.set_title(f"(a) phase diagram: c_L of inputs with c₀ = {C0_LOW}", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper left")

    ax = axes[0][1]
    delta_mean = delta.mean(axis=1)  # (grid, layer)
    se = delta.std(axis=1) / math.sqrt(delta.shape[1])
    layers = np.arange(1, delta_mean.shape[1] + 1)
    lost = np.abs(delta_mean) < np.maximum(3 * se, FLOOR)
    logd = np.ma.masked_array(np.log10(np.maximum(np.abs(delta_mean), 1e-12)), lost)
    cmap = colormaps["magma"].with_extremes(bad="0.82")
    mesh = ax.pcolormesh(edges(np.asarray(row_wv)), np.concatenate([[0.5], layers + 0.5]), logd.T,
                         cmap=cmap, vmin=-6, vmax=-0.5, shading="flat")
    fig.colorbar(mesh, ax=ax, pad=0.02).set_label("log10 |c_L(c₀=0.8) − c_L(c₀=0.5)| (measured)", fontsize=8)
    ax.plot(fine_wv, np.minimum(fine_xi, 1e4), color="cyan", lw=1.6, label="theory: ξ_c")
    ax.plot(fine_wv, np.minimum(6 * fine_xi, 1e4), color="black", lw=1.8, ls="--", label="theory: 6 ξ_c")
    ax.set_ylim(1, depth)
    ax.set_yscale("log")
    ax.set_xlabel("weight variance σ_w²")
    ax.set_ylabel("depth L (layers)")
    ax.set_title(f"(b) what depth L remembers of c₀, σ_b² = {ROW_BIAS}", fontsize=10)
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles + [Patch(color="0.82")], names + ["forgotten: |Δ| < 3 SE or 1e-6"], fontsize=7.5,
              loc="lower right")

    ax = axes[0][2]
    ax.plot(fine_wv, fine_xi, color="black", lw=1.4, ls="--", label="theory ξ_c = −1/log χ (asymptotic)")
    meas = np.array([r["measured"] for r in xi_rows])
    ok = np.isfinite(meas)
    ax.plot(np.asarray(row_wv)[ok], meas[ok], "o", color="tab:red", ms=5, label="measured ξ_c (fit of |Δ_L|)")
    fit = np.array([r["theory_fit"] for r in xi_rows])
    ax.plot(np.asarray(row_wv), fit, "x", color="black", ms=6, mew=1.5, label="theory's Δ_L, same fit, same layers")
    ax.axvline(xi_rows[0]["critical"], color="0.5", lw=1, ls=":", label="critical σ_w² (theory)")
    ax.set_yscale("log")
    ax.set_ylim(0.5, 2e3)
    ax.set_xlabel("weight variance σ_w²")
    ax.set_ylabel("depth scale ξ_c (layers)")
    ax.set_title(f"(c) depth scale, σ_b² = {ROW_BIAS}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper right")
    fig.suptitle(f"Order and chaos in tanh networks at initialization, width {width}: measured (colour, dots) vs "
                 f"mean-field theory (lines)\n(a) median over {seeds} seeds × pairs; (b, c) mean over {row_seeds} "
                 "seeds × pairs on common weights; the 6 ξ_c trainability bound is tested by training",
                 fontsize=10)
    return common.save_figure(fig, path)


def main(out: Path, small: bool = False, publish: Path | None = None) -> dict:
    from jaxinit.lab.figures import critical_line
    from jaxinit.theory import critical, predict

    start = time.perf_counter()
    out = Path(out)
    shrink = SMALL if small else {}
    res = common.sweep(CONFIG, out / "grid", shrink)
    row = ROW_SMALL if small else ROW
    low = common.sweep(CONFIG, out / "row_c0_low", {**shrink, **row, "inputs.correlation": C0_LOW})
    high = common.sweep(CONFIG, out / "row_c0_high", {**shrink, **row, "inputs.correlation": C0_HIGH})

    points = res.coords["grid_point"]
    wv = np.unique([p["weight_variance"] for p in points])
    bv = np.unique([p["bias_variance"] for p in points])
    corr = res.get("correlation")[0]  # (grid, seed, layer)
    depth = corr.shape[-1]
    c_final = np.full((wv.size, bv.size), np.nan)
    for g, p in enumerate(points):
        c_final[np.searchsorted(wv, p["weight_variance"]), np.searchsorted(bv, p["bias_variance"])] = \
            np.median(corr[g, :, -1])
    step = float(np.min(np.diff(wv)))
    boundary = []
    for b, sb in enumerate(bv):
        boundary.append({"bias_variance": float(sb), "measured": measured_boundary(wv, 1.0 - c_final[:, b]),
                         "critical": critical("tanh", float(sb)), "step": step})

    row_wv = [p["weight_variance"] for p in low.coords["grid_point"]]
    delta = high.get("correlation")[0] - low.get("correlation")[0]  # (grid, seed, layer)
    theory_xi = _theory_xi(row_wv, ROW_BIAS)
    crit_row = critical("tanh", ROW_BIAS)
    q0 = float(low.config.inputs.q0)
    xi_rows = []
    for g, w in enumerate(row_wv):
        xi, first, last = fit_xi(delta[g])
        fitted = math.nan
        if math.isfinite(xi) and last - first >= 3:
            predicted = (predict("tanh", float(w), ROW_BIAS, q0, C0_HIGH, last).c
                         - predict("tanh", float(w), ROW_BIAS, q0, C0_LOW, last).c)
            layers = np.arange(first, last + 1)
            fitted = fit_range(layers, predicted[first - 1:last])
        xi_rows.append({"weight_variance": float(w), "measured": xi, "theory_fit": fitted,
                        "theory": float(theory_xi[g]), "fit_layers": [first, last], "critical": crit_row})
    numbers = {"boundary": boundary, "xi": xi_rows, "critical_row": crit_row}
    verdicts = verdict(numbers)

    if small:  # the theory already computed, on the row's grid points
        fine_wv, fine_xi = np.asarray(row_wv, float), theory_xi
    else:
        fine_wv = np.sort(np.concatenate([np.linspace(float(wv[0]), float(wv[-1]), 36), [crit_row - 0.02,
                                                                                        crit_row + 0.02]]))
        fine_xi = _theory_xi(fine_wv, ROW_BIAS)
    line = critical_line("tanh", bv[0] + (bv[-1] - bv[0]) * np.linspace(0.0, 1.0, 4 if small else 12))
    png = figure(wv, bv, c_final, line, row_wv, delta, xi_rows, fine_wv, fine_xi, depth,
                 int(res.coords["program"][0]["width"]), len(res.coords["seed"]), len(low.coords["seed"]),
                 out / f"{NAME}.png")
    seconds = time.perf_counter() - start
    rows = [["boundary σ_w²", f"σ_b² = {r['bias_variance']:g}", r["measured"], "", r["critical"], ""] for r in boundary]
    rows += [["ξ_c", f"σ_w² = {r['weight_variance']:g}", r["measured"], r["theory_fit"], r["theory"],
              f"layers {r['fit_layers'][0]}-{r['fit_layers'][1]}"] for r in xi_rows]
    columns = ["quantity", "at", "measured", "theory, fitted on the same layers",
               "theory (boundary: critical σ_w², χ₁ = 1; ξ_c: asymptotic −1/log χ)", "fit"]
    return common.finish(out, NAME, verdicts, numbers, seconds, columns, rows,
                         title="Reproduction 2 at init: order and chaos, tanh", png=png, publish=publish)


if __name__ == "__main__":
    raise SystemExit(common.cli(NAME, main, __doc__))
