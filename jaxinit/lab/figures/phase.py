"""Phase diagrams: the values on the (sigma_w^2, sigma_b^2) grid (:func:`phase_table`,
:func:`phase_blanks`) and their heatmaps with the critical line."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from jaxinit._stats import seed_stats
from jaxinit.lab.figures.common import (
    FIGURE_FILES,
    FigureWarning,
    _as_results,
    _config,
    _input_text,
    _program_index,
    _seeds_text,
)
from jaxinit.lab.figures.layout import _context, _legend, _new_figure, _panel_title, _suptitle
from jaxinit.lab.figures.theory import critical_line
from jaxinit.lab.store import Results

PHASE_QUANTITIES = {
    "final_correlation": (r"final-layer correlation $c_L$ (median over seeds)", "viridis"),
    "gradient_ratio": (r"$\log_{10}\,\|\partial L/\partial W_1\|\,/\,\|\partial L/\partial W_L\|$"
                       "\n(< 0: vanishing toward the input, > 0: exploding)", "RdBu_r"),
    "q_ratio": (r"$\log_{10}\, q_L / q_1$ (median over seeds)", "RdBu_r"),
}


def _phase_axes(results: Results) -> tuple[np.ndarray, np.ndarray] | None:
    points = results.coords["grid_point"]
    if not points or any("weight_variance" not in p or "bias_variance" not in p for p in points):
        return None
    wv = np.unique([p["weight_variance"] for p in points])
    bv = np.unique([p["bias_variance"] for p in points])
    if len(wv) < 2 or len(bv) < 2:
        return None
    return wv, bv


def phase_table(results: Results | str | os.PathLike, program: str | int | None = None,
                quantity: str = "final_correlation") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""A phase-diagram quantity on the (sigma_w^2, sigma_b^2) grid, median over seeds.

    Args:
      quantity: ``"final_correlation"`` (:math:`c_L`), ``"gradient_ratio"``
        (:math:`\log_{10}` of the first over the last layer's weight-gradient norm) or ``"q_ratio"``
        (:math:`\log_{10} q_L / q_1`).

    Returns:
      ``(weight_variances, bias_variances, table)`` with ``table`` of shape
      ``(n_initializers, n_weight_variances, n_bias_variances)``; NaN where a cell has no finite
      value (overflow) or the grid has no such point.

    Raises:
      ValueError: the grid does not vary both ``weight_variance`` and ``bias_variance``, or the
        needed statistic was not measured.
    """
    res = _as_results(results)
    axes = _phase_axes(res)
    if axes is None:
        raise ValueError("a phase diagram needs a grid with several weight_variance and several "
                         "bias_variance values.")
    if quantity not in PHASE_QUANTITIES:
        raise ValueError(f"quantity must be one of {sorted(PHASE_QUANTITIES)}; got {quantity!r}.")
    stat = {"final_correlation": "correlation", "gradient_ratio": "grad_w_norm", "q_ratio": "q"}[quantity]
    if stat not in res.arrays:
        raise ValueError(f"{quantity} needs the statistic {stat!r}, which this sweep did not measure.")
    wv, bv = axes
    p = _program_index(res, program)
    values = res.get(stat, p)  # (init, grid, seed, layer)
    if values.shape[-1] == 0:  # a program without data (partial assembly)
        return wv, bv, np.full((values.shape[0], len(wv), len(bv)), np.nan)
    with np.errstate(all="ignore"):
        if quantity == "final_correlation":
            per_seed = values[..., -1]
        else:
            first, last = values[..., 0].astype(np.float64), values[..., -1].astype(np.float64)
            per_seed = np.log10(first / last) if quantity == "gradient_ratio" else np.log10(last / first)
    med = seed_stats(per_seed, axis=2)["median"]  # (init, grid)
    table = np.full((values.shape[0], len(wv), len(bv)), np.nan)
    for g, point in enumerate(res.coords["grid_point"]):
        a = int(np.searchsorted(wv, point["weight_variance"]))
        b = int(np.searchsorted(bv, point["bias_variance"]))
        table[:, a, b] = med[:, g]
    return wv, bv, table


