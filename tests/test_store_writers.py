"""Many writers, one results folder, nothing lost (issue 15).

Real concurrent processes where the point is concurrency: two ``jaxinit sweep`` runs on one folder
against a single run (bit for bit), two processes updating the meta at once (no update lost), and
live writer processes whose temp files survive and whose presence refuses ``fresh``. Writers on
another host, or dead ones, are registry entries written by the test (a host cannot be faked).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from jaxinit import cli
from jaxinit.lab import config as jconfig
from jaxinit.lab import run as lab_run
from jaxinit.lab.store import ResultsError, ResultsFolder
from jaxinit.lab.store import writers as W

SWEEP = {"network": {"depth": 2, "width": 8, "activation": "tanh"}, "inputs": {"batch": 4},
         "sweep": {"seeds": 8, "initializers": ["he_normal"]}, "output": {"chunk": 4}}


def sweep_config(out, **overrides):
    return jconfig.from_dict(SWEEP, overrides={"output.dir": str(out), **overrides})


def arrays(path):
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def fake_writer(folder, *, host, pid, claims=None, age_s=0.0):
    """A registry entry as a writer on ``host`` with ``pid`` writes it; its heartbeat ``age_s`` old."""
    token = f"{host}-{pid}-cafe0001"
    path = folder / W.WRITERS_DIR / f"{token}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"token": token, "host": host, "pid": pid, "since": "2026-01-01T00:00:00+0000",
                                "started": time.time() - age_s, "claims": claims or {}}))
    os.utime(path, (time.time() - age_s,) * 2)
    return token


# ----------------------------------------------------------------------------- real processes
def test_two_sweeps_started_at_once_on_one_folder_equal_a_single_run(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(jconfig.dumps_toml({**SWEEP, "sweep": {**SWEEP["sweep"], "seeds": 24}}))
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["JAX_PLATFORMS"] = "cpu"

    def sweep(out):
        return subprocess.Popen([sys.executable, "-m", "jaxinit.cli", "sweep", str(config), "--out", str(out),
                                 "--quiet", "--no-plots", "--cpu-devices", "1"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    shared, single = tmp_path / "shared", tmp_path / "single"
    procs = [sweep(shared), sweep(shared), sweep(single)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    got, want = arrays(shared / "arrays.npz"), arrays(single / "arrays.npz")
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].tobytes() == want[name].tobytes(), name
    # Each seed computed once: the sessions' chunks are the files, named by their seeds.
    files = sorted(p.name for p in (shared / "chunks").rglob("*.npz"))
    assert files == [f"seeds-{i:06d}-{i + 3:06d}.npz" for i in range(0, 24, 4)]
    meta = json.loads((shared / "meta.json").read_text())
    assert sum(s["chunks_written"] for s in meta["sessions"]) == len(files)
    assert meta["status"] == "complete" and len(meta.get("resumed", [])) == 1   # the second joined
    assert not list(shared.rglob("*.tmp")) and not list((shared / W.WRITERS_DIR).iterdir())


HOLDER = """
import json, os, sys, time
from jaxinit.lab.config import from_dict
from jaxinit.lab.store import ResultsFolder
path, config, tag, n = sys.argv[1], from_dict(json.loads(sys.argv[2])), sys.argv[3], int(sys.argv[4])
folder = ResultsFolder(path)
folder.prepare(config)
open(os.path.join(path, f"ready-{tag}"), "w").close()
while len([f for f in os.listdir(path) if f.startswith("ready-")]) < 2:   # both start together
    time.sleep(0.005)
for i in range(n):
    folder.write_meta(lambda meta: {"log": meta.get("log", []) + [f"{tag}{i}"]})
