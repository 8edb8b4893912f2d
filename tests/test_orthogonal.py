"""orthogonal and delta_orthogonal: exact orthogonality, JAX parity, the Haar law, vmap, errors."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import jaxinit
from jaxinit.initializers import _orthogonal

from conftest import run_python
from helpers import Z

# Unit roundoff of each dtype: a rounded entry is w (1 + d) with |d| <= u.
UNIT_ROUNDOFF = {jnp.float32: 2.0**-24, jnp.bfloat16: 2.0**-8, jnp.float16: 2.0**-11}
# Householder QR in float32 is orthogonal to a few hundred ulps at these sizes.
QR_TOL = 2e-5


def matrix_view(w, column_axis):
    """JAX's matrix view of a weight: columns along ``column_axis``, all other axes flattened."""
    w = np.moveaxis(np.asarray(w, np.float64), column_axis, -1)
    return w.reshape(-1, w.shape[-1])


def gram_error(m, scale):
    """max |G - scale^2 I| for the Gram matrix of the shorter side."""
    g = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    return np.abs(g - scale**2 * np.eye(g.shape[0])).max()


SHAPES = [((64, 32), -1), ((32, 64), -1), ((3, 3, 8, 16), -1), ((3, 3, 16, 8), -2), ((5, 4, 6), 0)]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("shape, column_axis", SHAPES)
def test_rows_or_columns_are_orthonormal(shape, column_axis, dtype, key):
    scale = 1.7
    w = jaxinit.orthogonal(scale, column_axis)(key, shape, dtype)
    assert w.shape == shape and w.dtype == dtype
    # Rounding each entry by (1 + d), |d| <= u, moves a Gram entry by at most (2u + u^2) * scale^2
    # (Cauchy-Schwarz over unit-norm rows/columns), on top of the float32 QR error.
    u = UNIT_ROUNDOFF[dtype]
    assert gram_error(matrix_view(w, column_axis), scale) <= ((2 * u + u * u) + QR_TOL) * scale**2


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_is_the_float32_result_cast_once(dtype, key):
    init = jaxinit.orthogonal(0.9)
    low = init(key, (64, 32), dtype)
    np.testing.assert_array_equal(np.asarray(low), np.asarray(init(key, (64, 32), jnp.float32).astype(dtype)))


@pytest.mark.parametrize("shape, column_axis", SHAPES)
def test_equals_jax_orthogonal_in_float32(shape, column_axis, key):
    ours = jaxinit.orthogonal(1.3, column_axis)(key, shape, jnp.float32)
    ref = jax.nn.initializers.orthogonal(1.3, column_axis)(key, shape, jnp.float32)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=0, atol=1e-7)


@pytest.mark.parametrize("shape", [(4, 3, 6, 8)])  # even and odd kernel sizes, in < out
def test_delta_orthogonal_equals_jax_when_in_le_out(shape, key):
    ours = jaxinit.delta_orthogonal(1.2)(key, shape, jnp.float32)
    ref = jax.nn.initializers.delta_orthogonal(1.2)(key, shape, jnp.float32)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=0, atol=1e-7)


def test_complex_weights_are_unitary(key):
    w = np.asarray(jaxinit.orthogonal(2.0)(key, (12, 7), jnp.complex64), np.complex128)
    assert np.abs(w.conj().T @ w - 4.0 * np.eye(7)).max() <= QR_TOL * 4.0


@pytest.mark.parametrize("shape, column_axis", SHAPES)
def test_variance_is_the_exact_mean_square(shape, column_axis, key):
    init = jaxinit.orthogonal(1.5, column_axis)
    w = np.asarray(init(key, shape, jnp.float32), np.float64)
    # Sum of squares is exactly scale^2 min(n_rows, n_cols): the mean square equals variance().
    assert math.isclose(np.mean(w * w), init.variance(shape), rel_tol=QR_TOL)


