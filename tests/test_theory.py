"""Mean-field theory (jaxinit.theory): closed forms, quadrature, fixed points, the edge of chaos.

Independent references are computed here with scipy (adaptive quadrature and brentq, ~1e-13);
tolerances are float64 rounding with a margin unless a comment derives them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize

import jaxinit
from jaxinit import nets, theory

from conftest import run_python


def relu_fn(x):
    """ReLU as a plain callable: theory takes the generic (quadrature) path for it."""
    return jnp.maximum(x, 0.0)


def _pdf(z):
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _scipy_expect(f, q):
    s = math.sqrt(q)
    pts = sorted({-12.0, 12.0, 0.0, *(x / s for x in (-4, -1, 1, 4) if abs(x / s) < 12)})
    return sum(integrate.quad(lambda z: f(s * z) * _pdf(z), a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
               for a, b in zip(pts[:-1], pts[1:], strict=False))


def _tanh2(x):
    return math.tanh(x) ** 2


def _sech4(x):
    t = math.exp(-abs(x))
    return (2 * t / (1 + t * t)) ** 4


def _scipy_tanh_q_star(sw, sb):
    return optimize.brentq(lambda q: sw * _scipy_expect(_tanh2, q) + sb - q, 1e-9, sw + sb + 1,
                           xtol=1e-15, rtol=1e-15)


def _arccos_map(c):
    """ReLU's correlation map at sigma_w^2 = 2, sigma_b^2 = 0 (Cho & Saul 2009)."""
    t = math.acos(c)
    return (math.sin(t) + (math.pi - t) * math.cos(t)) / math.pi


# -- ReLU: exact answers --------------------------------------------------------------------------
def test_relu_critical_point_is_two_with_chi1_one():
    assert theory.critical("relu", 0.0) == 2.0
    assert theory.chi1("relu", 2.0, 0.0) == pytest.approx(1.0, abs=1e-10)
    assert theory.phase("relu", 2.0, 0.0) == "critical"
    kernel_init, bias_init = theory.critical_init("relu", 0.0)
    assert kernel_init == jaxinit.variance_scaling(2.0, "fan_in", "normal")
    assert bias_init == jaxinit.zeros
    _, bias_init = theory.critical_init("tanh", 0.09)
    assert bias_init == jaxinit.normal(0.3)


def test_generic_relu_matches_closed_form():
    """A plain callable goes through quadrature with found kinks: chi_1 = 1, not 0.912."""
    assert theory.chi1(relu_fn, 2.0, 0.0) == pytest.approx(1.0, abs=1e-12)
    assert theory.critical(relu_fn, 0.0) == pytest.approx(2.0, abs=1e-12)
    assert theory.q_star(relu_fn, 1.5, 0.2) == pytest.approx(0.2 / (1 - 0.75), rel=1e-12)
    for c in (-0.5, 0.3, 0.99):
        assert theory.c_map(relu_fn, 2.0, 0.0, c, q=1.0) == pytest.approx(_arccos_map(c), abs=1e-13)
    for delta in (1e-4, 1e-8, 1e-12):  # 1 - c' near 1: kink windows keep it to ~1e-11 relative
        generic = theory.c_map(relu_fn, 2.0, 0.0, 1 - delta, q=1.0, complement=True)
        assert generic == pytest.approx(theory.c_map("relu", 2.0, 0.0, 1 - delta, q=1.0, complement=True),
                                        rel=1e-10)
    closed = theory.predict("relu", 1.7, 0.1, 1.0, 0.2, 6)
    generic = theory.predict(relu_fn, 1.7, 0.1, 1.0, 0.2, 6)
    np.testing.assert_allclose(generic.q, closed.q, rtol=1e-12)
    np.testing.assert_allclose(generic.c, closed.c, rtol=0, atol=1e-12)


