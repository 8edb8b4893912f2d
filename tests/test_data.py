"""Offline datasets (jaxinit.lab.data): splits, standardization, the teacher, .npz, bad input (issue 13)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxinit import nets
from jaxinit._prng import fold_in
from jaxinit.initializers import lecun_normal, normal
from jaxinit.lab import data


def test_digits_split_is_fixed_stratified_and_standardized_with_training_statistics():
    from sklearn.datasets import load_digits

    d = data.digits(test_fraction=0.25, seed=0)
    assert (d.n_train, d.n_test, d.in_dim, d.n_classes, d.task) == (1347, 450, 64, 10, "classification")
    again = data.digits(test_fraction=0.25, seed=0)
    np.testing.assert_array_equal(d.x_test, again.x_test)
    assert not np.array_equal(data.digits(seed=1).y_test, d.y_test)
    # Stratified: every class's share of the test set is its share of the data, within one example.
    raw = load_digits()
    share = np.bincount(raw.target) / raw.target.size
    assert np.abs(np.bincount(d.y_test, minlength=10) - share * d.n_test).max() <= 1
    # Training statistics: train columns mean 0 and std 1 (0 for constant pixels); the test set is
    # mapped with the same affine map, so it is not exactly standardized.
    np.testing.assert_allclose(d.x_train.mean(0), 0.0, atol=1e-5)
    std = d.x_train.std(0)
    assert set(np.round(std, 4)) <= {0.0, 1.0}
    assert np.abs(d.x_test.mean(0)).max() > 1e-3
    # The map is the training set's: the same split by hand, standardized with its training rows.
    from sklearn.model_selection import train_test_split

    xtr, xte, _, yte = train_test_split(raw.data, raw.target, test_size=0.25, random_state=0, stratify=raw.target)
    sd = np.where(xtr.std(0) > 0, xtr.std(0), 1.0)
    np.testing.assert_allclose(d.x_test, (xte - xtr.mean(0)) / sd, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(d.y_test, yte)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_teacher_labels_are_the_teachers_outputs(task):
    d = data.teacher(200, 6, width=16, depth=2, task=task, n_classes=4, out_dim=2, noise=0.0, test_fraction=0.25,
                     seed=5)
    assert (d.n_train, d.n_test, d.task) == (150, 50, task)
    key = jax.random.key(5)
    x = np.asarray(jax.random.normal(fold_in(key, 1), (200, 6)), np.float64)
    out = 4 if task == "classification" else 2
    params = nets.init(fold_in(key, 0), 6, 16, 2, out, lecun_normal(), normal(0.1))
    f = np.asarray(nets.apply(params, x.astype(np.float32), "tanh", "highest"))
    if task == "classification":
        np.testing.assert_array_equal(np.concatenate([d.y_train, d.y_test]), np.argmax(f, 1))
        assert d.n_classes == 4
    else:
        np.testing.assert_allclose(np.concatenate([d.y_train, d.y_test]), f, rtol=1e-6)
        assert d.out_dim == 2 and d.n_classes == 0
    xs = np.concatenate([d.x_train, d.x_test])
    mean, std = x[:150].mean(0), x[:150].std(0)
    np.testing.assert_allclose(xs, (x - mean) / std, rtol=1e-5, atol=1e-5)


def test_npz_round_trip_flattens_images(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.normal(size=(20, 2, 3)), "y_train": rng.integers(0, 3, 20),
              "x_test": rng.normal(size=(5, 2, 3)), "y_test": np.array([0, 1, 2, 0, 1], np.uint8)}
    np.savez(tmp_path / "a.npz", **arrays)
    d = data.from_npz(tmp_path / "a.npz")
    assert d.x_train.shape == (20, 6) and d.n_classes == 3 and d.y_test.dtype == np.int32
    xtr = arrays["x_train"].reshape(20, 6)
    np.testing.assert_allclose(d.x_test, (arrays["x_test"].reshape(5, 6) - xtr.mean(0)) / xtr.std(0), rtol=1e-5)


# -- bad input: one clear line each -----------------------------------------------------------
X, Y = np.zeros((4, 2)), np.array([0, 1, 0, 1])


def test_mismatched_lengths():
    with pytest.raises(ValueError, match=r"^x_train and y_train must have the same number of examples; got 4 rows in x_train and 3 in y_train\.$"):
        data.from_arrays(X, Y[:3], X, Y)
    with pytest.raises(ValueError, match=r"^x_test must have x_train's 2 features; got 3"):
        data.from_arrays(X, Y, np.zeros((4, 3)), Y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features(bad):
    x = X.copy()
    x[2, 1] = bad
    with pytest.raises(ValueError, match=rf"^x_test must be finite; got {bad} at row 2, feature 1 \(1 non-finite"):
        data.from_arrays(X, Y, x, Y)


def test_labels_outside_the_classes_or_not_integers():
    with pytest.raises(ValueError, match=r"^y_train labels must be in \[0, n_classes\); got -1 at index 2\.$"):
        data.from_arrays(X, [0, 1, -1, 1], X, Y)
    with pytest.raises(ValueError, match=r"^y_test labels must be in \[0, 2\); got 2 at index 3\.$"):
        data.from_arrays(X, Y, X, [0, 1, 1, 2], n_classes=2)
    with pytest.raises(ValueError, match=r"^y_train must be integer class labels; got 0.5 at index 1\.$"):
        data.from_arrays(X, [0, 0.5, 1, 0], X, Y)
    with pytest.raises(ValueError, match=r"^y_train must be integer class labels; got dtype=<U1"):
        data.from_arrays(X, np.array(["a", "b", "a", "b"]), X, Y)


def test_npz_without_the_four_arrays(tmp_path):
    np.savez(tmp_path / "b.npz", x_train=X, y_train=Y, x_test=X)
    with pytest.raises(ValueError, match=r"b\.npz' must hold arrays \['x_train', 'y_train', 'x_test', 'y_test'\]; missing \['y_test'\], has \['x_test', 'x_train', 'y_train'\]\.$"):
        data.from_npz(tmp_path / "b.npz")


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^test_fraction must be in \(0.0, 1.0\); got 1.0"):
        data.digits(test_fraction=1.0)
    with pytest.raises(ValueError, match=r"^task must be one of \['classification', 'regression'\]; got 'regresion'.*Did you mean 'regression'"):
        data.teacher(task="regresion")
