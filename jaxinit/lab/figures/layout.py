"""Drawing helpers: the figure context, canvas and panel grid, titles and legends measured to
fit the canvas, style handles."""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxinit._stats import seed_stats
from jaxinit.lab.figures.common import (
    _BAND_ALPHA,
    DPI,
    PANEL_H,
    PANEL_W,
    Curve,
    FigureWarning,
    _as_results,
    _curves,
    _theory_on,
)
from jaxinit.lab.figures.theory import theory_overlay
from jaxinit.lab.store import Results


class _Context:
    """What several figures of one folder share: the curves and the (lazy) theory overlays."""

    def __init__(self, results: Results):
        self.results = results
        self.curves, self.note = _curves(results)
        self.theory_on = _theory_on(results)
        self._overlays: dict[int, dict[str, Any]] = {}
        self._underflow: dict[tuple[int, int, int, str], int | None] = {}
        self._no_theory: dict[str, dict[str, set[str]]] = {}  # reason -> curve label -> program ids
        n_seeds = len(results.coords.get("seed", []))
        # Programs of a partial assembly without a single seed yet: nothing to draw, nor to predict.
        self.empty = {p for p, pid in enumerate(results.programs)
                      if len(results.missing_seeds.get(pid, [])) >= n_seeds}

    def missing_text(self) -> str | None:
        """What a partial assembly lacks, in a line (None for a complete one)."""
        from jaxinit.lab.store.layout import _ranges

        missing = {pid: seeds for pid, seeds in self.results.missing_seeds.items() if seeds}
        if not missing:
            return None
        n_seeds = len(self.results.coords.get("seed", []))
        parts = [f"{pid}: no seeds yet" if len(seeds) >= n_seeds else f"{pid}: seeds {_ranges(seeds)}"
                 for pid, seeds in missing.items()]
        return "; ".join(parts)

    def no_theory(self, p: int, curve: Curve, reason: str) -> None:
        """Note that ``curve`` of program ``p`` gets no theory curve, and why (see :meth:`warn_no_theory`)."""
        self._no_theory.setdefault(reason, {}).setdefault(curve.label, set()).add(self.results.programs[p])

    def warn_no_theory(self, figure: str) -> None:
        """One :class:`FigureWarning` per reason for the curves :meth:`no_theory` noted; then forget them."""
        n_programs = len(self.results.programs)
        for reason, curves in self._no_theory.items():
            names = [repr(label) if len(programs) == n_programs else f"{label!r} ({', '.join(sorted(programs))})"
                     for label, programs in curves.items()]
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            warnings.warn(f"{figure}: no mean-field theory drawn for {shown}: {reason}", FigureWarning,
                          stacklevel=4)
        self._no_theory.clear()

    def overlay(self, p: int) -> dict[str, Any] | None:
        if not self.theory_on:
            return None
        if p not in self._overlays:
            combos = [(c.init, c.grid) for c in self.curves]
            self._overlays[p] = theory_overlay(self.results, p, combos=combos)
        return self._overlays[p]

    def underflow(self, p: int, curve: Curve, array: str = "first_underflow_layer") -> int | None:
        """The layer where q underflowed in most seeds: the median of the engine's
        ``first_underflow_layer`` when at least half the seeds underflowed (folders without that
        array: the first layer where the median q is exactly 0 after being positive).

        ``array="first_grad_underflow_layer"``: likewise for the gradient (the engine's deepest
        layer whose weight or pre-activation gradient norm fell below the dtype's smallest normal;
        the layers before it, toward the input, are lost too); None for folders without it.
        """
        key = (p, curve.init, curve.grid, array)
        if key in self._underflow:
            return self._underflow[key]
        if array != "first_underflow_layer":
            self._underflow[key] = None
            if array in self.results.arrays:
                layers = self.results.get(array, p)[curve.init, curve.grid]
                hit = layers[layers >= 0]
                if hit.size and 2 * hit.size >= layers.size:
                    self._underflow[key] = int(np.median(hit))
        elif "first_underflow_layer" in self.results.arrays:
            layers = self.results.get("first_underflow_layer", p)[curve.init, curve.grid]
            hit = layers[layers >= 0]
            self._underflow[key] = int(np.median(hit)) if 2 * hit.size >= layers.size and hit.size else None
        elif "q" in self.results.arrays:
            med = seed_stats(self.results.get("q", p)[curve.init, curve.grid], axis=0)["median"]
            zero = np.flatnonzero(med == 0)
            self._underflow[key] = int(zero[0]) if zero.size and np.any(med[: zero[0]] > 0) else None
        else:
            self._underflow[key] = None
        return self._underflow[key]


def _context(results: Results | _Context | str | os.PathLike) -> _Context:
    return results if isinstance(results, _Context) else _Context(_as_results(results))


def _legend_columns(width_in: float, n_entries: int) -> int:
    return max(1, min(n_entries, int(width_in / 2.15)))