def test_predict_relu_at_critical_keeps_q_constant():
    pred = theory.predict("relu", 2.0, 0.0, q0=0.7, c0=0.3, depth=50)
    assert pred.q.shape == pred.c.shape == (50,)
    assert np.all(pred.q == 2.0 * 0.7)
    assert pred.c[0] == pytest.approx(0.3, abs=1e-15)
    expected = [0.3]
    for _ in range(49):
        expected.append(_arccos_map(expected[-1]))
    np.testing.assert_allclose(pred.c, expected, rtol=0, atol=1e-13)
    assert np.all(np.diff(pred.c) > 0)


def test_relu_length_map_exact_elsewhere():
    assert theory.q_star("relu", 2.5, 0.1) == math.inf
    assert theory.phase("relu", 2.5, 0.1) == "chaotic"
    assert theory.q_star("relu", 1.0, 0.0) == 0.0
    assert theory.q_star("relu", 1.0, 0.5) == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_allclose(theory.jacobian_msv("relu", 1.5, 0.0, 1.0, 4), 1.5 * 0.75 ** np.arange(4),
                               rtol=1e-15)


# -- closed forms vs quadrature ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["relu", "erf", "linear"])
def test_closed_forms_agree_with_quadrature(name):
    closed, quad = theory._moments(name), theory._moments(name, quadrature=True)
    assert type(closed) is not type(quad)
    for q in (0.05, 1.0, 20.0):
        for method in ("m2", "d2", "slope"):
            assert getattr(quad, method)(q) == pytest.approx(getattr(closed, method)(q), rel=1e-12)
        for delta in (1.5, 0.4, 1e-6):
            (p_closed, h_closed), (p_quad, h_quad) = closed.pair(q, delta), quad.pair(q, delta)
            assert p_quad == pytest.approx(p_closed, abs=1e-13 * max(q, 1))
            assert h_quad == pytest.approx(h_closed, rel=1e-10)  # 1 - c, relative even at 1e-6
            assert quad.pair_deriv(q, delta) == pytest.approx(closed.pair_deriv(q, delta), abs=1e-13)


@pytest.mark.parametrize("name", ["elu", "selu"])
def test_elu_selu_closed_length_moments_agree_with_quadrature(name):
    closed, quad = theory._moments(name), theory._moments(name, quadrature=True)
    for q in (0.05, 1.0, 20.0):
        assert quad.m2(q) == pytest.approx(closed.m2(q), rel=1e-12)
        assert quad.d2(q) == pytest.approx(closed.d2(q), rel=1e-12)


def test_leaky_relu_moments_and_critical_point():
    a = 0.2
    spec = {"name": "leaky_relu", "param": a}
    assert theory.critical(spec, 0.0) == pytest.approx(2 / (1 + a * a), rel=1e-15)
    with pytest.raises(theory.NoEdgeOfChaos, match=r"positively homogeneous.*q\* diverges"):
        theory.critical(spec, 0.5)  # q -> q + 0.5 at sigma_w^2 = 2 / (1 + a^2): no finite q*
    assert theory.chi1(spec, 2 / (1 + a * a), 0.0) == pytest.approx(1.0, abs=1e-15)
    assert theory.q_map(spec, 1.0, 0.0, 3.0) == pytest.approx(3.0 * (1 + a * a) / 2, rel=1e-15)


# -- tanh: the edge of chaos (Poole et al. 2016; Schoenholz et al. 2017) ------------------------------
@pytest.mark.parametrize("bias_variance", [0.05, 1.7])
def test_tanh_critical_line_matches_independent_scipy(bias_variance):
    """Independent route: brentq over sigma_w^2 on chi_1(sigma_w^2) - 1, q* by brentq, scipy quad."""

    def chi1_minus_one(sw):
        return sw * _scipy_expect(_sech4, _scipy_tanh_q_star(sw, bias_variance)) - 1

    reference = optimize.brentq(chi1_minus_one, 1.0, 10.0, xtol=1e-13, rtol=1e-13)
    got = theory.critical("tanh", bias_variance)
    assert got == pytest.approx(reference, rel=1e-10)
    assert theory.chi1("tanh", got, bias_variance) == pytest.approx(1.0, abs=1e-10)
    assert theory.phase("tanh", got, bias_variance) == "critical"


