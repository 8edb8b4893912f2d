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


def _params_key(module: nn.Module) -> jax.Array:
    """The key behind ``module``'s ``'params'`` rng, before Flax folds in any draw counter.

    At the top (``MLP(...).init(key, x)`` or ``init({"params": key}, x)``) this is exactly the
    ``key`` given. Inside another module it is the key Flax derives for the module's path (the
    given key with the path's names folded in, ``flax.core.scope.LazyRng``), so sibling MLPs differ.
    """
    if not module.scope.has_rng("params"):
        return module.make_rng("params")  # raises Flax's own error naming the missing rng
    return module.scope.rngs["params"].as_jax_rng()


def _layer_value(module: nn.Module, name: str) -> Callable[..., jax.Array]:
    """Flax init function for ``name``: the layer's array as :func:`jaxinit.nets.init` draws it."""
    def value(_flax_key, shape, dtype):
        if module.has_variable("params", name):
            # apply() with existing params: Flax only evaluates the shape; nothing is drawn.
            return jnp.zeros(shape, dtype)
        return module.draw()[name]
    return value


class _LinenDense(nn.Module):
    """Declares one layer's ``kernel`` and ``bias``; ``draw()`` returns their values from ``nets.init``.

    ``kernel_shape`` is ``(fan_in, fan_out)``, or ``(n, fan_in, fan_out)`` for a stack of ``n``.
    """

    kernel_shape: tuple[int, ...]
    param_dtype: Any
    draw: Callable[[], dict[str, jax.Array]]

    @nn.compact
    def __call__(self) -> dict[str, jax.Array]:
        bias_shape = (*self.kernel_shape[:-2], self.kernel_shape[-1])
        return {name: self.param(name, _layer_value(self, name), shape, self.param_dtype)
                for name, shape in (("kernel", self.kernel_shape), ("bias", bias_shape))}


class MLP(nn.Module):
    """The MLP as a flax.linen Module; the same forward pass as :func:`apply`.

    Parameters have the functional layout: ``{"input", "hidden", "readout"}``, each with
    ``kernel`` and ``bias``. ``features=width, depth=n`` stacks the hidden layers (one
    ``lax.scan``); a sequence ``features=(w1, w2, ...)`` gives one submodule per hidden layer,
    ``hidden_1, hidden_2, ...``.

    Same key, same weights: ``MLP(...).init(key, x)`` (or ``init({"params": key}, x)``) holds
    exactly ``nets.init(key, ...)``, bit for bit: layer ``i``'s kernel is
    ``kernel_init(fold_in(key, i), shape, dtype)`` of the key given, not of a key Flax derives
    per parameter. An MLP inside another module draws ``nets.init`` of the key Flax derives for
    its path (the given key with the path's names folded in), so sibling MLPs differ. Functional
    params load with :func:`to_linen_params`.

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
        in_dim, out = x.shape[-1], self.out_features
        if out is not None:
            out = check_int("out_features", out, minimum=1)
        drawn: dict[str, Any] = {}

        def draw() -> dict[str, Any]:
            # nets.init of the key given to init (drawn once, when Flax first creates a parameter)
            if not drawn:
                key = _params_key(self)
                if stacked:
                    drawn.update(init(key, in_dim, widths[0], len(widths), out, self.kernel_init, self.bias_init,
                                      self.param_dtype))
                else:
                    drawn.update(init(key, in_dim, None, None, out, self.kernel_init, self.bias_init,
                                      self.param_dtype, widths=widths))
            return drawn

        def dense(name: str, shape: tuple[int, ...], layer: Callable[[dict[str, Any]], dict[str, jax.Array]]):
            return _LinenDense(shape, self.param_dtype, lambda: layer(draw()), name=name)()

        params: dict[str, Any] = {"input": dense("input", (in_dim, widths[0]), lambda p: p["input"])}
        if stacked:
            params["hidden"] = dense("hidden", (len(widths) - 1, widths[0], widths[0]), lambda p: p["hidden"])
        else:
            params["hidden"] = [dense(f"hidden_{i}", (widths[i - 1], widths[i]), lambda p, i=i: p["hidden"][i - 1])
                                for i in range(1, len(widths))]
        if out is not None:
            params["readout"] = dense("readout", (widths[-1], out), lambda p: p["readout"])
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


