"""A training run's folder gets its own figures (issue 13): loss and accuracy against step, steps to
target with "not reached" drawn as such, gradient norm per layer, distinct units; asserted from the
matplotlib objects, on one small classification run (with a learning rate that makes members
diverge) and one regression run."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from jaxinit import cli
from jaxinit.lab import config as jconfig
from jaxinit.lab import figures as plots
from jaxinit.lab import training
from jaxinit.lab.figures import train as tf
from jaxinit.lab.figures import train_common as tc

INITS = ["he_normal", "zeros", "glorot_normal"]
TARGET = 0.6


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """ReLU depth 2, width 8 on digits; 3 initializers x 3 seeds x learning rates {0.1, 1000}; 40 steps."""
    out = tmp_path_factory.mktemp("train_small")
    config = jconfig.from_dict({
        "network": {"depth": 2, "width": 8, "activation": "relu"},
        "sweep": {"seeds": 3, "initializers": INITS},
        "grid": {"learning_rate": [0.1, 1000.0]},
        "train": {"steps": 40, "batch": 64, "optimizer": {"name": "sgd", "momentum": 0.9},
                  "target_accuracy": TARGET, "eval_every": 10},
        "output": {"dir": str(out)}}, source="small.toml")
    results = training.train(config, fresh=True, progress=False)
    steps = results.get("steps_to_accuracy")
    # What the figures are tested on: some members reach the target, zeros never does, some diverge.
    assert np.isfinite(steps).any() and np.isnan(steps[INITS.index("zeros")]).all()
    assert results.get("diverged").any()
    return results


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    """tanh depth 2, width 8, teacher-student regression, no target: 2 initializers x 2 seeds, 20 steps."""
    out = tmp_path_factory.mktemp("train_regression")
    config = jconfig.from_dict({
        "network": {"depth": 2, "width": 8, "activation": "tanh"},
        "data": {"name": "teacher", "task": "regression", "n": 256},
        "sweep": {"seeds": 2, "initializers": ["lecun_normal", "zeros"]},
        "train": {"steps": 20, "batch": 32, "eval_every": 10},
        "output": {"dir": str(out)}}, source="regression.toml")
    return training.train(config, fresh=True, progress=False)


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]


def _legend_labels(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def _same_color(a, b) -> bool:
    return np.allclose(to_rgba(a), to_rgba(b))


# ----------------------------------------------------------------------------- write_all


def test_jaxinit_plot_draws_the_training_figures_of_a_training_folder(run, capsys):
    # `jaxinit plot DIR` is write_all on the folder; its FigureWarnings are "jaxinit: note:" lines.
    assert cli.main(["plot", str(run.path)]) == 0
    out, err = capsys.readouterr()
    assert [p.rsplit("/", 1)[-1] for p in out.split()] == [
        "train_loss.png", "train_steps_to_target.png", "train_grad_norm.png", "train_distinct_units.png"]
    assert "note" not in err  # zeros keeps its units identical: nothing is left out
    for name in tf.TRAIN_FIGURE_FILES.values():
        assert (run.path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any((run.path / "figures" / name).exists() for name in plots.FIGURE_FILES.values())  # no sweep figure


# ----------------------------------------------------------------------------- 1. curves


def test_curves_show_loss_and_accuracy_per_initializer_with_the_diverged_counted(run):
    fig = tf.train_curves_figure(run)
    axes = _visible_axes(fig)
    n_views = len(run.coords["grid_point"])
    assert len(axes) == 3 * n_views  # train loss, test loss, test accuracy per learning rate
    assert "Training curves" in fig._suptitle.get_text()
    for row in range(n_views):
        train, test, acc = axes[3 * row: 3 * row + 3]
        assert train.get_ylabel().startswith("train loss (cross-entropy") and train.get_yscale() == "log"
        assert test.get_ylabel().startswith("test loss (cross-entropy") and test.get_yscale() == "log"
        assert acc.get_ylabel() == "test accuracy (fraction correct)" and acc.get_yscale() == "linear"
        assert all(ax.get_xlabel() == "step (optimizer updates)" for ax in (train, test, acc))
        rate = run.coords["grid_point"][row]["learning_rate"]
        assert f"learning rate {rate:.3g}" in train.get_title()
        # the target is dotted on the accuracy panel
        assert any(np.allclose(line.get_ydata(), TARGET) and line.get_linestyle() == ":" for line in acc.lines)
        # "k of n members diverged" where and only where members did
        diverged = run.get("diverged")[:, row]
        note = f"{int(diverged.sum())} of {diverged.size} members diverged"
        assert (note in train.get_title().replace("\n", " ")) == bool(diverged.any())
    labels = _legend_labels(fig)
    assert set(INITS) <= set(labels)
    assert "25–75% of the seeds (band)" in labels
    assert any(label.startswith("median over 3 seeds") for label in labels)


def test_a_median_stops_where_more_than_half_the_members_diverged():
    # 4 members; two diverged (NaN) after step 1: the median is a diverged member's from there on.
    values = np.array([[1.0, 1.0, 2.0], [2.0, 2.0, 3.0], [3.0, np.nan, np.nan], [4.0, np.nan, np.nan]])
    st = tc._ranked(values, np.inf)
    assert np.allclose(st["median"][0], np.quantile(values[:, 0], 0.5))  # all finite: numpy's linear rule
    assert np.allclose(st["q25"][0], np.quantile(values[:, 0], 0.25))
    assert np.isposinf(st["median"][1]) and np.isposinf(st["q75"][1])  # half diverged: median between 2 and inf
    assert np.allclose(st["q25"][1], np.quantile([1.0, 2.0, 1e300, 1e300], 0.25))
    # accuracy: a diverged member ranks lowest
    acc = tc._ranked(np.array([[0.9], [0.8], [np.nan]]), -np.inf)
    assert np.isneginf(acc["q25"][0]) and acc["median"][0] == 0.8 and np.isclose(acc["q75"][0], 0.85)


def test_a_regression_run_draws_loss_panels_without_accuracy(regression, tmp_path):
    assert "test_accuracy" not in regression.arrays
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", plots.FigureWarning)
        paths = plots.write_all(regression, out=tmp_path)
    names = {p.name for p in paths}
    assert "train_loss.png" in names
    assert "train_steps_to_target.png" not in names  # no target set: skipped, no error
    fig = tf.train_curves_figure(regression)
    axes = _visible_axes(fig)
    assert [ax.get_ylabel().split(" (")[0] for ax in axes] == ["train loss", "test loss"]
    assert all("mean squared error" in ax.get_ylabel() for ax in axes)
    assert not any("accuracy" in text for text in _texts(fig))
    assert tf.steps_to_target_figure(regression) is None


# ----------------------------------------------------------------------------- 2. steps to target


def test_members_that_never_reach_the_target_are_drawn_as_not_reached(run):
    fig = tf.steps_to_target_figure(run)
    axes = _visible_axes(fig)
    assert len(axes) == len(run.coords["grid_point"])
    last = run.coords["step"][-1]
    steps = run.get("steps_to_accuracy")  # (init, grid, seed)
    diverged = run.get("diverged")
    colors = plots.common._colors(len(INITS), by_value=False)
    for g, ax in enumerate(axes):
        assert f"test accuracy ≥ {TARGET:g}" in ax.get_title()
        assert ax.get_ylabel().startswith("step")
        assert [t.get_text() for t in ax.get_xticklabels()] == INITS
        assert "not\nreached" in [t.get_text() for t in ax.get_yticklabels()]
        texts = [t.get_text() for t in ax.texts]
        for i, color in enumerate(colors):
            v = steps[i, g]
            never = np.isnan(v)
            assert f"{int(never.sum())}/{v.size}" in texts  # the count of members not reached
            points = [line for line in ax.lines if line.get_marker() in ("o", "x") and _same_color(
                line.get_markeredgecolor(), color)]
            ys = np.concatenate([np.asarray(line.get_ydata(), float) for line in points])
            # reached: at their step, never at 0 or the last step for a NaN; not reached: above the last step
            assert sorted(ys[ys <= last]) == sorted(v[~never])
            assert (ys > last).sum() == never.sum()
            crosses = sum(len(line.get_ydata()) for line in points if line.get_marker() == "x")
            assert crosses == int((diverged[i, g] & never).sum())
    # zeros never reaches it in any view
    assert all(f"{len(run.coords['seed'])}/{len(run.coords['seed'])}" in [t.get_text() for t in ax.texts]
               for ax in axes)
    assert any("never reached" in label for label in _legend_labels(fig))


# ----------------------------------------------------------------------------- 3. gradient norm


def test_gradient_norm_per_layer_at_the_first_a_tenth_and_the_last_step(run):
    fig = tf.train_grad_norm_figure(run)
    axes = _visible_axes(fig)
    steps = run.coords["step"]  # 0, 10, 20, 30, 40: ~10% of 40 is 4, nearest evaluated 10
    assert [ax.get_title().split("\n")[0] for ax in axes[:3]] == ["step 0", "step 10", "step 40"]
    assert steps[0] == 0 and steps[-1] == 40
    for ax in axes:
        assert ax.get_yscale() == "log"
        assert ax.get_xlabel().startswith("layer")
        assert r"\partial L/\partial W_\ell" in ax.get_ylabel()
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3\nreadout"]
    # zeros: no gradient reaches any layer, marked at the bottom, never drawn as a value
    zeros_color = plots.common._colors(len(INITS), by_value=False)[INITS.index("zeros")]
    markers = [line for line in axes[0].lines if line.get_marker() == "v"]
    assert markers and all(_same_color(line.get_color(), zeros_color) for line in markers)
    assert any(label.startswith("median exactly 0") for label in _legend_labels(fig))


# ----------------------------------------------------------------------------- 4. distinct units


def test_distinct_units_show_zeros_at_one_and_random_initializers_at_the_width(run):
    fig = tf.distinct_units_figure(run)
    axes = _visible_axes(fig)
    assert len(axes) == len(run.coords["grid_point"])
    colors = plots.common._colors(len(INITS), by_value=False)
    for ax in axes:
        assert ax.get_xlabel() == r"hidden layer $\ell$" and "distinct units (of 8" in ax.get_ylabel()
        medians = {i: line.get_ydata() for line in ax.lines for i, c in enumerate(colors)
                   if line.get_marker() == "o" and _same_color(line.get_color(), c)}
        assert np.array_equal(medians[INITS.index("zeros")], [1, 1])
        assert np.array_equal(medians[INITS.index("he_normal")], [8, 8])
        assert any(np.allclose(line.get_ydata(), 8) and line.get_linestyle() == "--" for line in ax.lines)
    assert "Distinct hidden units" in fig._suptitle.get_text()
    assert "the width: every unit distinct" in _legend_labels(fig)


def test_no_distinct_units_figure_when_every_unit_is_distinct(run):
    arrays = dict(run.arrays)
    arrays["distinct_units"] = np.full_like(arrays["distinct_units"], 8)
    all_distinct = dataclasses.replace(run, arrays=arrays)
    with pytest.warns(plots.FigureWarning, match="all units are distinct"):
        assert tf.distinct_units_figure(all_distinct) is None  # write_all writes no file for it


# ----------------------------------------------------------------------------- views of a large grid


def test_a_large_grid_shows_the_learning_rates_at_the_middle_of_the_other_parameters(run):
    points = [{"weight_variance": w, "learning_rate": r} for w in (0.5, 1.0, 2.0, 4.0) for r in (0.01, 0.05, 0.2)]
    big = dataclasses.replace(run, coords={**run.coords, "grid_point": points,
                                           "grid_params": ["weight_variance", "learning_rate"]})
    views, note = tc._views(big)
    assert [points[v.grid] for v in views] == [{"weight_variance": 1.0, "learning_rate": r}
                                               for r in (0.01, 0.05, 0.2)]
    assert note == "showing 3 of 12 grid points"
    assert [v.text for v in views] == ["learning rate 0.01", "learning rate 0.05", "learning rate 0.2"]
    assert r"$\sigma_w^2$=1" in views[0].common and "depth 2" in views[0].common
