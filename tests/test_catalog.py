"""Generic properties of every initializer in catalog_cases.CASES (one line there = all of these)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxinit

from catalog_cases import CASES
from helpers import VARIANTS, mean_tolerance, spec_id, variance_tolerance

IDS = [spec_id(c[0]) for c in CASES]


def _dense_case(spec, shape2d):
    init = jaxinit.get(spec)
    return init, shape2d


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_shape_and_dtype(spec, shape2d, conv, key):
    init = jaxinit.get(spec)
    for shape in filter(None, (shape2d, conv)):
        for dtype in (jnp.float32, jnp.bfloat16):
            w = init(key, shape, dtype)
            assert w.shape == shape and w.dtype == dtype


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_transforms_agree_with_eager(spec, shape2d, conv, variant, key):
    init = jaxinit.get(spec)
    eager = init(key, shape2d, jnp.float32)
    if variant == "vmap":
        key = jax.random.split(key, 1)[0]
        eager = init(key, shape2d, jnp.float32)
        out = jax.vmap(lambda k: init(k, shape2d, jnp.float32))(key[None])[0]
    else:
        out = VARIANTS[variant](init)(key, shape2d, jnp.float32)
    np.testing.assert_allclose(np.asarray(out), np.asarray(eager), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_vmap_over_keys_equals_loop(spec, shape2d, conv, key):
    init = jaxinit.get(spec)
    keys = jax.random.split(key, 3)
    batched = jax.vmap(lambda k: init(k, shape2d, jnp.float32))(keys)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(init(keys[i], shape2d, jnp.float32)),
                                   rtol=1e-6, atol=1e-7)
    if init.random and math_var(init, shape2d) > 0:
        assert not np.allclose(np.asarray(batched[0]), np.asarray(batched[1]))


def math_var(init, shape):
    return init.variance(shape)


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_typed_and_raw_keys_agree(spec, shape2d, conv):
    init = jaxinit.get(spec)
    typed = init(jax.random.key(7), shape2d, jnp.float32)
    raw = init(jax.random.PRNGKey(7), shape2d, jnp.float32)
    np.testing.assert_array_equal(np.asarray(typed), np.asarray(raw))


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_value_semantics(spec, shape2d, conv):
    init = jaxinit.get(spec)
    twin = jaxinit.get(spec)
    assert init == twin and hash(init) == hash(twin)
    assert jaxinit.get(init.to_dict()) == init
    assert eval(repr(init), vars(jaxinit)) == init  # the repr reads back as code
    with pytest.raises(dataclasses_frozen_error()):
        init.__setattr__("dtype", "float16")


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_equal_instances_trace_once(spec, shape2d, conv, key):
    traces = []

    def draw(init, key):
        traces.append(1)
        return init(key, shape2d, jnp.float32)

    f = jax.jit(draw, static_argnums=0)
    f(jaxinit.get(spec), key)
    f(jaxinit.get(spec), key)
    assert len(traces) == 1


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_sample_matches_target_mean_and_variance(spec, shape2d, conv, key):
    init = jaxinit.get(spec)
    shape = tuple(4 * d for d in shape2d)  # the case's own orientation, more entries
    w = np.asarray(init(key, shape, jnp.float32), np.float64)
    assert abs(w.mean() - init.mean(shape)) <= mean_tolerance(w) + 1e-6 * (1 + abs(init.mean(shape)))
    assert abs(w.var() - init.variance(shape)) <= variance_tolerance(w) + 1e-6 * init.variance(shape) + 1e-12


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_, jnp.uint8])
@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_non_float_dtype_rejected(spec, shape2d, conv, dtype, key):
    init = jaxinit.get(spec)
    with pytest.raises(TypeError, match=r"makes floating-point weights; got dtype="):
        init(key, shape2d, dtype)


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_no_silent_upcast(spec, shape2d, conv, key, strict_promotion):
    init = jaxinit.get(spec)
    for dtype in (jnp.bfloat16, jnp.float16, jnp.float32):
        assert init(key, shape2d, dtype).dtype == dtype


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_flax_linen_dense_conv_and_nnx_linear(spec, shape2d, conv, key):
    init = jaxinit.get(spec)
    n_in, n_out = shape2d
    x = jnp.ones((2, n_in))
    dense = nn.Dense(n_out, kernel_init=init)
    params = dense.init(key, x)
    assert params["params"]["kernel"].shape == (n_in, n_out)
    assert dense.apply(params, x).shape == (2, n_out)
    if conv is not None:
        *window, c_in, c_out = conv
        layer = nn.Conv(c_out, tuple(window), kernel_init=init)
        image = jnp.ones((1, 8, 8, c_in))
        p = layer.init(key, image)
        assert p["params"]["kernel"].shape == conv
    linear = nnx.Linear(n_in, n_out, kernel_init=init, rngs=nnx.Rngs(0))
    assert linear.kernel.shape == (n_in, n_out)
    assert linear(x).shape == (2, n_out)


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_one_optax_step_without_nan(spec, shape2d, conv, key):
    init = jaxinit.get(spec)
    n_in, n_out = shape2d

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Dense(n_out, kernel_init=init)(x))
            return nn.Dense(1)(x)

    x = jax.random.normal(key, (16, n_in))
    y = jnp.sum(x[:, :3], axis=1, keepdims=True)
    model = Net()
    params = model.init(key, x)
    opt = optax.adam(1e-3)
    state = opt.init(params)

    def loss(p):
        return jnp.mean((model.apply(p, x) - y) ** 2)

    value, grads = jax.value_and_grad(loss)(params)
    updates, state = opt.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    assert np.isfinite(float(value)) and np.isfinite(float(loss(params)))
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=IDS)
def test_describe_reports_a_match_in_real_and_complex_dtypes(spec, shape2d, conv):
    # Never a false MISMATCH: i.i.d. entries on one draw, the others (orthogonal, low_rank,
    # sparse) on the spread over independent draws, complex ones on the radial convention
    # (E|w - mean|^2 = variance, E (w - mean)^2 = 0) for every entry that supports complex.
    init = jaxinit.get(spec)
    dtypes = [jnp.float32, jnp.bfloat16] + ([jnp.complex64] if init.supports_complex else [])
    for shape in filter(None, (shape2d, conv)):
        for dtype in dtypes:
            if shape == conv and dtype == jnp.complex64 and init.iid:
                # An i.i.d. entry's draw is elementwise noise times a factor of variance(shape):
                # the conv shape differs from the 2-D one only in its fans, judged here in the real
                # dtypes, and the complex noise is judged on the 2-D shape (a complex draw of this
                # 4-D shape compiles in ~2 s: jax.random's complex path). Entries whose structure
                # depends on the shape (orthogonal, delta_orthogonal, low_rank) keep the case.
                continue
            d = jaxinit.describe(init, shape, key=3, dtype=dtype)
            assert d.ok, str(d)
            if jnp.issubdtype(dtype, jnp.complexfloating) and init.random:
                assert d.circular_z is not None
