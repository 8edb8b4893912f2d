"""The flax.linen and flax.nnx faces of the MLP in :mod:`jaxinit.nets` (same weights from the same key).

Reached as ``jaxinit.MLP`` / ``jaxinit.nets.MLP`` and ``jaxinit.NnxMLP`` / ``jaxinit.nets.NnxMLP``;
this module imports Flax, :mod:`jaxinit.nets` does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxinit._errors import check_int
from jaxinit.activations import activation as resolve_activation
from jaxinit.initializers import zeros
from jaxinit.nets import (
    DEFAULT_KERNEL_INIT,
    _check_callable,
    _check_output_activation,
    _check_params,
    _forward,
    _forward_jit,
    _hashable,
    _hidden_widths,
    check_input,
    init,
    is_stacked,
    widths_of,
)


# -- flax.linen --------------------------------------------------------------------------------
def _features(features: Any, depth: Any) -> tuple[tuple[int, ...], bool]:
    """Linen/nnx ``features``: an int with ``depth`` (stacked) or a sequence of widths (a list)."""
    if isinstance(features, int | np.integer) and not isinstance(features, bool):
        return _hidden_widths(features, 1 if depth is None else depth, None)
    if depth is not None:
        raise ValueError(
            f"depth goes with an int features (one width, stacked layers); got features={features!r} "
            f"and depth={depth!r}."
        )
    return _hidden_widths(None, None, features)


def _stacked_init(init_fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """An initializer for a ``(n, *shape)`` stack: entry ``i`` is ``init_fn(fold_in(key, i), shape)``."""
    def stacked(key, shape, dtype=None):
        if shape[0] == 0:
            return jnp.zeros(shape, dtype)
        return jax.vmap(lambda i: init_fn(jax.random.fold_in(key, i), shape[1:], dtype))(jnp.arange(shape[0]))
    return stacked


class _LinenDense(nn.Module):
    """Declares one layer's ``kernel`` and ``bias`` (stacked on a leading axis when ``stack``)."""

    features: int
    kernel_init: Any
    bias_init: Any
    param_dtype: Any
    stack: int | None = None

    @nn.compact
    def __call__(self, fan_in: int) -> dict[str, jax.Array]:
        if self.stack is None:
            return {"kernel": self.param("kernel", self.kernel_init, (fan_in, self.features), self.param_dtype),
                    "bias": self.param("bias", self.bias_init, (self.features,), self.param_dtype)}
        n = self.stack
        return {"kernel": self.param("kernel", _stacked_init(self.kernel_init), (n, fan_in, self.features),
                                     self.param_dtype),
                "bias": self.param("bias", _stacked_init(self.bias_init), (n, self.features), self.param_dtype)}


