"""The catalog benchmark (``jaxinit bench --catalog``, ``python -m jaxinit.bench.catalog``) run tiny: the
report's structure, its ratios and target checks, the table, and the CLI's wiring. Timings are not
asserted (a benchmark, not a test)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from jaxinit import cli
from jaxinit.bench import catalog as catalog_bench
from jaxinit.bench.catalog_entries import catalog_entries


def test_a_tiny_run_reports_every_cell_with_medians_and_ratios(tmp_path):
    out, report_path = tmp_path / "catalog.txt", tmp_path / "catalog.json"
    status = catalog_bench.main(["--entries", "glorot_uniform", "identity", "--shapes", "8x16", "--repeats", "1",
                                 "--no-model", "--quiet", "--out", str(out), "--json", str(report_path)])
    report = json.loads(report_path.read_text())
    assert status == (1 if report["misses"] else 0)
    assert set(report) == {"meta", "cells", "model", "misses"} and report["model"] is None
    cells = {(c["entry"], c["dtype"], c["mode"]): c for c in report["cells"]}
    assert set(cells) == {(e, d, m) for e in ("glorot_uniform", "identity") for d in catalog_bench.DTYPES
                          for m in catalog_bench.MODES}
    for (entry, _dtype, mode), cell in cells.items():
        ms = cell["ms"]
        assert cell["shape"] == [8, 16] and "refused" not in cell and cell["calls"] == 1
        assert isinstance(ms["jaxinit"], float) and ms["jaxinit"] > 0
        # JAX has glorot_uniform, not identity; torch has both, timed eagerly only
        assert ("jax" in ms) == (entry == "glorot_uniform")
        assert ("torch" in ms) == (mode == "eager")
        if "jax" in ms:
            assert cell["vs_jax"] == pytest.approx(ms["jax"] / ms["jaxinit"])
        if isinstance(ms.get("torch"), float):
            assert cell["vs_torch"] == pytest.approx(ms["torch"] / ms["jaxinit"])
        # eager/jit: against the jitted draw timed beside the eager calls, in the same cell
        assert ("jaxinit_jit" in ms) == (mode == "eager") == ("eager/jit" in cell)
        if mode == "eager":
            assert cell["eager/jit"] == pytest.approx(ms["jaxinit"] / ms["jaxinit_jit"])
    table = out.read_text()
    assert "vs_jax" in table and "eager/jit" in table and f"misses ({len(report['misses'])})" in table
    rows = [line.split()[0] for line in table.splitlines() if line.startswith(("glorot_uniform ", "identity "))]
    assert rows.count("glorot_uniform") == 6 and rows.count("identity") == 6  # a row per cell
    summary = table.split("summary (ratios; above 1: jaxinit faster):")[1].splitlines()
    assert summary[1].startswith("  eager vs jax eager") and " 2 cells, median " in summary[1]  # 2 dtypes


def test_a_shape_an_entry_refuses_by_design_is_reported_not_timed_nor_missed():
    (identity,) = [e for e in catalog_entries() if e.name == "identity"]
    cell = catalog_bench.bench_cell(identity, (2, 4, 8), "float32", "eager", repeats=1, use_torch=True)
    assert cell["refused"].startswith("ValueError: identity(scale=0.5) fills 2-D") and cell["ms"] == {}
    assert catalog_bench.check_targets([cell], noise=0.1) == []
    report = {"meta": {"jax": "0", "torch": None, "device": "cpu", "repeats": 1, "keys_per_vmap": 16},
              "cells": [cell], "model": None, "misses": []}
    table = catalog_bench.format_table(report)
    assert "identity                  2x4x8        float32  eager   refused" in table
    assert "refused by design" in table and "  identity 2x4x8: ValueError: identity(scale=0.5)" in table


def test_a_cell_budget_sets_the_number_of_timed_calls():
    def slow():
        time.sleep(0.02)

    def broken():
        raise ValueError("no such shape")

    medians, calls = catalog_bench._time_interleaved({"slow": slow, "fast": lambda: None, "broken": broken},
                                                     repeats=50, budget_s=0.1)
    # the first round took >= 0.02 s: 0.1 s fits at most 5 rounds, and never fewer than MIN_CALLS
    assert catalog_bench.MIN_CALLS <= calls <= 5 and medians["slow"] >= 20.0
    assert medians["broken"] == "ValueError: no such shape"
    _, calls = catalog_bench._time_interleaved({"fast": lambda: None}, repeats=5, budget_s=0.1)
    assert calls == catalog_bench.MAX_CALLS  # fast calls: more than --repeats, up to MAX_CALLS
    _, calls = catalog_bench._time_interleaved({"fast": lambda: None}, repeats=5)
    assert calls == 5  # no budget: --repeats
    # torch's orthogonal_ in bfloat16: the only call fails, nothing is timed
    assert catalog_bench._time_interleaved({"broken": broken}, 5, 0.1) == ({"broken": "ValueError: no such shape"}, 0)


def test_misses_name_the_cell_the_target_and_the_value():
    cells = [{"entry": "normal", "shape": [64, 64], "dtype": "float32", "mode": "eager",
              "ms": {"jaxinit": 2.0, "jax": 1.0}, "vs_jax": 0.5, "eager/jit": 2.0},
             {"entry": "normal", "shape": [64, 64], "dtype": "float32", "mode": "jit",
              "ms": {"jaxinit": 1.0, "jax": 0.95}, "vs_jax": 0.95},
             {"entry": "dirac", "shape": [64, 64], "dtype": "float32", "mode": "jit", "ms": {"jaxinit": "ValueError: x"}}]
    misses = catalog_bench.check_targets(cells, noise=0.1)
    assert [(m["entry"], m["mode"], m["target"], m["value"]) for m in misses] == [
        ("normal", "eager", "vs_jax >= 1", 0.5), ("normal", "eager", "eager/jit <= 1.5", 2.0),
        ("dirac", "jit", "runs", "ValueError: x")]


def test_unknown_entries_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"entries \['nope'\] are not in the catalog benchmark; choose from"):
        catalog_bench.run(entries=["nope"], shapes=[(4, 4)], model=None)
    with pytest.raises(SystemExit):
        catalog_bench.main(["--shapes", "4xq"])


def test_jaxinit_bench_catalog_runs_tiny_through_the_cli(tmp_path):
    out, report_path = tmp_path / "catalog.txt", tmp_path / "catalog.json"
    proc = subprocess.run([sys.executable, "-m", "jaxinit.cli", "bench", "--catalog", "--entries", "he_normal",
                           "--shapes", "4x8", "--modes", "eager", "jit", "--dtypes", "float32", "--repeats", "2",
                           "--no-model", "--no-torch", "--quiet", "--out", str(out), "--json", str(report_path)],
                          capture_output=True, text=True, timeout=600)
    report = json.loads(report_path.read_text())
    assert proc.returncode == (1 if report["misses"] else 0), proc.stderr[-2000:]
    assert [(c["entry"], c["shape"], c["dtype"], c["mode"]) for c in report["cells"]] == [
        ("he_normal", [4, 8], "float32", "eager"), ("he_normal", [4, 8], "float32", "jit")]
    assert report["meta"]["repeats"] == 2 and report["model"] is None
    assert "torch" not in report["cells"][0]["ms"]  # --no-torch
    assert out.read_text().startswith("jaxinit catalog benchmark:")


def test_jaxinit_bench_catalog_refuses_the_sweep_benchmarks_options(capsys):
    assert cli.main(["bench", "--seeds", "8", "--width", "64", "--catalog", "--entries", "zeros"]) == 2
    err = capsys.readouterr().err
    assert "--seeds, --width belong(s) to the sweep benchmark" in err and "after --catalog" in err


def test_jaxinit_bench_catalog_options_are_its_own(capsys):
    """Every option after --catalog goes to the catalog benchmark, whose parser checks it."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--catalog", "--repeats", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: jaxinit bench --catalog") and "--repeats: must be an integer >= 1" in err


def test_jaxinit_bench_help_lists_the_catalog_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    text = capsys.readouterr().out
    assert "--catalog [OPTION ...]: run the catalog benchmark instead" in text
    for option in ("--entries", "--shapes", "--modes", "--dtypes", "--noise", "--no-model", "--blocks"):
        assert option in text.split("--catalog [OPTION ...]:")[1]
