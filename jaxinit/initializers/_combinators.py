"""Initializers built from initializers: ``scaled``, ``depth_scaled``, ``low_rank``.

A combinator's ``base`` may be an initializer, a registry name or a ``{"name": ...}`` dict; it is
stored as an initializer, and ``to_dict()`` nests it as a dict, so ``get(init.to_dict()) == init``.
The base is called with the *wide* dtype (float32, or float64 for float64 targets) and the
combinator casts once, so a scaled or factored bfloat16 weight is rounded a single time.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxinit.errors import check_int, check_nonnegative, check_positive
from jaxinit.initializers._base import BaseInitializer, wide_dtype
from jaxinit.initializers._registry import as_initializer, register


class _Wrapper(BaseInitializer):
    """Shared behaviour of combinators: dtype, complex support and randomness come from ``base``."""

    base: BaseInitializer

    @property
    def random(self) -> bool:  # type: ignore[override]
        return self.base.random

    @property
    def supports_complex(self) -> bool:  # type: ignore[override]
        return self.base.supports_complex

    @property
    def iid(self) -> bool:  # type: ignore[override]
        return self.base.iid

    def resolve_dtype(self, dtype):
        # No dtype of its own: the base's default dtype (or saved array's dtype) applies.
        return self.base.resolve_dtype(None) if dtype is None else super().resolve_dtype(dtype)

    def _base_wide(self, key, shape, dtype) -> jax.Array:
        """The base's sample for ``shape``, kept in the wide dtype of ``dtype``."""
        return self.base(key, shape, wide_dtype(dtype))


class _Multiple(_Wrapper):
    """``factor * base`` for any wrapper that defines ``factor`` (a field or a property)."""

    def _check_shape(self, shape):
        self.base._check_shape(shape)

    def _sample(self, key, shape, dtype):
        x = self._base_wide(key, shape, dtype)
        return x * jnp.asarray(self.factor, x.dtype)

    def variance(self, shape):
        return self.factor**2 * self.base.variance(shape)

    def mean(self, shape):
        return self.factor * self.base.mean(shape)


@dataclasses.dataclass(frozen=True, repr=False)
class Scaled(_Multiple):
    r"""``factor * base``: :math:`\mathrm{Var}[W] = \mathrm{factor}^2\,\mathrm{Var}[\mathrm{base}]`.

    Example:
      >>> init = jaxinit.scaled("he_normal", 0.5)
      >>> init.variance((256, 128)) == 0.25 * jaxinit.he_normal().variance((256, 128))
      True
      >>> jaxinit.get(init.to_dict()) == init
      True
    """

    registry_name = "scaled"
    base: BaseInitializer
    factor: float

    def __post_init__(self):
        object.__setattr__(self, "base", as_initializer("base", self.base))
        object.__setattr__(self, "factor", check_positive("factor", self.factor, "scaled"))



@dataclasses.dataclass(frozen=True, repr=False)
class DepthScaled(_Multiple):
    r"""``base`` times :math:`\mathrm{depth}^{-\mathrm{exponent}}`, for layers inside a residual stack.

    With ``exponent=0.5`` each of ``depth`` residual branches gets variance
    :math:`\mathrm{Var}[\mathrm{base}] / \mathrm{depth}`, so the sum of ``depth`` independent
    branch outputs keeps the variance of one: the :math:`1/\sqrt{L}` rule. Fixup scales the
    weight layers of each branch by :math:`L^{-1/(2m-2)}` for ``m`` layers per branch
    (``exponent = 1 / (2m - 2)``: 0.5 for two layers); T-Fixup uses :math:`N^{-1/4}` times a
    constant (``exponent=0.25``, wrapped in :func:`scaled`).

    Example:
      >>> init = jaxinit.depth_scaled("lecun_normal", depth=16)
      >>> init.factor
      0.25

    References:
      Zhang, Dauphin & Ma, "Fixup Initialization: Residual Learning Without Normalization",
      ICLR 2019, arXiv:1901.09321. Huang, Perez, Ba & Volkovs, "Improving Transformer
      Optimization Through Better Initialization" (T-Fixup), ICML 2020.
    """

    registry_name = "depth_scaled"
    base: BaseInitializer
    depth: int
    exponent: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "base", as_initializer("base", self.base))
        object.__setattr__(self, "depth", check_int("depth", self.depth, minimum=1, where="depth_scaled"))
        object.__setattr__(self, "exponent", check_nonnegative("exponent", self.exponent, "depth_scaled"))

    @property
    def factor(self) -> float:
        """``depth ** -exponent``."""
        return float(self.depth) ** -self.exponent



