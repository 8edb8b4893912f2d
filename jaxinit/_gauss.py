r"""Gaussian expectations by piecewise Gauss-Legendre quadrature, shared by the gains and the theory.

One implementation of the two integrals mean-field theory needs, for any elementwise function:

* ``expect(fn, q)``: :math:`E[f(x)]` with :math:`x = \sqrt{q}\,z`, :math:`z \sim N(0, 1)`;
* ``expect2(fn, q1, q2, one_minus_c)``: :math:`E[f(u, v)]` for a centred Gaussian pair with
  :math:`E[u^2] = q_1`, :math:`E[v^2] = q_2` and correlation :math:`c`, given as :math:`\delta = 1 - c`.

Rule. Gauss-Legendre nodes in :math:`z` on :math:`[-16, 16]` (the mass outside is
:math:`2\Phi(-16) \approx 10^{-57}`), the interval cut into segments at

* every *kink* :math:`x_k` of the integrand (a jump in the function or its derivative; ReLU at 0,
  hard-tanh at :math:`\pm 1`, ReLU6 at 0 and 6), mapped to :math:`z = x_k / \sqrt{q}`: no node ever
  sits on a kink and each segment integrates a smooth function, so the rule keeps its spectral
  accuracy (a step derivative on a grid with a node at 0 gives :math:`\chi_1 = 0.912` for ReLU at
  :math:`\sigma_w^2 = 2` instead of 1);
* :math:`x = 0, \pm 1, \pm 4, \pm 16`, always: activations bend on the scale :math:`x \sim 1`, that is
  :math:`z \sim 1/\sqrt{q}`, so these cuts grade the nodes toward where the integrand varies, from
  :math:`q \approx 10^{-6}` to :math:`q \approx 10^4`.

Each segment gets ``N1 = 256`` nodes (2,048 in all). For smooth activations this reaches about
``1e-13`` relative error up to :math:`q = 100` (Gauss-Hermite with 25-200 nodes is 5-10% off for
:math:`E[\mathrm{sech}^4(\sqrt{q} z)]` at :math:`q = 4..25`; tests/test_gauss.py checks both claims).

The pair is written :math:`u = \sqrt{q_1}(a z_1 + b z_2)`, :math:`v = \sqrt{q_2}(a z_1 - b z_2)`
with :math:`a = \sqrt{1 - \delta/2}`, :math:`b = \sqrt{\delta/2}` (so :math:`E[uv] = \sqrt{q_1 q_2}
(a^2 - b^2) = \sqrt{q_1 q_2}\,c`), integrated by a tensor-product rule on :math:`[-10, 10]^2` (mass
outside :math:`\approx 3 \cdot 10^{-23}`). Working in :math:`\delta` keeps :math:`u - v =
2\sqrt{q}\,b z_2` exact as :math:`c \to 1`, so :math:`E[(f(u) - f(v))^2]` has small *relative*
error even at :math:`\delta = 10^{-12}`, where :math:`E[f(u)^2] - E[f(u) f(v)]` would have lost every
digit. The inner (:math:`z_2`) segments are cut, separately for each outer node, where :math:`u` or
:math:`v` crosses a kink or a grading point, and at :math:`z_2 = 0, \pm 3`; the outer
(:math:`z_1`) segments where kink lines of :math:`u` and :math:`v` cross, at the grading points of
:math:`a z_1`, at :math:`z_1 = 0, \pm 3`, and at :math:`a z_1 = x_k \pm m b` (:math:`m = 1, 3,
8`), the window of width :math:`\sim b` in which a kink line sweeps through the Gaussian in
:math:`z_2` as :math:`c \to 1`. 48 outer and 32 inner nodes per segment. Measured against the erf
(arcsine) and ReLU (arc-cosine) kernels: ~1e-14 absolute, and ~1e-12 relative on
:math:`E[(f(u) - f(v))^2]` down to :math:`1 - c = 10^{-10}` (tests/test_gauss.py).

Precision. Everything here is a ``jnp`` computation, jit-able in ``q`` and ``one_minus_c`` (the
function and its kinks are static), in the dtype JAX gives Python floats: float32 by default,
float64 under x64. Callers that need full accuracy in a float32 process (the gains and
:mod:`jaxinit.theory` return Python floats accurate to ~1e-12) wrap the call in :func:`float64`,
which is ``jax.enable_x64(True)`` as a context manager: it switches x64 on for this thread only and
for the duration of the call.

Kinks of named activations come from a table; for any other callable they are found once (and
cached) by :func:`find_kinks`: jumps of the function and of its ``jax.grad`` on a fine grid over
:math:`[-64, 64]`, each located to machine precision by bisection (to ~1e-6 with a central-difference
derivative when ``jax.grad`` fails on the callable; a :class:`QuadratureWarning` names an activation
whose kinks could not be searched for); 0 is always a cut.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit.activations import Activation, activation, activation_name

L1 = 16.0  # half-width of the z-interval in one dimension: 2 * Phi(-16) ~ 1e-57 is left out
L2 = 10.0  # half-width per axis in two dimensions: 2 * Phi(-10) ~ 1.5e-23 per axis is left out
N1 = 256  # nodes per segment in one dimension (8 segments: 2,048 nodes)
N2_OUTER = 48  # nodes per outer segment in two dimensions
N2_INNER = 32  # nodes per inner segment in two dimensions
SCALES1 = (1.0, 4.0, 16.0)  # grading cuts at x = ±s (one dimension)
SCALES2 = (1.0, 4.0)  # grading cuts at x = ±s (two dimensions)
KINK_WINDOWS2 = (1.0, 3.0, 8.0)  # outer cuts at kink ± m b (two dimensions; b = sqrt((1 - c) / 2))
Z_CUTS2 = (0.0, -3.0, 3.0)  # fixed cuts in z1 and z2 for the Gaussian factor itself (two dimensions)
KINK_RANGE = 64.0  # kinks of callables are searched for on [-KINK_RANGE, KINK_RANGE]
MAX_KINKS = 4  # at most this many detected kinks are kept (those nearest 0): 2-d cost grows as k^2
_SQRT_2PI = math.sqrt(2.0 * math.pi)

# Kinks (x where the activation or its derivative jumps) of the named activations.
_NAMED_KINKS: dict[str, Callable[[float | None], tuple[float, ...]]] = {
    "relu": lambda p: (0.0,),
    "leaky_relu": lambda p: (0.0,),
    "elu": lambda p: (0.0,),
    "selu": lambda p: (0.0,),
    "hard_tanh": lambda p: (-1.0, 1.0),
    "relu6": lambda p: (0.0, 6.0),
}


def float64():
    """Context manager: x64 on for this thread while it is open (``jax.enable_x64(True)``)."""
    return jax.enable_x64(True)


@functools.cache
def legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (float64, computed once per ``n``)."""
    t, w = np.polynomial.legendre.leggauss(n)
    t.setflags(write=False)
    w.setflags(write=False)
    return t, w


