"""Fixed-scale random entries: normal, uniform, random_uniform, truncated normals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import jaxinit
from jaxinit.initializers._random import (
    random_bits,
    raw_from_bits,
    truncated_moments,
    truncated_normal_from_bits,
)

from catalog_cases import CASES
from helpers import Z, mean_tolerance, variance_tolerance


@pytest.mark.parametrize("a, b", [(-2.0, 2.0), (-1.0, 3.0), (0.5, 4.0), (-np.inf, 1.0), (2.0, np.inf)])
def test_truncated_moments_match_scipy(a, b):
    mean, var = truncated_moments(a, b)
    ref = st.truncnorm(a, b)
    assert mean == pytest.approx(ref.mean(), rel=1e-9, abs=1e-12)
    assert var == pytest.approx(ref.var(), rel=1e-9)


@pytest.mark.parametrize(
    "init, ref",
    [
        (jaxinit.normal(0.3), st.norm(0, 0.3)),
        (jaxinit.normal(0.3, mean_value=1.0), st.norm(1.0, 0.3)),
        (jaxinit.uniform(0.5), st.uniform(0, 0.5)),
        (jaxinit.random_uniform(-0.2, 0.6), st.uniform(-0.2, 0.8)),
        (jaxinit.truncated_normal(0.1, lower=-1.0, upper=2.5), st.truncnorm(-1.0, 2.5, scale=0.1)),
        # PyTorch meaning: absolute bounds [a, b] around mean 0.1 with std 0.02.
        (jaxinit.trunc_normal(mean=0.1, std=0.02, a=0.08, b=0.15),
         st.truncnorm((0.08 - 0.1) / 0.02, (0.15 - 0.1) / 0.02, loc=0.1, scale=0.02)),
        # A one-sided tail: no mass piled at the bound (a clipped normal would put 2.3% there).
        (jaxinit.trunc_normal(std=1.0, a=2.0, b=np.inf), st.truncnorm(2.0, np.inf)),
    ],
    ids=["normal", "normal-mean", "uniform", "random_uniform", "truncated", "trunc_normal", "tail"],
)
def test_entries_follow_the_exact_distribution(init, ref, key):
    shape = (400, 250)
    w = np.asarray(init(key, shape, jnp.float32), np.float64).ravel()
    assert st.kstest(w, ref.cdf).pvalue > 1e-6
    assert abs(w.mean() - ref.mean()) <= mean_tolerance(w) + 1e-7
    assert abs(w.var() - ref.var()) <= variance_tolerance(w) + 1e-9
    assert init.mean(shape) == pytest.approx(ref.mean(), rel=1e-9, abs=1e-12)
    assert init.variance(shape) == pytest.approx(ref.var(), rel=1e-9)


def test_truncated_normal_has_no_mass_at_the_bounds(key):
    n = 100_000
    w = np.asarray(jaxinit.trunc_normal(std=1.0, a=-0.5, b=0.5)(key, (n,), jnp.float32))
    assert w.min() > -0.5 and w.max() < 0.5
    # Mass within 1e-3 of a bound: the law's (2 x density at the bound x 1e-3 = 0.18%) within Z binomial
    # standard errors (0.08%); a clipped normal piles 31% there, and a pile of even 0.1% of the draws fails.
    ref = st.truncnorm(-0.5, 0.5)
    p = 2 * (ref.cdf(-0.5 + 1e-3) - ref.cdf(-0.5))
    near = np.mean(np.abs(np.abs(w) - 0.5) < 1e-3)
    assert abs(near - p) <= Z * np.sqrt(p * (1 - p) / n), (near, p)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: jaxinit.normal(-1.0), r"stddev must be >= 0; got -1.0"),
        (lambda: jaxinit.uniform(float("nan")), r"scale must be finite; got nan"),
        (lambda: jaxinit.random_uniform(1.0, 0.0), r"maxval must be >= minval; got minval=1.0, maxval=0.0"),
        (lambda: jaxinit.truncated_normal(0.0), r"stddev must be > 0; got 0.0"),
        (lambda: jaxinit.truncated_normal(1.0, lower=2.0, upper=1.0), r"needs lower < upper; got lower=2.0, upper=1.0"),
        (lambda: jaxinit.truncated_normal(1.0, bounds="sigma"), r"bounds must be one of \['absolute', 'stddev'\]; got 'sigma'"),
        (lambda: jaxinit.trunc_normal(std=1.0, a=60.0, b=70.0), r"hold no probability mass"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


# -- draws as maps of shared random bits ---------------------------------------------------------
@pytest.mark.parametrize("distribution, call", [
    ("normal", lambda k, s: jax.random.normal(k, s)),
    ("uniform", lambda k, s: jax.random.uniform(k, s, jnp.float32, -1.0, 1.0)),
    ("truncated_normal", lambda k, s: jax.random.truncated_normal(k, -2.0, 2.0, s)),
])
@pytest.mark.parametrize("shape", [(1,), (7, 5), (64, 96), (2, 3, 4, 5)])
def test_maps_of_random_bits_are_the_jax_random_numbers(distribution, call, shape, key):
    bits = random_bits(key, shape, np.dtype("float32"))
    want = np.asarray(call(key, shape))
    np.testing.assert_array_equal(np.asarray(raw_from_bits(distribution, bits, np.dtype("float32"))), want)
    got_jit = jax.jit(lambda k: raw_from_bits(distribution, random_bits(k, shape, np.dtype("float32")),
                                              np.dtype("float32")))(key)
    np.testing.assert_array_equal(np.asarray(got_jit), np.asarray(jax.jit(lambda k: call(k, shape))(key)))


@pytest.mark.parametrize("lower, upper", [(-1.0, 3.0), (0.5, 4.0), (-np.inf, 1.0), (2.0, np.inf)])
def test_truncated_map_matches_jax_for_any_bounds(lower, upper, key):
    bits = random_bits(key, (300,), np.dtype("float32"))
    np.testing.assert_array_equal(np.asarray(truncated_normal_from_bits(bits, np.float32, lower, upper)),
                                  np.asarray(jax.random.truncated_normal(key, lower, upper, (300,))))


def _bits_cases():
    for spec, shape, conv in CASES:
        init = jaxinit.get(spec)
        for s in (shape, conv):
            if s is not None and init.bits_shape(s) is not None:
                yield pytest.param(init, s, id=f"{init!r}-{s}")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("init, shape", list(_bits_cases()))
def test_from_bits_is_the_initializers_own_draw(init, shape, dtype, key):
    # Compiled, as the initializer's own eager call is (issue 16): op by op, XLA may round a fused
    # multiply-add differently in the last bit.
    bits = random_bits(key, init.bits_shape(shape, dtype), np.dtype("float32"))
    from_bits = jax.jit(init.from_bits, static_argnums=(1, 2))
    np.testing.assert_array_equal(np.asarray(from_bits(bits, shape, dtype), np.float32),
                                  np.asarray(init(key, shape, dtype), np.float32))


def test_bits_shape_names_which_draws_can_share_bits():
    assert jaxinit.he_normal().bits_shape((8, 6)) == (8, 6)
    assert jaxinit.orthogonal().bits_shape((8, 6)) == (8, 6)  # the Gaussian JAX factors: (max, min)
    assert jaxinit.orthogonal().bits_shape((6, 8)) == (8, 6)
    assert jaxinit.orthogonal().bits_shape((3, 3, 4, 8)) == (36, 8)
    assert jaxinit.he_normal().bits_shape((8, 6), "complex64") is None  # complex draws split the key
    assert jaxinit.he_normal().bits_shape((0, 6)) is None
    assert jaxinit.identity().bits_shape((4, 4)) is None and jaxinit.sparse(0.5).bits_shape((4, 4)) is None