class MLP(nn.Module):
    """The MLP as a flax.linen Module; the same forward pass as :func:`apply`.

    Parameters have the functional layout: ``{"input", "hidden", "readout"}``, each with
    ``kernel`` and ``bias``. ``features=width, depth=n`` stacks the hidden layers (one
    ``lax.scan``); a sequence ``features=(w1, w2, ...)`` gives one submodule per hidden layer,
    ``hidden_1, hidden_2, ...``. ``MLP.init`` draws with Flax's own key per parameter (any
    initializer works); to run the exact weights of ``nets.init(key, ...)`` load them with
    :func:`to_linen_params`.

    Attributes:
      features: hidden width (an int, with ``depth``) or per-layer hidden widths.
      depth: number of hidden layers when ``features`` is an int (default 1).
      out_features: readout width, or ``None`` for no readout.
      activation: name or elementwise callable, after every hidden layer (default ``"relu"``).
      kernel_init, bias_init: any initializers (default ``he_normal()``, ``zeros``).
      output_activation: ``None``, ``"softmax"`` or ``"sigmoid"`` on the readout.
      dtype: computation dtype (``None``: promote the input and parameters).
      param_dtype: parameter dtype (default float32).
      precision: matmul precision.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxinit import nets
      >>> model = nets.MLP(features=16, depth=3, out_features=2, output_activation="softmax")
      >>> variables = model.init(jax.random.key(0), jnp.ones((4, 5)))
      >>> model.apply(variables, jnp.ones((4, 5))).sum(-1).round(5).tolist()
      [1.0, 1.0, 1.0, 1.0]
    """

    features: int | Sequence[int]
    depth: int | None = None
    out_features: int | None = None
    activation: Any = "relu"
    kernel_init: Any = DEFAULT_KERNEL_INIT
    bias_init: Any = zeros
    output_activation: str | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        widths, stacked = _features(self.features, self.depth)
        phi = resolve_activation(self.activation)
        _check_output_activation(self.output_activation)
        _check_callable("kernel_init", self.kernel_init)
        _check_callable("bias_init", self.bias_init)
        x = jnp.asarray(x)
        if x.ndim == 0:
            raise ValueError(f"x must have a feature axis; got a scalar x={x!r}.")
        dense = {"kernel_init": self.kernel_init, "bias_init": self.bias_init, "param_dtype": self.param_dtype}
        params: dict[str, Any] = {"input": _LinenDense(widths[0], **dense, name="input")(x.shape[-1])}
        if stacked:
            params["hidden"] = _LinenDense(widths[0], **dense, stack=len(widths) - 1, name="hidden")(widths[0])
        else:
            params["hidden"] = [_LinenDense(widths[i], **dense, name=f"hidden_{i}")(widths[i - 1])
                                for i in range(1, len(widths))]
        if self.out_features is not None:
            out = check_int("out_features", self.out_features, minimum=1)
            params["readout"] = _LinenDense(out, **dense, name="readout")(widths[-1])
        return _forward(params, x, phi, self.output_activation, self.precision, self.dtype)


def to_linen_params(params: dict[str, Any]) -> dict[str, Any]:
    """Functional params -> ``{"params": ...}`` variables for :class:`MLP` (same network).

    Stacked params fit ``MLP(features=width, depth=depth, ...)``; list params fit
    ``MLP(features=widths, ...)``.
    """
    _check_params(params)
    out = {"input": params["input"]}
    if is_stacked(params):
        out["hidden"] = params["hidden"]
    else:
        out.update({f"hidden_{i + 1}": layer for i, layer in enumerate(params["hidden"])})
    if "readout" in params:
        out["readout"] = params["readout"]
    return {"params": out}


def from_linen_params(variables: dict[str, Any]) -> dict[str, Any]:
    """:class:`MLP` variables (or their ``"params"``) -> functional params for :func:`apply` and probes."""
    p = variables.get("params", variables)
    if "input" not in p:
        raise ValueError(f"not the variables of a jaxinit.nets.MLP: no 'input' layer; got keys {sorted(p)!r}.")
    out: dict[str, Any] = {"input": dict(p["input"])}
    if "hidden" in p:
        out["hidden"] = dict(p["hidden"])
    else:
        n = sum(1 for k in p if k.startswith("hidden_"))
        out["hidden"] = [dict(p[f"hidden_{i}"]) for i in range(1, n + 1)]
    if "readout" in p:
        out["readout"] = dict(p["readout"])
    return out


# -- flax.nnx ----------------------------------------------------------------------------------
class _NnxDense(nnx.Module):
    def __init__(self, layer: dict[str, jax.Array]):
        self.kernel = nnx.Param(layer["kernel"])
        self.bias = nnx.Param(layer["bias"])

    def as_dict(self) -> dict[str, jax.Array]:
        return {"kernel": self.kernel[...], "bias": self.bias[...]}


