"""The MLP: functional init/apply, the key scheme, and the linen and nnx faces of the same network."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxinit
from jaxinit import nets

from helpers import variance_tolerance

IN, WIDTH, DEPTH, OUT = 5, 16, 4, 3
GAUSS_HE = jaxinit.variance_scaling(2.0, "fan_in", "normal")
RANDOM_BIAS = jaxinit.normal(0.1)


def _x(n=7, dim=IN, seed=1):
    return jax.random.normal(jax.random.key(seed), (n, dim))


def _numpy_forward(params, x, phi, readout=True):
    """The documented math, unrolled, in float64: h^l = x^{l-1} W^l + b^l, x^l = phi(h^l)."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), nets.unstack(params))
    x = np.asarray(x, np.float64)
    for layer in [p["input"], *p["hidden"]]:
        x = phi(x @ layer["kernel"] + layer["bias"])
    if readout and "readout" in p:
        x = x @ p["readout"]["kernel"] + p["readout"]["bias"]
    return x


# -- init: shapes and the key scheme --------------------------------------------------------------
def test_init_shapes_stacked_with_readout(key):
    p = nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE)
    shapes = jax.tree.map(jnp.shape, p)
    assert shapes == {
        "input": {"kernel": (IN, WIDTH), "bias": (WIDTH,)},
        "hidden": {"kernel": (DEPTH - 1, WIDTH, WIDTH), "bias": (DEPTH - 1, WIDTH)},
        "readout": {"kernel": (WIDTH, OUT), "bias": (OUT,)},
    }
    assert nets.widths_of(p) == (IN, (WIDTH,) * DEPTH, OUT)
    assert nets.num_params(p) == IN * WIDTH + WIDTH + (DEPTH - 1) * (WIDTH + 1) * WIDTH + WIDTH * OUT + OUT


def test_init_without_readout_and_depth_one(key):
    p = nets.init(key, IN, WIDTH, 1, None, GAUSS_HE)
    assert "readout" not in p
    assert p["hidden"]["kernel"].shape == (0, WIDTH, WIDTH)
    y = nets.apply(p, _x(), "tanh")
    np.testing.assert_allclose(y, _numpy_forward(p, _x(), np.tanh), rtol=1e-5, atol=1e-6)


def draw(init, key, shape):
    return jax.jit(init, static_argnums=(1, 2))(key, shape, jnp.float32)


def test_layer_i_draws_its_kernel_with_fold_in_key_i(key):
    p = nets.unstack(nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE, RANDOM_BIAS))
    layers = [p["input"], *p["hidden"], p["readout"]]
    for i, layer in enumerate(layers):
        shape = layer["kernel"].shape
        # compared with a jitted call: the engine draws inside jit, and XLA's fusion may round the
        # eager (op-by-op) normal sampler's last bit differently
        np.testing.assert_array_equal(layer["kernel"], draw(GAUSS_HE, jax.random.fold_in(key, i), shape))
        bias_key = jax.random.fold_in(jax.random.fold_in(key, nets.BIAS_STREAM), i)
        np.testing.assert_array_equal(layer["bias"], draw(RANDOM_BIAS, bias_key, (shape[1],)))
        kernel_key, same_bias_key = nets.layer_keys(key, i)
        np.testing.assert_array_equal(jax.random.key_data(kernel_key),
                                      jax.random.key_data(jax.random.fold_in(key, i)))
        np.testing.assert_array_equal(jax.random.key_data(same_bias_key), jax.random.key_data(bias_key))


@pytest.mark.parametrize("kernel_init", [GAUSS_HE, jaxinit.he_normal()], ids=["gauss_he", "he_normal"])
def test_stacked_vmap_draw_equals_one_call_per_layer(key, kernel_init):
    stacked = nets.init(key, IN, WIDTH, DEPTH, OUT, kernel_init, RANDOM_BIAS)
    per_layer = nets.init(key, IN, None, None, OUT, kernel_init, RANDOM_BIAS, widths=(WIDTH,) * DEPTH)
    assert isinstance(per_layer["hidden"], list)
    jax.tree.map(np.testing.assert_array_equal, stacked, nets.stack(per_layer))
    jax.tree.map(np.testing.assert_array_equal, nets.unstack(stacked), per_layer)


