"""``jaxinit bench``: the report's fields, the table, and a clean skip of the optional PyTorch baseline.

Nothing here asserts speed (the benchmark is a report, not a timed test). One tiny real run (depth 3,
width 16, 2 seeds, 2 initializers, torch simulated away) exercises every worker end to end; the
rest runs on synthetic reports or mocked processes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxinit import bench
from jaxinit.bench import harness, modes, options
from jaxinit.lab import config as config_lib

TINY = bench.Work(inits=("he_normal", "glorot_normal"), seeds=2, depth=3, width=16, batch=8)
TINY_CEILING = {"matmul_n": 128, "rng_n": 2**14, "reps": 1, "min_time": 0.01}


def _hide_torch(monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "torch" or name.startswith("torch.") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.fixture(scope="module")
def tiny_report():
    with pytest.MonkeyPatch.context() as mp:
        _hide_torch(mp)
        return bench.run_benchmark(TINY, runner="python", settings=bench.Settings(timeout=240),
                                   ceiling_options=TINY_CEILING)


def _positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


# -- the real tiny run ---------------------------------------------------------------------------
RUN_FIELDS = ("end_to_end_s", "compile_s", "run_s", "wall_without_compile_s", "per_network_s", "peak_rss_mb",
              "cpu_s", "achieved_flops_per_s", "fraction_of_matmul_peak", "fraction_of_ceiling",
              "ideal_per_network_s", "random_numbers_per_network", "import_s")


@pytest.mark.parametrize("key", ["jaxinit", "flax_loop", "flax_vmap"])
def test_tiny_run_has_every_field(tiny_report, key):
    run = tiny_report["runs"][key]
    assert run["available"], run.get("reason")
    for field in RUN_FIELDS:
        assert _positive(run[field]), (field, run[field])
    assert run["end_to_end_s"] >= run["compile_s"]
    assert math.isclose(run["per_network_s"], run["run_s"] / TINY.networks)
    assert set(run["q_last"]) == set(run["q_first"]) == set(TINY.inits)
    assert all(_positive(q) for q in (*run["q_last"].values(), *run["q_first"].values()))
    assert "device_peak_mb" in run  # None on the CPU


def test_tiny_run_ceiling_measures_large_and_work_shaped_draws(tiny_report):
    c = tiny_report["ceiling"]
    for name in ("normal", "truncated_normal", "uniform"):
        assert _positive(c["rng_per_s_large"][name]) and _positive(c["rng_per_s_work"][name])
        assert c["rng_per_s"][name] == max(c["rng_per_s_large"][name], c["rng_per_s_work"][name])
    assert c["rng_devices"] >= 1


def test_tiny_run_report_shape(tiny_report):
    report = tiny_report
    assert report["format"] == bench.REPORT_FORMAT and report["mode"] == "compare"
    assert report["work"]["networks"] == 4 and report["work"]["inits"] == list(TINY.inits)
    assert report["runs"]["jaxinit"]["runner"] == "python"
    env = report["environment"]
    assert env["cpu_count"] >= 1 and env["openblas_num_threads"] and bench.XLA_WORKAROUND in env["xla_flags"]
    assert env["jaxinit_bytecode"] is True  # the children import byte-compiled sources, as installed
    c = report["ceiling"]
    assert c["available"], c.get("reason")
    assert _positive(c["matmul_flops_per_s"]) and _positive(c["work_matmul_flops_per_s"])
    assert c["measurements"] == 2 and c["matmul_flops_per_s"] == max(c["matmul_flops_per_s_each"])
    assert set(c["rng_per_s"]) == {"normal", "truncated_normal", "uniform"}
    assert all(_positive(v) for v in c["rng_per_s"].values())
    # he_normal and glorot_normal are one noise group in the engine: one draw per (seed, layer)
    assert c["noise_groups"] == [{"kind": "raw:truncated_normal", "members": ["he_normal", "glorot_normal"]}]
    j, a = report["runs"]["jaxinit"], report["runs"]["flax_loop"]
    assert j["random_numbers_per_network"] < a["random_numbers_per_network"]
    for key in ("flax_loop", "flax_vmap"):
        for kind in ("end_to_end", "per_network", "without_compile", "cpu_time"):
            assert _positive(report["ratios"][key][kind])
    assert all(v is None for v in report["ratios"]["torch_loop"].values())
    json.loads(json.dumps(report))  # --json can save it as is


def test_tiny_run_baselines_compute_the_same_thing(tiny_report):
    """Loop and vmap run the same networks (same keys): the same final-layer q."""
    loop, vmap = tiny_report["runs"]["flax_loop"]["q_last"], tiny_report["runs"]["flax_vmap"]["q_last"]
    for name in TINY.inits:
        assert vmap[name] == pytest.approx(loop[name], rel=1e-4)


def test_tiny_run_torch_reported_unavailable(tiny_report):
    torch = tiny_report["runs"]["torch_loop"]
    assert torch["available"] is False and "torch is not importable" in torch["reason"]
    by_baseline = {(t["kind"], t["baseline"]): t for t in tiny_report["targets"]}
    assert by_baseline[("end_to_end", "torch_loop")]["met"] is None
    assert isinstance(by_baseline[("end_to_end", "flax_vmap")]["met"], bool)
    table = bench.format_table(tiny_report)
    assert "(c) torch loop: unavailable: torch is not importable" in table


def test_tiny_run_table(tiny_report):
    table = bench.format_table(tiny_report)
    assert "ratios: baseline time / jaxinit time" in table
    for label in ("vs (a) flax loop", "vs (b) flax jit(vmap)", "vs (c) torch loop"):
        assert label in table
    assert "jaxinit sweep (python)" in table and "ceiling (cpu" in table
    assert "end to end >= 5x faster than jit(vmap(flax))" in table
    assert "note: the work differs" in table


# -- pieces without processes ---------------------------------------------------------------------
def test_measure_torch_skips_cleanly_without_torch(monkeypatch):
    _hide_torch(monkeypatch)
    assert bench.torch_available() is False
    run = bench.measure_torch(TINY)
    assert run == {"name": bench.RUNS["torch_loop"], "available": False,
                   "reason": "unavailable: torch is not importable (pip install 'jaxinit[bench]')"}


def test_work_config_is_valid(tmp_path):
    work = bench.Work(inits=("he_normal", "orthogonal"), seeds=3, depth=4, width=8, batch=2, gradients=True)
    path = tmp_path / "bench.toml"
    path.write_text(work.toml(tmp_path / "out"))
    cfg = config_lib.load(path)
    assert cfg.sweep.seeds == 3 and cfg.network.depth == (4,) and cfg.network.width == (8,)
    assert cfg.inputs.batch == 2 and cfg.sweep.labels == ("he_normal", "orthogonal")
    assert cfg.probes.forward and cfg.probes.gradients and not cfg.probes.theory
    assert cfg.output.dir == str(tmp_path / "out")
    assert work.networks == 6
    assert work.flops_per_network() > 4 * 2 * 2 * 8**2


@pytest.mark.parametrize("bad", [dict(inits=("zeros",)), dict(inits=()), dict(seeds=0), dict(depth=-1),
                                 dict(width=2.5), dict(inits=("he_normal", "he_normal"))])
def test_work_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        bench.Work(**bad)


def _fake_proc(**kw):
    base = dict(returncode=0, wall_s=2.0, cpu_s=1.5, peak_rss_mb=300.0, stdout="", stderr="", timed_out=False)
    return bench.Proc(**{**base, **kw})


def test_cli_runner_command_and_meta(monkeypatch):
    """The CLI runner calls `python -m jaxinit.cli sweep CONFIG --out DIR --fresh` and reads meta.json."""
    seen = {}

    def fake_run(cmd, env=None, timeout=None, cwd=None):
        seen["cmd"], seen["env"] = list(cmd), env
        out = Path(cmd[cmd.index("--out") + 1])
        out.mkdir(parents=True)
        (out / "meta.json").write_text(json.dumps({"timings": {"compile_s": {"p": 0.5}, "run_s": {"p": 0.25},
                                                               "wall_s": 0.8}, "device": {"backend": "cpu"}}))
        q = np.ones((1, 2, 1, 2, 3))
        q[0, 1] = 0.5
        q[0, 0, 0, :, 0] = 2.0
        np.savez(out / "arrays.npz", q=q)
        return _fake_proc()

    monkeypatch.setattr(harness, "run_process", fake_run)
    monkeypatch.setattr(harness, "cli_available", lambda: True)
    run = bench.measure_jaxinit(TINY, settings=bench.Settings(openblas_threads=3))
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "jaxinit.cli", "sweep"] and cmd[4].endswith(".toml")
    assert "--fresh" in cmd and "--no-plots" in cmd
    assert seen["env"]["OPENBLAS_NUM_THREADS"] == "3"
    assert bench.XLA_WORKAROUND in seen["env"]["XLA_FLAGS"]
    assert run["available"] and run["runner"] == "cli"
    assert run["compile_s"] == 0.5 and run["run_s"] == 0.25 and run["end_to_end_s"] == 2.0
    assert run["wall_without_compile_s"] == 1.5 and run["per_network_s"] == 0.25 / 4
    assert run["q_last"] == {"he_normal": 1.0, "glorot_normal": 0.5}
    assert run["q_first"] == {"he_normal": 2.0, "glorot_normal": 0.5}


def test_failed_child_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(harness, "run_process",
                        lambda *a, **k: _fake_proc(returncode=1, stderr="Traceback\nValueError: boom\n"))
    run = bench.measure_flax(TINY, "loop")
    assert run["available"] is False and run["reason"] == "failed: exit status 1: ValueError: boom"


def test_run_process_measures_a_child():
    proc = bench.run_process([sys.executable, "-c", "print('BENCH_RESULT {\"x\": 1}')"], timeout=60)
    assert proc.returncode == 0 and proc.result() == {"x": 1}
    assert proc.wall_s > 0 and proc.peak_rss_mb > 0 and proc.cpu_s >= 0


def test_run_process_timeout():
    proc = bench.run_process([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert proc.timed_out and proc.returncode != 0 and "timed out" in proc.failure()


def test_child_environment(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/tmp/cache")
    env = bench.Settings().env()
    assert "JAX_COMPILATION_CACHE_DIR" not in env  # every contender compiles cold
    assert env["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {bench.XLA_WORKAROUND}"
    assert bench.Settings(xla_workaround=False).env()["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"
    monkeypatch.setenv("XLA_FLAGS", bench.XLA_WORKAROUND)
    assert bench.Settings().env()["XLA_FLAGS"] == bench.XLA_WORKAROUND  # not twice


def test_same_xla_flags_give_the_baselines_jaxinits_compile_setting(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert bench.XLA_FAST_COMPILE not in bench.Settings().env()["XLA_FLAGS"]
    flags = bench.Settings(same_xla_flags=True).env()["XLA_FLAGS"].split()
    assert flags == [bench.XLA_WORKAROUND, bench.XLA_FAST_COMPILE]
    from jaxinit import runtime

    assert bench.XLA_FAST_COMPILE == runtime.XLA_FAST_COMPILE  # the bench's copy (it never imports JAX)


def test_median_run_takes_each_figure_over_the_rounds():
    rounds = [{"name": "x", "available": True, "end_to_end_s": t, "compile_s": c, "note": "a", "ok": True}
              for t, c in ((5.0, 1.0), (9.0, 3.0), (6.0, 2.5))]
    rounds.append({"name": "x", "available": False, "reason": "timed out"})
    run = bench.median_run(rounds)
    assert run["end_to_end_s"] == 6.0 and run["compile_s"] == 2.5 and run["rounds"] == 3
    assert run["end_to_end_s_each"] == [5.0, 9.0, 6.0] and run["note"] == "a" and run["ok"] is True
    assert bench.median_run(rounds[:1]) == rounds[0]
    assert bench.median_run(rounds[3:])["available"] is False


def test_openblas_setting(monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert bench.openblas_setting() == "1"
    assert bench.openblas_setting(0) is None and "OPENBLAS_NUM_THREADS" not in bench.child_env(0)
    assert bench.openblas_setting(2) == "2"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    assert bench.openblas_setting() == "4" and bench.openblas_setting(0) == "4"


# -- synthetic reports: ratios, targets, the table -------------------------------------------------
def _run(e2e, compile_s, run_s, networks=128, **extra):
    return {"available": True, "end_to_end_s": e2e, "compile_s": compile_s, "run_s": run_s,
            "wall_without_compile_s": e2e - compile_s, "per_network_s": run_s / networks, "peak_rss_mb": 500.0,
            "cpu_s": e2e, **extra}


def _synthetic(seeds=32, torch=True):
    work = bench.Work(seeds=seeds)
    runs = {"jaxinit": {**_run(4.0, 1.0, 1.0, work.networks), "name": "jaxinit sweep (cli)"},
            "flax_loop": _run(40.0, 20.0, 10.0, work.networks),
            "flax_vmap": _run(25.0, 19.8, 4.5, work.networks),
            "torch_loop": (_run(3.4, 0.0, 3.0, work.networks) if torch else
                           {"available": False, "reason": "unavailable: torch is not importable"})}
    ratios = bench.compute_ratios(runs)
    return {"format": bench.REPORT_FORMAT, "mode": "compare", "work": work.as_dict(),
            "environment": {"cpu_count": 2, "python": "3.11", "loadavg_before": [1.0, 1.0, 1.0],
                            "loadavg_after": [1.5, 1.0, 1.0], "openblas_num_threads": "1"},
            "runs": runs, "ceiling": {"available": False, "reason": "skipped (--skip)"}, "ratios": ratios,
            "target_set": bench.target_set(work), "targets": bench.evaluate_targets(work, ratios), "notes": []}


def test_ratios_and_targets():
    report = _synthetic()
    r = report["ratios"]
    assert r["flax_vmap"]["end_to_end"] == pytest.approx(25.0 / 4.0)
    assert r["flax_vmap"]["per_network"] == pytest.approx(4.5)
    assert r["torch_loop"]["end_to_end"] == pytest.approx(3.4 / 4.0)
    assert r["flax_loop"]["without_compile"] == pytest.approx(20.0 / 3.0)
    met = {(t["kind"], t["baseline"]): t["met"] for t in report["targets"]}
    assert met == {("end_to_end", "flax_vmap"): True, ("end_to_end", "torch_loop"): True,
                   ("per_network", "flax_vmap"): True, ("per_network", "torch_loop"): True}
    big = _synthetic(seeds=256)
    assert big["target_set"] == "256_seeds"
    met = {(t["kind"], t["baseline"]): t["met"] for t in big["targets"]}
    assert met[("end_to_end", "torch_loop")] is False  # 0.85x < 1.5x


def test_format_table_synthetic():
    table = bench.format_table(_synthetic())
    lines = table.splitlines()
    ratio_line = next(line for line in lines if line.startswith("vs (b) flax jit(vmap)"))
    assert "6.25x" in ratio_line and "4.50x" in ratio_line
    assert any(line.startswith("vs (c) torch loop") and "0.85x" in line for line in lines)
    assert any("end to end >= 5x faster than jit(vmap(flax))" in line and line.endswith("met") for line in lines)
    assert "ceiling: skipped (--skip)" in table
    assert "jaxinit sweep (cli)" in table and "none" in table  # torch has no compile step
    missed = bench.format_table(_synthetic(seeds=256))
    assert any("1.5x faster than the PyTorch loop" in line and line.endswith("MISSED") for line in missed.splitlines())


def test_format_table_without_torch():
    table = bench.format_table(_synthetic(torch=False))
    assert "(c) torch loop: unavailable: torch is not importable" in table
    assert any(line.startswith("vs (c) torch loop") and line.split()[-1] == "-" for line in table.splitlines())
    assert any("within 2x of the PyTorch loop" in line and line.endswith("n/a") for line in table.splitlines())


def test_growth_report(monkeypatch):
    def fake(work, runner, settings):
        assert runner == "python"
        d = work.depth
        return {"available": True, "compile_s": 4.0 + d / 1000, "run_s": 0.01 * d, "end_to_end_s": 6.0 + 0.01 * d,
                "peak_rss_mb": 400.0 * (2.0 if d == 1000 else 1.0), "device_peak_mb": None}

    monkeypatch.setattr(modes, "measure_jaxinit", fake)
    report = bench.run_growth(bench.Work(seeds=4), (1000, 10, 100))
    assert [r["depth"] for r in report["growth"]] == [10, 100, 1000]
    assert report["ratios"]["compile"] == pytest.approx(5.0 / 4.01)
    assert report["ratios"]["peak_rss"] == pytest.approx(2.0)
    assert report["ratios"]["device_peak"] is None
    met = {t["kind"]: t["met"] for t in report["targets"]}
    assert met == {"compile": True, "peak_rss": False}
    table = bench.format_table(report)
    assert "ratios depth 1000 / depth 10: compile 1.25x, peak RSS 2.00x" in table
    assert any("peak memory (RSS) at depth 1000 within 1.5x of depth 10" in line and line.endswith("MISSED")
               for line in table.splitlines())
    json.loads(json.dumps(report))


# -- the CLI face -----------------------------------------------------------------------------------
def _parse(*argv):
    parser = argparse.ArgumentParser(prog="jaxinit bench")
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_arguments():
    args = _parse()
    assert (args.seeds, args.depth, args.width, args.batch, args.inits, args.gradients, args.growth) == \
        (None, 50, 256, 128, bench.DEFAULT_INITS, False, False)
    args = _parse("--seeds", "256", "--inits", "he_normal,orthogonal", "--gradients", "--skip", "torch_loop",
                  "--json", "r.json")
    assert args.seeds == 256 and args.inits == ("he_normal", "orthogonal") and args.gradients
    assert args.skip == ("torch_loop",) and args.json == "r.json"
    assert _parse("--growth", "--growth-depths", "10,20").growth_depths == (10, 20)
    assert (args.repeats, args.same_xla_flags) == (1, False)
    assert _parse("--repeats", "3", "--same-xla-flags").repeats == 3
    for bad in (["--inits", "zeros"], ["--seeds", "0"], ["--skip", "jaxinit"], ["--repeats", "0"]):
        with pytest.raises(SystemExit):
            _parse(*bad)


def test_run_from_args_prints_and_saves(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake(work, **kwargs):
        seen["work"], seen["kwargs"] = work, kwargs
        return _synthetic(torch=False)

    monkeypatch.setattr(options, "run_benchmark", fake)
    path = tmp_path / "sub" / "report.json"
    assert bench.run_from_args(_parse("--seeds", "8", "--skip", "flax_loop", "--json", str(path))) == 0
    assert seen["work"].seeds == 8 and seen["kwargs"]["skip"] == ("flax_loop",)
    assert seen["kwargs"]["settings"] == bench.Settings()
    out = capsys.readouterr().out
    assert "ratios: baseline time / jaxinit time" in out and f"report saved to {path}" in out
    assert json.loads(path.read_text())["mode"] == "compare"


def test_run_from_args_growth_uses_fewer_seeds(monkeypatch, capsys):
    seen = {}

    def fake(work, depths, **kwargs):
        seen["work"], seen["depths"] = work, depths
        return {"mode": "growth", "work": {**work.as_dict(), "depths": list(depths)}, "growth": [],
                "ratios": {}, "targets": [], "environment": {}}

    monkeypatch.setattr(options, "run_growth", fake)
    assert bench.run_from_args(_parse("--growth")) == 0
    assert seen["work"].seeds == bench.GROWTH_SEEDS and tuple(seen["depths"]) == bench.GROWTH_DEPTHS
    assert "jaxinit bench --growth" in capsys.readouterr().out


@pytest.mark.parametrize("gradients", [False, True])
def test_random_numbers_count_what_each_run_draws(gradients):
    work = bench.Work(inits=("he_normal", "glorot_normal"), seeds=2, depth=5, width=16, batch=8, gradients=gradients)
    ceiling = {"noise_groups": [{"kind": "raw:truncated_normal", "members": ["he_normal", "glorot_normal"]}],
               "bit_streams": 1}
    readout = 16 * 10
    # jaxinit: one stream per seed and layer for both initializers, one look-ahead stream after the
    # last layer, and with gradients the hidden layers redrawn backwards and the readout twice.
    streams = 16 * 16 * 6 + ((16 * 16 * 4 + 2 * readout) if gradients else 0)
    assert bench.random_numbers(work, "jaxinit", ceiling) == {"uniform": streams / 2, "normal": 8 * 16 / 2}
    baseline = 16 * 16 * 5 + (readout if gradients else 0)
    assert bench.random_numbers(work, "flax_loop", ceiling) == {"truncated_normal": baseline, "normal": 8 * 16}


# -- the workers: real modules, run tiny in their own processes -------------------------------------
WORKER_SPEC = {**TINY.as_dict(), "depth": 2, "width": 8, "batch": 4}


def _run_worker(cmd, timeout=300):
    """Run a worker command; its result line and the modules it imported (``-X importtime``)."""
    cmd = [cmd[0], "-X", "importtime", *cmd[1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=bench.Settings().env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith(bench.RESULT_MARK)]
    assert len(lines) == 1, proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return json.loads(lines[0][len(bench.RESULT_MARK):]), imported


def _top_level(modules):
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_flax_worker_is_a_plain_flax_program(mode):
    """Baselines (a)/(b): the worker prints its timings and q, and never imports jaxinit."""
    result, imported = _run_worker(bench.worker_command("flax_worker", {**WORKER_SPEC, "mode": mode}))
    assert {"flax", "jax"} <= _top_level(imported) and "jaxinit" not in _top_level(imported)
    for field in ("import_s", "compile_s", "run_s", "total_s"):
        assert _positive(result[field]), (field, result)
    assert set(result["q_first"]) == set(result["q_last"]) == set(TINY.inits)
    assert all(_positive(q) for q in (*result["q_first"].values(), *result["q_last"].values()))


def test_flax_worker_runs_with_python_m_too():
    """``python -m jaxinit.bench.flax_worker`` (which imports jaxinit first) computes the same q."""
    spec = {**WORKER_SPEC, "mode": "loop"}
    by_path, _ = _run_worker(bench.worker_command("flax_worker", spec))
    by_module, imported = _run_worker([sys.executable, "-m", "jaxinit.bench.flax_worker", json.dumps(spec)])
    assert "jaxinit" in _top_level(imported)
    assert by_module["q_last"] == by_path["q_last"] and by_module["q_first"] == by_path["q_first"]


@pytest.mark.parametrize("gradients", [False, True])
def test_torch_worker_is_a_plain_pytorch_program(gradients):
    pytest.importorskip("torch")  # baseline (c) is optional: jaxinit[bench]
    spec = {**WORKER_SPEC, "gradients": gradients, "threads": 1}
    result, imported = _run_worker(bench.worker_command("torch_worker", spec))
    assert "torch" in _top_level(imported) and not {"jax", "jaxinit", "flax"} & _top_level(imported)
    assert result["compile_s"] == 0.0 and result["torch_threads"] == 1 and result["backend"] in ("cpu", "cuda")
    assert _positive(result["run_s"]) and _positive(result["import_s"])
    assert set(result["q_first"]) == set(result["q_last"]) == set(TINY.inits)
    assert all(_positive(q) for q in (*result["q_first"].values(), *result["q_last"].values()))


def test_sweep_worker_writes_the_results_of_the_generated_config(tmp_path):
    work = bench.Work(**{k: WORKER_SPEC[k] for k in ("inits", "seeds", "depth", "width", "batch")})
    config_path, out = tmp_path / "bench.toml", tmp_path / "results"
    config_path.write_text(work.toml(out))
    result, _ = _run_worker(bench.worker_command("sweep_worker", {"config": str(config_path), "out": str(out)}))
    assert _positive(result["import_s"]) and result["total_s"] > result["import_s"]
    assert "device_peak_bytes" in result  # None on the CPU
    meta = json.loads((out / "meta.json").read_text())
    assert meta["timings"]["compile_s"] and meta["timings"]["run_s"]
    with np.load(out / "arrays.npz") as arrays:
        assert arrays["q"].shape[1:] == (2, 1, 2, 2)  # (program, initializer, grid point, seed, layer)


def test_ceiling_worker_measures_rates_and_noise_groups():
    spec = {**WORKER_SPEC, **TINY_CEILING}
    result, _ = _run_worker(bench.worker_command("ceiling_worker", spec))
    assert result["matmul_n"] == TINY_CEILING["matmul_n"] and result["work_matmul_shape"] == [4, 8, 8]
    assert _positive(result["matmul_flops_per_s"]) and _positive(result["work_matmul_flops_per_s"])
    assert set(result["rng_per_s"]) == {"normal", "truncated_normal", "uniform"}
    assert result["noise_groups"] == [{"kind": "raw:truncated_normal", "members": ["he_normal", "glorot_normal"]}]
    assert result["bit_streams"] == 1


def test_worker_command_names_only_the_workers():
    cmd = bench.worker_command("torch_worker", {"x": 1})
    assert cmd[:2] == [sys.executable, "-P"] and Path(cmd[2]).name == "torch_worker.py" and Path(cmd[2]).is_file()
    assert json.loads(cmd[3]) == {"x": 1}
    with pytest.raises(ValueError, match="worker must be one of flax_worker, torch_worker"):
        bench.worker_command("bench", {})


# -- the generated config ---------------------------------------------------------------------------
def test_work_config_is_the_config_modules_own(tmp_path):
    """The TOML is the config module's writing of the work's data: loading it gives the same config."""
    work = bench.Work(inits=("glorot_normal", "orthogonal"), seeds=5, depth=7, width=12, batch=3, gradients=True)
    written = tmp_path / "bench.toml"
    written.write_text(work.toml(tmp_path / "out"))
    assert config_lib.load(written) == config_lib.from_dict(work.config_data(tmp_path / "out"))


def test_work_config_does_not_start_a_jax_backend():
    """The parent validates the config without this process's checks: no backend (on a GPU it would
    take the children's memory)."""
    code = ("from jaxinit.bench import Work; Work().toml('/nonexistent/out'); "
            "from jax._src import xla_bridge; print(xla_bridge.backends_are_initialized())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"
