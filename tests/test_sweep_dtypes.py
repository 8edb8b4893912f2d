"""The sweep in the network's dtype (issue 11, items 1-3): bfloat16/float16 honoured and measured
against their own limits, float32/float64 under JAX_ENABLE_X64, and gradient norms that do not
underflow where the gradient is representable."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinit
from jaxinit import nets, probes
from jaxinit.activations import activation
from jaxinit.lab import config as config_lib
from jaxinit.lab import run as lab_run
from jaxinit.lab.engine import sweep

from conftest import run_python

ROOT = Path(__file__).resolve().parents[1]
LOW = ("bfloat16", "float16")
INITS = (jaxinit.he_normal(), jaxinit.glorot_uniform(), jaxinit.orthogonal(), jaxinit.normal(0.2))


def plan_of(**kw) -> sweep.Plan:
    base = dict(depth=4, width=32, in_dim=32, out_dim=sweep.OUT_DIM, batch=8, activation=activation("tanh"),
                initializers=INITS, bias_init=jaxinit.normal(0.1), gradients=True, jacobian=False)
    base.update(kw)
    return sweep.Plan(**base)


def run_plan(plan, seeds, wv=(np.nan,), bv=(np.nan,)):
    chunks = sweep.ChunkPlan(block=len(seeds), size=len(seeds), devices=1)
    compiled, _ = sweep.compile_program(plan, chunks, len(wv))
    return sweep.measure_chunk(compiled, plan, chunks, 0, list(seeds), np.asarray(wv), np.asarray(bv))


def network(plan, seed, i):
    """The functional MLP of (seed, initializer i) in the plan's dtype, its inputs (drawn wide,
    rounded once to the dtype, as the engine's) and the engine's mse targets."""
    dtype = jnp.dtype(plan.dtype)
    key, dkey = sweep.seed_key(0, seed), sweep.data_key(0, seed)
    params = nets.init(key, plan.in_dim, plan.width, plan.depth, plan.out_dim, plan.initializers[i],
                       plan.bias_init, dtype)
    x = sweep.make_inputs(plan, jax.random.fold_in(dkey, 0)).astype(dtype)
    targets = jax.random.normal(jax.random.fold_in(dkey, 2), (plan.batch, plan.out_dim), jnp.float32)
    return params, x, targets


# jax.grad of the network, norms as jaxinit.trace reduces them (jitted: activation and loss static).
grad_norms = jax.jit(probes._grad_norms, static_argnums=(2, 4, 5))


def unit_roundoff(dtype) -> float:
    return 2.0 ** -(int(jnp.finfo(jnp.dtype(dtype)).nmant) + 1)


def config_dict(tmp_path, name, **network):
    data = config_lib.load(str(ROOT / "configs" / "quickstart.toml")).to_dict()
    data["network"].update({"depth": 4, "width": 8, "activation": "tanh", **network})
    data["sweep"].update(seeds=2, initializers=["he_normal", "orthogonal", {"name": "normal", "stddev": 0.3}])
    data["inputs"]["batch"] = 4
    data["probes"].update(gradients=True, jacobian=True, spectrum=True)
    data["output"] = {"dir": str(tmp_path / name), "chunk": 2}
    return data


# -- item 1: low precision honoured ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", LOW)
def test_low_precision_weights_are_the_initializers_own_draw_in_that_dtype(dtype):
    plan = plan_of(dtype=dtype, initializers=(*INITS, jaxinit.truncated_normal(0.3), jaxinit.lecun_normal()))
    key = sweep.seed_key(0, 5)
    for layer in (0, 1, plan.depth):
        for i, init in enumerate(plan.initializers):
            own = init(jax.random.fold_in(key, layer), plan.layer_shape(layer), jnp.dtype(dtype))
            formed = sweep.layer_weights(plan, key, layer, i)
            assert formed.dtype == jnp.dtype(dtype)
            np.testing.assert_array_equal(np.asarray(formed, np.float32), np.asarray(own, np.float32))


@pytest.mark.parametrize("dtype", LOW)
def test_low_precision_sweep_is_the_network_in_that_dtype(dtype):
    """The engine's numbers are those of jaxinit.nets' MLP in the dtype, as jaxinit.trace measures
    it, within rounding; and they are not the float32 sweep's (issue 11: they were, bit for bit)."""
    # Zero biases as in the quickstart run (a bias drawn in the dtype was already rounded).
    small = dict(initializers=INITS[:1], bias_init=jaxinit.zeros, depth=2)
    low, f32 = run_plan(plan_of(dtype=dtype, **small), [0]), run_plan(plan_of(**small), [0])
    for name in ("q", "act_var", "grad_w_norm", "grad_h_norm"):
        assert not np.array_equal(low[name], f32[name]), name
    plan = plan_of(dtype=dtype)
    got = run_plan(plan, [0, 1])
    # Each layer rounds its matmul and bias add to the dtype (XLA may fuse the two roundings into
    # one, and sums in another order): a few units of roundoff u per layer, through 4 layers
    # forward and 4 back. 16 u (3e-2 for bfloat16, 8e-3 for float16) bounds it; measured <= 4 u.
    rtol = 16 * unit_roundoff(dtype)
    for seed in (0, 1):
        for i in range(plan.n_init):
            params, x, targets = network(plan, seed, i)
            t = probes.trace(params, x, plan.activation, gradients=False, jacobian=False)
            gw, gh = grad_norms(params, x, plan.activation, targets, "mse", "highest")
            ref = {"q": t.q, "act_var": t.act_var, "act_mean": t.act_mean, "grad_w_norm": gw, "grad_h_norm": gh}
            for name, expected in ref.items():
                np.testing.assert_allclose(got[name][i, 0, seed], np.asarray(expected, np.float32), rtol=rtol,
                                           atol=rtol * 0.1 if name == "act_mean" else 0, err_msg=f"{name} {i}")
            assert got["first_underflow_layer"][i, 0, seed] == int(t.first_underflow_layer) == -1
            assert got["first_nonfinite_layer"][i, 0, seed] == int(t.first_nonfinite_layer) == -1


