r"""Figures of a sweep's results folder: PNGs under ``<folder>/figures/``.

Everything here reads an assembled results folder (:func:`jaxinit.results.load`); nothing runs the
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

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxinit._io import atomic_write
from jaxinit._stats import seed_stats
from jaxinit.lab.store import FIGURES_DIR, Results, load

__all__ = [
    "DPI", "FIGURE_FILES", "MAX_CURVES", "FigureWarning", "correlation_figure", "critical_line",
    "dead_saturated_figure", "gradient_figure", "jacobian_msv_figure", "phase_blanks", "phase_figures", "phase_table",
    "seed_stats", "spectrum_figure", "theory_overlay", "variance_figure", "write_all",
]

DPI = 110
MAX_CURVES = 10  # per-layer panels show at most this many (initializer, grid point) curves
PANEL_W, PANEL_H = 4.4, 3.2  # inches per panel
FIGURE_FILES = {
    "q": "q_vs_depth.png",
    "grad_w_norm": "grad_norm_vs_depth.png",
    "correlation": "correlation_vs_depth.png",
    "dead_saturated": "dead_saturated_vs_depth.png",
    "jacobian_msv": "jacobian_msv_vs_depth.png",
    "spectrum": "jacobian_spectrum.png",
    "phase": "phase_{program}.png",
}
_X_LABEL = r"layer $\ell$ (pre-activation $h^\ell$; layers)"


class FigureWarning(UserWarning):
    """A figure was drawn without something it would show (a theory curve, the critical line) or a
    figure was not drawn; the message names the figure, the curves and the reason."""

_BAND_ALPHA = 0.18


# ---------------------------------------------------------------------------------------------
# Statistics across seeds (NaN/inf-aware, silent)
# ---------------------------------------------------------------------------------------------




def _overflow_layers(values: np.ndarray, first_nonfinite: np.ndarray | None) -> np.ndarray:
    """Per seed, the first layer where ``values`` (seed, layer) stops being finite (-1: never).

    A statistic that is not finite from layer 0 on while the network was finite there is taken as
    not measured (e.g. a correlation with a single input), not as an overflow. The engine's
    ``first_nonfinite_layer`` (first layer whose pre-activations overflowed) is folded in: a
    statistic can overflow earlier (``q = mean(h^2)`` squares ``h``), never later.
    """
    bad = ~np.isfinite(values)
    n_layers = values.shape[-1]
    first = np.where(bad.any(axis=-1), np.argmax(bad, axis=-1), -1)
    engine = (np.asarray(first_nonfinite) if first_nonfinite is not None
              else np.full(values.shape[0], -1))
    unmeasured = bad[:, 0] & (engine != 0) if n_layers else np.zeros(values.shape[0], bool)
    first = np.where(unmeasured, -1, first)
    both = np.where(first < 0, n_layers, first)
    both = np.minimum(both, np.where(engine < 0, n_layers, engine))
    return np.where(both >= n_layers, -1, both)


# ---------------------------------------------------------------------------------------------
# What the folder says: programs, initializers, grid, theory inputs
# ---------------------------------------------------------------------------------------------


def _as_results(results_or_folder: Results | str | os.PathLike) -> Results:
    if isinstance(results_or_folder, Results):
        return results_or_folder
    return load(results_or_folder)


def _program_index(results: Results, program: str | int | None) -> int:
    ids = results.programs
    if program is None:
        if len(ids) != 1:
            raise ValueError(f"this sweep has {len(ids)} programs; pass program= one of {ids}.")
        return 0
    if isinstance(program, str) and program in ids:
        return ids.index(program)
    if isinstance(program, int) and not isinstance(program, bool) and 0 <= program < len(ids):
        return program
    raise ValueError(f"program must be one of {ids} or an index below {len(ids)}; got {program!r}.")


def _config(results: Results):
    """``(SweepConfig, None)``, or ``(None, why)`` when the config cannot be rebuilt from ``meta.json``."""
    try:
        return results.config, None
    except (ValueError, TypeError, ImportError, KeyError) as err:
        return None, f"the sweep's config cannot be rebuilt from meta.json ({type(err).__name__}: {err})"


def _theory_on(results: Results) -> bool:
    probes = results.meta.get("config", {}).get("probes", {})
    return bool(probes.get("theory", True)) if isinstance(probes, dict) else False


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _point_text(point: dict[str, float]) -> str:
    parts = []
    if "weight_variance" in point:
        parts.append(rf"$\sigma_w^2$={_fmt(point['weight_variance'])}")
    if "bias_variance" in point:
        parts.append(rf"$\sigma_b^2$={_fmt(point['bias_variance'])}")
    return ", ".join(parts)


def _program_title(results: Results, p: int) -> str:
    prog = results.coords["program"][p]
    return f"{prog['activation']}, depth {prog['depth']}, width {prog['width']}"


def _seeds_text(results: Results) -> str:
    n = len(results.coords.get("seed", []))
    if any(results.missing_seeds.values()):
        return f"the seeds present (of {n})"
    return f"{n} seed{'s' if n != 1 else ''}"


def _input_text(results: Results) -> str:
    inputs = results.meta.get("config", {}).get("inputs", {})
    kind = inputs.get("kind", "gaussian")
    q0 = inputs.get("q0", 1.0)
    if kind == "pairs":
        return rf"input pairs with correlation $c_0$={_fmt(inputs.get('correlation', 0.0))}, $q_0$={_fmt(q0)}"
    if kind == "digits":
        return rf"sklearn digits inputs, $q_0$={_fmt(q0)}"
    return rf"independent Gaussian inputs ($c_0\approx 0$), $q_0$={_fmt(q0)}"


class Curve(NamedTuple):
    """One line of a per-layer panel: an (initializer, grid point) pair, its label and colour."""

    init: int
    grid: int
    label: str
    color: Any


def _curves(results: Results, limit: int = MAX_CURVES) -> tuple[list[Curve], str]:
    """The (initializer, grid point) pairs the per-layer figures draw, and a note on the subset."""
    labels = list(results.coords["initializer"])
    points = list(results.coords["grid_point"])
    n_init, n_grid = len(labels), len(points)
    note = ""
    if n_init * n_grid <= limit:
        chosen = list(range(n_grid))
    else:
        per_init = max(1, limit // n_init)
        chosen = _grid_subset(points, per_init)
        note = f"showing {len(chosen)} of {n_grid} grid points"
    pairs = [(i, g) for i in range(n_init) for g in chosen][: max(limit, n_init)]
    colors = _colors(len(pairs), by_value=n_init == 1 and n_grid > 1)
    out = []
    for (i, g), color in zip(pairs, colors, strict=True):
        if n_grid == 1:
            label = labels[i]
        elif n_init == 1:
            label = _point_text(points[g]) or labels[i]
        else:
            label = f"{labels[i]}, {_point_text(points[g])}"
        out.append(Curve(i, g, label, color))
    return out, note


def _grid_subset(points: Sequence[dict[str, float]], k: int) -> list[int]:
    """Up to ``k`` grid points that tell the story: evenly spread weight variances at the middle
    bias variance (a slice across the order/chaos boundary), else evenly spread points."""
    if k >= len(points):
        return list(range(len(points)))
    wv = sorted({p["weight_variance"] for p in points if "weight_variance" in p})
    bv = sorted({p["bias_variance"] for p in points if "bias_variance" in p})
    candidates = list(range(len(points)))
    if len(wv) > 1 and len(bv) > 1:
        mid = bv[(len(bv) - 1) // 2]
        candidates = [g for g, p in enumerate(points) if p.get("bias_variance") == mid]
        candidates.sort(key=lambda g: points[g].get("weight_variance", 0.0))
    if len(candidates) <= k:
        return candidates
    picks = np.unique(np.round(np.linspace(0, len(candidates) - 1, k)).astype(int))
    return [candidates[j] for j in picks]


def _colors(n: int, by_value: bool) -> list[Any]:
    from matplotlib import colormaps

    if by_value and n > 1:  # one initializer across a grid: an ordered colour scale
        cmap = colormaps["viridis"]
        return [cmap(0.9 * j / (n - 1)) for j in range(n)]
    cmap = colormaps["tab10"]
    return [cmap(j % 10) for j in range(n)]


# ---------------------------------------------------------------------------------------------
# Theory
# ---------------------------------------------------------------------------------------------


def _second_moment(init, shape: tuple[int, ...]) -> tuple[float, float]:
    """(E[W^2], E[W]) the initializer targets for ``shape``."""
    mean = float(init.mean(shape))
    return float(init.variance(shape)) + mean * mean, mean


@functools.lru_cache(maxsize=4096)
def _prediction(activation, sw0: float, sw: float, sb: float, q0: float, c0: float | None,
                depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer (q, c) with sigma_w^2 = ``sw0`` on the first layer and ``sw`` after it."""
    from jaxinit import theory

    if sw0 == 0.0 and sw == 0.0:  # h = b for every input: q = sigma_b^2, inputs indistinguishable
        q = np.full(depth, sb)
        c = np.full(depth, 1.0 if (sb > 0 and c0 is not None) else np.nan)
        return q, c
    if sw0 <= 0.0 or sw <= 0.0:
        raise ValueError("a zero weight variance on some layers only")
    if depth == 1 or math.isclose(sw0, sw, rel_tol=1e-12):
        pred = theory.predict(activation, sw0, sb, q0, c0, depth)
        return pred.q, pred.c
    # Different first layer (inputs of another dimension and a fan mode that sees it): take layer
    # 1 by hand, one map step to layer 2, then restart the prediction from there.
    q1 = sw0 * q0 + sb
    c1 = None if c0 is None else (sw0 * q0 * c0 + sb) / q1
    q2 = theory.q_map(activation, sw, sb, q1)
    q0_next = (q2 - sb) / sw  # the post-activation second moment that layer 2 sees
    c0_next = None
    if c1 is not None:
        c2 = theory.c_map(activation, sw, sb, float(np.clip(c1, -1.0, 1.0)), q=q1)
        c0_next = float(np.clip((c2 * q2 - sb) / (q2 - sb), -1.0, 1.0)) if q2 > sb else None
    rest = theory.predict(activation, sw, sb, q0_next, c0_next, depth - 1)
    c = np.concatenate([[np.nan if c1 is None else c1], rest.c])
    return np.concatenate([[q1], rest.q]), c


