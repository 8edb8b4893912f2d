"""``jaxinit bench --train``: a tiny real run of every contender, the contenders' parity, the report, the options.

Nothing here asserts speed (the benchmark is a report). The parity tests train one member from the same
weights on the same minibatches with jaxinit's engine and with each baseline's own code (the functions
its worker times), in this process, and compare the evaluations.
"""

from __future__ import annotations

import argparse
import json
import math

import jax
import numpy as np
import pytest

import jaxinit
from jaxinit import nets
from jaxinit.bench import options, train_bench, train_report
from jaxinit.bench.harness import Settings
from jaxinit.bench.train_work import FLATNESS_STEPS, TRAIN_RUNS, WORKS, TrainWork, work_names
from jaxinit.lab.data import digits
from jaxinit.lab.engine.train import DATA_BRANCH

TINY_CEILING = {"matmul_n": 64, "reps": 1, "min_time": 0.01}


# -- a tiny real run --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.getbasetemp()
    (out / "evals").mkdir()
    return train_bench.run_train_benchmark(["quick"], settings=Settings(timeout=300), ceiling_options=TINY_CEILING,
                                           flatness_steps=(), workdir=out, evals_dir=out / "evals")


def test_quick_run_runs_every_contender(quick_report):
    (section,) = quick_report["works"]
    work = WORKS["quick"]
    assert section["work"]["name"] == "quick" and section["work"]["members"] == work.members
    for key in TRAIN_RUNS:
        run = section["runs"][key]
        assert run["available"], (key, run.get("reason"))
        for field in ("end_to_end_s", "run_s", "cpu_s", "peak_rss_mb", "import_s", "member_steps_per_s",
                      "fraction_of_ceiling"):
            assert math.isfinite(run[field]) and run[field] > 0, (key, field, run[field])
        assert run["end_to_end_s"] > run["run_s"] + run["compile_s"]
        assert run["member_steps_per_s"] == pytest.approx(work.members * work.steps / run["run_s"])
        # Every contender trained: the final training loss fell below the untrained log(10) = 2.30.
        assert set(run["final_train_loss"]) == set(work.inits)
        assert all(loss < math.log(10) for loss in run["final_train_loss"].values()), (key, run["final_train_loss"])
    assert section["runs"]["jaxinit"]["diverged"] == 0


def test_quick_run_ratios_and_ceiling(quick_report):
    (section,) = quick_report["works"]
    runs = section["runs"]
    for key in ("flax_loop", "jax_scan", "torch_loop"):
        r = section["ratios"][key]
        assert r["end_to_end"] == pytest.approx(runs[key]["end_to_end_s"] / runs["jaxinit"]["end_to_end_s"])
        assert r["run"] == pytest.approx(runs[key]["run_s"] / runs["jaxinit"]["run_s"])
    ceiling = quick_report["ceiling"]
    assert ceiling["available"] and ceiling["measurements"] == 2 and ceiling["matmul_flops_per_s"] > 0
    flops = section["flops"]["train"]
    work = WORKS["quick"]
    d = section["data"]
    assert flops == work.members * work.steps * 3 * work.batch * 2 * (
        d["in_dim"] * work.width + (work.depth - 1) * work.width**2 + work.width * d["out_dim"])
    assert runs["jaxinit"]["fraction_of_ceiling"] == pytest.approx(
        flops / ceiling["matmul_flops_per_s"] / runs["jaxinit"]["run_s"])
    assert section["targets"] == []  # the quick work has none; T0 and T1 do
    assert section["flatness"]["ratio"] is None and section["flatness_target"]["met"] is None


def test_quick_run_table_and_saved_files(quick_report, tmp_path, monkeypatch, capsys):
    text = train_report.format_train_table(quick_report)
    for label in TRAIN_RUNS.values():
        assert label in text
    assert "ratios: baseline time / jaxinit time" in text and "vs (b) jax scan" in text
    assert "sanity: final training loss / test accuracy" in text
    # run_from_args prints the table and saves it and the JSON (the run itself is the one above).
    monkeypatch.setattr(train_bench, "run_train_benchmark", lambda names, **kw: quick_report)
    out, js = tmp_path / "r" / "train.txt", tmp_path / "r.json"
    args = _parse(["--train", "--quick", "--out", str(out), "--json", str(js)])
    assert options.run_from_args(args) == 0
    assert out.read_text() == text
    assert json.loads(js.read_text())["format"] == train_report.TRAIN_REPORT_FORMAT
    assert "report saved to" in capsys.readouterr().out