@dataclasses.dataclass(frozen=True, repr=False)
class LowRank(_Wrapper):
    r"""A rank-``rank`` product :math:`W = AB` whose entries have the variance ``base`` targets.

    The weight is viewed as the matrix ``(n, out)`` with ``n = prod(shape[:-1])`` (for a
    convolution kernel ``(spatial..., in, out)`` that is the im2col view, whose rows are JAX's
    ``fan_in = receptive field * in``); :math:`A` is ``(n, rank)`` and :math:`B` is
    ``(rank, out)``, each drawn by ``base`` for its own shape (fresh keys from
    ``jax.random.split``) and rescaled to entry variance :math:`s^2`. With :math:`v` =
    ``base.variance(shape)`` and independent zero-mean factors with uncorrelated entries,

    .. math:: \mathrm{Var}[W_{ij}] = \sum_{k<r} E[A_{ik}^2]\,E[B_{kj}^2] = r s^4 = v
              \quad\Rightarrow\quad s^2 = \sqrt{v / r},

    and distinct entries of :math:`W` are uncorrelated, so a layer's forward second moment is
    the base's. The entries are not Gaussian (a sum of ``rank`` products), and ``rank >= min(n,
    out)`` gives a full-rank product. The base must have zero mean and nonzero variance.

    Example:
      >>> init = jaxinit.low_rank(4, "orthogonal")
      >>> w = init(jax.random.key(0), (64, 32))
      >>> int(jnp.linalg.matrix_rank(w)), init.variance((64, 32))
      (4, 0.015625)
    """

    registry_name = "low_rank"
    iid = False  # entries of A @ B share the rows of A and the columns of B
    rank: int
    base: BaseInitializer

    def __post_init__(self):
        object.__setattr__(self, "rank", check_int("rank", self.rank, minimum=1, where="low_rank"))
        object.__setattr__(self, "base", as_initializer("base", self.base))

    def _factor_shapes(self, shape) -> tuple[tuple[int, int], tuple[int, int]]:
        n = math.prod(shape[:-1])
        return (n, self.rank), (self.rank, shape[-1])

    def _check_shape(self, shape):
        if len(shape) < 2:
            raise ValueError(f"{self!r} needs a shape with at least 2 dims; got shape={shape}.")
        self.base._check_shape(shape)
        for s in self._factor_shapes(shape):
            self.base._check_shape(s)
        if math.prod(shape) == 0:
            return  # no moments of an empty weight; its structure is checked above
        for part, s in zip(("W", "A", "B"), (shape, *self._factor_shapes(shape)), strict=True):
            mean, var = self.base.mean(s), self.base.variance(s)
            if mean != 0 or not var > 0:
                raise ValueError(
                    f"{self!r} needs a base with zero mean and nonzero variance; base gives mean={mean!r}, "
                    f"variance={var!r} for the factor {part} of shape {s} (weight shape={shape})."
                )

    def _sample(self, key, shape, dtype):
        a_shape, b_shape = self._factor_shapes(shape)
        key_a, key_b = jax.random.split(key)
        s2 = math.sqrt(self.base.variance(shape) / self.rank)
        a = self._base_wide(key_a, a_shape, dtype)
        b = self._base_wide(key_b, b_shape, dtype)
        a = a * jnp.asarray(math.sqrt(s2 / self.base.variance(a_shape)), a.dtype)
        b = b * jnp.asarray(math.sqrt(s2 / self.base.variance(b_shape)), b.dtype)
        w = jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)
        return jnp.reshape(w, shape)

    def variance(self, shape):
        return self.base.variance(shape)

    def mean(self, shape):
        return 0.0


def scaled(base: Any, factor: float) -> Scaled:
    """``factor * base`` for any initializer, registry name or dict spec ``base``; Var scales by ``factor**2``."""
    return Scaled(base=base, factor=factor)


def depth_scaled(base: Any, depth: int, exponent: float = 0.5) -> DepthScaled:
    """``base * depth ** -exponent`` (1/sqrt(depth) by default): residual-branch scaling (Fixup)."""
    return DepthScaled(base=base, depth=depth, exponent=exponent)


def low_rank(rank: int, base: Any) -> LowRank:
    """``A @ B`` with inner dimension ``rank`` and the entry variance of ``base`` for the full shape."""
    return LowRank(rank=rank, base=base)


register("scaled", scaled)
register("depth_scaled", depth_scaled)
register("low_rank", low_rank)
