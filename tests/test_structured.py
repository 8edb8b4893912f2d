"""identity, dirac, sparse and zero_init: exact structure, identity-preserving layers, errors."""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import hadamard

import jaxinit

from helpers import Z


def assert_spread_matches(init, shape, w):
    """Deterministic entries: mean() and variance() are the exact spread across entries."""
    w = np.asarray(w, np.float64)
    assert math.isclose(w.mean(), init.mean(shape), rel_tol=1e-6, abs_tol=1e-9)
    assert math.isclose(w.var(), init.variance(shape), rel_tol=1e-6, abs_tol=1e-9)


# -- identity --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 5), (4, 7), (7, 4)])
def test_identity_is_scaled_eye_and_a_dense_layer_copies_its_inputs(shape):
    init = jaxinit.identity(0.5)
    w = init(None, shape, jnp.float32)
    np.testing.assert_array_equal(np.asarray(w), 0.5 * np.eye(*shape))
    assert_spread_matches(init, shape, w)
    x = jax.random.normal(jax.random.key(0), (3, shape[0]))
    dense = nn.Dense(shape[1], use_bias=False, kernel_init=jaxinit.identity())
    y = dense.apply(dense.init(jax.random.key(1), x), x)
    k = min(shape)
    np.testing.assert_array_equal(np.asarray(y[:, :k]), np.asarray(x[:, :k]))
    assert not np.asarray(y[:, k:]).any()


def test_identity_errors():
    with pytest.raises(ValueError, match=r"identity\(\) fills 2-D \(in, out\) matrices; got shape=\(3, 3, 4, 4\)\. "
                                         r"For convolution kernels use dirac\(\)"):
        jaxinit.identity()(None, (3, 3, 4, 4))
    with pytest.raises(ValueError, match=r"got shape=\(4,\)"):
        jaxinit.identity().variance((4,))
    with pytest.raises(ValueError, match=r"scale must be > 0; got -2\.0 \(identity\)"):
        jaxinit.identity(-2.0)


# -- dirac -----------------------------------------------------------------------------------
@pytest.mark.parametrize("window", [(4, 3), (2, 3, 3)])  # even and odd sizes; 2-D and 3-D
def test_dirac_conv_copies_its_input(window):
    channels = 4
    x = jax.random.normal(jax.random.key(0), (2, *([6] * len(window)), channels))
    conv = nn.Conv(channels, window, padding="SAME", use_bias=False, kernel_init=jaxinit.dirac())
    params = conv.init(jax.random.key(1), x)
    np.testing.assert_array_equal(np.asarray(conv.apply(params, x)), np.asarray(x))


def test_dirac_grouped_conv_maps_each_group_to_its_outputs():
    groups, c_in, c_out = 2, 4, 6  # kernel (3, 3, 2, 6): 2 inputs and 3 outputs per group
    x = jax.random.normal(jax.random.key(0), (1, 5, 5, c_in))
    conv = nn.Conv(c_out, (3, 3), feature_group_count=groups, use_bias=False,
                   kernel_init=jaxinit.dirac(groups=groups, scale=2.0))
    params = conv.init(jax.random.key(1), x)
    assert params["params"]["kernel"].shape == (3, 3, 2, 6)
    y = np.asarray(conv.apply(params, x))
    x = np.asarray(x)
    # Output g * 3 + d copies input g * 2 + d (d < 2), times scale; output g * 3 + 2 is zero.
    for g in range(groups):
        for d in range(2):
            np.testing.assert_array_equal(y[..., g * 3 + d], 2.0 * x[..., g * 2 + d])
        assert not y[..., g * 3 + 2].any()


@pytest.mark.parametrize("shape, groups", [((3, 3, 4, 4), 1), ((3, 4, 5), 1), ((3, 3, 3, 2, 4), 2),
                                           ((4, 4, 2, 6), 3), ((8, 8), 1)])