# -- parity: the contenders compute the same thing ----------------------------------------------------
@pytest.fixture(scope="module")
def parity_case(quick_report, tmp_path_factory):
    """One member of the quick run's jaxinit worker (he_normal, seed 1): its evaluations as the worker
    saved them, and its initial weights and minibatch order rebuilt from the engine's documented keys
    (jaxinit.lab.engine.train: kernels are nets.init's with key fold_in(key(0), seed); epoch e of the seed
    is permutation(fold_in(fold_in(fold_in(key(0), DATA_BRANCH), seed), e), n_train))."""
    work, seed, init = WORKS["quick"], 1, 0
    with np.load(tmp_path_factory.getbasetemp() / "evals" / "quick.npz") as f:
        evals = {k: f[k][init, 0, seed] for k in f.files}
    data = digits(work.test_fraction)
    params = nets.init(jax.random.fold_in(jax.random.key(0), seed), data.in_dim, work.width, work.depth, data.out_dim,
                       jaxinit.get(work.inits[init]))
    layers = [(params["input"]["kernel"], params["input"]["bias"])]
    layers += [(params["hidden"]["kernel"][i], params["hidden"]["bias"][i]) for i in range(work.depth - 1)]
    layers += [(params["readout"]["kernel"], params["readout"]["bias"])]
    layers = [(np.asarray(w), np.asarray(b)) for w, b in layers]
    dkey = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), DATA_BRANCH), seed)
    per_epoch, b = data.n_train // work.batch, work.batch
    order = np.stack([np.asarray(jax.random.permutation(jax.random.fold_in(dkey, t // per_epoch), data.n_train))[
        (t % per_epoch) * b:(t % per_epoch + 1) * b] for t in range(work.steps)]).astype(np.int32)
    return {"spec": work.spec(), "data": data.arrays(), "layers": layers, "order": order, "evals": evals}


def _check(evals, case, rtol):
    for name, want in case["evals"].items():
        np.testing.assert_allclose(np.asarray(evals[name]), want, rtol=rtol, atol=rtol, err_msg=name)
    assert case["evals"]["train_loss"][-1] < case["evals"]["train_loss"][0]  # it trained


# float32 throughout. Measured bitwise equal at this size; the programs may still differ in summation
# order elsewhere (vmapped vs plain matmuls, XLA's fusions): a few ulps per step over 6 steps stay below 1e-6.
JAX_RTOL = 1e-6


def test_flax_loop_trains_what_jaxinit_trains(parity_case):
    from jaxinit.bench import train_flax_worker

    trainer = train_flax_worker.Trainer(parity_case["spec"], parity_case["data"])
    _check(trainer.run_member(train_flax_worker.to_flax(parity_case["layers"]), parity_case["order"]), parity_case,
           JAX_RTOL)


def test_jax_scan_trains_what_jaxinit_trains(parity_case):
    from jaxinit.bench import train_jax_worker

    trainer = train_jax_worker.Trainer(parity_case["spec"], parity_case["data"])
    _check(trainer.run_member(parity_case["layers"], parity_case["order"]), parity_case, JAX_RTOL)


# PyTorch's CPU kernels (its matmuls, its own log-softmax) round differently from XLA's: measured 1.1e-7
# relative after 6 steps (a few float32 ulps); 1e-5 leaves a margin of ~100x and still fails on any real
# difference (a missed momentum term or a transposed kernel moves the losses by > 1e-2).
TORCH_RTOL = 1e-5


def test_torch_loop_trains_what_jaxinit_trains(parity_case):
    torch = pytest.importorskip("torch")
    from jaxinit.bench import train_torch_worker

    trainer = train_torch_worker.Trainer(torch, parity_case["spec"], parity_case["data"], threads=1)
    trainer.set_layers(parity_case["layers"])
    _check(trainer.run_member(parity_case["order"]), parity_case, TORCH_RTOL)


# -- derived figures on a synthetic report ------------------------------------------------------------
def _run(end, compile_s, run_s, cpu):
    return {"available": True, "end_to_end_s": end, "compile_s": compile_s, "run_s": run_s, "cpu_s": cpu,
            "wall_without_compile_s": end - compile_s, "final_train_loss": {}, "final_test_accuracy": {}}


def test_targets_met_and_missed_never_raised():
    work = WORKS["T0"]
    runs = {"jaxinit": _run(20.0, 5.0, 10.0, 30.0), "flax_loop": _run(50.0, 2.0, 45.0, 60.0),
            "jax_scan": _run(25.0, 3.0, 20.0, 40.0), "torch_loop": {"available": False, "reason": "skipped"}}
    report = {"ceiling": {"available": True, "matmul_n": 2048, "matmul_flops_per_s": 1e11, "shapes": []},
              "works": [{"work": work.spec(), "data": {"n_train": 1347, "n_test": 450, "in_dim": 64, "out_dim": 10},
                         "runs": runs, "flatness": {"rows": [
                             {"steps": FLATNESS_STEPS[0], "available": True, "compile_s": 4.0, "compile_cpu_s": 4.0},
                             {"steps": FLATNESS_STEPS[1], "available": True, "compile_s": 9.0,
                              "compile_cpu_s": 7.0}]}}]}
    train_report.derive(report)
    (s,) = report["works"]
    marks = {t["kind"]: (t["measured"], t["met"]) for t in s["targets"]}
    assert marks["flax_loop"] == (2.5, True) and marks["jax_scan"] == (1.25, False)
    assert marks["torch_loop"] == (None, None)
    ideal = s["flops"]["train"] / 1e11
    assert marks["ceiling"] == (pytest.approx(ideal / 10.0), ideal / 10.0 >= 0.5)
    assert s["flatness"]["ratio"] == pytest.approx(1.75) and s["flatness"]["met"] is False  # CPU seconds
    assert s["flatness"]["wall_ratio"] == pytest.approx(2.25)
    text = train_report.format_train_table(report)
    assert "MISSED" in text and "met" in text and "n/a" in text and "skipped" in text


def test_flatness_compiles_each_step_count_in_its_own_process(monkeypatch):
    calls = []

    def fake_run(key, spec, settings):
        calls.append((key, spec))
        proc = train_bench.Proc(0, 3.0, 2.5, 100.0, "", "", False)
        return proc, {"compile_s": 2.0 + spec["steps"] / 10_000, "compile_cpu_s": 1.5}

    monkeypatch.setattr(train_bench, "_run", fake_run)
    flat = train_bench.measure_flatness(WORKS["T1"], "data.npz")
    assert [(k, s["steps"], s["compile_only"], s["depth"]) for k, s in calls] == [
        ("jaxinit", 100, True, 3), ("jaxinit", 10_000, True, 3)]
    assert [r["compile_s"] for r in flat["rows"]] == [2.01, 3.0]
    section = {"flatness": flat}
    assert train_report._flatness(section)["ratio"] == 1.0 and train_report._flatness(section)["met"] is True


# -- the work and the options ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad, match", [
    ({"depth": 0}, "depth must be an integer >= 1"),
    ({"steps": 120, "eval_every": 50}, "steps must be a multiple of eval_every"),
    ({"inits": ("he_normal", "nope")}, "inits must be some of"),
    ({"momentum": 1.0}, "momentum must be a number in"),
    ({"learning_rate": -0.1}, "learning_rate must be a number in"),
])
def test_train_work_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainWork("x", **bad)


