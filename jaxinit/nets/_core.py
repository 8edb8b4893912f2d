"""The functional MLP: the private core the three faces share (see :mod:`jaxinit.nets` for the conventions)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._prng import BIAS_STREAM, fold_in
from jaxinit.activations import activation as resolve_activation
from jaxinit.errors import check_choice, check_int
from jaxinit.initializers import he_normal, zeros

# The default kernel initializer of the Flax modules (ReLU is their default activation).
DEFAULT_KERNEL_INIT = he_normal()


OUTPUT_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "softmax": lambda y: jax.nn.softmax(y, axis=-1),
    "sigmoid": jax.nn.sigmoid,
}


# -- keys and validation ---------------------------------------------------------------------
def layer_keys(key: jax.Array, index: int | jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(kernel_key, bias_key)`` for the layer with 0-based ``index`` of the network with ``key``.

    ``kernel_key = fold_in(key, index)``; ``bias_key = fold_in(fold_in(key, BIAS_STREAM), index)``.
    Traceable in ``index`` (the sweep calls it inside its scan step).

    Example:
      >>> import jax
      >>> from jaxinit import nets
      >>> k = jax.random.key(0)
      >>> bool((jax.random.key_data(nets.layer_keys(k, 3)[0])
      ...       == jax.random.key_data(jax.random.fold_in(k, 3))).all())
      True
    """
    return fold_in(key, index), fold_in(fold_in(key, BIAS_STREAM), index)


def _check_callable(arg: str, value: Any) -> None:
    if not callable(value):
        raise TypeError(
            f"{arg} must be an initializer, a callable (key, shape, dtype) -> Array; "
            f"got {value!r} of type {type(value).__name__}."
        )


def _float_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a floating-point dtype; got {dtype!r}.") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"dtype must be a floating-point dtype (float32, bfloat16, ...); got dtype={dt.name}.")
    return dt


def _hidden_widths(width: Any, depth: Any, widths: Any) -> tuple[tuple[int, ...], bool]:
    """(per-layer widths, stacked?) from ``width`` + ``depth`` or from ``widths``."""
    if widths is None:
        if width is None or depth is None:
            raise ValueError(f"give width and depth (or widths=); got width={width!r}, depth={depth!r}.")
        width = check_int("width", width, minimum=1)
        depth = check_int("depth", depth, minimum=1)
        return (width,) * depth, True
    if width is not None or depth is not None:
        raise ValueError(
            f"give either width and depth, or widths, not both; got width={width!r}, depth={depth!r} "
            f"and widths={widths!r}. Pass width=None, depth=None with widths=."
        )
    if isinstance(widths, int | np.integer) or not isinstance(widths, Sequence | np.ndarray):
        raise TypeError(f"widths must be a sequence of ints (one per hidden layer); got {widths!r}.")
    out = tuple(check_int("widths entries", w, minimum=1, where=f"widths={tuple(widths)!r}") for w in widths)
    if not out:
        raise ValueError("depth must be >= 1; got widths=() (no hidden layer).")
    return out, False


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


# -- functional init ---------------------------------------------------------------------------
def _dense(key, index, fan_in, fan_out, kernel_init, bias_init, dtype):
    kernel_key, bias_key = layer_keys(key, index)
    return {"kernel": kernel_init(kernel_key, (fan_in, fan_out), dtype),
            "bias": bias_init(bias_key, (fan_out,), dtype)}


def _init(key, in_dim, widths, stacked, out_dim, kernel_init, bias_init, dtype):
    depth = len(widths)
    params = {"input": _dense(key, 0, in_dim, widths[0], kernel_init, bias_init, dtype)}
    if stacked:
        width = widths[0]
        if depth == 1:
            params["hidden"] = {"kernel": jnp.zeros((0, width, width), dtype), "bias": jnp.zeros((0, width), dtype)}
        else:
            params["hidden"] = jax.vmap(
                lambda i: _dense(key, i, width, width, kernel_init, bias_init, dtype)
            )(jnp.arange(1, depth))
    else:
        params["hidden"] = [_dense(key, i, widths[i - 1], widths[i], kernel_init, bias_init, dtype)
                            for i in range(1, depth)]
    if out_dim is not None:
        params["readout"] = _dense(key, depth, widths[-1], out_dim, kernel_init, bias_init, dtype)
    return params


_init_jit = jax.jit(_init, static_argnums=(1, 2, 3, 4, 5, 6, 7))


