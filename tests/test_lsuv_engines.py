"""LSUV as a config's initializer spec, in the sweep and in training: each member is drawn with the
base, rescaled by the grid, then fitted on the run's own batch (the sweep's input rows, training's
first minibatch); a miss warns once per run naming the layer; a batch of one example is refused."""

from __future__ import annotations

import copy
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxinit
from jaxinit import nets
from jaxinit.errors import ConfigError
from jaxinit.lab import config as config_lib
from jaxinit.lab import run as lab_run
from jaxinit.lab.engine import sweep
from jaxinit.lab.engine import train as T
from jaxinit.lsuv import LSUV, LSUVWarning
from jaxinit.lsuv.core import warn_members

SWEEP = {
    "network": {"depth": 3, "width": 8, "activation": "tanh", "bias": {"name": "normal", "stddev": 0.1}},
    "inputs": {"batch": 16, "q0": 4.0},  # inputs of variance 4: the orthogonal base is far from 1
    "sweep": {"seeds": 2, "initializers": [
        {"name": "lsuv", "tol": 0.05, "label": "fit"},
        # One rescaling cannot reach 1e-6 when the bias adds variance the kernel does not scale.
        {"name": "lsuv", "base": "orthogonal", "tol": 1e-6, "max_iter": 1, "label": "short"},
        "orthogonal",
    ]},
    "grid": {"weight_variance": [1.0, 4.0]},
    "probes": {"forward": True, "gradients": True, "theory": False},
}


def _config(**changes):
    data = copy.deepcopy(SWEEP)
    for path, value in changes.items():
        section, key = path.split(".")
        data.setdefault(section, {})[key] = value
    return config_lib.from_dict(data)


def _rescaled(params, base, weight_variance):
    """The grid's rescale, as the engines apply it to every initializer: sigma_w^2 = fan_in E[W^2]."""
    out = dict(params)
    for part in ("input", "hidden", "readout"):
        kernel = params[part]["kernel"]
        shape = kernel.shape[-2:]
        factor = np.sqrt(weight_variance / (shape[0] * (base.variance(shape) + base.mean(shape) ** 2)))
        out[part] = {**params[part], "kernel": (kernel * jnp.float32(factor)).astype(kernel.dtype)}
    return out


def _quiet_lsuv(params, x, activation, spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LSUVWarning)
        return jaxinit.lsuv(params, x, activation, target=spec.target, tol=spec.tol, max_iter=spec.max_iter,
                            return_stats=True)


# -- the config ----------------------------------------------------------------------------------
def test_config_reads_lsuv_specs_and_round_trips():
    config = _config(**{"sweep.initializers": [
        "lsuv", {"name": "lsuv", "base": {"name": "normal", "stddev": 0.3}, "target": 2.0, "tol": 0.05,
                 "max_iter": 4, "label": "L"}]})
    plain, custom = (e.init for e in config.sweep.initializers)
    assert plain == LSUV() and custom == LSUV(jaxinit.normal(0.3), 2.0, 0.05, 4)
    assert [e.label for e in config.sweep.initializers] == ["lsuv", "L"]
    again = config_lib.from_dict(config.to_dict())
    assert again == config and again.config_hash() == config.config_hash()
    assert config.hash_payload()["resolved"]["initializers"][1] == custom.to_dict()
    other = _config(**{"sweep.initializers": ["lsuv", {"name": "lsuv", "base": {"name": "normal", "stddev": 0.3},
                                                       "target": 2.0, "tol": 0.1, "max_iter": 4, "label": "L"}]})
    assert other.config_hash() != config.config_hash()


