"""The static description of one sweep program: noise groups (common random numbers), the
:class:`Plan`, the key scheme of seeds and layers, and the weights a member sees."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit._prng import DATA_BRANCH, fold_in
from jaxinit.initializers import BaseInitializer
from jaxinit.initializers._base import InitializerNoise, SharedNoise, wide_dtype

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