def init(key: jax.Array, in_dim: int, width: int | None, depth: int | None, out_dim: int | None,
         kernel_init: Callable[..., jax.Array], bias_init: Callable[..., jax.Array] = zeros,
         dtype: Any = jnp.float32, *, widths: Sequence[int] | None = None) -> dict[str, Any]:
    r"""Parameters of an MLP ``in_dim -> width (x depth) -> out_dim``, hidden layers stacked.

    Layer ``i`` draws its kernel with ``kernel_init(fold_in(key, i), shape, dtype)`` and its bias
    from the bias branch (:func:`layer_keys`); the stacked hidden layers are drawn with ``vmap``
    over the layer index, the same arrays as one call per layer. Jit-compiled (the initializers
    are static arguments: pass hashable values such as ``jaxinit`` initializers).

    Args:
      key: a PRNG key (typed ``jax.random.key`` or legacy uint32).
      in_dim: input features, >= 1.
      width: hidden width, >= 1 (``None`` when ``widths`` is given).
      depth: number of hidden (activated) layers, >= 1 (``None`` when ``widths`` is given).
      out_dim: readout features (a linear layer after the last activation), or ``None`` for none.
      kernel_init: any initializer ``(key, shape, dtype) -> Array``; kernels are ``(fan_in, fan_out)``.
      bias_init: initializer for the ``(fan_out,)`` biases (default ``zeros``).
      dtype: parameter dtype (a float dtype; default float32).
      widths: per-layer hidden widths (length = depth). The hidden layers are then a list, not
        a stack, whether or not the widths differ.

    Returns:
      The parameter dict described in the module docstring.

    Raises:
      ValueError: ``depth < 1``, ``width < 1``, ``in_dim < 1``, ``out_dim < 1``, or both
        ``width``/``depth`` and ``widths`` given.
      TypeError: non-integer sizes, a non-callable initializer, a non-float dtype.

    Example:
      >>> import jax, jaxinit
      >>> from jaxinit import nets
      >>> p = nets.init(jax.random.key(0), 8, 32, 4, 1, jaxinit.he_normal())
      >>> jax.tree.map(lambda a: a.shape, p)["hidden"]
      {'bias': (3, 32), 'kernel': (3, 32, 32)}
      >>> nets.widths_of(p)
      (8, (32, 32, 32, 32), 1)
    """
    in_dim = check_int("in_dim", in_dim, minimum=1)
    hidden, stacked = _hidden_widths(width, depth, widths)
    if out_dim is not None:
        out_dim = check_int("out_dim", out_dim, minimum=1)
    _check_callable("kernel_init", kernel_init)
    _check_callable("bias_init", bias_init)
    dt = _float_dtype(dtype)
    if _hashable(kernel_init) and _hashable(bias_init):
        return _init_jit(key, in_dim, hidden, stacked, out_dim, kernel_init, bias_init, dt)
    return _init(key, in_dim, hidden, stacked, out_dim, kernel_init, bias_init, dt)


# -- structure helpers -------------------------------------------------------------------------
def _check_params(params: Any) -> None:
    if not isinstance(params, dict) or "input" not in params or "hidden" not in params:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            "params must be the dict jaxinit.nets.init returns, with keys 'input', 'hidden' "
            f"and optional 'readout'; got {got!r}. (Flax variables: use from_linen_params.)"
        )


def is_stacked(params: dict[str, Any]) -> bool:
    """Whether the hidden layers are stacked (a dict of arrays) rather than a list."""
    return isinstance(params["hidden"], dict)


def widths_of(params: dict[str, Any]) -> tuple[int, tuple[int, ...], int | None]:
    """``(in_dim, hidden widths, out_dim or None)`` read from the parameter shapes."""
    _check_params(params)
    in_dim, width = params["input"]["kernel"].shape
    if is_stacked(params):
        hidden = (width,) * (1 + params["hidden"]["kernel"].shape[0])
    else:
        hidden = (width, *(layer["kernel"].shape[1] for layer in params["hidden"]))
    out = params["readout"]["kernel"].shape[1] if "readout" in params else None
    return int(in_dim), tuple(int(w) for w in hidden), out


def unstack(params: dict[str, Any]) -> dict[str, Any]:
    """The same network with its hidden layers as a list (the ``widths=`` layout)."""
    _check_params(params)
    if not is_stacked(params):
        return params
    h = params["hidden"]
    layers = [{"kernel": h["kernel"][i], "bias": h["bias"][i]} for i in range(h["kernel"].shape[0])]
    return {**params, "hidden": layers}


