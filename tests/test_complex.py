"""Complex weights: the radial convention E|z|^2 = target in all three variance-scaling
distributions, complex64 here and complex128 under x64, and JAX's 1.019x truncated-normal bug."""

from __future__ import annotations

import json
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinit
from jaxinit.initializers._random import COMPLEX_TRUNCATED_STD

from conftest import run_python
from helpers import Z

DISTRIBUTIONS = ["normal", "uniform", "truncated_normal"]
SHAPE = (256, 192)
# JAX divides its complex truncated normal by sqrt(1 - 5 e^-4), the std of the untruncated radius
# law evaluated at the bound, instead of the truncated law's sqrt(E|z|^2).
JAX_COMPLEX_CONSTANT = 0.95311164380491208


def radial_checks(z: np.ndarray, target: float) -> None:
    """E|z|^2 = target, E z = 0, E z^2 = 0 (circular), each within Z sample standard errors."""
    z = z.astype(np.complex128).ravel()
    n = z.size
    r2 = np.abs(z) ** 2
    assert abs(r2.mean() - target) <= Z * r2.std() / math.sqrt(n), (r2.mean() / target)
    assert abs(z.mean()) <= Z * math.sqrt(r2.mean() / n)
    assert abs(np.mean(z * z)) <= Z * math.sqrt(np.mean(r2**2) / n)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("mode", ["fan_in", "fan_avg"])
def test_complex64_hits_the_target_second_moment(distribution, mode, key):
    init = jaxinit.variance_scaling(1.7, mode, distribution)
    z = np.asarray(init(key, SHAPE, jnp.complex64))
    assert z.dtype == np.complex64
    radial_checks(z, init.variance(SHAPE))


@pytest.mark.parametrize("name", ["he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal"])
def test_complex64_factories(name, key):
    init = jaxinit.get(name)
    radial_checks(np.asarray(init(key, (3, 3, 32, 48), jnp.complex64)), init.variance((3, 3, 32, 48)))


def test_radial_laws_have_their_stated_support(key):
    target = jaxinit.variance_scaling(1.0, "fan_in", "uniform").variance(SHAPE)
    z = np.asarray(jaxinit.variance_scaling(1.0, "fan_in", "uniform")(key, SHAPE, jnp.complex64))
    # Uniform on the disk of radius sqrt(2 target): |z|^2 / (2 target) is U(0, 1).
    u = np.abs(z.astype(np.complex128)) ** 2 / (2 * target)
    assert u.max() <= 1 + 1e-6
    assert abs(u.mean() - 0.5) <= Z * math.sqrt(1 / 12 / u.size)
    # Truncated normal: the modulus is cut at 2 scale units, scale = std / 0.96196...
    z = np.asarray(jaxinit.variance_scaling(1.0, "fan_in", "truncated_normal")(key, SHAPE, jnp.complex64))
    bound = 2 * math.sqrt(target) / COMPLEX_TRUNCATED_STD
    assert np.abs(z).max() <= bound * (1 + 1e-6)
    assert np.abs(z).max() >= 0.99 * bound
    # Normal: independent real and imaginary parts with half the variance each.
    z = np.asarray(jaxinit.variance_scaling(1.0, "fan_in", "normal")(key, SHAPE, jnp.complex64))
    assert abs(z.real.var() - target / 2) <= Z * target / 2 * math.sqrt(2 / z.size)
    assert abs(z.imag.var() - target / 2) <= Z * target / 2 * math.sqrt(2 / z.size)


def test_complex_truncation_constant_is_derived():
    # E|z|^2 of a unit complex normal with |z| <= 2: (1 - 5 e^-4) / (1 - e^-4).
    assert COMPLEX_TRUNCATED_STD == pytest.approx(math.sqrt((1 - 5 * math.exp(-4)) / (1 - math.exp(-4))), abs=1e-15)
    assert COMPLEX_TRUNCATED_STD == pytest.approx(0.9619618280082136, abs=1e-15)
    assert JAX_COMPLEX_CONSTANT == pytest.approx(math.sqrt(1 - 5 * math.exp(-4)), abs=1e-12)


