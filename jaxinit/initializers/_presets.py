"""Other libraries' defaults and names: PyTorch, Haiku, Equinox and Keras, in JAX layouts.

One name means different things across libraries: Keras' and JAX's ``he_normal`` is a
truncated normal rescaled to the target variance, PyTorch's ``kaiming_normal_`` is untruncated;
truncation bounds are in units of the stddev in JAX/Keras/Haiku and absolute in PyTorch. JAX's
names keep JAX's meaning everywhere in jaxinit. This module makes the other meanings reachable:

* **presets**, the default weight and bias initialization of common layers, as catalog values
  for JAX/Flax kernels (``(in, out)``, ``(*window, in, out)``; pass ``layout="out_in"`` for
  PyTorch/Equinox-layout arrays): ``torch_linear_kernel`` (= ``torch_conv_kernel``),
  ``torch_conv_transpose_kernel``, ``haiku_linear_kernel``, ``equinox_linear_weight`` and the
  bias ``fan_in_uniform(fan_in)`` with its per-library aliases;
* **registry names** with the other library's arguments and meaning: PyTorch's
  ``kaiming_normal_``, ``xavier_uniform_``, ``trunc_normal_``, ... and Keras' ``HeNormal``,
  ``TruncatedNormal``, ``VarianceScaling``, ... (``jaxinit.get("kaiming_normal_")``).

PyTorch's ``sparse_`` has no registry name: it fixes the zeros per *input* unit, jaxinit's
``sparse`` per *output* unit (see :func:`jaxinit.sparse`).
"""

from __future__ import annotations

import dataclasses
import math

from jaxinit.errors import check_choice, check_int
from jaxinit.initializers._base import BaseInitializer, dtype_name, wide_dtype
from jaxinit.initializers._constant import Ones, Zeros, constant
from jaxinit.initializers._orthogonal import orthogonal
from jaxinit.initializers._random import (
    TRUNCATED_STD,
    normal,
    random_bits,
    random_uniform,
    trunc_normal,
    truncated_normal,
    uniform_from_bits,
)
from jaxinit.initializers._registry import register
from jaxinit.initializers._structured import dirac, identity
from jaxinit.initializers._variance import (
    VarianceScaling,
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    lecun_normal,
    lecun_uniform,
)

# PyTorch's layers call kaiming_uniform_(w, a=sqrt(5)): gain^2 = 2 / (1 + a^2) = 1/3, and the
# bound gain * sqrt(3 / fan_in) is 1 / sqrt(fan_in).
_TORCH_LAYER_SCALE = 1.0 / 3.0


@dataclasses.dataclass(frozen=True, repr=False)
class FanInUniform(BaseInitializer):
    r"""Entries :math:`U(-1/\sqrt{\mathrm{fan\_in}},\ 1/\sqrt{\mathrm{fan\_in}})` for a given ``fan_in``.

    The bias default of PyTorch's ``Linear``/``Conv``/``ConvTranspose`` and Equinox's ``Linear``:
    the bound comes from the *weight's* fan-in, which a bias shape does not carry, so it is a
    field. Variance ``1 / (3 fan_in)``, whatever the shape (1-D biases included).

    Which ``fan_in`` (kernel shapes in JAX/Flax layout):

    * ``Linear``/``Dense`` ``(in, out)``: ``in``;
    * ``Conv`` ``(*window, in / groups, out)``: ``compute_fans(kernel_shape)[0]``
      (``in / groups * prod(window)``);
    * ``ConvTranspose`` ``(*window, in, out)``: PyTorch reads its fan-in from dimension 1 of its
      ``(in, out / groups, *window)`` weight, i.e. ``out / groups * prod(window)``:
      ``compute_fans(kernel_shape)[1]``.

    Example:
      >>> from jaxinit import torch_linear_bias
      >>> b = torch_linear_bias(fan_in=256)(jax.random.key(0), (64,))
      >>> b.shape, bool(abs(b).max() <= 1 / 16)
      ((64,), True)
    """

    registry_name = "fan_in_uniform"
    supports_complex = False
    fan_in: int
    dtype: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "fan_in", check_int("fan_in", self.fan_in, minimum=1, where="fan_in_uniform"))
        object.__setattr__(self, "dtype", dtype_name(self.dtype))

    @property
    def bound(self) -> float:
        return 1.0 / math.sqrt(self.fan_in)

    def _sample(self, key, shape, dtype):
        # jax.random.uniform's numbers through the fused bits (JAX's CPU Threefry took ~2 s to compile
        # for a 4-D shape); shareable with the other draws of a layer's bits.
        return self._sample_from_bits(random_bits(key, shape, wide_dtype(dtype)), shape, dtype)

    def _bits_shape(self, shape):
        return shape

    def _sample_from_bits(self, bits, shape, dtype):
        return uniform_from_bits(bits, wide_dtype(dtype), -self.bound, self.bound)

    def variance(self, shape):
        return 1.0 / (3.0 * self.fan_in)


