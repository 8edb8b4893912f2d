r"""What is measured at each layer of an MLP: forward statistics, gradients, input-output Jacobian.

Notation as in :mod:`jaxinit.nets`: ``h^l = x^{l-1} W^l + b^l``, ``x^l = phi(h^l)`` for
``l = 1 .. depth`` (trace index ``l - 1``), then the linear readout. Every field of a
:class:`Trace` has a trailing layer axis of length ``depth``; entry ``i`` describes ``h^{i+1}``.
Averages ``<.>`` run over the units of the layer and over the batch (both inputs of every pair).

Forward (one ``lax.scan`` over the stacked hidden layers; :func:`layer_stats` is its step):

- ``q``: second moment of pre-activations, ``<(h^l)^2>`` (not centred; mean-field ``q_l``).
- ``act_mean``, ``act_var``: mean and (population) variance of the activations ``x^l = phi(h^l)``.
- ``dead_fraction``: fraction of *units* that are inactive for *every* input of the batch;
  inactive means ``|phi'(h)| < dead_threshold`` (1e-6): ``h <= 0`` for ReLU, never for
  leaky ReLU or linear, deep in the flat tails for tanh/sigmoid.
- ``saturated_fraction``: fraction of (unit, input) *entries* (not of units) with
  ``|phi'(h)| < saturation_threshold`` (1e-2). Per entry rather than per unit, so it is the
  probability ``P(|phi'(h)| < 1e-2)`` that mean-field theory predicts, independent of the batch
  size. Inactive entries count as saturated (about half the entries of a ReLU layer, while almost
  no ReLU unit is dead on a large batch). ``dead_saturated_vs_depth.png`` (:mod:`jaxinit.lab.figures`)
  states the same two definitions.
- ``correlation``: for paired inputs ``(x_a, x_b)`` (see :func:`paired_inputs`), the mean over
  pairs of ``c_l = sum_i h_a,i h_b,i / sqrt(sum_i h_a,i^2 sum_i h_b,i^2)`` (mean-field ``c_l``,
  not centred); NaN when the inputs are not paired.

Backward, for a stated loss of the network's output (after the readout; the last hidden
activation when there is none) over the whole batch ``n`` of inputs:

- ``loss="mse"``: ``L = mean_{n,k} (y_nk - t_nk)^2`` with targets ``t ~ N(0, 1)``;
- ``loss="xent"`` (also spelled ``"cross_entropy"``, see :func:`loss_name`): ``L = mean_n -log
  softmax(y_n)[label_n]``, labels uniform over the outputs.

Targets/labels come from ``fold_in(key, 0)`` (:func:`random_targets`, default ``key = key(0)``), so
the loss is a fixed function of the weights; the Jacobian projections from ``fold_in(key, 1)``.
``grad_w_norm`` is the Frobenius norm of ``dL/dW^l`` and ``grad_h_norm`` that of ``dL/dh^l`` (the
``(n, width)`` matrix of the whole batch), reduced in float32 (float64 for float64 networks) and
scaled by the largest entry before squaring, so any gradient with a normal entry has a non-zero,
finite norm (``||a|| = m ||a / m||``, ``m = max |a|``). The scan body is checkpointed (``jax.checkpoint``), so
the backward pass keeps one carry per layer, not every intermediate.

Jacobian: ``jacobian_msv`` is the mean squared singular value of ``J^l = dh^l/dx`` (per input;
averaged over the batch), normalised by the layer's width ``N_l``:
``tr(J^l J^l^T) / N_l = E_v ||J^l v||^2 / N_l`` for ``v ~ N(0, I_{in_dim})``, estimated with
``num_projections`` random ``v`` per input pushed forward with the layer (a jvp; no Jacobian is
formed). At a mean-field fixed point it is ``sigma_w^2 chi_1^(l-1)``. With ``spectrum=True`` the
full singular values of ``J^l`` at the first input (descending, NaN-padded to
``min(in_dim, max width)``) are returned, shape ``(k, depth)``, for widths up to 1024.

Non-finite values: ``first_nonfinite_layer`` is the first trace index whose pre-activations or
activations hold an inf or NaN (-1 when none); every per-layer statistic from that index on is
NaN. Nothing raises. (Gradient and Jacobian norms before that index are what they are: an
exploding backward pass shows as inf there.) ``first_underflow_layer`` is the first index whose
(finite) ``q`` is below the smallest normal number of the network's dtype (that of its
activations: float16 6.1e-5, bfloat16 and float32 1.2e-38), zero included (-1 when none): from
there on the signal has vanished or is too small to measure at the dtype's precision. Values are
kept as measured.

Dtypes: the network runs in its parameters' and inputs' dtype (bfloat16 matmuls and activations
for bfloat16 parameters); every statistic is reduced in ``promote_types(dtype, float32)`` from
those values.

All matmuls use ``precision="highest"`` by default: TF32 matmuls on recent GPUs shift q and c by
~1e-4 within a few layers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit import nets
from jaxinit._linalg import singular_values
from jaxinit.activations import activation as resolve_activation
from jaxinit.errors import check_choice, check_in_range, check_int, check_positive
from jaxinit.nets._core import _hashable

__all__ = [
    "DEAD_THRESHOLD", "FORWARD_FIELDS", "LOSSES", "LOSS_ALIASES", "PER_LAYER_FIELDS", "SATURATION_THRESHOLD",
    "SPECTRUM_MAX_WIDTH", "Trace", "activate", "layer_stats", "loss_name", "loss_value", "paired_inputs",
    "random_targets", "trace",
]

DEAD_THRESHOLD = 1e-6
SATURATION_THRESHOLD = 1e-2
SPECTRUM_MAX_WIDTH = 1024
LOSSES = ("mse", "xent")  # the loss names the probes, the sweep engine and configs use
LOSS_ALIASES = {"cross_entropy": "xent"}  # accepted wherever a loss is named, by loss_name
FORWARD_FIELDS = ("q", "act_mean", "act_var", "dead_fraction", "saturated_fraction", "correlation")
PER_LAYER_FIELDS = (*FORWARD_FIELDS, "grad_w_norm", "grad_h_norm", "jacobian_msv")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Trace:
    """Per-layer measurements of one network (a pytree: vmap it over seeds, stack it, save it).

    Every per-layer field is an array whose last axis is the layer (length ``depth``); see the
    module docstring for the exact definitions. ``first_nonfinite_layer`` and
    ``first_underflow_layer`` are scalar ints (-1 when none); ``spectrum`` is ``(k, depth)``, or
    ``None`` when not requested.
    """

    q: jax.Array
    act_mean: jax.Array
    act_var: jax.Array
    dead_fraction: jax.Array
    saturated_fraction: jax.Array
    correlation: jax.Array
    grad_w_norm: jax.Array
    grad_h_norm: jax.Array
    jacobian_msv: jax.Array
    first_nonfinite_layer: jax.Array
    first_underflow_layer: jax.Array
    spectrum: jax.Array | None = None

    @property
    def depth(self) -> int:
        return self.q.shape[-1]

    def as_dict(self) -> dict[str, jax.Array]:
        """``{field: array}`` (``spectrum`` only when present)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if out["spectrum"] is None:
            del out["spectrum"]
        return out