def test_tanh_critical_values():
    assert theory.critical("tanh", 0.05) == pytest.approx(1.76095, abs=1e-5)  # Poole et al. Fig. ~1.76
    assert theory.critical("tanh", 1.6) < 4 < theory.critical("tanh", 1.7)  # crosses 4 at 1.64
    assert theory.critical("tanh", 0.0) == pytest.approx(1.0, abs=1e-10)  # q* = 0, tanh'(0) = 1
    assert theory.critical("erf", 0.0) == pytest.approx(math.pi / 4, abs=1e-10)  # erf'(0)^2 = 4/pi


def test_c_star_is_one_in_the_ordered_phase_and_c_converges_at_rate_chi1():
    sw, sb = 0.8, 0.05
    assert theory.phase("tanh", sw, sb) == "ordered"
    assert theory.c_star("tanh", sw, sb) == 1.0
    chi = theory.chi1("tanh", sw, sb)
    assert theory.chi_c("tanh", sw, sb) == chi
    assert theory.depth_scales("tanh", sw, sb)[1] == pytest.approx(-1 / math.log(chi), rel=1e-14)
    pred = theory.predict("tanh", sw, sb, 1.0, 0.2, 40)
    one_minus_c = 1 - pred.c
    assert np.all(np.diff(one_minus_c) < 0)
    # 1 - c_{l+1} = chi(q_l) (1 - c_l) (1 + O(1 - c_l)); by layer 40, q_l = q* to 1e-10 and
    # 1 - c_l ~ 1e-5, so the ratio equals chi_1 to ~1e-4.
    assert one_minus_c[-1] / one_minus_c[-2] == pytest.approx(chi, rel=1e-3)


def test_chaotic_c_star_matches_independent_scipy():
    sw, sb = 2.5, 0.05
    q = _scipy_tanh_q_star(sw, sb)
    s = math.sqrt(q)

    def c_map(c):  # nested scipy quad: E[tanh(u) tanh(v)] with v = c u + sqrt(1 - c^2) w
        r = math.sqrt(1 - c * c)

        def inner(z1):
            return integrate.quad(lambda z2: math.tanh(s * (c * z1 + r * z2)) * _pdf(z2), -10, 10,
                                  epsabs=1e-13, epsrel=1e-12)[0]

        outer = integrate.quad(lambda z1: math.tanh(s * z1) * _pdf(z1) * inner(z1), -10, 10,
                               epsabs=1e-12, epsrel=1e-11)[0]
        return (sw * outer + sb) / q

    reference = optimize.brentq(lambda c: c_map(c) - c, 0.3, 0.6, xtol=1e-10)
    assert theory.phase("tanh", sw, sb) == "chaotic"
    assert theory.c_star("tanh", sw, sb) == pytest.approx(reference, abs=1e-9)


def test_odd_activation_without_bias_has_c_star_zero():
    assert theory.c_star("tanh", 4.0, 0.0) == 0.0


def test_slopes_match_finite_differences_of_the_maps():
    # Central differences with step h have error h^2 |f'''| / 6 ~ 2e-8 here (f''' = O(1) at
    # q* ~ 1), plus rounding ~1e-16 / h; rel 1e-6 leaves a margin.
    sw, sb, h = 2.5, 0.05, 1e-4
    qs, cs = theory.q_star("tanh", sw, sb), theory.c_star("tanh", sw, sb)
    dq = (theory.q_map("tanh", sw, sb, qs + h) - theory.q_map("tanh", sw, sb, qs - h)) / (2 * h)
    assert theory.chi_q("tanh", sw, sb) == pytest.approx(dq, rel=1e-6)
    dc = (theory.c_map("tanh", sw, sb, cs + h) - theory.c_map("tanh", sw, sb, cs - h)) / (2 * h)
    assert theory.chi_c("tanh", sw, sb) == pytest.approx(dc, rel=1e-6)
    xi_q, xi_c = theory.depth_scales("tanh", sw, sb)
    assert (xi_q, xi_c) == pytest.approx((-1 / math.log(dq), -1 / math.log(dc)), rel=1e-5)
    assert theory.depth_scales("tanh", theory.critical("tanh", sb), sb)[1] > 1e6  # diverges at the edge


