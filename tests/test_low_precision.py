"""Low precision: every catalog entry x {bfloat16, float16, float8_e4m3fn, float8_e5m2, float32}.

jaxinit samples in float32 and casts once, so a low-precision weight is the float32 weight
rounded to the target's grid. That is checked bit for bit, and then statistically against the
target law *after rounding*: where the catalog knows an entry's exact CDF, the law of the rounded
value is computed exactly, cell by cell over every value the dtype can represent, and the sample's
variance, mean, zero count and tail counts are compared with it using binomial/sample-moment
standard errors (z = 6). Entries without a closed-form law get the worst-case rounding bound
from the dtype's epsilon. Where ``jax.nn.initializers`` misses its target, jaxinit's result is pinned
here and JAX's is measured by ``experiments/jax_failures.py``, not asserted.
"""

from __future__ import annotations

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

import jaxinit
from jaxinit.initializers._random import TRUNCATED_STD

from catalog_cases import CASES
from helpers import Z, mean_tolerance, spec_id, variance_tolerance

DTYPES = [jnp.bfloat16, jnp.float16, jnp.float8_e4m3fn, jnp.float8_e5m2, jnp.float32]
N_TARGET = 1 << 16  # ~64k entries per draw


def as64(w) -> np.ndarray:
    return np.asarray(jnp.asarray(w, jnp.float32), np.float64).ravel()