# -- one layer -----------------------------------------------------------------------------------
def activate(h: jax.Array, phi: Callable[[jax.Array], jax.Array]) -> tuple[jax.Array, jax.Array]:
    """``(phi(h), phi'(h))`` for an elementwise ``phi``, by one jvp with a tangent of ones."""
    return jax.jvp(phi, (h,), (jnp.ones_like(h),))


def _stat_dtype(dtype) -> np.dtype:
    return jnp.promote_types(dtype, jnp.float32)


def _pair_correlation(h: jax.Array) -> jax.Array:
    """Mean over pairs of the cosine between ``h[0, n]`` and ``h[1, n]`` (overflow-safe)."""
    scale = jax.lax.stop_gradient(jnp.max(jnp.abs(h)))
    scale = jnp.where((scale > 0) & jnp.isfinite(scale), scale, 1.0)
    a, b = h[0] / scale, h[1] / scale
    cos = jnp.sum(a * b, -1) / jnp.sqrt(jnp.sum(a * a, -1) * jnp.sum(b * b, -1))
    return jnp.mean(cos)


def layer_stats(h: jax.Array, phi: Callable[[jax.Array], jax.Array], *, paired: bool = False,
                dead_threshold: float = DEAD_THRESHOLD,
                saturation_threshold: float = SATURATION_THRESHOLD) -> tuple[jax.Array, jax.Array, dict]:
    r"""The forward statistics of one layer from its pre-activations: the scan step of :func:`trace`.

    Pure and traceable; the sweep engine calls it inside its own scan.

    Args:
      h: pre-activations ``(..., width)``; with ``paired=True``, ``(2, batch, width)`` where
        ``h[0, n]`` and ``h[1, n]`` belong to the two inputs of pair ``n``.
      phi: the elementwise activation (a callable; resolve names with ``jaxinit.activations.activation``).
      paired: whether to measure the pair correlation (NaN otherwise).
      dead_threshold, saturation_threshold: ``|phi'|`` below which an entry is inactive / saturated
        (a unit is dead when all its entries are inactive; ``saturated_fraction`` counts entries).

    Returns:
      ``(x, dphi, stats)``: ``x = phi(h)``, ``dphi = phi'(h)`` (for the next layer and the
      Jacobian), and a dict of scalars with the keys of ``FORWARD_FIELDS`` plus ``"finite"``
      (whether every entry of ``h`` and ``x`` is finite).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxinit import probes
      >>> h = jnp.array([[1.0, -2.0], [3.0, -4.0]])
      >>> x, dphi, s = probes.layer_stats(h, lambda v: jnp.maximum(v, 0.0))
      >>> float(s["q"]), float(s["dead_fraction"]), float(s["saturated_fraction"])
      (7.5, 0.5, 0.5)
    """
    x, dphi = activate(h, phi)
    dt = _stat_dtype(h.dtype)
    hf, xf = h.astype(dt), x.astype(dt)
    width = h.shape[-1]
    slope = jnp.abs(dphi.astype(dt)).reshape(-1, width)
    act_mean = jnp.mean(xf)
    stats = {
        "q": jnp.mean(hf * hf),
        "act_mean": act_mean,
        "act_var": jnp.mean(jnp.square(xf - act_mean)),
        "dead_fraction": jnp.mean(jnp.all(slope < dead_threshold, axis=0).astype(dt)),
        "saturated_fraction": jnp.mean((slope < saturation_threshold).astype(dt)),
        "correlation": _pair_correlation(hf) if paired else jnp.asarray(jnp.nan, dt),
        "finite": jnp.all(jnp.isfinite(h)) & jnp.all(jnp.isfinite(x)),
    }
    return x, dphi, stats