def _new_figure(n_rows: int, n_cols: int, legend_entries: int = 0):
    """A figure of ``n_rows x n_cols`` panels with room for a legend of ``legend_entries`` below."""
    from matplotlib.figure import Figure

    width = PANEL_W * n_cols
    legend_rows = -(-legend_entries // _legend_columns(width, legend_entries)) if legend_entries else 0
    height = PANEL_H * n_rows + 0.5 + 0.2 * legend_rows
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, axes


def _grid_shape(n: int, max_cols: int = 3) -> tuple[int, int]:
    """(rows, columns) for ``n`` panels: one row up to 3, then a squarish grid."""
    cols = n if n <= 3 else min(max_cols, math.ceil(math.sqrt(n)))
    cols = max(1, min(cols, max_cols))
    return -(-n // cols), cols


def _finite_positive(*arrays: np.ndarray) -> np.ndarray:
    vals = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)
    return vals[np.isfinite(vals) & (vals > 0)]


def _log_limits(data: np.ndarray, theory: np.ndarray) -> tuple[float, float] | None:
    """y-limits for a log axis from the data; theory widens them by at most 2 decades."""
    if data.size == 0:
        return None
    lo, hi = float(data.min()), float(data.max())
    if theory.size:
        lo = min(lo, max(float(theory.min()), lo / 100))
        hi = max(hi, min(float(theory.max()), hi * 100))
    if hi / lo < 10:
        mid = math.sqrt(hi * lo)
        lo, hi = mid / math.sqrt(10), mid * math.sqrt(10)
    return lo / 2, hi * 2


def _suptitle(fig, text: str) -> None:
    """A title wrapped to the figure's width: about 12 characters per inch at 11 pt to start with,
    then narrower until the rendered title measures within the canvas (mathtext varies)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    chars = max(20, int(fig.get_figwidth() * 12))
    while True:
        title = fig.suptitle("\n".join(_wrap(line, chars) for line in text.split("\n")), fontsize=11)
        width = title.get_window_extent(canvas.get_renderer()).width / fig.dpi
        if width <= fig.get_figwidth() - 0.2 or chars <= 20:
            return
        chars = max(20, int(chars * min(0.9, (fig.get_figwidth() - 0.2) / width)))


def _panel_title(ax, text: str, fontsize: float) -> None:
    """A panel title wrapped to the panel's width, measured as :func:`_suptitle` measures: about
    one character per half an em to start with, then narrower until the rendered title is no wider
    than the panel (the panel before the layout runs, which only widens it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ax.get_figure()
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    width_in = ax.get_position().width * fig.get_figwidth()
    chars = max(16, int(width_in * 72 / (0.5 * fontsize)))
    while True:
        title = ax.set_title("\n".join(_wrap(line, chars) for line in text.split("\n")), fontsize=fontsize)
        width = title.get_window_extent(renderer).width / fig.dpi
        if width <= width_in or chars <= 16:
            return
        chars = max(16, int(chars * min(0.9, width_in / width)))


def _wrap(line: str, width: int) -> str:
    """Greedy word wrap that never breaks inside ``$...$`` (math counts at about half its source)."""
    tokens = re.findall(r"\S*\$[^$]*\$\S*|\S+", line)
    out, current, size = [], [], 0
    for token in tokens:
        n = len(token) if "$" not in token else max(1, len(token) // 2)
        if current and size + 1 + n > width:
            out.append(" ".join(current))
            current, size = [], 0
        current.append(token)
        size += n + (1 if size else 0)
    out.append(" ".join(current))
    return "\n".join(out)


_LEGEND_LABEL_CHARS = 64  # longer legend labels are wrapped (math counts at about half its source)


def _legend(fig, handles: list, note: str = "") -> None:
    """The figure's legend below the panels, measured so that it fits the canvas.

    Long labels are wrapped; the legend takes as many columns as fit the figure's width (at least
    two for more than six entries, widening the figure if need be), and the figure grows in height
    by what the legend's rows take, so the panels keep their size and nothing runs off the canvas.
    """
    if not handles:
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for h in handles:
        h.set_label(_wrap(h.get_label(), _LEGEND_LABEL_CHARS))
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    base_height = fig.get_figheight()
    ncol = min(len(handles), max(_legend_columns(fig.get_figwidth(), len(handles)), 2 if len(handles) > 6 else 1))
    while True:
        legend = fig.legend(handles=handles, loc="outside lower center", ncols=ncol, fontsize=8, frameon=False,
                            title=note or None, title_fontsize=8)
        box = legend.get_window_extent(renderer)
        width_in, height_in = box.width / fig.dpi, box.height / fig.dpi
        if width_in <= fig.get_figwidth() - 0.2 or ncol <= (2 if len(handles) > 6 else 1):
            break
        legend.remove()
        ncol -= 1
    if width_in > fig.get_figwidth() - 0.2:
        fig.set_figwidth(width_in + 0.3)
    # _new_figure left 0.2 in per legend row it expected; give the legend what it measures.
    expected = 0.2 * -(-len(handles) // _legend_columns(fig.get_figwidth(), len(handles)))
    fig.set_figheight(base_height + max(0.0, height_in + 0.15 - expected))


def _style_handles(n_seeds_text: str, theory: bool, overflow: bool, underflow: bool,
                   grad_underflow: bool = False) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color="black", lw=1.6, label=f"median over {n_seeds_text}"),
               Patch(color="black", alpha=_BAND_ALPHA + 0.1, lw=0, label="5–95% of seeds")]
    if theory:
        handles.append(Line2D([], [], color="black", lw=1.2, ls="--", label="mean-field theory (curve's colour)"))
    if overflow:
        handles.append(Line2D([], [], color="black", lw=1.2, ls=":", label="first non-finite layer (overflow, or 0/0)"))
    if underflow:
        handles.append(Line2D([], [], color="black", lw=0, marker="v",
                              label="q underflows (below the smallest normal float)"))
    if grad_underflow:
        handles.append(Line2D([], [], color="black", lw=0, marker="<",
                              label="gradient underflows here and toward the input (below the smallest normal)"))
    return handles


def _curve_handles(curves: Sequence[Curve]) -> list:
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=c.color, lw=2.2, label=c.label) for c in curves]
