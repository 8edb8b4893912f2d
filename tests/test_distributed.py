"""Many processes, one command (issue 15): ``jaxinit sweep`` and ``jaxinit train`` under
``jax.distributed`` (jaxinit.lab.cluster), with real processes on 127.0.0.1 and a port from the OS.

2 processes x 2 CPU devices against 1 process x 4 devices, bit for bit, for a sweep and a training
run; a coordinator that does not answer, a peer that never joins, process ids out of range,
processes started with different configs or on folders that are not one shared folder; a process
killed mid-run, then the same command again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxinit import cli
from jaxinit.lab import cluster as cluster_lib
from jaxinit.lab import config as jconfig

# Tiny, and quick to compile (the forward probes only: 1.3 s of CPU against 2.5 s with gradients).
SWEEP = {"network": {"depth": 2, "width": 8, "activation": "tanh"}, "inputs": {"batch": 4},
         "sweep": {"seeds": 8, "initializers": ["he_normal", "lecun_normal"]}, "probes": {"gradients": False},
         "output": {"chunk": 4}}
TRAIN = {"network": {"depth": 2, "width": 8, "activation": "relu"},
         "sweep": {"seeds": 8, "initializers": ["he_normal"]},
         "data": {"name": "teacher", "n": 64, "in_dim": 4, "task": "classification", "n_classes": 3},
         "train": {"steps": 8, "batch": 16, "eval_every": 4, "learning_rate": 0.05}, "output": {"chunk": 4}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES", "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES",
                        "JAX_PROCESS_ID")}
    out["JAX_PLATFORMS"] = "cpu"
    return out


def jaxinit(*argv, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jaxinit.cli", *map(str, argv), "--quiet", "--no-plots"],
                            env=env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cluster_of(n, command, config, out, *, devices=1, port=None, extra=(), cwd=None, timeout=20):
    port = port or free_port()
    return [jaxinit(command, config, "--out", out, "--cpu-devices", devices, "--coordinator", f"127.0.0.1:{port}",
                    "--num-processes", n, "--process-id", i, "--join-timeout", timeout, *extra, cwd=cwd)
            for i in range(n)]


def finish(procs, timeout=240):
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        outs.append((proc.returncode, out, err))
    return outs


def arrays(path):
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def assert_bitwise(got_folder, want_folder):
    got, want = arrays(got_folder / "arrays.npz"), arrays(want_folder / "arrays.npz")
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].dtype == want[name].dtype and got[name].tobytes() == want[name].tobytes(), name


def write(tmp_path, data, name):
    path = tmp_path / name
    path.write_text(jconfig.dumps_toml(data), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the same bits
@pytest.fixture(scope="module")
def sweep_reference(tmp_path_factory):
    """The sweep's config and its single run (1 process x 4 devices), started at once, waited for on first use."""
    root = tmp_path_factory.mktemp("reference")
    config = write(root, SWEEP, "sweep.toml")
    proc = jaxinit("sweep", config, "--out", root / "single", "--cpu-devices", 4)

    def folder():
        if proc.returncode is None:
            (status, _, err), = finish([proc])
            assert status == 0, err[-3000:]
        return root / "single"

    yield config, folder
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def check_two_processes(command, folder, results):
    (s0, out0, err0), (s1, out1, err1) = results
    assert s0 == 0 and s1 == 0, (err0 + err1)[-3000:]
    assert "process 0 of 2 joined the cluster at 127.0.0.1:" in err0 and "2 of its 4 devices here" in err0
    assert "results:" in out0 and (folder / "summary.csv").is_file()
    assert "process 1 of 2: every seed is written" in err1 and "process 0 assembles arrays.npz" in err1
    assert "process 1 of 2: done" in out1
    # The processes shared the seeds through the folder's claims: one chunk each, nothing twice.
    meta = json.loads((folder / "meta.json").read_text())
    assert sorted(s["chunks_written"] for s in meta["sessions"]) == [1, 1], command
    assert all(s["device"]["process_count"] == 2 and s["device"]["device_count"] == 4 for s in meta["sessions"])
    assert sorted(p.name for p in (folder / "chunks").rglob("*.npz")) == ["seeds-000000-000003.npz",
                                                                         "seeds-000004-000007.npz"]
    assert not list(folder.glob(".join-*")) and not list((folder / ".writers").iterdir())


