"""Fixed-scale random initializers and the unit samplers every variance-based entry shares.

``normal``, ``uniform`` and ``truncated_normal`` keep the names, arguments and distributions of
``jax.nn.initializers`` (and, sampling float32 from the same ``jax.random`` calls, the same arrays
for the same key in float32). ``random_uniform`` (Keras) and ``trunc_normal`` (PyTorch's absolute
bounds) are the other libraries' meanings, made explicit.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit import _prng
from jaxinit.errors import check_choice, check_nonnegative, check_positive, check_real
from jaxinit.initializers._base import (
    BaseInitializer,
    InitializerNoise,
    SharedNoise,
    dtype_name,
    is_complex,
    real_dtype,
    wide_dtype,
)
from jaxinit.initializers._registry import register

_SQRT2 = math.sqrt(2.0)


def std_normal_cdf(x: float) -> float:
    """Phi(x), accurate in both tails (erfc rather than 1 + erf)."""
    if x == math.inf:
        return 1.0
    if x == -math.inf:
        return 0.0
    return 0.5 * math.erfc(-x / _SQRT2)


def std_normal_pdf(x: float) -> float:
    return 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def truncated_moments(lower: float, upper: float) -> tuple[float, float]:
    r"""Mean and variance of a standard normal truncated to ``(lower, upper)``.

    With :math:`Z = \Phi(b) - \Phi(a)`:
    :math:`\mu = (\phi(a) - \phi(b)) / Z` and
    :math:`\sigma^2 = 1 + (a\phi(a) - b\phi(b)) / Z - \mu^2`.
    ``truncated_moments(-2, 2)[1] ** 0.5`` is JAX's constant 0.8796256610342398.
    """
    z = std_normal_cdf(upper) - std_normal_cdf(lower)
    pa, pb = std_normal_pdf(lower), std_normal_pdf(upper)
    mean = (pa - pb) / z
    apa = 0.0 if math.isinf(lower) else lower * pa
    bpb = 0.0 if math.isinf(upper) else upper * pb
    return mean, 1.0 + (apa - bpb) / z - mean * mean


# Exponential with rate 1 truncated at T = upper^2: E|z|^2 = (1 - (1 + T) e^-T) / (1 - e^-T).
def complex_truncated_second_moment(upper: float) -> float:
    """E|z|^2 of a unit complex normal whose modulus is truncated at ``upper``."""
    t = upper * upper
    return (1.0 - (1.0 + t) * math.exp(-t)) / (1.0 - math.exp(-t))


# -- raw samplers and their scale: sample = raw * (scale * RAW_UNIT[distribution]) --------------
# Keeping the scale to one final multiplication by a Python-computed constant is what lets float32
# output match JAX's bit for bit, and lets the sweep draw the raw noise once for every initializer
# that shares it (common random numbers) and apply each initializer's factor afterwards.
def _polar(key, shape, wide, radius_fn):
    key_r, key_theta = jax.random.split(key)
    real = real_dtype(wide)
    r = radius_fn(jax.random.uniform(key_r, shape, real))
    theta = (2 * np.pi) * jax.random.uniform(key_theta, shape, real)
    return jax.lax.complex(r * jnp.cos(theta), r * jnp.sin(theta))


# |z|^2 ~ Exp(1) truncated at 4 for the complex truncated normal, by inverse CDF.
_COMPLEX_TRUNCATED_MASS = 1.0 - math.exp(-4.0)


# -- the maps from random bits to numbers that jax.random uses ---------------------------------
# jax.random.uniform, normal and truncated_normal all consume jax.random.bits(key, shape) of the
# dtype's width and differ only in the map applied to those bits. Drawing the bits once and
# applying the maps below gives the same numbers as those calls (tests/test_random.py checks it
# bit for bit), and lets the sweep draw one bit stream per (seed, layer) for every initializer
# that consumes it: the random-bit generator is what costs, not the maps.
def random_bits(key, shape, wide) -> jax.Array:
    """``jax.random.bits`` of the bit width of the real dtype ``wide`` (uint32 for float32), through
    :func:`jaxinit._prng.bits` (the same bits, one fused kernel on the CPU)."""
    return _prng.bits(key, tuple(shape), np.dtype(f"uint{np.finfo(wide).bits}"))


def uniform_from_bits(bits, dtype, minval, maxval) -> jax.Array:
    """``jax.random.uniform(key, shape, dtype, minval, maxval)`` from ``random_bits(key, shape, dtype)``:
    the mantissa bits under exponent 0 give ``[1, 2)``, shifted and scaled to ``[minval, maxval)``."""
    dtype = np.dtype(dtype)
    finfo = jnp.finfo(dtype)
    uint = bits.dtype
    mantissa = jax.lax.shift_right_logical(bits, jnp.asarray(finfo.bits - finfo.nmant, uint))
    one = jnp.asarray(np.array(1.0, dtype).view(uint), uint)
    floats = jax.lax.bitcast_convert_type(jax.lax.bitwise_or(mantissa, one), dtype) - jnp.asarray(1.0, dtype)
    lo = jax.lax.broadcast_to_rank(jax.lax.convert_element_type(minval, dtype), bits.ndim)
    hi = jax.lax.broadcast_to_rank(jax.lax.convert_element_type(maxval, dtype), bits.ndim)
    return jax.lax.max(lo, floats * (hi - lo) + lo)


def normal_from_bits(bits, dtype) -> jax.Array:
    """``jax.random.normal`` (real dtypes): ``sqrt(2) erfinv(u)``, ``u`` uniform on ``(-1, 1)``."""
    dtype = np.dtype(dtype)
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
    u = uniform_from_bits(bits, dtype, lo, np.array(1.0, dtype))
    return jax.lax.mul(np.array(np.sqrt(2), dtype), jax.lax.erf_inv(u))


@functools.partial(jax.jit, static_argnums=(3,))
def _truncated_from_bits(bits, lower, upper, dtype):
    # Structured as jax.random.truncated_normal (bounds traced, erf of them in the program), so the
    # compiler treats the bounds the same way and the numbers agree bit for bit.
    sqrt2 = np.array(np.sqrt(2), dtype)
    lower = jax.lax.convert_element_type(lower, dtype)
    upper = jax.lax.convert_element_type(upper, dtype)
    u = uniform_from_bits(bits, dtype, jax.lax.erf(lower / sqrt2), jax.lax.erf(upper / sqrt2))
    out = sqrt2 * jax.lax.erf_inv(u)
    return jnp.clip(out, jax.lax.nextafter(jax.lax.stop_gradient(lower), np.array(np.inf, dtype)),
                    jax.lax.nextafter(jax.lax.stop_gradient(upper), np.array(-np.inf, dtype)))


def truncated_normal_from_bits(bits, dtype, lower: float, upper: float) -> jax.Array:
    """``jax.random.truncated_normal(key, lower, upper, shape, dtype)``: inverse CDF of the standard
    normal on ``(erf(lower/sqrt 2), erf(upper/sqrt 2))``, clipped into the open interval."""
    return _truncated_from_bits(bits, lower, upper, np.dtype(dtype))


def raw_from_bits(distribution: str, bits, wide) -> jax.Array:
    """``raw_sample`` (real dtypes) from ``random_bits(key, shape, wide)``."""
    if distribution == "normal":
        return normal_from_bits(bits, wide)
    if distribution == "uniform":
        return uniform_from_bits(bits, wide, -1.0, 1.0)
    return truncated_normal_from_bits(bits, wide, -2.0, 2.0)


def raw_sample(distribution: str, key, shape, wide) -> jax.Array:
    """Noise in the wide dtype whose scaled version is the distribution's draw (see ``unit_factor``).

    normal: N(0, 1) (complex: parts N(0, 1/2)); uniform: U(-1, 1) (complex: radius sqrt(u));
    truncated_normal: N(0, 1) cut to (-2, 2) (complex: modulus of a unit complex normal cut at 2).
    Real dtypes: ``raw_from_bits(distribution, random_bits(key, shape, wide), wide)``, the numbers
    of the ``jax.random`` call of the same name.
    """
    if not is_complex(wide):
        return raw_from_bits(distribution, random_bits(key, shape, wide), wide)
    if distribution == "normal":
        return jax.random.normal(key, shape, wide)
    if distribution == "uniform":
        return _polar(key, shape, wide, jnp.sqrt)
    return _polar(key, shape, wide, lambda u: jnp.sqrt(-jnp.log1p(-u * _COMPLEX_TRUNCATED_MASS)))


def unit_factor(distribution: str, complex_: bool) -> float:
    """The factor that gives ``raw_sample`` unit second moment."""
    if distribution == "normal":
        return 1.0
    if distribution == "uniform":
        return math.sqrt(2.0) if complex_ else math.sqrt(3.0)
    return 1.0 / (COMPLEX_TRUNCATED_STD if complex_ else TRUNCATED_STD)


def scaled_from_bits(distribution: str, bits, dtype, scale: float) -> jax.Array:
    """``SAMPLERS[distribution](key, shape, dtype, scale)`` for a real ``dtype``, from
    ``random_bits(key, shape, wide_dtype(dtype))``."""
    wide = wide_dtype(dtype)
    return raw_from_bits(distribution, bits, wide) * jnp.asarray(scale * unit_factor(distribution, False), wide)


def _scaled(distribution: str):
    def sample(key, shape, dtype, scale: float) -> jax.Array:
        wide = wide_dtype(dtype)
        if not is_complex(wide):
            return scaled_from_bits(distribution, random_bits(key, shape, wide), dtype, scale)
        factor = scale * unit_factor(distribution, True)
        return raw_sample(distribution, key, shape, wide) * jnp.asarray(factor, real_dtype(wide))
    sample.__doc__ = f"{distribution} entries with mean 0 and E|x|^2 = scale^2, drawn in the wide dtype."
    return sample


# Std of N(0, 1) truncated to (-2, 2); computed, not copied (JAX writes .87962566103423978).
TRUNCATED_STD = math.sqrt(truncated_moments(-2.0, 2.0)[1])
# sqrt(E|z|^2) of the unit complex normal truncated at |z| = 2: 0.9619618280082136. JAX divides
# by sqrt(1 - 5 e^-4) = 0.9531 instead, leaving its complex weights 1.019x too wide.
COMPLEX_TRUNCATED_STD = math.sqrt(complex_truncated_second_moment(2.0))

SAMPLERS = {name: _scaled(name) for name in ("truncated_normal", "normal", "uniform")}


@dataclasses.dataclass(frozen=True)
class UnitNoise(SharedNoise):
    """The raw noise of ``distribution`` (:func:`raw_sample`), shared by every initializer whose
    draw is ``raw_sample(distribution, key, shape, wide) * factor``: the variance-scaling family,
    ``normal(stddev)``, ``truncated_normal(stddev)`` on (-2, 2) (see
    :meth:`~jaxinit.initializers.BaseInitializer.shared_noise`)."""

    distribution: str

    def __post_init__(self):
        check_choice("distribution", self.distribution, SAMPLERS, "UnitNoise")

    @property
    def kind(self) -> str:  # type: ignore[override]
        return f"raw:{self.distribution}"

    def draw(self, key, shape, dtype):
        return raw_sample(self.distribution, key, shape, wide_dtype(dtype))

    def bits_shape(self, shape, dtype):
        return None if is_complex(np.dtype(dtype)) else tuple(shape)

    def from_bits(self, bits, shape, dtype):
        return raw_from_bits(self.distribution, bits, wide_dtype(dtype))


# -- fixed-scale initializers ----------------------------------------------------------------
@dataclasses.dataclass(frozen=True, repr=False)
class Normal(BaseInitializer):
    r"""Entries :math:`w \sim \mathcal{N}(\mathrm{mean}, \mathrm{stddev}^2)` (JAX ``normal``; Keras ``RandomNormal``).

    Complex dtypes: :math:`E|w - \mathrm{mean}|^2 = \mathrm{stddev}^2`, real and imaginary parts
    independent.

    Example:
      >>> init = jaxinit.normal(0.02)
      >>> w = init(jax.random.key(0), (256, 256))
      >>> round(float(w.std()), 3)
      0.02
    """

    registry_name = "normal"
    stddev: float = 1e-2
    mean_value: float = 0.0
    dtype: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "stddev", check_nonnegative("stddev", self.stddev, "normal"))
        object.__setattr__(self, "mean_value", check_real("mean_value", self.mean_value, "normal"))
        object.__setattr__(self, "dtype", dtype_name(self.dtype))

    def _sample(self, key, shape, dtype):
        wide = wide_dtype(dtype)
        if not is_complex(wide):
            return self._sample_from_bits(random_bits(key, shape, wide), shape, dtype)
        x = jax.random.normal(key, shape, wide) * jnp.asarray(self.stddev, wide)
        return x + jnp.asarray(self.mean_value, wide) if self.mean_value else x

    def _bits_shape(self, shape):
        return shape

    def _sample_from_bits(self, bits, shape, dtype):
        wide = wide_dtype(dtype)
        x = normal_from_bits(bits, wide) * jnp.asarray(self.stddev, wide)
        return x + jnp.asarray(self.mean_value, wide) if self.mean_value else x

    def shared_noise(self, shape, dtype=None):
        """Zero mean: ``(UnitNoise("normal"), stddev)``; otherwise None (the mean is added)."""
        return (UnitNoise("normal"), self.stddev) if self.mean_value == 0.0 else None

    def variance(self, shape):
        return self.stddev**2

    def mean(self, shape):
        return self.mean_value


@dataclasses.dataclass(frozen=True, repr=False)
class Uniform(BaseInitializer):
    r"""Entries :math:`w \sim U[0, \mathrm{scale})`: JAX's ``uniform`` (note: not centred).

    Mean ``scale / 2``, variance ``scale**2 / 12``. For a centred interval use
    :func:`random_uniform`.
    """

    registry_name = "uniform"
    supports_complex = False
    scale: float = 1e-2
    dtype: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "scale", check_nonnegative("scale", self.scale, "uniform"))
        object.__setattr__(self, "dtype", dtype_name(self.dtype))

    def _sample(self, key, shape, dtype):
        return self._sample_from_bits(random_bits(key, shape, wide_dtype(dtype)), shape, dtype)

    def _bits_shape(self, shape):
        return shape

    def _sample_from_bits(self, bits, shape, dtype):
        wide = wide_dtype(dtype)
        return uniform_from_bits(bits, wide, 0.0, 1.0) * jnp.asarray(self.scale, wide)

    def shared_noise(self, shape, dtype=None):
        """``uniform(1.0)``'s draw times ``scale`` (``U[0, 1)`` is no :class:`UnitNoise`, which is centred)."""
        return InitializerNoise(Uniform(scale=1.0)), self.scale

    def variance(self, shape):
        return self.scale**2 / 12.0

    def mean(self, shape):
        return self.scale / 2.0