def _segments(cuts: jax.Array, half_width: float, n: int):
    """Nodes and weights (times the N(0,1) density) of ``n``-point rules on the pieces of
    ``[-half_width, half_width]`` cut at ``cuts`` (last axis; leading axes batch)."""
    t, w = legendre(n)
    dtype = cuts.dtype
    ends = jnp.full(cuts.shape[:-1] + (1,), half_width, dtype)
    points = jnp.sort(jnp.clip(jnp.concatenate([-ends, cuts, ends], axis=-1), -half_width, half_width),
                      axis=-1)
    lo, hi = points[..., :-1, None], points[..., 1:, None]
    half = (hi - lo) / 2
    z = (hi + lo) / 2 + half * jnp.asarray(t, dtype)
    weight = half * jnp.asarray(w, dtype) * jnp.exp(-z * z / 2) / jnp.asarray(_SQRT_2PI, dtype)
    return z, weight


def _as_float(x) -> jax.Array:
    return jnp.asarray(x, dtype=jnp.result_type(float))


def _safe_div(x, y):
    """``x / y`` with ``y`` kept away from 0 (a cut at +-inf is clipped to the interval's end)."""
    tiny = jnp.finfo(jnp.result_type(y)).tiny
    return x / jnp.maximum(y, tiny)


@functools.partial(jax.jit, static_argnames=("fn", "kinks", "n"))
def expect(fn: Callable[[jax.Array], Any], q=1.0, kinks: tuple[float, ...] = (), n: int = N1):
    r"""``E[fn(sqrt(q) z)]``, ``z ~ N(0, 1)``: a pytree of scalars shaped like ``fn``'s output.

    ``fn`` maps an array of ``x`` values to an array of the same shape (or a pytree of them);
    ``kinks`` are the ``x`` where ``fn`` or its derivative jumps (static). Jit-able in ``q``.

    Example:
      >>> with float64():
      ...     round(float(expect(lambda x: x**4, 3.0)), 10)   # E[x^4] = 3 q^2
      27.0
    """
    q = _as_float(q)
    s = jnp.sqrt(q)
    points = sorted({0.0, *kinks, *SCALES1, *(-v for v in SCALES1)})
    cuts = _safe_div(jnp.asarray(points, q.dtype), s)
    z, weight = _segments(cuts, L1, n)
    return jax.tree.map(lambda y: jnp.sum(weight * y), fn(s * z))


