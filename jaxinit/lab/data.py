r"""Offline datasets for training: scikit-learn's digits, a teacher-student task, a user's ``.npz``.

Every dataset is a frozen :class:`Dataset` of numpy arrays, already split and standardized:
features are shifted and scaled per column with the *training* set's statistics,

    x' = (x - mean_train) / std_train        (std_train = 1 for a constant column),

so the test set never informs the preprocessing. Classification labels are ``int32`` in
``[0, n_classes)``; regression targets are ``(n, out_dim)`` floats. Nothing here downloads.

Bad input raises a one-line ``ValueError`` naming the array or argument, the value and what is
allowed: rows that do not match, NaN or infinite features, labels outside ``[0, n_classes)`` or
not integers, an ``.npz`` without the four arrays. (A batch larger than the training set is the
engine's check: :class:`jaxinit.lab.engine.train.TrainPlan`.)
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np

from jaxinit.errors import check_choice, check_in_range, check_int, check_nonnegative

__all__ = ["ARRAY_NAMES", "TASKS", "Dataset", "digits", "from_arrays", "from_npz", "standardize", "teacher"]

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
TASKS = ("classification", "regression")


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test arrays of one task, standardized with the training set's statistics.

    ``x_*``: ``(n, in_dim)`` float32; ``y_*``: ``(n,)`` int32 labels (classification) or
    ``(n, out_dim)`` float32 targets (regression); ``n_classes`` is 0 for regression.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    task: str

    @property
    def in_dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def out_dim(self) -> int:
        """The network's readout width: ``n_classes``, or the regression targets' width."""
        return self.n_classes if self.task == "classification" else int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(x_train, y_train, x_test, y_test)``, the engine's data argument."""
        return self.x_train, self.y_train, self.x_test, self.y_test


# -- validation ----------------------------------------------------------------------------------
def _features(name: str, x: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1:
        raise ValueError(f"{name} must be 2-d (examples, features); got shape {x.shape}. "
                         "Reshape one feature per example to (n, 1).")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-d array (examples, features); got shape {x.shape}.")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers; got dtype={x.dtype}.")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{name} must be finite; got {x[row, col]} at row {row}, feature {col} "
                         f"({int(bad.sum())} non-finite value(s) in all).")
    return x


def _labels(name: str, y: Any, n_classes: int | None) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-d integer class labels for classification; got shape {y.shape}.")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{name} must be integer class labels; got {float(y[i])!r} at index {i}.")
    elif y.dtype.kind not in "biu":
        raise ValueError(f"{name} must be integer class labels; got dtype={y.dtype}.")
    y = y.astype(np.int64)
    high = n_classes if n_classes is not None else None
    low_bad = y < 0
    high_bad = (y >= high) if high is not None else np.zeros_like(low_bad)
    bad = low_bad | high_bad
    if bad.any():
        i = int(np.argmax(bad))
        allowed = f"[0, {high})" if high is not None else "[0, n_classes)"
        raise ValueError(f"{name} labels must be in {allowed}; got {int(y[i])} at index {i}.")
    return y


def _targets(name: str, y: Any) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be real regression targets of shape (n,) or (n, out_dim); "
                         f"got shape {y.shape}, dtype={y.dtype}.")
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        i = int(np.argmax(~np.isfinite(y).all(axis=1)))
        raise ValueError(f"{name} must be finite; got a non-finite target at row {i}.")
    return y


def standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x - mean) / std`` per feature with the training set's mean and std (1 where std is 0)."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (x_train - mean) / std, (x_test - mean) / std


def from_arrays(x_train: Any, y_train: Any, x_test: Any, y_test: Any, *, task: str = "classification",
                n_classes: int | None = None) -> Dataset:
    """A :class:`Dataset` from raw arrays: validated, features standardized with the training set's
    statistics. ``n_classes`` defaults to the largest label (train or test) + 1.

    Example:
      >>> import numpy as np
      >>> d = from_arrays(np.arange(8.0).reshape(4, 2), [0, 1, 0, 1], np.ones((2, 2)), [1, 0])
      >>> d.n_classes, bool(abs(d.x_train.mean(0)).max() < 1e-6), d.y_test.dtype.name
      (2, True, 'int32')
    """
    check_choice("task", task, TASKS)
    xtr, xte = _features("x_train", x_train), _features("x_test", x_test)
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"x_test must have x_train's {xtr.shape[1]} features; got {xte.shape[1]} "
                         f"(x_train.shape={xtr.shape}, x_test.shape={xte.shape}).")
    if task == "classification":
        if n_classes is not None:
            n_classes = check_int("n_classes", n_classes, minimum=2)
        ytr, yte = _labels("y_train", y_train, n_classes), _labels("y_test", y_test, n_classes)
        if n_classes is None:
            n_classes = max(2, int(max(ytr.max(), yte.max())) + 1)
    else:
        ytr, yte = _targets("y_train", y_train), _targets("y_test", y_test)
        if ytr.shape[1] != yte.shape[1]:
            raise ValueError(f"y_test must have y_train's {ytr.shape[1]} target column(s); got {yte.shape[1]}.")
        n_classes = 0
    for xn, x, yn, y in (("x_train", xtr, "y_train", ytr), ("x_test", xte, "y_test", yte)):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{xn} and {yn} must have the same number of examples; got {x.shape[0]} rows "
                             f"in {xn} and {y.shape[0]} in {yn}.")
    xtr, xte = standardize(xtr, xte)
    label = np.int32 if task == "classification" else np.float32
    return Dataset(xtr.astype(np.float32), ytr.astype(label), xte.astype(np.float32), yte.astype(label),
                   int(n_classes), task)


