"""jaxinit._prng: jax.random's bits and fold_in, bit for bit, as one fused expression."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxinit import _prng
from tests.conftest import run_python


def test_block_function_matches_the_random123_known_answers():
    # Known-answer vectors of Threefry-2x32-20 from the Random123 distribution (kat_vectors).
    cases = [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
             ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
             ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]
    for (k0, k1), (x0, x1), expected in cases:
        y = _prng.threefry2x32(np.uint32(k0), np.uint32(k1), np.uint32(x0), np.uint32(x1))
        assert (int(y[0]), int(y[1])) == expected


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (2, 3, 4), (256, 256)])
@pytest.mark.parametrize("dtype", [jnp.uint8, jnp.uint16, jnp.uint32])
def test_bits_equal_jax_random_bits(shape, dtype, key):
    ours = _prng.bits(key, shape, dtype)
    theirs = jax.random.bits(key, shape, dtype)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_bits_and_fold_in_under_jit_and_vmap(key):
    keys = jax.random.split(key, 5)
    layers = jnp.arange(3, dtype=jnp.int32)

    def ours(k):
        return jax.vmap(lambda i: _prng.bits(_prng.fold_in(k, i), (4, 6), jnp.uint32))(layers)

    def theirs(k):
        return jax.vmap(lambda i: jax.random.bits(jax.random.fold_in(k, i), (4, 6), jnp.uint32))(layers)

    np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(ours))(keys)), np.asarray(jax.vmap(theirs)(keys)))


@pytest.mark.parametrize("data", [0, 1, 12345, 2**31 + 5, 2**32 - 1])
def test_fold_in_equals_jax_for_typed_and_raw_keys(data, key):
    np.testing.assert_array_equal(np.asarray(jax.random.key_data(_prng.fold_in(key, data))),
                                  np.asarray(jax.random.key_data(jax.random.fold_in(key, data))))
    raw = jax.random.PRNGKey(7)
    ours = _prng.fold_in(raw, data)
    assert ours.dtype == jnp.uint32 and ours.shape == (2,)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(jax.random.fold_in(raw, data)))


def test_fold_in_wraps_negative_traced_data_like_jax(key):
    data = jnp.int32(-3)
    np.testing.assert_array_equal(np.asarray(jax.random.key_data(_prng.fold_in(key, data))),
                                  np.asarray(jax.random.key_data(jax.random.fold_in(key, data))))
    with pytest.raises(OverflowError):  # as jax.random.fold_in does for a negative Python int
        _prng.fold_in(key, -3)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shape=st.lists(st.integers(0, 9), min_size=0, max_size=3))
def test_bits_equal_jax_for_any_key_and_shape(seed, shape):
    key = jax.random.key(seed)
    np.testing.assert_array_equal(np.asarray(_prng.bits(key, tuple(shape), jnp.uint32)),
                                  np.asarray(jax.random.bits(key, tuple(shape), jnp.uint32)))


def test_other_implementations_and_batched_keys_go_to_jax_random(key):
    rbg = jax.random.key(3, impl="rbg")
    np.testing.assert_array_equal(np.asarray(_prng.bits(rbg, (4, 5), jnp.uint32)),
                                  np.asarray(jax.random.bits(rbg, (4, 5), jnp.uint32)))
    np.testing.assert_array_equal(np.asarray(jax.random.key_data(_prng.fold_in(rbg, 2))),
                                  np.asarray(jax.random.key_data(jax.random.fold_in(rbg, 2))))
    keys = jax.random.split(key, 3)  # a batch of keys, not vmapped: jax.random's own error
    with pytest.raises((ValueError, TypeError)):
        jax.random.bits(keys, (2,), jnp.uint32)
    with pytest.raises((ValueError, TypeError)):
        _prng.bits(keys, (2,), jnp.uint32)


def test_the_sweep_program_has_no_rolled_threefry_loop():
    # The point of the module: no while loop of threefry rounds left in the compiled sweep step.
    from jaxinit.lab.engine import sweep

    def step(k):
        return sweep.random_bits(_prng.fold_in(k, 3), (8, 8), jnp.float32)

    assert "stablehlo.while" not in jax.jit(step).lower(jax.random.key(0)).as_text()
    # jax.random's own draw lowers to a loop on the CPU: the check above can fail.
    assert "stablehlo.while" in jax.jit(lambda k: jax.random.bits(jax.random.fold_in(k, 3), (8, 8))).lower(
        jax.random.key(0)).as_text()


def test_legacy_layout_and_64_bit_words_in_a_fresh_process():
    out = run_python(
        """
        import json, jax, numpy as np
        from jaxinit import _prng
        key = jax.random.key(11)
        wide = bool((np.asarray(_prng.bits(key, (3, 4), np.uint64))
                     == np.asarray(jax.random.bits(key, (3, 4), np.uint64))).all())
        jax.config.update("jax_threefry_partitionable", False)
        legacy = bool((np.asarray(_prng.bits(key, (5, 3), np.uint32))
                       == np.asarray(jax.random.bits(key, (5, 3), np.uint32))).all())
        print(json.dumps({"wide": wide, "legacy": legacy}))
        """,
        x64=True,
    )
    assert json.loads(out) == {"wide": True, "legacy": True}
