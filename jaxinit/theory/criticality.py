"""Critical values: the edge-of-chaos weight variance and the initializers that reach it.

Conventions and references: :mod:`jaxinit.theory`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jaxinit.errors import check_nonnegative
from jaxinit.initializers import normal, variance_scaling, zeros
from jaxinit.theory.maps import _at, _q_star, _solve
from jaxinit.theory.moments import (
    _CRITICAL_GRID,
    _Q_MAX,
    _Q_TINY,
    CRITICAL_TOL,
    _call_with_derivative,
    _Leaky,
    _Moments,
    _moments,
)


# -- the edge of chaos ---------------------------------------------------------------------------
class NoEdgeOfChaos(ValueError):
    r"""No weight variance puts this activation on the edge of chaos at this bias variance.

    Raised by :func:`critical` (and :func:`critical_init`) with the reason: no fixed point
    :math:`q^*` reached from :math:`q_0 = 1` has :math:`\chi_1 = 1` (for example :math:`q^*`
    diverges before :math:`\chi_1` reaches 1, as for ReLU with :math:`\sigma_b^2 > 0`).
    """


def critical(activation: Any, bias_variance: float) -> float:
    r"""The weight variance on the edge of chaos: :math:`\sigma_w^2` with :math:`\chi_1 = 1` at its own :math:`q^*`.

    :math:`q^*` is the fixed point the length map reaches from :math:`q_0 = 1`, as in :func:`q_star`,
    :func:`chi1` and :func:`phase`; the returned :math:`\sigma_w^2` satisfies
    ``abs(chi1(activation, sw, bias_variance) - 1) <= CRITICAL_TOL`` (1e-9), checked before it is
    returned, with :math:`q^*` finite.

    Method: every fixed point :math:`q` of some :math:`\sigma_w^2` (for :math:`\sigma_b^2 > 0`, every
    :math:`q > \sigma_b^2`) has :math:`\sigma_w^2 = (q - \sigma_b^2) / E[\phi(\sqrt q z)^2]` and there

    .. math:: \chi_1 = 1 - F(q)\,\frac{E[\phi'^2]}{E[\phi^2]}, \qquad
              F(q) = \frac{E[\phi(\sqrt q z)^2]}{E[\phi'(\sqrt q z)^2]} + \sigma_b^2 - q,

    so the candidates are the roots of :math:`F` (bracketed on a grid of 8 points per decade of
    :math:`q` up to :math:`10^{12}`, then solved to machine precision), each with
    :math:`\sigma_w^2 = 1 / E[\phi'(\sqrt q z)^2]`; and, when :math:`\sigma_b^2 = 0` and
    :math:`\phi(0) = 0`, the fixed point :math:`q = 0` with :math:`\sigma_w^2 = 1 / \lim_{q \to 0}
    E[\phi'^2]` (tanh: 1, erf: :math:`\pi/4`, elu: 1, selu: :math:`2 / (\lambda^2 (1 + \alpha^2))`;
    there :math:`q^* = 0` exactly and :math:`\xi_c = \infty`). A candidate is kept only if the length
    map, started at :math:`q_0 = 1`, reaches it (an unstable fixed point, or one beyond another, is
    not the network's :math:`q^*`); of several, the smallest :math:`\sigma_w^2`.

    Positively homogeneous activations (linear, ReLU, leaky ReLU) have :math:`\chi_1 = \sigma_w^2
    E[\phi'^2]` whatever :math:`q`: critical at :math:`1 / E[\phi'^2]` for :math:`\sigma_b^2 = 0`;
    for :math:`\sigma_b^2 > 0`, :math:`q^*` diverges exactly there, so there is no edge of chaos
    (Hayou, Doucet & Rousseau 2019: ReLU's edge of chaos is the single point (2, 0)). Softplus
    (:math:`\chi_1 < 1` at every finite :math:`q^*`), GELU and SiLU at small :math:`\sigma_b^2`
    (:math:`\chi_1` jumps across 1 where :math:`q^*` jumps) have none either.

    Args:
      activation: a name, ``{"name": ..., "param": ...}`` or an elementwise callable.
      bias_variance: :math:`\sigma_b^2 \ge 0`.

    Returns:
      :math:`\sigma_w^2`, a Python float.

    Raises:
      ValueError: a negative or non-finite ``bias_variance``.
      NoEdgeOfChaos: (a ``ValueError``) no critical point at this ``bias_variance``; the message
        says why.

    References:
      Schoenholz et al. 2017 (module docstring); Hayou, Doucet & Rousseau, "On the Impact of the
      Activation Function on Deep Neural Networks Training", ICML 2019, arXiv:1902.06853.

    Example:
      >>> critical("relu", 0.0)
      2.0
      >>> round(critical("tanh", 0.0), 10)
      1.0
      >>> critical("tanh", 1.7) > 4
      True
      >>> critical("relu", 0.1)
      Traceback (most recent call last):
      ...
      jaxinit.theory.NoEdgeOfChaos: no weight_variance puts activation 'relu' on the edge of chaos at ...
    """
    sb = check_nonnegative("bias_variance", bias_variance, "sigma_b^2")
    m = _moments(activation)
    return _call_with_derivative("critical", lambda: _critical(m, sb), m)


def _homogeneous_d2(m: _Moments) -> float | None:
    """E[phi'^2] when it does not depend on q (linear, relu, leaky relu, or a callable equal to one)."""
    if isinstance(m, _Leaky):
        return m.k
    d_small, d_one, d_big = m.d2(1e-4), m.d2(1.0), m.d2(1e4)
    if abs(d_small - d_one) <= 1e-10 * d_one and abs(d_big - d_one) <= 1e-10 * d_one:
        return d_one
    return None


def _critical(m: _Moments, sb: float) -> float:
    head = f"no weight_variance puts activation {m.prepared.name} on the edge of chaos at bias_variance={sb!r}"
    k = _homogeneous_d2(m)
    if k is not None:
        if sb > 0.0:
            raise NoEdgeOfChaos(
                f"{head}: the activation is positively homogeneous, so chi_1 = sigma_w^2 E[phi'^2] = "
                f"{k:.6g} sigma_w^2 whatever q*, and at sigma_w^2 = {1 / k:.6g}, where chi_1 = 1, the length "
                f"map is q -> q + bias_variance: q* diverges. Its only critical point is "
                f"(sigma_w^2, sigma_b^2) = ({1 / k:.6g}, 0)."
            )
        candidates = [(1.0, 1.0 / k)]  # every q is fixed: q* = q0 = 1
        notes = []
    else:
        candidates, notes = _critical_candidates(m, sb)
    rejected = []
    for q_c, sw in sorted(candidates, key=lambda c: c[1]):
        if not (math.isfinite(sw) and sw > 0.0):
            continue
        qs = _q_star(m, sw, sb)
        chi = sw * m.d2(_at(qs))
        if math.isfinite(qs) and abs(chi - 1.0) <= CRITICAL_TOL:
            return sw
        rejected.append(f"chi_1 = 1 at the fixed point q = {q_c:.6g} of sigma_w^2 = {sw:.6g}, but from q0 = 1 "
                        f"the length map reaches q* = {qs:.6g} there, where chi_1 = {chi:.6g}")
    raise NoEdgeOfChaos(f"{head}: " + "; ".join(notes + rejected) + ".")


def _critical_candidates(m: _Moments, sb: float) -> tuple[list[tuple[float, float]], list[str]]:
    """(q, sigma_w^2) pairs where chi_1 = 1 at a fixed point q, and notes for the error message."""
    candidates = []
    if sb == 0.0 and m.m2(0.0) == 0.0:  # q = 0 is a fixed point of every sigma_w^2
        d0 = m.d2(_Q_TINY)
        if d0 > 0.0:
            candidates.append((0.0, 1.0 / d0))

    def f(q):  # chi_1 = 1 - F d2 / m2 at a fixed point q: F > 0 ordered, F < 0 chaotic
        return m.m2(q) / m.d2(q) + sb - q

    lo = sb if sb > 0.0 else 1e-8
    grid = np.geomspace(lo, _Q_MAX, int(round(_CRITICAL_GRID * math.log10(_Q_MAX / lo))) + 1)
    values = [f(float(q)) for q in grid]
    for a, b, fa, fb in zip(grid[:-1], grid[1:], values[:-1], values[1:], strict=True):
        if fa == 0.0 or (fa > 0.0) != (fb > 0.0) and fb != 0.0:
            q_c = _solve(f, float(a), float(b), fa, fb)
            candidates.append((q_c, 1.0 / m.d2(q_c)))
    notes = []
    if all(v > 0.0 for v in values):
        notes.append(f"chi_1 < 1 at every fixed point q in [{lo:g}, {_Q_MAX:g}] (E[phi^2]/E[phi'^2] + "
                     f"bias_variance > q there): q* diverges before chi_1 reaches 1")
    elif all(v < 0.0 for v in values):
        notes.append(f"chi_1 > 1 at every fixed point q in [{lo:g}, {_Q_MAX:g}]")
    return candidates, notes


def critical_init(activation: Any, bias_variance: float, distribution: str = "normal"):
    r"""``(kernel_init, bias_init)`` on the edge of chaos, for ``flax.linen.Dense`` and friends.

    ``kernel_init = variance_scaling(critical(activation, bias_variance), "fan_in", distribution)``
    and ``bias_init = normal(sqrt(bias_variance))`` (``zeros`` when it is 0).

    Example:
      >>> kernel_init, bias_init = critical_init("relu", 0.0)
      >>> kernel_init.scale, bias_init
      (2.0, zeros)
    """
    sw = critical(activation, bias_variance)
    sb = float(bias_variance)
    kernel_init = variance_scaling(scale=sw, mode="fan_in", distribution=distribution)
    bias_init = zeros if sb == 0.0 else normal(math.sqrt(sb))
    return kernel_init, bias_init
