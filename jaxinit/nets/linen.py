"""The flax.linen face of the MLP in :mod:`jaxinit.nets` (same weights from the same key).

Reached as ``jaxinit.MLP`` / ``jaxinit.nets.MLP``; this module imports Flax, :mod:`jaxinit.nets` does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxinit.activations import activation as resolve_activation
from jaxinit.errors import check_int
from jaxinit.initializers import zeros
from jaxinit.nets._core import (
    DEFAULT_KERNEL_INIT,
    _check_callable,
    _check_output_activation,
    _check_params,
    _features,
    _forward,
    init,
    is_stacked,
)


# -- flax.linen --------------------------------------------------------------------------------
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