def fan_in_uniform(fan_in: int, dtype=None) -> FanInUniform:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's and Equinox's default bias (see :class:`FanInUniform`)."""
    return FanInUniform(fan_in=fan_in, dtype=dtype)


# The same distribution under each library's name.
torch_linear_bias = torch_conv_bias = torch_conv_transpose_bias = equinox_linear_bias = fan_in_uniform


def torch_linear_kernel(*, layout: str = "in_out") -> VarianceScaling:
    r"""PyTorch's default ``Linear``/``Conv`` weight: :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`.

    PyTorch calls ``kaiming_uniform_(weight, a=sqrt(5))``: :math:`g^2 = 2/(1 + a^2) = 1/3` and the
    bound :math:`g\sqrt{3/\mathrm{fan\_in}} = 1/\sqrt{\mathrm{fan\_in}}`, so
    :math:`\mathrm{std}\cdot\sqrt{\mathrm{fan\_in}} = 1/\sqrt{3} = 0.577` (half the variance of
    LeCun). It is ``variance_scaling(1/3, "fan_in", "uniform")``. Flax ``Conv`` kernels store
    ``in / groups`` channels, so the fan-in is PyTorch's for grouped convolutions too.

    Args:
      layout: where the features live; ``"in_out"`` for Flax kernels, ``"out_in"`` for a PyTorch
        ``(out, in, *window)`` weight.

    Example:
      >>> from jaxinit import torch_linear_kernel
      >>> round(torch_linear_kernel().variance((256, 64)) * 256 * 3, 12)
      1.0
    """
    return VarianceScaling(_TORCH_LAYER_SCALE, "fan_in", "uniform", layout=layout)


torch_conv_kernel = torch_linear_kernel


def torch_conv_transpose_kernel(*, layout: str = "in_out") -> VarianceScaling:
    r"""PyTorch's default ``ConvTranspose`` weight, for a Flax ``ConvTranspose`` kernel ``(*window, in, out)``.

    PyTorch applies the ``Linear`` rule, :math:`U(\pm 1/\sqrt{n})`, with :math:`n` read from
    dimension 1 of its ``(in, out / groups, *window)`` weight: the *output* channels times the
    window. In a JAX kernel that is ``fan_out``: ``variance_scaling(1/3, "fan_out", "uniform")``.
    For a PyTorch-layout weight pass ``layout="IOHW"`` (or ``"IOW"``/``"IODHW"``).
    """
    return VarianceScaling(_TORCH_LAYER_SCALE, "fan_out", "uniform", layout=layout)


def haiku_linear_kernel(*, layout: str = "in_out") -> VarianceScaling:
    r"""Haiku's default ``Linear``/``Conv`` weight: ``TruncatedNormal(stddev=1/sqrt(fan_in))``.

    Haiku truncates at 2 stddev and does *not* rescale, so the standard deviation is
    :math:`0.8796/\sqrt{\mathrm{fan\_in}}`: ``variance_scaling(0.8796**2, "fan_in",
    "truncated_normal")`` (the 0.8796 is the std of a unit normal truncated to (-2, 2)). Haiku's
    conv fan-in is the product of all kernel axes but the last, the Flax ``fan_in`` too.
    """
    return VarianceScaling(TRUNCATED_STD**2, "fan_in", "truncated_normal", layout=layout)


def equinox_linear_weight(*, layout: str = "in_out") -> VarianceScaling:
    r"""Equinox's default ``Linear``/``Conv`` weight: :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})`.

    The same law as :func:`torch_linear_kernel`. Equinox stores ``(out, in)`` weights: pass
    ``layout="out_in"`` to fill one directly (e.g. with :func:`jaxinit.reinit`). The bias is
    ``equinox_linear_bias(in_features)``.
    """
    return VarianceScaling(_TORCH_LAYER_SCALE, "fan_in", "uniform", layout=layout)


# -- PyTorch names (torch.nn.init), with PyTorch's arguments and meaning ---------------------------
# The variance-scaling names take the fan options of every other variance-scaling entry, keyword
# only: ``layout="out_in"`` (or ``"OIHW"``, ...) reads a PyTorch-layout ``(out, in, *window)``
# weight with PyTorch's fans; the JAX default ``"in_out"`` reads a Flax kernel.
def _kaiming_normal_(a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", *,
                     in_axis=-2, out_axis=-1, batch_axis=(), dtype=None, layout: str = "in_out",
                     groups: int = 1, einsum: str | None = None) -> VarianceScaling:
    """``torch.nn.init.kaiming_normal_``: untruncated normal, Var = gain(nonlinearity, a)^2 / fan.

    Pass ``layout="out_in"`` (``"OIHW"``, ...) for a PyTorch-layout weight, so ``fan_in`` is
    PyTorch's (dimension 1 times the window)."""
    return he_normal(in_axis, out_axis, batch_axis, dtype, nonlinearity=nonlinearity, negative_slope=a,
                     mode=mode, distribution="normal", layout=layout, groups=groups, einsum=einsum)


