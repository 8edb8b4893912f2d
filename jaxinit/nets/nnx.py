"""The flax.nnx face of the MLP in :mod:`jaxinit.nets` (same weights from the same key).

Reached as ``jaxinit.NnxMLP`` / ``jaxinit.nets.NnxMLP``; this module imports Flax, :mod:`jaxinit.nets` does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxinit.activations import activation as resolve_activation
from jaxinit.initializers import zeros
from jaxinit.nets._core import (
    DEFAULT_KERNEL_INIT,
    _check_output_activation,
    _features,
    _forward,
    _forward_jit,
    _hashable,
    check_input,
    init,
    is_stacked,
    widths_of,
)


def _nnx_key(rngs: nnx.Rngs, depth: int) -> jax.Array:
    """The network key of :class:`NnxMLP` from its ``params`` stream (nnx's ``default`` if none).

    A fresh stream (count 0) gives its root key, the key the user gave (``Rngs(params=key)``, or
    ``jax.random.key(seed)`` for ``Rngs(seed)``), and its count jumps to ``depth + 1``: nnx's
    later draws ``fold_in(root, count)`` then never equal a layer key ``fold_in(root, i)``,
    ``i = 0 .. depth`` (index ``depth`` is the readout). A stream that has drawn gives its next
    draw, ``fold_in(root, count)``, as nnx's own layers would. Traceable (``nnx.jit``).
    """
    stream = rngs.params
    root, count = stream.key[...], stream.count[...]
    fresh = count == 0
    key = jax.lax.select(fresh, root, jax.random.fold_in(root, count))
    stream.count[...] = jnp.where(fresh, jnp.uint32(depth + 1), count + 1).astype(count.dtype)
    return key


class _NnxDense(nnx.Module):
    def __init__(self, layer: dict[str, jax.Array]):
        self.kernel = nnx.Param(layer["kernel"])
        self.bias = nnx.Param(layer["bias"])

    def as_dict(self) -> dict[str, jax.Array]:
        return {"kernel": self.kernel[...], "bias": self.bias[...]}


class NnxMLP(nnx.Module):
    """The MLP as a flax.nnx Module; weights exactly those of :func:`init`, forward :func:`apply`'s.

    Same key, same weights: ``rngs`` may be a key (the weights are exactly ``init(key, ...)``) or
    an ``nnx.Rngs``. From a fresh ``nnx.Rngs(seed)`` / ``nnx.Rngs(params=key)`` the weights are
    exactly ``init(key, ...)`` of the root key given (``jax.random.key(seed)`` for a seed), and the
    stream's count skips past the layer indices, so later draws from it never repeat a layer's
    key; a stream that has already drawn gives ``init(rngs.params(), ...)``. The
    state has the functional layout (``input``, ``hidden`` stacked or a list, ``readout``).

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
            key = _nnx_key(rngs, len(widths)) if isinstance(rngs, nnx.Rngs) else rngs
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
