r"""Figures of a training run's results folder (``config.kind == "train"``; :mod:`jaxinit.lab.training`).

=====================================  ==========================================================
file                                   what it shows
=====================================  ==========================================================
``train_loss.png``                     train loss, test loss (log scale) and test accuracy against
                                       step: per initializer the median over seeds and the 25-75%
                                       band; the configured targets dotted, chance accuracy grey
``train_steps_to_target.png``          per initializer, the first evaluated step at which each
                                       seed reached ``target_accuracy`` / ``target_loss`` (a dot per
                                       seed, the median as a bar); members that never reached it
                                       in a separate "not reached" row with their count
``train_grad_norm.png``                :math:`\|\partial L/\partial W_\ell\|_F` against layer at
                                       the first, a ~10% and the last evaluated step (log scale)
``train_distinct_units.png``           distinct hidden units per layer after training (1: every
                                       unit identical, the symmetry never broken; width: none)
=====================================  ==========================================================

Panels: one per *view*, a (program, grid point) pair; all of them while there are at most
:data:`MAX_VIEWS`, else a subset named in the legend (the grid's learning rates at the middle of
its other parameters, spread evenly; programs spread evenly). Initializers are the colours.

Statistics across seeds: the median and the 25% and 75% quantiles (numpy's linear rule, the
:func:`jaxinit._stats.seed_stats` rule of ``summary.csv``). On the curves and the steps to target,
a member that diverged (a non-finite loss: the engine stops it and records NaN afterwards) or never
reached the target counts as the *worst* member (loss :math:`+\infty`, accuracy :math:`-\infty`,
steps :math:`+\infty`), not as a missing one: a median line stops where more than half the members
have diverged, and a band runs to the panel's edge where more than a quarter have. Diverged members
are counted in the panel titles and marked ``x`` at the step of their first non-finite evaluation.
The gradient-norm figure leaves diverged members out (their gradients are NaN) and says how many.
Seeds missing from a partial assembly are left out everywhere.

Figures that do not apply are not drawn: no target set, no steps-to-target figure; a regression
run has no accuracy panels; every member's every hidden unit distinct, no distinct-units figure
(a :class:`~jaxinit.lab.figures.FigureWarning` says so).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxinit._stats import seed_stats
from jaxinit.lab.figures.common import (
    _BAND_ALPHA,
    FigureWarning,
    _colors,
    _fmt,
    _grid_subset,
    _point_text,
    _seeds_text,
)
from jaxinit.lab.figures.layout import (
    _Context,
    _context,
    _finite_positive,
    _legend,
    _legend_columns,
    _log_limits,
    _new_figure,
    _panel_title,
    _suptitle,
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


# ----------------------------------------------------------------------------- 1. loss and accuracy


def train_curves_figure(results) -> Any:
    """Train loss, test loss and test accuracy against step; per initializer the median over seeds
    and the 25-75% band (diverged members rank worst), per view a row.

    Loss panels are on a log scale (cross-entropy and squared error are positive; a falling loss
    spans decades); a row's two loss panels share their limits. Dotted: the config's
    ``target_loss`` (on the train loss, where ``steps_to_loss`` measures it) and
    ``target_accuracy`` (on the test accuracy); grey dotted: chance accuracy ``1 / classes``.
    Regression runs (no accuracies) have two columns.
    """
    ctx = _context(results)
    res = ctx.results
    if "train_loss" not in res.arrays or "test_loss" not in res.arrays:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    config = res.config
    t = config.train
    loss_word = _LOSS_NAMES.get(t.loss, t.loss)
    quantities = [("train_loss", f"train loss ({loss_word})", np.inf),
                  ("test_loss", f"test loss ({loss_word})", np.inf)]
    if "test_accuracy" in res.arrays:
        quantities.append(("test_accuracy", "test accuracy", -np.inf))
    labels = list(res.coords["initializer"])
    colors = _colors(len(labels), by_value=False)
    steps = np.asarray(res.coords["step"], dtype=float)
    views, note = _views(res)
    chance = 1.0 / config.data.n_classes if config.data.task == "classification" and config.data.n_classes else None
    extras = ["median", "band", "diverged"] + (["target"] if t.target_loss is not None or
                                               t.target_accuracy is not None else []) + (["chance"] if chance else [])
    what = "loss and test accuracy" if len(quantities) == 3 else "loss"
    title, title_lines = _title(ctx, f"Training curves: {what} against step, per initializer", views)
    fig, axes = _train_figure(len(views), len(quantities), len(labels) + len(extras), title_lines)
    any_diverged = False
    for r, view in enumerate(views):
        present = _present(res, view.program)
        note_text, k_div, _ = _diverged_note(res, view, labels)
        any_diverged |= k_div > 0
        if not present.any():
            for c, (_, label, _) in enumerate(quantities):
                _no_seeds(axes[r][c])
                _panel(axes[r][c], label, view, views)
            continue
        first_bad = _first_nonfinite(res.get("train_loss", view.program)[:, view.grid][:, present])  # (init, seed)
        stats = {}
        for name, _, worst in quantities:
            values = res.get(name, view.program)[:, view.grid][:, present]  # (init, seed, step)
            stats[name] = [_ranked(values[i], worst) for i in range(len(labels))]
        loss_limits = _log_limits(_finite_positive(*[s[k] for name in ("train_loss", "test_loss")
                                                     for s in stats[name] for k in ("median", "q25", "q75")]),
                                  np.zeros(0))
        for c, (name, label, _) in enumerate(quantities):
            ax = axes[r][c]
            is_loss = name != "test_accuracy"
            if is_loss and loss_limits is not None:
                ax.set_yscale("log")
                ax.set_ylim(*loss_limits)
                _log_ticks(ax, loss_limits)
                bottom, top = loss_limits
            elif is_loss:
                ax.text(0.5, 0.5, "no positive finite loss", transform=ax.transAxes, ha="center", color="0.4")
                bottom, top = 1e-3, 1.0
            else:
                bottom, top = -0.02, 1.02
                ax.set_ylim(bottom, top)
            n_curves = len(labels)
            for i, color in enumerate(colors):
                st = stats[name][i]
                # A quantile that is a diverged member's (+-inf) runs to the panel's edge.
                ax.fill_between(steps, np.clip(st["q25"], bottom, top), np.clip(st["q75"], bottom, top),
                                color=color, alpha=_BAND_ALPHA, lw=0)
                # Earlier curves thicker: coinciding medians show as nested stripes.
                lw = 1.2 + (1.6 * (n_curves - 1 - i) / (n_curves - 1) if n_curves > 1 else 0.0)
                ax.plot(steps, np.where(np.isfinite(st["median"]), st["median"], np.nan), color=color, lw=lw)
                bad = first_bad[i][first_bad[i] >= 0]
                if bad.size:
                    ax.plot(steps[bad], np.full(bad.size, 0.95 - 0.06 * (i % 4)), ls="none", marker="x", color=color,
                            ms=7, mew=1.8,
                            transform=ax.get_xaxis_transform(), clip_on=False)
            if name == "train_loss" and t.target_loss is not None:
                ax.axhline(t.target_loss, color="black", ls=":", lw=1.2)
            if name == "test_accuracy":
                if t.target_accuracy is not None:
                    ax.axhline(t.target_accuracy, color="black", ls=":", lw=1.2)
                if chance:
                    ax.axhline(chance, color="0.5", ls=":", lw=1.2)
            ax.set_xlim(steps[0], steps[-1])
            ax.set_xlabel("step (optimizer updates)", fontsize=9)
            ax.set_ylabel(f"{label.split(' (')[0]} ({loss_word}{', log scale' if loss_limits else ''})" if is_loss
                          else "test accuracy (fraction correct)", fontsize=9)
            _panel(ax, label, view, views, note_text if c == 0 else "")
    _suptitle(fig, title)
    handles = _init_handles(labels, colors) + [
        Line2D([], [], color="black", lw=1.6, label=f"median over {_seeds_text(res)} (a diverged member ranks worst)"),
        Patch(color="black", alpha=_BAND_ALPHA + 0.1, lw=0, label=_BAND_TEXT),
        Line2D([], [], color="black", ls="none", marker="x", mew=1.8,
               label="a member diverged: first non-finite evaluation" + ("" if any_diverged else " (none did)")),
    ]
    if "target" in extras:
        targets = ([f"train loss {_fmt(t.target_loss)}"] if t.target_loss is not None else []) + (
            [f"test accuracy {_fmt(t.target_accuracy)}"] if t.target_accuracy is not None else [])
        handles.append(Line2D([], [], color="black", ls=":", lw=1.2, label="target: " + ", ".join(targets)))
    if chance:
        handles.append(Line2D([], [], color="0.5", ls=":", lw=1.2,
                              label=f"chance accuracy (1/{config.data.n_classes})"))
    _legend(fig, handles, note)
    return fig


# ----------------------------------------------------------------------------- 2. steps to target


def _step_ticks(last: float) -> list[float]:
    from matplotlib.ticker import MaxNLocator

    ticks = MaxNLocator(nbins=5, integer=True).tick_values(0, last)
    return [float(x) for x in ticks if 0 <= x <= last]


def steps_to_target_figure(results) -> Any:
    """Per initializer, the first evaluated step at which each seed reached the config's target
    (``steps_to_accuracy``: test accuracy >= ``target_accuracy``; ``steps_to_loss``: train loss <=
    ``target_loss``): a dot per seed, the median a bar. Members that never reached it (NaN: never 0
    nor the last step) sit in a separate "not reached" row above the steps, with their count; an
    ``x`` there marks a member that diverged. The median ranks those members slowest (a median in the
    "not reached" row: more than half never reached the target). None when no target was set.
    """
    ctx = _context(results)
    res = ctx.results
    t = res.config.train
    targets = [(name, text) for name, text, value in (
        ("steps_to_accuracy", f"test accuracy ≥ {_fmt(t.target_accuracy or 0)}", t.target_accuracy),
        ("steps_to_loss", f"train loss ≤ {_fmt(t.target_loss or 0)}", t.target_loss),
    ) if value is not None and name in res.arrays]
    if not targets:
        return None
    from matplotlib.lines import Line2D

    labels = list(res.coords["initializer"])
    colors = _colors(len(labels), by_value=False)
    last = float(res.coords["step"][-1])
    every = min(t.eval_every, t.steps)
    nr = last * 1.17  # the "not reached" row, shaded from 1.06 to 1.38 of the last step
    views, note = _views(res)
    n_seeds = len(res.coords.get("seed", []))
    title, title_lines = _title(ctx, "Steps to reach the target per initializer (first evaluated step with "
                                     f"{' / '.join(text for _, text in targets)})", views)
    cols = len(targets)
    panel_w = max(_PANEL_W, 0.75 * len(labels) + 1.3)
    fig, axes = _train_figure(len(views), cols, len(labels) + 4, title_lines, panel_w=panel_w, panel_h=2.4)
    for r, view in enumerate(views):
        present = _present(res, view.program)
        diverged = (np.asarray(res.get("diverged", view.program)[:, view.grid][:, present], dtype=bool)
                    if "diverged" in res.arrays else None)
        for c, (name, text) in enumerate(targets):
            ax = axes[r][c]
            _panel(ax, f"steps until {text}", view, views)
            if not present.any():
                _no_seeds(ax)
                continue
            values = np.asarray(res.get(name, view.program)[:, view.grid][:, present], dtype=float)  # (init, seed)
            n = values.shape[1]
            offsets = np.linspace(-0.22, 0.22, n) if n > 1 else np.zeros(1)
            ax.axhspan(last * 1.06, last * 1.38, color="0.93", lw=0, zorder=0)
            for i, color in enumerate(colors):
                v = values[i]
                reached = np.isfinite(v)
                ax.plot(i + offsets[reached], v[reached], ls="none", marker="o", ms=5, color=color, zorder=3)
                div = diverged[i] & ~reached if diverged is not None else np.zeros(n, bool)
                never = ~reached & ~div
                ax.plot(i + offsets[never], np.full(never.sum(), nr), ls="none", marker="o", ms=5, mfc="white",
                        mec=color, mew=1.4, zorder=3)
                ax.plot(i + offsets[div], np.full(div.sum(), nr), ls="none", marker="x", ms=6, color=color, mew=1.6,
                        zorder=3)
                ax.text(i, last * 1.35, f"{int((~reached).sum())}/{n}", ha="center", va="top", fontsize=8,
                        color=color, fontweight="bold")
                med = float(_ranked(v[:, None], np.inf)["median"][0])
                y = med if np.isfinite(med) else nr
                ax.plot([i - 0.32, i + 0.32], [y, y], color="black", lw=2.2, solid_capstyle="butt", zorder=2)
            ax.set_xlim(-0.6, len(labels) - 0.4)
            ax.set_ylim(-0.05 * last, last * 1.38)
            ticks = _step_ticks(last)
            ax.set_yticks(ticks + [nr], [f"{x:g}" for x in ticks] + ["not\nreached"])
            ax.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 2 else 0,
                          ha="right" if len(labels) > 2 else "center")
            ax.set_ylabel(f"step (evaluated every {every})", fontsize=9)
            ax.grid(False, axis="x")
    _suptitle(fig, title)
    handles = _init_handles(labels, colors) + [
        Line2D([], [], ls="none", marker="o", ms=5, color="black", label="a seed: the step it reached the target"),
        Line2D([], [], ls="none", marker="o", ms=5, mfc="white", mec="black", mew=1.4,
               label='never reached (NaN; count "k/n" on top)'),
        Line2D([], [], ls="none", marker="x", ms=6, color="black", mew=1.6, label="diverged before reaching it"),
        Line2D([], [], color="black", lw=2.2,
               label=f"median over {n_seeds} seed{'s' if n_seeds != 1 else ''} (not reached ranks slowest)"),
    ]
    _legend(fig, handles, note)
    return fig


# ----------------------------------------------------------------------------- 3. gradient norm per layer


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
                    ax.plot(x[zero], np.full(zero.size, 0.03 + 0.05 * (i % 3)), ls="none", marker="v", ms=6,
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


# ----------------------------------------------------------------------------- 4. distinct units


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


def train_figures(results) -> dict[str, Any]:
    """Every training figure that applies: name (a key of :data:`TRAIN_FIGURE_FILES`) -> Figure."""
    ctx = _context(results)
    out = {}
    for name, build in (("curves", train_curves_figure), ("steps_to_target", steps_to_target_figure),
                        ("grad_norm", train_grad_norm_figure), ("distinct_units", distinct_units_figure)):
        fig = build(ctx)
        if fig is not None:
            out[name] = fig
    return out
