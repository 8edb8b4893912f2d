"""Variance scaling and its specializations: Glorot/Xavier, He/Kaiming, LeCun.

Every entry here is one :class:`VarianceScaling` value; ``he_normal()`` is
``variance_scaling(2.0, "fan_in", "truncated_normal")``. Semantics are JAX's: ``scale / n``
is the variance *after* truncation (the truncated normal is rescaled by 1/0.8796...), fans come
from :func:`compute_fans`, and complex dtypes get ``E|w|^2 = scale / n`` (radial convention).
"""

from __future__ import annotations

import dataclasses
import math

from jaxinit.errors import check_choice, check_positive
from jaxinit.initializers._base import BaseInitializer, as_axes, dtype_name, is_complex
from jaxinit.initializers._fans import FAN_MODES, check_fan_options, fan_denominator, fans_allowing_zero
from jaxinit.initializers._gains import gain_squared
from jaxinit.initializers._random import SAMPLERS, UnitNoise, scaled_from_bits, unit_factor
from jaxinit.initializers._registry import register


@dataclasses.dataclass(frozen=True, repr=False)
class VarianceScaling(BaseInitializer):
    r"""Entries with mean 0 and variance :math:`\mathrm{scale} / n`, ``n`` chosen by ``mode``.

    ``n`` is ``fan_in``, ``fan_out``, their mean (``fan_avg``) or geometric mean
    (``fan_geo_avg``); see :func:`compute_fans` for the axes. ``distribution`` is
    ``"truncated_normal"`` (cut at 2 std, then rescaled to the target variance), ``"normal"``
    or ``"uniform"`` (on :math:`\pm\sqrt{3\,\mathrm{scale}/n}`).

    Args:
      scale: the variance multiplier, > 0 (``gain ** 2`` in PyTorch terms).
      mode: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` or ``"fan_geo_avg"``.
      distribution: ``"truncated_normal"``, ``"normal"`` or ``"uniform"``.
      in_axis, out_axis, batch_axis: axes as :func:`compute_fans` reads them.
      layout, groups, einsum: named kernel layouts (``"OIHW"``, ...), grouped convolutions and
        einsum-defined kernels, as :func:`compute_fans` reads them (defaults: JAX's meaning).
      dtype: default dtype when the call gives none.

    Example:
      >>> init = jaxinit.variance_scaling(2.0, "fan_in", "normal")
      >>> init.variance((512, 256))
      0.00390625

    References:
      Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks", AISTATS 2010. He et al., "Delving Deep into Rectifiers", 2015, arXiv:1502.01852.
    """

    registry_name = "variance_scaling"
    always_shown = ("scale", "mode", "distribution")
    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "truncated_normal"
    in_axis: tuple[int, ...] = (-2,)
    out_axis: tuple[int, ...] = (-1,)
    batch_axis: tuple[int, ...] = ()
    dtype: str | None = None
    layout: str = "in_out"
    groups: int = 1
    einsum: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "scale", check_positive("scale", self.scale, "variance_scaling"))
        check_choice("mode", self.mode, FAN_MODES, "variance_scaling")
        check_choice("distribution", self.distribution, SAMPLERS, "variance_scaling")
        for name in ("in_axis", "out_axis", "batch_axis"):
            object.__setattr__(self, name, as_axes(name, getattr(self, name)))
        object.__setattr__(self, "dtype", dtype_name(self.dtype))
        check_fan_options(self.in_axis, self.out_axis, self.batch_axis, self.layout, self.groups,
                          self.einsum)
        object.__setattr__(self, "groups", int(self.groups))

    def _check_shape(self, shape):
        fans_allowing_zero(shape, self.in_axis, self.out_axis, self.batch_axis, layout=self.layout,
                           groups=self.groups, einsum=self.einsum)

    def variance(self, shape):
        n = fan_denominator(self.mode, shape, self.in_axis, self.out_axis, self.batch_axis,
                            layout=self.layout, groups=self.groups, einsum=self.einsum)
        return self.scale / n

    def _sample(self, key, shape, dtype):
        return SAMPLERS[self.distribution](key, shape, dtype, math.sqrt(self.variance(shape)))

    def shared_noise(self, shape, dtype=None):
        """``(UnitNoise(distribution), sqrt(variance(shape)) * unit_factor)``: every entry of the
        family with one distribution is a scaled copy of one noise, whatever its scale and mode."""
        complex_ = is_complex(self.resolve_dtype(dtype))
        d = self.distribution
        return UnitNoise(d), math.sqrt(self.variance(shape)) * unit_factor(d, complex_)

    def _bits_shape(self, shape):
        return shape

    def _sample_from_bits(self, bits, shape, dtype):
        return scaled_from_bits(self.distribution, bits, dtype, math.sqrt(self.variance(shape)))