def _kaiming_uniform_(a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", *,
                      in_axis=-2, out_axis=-1, batch_axis=(), dtype=None, layout: str = "in_out",
                      groups: int = 1, einsum: str | None = None) -> VarianceScaling:
    """``torch.nn.init.kaiming_uniform_``: U(+-gain sqrt(3 / fan)); ``layout`` as for ``kaiming_normal_``."""
    return he_uniform(in_axis, out_axis, batch_axis, dtype, nonlinearity=nonlinearity, negative_slope=a,
                      mode=mode, layout=layout, groups=groups, einsum=einsum)


def _xavier_normal_(gain: float = 1.0, *, in_axis=-2, out_axis=-1, batch_axis=(), dtype=None,
                    layout: str = "in_out", groups: int = 1, einsum: str | None = None) -> VarianceScaling:
    """``torch.nn.init.xavier_normal_``: untruncated normal, Var = gain^2 * 2 / (fan_in + fan_out)."""
    return VarianceScaling(gain**2, "fan_avg", "normal", in_axis, out_axis, batch_axis, dtype,
                           layout=layout, groups=groups, einsum=einsum)


def _xavier_uniform_(gain: float = 1.0, *, in_axis=-2, out_axis=-1, batch_axis=(), dtype=None,
                     layout: str = "in_out", groups: int = 1, einsum: str | None = None) -> VarianceScaling:
    """``torch.nn.init.xavier_uniform_``: U(+-gain sqrt(6 / (fan_in + fan_out)))."""
    return VarianceScaling(gain**2, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype,
                           layout=layout, groups=groups, einsum=einsum)


def _normal_(mean: float = 0.0, std: float = 1.0):
    """``torch.nn.init.normal_``: N(mean, std^2)."""
    return normal(std, mean_value=mean)


def _uniform_(a: float = 0.0, b: float = 1.0):
    """``torch.nn.init.uniform_``: U(a, b)."""
    return random_uniform(a, b)


def _orthogonal_(gain: float = 1.0):
    """``torch.nn.init.orthogonal_``: Haar orthogonal times ``gain`` (same law in either layout)."""
    return orthogonal(scale=gain)