def test_a_sweep_on_two_processes_of_two_devices_equals_one_process_of_four_bit_for_bit(tmp_path, sweep_reference):
    config, single = sweep_reference
    joined = tmp_path / "joined"
    # The folder holds another config's results: --fresh on both clears it once, before either writes
    # (the second writer's own fresh would be refused while the first holds the folder).
    stale = joined / "chunks" / "depth9-width9-relu" / "seeds-000000-000003.npz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    (joined / "meta.json").write_text(json.dumps({"config_hash": "0123456789abcdef", "status": "complete"}))
    check_two_processes("sweep", joined, finish(cluster_of(2, "sweep", config, joined, devices=2, timeout=120,
                                                           extra=("--fresh",))))
    assert_bitwise(joined, single())
    assert not stale.exists()


def test_training_on_two_processes_of_two_devices_equals_one_process_of_four_bit_for_bit(tmp_path):
    config = write(tmp_path, TRAIN, "train.toml")
    joined, single = tmp_path / "joined", tmp_path / "single"
    procs = [*cluster_of(2, "train", config, joined, devices=2, timeout=120),
             jaxinit("train", config, "--out", single, "--cpu-devices", 4)]
    results = finish(procs)
    assert results[2][0] == 0, results[2][2][-3000:]
    check_two_processes("train", joined, results[:2])
    assert_bitwise(joined, single)


# ----------------------------------------------------------------------------- bad input
def test_a_coordinator_that_does_not_answer_is_one_line_and_exit_2_within_the_timeout(tmp_path, capsys):
    config = write(tmp_path, SWEEP, "s.toml")
    start = time.monotonic()
    status = cli.main(["sweep", str(config), "--out", str(tmp_path / "o"), "--cpu-devices", "1",
                       "--coordinator", f"127.0.0.1:{free_port()}", "--num-processes", "2", "--process-id", "1",
                       "--join-timeout", "1.5"])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE and 1.5 <= elapsed < 10
    assert err.count("\n") == 1 and "jaxinit: no coordinator answers at 127.0.0.1:" in err
    assert "process 1 of 2 gave up after 1.5 s" in err and not (tmp_path / "o").exists()


def test_a_peer_that_never_joins_ends_process_0_with_exit_2_within_the_timeout(tmp_path):
    config = write(tmp_path, SWEEP, "s.toml")
    start = time.monotonic()
    lone = jaxinit("sweep", config, "--out", tmp_path / "o", "--cpu-devices", 1, "--coordinator",
                   f"127.0.0.1:{free_port()}", "--num-processes", 2, "--process-id", 0, "--join-timeout", 2)
    (status, _, err), = finish([lone], timeout=60)
    assert status == cli.EXIT_USAGE and time.monotonic() - start < 30, err[-3000:]
    assert "jaxinit: could not join the cluster at 127.0.0.1:" in err
    assert "within 2 s (process 0 of 2): not every one of the 2 processes joined" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, environ, message", [
    (["--num-processes", "2", "--process-id", "2"], {},
     "--process-id 2 is out of range: with --num-processes 2 the process ids are 0 and 1"),
    (["--num-processes", "3", "--process-id", "-1"], {},
     "--process-id -1 is out of range: with --num-processes 3 the process ids are 0 .. 2"),
    ([], {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "4"},
     "--process-id 4 is out of range: with --num-processes 4 the process ids are 0 .. 3"),
    (["--process-id", "1"], {}, "--num-processes N is needed to join a cluster"),
    (["--num-processes", "2", "--process-id", "0"], {}, "--coordinator HOST:PORT is needed to join a cluster of 2"),
    (["--coordinator", "node7", "--num-processes", "2", "--process-id", "0"], {},
     "--coordinator must be HOST:PORT (process 0's host name or address and a port 1-65535, e.g. 10.0.0.1:8476); "
     "got 'node7'"),
    ([], {"JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES must be an integer; got 'two'"),
])
def test_bad_cluster_arguments_are_one_line_and_exit_2_before_joining(tmp_path, capsys, monkeypatch, argv, environ,
                                                                      message):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config = write(tmp_path, TRAIN, "t.toml")
    status = cli.main(["train", str(config), "--out", str(tmp_path / "o"), "--cpu-devices", "1", *argv])
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE and err.startswith(f"jaxinit: {message}")
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_launch_from_reads_flags_then_environment_and_one_process_is_no_cluster():
    assert cluster_lib.launch_from(environ={}) is None
    assert cluster_lib.launch_from(num_processes=1, process_id=0, environ={}) is None
    got = cluster_lib.launch_from(environ={"JAX_COORDINATOR_ADDRESS": "10.0.0.1:8476", "JAX_NUM_PROCESSES": "4",
                                           "JAX_PROCESS_ID": "3"})
    assert got == cluster_lib.Launch("10.0.0.1:8476", 4, 3, "environment")
    got = cluster_lib.launch_from("[::1]:9000", None, 1, environ={"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"})
    assert got == cluster_lib.Launch("[::1]:9000", 2, 1, "flags")