# -- the Haar law ----------------------------------------------------------------------------
def _haar_batch(key, count, n):
    keys = jax.random.split(key, count)
    return np.asarray(jax.jit(jax.vmap(lambda k: jaxinit.orthogonal()(k, (n, n))))(keys), np.float64)


@pytest.fixture(scope="module")
def haar16():
    """4096 independent 16 x 16 draws (fixed key), shared by the Haar-law tests."""
    return _haar_batch(jax.random.key(4242), 4096, 16)  # 16 chunks of 256: no remainder to compile


def haar_entry_cdf(n):
    """Exact CDF of one entry of a Haar n x n orthogonal matrix: w^2 ~ Beta(1/2, (n-1)/2), symmetric."""
    return lambda t: 0.5 + 0.5 * np.sign(t) * special.betainc(0.5, (n - 1) / 2, np.minimum(t * t, 1.0))


KS_ALPHA = 1e-6  # with fixed keys; a missing sign fix gives p ~ 0 (every diagonal entry negative)


def test_diagonal_entry_has_the_exact_haar_marginal(haar16):
    # One entry per matrix keeps the samples independent. The (0, 0) entry is the one the QR sign
    # convention biases; with the sign fix it has the same law as every other entry.
    assert stats.kstest(haar16[:, 0, 0], haar_entry_cdf(16)).pvalue > KS_ALPHA
    assert stats.kstest(haar16[:, 3, 5], haar_entry_cdf(16)).pvalue > KS_ALPHA


def test_scaled_entries_are_approximately_standard_normal(key):
    # sqrt(n) w_ij -> N(0, 1); at n = 64 the CDFs differ by at most 0.0022 (exact marginal vs
    # Phi), far inside what KS resolves with 1600 samples at this alpha (D = 0.067).
    n = 64
    w = _haar_batch(key, 1600, n)  # 100 chunks of 16
    assert stats.kstest(math.sqrt(n) * w[:, 0, 0], "norm").pvalue > KS_ALPHA
    assert stats.kstest(math.sqrt(n) * w[:, 7, 2], "norm").pvalue > KS_ALPHA


def test_trace_has_mean_zero_and_variance_one(haar16):
    # For Haar O(n), n >= 2: E tr Q = 0 and E (tr Q)^2 = 1 exactly.
    traces = np.trace(haar16, axis1=1, axis2=2)
    k = traces.size
    mean, var = traces.mean(), traces.var()
    assert abs(mean) <= Z * math.sqrt(var / k)
    m4 = np.mean((traces - mean) ** 4)
    assert abs(var - 1.0) <= Z * math.sqrt((m4 - var * var) / k)


# -- vmap ------------------------------------------------------------------------------------
_single = jax.jit(jaxinit.orthogonal(), static_argnums=1)  # one compile per shape, shared below


@pytest.mark.parametrize(
    "shape, chunk_elements, path",
    [((16, 8), 1 << 16, "one vmapped chunk"),
     ((16, 8), 64, "lax.map, one matrix per step"),
     ((6, 4), 64, "lax.map over vmapped chunks of 2, plus a remainder")],
)
def test_vmap_over_keys_equals_a_loop_and_jax(shape, chunk_elements, path, key, monkeypatch):
    monkeypatch.setattr(_orthogonal, "_CHUNK_ELEMENTS", chunk_elements)
    keys = jax.random.split(key, 5)
    batched = np.asarray(jax.jit(jax.vmap(lambda k: jaxinit.orthogonal()(k, shape)))(keys))
    loop = np.stack([np.asarray(_single(k, shape)) for k in keys])
    np.testing.assert_allclose(batched, loop, rtol=0, atol=1e-6)
    if chunk_elements == 1 << 16:
        ref = jax.jit(jax.vmap(lambda k: jax.nn.initializers.orthogonal()(k, shape)))(keys)
        np.testing.assert_allclose(batched, np.asarray(ref), rtol=0, atol=1e-6)


def _qr_lines(fn, keys):
    return [line for line in str(jax.make_jaxpr(jax.vmap(fn))(keys)).splitlines() if "= qr[" in line]


