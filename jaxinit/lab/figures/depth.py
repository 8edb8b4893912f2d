"""Per-layer figures: q, correlation, dead/saturated fractions, gradient norms, Jacobian msv
through depth (one panel per program, median and 5-95% band over seeds, theory dashed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxinit._stats import seed_stats
from jaxinit.lab.figures.common import (
    _BAND_ALPHA,
    _X_LABEL,
    FIGURE_FILES,
    Curve,
    _input_text,
    _overflow_layers,
    _program_title,
    _seeds_text,
)
from jaxinit.lab.figures.layout import (
    _Context,
    _context,
    _curve_handles,
    _finite_positive,
    _grid_shape,
    _legend,
    _log_limits,
    _new_figure,
    _panel_title,
    _style_handles,
    _suptitle,
)
from jaxinit.lab.store import Results


def _no_data(ax, res: Results, p: int) -> None:
    """An empty panel that says why: the program has no seeds in a partial assembly."""
    ax.text(0.5, 0.5, "no data yet\n(every seed of this program is missing:\nrerun the sweep to finish it)",
            transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.4")
    _panel_title(ax, _program_title(res, p), 10)
    ax.set_xticks([])
    ax.set_yticks([])


def _no_value_reason(stat: str, overlay: dict[str, Any], curve: Curve) -> str:
    """Why an available overlay has no finite (on a log panel: positive) value for ``stat`` at any layer."""
    q = overlay["q"][curve.init, curve.grid]
    if np.all(q == 0):
        return ("the predicted signal is 0 at every layer (zero weights and sigma_b^2 = 0): nothing to draw "
                "on a log scale, and no correlation between two zero vectors")
    if stat == "correlation" and overlay["c0"] is None:
        return "the inputs (digits) have no set pair correlation c_0 to start the correlation map from"
    if stat == "jacobian_msv":
        sw0, sw = (overlay[k][curve.init, curve.grid] for k in ("input_weight_variance", "weight_variance"))
        if not math.isclose(sw0, sw, rel_tol=1e-12):
            return (f"the first layer's sigma_w^2 ({sw0:.4g}) differs from the others' ({sw:.4g}); the Jacobian "
                    "prediction assumes one sigma_w^2 for every layer")
    return "the mean-field prediction is not finite at any layer (it diverges)"


class _Panel(NamedTuple):
    stat: str
    ylabel: str
    log: bool
    theory: str | None  # key of theory_overlay's result, or None
    ylim: tuple[float, float] | None = None


def _draw_layer_panel(ctx: _Context, ax, p: int, panel: _Panel) -> tuple[bool, bool, bool, bool]:
    """One program's curves for one statistic; returns whether it drew theory, an overflow line, a q
    underflow marker and a gradient underflow marker."""
    res = ctx.results
    values = res.get(panel.stat, p)  # (init, grid, seed, layer)
    first_bad = res.get("first_nonfinite_layer", p) if "first_nonfinite_layer" in res.arrays else None
    n_layers = values.shape[-1]
    if p in ctx.empty or n_layers == 0:
        _no_data(ax, res, p)
        return False, False, False, False
    x = np.arange(1, n_layers + 1)
    overlay = ctx.overlay(p) if panel.theory else None
    marker = "." if n_layers <= 16 else None
    data_vals, theory_vals = [], []
    drew_theory = overflowed = underflowed = grad_underflowed = False
    zero_curves: list[str] = []
    empty_curves: list[str] = []
    n_seeds = values.shape[2]
    n_curves = len(ctx.curves)
    for k, curve in enumerate(ctx.curves):
        # Earlier curves are drawn thicker, so curves that coincide (common random numbers make that
        # common: ReLU's dead units do not depend on the weight scale) show as nested stripes.
        lw = 1.4 + (2.4 * (n_curves - 1 - k) / (n_curves - 1) if n_curves > 1 else 0.0)
        v = values[curve.init, curve.grid].astype(np.float64)  # (seed, layer)
        st = seed_stats(v, axis=0)
        med, lo, hi = st["median"], st["q05"], st["q95"]
        if panel.log:
            med, lo, hi = (np.where(a > 0, a, np.nan) for a in (med, lo, hi))
        ax.fill_between(x, lo, hi, color=curve.color, alpha=_BAND_ALPHA, lw=0)
        ax.plot(x, med, color=curve.color, lw=lw, marker=marker, ms=3 + lw)
        data_vals += [med, lo, hi]
        if overlay is not None and overlay["available"][curve.init, curve.grid]:
            th = overlay[panel.theory][curve.init, curve.grid]
            shown = np.where(th > 0, th, np.nan) if panel.log else th
            if np.isfinite(shown).any():
                ax.plot(x, shown, color=curve.color, lw=1.2, ls="--", alpha=0.9)
                theory_vals.append(shown)
                drew_theory = True
            else:
                ctx.no_theory(p, curve, _no_value_reason(panel.theory, overlay, curve))
        elif overlay is not None:
            ctx.no_theory(p, curve, overlay["reason"].get((curve.init, curve.grid), "no prediction"))
        fb = first_bad[curve.init, curve.grid] if first_bad is not None else None
        over = _overflow_layers(v, fb)
        if (over >= 0).any():
            layer = int(over[over >= 0].min())
            count = int((over >= 0).sum())
            ax.axvline(layer + 1, color=curve.color, ls=":", lw=1.4)
            ax.annotate(f"non-finite {count}/{n_seeds}", xy=(layer + 1, 0.97 - 0.08 * (k % 6)),
                        xycoords=("data", "axes fraction"), color=curve.color, fontsize=7,
                        ha="right", va="top", rotation=0,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
            overflowed = True
        under = ctx.underflow(p, curve)
        if under is not None:
            ax.plot([under + 1], [0.02], marker="v", color=curve.color, ms=7, ls="none",
                    transform=ax.get_xaxis_transform(), clip_on=False)
            underflowed = True
        if panel.stat in ("grad_w_norm", "grad_h_norm"):
            lost = ctx.underflow(p, curve, "first_grad_underflow_layer")
            if lost is not None:
                ax.plot([lost + 1], [0.08], marker="<", color=curve.color, ms=7, ls="none",
                        transform=ax.get_xaxis_transform(), clip_on=False)
                grad_underflowed = True
        if not np.isfinite(st["median"]).any():
            empty_curves.append(curve.label)
        elif panel.log and not np.any(st["median"] > 0):
            zero_curves.append(curve.label)
    _panel_title(ax, _program_title(res, p), 10)
    ax.set_xlabel(_X_LABEL, fontsize=9)
    ax.set_ylabel(panel.ylabel, fontsize=9)
    ax.set_xlim(0.5, n_layers + 0.5)
    if n_layers <= 12:
        ax.set_xticks(x)
    else:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if panel.log:
        data = _finite_positive(*data_vals) if data_vals else np.zeros(0)
        theory = _finite_positive(*theory_vals) if theory_vals else np.zeros(0)
        limits = _log_limits(data, theory)
        if limits is not None:
            ax.set_yscale("log")
            ax.set_ylim(*limits)
        else:
            ax.text(0.5, 0.5, "no positive finite values\n(all zero or overflowed)", transform=ax.transAxes,
                    ha="center", va="center", fontsize=9, color="0.4")
    elif panel.ylim is not None:
        ax.set_ylim(*panel.ylim)
    # Curves with nothing to draw are named, so a reader does not look for them.
    notes = ([f"0 at every layer: {', '.join(zero_curves)}"] if zero_curves else []) + (
        [f"no finite value: {', '.join(empty_curves)}"] if empty_curves else [])
    if notes:
        _panel_title(ax, "\n".join([_program_title(res, p), f"(not drawn: {'; '.join(notes)})"]), 9)
    ax.grid(True, which="major", alpha=0.3)
    ax.tick_params(labelsize=8)
    return drew_theory, overflowed, underflowed, grad_underflowed


def _layer_figure(results, panels: Sequence[_Panel], title: str):
    """Rows: one block per statistic in ``panels``; columns: programs (wrapped at 3 or 4)."""
    ctx = _context(results)
    res = ctx.results
    panels = [pn for pn in panels if pn.stat in res.arrays]
    if not panels or not ctx.curves:
        return None
    n_prog = len(res.programs)
    if len(panels) == 1:
        rows_per, cols = _grid_shape(n_prog)
    else:  # one row of programs per statistic
        cols = min(n_prog, 4)
        rows_per = -(-n_prog // cols)
    fig, axes = _new_figure(rows_per * len(panels), cols, len(ctx.curves) + 5)
    flags = [False, False, False, False]
    for s, panel in enumerate(panels):
        for p in range(n_prog):
            ax = axes[s * rows_per + p // cols][p % cols]
            drawn = _draw_layer_panel(ctx, ax, p, panel)
            flags = [a or b for a, b in zip(flags, drawn, strict=True)]
        for q in range(n_prog, rows_per * cols):
            axes[s * rows_per + q // cols][q % cols].set_visible(False)
    missing = ctx.missing_text()
    _suptitle(fig, f"{title}\n{_input_text(res)}" + (f"\npartial results, missing {missing}" if missing else ""))
    handles = _curve_handles(ctx.curves) + _style_handles(_seeds_text(res), *flags)
    _legend(fig, handles, ctx.note)
    ctx.warn_no_theory(FIGURE_FILES.get(panels[0].stat, panels[0].stat))
    return fig


def variance_figure(results):
    r"""Second moment of the pre-activations :math:`q_\ell` per layer (log scale), theory dashed."""
    return _layer_figure(results, [_Panel("q", r"$q_\ell$ = mean$(h^\ell)^2$ (log scale)", True, "q")],
                         r"Variance of pre-activations through depth: $q_\ell$")


def gradient_figure(results):
    r"""Norm of the loss gradient w.r.t. each layer's weights (log scale)."""
    ctx = _context(results)
    loss = ctx.results.meta.get("config", {}).get("probes", {}).get("loss", "mse")
    return _layer_figure(ctx, [_Panel("grad_w_norm", r"$\|\partial L/\partial W_\ell\|_F$ (log scale)",
                                      True, None)],
                         f"Gradient norm per layer ({loss} loss on random targets)")