@functools.lru_cache(maxsize=1024)
def _jacobian_prediction(activation, sw: float, sb: float, q0: float, depth: int) -> np.ndarray:
    from jaxinit import theory

    return theory.jacobian_msv(activation, sw, sb, q0, depth)


def theory_overlay(results: Results | str | os.PathLike, program: str | int | None = None, *,
                   combos: Sequence[tuple[int, int]] | None = None) -> dict[str, Any]:
    r"""Mean-field predictions for one program, aligned with the measured per-layer arrays.

    Pure (draws nothing). For each (initializer ``i``, grid point ``g``) pair in ``combos``
    (default: all of them; for big grids pass the few you need, each tanh-like prediction costs a
    few ms per layer) the layer-``j`` entry predicts the layer-``j`` measurement, i.e.
    :math:`h^{j+1}`.

    Args:
      results: a :class:`~jaxinit.results.Results` or its folder.
      program: program id or index (may be left out for a single-program sweep).
      combos: ``(initializer index, grid point index)`` pairs to predict.

    Returns:
      A dict with

      * ``"q"``, ``"correlation"``, ``"jacobian_msv"``: float64 ``(n_initializers, n_grid_points,
        depth)``, NaN where there is no prediction (not asked for, not applicable, or the
        correlation of ``digits`` inputs);
      * ``"weight_variance"``: :math:`\sigma_w^2` of the hidden layers, ``"input_weight_variance"``:
        of layer 0 (differs with ``digits`` inputs and a fan mode other than ``fan_in``),
        ``"bias_variance"``: :math:`\sigma_b^2`; each ``(n_initializers, n_grid_points)``;
      * ``"available"``: bool ``(n_initializers, n_grid_points)``;
      * ``"reason"``: ``{(i, g): why there is no prediction}``;
      * ``"activation"``, ``"q0"``, ``"c0"``, ``"depth"``: what the prediction used.

    Example (ReLU with He weights keeps :math:`q_\ell = 2 q_0` at every layer)::

        overlay = theory_overlay(results, "depth6-width32-relu")
        overlay["q"][he_index, 0]   # -> [2., 2., 2., 2., 2., 2.]
    """
    res = _as_results(results)
    p = _program_index(res, program)
    prog = res.coords["program"][p]
    depth, width = int(prog["depth"]), int(prog["width"])
    labels = res.coords["initializer"]
    points = res.coords["grid_point"]
    n_init, n_grid = len(labels), len(points)
    shape3 = (n_init, n_grid, depth)
    out: dict[str, Any] = {
        "q": np.full(shape3, np.nan), "correlation": np.full(shape3, np.nan),
        "jacobian_msv": np.full(shape3, np.nan),
        "weight_variance": np.full(shape3[:2], np.nan), "input_weight_variance": np.full(shape3[:2], np.nan),
        "bias_variance": np.full(shape3[:2], np.nan), "available": np.zeros(shape3[:2], bool),
        "reason": {}, "activation": None, "q0": None, "c0": None, "depth": depth,
    }
    wanted = [(i, g) for i in range(n_init) for g in range(n_grid)] if combos is None else list(combos)
    config, problem = _config(res)
    if config is None:
        out["reason"] = {c: problem for c in wanted}
        return out
    act = config.programs()[p].activation
    inputs = config.inputs
    in_dim = config.in_dim(config.programs()[p])
    q0 = float(inputs.q0)
    c0 = float(inputs.correlation) if inputs.kind == "pairs" else (0.0 if inputs.kind == "gaussian" else None)
    out.update(activation=act, q0=q0, c0=c0)
    bias = config.network.bias.init
    try:
        own_sb = _second_moment(bias, (width,))[0]
    except (ValueError, TypeError, NotImplementedError):
        own_sb = math.nan
    for i, g in wanted:
        init = config.sweep.initializers[i].init
        point = points[g]
        try:
            m2_h, mean_h = _second_moment(init, (width, width))
            m2_0, _ = _second_moment(init, (in_dim, width))
        except (ValueError, TypeError, NotImplementedError) as err:
            out["reason"][(i, g)] = f"no target variance for this shape ({err})"
            continue
        sw, sw0 = width * m2_h, in_dim * m2_0
        if "weight_variance" in point and m2_h != 0.0:  # the engine rescales every layer to it
            sw = sw0 = float(point["weight_variance"])
        sb = float(point["bias_variance"]) if "bias_variance" in point else own_sb
        out["weight_variance"][i, g], out["input_weight_variance"][i, g], out["bias_variance"][i, g] = sw, sw0, sb
        if mean_h != 0.0:
            out["reason"][(i, g)] = "weights with a non-zero mean (mean-field theory assumes zero-mean weights)"
            continue
        if not (math.isfinite(sw) and math.isfinite(sw0) and math.isfinite(sb)):
            out["reason"][(i, g)] = "unknown weight or bias variance"
            continue
        try:
            q, c = _prediction(act, sw0, sw, sb, q0, c0, depth)
        except (ValueError, TypeError, ArithmeticError) as err:
            out["reason"][(i, g)] = f"no prediction ({err})"
            continue
        out["q"][i, g], out["correlation"][i, g] = q, c
        out["available"][i, g] = True
        if sw > 0 and math.isclose(sw0, sw, rel_tol=1e-12):
            with contextlib.suppress(ValueError, TypeError, ArithmeticError):
                out["jacobian_msv"][i, g] = _jacobian_prediction(act, sw, sb, q0, depth)
    return out


