"""What the training benchmark's workers share: the data file, the minibatch order, the evaluation record,
the result line. NumPy only: the baselines load this file by path (:func:`load`), so a Flax or PyTorch
worker never imports jaxinit (nor, for PyTorch, JAX).

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


def minibatch_order(seed: int, n_train: int, batch: int, steps: int) -> np.ndarray:
    """``(steps, batch)`` int32 example indices: the minibatches of seed ``seed`` (module docstring)."""
    per_epoch = n_train // batch
    if per_epoch < 1:
        raise ValueError(f"batch must be <= the training set's {n_train} examples; got batch={batch}.")
    epochs = -(-steps // per_epoch)
    rows = [np.random.default_rng([seed, e]).permutation(n_train)[:per_epoch * batch].reshape(per_epoch, batch)
            for e in range(epochs)]
    return np.concatenate(rows)[:steps].astype(np.int32)


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
