"""LSUV (jaxinit.lsuv): each layer's output variance on the batch ends within tol of the target,
in forward order, for the functional MLP, flax.linen and flax.nnx models; warnings, bad input,
vmap and jit."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxinit
from jaxinit import nets
from jaxinit.lsuv import LSUVStats, LSUVWarning

TOL = 0.1


def _batch(seed: int, shape: tuple[int, ...], scale: float = 3.0) -> jax.Array:
    # Inputs with variance scale**2, so the orthogonal base is far from unit output variance.
    return scale * jax.random.normal(jax.random.key(seed), shape)


def _mlp_variances(params, x, activation) -> list[float]:
    """Output variance of every layer, by a forward pass written out here (not the library's)."""
    phi = jaxinit.activations.activation(activation)
    layers = [params["input"], *nets.unstack(params)["hidden"]]
    out, act = [], x
    for layer in layers:
        h = act @ layer["kernel"] + layer["bias"]
        out.append(float(jnp.var(h)))
        act = phi(h)
    if "readout" in params:
        out.append(float(jnp.var(act @ params["readout"]["kernel"] + params["readout"]["bias"])))
    return out


# -- the functional MLP ------------------------------------------------------------------------
@pytest.mark.parametrize("stacked", [True, False], ids=["stacked", "list"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_lsuv_mlp_layer_variances_within_tol(activation, stacked):
    x = _batch(1, (256, 12))
    if stacked:
        params = nets.init(jax.random.key(0), 12, 64, 5, 3, jaxinit.orthogonal(), jaxinit.normal(0.3))
    else:
        params = nets.init(jax.random.key(0), 12, None, None, 3, jaxinit.orthogonal(), jaxinit.normal(0.3),
                           widths=(64, 48, 64, 32, 64))
    before = _mlp_variances(params, x, activation)
    assert max(abs(v - 1.0) for v in before) > 5 * TOL  # the base is off: LSUV has work to do
    out, stats = jaxinit.lsuv(params, x, activation, tol=TOL, return_stats=True)
    after = _mlp_variances(out, x, activation)
    assert len(after) == 6
    np.testing.assert_array_less(np.abs(np.array(after) - 1.0), TOL)
    np.testing.assert_allclose(np.asarray(stats.variance), after, rtol=1e-5)
    assert stats.layers == ("input", "hidden[0]", "hidden[1]", "hidden[2]", "hidden[3]", "readout")
    assert bool(stats.reached.all())
    # Biases untouched; kernels only rescaled (each by one positive factor), structure and dtypes kept.
    for old, new in zip(jax.tree.leaves(nets.unstack(params)), jax.tree.leaves(nets.unstack(out)), strict=True):
        assert new.dtype == old.dtype and new.shape == old.shape
    for old, new in zip([params["input"], *nets.unstack(params)["hidden"], params["readout"]],
                        [out["input"], *nets.unstack(out)["hidden"], out["readout"]], strict=True):
        np.testing.assert_array_equal(new["bias"], old["bias"])
        ratio = np.asarray(new["kernel"]) / np.asarray(old["kernel"])
        np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)
        assert ratio.flat[0] > 0


def test_lsuv_mlp_target_other_than_one():
    x = _batch(2, (200, 6))
    params = nets.init(jax.random.key(3), 6, 32, 3, None, jaxinit.orthogonal())
    out = jaxinit.lsuv(params, x, "tanh", target=2.5, tol=0.05)
    np.testing.assert_array_less(np.abs(np.array(_mlp_variances(out, x, "tanh")) - 2.5), 0.05)


def test_lsuv_mlp_keeps_low_precision_params():
    x = _batch(2, (128, 6))
    params = nets.init(jax.random.key(3), 6, 32, 3, 2, jaxinit.orthogonal(), dtype=jnp.bfloat16)
    out = jaxinit.lsuv(params, x, "relu")
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(out))
    x16 = x.astype(jnp.bfloat16)
    variances = _mlp_variances(jax.tree.map(lambda a: a.astype(jnp.float32), out),
                               x16.astype(jnp.float32), "relu")
    np.testing.assert_array_less(np.abs(np.array(variances) - 1.0), TOL)


# -- flax.linen and flax.nnx models with a Conv and a Dense layer ------------------------------
class LinenConvNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(8, (3, 3), kernel_init=jaxinit.orthogonal(), bias_init=jaxinit.normal(0.2))(x))
        x = x.reshape(x.shape[0], -1)
        x = jnp.tanh(nn.Dense(16, kernel_init=jaxinit.orthogonal(scale=4.0))(x))
        return nn.Dense(4)(x)


def _linen_variances(model, variables, x) -> dict[str, float]:
    _, state = model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
    inter = state["intermediates"]
    return {name: float(jnp.var(inter[name]["__call__"][0])) for name in inter if name != "__call__"}


