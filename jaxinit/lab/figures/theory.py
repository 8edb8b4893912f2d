"""The mean-field overlay of the per-layer figures and the critical line of the phase diagrams
(:mod:`jaxinit.theory` evaluated for a results folder)."""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxinit.lab.figures.common import _as_results, _config, _program_index
from jaxinit.lab.store import Results


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
      results: a :class:`~jaxinit.lab.store.Results` or its folder.
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
