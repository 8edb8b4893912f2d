"""Probes against direct computation, and against theory where theory is exact.

Statistical checks use fixed keys and tolerances derived from the sample size (z <= 6). The ReLU
law used throughout (Gaussian weights of variance s/fan_in, zero biases, one input with second
moment q0): E[q_l] = s q0 (s/2)^(l-1) at any width N (any sign-symmetric weight law), and
Var[q_l]/E[q_l]^2 = (1 + 2/N)(1 + 5/N)^(l-1) - 1: given the previous layer, h^l is Gaussian with
variance v_l, so q_l = v_l chi2_N/N (relative variance 2/N), and v_{l+1} = (s/N) sum_j relu(h_j)^2
whose relative variance is Var[relu(z)^2]/E[relu(z)^2]^2/N = (5/4)/(1/4)/N = 5/N.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinit
from jaxinit import nets, probes

Z = 6.0
GAUSS_UNIT = jaxinit.variance_scaling(1.0, "fan_in", "normal")


def relu(v):
    return np.maximum(v, 0.0)


def _direct_forward(params, x, phi, dphi, paired):
    """Per-layer forward statistics in float64 numpy, by the documented math (unrolled)."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), nets.unstack(params))
    layers, xs = [p["input"], *p["hidden"]], np.asarray(x, np.float64)
    out = {name: [] for name in probes.FORWARD_FIELDS}
    for layer in layers:
        h = xs @ layer["kernel"] + layer["bias"]
        xs = phi(h)
        slope = np.abs(dphi(h)).reshape(-1, h.shape[-1])
        out["q"].append(np.mean(h**2))
        out["act_mean"].append(np.mean(xs))
        out["act_var"].append(np.var(xs))
        out["dead_fraction"].append(np.mean(np.all(slope < probes.DEAD_THRESHOLD, axis=0)))
        out["saturated_fraction"].append(np.mean(slope < probes.SATURATION_THRESHOLD))
        if paired:
            a, b = h[0], h[1]
            out["correlation"].append(np.mean(np.sum(a * b, -1) / np.sqrt(np.sum(a * a, -1) * np.sum(b * b, -1))))
        else:
            out["correlation"].append(np.nan)
    return {k: np.array(v) for k, v in out.items()}


def _direct_grad_norms(params, x, phi, loss, key):
    """``jax.grad`` of the whole loss (unrolled network), w.r.t. the kernels and an additive
    perturbation of each pre-activation."""
    flat = x.reshape(-1, x.shape[-1])
    p = nets.unstack(params)
    layers = [p["input"], *p["hidden"]]
    out_dim = p["readout"]["kernel"].shape[-1]
    targets = probes.random_targets(jax.random.fold_in(key, 0), flat.shape[0], out_dim, loss)

    def total(layers, eps):
        h = flat
        for layer, e in zip(layers, eps, strict=True):
            h = phi(jnp.matmul(h, layer["kernel"], precision="highest") + layer["bias"] + e)
        y = jnp.matmul(h, p["readout"]["kernel"], precision="highest") + p["readout"]["bias"]
        return probes.loss_value(y, targets, loss)

    eps = [jnp.zeros((flat.shape[0], layer["kernel"].shape[1])) for layer in layers]
    g_layers, g_eps = jax.jit(jax.grad(total, argnums=(0, 1)))(layers, eps)
    w = np.array([np.linalg.norm(np.asarray(g["kernel"], np.float64)) for g in g_layers])
    h = np.array([np.linalg.norm(np.asarray(g, np.float64)) for g in g_eps])
    return w, h


def _direct_jacobians(params, x, phi):
    """dh^l/dx for every input and layer with jax.jacfwd: a list of (n, width, in_dim)."""
    p = nets.unstack(params)
    layers = [p["input"], *p["hidden"]]

    def hs(v):
        out = []
        for layer in layers:
            h = jnp.matmul(v, layer["kernel"], precision="highest") + layer["bias"]
            out.append(h)
            v = phi(h)
        return out

    flat = x.reshape(-1, x.shape[-1])
    return [np.asarray(j, np.float64) for j in jax.jit(jax.vmap(jax.jacfwd(hs)))(flat)]


