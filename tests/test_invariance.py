"""A member's numbers are a function of its config and its seed alone (issue 15): bitwise the same
whatever the device count (1, 2, 4, 8 CPU devices), the chunk size or the memory budget.

One fresh process per device count (the count is fixed when JAX starts), with the process settings
the CLI makes (:func:`jaxinit.runtime.configure_process`). Each process runs the same small sweep
under two chunk plans (the default chunk and budget; a 12-seed chunk with a budget below one block,
so one block in flight) and, on 1 and 2 devices, the same small training run; the parent compares
the results bit for bit. Before, the sweep's vmap block came from the memory budget per device,
and both engines' ``shard_map`` compiled differently for one device and for two (1-2 ulp).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

DEVICE_COUNTS = (1, 2, 4, 8)
SEEDS = 32  # 8 blocks of 4 (the CPU's block): every one of 8 devices gets work
ODD = [31, 3, 17, 9, 30]  # seeds in other blocks, positions and neighbours than in the runs
VARIANTS = {"default": {}, "chunk12_tiny_budget": {"output.chunk": 12, "output.memory_budget_mb": 0.001}}

CHILD = """
import json, sys
from jaxinit.runtime import configure_process
configure_process()
import jax, numpy as np
from jaxinit.lab import config as jconfig, data, run as lab_run
from jaxinit.lab.engine import sweep, train as T

out, variants = sys.argv[1], json.loads(sys.argv[2])
base = {"network": {"depth": 3, "width": 8, "activation": "tanh"}, "inputs": {"batch": 4},
        "sweep": {"seeds": SEEDS, "initializers": ["he_normal", "glorot_uniform"]},
        "grid": {"weight_variance": [1.0, 2.0]}, "probes": {"gradients": True}}
plans = {}
for name, overrides in variants.items():
    config = jconfig.from_dict(base, overrides={**overrides, "output.dir": f"{out}/{name}-sweep"})
    lab_run.run(config, progress=False)
    meta = json.load(open(f"{out}/{name}-sweep/meta.json"))
    plans[name] = next(iter(meta["chunk_plan"].values()))
# Seeds in other blocks, positions and neighbours (the last block padded): the engine alone.
program = config.programs()[0]
plan, n_grid = sweep.plan_for(config, program), len(config.grid_points())
chunks = sweep.chunk_plan(plan, n_grid, config.sweep.seeds)
compiled, _ = sweep.compile_program(plan, chunks, n_grid)
wv, bv = sweep.grid_arrays(config.grid_points())
np.savez(f"{out}/odd.npz", **sweep.measure_chunk(compiled, plan, chunks, 0, ODD, wv, bv))
if jax.device_count() <= 2:
    plan = T.TrainPlan(2, 16, 8, 3, ("he_normal", "glorot_normal"), optimizer={"name": "adam"},
                       learning_rate=0.01, steps=20, batch=16, eval_every=10)
    d = data.teacher(n=128, in_dim=8, task="classification", n_classes=3, seed=1)
    got = T.train_members(plan, d, base_seed=3, seed_ids=[0, 1, 2, 3], block=2, chunk=4)
    np.savez(f"{out}/train.npz", **got)
print(json.dumps({"devices": jax.device_count(), "plans": plans}))
""".replace("SEEDS", str(SEEDS)).replace("ODD", str(ODD))


def _child(devices: int, out) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), str(out), json.dumps(VARIANTS)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _arrays(path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("invariance")
    procs = {}
    for n in DEVICE_COUNTS:  # two at a time: the machine has few cores
        (root / str(n)).mkdir()
        procs[n] = _child(n, root / str(n))
        if len(procs) % 2 == 0:
            for m in list(procs)[-2:]:
                procs[m].wait(timeout=600)
    reports = {}
    for n, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-4000:]
        reports[n] = json.loads(stdout.strip().splitlines()[-1])
    return root, reports


def test_the_plans_differ_where_the_numbers_must_not(runs):
    _, reports = runs
    for n, report in reports.items():
        assert report["devices"] == n
        default, tiny = report["plans"]["default"], report["plans"]["chunk12_tiny_budget"]
        assert default["block"] == tiny["block"] == 4
        assert default["devices"] == tiny["devices"] == n           # every device gets blocks
        assert default["size"] == max(4 * n, SEEDS // 8) and tiny["size"] == 12
        assert tiny["in_flight"] == 1 and default["in_flight"] == 2 * n


def test_sweep_arrays_are_bitwise_equal_across_devices_chunks_and_budgets(runs):
    root, _ = runs
    reference = _arrays(root / "1" / "default-sweep" / "arrays.npz")
    assert {"q", "grad_w_norm", "correlation"} <= set(reference)
    for n in DEVICE_COUNTS:
        for variant in VARIANTS:
            got = _arrays(root / str(n) / f"{variant}-sweep" / "arrays.npz")
            assert sorted(got) == sorted(reference)
            for name in reference:
                np.testing.assert_array_equal(got[name], reference[name], err_msg=f"{name}: {n} devices, {variant}")
                assert got[name].tobytes() == reference[name].tobytes(), (name, n, variant)  # NaNs too


def test_a_seed_gives_the_same_bits_in_any_block_position_and_company(runs):
    root, _ = runs
    reference = _arrays(root / "1" / "default-sweep" / "arrays.npz")
    for n in DEVICE_COUNTS:
        odd = _arrays(root / str(n) / "odd.npz")
        assert set(reference) <= set(odd)
        for name in reference:
            assert odd[name].tobytes() == np.ascontiguousarray(reference[name][0][:, :, ODD]).tobytes(), (name, n)


def test_training_is_bitwise_equal_on_one_and_two_devices(runs):
    root, _ = runs
    one, two = _arrays(root / "1" / "train.npz"), _arrays(root / "2" / "train.npz")
    assert sorted(one) == sorted(two) and {"train_loss", "grad_w_norm"} <= set(one)
    for name in one:
        assert one[name].tobytes() == two[name].tobytes(), name
