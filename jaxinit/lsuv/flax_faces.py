"""LSUV's Flax faces: :func:`lsuv_linen` (``flax.linen`` Dense/Conv layers) and :func:`lsuv_nnx`
(``flax.nnx`` Linear/Conv layers, in place). Flax is imported inside the functions that need it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxinit.lsuv.core import (
    LSUVStats,
    _check_args,
    _check_batch,
    _fit_scale,
    _hashable,
    _scaled,
    _stats,
    _warn,
    _wide,
)


# -- flax.linen --------------------------------------------------------------------------------
class _Captured(Exception):  # noqa: N818  (control flow: the layer's output is in hand)
    pass


def _linen_kinds() -> tuple[type, ...]:
    import flax.linen as nn

    return nn.Dense, nn.DenseGeneral, nn.Conv, nn.ConvTranspose, nn.ConvLocal


def _get_path(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for name in path:
        tree = tree[name]
    return tree


def _set_path(tree: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    if not path:  # the model is the layer itself
        return value
    out = dict(tree)
    out[path[0]] = value if len(path) == 1 else _set_path(tree[path[0]], path[1:], value)
    return out


def _linen_order(model, variables, x) -> list[tuple[str, ...]]:
    """Paths of the Dense/Conv layers in the order their first call runs (traced, not computed)."""
    import flax.linen as nn

    kinds, order = _linen_kinds(), []

    def record(call, args, kwargs, context):
        if context.method_name == "__call__" and isinstance(context.module, kinds):
            path = tuple(context.module.path)
            if path not in order:
                order.append(path)
        return call(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(model.apply, variables, x)
    return order


def _linen_output(model, variables, x, path):
    """The output of the first call of the layer at ``path`` (the forward pass stops there)."""
    import flax.linen as nn

    kinds, box = _linen_kinds(), []

    def record(call, args, kwargs, context):
        out = call(*args, **kwargs)
        if (context.method_name == "__call__" and isinstance(context.module, kinds)
                and tuple(context.module.path) == path):
            box.append(out)
            raise _Captured
        return out

    with nn.intercept_methods(record):
        try:
            model.apply(variables, x)
        except _Captured:
            pass
    return box[0]


def _lsuv_linen(model, variables, x, target, tol, max_iter):
    order = _linen_order(model, variables, x)
    if not order:
        raise ValueError(
            f"the model {type(model).__name__} runs no flax.linen Dense/DenseGeneral/Conv/ConvTranspose/"
            "ConvLocal layer on x: nothing for LSUV to rescale. (jaxinit.MLP: use jaxinit.lsuv on "
            "jaxinit.nets.from_linen_params(variables).)"
        )
    variables = dict(variables)
    variances, iterations = [], []
    for path in order:
        try:
            kernel = _get_path(variables["params"], path)["kernel"]
        except (KeyError, TypeError):
            raise ValueError(
                f"LSUV found the layer {'/'.join(path)!r} running but no variables['params'][...]['kernel'] "
                "at its path; layers inside lifted transforms (nn.scan, nn.vmap) are not supported."
            ) from None
        layer = _get_path(variables["params"], path)

        def with_kernel(k, variables=variables, layer=layer, path=path):
            return {**variables, "params": _set_path(variables["params"], path, {**layer, "kernel": k})}

        out = _linen_output(model, variables, x, path)
        out0 = _linen_output(model, with_kernel(jnp.zeros_like(kernel)), x, path)
        wide = _wide(out.dtype)
        s, v, it = _fit_scale(out.astype(wide) - out0.astype(wide), out0, target, tol, max_iter)
        variables = with_kernel(_scaled(kernel, s))
        variances.append(v)
        iterations.append(it)
    names = tuple("/".join(p) or type(model).__name__ for p in order)
    return variables, _stats(names, variances, iterations, target, tol)


_lsuv_linen_jit = jax.jit(_lsuv_linen, static_argnums=(0, 3, 4, 5))


def _batch_size(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"x must be a batch (examples on its first axis); got a scalar x={x!r}.")
    _check_batch(x.shape[0], tuple(x.shape), "on its first axis")
    return x


def lsuv_linen(model: Any, variables: Mapping[str, Any], x: Any, *, target: float = 1.0, tol: float = 0.1,
               max_iter: int = 10, return_stats: bool = False) -> Any:
    r"""LSUV for any ``flax.linen`` model: its Dense/Conv kernels rescaled in the order they run.

    The layers are ``nn.Dense``, ``nn.DenseGeneral``, ``nn.Conv``, ``nn.ConvTranspose`` and
    ``nn.ConvLocal``, found with ``nn.intercept_methods`` during ``model.apply(variables, x)``, in
    the order of their first call; a layer called twice (shared weights) is fitted on its first
    call. Each layer's output is its ``__call__``'s return value (the pre-activation); the rule is
    the module docstring's. Biases and every other variable are left as they are.

    ``model.apply(variables, x)`` must be deterministic and must not mutate collections (no
    dropout rng, BatchNorm in inference mode). Pure: returns new variables; jit-able with the
    model static (``jax.jit(lsuv_linen, static_argnums=0)``).

    Args:
      model: a ``flax.linen.Module``.
      variables: its variables (``model.init(...)``), with a ``"params"`` collection.
      x: the batch passed to ``model.apply``, examples on the first axis (at least 2).
      target, tol, max_iter, return_stats: as for :func:`lsuv`.

    Returns:
      New variables (plain dicts; a FrozenDict stays one), or ``(variables, stats)``; stats name
      layers by module path (``"Conv_0"``, ``"block/Dense_1"``; the class name when the model is
      the layer itself).

    Raises:
      ValueError: a batch of one example, bad ``target``/``tol``/``max_iter``, a model that runs
        no Dense/Conv layer.

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jaxinit
      >>> model = nn.Sequential([nn.Dense(32), nn.relu, nn.Dense(32)])
      >>> x = jax.random.normal(jax.random.key(1), (128, 4))
      >>> variables = model.init(jax.random.key(0), x)
      >>> variables, stats = jaxinit.lsuv_linen(model, variables, x, return_stats=True)
      >>> stats.layers, bool(stats.reached.all())
      (('layers_0', 'layers_2'), True)

    References:
      Mishkin & Matas (2015), All you need is a good init, arXiv:1511.06422.
    """
    target, tol, max_iter = _check_args(target, tol, max_iter)
    x = _batch_size(x)
    if not isinstance(variables, Mapping) or "params" not in variables:
        raise ValueError(f"variables must be the model's variables with a 'params' collection; got "
                         f"{sorted(variables) if isinstance(variables, Mapping) else type(variables).__name__!r}.")
    from flax.core import FrozenDict, freeze, unfreeze

    frozen = isinstance(variables, FrozenDict)
    if frozen:
        variables = unfreeze(variables)
    core = _lsuv_linen_jit if _hashable(model) else _lsuv_linen
    out, stats = core(model, variables, x, target, tol, max_iter)
    if frozen:
        out = freeze(out)
    _warn(stats, target, tol, max_iter)
    return (out, stats) if return_stats else out


# -- flax.nnx ----------------------------------------------------------------------------------
def _nnx_kinds() -> tuple[type, ...]:
    from flax import nnx

    return nnx.Linear, nnx.LinearGeneral, nnx.Conv, nnx.ConvTranspose


@functools.cache
def _recording_class(cls: type) -> type:
    """A subclass of ``cls`` whose ``__call__`` hands its output to the instance's ``_lsuv_hook``."""
    def __call__(self, *args, **kwargs):  # noqa: N807
        out = cls.__call__(self, *args, **kwargs)
        _HOOKS[id(self)](self, out)
        return out

    return type(cls)(f"_LSUVRecording{cls.__name__}", (cls,), {"__call__": __call__})


