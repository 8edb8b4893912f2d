"""describe(): expected vs measured statistics and a KS test against the exact distribution."""

from __future__ import annotations

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
