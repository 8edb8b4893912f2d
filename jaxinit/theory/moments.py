"""Gaussian moments of an activation: closed forms (ReLU/leaky, erf, ELU, linear) or quadrature.

The expectations every map of :mod:`jaxinit.theory` needs, ``E[phi(u) phi(v)]`` and ``E[phi'(u) phi'(v)]`` for
``(u, v)`` jointly Gaussian, built on :mod:`jaxinit._gauss`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from jaxinit import _gauss
from jaxinit.activations import Activation

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