def test_float16_underflow_is_recorded_against_float16s_smallest_normal(tmp_path):
    # normal(0.01) at width 8 (from a sweep config, as a user runs it): q shrinks by
    # N sigma^2 = 8e-4 per layer from q0 = 1, so q ~ 8e-4 at layer 0 (above float16's smallest normal
    # 6.1e-5) and ~6e-7 at layer 1 (below it); float32 reaches 1.2e-38 only after ~12 layers.
    data = config_dict(tmp_path, "f16", dtype="float16", depth=5, activation="linear", bias="zeros")
    data["sweep"]["initializers"] = [{"name": "normal", "stddev": 0.01}, "he_normal"]
    res = lab_run.run(config_lib.from_dict(data, source="f16.toml"), progress=False)
    f32 = dict(data, network=dict(data["network"], dtype="float32"), output={"dir": str(tmp_path / "f32")})
    res32 = lab_run.run(config_lib.from_dict(f32, source="f32.toml"), progress=False)
    under = res.get("first_underflow_layer")  # (initializer, grid point, seed)
    np.testing.assert_array_equal(under[0], 1)
    np.testing.assert_array_equal(under[1], -1)
    np.testing.assert_array_equal(res32.get("first_underflow_layer"), -1)
    assert (res.get("q")[0, :, :, 1] < np.finfo(np.float16).tiny).all()
    assert (res.get("q")[0, :, :, 0] >= np.finfo(np.float16).tiny).all()
    meta = res.meta["precision"]
    assert meta["dtype"] == "float16" and meta["smallest_normal"] == float(np.finfo(np.float16).tiny)
    assert meta["accumulation"] in ("float32", "float16") and meta["reductions"] == "float32"


def test_float16_overflow_is_a_non_finite_float16_value():
    # Linear, N(0, 2^2) weights at width 16: h grows ~8x per layer, past float16's 65504 within a few
    # layers while float32 stays finite. The layer is the one jaxinit.trace finds in float16.
    plan = plan_of(dtype="float16", width=16, in_dim=16, depth=8, activation=activation("linear"),
                   initializers=(jaxinit.normal(2.0),), bias_init=jaxinit.zeros, gradients=False)
    got = run_plan(plan, [0, 1])
    assert (run_plan(plan_of(**{**vars(plan), "dtype": "float32"}), [0, 1])["first_nonfinite_layer"] == -1).all()
    for seed in (0, 1):
        params, x, _ = network(plan, seed, 0)
        t = probes.trace(params, x, plan.activation, gradients=False, jacobian=False)
        layer = int(t.first_nonfinite_layer)
        assert 0 <= layer < plan.depth
        assert got["first_nonfinite_layer"][0, 0, seed] == layer
        assert np.isnan(got["q"][0, 0, seed, layer:]).all() and np.isfinite(got["q"][0, 0, seed, :layer]).all()


def test_precision_note_states_each_dtype():
    for name in ("float32", *LOW):
        note = sweep.precision_note(name)
        assert note["dtype"] == note["activations"] == name
        assert note["draw"] == note["reductions"] == "float32"
        assert note["smallest_normal"] == float(jnp.finfo(jnp.dtype(name)).tiny)
    assert sweep.precision_note("float32")["accumulation"] == "float32"
    assert "not formed" in sweep.precision_note("float32")["weights"]
    assert "rounded once" in sweep.precision_note("bfloat16")["weights"]


# -- item 2: JAX_ENABLE_X64 ------------------------------------------------------------------------
X64_RUN = """
import json, sys
from jaxinit.lab import config as config_lib
from jaxinit.lab import run as lab_run
from jaxinit.lab.engine import sweep
for name, data in json.loads(sys.argv[1] if len(sys.argv) > 1 else {configs!r}).items():
    lab_run.run(config_lib.from_dict(data, source=name + ".toml"), progress=False)
print("ok")
"""


