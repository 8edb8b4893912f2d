"""The per-layer linear maps of one seed: ``f_k (rows_k @ Z_l)`` per noise group, and the bias."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._prng import fold_in
from jaxinit.initializers._base import wide_dtype
from jaxinit.initializers._random import random_bits, raw_sample
from jaxinit.lab.engine.sweep.plan import Plan
from jaxinit.nets import layer_keys

HIGHEST = jax.lax.Precision.HIGHEST


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

    def _grouped(self, rows, layer, transpose: bool, bits=None, scale=None):
        if self.formed:
            return self._formed(rows, layer, transpose, bits, scale)
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
        y = jnp.stack(out).reshape(rows.shape[0], rows.shape[1], -1) * f[:, None, None]
        return y if scale is None else y * scale[:, None, None]

    def _formed(self, rows, layer, transpose: bool, bits=None, scale=None):
        """``rows_k @ W_k`` with ``W_k = (f_k Z).astype(dtype)`` formed per combo, operands and result in
        the (low-precision) dtype: the network's own product, ``W = init(key, shape, dtype)`` (drawn
        wide, rounded once) times activations in the dtype, accumulated as XLA does on the device.
        An LSUV ``scale`` rescales the formed weights as :func:`jaxinit.lsuv` does,
        ``(W.astype(wide) * s).astype(dtype)``."""
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
        if scale is not None:
            w = (w.astype(self.wide) * scale[:, None, None]).astype(self.dtype)
        eq = "kbo,kio->kbi" if transpose else "kbi,kio->kbo"
        return jnp.einsum(eq, rows.astype(self.dtype), w, precision=HIGHEST)

    def linear(self, rows, layer, bits=None, scale=None):
        """f_k (rows_k @ Z_layer) for every combo k; rows: (combos, n, fan_in); ``bits``: the layer's
        :meth:`bits` when already drawn; ``scale``: per combo, the layer's LSUV scale (:meth:`fit`).
        In a low-precision dtype the weights are formed and rounded first (:meth:`_formed`)."""
        return self._grouped(rows, layer, transpose=False, bits=bits, scale=scale)

    def linear_t(self, rows, layer, scale=None):
        """f_k (rows_k @ Z_layer^T): the transpose map, for backpropagation (``scale`` as :meth:`linear`)."""
        return self._grouped(rows, layer, transpose=True, scale=scale)

    def fit(self, z, bias):
        """LSUV's scale of one layer for every combo: ``(combos,)``, 1 for a combo whose initializer is
        not LSUV.

        ``z``: the layer's output on the batch rows without the bias, ``(combos, batch, width)``, at
        the drawn (and grid-rescaled) weights; ``bias``: ``(combos, width)``. Each LSUV entry runs
        :meth:`jaxinit.lsuv.LSUV.fit_scale` under ``vmap`` over its grid points: each member iterates
        on its own; earlier layers were already fitted (the forward scan carries their outputs).
        """
        parts = []
        fits = dict(self.plan.lsuv)
        for i in range(self.plan.n_init):
            rows = slice(i * self.n_grid, (i + 1) * self.n_grid)
            if i in fits:
                s, _, _ = jax.vmap(fits[i].fit_scale)(z[rows], bias[rows][:, None, :])
                parts.append(s.astype(self.wide))
            else:
                parts.append(jnp.ones((self.n_grid,), self.wide))
        return jnp.concatenate(parts)

    def fitted(self, y, rows, layer, bits, bias, batch):
        """``(y', s)``: the layer's output ``y = linear(rows, layer)`` after LSUV's fit on its first
        ``batch`` rows (``y`` unchanged and ``s`` None when the plan has no LSUV entry). The scale
        multiplies the product (float32/float64) or the formed weights (16-bit dtypes: the
        network's own product, a second matmul)."""
        if not self.plan.lsuv:
            return y, None
        s = self.fit(y[:, :batch], bias)
        if self.formed:
            return self.linear(rows, layer, bits, scale=s), s
        return y * s[:, None, None].astype(y.dtype), s

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