BLANK_NONE, BLANK_ZERO, BLANK_OVERFLOW, BLANK_MIXED = 0, 1, 2, 3
_BLANK_LABEL = {
    BLANK_ZERO: "no value: the signal is 0 (q = 0 or a zero gradient: exact zeros, or underflow below the "
                "dtype's smallest normal)",
    BLANK_OVERFLOW: "no value: overflow (inf or NaN)",
    BLANK_MIXED: "no value: overflow in some seeds, a zero signal in the others",
}
_BLANK_STYLE = {
    BLANK_ZERO: {"facecolor": "white", "edgecolor": "0.35", "hatch": "////"},
    BLANK_OVERFLOW: {"color": "0.75"},  # the colormaps' "bad" colour: masked cells show it
    BLANK_MIXED: {"color": "0.45"},
}


def phase_blanks(results: Results | str | os.PathLike, program: str | int | None = None,
                 quantity: str = "final_correlation") -> np.ndarray:
    r"""Why cells of :func:`phase_table` have no value: ``(n_initializers, n_wv, n_bv)`` ints.

    ``BLANK_NONE`` (0): the cell has a value (or the grid has no such point); ``BLANK_ZERO`` (1):
    every seed's signal is 0 where the quantity divides by it or takes its log (the final
    :math:`q_L` for the correlation, :math:`q_1` or :math:`q_L` for the q ratio, the first or last
    layer's gradient norm for the gradient ratio): exact zeros (zero weights and
    :math:`\sigma_b^2 = 0`) or underflow; ``BLANK_OVERFLOW`` (2): every seed overflowed (the
    engine's ``first_nonfinite_layer``, or a non-finite value); ``BLANK_MIXED`` (3): both, in
    different seeds (or neither explains it).
    """
    res = _as_results(results)
    wv, bv, table = phase_table(res, program, quantity)
    p = _program_index(res, program)
    stat = {"final_correlation": "correlation", "gradient_ratio": "grad_w_norm", "q_ratio": "q"}[quantity]
    values = res.get(stat, p).astype(np.float64)  # (init, grid, seed, layer)
    n_init, n_grid, n_seeds = values.shape[:3]
    out = np.full(table.shape, BLANK_NONE, dtype=np.int64)
    if values.shape[-1] == 0:
        return out
    if quantity == "final_correlation":
        signal = res.get("q", p)[..., -1:].astype(np.float64) if "q" in res.arrays else values[..., -1:]
    else:
        signal = values[..., [0, -1]]
    with np.errstate(all="ignore"):
        zero = np.any(signal == 0, axis=-1)  # (init, grid, seed)
        over = ~np.all(np.isfinite(signal), axis=-1)
        if quantity != "final_correlation":
            over |= ~np.all(np.isfinite(values[..., [0, -1]]), axis=-1)
    if "first_nonfinite_layer" in res.arrays:
        over |= res.get("first_nonfinite_layer", p) >= 0
    zero &= ~over
    for g, point in enumerate(res.coords["grid_point"]):
        a = int(np.searchsorted(wv, point["weight_variance"]))
        b = int(np.searchsorted(bv, point["bias_variance"]))
        for i in range(n_init):
            if np.isfinite(table[i, a, b]):
                continue
            n_zero, n_over = int(zero[i, g].sum()), int(over[i, g].sum())
            out[i, a, b] = (BLANK_ZERO if n_zero == n_seeds else BLANK_OVERFLOW if n_over == n_seeds
                            else BLANK_MIXED)
    return out


def _edges(values: np.ndarray) -> np.ndarray:
    mids = (values[1:] + values[:-1]) / 2
    return np.concatenate([[values[0] - (mids[0] - values[0])], mids, [values[-1] + (values[-1] - mids[-1])]])