def test_vmap_rule_runs_single_matrix_qr_for_large_matrices(key):
    keys = jax.random.split(key, 3)
    ours = _qr_lines(lambda k: jaxinit.orthogonal()(k, (300, 300)), keys)
    assert ours and all("f32[300,300]" in line and "f32[3,300,300]" not in line for line in ours)
    # JAX's own initializer batches the QR, the slow kernel on GPUs.
    theirs = _qr_lines(lambda k: jax.nn.initializers.orthogonal()(k, (300, 300)), keys)
    assert theirs and all("f32[3,300,300]" in line for line in theirs)


def test_scan_inside_vmap_and_nested_vmap(key):
    def layers(k):  # the sweep's pattern: layer weights drawn inside a scan, vmapped over seeds
        step = lambda c, layer: (c, jaxinit.orthogonal()(jax.random.fold_in(k, layer), (6, 4)))  # noqa: E731
        return jax.lax.scan(step, 0, jnp.arange(3))[1]

    keys = jax.random.split(key, (2, 3))
    out = np.asarray(jax.jit(jax.vmap(jax.vmap(layers)))(keys))
    np.testing.assert_allclose(out[1, 2, 1], np.asarray(_single(jax.random.fold_in(keys[1, 2], 1), (6, 4))),
                               atol=1e-6)


# -- delta_orthogonal ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 8, 8), (3, 3, 8, 16), (4, 2, 8, 8), (3, 3, 3, 8, 4), (3, 3, 32, 8)])
def test_delta_orthogonal_centre_tap_is_orthogonal_and_the_rest_zero(shape, key):
    scale = 1.4
    init = jaxinit.delta_orthogonal(scale)
    w = np.asarray(init(key, shape, jnp.float32), np.float64)
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    m = w[centre]
    n_in, n_out = shape[-2:]
    rest = w.copy()
    rest[centre] = 0
    assert not rest.any()
    if n_in <= n_out:
        assert np.abs(m @ m.T - scale**2 * np.eye(n_in)).max() <= QR_TOL * scale**2  # isometry
    else:
        # Orthonormal columns times sqrt(in/out).
        assert np.abs(m.T @ m - scale**2 * n_in / n_out * np.eye(n_out)).max() <= QR_TOL * scale**2 * n_in
    # Sum of squares is scale^2 * in in both cases, so the mean square is variance().
    assert math.isclose(np.sum(w * w), scale**2 * n_in, rel_tol=QR_TOL)
    assert math.isclose(np.mean(w * w), init.variance(shape), rel_tol=QR_TOL)


def test_delta_orthogonal_preserves_the_squared_norm_when_inputs_outnumber_outputs(key):
    # E|x M|^2 = |x|^2 over the Haar draw of M; x is fixed, K independent kernels.
    n_in, n_out, count = 48, 12, 1130  # 10 chunks of 113
    x = np.asarray(jax.random.normal(jax.random.key(1), (n_in,)), np.float64)
    keys = jax.random.split(key, count)
    draw = jax.jit(jax.vmap(lambda k: jaxinit.delta_orthogonal()(k, (n_in, n_out))))
    ratios = np.sum((x @ np.asarray(draw(keys), np.float64)) ** 2, axis=-1) / np.sum(x * x)
    assert abs(ratios.mean() - 1.0) <= Z * ratios.std() / math.sqrt(count)


def test_delta_orthogonal_conv_acts_as_the_centre_matrix_with_same_padding(key):
    # The (k - 1) // 2 centre is the tap a stride-1 SAME convolution aligns with its output,
    # for odd and even kernel sizes alike.
    x = jax.random.normal(jax.random.key(2), (1, 7, 7, 6))
    conv = nn.Conv(6, (4, 3), padding="SAME", use_bias=False, kernel_init=jaxinit.delta_orthogonal())
    params = conv.init(key, x)
    centre_matrix = params["params"]["kernel"][1, 1]  # (4 - 1) // 2, (3 - 1) // 2
    expected = jnp.einsum("bhwi,io->bhwo", x, centre_matrix, precision="highest")
    np.testing.assert_allclose(np.asarray(conv.apply(params, x)), np.asarray(expected), atol=1e-5)