def test_c_map_keeps_one_minus_c_accurate_near_one():
    # 1 - c' = chi_1 (1 - c) (1 + O(1 - c)) at q*; at 1 - c = 1e-12 the subtraction
    # E[phi^2] - E[phi(u) phi(v)] would leave no correct digit.
    sw, sb, delta = 1.5, 0.05, 1e-12
    c = 1 - delta
    got = theory.c_map("tanh", sw, sb, c, complement=True)
    assert got / (1 - c) == pytest.approx(theory.chi1("tanh", sw, sb), rel=1e-8)
    assert 1 - theory.c_map("tanh", sw, sb, c) == pytest.approx(got, abs=2e-16)


def test_predict_first_layer_acts_on_the_raw_input_then_follows_the_maps():
    sw, sb, q0, c0 = 1.5, 0.05, 0.8, 0.3
    pred = theory.predict("tanh", sw, sb, q0, c0, 4)
    assert pred.q[0] == pytest.approx(sw * q0 + sb, rel=1e-15)
    assert pred.c[0] == pytest.approx((sw * q0 * c0 + sb) / (sw * q0 + sb), rel=1e-15)
    for layer in range(3):
        assert pred.q[layer + 1] == pytest.approx(theory.q_map("tanh", sw, sb, pred.q[layer]), rel=1e-15)
        assert pred.c[layer + 1] == pytest.approx(
            theory.c_map("tanh", sw, sb, pred.c[layer], q=pred.q[layer]), rel=1e-14)
    assert np.all(np.isnan(theory.predict("tanh", sw, sb, q0, None, 3).c))
    assert pred.correlation is pred.c


def test_jacobian_msv_at_the_tanh_fixed_point_is_flat_on_the_edge_of_chaos():
    sb = 0.05
    sw = theory.critical("tanh", sb)
    qs = theory.q_star("tanh", sw, sb)
    msv = theory.jacobian_msv("tanh", sw, sb, (qs - sb) / sw, 5)  # q_1 = q*
    np.testing.assert_allclose(msv, sw, rtol=1e-9)


def test_netspec_is_a_hashable_value_and_forward_is_predict():
    spec = theory.NetSpec("tanh", 1.5, 0.05, depth=5, width=128)
    assert spec == theory.NetSpec({"name": "tanh"}, 1.5, 0.05, 5, 128)
    assert hash(spec) == hash(theory.NetSpec("tanh", 1.5, 0.05, 5, 128))
    assert spec.name == "tanh"
    got, expected = theory.forward(spec, 1.0, 0.5), theory.predict("tanh", 1.5, 0.05, 1.0, 0.5, 5)
    np.testing.assert_array_equal(got.q, expected.q)
    np.testing.assert_array_equal(got.c, expected.c)


def test_float64_results_in_an_x64_process_equal_the_default_process():
    out = run_python("""
        from jaxinit import theory
        print(repr(theory.critical("tanh", 0.05)))
    """, x64=True)
    assert float(out) == pytest.approx(theory.critical("tanh", 0.05), rel=1e-13)


# -- finite width: exact in expectation for ReLU ------------------------------------------------------
def test_relu_network_q_matches_prediction_in_expectation(key):
    """For ReLU with zero-mean Gaussian weights and biases, E[q_{l+1} | layer l] = sigma_w^2 q_l / 2
    + sigma_b^2 exactly at any width (h is conditionally a centred Gaussian), so E[q_l] equals the
    prediction. The per-layer mean over 64 seeds is compared with a 6-sigma bound, sigma estimated
    from the seeds themselves (STYLE 8.5)."""
    sw, sb, width, depth, seeds = 1.5, 0.3, 128, 5, 64
    kernel_init = jaxinit.variance_scaling(sw, "fan_in", "normal")
    bias_init = jaxinit.normal(math.sqrt(sb))
    x = jax.random.normal(jax.random.fold_in(key, 10**6), (8, width))
    x = x / jnp.sqrt(jnp.mean(x * x, axis=1, keepdims=True))  # mean(x^2) = 1 for every input

    def layer_q(params):
        h = nets.affine(x, params["input"], precision="highest")
        qs = [jnp.mean(h * h)]
        for i in range(depth - 1):
            layer = jax.tree.map(lambda a, i=i: a[i], params["hidden"])
            h = nets.affine(jax.nn.relu(h), layer, precision="highest")
            qs.append(jnp.mean(h * h))
        return jnp.stack(qs)

    per_seed = [nets.init(jax.random.fold_in(key, s), width, width, depth, None, kernel_init, bias_init)
                for s in range(seeds)]
    params = jax.tree.map(lambda *a: jnp.stack(a), *per_seed)
    q = np.asarray(jax.jit(jax.vmap(layer_q))(params), np.float64)
    predicted = theory.predict("relu", sw, sb, 1.0, None, depth).q
    stderr = q.std(axis=0, ddof=1) / math.sqrt(seeds)
    assert np.all(np.abs(q.mean(axis=0) - predicted) <= 6 * stderr)