# -- inputs, targets, losses ---------------------------------------------------------------------
def paired_inputs(key: jax.Array, batch: int, dim: int, correlation: float, q0: float = 1.0,
                  dtype: Any = jnp.float32) -> jax.Array:
    r"""``batch`` pairs of inputs with exact second moment ``q0`` and exact correlation ``c``.

    For each pair, with ``u, v`` orthonormal and uniformly oriented (Gram-Schmidt on two
    Gaussian vectors): ``x_a = sqrt(dim q0) u``, ``x_b = sqrt(dim q0) (c u + sqrt(1 - c^2) v)``,
    so ``|x_a|^2/dim = |x_b|^2/dim = q0`` and ``x_a . x_b / (dim q0) = c`` (the mean-field
    ``q_0`` and ``c_0``).

    Args:
      key: a PRNG key.
      batch: number of pairs, >= 1.
      dim: input width, >= 1 (>= 2 unless ``|correlation| = 1``).
      correlation: ``c`` in ``[-1, 1]``.
      q0: second moment per coordinate, > 0.
      dtype: float dtype of the result.

    Returns:
      ``(2, batch, dim)``: ``[x_a, x_b]``, the layout :func:`trace` reads as paired.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxinit import probes
      >>> x = probes.paired_inputs(jax.random.key(0), 3, 64, 0.5, q0=2.0)
      >>> x.shape, round(float(jnp.mean(x[0] ** 2)), 4), round(float(jnp.mean(x[0] * x[1]) / 2.0), 4)
      ((2, 3, 64), 2.0, 0.5)
    """
    batch = check_int("batch", batch, minimum=1)
    dim = check_int("dim", dim, minimum=1)
    c = check_in_range("correlation", correlation, -1.0, 1.0, closed_high=True)
    q0 = check_positive("q0", q0)
    if dim == 1 and abs(c) < 1:
        raise ValueError(f"dim must be >= 2 for a correlation strictly inside (-1, 1); got dim=1, correlation={c!r}.")
    z = jax.random.normal(key, (2, batch, dim), jnp.float32)
    u = z[0] / jnp.linalg.norm(z[0], axis=-1, keepdims=True)
    v = z[1] - jnp.sum(z[1] * u, -1, keepdims=True) * u
    v = v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), 1e-30)
    radius = math.sqrt(dim * q0)
    xa = radius * u
    xb = radius * (c * u + math.sqrt(max(0.0, 1.0 - c * c)) * v)
    return jnp.stack([xa, xb]).astype(dtype)


