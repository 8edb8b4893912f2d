"""Training figures against step: the loss and accuracy curves, and the steps to reach the target
(:mod:`jaxinit.lab.figures.train` describes them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxinit.lab.figures.common import _BAND_ALPHA, _colors, _fmt, _seeds_text
from jaxinit.lab.figures.layout import _context, _finite_positive, _legend, _log_limits, _suptitle
from jaxinit.lab.figures.train_common import (
    _BAND_TEXT,
    _LOSS_NAMES,
    _PANEL_W,
    _diverged_note,
    _first_nonfinite,
    _init_handles,
    _log_ticks,
    _no_seeds,
    _panel,
    _present,
    _ranked,
    _title,
    _train_figure,
    _views,
)


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
