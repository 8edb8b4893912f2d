"""The sweep engine against a direct computation, and its promises: common random numbers,
chunk/device invariance, resumption, overflow handling, flat compile in depth."""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinit
from jaxinit import nets, probes
from jaxinit.activations import activation
from jaxinit.initializers._random import UnitNoise
from jaxinit.lab import config as config_lib
from jaxinit.lab import run as lab_run
from jaxinit.lab.engine import sweep
from jaxinit.lab.engine.sweep import seed as sweep_seed

from catalog_cases import CASES
from conftest import run_python
from helpers import mean_tolerance

INITS = (jaxinit.he_normal(), jaxinit.glorot_uniform(), jaxinit.normal(0.2), jaxinit.orthogonal())


def small_plan(**kw) -> sweep.Plan:
    base = dict(depth=5, width=16, in_dim=16, out_dim=sweep.OUT_DIM, batch=6, activation=activation("tanh"),
                initializers=INITS, bias_init=jaxinit.normal(0.1), gradients=True, jacobian=True,
                spectrum=True, num_projections=2)
    base.update(kw)
    return sweep.Plan(**base)


def run_plan(plan, seeds, wv=(np.nan,), bv=(np.nan,), block=2, devices=1):
    chunks = sweep.ChunkPlan(block=block, size=len(seeds), devices=devices)
    compiled, _ = sweep.compile_program(plan, chunks, len(wv))
    return sweep.measure_chunk(compiled, plan, chunks, 0, list(seeds), np.asarray(wv), np.asarray(bv))


def reference(plan, seed, i):
    """Probes of network (seed, initializer i) computed directly from the functional MLP."""
    key, dkey = sweep.seed_key(0, seed), sweep.data_key(0, seed)
    params = nets.unstack(nets.init(key, plan.in_dim, plan.width, plan.depth, plan.out_dim,
                                    plan.initializers[i], plan.bias_init))
    layers = [params["input"], *params["hidden"]]
    x0 = sweep.make_inputs(plan, jax.random.fold_in(dkey, 0))
    target = jax.random.normal(jax.random.fold_in(dkey, 2), (plan.batch, plan.out_dim))
    v = jax.random.normal(jax.random.fold_in(dkey, 1), (plan.num_projections * plan.batch, plan.in_dim))
    hs, g_params, g_eps, tangents, jac = _reference_arrays(plan, layers, params["readout"], x0, target, v)
    phi = plan.activation
    out = {"q": [], "act_mean": [], "act_var": [], "correlation": []}
    for h in hs:
        h = np.asarray(h, np.float64)
        a = np.asarray(phi(h), np.float64)
        out["q"].append(np.mean(h**2))
        out["act_mean"].append(a.mean())
        out["act_var"].append(a.var())
        ha, hb = h[0::2], h[1::2]
        out["correlation"].append(np.mean(np.sum(ha * hb, 1) / np.sqrt(np.sum(ha**2, 1) * np.sum(hb**2, 1))))
    out["grad_w_norm"] = [float(jnp.linalg.norm(g["kernel"])) for g in g_params]
    out["grad_h_norm"] = [float(jnp.linalg.norm(g)) for g in g_eps]
    out["jacobian_msv"] = np.mean(np.sum(np.asarray(tangents) ** 2, -1), axis=0) / plan.width
    out["spectrum"] = np.sort(np.linalg.svd(np.asarray(jac), compute_uv=False))[::-1]
    return {k: np.asarray(v) for k, v in out.items()}


@functools.partial(jax.jit, static_argnums=0)
def _reference_arrays(plan, layers, readout, x0, target, v):
    """The direct computation's arrays for :func:`reference`, jitted: one program per plan serves
    every initializer (op by op, each of these ops was compiled on its own, ~2-3 s per plan)."""
    phi = plan.activation

    def hidden_pre(x, params_list=layers, eps=None):
        hs = []
        for j, layer in enumerate(params_list):
            h = jnp.dot(x, layer["kernel"], precision="highest") + layer["bias"]
            if eps is not None:
                h = h + eps[j]
            hs.append(h)
            x = phi(h)
        return hs, x

    hs, _ = hidden_pre(x0)

    def loss(params_list, eps):
        _, x = hidden_pre(x0, params_list, eps)
        y = jnp.dot(x, readout["kernel"], precision="highest") + readout["bias"]
        return jnp.mean((y - target) ** 2)

    eps = [jnp.zeros_like(h) for h in hs]
    g_params, g_eps = jax.grad(loss, argnums=(0, 1))(layers, eps)
    # Jacobian of h^l w.r.t. the input, projected on the engine's tangents v.
    rows = x0[np.arange(v.shape[0]) % plan.batch]
    tangents = jax.vmap(lambda x, t: jax.jvp(lambda y: jnp.stack(hidden_pre(y[None])[0])[:, 0], (x,), (t,))[1])(
        rows, v)  # (rows, depth, width)
    jac = jax.jacfwd(lambda x: hidden_pre(x[None])[0][-1][0])(x0[0])
    return hs, g_params, g_eps, tangents, jac