def loss_name(loss: str) -> str:
    """The loss's name in :data:`LOSSES`: ``"mse"``, ``"xent"``; an alias (:data:`LOSS_ALIASES`:
    ``"cross_entropy"``) gives the name it stands for.

    Raises:
      ValueError: any other value, listing the names and aliases accepted.

    Example:
      >>> loss_name("cross_entropy"), loss_name("mse")
      ('xent', 'mse')
    """
    check_choice("loss", loss, (*LOSSES, *LOSS_ALIASES))
    return LOSS_ALIASES.get(loss, loss)


def random_targets(key: jax.Array, n: int, out_dim: int, loss: str = "mse") -> jax.Array:
    """Targets for :func:`loss_value`: ``N(0, 1)`` of shape ``(n, out_dim)`` (mse) or uniform labels ``(n,)``."""
    loss = loss_name(loss)
    if loss == "mse":
        return jax.random.normal(key, (n, out_dim), jnp.float32)
    return jax.random.randint(key, (n,), 0, out_dim, dtype=jnp.int32)  # int32: the same labels under x64


def loss_value(y: jax.Array, targets: jax.Array, loss: str = "mse") -> jax.Array:
    """``mean (y - t)^2`` (mse) or ``mean -log softmax(y)[label]`` (xent) over the batch."""
    if loss_name(loss) == "mse":
        return jnp.mean(jnp.square(y - targets.astype(y.dtype)))
    logp = jax.nn.log_softmax(y, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[:, None], axis=-1))