def test_processes_started_with_different_configs_are_refused_by_name(tmp_path):
    config = write(tmp_path, SWEEP, "s.toml")
    port = free_port()
    procs = [jaxinit("sweep", config, "--out", tmp_path / "o", "--cpu-devices", 1, "--coordinator",
                     f"127.0.0.1:{port}", "--num-processes", 2, "--process-id", i, "--join-timeout", 60, *extra)
             for i, extra in ((0, ()), (1, ("--seeds", "12")))]
    hashes = [jconfig.load(str(config), overrides=o).config_hash() for o in ({}, {"sweep.seeds": 12})]
    for status, _, err in finish(procs, timeout=120):
        assert status == cli.EXIT_USAGE, err[-3000:]
        line = err.strip().splitlines()[-1]
        assert line.startswith("jaxinit: the processes were started with different configs: ")
        assert (f"process 0 (host {socket.gethostname()}) runs {config} (config hash {hashes[0]})" in line
                and f"process 1 (host {socket.gethostname()}) runs {config} (config hash {hashes[1]})" in line)
        assert line.endswith("Start every process with the same command (config, --set, --seeds, --out, --fresh)")
    assert not (tmp_path / "o").exists()


def test_a_folder_that_is_not_shared_by_every_process_is_refused_by_name(tmp_path):
    """The same relative --out from two working directories: two folders, as on hosts that do not
    share a filesystem."""
    config = write(tmp_path, SWEEP, "s.toml")
    here, there = tmp_path / "host0", tmp_path / "host1"
    here.mkdir()
    (there / "results").mkdir(parents=True)  # a folder of the same name on the other "host"
    port = free_port()
    procs = [jaxinit("sweep", config, "--out", "results", "--cpu-devices", 1, "--coordinator", f"127.0.0.1:{port}",
                     "--num-processes", 2, "--process-id", i, "--join-timeout", 60, cwd=cwd)
             for i, cwd in ((0, here), (1, there))]
    for status, _, err in finish(procs, timeout=120):
        assert status == cli.EXIT_USAGE, err[-3000:]
        line = err.strip().splitlines()[-1]
        assert line == (f"jaxinit: the results folder results is not usable by every process: process 1 (host "
                        f"{socket.gethostname()}) does not see the files process 0 writes there (a folder local to "
                        "each host?). Put it on a filesystem that every host mounts at the same path, writable by "
                        "every process (--out)")
    assert not list((here / "results").glob(".join-*"))