@pytest.mark.parametrize("in_dim", [16, 12], ids=["layer0-in-scan", "layer0-own-shape"])
def test_engine_matches_direct_computation(in_dim):
    plan = small_plan(depth=4, in_dim=in_dim)
    got = run_plan(plan, [3], block=1)
    for s_index, seed in enumerate([3]):
        for i in range(plan.n_init):
            ref = reference(plan, seed, i)
            for name, expected in ref.items():
                value = got[name][i, 0, s_index]
                np.testing.assert_allclose(value, expected, rtol=2e-4, atol=1e-6, err_msg=f"{name} init {i}")
            assert got["first_nonfinite_layer"][i, 0, s_index] == -1


def test_engine_forward_statistics_are_the_probes_own():
    # depth 4 as in test_engine_matches_direct_computation: nets.init's programs compiled there serve here
    plan = small_plan(depth=4, activation=activation("relu"), jacobian=False, spectrum=False, gradients=False,
                      input_kind="pairs", correlation=0.3, batch=8)
    got = run_plan(plan, [2], block=1)
    key, dkey = sweep.seed_key(0, 2), sweep.data_key(0, 2)
    x = sweep.make_inputs(plan, jax.random.fold_in(dkey, 0))
    pairs = jnp.swapaxes(x.reshape(plan.batch // 2, 2, plan.in_dim), 0, 1)
    for i, init in enumerate(plan.initializers):
        params = nets.init(key, plan.in_dim, plan.width, plan.depth, plan.out_dim, init, plan.bias_init)
        t = probes.trace(params, pairs, plan.activation, gradients=False, jacobian=False)
        for name in probes.FORWARD_FIELDS:
            np.testing.assert_allclose(got[name][i, 0, 0], np.asarray(getattr(t, name)), rtol=2e-5, atol=1e-7,
                                       err_msg=name)
    # the engine's inputs have exactly the correlation asked for (0.3 up to float32 rounding of 16-term sums),
    # so a wrong one (0, 0.09 = 0.3**2, 0.55 = sqrt(0.3)) fails; its layer values are the probes' (above)
    cos = np.sum(np.asarray(pairs[0] * pairs[1], np.float64), -1) / np.sqrt(
        np.sum(np.asarray(pairs[0], np.float64) ** 2, -1) * np.sum(np.asarray(pairs[1], np.float64) ** 2, -1))
    np.testing.assert_allclose(cos, 0.3, rtol=0, atol=plan.in_dim * np.finfo(np.float32).eps)


def test_xent_loss_gradient_matches_jax_grad():
    plan = small_plan(depth=4, loss="xent", jacobian=False, spectrum=False, initializers=(jaxinit.he_normal(),))
    got = run_plan(plan, [1])
    key, dkey = sweep.seed_key(0, 1), sweep.data_key(0, 1)
    params = nets.init(key, plan.in_dim, plan.width, plan.depth, plan.out_dim, jaxinit.he_normal(), plan.bias_init)
    x0 = sweep.make_inputs(plan, jax.random.fold_in(dkey, 0))
    labels = jax.random.randint(jax.random.fold_in(dkey, 2), (plan.batch,), 0, plan.out_dim)

    def loss(p):
        y = nets.apply(p, x0, plan.activation, precision="highest")
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(y), labels[:, None], 1))

    g = nets.unstack(jax.grad(loss)(params))
    expected = [jnp.linalg.norm(g["input"]["kernel"])] + [jnp.linalg.norm(layer["kernel"]) for layer in g["hidden"]]
    np.testing.assert_allclose(got["grad_w_norm"][0, 0, 0], np.asarray(expected), rtol=2e-4)


