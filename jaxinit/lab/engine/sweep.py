"""The sweep engine: seeds x initializers x grid points through depth, in one compiled program.

Structure of one compiled program (one per distinct (depth, width, activation)):

* seeds are mapped with ``lax.map(..., batch_size=block)`` (:class:`ChunkPlan`): every seed is computed inside a
  vmap of the same fixed width, so a seed's numbers do not depend on the chunk it landed in (chunks
  are padded to a multiple of the block and sharded over local devices with ``shard_map``);
* per seed, a ``lax.scan`` over layers draws each layer's weights inside the step from
  ``fold_in(fold_in(root_key, seed), layer)``: memory and compile time do not grow with depth;
* every (initializer, grid point) pair of the seed — a *combo* — runs in the same step. Initializers
  that share a base distribution (he/glorot/lecun normals, ``normal(stddev)``, ...) are *common
  random numbers*: the raw noise of a layer is drawn once per group and each combo applies its own
  factor to the matmul's output, ``h = f_k (x @ Z) + b``. One large matmul per group and layer
  replaces one per initializer. Groups whose draws are maps of ``jax.random.bits`` of one shape
  (normal, truncated normal and uniform noise, orthogonal's Gaussian: ``BaseInitializer.bits_shape``)
  share the layer's bits, so the random-bit generator runs once per layer for all of them;
* gradient probes run a second, reversed scan that regenerates each layer's weights from its key
  and keeps only the post-activations of the forward pass (``O(depth * batch * width)`` per combo,
  never ``O(depth * width^2)``).

The weights a combo sees are exactly ``init(fold_in(seed_key, l), shape)`` scaled by the grid's
factor (bit for bit when no grid factor applies: see :func:`layer_weights`), so the sweep, the
functional MLP in :mod:`jaxinit.nets` and a user's own call agree. The engine never forms them:
it computes ``f_k (rows @ Z)``, and an initializer that can apply its draw without forming it
does so (:meth:`~jaxinit.initializers.BaseInitializer.apply_from_bits`; orthogonal applies its
Householder reflectors), so products agree with the formed weights' up to rounding. Non-finite values are recorded
(``first_nonfinite_layer``) and masked to NaN after that layer; they never raise. Underflow is
recorded too (``first_underflow_layer``: the first layer whose q fell below the smallest normal
number of the network's dtype, zero included), without masking: a signal that vanished to 0
measures as 0. Gradient underflow likewise (``first_grad_underflow_layer``: see
:func:`first_grad_underflow`).

Dtypes (:func:`precision_note`, recorded in ``meta.json``): noise is drawn and scaled in the
initializer's wide dtype (float32; float64 for float64). float32 and float64 networks run the
factored product above. A bfloat16/float16 network is computed as that network: each combo's
weights ``W_k = (f_k Z).astype(dtype)`` are formed (the initializer's own draw in the dtype, bit
for bit), inputs are rounded once to the dtype, and matmuls (``precision=HIGHEST``, accumulated as
XLA does on the device), bias adds, activations, tangents and backpropagation run in the dtype.
Every probe is reduced in float32 (float64 for float64) from the dtype's values; gradient norms
are scaled by their largest entry before squaring, so a gradient with a normal entry has a
non-zero norm. Integer arrays are int32 and constants are cast to the wide dtype, so a float32
sweep under ``JAX_ENABLE_X64`` gives the same numbers bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit import probes
from jaxinit._linalg import singular_values
from jaxinit._prng import DATA_BRANCH, fold_in
from jaxinit.initializers import BaseInitializer
from jaxinit.initializers._base import InitializerNoise, SharedNoise, wide_dtype
from jaxinit.initializers._random import random_bits, raw_sample
from jaxinit.lab.config import READOUT_DIM
from jaxinit.nets import layer_keys

HIGHEST = jax.lax.Precision.HIGHEST



# ---------------------------------------------------------------------------------------------
# Common random numbers: which initializers share raw noise, and with which factor
# ---------------------------------------------------------------------------------------------
# The engine's name for the catalog's shared noise (``kind``, ``draw``, ``bits_shape``, ``from_bits``,
# ``apply_from_bits``): the catalog says which initializers share it.
NoiseGroup = SharedNoise


def noise_group(init: BaseInitializer, shape: Sequence[int], dtype) -> tuple[SharedNoise, float]:
    """``(noise, factor)`` with ``init(key, shape) == noise.draw(key, shape) * factor`` bit for bit.

    The initializer says which shared noise it is a scaled copy of
    (:meth:`~jaxinit.initializers.BaseInitializer.shared_noise`); one that shares none is its own
    noise with factor 1.
    """
    shared = init.shared_noise(shape, dtype)
    return shared if shared is not None else (InitializerNoise(init), 1.0)


# ---------------------------------------------------------------------------------------------
# The static description of one compiled program
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything static about one program; hashable, so it is a jit static argument."""

    depth: int
    width: int
    in_dim: int
    out_dim: int
    batch: int  # rows fed to each network (pairs count twice)
    activation: Callable[..., Any]
    initializers: tuple[BaseInitializer, ...]
    bias_init: BaseInitializer
    dtype: str = "float32"
    input_kind: str = "gaussian"
    correlation: float = 0.0
    q0: float = 1.0
    forward: bool = True
    gradients: bool = True
    jacobian: bool = False
    spectrum: bool = False
    loss: str = "mse"
    num_projections: int = 1
    # Whether grid points set sigma_b^2: only then is the per-layer bias noise drawn (static, so a
    # sweep without a bias grid compiles no bias random numbers).
    grid_bias: bool = False

    @property
    def n_init(self) -> int:
        return len(self.initializers)

    def layer_shape(self, layer: int) -> tuple[int, int]:
        if layer == 0:
            return (self.in_dim, self.width)
        if layer == self.depth:
            return (self.width, self.out_dim)
        return (self.width, self.width)

    def groups(self, layer: int) -> tuple[tuple[NoiseGroup, ...], np.ndarray, np.ndarray]:
        """Distinct noise groups for ``layer``, each initializer's group index and factor."""
        shape = self.layer_shape(layer)
        groups: list[NoiseGroup] = []
        index, factor = [], []
        for init in self.initializers:
            g, f = noise_group(init, shape, np.dtype(self.dtype))
            if g not in groups:
                groups.append(g)
            index.append(groups.index(g))
            factor.append(f)
        return tuple(groups), np.asarray(index), np.asarray(factor, np.float64)

    def bit_streams(self, layer: int) -> dict[tuple[int, ...], list[int]]:
        """The random-bits streams of ``layer``: each bits shape and the groups (indices into
        :meth:`groups`) that map it. A group absent from every list draws its own noise."""
        shape = self.layer_shape(layer)
        streams: dict[tuple[int, ...], list[int]] = {}
        for g, group in enumerate(self.groups(layer)[0]):
            bits_shape = group.bits_shape(shape, np.dtype(self.dtype))
            if bits_shape is not None:
                streams.setdefault(bits_shape, []).append(g)
        return streams

    def second_moment(self, layer: int) -> np.ndarray:
        """E[W^2] per initializer at ``layer`` (what a weight_variance grid point rescales)."""
        shape = self.layer_shape(layer)
        return np.asarray([i.variance(shape) + i.mean(shape) ** 2 for i in self.initializers])