@dataclasses.dataclass(frozen=True, repr=False)
class RandomUniform(BaseInitializer):
    r"""Entries :math:`w \sim U[\mathrm{minval}, \mathrm{maxval})` (Keras ``RandomUniform``; PyTorch ``uniform_``).

    Mean ``(minval + maxval) / 2``, variance ``(maxval - minval)**2 / 12``.
    """

    registry_name = "random_uniform"
    supports_complex = False
    minval: float = -0.05
    maxval: float = 0.05
    dtype: str | None = None

    def __post_init__(self):
        lo = check_real("minval", self.minval, "random_uniform")
        hi = check_real("maxval", self.maxval, "random_uniform")
        if hi < lo:
            raise ValueError(f"maxval must be >= minval; got minval={lo!r}, maxval={hi!r}.")
        object.__setattr__(self, "minval", lo)
        object.__setattr__(self, "maxval", hi)
        object.__setattr__(self, "dtype", dtype_name(self.dtype))

    def _sample(self, key, shape, dtype):
        return self._sample_from_bits(random_bits(key, shape, wide_dtype(dtype)), shape, dtype)

    def _bits_shape(self, shape):
        return shape

    def _sample_from_bits(self, bits, shape, dtype):
        return uniform_from_bits(bits, wide_dtype(dtype), self.minval, self.maxval)

    def variance(self, shape):
        return (self.maxval - self.minval) ** 2 / 12.0

    def mean(self, shape):
        return (self.maxval + self.minval) / 2.0


