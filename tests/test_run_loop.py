"""The sweep's run loop: the stall watchdog, no folder left by a failed start, every session's
timings kept in meta.json, and a rounded chunk size said (issues 10 and 11)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from jaxinit import cli
from jaxinit.lab import config as jconfig
from jaxinit.lab import run as lab_run
from jaxinit.lab.engine import sweep


def small(out, *, seeds=8, chunk=4, **network) -> jconfig.SweepConfig:
    data = {"network": {"depth": 2, "width": 8, "activation": "tanh", **network}, "inputs": {"batch": 4},
            "sweep": {"seeds": seeds, "initializers": ["lecun_normal"]},
            "probes": {"gradients": False}, "output": {"dir": str(out), "chunk": chunk}}
    return jconfig.from_dict(data)


def chunk_files(out):
    return sorted(p.name for p in (out / "chunks").rglob("seeds-*.npz"))  # named by the seeds they hold


@pytest.fixture
def hang_after_first_chunk(monkeypatch):
    """``measure_chunk`` that measures the first chunk and then blocks (an idle process, as in the
    XLA deadlock) until the test ends."""
    release = threading.Event()
    real = sweep.measure_chunk
    calls = []

    def measure(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            return real(*args, **kwargs)
        release.wait(60)
        raise RuntimeError("released at the end of the test")

    monkeypatch.setattr(lab_run, "measure_chunk", measure)
    yield calls
    release.set()


# ----------------------------------------------------------------------------- stall watchdog
def test_a_stalled_chunk_ends_the_sweep_naming_program_and_chunk(tmp_path, hang_after_first_chunk):
    out = tmp_path / "run"
    config = small(out)
    start = time.monotonic()
    with pytest.raises(lab_run.SweepStalled) as info:
        lab_run.run(config, progress=False, stall_timeout=0.5)
    assert time.monotonic() - start < 30
    err = info.value
    program = config.programs()[0].id
    assert (err.program, err.chunk, err.chunks, err.seeds) == (program, 2, 2, [4, 5, 6, 7])
    assert f"in program {program}, chunk 2 of 2 (seeds 4-7; stall limit 0.5 s)" in str(err)
    assert chunk_files(out) == ["seeds-000000-000003.npz"]  # the finished chunk is intact
    meta = json.loads((out / "meta.json").read_text())
    assert meta["sessions"][-1]["chunks_written"] == 1


def test_cli_reports_a_stall_in_one_line_and_exits_3(tmp_path, capsys, hang_after_first_chunk):
    out = tmp_path / "run"
    config = tmp_path / "c.toml"
    config.write_text(jconfig.dumps_toml(small(out).to_dict()))
    status = cli.main(["sweep", str(config), "--out", str(out), "--quiet", "--no-plots", "--stall-timeout", "0.5"])
    _, err = capsys.readouterr()
    assert status == cli.EXIT_STALLED == 3
    assert err.startswith("jaxinit: sweep stalled: no progress for ") and err.count("\n") == 1, err
    assert "chunk 2 of 2" in err and "Traceback" not in err
    assert chunk_files(out) == ["seeds-000000-000003.npz"]


@pytest.mark.parametrize("value", ["-1", "abc", "inf", "nan"])
def test_cli_refuses_a_bad_stall_timeout(value, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["sweep", "x.toml", "--stall-timeout", value])
    assert info.value.code == 2
    assert "--stall-timeout: must be a number of seconds >= 0" in capsys.readouterr().err


def test_stall_timeout_zero_waits_and_bad_values_are_refused(tmp_path, monkeypatch):
    slow = []
    real = sweep.measure_chunk

    def measure(*args, **kwargs):
        slow.append(1)
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(lab_run, "measure_chunk", measure)
    results = lab_run.run(small(tmp_path / "a", seeds=4), progress=False, stall_timeout=0)
    assert results is not None and slow == [1]
    with pytest.raises(ValueError, match=r"stall_timeout must be a number of seconds >= 0 .* got -1"):
        lab_run.run(small(tmp_path / "b"), progress=False, stall_timeout=-1)
    assert not (tmp_path / "b").exists()


def test_default_stall_limit_is_derived_from_finished_chunks_and_compile_time():
    assert lab_run.stall_limit([], 2.0) == 60.0            # floor
    assert lab_run.stall_limit([], 10.0) == 200.0          # 20 x compile time before any chunk
    assert lab_run.stall_limit([1.0, 30.0], 100.0) == 300.0  # 10 x the slowest finished chunk after


def _stalled(elapsed, limit):
    return lab_run.SweepStalled(f"{elapsed:.1f} > {limit}", "p", 1, 1, [0])


def test_a_busy_chunk_is_not_a_stall_on_the_cpu_but_an_idle_one_is():
    def busy():
        end = time.monotonic() + 1.5
        x = 0
        while time.monotonic() < end:
            x += 1
        return x

    assert lab_run._watched(busy, 0.3, True, _stalled) > 0  # computing past the limit: not stalled
    with pytest.raises(lab_run.SweepStalled):
        lab_run._watched(busy, 0.3, False, _stalled)           # without the idle rule (accelerators): stalled
    with pytest.raises(lab_run.SweepStalled):
        lab_run._watched(lambda: time.sleep(3), 0.3, True, _stalled)  # idle past the limit: stalled
    with pytest.raises(KeyError, match="boom"):
        lab_run._watched(lambda: {}["boom"], 5.0, True, _stalled)     # the chunk's own error comes through


# ----------------------------------------------------------------------------- no folder left behind
def test_a_run_that_fails_before_its_first_chunk_leaves_no_folder(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("compiler exploded")

    monkeypatch.setattr(lab_run, "compile_program", broken)
    out = tmp_path / "new" / "nested" / "run"
    with pytest.raises(RuntimeError, match="compiler exploded"):
        lab_run.run(small(out), progress=False)
    assert not (tmp_path / "new").exists()   # the folder and the parents it created
    assert tmp_path.exists()


def test_a_failed_run_never_removes_a_folder_that_existed(tmp_path, monkeypatch):
    done = tmp_path / "done"
    assert lab_run.run(small(done), progress=False, stop_after_chunks=1) is None  # one finished chunk
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".keep").write_text("mine")

    def broken(*args, **kwargs):
        raise RuntimeError("chunk exploded")

    monkeypatch.setattr(lab_run, "measure_chunk", broken)
    for out in (done, empty):
        with pytest.raises(RuntimeError, match="chunk exploded"):
            lab_run.run(small(out), progress=False)
    assert chunk_files(done) == ["seeds-000000-000003.npz"] and (done / "meta.json").exists()
    assert (empty / ".keep").read_text() == "mine"


# ----------------------------------------------------------------------------- timings of every session
def test_meta_keeps_the_timings_of_every_session_that_computed(tmp_path):
    out = tmp_path / "run"
    config = small(out)
    pid = config.programs()[0].id
    assert lab_run.run(config, progress=False, stop_after_chunks=1) is None
    first = json.loads((out / "meta.json").read_text())
    lab_run.run(config, progress=False)                     # resumes: computes the second chunk
    second = json.loads((out / "meta.json").read_text())
    lab_run.run(config, progress=False)                     # finished: computes nothing
    third = json.loads((out / "meta.json").read_text())

    assert [s["chunks_written"] for s in second["sessions"]] == [1, 1]
    assert second["sessions"][0] == first["sessions"][0]
    for kind in ("compile_s", "run_s"):
        per_session = [s["timings"][kind][pid] for s in second["sessions"]]
        assert all(t > 0 for t in per_session)
        assert second["timings"][kind][pid] == pytest.approx(sum(per_session), rel=1e-12)
    assert second["timings"]["wall_s"] == pytest.approx(sum(s["timings"]["wall_s"] for s in second["sessions"]))
    assert third["sessions"] == second["sessions"] and third["timings"] == second["timings"]


# ----------------------------------------------------------------------------- chunk size said
def test_a_rounded_chunk_size_is_said(tmp_path):
    notes = []
    lab_run.run(small(tmp_path / "a", chunk=3), progress=False, notify=notes.append)
    assert len(notes) == 1
    assert notes[0].startswith("output.chunk = 3 rounded up to 4 seeds per chunk in depth2-width8-tanh: a chunk "
                               "is a multiple of 4 seeds per vmap block (the program's fixed block")
    quiet = []
    lab_run.run(small(tmp_path / "b", chunk=4), progress=False, notify=quiet.append)
    lab_run.run(small(tmp_path / "c", chunk=0), progress=False, notify=quiet.append)
    assert quiet == []


def test_cli_says_a_rounded_chunk_size(tmp_path, capsys):
    out = tmp_path / "run"
    config = tmp_path / "c.toml"
    config.write_text(jconfig.dumps_toml(small(out, chunk=0).to_dict()))
    status = cli.main(["sweep", str(config), "--quiet", "--no-plots", "--chunk", "2"])
    _, err = capsys.readouterr()
    assert status == 0
    assert "jaxinit: note: output.chunk = 2 rounded up to 4 seeds per chunk" in err