def test_jax_complex_truncated_normal_regression_1_019x_too_wide(key):
    shape = (1024, 1024)  # 1M draws: a standard error of 0.09% against a 1.9% bias
    theirs = np.asarray(jax.nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")(
        key, shape, jnp.complex64)).astype(np.complex128)
    ours = np.asarray(jaxinit.variance_scaling(1.0, "fan_in", "truncated_normal")(
        key, shape, jnp.complex64)).astype(np.complex128)
    # Same key, same radial law: JAX's weights are ours times 0.96196 / 0.95311 = 1.0093 (up to
    # float32 rounding of the radius near 0) ...
    target = 1.0 / shape[0]
    np.testing.assert_allclose(theirs, ours * (COMPLEX_TRUNCATED_STD / JAX_COMPLEX_CONSTANT), rtol=2e-6,
                               atol=1e-4 * math.sqrt(target))
    # ... so E|z|^2 is 1.0187x the target there and on target here.
    radial_checks(ours, target)
    radial_checks(theirs, target * (COMPLEX_TRUNCATED_STD / JAX_COMPLEX_CONSTANT) ** 2)
    with pytest.raises(AssertionError):
        radial_checks(theirs, target)
    assert (COMPLEX_TRUNCATED_STD / JAX_COMPLEX_CONSTANT) ** 2 == pytest.approx(1.0187, abs=1e-4)


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_complex_normal_and_uniform_match_jax(distribution, key):
    ours = jaxinit.variance_scaling(1.0, "fan_in", distribution)(key, SHAPE, jnp.complex64)
    theirs = jax.nn.initializers.variance_scaling(1.0, "fan_in", distribution)(key, SHAPE, jnp.complex64)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=2e-6, atol=1e-7)


def test_fixed_scale_normal_is_complex_with_the_same_convention(key):
    radial_checks(np.asarray(jaxinit.normal(0.05)(key, SHAPE, jnp.complex64)), 0.05**2)


@pytest.mark.parametrize("init", [jaxinit.truncated_normal(0.05), jaxinit.uniform(0.1), jaxinit.random_uniform()])
def test_real_only_entries_refuse_complex(init, key):
    with pytest.raises(TypeError, match=rf"^{re.escape(repr(init))} makes real weights; got complex dtype=complex64"):
        init(key, (4, 4), jnp.complex64)


def test_complex128_under_x64_hits_the_target():
    out = run_python(
        """
        import json
        import jax, jax.numpy as jnp, numpy as np, jaxinit
        key = jax.random.key(20261123)
        shape = (256, 192)
        stats = {}
        for d in ("normal", "uniform", "truncated_normal"):
            init = jaxinit.variance_scaling(1.7, "fan_avg", d)
            z = np.asarray(init(key, shape, jnp.complex128))
            r2 = np.abs(z) ** 2
            stats[d] = {"dtype": z.dtype.name, "mean_r2": float(r2.mean()), "sd_r2": float(r2.std()),
                        "target": init.variance(shape), "n": z.size,
                        "abs_mean": float(abs(z.mean())), "abs_pseudo": float(abs(np.mean(z * z))),
                        "m4": float(np.mean(r2 ** 2))}
        print(json.dumps(stats))
        """,
        x64=True,
    )
    for d, s in json.loads(out).items():
        assert s["dtype"] == "complex128", d
        assert abs(s["mean_r2"] - s["target"]) <= Z * s["sd_r2"] / math.sqrt(s["n"]), d
        assert s["abs_mean"] <= Z * math.sqrt(s["mean_r2"] / s["n"]), d
        assert s["abs_pseudo"] <= Z * math.sqrt(s["m4"] / s["n"]), d