@functools.partial(jax.jit, static_argnames=("fn", "kinks", "n_outer", "n_inner"))
def expect2(fn: Callable[[jax.Array, jax.Array], Any], q1, q2, one_minus_c,
            kinks: tuple[float, ...] = (), n_outer: int = N2_OUTER, n_inner: int = N2_INNER):
    r"""``E[fn(u, v)]`` for centred Gaussians with ``E[u^2] = q1``, ``E[v^2] = q2``, correlation
    ``c = 1 - one_minus_c`` (``one_minus_c`` in [0, 2]).

    ``fn(u, v)`` is elementwise in both arrays; ``kinks`` are the ``x`` where it (or its derivative)
    jumps in either argument. ``q2=None`` means ``q2 = q1`` and saves the cuts that would repeat.
    Jit-able in ``q1``, ``q2`` and ``one_minus_c``.

    Example:
      >>> with float64():
      ...     round(float(expect2(lambda u, v: u * v, 2.0, 8.0, 0.75)), 10)   # sqrt(q1 q2) c
      1.0
    """
    symmetric = q2 is None
    q1, delta = _as_float(q1), _as_float(one_minus_c)
    s1 = jnp.sqrt(q1)
    s2 = s1 if symmetric else jnp.sqrt(_as_float(q2))
    a = jnp.sqrt(1 - delta / 2)
    b = jnp.sqrt(delta / 2)
    dtype = q1.dtype
    pts = jnp.asarray(sorted({0.0, *kinks, *SCALES2, *(-v for v in SCALES2)}), dtype)
    kink_pts = jnp.asarray(kinks, dtype).reshape(-1)
    z_cuts = jnp.asarray(Z_CUTS2, dtype)
    # Outer cuts, in units of a z1: the grading points and kinks of u and of v; where a kink line
    # of u crosses one of v (the inner integral is not smooth there); and kink +- m b, since near
    # a kink the inner integral changes on the z1-scale b / a (the kink sweeps through the
    # Gaussian in z2), which must be resolved when c is close to 1.
    window = b * jnp.asarray([m * sign for m in KINK_WINDOWS2 for sign in (-1, 1)], dtype)
    if symmetric:  # kinks of u and v coincide: one set of each, crossings of distinct kinks only
        k = len(kinks)
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        crossings = jnp.asarray([(kinks[i] + kinks[j]) / 2 for i, j in pairs], dtype).reshape(-1) / s1
        scaled = [pts / s1, crossings, (kink_pts[:, None] / s1 + window).reshape(-1)]
        fixed = z_cuts[1:]  # z1 = 0 is already a cut (pts holds 0)
    else:
        crossings = (kink_pts[:, None] / s1 + kink_pts[None, :] / s2).reshape(-1) / 2
        scaled = [pts / s1, pts / s2, crossings, (kink_pts[:, None] / s1 + window).reshape(-1),
                  (kink_pts[:, None] / s2 + window).reshape(-1)]
        fixed = z_cuts
    outer_cuts = jnp.concatenate([_safe_div(jnp.concatenate(scaled), a), fixed])
    z1, w1 = _segments(outer_cuts, L2, n_outer)
    z1, w1 = z1.reshape(-1), w1.reshape(-1)
    # Inner cuts, per outer node: where u or v reaches a grading point or a kink.
    az1 = a * z1[:, None]
    inner_cuts = jnp.concatenate([_safe_div(pts / s1 - az1, b), _safe_div(az1 - pts / s2, b),
                                  jnp.broadcast_to(z_cuts, (z1.size, len(Z_CUTS2)))], axis=-1)
    z2, w2 = _segments(inner_cuts, L2, n_inner)
    z1b = z1[:, None, None]
    u = s1 * (a * z1b + b * z2)
    v = s2 * (a * z1b - b * z2)
    weight = w1[:, None, None] * w2
    return jax.tree.map(lambda y: jnp.sum(weight * y), fn(u, v))


# -- activations: validation, derivative, kinks ------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Derivative:
    """``phi'`` of an elementwise ``phi``, elementwise (``jax.vmap(jax.grad(phi))`` on the flat input)."""

    fn: Callable[..., Any]

    def __call__(self, x):
        x = jnp.asarray(x)
        flat = jax.vmap(jax.grad(lambda t: jnp.asarray(self.fn(t), x.dtype)))(x.reshape(-1))
        return flat.reshape(x.shape)


