"""Training figures through the layers: gradient norm per layer at three steps, distinct hidden units
after training (:mod:`jaxinit.lab.figures.train` describes them)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxinit._stats import seed_stats
from jaxinit.lab.figures.common import _BAND_ALPHA, FigureWarning, _colors, _seeds_text
from jaxinit.lab.figures.layout import _context, _finite_positive, _legend, _log_limits, _suptitle
from jaxinit.lab.figures.train_common import (
    _BAND_TEXT,
    TRAIN_FIGURE_FILES,
    _diverged_note,
    _init_handles,
    _log_ticks,
    _no_seeds,
    _panel,
    _present,
    _title,
    _train_figure,
    _views,
)


def _snapshot_steps(steps: Sequence[int]) -> list[int]:
    """Indices of the first, the ~10% and the last evaluated step (distinct, in order)."""
    steps = np.asarray(steps, dtype=float)
    target = steps[0] + 0.1 * (steps[-1] - steps[0])
    inner = [j for j in range(1, len(steps) - 1)]
    picks = [0]
    if inner:
        picks.append(min(inner, key=lambda j: abs(steps[j] - target)))
    picks.append(len(steps) - 1)
    return sorted(set(picks))


def train_grad_norm_figure(results) -> Any:
    r"""Gradient norm per layer, :math:`\|\partial L/\partial W_\ell\|_F` of the training loss on the
    minibatch (the mean over the steps since the previous evaluation; at step 0 the first step's),
    against layer :math:`\ell = 1 .. L+1` (the last is the readout) at the first, a ~10% and the
    last evaluated step; log scale, median over seeds and the 25-75% band per initializer. A median
    that is exactly 0 (no gradient reaches the layer: zero weights) is marked ``v`` at the bottom.
    Diverged members are left out (their gradients are NaN), and counted in the panel title.
    """
    ctx = _context(results)
    res = ctx.results
    if "grad_w_norm" not in res.arrays:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    labels = list(res.coords["initializer"])
    colors = _colors(len(labels), by_value=False)
    steps = list(res.coords["step"])
    picks = _snapshot_steps(steps)
    views, note = _views(res)
    title, title_lines = _title(ctx, r"Gradient norm per layer, $\|\partial L/\partial W_\ell\|_F$ of the training "
                                     "loss on the minibatch (mean since the previous evaluation), at three steps",
                                views)
    fig, axes = _train_figure(len(views), len(picks), len(labels) + 3, title_lines)
    data = []
    stats: dict[tuple[int, int, int], dict[str, np.ndarray]] = {}
    zeros = False
    for r, view in enumerate(views):
        present = _present(res, view.program)
        if not present.any():
            continue
        values = res.get("grad_w_norm", view.program)[:, view.grid][:, present]  # (init, seed, step, layer)
        for c, j in enumerate(picks):
            for i in range(len(labels)):
                st = seed_stats(values[i, :, j], axis=0)
                stats[r, c, i] = st
                data += [st["median"], st["q25"], st["q75"]]
    limits = _log_limits(_finite_positive(*data), np.zeros(0)) if data else None
    for r, view in enumerate(views):
        present = _present(res, view.program)
        depth = int(res.coords["program"][view.program]["depth"])
        note_text, _, _ = _diverged_note(res, view, labels)
        for c, j in enumerate(picks):
            ax = axes[r][c]
            _panel(ax, f"step {steps[j]}", view, views, (note_text + ", left out") if note_text and c == 0 else "")
            if not present.any():
                _no_seeds(ax)
                continue
            x = np.arange(1, depth + 2)
            n_curves = len(labels)
            for i, color in enumerate(colors):
                st = stats[r, c, i]
                pos = lambda a: np.where(a > 0, a, np.nan)  # noqa: E731
                ax.fill_between(x, pos(st["q25"]), pos(st["q75"]), color=color, alpha=_BAND_ALPHA, lw=0)
                lw = 1.2 + (1.6 * (n_curves - 1 - i) / (n_curves - 1) if n_curves > 1 else 0.0)
                ax.plot(x, pos(st["median"]), color=color, lw=lw, marker=".", ms=3 + lw)
                zero = np.flatnonzero(st["median"] == 0)
                if zero.size:
                    zeros = True
                    ax.plot(x[zero], np.full(zero.size, 0.03 + 0.045 * (i % 4)), ls="none", marker="v", ms=6,
                            color=color, transform=ax.get_xaxis_transform(), clip_on=False)
            if limits is not None:
                ax.set_yscale("log")
                ax.set_ylim(*limits)
                _log_ticks(ax, limits)
            ax.set_xlim(0.5, depth + 1.5)
            ax.set_xticks(x, [str(k) for k in x[:-1]] + [f"{depth + 1}\nreadout"])
            ax.set_xlabel(r"layer $\ell$ (weight matrix $W_\ell$)", fontsize=9)
            ax.set_ylabel(r"$\|\partial L/\partial W_\ell\|_F$" + (" (log scale)" if limits else ""), fontsize=9)
    _suptitle(fig, title)
    handles = _init_handles(labels, colors) + [
        Line2D([], [], color="black", lw=1.6, marker=".", label=f"median over {_seeds_text(res)}"),
        Patch(color="black", alpha=_BAND_ALPHA + 0.1, lw=0, label=_BAND_TEXT),
    ]
    if zeros:
        handles.append(Line2D([], [], ls="none", marker="v", color="black",
                              label="median exactly 0 (no gradient reaches the layer; below the log axis)"))
    _legend(fig, handles, note)
    return fig


def distinct_units_figure(results) -> Any:
    """Distinct hidden units per layer after training (``distinct_units``: units whose kernel column
    and bias differ from every other's; 1 = all identical, the symmetry never broken; width = none
    identical), per initializer the median over seeds and the 25-75% band against hidden layer, on a
    log2 scale from 1 to the width (dashed). None, with a :class:`FigureWarning`, when every unit of
    every member is distinct (nothing to show).
    """
    ctx = _context(results)
    res = ctx.results
    if "distinct_units" not in res.arrays:
        return None
    views, note = _views(res)
    below = False
    for p in range(len(res.programs)):
        width = int(res.coords["program"][p]["width"])
        values = res.get("distinct_units", p)[:, :, _present(res, p)]
        below |= bool(np.any(values < width))
    if not below:
        warnings.warn(f"{TRAIN_FIGURE_FILES['distinct_units']} not drawn: all units are distinct (distinct_units "
                      "equals the width in every hidden layer of every member): no symmetry left to show",
                      FigureWarning, stacklevel=3)
        return None
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, NullLocator

    labels = list(res.coords["initializer"])
    colors = _colors(len(labels), by_value=False)
    rows = -(-len(views) // 3)
    cols = min(3, len(views))
    title, title_lines = _title(ctx, "Distinct hidden units per layer after training (1 = all units identical: "
                                     "the symmetry was never broken; width = no two alike)", views)
    fig, axes = _train_figure(rows, cols, len(labels) + 3, title_lines)
    for k, view in enumerate(views):
        ax = axes[k // cols][k % cols]
        width = int(res.coords["program"][view.program]["width"])
        present = _present(res, view.program)
        _panel(ax, "distinct units", view, views)
        if not present.any():
            _no_seeds(ax)
            continue
        values = res.get("distinct_units", view.program)[:, view.grid][:, present].astype(float)  # (init, seed, layer)
        x = np.arange(1, values.shape[-1] + 1)
        n_curves = len(labels)
        for i, color in enumerate(colors):
            st = seed_stats(values[i], axis=0)
            ax.fill_between(x, st["q25"], st["q75"], color=color, alpha=_BAND_ALPHA, lw=0)
            lw = 1.2 + (2.4 * (n_curves - 1 - i) / (n_curves - 1) if n_curves > 1 else 0.0)
            ax.plot(x, st["median"], color=color, lw=lw, marker="o", ms=2 + lw)
        ax.axhline(width, color="0.3", ls="--", lw=1.0)
        ax.set_yscale("log", base=2)
        ax.set_ylim(0.8, width * 1.35)
        ticks = sorted({2 ** e for e in range(int(math.log2(width)) + 1)} | {width})
        if len(ticks) > 7:
            ticks = sorted(set(ticks[:: -(-len(ticks) // 6)]) | {1, width})
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_yticklabels([f"{y:g}" for y in ticks])
        ax.set_xlim(0.6, len(x) + 0.4)
        ax.set_xticks(x)
        ax.set_xlabel(r"hidden layer $\ell$", fontsize=9)
        ax.set_ylabel(f"distinct units (of {width}; log scale)", fontsize=9)
    for k in range(len(views), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    _suptitle(fig, title)
    handles = _init_handles(labels, colors) + [
        Line2D([], [], color="black", lw=1.6, marker="o", ms=4, label=f"median over {_seeds_text(res)}"),
        Patch(color="black", alpha=_BAND_ALPHA + 0.1, lw=0, label=_BAND_TEXT),
        Line2D([], [], color="0.3", ls="--", lw=1.0, label="the width: every unit distinct"),
    ]
    _legend(fig, handles, note)
    return fig