_HOOKS: dict[int, Callable[[Any, Any], None]] = {}


def _nnx_run(model, x, layers, hook) -> None:
    """Run ``model(x)`` with ``hook(layer, output)`` after every call of the ``layers``."""
    classes = [(layer, type(layer)) for layer in layers]
    for layer, cls in classes:
        _HOOKS[id(layer)] = hook
        layer.__class__ = _recording_class(cls)
    try:
        model(x)
    except _Captured:
        pass
    finally:
        for layer, cls in classes:
            layer.__class__ = cls
            _HOOKS.pop(id(layer), None)


def _lsuv_nnx(graphdef, state, x, target, tol, max_iter):
    from flax import nnx

    model = nnx.merge(graphdef, state)
    kinds = _nnx_kinds()
    found = {id(node): (path, node) for path, node in nnx.iter_graph(model) if isinstance(node, kinds)}
    order: list[int] = []

    def record(layer, _):
        if id(layer) not in order:
            order.append(id(layer))

    _nnx_run(model, x, [node for _, node in found.values()], record)
    if not order:
        raise ValueError(
            f"the model {type(model).__name__} runs no flax.nnx Linear/LinearGeneral/Conv/ConvTranspose "
            "layer on x: nothing for LSUV to rescale. (jaxinit.NnxMLP: use jaxinit.lsuv on model.params().)"
        )
    variances, iterations = [], []
    for ident in order:
        layer = found[ident][1]
        box: list[jax.Array] = []

        def capture(_, out, box=box):
            box.append(out)
            raise _Captured

        kernel = layer.kernel[...]
        _nnx_run(model, x, [layer], capture)
        layer.kernel[...] = jnp.zeros_like(kernel)
        _nnx_run(model, x, [layer], capture)
        out, out0 = box
        wide = _wide(out.dtype)
        s, v, it = _fit_scale(out.astype(wide) - out0.astype(wide), out0, target, tol, max_iter)
        layer.kernel[...] = _scaled(kernel, s)
        variances.append(v)
        iterations.append(it)
    names = tuple("/".join(str(p) for p in found[i][0]) or type(model).__name__ for i in order)
    return nnx.state(model, nnx.Param), _stats(names, variances, iterations, target, tol)