def test_lsuv_linen_conv_and_dense_within_tol():
    model = LinenConvNet()
    x = _batch(4, (32, 8, 8, 3))
    variables = model.init(jax.random.key(5), x)
    before = _linen_variances(model, variables, x)
    assert set(before) == {"Conv_0", "Dense_0", "Dense_1"}
    assert max(abs(v - 1.0) for v in before.values()) > 5 * TOL
    out, stats = jaxinit.lsuv_linen(model, variables, x, return_stats=True)
    assert stats.layers == ("Conv_0", "Dense_0", "Dense_1")
    after = _linen_variances(model, out, x)
    for name, v in after.items():
        assert abs(v - 1.0) < TOL, (name, v)
    np.testing.assert_allclose(np.asarray(stats.variance), [after[n] for n in stats.layers], rtol=1e-4)
    for name in after:
        np.testing.assert_array_equal(out["params"][name]["bias"], variables["params"][name]["bias"])


class NnxConvNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), kernel_init=jaxinit.orthogonal(), bias_init=jaxinit.normal(0.2),
                             rngs=rngs)
        self.dense = nnx.Linear(8 * 8 * 8, 16, kernel_init=jaxinit.orthogonal(scale=4.0), rngs=rngs)
        self.head = nnx.Linear(16, 4, rngs=rngs)

    def features(self, x):
        conv = self.conv(x)
        dense = self.dense(nnx.relu(conv).reshape(x.shape[0], -1))
        return {"conv": conv, "dense": dense, "head": self.head(jnp.tanh(dense))}

    def __call__(self, x):
        return self.features(x)["head"]


def test_lsuv_nnx_conv_and_linear_within_tol_in_place():
    model = NnxConvNet(nnx.Rngs(5))
    x = _batch(4, (32, 8, 8, 3))
    before = {k: float(jnp.var(v)) for k, v in model.features(x).items()}
    assert max(abs(v - 1.0) for v in before.values()) > 5 * TOL
    bias = model.conv.bias[...]
    stats = jaxinit.lsuv_nnx(model, x, return_stats=True)
    assert stats.layers == ("conv", "dense", "head")
    after = {k: float(jnp.var(v)) for k, v in model.features(x).items()}  # the model itself changed
    for name, v in after.items():
        assert abs(v - 1.0) < TOL, (name, v)
    np.testing.assert_allclose(np.asarray(stats.variance), [after[n] for n in stats.layers], rtol=1e-4)
    np.testing.assert_array_equal(model.conv.bias[...], bias)
    assert jaxinit.lsuv_nnx(model, x) is None


# -- forward order -----------------------------------------------------------------------------
# Declared (and alphabetically) in the opposite order to the one they run in; the layer that runs
# first starts 5x too large, so fitting the later layer before it would leave the later one ~25x off.
class LinenReversed(nn.Module):
    def setup(self):
        self.a_last = nn.Dense(32, kernel_init=jaxinit.orthogonal())
        self.b_first = nn.Dense(32, kernel_init=jaxinit.orthogonal(scale=5.0))

    def __call__(self, x):
        return self.a_last(nn.relu(self.b_first(x)))


class NnxReversed(nnx.Module):
    def __init__(self, rngs):
        self.a_last = nnx.Linear(32, 32, kernel_init=jaxinit.orthogonal(), rngs=rngs)
        self.b_first = nnx.Linear(8, 32, kernel_init=jaxinit.orthogonal(scale=5.0), rngs=rngs)

    def __call__(self, x):
        return self.a_last(nnx.relu(self.b_first(x)))


def test_lsuv_linen_processes_layers_in_running_order():
    model, x = LinenReversed(), _batch(6, (128, 8), scale=1.0)
    out, stats = jaxinit.lsuv_linen(model, model.init(jax.random.key(0), x), x, return_stats=True)
    assert stats.layers == ("b_first", "a_last")
    after = _linen_variances(model, out, x)
    assert abs(after["b_first"] - 1.0) < TOL and abs(after["a_last"] - 1.0) < TOL, after


def test_lsuv_nnx_processes_layers_in_running_order():
    model, x = NnxReversed(nnx.Rngs(0)), _batch(6, (128, 8), scale=1.0)
    stats = jaxinit.lsuv_nnx(model, x, return_stats=True)
    assert stats.layers == ("b_first", "a_last")
    h = model.b_first(x)
    assert abs(float(jnp.var(h)) - 1.0) < TOL
    assert abs(float(jnp.var(model.a_last(nnx.relu(h)))) - 1.0) < TOL