@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=[str(c[0]) for c in CASES])
def test_layer_weights_are_the_initializers_own_draw(spec, shape2d, conv):
    init = jaxinit.get(spec)
    plan = small_plan(initializers=(init,), in_dim=shape2d[0], width=shape2d[1])
    key = sweep.seed_key(0, 5)
    for layer in (0, 1):
        shape = plan.layer_shape(layer)
        own = init(jax.random.fold_in(key, layer), shape, jnp.float32)
        np.testing.assert_array_equal(np.asarray(sweep.layer_weights(plan, key, layer, 0)), np.asarray(own))


def test_common_random_numbers_share_noise_between_scaled_initializers():
    groups, index, factor = small_plan(initializers=(jaxinit.he_normal(), jaxinit.lecun_normal(),
                                                     jaxinit.glorot_normal(), jaxinit.truncated_normal(0.1),
                                                     jaxinit.normal(0.3), jaxinit.he_normal(distribution="normal"),
                                                     jaxinit.uniform(0.1))).groups(1)
    assert len(groups) == 3 and list(index) == [0, 0, 0, 0, 1, 1, 2]
    # With a weight-variance grid the factors cancel: he and lecun become the same network.
    plan = small_plan(initializers=(jaxinit.he_normal(), jaxinit.lecun_normal()), jacobian=False, spectrum=False,
                      grid_bias=True)
    got = run_plan(plan, [2], wv=[1.5, 2.5], bv=[0.0, 0.1])
    np.testing.assert_allclose(got["q"][0], got["q"][1], rtol=1e-6)
    assert not np.allclose(got["q"][0, 0], got["q"][0, 1])


# Every catalog case in each dtype it supports (real-only entries refuse complex: test_complex.py).
SHARED_NOISE_CASES = [
    pytest.param(spec, shape2d, conv, dtype, id=f"{spec}-{dtype}")
    for spec, shape2d, conv in CASES
    for dtype in ("float32", "bfloat16", "complex64")
    if dtype != "complex64" or jaxinit.get(spec).supports_complex
]


@pytest.mark.parametrize("spec, shape2d, conv, dtype", SHARED_NOISE_CASES)
def test_shared_noise_times_its_factor_is_the_draw(spec, shape2d, conv, dtype):
    """The catalog's contract: init(key) == (noise.draw(key) * factor).astype(dtype), bit for bit."""
    init = jaxinit.get(spec)
    wide = np.dtype("complex64" if dtype == "complex64" else "float32")
    # Complex draws compile slowly (~0.6 s each): the conv shape's fans are checked in real dtypes.
    for shape in (shape2d, conv) if conv and dtype != "complex64" else (shape2d,):
        noise, factor = sweep.noise_group(init, shape, np.dtype(dtype))
        # One compiled draw per shape, called with each key (a lambda per key would compile again).
        draw = jax.jit(lambda key, noise=noise, factor=factor, shape=shape: (
            noise.draw(key, shape, np.dtype(dtype)) * jnp.asarray(factor, wide)).astype(dtype))
        for k in (0, 7):
            key = jax.random.key(k)
            np.testing.assert_array_equal(np.asarray(draw(key)), np.asarray(init(key, shape, dtype)))


@dataclasses.dataclass(frozen=True, repr=False)
class _HalfNormal(jaxinit.initializers.BaseInitializer):
    """An initializer from outside the catalog: N(0, 1/4), saying it is 0.5 x the shared normal noise."""

    registry_name = "half_normal_for_tests"

    def _sample(self, key, shape, dtype):
        return jax.random.normal(key, shape, jnp.float32) * jnp.asarray(0.5, jnp.float32)

    def variance(self, shape):
        return 0.25

    def shared_noise(self, shape, dtype=None):
        return UnitNoise("normal"), 0.5


def test_a_new_initializer_joins_the_shared_noise_without_editing_the_engine():
    plan = small_plan(initializers=(jaxinit.normal(0.3), _HalfNormal(), jaxinit.orthogonal()))
    groups, index, factor = plan.groups(1)
    assert list(index) == [0, 0, 1] and groups[0] == UnitNoise("normal") and groups[0].kind == "raw:normal"
    np.testing.assert_array_equal(factor[:2], [0.3, 0.5])
    key = sweep.seed_key(0, 3)
    own = _HalfNormal()(jax.random.fold_in(key, 1), plan.layer_shape(1), jnp.float32)
    np.testing.assert_array_equal(np.asarray(sweep.layer_weights(plan, key, 1, 1)), np.asarray(own))