def test_init_is_deterministic_and_accepts_raw_keys(key):
    raw = jax.random.PRNGKey(3)
    a = nets.init(raw, IN, WIDTH, DEPTH, OUT, GAUSS_HE)
    b = nets.init(jax.random.wrap_key_data(raw), IN, WIDTH, DEPTH, OUT, GAUSS_HE)
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_init_dtype_and_jax_closure_initializer(key):
    p = nets.init(key, IN, WIDTH, 2, OUT, jax.nn.initializers.lecun_normal(), dtype=jnp.bfloat16)
    assert {a.dtype for a in jax.tree.leaves(p)} == {jnp.dtype(jnp.bfloat16)}


def test_init_differing_widths_is_a_list(key):
    p = nets.init(key, IN, None, None, OUT, GAUSS_HE, widths=(16, 8, 4))
    assert [layer["kernel"].shape for layer in p["hidden"]] == [(16, 8), (8, 4)]
    assert p["readout"]["kernel"].shape == (4, OUT)
    assert nets.widths_of(p) == (IN, (16, 8, 4), OUT)
    with pytest.raises(ValueError, match=r"only equal hidden widths can be stacked; got widths=\(16, 8, 4\)"):
        nets.stack(p)


# -- apply ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation, phi", [("relu", lambda v: np.maximum(v, 0)), ("tanh", np.tanh)])
def test_apply_matches_the_documented_math(key, activation, phi):
    p = nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE, RANDOM_BIAS)
    y = nets.apply(p, _x(), activation, precision="highest")
    np.testing.assert_allclose(y, _numpy_forward(p, _x(), phi), rtol=1e-5, atol=1e-5)
    lst = nets.unstack(p)
    np.testing.assert_allclose(nets.apply(lst, _x(), activation, "highest"), y, rtol=1e-6, atol=1e-6)


def test_apply_output_activations(key):
    p = nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE)
    logits = nets.apply(p, _x(), "relu")
    np.testing.assert_allclose(nets.apply(p, _x(), "relu", output_activation="softmax"),
                               jax.nn.softmax(logits), rtol=1e-6)
    np.testing.assert_allclose(nets.apply(p, _x(), "relu", output_activation="sigmoid"),
                               jax.nn.sigmoid(logits), rtol=1e-6)


def test_apply_accepts_any_callable_and_leading_batch_axes(key):
    p = nets.init(key, IN, WIDTH, 2, None, GAUSS_HE)
    x = jax.random.normal(key, (2, 3, IN))
    y = nets.apply(p, x, jnp.sin)
    assert y.shape == (2, 3, WIDTH)
    np.testing.assert_allclose(y, nets.apply(p, x, "sin"), rtol=1e-6)


# -- linen and nnx: the same network ---------------------------------------------------------------
@pytest.mark.parametrize("layout", ["stacked", "list"])
def test_linen_and_nnx_give_the_functional_outputs(key, layout):
    if layout == "stacked":
        p = nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE, RANDOM_BIAS)
        model = nets.MLP(WIDTH, depth=DEPTH, out_features=OUT, activation="tanh", output_activation="softmax")
    else:
        p = nets.init(key, IN, None, None, OUT, GAUSS_HE, RANDOM_BIAS, widths=(16, 12, 8))
        model = nets.MLP((16, 12, 8), out_features=OUT, activation="tanh", output_activation="softmax")
    x = _x()
    expected = nets.apply(p, x, "tanh", output_activation="softmax")
    variables = nets.to_linen_params(p)
    # the module declares exactly these variables
    template = jax.jit(model.init)(jax.random.key(9), x)
    assert jax.tree.map(jnp.shape, template) == jax.tree.map(jnp.shape, variables)
    np.testing.assert_allclose(jax.jit(model.apply)(variables, x), expected, rtol=1e-6, atol=1e-7)
    jax.tree.map(np.testing.assert_array_equal, nets.from_linen_params(variables), p)

    nnx_model = nets.nnx_from_params(p, activation="tanh", output_activation="softmax")
    np.testing.assert_allclose(nnx_model(x), expected, rtol=1e-6, atol=1e-7)
    jax.tree.map(np.testing.assert_array_equal, nets.nnx_to_params(nnx_model), p)


