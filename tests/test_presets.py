"""Other libraries' defaults (PyTorch, Haiku, Equinox) against their formulas, and the PyTorch /
Keras registry names against their libraries' meanings (against PyTorch itself where installed)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinit
from jaxinit.initializers._random import TRUNCATED_STD

from helpers import variance_tolerance


def check_uniform_bound(w, bound: float) -> None:
    """All entries in [-bound, bound], the extremes reached, and Var = bound^2 / 3."""
    w = np.asarray(w, np.float64)
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() >= bound * (1 - 20 / w.size)  # max of n uniforms: 1 - O(1/n)
    assert abs(w.var() - bound**2 / 3) <= variance_tolerance(w)


# -- PyTorch ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, fan_in", [((256, 128), 256), ((3, 3, 16, 32), 144), ((5, 8, 12), 40)])
def test_torch_layer_kernel_is_uniform_one_over_sqrt_fan_in(shape, fan_in, key):
    init = jaxinit.torch_linear_kernel()
    assert init.variance(shape) == pytest.approx(1 / (3 * fan_in), rel=1e-15)
    check_uniform_bound(init(key, shape), 1 / math.sqrt(fan_in))
    # std x sqrt(fan_in) = 1/sqrt(3) = 0.577: kaiming_uniform_(a=sqrt(5)) as PyTorch calls it.
    assert math.sqrt(init.variance(shape) * fan_in) == pytest.approx(0.57735, abs=1e-5)
    kaiming = jaxinit.get({"name": "kaiming_uniform_", "a": math.sqrt(5)})
    assert kaiming.variance(shape) == pytest.approx(init.variance(shape), rel=1e-14)
    assert jaxinit.torch_conv_kernel is jaxinit.torch_linear_kernel


def test_torch_kernels_in_flax_layers_and_in_torch_layout(key):
    x = jnp.ones((1, 8, 8, 8))
    conv = nn.Conv(32, (3, 3), feature_group_count=2, kernel_init=jaxinit.torch_conv_kernel(),
                   bias_init=jaxinit.torch_conv_bias(4 * 9))
    params = conv.init(key, x)["params"]
    assert params["kernel"].shape == (3, 3, 4, 32)  # fan_in = in / groups * 9 = 36, as PyTorch
    check_uniform_bound(params["kernel"], 1 / 6)
    assert np.abs(np.asarray(params["bias"])).max() <= 1 / 6
    # The same weight in PyTorch's (out, in / groups, kH, kW) layout.
    check_uniform_bound(jaxinit.torch_conv_kernel(layout="out_in")(key, (32, 4, 3, 3)), 1 / 6)


def test_torch_conv_transpose_kernel_uses_the_output_channels(key):
    layer = nn.ConvTranspose(16, (3, 3), kernel_init=jaxinit.torch_conv_transpose_kernel())
    kernel = layer.init(key, jnp.ones((1, 5, 5, 8)))["params"]["kernel"]
    assert kernel.shape == (3, 3, 8, 16)
    # PyTorch's fan-in of its (in, out, kH, kW) ConvTranspose weight is dim 1 x window: 16 * 9.
    check_uniform_bound(kernel, 1 / 12)
    check_uniform_bound(jaxinit.torch_conv_transpose_kernel(layout="IOHW")(key, (8, 16, 3, 3)), 1 / 12)


def test_torch_bias_takes_the_weight_fan_in(key):
    bias = jaxinit.torch_linear_bias(fan_in=400)
    assert bias == jaxinit.fan_in_uniform(400) and bias.variance((64,)) == 1 / 1200
    check_uniform_bound(bias(key, (20000,)), 1 / 20)
    dense = nn.Dense(64, kernel_init=jaxinit.torch_linear_kernel(), bias_init=jaxinit.torch_linear_bias(400))
    params = dense.init(key, jnp.ones((1, 400)))["params"]
    assert np.abs(np.asarray(params["bias"])).max() <= 1 / 20
    assert repr(bias) == "fan_in_uniform(fan_in=400)" and jaxinit.get(bias.to_dict()) == bias


@pytest.mark.parametrize("fan_in, error, match", [
    (0, ValueError, r"fan_in must be >= 1; got 0 \(fan_in_uniform\)"),
    (2.5, TypeError, r"fan_in must be an integer; got 2.5"),
])
def test_bias_fan_in_is_checked(fan_in, error, match):
    with pytest.raises(error, match=match):
        jaxinit.torch_linear_bias(fan_in)


# -- Haiku, Equinox -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape, fan_in", [((256, 128), 256), ((3, 3, 16, 32), 144)])
def test_haiku_default_is_uncorrected_truncated_normal(shape, fan_in, key):
    init = jaxinit.haiku_linear_kernel()
    w = np.asarray(init(key, shape), np.float64)
    # Haiku: TruncatedNormal(stddev=1/sqrt(fan_in)) = truncated_normal(-2, 2) * stddev, no rescaling.
    haiku = np.asarray(jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32) / math.sqrt(fan_in))
    np.testing.assert_allclose(w, haiku, rtol=1e-6)
    assert math.sqrt(init.variance(shape) * fan_in) == pytest.approx(0.8796, abs=1e-4)
    assert math.sqrt(init.variance(shape) * fan_in) == pytest.approx(TRUNCATED_STD, rel=1e-15)
    assert abs(w.var() - init.variance(shape)) <= variance_tolerance(w)
    assert np.abs(w).max() <= 2 / math.sqrt(fan_in) * (1 + 1e-6)


def test_equinox_linear_default(key):
    in_features, out_features = 300, 200
    weight = jaxinit.equinox_linear_weight(layout="out_in")(key, (out_features, in_features))
    check_uniform_bound(weight, 1 / math.sqrt(in_features))
    check_uniform_bound(jaxinit.equinox_linear_weight()(key, (in_features, out_features)), 1 / math.sqrt(in_features))
    check_uniform_bound(jaxinit.equinox_linear_bias(in_features)(key, (out_features * 100,)), 1 / math.sqrt(in_features))


# -- registry names: PyTorch ---------------------------------------------------------------------
def test_torch_names_carry_torch_meanings():
    get = jaxinit.get
    assert get("kaiming_normal_") == jaxinit.he_normal(distribution="normal")  # untruncated, a=0
    assert get("kaiming_uniform_") == jaxinit.he_uniform()
    slope = get({"name": "kaiming_normal_", "a": 0.2, "mode": "fan_out"})
    assert (slope.scale, slope.mode, slope.distribution) == (2 / 1.04, "fan_out", "normal")
    assert get({"name": "kaiming_normal_", "nonlinearity": "tanh"}).scale == 25 / 9
    assert get({"name": "xavier_normal_", "gain": 2.0}) == jaxinit.variance_scaling(4.0, "fan_avg", "normal")
    assert get("xavier_uniform_") == jaxinit.glorot_uniform()
    trunc = get({"name": "trunc_normal_", "std": 0.02})  # absolute bounds: (-2, 2) is 100 sigma
    assert trunc.bounds == "absolute" and trunc.variance((4, 4)) == pytest.approx(0.02**2, rel=1e-12)
    assert get({"name": "normal_", "mean": 0.5, "std": 2.0}) == jaxinit.normal(2.0, mean_value=0.5)
    assert get({"name": "uniform_", "a": -1.0, "b": 3.0}) == jaxinit.random_uniform(-1.0, 3.0)
    assert get({"name": "orthogonal_", "gain": 1.5}) == jaxinit.orthogonal(scale=1.5)
    assert get({"name": "dirac_", "groups": 2}) == jaxinit.dirac(groups=2)
    assert get("eye_") == jaxinit.identity()
    assert get("zeros_") == jaxinit.zeros
    assert get("ones_") == jaxinit.ones
    assert get({"name": "constant_", "val": 0.3}) == jaxinit.constant(0.3)
    assert "sparse_" not in jaxinit.names()  # fixes zeros per input unit; jaxinit's sparse per output


def test_torch_names_agree_with_torch_itself(key):
    import torch  # in the test extra: this parity test always runs
    torch.manual_seed(0)
    out_f, in_f = 384, 256
    cases = [  # (name, kwargs, torch call, bounded support)
        ("kaiming_normal_", {}, lambda w: torch.nn.init.kaiming_normal_(w), False),
        ("kaiming_uniform_", {"a": 0.1, "mode": "fan_out"}, lambda w: torch.nn.init.kaiming_uniform_(w, 0.1, "fan_out"), True),
        ("xavier_normal_", {"gain": 1.3}, lambda w: torch.nn.init.xavier_normal_(w, 1.3), False),
        ("xavier_uniform_", {}, lambda w: torch.nn.init.xavier_uniform_(w), True),
        ("trunc_normal_", {"std": 0.5, "a": -0.6, "b": 0.9}, lambda w: torch.nn.init.trunc_normal_(w, 0.0, 0.5, -0.6, 0.9), True),
    ]
    for name, kwargs, torch_init, bounded in cases:
        with torch.no_grad():
            theirs = torch_init(torch.empty(out_f, in_f)).numpy().astype(np.float64)  # (out, in)
        init = jaxinit.get({"name": name, **kwargs})
        ours = np.asarray(init(key, (in_f, out_f)), np.float64)                   # (in, out)
        target = init.variance((in_f, out_f))
        assert abs(theirs.var() - target) <= variance_tolerance(theirs), name
        assert abs(ours.var() - target) <= variance_tolerance(ours), name
        if bounded:  # the same support: the extremes of 98k draws agree to a fraction of a percent
            assert np.abs(theirs).max() == pytest.approx(np.abs(ours).max(), rel=5e-3), name


def test_torch_layer_defaults_agree_with_torch_itself(key):
    import torch  # in the test extra: this parity test always runs
    torch.manual_seed(0)
    layers = [
        (torch.nn.Linear(256, 512), jaxinit.torch_linear_kernel(layout="out_in"), 256),
        (torch.nn.Conv2d(8, 64, 3, groups=2), jaxinit.torch_conv_kernel(layout="OIHW"), 4 * 9),
        (torch.nn.ConvTranspose2d(8, 64, 3), jaxinit.torch_conv_transpose_kernel(layout="IOHW"), 64 * 9),
    ]
    for layer, init, fan_in in layers:
        weight = layer.weight.detach().numpy().astype(np.float64)
        bias = layer.bias.detach().numpy().astype(np.float64)
        assert init.variance(weight.shape) == pytest.approx(1 / (3 * fan_in), rel=1e-14)
        assert abs(weight.var() - init.variance(weight.shape)) <= variance_tolerance(weight)
        assert np.abs(weight).max() <= 1 / math.sqrt(fan_in) and np.abs(bias).max() <= 1 / math.sqrt(fan_in)
        check_uniform_bound(init(key, weight.shape), 1 / math.sqrt(fan_in))


# -- registry names: Keras -------------------------------------------------------------------------
def test_keras_names_carry_keras_meanings():
    get = jaxinit.get
    for keras_name, ours in [("GlorotUniform", "glorot_uniform"), ("GlorotNormal", "glorot_normal"),
                             ("HeNormal", "he_normal"), ("HeUniform", "he_uniform"),
                             ("LecunNormal", "lecun_normal"), ("LecunUniform", "lecun_uniform")]:
        assert get(keras_name) == get(ours)  # Keras' normals are the corrected truncated ones too
    assert get("RandomNormal") == jaxinit.normal(0.05)
    assert get("RandomUniform") == jaxinit.random_uniform(-0.05, 0.05)
    trunc = get({"name": "TruncatedNormal", "mean": 0.1, "stddev": 0.2})  # stddev units, cut at 2, not rescaled
    assert (trunc.bounds, trunc.lower, trunc.upper, trunc.mean_value) == ("stddev", -2.0, 2.0, 0.1)
    assert trunc.variance((4, 4)) == pytest.approx(0.2**2 * TRUNCATED_STD**2, rel=1e-12)
    assert get({"name": "VarianceScaling", "scale": 2.0, "distribution": "untruncated_normal"}) == \
        jaxinit.variance_scaling(2.0, "fan_in", "normal")
    assert get({"name": "Orthogonal", "gain": 2.0}) == jaxinit.orthogonal(2.0)
    assert get({"name": "Identity", "gain": 0.5}) == jaxinit.identity(0.5)
    assert get("Zeros") == jaxinit.zeros and get("Ones") == jaxinit.ones
    assert get({"name": "Constant", "value": 0.2}) == jaxinit.constant(0.2)


@pytest.mark.parametrize("kwargs, match", [
    ({"distribution": "normal"}, r"distribution must be one of \['truncated_normal', 'uniform', 'untruncated_normal'\]; "
                                 r"got 'normal' \(Keras VarianceScaling\). Did you mean 'uniform'\?"),
    ({"mode": "fan_geo_avg"}, r"mode must be one of \['fan_avg', 'fan_in', 'fan_out'\]; got 'fan_geo_avg'"),
])
def test_keras_variance_scaling_checks_keras_choices(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxinit.get({"name": "VarianceScaling", **kwargs})