# -- tolerance not reached ---------------------------------------------------------------------
def test_lsuv_unreached_tolerance_warns_once_naming_the_layer():
    # One rescaling cannot reach a 1e-4 tolerance when the bias adds variance the kernel does not scale.
    x = _batch(7, (128, 6))
    params = nets.init(jax.random.key(0), 6, 32, 2, None, jaxinit.orthogonal(), jaxinit.normal(0.5))
    with pytest.warns(LSUVWarning) as record:
        out, stats = jaxinit.lsuv(params, x, "relu", tol=1e-4, max_iter=1, return_stats=True)
    missed = [n for n, r in zip(stats.layers, np.asarray(stats.reached), strict=True) if not r]
    assert missed and len(record) == len(missed)
    for warning, name in zip(record, missed, strict=True):
        i = stats.layers.index(name)
        message = str(warning.message)
        assert f"layer {name!r}" in message and f"{float(stats.variance[i]):.6g}" in message
    np.testing.assert_array_equal(np.asarray(stats.iterations), 1)
    np.testing.assert_allclose(_mlp_variances(out, x, "relu"), np.asarray(stats.variance), rtol=1e-5)


def test_lsuv_unreachable_target_keeps_last_scale_and_reports_variance():
    # A bias spread of variance ~9 over units: no kernel scale brings the output variance to 1.
    model = nn.Dense(16, bias_init=jaxinit.normal(3.0))
    x = _batch(8, (64, 4), scale=1.0)
    variables = model.init(jax.random.key(1), x)
    with pytest.warns(LSUVWarning, match=r"layer 'Dense' .*variance on the batch is") as record:
        out, stats = jaxinit.lsuv_linen(model, variables, x, return_stats=True)
    assert len(record) == 1
    assert int(stats.iterations[0]) == 10 and not bool(stats.reached[0])
    bias_var = float(jnp.var(variables["params"]["bias"]))
    assert float(stats.variance[0]) > 1.0 + TOL and abs(float(stats.variance[0]) - bias_var) < 0.5
    np.testing.assert_allclose(float(jnp.var(model.apply(out, x))), float(stats.variance[0]), rtol=1e-4)


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"tol": 0.0}, r"tol must be > 0; got 0\.0"),
    ({"tol": -0.1}, r"tol must be > 0; got -0\.1"),
    ({"max_iter": 0}, r"max_iter must be >= 1; got 0"),
    ({"target": 0.0}, r"target must be > 0; got 0\.0"),
    ({"target": -1.0}, r"target must be > 0; got -1\.0"),
])
def test_lsuv_bad_arguments_name_argument_value_and_allowed(kwargs, match):
    x = _batch(0, (16, 4))
    params = nets.init(jax.random.key(0), 4, 8, 2, None, jaxinit.orthogonal())
    with pytest.raises(ValueError, match=match):
        jaxinit.lsuv(params, x, "relu", **kwargs)
    model = nn.Dense(3)
    with pytest.raises(ValueError, match=match):
        jaxinit.lsuv_linen(model, model.init(jax.random.key(0), x), x, **kwargs)
    with pytest.raises(ValueError, match=match):
        jaxinit.lsuv_nnx(nnx.Linear(4, 3, rngs=nnx.Rngs(0)), x, **kwargs)
    with pytest.raises(ValueError, match=match):
        jaxinit.LSUV(**kwargs)


def test_lsuv_batch_of_one_example_is_refused():
    x = jnp.ones((1, 4))
    match = r"at least 2 examples.*batch of one example is undefined; got x\.shape=\(1, 4\)"
    params = nets.init(jax.random.key(0), 4, 8, 2, None, jaxinit.orthogonal())
    with pytest.raises(ValueError, match=match):
        jaxinit.lsuv(params, x, "relu")
    model = nn.Dense(3)
    with pytest.raises(ValueError, match=match):
        jaxinit.lsuv_linen(model, model.init(jax.random.key(0), x), x)
    with pytest.raises(ValueError, match=match):
        jaxinit.lsuv_nnx(nnx.Linear(4, 3, rngs=nnx.Rngs(0)), x)


