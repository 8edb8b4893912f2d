"""Deterministic entries: constants, saved arrays, prior-logit biases."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinit


def test_relu_bias_is_a_small_positive_constant(key):
    b = jaxinit.relu_bias()(key, (5,))
    np.testing.assert_array_equal(b, np.full(5, 0.01, np.float32))
    with pytest.raises(ValueError, match=r"value must be > 0 for relu_bias; got -0.1"):
        jaxinit.relu_bias(-0.1)


def test_prior_logit_scalar_makes_sigmoid_equal_p(key):
    b = jaxinit.prior_logit(0.01)(key, (4,))
    np.testing.assert_allclose(jax.nn.sigmoid(b), 0.01, rtol=1e-6)


def test_prior_logit_vector_makes_softmax_equal_the_prior(key):
    prior = (0.5, 0.3, 0.2)
    b = jaxinit.prior_logit(prior)(key, (3,))
    np.testing.assert_allclose(jax.nn.softmax(b), prior, rtol=1e-6)
    # Unnormalized frequencies are normalized first.
    b2 = jaxinit.prior_logit((5, 3, 2))
    np.testing.assert_allclose(jax.nn.softmax(b2(key, (3,))), prior, rtol=1e-6)
    assert jaxinit.get(b2.to_dict()) == b2


@pytest.mark.parametrize("p", [0.0, 1.0, -0.5, 2.0, float("nan")])
def test_prior_logit_rejects_p_outside_open_unit_interval(p):
    with pytest.raises(ValueError, match=r"p must be (in \(0.0, 1.0\)|in \(0, 1\)|finite); got"):
        jaxinit.prior_logit(p)


def test_prior_logit_vector_shape_must_match(key):
    with pytest.raises(ValueError, match=r"prior_logit with 3 class priors fills shape \(3,\); got shape=\(4,\)"):
        jaxinit.prior_logit((0.2, 0.3, 0.5))(key, (4,))


def test_from_array_returns_the_array_and_checks_shape_and_dtype(key):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    init = jaxinit.from_array(a)
    np.testing.assert_array_equal(init(key, (2, 3)), a)
    assert init(key, (2, 3), jnp.bfloat16).dtype == jnp.bfloat16
    assert init == jaxinit.from_array(a.copy()) and hash(init) == hash(jaxinit.from_array(a.copy()))
    assert jaxinit.get(init.to_dict()) == init
    with pytest.raises(ValueError, match=r"from_array holds an array of shape \(2, 3\); got shape=\(3, 2\)"):
        init(key, (3, 2))
    with pytest.raises(ValueError, match=r"from_array holds an array of shape \(2, 3\); got shape=\(0, 3\)"):
        init(key, (0, 3))
    with pytest.raises(TypeError, match=r"strict_dtype=True\) holds dtype=float32; got dtype=float16"):
        jaxinit.from_array(a, strict_dtype=True)(key, (2, 3), jnp.float16)
    with pytest.raises(TypeError, match=r"from_array needs a floating-point array; got dtype=int64"):
        jaxinit.from_array(np.arange(3))
    with pytest.raises(TypeError, match=r"holds complex dtype=complex64; got real dtype=float32"):
        jaxinit.from_array(np.ones(2, np.complex64))(key, (2,), jnp.float32)


def test_from_array_works_as_flax_kernel_init(key):
    import flax.linen as nn

    w = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    params = nn.Dense(3, kernel_init=jaxinit.from_array(w)).init(key, jnp.ones((1, 4)))
    np.testing.assert_array_equal(params["params"]["kernel"], w)


def test_constant_reports_mean_and_zero_variance():
    init = jaxinit.constant(0.25)
    assert init.mean((3, 3)) == 0.25 and init.variance((3, 3)) == 0.0
    assert jaxinit.prior_logit(0.5).mean((2,)) == 0.0
    assert jaxinit.prior_logit(0.1).mean((2,)) == pytest.approx(math.log(0.1 / 0.9))


@pytest.mark.parametrize("array", [
    np.array([[1.0, -2.5], [3.25, 1e-30]], np.float64),
    np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    np.array([1.0, np.nan, -np.inf, np.inf, -0.0], np.float32),
    np.array([[1 + 2j, -0.5j]], np.complex64),
    np.array(0.1, np.float64),
    np.zeros((2, 0), np.float16),
])
@pytest.mark.parametrize("strict", [False, True])
def test_from_array_repr_reads_back_as_code(array, strict):
    init = jaxinit.from_array(array, strict_dtype=strict)
    text = repr(init)
    assert "<" not in text
    again = eval(text, vars(jaxinit))
    assert again == init and hash(again) == hash(init)
    assert again.array.dtype == array.dtype and again.array.shape == array.shape


def test_from_array_repr_of_a_large_array_is_a_summary_that_says_so():
    a = np.arange(1000, dtype=np.float32).reshape(10, 100)
    text = repr(jaxinit.from_array(a))
    assert text.startswith("from_array(<float32[10, 100]") and "sha256" in text and len(text) < 120
    # two large arrays that differ are told apart
    assert repr(jaxinit.from_array(a + 1)) != text
    assert repr(jaxinit.from_array(np.zeros((0, 3)))).startswith("from_array(<float64[0, 3], sha256 ")