# -- float64 ---------------------------------------------------------------------------------
def test_float64_targets_are_computed_in_float64():
    out = run_python(
        """
        import jax, jax.numpy as jnp, numpy as np, jaxinit
        key = jax.random.key(0)
        w = np.asarray(jaxinit.orthogonal()(key, (40, 30)))
        c = np.asarray(jaxinit.orthogonal()(key, (40, 30), jnp.complex128))
        print(w.dtype, c.dtype, np.abs(w.T @ w - np.eye(30)).max() < 1e-12,
              np.abs(c.conj().T @ c - np.eye(30)).max() < 1e-12)
        """,
        x64=True,
    )
    assert out.split() == ["float64", "complex128", "True", "True"]


# -- errors ----------------------------------------------------------------------------------
def test_construction_errors():
    with pytest.raises(ValueError, match=r"scale must be > 0; got -1\.0 \(orthogonal\)"):
        jaxinit.orthogonal(-1.0)
    with pytest.raises(TypeError, match=r"column_axis must be an integer; got 1\.5 of type float"):
        jaxinit.orthogonal(column_axis=1.5)
    with pytest.raises(ValueError, match=r"scale must be > 0; got 0\.0 \(delta_orthogonal\)"):
        jaxinit.delta_orthogonal(0.0)
    with pytest.raises(ValueError, match=r"column_axis must be one of \[-2, -1, 0, 1\] \(an axis of the "
                                         r"\(in, out\) centre matrix\); got 2 \(delta_orthogonal\)"):
        jaxinit.delta_orthogonal(column_axis=2)


def test_call_time_shape_errors(key):
    with pytest.raises(ValueError, match=r"orthogonal\(\) needs a shape with at least 2 dims; got shape=\(5,\)"):
        jaxinit.orthogonal()(key, (5,))
    with pytest.raises(ValueError, match=r"column_axis=2 is out of range for shape=\(4, 4\) \(2 dims\); "
                                         r"allowed: -2\.\.1 \(orthogonal\(column_axis=2\)\)"):
        jaxinit.orthogonal(column_axis=2)(key, (4, 4))
    with pytest.raises(ValueError, match=r"column_axis=-3 is out of range for shape=\(4, 4\)"):
        jaxinit.orthogonal(column_axis=-3).variance((4, 4))
    with pytest.raises(ValueError, match=r"delta_orthogonal\(\) needs a \(spatial\.\.\., in, out\) kernel "
                                         r"with 2 to 5 dims .*; got shape=\(2, 2, 2, 2, 4, 4\)"):
        jaxinit.delta_orthogonal()(key, (2, 2, 2, 2, 4, 4))
    with pytest.raises(ValueError, match=r"got shape=\(8,\)"):
        jaxinit.delta_orthogonal().variance((8,))


# -- apply_from_bits: the product with the draw, from its Householder reflectors ----------------
def _rows_and_bits(key, init, shape, transpose, n=7):
    bits = jaxinit.initializers._random.random_bits(key, init.bits_shape(shape), jnp.float32)
    rows = jax.random.normal(jax.random.fold_in(key, 1), (n, shape[1] if transpose else shape[0]))
    return bits, rows


@pytest.mark.parametrize("shape", [(8, 8), (12, 5), (5, 12)], ids=["square", "tall", "wide"])
@pytest.mark.parametrize("transpose", [False, True])
def test_apply_from_bits_is_the_product_with_the_drawn_matrix(shape, transpose, key):
    init = jaxinit.orthogonal(1.7)
    bits, rows = _rows_and_bits(key, init, shape, transpose)
    w = np.asarray(init.from_bits(bits, shape, jnp.float32), np.float64)
    expected = np.asarray(rows, np.float64) @ (w.T if transpose else w)
    got = np.asarray(init.apply_from_bits(bits, rows, shape, jnp.float32, transpose=transpose))
    assert got.shape == expected.shape and got.dtype == np.float32
    # float32 rounding of a length-max(shape) product of O(1) terms, a few ulps per term.
    tol = 4 * max(shape) * np.finfo(np.float32).eps * np.abs(rows).max() * 1.7
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol)


