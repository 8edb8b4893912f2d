r"""Mean-field theory of signal propagation through deep random MLPs, for any elementwise activation.

Conventions (what every function here computes)
------------------------------------------------
The network: an input :math:`x \in \mathbb{R}^{n_0}`, pre-activations

.. math::  h^1 = W^1 x + b^1, \qquad h^{l+1} = W^{l+1} \phi(h^l) + b^{l+1}, \quad l = 1, \dots, L-1,

with i.i.d. :math:`W^l_{ij} \sim N(0, \sigma_w^2 / \mathrm{fan\_in})` (``fan_in`` = width of the
layer's input, :math:`n_0` for layer 1) and :math:`b^l_i \sim N(0, \sigma_b^2)`. Public arguments
spell the symbols out: ``weight_variance`` is :math:`\sigma_w^2`, ``bias_variance`` is
:math:`\sigma_b^2`. Predictions are for infinite width (averages over weights), per layer
:math:`l = 1..L` of the *pre-activations* :math:`h^l`.

* ``q`` -- :math:`q_l = \frac{1}{N_l}\sum_i (h^l_i)^2`, the second moment of layer ``l``'s
  pre-activations for one input; ``q0`` is the input's :math:`\mathrm{mean}(x^2)`.
* Length map: :math:`q_1 = \sigma_w^2 q_0 + \sigma_b^2` (the first layer is linear in :math:`x`),
  then :math:`q_{l+1} = \sigma_w^2 E[\phi(\sqrt{q_l} z)^2] + \sigma_b^2`, :math:`z \sim N(0, 1)`.
* ``q_star`` -- :math:`q^*`, the fixed point of the length map (``inf`` when it diverges).
* ``c`` -- :math:`c_l = q^l_{ab} / q_l`, the correlation of the pre-activations of two inputs
  :math:`x_a, x_b` of equal second moment, :math:`q^l_{ab} = \frac{1}{N_l}\sum_i h^l_{a,i} h^l_{b,i}`;
  ``c0`` is the inputs' cosine similarity. Correlation map: :math:`c_1 = (\sigma_w^2 q_0 c_0 +
  \sigma_b^2) / q_1`, then :math:`c_{l+1} = (\sigma_w^2 E[\phi(u)\phi(v)] + \sigma_b^2) / q_{l+1}`,
  :math:`(u, v)` centred Gaussian with variance :math:`q_l` and correlation :math:`c_l`. It is
  computed as :math:`1 - c_{l+1} = \sigma_w^2 \tfrac12 E[(\phi(u) - \phi(v))^2] / q_{l+1}` (exact,
  since :math:`u` and :math:`v` have one law), which keeps :math:`1 - c` accurate as :math:`c \to 1`.
* ``c_star`` -- :math:`c^*`, the fixed point of the correlation map at :math:`q^*` reached from
  :math:`c < 1`: 1 in the ordered phase, below 1 in the chaotic phase.
* ``chi1`` -- :math:`\chi_1 = \sigma_w^2 E[\phi'(\sqrt{q^*} z)^2]`, the slope of the correlation
  map at :math:`c = 1`; ordered :math:`\chi_1 < 1`, chaotic :math:`\chi_1 > 1`, critical (edge of
  chaos) :math:`\chi_1 = 1`.
* ``chi_c`` -- slope of the correlation map at :math:`c^*`: :math:`\sigma_w^2 E[\phi'(u)\phi'(v)]`
  at :math:`(q^*, c^*)` (:math:`= \chi_1` when :math:`c^* = 1`).
* ``chi_q`` -- slope of the length map at :math:`q^*`: :math:`\sigma_w^2 E[\phi(x)\phi'(x)\,x] / q^*`,
  :math:`x \sim N(0, q^*)` (Stein's lemma turns :math:`\sigma_w^2 E[\phi'^2 + \phi\phi'']` into this
  form, which needs no :math:`\phi''` and so holds for ReLU).
* ``xi_q``, ``xi_c`` -- depth scales :math:`\xi = -1/\log\chi` (Schoenholz et al. 2017);
  :math:`|q_l - q^*|` and :math:`|c_l - c^*|` shrink like :math:`e^{-l/\xi}`; ``inf`` when
  :math:`\chi \ge 1` (to within 1e-13, the quadrature's resolution).
* ``jacobian_msv`` -- of :math:`J_l = \partial h^l / \partial x` (:math:`N_l \times n_0`), as
  :mod:`jaxinit.probes` measures it: :math:`\mathrm{tr}(J_l J_l^\top) / N_l = E_v\|J_l v\|^2 / N_l`
  for :math:`v \sim N(0, I_{n_0})` (the mean squared singular value when :math:`N_l \le n_0`)
  :math:`= \sigma_w^2 \prod_{k<l} \sigma_w^2 E[\phi'(\sqrt{q_k} z)^2]`, whatever the widths;
  :math:`\sigma_w^2 \chi_1^{l-1}` at the fixed point.

Where :math:`q^* = \infty` (unbounded activations with :math:`\chi_1 > 1`, e.g. ReLU above
:math:`\sigma_w^2 = 2`), quantities "at :math:`q^*`" are their limits, taken at :math:`q = 10^{12}`.

Numerics: closed forms for ``linear``, ``relu``, ``leaky_relu`` (arc-cosine kernels) and ``erf``
(arcsine kernel), and for the length map and :math:`E[\phi'^2]` of ``elu``/``selu``; everything
else by the piecewise Gauss-Legendre rule of ``jaxinit._gauss`` (kinks cut, ~1e-13), always in
float64 whatever the process's x64 setting. :math:`\phi'` of a callable is ``jax.grad``. Fixed points
and the critical line are found by bracketing root-finders: no starting bracket on
:math:`\sigma_w^2` is needed, because the critical line is solved in :math:`q^*`
(:math:`\sigma_w^2 = 1 / E[\phi'(\sqrt{q^*} z)^2]` and the fixed-point equation together).

Every function returns Python floats (or NumPy float64 arrays); none is traced by ``jax.jit``.

References:
  Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli, "Exponential expressivity in deep neural networks
  through transient chaos", NeurIPS 2016, arXiv:1606.05340.
  Schoenholz, Gilmer, Ganguli & Sohl-Dickstein, "Deep Information Propagation", ICLR 2017,
  arXiv:1611.01232.
  Cho & Saul, "Kernel Methods for Deep Learning", NeurIPS 2009 (arc-cosine kernels).
  Williams, "Computing with Infinite Networks", NeurIPS 1996 (the erf kernel).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxinit import _gauss
from jaxinit._errors import check_in_range, check_int, check_nonnegative, check_positive
from jaxinit.activations import Activation, activation_name
from jaxinit.activations import activation as resolve_activation
from jaxinit.initializers import normal, variance_scaling, zeros

__all__ = [
    "CRITICAL_TOL", "NetSpec", "NoEdgeOfChaos", "Prediction", "c_map", "c_star", "chi1", "chi_c", "chi_q",
    "critical", "critical_init", "depth_scales", "forward", "jacobian_msv", "phase", "predict", "q_map", "q_star",
]

Q_INF = 1e12  # quantities "at q* = inf" are evaluated here (their limit as q -> inf)
_Q_TINY = 1e-40  # quantities "at q* = 0" are evaluated here (their limit as q -> 0+; sqrt(q) << eps)
_Q_MAX = 1e12  # the length map is taken to diverge when no fixed point lies below this
CRITICAL_TOL = 1e-9  # a critical point is returned only if |chi_1 - 1| <= this at its own q*
_CRITICAL_GRID = 8  # points per decade of q on which the critical equation's roots are bracketed
_ZERO_GAP = 1e-12  # |V(q) - q| <= this * q, with V(0) = 0: q* = 0 to working precision
_SELU_SCALE = 1.0507009873554804934193349852946  # lambda of Klambauer et al. 2017 (= jax.nn.selu)
_SELU_ALPHA = 1.6732632423543772848170429916717  # alpha of Klambauer et al. 2017 (= jax.nn.selu)


# -- moments of one activation: closed forms where they exist, quadrature otherwise ------------
def _erfcx(t: float) -> float:
    """exp(t^2) erfc(t) for t >= 0 without overflow (asymptotic series past t = 26)."""
    if t < 26.0:
        return math.exp(t * t) * math.erfc(t)
    s, term = 1.0, 1.0
    for n in range(1, 8):
        term *= -(2 * n - 1) / (2 * t * t)
        s += term
    return s / (t * math.sqrt(math.pi))


def _theta_terms(delta: float) -> tuple[float, float]:
    """theta = arccos(1 - delta) and S = sin(theta) - theta cos(theta), both accurate for small delta."""
    theta = 2.0 * math.asin(math.sqrt(delta / 2.0))
    if theta < 1e-2:  # S = theta^3/3 - theta^5/30 + theta^7/840 - ...; cancellation-free
        t2 = theta * theta
        s = theta * t2 * (1 / 3 - t2 / 30 + t2 * t2 / 840 - t2**3 / 45360)
    else:
        s = math.sin(theta) - theta * math.cos(theta)
    return theta, s


_ODD = frozenset({"linear", "tanh", "erf", "sin", "softsign", "hard_tanh"})  # phi(-x) = -phi(x)


class _Moments:
    """E[phi^2], E[phi'^2], the length-map slope and the pair moments of one activation at q."""

    def __init__(self, prepared: _gauss.Prepared):
        self.prepared = prepared

    # Quadrature (any elementwise callable).
    def m2(self, q: float) -> float:
        """E[phi(sqrt(q) z)^2]."""
        with _gauss.float64():
            return float(_gauss.expect(_gauss.Square(self.prepared.fn), q, kinks=self.prepared.kinks))

    def m1(self, q: float) -> float:
        """E[phi(sqrt(q) z)] (0 for the odd named activations)."""
        fn = self.prepared.fn
        if isinstance(fn, Activation) and fn.name in _ODD:
            return 0.0
        with _gauss.float64():
            return float(_gauss.expect(fn, q, kinks=self.prepared.kinks))

    def _length_terms(self, q: float) -> tuple[float, float, float]:
        with _gauss.float64():
            terms = _gauss.expect(_LengthTerms(self.prepared.fn), q, kinks=self.prepared.kinks)
        return tuple(float(t) for t in terms)

    def d2(self, q: float) -> float:
        """E[phi'(sqrt(q) z)^2]."""
        return self._length_terms(q)[1]

    def slope(self, q: float) -> float:
        """d/dq E[phi(sqrt(q) z)^2] = E[phi(x) phi'(x) x] / q, x ~ N(0, q)."""
        return self._length_terms(q)[2] / q

    def pair(self, q: float, delta: float) -> tuple[float, float]:
        """(E[phi(u) phi(v)], E[(phi(u) - phi(v))^2] / 2), (u, v) of variance q, correlation 1 - delta."""
        if delta == 0.0:
            m2 = self.m2(q)
            return m2, 0.0
        with _gauss.float64():
            both = _gauss.expect2(_PairTerms(self.prepared.fn), q, None, delta, kinks=self.prepared.kinks)
        return float(both[0]), float(both[1])

    def pair_deriv(self, q: float, delta: float) -> float:
        """E[phi'(u) phi'(v)]."""
        if delta == 0.0:
            return self.d2(q)
        with _gauss.float64():
            return float(_gauss.expect2(_PairDerivs(self.prepared.fn), q, None, delta, kinks=self.prepared.kinks))


class _Leaky(_Moments):
    """phi(x) = max(x, 0) + a min(x, 0): relu (a = 0), leaky_relu, linear (a = 1); arc-cosine kernels."""

    def __init__(self, prepared, slope: float):
        super().__init__(prepared)
        self.a = slope
        self.k = (1.0 + slope * slope) / 2.0

    def m2(self, q):
        return self.k * q

    def d2(self, q):
        return self.k

    def slope(self, q):
        return self.k

    def pair(self, q, delta):
        # E[relu(u) relu(v)] = q/(2 pi) (sin t + (pi - t) cos t), t = arccos c  (Cho & Saul 2009);
        # phi = relu(x) - a relu(-x) mixes it at c and -c; the difference form is cancellation-free.
        theta, s = _theta_terms(delta)
        half_diff = q / (2 * math.pi) * (2 * self.k * (math.pi * delta - s) + 2 * self.a * s)
        return self.m2(q) - half_diff, half_diff

    def pair_deriv(self, q, delta):
        theta, _ = _theta_terms(delta)
        return (2 * self.k * (math.pi - theta) + 2 * self.a * theta) / (2 * math.pi)


class _Erf(_Moments):
    """phi = erf: E[erf(u) erf(v)] = (2/pi) arcsin(2 q c / (1 + 2 q)) (Williams 1996)."""

    def m2(self, q):
        return 2 / math.pi * math.asin(2 * q / (1 + 2 * q))

    def d2(self, q):
        return 4 / math.pi / math.sqrt(1 + 4 * q)

    def slope(self, q):
        return 4 / math.pi / ((1 + 2 * q) * math.sqrt(1 + 4 * q))

    def pair(self, q, delta):
        if q == 0.0:
            return 0.0, 0.0
        x = 2 * q / (1 + 2 * q)
        c = 1.0 - delta
        y = x * c
        if c >= 0:  # asin x - asin y = asin((x - y)(x + y) / (x sqrt(1 - y^2) + y sqrt(1 - x^2)))
            sq1x = math.sqrt(1 + 4 * q) / (1 + 2 * q)
            diff = math.asin(x * delta * (x + y) / (x * math.sqrt(1 - y * y) + y * sq1x))
        else:
            diff = math.asin(x) - math.asin(y)
        return 2 / math.pi * math.asin(y), 2 / math.pi * diff

    def pair_deriv(self, q, delta):
        # E[erf'(u) erf'(v)] = (4/pi) E[exp(-u^2 - v^2)] = (4/pi) / sqrt(det(I + 2 Sigma)).
        return 4 / math.pi / math.sqrt((1 + 2 * q * delta) * (1 + 4 * q - 2 * q * delta))


class _Elu(_Moments):
    """phi = scale * elu(x, alpha): E[phi^2] and E[phi'^2] in closed form (pair moments by quadrature)."""

    def __init__(self, prepared, alpha: float, scale: float = 1.0):
        super().__init__(prepared)
        self.alpha, self.scale2 = alpha, scale * scale

    def m2(self, q):
        # E[x^2; x > 0] = q/2; E[(e^x - 1)^2; x < 0] = A - 2B + 1/2 with
        # A = E[e^{2x}; x < 0] = erfcx(sqrt(2q))/2, B = E[e^x; x < 0] = erfcx(sqrt(q/2))/2.
        # A - 2B + 1/2 ~ q/2 loses ~1e-16/q of its relative precision to cancellation: below
        # q = 0.05 the quadrature (expm1 inside jax.nn.elu, accurate to ~1e-15 relative) is used.
        if q < 0.05:
            return super().m2(q)
        a = _erfcx(math.sqrt(2 * q)) / 2
        b = _erfcx(math.sqrt(q / 2)) / 2
        return self.scale2 * (q / 2 + self.alpha**2 * (a - 2 * b + 0.5))

    def d2(self, q):
        return self.scale2 * (0.5 + self.alpha**2 * _erfcx(math.sqrt(2 * q)) / 2)


@functools.lru_cache(maxsize=128)
def _moments_for(prepared: _gauss.Prepared) -> _Moments:
    fn = prepared.fn
    if isinstance(fn, Activation):
        if fn.name == "linear":
            return _Leaky(prepared, 1.0)
        if fn.name == "relu":
            return _Leaky(prepared, 0.0)
        if fn.name == "leaky_relu":
            return _Leaky(prepared, fn.param)
        if fn.name == "erf":
            return _Erf(prepared)
        if fn.name == "elu":
            return _Elu(prepared, fn.param)
        if fn.name == "selu":
            return _Elu(prepared, _SELU_ALPHA, _SELU_SCALE)
    return _Moments(prepared)


def _moments(activation: Any, quadrature: bool = False) -> _Moments:
    prepared = _gauss.prepare(activation)
    return _Moments(prepared) if quadrature else _moments_for(prepared)


@dataclasses.dataclass(frozen=True)
class _LengthTerms:
    """x -> (phi^2, phi'^2, phi phi' x)."""

    fn: Callable[..., Any]

    def __call__(self, x):
        y = self.fn(x)
        d = _gauss.Derivative(self.fn)(x)
        return y * y, d * d, y * d * x


@dataclasses.dataclass(frozen=True)
class _PairTerms:
    """(u, v) -> (phi(u) phi(v), (phi(u) - phi(v))^2 / 2)."""

    fn: Callable[..., Any]

    def __call__(self, u, v):
        fu, fv = self.fn(u), self.fn(v)
        return fu * fv, jnp.square(fu - fv) / 2


@dataclasses.dataclass(frozen=True)
class _PairDerivs:
    """(u, v) -> phi'(u) phi'(v)."""

    fn: Callable[..., Any]

    def __call__(self, u, v):
        d = _gauss.Derivative(self.fn)
        return d(u) * d(v)


def _call_with_derivative(what: str, fn: Callable[[], Any], m: _Moments):
    """Run ``fn``; a callable ``jax.grad`` cannot differentiate gets a TypeError naming it."""
    try:
        return fn()
    except Exception as err:
        if isinstance(m.prepared.fn, Activation):
            raise
        raise TypeError(
            f"{what} needs phi' = jax.grad(activation); activation {m.prepared.name} could not be "
            f"differentiated ({type(err).__name__}: {err}). Write it with jax.numpy."
        ) from err


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
    """An MLP as theory and probes both read it: activation, sigma_w^2, sigma_b^2, depth, width.

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

