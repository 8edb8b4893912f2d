"""What the training figures share (:mod:`jaxinit.lab.figures.train`): the file names, the views
(program, grid point) a figure draws, the statistics across seeds with diverged members ranked worst,
the canvas, titles and legend pieces."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxinit.lab.figures.common import (
    _fmt,
    _grid_subset,
    _point_text,
    _seeds_text,
)
from jaxinit.lab.figures.layout import (
    _Context,
    _legend_columns,
    _new_figure,
    _panel_title,
)
from jaxinit.lab.store import Results

TRAIN_FIGURE_FILES = {
    "curves": "train_loss.png",
    "steps_to_target": "train_steps_to_target.png",
    "grad_norm": "train_grad_norm.png",
    "distinct_units": "train_distinct_units.png",
}
MAX_VIEWS = 6  # (program, grid point) panels per figure at most
_PANEL_W, _PANEL_H = 3.2, 2.6  # inches: three panels in a row fit ~1000 px at the figures' DPI
_MIN_WIDTH = 7.0  # inches
_LOSS_NAMES = {"xent": "cross-entropy", "mse": "mean squared error"}
_BAND_TEXT = "25–75% of the seeds (band)"


class _View(NamedTuple):
    """One (program, grid point) the figures draw; ``text`` says what sets it apart from the figure's
    other views, ``common`` what they share (the figure's title says it once)."""

    program: int
    grid: int
    text: str
    common: str


def _grid_text(point: dict[str, float]) -> str:
    """A grid point in words: sigma_w^2, sigma_b^2 as the sweep writes them, then the learning rate."""
    parts = [t for t in (_point_text(point),) if t]
    if "learning_rate" in point:
        parts.append(f"learning rate {_fmt(point['learning_rate'])}")
    return ", ".join(parts)


def _lr_subset(points: Sequence[dict[str, float]], k: int) -> list[int]:
    """Up to ``k`` grid points: the learning rates, spread evenly, at the middle value of every other
    grid parameter (the comparison a training grid is for); without a learning-rate axis, the
    sweep's choice (:func:`~jaxinit.lab.figures.common._grid_subset`)."""
    rates = sorted({p["learning_rate"] for p in points if "learning_rate" in p})
    if len(rates) < 2:
        return _grid_subset(points, k)
    others = {name for p in points for name in p if name != "learning_rate"}
    middle = {name: sorted({p[name] for p in points})[(len({p[name] for p in points}) - 1) // 2] for name in others}
    candidates = sorted((g for g, p in enumerate(points) if all(p[n] == v for n, v in middle.items())),
                        key=lambda g: points[g]["learning_rate"])
    if len(candidates) <= k:
        return candidates
    return [candidates[j] for j in np.unique(np.round(np.linspace(0, len(candidates) - 1, k)).astype(int))]


def _views(res: Results) -> tuple[list[_View], str]:
    """The (program, grid point) pairs to draw (at most :data:`MAX_VIEWS`) and a note on the subset."""
    points = list(res.coords["grid_point"])
    n_prog, n_grid = len(res.programs), len(points)
    progs = list(range(n_prog))
    notes = []
    if n_prog > MAX_VIEWS:
        progs = [int(j) for j in np.unique(np.round(np.linspace(0, n_prog - 1, MAX_VIEWS)).astype(int))]
        notes.append(f"{len(progs)} of {n_prog} programs")
    grids = list(range(n_grid))
    if len(progs) * n_grid > MAX_VIEWS:
        grids = _lr_subset(points, max(1, MAX_VIEWS // len(progs)))
        notes.append(f"{len(grids)} of {n_grid} grid points")
    shapes = [res.coords["program"][p] for p in progs]
    words = {"activation": lambda v: str(v), "depth": lambda v: f"depth {v}", "width": lambda v: f"width {v}"}
    varying = {k for k in words if len({str(s[k]) for s in shapes}) > 1}
    params = sorted({name for g in grids for name in points[g]})
    varying_params = {n for n in params if len({points[g].get(n) for g in grids}) > 1}
    common = ", ".join(f(shapes[0][k]) for k, f in words.items() if k not in varying)
    shared_point = {n: v for n, v in points[grids[0]].items() if n not in varying_params}
    if shared_point:
        common += f"; {_grid_text(shared_point)}"
    views = []
    for p in progs:
        for g in grids:
            parts = [", ".join(f(res.coords["program"][p][k]) for k, f in words.items() if k in varying)]
            parts.append(_grid_text({n: v for n, v in points[g].items() if n in varying_params}))
            views.append(_View(p, g, "; ".join(x for x in parts if x), common))
    return views, ("showing " + " and ".join(notes)) if notes else ""


def _present(res: Results, p: int) -> np.ndarray:
    """Which seeds of program ``p`` the folder holds (a partial assembly misses some)."""
    missing = set(res.missing_seeds.get(res.programs[p], []))
    return np.array([s not in missing for s in res.coords.get("seed", [])], dtype=bool)


def _ranked(values: np.ndarray, worst: float) -> dict[str, np.ndarray]:
    """Median, 25% and 75% quantiles over axis 0, a non-finite entry ranking as ``worst`` (+inf or -inf).

    The linear rule of :func:`jaxinit._stats.seed_stats` (``h = (n - 1) p`` between order statistics);
    an interpolation that touches an infinite order statistic is that infinity. With every entry
    finite this equals ``seed_stats``' median, q25 and q75.
    """
    x = np.asarray(values, dtype=np.float64)
    x = np.sort(np.where(np.isfinite(x), x, worst), axis=0)
    n = x.shape[0]
    out = {}
    for name, q in (("q25", 0.25), ("median", 0.5), ("q75", 0.75)):
        if n == 0:
            out[name] = np.full(x.shape[1:], np.nan)
            continue
        h = (n - 1) * q
        lo = int(math.floor(h))
        hi = min(lo + 1, n - 1)
        t = h - lo
        a, b = x[lo], x[hi]
        with np.errstate(all="ignore"):
            value = a + t * (b - a)
        value = np.where((t == 0) | (a == b) | np.isinf(a), a, np.where(np.isinf(b), b, value))
        out[name] = value
    return out


def _first_nonfinite(values: np.ndarray) -> np.ndarray:
    """Per member (axis 0), the index of the first non-finite entry of its last axis (-1: none)."""
    bad = ~np.isfinite(values)
    return np.where(bad.any(axis=-1), np.argmax(bad, axis=-1), -1)


def _train_figure(rows: int, cols: int, legend_entries: int, title_lines: int, panel_w: float = _PANEL_W,
                  panel_h: float = _PANEL_H):
    """:func:`~jaxinit.lab.figures.layout._new_figure` resized to the training figures' panels
    (narrower than the sweep's, so three fit the README's width; at least :data:`_MIN_WIDTH` wide, so
    the title stays a few lines), with room for the title's lines."""
    fig, axes = _new_figure(rows, cols, legend_entries)
    width = max(panel_w * cols, _MIN_WIDTH)
    legend_rows = -(-legend_entries // _legend_columns(width, legend_entries)) if legend_entries else 0
    fig.set_size_inches(width, panel_h * rows + 0.3 + 0.2 * title_lines + 0.2 * legend_rows)
    return fig, axes


def _log_ticks(ax, limits: tuple[float, float]) -> None:
    """Minor tick labels on a log axis only where the decades are few (under two decades: the
    2s and 5s, written plainly), never matplotlib's crowded default of every minor tick."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if math.log10(limits[1] / limits[0]) >= 2:
        ax.yaxis.set_minor_formatter(NullFormatter())
        return

    def label(y, _):
        mantissa = round(y / 10 ** math.floor(math.log10(y)), 6) if y > 0 else 0
        return f"{y:g}" if mantissa in (2, 5) else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(label))


def _run_text(res: Results) -> str:
    """The data and the optimization in a line, e.g. ``digits (10 classes); sgd(momentum=0.9), learning
    rate 0.05, batch 64, 200 steps; 4 seeds``."""
    config = res.config
    d, t = config.data, config.train
    if d.task == "classification":
        data = f"{d.name} ({d.n_classes} classes)" if d.n_classes else f"{d.name} (classification)"
    else:
        data = f"{d.name} (regression)"
    name, kwargs = t.optimizer
    opt = f"{name}({', '.join(f'{k}={v}' for k, v in kwargs)})" if kwargs else name
    lr = t.learning_rate
    if "learning_rate" in (res.coords.get("grid_params") or []):
        lr_text = "learning rate per grid point"
    elif isinstance(lr, dict):
        lr_text = "learning rate " + lr.get("name", "schedule") + "(" + ", ".join(
            f"{k}={v}" for k, v in lr.items() if k != "name") + ")"
    else:
        lr_text = f"learning rate {_fmt(float(lr))}"
    batch = "full batch" if t.batch == 0 else f"batch {t.batch}"
    clip = f", gradients clipped to global norm {_fmt(t.clip_global_norm)}" if t.clip_global_norm else ""
    return f"{data}; {opt}, {lr_text}, {batch}, {t.steps} steps{clip}; {_seeds_text(res)}"


def _title(ctx: _Context, what: str, views: Sequence[_View]) -> tuple[str, int]:
    """The figure's title (what, the run, the single view, a partial assembly) and its line count."""
    lines = [what, _run_text(ctx.results)]
    if views:
        lines[-1] += "; " + "; ".join(x for x in (views[0].common, views[0].text if len(views) == 1 else "") if x)
    missing = ctx.missing_text()
    if missing:
        lines.append(f"partial results, missing {missing}")
    # About two wrapped lines each at these widths.
    return "\n".join(lines), 2 * len(lines)


def _panel(ax, what: str, view: _View, views: Sequence[_View], extra: str = "") -> None:
    """A panel title: what it shows, the view (when the figure has several), and a note."""
    lines = [what] + ([view.text] if len(views) > 1 else []) + ([extra] if extra else [])
    _panel_title(ax, "\n".join(lines), 9)
    ax.tick_params(which="both", labelsize=8)
    ax.grid(True, which="major", alpha=0.3)


def _no_seeds(ax) -> None:
    ax.text(0.5, 0.5, "no data yet\n(every seed of this program is missing:\nrerun the training to finish it)",
            transform=ax.transAxes, ha="center", va="center", fontsize=8, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _init_handles(labels: Sequence[str], colors: Sequence[Any]) -> list:
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=c, lw=2.2, label=label) for label, c in zip(labels, colors, strict=True)]


def _diverged_note(res: Results, view: _View, labels: Sequence[str]) -> tuple[str, int, int]:
    """``"k of n members diverged (init k_i/n_i, ...)"`` for one view ("" when none did), k and n."""
    if "diverged" not in res.arrays:
        return "", 0, 0
    present = _present(res, view.program)
    flags = np.asarray(res.get("diverged", view.program)[:, view.grid][:, present], dtype=bool)  # (init, seed)
    k, n = int(flags.sum()), int(flags.size)
    if not k:
        return "", 0, n
    per = ", ".join(f"{labels[i]} {int(flags[i].sum())}/{flags.shape[1]}" for i in range(flags.shape[0])
                    if flags[i].any())
    return f"{k} of {n} members diverged ({per})", k, n
