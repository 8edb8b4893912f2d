"""The length and correlation maps, their fixed points ``q*`` and ``c*``, ``chi_1``, depth scales and phase.

Conventions and references: :mod:`jaxinit.theory`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from jaxinit.errors import check_in_range, check_nonnegative, check_positive
from jaxinit.theory.moments import _Q_MAX, _Q_TINY, _ZERO_GAP, Q_INF, _call_with_derivative, _Moments, _moments


# -- argument checks -----------------------------------------------------------------------------
def _check_variances(weight_variance, bias_variance) -> tuple[float, float]:
    sw = check_positive("weight_variance", weight_variance, "sigma_w^2")
    sb = check_nonnegative("bias_variance", bias_variance, "sigma_b^2")
    return sw, sb


# -- root finding ----------------------------------------------------------------------------------
def _solve(f: Callable[[float], float], lo: float, hi: float, flo: float, fhi: float) -> float:
    """A root of ``f`` in [lo, hi] (f(lo), f(hi) of opposite signs): Illinois regula falsi,
    with a bisection step whenever the bracket fails to halve in three steps."""
    if flo == 0.0:
        return lo
    if fhi == 0.0:
        return hi
    side, width, stalled = 0, hi - lo, 0
    for _ in range(400):
        x = (lo * fhi - hi * flo) / (fhi - flo)
        if stalled >= 3 or not lo < x < hi:
            x, stalled = 0.5 * (lo + hi), 0
        fx = f(x)
        if fx == 0.0:
            return x
        if (fx > 0) == (fhi > 0):
            hi, fhi = x, fx
            if side == -1:
                flo /= 2
            side = -1
        else:
            lo, flo = x, fx
            if side == 1:
                fhi /= 2
            side = 1
        if hi - lo < 0.5 * width:
            width, stalled = hi - lo, 0
        else:
            stalled += 1
        if hi - lo <= 4e-16 * max(abs(lo), abs(hi)) + 1e-300:
            break
    return lo if abs(flo) < abs(fhi) else hi


# -- the length map ------------------------------------------------------------------------------
def _q_star(m: _Moments, sw: float, sb: float, q0: float = 1.0) -> float:
    def gap(q):  # V(q) - q
        return sw * m.m2(q) + sb - q

    g0 = gap(q0) if q0 > 0 else sw * m.m2(0.0) + sb
    if q0 == 0.0:
        if g0 == 0.0:
            return 0.0
        q0 = g0
        g0 = gap(q0)
    if abs(g0) <= 1e-14 * (q0 + abs(g0) + sb):  # q0 is fixed to working precision (e.g. ReLU at 2)
        return q0
    if g0 > 0:  # the map increases q from q0: the fixed point lies above
        lo, glo = q0, g0
        hi = 2 * q0
        while (ghi := gap(hi)) > 0:
            lo, glo = hi, ghi
            hi *= 2
            if hi > _Q_MAX:
                return math.inf
    else:
        # With V(0) = 0 (no bias, phi(0) = 0) q = 0 is a fixed point; once |V(q) - q| is below the
        # quadrature's resolution (_ZERO_GAP q) no positive fixed point can be told from 0: q* = 0.
        zero_fixed = sb == 0.0 and m.m2(0.0) == 0.0
        hi, ghi = q0, g0
        lo = q0 / 2
        while (glo := gap(lo)) < 0 or (zero_fixed and abs(glo) <= _ZERO_GAP * lo):
            if zero_fixed and abs(glo) <= _ZERO_GAP * lo:
                return 0.0
            hi, ghi = lo, glo
            lo /= 2
            if lo < 1e-30 * q0:
                return 0.0
    return _solve(gap, lo, hi, glo, ghi)


def q_map(activation: Any, weight_variance: float, bias_variance: float, q: float) -> float:
    r"""The length map: :math:`q' = \sigma_w^2 E[\phi(\sqrt{q} z)^2] + \sigma_b^2`.

    Args:
      activation: a name (``"tanh"``), ``{"name": ..., "param": ...}``, or any elementwise callable.
      weight_variance: :math:`\sigma_w^2 > 0`.
      bias_variance: :math:`\sigma_b^2 \ge 0`.
      q: the second moment of this layer's pre-activations, >= 0.

    Returns:
      The next layer's pre-activation second moment.

    Example:
      >>> q_map("relu", 2.0, 0.0, 3.0)
      3.0
    """
    sw, sb = _check_variances(weight_variance, bias_variance)
    q = check_nonnegative("q", q)
    return sw * _moments(activation).m2(q) + sb


def q_star(activation: Any, weight_variance: float, bias_variance: float, *, q0: float = 1.0) -> float:
    r"""The fixed point :math:`q^*` of the length map, reached from ``q0``.

    Found by bracketing from ``q0`` in the direction the map moves it (the limit of iterating
    a monotone length map), then regula falsi to machine precision. ``inf`` when the map diverges
    (no fixed point below 1e12), ``q0`` itself when every ``q`` is fixed (ReLU at
    :math:`\sigma_w^2 = 2, \sigma_b^2 = 0`).

    Example:
      >>> round(q_star("relu", 1.0, 0.5), 12)    # sigma_b^2 / (1 - sigma_w^2 / 2)
      1.0
      >>> q_star("relu", 3.0, 0.0)
      inf
    """
    sw, sb = _check_variances(weight_variance, bias_variance)
    q0 = check_nonnegative("q0", q0)
    return _q_star(_moments(activation), sw, sb, q0)


def _at(q: float) -> float:
    """Where to evaluate quantities "at q" (limits at 0 and infinity)."""
    return Q_INF if math.isinf(q) else max(q, _Q_TINY)


def chi1(activation: Any, weight_variance: float, bias_variance: float) -> float:
    r""":math:`\chi_1 = \sigma_w^2 E[\phi'(\sqrt{q^*} z)^2]`: the slope of the correlation map at 1.

    The mean squared singular value of one layer's Jacobian at the fixed point; 1 on the edge of
    chaos.

    Example:
      >>> chi1("relu", 2.0, 0.0)
      1.0
      >>> round(chi1("tanh", 1.0, 0.0), 12)    # q* = 0 and tanh'(0) = 1
      1.0
    """
    sw, sb = _check_variances(weight_variance, bias_variance)
    m = _moments(activation)
    qs = _q_star(m, sw, sb)
    return _call_with_derivative("chi1", lambda: sw * m.d2(_at(qs)), m)


def chi_q(activation: Any, weight_variance: float, bias_variance: float) -> float:
    r"""Slope of the length map at :math:`q^*`: :math:`\sigma_w^2 E[\phi(x)\phi'(x) x] / q^*`."""
    sw, sb = _check_variances(weight_variance, bias_variance)
    m = _moments(activation)
    qs = _q_star(m, sw, sb)
    return _call_with_derivative("chi_q", lambda: sw * m.slope(_at(qs)), m)


# -- the correlation map ---------------------------------------------------------------------------
def _delta_step(m: _Moments, sw: float, sb: float, q: float, delta: float) -> tuple[float, float]:
    """One layer: (q', 1 - c') from (q, 1 - c)."""
    half_diff = m.pair(q, delta)[1] if delta > 0 else 0.0
    q_next = sw * m.m2(q) + sb
    if q_next == 0.0 or not math.isfinite(q_next):
        return q_next, math.nan
    return q_next, min(sw * half_diff / q_next, 2.0)


def c_map(activation: Any, weight_variance: float, bias_variance: float, c: float,
          q: float | None = None, *, complement: bool = False) -> float:
    r"""The correlation map: :math:`c' = (\sigma_w^2 E[\phi(u)\phi(v)] + \sigma_b^2) / q'`.

    :math:`(u, v)` are centred Gaussian with variance ``q`` (default :math:`q^*`) and correlation
    ``c``; :math:`q'` is the length map at ``q``. Computed in :math:`1 - c` (see the module
    docstring); with ``complement=True`` it returns :math:`1 - c'` itself, accurate to ~1e-11
    relative even where :math:`c'` rounds to 1 (a float64 ``c'`` near 1 keeps only about
    ``1e-16 / (1 - c')`` of the relative precision of :math:`1 - c'`).

    Example:
      >>> round(c_map("linear", 1.0, 0.0, 0.3, q=2.0), 12)
      0.3
      >>> round(c_map("relu", 2.0, 0.0, 1 - 2**-40, q=1.0, complement=True) * 2**40, 6)  # chi_1 = 1
      1.0
    """
    sw, sb = _check_variances(weight_variance, bias_variance)
    c = check_in_range("c", c, -1.0, 1.0, closed_high=True)
    m = _moments(activation)
    if q is None:
        q = _q_star(m, sw, sb)
        if math.isinf(q):
            q = Q_INF
    else:
        q = check_nonnegative("q", q)
    one_minus = _delta_step(m, sw, sb, q, 1.0 - c)[1]
    return one_minus if complement else 1.0 - one_minus


def _c_star(m: _Moments, sw: float, sb: float, qs: float, chi: float) -> float:
    if chi <= 1.0 or qs == 0.0:  # q* = 0 is reached only where it is stable: chi_1 <= 1 up to rounding
        return 1.0
    q = _at(qs)

    def excess(delta):  # (1 - c') / (1 - c) - 1 at q*: positive near c = 1 when chi1 > 1
        return _delta_step(m, sw, sb, q, delta)[1] / delta - 1.0

    # At c = 0, u and v are independent: c'(0) = (sigma_w^2 E[phi]^2 + sigma_b^2) / q* >= 0, exactly.
    c_at_zero = (sw * m.m1(q) ** 2 + sb) / (sw * m.m2(q) + sb)
    if c_at_zero == 0.0:  # an odd activation without bias: c* = 0
        return 0.0
    e1 = -c_at_zero
    lo = 1e-3
    while (elo := excess(lo)) <= 0.0:
        lo /= 4
        if lo < 1e-14:
            return 1.0
    return 1.0 - _solve(excess, lo, 1.0, elo, e1)


def c_star(activation: Any, weight_variance: float, bias_variance: float) -> float:
    r"""The stable fixed point :math:`c^*` of the correlation map at :math:`q^*`.

    1 in the ordered phase (:math:`\chi_1 \le 1`); in the chaotic phase the root below 1, found in
    :math:`1 - c` (0 for odd activations without bias).

    Example:
      >>> c_star("tanh", 0.5, 0.1)
      1.0
      >>> c_star("tanh", 4.0, 0.0)
      0.0
    """
    sw, sb = _check_variances(weight_variance, bias_variance)
    m = _moments(activation)
    qs = _q_star(m, sw, sb)
    chi = _call_with_derivative("c_star", lambda: sw * m.d2(_at(qs)), m)
    return _c_star(m, sw, sb, qs, chi)


def chi_c(activation: Any, weight_variance: float, bias_variance: float) -> float:
    r"""Slope of the correlation map at :math:`c^*`: :math:`\sigma_w^2 E[\phi'(u)\phi'(v)]`."""
    sw, sb = _check_variances(weight_variance, bias_variance)
    m = _moments(activation)
    qs = _q_star(m, sw, sb)
    q = _at(qs)

    def compute():
        chi = sw * m.d2(q)
        cs = _c_star(m, sw, sb, qs, chi)
        return chi if cs == 1.0 else sw * m.pair_deriv(q, 1.0 - cs)

    return _call_with_derivative("chi_c", compute, m)


_XI_ONE = 1e-13  # chi within this of 1 (the quadrature's resolution) has an infinite depth scale


def _xi(chi: float) -> float:
    if chi >= 1.0 - _XI_ONE:
        return math.inf
    if chi <= 0.0:
        return 0.0
    return -1.0 / math.log(chi)


def depth_scales(activation: Any, weight_variance: float, bias_variance: float) -> tuple[float, float]:
    r"""``(xi_q, xi_c)``: :math:`\xi = -1/\log\chi` for the length and correlation maps.

    :math:`|q_l - q^*| \sim e^{-l/\xi_q}` and :math:`|c_l - c^*| \sim e^{-l/\xi_c}`;
    :math:`\xi_c` diverges on the edge of chaos (Schoenholz et al. 2017).

    Example:
      >>> xi_q, xi_c = depth_scales("relu", 1.0, 0.1)
      >>> round(xi_c, 6) == round(-1 / math.log(0.5), 6)
      True
    """
    return (_xi(chi_q(activation, weight_variance, bias_variance)),
            _xi(chi_c(activation, weight_variance, bias_variance)))


def phase(activation: Any, weight_variance: float, bias_variance: float, *, tol: float = 1e-6) -> str:
    r"""``"ordered"`` (:math:`\chi_1 < 1 - tol`), ``"chaotic"`` (:math:`\chi_1 > 1 + tol`) or ``"critical"``.

    Example:
      >>> phase("tanh", 1.0, 0.05), phase("tanh", 4.0, 0.05), phase("relu", 2.0, 0.0)
      ('ordered', 'chaotic', 'critical')
    """
    tol = check_nonnegative("tol", tol)
    chi = chi1(activation, weight_variance, bias_variance)
    if abs(chi - 1.0) <= tol:
        return "critical"
    return "ordered" if chi < 1.0 else "chaotic"
