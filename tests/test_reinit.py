"""reinit: path rules over linen param dicts, nnx state and (if installed) equinox modules."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxinit
from jaxinit.reinit import path_key, path_string, reinit, stable_hash

from conftest import run_python


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(32)(x))
        x = nn.relu(nn.Dense(32)(x))
        return nn.Dense(4, name="head")(x)


@pytest.fixture
def variables(key):
    return MLP().init(key, jnp.ones((1, 16)))


def leaf(tree, path):
    for part in path.split("/"):
        tree = tree[part]
    return tree


def test_matching_leaves_get_init_at_their_path_key(variables, key):
    init = jaxinit.orthogonal()
    new = reinit(variables, {r"Dense_\d+/kernel$": init, "bias$": jaxinit.zeros}, key)
    for path in ("params/Dense_0/kernel", "params/Dense_1/kernel"):
        old = leaf(variables, path)
        expected = init(jax.random.fold_in(key, np.uint32(stable_hash(path))), old.shape, old.dtype)
        np.testing.assert_array_equal(np.asarray(leaf(new, path)), np.asarray(expected))
        np.testing.assert_array_equal(np.asarray(leaf(new, path)), np.asarray(init(path_key(key, path), old.shape)))
    for path in ("params/Dense_0/bias", "params/Dense_1/bias", "params/head/bias"):
        assert not np.any(np.asarray(leaf(new, path)))
    assert leaf(new, "params/head/kernel") is leaf(variables, "params/head/kernel")  # untouched
    assert jax.tree.structure(new) == jax.tree.structure(variables)


def test_first_matching_rule_wins_and_none_keeps(variables, key):
    rules = {"head/": None, "Dense_1/kernel$": jaxinit.zeros, "kernel$": jaxinit.ones}
    new = reinit(variables, rules, key)
    assert leaf(new, "params/head/kernel") is leaf(variables, "params/head/kernel")
    assert not np.any(np.asarray(leaf(new, "params/Dense_1/kernel")))
    assert np.all(np.asarray(leaf(new, "params/Dense_0/kernel")) == 1)
    # A list of pairs is an explicit order too.
    again = reinit(variables, list(rules.items()), key)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), new, again))


def test_leaf_weights_do_not_depend_on_the_other_leaves(variables, key):
    rules = {"kernel$": jaxinit.he_normal()}
    alone = reinit({"params": {"Dense_0": dict(variables["params"]["Dense_0"])}}, rules, key)
    full = reinit(variables, rules, key)
    np.testing.assert_array_equal(np.asarray(alone["params"]["Dense_0"]["kernel"]),
                                  np.asarray(full["params"]["Dense_0"]["kernel"]))


def test_path_hash_is_stable_across_processes(key):
    # Python's str hash is salted per process; the path hash must not be.
    out = run_python(
        """
        import json, jax, numpy as np, jaxinit
        from jaxinit.reinit import reinit, stable_hash
        params = {"params": {"Dense_0": {"kernel": np.zeros((8, 4), np.float32)}}}
        new = reinit(params, {"kernel": jaxinit.he_normal()}, jax.random.key(20261123))
        print(json.dumps([stable_hash("params/Dense_0/kernel"), new["params"]["Dense_0"]["kernel"].tolist()]))
        """
    )
    hashed, values = json.loads(out)
    assert hashed == stable_hash("params/Dense_0/kernel")
    params = {"params": {"Dense_0": {"kernel": np.zeros((8, 4), np.float32)}}}
    ours = reinit(params, {"kernel": jaxinit.he_normal()}, key)["params"]["Dense_0"]["kernel"]
    np.testing.assert_array_equal(np.asarray(values, np.float32), np.asarray(ours))


def test_dtype_shape_and_applying_the_model(key):
    model = MLP()
    x = jnp.ones((2, 16))
    variables = jax.tree.map(lambda a: a.astype(jnp.bfloat16), model.init(key, x))
    new = reinit(variables, {"kernel$": "he_normal", "bias$": {"name": "constant", "value": 0.1}}, key)
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(new))
    assert model.apply(new, x.astype(jnp.bfloat16)).shape == (2, 4)


def test_plain_callables_and_jit(variables, key):
    rules = {"kernel$": jax.nn.initializers.lecun_normal(), "bias$": jaxinit.zeros}
    eager = reinit(variables, rules, key)
    jitted = jax.jit(lambda v, k: reinit(v, rules, k))(variables, key)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), eager, jitted))


def test_partitioned_boxes_keep_their_metadata(key):
    dense = nn.Dense(8, kernel_init=nn.with_partitioning(nn.initializers.zeros, (None, "model")))
    variables = dense.init(key, jnp.ones((1, 4)))
    new = reinit(variables, {"params/kernel$": jaxinit.orthogonal()}, key)
    kernel = new["params"]["kernel"]
    assert isinstance(kernel, nn.Partitioned) and kernel.names == (None, "model")
    w = np.asarray(kernel.unbox())
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-5)


class NnxMLP(nnx.Module):
    def __init__(self, rngs):
        self.layers = nnx.List([nnx.Linear(16, 32, rngs=rngs), nnx.Linear(32, 32, rngs=rngs)])
        self.norm = nnx.BatchNorm(32, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)
        self.head = nnx.Linear(32, 4, rngs=rngs)


def test_nnx_state_and_update(key):
    model = NnxMLP(nnx.Rngs(0))
    head_before = np.asarray(model.head.kernel.get_value())
    init = jaxinit.orthogonal()
    state = nnx.state(model, nnx.Param)
    new = reinit(state, {r"layers/\d+/kernel$": init, r"layers/\d+/bias$": jaxinit.zeros}, key)
    nnx.update(model, new)
    w = model.layers[1].kernel.get_value()
    np.testing.assert_array_equal(np.asarray(w), np.asarray(init(path_key(key, "layers/1/kernel"), (32, 32))))
    assert not np.any(np.asarray(model.layers[0].bias.get_value()))
    np.testing.assert_array_equal(np.asarray(model.head.kernel.get_value()), head_before)
    assert model.layers[0].kernel.get_value().shape == (16, 32)


def test_nnx_split_merge_and_a_too_wide_rule(key):
    graphdef, state = nnx.split(NnxMLP(nnx.Rngs(0)))
    model = nnx.merge(graphdef, reinit(state, {"kernel$": jaxinit.he_uniform()}, key))
    assert isinstance(model.head.kernel, nnx.Param)
    assert float(jnp.abs(model.head.kernel.get_value()).max()) <= (6 / 32) ** 0.5
    # '.*' reaches the dropout's RNG counter and key: the error names the path and the fix.
    with pytest.raises(TypeError, match=r"rule '\.\*' matched 'drop/rngs/count' \(shape=\(\), dtype=uint32\).*"
                                        r"makes floating-point weights.*nnx\.state\(model, nnx\.Param\)"):
        reinit(state, {".*": jaxinit.zeros}, key)


def test_equinox_module(key):
    import equinox as eqx  # in the test extra: this parity test always runs
    model = eqx.nn.MLP(8, 4, 16, 2, key=jax.random.key(0))
    new = reinit(model, {r"layers/\d+/weight$": jaxinit.he_normal(layout="out_in")}, key)
    w = new.layers[0].weight
    assert w.shape == (16, 8)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(jaxinit.he_normal(layout="out_in")(
        path_key(key, "layers/0/weight"), (16, 8))))


# -- errors ---------------------------------------------------------------------------------
def test_a_rule_that_matches_nothing_is_an_error_naming_it(variables, key):
    with pytest.raises(ValueError, match=r"rule 'kernal\$' matches no array leaf; the paths are: "
                                         r"'params/Dense_0/bias', 'params/Dense_0/kernel'"):
        reinit(variables, {"kernel$": jaxinit.zeros, "kernal$": jaxinit.zeros}, key)


def test_a_shadowed_rule_is_an_error(variables, key):
    with pytest.raises(ValueError, match=r"rule 'Dense_0/kernel' never applies: every path it matches "
                                         r"\('params/Dense_0/kernel', \.\.\.\) is taken by an earlier rule"):
        reinit(variables, {"kernel": jaxinit.zeros, "Dense_0/kernel": jaxinit.ones}, key)


@pytest.mark.parametrize("rules, error, match", [
    ({}, ValueError, r"rules must map at least one path pattern to an initializer; got none"),
    ({"kernel": 3}, TypeError, r"rules\['kernel'\] must be an initializer, a registry name, a dict spec or None; got 3"),
    ({"kernel[": jaxinit.zeros}, ValueError, r"rule pattern 'kernel\[' is not a valid regular expression"),
    ({"kernel": "he_nromal"}, ValueError, r"unknown initializer name 'he_nromal'. Did you mean 'he_normal'\?"),
    ([("kernel",)], TypeError, r"rules must be a dict or a list of \(pattern, initializer\) pairs; got entry \('kernel',\)"),
])
def test_bad_rules(variables, key, rules, error, match):
    with pytest.raises(error, match=match):
        reinit(variables, rules, key)


def test_path_string_joins_dict_keys_attributes_and_indices():
    tree = {"a": [1, {"b": 2}]}
    paths = [path_string(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    assert paths == ["a/0", "a/1/b"]


def test_sharded_leaves_keep_their_sharding():
    out = run_python(
        """
        import json, jax, jax.numpy as jnp, jaxinit
        from jax.sharding import NamedSharding, PartitionSpec as P
        from jaxinit.reinit import reinit
        mesh = jax.make_mesh((4,), ("x",))
        sharding = NamedSharding(mesh, P(None, "x"))
        params = {"w": jax.device_put(jnp.zeros((8, 16)), sharding), "v": jax.device_put(jnp.zeros((8, 16)), sharding)}
        new = reinit(params, {"w": jaxinit.he_normal(), "v": jax.nn.initializers.lecun_normal()}, jax.random.key(0))
        print(json.dumps([new["w"].sharding == sharding, new["v"].sharding == sharding,
                          float(jnp.abs(new["w"]).sum()) > 0]))
        """,
        devices=4,
    )
    assert json.loads(out) == [True, True, True]