BOUNDS = ("stddev", "absolute")


@dataclasses.dataclass(frozen=True, repr=False)
class TruncatedNormal(BaseInitializer):
    r"""A normal of scale ``stddev`` around ``mean_value``, truncated to ``(lower, upper)``.

    With ``bounds="stddev"`` (JAX, Keras, Haiku) the bounds are in units of ``stddev``:
    :math:`w = \mathrm{mean} + \mathrm{stddev}\cdot t`, :math:`t \sim \mathcal{N}(0,1)` truncated
    to ``(lower, upper)``. With ``bounds="absolute"`` (PyTorch ``trunc_normal_``) they are values
    of :math:`w`. Sampling is by inverse CDF (``jax.random.truncated_normal``) in float32 or
    float64, so no probability mass piles up at the bounds (clipping a normal would). As in JAX,
    ``stddev`` is the scale *before* truncation: ``variance()`` returns the truncated variance
    :math:`\mathrm{stddev}^2 (1 + (a\phi(a) - b\phi(b))/Z - \mu_t^2)`.
    """

    registry_name = "truncated_normal"
    supports_complex = False
    stddev: float = 1e-2
    lower: float = -2.0
    upper: float = 2.0
    mean_value: float = 0.0
    bounds: str = "stddev"
    dtype: str | None = None

    def __post_init__(self):
        where = "truncated_normal"
        object.__setattr__(self, "stddev", check_positive("stddev", self.stddev, where))
        check_choice("bounds", self.bounds, BOUNDS, where)
        object.__setattr__(self, "mean_value", check_real("mean_value", self.mean_value, where))
        lo, hi = (float(self.lower), float(self.upper))
        if math.isnan(lo) or math.isnan(hi) or not lo < hi:
            raise ValueError(f"truncated_normal needs lower < upper; got lower={lo!r}, upper={hi!r}.")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        a, b = self.standard_bounds
        if not std_normal_cdf(b) - std_normal_cdf(a) > 0:
            raise ValueError(
                f"truncated_normal bounds ({lo}, {hi}) hold no probability mass in float64; "
                "move them closer to the mean."
            )
        object.__setattr__(self, "dtype", dtype_name(self.dtype))

    @property
    def standard_bounds(self) -> tuple[float, float]:
        """The bounds in units of ``stddev`` around the mean."""
        if self.bounds == "stddev":
            return self.lower, self.upper
        return (self.lower - self.mean_value) / self.stddev, (self.upper - self.mean_value) / self.stddev

    def _sample(self, key, shape, dtype):
        return self._sample_from_bits(random_bits(key, shape, wide_dtype(dtype)), shape, dtype)

    def _bits_shape(self, shape):
        return shape

    def _sample_from_bits(self, bits, shape, dtype):
        wide = wide_dtype(dtype)
        a, b = self.standard_bounds
        x = truncated_normal_from_bits(bits, wide, a, b) * jnp.asarray(self.stddev, wide)
        return x + jnp.asarray(self.mean_value, wide) if self.mean_value else x

    def shared_noise(self, shape, dtype=None):
        """Zero mean and standard bounds (-2, 2): ``(UnitNoise("truncated_normal"), stddev)``;
        otherwise (other bounds, a mean, complex dtypes) None."""
        complex_ = dtype is not None and is_complex(np.dtype(dtype))  # refused at call time
        if complex_ or self.mean_value != 0.0 or self.standard_bounds != (-2.0, 2.0):
            return None
        return UnitNoise("truncated_normal"), self.stddev

    def variance(self, shape):
        return self.stddev**2 * truncated_moments(*self.standard_bounds)[1]

    def mean(self, shape):
        return self.mean_value + self.stddev * truncated_moments(*self.standard_bounds)[0]