def test_lsuv_model_without_dense_or_conv_is_refused():
    class NoLayers(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x * self.param("w", jax.nn.initializers.ones, (x.shape[-1],))

    x = jnp.ones((4, 3))
    with pytest.raises(ValueError, match="runs no flax.linen Dense"):
        jaxinit.lsuv_linen(NoLayers(), NoLayers().init(jax.random.key(0), x), x)
    with pytest.raises(ValueError, match="runs no flax.nnx Linear"):
        jaxinit.lsuv_nnx(nets.NnxMLP(3, 8, rngs=nnx.Rngs(0)), x)
    with pytest.raises(TypeError, match="must be a flax.nnx.Module"):
        jaxinit.lsuv_nnx(NoLayers(), x)


# -- vmap and jit --------------------------------------------------------------------------------
def test_lsuv_vmapped_member_equals_its_unvmapped_result():
    x = _batch(9, (128, 6))
    base = nets.init(jax.random.key(0), 6, 32, 4, 2, jaxinit.orthogonal(), jaxinit.normal(0.5))
    scales = jnp.array([0.0, 0.5, 1.0, 0.2])  # bias sizes: members need different numbers of rescalings
    members = jax.vmap(lambda c: {name: {"kernel": layer["kernel"], "bias": c * layer["bias"]}
                                  for name, layer in base.items()})(scales)
    vout, vstats = jax.vmap(lambda p: jaxinit.lsuv(p, x, "relu", tol=0.01, return_stats=True))(members)
    iterations = np.asarray(vstats.iterations)
    assert len({tuple(row) for row in iterations}) > 1  # members did not all iterate alike
    for m in range(len(scales)):
        member = jax.tree.map(lambda a, m=m: a[m], members)
        out, stats = jaxinit.lsuv(member, x, "relu", tol=0.01, return_stats=True)
        np.testing.assert_array_equal(iterations[m], np.asarray(stats.iterations))
        jax.tree.map(lambda v, a, m=m: np.testing.assert_allclose(v[m], a, rtol=1e-6, atol=0), vout, out)
        np.testing.assert_allclose(np.asarray(vstats.variance[m]), np.asarray(stats.variance), rtol=1e-6)


def test_lsuv_under_jit_equals_eager():
    x = _batch(10, (64, 5))
    params = nets.init(jax.random.key(1), 5, 16, 3, 1, jaxinit.orthogonal(), jaxinit.normal(0.3))
    eager, stats = jaxinit.lsuv(params, x, "tanh", return_stats=True)
    jitted, jstats = jax.jit(lambda p, x: jaxinit.lsuv(p, x, "tanh", return_stats=True))(params, x)
    assert isinstance(jstats, LSUVStats) and jstats.layers == stats.layers
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), jitted, eager)


def test_lsuv_linen_under_jit_equals_eager():
    model = LinenConvNet()
    xc = _batch(4, (8, 8, 8, 3))
    variables = model.init(jax.random.key(5), xc)
    eager = jaxinit.lsuv_linen(model, variables, xc)
    jitted = jax.jit(jaxinit.lsuv_linen, static_argnums=0)(model, variables, xc)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), jitted, eager)


def test_lsuv_nnx_inside_nnx_jit_equals_eager():
    xc = _batch(4, (8, 8, 8, 3))
    m1, m2 = NnxConvNet(nnx.Rngs(5)), NnxConvNet(nnx.Rngs(5))
    jaxinit.lsuv_nnx(m1, xc)
    nnx.jit(lambda m, x: jaxinit.lsuv_nnx(m, x))(m2, xc)
    np.testing.assert_allclose(m2.dense.kernel[...], m1.dense.kernel[...], rtol=1e-6)


# -- the spec value ------------------------------------------------------------------------------
def test_lsuv_spec_is_a_hashable_value_that_round_trips():
    spec = jaxinit.LSUV()
    assert spec == jaxinit.LSUV(base="orthogonal") and hash(spec) == hash(jaxinit.LSUV(base={"name": "orthogonal"}))
    assert repr(spec) == "LSUV(base=orthogonal(), target=1.0, tol=0.1, max_iter=10)"
    assert spec.to_dict() == {"name": "lsuv", "base": "orthogonal", "target": 1.0, "tol": 0.1, "max_iter": 10}
    other = jaxinit.LSUV(base=jaxinit.he_normal(), tol=0.05, max_iter=3)
    assert jaxinit.LSUV.from_dict(other.to_dict()) == other and other != spec
    assert eval(repr(spec), {"LSUV": jaxinit.LSUV, "orthogonal": jaxinit.orthogonal}) == spec
    assert not callable(spec)  # not a (key, shape, dtype) initializer: it needs data
    with pytest.raises(TypeError, match="base must be a jaxinit initializer"):
        jaxinit.LSUV(base=3)
    with pytest.raises(ValueError, match="unknown initializer name 'orthogonl'.*Did you mean 'orthogonal'"):
        jaxinit.LSUV(base="orthogonl")
    with pytest.raises(ValueError, match="LSUV takes no argument 'tolerance'"):
        jaxinit.LSUV.from_dict({"name": "lsuv", "tolerance": 0.1})


def test_lsuv_spec_init_draws_with_base_then_fits():
    x = _batch(11, (128, 6))
    spec = jaxinit.LSUV(tol=0.05)
    out = spec.init(jax.random.key(2), x, 32, 3, 2, "relu")
    drawn = nets.init(jax.random.key(2), 6, 32, 3, 2, jaxinit.orthogonal())
    expected = jaxinit.lsuv(drawn, x, "relu", tol=0.05)
    jax.tree.map(np.testing.assert_array_equal, out, expected)
    np.testing.assert_array_less(np.abs(np.array(_mlp_variances(out, x, "relu")) - 1.0), 0.05)
