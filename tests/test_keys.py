"""Keys: every entry point takes exactly the keys jax.random takes, and rejects the rest as it does.

jaxinit draws its bits through ``jaxinit._prng`` (jax.random's numbers as one fused
expression). These tests compare that path, the initializers and ``nets.init`` with
``jax.random`` / ``jax.nn.initializers`` over key shapes (), (1,), (2,), (3,), raw (uint32) and
typed, and scalar and vector ``fold_in`` data: same exception type, or bit-identical results.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxinit
from jaxinit import _prng, nets


def _outcome(fn):
    """``("ok", array-as-numpy, dtype, warnings)`` or ``("error", exception type, None, warnings)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = fn()
        except Exception as err:  # the type is what is compared
            return "error", type(err), None, sorted({str(w.category.__name__) for w in caught})
    if jnp.issubdtype(out.dtype, jax.dtypes.prng_key):
        data = np.asarray(jax.random.key_data(out))
        return "ok", (data, out.shape), out.dtype, sorted({w.category.__name__ for w in caught})
    return "ok", np.asarray(out), out.dtype, sorted({w.category.__name__ for w in caught})


def _same(ours, theirs, rtol=0.0):
    assert ours[0] == theirs[0], (ours, theirs)
    assert ours[3] == theirs[3], (ours, theirs)  # the same warnings
    if ours[0] == "error":
        assert ours[1] is theirs[1], (ours[1], theirs[1])
        return
    assert ours[2] == theirs[2]
    if isinstance(ours[1], tuple):
        assert ours[1][1] == theirs[1][1]
        np.testing.assert_array_equal(ours[1][0], theirs[1][0])
    else:
        assert ours[1].shape == theirs[1].shape
        np.testing.assert_allclose(ours[1], theirs[1], rtol=rtol, atol=0)


KEY_SHAPES = [(), (1,), (2,), (3,)]


def _make_key(kind: str, shape: tuple[int, ...], seed: int):
    """A typed key array of ``shape``; or a raw uint32 array of ``shape`` (only (2,) is one key),
    or of ``shape + (2,)`` (a batch of raw keys) for ``raw_batch``."""
    if kind == "typed":
        return jax.random.split(jax.random.key(seed), shape) if shape else jax.random.key(seed)
    if kind == "raw_batch":
        return jax.random.key_data(jax.random.split(jax.random.key(seed), shape) if shape
                                   else jax.random.key(seed))
    return jnp.asarray(np.arange(seed, seed + int(np.prod(shape, dtype=int)), dtype=np.uint32).reshape(shape))


keys = st.tuples(st.sampled_from(["typed", "raw", "raw_batch"]), st.sampled_from(KEY_SHAPES),
                 st.integers(0, 2**31 - 1))
data_values = st.one_of(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**31 - 1).map(jnp.int32),
    st.integers(0, 2**32 - 1).map(jnp.uint32),
    st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=2).map(lambda v: jnp.asarray(v, jnp.int32)),
    st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=2).map(np.asarray),
)


@settings(max_examples=80, deadline=None)
@given(key=keys, data=data_values)
def test_fold_in_accepts_and_rejects_what_jax_random_does(key, data):
    k = _make_key(*key)
    _same(_outcome(lambda: _prng.fold_in(k, data)), _outcome(lambda: jax.random.fold_in(k, data)))


@settings(max_examples=60, deadline=None)
@given(key=keys, dtype=st.sampled_from([np.uint8, np.uint16, np.uint32, np.uint64]),
       shape=st.sampled_from([(), (3,), (2, 3)]))
def test_bits_accept_and_reject_what_jax_random_does(key, dtype, shape):
    # uint64 without x64 (this process): jax.random.bits warns and truncates; so must we.
    k = _make_key(*key)
    _same(_outcome(lambda: _prng.bits(k, shape, dtype)), _outcome(lambda: jax.random.bits(k, shape, dtype)))


@settings(max_examples=40, deadline=None)
@given(key=keys, name=st.sampled_from(["he_normal", "glorot_uniform", "lecun_normal"]))
def test_initializers_take_the_keys_jax_nn_initializers_take(key, name):
    k = _make_key(*key)
    # Same sampler and key; only the scale's last float32 bit may differ (JAX rounds it twice).
    _same(_outcome(lambda: getattr(jaxinit, name)()(k, (4, 2), jnp.float32)),
          _outcome(lambda: getattr(jax.nn.initializers, name)()(k, (4, 2), jnp.float32)), rtol=3e-7)


def test_a_batch_of_two_keys_is_not_one_raw_key(key):
    batch = jax.random.split(key, 2)
    with pytest.raises(ValueError, match=r"accepts a single key.*key array of shape \(2,\)"):
        jax.nn.initializers.he_normal()(batch, (4, 2))
    with pytest.raises(ValueError, match=r"variance_scaling\(.*\) accepts a single key.*key=.*shape \(2,\)"):
        jaxinit.he_normal()(batch, (4, 2))
    with pytest.raises(ValueError, match=r"accepts a single key"):
        jaxinit.orthogonal()(batch, (4, 2))
    with pytest.raises(ValueError, match=r"accepts a single key"):
        jaxinit.he_normal()(batch, (0, 2))  # zero-size draws check the key too


def test_nets_init_rejects_a_batch_of_keys(key):
    batch = jax.random.split(key, 2)
    with pytest.raises(ValueError, match=r"accepts a single key"):
        nets.init(batch, 3, 4, 2, 1, jaxinit.he_normal())
    # one raw key works and equals the typed key's weights
    typed = nets.init(key, 3, 4, 2, 1, jaxinit.he_normal())
    raw = nets.init(jax.random.key_data(key), 3, 4, 2, 1, jaxinit.he_normal())
    for a, b in zip(jax.tree.leaves(typed), jax.tree.leaves(raw), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_vector_fold_in_data_is_rejected_by_layer_keys(key):
    with pytest.raises(TypeError, match=r"fold_in accepts a scalar"):
        nets.layer_keys(key, jnp.arange(2))
    with pytest.raises(TypeError, match=r"fold_in accepts a scalar"):
        _prng.fold_in(jax.random.PRNGKey(0), np.array([1, 2]))