print(folder._writer.token, flush=True)
sys.stdin.readline()                                                    # hold the folder until told
folder.close()
"""


@pytest.fixture
def holders(tmp_path):
    """Two processes that prepared the folder, appended to the meta at once, and hold it as writers."""
    path = tmp_path / "held"
    path.mkdir()
    config = sweep_config(path)
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER), str(path),
                               json.dumps(config.to_dict()), tag, "40"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for tag in ("a", "b")]
    tokens = []
    for proc in procs:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()[-3000:]
        tokens.append(line.strip())
    yield path, config, procs, tokens
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # waits, closes the pipes


def test_live_writer_processes_lose_no_meta_update_keep_their_temp_files_and_refuse_fresh(holders, tmp_path,
                                                                                        capsys):
    path, config, procs, tokens = holders
    # 1. Both appended 40 entries to the meta at once, each a locked read-modify-write: none lost.
    log = json.loads((path / "meta.json").read_text())["log"]
    assert sorted(log) == sorted(f"{t}{i}" for t in "ab" for i in range(40))
    assert [e for e in log if e.startswith("a")] == [f"a{i}" for i in range(40)]  # each writer's in order

    # 2. A prepare removes the temp files of dead writers only.
    chunks = path / "chunks" / config.programs()[0].id
    chunks.mkdir(parents=True, exist_ok=True)
    gone_token = fake_writer(path, host=W.host(), pid=dead_pid())
    remote_token = fake_writer(path, host="node7", pid=4242)                   # heartbeat fresh: live
    stale_token = fake_writer(path, host="node8", pid=4243, age_s=2 * W.STALE_S)  # no heartbeat: dead
    temps = {
        "live": chunks / f".seeds-000000-000003.npz.w-{tokens[0]}.a1b2c3.tmp",
        "remote": chunks / f".seeds-000004-000007.npz.w-{remote_token}.a1b2c3.tmp",
        "dead": chunks / f".seeds-000004-000007.npz.w-{gone_token}.a1b2c3.tmp",
        "stale": path / f".meta.json.w-{stale_token}.a1b2c3.tmp",
        "never registered": chunks / f".seeds-000000-000003.npz.w-{W.host()}-1-00000000.a1b2c3.tmp",
        "ownerless, young": path / ".arrays.npz.1a2b3c4d.tmp",
        "ownerless, old": chunks / ".chunk-000001.npz.1a2b3c4d.tmp",
    }
    for tmp in temps.values():
        tmp.write_bytes(b"PK\x03\x04 half a zip")
    old = time.time() - 3600
    os.utime(temps["ownerless, old"], (old, old))
    with ResultsFolder(path) as folder:
        assert folder.prepare(config) is True
    kept = {name for name, tmp in temps.items() if tmp.exists()}
    assert kept == {"live", "remote", "ownerless, young"}
    entries = {p.stem for p in (path / W.WRITERS_DIR).glob("*.json")}
    assert entries == {*tokens, remote_token}
    (path / W.WRITERS_DIR / f"{remote_token}.json").unlink()                # node7 leaves

    # 3. fresh is refused while they write, naming one of them (library and CLI).
    pids = {p.pid for p in procs}
    with pytest.raises(ResultsError, match=r"held: is in use by another writer: pid (\d+) on host "
                                           rf"{W.host()} \(since .*\) and 1 more; cannot start over \(fresh=True\) "
                                           r"while it writes") as info:
        ResultsFolder(path).prepare(config, fresh=True)
    assert any(f"pid {pid} " in str(info.value) for pid in pids)
    toml = tmp_path / "c.toml"
    toml.write_text(jconfig.dumps_toml(config.to_dict()))
    assert cli.main(["sweep", str(toml), "--fresh", "--quiet", "--no-plots"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "is in use by another writer: pid" in err and "[jaxinit sweep: --fresh, --out DIR]" in err
    assert (path / "meta.json").exists() and {p.stem for p in (path / W.WRITERS_DIR).glob("*.json")} == set(tokens)

    # 4. Killed (no goodbye): their entries stay behind, but a dead process holds nothing.
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with ResultsFolder(path) as folder:
        assert folder.prepare(config, fresh=True) is False
        assert {p.stem for p in (path / W.WRITERS_DIR).glob("*.json")} == {folder._writer.token}
    assert not temps["live"].exists()                                    # its writer is dead; fresh cleared it


# ----------------------------------------------------------------------------- sharing the seeds
def test_a_run_takes_a_dead_writers_claims_and_waits_for_a_live_ones(tmp_path, monkeypatch):
    straight = lab_run.run(sweep_config(tmp_path / "straight"), progress=False)
    shared = tmp_path / "shared"
    program = sweep_config(shared).programs()[0].id
    fake_writer(shared, host=W.host(), pid=dead_pid(), claims={program: [0, 1, 2, 3]})
    remote = fake_writer(shared, host="node7", pid=4242, claims={program: [4, 5, 6, 7]})
    source = tmp_path / "straight" / "chunks" / program / "seeds-000004-000007.npz"

    def other_writer():  # node7 finishes its chunk once this run has done its own, then leaves
        mine = shared / "chunks" / program / "seeds-000000-000003.npz"
        deadline = time.time() + 120
        while not mine.exists() and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        tmp = mine.parent / f".seeds-000004-000007.npz.w-{remote}.0f0f0f.tmp"
        tmp.write_bytes(source.read_bytes())
        os.replace(tmp, mine.parent / source.name)
        (shared / W.WRITERS_DIR / f"{remote}.json").unlink()

    monkeypatch.setattr(lab_run, "SHARED_POLL_S", 0.05)
    notes = []
    thread = threading.Thread(target=other_writer)
    thread.start()
    results = lab_run.run(sweep_config(shared), progress=False, notify=notes.append)
    thread.join()
    assert any(n.startswith(f"waiting for pid 4242 on node7: it computes 4 seeds of {program}") for n in notes), notes
    meta = results.meta
    assert [s["chunks_written"] for s in meta["sessions"]] == [1]     # seeds 0-3: the dead writer's claim
    for name in straight.arrays:
        assert results.arrays[name].tobytes() == straight.arrays[name].tobytes(), name
    assert not list((shared / W.WRITERS_DIR).glob("*.json"))           # this run left, the dead one is gone


def test_claims_exclude_other_live_writers_and_writing_releases_them(tmp_path):
    config = sweep_config(tmp_path)
    program = config.programs()[0].id
    first, second = ResultsFolder(tmp_path), ResultsFolder(tmp_path)
    first.prepare(config)
    fake_writer(tmp_path, host="node7", pid=4242, claims={program: [6]})
    assert first.claim(program, [0, 1, 2, 3]) == [0, 1, 2, 3]
    second.prepare(config)
    # In one process, two folder objects are two writers: each sees the other's claims.
    assert second.claim(program, range(8)) == [4, 5, 7]
    assert second.claimed_elsewhere(program) == [0, 1, 2, 3, 6]
    first.write_chunk(program, None, {"q": np.ones((1, 1, 2, 2), np.float32)}, [0, 1])   # releases 0, 1
    assert second.claimed_elsewhere(program) == [2, 3, 6] and second.missing_seeds(program) == [2, 3, 4, 5, 6, 7]
    first.close()                                                      # its claim on 2, 3 goes with it
    assert second.claim(program, range(8)) == [2, 3, 4, 5, 7]


# ----------------------------------------------------------------------------- chunk names
def test_chunk_files_are_named_by_their_seeds_and_old_names_still_resume(tmp_path):
    config = sweep_config(tmp_path)
    program = config.programs()[0].id

    def q(seeds):
        return {"q": np.asarray(seeds, np.float32)[None, None, :, None] * np.ones((1, 1, 1, 2), np.float32)}

    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    path = folder.write_chunk(program, None, q([5, 0, 2]), [5, 0, 2])
    assert path.name.startswith("seeds-000000-000005-") and len(path.name) == len("seeds-000000-000005-12345678.npz")
    legacy = folder.write_chunk(program, None, q([1, 3]), [1, 3])
    os.replace(legacy, legacy.with_name("chunk-000007.npz"))         # a folder written before
    folder.close()
    resumed = ResultsFolder(tmp_path)
    assert resumed.prepare(config) is True
    assert resumed.done_seeds(program) == {0, 1, 2, 3, 5} and resumed.missing_seeds(program) == [4, 6, 7]
    assert resumed.done_chunks(program) == {"chunk-000007", path.name[:-4]}
    resumed.write_chunk(program, None, q([4, 6, 7]), [4, 6, 7])
    got = resumed.assemble().get("q")
    np.testing.assert_array_equal(got[0, 0, :, 0], np.arange(8, dtype=np.float32))


def test_a_temp_file_removed_while_written_is_written_again(tmp_path):
    calls = []

    def write(f):  # another writer, judging this one dead, removes its temp file once mid-write
        calls.append(1)
        if len(calls) == 1:
            next(tmp_path.glob(".x.npz.w-node7-42-0a0b0c0d.*.tmp")).unlink()
        f.write(b"done")

    W.owned_write(tmp_path / "x.npz", write, "node7-42-0a0b0c0d")
    assert (tmp_path / "x.npz").read_bytes() == b"done" and len(calls) == 2 and not list(tmp_path.glob(".*"))
