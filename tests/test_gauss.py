"""Gaussian quadrature (jaxinit._gauss) and the computed gain (activation_gain).

References are exact closed forms, or scipy's adaptive quadrature run to ~1e-13 on the same
integrals; tolerances are float64 rounding (a few 1e-15 per term) times a margin, unless stated.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import jaxinit
from jaxinit import _gauss
from jaxinit.activations import Activation


def _pdf(z):
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _scipy_expect(f, q, cuts=()):
    """E[f(sqrt(q) z)] by scipy.quad, split where f bends (x = 0, +-1, +-4, ...) to reach ~1e-13."""
    s = math.sqrt(q)
    pts = sorted({-12.0, 12.0, 0.0, *(x / s for x in (-16, -4, -1, 1, 4, 16, *cuts) if abs(x / s) < 12)})
    return sum(integrate.quad(lambda z: f(s * z) * _pdf(z), a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
               for a, b in zip(pts[:-1], pts[1:], strict=False))


def _sech4(x):
    t = math.exp(-abs(x))
    return (2 * t / (1 + t * t)) ** 4


def _e(fn, q=1.0, kinks=()):
    with _gauss.float64():
        return float(_gauss.expect(fn, q, kinks=kinks))


# -- one dimension ---------------------------------------------------------------------------------
def test_expect_reproduces_gaussian_moments():
    def moments(x):  # a pytree of integrands: one pass, one compile
        return jnp.ones_like(x), x**2, x**4, jnp.cos(x)

    for q in (1.0, 3.0):
        with _gauss.float64():
            one, m2, m4, cos = (float(v) for v in _gauss.expect(moments, q))
        assert one == pytest.approx(1.0, abs=1e-14)
        assert m2 == pytest.approx(q, rel=1e-14)
        assert m4 == pytest.approx(3 * q * q, rel=1e-14)  # E[x^4] = 3 q^2
        assert cos == pytest.approx(math.exp(-q / 2), rel=1e-14)  # characteristic function


def test_expect_relu_moments_exact():
    relu = Activation("relu")
    assert _e(_gauss.Square(relu), 1.0, kinks=(0.0,)) == pytest.approx(0.5, abs=1e-15)
    step = _gauss.Derivative(relu)
    assert _e(_gauss.Square(step), 2.0, kinks=(0.0,)) == pytest.approx(0.5, abs=1e-15)


def test_step_off_centre_is_integrated_exactly_when_its_kink_is_cut():
    # E[1(x > 0.7)] = Phi(-0.7 / sqrt(q)).
    q = 1.7
    expected = 0.5 * math.erfc(0.7 / math.sqrt(q) / math.sqrt(2))
    got = _e(lambda x: (x > 0.7).astype(x.dtype), q, kinks=(0.7,))
    assert got == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("q", [4.0, 9.0, 16.0, 25.0, 100.0])
def test_sech4_accurate_at_large_q(q):
    reference = _scipy_expect(_sech4, q)
    got = _e(lambda x: 1 / jnp.cosh(x) ** 4, q)
    assert got == pytest.approx(reference, rel=1e-12)


def test_gauss_hermite_is_what_fails_at_large_q():
    """The reason for the Legendre rule: Gauss-Hermite is 5-10% off for sech^4 at q = 4..25."""
    errors = []
    for q, n in [(4.0, 25), (25.0, 200)]:
        t, w = np.polynomial.hermite_e.hermegauss(n)
        hermite = float(np.sum(w / np.cosh(math.sqrt(q) * t) ** 4) / math.sqrt(2 * math.pi))
        errors.append(abs(hermite / _scipy_expect(_sech4, q) - 1))
    assert min(errors) > 0.04
    assert _e(lambda x: 1 / jnp.cosh(x) ** 4, 25.0) == pytest.approx(_scipy_expect(_sech4, 25.0), rel=1e-12)


@pytest.mark.parametrize("q", [0.3, 2.0, 30.0])
def test_tanh_derivative_moments_match_scipy(q):
    d = _gauss.Derivative(jnp.tanh)
    with _gauss.float64():
        e1, e2 = (float(v) for v in _gauss.expect(lambda x: (d(x), d(x) ** 2), q))
    assert e1 == pytest.approx(_scipy_expect(lambda x: _sech4(x) ** 0.5, q), rel=1e-12)
    assert e2 == pytest.approx(_scipy_expect(_sech4, q), rel=1e-12)


def test_expect_follows_float32_default_and_is_jittable():
    # Outside float64() the rule runs in JAX's default dtype (float32 in this process):
    # single-precision rounding over 2,048 terms stays well below 1e-5.
    got = jax.jit(lambda q: _gauss.expect(_gauss.Square(jnp.tanh), q))(1.0)
    assert got.dtype == jnp.float32
    assert float(got) == pytest.approx(_scipy_expect(lambda x: math.tanh(x) ** 2, 1.0), abs=1e-5)
    batch = jax.vmap(lambda q: _gauss.expect(lambda x: x * x, q))(jnp.array([0.5, 2.0]))
    np.testing.assert_allclose(np.asarray(batch), [0.5, 2.0], rtol=1e-5)


# -- two dimensions --------------------------------------------------------------------------------
def _erf_pair(u, v):
    e = jax.scipy.special.erf
    return e(u) * e(v), (e(u) - e(v)) ** 2 / 2


@pytest.mark.parametrize("q", [0.1, 1.0, 10.0, 100.0])
@pytest.mark.parametrize("delta", [1.9, 1.0, 0.5, 1e-2, 1e-6, 1e-10])
def test_expect2_matches_erf_arcsine_kernel(q, delta):
    # E[erf(u) erf(v)] = (2/pi) arcsin(2 q c / (1 + 2 q)) (Williams 1996); the half squared
    # difference (2/pi)(arcsin x - arcsin x c), x = 2q/(1+2q), in a cancellation-free form.
    c = 1.0 - delta
    x = 2 * q / (1 + 2 * q)
    y = x * c
    product = 2 / math.pi * math.asin(y)
    if c >= 0:
        half_diff = 2 / math.pi * math.asin(
            x * delta * (x + y) / (x * math.sqrt(1 - y * y) + y * math.sqrt(1 - x * x)))
    else:
        half_diff = 2 / math.pi * (math.asin(x) - math.asin(y))
    with _gauss.float64():
        got_product, got_half_diff = (float(v) for v in _gauss.expect2(_erf_pair, q, q, delta))
    assert got_product == pytest.approx(product, abs=1e-13)
    # relative accuracy of 1 - c where it matters: measured <= 3e-13 at delta = 1e-10
    assert got_half_diff == pytest.approx(half_diff, rel=1e-11)


def _relu_pair(u, v):
    r = jax.nn.relu
    return r(u) * r(v), (r(u) - r(v)) ** 2 / 2, (u > 0).astype(u.dtype) * (v > 0).astype(v.dtype)


@pytest.mark.parametrize("delta", [1.5, 0.5, 1e-3, 1e-6, 1e-9])
def test_expect2_matches_relu_arccosine_kernel_with_cut_kinks(delta):
    q = 1.3
    theta = 2 * math.asin(math.sqrt(delta / 2))
    s = math.sin(theta) - theta * math.cos(theta) if theta > 1e-2 else theta**3 / 3 - theta**5 / 30
    expected = (q / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta)),
                q / (2 * math.pi) * (math.pi * delta - s),
                (math.pi - theta) / (2 * math.pi))
    with _gauss.float64():
        got = [float(v) for v in _gauss.expect2(_relu_pair, q, q, delta, kinks=(0.0,))]
    assert got[0] == pytest.approx(expected[0], abs=1e-14)
    assert got[1] == pytest.approx(expected[1], rel=1e-11)
    assert got[2] == pytest.approx(expected[2], abs=1e-14)


def test_expect2_limits_are_one_dimensional_moments():
    tanh2 = _e(_gauss.Square(jnp.tanh), 2.0)
    mean_softplus = _e(jax.nn.softplus, 2.0)
    with _gauss.float64():
        same = float(_gauss.expect2(lambda u, v: jnp.tanh(u) * jnp.tanh(v), 2.0, 2.0, 0.0))
        independent = float(_gauss.expect2(lambda u, v: jax.nn.softplus(u) * jax.nn.softplus(v), 2.0, 2.0, 1.0))
    assert same == pytest.approx(tanh2, rel=1e-13)  # c = 1: u = v
    assert independent == pytest.approx(mean_softplus**2, rel=1e-13)  # c = 0: independent


# -- activations: kinks and validation ------------------------------------------------------------
def test_kinks_of_callables_are_found_to_machine_precision():
    assert _gauss.prepare(lambda x: jnp.clip(x, -1.0, 1.0)).kinks == pytest.approx((-1.0, 1.0), abs=1e-13)
    assert _gauss.prepare(lambda x: jnp.minimum(jnp.maximum(x, 0.0), 6.0)).kinks == pytest.approx((0.0, 6.0),
                                                                                                   abs=1e-12)
    assert _gauss.prepare(lambda x: jnp.tanh(x)).kinks == ()
    assert _gauss.find_kinks(lambda x: jnp.tanh(100 * x)) == ()  # steep but smooth: no jump survives
    assert _gauss.prepare("hard_tanh").kinks == (-1.0, 1.0)


def _not_differentiable(f, name):
    """``f`` with a JVP rule that raises: jit-able and elementwise, but jax.grad fails on it (as on a
    jax.pure_callback, whose float64 inputs are not reliable under a thread-local x64 switch)."""
    @jax.custom_jvp
    def fn(x):
        return f(x)

    @fn.defjvp
    def _jvp(primals, tangents):
        raise NotImplementedError(f"{name} has no derivative rule")

    fn.__name__ = name
    return fn


def test_kinks_of_a_callable_jax_cannot_differentiate_are_found_by_finite_differences():
    """Issue 10 item 4: when jax.grad fails on a callable, find_kinks used to return () silently,
    and E[phi'(...)]-free moments (the length map) lost their accuracy. Central differences with step
    FD_STEP ~ 1e-6 locate each kink to ~FD_STEP; the moments are then as accurate as for the named
    activation (a misplaced cut costs ~FD_STEP^2 ~ 1e-12, so rel 1e-10 is asserted)."""
    ht = _not_differentiable(lambda x: jnp.clip(x, -1.0, 1.0), "opaque_hard_tanh")
    r6 = _not_differentiable(lambda x: jnp.clip(x, 0.0, 6.0), "opaque_relu6")
    assert _gauss.find_kinks(ht) == pytest.approx((-1.0, 1.0), abs=2 * _gauss.FD_STEP)
    assert _gauss.find_kinks(r6) == pytest.approx((0.0, 6.0), abs=2 * _gauss.FD_STEP)
    assert _gauss.find_kinks(_not_differentiable(jnp.tanh, "opaque_tanh")) == ()
    prepared = _gauss.prepare(ht)
    with _gauss.float64():
        for q in (0.3, 2.0, 30.0):
            got = float(_gauss.expect(_gauss.Square(ht), q, kinks=prepared.kinks))
            named = float(_gauss.expect(_gauss.Square(Activation("hard_tanh")), q, kinks=(-1.0, 1.0)))
            assert got == pytest.approx(named, rel=1e-10)


def test_a_callable_whose_kinks_cannot_be_searched_is_named_in_a_warning():
    def steep_exp(x):  # exp(20 x) overflows float64 beyond x = 35.5
        return jnp.exp(20.0 * x)

    with pytest.warns(_gauss.QuadratureWarning, match=r"activation 'steep_exp': kinks not searched for .*not finite"):
        assert _gauss.find_kinks(steep_exp) == ()


def test_expect2_with_two_kinks_matches_nested_scipy():
    """hard_tanh: kinks at +-1, cut per outer node along both kink lines of u and of v."""
    q, c = 30.0, 0.9
    s, r = math.sqrt(q), math.sqrt(1 - c * c)

    def ht(x):
        return max(-1.0, min(1.0, x))

    def inner(z1):
        pts = sorted(p for p in ((x / s - c * z1) / r for x in (-1, 1)) if -12 < p < 12)
        return integrate.quad(lambda z2: ht(s * (c * z1 + r * z2)) * _pdf(z2), -12, 12, points=pts,
                              epsabs=1e-14, epsrel=1e-12, limit=200)[0]

    reference = integrate.quad(lambda z1: ht(s * z1) * _pdf(z1) * inner(z1), -12, 12, points=[-1 / s, 1 / s],
                               epsabs=1e-13, epsrel=1e-11, limit=200)[0]
    prepared = _gauss.prepare("hard_tanh")
    with _gauss.float64():
        got = float(_gauss.expect2(lambda u, v: jnp.clip(u, -1, 1) * jnp.clip(v, -1, 1), q, q, 1 - c,
                                   kinks=prepared.kinks))
    assert got == pytest.approx(reference, abs=1e-12)


def test_prepare_rejects_unknown_names_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'tanhh'\. Did you mean 'tanh'\?.*Known: .*relu"):
        _gauss.prepare("tanhh")


@pytest.mark.parametrize("fn, match", [
    (lambda x: x - x.mean(), "is not elementwise"),
    (lambda x: jax.nn.softmax(x), "is not elementwise|raised"),
    (lambda x: jnp.sum(x**2), r"must be elementwise \(output shape = input shape\)"),
    (lambda x: x.astype(jnp.int32), "must return real floating values"),
])
def test_non_elementwise_callables_are_rejected(fn, match):
    with pytest.raises(TypeError, match=match):
        _gauss.prepare(fn)


def test_prepare_rejects_non_callables():
    with pytest.raises(TypeError, match="activation must be a name .* or a callable; got 3"):
        _gauss.prepare(3)


# -- the computed gain ------------------------------------------------------------------------------
def test_activation_gain_exact_values():
    assert jaxinit.activation_gain("relu") == pytest.approx(math.sqrt(2.0), abs=1e-10)
    assert jaxinit.activation_gain(lambda x: jnp.maximum(x, 0.0)) == pytest.approx(math.sqrt(2.0), abs=1e-10)
    assert jaxinit.activation_gain("linear") == pytest.approx(1.0, abs=1e-12)
    for a in (0.01, 0.2, 0.5):
        assert jaxinit.activation_gain("leaky_relu", a) == pytest.approx(math.sqrt(2 / (1 + a * a)), abs=1e-12)


def test_activation_gain_differs_from_torch_table_where_the_table_is_a_convention():
    tanh = 1 / math.sqrt(_scipy_expect(lambda x: math.tanh(x) ** 2, 1.0))
    assert jaxinit.activation_gain("tanh") == pytest.approx(tanh, rel=1e-12)
    assert abs(jaxinit.activation_gain("tanh") - jaxinit.gain("tanh")) > 0.07  # 1.593 vs 5/3
    # SELU's constants make E[selu(z)^2] = 1 (Klambauer et al. 2017); the table says 3/4.
    assert jaxinit.activation_gain("selu") == pytest.approx(1.0, abs=1e-9)
    assert jaxinit.activation_gain("relu") == pytest.approx(jaxinit.gain("relu"), abs=1e-12)


def test_activation_gain_of_any_callable_matches_scipy():
    gelu = jaxinit.activation_gain(lambda x: jax.nn.gelu(x, approximate=False))
    ref = _scipy_expect(lambda x: (x * 0.5 * (1 + math.erf(x / math.sqrt(2)))) ** 2, 1.0)
    assert gelu == pytest.approx(1 / math.sqrt(ref), rel=1e-12)


def test_activation_gain_rejects_a_zero_function():
    with pytest.raises(ValueError, match=r"E\[phi\(z\)\^2\] = 0.0 .* finite, positive second moment"):
        jaxinit.activation_gain(lambda x: 0.0 * x)
