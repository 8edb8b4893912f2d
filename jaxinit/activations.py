"""Elementwise activations by name: one table shared by the network, the theory and the gains.

``activation("relu")`` returns a small frozen, hashable value (usable as a static argument, one
trace per distinct activation); any other callable passes through unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp

from jaxinit.errors import check_real, did_you_mean


def _hard_tanh(x):
    return jnp.clip(x, -1.0, 1.0)


# name -> (function of (x, param), default param or None)
_TABLE: dict[str, tuple[Callable[..., Any], float | None]] = {
    "linear": (lambda x, _: x, None),
    "relu": (lambda x, _: jax.nn.relu(x), None),
    "leaky_relu": (lambda x, a: jnp.where(x >= 0, x, a * x), 0.01),
    "elu": (lambda x, a: jax.nn.elu(x, a), 1.0),
    "selu": (lambda x, _: jax.nn.selu(x), None),
    "gelu": (lambda x, _: jax.nn.gelu(x, approximate=False), None),
    "gelu_tanh": (lambda x, _: jax.nn.gelu(x, approximate=True), None),
    "silu": (lambda x, _: jax.nn.silu(x), None),
    "mish": (lambda x, _: x * jnp.tanh(jax.nn.softplus(x)), None),
    "tanh": (lambda x, _: jnp.tanh(x), None),
    "sigmoid": (lambda x, _: jax.nn.sigmoid(x), None),
    "softplus": (lambda x, _: jax.nn.softplus(x), None),
    "softsign": (lambda x, _: jax.nn.soft_sign(x), None),
    "erf": (lambda x, _: jsp.erf(x), None),
    "hard_tanh": (lambda x, _: _hard_tanh(x), None),
    "relu6": (lambda x, _: jax.nn.relu6(x), None),
    "sin": (lambda x, _: jnp.sin(x), None),
}
_ALIASES = {"identity": "linear", "swish": "silu", "hardtanh": "hard_tanh"}


def names() -> list[str]:
    """Activation names :func:`activation` accepts (aliases included), sorted."""
    return sorted([*_TABLE, *_ALIASES])


@dataclasses.dataclass(frozen=True)
class Activation:
    """A named elementwise activation; ``param`` is the slope/alpha where the name takes one."""

    name: str
    param: float | None = None

    def __post_init__(self):
        name = _ALIASES.get(self.name, self.name)
        if name not in _TABLE:
            raise ValueError(
                f"unknown activation {self.name!r}.{did_you_mean(self.name, names())} "
                f"Known: {', '.join(names())}; or pass any elementwise callable."
            )
        object.__setattr__(self, "name", name)
        default = _TABLE[name][1]
        if self.param is None:
            object.__setattr__(self, "param", default)
        elif default is None:
            raise ValueError(f"activation {name!r} takes no parameter; got param={self.param!r}.")
        else:
            object.__setattr__(self, "param", check_real("param", self.param, f"activation {name!r}"))

    def __call__(self, x):
        return _TABLE[self.name][0](x, self.param)

    def __str__(self) -> str:
        default = _TABLE[self.name][1]
        return self.name if self.param == default else f"{self.name}({self.param:g})"


def activation(spec: str | Callable[..., Any] | dict, param: float | None = None) -> Callable[..., Any]:
    """Resolve an activation: a name (``"relu"``), ``{"name": "leaky_relu", "param": 0.2}``, or a callable.

    Example:
      >>> f = activation("leaky_relu", 0.2)
      >>> round(float(f(-1.0)), 6)
      -0.2
      >>> activation("tanh") == activation("tanh")
      True
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        return Activation(spec, param)
    if isinstance(spec, dict):
        if "name" not in spec or set(spec) - {"name", "param"}:
            raise ValueError(f"an activation table has keys 'name' and optional 'param'; got {spec!r}.")
        return Activation(spec["name"], spec.get("param"))
    if callable(spec):
        return spec
    raise TypeError(
        f"activation must be a name ({', '.join(names())}) or a callable; got {spec!r} "
        f"of type {type(spec).__name__}."
    )


def activation_name(fn: Callable[..., Any]) -> str:
    """A readable name for tables and figures."""
    if isinstance(fn, Activation):
        return str(fn)
    return getattr(fn, "__name__", type(fn).__name__)