# -- one small network, every probe against direct computation ---------------------------------------
@pytest.fixture(scope="module")
def small():
    """tanh, stacked, paired inputs, weights large enough that some units saturate."""
    key = jax.random.key(7)
    params = nets.init(key, 12, 12, 4, 3, jaxinit.variance_scaling(4.0, "fan_in", "normal"), jaxinit.normal(0.3))
    x = probes.paired_inputs(jax.random.key(8), 3, 12, 0.6, q0=1.5)
    trace = probes.trace(params, x, "tanh", key=jax.random.key(9), num_projections=16, spectrum=True)
    return params, x, trace


def _tanh_slope(h):
    return 1.0 - np.tanh(h) ** 2


def test_forward_stats_match_direct_computation(small):
    params, x, t = small
    direct = _direct_forward(params, x, np.tanh, _tanh_slope, paired=True)
    for name in probes.FORWARD_FIELDS:
        np.testing.assert_allclose(getattr(t, name), direct[name], rtol=2e-5, atol=1e-6, err_msg=name)
    assert t.q.shape == (4,) and int(t.first_nonfinite_layer) == -1
    assert float(t.saturated_fraction.max()) > 0  # the check is not vacuous


def test_gradient_norms_match_jax_grad_of_the_loss(small):
    params, x, t = small
    w, h = _direct_grad_norms(params, x, jnp.tanh, "mse", jax.random.key(9))
    np.testing.assert_allclose(t.grad_w_norm, w, rtol=1e-5)
    np.testing.assert_allclose(t.grad_h_norm, h, rtol=1e-5)


def test_jacobian_msv_matches_jacfwd_within_projection_error(small):
    params, x, t = small
    jacs = _direct_jacobians(params, x, jnp.tanh)
    num_inputs, projections = 6, 16
    for layer, j in enumerate(jacs):
        width = j.shape[1]
        exact = np.mean(np.sum(j**2, axis=(1, 2))) / width
        # v^T A v with v ~ N(0, I) has variance 2 tr(A^2); here A = J^T J per input
        jtj = np.einsum("nij,nik->njk", j, j)
        var = np.sum(2 * np.sum(jtj**2, axis=(1, 2))) / (projections * num_inputs**2 * width**2)
        assert abs(float(t.jacobian_msv[layer]) - exact) <= Z * math.sqrt(var), (layer, exact)