# -- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, match", [
    (lambda: theory.q_star("tanh", math.nan, 0.1), ValueError, r"weight_variance must be finite; got nan"),
    (lambda: theory.chi1("tanh", math.inf, 0.1), ValueError, r"weight_variance must be finite; got inf"),
    (lambda: theory.chi1("tanh", -1.0, 0.1), ValueError, r"weight_variance must be > 0; got -1.0"),
    (lambda: theory.chi1("tanh", 1.0, -0.1), ValueError, r"bias_variance must be >= 0; got -0.1"),
    (lambda: theory.critical("tanh", math.nan), ValueError, r"bias_variance must be finite; got nan"),
    (lambda: theory.critical("tanhh", 0.0), ValueError, r"unknown activation 'tanhh'\. Did you mean 'tanh'\?"),
    (lambda: theory.chi1(lambda x: x - x.mean(), 1.0, 0.0), TypeError, r"is not elementwise"),
    (lambda: theory.chi1("tanh", "1.0", 0.0), TypeError, r"weight_variance must be a real number"),
    (lambda: theory.predict("tanh", 1.0, 0.0, 1.0, 0.5, 0), ValueError, r"depth must be >= 1; got 0"),
    (lambda: theory.predict("tanh", 1.0, 0.0, 1.0, 1.5, 3), ValueError, r"c0 must be in \[-1.0, 1.0\]; got 1.5"),
    (lambda: theory.predict("tanh", 1.0, 0.0, -1.0, 0.5, 3), ValueError, r"q0 must be >= 0; got -1.0"),
    (lambda: theory.q_map("tanh", 1.0, 0.0, -2.0), ValueError, r"q must be >= 0; got -2.0"),
    (lambda: theory.phase("tanh", 1.0, 0.0, tol=-1.0), ValueError, r"tol must be >= 0"),
    (lambda: theory.NetSpec("tanh", 1.0, 0.0, depth=0), ValueError, r"depth must be >= 1; got 0"),
    (lambda: theory.NetSpec("tanh", 1.0, 0.0, depth=2, width=0), ValueError, r"width must be >= 1; got 0"),
    (lambda: theory.forward(("tanh", 1.0)), TypeError, r"spec must be a NetSpec"),
])
def test_bad_input_is_rejected_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_callable_jax_cannot_differentiate_is_named_when_phi_prime_is_needed():
    @jax.custom_jvp
    def tanh_callback(x):  # a JVP rule that raises, as jax.pure_callback's does (deterministically here)
        return jnp.tanh(x)

    @tanh_callback.defjvp
    def _jvp(primals, tangents):
        raise NotImplementedError("tanh_callback has no derivative rule")

    tanh_callback.__name__ = "tanh_callback"
    assert theory.q_map(tanh_callback, 1.0, 0.0, 1.0) == pytest.approx(theory.q_map("tanh", 1.0, 0.0, 1.0), rel=1e-13)
    with pytest.raises(TypeError, match=r"chi1 needs phi' = jax.grad\(activation\); activation 'tanh_callback'"):
        theory.chi1(tanh_callback, 1.0, 0.1)