@dataclasses.dataclass(frozen=True)
class Square:
    """``phi(x) ** 2`` as a hashable value (one jit trace per activation)."""

    fn: Callable[..., Any]

    def __call__(self, x):
        y = self.fn(x)
        return y * y


@dataclasses.dataclass(frozen=True)
class Prepared:
    """An activation ready for quadrature: ``fn`` (phi), ``deriv`` (phi'), ``kinks``, quoted ``name``."""

    fn: Callable[..., Any]
    kinks: tuple[float, ...]
    name: str

    @property
    def deriv(self) -> Derivative:
        return Derivative(self.fn)


_PROBE = np.array([-3.1, -1.7, -0.9, -0.35, 0.0, 0.2, 0.55, 1.3, 2.4, 5.0])


def check_elementwise(fn: Callable[..., Any], name: str) -> None:
    """Raise ``TypeError`` unless ``fn`` maps arrays to same-shaped real arrays, value by value."""
    def probe(x):  # the vector, each entry alone (vmap over scalars), and a 2-d stack
        return fn(x), jax.vmap(fn)(x), fn(jnp.stack([x[::-1], x]))

    with float64():
        try:
            y, scalars, grid = (np.asarray(v) for v in jax.jit(probe)(jnp.asarray(_PROBE)))
        except Exception as err:  # the user's callable failed: say so, keep its error as the cause
            raise TypeError(
                f"activation {name} must be an elementwise, jax-traceable function of an array; "
                f"calling it on an array of shape (10,) under jax.jit raised {type(err).__name__}: {err}"
            ) from err
    x = _PROBE
    if y.shape != x.shape or scalars.shape != x.shape or grid.shape != (2, *x.shape):
        raise TypeError(
            f"activation {name} must be elementwise (output shape = input shape); it maps shape "
            f"(10,) to {y.shape} and shape (2, 10) to {grid.shape}."
        )
    if not np.issubdtype(y.dtype, np.floating):
        raise TypeError(f"activation {name} must return real floating values; got dtype {y.dtype}.")
    tol = dict(rtol=1e-6, atol=1e-9, equal_nan=True)
    if not (np.allclose(y, scalars, **tol) and np.allclose(grid[1], y, **tol)
            and np.allclose(grid[0], y[::-1], **tol)):
        raise TypeError(
            f"activation {name} is not elementwise: its value at a point depends on the other "
            f"entries of the array (f(x)[i] != f(x[i]) on x = {_PROBE.tolist()}). Theory and gains "
            "need phi applied to each unit independently."
        )


class QuadratureWarning(UserWarning):
    """The quadrature of an activation may be less accurate than documented (its kinks are unknown)."""


FD_STEP = 2.0**-20  # central-difference step (in x) when jax.grad cannot differentiate a callable


