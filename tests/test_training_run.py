"""Training runs from configs (issue 13): ``jaxinit train``, the results folder, resumption, and every
bad input of the issue's list as one line and exit status 2 with nothing written."""

from __future__ import annotations

import csv
import re
import tomllib

import numpy as np
import pytest

from jaxinit import cli
from jaxinit.errors import ConfigError, ResultsError
from jaxinit.lab import config as cfg
from jaxinit.lab import training

pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")


def tiny(**train) -> dict:
    """A small training run on the teacher's data (fast to build; no scikit-learn)."""
    return {
        "network": {"depth": 2, "width": 8, "activation": "relu"},
        "sweep": {"seeds": 2, "initializers": ["he_normal", "zeros"]},
        "data": {"name": "teacher", "n": 96, "in_dim": 4, "task": "classification", "n_classes": 3},
        "train": {"steps": 12, "batch": 16, "eval_every": 4, "optimizer": {"name": "sgd", "momentum": 0.9},
                  "learning_rate": 0.05, **train},
    }


def write(tmp_path, data: dict, name: str = "run.toml"):
    path = tmp_path / name
    path.write_text(cfg.dumps_toml(data), encoding="utf-8")
    return path


def run_cli(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def arrays(folder):
    with np.load(folder / "arrays.npz") as f:
        return {k: f[k] for k in f.files}


def summary(folder) -> list[dict[str, str]]:
    with open(folder / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


# -- the command and its folder --------------------------------------------------------------------
def test_train_command_writes_the_folder_report_and_unreached_targets(tmp_path, capsys):
    out = tmp_path / "out"
    path = write(tmp_path, tiny(target_accuracy=1.0, target_loss=1e-9))
    status, stdout, err = run_cli(capsys, "train", path, "--out", out, "--quiet", "--no-plots")
    assert status == 0, err
    a = arrays(out)
    config = cfg.load(path)
    steps = config.train.eval_steps()
    assert a["train_loss"].shape == (1, 2, 1, 2, len(steps))       # program, initializer, grid, seed, step
    assert a["grad_w_norm"].shape == (1, 2, 1, 2, len(steps), 3)   # ..., step, layer (readout included)
    assert a["distinct_units"].shape == (1, 2, 1, 2, 2)            # ..., hidden layer
    # Targets no member reaches: NaN steps (never 0 or the last step), n_reached 0, not an error.
    assert np.isnan(a["steps_to_loss"]).all()
    rows = [r for r in summary(out) if r["statistic"] == "steps_to_loss"]
    assert len(rows) == 2 and all(r["n_reached"] == "0" and r["mean"] == "nan" for r in rows)
    assert all(r["n_reached"] == "" for r in summary(out) if not r["statistic"].startswith("steps_to_"))
    assert "not reached (0/2)" in stdout
    # the zeros member never breaks the symmetry; the report's last column says so
    zeros_line = next(line for line in stdout.splitlines() if " zeros " in line)
    assert zeros_line.rstrip().endswith(" 1")
    results = training.train(config, out=str(out), progress=False)  # a finished folder: nothing recomputed
    assert results.coords["step"] == list(steps)
    assert results.meta["data"]["n_train"] == 72 and len(results.meta["sessions"]) == 1


def test_a_member_that_diverges_is_recorded_and_the_others_finish(tmp_path):
    data = tiny()
    data["grid"] = {"learning_rate": [0.05, 1e12]}
    results = training.train(cfg.from_dict(data, source=str(tmp_path / "d.toml")), out=str(tmp_path / "o"),
                             progress=False)
    diverged = results.get("diverged")          # (initializer, grid point, seed)
    assert diverged[0, 1].all() and not diverged[:, 0].any()
    loss = results.get("final_train_loss")
    assert np.isfinite(loss[:, 0]).all()
    rows = [r for r in summary(tmp_path / "o") if r["statistic"] == "diverged"]
    assert {r["learning_rate"] for r in rows} == {"0.05", "1e+12"}


def test_resume_after_an_interruption_equals_one_run(tmp_path):
    data = tiny()
    data["sweep"]["seeds"] = 8  # two chunks of one vmap block (4 seeds) on one device
    config = cfg.from_dict(data, source="r.toml")
    whole = training.train(config, out=str(tmp_path / "whole"), progress=False)
    assert training.train(config, out=str(tmp_path / "cut"), progress=False, stop_after_chunks=1) is None
    assert not (tmp_path / "cut" / "arrays.npz").exists()
    resumed = training.train(config, out=str(tmp_path / "cut"), progress=False)
    assert len(resumed.meta["sessions"]) == 2
    for name, value in whole.arrays.items():
        np.testing.assert_array_equal(resumed.arrays[name], value, err_msg=name)


def test_resuming_on_changed_data_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    np.savez(path, x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    data = tiny()
    data["data"] = {"name": "npz", "path": str(path)}
    data["sweep"]["seeds"] = 8
    config = cfg.from_dict(data, source="n.toml")
    training.train(config, out=str(tmp_path / "o"), progress=False, stop_after_chunks=1)
    np.savez(path, x_train=x[:30] + 1.0, y_train=y[:30], x_test=x[30:], y_test=y[30:])
    with pytest.raises(ResultsError, match=r"was trained on other data .*fresh=True"):
        training.train(config, out=str(tmp_path / "o"), progress=False)


def test_a_training_config_round_trips_through_toml_and_the_hash_sees_its_keys():
    data = tiny(clip_global_norm=1.0, target_accuracy=0.5)
    data["train"]["learning_rate"] = {"name": "cyclical", "base": 0.001, "max": 0.1, "step_size": 4}
    config = cfg.from_dict(data, source="t.toml")
    assert cfg.from_dict(tomllib.loads(config.to_toml()), source="t.toml") == config
    changed = tiny(clip_global_norm=2.0, target_accuracy=0.5)
    changed["train"]["learning_rate"] = data["train"]["learning_rate"]
    assert cfg.from_dict(changed, source="t.toml").config_hash() != config.config_hash()


# -- bad input: one line, exit 2, nothing written --------------------------------------------------
def _npz(tmp_path, **arrays) -> str:
    rng = np.random.default_rng(1)
    base = {"x_train": rng.normal(size=(20, 3)), "y_train": rng.integers(0, 2, 20),
            "x_test": rng.normal(size=(6, 3)), "y_test": rng.integers(0, 2, 6)}
    base.update(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return str(path)


def _bad_npz(tmp_path, case):
    rng = np.random.default_rng(2)
    return {
        "lengths": lambda: _npz(tmp_path, y_train=rng.integers(0, 2, 19)),
        "nan": lambda: _npz(tmp_path, x_train=np.where(np.eye(20, 3) > 0, np.nan, 1.0)),
        "inf": lambda: _npz(tmp_path, x_test=np.full((6, 3), np.inf)),
        "label_range": lambda: _npz(tmp_path, y_test=np.array([0, 1, 2, 0, 1, 5])),
        "label_float": lambda: _npz(tmp_path, y_train=np.full(20, 0.5)),
        "missing": lambda: _npz(tmp_path, y_test=None),
    }[case]()


@pytest.mark.parametrize("case, match", [
    ("lengths", r"data\.path = .*x_train and y_train must have the same number of examples"),
    ("nan", r"data\.path = .*x_train .*(NaN|finite)"),
    ("inf", r"data\.path = .*x_test .*(inf|finite)"),
    ("label_range", r"data\.path = .*y_test.*\[0, "),
    ("label_float", r"data\.path = .*y_train.*integer"),
    ("missing", r"data\.path = .*missing \['y_test'\]"),
])
def test_bad_data_is_one_line_and_status_2(tmp_path, capsys, case, match):
    data = tiny()
    data["data"] = {"name": "npz", "path": _bad_npz(tmp_path, case), "n_classes": 3}
    out = tmp_path / "out"
    status, _, err = run_cli(capsys, "train", write(tmp_path, data), "--out", out, "--quiet")
    assert status == 2
    assert err.count("\n") == 1 and re.search(match, err), err
    assert not out.exists()


@pytest.mark.parametrize("change, match", [
    ({"batch": 500}, r"train\.batch = 500: must be <= the training set's 72 examples"),
    ({"steps": 0}, r"train\.steps = 0: must be >= 1"),
    ({"steps": -3}, r"train\.steps = -3: must be >= 1"),
    ({"optimizer": "adamm"}, r"train\.optimizer = \"adamm\": .*Did you mean 'adam'\?"),
    ({"optimizer": {"name": "sgd", "momentom": 0.9}}, r"does not take \['momentom'\].*Did you mean 'momentum'\?"),
    ({"learning_rate": {"name": "cosine_decay", "init_value": 0.1}}, r"Did you mean 'cosine_decay_schedule'\?"),
    ({"learning_rate": {"name": "cyclical", "base": 0.1}}, r"train\.learning_rate = .*cyclical"),
    ({"learning_rate": 0}, r"train\.learning_rate = 0: must be > 0"),
    ({"loss": "mse", "target_accuracy": 2}, r"train\.target_accuracy = 2: must be in \[0, 1\]"),
    ({"clip_global_norm": -1}, r"train\.clip_global_norm = -1: must be > 0"),
])
def test_bad_train_keys_are_one_line_and_status_2(tmp_path, capsys, change, match):
    out = tmp_path / "out"
    status, _, err = run_cli(capsys, "train", write(tmp_path, tiny(**change)), "--out", out, "--quiet")
    assert status == 2 and err.count("\n") == 1, err
    assert re.search(match, err), err
    assert not out.exists()


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(probes={"forward": True}), r"probes: only in sweeps"),
    (lambda d: d.update(inputs={"batch": 4}), r"inputs: only in sweeps"),
    (lambda d: d["data"].update(path="x.npz"), r"data\.path = \"x\.npz\": not used with name = \"teacher\""),
    (lambda d: d["data"].update(name="mnist"), r"data\.name = \"mnist\": must be one of 'digits', 'teacher', 'npz'"),
    (lambda d: d.update(data={"name": "npz"}), r"data\.path: missing"),
    (lambda d: d.update(data={"name": "npz", "path": "nowhere.npz"}), r"data\.path = \"nowhere\.npz\": no such file"),
    (lambda d: d.update(data={"name": "teacher", "task": "regression"}),
     r"train\.loss = \"xent\": xent needs class labels"),
    (lambda d: d.update(grid={"learning_rate": [0.1, -1.0]}), r"grid\.learning_rate\[1\] = -1\.0: must be > 0"),
])
def test_misplaced_and_bad_data_keys(edit, match):
    data = tiny()
    if "regression" in match or "xent" in match:
        data["train"]["loss"] = "xent"
    edit(data)
    with pytest.raises(ConfigError, match=match):
        cfg.from_dict(data, source="c.toml")


def test_a_sweep_key_in_a_sweep_is_fine_but_training_keys_are_refused_there():
    sweep = {"network": {"depth": 2, "width": 4, "activation": "relu"}, "sweep": {"initializers": ["he_normal"]},
             "grid": {"learning_rate": [0.1]}}
    with pytest.raises(ConfigError, match=r"grid\.learning_rate = \[0\.1\]: only in training runs"):
        cfg.from_dict(sweep, source="s.toml")
    del sweep["grid"]
    sweep["data"] = {"name": "digits"}
    with pytest.raises(ConfigError, match=r"data: only in training runs"):
        cfg.from_dict(sweep, source="s.toml")


def test_each_command_refuses_the_other_kind(tmp_path, capsys):
    status, _, err = run_cli(capsys, "sweep", write(tmp_path, tiny()), "--out", tmp_path / "o", "--quiet")
    assert status == 2 and "is a training config" in err and "jaxinit train" in err
    status, _, err = run_cli(capsys, "train", "quickstart", "--out", tmp_path / "o", "--quiet")
    assert status == 2 and "is a sweep config" in err and "jaxinit sweep" in err
    assert not (tmp_path / "o").exists()


def test_lsuv_in_a_training_config_fits_the_first_minibatch_and_warns_once_per_run(tmp_path):
    data = tiny()
    data["network"]["activation"] = "tanh"
    data["sweep"]["initializers"] = ["he_normal", {"name": "lsuv", "base": "orthogonal", "tol": 1e-9, "max_iter": 1}]
    with pytest.warns(UserWarning, match=r"LSUV did not reach its tolerance .*layer 'input'") as caught:
        results = training.train(cfg.from_dict(data, source="l.toml"), out=str(tmp_path / "o"), progress=False)
    assert sum("LSUV" in str(w.message) for w in caught) == 1
    variance = results.get("lsuv_variance")       # (initializer, grid point, seed, layer 0..depth)
    assert variance.shape == (2, 1, 2, 3)
    assert np.all(np.abs(variance[1] - 1.0) < 0.05)  # one rescaling already lands near the target
