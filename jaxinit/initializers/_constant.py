"""Deterministic initializers: zeros, ones, constants, saved arrays and prior-logit biases."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxinit.errors import check_in_range, check_positive, check_real
from jaxinit.initializers._base import BaseInitializer, dtype_name, wide_dtype
from jaxinit.initializers._registry import register


@dataclasses.dataclass(frozen=True, repr=False)
class Constant(BaseInitializer):
    """Every entry equals ``value`` (JAX ``constant``). ``relu_bias()`` is ``constant(0.01)``."""

    registry_name = "constant"
    random = False
    always_shown = ("value",)
    value: float = 0.0
    dtype: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "value", check_real("value", self.value, "constant"))
        object.__setattr__(self, "dtype", dtype_name(self.dtype))

    def _sample(self, key, shape, dtype):
        return jnp.full(shape, self.value, wide_dtype(dtype))

    def variance(self, shape):
        return 0.0

    def mean(self, shape):
        return self.value


@dataclasses.dataclass(frozen=True, repr=False)
class Zeros(Constant):
    """All zeros. Like JAX, ``jaxinit.zeros`` is itself an initializer: ``zeros(key, shape)``."""

    registry_name = "zeros"
    always_shown = ()
    value: float = dataclasses.field(default=0.0, init=False)
    dtype: str | None = dataclasses.field(default=None, init=False)

    def __repr__(self) -> str:
        return "zeros"  # the instance itself is the initializer, as in JAX


@dataclasses.dataclass(frozen=True, repr=False)
class Ones(Constant):
    """All ones. Like JAX, ``jaxinit.ones`` is itself an initializer: ``ones(key, shape)``."""

    registry_name = "ones"
    always_shown = ()
    value: float = dataclasses.field(default=1.0, init=False)
    dtype: str | None = dataclasses.field(default=None, init=False)

    def __repr__(self) -> str:
        return "ones"  # the instance itself is the initializer, as in JAX


def constant(value: float, dtype=None) -> Constant:
    """JAX ``constant(value)``: every entry equals ``value``."""
    return Constant(value=value, dtype=dtype)


def relu_bias(value: float = 0.01) -> Constant:
    """A small positive bias, so ReLU units start active (cs231n's suggestion; Karpathy 2016).

    ``constant(0.01)``: with zero-mean weights about half the units of a layer are active at init
    either way; a positive bias moves the boundary so fewer units start dead.
    """
    if check_real("value", value, "relu_bias") <= 0:
        raise ValueError(f"value must be > 0 for relu_bias; got {value!r}.")
    return Constant(value=value)


zeros = Zeros()
ones = Ones()


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class FromArray(BaseInitializer):
    """Returns a given array (pre-trained or saved weights), checking shape and dtype.

    The array is stored as a read-only numpy copy; equality and hashing use its bytes, so the
    value is still usable as a static argument. Requests for another float dtype are cast; a
    request that would drop an imaginary part, or any change with ``strict_dtype=True``, fails.
    """

    registry_name = "from_array"
    random = False
    compile_eagerly = False  # a compiled program would embed the array as a constant
    array: Any = None
    strict_dtype: bool = False
    dtype: str | None = None

    def __post_init__(self):
        if self.array is None:
            raise ValueError("from_array needs an array; got None.")
        a = np.array(self.array, dtype=None if self.dtype is None else jnp.dtype(self.dtype))
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating)):
            raise TypeError(f"from_array needs a floating-point array; got dtype={a.dtype.name}.")
        a.setflags(write=False)
        object.__setattr__(self, "array", a)
        object.__setattr__(self, "dtype", a.dtype.name)

    def resolve_dtype(self, dtype):
        return np.dtype(self.array.dtype) if dtype is None else super().resolve_dtype(dtype)

    def _check_shape(self, shape):
        if tuple(shape) != self.array.shape:
            raise ValueError(
                f"from_array holds an array of shape {self.array.shape}; got shape={tuple(shape)}."
            )

    def _sample(self, key, shape, dtype):
        src = self.array.dtype
        if self.strict_dtype and np.dtype(dtype) != src:
            raise TypeError(f"from_array(strict_dtype=True) holds dtype={src.name}; got dtype={np.dtype(dtype).name}.")
        if np.issubdtype(src, np.complexfloating) and not np.issubdtype(dtype, np.complexfloating):
            raise TypeError(f"from_array holds complex dtype={src.name}; got real dtype={np.dtype(dtype).name}.")
        return jnp.asarray(self.array)

    def __call__(self, key, shape, dtype=None, out_sharding=None):
        # A zero-size request must still match the stored shape.
        self._check_shape(tuple(shape))
        return super().__call__(key, shape, dtype, out_sharding)

    def variance(self, shape):
        return float(np.var(self.array))

    def mean(self, shape):
        return float(np.mean(self.array).real)

    def to_dict(self):
        return {"name": self.registry_name, "array": self.array.tolist(), "dtype": self.dtype,
                **({"strict_dtype": True} if self.strict_dtype else {})}

    def __eq__(self, other):
        return (type(other) is FromArray and self.strict_dtype == other.strict_dtype
                and self.array.dtype == other.array.dtype and self.array.shape == other.array.shape
                and self.array.tobytes() == other.array.tobytes())

    def __hash__(self):
        return hash((self.array.shape, self.array.dtype.str, self.array.tobytes(), self.strict_dtype))

    def __repr__(self):
        """Code for arrays of up to ``REPR_MAX_ENTRIES`` entries: ``from_array([[...]], dtype='float32')``
        evaluates (in ``jaxinit``'s namespace) to an equal initializer, every value exact. Larger
        arrays, and empty ones that nested lists cannot shape (``(0, 3)``), show as
        ``from_array(<float32[300, 300], sha256 1a2b3c4d5e6f>)``: a summary (not code) naming dtype,
        shape and a digest of the bytes, so different arrays read differently; ``to_dict()`` still
        round-trips them."""
        a = self.array
        strict = ", strict_dtype=True" if self.strict_dtype else ""
        if a.size > REPR_MAX_ENTRIES or np.shape(a.tolist()) != a.shape:  # (0, 3) is not a nested list
            digest = hashlib.sha256(a.tobytes()).hexdigest()[:12]
            return f"from_array(<{a.dtype.name}{list(a.shape)}, sha256 {digest}>{strict})"
        wide = a.astype(np.complex128 if np.issubdtype(a.dtype, np.complexfloating) else np.float64)
        return f"from_array({_literal(wide.tolist())}, dtype={a.dtype.name!r}{strict})"


# from_array's repr spells out arrays up to this many entries (a 16x16 kernel), else summarizes.
REPR_MAX_ENTRIES = 256


def _real_literal(x: float) -> str:
    return repr(x) if math.isfinite(x) else f"float({str(x)!r})"  # nan/inf as float('nan')


def _literal(value: Any) -> str:
    """Python source for nested lists of floats/complex numbers, exact (``repr`` of each float)."""
    if isinstance(value, list):
        inner = ", ".join(_literal(v) for v in value)
        return f"[{inner}]"
    if isinstance(value, complex):
        return f"complex({_real_literal(value.real)}, {_real_literal(value.imag)})"
    return _real_literal(float(value))


def from_array(array: Any, strict_dtype: bool = False, dtype=None) -> FromArray:
    """Initialize with a fixed array; shape must match the request exactly.

    ``dtype`` (optional) converts the stored array once, e.g. when reading it back from a config.
    """
    return FromArray(array=array, strict_dtype=strict_dtype, dtype=dtype)


@dataclasses.dataclass(frozen=True, repr=False)
class PriorLogit(BaseInitializer):
    r"""Output-layer bias that makes the initial prediction equal a prior.

    Scalar ``p`` (sigmoid output): every entry is :math:`\log(p / (1 - p))`, so
    :math:`\sigma(b) = p` (the focal-loss trick of Lin et al., "Focal Loss for Dense Object
    Detection", 2017, arXiv:1708.02002). A sequence ``p`` of class frequencies (softmax output):
    entry ``k`` is :math:`\log p_k` after normalizing ``p`` to sum 1, so the initial softmax
    equals the class prior; the shape must then be ``(len(p),)``.

    Example:
      >>> b = jaxinit.prior_logit(0.01)(None, (3,))
      >>> [round(float(v), 4) for v in b]
      [-4.5951, -4.5951, -4.5951]
    """

    registry_name = "prior_logit"
    random = False
    p: float | tuple[float, ...] = 0.5

    def __post_init__(self):
        if isinstance(self.p, list | tuple | np.ndarray):
            probs = tuple(check_positive("p", float(v), where="prior_logit class frequency")
                          for v in np.asarray(self.p, dtype=float).ravel())
            if not probs:
                raise ValueError("p must hold at least one class probability; got an empty sequence.")
            object.__setattr__(self, "p", probs)
        else:
            object.__setattr__(self, "p", check_in_range("p", self.p, 0.0, 1.0, closed_low=False,
                                                         where="prior_logit"))
            if self.p == 1.0:
                raise ValueError("p must be in (0, 1); got 1.0 (prior_logit).")

    @property
    def logits(self) -> float | tuple[float, ...]:
        if isinstance(self.p, tuple):
            total = math.fsum(self.p)
            return tuple(math.log(v / total) for v in self.p)
        return math.log(self.p / (1.0 - self.p))

    def _check_shape(self, shape):
        if isinstance(self.p, tuple) and shape != (len(self.p),):
            raise ValueError(
                f"prior_logit with {len(self.p)} class priors fills shape ({len(self.p)},); got shape={shape}."
            )

    def _sample(self, key, shape, dtype):
        return jnp.broadcast_to(jnp.asarray(self.logits, wide_dtype(dtype)), shape)

    def variance(self, shape):
        return float(np.var(self.logits)) if isinstance(self.p, tuple) else 0.0

    def mean(self, shape):
        return float(np.mean(self.logits))


def prior_logit(p: float | tuple[float, ...] = 0.5) -> PriorLogit:
    """Bias whose sigmoid (scalar ``p``) or softmax (class frequencies ``p``) equals the prior."""
    return PriorLogit(p=p)


register("zeros", Zeros)
register("ones", Ones)
register("constant", constant)
register("relu_bias", relu_bias)
register("from_array", from_array)
register("prior_logit", prior_logit)
