"""describe(): expected vs measured statistics and a KS test against the exact distribution."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import jaxinit
from jaxinit.initializers._describe import ks_pvalue, ks_statistic


@pytest.mark.parametrize("spec", ["he_normal", "glorot_uniform", "lecun_normal",
                                  {"name": "normal", "stddev": 0.1}, {"name": "uniform", "scale": 2.0},
                                  {"name": "trunc_normal", "std": 0.5, "a": -0.2, "b": 1.0}])
def test_describe_accepts_correct_initializers(spec):
    d = jaxinit.describe(spec, (300, 200), key=1)
    assert d.ok, str(d)
    assert d.ks_statistic is not None


def test_describe_flags_a_wrong_variance():
    # An initializer that claims one variance but draws another must be flagged.
    class Liar(type(jaxinit.normal(0.1))):
        def variance(self, shape):
            return 0.0121  # std 0.11 claimed, 0.10 drawn

    d = jaxinit.describe(Liar(stddev=0.1), (300, 200), key=1)
    assert not d.ok and d.std_z < -6


def test_ks_helpers_match_scipy():
    x = np.asarray(jax.random.normal(jax.random.key(0), (2000,), jnp.float32), np.float64)
    ref = st.kstest(x, st.norm.cdf, method="asymp")
    assert ks_statistic(x, st.norm.cdf) == pytest.approx(ref.statistic, rel=1e-12)
    assert ks_pvalue(ref.statistic, x.size) == pytest.approx(ref.pvalue, abs=0.02)


def test_describe_prints_a_readable_report():
    text = str(jaxinit.describe("he_normal", (784, 256), key=0))
    assert "expected" in text and "measured" in text and "verdict: OK" in text


@pytest.mark.parametrize("spec, argv", [
    ("he_normal", ["--dtype", "float64"]),
    ("he_normal", ["--dtype", "complex128"]),
    ('{"name": "normal", "stddev": 0.1, "dtype": "float64"}', []),
])
def test_cli_check_refuses_64_bit_dtypes_without_x64(capsys, spec, argv):
    # As `jaxinit sweep` refuses network.dtype = "float64": exit 2, one line, no JAX warning
    # (pytest turns warnings into errors here), nothing drawn in float32 instead.
    from jaxinit import cli

    assert not jax.config.read("jax_enable_x64")
    status = cli.main(["check", spec, "--shape", "8,8", *argv])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "needs 64-bit JAX: set JAX_ENABLE_X64=1" in err and "64" in err


def test_cli_check_float64_under_x64_draws_float64():
    from conftest import run_python

    out = run_python(
        """
        import sys
        from jaxinit import cli
        sys.exit(cli.main(["check", "he_normal", "--shape", "300,200", "--dtype", "float64"]))
        """,
        x64=True,
    )
    assert "dtype=float64" in out and "verdict: OK" in out


# -- complex dtypes: the radial convention --------------------------------------------------------
@pytest.mark.parametrize("spec", ["he_normal", "glorot_uniform", "lecun_normal", {"name": "normal", "stddev": 0.1},
                                  {"name": "he_normal", "distribution": "normal"}])
def test_describe_accepts_correct_complex_initializers(spec):
    d = jaxinit.describe(spec, (300, 200), key=1, dtype=jnp.complex64)
    assert d.ok, str(d)
    assert isinstance(d.measured_mean, complex) and d.circular_z is not None
    assert d.ks_statistic is not None  # on |w|^2, whose law the catalog knows
    assert d.measured_std == pytest.approx(d.expected_std, rel=0.02)


def test_describe_flags_a_wrong_complex_variance_and_a_non_circular_draw():
    class Liar(type(jaxinit.normal(0.1))):
        def variance(self, shape):
            return 2 * self.stddev**2

    d = jaxinit.describe(Liar(stddev=0.1), (300, 200), key=1, dtype=jnp.complex64)
    assert not d.ok and d.std_z < -6

    class RealParts(type(jaxinit.normal(0.1))):
        def _sample(self, key, shape, dtype):  # E|w|^2 right, but all of it in the real part
            return (jax.random.normal(key, shape) * self.stddev).astype(dtype)

    d = jaxinit.describe(RealParts(stddev=0.1), (300, 200), key=1, dtype=jnp.complex64)
    assert abs(d.std_z) < 6 and not d.ok and d.circular_z > 6


# -- entries whose draws are not i.i.d. -------------------------------------------------------------
def test_describe_low_rank_is_judged_on_independent_draws():
    d = jaxinit.describe(jaxinit.low_rank(4, "he_normal"), (300, 300), key=0)
    assert d.ok, str(d)
    assert d.draws > 1 and "independent draws" in str(d)


@pytest.mark.parametrize("init, shape", [
    (jaxinit.low_rank(4, "he_normal"), (300, 300)),
    (jaxinit.orthogonal(), (128, 64)),
    (jaxinit.sparse(0.9, 0.05), (300, 200)),
])
def test_describe_still_flags_a_wrong_non_iid_initializer(init, shape):
    # The same draws, claiming twice the variance they have: MISMATCH, never hidden by the spread.
    liar_type = type("Liar", (type(init),), {"variance": lambda self, s: 2 * type(init).variance(self, s)})
    liar = liar_type(**{f.name: getattr(init, f.name) for f in dataclasses.fields(init)})
    assert jaxinit.describe(init, shape, key=0).ok
    d = jaxinit.describe(liar, shape, key=0)
    assert not d.ok and d.std_z < -6, str(d)


@pytest.mark.parametrize("argv", [
    ["he_normal", "--shape", "300,200", "--dtype", "complex64"],
    ['{"name": "low_rank", "rank": 4, "base": "he_normal"}', "--shape", "300,300"],
])
def test_cli_check_passes_correct_complex_and_low_rank_entries(capsys, argv):
    from jaxinit import cli

    status = cli.main(["check", *argv])
    out, _ = capsys.readouterr()
    assert status == 0 and "verdict: OK" in out, out
