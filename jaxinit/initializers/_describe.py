"""Check an initializer against its own promise: expected vs measured mean and std, plus a
Kolmogorov-Smirnov test against the exact distribution where the catalog knows it.

This is the seeds' "check the std we got against the std we expected", made precise: the z-scores
use standard errors estimated from the data, so they mean the same for any distribution.

* Entries drawn i.i.d. (``init.iid``: normal, uniform, variance scaling, ...) are judged on one
  draw, standard errors from that sample.
* Entries that are random but not i.i.d. within a draw (``low_rank``, ``orthogonal``,
  ``delta_orthogonal``, ``sparse``): one draw's statistics spread far more (or less) than an
  i.i.d. sample of the same size would (a rank-4 product's 90,000 entries are strongly
  correlated), so the statistics are measured on ``NON_IID_DRAWS`` independent draws and judged
  against their spread across draws (a one-sample t statistic).
* Deterministic entries compare exactly, up to the rounding of the dtype.
* Complex dtypes follow the catalog's radial convention: ``E w = mean``,
  ``E|w - mean|^2 = variance(shape)`` and ``E (w - mean)^2 = 0`` (circular); the KS test is on
  ``|w - mean|^2``, whose law the catalog knows (exponential, uniform on the disk, truncated).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

from jaxinit.initializers._base import BaseInitializer
from jaxinit.initializers._random import (
    COMPLEX_TRUNCATED_STD,
    TRUNCATED_STD,
    Normal,
    RandomUniform,
    TruncatedNormal,
    Uniform,
    std_normal_cdf,
)
from jaxinit.initializers._registry import get
from jaxinit.initializers._variance import VarianceScaling


def _normal_cdf(mean: float, std: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.asarray(ndtr((jnp.asarray(x) - mean) / std), np.float64)


def _uniform_cdf(lo: float, hi: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.clip((np.asarray(x, np.float64) - lo) / (hi - lo), 0.0, 1.0)


def _truncnorm_cdf(mean: float, std: float, a: float, b: float) -> Callable[[np.ndarray], np.ndarray]:
    fa, fb = std_normal_cdf(a), std_normal_cdf(b)

    def cdf(x):
        t = np.clip((np.asarray(x, np.float64) - mean) / std, a, b)
        return np.clip((np.asarray(ndtr(jnp.asarray(t)), np.float64) - fa) / (fb - fa), 0.0, 1.0)

    return cdf


def reference_cdf(init: BaseInitializer, shape: Sequence[int]) -> Callable[[np.ndarray], np.ndarray] | None:
    """The exact CDF of one entry of ``init(key, shape)`` (real dtypes), or ``None`` if not i.i.d./known."""
    if isinstance(init, Normal):
        return _normal_cdf(init.mean_value, init.stddev) if init.stddev > 0 else None
    if isinstance(init, Uniform):
        return _uniform_cdf(0.0, init.scale) if init.scale > 0 else None
    if isinstance(init, RandomUniform):
        return _uniform_cdf(init.minval, init.maxval) if init.maxval > init.minval else None
    if isinstance(init, TruncatedNormal):
        return _truncnorm_cdf(init.mean_value, init.stddev, *init.standard_bounds)
    if isinstance(init, VarianceScaling):
        std = math.sqrt(init.variance(shape))
        if init.distribution == "normal":
            return _normal_cdf(0.0, std)
        if init.distribution == "uniform":
            return _uniform_cdf(-math.sqrt(3) * std, math.sqrt(3) * std)
        return _truncnorm_cdf(0.0, std / TRUNCATED_STD, -2.0, 2.0)
    return None


def radial_reference_cdf(init: BaseInitializer, shape: Sequence[int]) -> Callable[[np.ndarray], np.ndarray] | None:
    """The exact CDF of ``|w - mean|^2`` for one entry of a complex draw, or ``None`` if not known.

    normal: parts N(0, v/2), so ``|w|^2`` is exponential with mean ``v``; uniform: uniform on the
    disk of radius ``sqrt(2 v)``, so ``|w|^2 / (2 v)`` is U(0, 1); truncated normal: a unit complex
    normal cut at modulus 2 and scaled by ``sqrt(v) / 0.9620``, so ``|w|^2 / c^2`` is Exp(1) cut at 4.
    """
    if isinstance(init, Normal):
        v = init.stddev**2
        return (lambda x: -np.expm1(-np.asarray(x, np.float64) / v)) if v > 0 else None
    if isinstance(init, VarianceScaling):
        v = init.variance(shape)
        if init.distribution == "normal":
            return lambda x: -np.expm1(-np.asarray(x, np.float64) / v)
        if init.distribution == "uniform":
            return _uniform_cdf(0.0, 2.0 * v)
        c2 = v / COMPLEX_TRUNCATED_STD**2
        return lambda x: np.clip(-np.expm1(-np.asarray(x, np.float64) / c2) / -math.expm1(-4.0), 0.0, 1.0)
    return None


def ks_statistic(sample: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray]) -> float:
    """Two-sided one-sample Kolmogorov-Smirnov statistic D_n."""
    x = np.sort(np.asarray(sample, np.float64).ravel())
    n = x.size
    f = cdf(x)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def ks_pvalue(d: float, n: int) -> float:
    """Asymptotic p-value of D_n (Kolmogorov's series, with Stephens' small-n correction)."""
    t = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    if t < 0.2:
        return 1.0
    p = 2.0 * sum((-1) ** (k - 1) * math.exp(-2.0 * k * k * t * t) for k in range(1, 101))
    return float(min(max(p, 0.0), 1.0))


# Independent draws that judge an entry whose draws are not i.i.d.: the t statistic of 32 draws
# exceeds 6 with probability 1e-6 for normal statistics (t with 31 degrees of freedom).
NON_IID_DRAWS = 32
# Relative rounding allowance of every comparison: a few float32 ulps of the QR or the sum, plus
# one unit of the target dtype (bfloat16 weights are rounded once, to 2^-8).
_ROUNDING = 1e-5


@dataclasses.dataclass(frozen=True)
class Description:
    """Expected vs measured statistics of ``init(key, shape, dtype)``.

    ``draws`` is 1 for i.i.d. and deterministic entries; for entries that are not i.i.d. the
    measured values are averages over ``draws`` independent draws and the z-scores use their
    spread across draws. For complex dtypes ``measured_mean`` is complex, ``mean_z`` is the larger
    (in magnitude) of its real and imaginary parts' z-scores, ``std`` is ``sqrt(E|w - mean|^2)``
    and ``circular_z`` tests ``E (w - mean)^2 = 0``.
    """

    init: str
    shape: tuple[int, ...]
    dtype: str
    expected_mean: float
    measured_mean: float | complex
    mean_z: float
    expected_std: float
    measured_std: float
    std_z: float
    ks_statistic: float | None
    ks_pvalue: float | None
    draws: int = 1
    circular_z: float | None = None
    method: str = "one draw, i.i.d. entries"

    @property
    def ok(self) -> bool:
        """No statistic more than 6 standard errors off and KS not rejected at 1e-6."""
        ks_ok = self.ks_pvalue is None or self.ks_pvalue > 1e-6
        circ_ok = self.circular_z is None or abs(self.circular_z) <= 6
        return abs(self.mean_z) <= 6 and abs(self.std_z) <= 6 and ks_ok and circ_ok

    def __str__(self) -> str:
        ks = "n/a (not i.i.d. or no closed form)" if self.ks_statistic is None else (
            f"D = {self.ks_statistic:.4g}, p = {self.ks_pvalue:.3g}")
        mean = (f"{self.measured_mean.real:+.6g}{self.measured_mean.imag:+.6g}j"
                if isinstance(self.measured_mean, complex) else f"{self.measured_mean:+.6g}")
        lines = [
            f"{self.init}  shape={self.shape}  dtype={self.dtype}",
            f"  judged on: {self.method}",
            f"  mean  expected {self.expected_mean:+.6g}  measured {mean}  (z = {self.mean_z:+.2f})",
            f"  std   expected {self.expected_std:.6g}  measured {self.measured_std:.6g}  (z = {self.std_z:+.2f})",
        ]
        if self.circular_z is not None:
            lines.append(f"  E(w - mean)^2 = 0 (circular)  (z = {self.circular_z:+.2f})")
        lines += [f"  KS    {ks}", f"  verdict: {'OK' if self.ok else 'MISMATCH'}"]
        return "\n".join(lines)


def _z(diff: float, se: float, scale: float, dtype) -> float:
    """``diff`` in standard errors, with a rounding allowance relative to ``scale``."""
    eps = float(jnp.finfo(dtype).eps) if np.dtype(dtype).itemsize < 4 else 0.0
    se = math.hypot(se, (_ROUNDING + eps) * scale)
    if se > 0:
        return diff / se
    return 0.0 if diff == 0 else math.copysign(math.inf, diff)


def _as_f64(w: jax.Array) -> np.ndarray:
    complex_ = jnp.issubdtype(w.dtype, jnp.complexfloating)
    wide = jnp.complex128 if complex_ and w.dtype == jnp.complex128 else jnp.complex64 if complex_ else (
        jnp.float64 if w.dtype == jnp.float64 else jnp.float32)
    return np.asarray(w.astype(wide), np.complex128 if complex_ else np.float64).ravel()


def _parts_z(diff: complex | float, se_re: float, se_im: float, scale: float, dtype) -> float:
    """The z-score of a real difference, or the larger in magnitude of a complex one's parts."""
    if isinstance(diff, complex):
        zs = (_z(diff.real, se_re, scale, dtype), _z(diff.imag, se_im, scale, dtype))
        return max(zs, key=abs)
    return _z(diff, se_re, scale, dtype)


