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

Modules: :mod:`~jaxinit.lab.figures.train_common` (views, statistics, canvas, titles),
:mod:`~jaxinit.lab.figures.train_curves` (figures 1 and 2), :mod:`~jaxinit.lab.figures.train_layers`
(figures 3 and 4); this module gathers them (:func:`train_figures`, which
:func:`~jaxinit.lab.figures.write_all` calls for a training folder).
"""

from __future__ import annotations

from typing import Any

from jaxinit.lab.figures.layout import _context
from jaxinit.lab.figures.train_common import MAX_VIEWS, TRAIN_FIGURE_FILES
from jaxinit.lab.figures.train_curves import steps_to_target_figure, train_curves_figure
from jaxinit.lab.figures.train_layers import distinct_units_figure, train_grad_norm_figure

__all__ = ["MAX_VIEWS", "TRAIN_FIGURE_FILES", "distinct_units_figure", "steps_to_target_figure",
           "train_curves_figure", "train_figures", "train_grad_norm_figure"]


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