def test_work_names():
    assert work_names("both") == ("T0", "T1") and work_names("T1") == ("T1",)
    with pytest.raises(ValueError, match="work must be one of T0, T1, both, quick; got 'T2'"):
        work_names("T2")
    with pytest.raises(ValueError, match="works must be some of"):
        train_bench.run_train_benchmark(["T2"])
    with pytest.raises(ValueError, match="repeats must be an integer >= 1"):
        train_bench.run_train_benchmark(["quick"], repeats=0)


def _parse(argv):
    parser = argparse.ArgumentParser(prog="jaxinit bench")
    options.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_bad_options_give_clear_errors(capsys):
    from jaxinit import cli

    with pytest.raises(SystemExit) as err:
        cli.main(["bench", "--train", "--work", "T2"])
    assert err.value.code == 2
    assert "argument --work: choose from T0, T1, both; got 'T2'" in capsys.readouterr().err
    for argv, message in (
        (["bench", "--train", "--depth", "3"], "--depth belong(s) to the sweep benchmark"),
        (["bench", "--work", "T0"], "--work and --quick belong to --train"),
        (["bench", "--train", "--work", "T0", "--quick"], "--quick replaces --work"),
        (["bench", "--train", "--catalog"], "--train and --catalog are two benchmarks"),
    ):
        assert cli.main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
