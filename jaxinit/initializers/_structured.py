"""Structured initializers: identity, Dirac (identity-preserving convolutions), sparse, ZerO.

Kernels use JAX/Flax's layout: a Dense kernel is ``(in, out)`` and a convolution kernel is
``(spatial..., in, out)``. PyTorch stores ``(out, in)`` and ``(out, in, spatial...)``; where a
PyTorch initializer's meaning depends on the layout, the docstring says how it was carried over.
Deterministic entries (``identity``, ``dirac``, ``zero_init``) build their arrays from ``iota``
operations, never from large host constants, and report the mean and variance *across entries*
(as ``from_array`` does), so ``mean**2 + variance`` is the mean square that signal propagation
needs.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit.errors import check_in_range, check_int, check_nonnegative, check_positive
from jaxinit.initializers._base import BaseInitializer, wide_dtype
from jaxinit.initializers._registry import register


def _spread(total: float, total_sq: float, size: int) -> tuple[float, float]:
    """Mean and variance across ``size`` entries with the given sum and sum of squares."""
    mean = total / size
    return mean, max(total_sq / size - mean * mean, 0.0)


def _centre(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The centre tap of each spatial axis: ``(k - 1) // 2`` (the stride-1 ``SAME`` alignment)."""
    return tuple((k - 1) // 2 for k in shape[:-2])


@dataclasses.dataclass(frozen=True, repr=False)
class _SpreadMoments(BaseInitializer):
    """Deterministic entries: mean and variance are the exact spread across entries (``_moments``)."""

    def _moments(self, shape) -> tuple[float, float]:
        raise NotImplementedError

    def mean(self, shape):
        return self._moments(shape)[0]

    def variance(self, shape):
        return self._moments(shape)[1]


@dataclasses.dataclass(frozen=True, repr=False)
class Identity(_SpreadMoments):
    r"""``scale`` times the identity matrix, rectangular allowed (Keras ``Identity``; PyTorch ``eye_``).

    :math:`W_{ij} = \mathrm{scale}\,[i = j]` for a 2-D ``(in, out)`` shape: a Dense layer with it
    copies input ``i`` to output ``i`` for ``i < min(in, out)``. Convolution kernels take
    :func:`dirac` instead.

    Example:
      >>> jaxinit.identity(2.0)(None, (2, 3))
      Array([[2., 0., 0.],
             [0., 2., 0.]], dtype=float32)
    """

    registry_name = "identity"
    random = False
    scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "scale", check_positive("scale", self.scale, "identity"))

    def _check_shape(self, shape):
        if len(shape) != 2:
            raise ValueError(
                f"{self!r} fills 2-D (in, out) matrices; got shape={shape}. "
                "For convolution kernels use dirac(), the identity-preserving kernel."
            )

    def _sample(self, key, shape, dtype):
        wide = wide_dtype(dtype)
        return jnp.eye(*shape, dtype=wide) * jnp.asarray(self.scale, wide)

    def _moments(self, shape):
        shape = tuple(shape)
        self._check_shape(shape)
        ones = min(shape)
        return _spread(self.scale * ones, self.scale**2 * ones, math.prod(shape))