def _test_fraction(test_fraction: Any) -> float:
    return check_in_range("test_fraction", test_fraction, 0.0, 1.0, closed_low=False, closed_high=False)


# -- the datasets --------------------------------------------------------------------------------
def digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's digits (1797 8x8 images, 64 features, 10 classes; bundled, offline), split
    stratified by class with ``seed`` (``sklearn.model_selection.train_test_split``) and
    standardized with the training set's statistics. Reference: Alpaydin & Kaynak (1998), UCI
    "Optical Recognition of Handwritten Digits".

    Example:
      >>> d = digits()
      >>> d.n_train, d.n_test, d.in_dim, d.n_classes
      (1347, 450, 64, 10)
    """
    test_fraction = _test_fraction(test_fraction)
    seed = check_int("seed", seed, minimum=0)
    from sklearn.datasets import load_digits  # optional dependency (jaxinit[data])
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    xtr, xte, ytr, yte = train_test_split(bunch.data, bunch.target, test_size=test_fraction, random_state=seed,
                                          stratify=bunch.target)
    return from_arrays(xtr, ytr, xte, yte, task="classification", n_classes=10)


def teacher(n: int = 2048, in_dim: int = 16, *, width: int = 32, depth: int = 2, out_dim: int = 1,
            task: str = "regression", n_classes: int = 4, activation: str = "tanh", noise: float = 0.0,
            test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    r"""A teacher-student task: a random MLP (the teacher) labels Gaussian inputs.

    Inputs ``x ~ N(0, I_in_dim)``; the teacher is :func:`jaxinit.nets.init` with LeCun-normal
    kernels (``Var W = 1/fan_in``) and ``N(0, 0.01)`` biases, ``depth`` hidden layers of ``width``
    with ``activation``. Regression: ``y = f(x) + noise * N(0, 1)`` with ``out_dim`` outputs.
    Classification: ``y = argmax f(x)`` over ``n_classes`` logits (``noise`` added to the logits
    before the argmax). The first ``n - round(n * test_fraction)`` examples train, the rest test.
    Keys: teacher ``fold_in(key(seed), 0)``, inputs ``fold_in(key(seed), 1)``, noise ``fold_in(key(seed), 2)``.
    (Student-teacher setups: Gardner & Derrida 1989; Saad & Solla 1995.)

    Example:
      >>> d = teacher(256, 8, task="classification", n_classes=3)
      >>> d.n_train, d.n_test, d.out_dim, d.task
      (192, 64, 3, 'classification')
    """
    import jax

    from jaxinit import nets
    from jaxinit._prng import fold_in
    from jaxinit.initializers import lecun_normal, normal

    n = check_int("n", n, minimum=4)
    in_dim = check_int("in_dim", in_dim, minimum=1)
    check_choice("task", task, TASKS)
    noise = check_nonnegative("noise", noise)
    test_fraction = _test_fraction(test_fraction)
    seed = check_int("seed", seed, minimum=0)
    n_test = round(n * test_fraction)
    if n_test < 1 or n_test > n - 1:
        raise ValueError(f"test_fraction={test_fraction} of n={n} examples leaves {n_test} test and "
                         f"{n - n_test} training examples; both need at least 1.")
    out = check_int("n_classes", n_classes, minimum=2) if task == "classification" else check_int(
        "out_dim", out_dim, minimum=1)
    key = jax.random.key(seed)
    params = nets.init(fold_in(key, 0), in_dim, width, depth, out, lecun_normal(), normal(0.1))
    x = np.asarray(jax.random.normal(fold_in(key, 1), (n, in_dim)), np.float64)
    f = np.asarray(nets.apply(params, x.astype(np.float32), activation, "highest"), np.float64)
    f = f + noise * np.asarray(jax.random.normal(fold_in(key, 2), f.shape), np.float64)
    y = np.argmax(f, axis=1) if task == "classification" else f
    cut = n - n_test
    return from_arrays(x[:cut], y[:cut], x[cut:], y[cut:], task=task,
                       n_classes=out if task == "classification" else None)


def from_npz(path: str | os.PathLike, *, task: str = "classification", n_classes: int | None = None) -> Dataset:
    """A user's arrays from an ``.npz`` holding ``x_train, y_train, x_test, y_test`` (e.g. MNIST or
    CIFAR features): validated and standardized with the training set's statistics; images are
    flattened to one feature vector per example.

    Raises:
      ValueError: the file lacks one of the four arrays (the message lists what it has), or any
        check of :func:`from_arrays` fails.
    """
    check_choice("task", task, TASKS)
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in ARRAY_NAMES if k not in f.files]
        if missing:
            raise ValueError(f"{os.fspath(path)!r} must hold arrays {list(ARRAY_NAMES)}; missing {missing}, "
                             f"has {sorted(f.files)}.")
        arrays = {k: f[k] for k in ARRAY_NAMES}
    for k in ("x_train", "x_test"):
        a = arrays[k]
        if a.ndim > 2:
            arrays[k] = a.reshape(a.shape[0], math.prod(a.shape[1:]))
    return from_arrays(*(arrays[k] for k in ARRAY_NAMES), task=task, n_classes=n_classes)