@pytest.mark.parametrize(("changes", "match"), [
    ({"sweep.initializers": [{"name": "lsuv", "base": "orthgonal"}]},
     r"sweep\.initializers\[0\]\.base = \"orthgonal\": unknown initializer name.*Did you mean 'orthogonal'"),
    ({"sweep.initializers": [{"name": "lsuv", "tol": 0}]}, r"sweep\.initializers\[0\]\.tol = 0: must be > 0"),
    ({"sweep.initializers": ["he_normal", {"name": "lsuv", "max_iter": 0}]},
     r"sweep\.initializers\[1\]\.max_iter = 0: must be >= 1"),
    ({"sweep.initializers": [{"name": "lsuv", "max_iter": 2.5}]}, r"max_iter = 2\.5: must be an integer"),
    ({"sweep.initializers": [{"name": "lsuv", "target": -1.0}]}, r"\[0\]\.target = -1\.0: must be > 0"),
    ({"sweep.initializers": [{"name": "lsuv", "tols": 0.1}]}, r"\[0\]\.tols: unknown key; did you mean 'tol'\?"),
    ({"sweep.initializers": [{"name": "lsuv", "base": "lsuv"}]}, r"\[0\]\.base = \"lsuv\": must be an initializer"),
    ({"network.bias": "lsuv"}, r"network\.bias = \"lsuv\": lsuv rescales weight matrices.*cannot initialize"),
    ({"inputs.batch": 1}, r"inputs\.batch = 1: LSUV \(sweep\.initializers\[0\]\).*at least 2 examples"),
])
def test_config_lsuv_errors_name_the_key(changes, match):
    with pytest.raises(ConfigError, match=match):
        _config(**changes)


def test_training_config_with_lsuv_refuses_a_minibatch_of_one():
    data = {"network": {"depth": 2, "width": 8, "activation": "relu"}, "sweep": {"initializers": ["lsuv"]},
            "data": {"name": "teacher", "n": 64, "in_dim": 4}, "train": {"steps": 5, "batch": 1}}
    with pytest.raises(ConfigError, match=r"train\.batch = 1: LSUV .*at least 2 examples"):
        config_lib.from_dict(data)


# -- the sweep -----------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnums=3)
def _sweep_reference(layers, x, target, phi):
    """Pre-activations of every layer (the readout last) and the mse loss's kernel gradients."""
    def forward(kernels):
        hs, a = [], x
        for layer, kernel in zip(layers, kernels, strict=True):
            hs.append(jnp.dot(a, kernel, precision="highest") + layer["bias"])
            a = phi(hs[-1])
        return hs

    def loss(kernels):
        return jnp.mean((forward(kernels)[-1] - target) ** 2)

    kernels = [layer["kernel"] for layer in layers]
    return forward(kernels), jax.grad(loss)(kernels)


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    config = _config(**{"output.dir": str(tmp_path_factory.mktemp("lsuv") / "sweep")})
    with pytest.warns(LSUVWarning) as record:
        results = lab_run.run(config, progress=False)
    return config, results, record


def test_sweep_run_warns_once_naming_the_layers_that_missed(sweep_run):
    _, _, record = sweep_run
    assert len(record) == 1  # one warning per run: not per seed, grid point, chunk or layer
    message = str(record[0].message)
    assert "short (target 1, tol=1e-06, max_iter=1)" in message and "fit (" not in message
    for layer in ("input", "hidden[0]", "hidden[1]", "readout"):
        assert f"layer {layer!r} reached variance " in message
    assert "in 4 of 4 networks" in message  # 2 seeds x 2 grid points of 'short'