def variance_scaling(scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                     in_axis=-2, out_axis=-1, batch_axis=(), dtype=None, *,
                     layout: str = "in_out", groups: int = 1, einsum: str | None = None,
                     ) -> VarianceScaling:
    """JAX ``variance_scaling(scale, mode, distribution, in_axis, out_axis, batch_axis, dtype)``.

    Keyword-only ``layout``, ``groups`` and ``einsum`` describe PyTorch-layout, grouped and
    einsum kernels (see :func:`compute_fans`); their defaults keep JAX's meaning.

    Example:
      >>> from jaxinit import variance_scaling
      >>> variance_scaling(2.0, "fan_in", "normal", layout="OIHW").variance((32, 16, 3, 3))
      0.013888888888888888
    """
    return VarianceScaling(scale, mode, distribution, in_axis, out_axis, batch_axis, dtype,
                           layout=layout, groups=groups, einsum=einsum)


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None, *,
                   layout: str = "in_out", groups: int = 1, einsum: str | None = None,
                   ) -> VarianceScaling:
    r"""Glorot/Xavier uniform: :math:`U(\pm\sqrt{6/(n_{in}+n_{out})})`, Var = 2 / (fan_in + fan_out).

    ``variance_scaling(1.0, "fan_avg", "uniform")``. Glorot & Bengio, AISTATS 2010.
    """
    return VarianceScaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype,
                           layout=layout, groups=groups, einsum=einsum)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None,
                  distribution: str = "truncated_normal", *,
                  layout: str = "in_out", groups: int = 1, einsum: str | None = None,
                  ) -> VarianceScaling:
    r"""Glorot/Xavier normal: Var = 2 / (fan_in + fan_out).

    ``variance_scaling(1.0, "fan_avg", "truncated_normal")`` as in JAX and Keras;
    ``distribution="normal"`` gives PyTorch's untruncated ``xavier_normal_``.
    Glorot & Bengio, AISTATS 2010.
    """
    return VarianceScaling(1.0, "fan_avg", distribution, in_axis, out_axis, batch_axis, dtype,
                           layout=layout, groups=groups, einsum=einsum)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None, *,
                  layout: str = "in_out", groups: int = 1, einsum: str | None = None,
                  ) -> VarianceScaling:
    r"""LeCun uniform: :math:`U(\pm\sqrt{3/n_{in}})`, Var = 1 / fan_in.

    ``variance_scaling(1.0, "fan_in", "uniform")``. LeCun et al., "Efficient BackProp", 1998.
    """
    return VarianceScaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype,
                           layout=layout, groups=groups, einsum=einsum)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None,
                 distribution: str = "truncated_normal", *,
                 layout: str = "in_out", groups: int = 1, einsum: str | None = None,
                 ) -> VarianceScaling:
    r"""LeCun normal: Var[W_ij] = 1 / fan_in.

    Keeps the second moment of a linear layer's output equal to its input's:
    :math:`q_{out} = n_{in} \mathrm{Var}[W] q_{in} = q_{in}`. The usual choice for SELU.
    ``variance_scaling(1.0, "fan_in", "truncated_normal")``.

    Example:
      >>> init = jaxinit.lecun_normal()
      >>> w = init(jax.random.key(0), (512, 256))
      >>> w.shape, w.dtype.name
      ((512, 256), 'float32')
      >>> round(float(w.var()) * 512, 1)
      1.0

    References:
      LeCun, Bottou, Orr & Mueller, "Efficient BackProp", 1998.
      Klambauer et al., "Self-Normalizing Neural Networks", 2017, arXiv:1706.02515.
    """
    return VarianceScaling(1.0, "fan_in", distribution, in_axis, out_axis, batch_axis, dtype,
                           layout=layout, groups=groups, einsum=einsum)