def test_grid_sets_sigma_w_and_sigma_b():
    # ReLU, He-normal rescaled to sigma_w^2 = 2 and 1: q halves per layer at 1, stays at 2 (exact in mean).
    plan = small_plan(activation=activation("linear"), initializers=(jaxinit.he_normal(distribution="normal"),),
                      width=128, in_dim=128, batch=64, depth=3, gradients=False, jacobian=False, spectrum=False,
                      bias_init=jaxinit.zeros, grid_bias=True)
    got = run_plan(plan, list(range(8)), wv=[1.0, 0.25], bv=[0.0, 0.0], block=4)
    q = got["q"][0]  # (grid, seed, layer)
    ratio = q[:, :, -1] / q[:, :, 0]  # sigma_w^4 over two layers, per seed
    for g, want in enumerate([1.0, 0.25**2]):
        # within Z standard errors of the mean over seeds (~5%): one layer too many or few (x4),
        # He's gain not rescaled (x4) or a truncated normal left uncorrected (x0.6) fail
        assert abs(ratio[g].mean() - want) < mean_tolerance(ratio[g]), (want, ratio[g])


def test_bias_grid_needs_a_program_that_draws_bias_noise():
    plan = small_plan(depth=2, jacobian=False, spectrum=False, gradients=False)
    with pytest.raises(ValueError, match=r"bias_variance grid values \[0\.1\] need .*grid_bias=True"):
        run_plan(plan, [0], bv=[0.1])


def test_results_do_not_depend_on_chunking():
    plan = small_plan(jacobian=False, spectrum=False, initializers=INITS[:2])
    whole = run_plan(plan, list(range(8)), block=2)
    chunks = sweep.ChunkPlan(block=2, size=2, devices=1)
    compiled, _ = sweep.compile_program(plan, chunks, 1)
    nan = np.array([np.nan])
    parts = [sweep.measure_chunk(compiled, plan, chunks, 0, [i, i + 1], nan, nan) for i in range(0, 8, 2)]
    # A padded last chunk (3 seeds in a compiled size of 4) gives the same numbers too.
    padded_plan = sweep.ChunkPlan(block=2, size=4, devices=1)
    compiled4, _ = sweep.compile_program(plan, padded_plan, 1)
    tail = sweep.measure_chunk(compiled4, plan, padded_plan, 0, [5, 6, 7], nan, nan)
    for name in whole:
        np.testing.assert_array_equal(whole[name][:, :, 5:], tail[name], err_msg=name)
    for name in whole:
        joined = np.concatenate([p[name] for p in parts], axis=2)
        np.testing.assert_array_equal(whole[name], joined, err_msg=name)


def test_results_do_not_depend_on_device_count():
    code = """
    import numpy as np, jax, jaxinit
    from jaxinit.lab import run as lab_run
    from jaxinit.lab.engine import sweep
    from jaxinit.activations import activation
    plan = sweep.Plan(depth=4, width=16, in_dim=16, out_dim=10, batch=6, activation=activation("relu"),
                      initializers=(jaxinit.he_normal(), jaxinit.normal(0.3)), bias_init=jaxinit.zeros)
    out = {}
    for devices in (1, 4):
        chunks = sweep.ChunkPlan(block=2, size=8, devices=devices)
        compiled, _ = sweep.compile_program(plan, chunks, 1)
        out[devices] = sweep.measure_chunk(compiled, plan, chunks, 0, list(range(8)), np.array([np.nan]),
                                           np.array([np.nan]))
    assert jax.device_count() == 4
    # Relative to the statistic's scale: |values|, and 1 for the bounded ones (a correlation near 0
    # would make any rounding "relative" error large).
    bounded = {"correlation", "dead_fraction", "saturated_fraction"}
    worst = max(float(np.nanmax(np.abs(out[1][k] - out[4][k]) /
                                np.maximum(np.abs(out[1][k]), 1.0 if k in bounded else 1e-30))) for k in out[1])
    exact = sorted(k for k in out[1] if np.array_equal(out[1][k], out[4][k], equal_nan=True))
    print(exact)
    print(worst)
    """
    lines = run_python(code, devices=4).strip().splitlines()
    assert float(lines[-1]) <= 1e-6
    assert {"q", "grad_w_norm", "grad_h_norm", "first_nonfinite_layer"} <= set(eval(lines[-2]))


