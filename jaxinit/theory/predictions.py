"""Per-layer predictions of ``q``, ``c`` and the Jacobian's mean squared singular value, and :class:`NetSpec`.

Conventions and references: :mod:`jaxinit.theory`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import numpy as np

from jaxinit.activations import activation as resolve_activation
from jaxinit.activations import activation_name
from jaxinit.errors import check_in_range, check_int, check_nonnegative
from jaxinit.theory.maps import _at, _check_variances, _delta_step
from jaxinit.theory.moments import _call_with_derivative, _Moments, _moments


# -- per-layer predictions -----------------------------------------------------------------------
class Prediction(NamedTuple):
    """Per-layer predictions for layers ``1..depth`` (index ``l - 1``): ``q`` and ``c`` (float64)."""

    q: np.ndarray
    c: np.ndarray

    @property
    def correlation(self) -> np.ndarray:
        """``c`` under the probes' name."""
        return self.c


def _predict(m: _Moments, sw: float, sb: float, q0: float, c0: float | None, depth: int) -> Prediction:
    q = np.empty(depth)
    c = np.full(depth, np.nan)
    q_l = sw * q0 + sb
    delta = None
    if c0 is not None:
        delta = sw * q0 * (1.0 - c0) / q_l if q_l > 0 else math.nan
    for layer in range(depth):
        q[layer] = q_l
        if delta is not None:
            c[layer] = 1.0 - delta
        if layer == depth - 1:
            break
        if delta is not None and math.isfinite(delta) and math.isfinite(q_l):
            q_l, delta = _delta_step(m, sw, sb, q_l, delta)
        else:
            delta = None if delta is None else math.nan
            q_l = sw * m.m2(q_l) + sb if math.isfinite(q_l) else q_l
    return Prediction(q, c)


def predict(activation: Any, weight_variance: float, bias_variance: float, q0: float, c0: float | None,
            depth: int) -> Prediction:
    r"""Predicted per-layer ``q`` and ``c`` of an MLP's pre-activations, layers ``1..depth``.

    Layer 1 acts on the raw input: :math:`q_1 = \sigma_w^2 q_0 + \sigma_b^2` and
    :math:`c_1 = (\sigma_w^2 q_0 c_0 + \sigma_b^2) / q_1`; after that the length and correlation
    maps (module docstring).

    Args:
      activation: a name, ``{"name": ..., "param": ...}`` or an elementwise callable.
      weight_variance, bias_variance: :math:`\sigma_w^2 > 0`, :math:`\sigma_b^2 \ge 0`.
      q0: the input's second moment ``mean(x**2)``, >= 0.
      c0: the two inputs' cosine similarity in [-1, 1] (both with second moment ``q0``), or
        ``None`` to skip the correlation (``c`` is then NaN).
      depth: number of layers, >= 1.

    Returns:
      ``Prediction(q, c)``, each a float64 array of shape ``(depth,)``; ``q`` is ``inf`` (and ``c``
      NaN) past a layer where the length map overflows.

    Example:
      >>> pred = predict("relu", 2.0, 0.0, q0=1.0, c0=0.5, depth=4)
      >>> pred.q.tolist()
      [2.0, 2.0, 2.0, 2.0]
      >>> pred.c.round(4).tolist()     # relu's arc-cosine map: c' = (sin t + (pi - t) cos t) / pi
      [0.5, 0.609, 0.6839, 0.7381]
    """
    sw, sb = _check_variances(weight_variance, bias_variance)
    q0 = check_nonnegative("q0", q0)
    if c0 is not None:
        c0 = check_in_range("c0", c0, -1.0, 1.0, closed_high=True)
    depth = check_int("depth", depth, minimum=1)
    return _predict(_moments(activation), sw, sb, q0, c0, depth)


def jacobian_msv(activation: Any, weight_variance: float, bias_variance: float, q0: float,
                 depth: int) -> np.ndarray:
    r"""Predicted ``jacobian_msv`` of :math:`J_l = \partial h^l / \partial x` for layers ``l = 1..depth``.

    :math:`\mathrm{tr}(J_l J_l^\top) / N_l = \sigma_w^2 \prod_{k<l} \sigma_w^2 E[\phi'(\sqrt{q_k} z)^2]`
    along the predicted :math:`q_k` (the normalisation of :mod:`jaxinit.probes`);
    :math:`\sigma_w^2 \chi_1^{l-1}` at the fixed point.

    Example:
      >>> jacobian_msv("relu", 2.0, 0.0, 1.0, 3).tolist()
      [2.0, 2.0, 2.0]
    """
    sw, sb = _check_variances(weight_variance, bias_variance)
    q0 = check_nonnegative("q0", q0)
    depth = check_int("depth", depth, minimum=1)
    m = _moments(activation)
    qs = _predict(m, sw, sb, q0, None, depth).q
    chis = _call_with_derivative("jacobian_msv", lambda: [sw * m.d2(_at(q)) for q in qs[:-1]], m)
    return sw * np.concatenate([[1.0], np.cumprod(chis)])


# -- the network as one value --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class NetSpec:
    """An MLP as the theory reads it: activation, sigma_w^2, sigma_b^2, depth, width.

    The theory's :func:`forward` takes it; the probes do not: they measure
    a finite network's params (:func:`jaxinit.probes.trace`), built from the same numbers.
    ``activation`` is resolved once (a name becomes a hashable ``Activation``); ``width`` is the
    hidden width of the finite network (the theory is its infinite-width limit and ignores it).

    Example:
      >>> spec = NetSpec("tanh", weight_variance=1.5, bias_variance=0.05, depth=3, width=256)
      >>> spec.activation
      Activation(name='tanh', param=None)
      >>> forward(spec, q0=1.0).q.round(4).tolist()
      [1.55, 0.7614, 0.5679]
    """

    activation: Any
    weight_variance: float
    bias_variance: float = 0.0
    depth: int = 1
    width: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "activation", resolve_activation(self.activation))
        sw, sb = _check_variances(self.weight_variance, self.bias_variance)
        object.__setattr__(self, "weight_variance", sw)
        object.__setattr__(self, "bias_variance", sb)
        object.__setattr__(self, "depth", check_int("depth", self.depth, minimum=1))
        if self.width is not None:
            object.__setattr__(self, "width", check_int("width", self.width, minimum=1))

    @property
    def name(self) -> str:
        """The activation's readable name."""
        return activation_name(self.activation)


def forward(spec: NetSpec, q0: float = 1.0, c0: float | None = None) -> Prediction:
    """``predict`` for a :class:`NetSpec`: per-layer ``q`` and ``c`` for layers ``1..spec.depth``."""
    if not isinstance(spec, NetSpec):
        raise TypeError(f"spec must be a NetSpec; got {spec!r} of type {type(spec).__name__}.")
    return predict(spec.activation, spec.weight_variance, spec.bias_variance, q0, c0, spec.depth)