def correlation_figure(results):
    r"""Correlation :math:`c_\ell` of paired inputs' pre-activations per layer, theory dashed."""
    ctx = _context(results)
    if "correlation" not in ctx.results.arrays:
        return None
    values = ctx.results.arrays["correlation"]
    if not np.isfinite(values).any():
        return None
    low = max(-1.05, min(-0.05, float(np.min(values[np.isfinite(values)])) - 0.05))
    return _layer_figure(ctx, [_Panel("correlation", r"$c_\ell$ = cos$(h^\ell_a, h^\ell_b)$", False,
                                      "correlation", (low, 1.05))],
                         r"Correlation map: cosine similarity $c_\ell$ of paired inputs through depth")


def dead_saturated_figure(results):
    r"""Fraction of dead units and fraction of saturated (unit, input) entries per layer.

    The definitions are those of :mod:`jaxinit.probes` (thresholds ``DEAD_THRESHOLD``,
    ``SATURATION_THRESHOLD``): a unit is dead when :math:`|\phi'(h)|` is below the dead threshold
    on every input of the batch (a fraction of units); an entry is saturated when
    :math:`|\phi'(h)|` is below the saturation threshold (a fraction of all (unit, input) entries,
    :math:`P(|\phi'(h)| < 0.01)`). ReLU's inactive half (:math:`h \le 0`) counts as saturated, so a
    ReLU layer shows about 50% saturated entries and (with a large batch) almost no dead units.
    """
    from jaxinit.probes import DEAD_THRESHOLD, SATURATION_THRESHOLD

    dead, sat = _tex_number(DEAD_THRESHOLD), _tex_number(SATURATION_THRESHOLD)
    return _layer_figure(results, [
        _Panel("dead_fraction", "dead units (fraction of units)", False, None, (-0.03, 1.03)),
        _Panel("saturated_fraction", "saturated entries\n(fraction of (unit, input) pairs)", False, None,
               (-0.03, 1.03)),
    ], rf"Dead units ($|\phi'|<{dead}$ on every input of the batch) and saturated entries ($|\phi'|<{sat}$, "
       r"counted per (unit, input) pair; ReLU's inactive half counts: about 1/2)")


def _tex_number(x: float) -> str:
    """``1e-06`` -> ``10^{-6}``, ``0.01`` -> ``0.01`` (for a mathtext title)."""
    exponent = math.floor(math.log10(x))
    if x == 10.0 ** exponent and exponent < -2:
        return f"10^{{{exponent}}}"
    return f"{x:g}"


def jacobian_msv_figure(results):
    r"""Mean squared singular value of the input-output Jacobian :math:`\partial h^\ell/\partial x`."""
    ylabel = r"mean $\sigma^2$ of $\partial h^\ell/\partial x$ (log scale)"
    return _layer_figure(results, [_Panel("jacobian_msv", ylabel, True, "jacobian_msv")],
                         r"Jacobian mean squared singular value through depth (random projections)")