# ----------------------------------------------------------------------------- a process dies
def test_a_job_killed_mid_run_loses_only_unfinished_chunks_and_the_same_command_finishes(tmp_path, sweep_reference):
    config, single = sweep_reference
    folder = tmp_path / "joined"
    procs = cluster_of(2, "sweep", config, folder, timeout=120)
    # Process 1 dies holding a claim (seeds it took and has not written), before or while computing.
    deadline = time.monotonic() + 120
    claimed = False
    while not claimed and time.monotonic() < deadline and procs[1].poll() is None:
        for entry in (folder / ".writers").glob("*.json"):
            try:
                info = json.loads(entry.read_text())
            except (OSError, ValueError):
                continue
            claimed = claimed or (info.get("pid") == procs[1].pid and any(info.get("claims", {}).values()))
        time.sleep(0.01)
    assert claimed, "process 1 never claimed seeds"
    # JAX's health checks then end process 0 (after its heartbeat timeout, 100 s): here it is
    # killed at once, as abruptly.
    for proc in reversed(procs):
        proc.send_signal(signal.SIGKILL)
    assert [status for status, _, _ in finish(procs, timeout=60)] == [-signal.SIGKILL] * 2
    assert json.loads((folder / "meta.json").read_text())["status"] == "running"
    assert not (folder / "arrays.npz").exists()
    # The same command on any number of processes (here one) takes the dead writers' seeds and finishes.
    (status, _, err), = finish([jaxinit("sweep", config, "--out", folder, "--cpu-devices", 1)])
    assert status == 0, err[-3000:]
    assert_bitwise(folder, single())
    assert json.loads((folder / "meta.json").read_text())["status"] == "complete"


def test_cluster_keys_carry_values_and_a_stopped_peer(monkeypatch):
    """Cluster.agree / wait / abort over a stand-in for JAX's key-value store (the real one is
    exercised by the processes above)."""
    store: dict[str, str] = {}

    class Client:
        def key_value_set(self, key, value):
            assert key not in store, key
            store[key] = value

        def blocking_key_value_get(self, key, timeout_ms):
            if key in store:
                return store[key]
            raise RuntimeError(f"DEADLINE_EXCEEDED: GetKeyValue() timed out with key: {key}")

        def key_value_dir_get(self, prefix):
            return [(k, v) for k, v in store.items() if k.startswith(prefix)]

    me = cluster_lib.Cluster(process_id=0, num_processes=2, coordinator="h:1", source="flags", join_s=0.0, host="a")
    monkeypatch.setattr(cluster_lib.Cluster, "client", property(lambda self: Client()))
    store["jaxinit/config/1"] = json.dumps({"hash": "x"})
    assert me.agree("config", {"hash": "y"}) == [{"hash": "y"}, {"hash": "x"}]
    store["jaxinit/stopped/1"] = json.dumps({"host": "b", "message": "boom"})
    with pytest.raises(cluster_lib.PeerStopped, match=r"^process 1 \(host b\) stopped: boom$"):
        me.wait("done", 1)


def test_each_process_claims_a_contiguous_share_of_the_chunks_in_program_order():
    """So that each compiles as few programs as it can: one each for as many programs as processes."""
    from types import SimpleNamespace

    from jaxinit.lab import run as lab_run

    class Folder:
        def __init__(self):
            self.claims = []

        def claim(self, program_id, seeds):
            self.claims.append((program_id, list(seeds)))
            return list(seeds)

    relu, tanh = SimpleNamespace(id="relu"), SimpleNamespace(id="tanh")
    work = [(p, i + 1, 4, list(range(4 * i, 4 * i + 4))) for p in (relu, tanh) for i in range(4)]
    shares = []
    for index in range(2):
        folder = Folder()
        ordered = lab_run._take_share(folder, work, index, 2)
        assert sorted(map(id, ordered)) == sorted(map(id, work))  # every item, own share first
        shares.append(folder.claims)
    assert shares == [[("relu", list(range(16)))], [("tanh", list(range(16)))]]
    folder = Folder()
    lab_run._take_share(folder, work, 1, 3)  # a share across two programs claims from each
    assert folder.claims == [("relu", [12, 13, 14, 15]), ("tanh", [0, 1, 2, 3, 4, 5, 6, 7])]


def test_a_slurm_job_of_several_tasks_joins_by_itself_and_one_task_does_not(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "OMPI_MCA_orte_hnp_uri"):
        monkeypatch.delenv(name, raising=False)
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "node[001-004]", "SLURM_NTASKS": "4",
             "SLURM_PROCID": "2", "SLURM_LOCALID": "0"}
    for name, value in slurm.items():
        monkeypatch.setenv(name, value)
    assert cluster_lib.launch_from() == cluster_lib.Launch(None, 4, 2, "slurm")  # JAX finds the coordinator
    assert cluster_lib.launch_from(coordinator="node001:9000") == cluster_lib.Launch("node001:9000", 4, 2, "flags")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert cluster_lib.launch_from() is None
