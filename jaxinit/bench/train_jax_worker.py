"""Training baseline (b): the strongest plain-JAX way -- per member, the whole run in one jitted ``lax.scan``.

``python -P train_jax_worker.py SPEC_JSON`` (as the harness runs it). SPEC: the work
(:meth:`jaxinit.bench.train_work.TrainWork.spec`) and ``data`` (the ``.npz`` path). The MLP is a list
of ``(kernel, bias)`` pairs, its layers unrolled; kernels from ``jax.nn.initializers.<name>`` (biases
zero) by a jitted init per initializer. One jitted function runs a member's whole training: a
``lax.scan`` over evaluation chunks, each a ``lax.scan`` of ``eval_every`` steps of
``optax.sgd(learning_rate, momentum)`` on minibatches gathered inside the program from the member's
minibatch order (an input), then the evaluation (loss and accuracy on the training and test sets); it
is compiled once and called once per member, the data on the device throughout. Prints one
``BENCH_RESULT {json}`` line.

A plain JAX program: it imports JAX, optax and NumPy, never jaxinit (nor Flax).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import sys  # noqa: E402 - the clock starts before the imports it measures
from pathlib import Path  # noqa: E402

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


def forward(layers, x):
    for w, b in layers[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = layers[-1]
    return x @ w + b


class Trainer:
    """One work's whole-run program on ``data`` (compiled once by :meth:`compile`)."""

    def __init__(self, spec, data):
        self.spec = spec
        self.data = tuple(jnp.asarray(a) for a in data)
        self.in_dim, self.out_dim = shared.io_dims(data)
        self.dims = [self.in_dim] + [spec["width"]] * spec["depth"] + [self.out_dim]
        tx = optax.sgd(spec["learning_rate"], momentum=spec["momentum"])
        every, n_chunks = spec["eval_every"], spec["steps"] // spec["eval_every"]

        def loss_fn(layers, x, y):
            return optax.softmax_cross_entropy_with_integer_labels(forward(layers, x), y).mean()

        def evaluate(layers, *data):
            return shared.jax_evaluate(jnp, optax, forward, layers, *data)

        def run(layers, order, x_train, y_train, x_test, y_test):
            def step(carry, idx):
                layers, opt_state = carry
                grads = jax.grad(loss_fn)(layers, x_train[idx], y_train[idx])
                updates, opt_state = tx.update(grads, opt_state, layers)
                return (optax.apply_updates(layers, updates), opt_state), None

            def chunk(carry, idx):
                carry, _ = jax.lax.scan(step, carry, idx)
                return carry, evaluate(carry[0], x_train, y_train, x_test, y_test)

            first = evaluate(layers, x_train, y_train, x_test, y_test)
            _, rest = jax.lax.scan(chunk, (layers, tx.init(layers)), order.reshape(n_chunks, every, -1))
            return jnp.concatenate([first[None], rest])

        self._run = jax.jit(run)
        self.run = None

    def init_fn(self, name):
        """A jitted ``key -> layers`` with ``jax.nn.initializers.<name>()`` kernels, compiled."""
        kernel_init = getattr(jax.nn.initializers, name)()
        dims = self.dims

        def init(key):
            keys = jax.random.split(key, len(dims) - 1)
            return [(kernel_init(k, (a, b), jnp.float32), jnp.zeros((b,), jnp.float32))
                    for k, a, b in zip(keys, dims[:-1], dims[1:], strict=True)]

        return jax.jit(init).lower(jax.random.key(0)).compile()

    def compile(self):
        layers = [(jax.ShapeDtypeStruct((a, b), jnp.float32), jax.ShapeDtypeStruct((b,), jnp.float32))
                  for a, b in zip(self.dims[:-1], self.dims[1:], strict=True)]
        order = jax.ShapeDtypeStruct((self.spec["steps"], self.spec["batch"]), jnp.int32)
        self.run = self._run.lower(layers, order, *self.data).compile()

    def run_member(self, layers, order):
        """Train one member from ``layers`` on the minibatches ``order`` ``(steps, batch)``; the evaluations
        ``{name: [value per evaluation]}``."""
        if self.run is None:
            self.compile()
        layers = [(jnp.asarray(w), jnp.asarray(b)) for w, b in layers]
        values = np.asarray(self.run(layers, jnp.asarray(order, jnp.int32), *self.data))
        return {name: values[:, i].tolist() for i, name in enumerate(shared.EVAL_NAMES)}


def main(argv):
    shared.jax_main(jax, argv, Trainer, T0, T1)


if __name__ == "__main__":
    main(sys.argv)