def test_spectrum_is_the_svd_of_jacfwd_at_the_first_input(small):
    params, x, t = small
    jacs = _direct_jacobians(params, x, jnp.tanh)
    assert t.spectrum.shape == (12, 4)
    for layer, j in enumerate(jacs):
        sv = np.linalg.svd(j[0], compute_uv=False)
        np.testing.assert_allclose(t.spectrum[:, layer], sv, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def relu_list():
    """Differing widths (no stacking), ReLU, random biases (some units dead on every input)."""
    key = jax.random.key(11)
    params = nets.init(key, 6, None, None, 4, GAUSS_UNIT, jaxinit.normal(1.0), widths=(20, 16, 12))
    x = jax.random.normal(jax.random.key(12), (5, 6))
    return params, x, key


def _relu_list_trace(params, x, key):
    return probes.trace(params, x, "relu", key=key, loss="cross_entropy", num_projections=2, spectrum=True)


def test_list_layout_relu_cross_entropy_and_dead_units(relu_list):
    params, x, key = relu_list
    t = _relu_list_trace(params, x, key)
    direct = _direct_forward(params, x, relu, lambda h: (h > 0).astype(float), paired=False)
    for name in probes.FORWARD_FIELDS:
        np.testing.assert_allclose(getattr(t, name), direct[name], rtol=2e-5, atol=1e-6, err_msg=name)
    assert np.isnan(t.correlation).all()
    assert float(t.dead_fraction.max()) > 0
    w, h = _direct_grad_norms(params, x, jax.nn.relu, "cross_entropy", key)
    np.testing.assert_allclose(t.grad_w_norm, w, rtol=1e-5)
    np.testing.assert_allclose(t.grad_h_norm, h, rtol=1e-5)
    jacs = _direct_jacobians(params, x, jax.nn.relu)
    assert t.spectrum.shape == (6, 3)
    for layer, j in enumerate(jacs):
        np.testing.assert_allclose(t.spectrum[:, layer], np.linalg.svd(j[0], compute_uv=False), rtol=1e-4,
                                   atol=1e-5)


def test_layer_stats_by_hand():
    h = jnp.array([[[1.0, 2.0, 0.0]], [[2.0, 4.0, -1.0]]])  # one pair, three units
    x, dphi, s = probes.layer_stats(h, jax.nn.relu, paired=True)
    np.testing.assert_allclose(x, jnp.maximum(h, 0))
    np.testing.assert_allclose(dphi, (h > 0).astype(jnp.float32))
    assert float(s["q"]) == pytest.approx((1 + 4 + 0 + 4 + 16 + 1) / 6)
    assert float(s["correlation"]) == pytest.approx(10 / math.sqrt(5 * 21))
    assert float(s["dead_fraction"]) == pytest.approx(1 / 3)  # unit 3: h = 0 and h = -1
    assert float(s["saturated_fraction"]) == pytest.approx(2 / 6)
    assert bool(s["finite"])


def test_paired_inputs_have_exact_moments(key):
    x = probes.paired_inputs(key, 5, 32, -0.3, q0=2.5)
    assert x.shape == (2, 5, 32) and x.dtype == jnp.float32
    np.testing.assert_allclose(jnp.mean(x**2, -1), 2.5, rtol=1e-5)
    np.testing.assert_allclose(jnp.sum(x[0] * x[1], -1) / (32 * 2.5), -0.3, atol=1e-5)
    np.testing.assert_allclose(probes.paired_inputs(key, 2, 1, 1.0)[1], probes.paired_inputs(key, 2, 1, 1.0)[0])


# -- the three faces give the same probe values --------------------------------------------------------
def test_functional_linen_nnx_give_the_same_trace(small):
    params, x, t = small
    via_linen = nets.from_linen_params(nets.to_linen_params(params))
    via_nnx = nets.nnx_to_params(nets.nnx_from_params(params, activation="tanh"))
    for p in (via_linen, via_nnx):
        other = probes.trace(p, x, "tanh", key=jax.random.key(9), num_projections=16, spectrum=True)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), t, other)
    # the modules' outputs on the same inputs are the functional output
    model = nets.MLP(12, depth=4, out_features=3, activation="tanh")
    expected = nets.apply(params, x, "tanh")
    np.testing.assert_allclose(model.apply(nets.to_linen_params(params), x), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(nets.nnx_from_params(params, activation="tanh")(x), expected, rtol=1e-6,
                               atol=1e-7)


# -- ReLU: exact laws ----------------------------------------------------------------------------------
def _relu_law(n, depth):
    """(mean, variance) of q_l for He-Gaussian weights (s = 2), one input with q0 = 1."""
    layers = np.arange(1, depth + 1)
    mean = np.full(depth, 2.0)
    return mean, mean**2 * ((1 + 2 / n) * (1 + 5 / n) ** (layers - 1) - 1)


N_LAW, DEPTH_LAW, SEEDS_LAW = 64, 10, 2000


@pytest.fixture(scope="module")
def gaussian_relu_traces():
    """q and the activations' second moment over SEEDS_LAW networks, for weight variances
    s/fan_in with s = 1, 2, 4 (one compiled program; s enters as a traced multiplier)."""
    x = probes.paired_inputs(jax.random.key(1), 1, N_LAW, 1.0, q0=1.0)[0]  # one input, q0 = 1 exactly
    root = jax.random.key(2026)

    def one(seed, scale):
        p = nets.init(jax.random.fold_in(root, seed), N_LAW, N_LAW, DEPTH_LAW, None, GAUSS_UNIT)
        p = jax.tree.map(lambda a: a * jnp.sqrt(scale), p)  # Var = scale / fan_in (biases are zero)
        t = probes.trace(p, x, "relu", gradients=False, jacobian=False)
        return t.q, t.act_var + t.act_mean**2

    run = jax.jit(jax.vmap(one, in_axes=(0, None)))
    seeds = jnp.arange(SEEDS_LAW)
    return {s: tuple(np.asarray(a, np.float64) for a in run(seeds, s)) for s in (1.0, 2.0, 4.0)}


def test_relu_gaussian_he_mean_and_variance_follow_the_exact_law(gaussian_relu_traces):
    q, _ = gaussian_relu_traces[2.0]
    mean, var = _relu_law(N_LAW, DEPTH_LAW)
    se_mean = np.sqrt(var / SEEDS_LAW)
    np.testing.assert_array_less(np.abs(q.mean(0) - mean), Z * se_mean)
    # sample variance against the law; its standard error from the sample: sqrt((m4 - s^4) / S)
    centered = q - q.mean(0)
    s2 = np.mean(centered**2, 0)
    se_var = np.sqrt((np.mean(centered**4, 0) - s2**2) / SEEDS_LAW)
    np.testing.assert_array_less(np.abs(s2 - var), Z * se_var)


@pytest.mark.parametrize("scale, factor", [(1.0, 0.5), (4.0, 2.0)])
def test_ten_layers_halve_or_double_the_signal(gaussian_relu_traces, scale, factor):
    """Per-layer variance factor s/2 = 0.5 or 2: E[<(x^10)^2>] = q0 (s/2)^10 = 2^-10 or 2^10."""
    _, second_moment = gaussian_relu_traces[scale]
    m = second_moment[:, 9]
    expected = factor**10
    rel_var = (1 + 5 / N_LAW) ** 10 - 1  # <(x^L)^2> = v_{L+1} / s: the ReLU factor, L times
    assert abs(m.mean() / expected - 1) <= Z * math.sqrt(rel_var / SEEDS_LAW)


def test_trace_vmapped_over_seeds_equals_one_seed_at_a_time(gaussian_relu_traces):
    x = probes.paired_inputs(jax.random.key(1), 1, N_LAW, 1.0, q0=1.0)[0]
    p = nets.init(jax.random.fold_in(jax.random.key(2026), 17), N_LAW, N_LAW, DEPTH_LAW, None, GAUSS_UNIT)
    p = jax.tree.map(lambda a: a * jnp.sqrt(2.0), p)
    t = probes.trace(p, x, "relu", gradients=False, jacobian=False)
    np.testing.assert_allclose(t.q, gaussian_relu_traces[2.0][0][17], rtol=1e-6)


@pytest.fixture(scope="module")
def catalog_relu_q():
    """q over 64 seeds, 50 layers, width 128, 16 inputs, for jaxinit's (truncated) he/lecun_normal."""
    x = jax.random.normal(jax.random.key(3), (16, 128))
    x = x / jnp.sqrt(jnp.mean(x**2, -1, keepdims=True))  # q0 = 1 for every input
    root = jax.random.key(4)
    out = {}
    for name in ("he_normal", "lecun_normal"):
        kernel_init = jaxinit.get(name)

        def one(seed, kernel_init=kernel_init):
            p = nets.init(jax.random.fold_in(root, seed), 128, 128, 50, None, kernel_init)
            return probes.trace(p, x, "relu", gradients=False, jacobian=False).q

        out[name] = np.asarray(jax.jit(jax.vmap(one))(jnp.arange(64)), np.float64)
    return out


def _assert_positive(d):
    """mean(d) > Z standard errors (estimated from the seeds)."""
    assert d.mean() > Z * d.std(ddof=1) / math.sqrt(d.shape[0]), (d.mean(), d.std(ddof=1))


def _assert_mean_is(q, expected):
    """|mean over seeds - expected| <= Z standard errors (estimated from the seeds), every layer."""
    se = q.std(0, ddof=1) / math.sqrt(q.shape[0])
    np.testing.assert_array_less(np.abs(q.mean(0) - expected), Z * se)


def test_he_normal_relu_keeps_q_constant_through_50_layers(catalog_relu_q):
    q = catalog_relu_q["he_normal"]
    # q_1 = 2 q0, then the factor sigma_w^2 / 2 = 1 per layer: every layer within Z standard errors
    # of the mean over 64 seeds. A variance 2% off per layer (0.98^49 = 0.37 at layer 50) is at
    # z = -12.6 there, lecun's 1/2 per layer further out.
    _assert_mean_is(q, 2.0)


def test_lecun_normal_relu_halves_q_every_layer(catalog_relu_q):
    q = catalog_relu_q["lecun_normal"]
    expected = 0.5 ** np.arange(50)  # q_1 = q0 = 1, then the factor 1/2 per layer
    _assert_mean_is(q / expected, 1.0)


# -- dynamical isometry in deep linear networks -------------------------------------------------------
LIN_WIDTH, LIN_DEPTH, LIN_SEEDS = 32, 12, 32


@pytest.fixture(scope="module")
def linear_spectra():
    """Jacobian spectra of deep linear networks, width 32, 12 layers, 32 seeds."""
    x = jax.random.normal(jax.random.key(5), (4, LIN_WIDTH))
    root = jax.random.key(6)
    inits = {"gaussian": GAUSS_UNIT, "orthogonal": jaxinit.orthogonal()}
    out = {}
    for name, kernel_init in inits.items():

        def one(seed, kernel_init=kernel_init):
            p = nets.init(jax.random.fold_in(root, seed), LIN_WIDTH, LIN_WIDTH, LIN_DEPTH, None, kernel_init)
            t = probes.trace(p, x, "linear", gradients=False, num_projections=4, spectrum=True)
            return t.spectrum, t.jacobian_msv

        if name == "orthogonal":
            # one seed at a time: jit(vmap over seeds) of the orthogonal draw can deadlock XLA:CPU
            # (reported to the lead); the seeds' results are the same either way
            run = jax.jit(one)
            per_seed = [run(jnp.asarray(s)) for s in range(LIN_SEEDS)]
            result = jax.tree.map(lambda *a: jnp.stack(a), *per_seed)
        else:
            result = jax.jit(jax.vmap(one))(jnp.arange(LIN_SEEDS))
        out[name] = tuple(np.asarray(a, np.float64) for a in result)
    return out


def test_orthogonal_linear_network_is_exactly_isometric(linear_spectra):
    spectrum, msv = linear_spectra["orthogonal"]
    np.testing.assert_allclose(spectrum, 1.0, atol=2e-5)
    # the projection estimate of msv = 1: ||J v||^2 = ||v||^2, relative variance 2 / (N P n)
    se = math.sqrt(2 / (LIN_WIDTH * 4 * 4))
    np.testing.assert_array_less(np.abs(msv - 1.0), Z * se)


def test_gaussian_linear_network_has_msv_one_and_a_spread_growing_with_depth(linear_spectra):
    spectrum, _ = linear_spectra["gaussian"]  # (seeds, k, depth)
    sq = spectrum**2
    msv = sq.mean(1)  # (seeds, depth): exact tr(J J^T) / N per seed
    _assert_mean_is(msv, 1.0)
    # Spread: the standard deviation of log sigma^2 over the largest half of the singular values
    # (the smallest fall below float32 resolution after a few layers). It grows with depth, like
    # the spread of the Lyapunov exponents times l, and barely varies between seeds; the variance
    # of sigma^2 (= l at infinite width) grows too but is dominated by the top value's tail.
    top = np.log(sq[:, : LIN_WIDTH // 2, :])
    spread = top.std(1)  # (seeds, depth)
    for shallow, deep in ((0, 3), (3, LIN_DEPTH - 1)):
        _assert_positive(spread[:, deep] - spread[:, shallow])


# -- overflow ------------------------------------------------------------------------------------------
def test_overflow_is_recorded_never_raised(relu_list):
    params, x, key = relu_list
    # weights 1e15 times larger: |h| grows ~1e15 per layer and leaves float32 (3.4e38) at the third
    huge = dict(params)
    huge["input"] = {**huge["input"], "kernel": huge["input"]["kernel"] * 1e15}
    huge["hidden"] = [{**layer, "kernel": layer["kernel"] * 1e15} for layer in huge["hidden"]]
    t = _relu_list_trace(huge, x, key)  # the same compiled program as the finite network's
    first = int(t.first_nonfinite_layer)
    assert first == 2
    # the marker is where the pre-activations first stop being finite
    p = huge
    h, finite = x, []
    for layer in [p["input"], *p["hidden"]]:
        h = jnp.matmul(h, layer["kernel"], precision="highest") + layer["bias"]
        finite.append(bool(jnp.all(jnp.isfinite(h))))
        h = jax.nn.relu(h)
    assert finite.index(False) == first
    for name in probes.PER_LAYER_FIELDS:
        values = np.asarray(getattr(t, name))
        assert np.isnan(values[first:]).all(), name
    assert not np.isnan(t.q[:first]).any()
    assert np.isinf(t.q[1])  # h^2 ~ 1e30 is finite, its square is not: recorded as it is
    assert np.isnan(t.spectrum[:, first:]).all()


# -- bad input -----------------------------------------------------------------------------------------
def test_bad_input_is_rejected_with_the_argument_named(small):
    params, x, _ = small
    with pytest.raises(ValueError, match=r"paired inputs must have shape \(2, batch, in_dim\).*x.shape=\(3, 3, 12\)"):
        probes.trace(params, jnp.ones((3, 3, 12)), "tanh")
    with pytest.raises(ValueError, match=r"paired inputs must have shape .*x.shape=\(6, 12\)"):
        probes.trace(params, jnp.ones((6, 12)), "tanh", pairs=True)
    with pytest.raises(ValueError, match=r"unpaired inputs must have shape \(batch, in_dim\).*Pass pairs=True"):
        probes.trace(params, x, "tanh", pairs=False)
    with pytest.raises(ValueError, match=r"in_dim=12 on its last axis; got 5 features"):
        probes.trace(params, jnp.ones((4, 5)), "tanh")
    with pytest.raises(ValueError, match=r"unknown activation 'tahn'\. Did you mean 'tanh'\?"):
        probes.trace(params, x, "tahn")
    with pytest.raises(ValueError, match=r"loss must be one of \['cross_entropy', 'mse', 'xent'\]; got 'mae'"):
        probes.trace(params, x, "tanh", loss="mae")
    with pytest.raises(ValueError, match=r"num_projections must be >= 1; got 0"):
        probes.trace(params, x, "tanh", num_projections=0)
    with pytest.raises(ValueError, match=r"saturation_threshold must be > 0; got -0.1"):
        probes.trace(params, x, "tanh", saturation_threshold=-0.1)
    wide = nets.init(jax.random.key(0), 4, 1100, 1, None, GAUSS_UNIT)
    with pytest.raises(ValueError, match=r"spectrum=True needs in_dim and every width <= 1024.*1100"):
        probes.trace(wide, jnp.ones((2, 4)), "relu", spectrum=True)
    with pytest.raises(ValueError, match=r"correlation must be in \[-1.0, 1.0\]; got 1.5"):
        probes.paired_inputs(jax.random.key(0), 2, 8, 1.5)
    with pytest.raises(ValueError, match=r"dim must be >= 2 for a correlation strictly inside"):
        probes.paired_inputs(jax.random.key(0), 2, 1, 0.5)
    with pytest.raises(ValueError, match=r"q0 must be > 0; got 0.0"):
        probes.paired_inputs(jax.random.key(0), 2, 8, 0.5, q0=0.0)


# -- heavier: the ReLU law at width 512 ---------------------------------------------------------------
@pytest.mark.slow
def test_relu_law_and_correlation_at_width_512():
    n, depth, seeds = 512, 8, 48
    x = probes.paired_inputs(jax.random.key(21), 1, n, 0.5)

    def one(seed):
        p = nets.init(jax.random.fold_in(jax.random.key(22), seed), n, n, depth, None,
                      jaxinit.variance_scaling(2.0, "fan_in", "normal"))
        t = probes.trace(p, x, "relu", gradients=False, jacobian=False)
        return t.q, t.correlation

    q, c = (np.asarray(a, np.float64) for a in jax.jit(jax.vmap(one))(jnp.arange(seeds)))
    # the input pair: q is the mean of two inputs' q, which share the weights; bound its variance
    # by the single-input law (averaging two correlated values cannot increase the variance)
    mean, var = _relu_law(n, depth)
    np.testing.assert_array_less(np.abs(q.mean(0) - mean), Z * np.sqrt(var / seeds))
    # the correlation of a ReLU network rises towards 1 with depth (Cho & Saul arc-cosine map)
    assert np.all(np.diff(c.mean(0)) > 0)


# -- dtypes (issue 11): underflow against the network's own dtype ----------------------------------
def test_trace_underflow_is_measured_against_the_network_dtype():
    # Linear, N(0, 0.01^2) weights at width 8 in float16: q ~ 8e-4 at layer 0 and ~6e-7 at layer 1,
    # below float16's smallest normal (6.1e-5) though far above float32's (1.2e-38).
    p = nets.init(jax.random.key(3), 8, 8, 4, None, jaxinit.normal(0.01), dtype=jnp.float16)
    x = jax.random.normal(jax.random.key(4), (16, 8), jnp.float16)
    t = probes.trace(p, x, "linear", gradients=True, jacobian=False)
    assert int(t.first_underflow_layer) == 1 and t.q.dtype == jnp.float32
    assert float(t.q[0]) > np.finfo(np.float16).tiny > float(t.q[1])
    p32 = jax.tree.map(lambda a: a.astype(jnp.float32), p)
    assert int(probes.trace(p32, x.astype(jnp.float32), "linear", jacobian=False).first_underflow_layer) == -1