@functools.lru_cache(maxsize=256)
def _critical_cached(activation, bias_variances: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    from jaxinit import theory

    sw, sb = [], []
    for b in bias_variances:
        try:
            sw.append(theory.critical(activation, b))
            sb.append(b)
        except (ValueError, TypeError, ArithmeticError):
            continue
    return np.asarray(sw, np.float64), np.asarray(sb, np.float64)


def critical_line(activation: Any, bias_variances: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r"""The edge of chaos over ``bias_variances``: ``(sigma_w^2, sigma_b^2)`` arrays with
    :math:`\chi_1 = 1` (points where :func:`jaxinit.theory.critical` finds none are left out).

    Example:
      >>> sw, sb = critical_line("tanh", [0.0, 0.05])
      >>> [round(w, 4) for w in sw.tolist()], sb.tolist()
      ([1.0, 1.761], [0.0, 0.05])
      >>> critical_line("relu", [0.0, 0.1])[1].tolist()   # no edge of chaos for ReLU once sigma_b^2 > 0
      [0.0]
    """
    from jaxinit.activations import activation as resolve

    act = resolve(activation) if isinstance(activation, str) else activation
    return _critical_cached(act, tuple(float(b) for b in bias_variances))


# ---------------------------------------------------------------------------------------------
# Phase diagram values
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Drawing helpers
# ---------------------------------------------------------------------------------------------


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


def _no_data(ax, res: Results, p: int) -> None:
    """An empty panel that says why: the program has no seeds in a partial assembly."""
    ax.text(0.5, 0.5, "no data yet\n(every seed of this program is missing:\nrerun the sweep to finish it)",
            transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.4")
    ax.set_title(_program_title(res, p), fontsize=10)
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
    ax.set_title(_program_title(res, p), fontsize=10)
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
        ax.set_title("\n".join([_program_title(res, p), f"(not drawn: {'; '.join(notes)})"]), fontsize=9)
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


# ---------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------


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
        ax.set_title(_program_title(res, p), fontsize=10)
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
                ax.set_title(f"{label}: {title}", fontsize=9)
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


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _save(fig, path: Path) -> None:
    """savefig through :func:`jaxinit._io.atomic_write` (readers never see half a PNG; the
    file gets the umask's mode and survives a power loss once written)."""
    atomic_write(path, lambda f: fig.savefig(f, dpi=DPI, format="png"))


_SINGLE: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("q", variance_figure),
    ("grad_w_norm", gradient_figure),
    ("correlation", correlation_figure),
    ("dead_saturated", dead_saturated_figure),
    ("jacobian_msv", jacobian_msv_figure),
    ("spectrum", spectrum_figure),
)


def write_all(results_or_folder: Results | str | os.PathLike, out: str | os.PathLike | None = None) -> list[Path]:
    """Draw every figure that applies to a results folder; return the PNG paths written.

    Args:
      results_or_folder: a :class:`~jaxinit.results.Results` or the folder to :func:`~jaxinit.results.load`.
      out: where to write (default ``<folder>/figures``; created if needed).

    Figures whose statistics were not measured are skipped (no gradients: no gradient figure; no
    (sigma_w^2, sigma_b^2) grid: no phase diagram). File names: :data:`FIGURE_FILES`.
    """
    ctx = _Context(_as_results(results_or_folder))
    missing = ctx.missing_text()
    if missing is not None:
        warnings.warn(f"partial results: the figures show the seeds present; missing {missing}", FigureWarning,
                      stacklevel=2)
    folder = Path(out) if out is not None else ctx.results.path / FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, build in _SINGLE:
        fig = build(ctx)
        if fig is None:
            continue
        path = folder / FIGURE_FILES[name]
        _save(fig, path)
        written.append(path)
    for pid, fig in phase_figures(ctx).items():
        path = folder / FIGURE_FILES["phase"].format(program=pid)
        _save(fig, path)
        written.append(path)
    return written