def test_apply_from_bits_under_vmap_is_the_single_call(key):
    init, shape = jaxinit.orthogonal(), (16, 16)
    pairs = [_rows_and_bits(jax.random.fold_in(key, s), init, shape, False) for s in range(3)]
    bits, rows = (jnp.stack(x) for x in zip(*pairs, strict=True))
    batched = jax.jit(jax.vmap(lambda b, r: init.apply_from_bits(b, r, shape, jnp.float32)))(bits, rows)
    for s, (b, r) in enumerate(pairs):
        np.testing.assert_allclose(np.asarray(batched[s]), np.asarray(init.apply_from_bits(b, r, shape, jnp.float32)),
                                   rtol=0, atol=1e-6)


def test_apply_from_bits_forms_the_matrix_where_it_cannot_factor(key):
    # column_axis 0, a bfloat16 target and a plain initializer take the formed matrix: bit for bit.
    for init, dtype in [(jaxinit.orthogonal(column_axis=0), jnp.float32), (jaxinit.orthogonal(), jnp.bfloat16),
                        (jaxinit.he_normal(), jnp.float32)]:
        bits, rows = _rows_and_bits(key, init, (6, 9), False)
        rows = rows.astype(dtype)
        w = init.from_bits(bits, (6, 9), dtype)
        np.testing.assert_array_equal(np.asarray(init.apply_from_bits(bits, rows, (6, 9), dtype), np.float32),
                                      np.asarray(jnp.matmul(rows, w, precision="highest"), np.float32))


def test_apply_from_bits_rejects_bad_shapes(key):
    init = jaxinit.orthogonal()
    bits, rows = _rows_and_bits(key, init, (6, 9), False)
    with pytest.raises(ValueError, match=r"needs a 2-D weight shape; got shape=\(2, 3, 9\)"):
        init.apply_from_bits(bits, rows, (2, 3, 9))
    with pytest.raises(ValueError, match=r"rows must have shape \(n, 9\) for shape=\(6, 9\), transpose=True; got \(7, 6\)"):
        init.apply_from_bits(bits, rows, (6, 9), transpose=True)


@pytest.mark.parametrize("shape, transpose", [((8, 8), False), ((12, 5), True), ((5, 12), False)])
def test_apply_from_bits_is_differentiable_in_the_rows(shape, transpose, key):
    init = jaxinit.orthogonal()
    bits, rows = _rows_and_bits(key, init, shape, transpose, n=3)
    w = init.from_bits(bits, shape, jnp.float32)
    w = w.T if transpose else w
    loss = lambda r: jnp.sum(init.apply_from_bits(bits, r, shape, transpose=transpose) ** 2)  # noqa: E731
    expected = 2 * (rows @ w) @ w.T
    tol = 8 * max(shape) * np.finfo(np.float32).eps * float(np.abs(expected).max())
    np.testing.assert_allclose(np.asarray(jax.grad(loss)(rows)), np.asarray(expected), rtol=0, atol=tol)
    batched = jax.jit(jax.vmap(jax.grad(loss)))(jnp.stack([rows, 2 * rows]))
    np.testing.assert_allclose(np.asarray(batched[1]), 2 * np.asarray(expected), rtol=0, atol=2 * tol)
    tangent = jax.jvp(lambda r: init.apply_from_bits(bits, r, shape, transpose=transpose), (rows,), (rows,))[1]
    np.testing.assert_allclose(np.asarray(tangent), np.asarray(rows @ w), rtol=0, atol=tol)