def seed_key(base_seed: int, seed: jax.Array) -> jax.Array:
    """The key of network ``seed``: ``fold_in(key(base_seed), seed)``; layer l uses ``fold_in(., l)``."""
    return fold_in(jax.random.key(base_seed), seed)


def data_key(base_seed: int, seed: jax.Array) -> jax.Array:
    """Inputs and targets of network ``seed``: a branch of the root key no layer key uses."""
    return fold_in(fold_in(jax.random.key(base_seed), DATA_BRANCH), seed)


def layer_weights(plan: Plan, key: jax.Array, layer: int, init_index: int) -> jax.Array:
    """The weights initializer ``init_index`` gives ``layer`` of the network with ``key``.

    Equals ``plan.initializers[init_index](fold_in(key, layer), shape, dtype)`` bit for bit; the
    engine never forms this matrix, it applies the factor after the matmul. Compiled, as an eager
    initializer call is (a fused multiply may round differently op by op).
    """
    return _layer_weights(plan, key, layer, init_index)


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _layer_weights(plan: Plan, key: jax.Array, layer: int, init_index: int) -> jax.Array:
    groups, index, factor = plan.groups(layer)
    shape = plan.layer_shape(layer)
    dtype = np.dtype(plan.dtype)
    raw = groups[index[init_index]].draw(fold_in(key, layer), shape, dtype)
    wide = wide_dtype(dtype)
    return (raw * jnp.asarray(factor[init_index], wide)).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def _digits(batch: int) -> np.ndarray:
    from sklearn.datasets import load_digits  # optional dependency: only for kind = "digits"

    x = load_digits().data[:batch].astype(np.float64)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-8)
    return x / np.sqrt(np.mean(x**2))