class NnxMLP(nnx.Module):
    """The MLP as a flax.nnx Module; weights exactly those of :func:`init`, forward :func:`apply`'s.

    ``rngs`` may be an ``nnx.Rngs`` (the weights are then ``init(rngs.params(), ...)``) or a key
    (then exactly ``init(key, ...)``: same key, same network). The state has the functional
    layout (``input``, ``hidden`` stacked or a list, ``readout``).

    Args:
      in_features: input width.
      features: hidden width (an int, with ``depth``) or per-layer hidden widths.
      out_features: readout width, or ``None`` for no readout.
      depth: number of hidden layers when ``features`` is an int (default 1).
      activation, kernel_init, bias_init, output_activation, dtype, param_dtype, precision: as
        for :class:`MLP`.
      rngs: ``nnx.Rngs`` or a PRNG key.
      params: functional params to hold instead of drawing new ones (their sizes must match);
        :meth:`from_params` reads the sizes for you.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from jaxinit import nets
      >>> model = nets.NnxMLP(5, 16, 1, depth=3, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((4, 5))).shape
      (4, 1)
    """

    def __init__(self, in_features: int, features: int | Sequence[int], out_features: int | None = None, *,
                 depth: int | None = None, activation: Any = "relu", kernel_init: Any = DEFAULT_KERNEL_INIT,
                 bias_init: Any = zeros, output_activation: str | None = None, dtype: Any = None,
                 param_dtype: Any = jnp.float32, precision: Any = None, rngs: nnx.Rngs | jax.Array | None = None,
                 params: dict[str, Any] | None = None):
        widths, stacked = _features(features, depth)
        _check_output_activation(output_activation)
        if params is None:
            if rngs is None:
                raise TypeError("NnxMLP needs rngs= (an nnx.Rngs or a PRNG key), or params= to hold.")
            key = rngs.params() if isinstance(rngs, nnx.Rngs) else rngs
            if stacked:
                params = init(key, in_features, widths[0], len(widths), out_features, kernel_init, bias_init,
                              param_dtype)
            else:
                params = init(key, in_features, None, None, out_features, kernel_init, bias_init, param_dtype,
                              widths=widths)
        else:
            given = widths_of(params)
            wanted = (in_features, widths, out_features)
            if given != wanted or stacked != is_stacked(params):
                raise ValueError(
                    f"params hold a network (in_dim, widths, out_dim)={given} "
                    f"({'stacked' if is_stacked(params) else 'list'}); the module was asked for {wanted} "
                    f"({'stacked' if stacked else 'list'}). Use NnxMLP.from_params(params) to read the sizes."
                )
        self.activation = resolve_activation(activation)
        self.output_activation = output_activation
        self.dtype = dtype
        self.precision = precision
        self.input = _NnxDense(params["input"])
        if is_stacked(params):
            self.hidden = _NnxDense(params["hidden"])
        else:
            self.hidden = nnx.List([_NnxDense(layer) for layer in params["hidden"]])
        self.readout = _NnxDense(params["readout"]) if "readout" in params else None

    @classmethod
    def from_params(cls, params: dict[str, Any], *, activation: Any = "relu",
                    output_activation: str | None = None, dtype: Any = None, precision: Any = None) -> NnxMLP:
        """An :class:`NnxMLP` holding the given functional params (no new draws)."""
        in_dim, widths, out_dim = widths_of(params)
        if is_stacked(params):
            features, depth = widths[0], len(widths)
        else:
            features, depth = widths, None
        return cls(in_dim, features, out_dim, depth=depth, activation=activation,
                   output_activation=output_activation, dtype=dtype, precision=precision, params=params)

    def params(self) -> dict[str, Any]:
        """The functional params (current values) for :func:`apply` and the probes."""
        out: dict[str, Any] = {"input": self.input.as_dict()}
        if isinstance(self.hidden, _NnxDense):
            out["hidden"] = self.hidden.as_dict()
        else:
            out["hidden"] = [layer.as_dict() for layer in self.hidden]
        if self.readout is not None:
            out["readout"] = self.readout.as_dict()
        return out

    def __call__(self, x: jax.Array) -> jax.Array:
        params = self.params()
        x = check_input(params, x)
        if _hashable(self.activation) and _hashable(self.precision):
            return _forward_jit(params, x, self.activation, self.output_activation, self.precision, self.dtype)
        return _forward(params, x, self.activation, self.output_activation, self.precision, self.dtype)


def nnx_from_params(params: dict[str, Any], **kwargs: Any) -> NnxMLP:
    """``NnxMLP.from_params(params, **kwargs)``: the functional network as an nnx Module."""
    return NnxMLP.from_params(params, **kwargs)


def nnx_to_params(model: NnxMLP) -> dict[str, Any]:
    """``model.params()``: an :class:`NnxMLP`'s weights as functional params."""
    return model.params()