def _dirac_(groups: int = 1):
    """``torch.nn.init.dirac_`` carried to the ``(*window, in, out)`` layout (see :func:`jaxinit.dirac`)."""
    return dirac(groups=groups)


def _eye_():
    """``torch.nn.init.eye_``: the (rectangular) identity."""
    return identity()


def _constant_(val: float):
    """``torch.nn.init.constant_``: every entry ``val``."""
    return constant(val)


# -- Keras names (keras.initializers), with Keras' arguments and meaning -----------------------------
_KERAS_DISTRIBUTIONS = {"truncated_normal": "truncated_normal", "untruncated_normal": "normal",
                        "uniform": "uniform"}


def _keras_variance_scaling(scale: float = 1.0, mode: str = "fan_in",
                            distribution: str = "truncated_normal") -> VarianceScaling:
    """Keras ``VarianceScaling``: as JAX's, with ``"untruncated_normal"`` for the plain normal."""
    check_choice("mode", mode, ("fan_in", "fan_out", "fan_avg"), "Keras VarianceScaling")
    check_choice("distribution", distribution, _KERAS_DISTRIBUTIONS, "Keras VarianceScaling")
    return VarianceScaling(scale, mode, _KERAS_DISTRIBUTIONS[distribution])


def _keras_random_normal(mean: float = 0.0, stddev: float = 0.05):
    """Keras ``RandomNormal``: N(mean, stddev^2), default stddev 0.05."""
    return normal(stddev, mean_value=mean)


def _keras_truncated_normal(mean: float = 0.0, stddev: float = 0.05):
    """Keras ``TruncatedNormal``: N(mean, stddev^2) redrawn beyond 2 stddev, not rescaled."""
    return truncated_normal(stddev, lower=-2.0, upper=2.0, mean_value=mean)


def _keras_orthogonal(gain: float = 1.0):
    """Keras ``Orthogonal``: flattens all axes but the last, like JAX's ``orthogonal``."""
    return orthogonal(scale=gain)


def _keras_identity(gain: float = 1.0):
    """Keras ``Identity``: ``gain`` times the (rectangular) identity."""
    return identity(scale=gain)


def _keras_constant(value: float):
    """Keras ``Constant``: every entry ``value`` (given explicitly: ``constant`` has no default)."""
    return constant(value)


register("fan_in_uniform", fan_in_uniform, "torch_linear_bias", "torch_conv_bias",
         "torch_conv_transpose_bias", "equinox_linear_bias")
register("torch_linear_kernel", torch_linear_kernel, "torch_conv_kernel")
register("torch_conv_transpose_kernel", torch_conv_transpose_kernel)
register("haiku_linear_kernel", haiku_linear_kernel, "haiku_conv_kernel")
register("equinox_linear_weight", equinox_linear_weight, "equinox_conv_weight")

TORCH_NAMES = {
    "kaiming_normal_": _kaiming_normal_, "kaiming_uniform_": _kaiming_uniform_,
    "xavier_normal_": _xavier_normal_, "xavier_uniform_": _xavier_uniform_,
    "trunc_normal_": trunc_normal, "normal_": _normal_, "uniform_": _uniform_,
    "orthogonal_": _orthogonal_, "dirac_": _dirac_, "eye_": _eye_,
    "zeros_": Zeros, "ones_": Ones, "constant_": _constant_,
}
KERAS_NAMES = {
    "GlorotUniform": glorot_uniform, "GlorotNormal": glorot_normal, "HeNormal": he_normal,
    "HeUniform": he_uniform, "LecunNormal": lecun_normal, "LecunUniform": lecun_uniform,
    "RandomNormal": _keras_random_normal, "RandomUniform": random_uniform,
    "TruncatedNormal": _keras_truncated_normal, "Orthogonal": _keras_orthogonal,
    "Identity": _keras_identity, "Zeros": Zeros, "Ones": Ones, "Constant": _keras_constant,
    "VarianceScaling": _keras_variance_scaling,
}
for _name, _factory in {**TORCH_NAMES, **KERAS_NAMES}.items():
    register(_name, _factory)