# -- helpers -------------------------------------------------------------------------------------
def _fro(a: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """Frobenius norm over ``axes`` without overflow in the squares."""
    a = a.astype(_stat_dtype(a.dtype))
    m = jnp.max(jnp.abs(a), axis=axes, keepdims=True)
    safe = jnp.where((m > 0) & jnp.isfinite(m), m, 1.0)
    norm = jnp.sqrt(jnp.sum(jnp.square(a / safe), axis=axes, keepdims=True))
    return jnp.squeeze(jnp.where(jnp.isfinite(m), safe * norm, m), axis=axes)


def _cat(first, rest):
    """Per-layer arrays: ``first`` (layer 0) then a stack (scan output) or a list of layers."""
    if isinstance(rest, list):
        return jnp.stack([first, *rest], axis=0)
    return jnp.concatenate([first[None], rest], axis=0)


def _layers(params):
    """``(input layer, hidden stack or list, stacked?)``."""
    return params["input"], params["hidden"], nets.is_stacked(params)


# -- the forward scan ----------------------------------------------------------------------------
def _forward_probes(params, x, phi, paired, key, jacobian, num_projections, spectrum, precision, dead, sat):
    in_dim = x.shape[-1]
    flat_n = math.prod(x.shape[:-1])
    _, widths, _ = nets.widths_of(params)
    k = min(in_dim, max(widths))
    dt = _stat_dtype(x.dtype)

    def step(carry, layer):
        x, t, jac = carry
        width = layer["kernel"].shape[-1]
        h = nets.affine(x, layer, precision)
        x, dphi, out = layer_stats(h, phi, paired=paired, dead_threshold=dead, saturation_threshold=sat)
        if jacobian:
            th = jnp.matmul(t, layer["kernel"], precision=precision)
            out["jacobian_msv"] = jnp.mean(jnp.sum(jnp.square(th.astype(dt)), -1)) / width
            t = dphi.reshape(flat_n, width) * th
        if spectrum:
            jh = jnp.matmul(jac, layer["kernel"], precision=precision)
            sv = singular_values(jh.astype(dt))  # one matrix per LAPACK call (jaxinit._linalg)
            out["spectrum"] = jnp.pad(sv, (0, k - sv.shape[0]), constant_values=jnp.nan)
            jac = dphi.reshape(flat_n, width)[0] * jh
        return (x, t, jac), out

    t0 = jax.random.normal(key, (num_projections, flat_n, in_dim), x.dtype) if jacobian else None
    j0 = jnp.eye(in_dim, dtype=x.dtype) if spectrum else None
    first, hidden, stacked = _layers(params)
    carry, out0 = step((x, t0, j0), first)
    if stacked:
        _, rest = jax.lax.scan(step, carry, hidden)
    else:
        rest = []
        for layer in hidden:
            carry, o = step(carry, layer)
            rest.append(o)
        rest = jax.tree.map(lambda *a: jnp.stack(a), *rest) if rest else jax.tree.map(lambda a: a[None][:0], out0)
    return jax.tree.map(_cat, out0, rest)


# -- the backward pass ---------------------------------------------------------------------------
def _grad_norms(params, x, phi, targets, loss, precision):
    flat = x.reshape(-1, x.shape[-1])
    first, hidden, stacked = _layers(params)
    n = flat.shape[0]
    eps_first = jnp.zeros((n, first["kernel"].shape[-1]), flat.dtype)
    if stacked:
        eps_hidden = jnp.zeros((hidden["kernel"].shape[0], n, hidden["kernel"].shape[-1]), flat.dtype)
    else:
        eps_hidden = [jnp.zeros((n, layer["kernel"].shape[-1]), flat.dtype) for layer in hidden]

    @jax.checkpoint
    def body(x, layer_eps):
        layer, e = layer_eps
        return phi(nets.affine(x, layer, precision) + e), None

    def total(p, eps_first, eps_hidden):
        x = phi(nets.affine(flat, p["input"], precision) + eps_first)
        if stacked:
            x, _ = jax.lax.scan(body, x, (p["hidden"], eps_hidden))
        else:
            for layer, e in zip(p["hidden"], eps_hidden, strict=True):
                x, _ = body(x, (layer, e))
        y = nets.affine(x, p["readout"], precision) if "readout" in p else x
        return loss_value(y, targets, loss)

    gp, ge_first, ge_hidden = jax.grad(total, argnums=(0, 1, 2))(params, eps_first, eps_hidden)
    if stacked:
        gw_rest = _fro(gp["hidden"]["kernel"], (1, 2))
        gh_rest = _fro(ge_hidden, (1, 2))
    else:
        gw_rest = [_fro(g["kernel"], (0, 1)) for g in gp["hidden"]]
        gh_rest = [_fro(g, (0, 1)) for g in ge_hidden]
    return (_cat(_fro(gp["input"]["kernel"], (0, 1)), gw_rest),
            _cat(_fro(ge_first, (0, 1)), gh_rest))


# -- trace ---------------------------------------------------------------------------------------
def _trace(params, x, key, phi, paired, loss, gradients, jacobian, num_projections, spectrum, precision,
           dead, sat):
    out = _forward_probes(params, x, phi, paired, jax.random.fold_in(key, 1), jacobian, num_projections,
                          spectrum, precision, dead, sat)
    finite = out.pop("finite")
    depth = finite.shape[0]
    dt = out["q"].dtype
    nan = jnp.full((depth,), jnp.nan, dt)
    if gradients:
        _, widths, out_dim = nets.widths_of(params)
        n = math.prod(x.shape[:-1])
        targets = random_targets(jax.random.fold_in(key, 0), n, out_dim or widths[-1], loss)
        out["grad_w_norm"], out["grad_h_norm"] = _grad_norms(params, x, phi, targets, loss, precision)
    else:
        out["grad_w_norm"], out["grad_h_norm"] = nan, nan
    if not jacobian:
        out["jacobian_msv"] = nan
    bad = ~finite
    first_bad = jnp.where(jnp.any(bad), jnp.argmax(bad), -1).astype(jnp.int32)
    after = (first_bad >= 0) & (jnp.arange(depth) >= first_bad)
    fields = {name: jnp.where(after, jnp.nan, out[name].astype(dt)) for name in PER_LAYER_FIELDS}
    # Underflow against the network's own dtype (float16's smallest normal is 6.1e-5), not the
    # float32 the statistics are reduced in.
    signal = jnp.result_type(x.dtype, *(a.dtype for a in jax.tree.leaves(params)))
    under = finite & (out["q"] < jnp.finfo(signal).tiny)
    first_under = jnp.where(jnp.any(under), jnp.argmax(under), -1).astype(jnp.int32)
    spec = None
    if spectrum:
        spec = jnp.where(after[:, None], jnp.nan, out["spectrum"]).T
    return Trace(**fields, first_nonfinite_layer=first_bad, first_underflow_layer=first_under, spectrum=spec)


_trace_jit = jax.jit(_trace, static_argnums=tuple(range(3, 13)))


def _check_inputs(params, x, pairs):
    x = nets.check_input(params, x)
    if pairs is None:
        pairs = x.ndim == 3
    if pairs:
        if x.ndim != 3 or x.shape[0] != 2:
            raise ValueError(
                f"paired inputs must have shape (2, batch, in_dim), x[0] the first and x[1] the second "
                f"input of each pair (see paired_inputs); got x.shape={x.shape}."
            )
    elif x.ndim != 2:
        hint = " Pass pairs=True for paired inputs." if x.ndim == 3 else " Use x[None] for a single input."
        raise ValueError(f"unpaired inputs must have shape (batch, in_dim); got x.shape={x.shape}.{hint}")
    if x.shape[-2] < 1:
        raise ValueError(f"x must hold at least one input; got x.shape={x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(params["input"]["kernel"].dtype)
    return x, bool(pairs)


def trace(params: dict[str, Any], x: Any, activation: str | Callable[..., Any], *, key: jax.Array | None = None,
          pairs: bool | None = None, loss: str = "mse", gradients: bool = True, jacobian: bool = True,
          num_projections: int = 8, spectrum: bool = False, precision: Any = "highest",
          dead_threshold: float = DEAD_THRESHOLD, saturation_threshold: float = SATURATION_THRESHOLD) -> Trace:
    r"""Measure every layer of the network ``params`` on the inputs ``x``: a :class:`Trace`.

    Definitions of every field are in the module docstring. Jit-compiled (everything but
    ``params``, ``x`` and ``key`` is static); forward statistics and Jacobian projections run in
    one ``lax.scan`` over the stacked hidden layers (a Python loop for list-layout params).

    Args:
      params: functional params from :func:`jaxinit.nets.init` (or converted from the Flax
        modules with ``nets.from_linen_params`` / ``nets.nnx_to_params``).
      x: ``(batch, in_dim)``, or paired inputs ``(2, batch, in_dim)`` (:func:`paired_inputs`).
      activation: a name or an elementwise callable, as for :func:`jaxinit.nets.apply`.
      key: PRNG key for the loss targets and the Jacobian projections (default ``key(0)``).
      pairs: whether ``x`` is paired; ``None`` infers it from ``x.ndim`` (3 = paired).
      loss: ``"mse"`` (random Gaussian targets) or ``"xent"`` (random labels; alias ``"cross_entropy"``).
      gradients: compute ``grad_w_norm``/``grad_h_norm`` (NaN otherwise).
      jacobian: compute ``jacobian_msv`` (NaN otherwise).
      num_projections: random vectors per input for ``jacobian_msv``, >= 1.
      spectrum: also return the full Jacobian singular values (widths <= 1024).
      precision: matmul precision (default ``"highest"``).
      dead_threshold, saturation_threshold: ``|phi'|`` thresholds (> 0).

    Returns:
      A :class:`Trace`; per-layer fields have shape ``(depth,)``.

    Raises:
      ValueError: ``x``'s last axis is not ``in_dim``; paired inputs not of shape
        ``(2, batch, in_dim)``; an unknown activation or loss; ``spectrum=True`` with a layer
        wider than 1024; non-positive thresholds or projection count.

    Example:
      >>> import jax, jaxinit
      >>> from jaxinit import nets, probes
      >>> p = nets.init(jax.random.key(0), 64, 64, 5, 1, jaxinit.variance_scaling(2.0, "fan_in", "normal"))
      >>> x = probes.paired_inputs(jax.random.key(1), 4, 64, 0.5)
      >>> t = probes.trace(p, x, "relu")
      >>> t.q.shape, int(t.first_nonfinite_layer)
      ((5,), -1)
    """
    x, paired = _check_inputs(params, x, pairs)
    phi = resolve_activation(activation)
    loss = loss_name(loss)
    num_projections = check_int("num_projections", num_projections, minimum=1)
    dead = check_positive("dead_threshold", dead_threshold)
    sat = check_positive("saturation_threshold", saturation_threshold)
    in_dim, widths, _ = nets.widths_of(params)
    if spectrum and max(in_dim, *widths) > SPECTRUM_MAX_WIDTH:
        raise ValueError(
            f"spectrum=True needs in_dim and every width <= {SPECTRUM_MAX_WIDTH} (a full SVD per layer); "
            f"got in_dim={in_dim}, widths up to {max(widths)}. Use jacobian_msv (random projections) instead."
        )
    key = jax.random.key(0) if key is None else key
    args = (phi, paired, loss, bool(gradients), bool(jacobian), num_projections, bool(spectrum), precision,
            dead, sat)
    if _hashable(phi) and _hashable(precision):
        return _trace_jit(params, x, key, *args)
    return _trace(params, x, key, *args)
