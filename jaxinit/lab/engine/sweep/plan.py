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
from jaxinit.lsuv import LSUV
from jaxinit.lsuv.core import layer_names, warn_members
from jaxinit.lsuv.spec import drawing_initializers, lsuv_entries

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
    """Everything static about one program; hashable, so it is a jit static argument.

    ``initializers`` may hold :class:`~jaxinit.lsuv.LSUV` values: such an entry draws every layer
    with its base (its noise group is the base's: common random numbers), takes the grid's
    ``weight_variance`` rescale as the base would, then fits each layer's scale on the network's
    own input batch (the rows the probes see) before the probes measure
    (:meth:`~jaxinit.lab.engine.sweep.layers._Layers.fit`). The fit needs ``batch >= 2``.
    """

    depth: int
    width: int
    in_dim: int
    out_dim: int
    batch: int  # rows fed to each network (pairs count twice)
    activation: Callable[..., Any]
    initializers: tuple[BaseInitializer | LSUV, ...]
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

    def __post_init__(self):
        if self.lsuv and self.batch < 2:
            raise ValueError(
                f"batch must be >= 2 with an LSUV initializer ({self.lsuv[0][1]!r}): LSUV fits each layer's "
                f"output variance over the batch, undefined for one example; got batch={self.batch}."
            )

    @property
    def n_init(self) -> int:
        return len(self.initializers)

    @property
    def drawn(self) -> tuple[BaseInitializer, ...]:
        """The initializer that draws each entry's weights: itself, or an LSUV entry's base."""
        return drawing_initializers(self.initializers)

    @property
    def lsuv(self) -> tuple[tuple[int, LSUV], ...]:
        """``(index, spec)`` of every LSUV entry (empty: the program compiles no fit)."""
        return lsuv_entries(self.initializers)

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
        for init in self.drawn:
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
        return np.asarray([i.variance(shape) + i.mean(shape) ** 2 for i in self.drawn])


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
    initializer call is (a fused multiply may round differently op by op). For an LSUV entry: its
    base's draw, before the fit (which depends on the inputs, not on the key alone).
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


def warn_lsuv(plans: dict[str, Plan], reached: dict[str, Sequence[np.ndarray]], labels: Sequence[str] | None = None,
              ) -> None:
    """One :class:`~jaxinit.lsuv.LSUVWarning` for a whole sweep whose LSUV entries missed their tolerance.

    ``reached``: per program id, the ``lsuv_variance`` arrays of its chunks, ``(n_init, n_grid,
    seeds, layers)`` as :func:`~jaxinit.lab.engine.sweep.measure_chunk` returns them (layers
    ``0 .. depth-1``, and the readout when the plan measures gradients; NaN for the other
    initializers). ``labels``: the initializers' labels (default: their ``repr``).
    """
    entries = []
    for pid, arrays in reached.items():
        plan = plans[pid]
        if not arrays:
            continue
        variance = np.concatenate([np.asarray(a) for a in arrays], axis=2)
        names = layer_names(plan.depth, plan.gradients)
        for i, spec in plan.lsuv:
            label = labels[i] if labels is not None else repr(spec)
            entries.append((f"{label} in {pid}" if len(reached) > 1 else label, spec, names, variance[i]))
    warn_members(entries, members="networks")