def test_sweep_lsuv_members_are_the_functional_lsuv_on_their_input_batch(sweep_run):
    config, results, _ = sweep_run
    plan = sweep.plan_for(config, config.programs()[0])
    q, grad = results.get("q"), results.get("grad_w_norm")
    phi = plan.activation
    for s in range(config.sweep.seeds):
        key, dkey = sweep.seed_key(0, s), sweep.data_key(0, s)
        x0 = sweep.make_inputs(plan, jax.random.fold_in(dkey, 0))
        target = jax.random.normal(jax.random.fold_in(dkey, 2), (plan.batch, plan.out_dim))
        drawn = nets.init(key, plan.in_dim, plan.width, plan.depth, plan.out_dim, jaxinit.orthogonal(),
                          plan.bias_init)
        for i, entry in enumerate(config.sweep.initializers[:2]):
            for g, point in enumerate(config.grid_points()):
                params = _rescaled(drawn, entry.init.base, point["weight_variance"])
                fitted, stats = _quiet_lsuv(params, x0, phi, entry.init)
                layers = nets.unstack(fitted)
                layers = [layers["input"], *layers["hidden"], layers["readout"]]

                hs, grads = _sweep_reference(layers, x0, target, phi)
                variance = np.array([float(jnp.var(h)) for h in hs])
                if entry.label == "fit":  # every layer within tol of the target on the batch, the readout too
                    np.testing.assert_array_less(np.abs(variance - 1.0), 0.05)
                    assert bool(stats.reached.all())
                else:
                    assert not bool(stats.reached.any())
                np.testing.assert_allclose(np.asarray(stats.variance), variance, rtol=1e-5)
                # The probes measured that network: q = E[h^2] per hidden layer ...
                np.testing.assert_allclose(q[i, g, s], [float(jnp.mean(h * h)) for h in hs[:-1]], rtol=1e-4)

                # ... and the gradients of its loss through the fitted weights (readout included).
                np.testing.assert_allclose(grad[i, g, s], [float(jnp.linalg.norm(d)) for d in grads[:-1]],
                                           rtol=1e-3)


def test_sweep_lsuv_shares_its_bases_noise_group():
    config = _config()
    plan = sweep.plan_for(config, config.programs()[0])
    groups, index, _ = plan.groups(1)
    assert index[0] == index[1] == index[2] and len(groups) == 1  # one orthogonal draw for the three entries
    note = sweep._crn_note({"p": plan})["p"]
    assert len(note["groups"]) == 1 and len(note["groups"][0]) == 3


def test_sweep_plan_with_lsuv_refuses_a_batch_of_one():
    with pytest.raises(ValueError, match=r"batch must be >= 2 with an LSUV initializer.*got batch=1"):
        sweep.Plan(depth=2, width=4, in_dim=4, out_dim=sweep.OUT_DIM, batch=1, activation=jaxinit.activations.activation(
            "relu"), initializers=(LSUV(),), bias_init=jaxinit.zeros)


# -- training ------------------------------------------------------------------------------------
OK, SHORT = LSUV(tol=0.05), LSUV(base="he_normal", tol=1e-6, max_iter=1)


def _data():
    rng = np.random.default_rng(3)
    x = (3.0 * rng.normal(size=(64, 5))).astype(np.float32)
    return x, rng.integers(0, 3, 64).astype(np.int32)


def _train_plan(**kw):
    base = dict(depth=2, width=8, in_dim=5, out_dim=3, initializers=(OK, SHORT), bias_init=jaxinit.normal(0.1),
                steps=4, batch=16, eval_every=2, learning_rate=0.05)
    base.update(kw)
    return T.TrainPlan(**base)


def _xent(params, x, y):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(nets.apply(params, x, "relu"), y))


@jax.jit
def _sgd_reference(params, x, y, perm):
    """Training-set loss at steps 0, 2, 4 of SGD (learning rate 0.05) on minibatches of 16 rows of
    the epoch's order ``perm`` (4 minibatches per epoch)."""
    losses = [_xent(params, x, y)]
    for t in range(4):
        rows = perm[t * 16:(t + 1) * 16]
        grads = jax.grad(_xent)(params, x[rows], y[rows])
        params = jax.tree.map(lambda p, d: p - 0.05 * d, params, grads)
        if t % 2 == 1:
            losses.append(_xent(params, x, y))
    return jnp.stack(losses)