def test_float32_and_float64_sweeps_under_x64(tmp_path):
    configs = {"f32": config_dict(tmp_path, "x64_f32"), "f64": config_dict(tmp_path, "x64_f64", dtype="float64")}
    assert run_python(X64_RUN.format(configs=json.dumps(configs)), x64=True).strip().endswith("ok")
    # The float32 config under x64 gives the numbers of a run without x64, bit for bit.
    plain = config_dict(tmp_path, "plain_f32")
    lab_run.run(config_lib.from_dict(plain, source="plain.toml"), progress=False)
    with np.load(tmp_path / "x64_f32" / "arrays.npz") as a, np.load(tmp_path / "plain_f32" / "arrays.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            assert a[name].dtype == b[name].dtype, name
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    with np.load(tmp_path / "x64_f64" / "arrays.npz") as a:
        floats = [n for n in a.files if a[n].dtype.kind == "f"]
        assert any(n.endswith("grad_w_norm") for n in floats) and any(n.endswith("spectrum") for n in floats)
        for name in floats:
            assert a[name].dtype == np.float64, name
        for name in a.files:
            if name.endswith("first_nonfinite_layer"):
                assert (a[name] == -1).all()
    meta = json.loads((tmp_path / "x64_f64" / "meta.json").read_text())["precision"]
    assert meta["dtype"] == meta["accumulation"] == meta["reductions"] == "float64"


# -- item 3: gradient norms ------------------------------------------------------------------------
def test_gradient_norms_are_nonzero_wherever_the_gradient_is_representable():
    """Sigmoid, He normal, depth 80: the gradient falls ~3x per layer. The engine squared float32
    values that underflow (grad_w_norm exactly 0 below ~1e-18); now every norm matches jax.grad of
    the network (probes' max-scaled norm) wherever that is well above the smallest normal, and the
    layers below it are recorded in first_grad_underflow_layer."""
    plan = plan_of(depth=80, width=16, in_dim=16, activation=activation("sigmoid"),
                   initializers=(jaxinit.he_normal(),), bias_init=jaxinit.zeros)
    got = run_plan(plan, [0])
    params, x, targets = network(plan, 0, 0)
    rw, rh = (np.asarray(a) for a in grad_norms(params, x, plan.activation, targets, "mse", "highest"))
    tiny = float(np.finfo(np.float32).tiny)
    for name, ref in (("grad_w_norm", rw), ("grad_h_norm", rh)):
        value = got[name][0, 0, 0]
        well = ref > 1e6 * tiny
        assert well.sum() >= 50 and ref[well].min() < 1e-30, name  # the case reaches deep into small values
        assert (value[well] > 0).all(), name
        np.testing.assert_allclose(value[well], ref[well], rtol=1e-5, err_msg=name)
    expected = int(sweep.first_grad_underflow(rw[None], rh[None], tiny)[0])
    assert expected >= 0
    assert got["first_grad_underflow_layer"][0, 0, 0] == expected
    assert (rw[expected + 1:] >= tiny).all() and (rh[expected + 1:] >= tiny).all()


def test_float16_gradient_underflow_layer():
    # Sigmoid, He normal, depth 20 in float16: gradients fall below float16's smallest normal
    # (6.1e-5) within ~10 layers of the readout.
    plan = plan_of(dtype="float16", depth=20, width=32, in_dim=32, activation=activation("sigmoid"),
                   initializers=(jaxinit.he_normal(),), bias_init=jaxinit.zeros)
    got = run_plan(plan, [0])
    params, x, targets = network(plan, 0, 0)
    rw, rh = (np.asarray(a) for a in grad_norms(params, x, plan.activation, targets, "mse", "highest"))
    tiny = float(np.finfo(np.float16).tiny)
    layer = int(got["first_grad_underflow_layer"][0, 0, 0])
    assert 0 < layer < plan.depth - 1
    assert layer == int(sweep.first_grad_underflow(rw[None], rh[None], tiny)[0])
    normal = slice(layer + 1, None)
    for name, ref in (("grad_w_norm", rw), ("grad_h_norm", rh)):
        np.testing.assert_allclose(got[name][0, 0, 0, normal], ref[normal], rtol=16 * unit_roundoff("float16"))


def test_first_grad_underflow_is_the_layer_the_backward_pass_reaches_first():
    tiny = float(np.finfo(np.float32).tiny)
    gw = jnp.asarray([[0.0, 1e-40, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 2.0, 0.0, 3.0], [np.nan] * 4])
    gh = jnp.asarray([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1e-39], [1.0] * 4, [np.nan] * 4])
    np.testing.assert_array_equal(np.asarray(sweep.first_grad_underflow(gw, gh, tiny)), [1, 3, 2, -1])
    assert sweep.first_grad_underflow(gw, gh, tiny).dtype == jnp.int32