def test_chunk_plan_uses_no_more_devices_than_seed_blocks():
    code = """
    import jaxinit
    from jaxinit.lab import run as lab_run
    from jaxinit.lab.engine import sweep
    from jaxinit.activations import activation
    plan = sweep.Plan(depth=3, width=8, in_dim=8, out_dim=10, batch=4, activation=activation("relu"),
                      initializers=(jaxinit.he_normal(),), bias_init=jaxinit.zeros)
    for seeds in (3, 4, 8, 12, 64):
        cp = sweep.chunk_plan(plan, 1, seeds)
        print(cp.block, cp.devices, cp.size)
    """
    rows = [tuple(map(int, line.split())) for line in run_python(code, devices=4).split("\n") if line]
    # block = min(4, seeds); devices = min(4, ceil(seeds / block)); size a multiple of block x devices.
    assert rows == [(3, 1, 3), (4, 1, 4), (4, 2, 8), (4, 3, 12), (4, 4, 16)]


def test_cli_cpu_devices_split_the_cores_without_changing_results(tmp_path):
    import json
    import subprocess
    import sys

    config = tmp_path / "devices.toml"
    config.write_text('[network]\ndepth = 3\nwidth = 8\nactivation = "relu"\n[inputs]\nbatch = 4\n'
                      '[sweep]\nseeds = 8\ninitializers = ["he_normal", "orthogonal"]\n')
    arrays = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        env = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
        subprocess.run([sys.executable, "-m", "jaxinit.cli", "sweep", str(config), "--out", str(out), "--quiet",
                        "--no-plots", "--cpu-devices", str(devices)], check=True, stdout=subprocess.DEVNULL, env=env)
        assert json.loads((out / "meta.json").read_text())["chunk_plan"]["depth3-width8-relu"]["devices"] == devices
        with np.load(out / "arrays.npz") as a:
            arrays[devices] = {name: a[name] for name in a.files}
    for name in ("q", "grad_w_norm", "first_nonfinite_layer"):
        np.testing.assert_array_equal(arrays[1][name], arrays[2][name], err_msg=name)


def test_overflow_is_recorded_not_raised():
    plan = small_plan(activation=activation("linear"), initializers=(jaxinit.normal(1e4), jaxinit.he_normal()),
                      depth=12, jacobian=False, spectrum=False)
    got = run_plan(plan, [0, 1])
    bad = got["first_nonfinite_layer"]
    assert (bad[0] >= 0).all() and (bad[1] == -1).all()
    layer = int(bad[0, 0, 0])
    assert np.isnan(got["q"][0, 0, 0, layer:]).all() and np.isfinite(got["q"][0, 0, 0, :layer]).all()
    assert np.isnan(got["grad_w_norm"][0, 0, 0]).all()
    assert np.isfinite(got["q"][1]).all()


def test_underflow_is_recorded_and_the_values_kept():
    # Linear network, normal(1e-4) weights, width 16: q shrinks by N sigma^2 = 1.6e-7 per layer from
    # q0 = 1, so q_4 ~ 1e-34 is still a normal float32 and q_5 ~ 2e-41 is not (tiny = 1.2e-38); the
    # per-layer spread of log q at this width (~0.3) is far inside those 3-4 decades of margin.
    plan = small_plan(activation=activation("linear"), initializers=(jaxinit.normal(1e-4), jaxinit.he_normal(),
                                                                     jaxinit.zeros),
                      bias_init=jaxinit.zeros, depth=8, jacobian=False, spectrum=False, gradients=False)
    got = run_plan(plan, [0, 1, 2, 3], block=4)
    under, bad = got["first_underflow_layer"], got["first_nonfinite_layer"]
    np.testing.assert_array_equal(under[0], 5)
    np.testing.assert_array_equal(under[1], -1)
    np.testing.assert_array_equal(under[2], 0)  # zeros: no signal from the first layer on
    assert (bad == -1).all()
    assert (got["q"][0, 0, :, :5] >= np.finfo(np.float32).tiny).all()
    assert (got["q"][0, 0, :, 5:] < np.finfo(np.float32).tiny).all() and np.isfinite(got["q"]).all()
    # The functional probes agree on the layer.
    key, dkey = sweep.seed_key(0, 1), sweep.data_key(0, 1)
    params = nets.init(key, plan.in_dim, plan.width, plan.depth, plan.out_dim, plan.initializers[0], plan.bias_init)
    x = sweep.make_inputs(plan, jax.random.fold_in(dkey, 0))
    t = probes.trace(params, x, plan.activation, gradients=False, jacobian=False)
    assert int(t.first_underflow_layer) == 5 and int(t.first_nonfinite_layer) == -1