def _he_scale(nonlinearity: str, negative_slope: float) -> float:
    # PyTorch's kaiming_* take the slope as ``a``; calculate_gain defaults it to 0.01 only when
    # called directly, kaiming passes a=0, which we follow.
    return gain_squared(nonlinearity, negative_slope)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None, *, nonlinearity: str = "relu",
               negative_slope: float = 0.0, mode: str = "fan_in",
               layout: str = "in_out", groups: int = 1, einsum: str | None = None,
               ) -> VarianceScaling:
    r"""He/Kaiming uniform: :math:`U(\pm\sqrt{3 g^2 / n})`, Var = g^2 / fan_in, g^2 = 2 for ReLU.

    ``variance_scaling(2.0, "fan_in", "uniform")``. ``nonlinearity`` and ``negative_slope``
    (PyTorch's ``a``) set :math:`g^2` = ``gain(nonlinearity, negative_slope) ** 2``.
    Layout: JAX kernels are ``(in, out)``, PyTorch weights ``(out, in)``; ``mode="fan_in"`` means
    the input features in both, so no transposition of meaning is needed.
    He et al., "Delving Deep into Rectifiers", ICCV 2015, arXiv:1502.01852.
    """
    return VarianceScaling(_he_scale(nonlinearity, negative_slope), mode, "uniform",
                           in_axis, out_axis, batch_axis, dtype, layout=layout, groups=groups, einsum=einsum)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None, *, nonlinearity: str = "relu",
              negative_slope: float = 0.0, mode: str = "fan_in",
              distribution: str = "truncated_normal",
              layout: str = "in_out", groups: int = 1, einsum: str | None = None,
              ) -> VarianceScaling:
    r"""He/Kaiming normal: Var[W_ij] = g^2 / fan_in with g^2 = 2 for ReLU.

    ``variance_scaling(2.0, "fan_in", "truncated_normal")`` (JAX, Keras). PyTorch's
    ``kaiming_normal_`` is untruncated: ``he_normal(distribution="normal")``. A ReLU halves the
    second moment, :math:`E[\mathrm{relu}(z)^2] = q/2`, and the factor 2 restores it, so
    :math:`q_l` stays constant through depth.

    Example:
      >>> jaxinit.he_normal().variance((256, 128))
      0.0078125
      >>> jaxinit.he_normal(nonlinearity="leaky_relu", negative_slope=0.2).scale
      1.923076923076923

    References:
      He, Zhang, Ren & Sun, "Delving Deep into Rectifiers", ICCV 2015, arXiv:1502.01852.
    """
    return VarianceScaling(_he_scale(nonlinearity, negative_slope), mode, distribution,
                           in_axis, out_axis, batch_axis, dtype, layout=layout, groups=groups, einsum=einsum)


def glorot_truncated_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> VarianceScaling:
    """Glorot normal, explicitly truncated at 2 std and rescaled (what JAX's glorot_normal is)."""
    return glorot_normal(in_axis, out_axis, batch_axis, dtype, distribution="truncated_normal")


def he_truncated_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> VarianceScaling:
    """He normal, explicitly truncated at 2 std and rescaled (what JAX's he_normal is)."""
    return he_normal(in_axis, out_axis, batch_axis, dtype, distribution="truncated_normal")


def lecun_truncated_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None) -> VarianceScaling:
    """LeCun normal, explicitly truncated at 2 std and rescaled (what JAX's lecun_normal is)."""
    return lecun_normal(in_axis, out_axis, batch_axis, dtype, distribution="truncated_normal")


# Aliases keep one object per meaning: xavier_* is glorot_*, kaiming_* is he_*.
xavier_uniform, xavier_normal = glorot_uniform, glorot_normal
kaiming_uniform, kaiming_normal = he_uniform, he_normal

register("variance_scaling", variance_scaling)
register("glorot_uniform", glorot_uniform, "xavier_uniform")
register("glorot_normal", glorot_normal, "xavier_normal")
register("lecun_uniform", lecun_uniform)
register("lecun_normal", lecun_normal)
register("he_uniform", he_uniform, "kaiming_uniform")
register("he_normal", he_normal, "kaiming_normal")
register("glorot_truncated_normal", glorot_truncated_normal, "xavier_truncated_normal")
register("he_truncated_normal", he_truncated_normal, "kaiming_truncated_normal")
register("lecun_truncated_normal", lecun_truncated_normal)
