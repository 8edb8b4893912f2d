"""What one network of the sweep is fed: its inputs and its readout loss's gradient."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxinit import probes
from jaxinit._prng import fold_in
from jaxinit.initializers._base import wide_dtype
from jaxinit.initializers._random import raw_sample
from jaxinit.lab.engine.sweep.plan import Plan


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