def normal(stddev: float = 1e-2, dtype=None, mean_value: float = 0.0) -> Normal:
    """JAX ``normal(stddev)``: i.i.d. :math:`\\mathcal{N}(0, \\mathrm{stddev}^2)` entries."""
    return Normal(stddev=stddev, mean_value=mean_value, dtype=dtype)


def uniform(scale: float = 1e-2, dtype=None) -> Uniform:
    """JAX ``uniform(scale)``: i.i.d. entries on ``[0, scale)``."""
    return Uniform(scale=scale, dtype=dtype)


def random_uniform(minval: float = -0.05, maxval: float = 0.05, dtype=None) -> RandomUniform:
    """Keras ``RandomUniform``: i.i.d. entries on ``[minval, maxval)``."""
    return RandomUniform(minval=minval, maxval=maxval, dtype=dtype)


def truncated_normal(stddev: float = 1e-2, dtype=None, lower: float = -2.0, upper: float = 2.0,
                     mean_value: float = 0.0, bounds: str = "stddev") -> TruncatedNormal:
    """JAX ``truncated_normal(stddev, dtype, lower, upper)``: bounds in units of ``stddev``."""
    return TruncatedNormal(stddev=stddev, lower=lower, upper=upper, mean_value=mean_value,
                           bounds=bounds, dtype=dtype)


def trunc_normal(mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> TruncatedNormal:
    """PyTorch ``trunc_normal_(mean, std, a, b)``: ``N(mean, std**2)`` truncated to the values ``[a, b]``.

    Unlike PyTorch's in-place version, sampling happens in float32 and is cast once, so a
    ``std=0.02, a=-2, b=2`` init in bfloat16 keeps its 0.02 scale.
    """
    return TruncatedNormal(stddev=std, lower=a, upper=b, mean_value=mean, bounds="absolute")


register("normal", normal)
register("uniform", uniform)
register("random_uniform", random_uniform)
register("truncated_normal", truncated_normal)
register("trunc_normal", trunc_normal)