_lsuv_nnx_jit = jax.jit(_lsuv_nnx, static_argnums=(0, 3, 4, 5))


def lsuv_nnx(model: Any, x: Any, *, target: float = 1.0, tol: float = 0.1, max_iter: int = 10,
             return_stats: bool = False) -> LSUVStats | None:
    r"""LSUV for any ``flax.nnx`` model, **in place**: its Linear/Conv kernels rescaled in running order.

    The layers are ``nnx.Linear``, ``nnx.LinearGeneral``, ``nnx.Conv`` and ``nnx.ConvTranspose``
    (and subclasses), in the order of their first call during ``model(x)`` (found by wrapping
    their ``__call__`` on a copy of the model); a layer called twice is fitted on its first
    call. The rule is the module docstring's. As nnx users expect, the model is updated in place
    (only its kernels change: biases, batch statistics and rng counts are left as they were); the
    computation itself is pure (``nnx.split`` -> a jitted function of the state -> ``nnx.update``),
    so it also runs inside ``nnx.jit``.

    ``model(x)`` must be deterministic (no dropout; BatchNorm in inference mode).

    Args:
      model: a ``flax.nnx.Module``.
      x: the batch passed to ``model``, examples on the first axis (at least 2).
      target, tol, max_iter: as for :func:`lsuv`.
      return_stats: return :class:`LSUVStats` (layers named by their attribute path, ``"conv"``,
        ``"blocks/0/linear"``; the class name when the model is the layer itself).

    Returns:
      ``None`` (the model is updated), or the stats.

    Raises:
      ValueError: a batch of one example, bad ``target``/``tol``/``max_iter``, a model that runs
        no Linear/Conv layer.

    Example:
      >>> import jax, jaxinit
      >>> from flax import nnx
      >>> model = nnx.Sequential(nnx.Linear(4, 32, rngs=nnx.Rngs(0)), nnx.relu,
      ...                        nnx.Linear(32, 32, rngs=nnx.Rngs(1)))
      >>> x = jax.random.normal(jax.random.key(1), (128, 4))
      >>> stats = jaxinit.lsuv_nnx(model, x, return_stats=True)
      >>> stats.layers, bool(stats.reached.all())
      (('layers/0', 'layers/2'), True)

    References:
      Mishkin & Matas (2015), All you need is a good init, arXiv:1511.06422.
    """
    from flax import nnx

    target, tol, max_iter = _check_args(target, tol, max_iter)
    x = _batch_size(x)
    if not isinstance(model, nnx.Module):
        raise TypeError(f"model must be a flax.nnx.Module; got {type(model).__name__}. "
                        "(flax.linen models: use jaxinit.lsuv_linen.)")
    graphdef, state = nnx.split(model)
    params, stats = _lsuv_nnx_jit(graphdef, state, x, target, tol, max_iter)
    nnx.update(model, params)
    _warn(stats, target, tol, max_iter)
    return stats if return_stats else None