def test_trained_lsuv_member_is_the_functional_lsuv_on_its_first_minibatch_then_trained():
    x, y = _data()
    plan = _train_plan()
    grid = [{}, {"weight_variance": 3.0}]
    with pytest.warns(LSUVWarning) as record:
        out = T.train_members(plan, (x, y, x, y), seed_ids=[0, 1], grid=grid)
    assert len(record) == 1  # once per run
    message = str(record[0].message)
    assert repr(SHORT) in message and repr(OK) not in message and "layer 'readout' reached variance" in message
    root = jax.random.key(0)
    for i, spec in enumerate(plan.initializers):
        for g, point in enumerate(grid):
            for s in (0, 1):
                key, dkey = jax.random.fold_in(root, s), jax.random.fold_in(jax.random.fold_in(root, T.DATA_BRANCH), s)
                params = nets.init(key, 5, 8, 2, 3, spec.base, plan.bias_init)
                if point:
                    params = _rescaled(params, spec.base, point["weight_variance"])
                perm = np.asarray(jax.random.permutation(jax.random.fold_in(dkey, 0), 64))  # epoch 0's order
                params, stats = _quiet_lsuv(params, x[perm[:16]], "relu", spec)  # the rows step 0 trains on
                np.testing.assert_allclose(out["lsuv_variance"][i, g, s], np.asarray(stats.variance), rtol=1e-5)
                u = nets.unstack(params)
                stds = [float(jnp.std(layer["kernel"])) for layer in (u["input"], *u["hidden"], u["readout"])]
                np.testing.assert_allclose(out["weight_std"][i, g, s, 0], stds, rtol=1e-6)

                losses = _sgd_reference(params, x, y, perm)  # then plain SGD on the seed's minibatches
                np.testing.assert_allclose(out["train_loss"][i, g, s], losses, rtol=1e-4)


def test_train_plan_reads_lsuv_specs_and_refuses_one_example():
    plan = _train_plan(initializers=("lsuv", {"name": "lsuv", "base": "he_normal", "tol": 0.05}, "he_normal"))
    assert plan.initializers[:2] == (LSUV(), LSUV(base="he_normal", tol=0.05))
    assert plan.drawn[:2] == (jaxinit.orthogonal(), jaxinit.he_normal()) and [i for i, _ in plan.lsuv] == [0, 1]
    with pytest.raises(ValueError, match=r"batch must be 0 or >= 2 with an LSUV initializer.*got batch=1"):
        _train_plan(batch=1)
    with pytest.raises(ValueError, match=r"LSUV .*needs at least 2 examples; got a training set of 1"):
        _train_plan(batch=0).check_data(1, 5)
    assert _train_plan(batch=0).fit_rows(2000) == 512 and _train_plan(batch=0).fit_rows(100) == 100
    with pytest.raises(TypeError, match=r"bias_init must be an initializer drawing the biases; got LSUV"):
        _train_plan(bias_init="lsuv")
    with pytest.raises(ValueError, match="LSUV takes no argument 'tols'"):
        _train_plan(initializers=({"name": "lsuv", "tols": 0.1},))


# -- the one warning -----------------------------------------------------------------------------
def test_warn_members_is_one_warning_naming_layers_and_variances_reached():
    spec = LSUV(tol=0.1)
    layers = ("input", "hidden[0]", "readout")
    reached = np.array([[[1.0, 0.5, 1.02], [1.0, 0.7, np.nan]], [[0.95, 1.0, 1.0], [1.05, 1.0, 1.0]]])
    with pytest.warns(LSUVWarning) as record:
        warn_members([("a", spec, layers, reached), ("b", spec, layers, np.ones((3, 3)))])
    assert len(record) == 1
    assert str(record[0].message).startswith(
        "LSUV did not reach its tolerance in 2 of 7 members (the last scale is kept): a (target 1, tol=0.1, "
        "max_iter=10): layer 'hidden[0]' reached variance 0.5 to 0.7 in 2 of 4 members, layer 'readout' "
        "reached variance nan in 1 of 4 members. ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_members([("b", spec, layers, np.ones((3, 3)))])  # every layer reached: no warning