@dataclasses.dataclass(frozen=True, repr=False)
class Dirac(_SpreadMoments):
    r"""Identity-preserving convolution kernel: a convolution with it copies its input channels.

    PyTorch's ``dirac_(tensor, groups)`` carried over to JAX/Flax's ``(spatial..., in, out)``
    layout (PyTorch's is ``(out, in, spatial...)``). For ``groups`` groups the kernel holds
    ``in = in_features // groups`` input channels per group (as ``flax.linen.Conv`` with
    ``feature_group_count=groups`` creates it) and ``out`` outputs, ``out_g = out // groups`` per
    group; with :math:`m = \min(\mathrm{out}_g, \mathrm{in})` it is ``scale`` at

    .. math:: W[c, d, g\,\mathrm{out}_g + d] = \mathrm{scale}, \quad d < m,\ g < \mathrm{groups},

    :math:`c` the centre tap ``(k - 1) // 2`` of every spatial axis, and zero elsewhere: PyTorch's
    rule, ``min(out per group, in per group)`` channels per group. A stride-1 convolution with
    ``padding="SAME"`` then maps input channel :math:`g\,\mathrm{in} + d` to output channel
    :math:`g\,\mathrm{out}_g + d` for :math:`d < m` (the identity when ``out == in * groups``):
    a widening kernel leaves the extra outputs zero, a narrowing one (``out_g < in``) drops the
    extra inputs, as PyTorch's does. For even ``k`` the centre differs from PyTorch's ``k // 2``:
    ``(k - 1) // 2`` is the tap that JAX's ``SAME`` padding (more padding after than before)
    aligns with the output. ``out`` must be divisible by ``groups`` (as in PyTorch). 2-D shapes
    (no spatial axes) are allowed.

    Example:
      >>> import flax.linen as nn
      >>> x = jax.random.normal(jax.random.key(0), (1, 5, 5, 4))
      >>> conv = nn.Conv(4, (3, 3), use_bias=False, kernel_init=jaxinit.dirac())
      >>> y = conv.apply(conv.init(jax.random.key(1), x), x)
      >>> bool(jnp.array_equal(y, x))
      True

    References:
      PyTorch ``torch.nn.init.dirac_``. Zagoruyko & Komodakis, "DiracNets: Training Very Deep
      Neural Networks Without Skip-Connections", 2017, arXiv:1706.00388.
    """

    registry_name = "dirac"
    random = False
    groups: int = 1
    scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "groups", check_int("groups", self.groups, minimum=1, where="dirac"))
        object.__setattr__(self, "scale", check_positive("scale", self.scale, "dirac"))

    def _check_shape(self, shape):
        if len(shape) < 2:
            raise ValueError(
                f"{self!r} needs a (spatial..., in, out) kernel with at least 2 dims; got shape={shape}."
            )
        n_in, n_out = shape[-2:]
        if n_out % self.groups:
            raise ValueError(
                f"{self!r} needs the output channels shape[-1]={n_out} to be divisible by "
                f"groups={self.groups}; got shape={shape}."
            )

    def _sample(self, key, shape, dtype):
        wide = wide_dtype(dtype)
        n_in, n_out = shape[-2:]
        # eye(in, out_g) has ones at (d, d) for d < min(in, out_g): PyTorch's min_dim channels.
        block = jnp.eye(n_in, n_out // self.groups, dtype=wide) * jnp.asarray(self.scale, wide)
        matrix = jnp.tile(block, (1, self.groups))
        return jnp.zeros(shape, wide).at[_centre(shape)].set(matrix)

    def _moments(self, shape):
        shape = tuple(shape)
        self._check_shape(shape)
        ones = self.groups * min(shape[-2], shape[-1] // self.groups)
        return _spread(self.scale * ones, self.scale**2 * ones, math.prod(shape))



@dataclasses.dataclass(frozen=True, repr=False)
class Sparse(BaseInitializer):
    r"""Each output unit gets exactly ``ceil(sparsity * in)`` zero incoming weights; the rest are N(0, stddev^2).

    For a Dense kernel ``(in, out)``, every column (one output unit) has exactly
    :math:`z = \lceil \mathrm{sparsity} \cdot \mathrm{in} \rceil` zeros at uniformly random rows,
    independently across columns; the other entries are i.i.d. :math:`\mathcal{N}(0,
    \mathrm{stddev}^2)`. Hence :math:`\mathrm{Var}[W_{ij}] = \mathrm{stddev}^2 (1 - z/\mathrm{in})`
    exactly, and every pre-activation sums exactly ``in - z`` random terms.

    Layout: PyTorch's ``sparse_`` zeros ``ceil(sparsity * rows)`` entries per column of its
    ``(out, in)`` weight, i.e. per *input* unit (fixed fan-out). Here the count is per *output*
    unit (fixed fan-in), which is Martens' (2010) "sparse initialization" as described: a fixed
    number of non-zero incoming weights per unit. For PyTorch's pattern, transpose the result of
    ``sparse`` on the transposed shape. Vectorized: one independent random permutation per column
    (``jax.random.permutation(..., independent=True)``), jit- and vmap-able over the key.
    ``z`` is ``ceil`` of the product rounded to 9 decimals, so ``0.7 * 10`` gives 7 zeros, not 8.

    Example:
      >>> w = jaxinit.sparse(0.75, stddev=1.0)(jax.random.key(0), (8, 5))
      >>> [int(c) for c in (w == 0).sum(axis=0)]
      [6, 6, 6, 6, 6]

    References:
      Martens, "Deep learning via Hessian-free optimization", ICML 2010. PyTorch
      ``torch.nn.init.sparse_``.
    """

    registry_name = "sparse"
    iid = False  # exactly z zeros per column
    sparsity: float
    stddev: float = 0.01

    def __post_init__(self):
        object.__setattr__(self, "sparsity", check_in_range("sparsity", self.sparsity, 0.0, 1.0,
                                                            where="sparse"))
        object.__setattr__(self, "stddev", check_nonnegative("stddev", self.stddev, "sparse"))

    def _check_shape(self, shape):
        if len(shape) != 2:
            raise ValueError(f"{self!r} fills 2-D (in, out) matrices; got shape={shape}.")

    def zeros_per_column(self, n_in: int) -> int:
        """``ceil(sparsity * n_in)``, robust to the rounding of the product."""
        return math.ceil(round(self.sparsity * n_in, 9))

    def _sample(self, key, shape, dtype):
        wide = wide_dtype(dtype)
        n_in, _ = shape
        key_mask, key_values = jax.random.split(key)
        rows = jnp.broadcast_to(jnp.arange(n_in, dtype=jnp.int32)[:, None], shape)
        # Each column is an independent uniform permutation of 0..in-1; the first z ranks are zeroed.
        ranks = jax.random.permutation(key_mask, rows, axis=0, independent=True)
        values = jax.random.normal(key_values, shape, wide) * jnp.asarray(self.stddev, wide)
        return jnp.where(ranks >= self.zeros_per_column(n_in), values, jnp.zeros((), wide))

    def variance(self, shape):
        shape = tuple(shape)
        self._check_shape(shape)
        return self.stddev**2 * (1.0 - self.zeros_per_column(shape[0]) / shape[0])


def _hadamard_block(n_rows: int, n_cols: int, dtype) -> jax.Array:
    """Rows ``< n_rows`` and columns ``< n_cols`` of Sylvester's Hadamard matrix: ``(-1)^popcount(i & j)``."""
    i = jnp.arange(n_rows, dtype=jnp.uint32)[:, None]
    j = jnp.arange(n_cols, dtype=jnp.uint32)[None, :]
    parity = jax.lax.population_count(i & j) & jnp.uint32(1)
    one = jnp.ones((), dtype)
    return jnp.where(parity == 0, one, -one)


def _hadamard_block_sum(n_rows: int, n_cols: int) -> int:
    """Sum of the entries of ``_hadamard_block(n_rows, n_cols)``, on the host."""
    i = np.arange(n_rows, dtype=np.uint64)[:, None]
    odd = 0
    for start in range(0, n_cols, 4096):  # bounded host memory for wide layers
        j = np.arange(start, min(n_cols, start + 4096), dtype=np.uint64)[None, :]
        odd += int((np.bitwise_count(i & j) & 1).sum())
    return n_rows * n_cols - 2 * odd


@dataclasses.dataclass(frozen=True, repr=False)
class ZerOInit(_SpreadMoments):
    r"""ZerO: deterministic weights of zeros, ones and a normalized Hadamard block (Zhao et al.).

    For an ``(in, out)`` matrix (JAX layout):

    * ``out <= in``: the partial identity, :math:`W_{ij} = [i = j]` (output ``j`` copies input ``j``).
    * ``out > in``: :math:`W = H_m[{:}in, {:}out] / \sqrt{2^m}` with :math:`m = \lceil\log_2 out\rceil`
      and :math:`H_m` Sylvester's :math:`2^m \times 2^m` Hadamard matrix, so the widened
      representation is spread over all outputs rather than zero-padded.

    This is Algorithm 1 of the paper as the authors' reference code (``example_mnist.ipynb``)
    implements it, transposed to JAX's layout (Sylvester's matrix is symmetric); that code
    normalizes :math:`H_m` by :math:`2^{-m/2}`, which makes it orthogonal. Convolution kernels
    ``(spatial..., in, out)`` get the same matrix at the centre tap ``(k - 1) // 2`` and zeros
    elsewhere. Biases should be zero.

    Example:
      >>> jaxinit.zero_init()(None, (2, 4))
      Array([[ 0.5,  0.5,  0.5,  0.5],
             [ 0.5, -0.5,  0.5, -0.5]], dtype=float32)

    References:
      Zhao, Schaefer & Anandkumar, "ZerO Initialization: Initializing Neural Networks with only
      Zeros and Ones", 2021, arXiv:2110.12661 (TMLR 2022).
    """

    registry_name = "zero_init"
    random = False

    def _check_shape(self, shape):
        if len(shape) < 2:
            raise ValueError(
                f"{self!r} needs an (in, out) matrix or a (spatial..., in, out) kernel; got shape={shape}."
            )

    @staticmethod
    def _log2_out(n_out: int) -> int:
        return (n_out - 1).bit_length()  # ceil(log2(n_out)) for n_out >= 1

    def _sample(self, key, shape, dtype):
        wide = wide_dtype(dtype)
        n_in, n_out = shape[-2:]
        if n_out <= n_in:
            matrix = jnp.eye(n_in, n_out, dtype=wide)
        else:
            norm = 2.0 ** (-self._log2_out(n_out) / 2)
            matrix = _hadamard_block(n_in, n_out, wide) * jnp.asarray(norm, wide)
        return jnp.zeros(shape, wide).at[_centre(shape)].set(matrix)

    def _moments(self, shape):
        shape = tuple(shape)
        self._check_shape(shape)
        n_in, n_out = shape[-2:]
        if n_out <= n_in:
            total = total_sq = float(n_out)
        else:
            p = 2 ** self._log2_out(n_out)
            total = _hadamard_block_sum(n_in, n_out) / math.sqrt(p)
            total_sq = n_in * n_out / p
        return _spread(total, total_sq, math.prod(shape))



def identity(scale: float = 1.0) -> Identity:
    """Keras ``Identity(gain=scale)``: ``scale * eye(in, out)`` for 2-D shapes."""
    return Identity(scale=scale)


def dirac(groups: int = 1, scale: float = 1.0) -> Dirac:
    """PyTorch ``dirac_(groups)`` in JAX's ``(spatial..., in, out)`` layout: identity-preserving convs."""
    return Dirac(groups=groups, scale=scale)


def sparse(sparsity: float, stddev: float = 0.01) -> Sparse:
    """PyTorch ``sparse_(sparsity, std)``, with exactly ``ceil(sparsity * in)`` zeros per output unit."""
    return Sparse(sparsity=sparsity, stddev=stddev)


def zero_init() -> ZerOInit:
    """ZerO (Zhao et al. 2021): identity, partial identity or normalized Hadamard block; deterministic."""
    return ZerOInit()


register("identity", identity)
register("dirac", dirac)
register("sparse", sparse)
register("zero_init", zero_init)
