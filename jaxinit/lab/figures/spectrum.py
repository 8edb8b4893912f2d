"""The Jacobian singular-value spectrum figure."""

from __future__ import annotations

import math

import numpy as np

from jaxinit.lab.figures.common import _program_title, _seeds_text
from jaxinit.lab.figures.depth import _no_data
from jaxinit.lab.figures.layout import (
    _context,
    _curve_handles,
    _finite_positive,
    _grid_shape,
    _legend,
    _new_figure,
    _panel_title,
    _suptitle,
)


def spectrum_figure(results):
    r"""Histograms of the singular values of :math:`\partial h^L/\partial x` per initializer."""
    from matplotlib.lines import Line2D

    ctx = _context(results)
    res = ctx.results
    if "spectrum" not in res.arrays:
        return None
    n_prog = len(res.programs)
    rows, cols = _grid_shape(n_prog, 3)
    fig, axes = _new_figure(rows, cols, len(ctx.curves) + 1)
    notes = []
    for p in range(n_prog):
        ax = axes[p // cols][p % cols]
        spec = res.get("spectrum", p)  # (init, grid, seed, singular_value)
        if p in ctx.empty or spec.shape[-1] == 0:
            _no_data(ax, res, p)
            continue
        eps = float(np.finfo(spec.dtype).eps) if spec.dtype.kind == "f" else float(np.finfo(np.float32).eps)
        rank_rtol = eps * max(int(res.coords["program"][p]["width"]), spec.shape[-1])
        kept, summaries = [], []
        for curve in ctx.curves:
            v = np.asarray(spec[curve.init, curve.grid], np.float64)  # (seed, singular_value)
            finite = np.isfinite(v)
            # numpy.linalg.matrix_rank's rule: sigma <= sigma_max * max(M, N) * eps is numerically 0.
            with np.errstate(all="ignore"):
                top = np.max(np.where(finite, v, -np.inf), axis=-1, keepdims=True)
            zero = finite & (v <= top * rank_rtol)
            values = v[finite]
            kept.append(v[finite & ~zero])
            summaries.append((values.size, float(np.mean(values * values)) if values.size else math.nan,
                              int(zero.sum())))
        positive = _finite_positive(*kept) if kept else np.zeros(0)
        log_x = False
        if positive.size == 0:
            ax.text(0.5, 0.5, "no finite non-zero singular values\n(overflow, or a zero Jacobian)",
                    transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.4")
        else:
            lo, hi = float(positive.min()), float(positive.max())
            log_x = hi / lo > 30
            if hi == lo:
                lo, hi = lo * 0.9, hi * 1.1
            bins = np.geomspace(lo, hi, 41) if log_x else np.linspace(lo, hi, 41)
            for curve, v, (n_all, msv, n_zero) in zip(ctx.curves, kept, summaries, strict=True):
                if n_all == 0:
                    notes.append(f"{curve.label}: no finite values ({res.programs[p]})")
                    continue
                # The colour names the curve (figure legend); the panel's legend gives its numbers.
                label = rf"mean $\sigma^2$={msv:.3g}"
                if len(ctx.curves) <= 3:
                    label = f"{curve.label}: {label}"
                if n_zero:
                    label += f", {100 * n_zero / n_all:.0f}% ≈ 0"
                ax.hist(v, bins=bins, weights=np.full(v.size, 1.0 / n_all), histtype="step", lw=1.6,
                        color=curve.color, label=label)
            if log_x:
                ax.set_xscale("log")
            ax.legend(fontsize=6.5 if len(ctx.curves) > 3 else 7, frameon=False, loc="best",
                      ncols=2 if len(ctx.curves) > 5 else 1, title=r"mean $\sigma^2$ (≈ 0: numerically zero)",
                      title_fontsize=6.5)
        prog = res.coords["program"][p]
        _panel_title(ax, _program_title(res, p), 10)
        ax.set_xlabel(rf"singular value $\sigma$ of $\partial h^{{{prog['depth']}}}/\partial x$"
                      f"{' (log scale)' if log_x else ''}", fontsize=9)
        ax.set_ylabel("fraction of singular values per bin", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
    for q in range(n_prog, rows * cols):
        axes[q // cols][q % cols].set_visible(False)
    _suptitle(fig, f"Singular values of the input–output Jacobian at the last layer, pooled over "
                 f"{_seeds_text(res)}; dynamical isometry: all near 1")
    handles = _curve_handles(ctx.curves)
    if notes:
        handles.append(Line2D([], [], lw=0, label="; ".join(notes[:3])))
    _legend(fig, handles, ctx.note)
    return fig