def test_linen_init_runs_any_initializer_and_loads_back(key):
    x = _x()
    for kernel_init in (jaxinit.lecun_uniform(), jax.nn.initializers.orthogonal()):
        model = nets.MLP(WIDTH, depth=3, out_features=OUT, kernel_init=kernel_init, bias_init=RANDOM_BIAS)
        variables = jax.jit(model.init)(key, x)
        p = nets.from_linen_params(variables)
        assert nets.widths_of(p) == (IN, (WIDTH,) * 3, OUT)
        np.testing.assert_allclose(model.apply(variables, x), nets.apply(p, x, "relu"), rtol=1e-6, atol=1e-7)
    # the stacked hidden kernels are distinct draws, each with the initializer's variance
    wide = nets.MLP(256, depth=3)
    hidden = nets.from_linen_params(jax.jit(wide.init)(key, jnp.ones((1, 256))))["hidden"]["kernel"]
    assert not np.allclose(hidden[0], hidden[1])
    # He: Var = 2 / fan_in, within Z standard errors of 2 x 256 x 256 entries (~2.3%; Glorot's 1/256 is far out)
    assert abs(np.var(np.asarray(hidden, np.float64)) - 2 / 256) < variance_tolerance(hidden)


def _equal_bits(got, want):
    jax.tree.map(np.testing.assert_array_equal, got, want)
    assert jax.tree.structure(got) == jax.tree.structure(want)


@pytest.mark.parametrize("layout", ["stacked", "list"])
@pytest.mark.parametrize("key_kind", ["typed", "raw"])
def test_linen_init_holds_nets_init_of_the_key_given(key_kind, layout):
    """README: same weights from the same key. MLP(...).init(key, x) is nets.init(key, ...), bit for bit."""
    key = jax.random.key(3) if key_kind == "typed" else jax.random.PRNGKey(3)
    features, depth, sizes = (WIDTH, DEPTH, (WIDTH, DEPTH)) if layout == "stacked" else ((16, 8, 12), None, (None, None))
    widths = {} if layout == "stacked" else {"widths": features}
    model = nets.MLP(features, depth=depth, out_features=OUT, kernel_init=GAUSS_HE, bias_init=RANDOM_BIAS)
    want = nets.init(key, IN, *sizes, OUT, GAUSS_HE, RANDOM_BIAS, **widths)
    _equal_bits(nets.from_linen_params(model.init(key, _x())), want)
    _equal_bits(nets.from_linen_params(model.init({"params": key}, _x())), want)
    _equal_bits(nets.from_linen_params(jax.jit(model.init)(key, _x())), want)
    # applying loaded weights draws nothing and runs the same network
    variables = model.init(key, _x())
    np.testing.assert_array_equal(model.apply(variables, _x()), nets.apply(want, _x(), "relu"))


def test_linen_mlp_inside_a_module_draws_from_its_path_key(key):
    from flax.core.scope import LazyRng

    class Two(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nets.MLP(WIDTH, depth=2, name="a")(x) + nets.MLP(WIDTH, depth=2, name="b")(x)

    p = Two().init(key, _x())["params"]
    for name in ("a", "b"):
        path_key = LazyRng.create(key, name).as_jax_rng()
        _equal_bits(nets.from_linen_params(p[name]), nets.init(path_key, IN, WIDTH, 2, None, nets.DEFAULT_KERNEL_INIT))
    assert not np.array_equal(p["a"]["input"]["kernel"], p["b"]["input"]["kernel"])


@pytest.mark.parametrize("seed_kind", ["int", "typed", "raw"])
def test_nnx_rngs_hold_nets_init_of_the_root_key(seed_kind):
    """NnxMLP(rngs=nnx.Rngs(seed)) / Rngs(params=key) is nets.init of the root key, bit for bit."""
    root = jax.random.key(5)
    rngs = {"int": lambda: nnx.Rngs(5), "typed": lambda: nnx.Rngs(params=root),
            "raw": lambda: nnx.Rngs(params=jax.random.key_data(root))}[seed_kind]()
    kw = {"kernel_init": GAUSS_HE, "bias_init": RANDOM_BIAS}
    first = nets.NnxMLP(IN, WIDTH, OUT, depth=DEPTH, rngs=rngs, **kw)
    _equal_bits(first.params(), nets.init(root, IN, WIDTH, DEPTH, OUT, GAUSS_HE, RANDOM_BIAS))
    # the stream's count skips the layer indices 0..DEPTH, so nnx's next draws never repeat a layer key
    assert int(rngs.params.count[...]) == DEPTH + 1
    second = nets.NnxMLP(IN, (16, 8), OUT, rngs=rngs, **kw)
    _equal_bits(second.params(), nets.init(jax.random.fold_in(root, DEPTH + 1), IN, None, None, OUT, GAUSS_HE,
                                           RANDOM_BIAS, widths=(16, 8)))


def test_nnx_rngs_under_nnx_jit_give_the_same_weights():
    build = nnx.jit(lambda rngs: nets.NnxMLP(IN, WIDTH, OUT, depth=DEPTH, kernel_init=GAUSS_HE, rngs=rngs))
    rngs = nnx.Rngs(params=jax.random.key(5))
    _equal_bits(build(rngs).params(), nets.init(jax.random.key(5), IN, WIDTH, DEPTH, OUT, GAUSS_HE))
    assert int(rngs.params.count[...]) == DEPTH + 1


def test_nnx_with_a_key_has_exactly_the_functional_weights(key):
    model = nets.NnxMLP(IN, WIDTH, OUT, depth=DEPTH, kernel_init=GAUSS_HE, rngs=key)
    jax.tree.map(np.testing.assert_array_equal, model.params(), nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE))
    with_rngs = nets.NnxMLP(IN, (16, 8), OUT, kernel_init=GAUSS_HE, rngs=nnx.Rngs(0))
    assert nets.widths_of(with_rngs.params()) == (IN, (16, 8), OUT)
    assert with_rngs(_x()).shape == (7, OUT)
    assert set(nnx.state(model, nnx.Param).keys()) == {"input", "hidden", "readout"}


