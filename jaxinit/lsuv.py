r"""LSUV, layer-sequential unit-variance initialization (Mishkin & Matas, 2015).

Start from weights a base initializer drew (orthogonal in the paper), then, layer by layer in the
order the layers run, rescale the layer's kernel until the variance of its output (the
pre-activation) on a data batch is ``target``:

.. code-block:: text

    for each layer l, in forward order (earlier layers already rescaled):
        repeat at most max_iter times, while |Var(h^l) - target| >= tol:
            W^l <- W^l * sqrt(target / Var(h^l))

``Var`` is taken over the whole output of the layer on the batch (all examples, units and spatial
positions), as in the paper. The layer's output is affine in its kernel,
``h(s W) = s (h(W) - h(0)) + h(0)`` (``h(0)`` is the bias, broadcast), so the iteration runs on
that scalar ``s`` after one evaluation of ``h(W)`` and ``h(0)`` per layer: the same iterates as
the paper's forward passes, at the cost of two. With a zero bias the first rescaling is exact;
a bias makes more iterations necessary, and a bias whose spread over units alone exceeds the
target makes the target unreachable.

A layer that has not reached ``|Var - target| < tol`` after ``max_iter`` rescalings keeps its
last scale; the eager functions then emit one :class:`LSUVWarning` per such layer, naming it
and the variance reached. Everything is pure and jit-able (``lax.while_loop`` per layer): under
``jit``/``vmap`` no warning can be raised, so pass ``return_stats=True`` and read
:class:`LSUVStats`; under ``vmap`` each member iterates on its own (a member that has reached
its tolerance stops changing while the others go on), so a member's result is the result it
gets alone.

Three faces: :func:`lsuv` (the functional MLP of :mod:`jaxinit.nets`), :func:`lsuv_linen`
(any ``flax.linen`` model: its ``Dense``/``Conv`` layers), :func:`lsuv_nnx` (any ``flax.nnx``
model: its ``Linear``/``Conv`` layers), and :class:`LSUV`, the frozen spec value a config names.

References:
  D. Mishkin, J. Matas (2015). All you need is a good init. ICLR 2016, arXiv:1511.06422.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit import nets
from jaxinit.activations import activation as resolve_activation
from jaxinit.errors import check_int, check_positive
from jaxinit.initializers import BaseInitializer, get, orthogonal, zeros

__all__ = ["LSUV", "LSUVStats", "LSUVWarning", "lsuv", "lsuv_linen", "lsuv_nnx"]


class LSUVWarning(UserWarning):
    """A layer did not reach the target variance within ``tol`` in ``max_iter`` rescalings."""


@functools.partial(jax.tree_util.register_dataclass, data_fields=["variance", "reached", "iterations"],
                   meta_fields=["layers"])
@dataclasses.dataclass(frozen=True)
class LSUVStats:
    """Per layer, in forward order: what LSUV reached (a pytree; ``layers`` is static).

    Attributes:
      layers: the layers' names (``"input"``, ``"hidden[0]"``, ``"readout"`` for the functional
        MLP; the module path joined by ``/`` for Flax models).
      variance: ``(n_layers,)`` output variance on the batch after the last rescaling.
      reached: ``(n_layers,)`` whether ``|variance - target| < tol``.
      iterations: ``(n_layers,)`` rescalings done (0 when the base weights were already within ``tol``).

    Under ``vmap`` the arrays gain the mapped axes in front.
    """

    layers: tuple[str, ...]
    variance: jax.Array
    reached: jax.Array
    iterations: jax.Array


# -- arguments ---------------------------------------------------------------------------------
def _check_args(target: Any, tol: Any, max_iter: Any) -> tuple[float, float, int]:
    return (check_positive("target", target, "the output variance LSUV aims at"),
            check_positive("tol", tol, "the accepted |variance - target|"),
            check_int("max_iter", max_iter, minimum=1, where="rescalings per layer"))


def _check_batch(n: int, shape: tuple[int, ...], what: str) -> None:
    if n < 2:
        raise ValueError(
            f"x must hold at least 2 examples ({what}): the variance of a layer's output over a batch "
            f"of one example is undefined; got x.shape={shape}."
        )


# -- the iteration -----------------------------------------------------------------------------
def _wide(dtype: Any) -> Any:
    return jnp.promote_types(dtype, jnp.float32)


def _fit_scale(z: jax.Array, offset: jax.Array, target: float, tol: float,
               max_iter: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """LSUV's iteration on one layer whose output at kernel ``s W`` is ``s z + offset``.

    Returns ``(s, Var(s z + offset), iterations)``. Stops early on a zero or non-finite variance
    (no scale can repair it; the layer is then reported as not reached).
    """
    dtype = _wide(jnp.result_type(z, offset))
    z = z.astype(dtype)
    offset = jnp.broadcast_to(offset.astype(dtype), z.shape)

    def variance(s):
        return jnp.var(s * z + offset)

    def active(carry):
        _, v, i = carry
        return (jnp.abs(v - target) >= tol) & (i < max_iter) & (v > 0) & jnp.isfinite(v)

    def rescale(carry):
        s, v, i = carry
        s = s * jnp.sqrt(target / v)
        return s, variance(s), i + 1

    one = jnp.ones((), dtype)
    return jax.lax.while_loop(active, rescale, (one, variance(one), jnp.zeros((), jnp.int32)))


def _scaled(kernel: jax.Array, s: jax.Array) -> jax.Array:
    return (kernel.astype(_wide(kernel.dtype)) * s).astype(kernel.dtype)


def _stats(layers: tuple[str, ...], variances, iterations, target: float, tol: float) -> LSUVStats:
    variance = jnp.stack(variances) if isinstance(variances, list | tuple) else variances
    iterations = jnp.stack(iterations) if isinstance(iterations, list | tuple) else iterations
    return LSUVStats(layers, variance, jnp.abs(variance - target) < tol, iterations)


def _warn(stats: LSUVStats, target: float, tol: float, max_iter: int) -> None:
    """One LSUVWarning per layer that missed its tolerance; nothing when the stats are traced."""
    if isinstance(stats.reached, jax.core.Tracer) or isinstance(stats.variance, jax.core.Tracer):
        return
    reached = np.asarray(stats.reached)
    variance = np.asarray(stats.variance)
    for i, name in enumerate(stats.layers):
        if not reached[..., i].all():
            got = variance[..., i]
            shown = f"{float(got):.6g}" if got.ndim == 0 else np.array2string(got, precision=6)
            warnings.warn(
                f"LSUV: layer {name!r} did not reach variance {target:g} within tol={tol:g} after "
                f"max_iter={max_iter} rescalings: its output variance on the batch is {shown} (the last "
                "scale is kept). Raise max_iter or tol, or check the layer's bias.",
                LSUVWarning, stacklevel=3,
            )


# -- the functional MLP ------------------------------------------------------------------------
def _mlp(params, x, phi, target, tol, max_iter):
    dtype = jnp.result_type(x, *jax.tree.leaves(params))

    def layer(h_in, p):
        kernel, bias = p["kernel"], p["bias"]
        z = jnp.matmul(h_in, kernel.astype(dtype))
        s, _, iterations = _fit_scale(z, bias.astype(dtype), target, tol, max_iter)
        new = {**p, "kernel": _scaled(kernel, s)}
        h = nets.affine(h_in, {"kernel": new["kernel"].astype(dtype), "bias": bias.astype(dtype)})
        return new, h, jnp.var(h.astype(_wide(dtype))), iterations

    out: dict[str, Any] = dict(params)
    variances, iterations = [], []
    out["input"], h, v, it = layer(jnp.asarray(x, dtype), params["input"])
    variances.append(v[None])
    iterations.append(it[None])
    act = phi(h)
    if nets.is_stacked(params):
        def step(act, p):
            new, h, v, it = layer(act, p)
            return phi(h), (new, v, it)

        act, (out["hidden"], v, it) = jax.lax.scan(step, act, params["hidden"])
        variances.append(v)
        iterations.append(it)
    else:
        out["hidden"] = []
        for p in params["hidden"]:
            new, h, v, it = layer(act, p)
            out["hidden"].append(new)
            variances.append(v[None])
            iterations.append(it[None])
            act = phi(h)
    if "readout" in params:
        out["readout"], _, v, it = layer(act, params["readout"])
        variances.append(v[None])
        iterations.append(it[None])
    variance = jnp.concatenate(variances)
    return out, _stats(_mlp_names(params), variance, jnp.concatenate(iterations), target, tol)


_mlp_jit = jax.jit(_mlp, static_argnums=(2, 3, 4, 5))


def _mlp_names(params: dict[str, Any]) -> tuple[str, ...]:
    _, hidden, out_dim = nets.widths_of(params)
    return ("input", *(f"hidden[{i}]" for i in range(len(hidden) - 1)),
            *(("readout",) if out_dim is not None else ()))


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def lsuv(params: dict[str, Any], x: Any, activation: str | Callable[..., Any], *, target: float = 1.0,
         tol: float = 0.1, max_iter: int = 10, return_stats: bool = False) -> Any:
    r"""LSUV on the functional MLP's params: rescale each layer's kernel so ``Var(h^l) ≈ target``.

    In forward order (input layer, the hidden layers, the readout if any), with earlier layers
    already rescaled: ``W^l <- W^l sqrt(target / Var(h^l))`` while ``|Var(h^l) - target| >= tol``,
    at most ``max_iter`` times, where ``h^l = x^{l-1} W^l + b^l`` on the batch ``x`` (module
    docstring). Biases are left as they are. Stacked hidden layers run in one ``lax.scan``.

    Args:
      params: from :func:`jaxinit.nets.init` (stacked or list layout), drawn by any base
        initializer (the paper's: ``jaxinit.orthogonal()``).
      x: the data batch, ``(..., in_dim)`` with at least 2 examples.
      activation: the network's activation (a name or an elementwise callable).
      target: the output variance aimed at, > 0 (default 1.0).
      tol: accepted ``|Var - target|``, > 0 (default 0.1).
      max_iter: at most this many rescalings per layer, >= 1 (default 10).
      return_stats: also return :class:`LSUVStats` (use it under ``jit``/``vmap``, where no
        warning can be emitted).

    Returns:
      The rescaled params (same structure and dtypes), or ``(params, stats)``.

    Raises:
      ValueError: a batch of one example, ``target <= 0``, ``tol <= 0``, ``max_iter < 1``, ``x``
        whose last axis is not ``in_dim``.

    Warns:
      LSUVWarning: once per layer that missed its tolerance (eager calls only).

    Example:
      >>> import jax, jaxinit
      >>> from jaxinit import nets
      >>> params = nets.init(jax.random.key(0), 8, 64, 4, None, jaxinit.orthogonal())
      >>> x = jax.random.normal(jax.random.key(1), (256, 8))
      >>> params, stats = jaxinit.lsuv(params, x, "relu", return_stats=True)
      >>> stats.layers, bool(stats.reached.all())
      (('input', 'hidden[0]', 'hidden[1]', 'hidden[2]'), True)

    References:
      Mishkin & Matas (2015), All you need is a good init, arXiv:1511.06422.
    """
    target, tol, max_iter = _check_args(target, tol, max_iter)
    x = nets.check_input(params, x)
    _check_batch(math.prod(x.shape[:-1]), tuple(x.shape), "the axes before the last")
    phi = resolve_activation(activation)
    core = _mlp_jit if _hashable(phi) else _mlp
    out, stats = core(params, x, phi, target, tol, max_iter)
    _warn(stats, target, tol, max_iter)
    return (out, stats) if return_stats else out


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


# -- the spec value ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, repr=False)
class LSUV:
    """LSUV as a value: a base initializer plus the fit's ``target``, ``tol`` and ``max_iter``.

    Not a ``(key, shape, dtype)`` initializer: LSUV needs data. The engines draw each layer with
    ``base`` and then apply the fit to the run's own input batch (:meth:`apply`, or :func:`lsuv`
    with these fields); a config names it ``{name = "lsuv", base = "orthogonal", tol = 0.1,
    max_iter = 10}``. Frozen and hashable (a static argument traces once), ``repr`` reads back
    as code, :meth:`to_dict` / :meth:`from_dict` round-trip.

    Args:
      base: the initializer drawing the weights before the fit: a jaxinit initializer, a
        registry name or a ``{"name": ...}`` dict (default ``orthogonal()``, the paper's).
      target: output variance aimed at, > 0.
      tol: accepted ``|Var - target|``, > 0.
      max_iter: rescalings per layer at most, >= 1.

    Example:
      >>> from jaxinit import LSUV
      >>> spec = LSUV(base="orthogonal", tol=0.05)
      >>> spec
      LSUV(base=orthogonal(), target=1.0, tol=0.05, max_iter=10)
      >>> spec.to_dict()
      {'name': 'lsuv', 'base': 'orthogonal', 'target': 1.0, 'tol': 0.05, 'max_iter': 10}
      >>> LSUV(base={"name": "orthogonal", "scale": 2.0}).to_dict()["base"]
      {'name': 'orthogonal', 'scale': 2.0}
      >>> LSUV.from_dict(spec.to_dict()) == spec
      True
    """

    base: BaseInitializer = dataclasses.field(default_factory=orthogonal)
    target: float = 1.0
    tol: float = 0.1
    max_iter: int = 10

    name: ClassVar[str] = "lsuv"  # the config's name

    def __post_init__(self):
        base = self.base
        if isinstance(base, LSUV) or not isinstance(base, str | Mapping | BaseInitializer):
            raise TypeError(
                f"base must be a jaxinit initializer, a registry name or a {{'name': ...}} dict; got {base!r} "
                f"of type {type(base).__name__} (LSUV)."
            )
        object.__setattr__(self, "base", get(base))
        target, tol, max_iter = _check_args(self.target, self.tol, self.max_iter)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "tol", tol)
        object.__setattr__(self, "max_iter", max_iter)

    def to_dict(self) -> dict[str, Any]:
        """``{"name": "lsuv", "base": ..., "target", "tol", "max_iter"}``; the base as a name when
        it has no arguments, else as its own dict."""
        base = self.base.to_dict()
        return {"name": self.name, "base": base["name"] if len(base) == 1 else base,
                "target": self.target, "tol": self.tol, "max_iter": self.max_iter}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> LSUV:
        """The value :meth:`to_dict` wrote (``name`` must be ``"lsuv"``; unknown keys are refused)."""
        if not isinstance(spec, Mapping) or spec.get("name") != cls.name:
            raise ValueError(f"an LSUV table has name = 'lsuv'; got {spec!r}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(spec) - fields - {"name"})
        if unknown:
            raise ValueError(f"LSUV takes no argument {unknown[0]!r}; allowed: {sorted(fields)}.")
        return cls(**{k: v for k, v in spec.items() if k != "name"})

    def __repr__(self) -> str:
        return f"LSUV(base={self.base!r}, target={self.target!r}, tol={self.tol!r}, max_iter={self.max_iter!r})"

    def apply(self, params: dict[str, Any], x: Any, activation: str | Callable[..., Any], *,
              return_stats: bool = False) -> Any:
        """:func:`lsuv` with this value's ``target``, ``tol`` and ``max_iter``."""
        return lsuv(params, x, activation, target=self.target, tol=self.tol, max_iter=self.max_iter,
                    return_stats=return_stats)

    def init(self, key: jax.Array, x: Any, width: int, depth: int, out_dim: int | None,
             activation: str | Callable[..., Any], *, bias_init: Any = zeros, dtype: Any = jnp.float32,
             return_stats: bool = False) -> Any:
        """``nets.init(key, x.shape[-1], width, depth, out_dim, base, bias_init, dtype)``, then :meth:`apply`."""
        x = jnp.asarray(x)
        params = nets.init(key, x.shape[-1], width, depth, out_dim, self.base, bias_init, dtype)
        return self.apply(params, x, activation, return_stats=return_stats)