def make_inputs(plan: Plan, key: jax.Array) -> jax.Array:
    """Inputs of one network, shape ``(batch, in_dim)``, second moment ``q0``.

    Rows come in pairs (0, 1), (2, 3), ...: for ``pairs`` each pair has exactly the correlation
    ``correlation`` and second moment ``q0`` (:func:`jaxinit.probes.paired_inputs`); for
    ``gaussian`` the rows are independent N(0, q0) (pair correlation ~0).
    """
    wide = wide_dtype(np.dtype(plan.dtype))
    if plan.input_kind == "digits":
        return jnp.asarray(_digits(plan.batch) * math.sqrt(plan.q0), wide)
    if plan.input_kind == "pairs":
        x = probes.paired_inputs(key, plan.batch // 2, plan.in_dim, plan.correlation, plan.q0, wide)
        return jnp.swapaxes(x, 0, 1).reshape(plan.batch, plan.in_dim)
    return raw_sample("normal", key, (plan.batch, plan.in_dim), wide) * jnp.asarray(math.sqrt(plan.q0), wide)


# ---------------------------------------------------------------------------------------------
# One seed: forward scan (with tangents), reversed scan for gradients
# ---------------------------------------------------------------------------------------------
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


class _Layers:
    """The per-layer linear maps of one seed: ``f_k (rows_k @ Z_l)`` and its transpose, one matmul
    per noise group. Combos are laid out initializer-major: k = i * n_grid + g."""

    def __init__(self, plan: Plan, key: jax.Array, weight_variance: jax.Array):
        self.plan, self.key = plan, key
        self.n_grid = weight_variance.shape[0]
        self.dtype = np.dtype(plan.dtype)
        self.wide = wide_dtype(self.dtype)
        # Low-precision dtypes (bfloat16, float16) form each combo's weights: rounding f_k Z to the
        # dtype does not commute with the factor, so f_k (rows @ Z) would not be the network's product.
        self.formed = self.dtype != self.wide
        # Layers 1..depth-1 share shape, groups and factors; 0 and the readout (depth) have their own.
        self.table, self.streams = {}, {}
        for layer in {0, min(1, plan.depth), plan.depth}:
            groups, index, factor = plan.groups(layer)
            self.streams[layer] = plan.bit_streams(layer)
            fan_in = plan.layer_shape(layer)[0]
            m2 = plan.second_moment(layer)
            # A grid weight_variance sets sigma_w^2 = fan_in * E[W^2]; an initializer with E[W^2] = 0
            # (zeros) cannot be rescaled and keeps its own weights.
            keep = jnp.isnan(weight_variance)[None, :] | (m2[:, None] == 0)
            # (Constants in the wide dtype: under JAX_ENABLE_X64 a float32 sweep computes the same factors.)
            denom = jnp.asarray((fan_in * np.where(m2 == 0, 1.0, m2))[:, None], self.wide)
            target = jnp.nan_to_num(weight_variance)[None, :] / denom
            rescale = jnp.where(keep, 1.0, jnp.sqrt(target))
            f = (jnp.asarray(factor, self.wide)[:, None] * rescale).reshape(-1).astype(self.wide)
            self.table[layer] = (groups, index, f)

    def _static(self, layer) -> int:
        """The layer whose shape, groups and factors ``layer`` has (a traced index: a hidden layer)."""
        return layer if isinstance(layer, int) and layer in (0, self.plan.depth) else 1

    def _entry(self, layer):
        return self.table[self._static(layer)]

    def bits(self, layer) -> dict[tuple[int, ...], jax.Array]:
        """The random bits of ``layer``, one stream per bits shape, shared by the groups that map it.

        The forward scan draws the next layer's bits one step ahead and carries them: a bits array
        that two groups consume is then read from memory, where XLA would otherwise recompute the
        hash inside each consumer's fused kernel.
        """
        lkey = fold_in(self.key, layer)
        return {s: random_bits(lkey, s, self.wide) for s in self.streams[self._static(layer)]}

    def _grouped(self, rows, layer, transpose: bool, bits=None):
        if self.formed:
            return self._formed(rows, layer, transpose, bits)
        plan = self.plan
        groups, index, f = self._entry(layer)
        shape = plan.layer_shape(self._static(layer))
        stream_of = {g: s for s, members in self.streams[self._static(layer)].items() for g in members}
        r = rows.reshape(plan.n_init, self.n_grid, *rows.shape[1:])
        out = [None] * plan.n_init
        bits = self.bits(layer) if bits is None else bits
        for g, group in enumerate(groups):
            members = [i for i in range(plan.n_init) if index[i] == g]
            bits_shape = stream_of.get(g)
            rm = r[np.asarray(members)]
            if bits_shape is None:
                z = group.draw(fold_in(self.key, layer), shape, self.dtype).astype(self.wide)
                y = jnp.einsum("mgbo,io->mgbi" if transpose else "mgbi,io->mgbo", rm, z, precision=HIGHEST)
            else:
                flat = rm.reshape(-1, rm.shape[-1])
                y = group.apply_from_bits(bits[bits_shape], flat, shape, self.dtype, transpose)
                y = y.reshape(*rm.shape[:-1], y.shape[-1])
            for j, i in enumerate(members):
                out[i] = y[j]
        y = jnp.stack(out).reshape(rows.shape[0], rows.shape[1], -1)
        return y * f[:, None, None]

    def _formed(self, rows, layer, transpose: bool, bits=None):
        """``rows_k @ W_k`` with ``W_k = (f_k Z).astype(dtype)`` formed per combo, operands and result in
        the (low-precision) dtype: the network's own product, ``W = init(key, shape, dtype)`` (drawn
        wide, rounded once) times activations in the dtype, accumulated as XLA does on the device."""
        plan = self.plan
        groups, index, f = self._entry(layer)
        static = self._static(layer)
        shape = plan.layer_shape(static)
        stream_of = {g: s for s, members in self.streams[static].items() for g in members}
        bits = self.bits(layer) if bits is None else bits
        z = []
        for g, group in enumerate(groups):
            if g in stream_of:
                z.append(group.from_bits(bits[stream_of[g]], shape, self.dtype))
            else:
                z.append(group.draw(fold_in(self.key, layer), shape, self.dtype))
        z = jnp.stack([a.astype(self.wide) for a in z])[np.asarray(index)]  # (n_init, fan_in, fan_out)
        w = z[:, None] * f.reshape(plan.n_init, self.n_grid)[:, :, None, None]
        w = w.astype(self.dtype).reshape(-1, *shape)
        eq = "kbo,kio->kbi" if transpose else "kbi,kio->kbo"
        return jnp.einsum(eq, rows.astype(self.dtype), w, precision=HIGHEST)

    def linear(self, rows, layer, bits=None):
        """f_k (rows_k @ Z_layer) for every combo k; rows: (combos, n, fan_in); ``bits``: the layer's
        :meth:`bits` when already drawn. In a low-precision dtype the weights are formed and rounded
        first (:meth:`_formed`)."""
        return self._grouped(rows, layer, transpose=False, bits=bits)

    def linear_t(self, rows, layer):
        """f_k (rows_k @ Z_layer^T): the transpose map, for backpropagation."""
        return self._grouped(rows, layer, transpose=True)

    def bias(self, layer, bias_std):
        """Per-combo bias: the bias initializer's, or N(0, sigma_b^2) where the grid sets sigma_b^2."""
        plan = self.plan
        bkey = layer_keys(self.key, layer)[1]  # the functional MLP's bias key (jaxinit.nets)
        own = plan.bias_init(bkey, (plan.layer_shape(self._static(layer))[1],), self.dtype)
        if not plan.grid_bias:
            return jnp.broadcast_to(own, (bias_std.shape[0], own.shape[0]))
        # N(0, sigma_b^2) drawn in the wide dtype and rounded once, as normal(sigma_b)(key, shape, dtype).
        noise = raw_sample("normal", bkey, own.shape, self.wide)
        b = jnp.where(jnp.isnan(bias_std)[:, None], own.astype(self.wide)[None, :],
                      jnp.nan_to_num(bias_std)[:, None] * noise)
        return b.astype(self.dtype)


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
        """Affine map of activations + linear map of tangents (tangents scaled by phi' first)."""
        if dphi_prev is not None and n_tangent:
            t = pre_rows[:, batch:]
            if plan.jacobian:
                dp = jnp.tile(dphi_prev, (1, plan.num_projections, 1))
                tj = t[:, :plan.num_projections * batch] * dp
                t = jnp.concatenate([tj, t[:, plan.num_projections * batch:] * dphi_prev[:, :1]], axis=1)
            else:
                t = t * dphi_prev[:, :1]
            pre_rows = jnp.concatenate([pre_rows[:, :batch], t], axis=1)
        y = layers.linear(pre_rows, layer, bits)
        h = y[:, :batch] + layers.bias(layer, bias_std)[:, None, :]
        return h, y[:, batch:]

    # The network's dtype's own limits: q below its smallest normal is underflow (float16: 6.1e-5).
    tiny = float(jnp.finfo(dtype).tiny)

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
        h, t = layer_out(jnp.concatenate([x_prev, t_prev], axis=1), layer, d_prev, bits)
        x, d, stats, bad, bad_layer, under_layer = measure(h, t, bad, bad_layer, under_layer, layer)
        keep = (x_prev, d) if plan.gradients else None
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
    (x_last, t_last, _, bad, bad_layer, under_layer, _), (stats, kept) = jax.lax.scan(
        step, carry, jnp.arange(0 if in_scan else 1, plan.depth, dtype=jnp.int32))
    if in_scan:
        d1 = kept[1][0] if plan.gradients else None
        kept = (kept[0][1:], kept[1][1:]) if plan.gradients else None
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
        gw, gh = _backward(plan, layers, dkey, x0, d1, kept, x_last, bias_std)
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


def readout_loss_grad(plan: Plan, y: jax.Array, dkey: jax.Array) -> jax.Array:
    """dL/dy for the stated loss, in ``y``'s dtype. mse: mean over batch and outputs of
    (y - t)^2, t ~ N(0, 1) (drawn in the wide dtype, rounded once); xent: mean over the batch of
    softmax cross-entropy with uniform random labels (int32 draws, the same under x64)."""
    tkey = fold_in(dkey, 2)
    if plan.loss == "mse":
        target = raw_sample("normal", tkey, y.shape[1:], wide_dtype(np.dtype(plan.dtype))).astype(y.dtype)
        return 2.0 * (y - target[None]) / (y.shape[1] * y.shape[2])
    labels = jax.random.randint(tkey, (y.shape[1],), 0, plan.out_dim, dtype=jnp.int32)
    return (jax.nn.softmax(y, axis=-1) - jax.nn.one_hot(labels, plan.out_dim, dtype=y.dtype)[None]) / y.shape[1]


def _backward(plan, layers, dkey, x0, d1, kept, x_last, bias_std):
    """Reverse scan: ||dL/dW_l||_F and ||dL/dh_l||_F for every hidden layer and combo.

    Backpropagation runs in the network's dtype (a low-precision network's gradients are rounded as
    ``jax.grad`` of that network rounds them); the norms are reduced in the probes' dtype, scaled
    by the largest entry first (:func:`_gram_norm`, :func:`jaxinit.probes._fro`).
    """
    batch = x0.shape[0]
    y = layers.linear(x_last, plan.depth) + layers.bias(plan.depth, bias_std)[:, None, :]
    dy = readout_loss_grad(plan, y, dkey)
    delta_x = layers.linear_t(dy, plan.depth)  # dL/dx^depth

    def back(delta_x, xs):
        layer, x_in, dphi = xs
        delta_h = delta_x * dphi
        gw = _gram_norm(x_in, delta_h)
        gh = probes._fro(delta_h, (1, 2))
        return layers.linear_t(delta_h, layer), (gw, gh)

    if plan.depth > 1:
        x_in, dphi = kept
        delta_x, (gw, gh) = jax.lax.scan(back, delta_x,
                                         (jnp.arange(1, plan.depth, dtype=jnp.int32), x_in, dphi), reverse=True)
    else:
        gw = gh = jnp.zeros((0, delta_x.shape[0]), probes._stat_dtype(delta_x.dtype))
    delta_h1 = delta_x * d1
    x0b = jnp.broadcast_to(x0, (delta_h1.shape[0], batch, x0.shape[1]))
    gw0 = _gram_norm(x0b, delta_h1)
    gh0 = probes._fro(delta_h1, (1, 2))
    return (jnp.concatenate([gw0[:, None], gw.T], axis=1), jnp.concatenate([gh0[:, None], gh.T], axis=1))


def accumulation_dtype(dtype: Any) -> str:
    """The dtype XLA accumulates a ``dtype`` matmul in on the default device, measured.

    float32 and float64 matmuls run at ``precision=HIGHEST``: in the dtype itself. For a 16-bit
    dtype with ``m`` mantissa bits, one batched product of the engine's form sums
    ``1 + 62 e - 1`` with ``e = 2^-(m + 2)``: ``1 + e`` rounds to 1 in the dtype, so partial sums
    kept in the dtype lose the ``e``'s (0 or a few ``e``), while float32 partial sums give exactly
    ``62 e`` (representable in the dtype). Returns ``"float32"`` or the dtype's name.
    """
    d = np.dtype(dtype)
    if d == wide_dtype(d):
        return d.name
    e = 2.0 ** -(int(jnp.finfo(d).nmant) + 2)
    row = np.full(64, e)
    row[0], row[-1] = 1.0, -1.0
    a = jnp.asarray(np.stack([row, row[::-1], np.roll(row, 17)]), d)[None]
    y = jax.jit(lambda a, w: jnp.einsum("kbi,kio->kbo", a, w, precision=HIGHEST))(a, jnp.ones((1, 64, 1), d))
    return "float32" if bool(jnp.all(y.astype(jnp.float32) == np.float32(62 * e))) else d.name


def precision_note(dtype: Any) -> dict[str, Any]:
    """What dtype each part of a sweep's computation uses (``meta.json``'s ``"precision"``).

    ``draw``: noise sampled and scaled (the initializer's wide dtype); ``weights``: what the
    network holds; ``matmul``: operands and result, and ``accumulation`` as measured on the device
    (:func:`accumulation_dtype`); ``activations``: pre-activations, activations, tangents and
    backpropagated gradients; ``reductions``: the probes' statistics and norms; ``smallest_normal``:
    the underflow threshold of ``q`` and of the gradient norms; overflow is a non-finite value in
    the dtype.
    """
    d = np.dtype(dtype)
    wide = wide_dtype(d)
    factored = d == wide
    return {
        "dtype": d.name,
        "draw": wide.name,
        "weights": (f"{d.name}, not formed: f_k (rows @ Z), the formed weights' product up to rounding" if factored
                    else f"{d.name}: the {wide.name} draw rounded once, formed per initializer and grid point"),
        "matmul": f"{d.name} operands and result, precision=HIGHEST",
        "accumulation": accumulation_dtype(d),
        "activations": d.name,
        "reductions": np.dtype(probes._stat_dtype(d)).name,
        "smallest_normal": float(jnp.finfo(d).tiny),
        "largest": float(jnp.finfo(d).max),
    }


# ---------------------------------------------------------------------------------------------
# Programs, chunks and devices
# ---------------------------------------------------------------------------------------------
OUT_DIM = READOUT_DIM  # the readout the gradient probes' loss reads (the config's, one home)


def plan_for(config, program) -> Plan:
    """The static :class:`Plan` of one program of a validated :class:`~jaxinit.config.SweepConfig`."""
    inputs, probes = config.inputs, config.probes
    in_dim = config.in_dim(program)
    return Plan(
        depth=program.depth, width=program.width, in_dim=in_dim, out_dim=OUT_DIM, batch=inputs.n_inputs,
        activation=program.activation, initializers=tuple(e.init for e in config.sweep.initializers),
        bias_init=config.network.bias.init, dtype=config.network.dtype, input_kind=inputs.kind,
        correlation=float(inputs.correlation or 0.0), q0=inputs.q0, forward=probes.forward,
        gradients=probes.gradients, jacobian=probes.jacobian, spectrum=probes.spectrum, loss=probes.loss,
        grid_bias="bias_variance" in config.grid.params if config.grid is not None else False,
    )


def grid_arrays(points: Sequence[dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Grid points as (weight_variance, bias_variance) arrays; NaN where a point leaves it unset."""
    wv = np.asarray([p.get("weight_variance", np.nan) for p in points], np.float64)
    bv = np.asarray([p.get("bias_variance", np.nan) for p in points], np.float64)
    return wv, bv


def bytes_per_seed(plan: Plan, n_grid: int) -> int:
    """Rough peak working set of one seed in flight (activations, tangents, kept layers, weights)."""
    item = np.dtype(wide_dtype(np.dtype(plan.dtype))).itemsize
    combos = plan.n_init * n_grid
    rows = plan.batch * (1 + (plan.num_projections if plan.jacobian else 0)) + (plan.in_dim if plan.spectrum else 0)
    live = 8 * combos * rows * max(plan.width, plan.in_dim)
    kept = 2 * (plan.depth - 1) * combos * plan.batch * plan.width if plan.gradients else 0
    weights = 3 * len(plan.groups(min(1, plan.depth))[0]) * plan.width * max(plan.width, plan.in_dim)
    if np.dtype(plan.dtype) != wide_dtype(np.dtype(plan.dtype)):  # bfloat16/float16: formed per combo
        weights += 2 * combos * plan.width * max(plan.width, plan.in_dim)
    grams = 4 * combos * plan.batch * plan.batch if plan.gradients else 0
    return item * (live + kept + weights + grams)


def default_memory_budget() -> int:
    """Bytes for the seeds in flight: half the accelerator's memory, or 2 GiB on the CPU."""
    device = jax.local_devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001 - CPU backends may not implement memory_stats
        stats = {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"] * 0.5)
    return 2 * 1024**3


def seeds_in_flight(plan: Plan, n_grid: int, budget: int) -> int:
    """Seeds computed together in one vmap (a power of two); fixed per program, so every seed's
    numbers are the same whichever chunk it lands in. The CPU gains nothing beyond 4."""
    cap = 4 if jax.default_backend() == "cpu" else 64
    fit = max(1, budget // max(1, bytes_per_seed(plan, n_grid)))
    block = 1
    while block * 2 <= min(cap, fit):
        block *= 2
    return block


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
    """How one program's seeds are cut: ``block`` seeds per vmap, ``size`` seeds per chunk."""

    block: int
    size: int
    devices: int

    def chunks(self, seeds: Sequence[int]) -> list[list[int]]:
        return [list(seeds[i:i + self.size]) for i in range(0, len(seeds), self.size)]


def chunk_plan(plan: Plan, n_grid: int, n_seeds: int, chunk: int = 0, memory_budget_mb: float | None = None,
               devices: int | None = None) -> ChunkPlan:
    """Seeds in flight from the memory budget; chunk size a multiple of block x devices.

    By default every local device takes part, but no more devices than there are blocks of seeds
    (more would only compute padding).
    """
    budget = int(memory_budget_mb * 2**20) if memory_budget_mb else default_memory_budget()
    if devices is None:
        devices = jax.local_device_count()
        block = min(seeds_in_flight(plan, n_grid, budget // devices), max(1, n_seeds))
        devices = max(1, min(devices, -(-n_seeds // block)))
    block = min(seeds_in_flight(plan, n_grid, budget // devices), max(1, n_seeds))
    unit = block * devices
    if chunk <= 0:  # about eight chunks: progress to see, and little lost to an interruption
        chunk = max(unit, -(-n_seeds // 8))
    size = -(-chunk // unit) * unit
    return ChunkPlan(block=block, size=size, devices=devices)


def compile_program(plan: Plan, chunks: ChunkPlan, n_grid: int):
    """One compiled program: (base_seed, seed ids of a chunk, grid arrays) -> per-combo arrays.

    Returns ``(compiled, seconds)``. Outputs have the seed axis first: ``(chunk, n_init, n_grid, ...)``.
    """
    lowered, seconds = lower_program(plan, chunks, n_grid)
    start = time.perf_counter()
    compiled = lowered.compile()
    return compiled, seconds + time.perf_counter() - start


def lower_program(plan: Plan, chunks: ChunkPlan, n_grid: int):
    """The traced and lowered program (tracing holds the GIL; XLA compilation, after, does not)."""
    def per_chunk(base_seed, seeds, wv, bv):
        return jax.lax.map(lambda s: _seed_measure(plan, base_seed, s, wv, bv), seeds, batch_size=chunks.block)

    fn, seed_sharding = per_chunk, None
    if chunks.devices > 1:
        # Each device maps over its own slice of the chunk's seeds with the same per-seed program.
        mesh = jax.make_mesh((chunks.devices,), ("seeds",), devices=jax.local_devices()[:chunks.devices])
        P = jax.sharding.PartitionSpec
        seed_sharding = jax.sharding.NamedSharding(mesh, P("seeds"))
        fn = jax.shard_map(per_chunk, mesh=mesh, in_specs=(P(), P("seeds"), P(), P()), out_specs=P("seeds"))
    wide = wide_dtype(np.dtype(plan.dtype))
    args = (jax.ShapeDtypeStruct((), jnp.uint32),
            jax.ShapeDtypeStruct((chunks.size,), jnp.int32, sharding=seed_sharding),
            jax.ShapeDtypeStruct((n_grid,), wide), jax.ShapeDtypeStruct((n_grid,), wide))
    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    return lowered, time.perf_counter() - start


def measure_chunk(compiled, plan: Plan, chunks: ChunkPlan, base_seed: int, seed_ids: Sequence[int],
                  wv: np.ndarray, bv: np.ndarray) -> dict[str, np.ndarray]:
    """Run one chunk (padded to the compiled size with repeats of its last seed) and return numpy
    arrays shaped ``(n_init, n_grid, len(seed_ids), ...)`` as the results folder stores them."""
    n = len(seed_ids)
    bias_values = np.asarray(bv, np.float64)
    if not plan.grid_bias and not np.isnan(bias_values).all():
        raise ValueError(f"bias_variance grid values {bias_values.tolist()} need a program compiled with "
                         "Plan(grid_bias=True); this one draws no bias noise.")
    padded = np.asarray(list(seed_ids) + [seed_ids[-1]] * (chunks.size - n), np.int32)
    wide = wide_dtype(np.dtype(plan.dtype))
    seeds = jnp.asarray(padded)
    if chunks.devices > 1:
        seeds = jax.device_put(seeds, compiled.input_shardings[0][1])
    out = compiled(np.uint32(base_seed), seeds, np.asarray(wv, wide), np.asarray(bv, wide))
    return {k: np.moveaxis(np.asarray(v)[:n], 0, 2) for k, v in out.items()}

def _crn_note(plans: dict[str, Plan]) -> dict[str, dict[str, Any]]:
    """Per program, at a hidden layer: which initializers share raw noise (one draw per layer,
    different factors: ``groups``), and which groups map one shared random-bits stream
    (``shared_bits``: lists of group indices; a group absent from every list draws its own)."""
    note = {}
    for pid, plan in plans.items():
        layer = min(1, plan.depth)
        groups, index, _ = plan.groups(layer)
        note[pid] = {
            "groups": [[repr(plan.initializers[i]) for i in range(plan.n_init) if index[i] == g]
                       for g in range(len(groups))],
            "shared_bits": list(plan.bit_streams(layer).values()),
        }
    return note