# -- bad input --------------------------------------------------------------------------------------
def test_bad_sizes_are_rejected(key):
    with pytest.raises(ValueError, match=r"depth must be >= 1; got 0"):
        nets.init(key, IN, WIDTH, 0, OUT, GAUSS_HE)
    with pytest.raises(ValueError, match=r"width must be >= 1; got 0"):
        nets.init(key, IN, 0, DEPTH, OUT, GAUSS_HE)
    with pytest.raises(ValueError, match=r"in_dim must be >= 1; got -2"):
        nets.init(key, -2, WIDTH, DEPTH, OUT, GAUSS_HE)
    with pytest.raises(TypeError, match=r"depth must be an integer; got 2.5"):
        nets.init(key, IN, WIDTH, 2.5, OUT, GAUSS_HE)
    with pytest.raises(ValueError, match=r"give either width and depth, or widths"):
        nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE, widths=(4, 4))
    with pytest.raises(ValueError, match=r"widths entries must be >= 1; got 0"):
        nets.init(key, IN, None, None, OUT, GAUSS_HE, widths=(4, 0))
    with pytest.raises(TypeError, match=r"kernel_init must be an initializer.*got 'he_normal'"):
        nets.init(key, IN, WIDTH, DEPTH, OUT, "he_normal")
    with pytest.raises(TypeError, match=r"dtype must be a floating-point dtype.*got dtype=int32"):
        nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE, dtype=jnp.int32)
    with pytest.raises(ValueError, match=r"depth must be >= 1; got 0"):
        nets.MLP(WIDTH, depth=0).init(key, _x())


def test_mismatched_input_width_names_both(key):
    p = nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE)
    with pytest.raises(ValueError, match=r"in_dim=5 on its last axis; got 4 features \(x.shape=\(7, 4\)\)"):
        nets.apply(p, _x(dim=4), "relu")
    with pytest.raises(ValueError, match=r"in_dim=5 on its last axis; got 4 features"):
        nets.nnx_from_params(p)(_x(dim=4))


def test_unknown_activation_lists_the_known_ones(key):
    p = nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE)
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'\. Did you mean 'relu'\? Known: .*tanh"):
        nets.apply(p, _x(), "rleu")
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'"):
        nets.MLP(WIDTH, depth=2, activation="rleu").init(key, _x())
    with pytest.raises(ValueError, match=r"output_activation must be one of \['sigmoid', 'softmax'\]; got 'softmx'"):
        nets.apply(p, _x(), "relu", output_activation="softmx")
    with pytest.raises(TypeError, match=r"activation must be a name .* or a callable; got 3"):
        nets.apply(p, _x(), 3)


def test_bad_params_and_nnx_size_mismatch(key):
    with pytest.raises(ValueError, match=r"params must be the dict jaxinit.nets.init returns"):
        nets.apply({"params": {}}, _x(), "relu")
    p = nets.init(key, IN, WIDTH, DEPTH, OUT, GAUSS_HE)
    with pytest.raises(ValueError, match=r"params hold a network \(in_dim, widths, out_dim\)"):
        nets.NnxMLP(IN, 8, OUT, depth=DEPTH, params=p)
    with pytest.raises(TypeError, match=r"NnxMLP needs rngs="):
        nets.NnxMLP(IN, 8, OUT)