def stack(params: dict[str, Any]) -> dict[str, Any]:
    """The same network with its hidden layers stacked; every width must then be equal."""
    _check_params(params)
    if is_stacked(params):
        return params
    _, hidden, _ = widths_of(params)
    if len(set(hidden)) != 1:
        raise ValueError(f"only equal hidden widths can be stacked; got widths={hidden}.")
    width = hidden[0]
    layers = params["hidden"]
    if layers:
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *layers)
    else:
        dtype = params["input"]["kernel"].dtype
        stacked = {"kernel": jnp.zeros((0, width, width), dtype),
                   "bias": jnp.zeros((0, width), params["input"]["bias"].dtype)}
    return {**params, "hidden": stacked}


# -- forward -----------------------------------------------------------------------------------
def affine(x: jax.Array, layer: dict[str, jax.Array], precision: Any = None) -> jax.Array:
    """``x @ kernel + bias`` for one layer dict."""
    return jnp.matmul(x, layer["kernel"], precision=precision) + layer["bias"]


def _forward(params, x, phi, output_activation, precision, dtype):
    leaves = jax.tree.leaves(params)
    dtype = jnp.result_type(x, *leaves) if dtype is None else dtype
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
    x = phi(affine(jnp.asarray(x, dtype), params["input"], precision))
    if is_stacked(params):
        def step(x, layer):
            return phi(affine(x, layer, precision)), None

        x, _ = jax.lax.scan(step, x, params["hidden"])
    else:
        for layer in params["hidden"]:
            x = phi(affine(x, layer, precision))
    if "readout" in params:
        x = affine(x, params["readout"], precision)
        if output_activation is not None:
            x = OUTPUT_ACTIVATIONS[output_activation](x)
    return x


_forward_jit = jax.jit(_forward, static_argnums=(2, 3, 4, 5))


def check_input(params: dict[str, Any], x: Any) -> jax.Array:
    """``x`` as an array whose last axis matches the network's ``in_dim``, or a ``ValueError``."""
    _check_params(params)
    x = jnp.asarray(x)
    in_dim = params["input"]["kernel"].shape[0]
    if x.ndim == 0 or x.shape[-1] != in_dim:
        given = "a scalar" if x.ndim == 0 else f"{x.shape[-1]} features (x.shape={x.shape})"
        raise ValueError(
            f"x must have the network's input width in_dim={in_dim} on its last axis; got {given}."
        )
    return x


def _check_output_activation(output_activation: str | None) -> None:
    if output_activation is not None:
        check_choice("output_activation", output_activation, OUTPUT_ACTIVATIONS)


def apply(params: dict[str, Any], x: Any, activation: str | Callable[..., Any], precision: Any = None, *,
          output_activation: str | None = None) -> jax.Array:
    r"""Run the MLP: ``x^l = phi(x^{l-1} W^l + b^l)`` for the hidden layers, then the linear readout.

    Jit-compiled; ``activation``, ``output_activation`` and ``precision`` are static. The hidden
    stack runs in one ``lax.scan``. Parameters and ``x`` are promoted to a common dtype.

    Args:
      params: from :func:`init` (stacked or list layout).
      x: inputs, shape ``(..., in_dim)``.
      activation: a name from ``jaxinit.activations.names()`` or any elementwise callable;
        applied after every hidden layer's affine map, not after the readout.
      precision: matmul precision (``None``, ``"highest"``, a ``jax.lax.Precision``).
      output_activation: ``None``, ``"softmax"`` or ``"sigmoid"`` on the readout.

    Returns:
      ``(..., out_dim)`` (or ``(..., width)`` without a readout).

    Raises:
      ValueError: ``x``'s last axis is not ``in_dim`` (the message names both), an unknown
        activation or output activation.

    Example:
      >>> import jax, jaxinit
      >>> from jaxinit import nets
      >>> p = nets.init(jax.random.key(0), 3, 16, 2, 1, jaxinit.he_normal())
      >>> nets.apply(p, jax.numpy.ones((5, 3)), "relu").shape
      (5, 1)
    """
    x = check_input(params, x)
    phi = resolve_activation(activation)
    _check_output_activation(output_activation)
    if _hashable(phi) and _hashable(precision):
        return _forward_jit(params, x, phi, output_activation, precision, None)
    return _forward(params, x, phi, output_activation, precision, None)


def num_params(params: dict[str, Any]) -> int:
    """Number of scalars in the network's parameters."""
    return sum(math.prod(a.shape) for a in jax.tree.leaves(params))


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