def test_dirac_values_spread_and_dtypes(shape, groups):
    init = jaxinit.dirac(groups=groups, scale=1.5)
    w = np.asarray(init(None, shape, jnp.float32))
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    n_in, n_out = shape[-2:]
    expected = np.zeros(shape)
    for g in range(groups):
        for d in range(n_in):
            expected[(*centre, d, g * (n_out // groups) + d)] = 1.5
    np.testing.assert_array_equal(w, expected)
    assert_spread_matches(init, shape, w)
    for dtype in (jnp.bfloat16, jnp.float16, jnp.complex64):
        assert init(None, shape, dtype).dtype == dtype


def test_dirac_is_a_value_and_transforms_agree(key, strict_promotion):
    init = jaxinit.dirac(groups=2)
    assert init == jaxinit.get({"name": "dirac", "groups": 2}) and hash(init) == hash(jaxinit.dirac(2))
    assert jaxinit.get(init.to_dict()) == init and eval(repr(init), vars(jaxinit)) == init
    assert repr(init) == "dirac(groups=2)" and not init.random
    with pytest.raises(dataclasses.FrozenInstanceError):
        init.__setattr__("groups", 3)
    shape = (3, 3, 2, 4)
    eager = init(key, shape, jnp.bfloat16)
    jitted = jax.jit(init, static_argnums=(1, 2))(key, shape, jnp.bfloat16)
    batched = jax.vmap(lambda k: init(k, shape, jnp.bfloat16))(jax.random.split(key, 2))
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(eager))
    np.testing.assert_array_equal(np.asarray(batched[1]), np.asarray(eager))
    with pytest.raises(TypeError, match=r"dirac\(groups=2\) makes floating-point weights; got dtype=int32"):
        init(key, shape, jnp.int32)


@pytest.mark.parametrize("shape, groups", [((3, 3, 8, 4), 1), ((3, 6, 4), 2), ((5, 3, 6), 3), ((8, 2), 2)])
def test_dirac_narrowing_kernels_fill_min_of_out_and_in_per_group(shape, groups):
    # PyTorch's dirac_: min(out per group, in per group) channels per group, the rest dropped.
    w = np.asarray(jaxinit.dirac(groups=groups, scale=2.0)(None, shape, jnp.float32))
    *window, n_in, n_out = shape
    out_g = n_out // groups
    m = min(out_g, n_in)
    expected = np.zeros(shape, np.float32)
    centre = tuple((k - 1) // 2 for k in window)
    for g in range(groups):
        for d in range(m):
            expected[(*centre, d, g * out_g + d)] = 2.0
    np.testing.assert_array_equal(w, expected)
    assert (w != 0).sum() == groups * m
    init = jaxinit.dirac(groups=groups, scale=2.0)
    assert init.mean(shape) == pytest.approx(w.mean(), rel=1e-12)
    assert init.variance(shape) == pytest.approx(w.astype(np.float64).var(), rel=1e-9)


@pytest.mark.parametrize("out_ch, in_per_group, window, groups", [
    (4, 8, (3,), 1), (8, 4, (3, 3), 1), (6, 4, (3,), 2), (4, 6, (3, 3), 2), (9, 2, (3, 5, 3), 3), (6, 6, (1,), 3)])
def test_dirac_equals_torch_dirac(out_ch, in_per_group, window, groups):
    torch = pytest.importorskip("torch")
    weight = torch.empty(out_ch, in_per_group, *window)
    torch.nn.init.dirac_(weight, groups=groups)
    # PyTorch (out, in, *window) -> JAX (*window, in, out); odd windows share the centre tap.
    expected = np.moveaxis(weight.numpy(), (0, 1), (-1, -2))
    ours = np.asarray(jaxinit.dirac(groups=groups)(None, expected.shape, jnp.float32))
    np.testing.assert_array_equal(ours, expected)


def test_dirac_errors():
    with pytest.raises(ValueError, match=r"dirac\(groups=3\) needs the output channels shape\[-1\]=8 to be "
                                         r"divisible by groups=3; got shape=\(3, 3, 2, 8\)"):
        jaxinit.dirac(groups=3)(None, (3, 3, 2, 8))
    with pytest.raises(ValueError, match=r"dirac\(\) needs a \(spatial\.\.\., in, out\) kernel with at least "
                                         r"2 dims; got shape=\(4,\)"):
        jaxinit.dirac().variance((4,))
    with pytest.raises(ValueError, match=r"groups must be >= 1; got 0 \(dirac\)"):
        jaxinit.dirac(groups=0)
    with pytest.raises(TypeError, match=r"groups must be an integer; got 1\.5 of type float \(dirac\)"):
        jaxinit.dirac(groups=1.5)
    with pytest.raises(ValueError, match=r"scale must be > 0; got 0\.0 \(dirac\)"):
        jaxinit.dirac(scale=0.0)


# -- sparse ----------------------------------------------------------------------------------
def test_zeros_per_column_is_ceil_of_sparsity_times_in():
    cases = [(0.7, 10, 7), (0.9, 96, 87), (0.0, 12, 0), (0.25, 7, 2), (0.95, 10, 10), (0.3, 10, 3), (0.1, 1, 1)]
    for sparsity, n_in, zeros in cases:  # 0.7 * 10 and 0.3 * 10 are 7.000000000000001, 3.0000000000000004
        assert jaxinit.sparse(sparsity).zeros_per_column(n_in) == zeros


@pytest.mark.parametrize("sparsity, shape, zeros", [(0.7, (10, 6), 7), (0.9, (96, 64), 87), (0.95, (10, 4), 10)])
def test_sparse_has_exactly_ceil_sparsity_in_zeros_per_column(sparsity, shape, zeros, key):
    init = jaxinit.sparse(sparsity, stddev=0.3)
    w = np.asarray(jax.jit(init, static_argnums=(1, 2))(key, shape, jnp.float32))
    np.testing.assert_array_equal((w == 0).sum(axis=0), np.full(shape[1], zeros))
    assert math.isclose(init.variance(shape), 0.09 * (1 - zeros / shape[0]))


def test_sparse_zero_positions_are_uniform_and_independent_across_columns(key):
    # Every row is zero in a given column with probability z / in; over all columns and keys the
    # count per row is Binomial(cols * keys, z / in).
    n_in, n_out, keys = 12, 64, 50
    init = jaxinit.sparse(0.25)
    w = np.asarray(jax.jit(jax.vmap(lambda k: init(k, (n_in, n_out))))(jax.random.split(key, keys)))
    counts = (w == 0).sum(axis=(0, 2))
    trials, p = n_out * keys, 3 / n_in
    assert np.abs(counts - trials * p).max() <= Z * math.sqrt(trials * p * (1 - p))
    masks = (w[0] == 0).T
    assert len({m.tobytes() for m in masks}) > n_out // 2  # columns do not share one pattern


def test_sparse_nonzero_entries_are_normal_with_stddev(key):
    init = jaxinit.sparse(0.5, stddev=0.2)
    w = np.asarray(init(key, (200, 300), jnp.float32), np.float64)
    nz = w[w != 0]
    assert nz.size == 100 * 300
    m2 = np.mean(nz * nz)
    m4 = np.mean(nz**4)
    assert abs(m2 - 0.04) <= Z * math.sqrt((m4 - m2 * m2) / nz.size)
    assert abs(nz.mean()) <= Z * math.sqrt(m2 / nz.size)


def test_sparse_errors(key):
    with pytest.raises(ValueError, match=r"sparsity must be in \[0\.0, 1\.0\); got 1\.0 \(sparse\)"):
        jaxinit.sparse(1.0)
    with pytest.raises(ValueError, match=r"sparsity must be in \[0\.0, 1\.0\); got -0\.1 \(sparse\)"):
        jaxinit.sparse(-0.1)
    with pytest.raises(ValueError, match=r"stddev must be >= 0; got -0\.01 \(sparse\)"):
        jaxinit.sparse(0.5, stddev=-0.01)
    with pytest.raises(ValueError, match=r"sparse\(sparsity=0\.5\) fills 2-D \(in, out\) matrices; "
                                         r"got shape=\(3, 3, 4\)"):
        jaxinit.sparse(0.5)(key, (3, 3, 4))


# -- zero_init -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 6), (8, 3), (3, 6), (5, 8), (20, 33)])
def test_zero_init_matrix_follows_algorithm_1(shape):
    init = jaxinit.zero_init()
    w = np.asarray(init(None, shape, jnp.float32))
    n_in, n_out = shape
    if n_out <= n_in:
        expected = np.eye(n_in, n_out)
    else:
        p = 2 ** math.ceil(math.log2(n_out))
        expected = hadamard(p)[:n_in, :n_out] / math.sqrt(p)
    np.testing.assert_allclose(w, expected, rtol=1e-6, atol=0)
    assert_spread_matches(init, shape, w)


def test_zero_init_conv_is_a_delta_kernel_and_copies_when_square():
    init = jaxinit.zero_init()
    w = np.array(init(None, (3, 3, 4, 8)))
    centre = w[1, 1].copy()
    w[1, 1] = 0
    assert not w.any()
    np.testing.assert_allclose(centre, hadamard(8)[:4, :8] / math.sqrt(8), rtol=1e-6)
    assert_spread_matches(init, (3, 3, 4, 8), init(None, (3, 3, 4, 8)))
    x = jax.random.normal(jax.random.key(0), (1, 5, 5, 4))
    conv = nn.Conv(4, (3, 3), use_bias=False, kernel_init=init)
    np.testing.assert_array_equal(np.asarray(conv.apply(conv.init(jax.random.key(1), x), x)), np.asarray(x))


def test_zero_init_errors():
    with pytest.raises(ValueError, match=r"zero_init\(\) needs an \(in, out\) matrix or a \(spatial\.\.\., in, "
                                         r"out\) kernel; got shape=\(4,\)"):
        jaxinit.zero_init()(None, (4,))
