"""Variance scaling and its specializations: JAX parity, exact distributions, errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import jaxinit
from jaxinit.initializers._random import TRUNCATED_STD

from conftest import run_python
from helpers import variance_tolerance

JAX = jax.nn.initializers
SHAPES = [(64, 32), (32, 64), (3, 3, 16, 32), (5, 8, 12), (2, 3, 3, 4, 6)]
FACTORIES = ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", FACTORIES)
def test_same_array_as_jax_namesake(name, shape, key):
    ours = getattr(jaxinit, name)()(key, shape, jnp.float32)
    theirs = getattr(JAX, name)()(key, shape, jnp.float32)
    # Same sampler and key; only the scale's last float32 bit may differ (JAX rounds twice).
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=3e-7, atol=0)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_matches_jax_with_axes(mode, distribution, key):
    shape, axes = (4, 6, 5, 7), dict(in_axis=(0, 2), out_axis=-1, batch_axis=1)
    ours = jaxinit.variance_scaling(0.7, mode, distribution, **axes)(key, shape, jnp.float32)
    theirs = JAX.variance_scaling(0.7, mode, distribution, **axes)(key, shape, jnp.float32)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=3e-7, atol=0)


@pytest.mark.parametrize("name, args", [("normal", (0.03,)), ("uniform", (0.2,)),
                                        ("truncated_normal", (0.05,)), ("constant", (0.4,))])
def test_fixed_scale_entries_match_jax(name, args, key):
    # jaxinit's eager call runs its compiled draw (issue 16), so it equals JAX's *jitted* draw bit
    # for bit; JAX's own eager and jitted normal(0.03) can differ in the last bit.
    ours = getattr(jaxinit, name)(*args)(key, (33, 17), jnp.float32)
    theirs = jax.jit(lambda k: getattr(JAX, name)(*args)(k, (33, 17), jnp.float32))(key)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_zeros_and_ones_are_initializers_themselves(key):
    np.testing.assert_array_equal(jaxinit.zeros(key, (2, 3)), JAX.zeros(key, (2, 3)))
    np.testing.assert_array_equal(jaxinit.ones(key, (2, 3)), JAX.ones(key, (2, 3)))


def test_truncation_constant_is_derived():
    # JAX hard-codes .87962566103423978; ours is computed from the truncated-normal moments.
    assert TRUNCATED_STD == pytest.approx(0.87962566103423978, abs=1e-15)


FORMULAS = {
    # name: (mode, distribution, scale): Var = scale / n(mode)
    "glorot_uniform": ("fan_avg", "uniform", 1.0),
    "glorot_normal": ("fan_avg", "truncated_normal", 1.0),
    "he_uniform": ("fan_in", "uniform", 2.0),
    "he_normal": ("fan_in", "truncated_normal", 2.0),
    "lecun_uniform": ("fan_in", "uniform", 1.0),
    "lecun_normal": ("fan_in", "truncated_normal", 1.0),
}


@pytest.mark.parametrize("name", FACTORIES)
def test_specializations_are_one_line_variance_scaling(name):
    mode, distribution, scale = FORMULAS[name]
    assert getattr(jaxinit, name)() == jaxinit.variance_scaling(scale, mode, distribution)


def test_aliases_are_the_same_objects():
    assert jaxinit.xavier_uniform is jaxinit.glorot_uniform
    assert jaxinit.xavier_normal is jaxinit.glorot_normal
    assert jaxinit.kaiming_uniform is jaxinit.he_uniform
    assert jaxinit.kaiming_normal is jaxinit.he_normal


def _exact_cdf(init, shape):
    std = math.sqrt(init.variance(shape))
    if init.distribution == "normal":
        return st.norm(0, std).cdf
    if init.distribution == "uniform":
        a = math.sqrt(3) * std
        return st.uniform(-a, 2 * a).cdf
    return st.truncnorm(-2, 2, scale=std / TRUNCATED_STD).cdf


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_exact_distribution_by_ks(distribution, dtype, key):
    init = jaxinit.variance_scaling(2.0, "fan_in", distribution)
    shape = (512, 256)
    w = np.asarray(init(key, shape, dtype).astype(jnp.float32), np.float64).ravel()
    # Rounding to a 8/11-bit mantissa moves the empirical CDF by at most the dtype's relative
    # step; KS is applied to the float32 draw, mean/variance tests to the rounded one.
    assert abs(w.var() - init.variance(shape)) <= variance_tolerance(w) + 2 * float(jnp.finfo(dtype).eps) * init.variance(shape)
    if dtype == jnp.float32:
        assert st.kstest(w, _exact_cdf(init, shape)).pvalue > 1e-6


def test_float64_under_x64_in_subprocess():
    out = run_python(
        """
        import jax, jax.numpy as jnp, numpy as np, scipy.stats as st, jaxinit
        init = jaxinit.he_normal()
        w = init(jax.random.key(3), (512, 256))   # dtype=None -> float64 under x64
        assert w.dtype == jnp.float64, w.dtype
        std = (2 / 512) ** 0.5 / 0.87962566103423978
        print(st.kstest(np.asarray(w).ravel(), st.truncnorm(-2, 2, scale=std).cdf).pvalue)
        """,
        x64=True,
    )
    assert float(out) > 1e-6


def test_he_nonlinearity_and_negative_slope_follow_pytorch():
    assert jaxinit.he_normal(nonlinearity="leaky_relu", negative_slope=0.2).scale == pytest.approx(2 / 1.04)
    assert jaxinit.he_uniform(nonlinearity="tanh").scale == pytest.approx((5 / 3) ** 2)
    assert jaxinit.he_normal(nonlinearity="linear").scale == 1.0
    assert jaxinit.he_normal(mode="fan_out").variance((100, 50)) == pytest.approx(2 / 50)
    assert jaxinit.he_normal(distribution="normal").distribution == "normal"


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: jaxinit.variance_scaling(1.0, "fan_inn", "normal"),
         r"mode must be one of \['fan_avg', 'fan_geo_avg', 'fan_in', 'fan_out'\]; got 'fan_inn'.*Did you mean 'fan_in'\?"),
        (lambda: jaxinit.variance_scaling(1.0, "fan_in", "gaussian"), r"distribution must be one of .*got 'gaussian'"),
        (lambda: jaxinit.variance_scaling(-1.0), r"scale must be > 0; got -1.0"),
        (lambda: jaxinit.variance_scaling(float("nan")), r"scale must be finite; got nan"),
        (lambda: jaxinit.variance_scaling(float("inf")), r"scale must be finite; got inf"),
        (lambda: jaxinit.variance_scaling("2"), r"scale must be a real number; got '2'"),
        (lambda: jaxinit.he_normal(nonlinearity="relux"), r"nonlinearity must be one of .*Did you mean 'relu'"),
        (lambda: jaxinit.variance_scaling(in_axis=1.5), r"in_axis must be an int or a sequence of ints; got 1.5"),
    ],
)
def test_bad_arguments_fail_at_construction(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


@pytest.mark.parametrize(
    "shape, kwargs, match",
    [
        ((5,), {}, r"at least 2 dims; got shape=\(5,\)"),
        ((), {}, r"at least 2 dims; got shape=\(\)"),
        ((4, 5), {"in_axis": 2}, r"in_axis=2 is out of range for shape=\(4, 5\)"),
        ((4, 5, 6), {"in_axis": 0, "out_axis": 0}, r"in_axis and out_axis overlap on axis \[0\]"),
        ((4, 5, 6), {"in_axis": (0, 0)}, r"in_axis=\(0, 0\) repeats an axis"),
    ],
)
def test_bad_shapes_fail_at_call(shape, kwargs, match, key):
    init = jaxinit.he_normal(**kwargs)
    with pytest.raises(ValueError, match=match):
        init(key, shape, jnp.float32)


def test_zero_fan_is_reported_by_variance():
    with pytest.raises(ValueError, match=r"shape=\(0, 4\) has a zero fan \(fan_in=0, fan_out=4\)"):
        jaxinit.he_normal().variance((0, 4))


def test_negative_shape_entry(key):
    with pytest.raises(ValueError, match=r"shape entries must be >= 0; got shape=\(-1, 4\)"):
        jaxinit.he_normal()(key, (-1, 4))
