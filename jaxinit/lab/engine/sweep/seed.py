"""One seed's program: the forward scan (with tangents) and the reversed scan for gradients,
every probe of every (initializer, grid point) combo."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxinit import probes
from jaxinit._linalg import singular_values
from jaxinit._prng import fold_in
from jaxinit.initializers._random import raw_sample
from jaxinit.lab.engine.sweep.inputs import make_inputs, readout_loss_grad
from jaxinit.lab.engine.sweep.layers import HIGHEST, _Layers
from jaxinit.lab.engine.sweep.plan import Plan, data_key, seed_key


def forward_stats(h: jax.Array, phi: Callable) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
    """:func:`jaxinit.probes.layer_stats` for every combo: ``h`` is (combos, batch, width) with
    rows paired as (0, 1), (2, 3), ...; returns ``(phi(h), phi'(h), stats)``, stats per combo."""
    n, batch, width = h.shape
    paired = batch % 2 == 0
    if paired:
        h = jnp.swapaxes(h.reshape(n, batch // 2, 2, width), 1, 2)
    x, dphi, stats = jax.vmap(lambda hh: probes.layer_stats(hh, phi, paired=paired))(h)
    if paired:
        x, dphi = (jnp.swapaxes(a, 1, 2).reshape(n, batch, width) for a in (x, dphi))
    return x, dphi, stats


def _seed_measure(plan: Plan, base_seed: int, seed, weight_variance, bias_variance) -> dict[str, jax.Array]:
    """All probes of one seed for every (initializer, grid point) combo; arrays (n_init, n_grid, ...)."""
    key, dkey = seed_key(base_seed, seed), data_key(base_seed, seed)
    layers = _Layers(plan, key, weight_variance)
    wide, dtype = layers.wide, layers.dtype
    phi = plan.activation
    n_grid = weight_variance.shape[0]
    n_combo = plan.n_init * n_grid
    bias_std = jnp.tile(jnp.sqrt(bias_variance), plan.n_init).astype(wide)
    x0 = make_inputs(plan, fold_in(dkey, 0)).astype(dtype)  # drawn wide, rounded once to the dtype
    batch = x0.shape[0]
    rows = [x0]
    if plan.jacobian:  # random tangents v ~ N(0, I), num_projections per input
        v = raw_sample("normal", fold_in(dkey, 1), (plan.num_projections * batch, plan.in_dim), wide)
        rows.append(v.astype(dtype))
    if plan.spectrum:  # the identity: propagates the full Jacobian of the first input
        rows.append(jnp.eye(plan.in_dim, dtype=dtype))
    rows0 = jnp.broadcast_to(jnp.concatenate(rows), (n_combo, sum(r.shape[0] for r in rows), plan.in_dim))
    n_tangent = rows0.shape[1] - batch

    def layer_out(pre_rows, layer, dphi_prev, bits):
        """Affine map of activations + linear map of tangents (tangents scaled by phi' first), and
        the layer's LSUV scale per combo (None without LSUV entries)."""
        if dphi_prev is not None and n_tangent:
            t = pre_rows[:, batch:]
            if plan.jacobian:
                dp = jnp.tile(dphi_prev, (1, plan.num_projections, 1))
                tj = t[:, :plan.num_projections * batch] * dp
                t = jnp.concatenate([tj, t[:, plan.num_projections * batch:] * dphi_prev[:, :1]], axis=1)
            else:
                t = t * dphi_prev[:, :1]
            pre_rows = jnp.concatenate([pre_rows[:, :batch], t], axis=1)
        bias = layers.bias(layer, bias_std)
        y, scale = layers.fitted(layers.linear(pre_rows, layer, bits), pre_rows, layer, bits, bias, batch)
        h = y[:, :batch] + bias[:, None, :]
        return h, y[:, batch:], scale

    # The network's dtype's own limits: q below its smallest normal is underflow (float16: 6.1e-5).
    tiny = float(jnp.finfo(dtype).tiny)
    is_lsuv = jnp.repeat(jnp.asarray([i in dict(plan.lsuv) for i in range(plan.n_init)]), n_grid)

    def lsuv_variance(h):
        """Per combo, the variance LSUV reached on the batch (NaN for the other initializers)."""
        return jnp.where(is_lsuv, jnp.var(h.astype(wide), axis=(1, 2)), jnp.nan)

    def measure(h, tangents, bad, bad_layer, under_layer, index):
        post, dphi, stats = forward_stats(h, phi)
        # A layer is non-finite once a pre-activation, an activation or their q is.
        finite = stats.pop("finite") & jnp.isfinite(stats["q"])
        bad_layer = jnp.where(~bad & ~finite, index, bad_layer)
        bad = bad | ~finite
        # Underflow: q below the smallest normal number (0 included) is no longer measured to the
        # dtype's precision; the values stay (0 is information), the layer is recorded.
        under = finite & (stats["q"] < tiny)
        under_layer = jnp.where((under_layer < 0) & under, index, under_layer)
        if not plan.forward:
            stats = {}
        if plan.jacobian:
            tj = tangents[:, :plan.num_projections * batch].astype(wide)
            stats["jacobian_msv"] = jnp.mean(jnp.sum(tj * tj, -1), axis=1) / h.shape[-1]
        stats = {k: jnp.where(bad, jnp.nan, v) for k, v in stats.items()}
        return post, dphi, stats, bad, bad_layer, under_layer

    def step(carry, layer):
        x_prev, t_prev, d_prev, bad, bad_layer, under_layer, bits = carry
        h, t, scale = layer_out(jnp.concatenate([x_prev, t_prev], axis=1), layer, d_prev, bits)
        x, d, stats, bad, bad_layer, under_layer = measure(h, t, bad, bad_layer, under_layer, layer)
        if plan.lsuv:
            stats["lsuv_variance"] = lsuv_variance(h)
        keep = (x_prev, d, scale) if plan.gradients else None
        # The next hidden layer's bits, drawn one step ahead (after the last layer: unused).
        return (x, t, d, bad, bad_layer, under_layer, layers.bits(layer + 1)), (stats, keep)

    # Layer 0 sees phi' = 1 (multiplying the tangents by 1.0 is exact). When its shape is the hidden
    # layers', it runs inside the scan: one copy of the layer in the program, not two.
    # (*_like keeps the seed axis' sharding type under shard_map, which the scan's carry must match.)
    carry = (rows0[:, :batch], rows0[:, batch:], jnp.ones_like(rows0[:, :batch]),
             jnp.zeros_like(rows0[:, 0, 0], bool), jnp.full_like(rows0[:, 0, 0], -1, jnp.int32),
             jnp.full_like(rows0[:, 0, 0], -1, jnp.int32), layers.bits(0))
    in_scan = plan.depth > 1 and plan.layer_shape(0) == plan.layer_shape(1)
    if not in_scan:
        carry, (s0, keep0) = step(carry, 0)
    if plan.depth > 1:
        (x_last, t_last, _, bad, bad_layer, under_layer, _), (stats, kept) = jax.lax.scan(
            step, carry, jnp.arange(0 if in_scan else 1, plan.depth, dtype=jnp.int32))
    else:  # one hidden layer: no scan (its body would be traced with the readout's shape)
        (x_last, t_last, _, bad, bad_layer, under_layer, _), kept = carry, None
        stats = {k: v[None, :, ...][:0] for k, v in s0.items()}
    if in_scan:
        d1 = kept[1][0] if plan.gradients else None
        kept = jax.tree.map(lambda a: a[1:], kept) if plan.gradients else None
        out = {k: v.T for k, v in stats.items()}  # (combo, depth)
    else:
        d1 = keep0[1] if plan.gradients else None
        out = {k: jnp.concatenate([s0[k][:, None], stats[k].T], axis=1) for k in s0}
    out["first_nonfinite_layer"] = bad_layer
    out["first_underflow_layer"] = under_layer
    if plan.spectrum:
        jac = t_last[:, n_tangent - plan.in_dim:]  # (combo, in_dim, width): d h^depth / d x of input 0
        sv = singular_values(jnp.where(bad[:, None, None], 0.0, jac.astype(wide)))  # one matrix per LAPACK call
        out["spectrum"] = jnp.where(bad[:, None], jnp.nan, sv)
    if plan.gradients:
        gw, gh, readout = _backward(plan, layers, dkey, x0, d1, kept, x_last, bias_std)
        if plan.lsuv:  # the readout's fit (only the gradient probes' loss reads the readout)
            out["lsuv_variance"] = jnp.concatenate([out["lsuv_variance"], lsuv_variance(readout)[:, None]], axis=1)
        out["grad_w_norm"] = jnp.where(bad[:, None], jnp.nan, gw)
        out["grad_h_norm"] = jnp.where(bad[:, None], jnp.nan, gh)
        out["first_grad_underflow_layer"] = first_grad_underflow(out["grad_w_norm"], out["grad_h_norm"], tiny)
    return {k: v.reshape(plan.n_init, n_grid, *v.shape[1:]) for k, v in out.items()}


def _max_abs(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per combo (axis 0): ``(m, s)``, ``m`` the largest ``|entry|`` and ``s`` a safe divisor (``m``
    where it is positive and finite, else 1); shapes ``(k, 1, 1)``."""
    m = jnp.max(jnp.abs(a), axis=(1, 2), keepdims=True)
    return m, jnp.where((m > 0) & jnp.isfinite(m), m, 1.0)


def _gram_norm(a: jax.Array, b: jax.Array) -> jax.Array:
    """``||a_k^T b_k||_F`` per combo ``k`` via Gram matrices, ``O(batch^2 width)``.

    With ``a = s_a A`` and ``b = s_b B`` (``s`` the largest ``|entry|``, so ``A`` and ``B`` have
    entries in ``[-1, 1]``): ``||a^T b||_F = s_a (s_b sqrt(sum((A A^T) * (B B^T))))``. Scaling before
    squaring keeps the norm of any gradient whose entries are normal numbers non-zero (in float32 a
    square underflows below ~1e-19) and finite when the squares would overflow. Reduced in the
    probes' dtype (float32 for 16-bit dtypes) from the dtype's values.
    """
    dt = probes._stat_dtype(a.dtype)
    a, b = a.astype(dt), b.astype(dt)
    (ma, sa), (mb, sb) = _max_abs(a), _max_abs(b)
    a, b = a / sa, b / sb
    ga = jnp.einsum("kbi,kci->kbc", a, a, precision=HIGHEST)
    gb = jnp.einsum("kbo,kco->kbc", b, b, precision=HIGHEST)
    unit = jnp.sqrt(jnp.maximum(jnp.sum(ga * gb, axis=(1, 2)), 0.0))
    ma, sa, mb, sb = (v[:, 0, 0] for v in (ma, sa, mb, sb))
    return jnp.where(jnp.isfinite(ma) & jnp.isfinite(mb), sa * (sb * unit), ma * mb)


def first_grad_underflow(grad_w_norm: jax.Array, grad_h_norm: jax.Array, tiny: float) -> jax.Array:
    """Per combo: the layer where the backward pass lost the gradient, or -1.

    The backward pass runs from the readout toward the input, so this is the *largest* layer index
    ``l`` (0-based, counted from the input like ``first_underflow_layer``) whose ``grad_w_norm[l]``
    or ``grad_h_norm[l]`` is below ``tiny``, the smallest normal number of the network's dtype
    (zero included; float32 1.2e-38, float16 6.1e-5, bfloat16 1.2e-38). A norm below it means
    every entry of that gradient is subnormal or zero: layers ``0 .. l`` are (at least in part)
    not measured to the dtype's precision. NaN norms (a non-finite forward pass) never count.
    ``grad_*`` are ``(combos, depth)``; returns int32 ``(combos,)``.
    """
    under = (grad_w_norm < tiny) | (grad_h_norm < tiny)
    depth = under.shape[1]
    last = depth - 1 - jnp.argmax(under[:, ::-1], axis=1)
    return jnp.where(jnp.any(under, axis=1), last, -1).astype(jnp.int32)


def _backward(plan, layers, dkey, x0, d1, kept, x_last, bias_std):
    """Reverse scan: ||dL/dW_l||_F and ||dL/dh_l||_F for every hidden layer and combo.

    Backpropagation runs in the network's dtype (a low-precision network's gradients are rounded as
    ``jax.grad`` of that network rounds them); the norms are reduced in the probes' dtype, scaled
    by the largest entry first (:func:`_gram_norm`, :func:`jaxinit.probes._fro`).
    """
    batch = x0.shape[0]
    bias = layers.bias(plan.depth, bias_std)
    y, scale = layers.fitted(layers.linear(x_last, plan.depth), x_last, plan.depth, None, bias, batch)
    y = y + bias[:, None, :]
    dy = readout_loss_grad(plan, y, dkey)
    delta_x = layers.linear_t(dy, plan.depth, scale)  # dL/dx^depth

    def back(delta_x, xs):
        layer, x_in, dphi, scale = xs
        delta_h = delta_x * dphi
        gw = _gram_norm(x_in, delta_h)
        gh = probes._fro(delta_h, (1, 2))
        return layers.linear_t(delta_h, layer, scale), (gw, gh)

    if plan.depth > 1:
        x_in, dphi, scales = kept
        delta_x, (gw, gh) = jax.lax.scan(back, delta_x, (jnp.arange(1, plan.depth, dtype=jnp.int32), x_in, dphi,
                                                         scales), reverse=True)
    else:
        gw = gh = jnp.zeros((0, delta_x.shape[0]), probes._stat_dtype(delta_x.dtype))
    delta_h1 = delta_x * d1
    x0b = jnp.broadcast_to(x0, (delta_h1.shape[0], batch, x0.shape[1]))
    gw0 = _gram_norm(x0b, delta_h1)
    gh0 = probes._fro(delta_h1, (1, 2))
    return (jnp.concatenate([gw0[:, None], gw.T], axis=1), jnp.concatenate([gh0[:, None], gh.T], axis=1), y)
