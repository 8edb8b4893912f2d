"""Gains: the factor a nonlinearity asks of the weight standard deviation.

``gain(name, param)`` reproduces ``torch.nn.init.calculate_gain`` value for value.
``activation_gain(fn)`` (in :mod:`jaxinit.initializers._activation_gain`) computes one for any
elementwise activation from the Gaussian second moment.
"""

from __future__ import annotations

import math

from jaxinit.errors import check_choice, check_real

_UNIT_GAIN = ("linear", "identity", "conv1d", "conv2d", "conv3d",
              "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid")
GAIN_NAMES = (*_UNIT_GAIN, "tanh", "relu", "leaky_relu", "selu")


def gain_squared(nonlinearity: str, param: float | None = None) -> float:
    """``gain(nonlinearity, param) ** 2`` without the rounding of a square root (ReLU gives 2.0)."""
    check_choice("nonlinearity", nonlinearity, GAIN_NAMES)
    if nonlinearity in _UNIT_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 25.0 / 9.0
    if nonlinearity == "relu":
        return 2.0
    if nonlinearity == "selu":
        return 9.0 / 16.0
    # leaky_relu: PyTorch's default negative slope is 0.01 when param is None.
    slope = 0.01 if param is None else check_real("param", param, "leaky_relu negative slope")
    return 2.0 / (1.0 + slope**2)


def gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The recommended gain for ``nonlinearity``, as ``torch.nn.init.calculate_gain``.

    ======================  ===========================================
    linear, conv*, sigmoid  1
    tanh                    5/3
    relu                    :math:`\sqrt{2}`
    leaky_relu              :math:`\sqrt{2 / (1 + \mathrm{slope}^2)}` (slope defaults to 0.01)
    selu                    3/4 (PyTorch's choice for self-normalizing nets)
    ======================  ===========================================

    Multiply the standard deviation (not the variance) of a unit-gain init by it; the
    variance-scaling ``scale`` is ``gain ** 2``.

    Example:
      >>> gain("tanh")
      1.6666666666666667
      >>> round(gain("leaky_relu", 0.2), 6)
      1.38675
    """
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "selu":
        return 0.75
    return math.sqrt(gain_squared(nonlinearity, param))