def describe(init, shape: Sequence[int], key: jax.Array | int = 0, dtype=None) -> Description:
    """Draw and compare with the target mean/std (z-scores) and the exact CDF (KS test).

    I.i.d. entries (one draw): SE(mean) = s / sqrt(n), SE(m2) = sqrt((m4 - m2^2) / n), the std
    z-score being the variance z-score (delta method). Entries that are random but not i.i.d.:
    ``NON_IID_DRAWS`` draws from ``jax.random.split(key)``, per draw the mean and
    ``E|w - expected mean|^2``; z = (average - expected) / (sd across draws / sqrt(draws)).
    Deterministic entries compare exactly. Every comparison allows relative rounding of
    ``1e-5`` plus one unit of a 16-bit target dtype. Complex dtypes: see the module notes.

    Example:
      >>> d = describe("he_normal", (784, 256), key=0)
      >>> d.ok, round(d.expected_std, 5)
      (True, 0.05051)
      >>> describe(jaxinit.low_rank(4, "he_normal"), (300, 300)).ok
      True
    """
    init = get(init)
    if isinstance(key, int):
        key = jax.random.key(key)
    shape = tuple(int(d) for d in shape)
    exp_mean, exp_var = init.mean(shape), init.variance(shape)
    scale_mean = math.sqrt(exp_var) + abs(exp_mean)  # the size of the numbers compared
    w = init(key, shape, dtype)
    complex_ = bool(jnp.issubdtype(w.dtype, jnp.complexfloating))
    target = w.dtype
    iid = bool(init.random and getattr(init, "iid", True))
    if init.random and not iid:
        keys = jax.random.split(key, NON_IID_DRAWS)
        draw = jax.jit(lambda k: init(k, shape, dtype))  # compiled once for the 31 further draws
        xs = [_as_f64(w)] + [_as_f64(draw(k)) for k in keys[1:]]
    else:
        xs = [_as_f64(w)]
    n = xs[0].size
    dev = [x - exp_mean for x in xs]
    means = np.array([x.mean() for x in xs])
    m2s = np.array([float(np.mean(np.abs(d) ** 2)) for d in dev])
    pseudo = np.array([np.mean(d * d) for d in dev]) if complex_ else None

    if len(xs) > 1:  # not i.i.d.: the spread of each statistic across independent draws
        k = len(xs)
        mean, var = complex(means.mean()) if complex_ else float(means.mean()), float(m2s.mean())
        se_re = float(np.std(means.real, ddof=1)) / math.sqrt(k)
        se_im = float(np.std(means.imag, ddof=1)) / math.sqrt(k) if complex_ else 0.0
        se_var = float(np.std(m2s, ddof=1)) / math.sqrt(k)
        mean_z = _parts_z(mean - exp_mean, se_re, se_im, scale_mean, target)
        std_z = _z(var - exp_var, se_var, exp_var, target)
        circular_z = None
        if complex_:
            p = complex(pseudo.mean())
            circular_z = _parts_z(p, float(np.std(pseudo.real, ddof=1)) / math.sqrt(k),
                                  float(np.std(pseudo.imag, ddof=1)) / math.sqrt(k), exp_var, target)
        method = f"{k} independent draws (entries within a draw are not i.i.d.)"
        return Description(repr(init), shape, str(target), exp_mean, mean, mean_z, math.sqrt(exp_var),
                           math.sqrt(var), std_z, None, None, k, circular_z, method)

    x = xs[0]
    mean = complex(means[0]) if complex_ else float(means[0])
    if not init.random:  # deterministic: exact, up to rounding
        var = float(np.mean(np.abs(x - x.mean()) ** 2))
        mean_z = _parts_z(mean - exp_mean, 0.0, 0.0, scale_mean, target)
        std_z = _z(var - exp_var, 0.0, exp_var, target)
        return Description(repr(init), shape, str(target), exp_mean, mean, mean_z, math.sqrt(exp_var),
                           math.sqrt(var), std_z, None, None, 1, None, "one draw, deterministic (exact)")
    r2 = np.abs(x - mean) ** 2
    var = float(r2.mean())
    if complex_:
        se_re, se_im = float(x.real.std()) / math.sqrt(n), float(x.imag.std()) / math.sqrt(n)
    else:
        se_re = se_im = math.sqrt(var / n)
    mean_z = _parts_z(mean - exp_mean, se_re, se_im, scale_mean, target)
    std_z = _z(var - exp_var, math.sqrt(max(float(np.mean(r2 * r2)) - var * var, 0.0) / n), exp_var, target)
    circular_z = None
    dks = pks = None
    if complex_:
        e = x - mean
        p = complex(np.mean(e * e))
        se_p = math.sqrt(float(np.mean(np.abs(e) ** 4)) / (2 * n))  # each part of E e^2
        circular_z = _parts_z(p, se_p, se_p, exp_var, target)
        cdf = radial_reference_cdf(init, shape)
        if cdf is not None and target in (jnp.complex64, jnp.complex128):
            dks = ks_statistic(np.abs(x - exp_mean) ** 2, cdf)
            pks = ks_pvalue(dks, n)
    else:
        cdf = reference_cdf(init, shape)
        if cdf is not None and target in (jnp.float32, jnp.float64):
            dks = ks_statistic(x, cdf)
            pks = ks_pvalue(dks, n)
    return Description(repr(init), shape, str(target), exp_mean, mean, mean_z, math.sqrt(exp_var),
                       math.sqrt(var), std_z, dks, pks, 1, circular_z)