def big_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with its two last axes scaled up together to about ``N_TARGET`` entries."""
    k = max(1, math.ceil(math.sqrt(N_TARGET / math.prod(shape))))
    return (*shape[:-2], shape[-2] * k, shape[-1] * k) if len(shape) >= 2 else (shape[0] * k * k,)


@functools.cache
def grid(dtype) -> np.ndarray:
    """Every finite value of a 16- or 8-bit float dtype, sorted, as float64."""
    dtype = np.dtype(dtype)
    with np.errstate(invalid="ignore"):  # the NaN bit patterns
        values = np.arange(1 << (8 * dtype.itemsize), dtype=f"u{dtype.itemsize}").view(dtype).astype(np.float64)
    return np.unique(values[np.isfinite(values)])


class RoundedLaw:
    """The exact law of ``round_to_nearest(w, dtype)`` for ``w`` with CDF ``cdf``."""

    def __init__(self, cdf, dtype):
        self.values = grid(dtype)
        mids = (self.values[1:] + self.values[:-1]) / 2
        edges = np.concatenate([[0.0], np.clip(cdf(mids), 0.0, 1.0), [1.0]])
        self.probs = np.diff(edges)

    def mean(self) -> float:
        return float(np.sum(self.probs * self.values))

    def variance(self) -> float:
        return float(np.sum(self.probs * (self.values - self.mean()) ** 2))

    def prob(self, where: np.ndarray) -> float:
        return float(np.sum(self.probs[where]))


def binomial_ok(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= Z * math.sqrt(n * p * (1 - p)) + 1


def rounding_allowance(ref: np.ndarray, dtype) -> float:
    """Worst-case |Var(round(w)) - Var(w)| over a sample ``ref`` of w: with d = round(w) - w,
    |2 Cov(w, d) + Var(d)| <= 2 sqrt(E w^2) e + e^2, e = sqrt(E d^2) <= u sqrt(E w^2) + sub / 2."""
    if np.dtype(dtype) == np.float32:
        return 0.0
    info = jnp.finfo(dtype)
    rms = math.sqrt(float(np.mean(ref**2)))
    e = float(info.eps) / 2 * rms + float(info.smallest_subnormal) / 2
    return 2 * rms * e + e * e


def exact_cdf(init, shape):
    """The CDF of one entry in float64 (an oracle independent of the package), or None."""
    ndtr = scipy.special.ndtr
    if isinstance(init, jaxinit.FanInUniform):
        return lambda x: np.clip((x + init.bound) / (2 * init.bound), 0.0, 1.0)
    if isinstance(init, jaxinit.Uniform):
        return lambda x: np.clip(x / init.scale, 0.0, 1.0)
    if isinstance(init, jaxinit.RandomUniform):
        return lambda x: np.clip((x - init.minval) / (init.maxval - init.minval), 0.0, 1.0)
    if isinstance(init, jaxinit.Normal):
        return lambda x: ndtr((x - init.mean_value) / init.stddev)
    if isinstance(init, jaxinit.TruncatedNormal):
        (a, b), mean, std = init.standard_bounds, init.mean_value, init.stddev
    elif isinstance(init, jaxinit.VarianceScaling):
        std = math.sqrt(init.variance(shape))
        if init.distribution == "normal":
            return lambda x: ndtr(x / std)
        if init.distribution == "uniform":
            return lambda x: np.clip((x + math.sqrt(3) * std) / (2 * math.sqrt(3) * std), 0.0, 1.0)
        (a, b), mean, std = (-2.0, 2.0), 0.0, std / TRUNCATED_STD
    else:
        return None
    fa, fb = ndtr(a), ndtr(b)
    return lambda x: (ndtr(np.clip((x - mean) / std, a, b)) - fa) / (fb - fa)


@functools.cache
def reference(spec_json: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(jaxinit.get(json.loads(spec_json))(jax.random.key(20261123), shape, jnp.float32))


CASE_IDS = [spec_id(c[0]) for c in CASES]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("spec, shape2d, conv", CASES, ids=CASE_IDS)
def test_low_precision_is_the_float32_sample_rounded_once_and_hits_the_rounded_target(spec, shape2d, conv,
                                                                                       dtype, key):
    init = jaxinit.get(spec)
    shape = big_shape(shape2d)
    ref32 = reference(json.dumps(spec, sort_keys=True), shape)
    w = init(key, shape, dtype)
    assert w.dtype == dtype and w.shape == shape
    # Sampled wide, cast once: bit for bit the float32 draw rounded to the target.
    np.testing.assert_array_equal(np.asarray(w).view(f"u{w.dtype.itemsize}"),
                                  np.asarray(jnp.asarray(ref32).astype(dtype)).view(f"u{w.dtype.itemsize}"))
    x, ref = as64(w), np.asarray(ref32, np.float64).ravel()
    assert np.all(np.isfinite(x)), f"{int(np.sum(~np.isfinite(x)))} non-finite entries"
    n = x.size
    cdf = exact_cdf(init, shape)
    if cdf is not None and np.dtype(dtype) != np.float32:
        law = RoundedLaw(cdf, dtype)
        assert abs(x.var() - law.variance()) <= variance_tolerance(x) + 1e-9 * law.variance()
        assert abs(x.mean() - law.mean()) <= mean_tolerance(x) + 1e-12
        if init.random:
            assert binomial_ok(int(np.sum(x == 0)), n, law.prob(law.values == 0))
            # Tails: counts beyond the law's ~100/n quantiles on each side are where the law puts them.
            upper = np.cumsum(law.probs[::-1])[::-1]
            lower = np.cumsum(law.probs)
            hi = law.values[np.searchsorted(-upper, -100 / n)]
            lo = law.values[np.searchsorted(lower, 100 / n)]
            assert binomial_ok(int(np.sum(x >= hi)), n, law.prob(law.values >= hi)), "upper tail"
            assert binomial_ok(int(np.sum(x <= lo)), n, law.prob(law.values <= lo)), "lower tail"
    else:
        target = init.variance(shape)
        tol = variance_tolerance(x) + rounding_allowance(ref, dtype) + 1e-6 * target + 1e-12
        assert abs(x.var() - target) <= tol
        if init.random and target > 0:
            # Rounding can zero only |w| < sub / 2; a law with density <= 1 / std near 0 puts at most
            # sub / std of its mass there.
            extra = float(np.mean(x == 0) - np.mean(ref == 0))
            bound = float(jnp.finfo(dtype).smallest_subnormal) / math.sqrt(target)
            assert extra <= bound + Z * math.sqrt(max(bound, 1 / n) / n)


# -- the cases where jax.nn.initializers misses its target -------------------------------------------
# What jaxinit does is pinned here; what JAX does (128 bfloat16 values, no tails beyond 2.89 sigma,
# all-zero or all-NaN float8, std 0.176 for 0.02, e5m2 variance 0.77..1.24 of the target) is measured
# by experiments/jax_failures.py and reported in the README, not asserted: it may change any release.
BF16_NORMALS = {
    "he_normal": jaxinit.he_normal(),
    "normal": jaxinit.normal(1.0),
    "truncated_normal": jaxinit.truncated_normal(1.0),
}


def distinct_values_ok(x: np.ndarray, law: RoundedLaw) -> bool:
    """The number of distinct values in ``x`` against its expectation under ``law``:
    E = sum_i 1 - (1 - p_i)^n, within Z standard errors (the indicators' variances summed; their
    covariances are negative, so this overstates the spread)."""
    miss = (1 - law.probs) ** x.size
    expected, sd = float(np.sum(1 - miss)), math.sqrt(float(np.sum(miss * (1 - miss))))
    return abs(np.unique(x).size - expected) <= Z * sd + 1


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BF16_NORMALS))
def test_bfloat16_normals_take_every_value_of_the_rounded_law(name, key):
    init, shape = BF16_NORMALS[name], (512, 512)
    x = as64(init(key, shape, jnp.bfloat16))
    law = RoundedLaw(exact_cdf(init, shape), jnp.bfloat16)
    assert distinct_values_ok(x, law), (np.unique(x).size, name)  # ~2,000 values; a bfloat16 uniform gives 128


@pytest.mark.slow
def test_bfloat16_normal_reaches_the_tails(key):
    shape = (512, 512)
    x = np.abs(as64(BF16_NORMALS["normal"](key, shape, jnp.bfloat16)))
    # P(max |z| < 4 in 262144 draws) = (1 - 6.3e-5)^262144 ~ 6e-8; and the count beyond 3.5 sigma
    # matches the rounded law.
    assert x.max() >= 4.0
    law = RoundedLaw(scipy.special.ndtr, jnp.bfloat16)
    beyond = np.abs(law.values) >= 3.5
    assert binomial_ok(int(np.sum(x >= 3.5)), x.size, law.prob(beyond))


@pytest.mark.parametrize("init, shape", [(jaxinit.glorot_uniform(), (1024, 1024)), (jaxinit.he_normal(), (256, 256)),
                                         (jaxinit.truncated_normal(0.05), (256, 256))],
                         ids=["glorot_uniform", "he_normal", "truncated_normal"])
def test_float8_e4m3fn_follows_the_rounded_law(init, shape, key):
    e4m3 = jnp.float8_e4m3fn
    ours = as64(init(key, shape, e4m3))
    assert np.all(np.isfinite(ours))
    law = RoundedLaw(exact_cdf(init, shape), e4m3)
    assert binomial_ok(int(np.sum(ours == 0)), ours.size, law.prob(law.values == 0))  # glorot (1024, 1024): ~1.8%
    assert abs(ours.var() - law.variance()) <= variance_tolerance(ours)


def test_bfloat16_wide_truncated_normal_has_std_0_02(key):
    shape = (256, 256)
    init = jaxinit.truncated_normal(0.02, lower=-100.0, upper=100.0)
    ours = as64(init(key, shape, jnp.bfloat16))
    law = RoundedLaw(exact_cdf(init, shape), jnp.bfloat16)
    assert abs(ours.var() - law.variance()) <= variance_tolerance(ours)
    assert law.variance() == pytest.approx(0.02**2, rel=1e-3)


@pytest.mark.parametrize("shape", [(256, 256), (3, 3, 64, 64)])
def test_float8_e5m2_variance_on_target(shape, key):
    e5m2 = jnp.float8_e5m2
    for name in ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"):
        init = jaxinit.get(name)
        law = RoundedLaw(exact_cdf(init, shape), e5m2)
        ours = as64(init(key, shape, e5m2))
        assert abs(ours.var() - law.variance()) <= variance_tolerance(ours), name
        # Rounding to e5m2's 2 mantissa bits itself moves the variance by at most ~1.5% here.
        assert law.variance() == pytest.approx(init.variance(shape), rel=0.02)
