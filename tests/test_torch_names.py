"""PyTorch-named registry entries read PyTorch-layout weights: ``layout``, ``in_axis``, ``out_axis``
(and ``batch_axis``, ``groups``, ``einsum``) as every other variance-scaling entry takes them."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

import jaxinit

from helpers import variance_tolerance

TORCH_VS = {
    "kaiming_normal_": lambda fan_in, fan_out: 2.0 / fan_in,
    "kaiming_uniform_": lambda fan_in, fan_out: 2.0 / fan_in,
    "xavier_normal_": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "xavier_uniform_": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
}


@pytest.mark.parametrize("name", list(TORCH_VS))
@pytest.mark.parametrize("options", [{"layout": "out_in"}, {"layout": "OI"}, {"in_axis": -1, "out_axis": -2}])
def test_torch_names_read_an_out_in_weight(name, options, key):
    # A PyTorch Linear(256, 64) weight is (64, 256): fan_in 256, fan_out 64.
    init = jaxinit.get({"name": name, **options})
    target = TORCH_VS[name](256, 64)
    assert init.variance((64, 256)) == pytest.approx(target, rel=1e-12)
    w = np.asarray(init(key, (64, 256), jnp.float32), np.float64)
    assert abs(w.var() - target) <= variance_tolerance(w)
    assert jaxinit.get(init.to_dict()) == init


def test_kaiming_normal_out_in_gives_the_fan_in_variance_not_4x(key):
    init = jaxinit.get({"name": "kaiming_normal_", "layout": "out_in"})
    w = np.asarray(init(key, (64, 256), jnp.float32), np.float64)
    assert abs(w.var() - 2.0 / 256) <= variance_tolerance(w)
    assert abs(w.var() - 2.0 / 64) > 10 * variance_tolerance(w)  # the swapped fans are far off


@pytest.mark.parametrize("name", list(TORCH_VS))
def test_torch_names_match_torch_fans_on_a_conv_weight(name):
    torch = pytest.importorskip("torch")
    weight = torch.empty(32, 16, 3, 3)
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(weight)
    init = jaxinit.get({"name": name, "layout": "OIHW"})
    assert init.variance((32, 16, 3, 3)) == pytest.approx(TORCH_VS[name](fan_in, fan_out), rel=1e-12)
    # and torch's own draw has that variance (a loose check of the formula, not of jaxinit)
    torch.manual_seed(0)
    getattr(torch.nn.init, name)(weight)
    x = weight.numpy().astype(np.float64)
    assert abs(x.var() - TORCH_VS[name](fan_in, fan_out)) <= variance_tolerance(x)


def test_torch_names_refuse_unknown_options():
    with pytest.raises(ValueError, match=r"takes no argument .colum_axis."):
        jaxinit.get({"name": "kaiming_normal_", "colum_axis": 0})
    with pytest.raises(ValueError, match=r"layout"):
        jaxinit.get({"name": "xavier_uniform_", "layout": "sideways"})
    assert math.isclose(jaxinit.get({"name": "kaiming_uniform_", "a": math.sqrt(5), "layout": "out_in"})
                        .variance((64, 256)), 1.0 / (3 * 256))
