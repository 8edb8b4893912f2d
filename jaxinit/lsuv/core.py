"""LSUV's functional face: the arguments, the iteration on one layer's scale, the warning and the
stats, and :func:`lsuv` on the functional MLP (the package docstring has the rule)."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit import nets
from jaxinit.activations import activation as resolve_activation
from jaxinit.errors import check_int, check_positive


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

    # (*_like of an entry of z: under shard_map the carry keeps z's varying-axes type.)
    one = jnp.ones_like(z.reshape(-1)[0])
    return jax.lax.while_loop(active, rescale, (one, variance(one), jnp.zeros_like(one, jnp.int32)))


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


def warn_members(entries: Any, *, members: str = "members") -> None:
    """One :class:`LSUVWarning` for a whole run of the engines, or none when every layer of every
    member reached its tolerance.

    Args:
      entries: ``(label, spec, layers, variance)`` per LSUV entry of the run (per program when the
        run has several): ``spec`` the :class:`LSUV`, ``layers`` the layers' names in forward order
        (:func:`layer_names`), ``variance`` an array ``(..., len(layers))`` of the output variance
        each member reached on its batch (any leading member axes; NaN where it was not finite).
      members: what a member is called in the message.

    The message names, for every entry and layer that missed ``|variance - target| < tol`` in some
    member, how many members missed and the range of the variances they reached.
    """
    parts, missed_total, total = [], 0, 0
    for label, spec, layers, variance in entries:
        v = np.asarray(variance, np.float64).reshape(-1, len(layers))
        reached = np.abs(v - spec.target) < spec.tol
        total += v.shape[0]
        missed_total += int((~reached.all(axis=1)).sum())
        layer_parts = []
        for i, name in enumerate(layers):
            bad = v[~reached[:, i], i]
            if bad.size:
                finite = bad[np.isfinite(bad)]
                lo, hi = (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)
                shown = ("nan" if not finite.size else f"{lo:.6g}" if lo == hi else f"{lo:.6g} to {hi:.6g}")
                if 0 < finite.size < bad.size:
                    shown += " (and nan)"
                layer_parts.append(f"layer {name!r} reached variance {shown} in {bad.size} of {v.shape[0]} {members}")
        if layer_parts:
            parts.append(f"{label} (target {spec.target:g}, tol={spec.tol:g}, max_iter={spec.max_iter}): "
                         + ", ".join(layer_parts))
    if parts:
        warnings.warn(
            f"LSUV did not reach its tolerance in {missed_total} of {total} {members} (the last scale is "
            f"kept): {'; '.join(parts)}. Raise max_iter or tol, or check the layer's bias.",
            LSUVWarning, stacklevel=3,
        )


def layer_names(depth: int, readout: bool) -> tuple[str, ...]:
    """The functional MLP's layer names for :func:`lsuv`: ``"input"``, ``"hidden[0]"`` ..
    ``"hidden[depth-2]"`` and, with ``readout``, ``"readout"``."""
    return ("input", *(f"hidden[{i}]" for i in range(depth - 1)), *(("readout",) if readout else ()))


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
    return layer_names(len(hidden), out_dim is not None)


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
