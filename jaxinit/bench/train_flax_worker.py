"""Training baseline (a): what a Flax user writes -- a Python loop over members of a jitted optax step.

``python -P train_flax_worker.py SPEC_JSON`` (as the harness runs it). SPEC: the work
(:meth:`jaxinit.bench.train_work.TrainWork.spec`) and ``data`` (the ``.npz`` path). A ``flax.linen`` MLP
(``nn.Dense`` + ``relu``, biases zero), ``optax.sgd(learning_rate, momentum)``; per member
(initializer, seed): ``jax.jit(model.init)`` with ``jax.nn.initializers.<name>``, then one call of the
jitted train step per minibatch (the minibatch sliced in NumPy, as a data loader hands it over) and a
jitted evaluation (loss and accuracy on the training and test sets) at step 0 and every
``eval_every`` steps. Step and evaluation are compiled once (ahead of time, to time the compile) and
reused for every member; ``model.init`` once per initializer. Prints one ``BENCH_RESULT {json}`` line.

A Flax user's program: it imports Flax, optax, JAX and NumPy, never jaxinit.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import sys  # noqa: E402 - the clock starts before the imports it measures
from pathlib import Path  # noqa: E402

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

T1 = time.perf_counter()

import importlib.util  # noqa: E402

# train_shared by file path: run as ``python -P``, this folder is no package to import from
_SHARED = importlib.util.spec_from_file_location("_jaxinit_bench_train_shared",
                                                 Path(__file__).with_name("train_shared.py"))
shared = importlib.util.module_from_spec(_SHARED)
_SHARED.loader.exec_module(shared)


class MLP(nn.Module):
    """``depth`` Dense(width) + ReLU layers and a Dense(out_dim) readout."""

    depth: int
    width: int
    out_dim: int
    kernel_init: object = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = nn.relu(nn.Dense(self.width, kernel_init=self.kernel_init)(x))
        return nn.Dense(self.out_dim, kernel_init=self.kernel_init)(x)


def to_flax(layers):
    """Flax variables from ``[(kernel (fan_in, fan_out), bias), ...]`` (input layer first)."""
    return {"params": {f"Dense_{i}": {"kernel": jnp.asarray(w), "bias": jnp.asarray(b)}
                       for i, (w, b) in enumerate(layers)}}


class Trainer:
    """One work's jitted train step and evaluation on ``data`` (compiled once by :meth:`compile`)."""

    def __init__(self, spec, data):
        self.spec = spec
        self.x_train, self.y_train = data[0], data[1]
        self.device_data = tuple(jnp.asarray(a) for a in data)
        self.in_dim, self.out_dim = shared.io_dims(data)
        self.model = MLP(spec["depth"], spec["width"], self.out_dim)
        self.tx = optax.sgd(spec["learning_rate"], momentum=spec["momentum"])
        model, tx = self.model, self.tx

        def loss_fn(params, x, y):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(params, x), y).mean()

        def train_step(params, opt_state, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        def evaluate(params, *data):
            return shared.jax_evaluate(jnp, optax, model.apply, params, *data)

        self._train_step, self._evaluate = jax.jit(train_step), jax.jit(evaluate)
        self.step = self.evaluate = None

    def init_fn(self, name):
        """``jax.jit(model.init)`` with ``jax.nn.initializers.<name>()`` kernels, compiled."""
        model = MLP(self.spec["depth"], self.spec["width"], self.out_dim, getattr(jax.nn.initializers, name)())
        x0 = jnp.zeros((1, self.in_dim), jnp.float32)
        init = jax.jit(lambda key: model.init(key, x0)).lower(jax.random.key(0)).compile()
        return init

    def compile(self):
        params = jax.eval_shape(lambda k: self.model.init(k, jnp.zeros((1, self.in_dim), jnp.float32)),
                                jax.random.key(0))
        opt_state = jax.eval_shape(self.tx.init, params)
        b = self.spec["batch"]
        xb = jax.ShapeDtypeStruct((b, self.in_dim), jnp.float32)
        yb = jax.ShapeDtypeStruct((b,), jnp.int32)
        self.step = self._train_step.lower(params, opt_state, xb, yb).compile()
        self.evaluate = self._evaluate.lower(params, *self.device_data).compile()

    def run_member(self, params, order):
        """Train one member from ``params`` on the minibatches ``order`` ``(steps, batch)``; the evaluations
        ``{name: [value per evaluation]}`` (:data:`EVAL_NAMES`)."""
        if self.step is None:
            self.compile()
        opt_state = self.tx.init(params)
        evals = [self.evaluate(params, *self.device_data)]
        every = self.spec["eval_every"]
        for t in range(self.spec["steps"]):
            idx = order[t]
            params, opt_state, _ = self.step(params, opt_state, self.x_train[idx], self.y_train[idx])
            if (t + 1) % every == 0:
                evals.append(self.evaluate(params, *self.device_data))
        values = np.stack(jax.device_get(evals))
        return {name: values[:, i].tolist() for i, name in enumerate(shared.EVAL_NAMES)}


def main(argv):
    shared.jax_main(jax, argv, Trainer, T0, T1)


if __name__ == "__main__":
    main(sys.argv)
