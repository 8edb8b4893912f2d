"""Every shipped config finishes through the real CLI on 2 CPU devices (issue 10: a hang).

``configs/isometry.toml`` hung forever on 2 cores with one CPU device per core: jaxlib 0.10's
batched LAPACK kernels (the spectrum's SVD on both devices) waited on XLA's thread pool with every
pool thread (see :mod:`jaxinit._linalg`). The hang needs at least 4 seeds per device in one
program (one vmap block), so the configs are shrunk in depth, width and batch only: 8 seeds on 2
devices. Each run is a fresh process (the device count is fixed when JAX starts) under a timeout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxinit.lab import config as jconfig
from jaxinit.lab.engine import sweep

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))
DEVICES = 2
SEEDS = 4 * DEVICES  # one full vmap block (4 seeds) per device: what the hang needed
TIMEOUT_S = 150      # a shrunk config finishes in 5-20 s on 2 loaded cores


def shrink(data: dict) -> dict:
    """The config with small depths (distinct ones kept distinct), width <= 32, batch <= 8, 3 values
    per grid axis, and ``SEEDS`` seeds; everything else (initializers, probes, dtypes) as shipped."""
    data = {section: dict(table) for section, table in data.items()}
    net = data["network"]
    depths = net["depth"] if isinstance(net["depth"], list) else [net["depth"]]
    small = [min(d, 2 + i) for i, d in enumerate(sorted(set(depths)))]
    net["depth"] = small if isinstance(net["depth"], list) else small[0]
    widths = net["width"] if isinstance(net["width"], list) else [net["width"]]
    net["width"] = [min(w, 32) for w in widths] if isinstance(net["width"], list) else min(widths[0], 32)
    if "train" in data:  # a training run: a few steps, small minibatches
        data["train"] = {**data["train"], "steps": 20, "eval_every": 10,
                         "batch": min(data["train"].get("batch", 8), 8)}
    else:
        data["inputs"]["batch"] = min(data["inputs"].get("batch", 8), 8)
    data["sweep"]["seeds"] = SEEDS
    for axis, values in (data.get("grid") or {}).items():
        if isinstance(values, list) and len(values) > 3:
            data["grid"][axis] = [values[0], values[len(values) // 2], values[-1]]
    data.get("output", {}).pop("chunk", None)
    return data


def run_cli(config_path: Path, out: Path, *, python_path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={DEVICES}".strip()
    if python_path is not None:
        env["PYTHONPATH"] = python_path
    command = "train" if "train" in tomllib.loads(config_path.read_text(encoding="utf-8")) else "sweep"
    cmd = [sys.executable, "-m", "jaxinit.cli", command, str(config_path), "--out", str(out), "--no-plots", "--quiet"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_finishes_on_two_devices(path, tmp_path):
    data = shrink(tomllib.loads(path.read_text(encoding="utf-8")))
    small = tmp_path / path.name
    small.write_text(jconfig.dumps_toml(data), encoding="utf-8")
    out = tmp_path / "out"
    try:
        proc = run_cli(small, out)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{path.name} (shrunk, {SEEDS} seeds on {DEVICES} CPU devices) did not finish in {TIMEOUT_S} s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["status"] == "complete", meta["status"]
    assert meta["device"]["local_device_count"] == DEVICES
    programs = jconfig.load(small).programs()
    assert set(meta["chunk_plan"]) == {p.id for p in programs}
    assert {cp["devices"] for cp in meta["chunk_plan"].values()} == {DEVICES}  # the sharded program ran
    assert (out / "summary.csv").is_file()
    first = "train_loss" if "train" in data else "q"  # the first recorded value of every member
    with np.load(out / "arrays.npz") as arrays:
        q = arrays[first]
    assert q.shape[:4] == (len(programs), len(data["sweep"]["initializers"]), q.shape[2], SEEDS)
    assert np.isfinite(q[..., 0]).all()  # every seed of every program measured


_LAPACK_CALL = re.compile(r'custom_call @(lapack_\w+)\(.*?num_batch_dims = "(\d+)"')


def lapack_batch_dims(text: str) -> dict[str, set[int]]:
    """Batch dims of every LAPACK custom call in StableHLO text (JAX's ``num_batch_dims``), per target."""
    dims: dict[str, set[int]] = {}
    for target, n in _LAPACK_CALL.findall(text):
        dims.setdefault(target, set()).add(int(n))
    return dims


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the rule is for jaxlib's CPU LAPACK kernels")
def test_sweep_program_gives_lapack_one_matrix_per_call(tmp_path):
    """The mechanism, deterministically: no LAPACK call in the sweep's program gets a batch of
    matrices (a batch is what waits on XLA's thread pool and can deadlock it)."""
    data = shrink(tomllib.loads((CONFIGS[0].parent / "isometry.toml").read_text(encoding="utf-8")))
    data["network"]["activation"] = "tanh"
    config = jconfig.from_dict(data)
    program = config.programs()[0]
    plan = sweep.plan_for(config, program)
    chunks = sweep.ChunkPlan(block=4, size=4, devices=1)
    lowered, _ = sweep.lower_program(plan, chunks, len(config.grid_points()))
    ranks = lapack_batch_dims(lowered.as_text())
    assert any("gesdd" in t or "gesvd" in t for t in ranks), ranks          # the spectrum's SVD
    assert any("geqrf" in t for t in ranks) and any("ormqr" in t for t in ranks), ranks  # orthogonal
    assert all(r == {0} for r in ranks.values()), ranks