def phase_figures(results) -> dict[str, Any]:
    r"""Per program with a (sigma_w^2, sigma_b^2) grid: heatmaps per initializer of the final-layer
    correlation and of the gradient ratio (or the q ratio without gradients), critical line on top.

    Returns ``{program id: Figure}`` (empty when the grid does not vary both variances).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    ctx = _context(results)
    res = ctx.results
    axes_vals = _phase_axes(res)
    if axes_vals is None:
        return {}
    wv, bv = axes_vals
    quantities = []
    if "correlation" in res.arrays and np.isfinite(res.arrays["correlation"]).any():
        quantities.append("final_correlation")
    if "grad_w_norm" in res.arrays:
        quantities.append("gradient_ratio")
    elif "q" in res.arrays:
        quantities.append("q_ratio")
    if not quantities:
        return {}
    config, problem = _config(res)
    labels = res.coords["initializer"]
    figures = {}
    for p, pid in enumerate(res.programs):
        if p in ctx.empty:  # a partial assembly without this program's seeds (write_all says so)
            continue
        tables = {qn: phase_table(res, p, qn)[2] for qn in quantities}
        line = None
        figure_name = FIGURE_FILES["phase"].format(program=pid)
        if ctx.theory_on and config is None:
            warnings.warn(f"{figure_name}: no critical line drawn: {problem}", FigureWarning, stacklevel=2)
        elif ctx.theory_on:
            act = config.programs()[p].activation
            # denser near the smallest bias variance, where the line bends fastest (tanh at 0)
            line = critical_line(act, bv[0] + (bv[-1] - bv[0]) * np.linspace(0.0, 1.0, 25) ** 2)
            if not line[0].size:
                warnings.warn(f"{figure_name}: no critical line drawn: the mean-field theory finds no "
                              f"critical sigma_w^2 for {act} at any sigma_b^2 in [{bv[0]:g}, {bv[-1]:g}]",
                              FigureWarning, stacklevel=2)
        fig, axes = _new_figure(len(labels), len(quantities), 4)
        blanks_seen: set[int] = set()
        for i, label in enumerate(labels):
            for k, qn in enumerate(quantities):
                ax = axes[i][k]
                table = tables[qn][i]  # (n_wv, n_bv)
                finite = table[np.isfinite(table)]
                title, cmap_name = PHASE_QUANTITIES[qn]
                from matplotlib import colormaps

                cmap = colormaps[cmap_name].with_extremes(bad="0.75")
                if qn == "final_correlation":
                    vmin = min(0.0, float(finite.min())) if finite.size else 0.0
                    vmax = 1.0
                else:
                    span = float(np.quantile(np.abs(finite), 0.98)) if finite.size else 1.0
                    span = span if span > 0 else 1.0
                    vmin, vmax = -span, span
                mesh = ax.pcolormesh(_edges(wv), _edges(bv), np.ma.masked_invalid(table.T), cmap=cmap,
                                     vmin=vmin, vmax=vmax, shading="flat")
                cbar = fig.colorbar(mesh, ax=ax, pad=0.02)
                cbar.ax.tick_params(labelsize=7)
                causes = phase_blanks(res, p, qn)[i]
                for code in (BLANK_ZERO, BLANK_MIXED):
                    style = _BLANK_STYLE[code]
                    for a, b in zip(*np.nonzero(causes == code), strict=True):
                        x0, x1 = _edges(wv)[a], _edges(wv)[a + 1]
                        y0, y1 = _edges(bv)[b], _edges(bv)[b + 1]
                        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, lw=0, **style))
                blanks_seen.update(int(c) for c in np.unique(causes) if c != BLANK_NONE)
                if line is not None and line[0].size:
                    ax.plot(line[0], line[1], color="black", lw=1.8, ls="--")
                ax.set_xlim(_edges(wv)[0], _edges(wv)[-1])
                ax.set_ylim(_edges(bv)[0], _edges(bv)[-1])
                ax.set_xlabel(r"weight variance $\sigma_w^2$ = fan_in·Var[W]", fontsize=9)
                ax.set_ylabel(r"bias variance $\sigma_b^2$", fontsize=9)
                _panel_title(ax, f"{label}: {title}", 9)
                ax.tick_params(labelsize=8)
        prog = res.coords["program"][p]
        _suptitle(fig, f"Order/chaos phase diagram: {prog['activation']}, depth {prog['depth']}, width "
                     f"{prog['width']}, median over {_seeds_text(res)}\n{_input_text(res)}")
        handles = [Patch(label=_BLANK_LABEL[code], **_BLANK_STYLE[code]) for code in sorted(blanks_seen)]
        if line is not None and line[0].size:
            handles.insert(0, Line2D([], [], color="black", lw=1.8, ls="--",
                                     label=r"critical line $\chi_1 = 1$ (mean-field theory)"))
        _legend(fig, handles)
        figures[pid] = fig
    return figures