def test_compiled_program_does_not_grow_with_depth():
    nan = jnp.array([jnp.nan])
    sizes = {}
    for depth in (10, 200):
        plan = small_plan(depth=depth)

        def per_chunk(seeds, plan=plan):
            return jax.lax.map(lambda s: sweep_seed._seed_measure(plan, 0, s, nan, nan), seeds, batch_size=2)

        sizes[depth] = len(jax.jit(per_chunk).lower(jnp.arange(2)).as_text())
    assert sizes[200] <= 1.02 * sizes[10]


def quick_config(tmp_path, **overrides):
    data = config_lib.load("configs/quickstart.toml").to_dict()
    data["network"].update(depth=6, width=16, activation="tanh")
    data["sweep"]["initializers"] = data["sweep"]["initializers"][:3]
    data["inputs"]["batch"] = 8
    data["sweep"]["seeds"] = 6
    data["output"] = {"dir": str(tmp_path / "out"), "chunk": 2}
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return config_lib.from_dict(data, source="quickstart.toml")


def test_quickstart_end_to_end_and_resume(tmp_path):
    config = quick_config(tmp_path)
    assert lab_run.run(config, progress=False, stop_after_chunks=1) is None  # "interrupted" after one chunk
    folder = tmp_path / "out"
    first = sorted(folder.glob("chunks/*/*.npz"))
    assert len(first) == 1
    stamp = first[0].stat().st_mtime_ns
    resumed = lab_run.run(config, progress=False)
    assert first[0].stat().st_mtime_ns == stamp  # the finished chunk was not recomputed
    straight = lab_run.run(dataclasses.replace(config, output=dataclasses.replace(config.output,
                                                                                dir=str(tmp_path / "b"))),
                         progress=False)
    for name in straight.arrays:
        np.testing.assert_array_equal(resumed.arrays[name], straight.arrays[name], err_msg=name)
    for f in ("arrays.npz", "summary.csv", "meta.json", "config.toml"):
        assert (folder / f).stat().st_size > 0
    assert resumed.meta["status"] == "complete"
    assert "common_random_numbers" in resumed.meta["engine"]


def test_meta_says_which_groups_share_noise_and_bits():
    plan = small_plan(initializers=(jaxinit.he_normal(), jaxinit.orthogonal(), jaxinit.glorot_uniform(),
                                    jaxinit.identity(), jaxinit.lecun_normal()))
    note = sweep._crn_note({"p": plan})["p"]
    assert note["groups"] == [[repr(jaxinit.he_normal()), repr(jaxinit.lecun_normal())], [repr(jaxinit.orthogonal())],
                              [repr(jaxinit.glorot_uniform())], [repr(jaxinit.identity())]]
    assert note["shared_bits"] == [[0, 1, 2]]  # identity draws nothing random


def test_killed_run_resumes_to_the_same_numbers(tmp_path):
    """Kill a real `jaxinit sweep` process once its first chunk is on disk, rerun: identical results."""
    import os
    import signal
    import subprocess
    import sys
    import time

    config = tmp_path / "kill.toml"
    config.write_text(
        '[network]\ndepth = 4\nwidth = 8\nactivation = "tanh"\n[inputs]\nbatch = 4\n'
        '[sweep]\nseeds = 64\ninitializers = ["he_normal", "lecun_uniform"]\n'
        '[probes]\ngradients = true\n[output]\nchunk = 4\n')
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "jaxinit.cli", "sweep", str(config), "--out", str(out), "--quiet", "--no-plots"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not list(out.glob("chunks/*/seeds-*.npz")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    # Freeze the process the moment the first chunk is seen, so the count below is the state it was
    # killed in; a run that had already finished (a machine too fast for the test) fails here.
    assert proc.poll() is None, f"the sweep ended before its first chunk was seen: {proc.stderr.read()[-2000:]!r}"
    proc.send_signal(signal.SIGSTOP)
    written = sorted(out.glob("chunks/*/seeds-*.npz"))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, stderr[-2000:]
    assert written, stderr[-2000:]
    assert not (out / "arrays.npz").exists()
    first = {p: p.stat().st_mtime_ns for p in written}
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ))
    for path, stamp in first.items():
        assert path.stat().st_mtime_ns == stamp  # finished chunks kept, not recomputed
    total = sorted(out.glob("chunks/*/seeds-*.npz"))
    assert 0 < len(written) < len(total), (len(written), len(total))  # the kill landed mid-run
    straight = tmp_path / "straight"
    subprocess.run([*cmd[:-4], "--out", str(straight), "--quiet", "--no-plots"], check=True,
                   stdout=subprocess.DEVNULL)
    with np.load(out / "arrays.npz") as a, np.load(straight / "arrays.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
