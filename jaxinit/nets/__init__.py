r"""The MLP, three faces of one network: functional (stacked, scanned), flax.linen, flax.nnx.

Conventions (the theory's, ``jaxinit.theory``). Row vectors and Flax's kernel layout
``(fan_in, fan_out)``; ``x^0`` is the input and, for ``l = 1 .. depth``,

    h^l = x^{l-1} W^l + b^l,        x^l = phi(h^l),

so ``depth`` counts the activated (hidden) layers. When ``out_dim`` is given a linear readout
follows, ``y = x^depth W^{depth+1} + b^{depth+1}`` (an optional softmax/sigmoid on top);
without it the output is ``x^depth``.

Code indices are 0-based: parameter, key and probe-trace index ``i`` is the paper's layer
``l = i + 1``. Index 0 is the input layer (``in_dim -> width``), ``1 .. depth-1`` the hidden
layers (``width -> width``), ``depth`` the readout.

Keys (so the sweep, this module and a user's own call agree bit for bit): the layer with index
``i`` of a network with key ``k`` draws

    kernel = kernel_init(fold_in(k, i), shape, dtype)
    bias   = bias_init(fold_in(fold_in(k, BIAS_STREAM), i), (fan_out,), dtype)

(:func:`layer_keys`). The kernel key does not depend on the initializer, so different
initializers see the same underlying noise. The bias stream is a separate branch of ``k`` that
no layer index reaches, so bias noise never reuses a kernel key.

Parameters are a plain dict (a pytree)::

    {"input":   {"kernel": (in_dim, width),            "bias": (width,)},
     "hidden":  {"kernel": (depth-1, width, width),    "bias": (depth-1, width)},   # stacked
     "readout": {"kernel": (width, out_dim),           "bias": (out_dim,)}}         # if out_dim

The hidden layers are stacked on a leading axis so one ``lax.scan`` runs them (compile time flat
in depth). With per-layer ``widths`` they cannot be stacked and ``"hidden"`` is a list of
``{"kernel", "bias"}`` dicts, one per hidden layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jaxinit.nets._core import (
    BIAS_STREAM,
    DEFAULT_KERNEL_INIT,
    OUTPUT_ACTIVATIONS,
    affine,
    apply,
    check_input,
    init,
    is_stacked,
    layer_keys,
    num_params,
    stack,
    unstack,
    widths_of,
)

if TYPE_CHECKING:  # imported lazily by __getattr__ below
    from jaxinit.nets.linen import MLP, from_linen_params, to_linen_params
    from jaxinit.nets.nnx import NnxMLP, nnx_from_params, nnx_to_params

__all__ = [
    "BIAS_STREAM", "DEFAULT_KERNEL_INIT", "MLP", "NnxMLP", "OUTPUT_ACTIVATIONS", "affine", "apply",
    "check_input", "from_linen_params", "init", "is_stacked", "layer_keys", "nnx_from_params",
    "nnx_to_params", "num_params", "stack", "to_linen_params", "unstack", "widths_of",
]

# The Flax faces (jaxinit.nets.linen, jaxinit.nets.nnx) are imported on first use: importing Flax
# costs ~0.4 s, which a sweep (functional network only) does not need to pay.
_FLAX_FACES = {"MLP": "linen", "from_linen_params": "linen", "to_linen_params": "linen",
               "NnxMLP": "nnx", "nnx_from_params": "nnx", "nnx_to_params": "nnx"}


def __getattr__(name: str) -> Any:
    if name in _FLAX_FACES:
        import importlib

        return getattr(importlib.import_module(f"jaxinit.nets.{_FLAX_FACES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