def find_kinks(fn: Callable[..., Any], span: float = KINK_RANGE, points: int = 2**15) -> tuple[float, ...]:
    """Where ``fn`` or its derivative jumps on ``[-span, span]``: a heuristic for callables.

    Scans a grid of spacing ``2 span / points`` (shifted off round numbers) for a step in ``fn``
    that its slope does not explain, or a step in ``fn'`` far above its neighbours', bisects each
    and keeps those whose jump survives (a steep smooth bend does not). At most ``MAX_KINKS``,
    those nearest 0, are kept.

    ``fn'`` is ``jax.grad(fn)``, and kinks are then located to machine precision. When ``jax.grad``
    fails on ``fn`` (a ``jax.pure_callback``, say), ``fn'`` is the central difference
    ``(fn(x + e) - fn(x - e)) / (2 e)`` with ``e = FD_STEP`` (~1e-6) instead, and kinks are located
    to about ``e`` (a cut that far off a kink costs ~e^2 ~ 1e-12 of the moments' accuracy). When
    ``fn`` or that derivative is not finite on the grid, no kink is searched for: a
    :class:`QuadratureWarning` names the activation, and only the cut at 0 is used.
    """
    name = repr(activation_name(fn))
    with float64():
        h = 2 * span / points
        x = np.linspace(-span, span, points + 1) + h / (2 * math.pi)
        values = jax.jit(fn)
        exact = jax.jit(lambda t: (fn(t), Derivative(fn)(t)))

        def finite_difference(t):
            return values(t), (values(t + FD_STEP) - values(t - FD_STEP)) / (2 * FD_STEP)

        gap = 0.0  # how far outside a bisected bracket the derivative must be read to see the jump
        try:
            y, d = (np.asarray(v, np.float64) for v in exact(jnp.asarray(x)))
            both = exact
        except Exception:  # jax.grad cannot differentiate fn: derivative by central differences
            both = finite_difference
            gap = 4 * FD_STEP
            try:
                y, d = (np.asarray(v, np.float64) for v in both(jnp.asarray(x)))
            except Exception as err:
                warnings.warn(f"activation {name}: kinks not searched for ({type(err).__name__}: {err}); "
                              "quadrature cuts only at 0 and may lose accuracy", QuadratureWarning, stacklevel=3)
                return ()
        if not (np.all(np.isfinite(y)) and np.all(np.isfinite(d))):
            bad = x[~(np.isfinite(y) & np.isfinite(d))][0]
            warnings.warn(f"activation {name}: kinks not searched for (it or its derivative is not finite at "
                          f"x = {bad:.6g}); quadrature cuts only at 0 and may lose accuracy", QuadratureWarning,
                          stacklevel=3)
            return ()
        dy = np.diff(y)
        dd = np.diff(d)
        scale = 1.0 + np.abs(d[:-1]) + np.abs(d[1:])
        value_jump = np.abs(dy - h * (d[:-1] + d[1:]) / 2) > 1e-3 * h * scale + 1e-9 * (1 + np.abs(y[:-1]))
        neighbours = np.maximum(np.abs(np.r_[dd[1:], 0.0]), np.abs(np.r_[0.0, dd[:-1]]))
        slope_jump = (np.abs(dd) > 1e-3 * scale) & (np.abs(dd) > 8 * neighbours)
        idx = np.flatnonzero(value_jump | slope_jump)
        if idx.size == 0:
            return ()
        lo, hi = x[idx], x[idx + 1]
        use_value = value_jump[idx] & ~slope_jump[idx]  # a kink also fails the value test
        left = np.where(use_value, y[idx], d[idx])
        right = np.where(use_value, y[idx + 1], d[idx + 1])
        for _ in range(60):
            mid = (lo + hi) / 2
            ym, dm = (np.asarray(v, np.float64) for v in both(jnp.asarray(mid)))
            val = np.where(use_value, ym, dm)
            go_right = np.abs(val - left) <= np.abs(val - right)
            lo, hi = np.where(go_right, mid, lo), np.where(go_right, hi, mid)
        # A true jump survives bisection: the values on both sides of a bracket ~1e-16 wide (read
        # `gap` outside it for a finite-difference slope) still differ by about the jump. A smooth
        # steep bend (tanh(100 x)) does not, and is dropped.
        (ylo, dlo), (yhi, dhi) = ((np.asarray(v, np.float64) for v in both(jnp.asarray(e)))
                                  for e in (lo - gap, hi + gap))
        final = np.where(use_value, np.abs(yhi - ylo), np.abs(dhi - dlo))
        kinks = ((lo + hi) / 2)[final >= 0.5 * np.abs(right - left)]
    # Snap what is 0 up to the bisection's resolution to 0; keep those nearest 0.
    kinks = np.where(np.abs(kinks) <= max(1e-12, gap), 0.0, kinks)
    found = sorted({float(k) for k in kinks[np.argsort(np.abs(kinks))][:MAX_KINKS]})
    return tuple(found)


@functools.lru_cache(maxsize=128)
def _prepare_cached(fn: Callable[..., Any]) -> Prepared:
    name = repr(activation_name(fn))
    if isinstance(fn, Activation):
        kinks = _NAMED_KINKS.get(fn.name, lambda p: ())(fn.param)
        return Prepared(fn, tuple(kinks), name)
    check_elementwise(fn, name)
    return Prepared(fn, find_kinks(fn), name)


def prepare(spec: Any, param: float | None = None) -> Prepared:
    """Resolve a name, ``{"name": ..., "param": ...}``, :class:`Activation` or callable once (cached).

    Raises:
      ValueError: an unknown activation name (the message lists the known ones).
      TypeError: neither a name nor a callable; a callable that is not elementwise.
    """
    fn = activation(spec, param)
    try:
        hash(fn)
    except TypeError:  # an unhashable callable: hashed by identity, prepared afresh each time
        return _prepare_cached.__wrapped__(_ByIdentity(fn))
    return _prepare_cached(fn)


@dataclasses.dataclass(frozen=True, eq=False)
class _ByIdentity:
    """An unhashable callable made usable as a static jit argument (equal only to itself)."""

    fn: Callable[..., Any]

    def __call__(self, x):
        return self.fn(x)

    @property
    def __name__(self) -> str:
        return activation_name(self.fn)
