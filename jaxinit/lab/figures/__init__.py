r"""Figures of a results folder (a sweep's or a training run's): PNGs under ``<folder>/figures/``.

Everything here reads an assembled results folder (:func:`jaxinit.lab.store.load`); nothing runs the
engine. Figures are drawn with matplotlib's object-oriented API on the Agg canvas (no display, no
``pyplot`` state, the caller's backend is left alone). :func:`write_all` draws every figure that
applies to a folder:

=====================================  ==========================================================
file                                   what it shows
=====================================  ==========================================================
``q_vs_depth.png``                     :math:`q_\ell = \mathrm{mean}((h^\ell)^2)` per layer, log
                                       scale; mean-field prediction dashed
``grad_norm_vs_depth.png``             :math:`\|\partial L / \partial W_\ell\|_F` per layer, log scale
``correlation_vs_depth.png``           :math:`c_\ell` between paired inputs; theory dashed
``dead_saturated_vs_depth.png``        fraction of dead units and of saturated (unit, input) entries
                                       per layer (definitions of :mod:`jaxinit.probes`)
``jacobian_msv_vs_depth.png``          mean squared singular value of :math:`\partial h^\ell /
                                       \partial x`, log scale; theory dashed
``jacobian_spectrum.png``              histograms of the singular values of :math:`\partial h^L /
                                       \partial x` per initializer
``phase_<program id>.png``             (sigma_w^2, sigma_b^2) heatmaps of the final correlation and
                                       of the gradient ratio, with the critical line
=====================================  ==========================================================

Per-layer figures have one panel per program (activation x depth x width), the median over seeds
as a line and the 5-95% range across seeds as a band. Non-finite values (overflow) are left out of
both; the first layer where a curve stops being finite is marked by a dotted vertical line in the
curve's colour. Underflow is marked at the bottom of the panel: a ``v`` where q fell below the
dtype's smallest normal (``first_underflow_layer``), and on the gradient figure a ``<`` at the
deepest layer whose gradient did (``first_grad_underflow_layer``; the layers before it are lost
too), each when at least half the seeds agree. With a grid, the per-layer figures show a readable
subset of its points (at most :data:`MAX_CURVES` curves, named in the legend); the phase heatmaps
show all of it. Legends are measured to fit the canvas (the figure grows rather than crop them).

A training run's folder (its config's ``kind == "train"``, :mod:`jaxinit.lab.training`) gets the
training figures of :mod:`jaxinit.lab.figures.train` instead (:data:`TRAIN_FIGURE_FILES`):
``train_loss.png`` (train and test loss, test accuracy against step), ``train_steps_to_target.png``
(with "not reached" drawn as such), ``train_grad_norm.png`` (per layer at three steps) and
``train_distinct_units.png`` (hidden units left identical: the symmetry problem), each per
initializer with the median over seeds and the 25-75% band.

Layer ``j = 0 .. depth - 1`` of the arrays is drawn at :math:`\ell = j + 1`: the pre-activation
:math:`h^\ell` after the ``l``-th weight matrix, the indexing of :mod:`jaxinit.theory`.

The mean-field overlay (:func:`theory_overlay`) takes each initializer's
:math:`\sigma_w^2 = \mathrm{fan\_in}\, E[W^2]` (or the grid's ``weight_variance``) and
:math:`\sigma_b^2` from the bias initializer (variance + mean^2, or the grid's ``bias_variance``),
the inputs' ``q0`` and their pair correlation ``c0`` (``pairs``: the configured correlation;
``gaussian``: 0; ``digits``: no correlation prediction). Theory is drawn only when the config's
``probes.theory`` is true; initializers with a non-zero weight mean get none (the mean-field maps
assume zero-mean i.i.d. weights).
"""

from jaxinit._stats import seed_stats
from jaxinit.lab.figures.common import DPI, FIGURE_FILES, MAX_CURVES, FigureWarning
from jaxinit.lab.figures.depth import (
    correlation_figure,
    dead_saturated_figure,
    gradient_figure,
    jacobian_msv_figure,
    variance_figure,
)
from jaxinit.lab.figures.phase import (
    BLANK_MIXED,
    BLANK_NONE,
    BLANK_OVERFLOW,
    BLANK_ZERO,
    PHASE_QUANTITIES,
    phase_blanks,
    phase_figures,
    phase_table,
)
from jaxinit.lab.figures.spectrum import spectrum_figure
from jaxinit.lab.figures.theory import critical_line, theory_overlay
from jaxinit.lab.figures.train import (
    TRAIN_FIGURE_FILES,
    distinct_units_figure,
    steps_to_target_figure,
    train_curves_figure,
    train_figures,
    train_grad_norm_figure,
)
from jaxinit.lab.figures.write import write_all

__all__ = [
    "BLANK_MIXED", "BLANK_NONE", "BLANK_OVERFLOW", "BLANK_ZERO", "DPI", "FIGURE_FILES", "MAX_CURVES",
    "PHASE_QUANTITIES", "TRAIN_FIGURE_FILES", "FigureWarning", "correlation_figure", "critical_line",
    "dead_saturated_figure", "distinct_units_figure", "gradient_figure", "jacobian_msv_figure", "phase_blanks",
    "phase_figures", "phase_table", "seed_stats", "spectrum_figure", "steps_to_target_figure", "theory_overlay",
    "train_curves_figure", "train_figures", "train_grad_norm_figure", "variance_figure", "write_all",
]
