"""What the training benchmark's workers share: the data file, the minibatch order, the loop over members,
the evaluation record, the result line, a JAX baseline's whole program. NumPy only (JAX is passed in):
the baselines load this file by path (:func:`load`), so a Flax or PyTorch worker never imports jaxinit
(nor, for PyTorch, JAX).

Minibatch order of a baseline's seed ``s``: epoch ``e`` is ``numpy.random.default_rng([s, e]).permutation
(n_train)`` cut into ``n_train // batch`` minibatches (the remainder dropped), the scheme of
:mod:`jaxinit.lab.engine.train` with NumPy's generator in place of JAX's; every initializer of a seed sees
the same minibatches.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

RESULT_MARK = "BENCH_RESULT "
EVAL_NAMES = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def load(name: str):
    """A sibling module of this folder loaded by file path (no package import, so no jaxinit)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_jaxinit_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_data(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` from the benchmark's ``.npz`` (float32 features, int32 labels)."""
    with np.load(path) as f:
        return (f["x_train"].astype(np.float32), f["y_train"].astype(np.int32), f["x_test"].astype(np.float32),
                f["y_test"].astype(np.int32))


def io_dims(data) -> tuple[int, int]:
    """``(in_dim, out_dim)`` of the MLP on ``data`` (:func:`read_data`): the features, the classes seen."""
    return data[0].shape[1], int(max(data[1].max(), data[3].max())) + 1


def jax_evaluate(jnp, optax, logits_fn, params, x_train, y_train, x_test, y_test):
    """The :data:`EVAL_NAMES` of ``params`` stacked in one array, traced in the caller's program (``jnp``,
    ``optax`` passed in): the mean softmax cross-entropy and the accuracy of ``logits_fn(params, x)`` on
    the training set, then on the test set."""
    out = []
    for x, y in ((x_train, y_train), (x_test, y_test)):
        logits = logits_fn(params, x)
        out += [optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(),
                jnp.mean(jnp.argmax(logits, -1) == y)]
    return jnp.stack(out)


def minibatch_order(seed: int, n_train: int, batch: int, steps: int) -> np.ndarray:
    """``(steps, batch)`` int32 example indices: the minibatches of seed ``seed`` (module docstring)."""
    per_epoch = n_train // batch
    if per_epoch < 1:
        raise ValueError(f"batch must be <= the training set's {n_train} examples; got batch={batch}.")
    epochs = -(-steps // per_epoch)
    rows = [np.random.default_rng([seed, e]).permutation(n_train)[:per_epoch * batch].reshape(per_epoch, batch)
            for e in range(epochs)]
    return np.concatenate(rows)[:steps].astype(np.int32)


def run_members(spec, n_train: int, member) -> dict[str, list[dict[str, list[float]]]]:
    """Every member of the work ``spec``: ``{init: [member(init, seed, order) per seed]}``, initializers
    outer and seeds inner, ``order`` the seed's :func:`minibatch_order` (drawn once per seed, for
    ``n_train`` examples); ``member`` trains one and returns its evaluations ``{name: [value per evaluation]}``."""
    orders = [minibatch_order(s, n_train, spec["batch"], spec["steps"]) for s in range(spec["seeds"])]
    return {name: [member(name, s, orders[s]) for s in range(spec["seeds"])] for name in spec["inits"]}


def jax_main(jax, argv, trainer_class, t0: float, t1: float) -> None:
    """The whole program of a JAX baseline (Flax's, plain JAX's), ``jax`` passed in (imported by the caller).

    ``argv[1]``: the SPEC JSON. ``trainer_class(spec, data)`` compiles its training with ``compile()`` and
    each initializer's ``init_fn(name)`` (a compiled ``key -> parameters``): ``compile_s``; then
    :func:`run_members` with ``run_member(init_fn(name)(jax.random.key(seed)), order)``: ``run_s``.
    ``t0``: the program's start, ``t1``: its imports done (``import_s = t1 - t0``). Prints the result
    line (:func:`emit`).
    """
    spec = json.loads(argv[1])
    data = read_data(spec["data"])
    trainer = trainer_class(spec, data)
    t = time.perf_counter()
    trainer.compile()
    inits = {name: trainer.init_fn(name) for name in spec["inits"]}
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    evals = run_members(spec, data[0].shape[0],
                        lambda name, s, order: trainer.run_member(inits[name](jax.random.key(s)), order))
    run_s = time.perf_counter() - t
    emit({"import_s": t1 - t0, "compile_s": compile_s, "run_s": run_s, **summary(spec["inits"], evals),
          "backend": jax.default_backend(), "device_count": jax.local_device_count(),
          "total_s": time.perf_counter() - t0})


def summary(inits, evals) -> dict[str, dict[str, float]]:
    """Per initializer, the mean over its members of the last evaluation's ``train_loss`` and
    ``test_accuracy`` (``evals``: ``{init: [per member {name: [value per evaluation]}]}``): a sanity
    check that the contenders trained the same thing."""
    out: dict[str, dict[str, float]] = {"final_train_loss": {}, "final_test_accuracy": {}}
    for name in inits:
        members = evals[name]
        out["final_train_loss"][name] = statistics.fmean(float(m["train_loss"][-1]) for m in members)
        out["final_test_accuracy"][name] = statistics.fmean(float(m["test_accuracy"][-1]) for m in members)
    return out


def emit(result: dict) -> None:
    """Print the worker's one ``BENCH_RESULT {json}`` line."""
    print(RESULT_MARK + json.dumps(result), flush=True)
    sys.stdout.flush()
