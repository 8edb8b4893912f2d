"""Process settings (jaxinit.runtime): they change speed, never the weights drawn."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

from jaxinit import runtime

DRAW = """
import sys
{configure}
import jax, numpy as np, jaxinit
key = jax.random.key(3)
names = ["he_normal", "glorot_uniform", "orthogonal", "lecun_normal"]
single = {{n: np.asarray(jax.jit(lambda k, n=n: jaxinit.get(n)(k, (96, 96)))(key)) for n in names}}
batched = {{"vmap_" + n: np.asarray(jax.jit(jax.vmap(lambda k, n=n: jaxinit.get(n)(k, (32, 48))))(
    jax.random.split(key, 4))) for n in names}}
np.savez(sys.argv[1], **single, **batched)
print(jax.device_count())
"""


def _draw(tmp_path, name, configure):
    # Only the deadlock workaround (not a speed setting) in the plain process: see jaxinit.runtime.
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["XLA_FLAGS"] = runtime.XLA_WORKAROUND
    path = tmp_path / f"{name}.npz"
    code = textwrap.dedent(DRAW.format(configure=configure))
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=True, capture_output=True, text=True)
    with np.load(path) as arrays:
        return {k: arrays[k] for k in arrays.files}, int(out.stdout.split()[-1])


def test_process_settings_leave_the_weights_bitwise_unchanged(tmp_path):
    plain, plain_devices = _draw(tmp_path, "plain", "")
    configured, devices = _draw(tmp_path, "configured",
                                "from jaxinit.runtime import configure_process; configure_process(cpu_devices=3)")
    assert (plain_devices, devices) == (1, 3)
    assert sorted(plain) == sorted(configured)
    for name in plain:
        np.testing.assert_array_equal(plain[name], configured[name], err_msg=name)


def test_configure_process_keeps_what_the_environment_chose(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    runtime.configure_process()
    flags = os.environ["XLA_FLAGS"].split()
    assert "--xla_cpu_use_fusion_emitters=true" in flags and runtime.XLA_FAST_COMPILE not in flags
    assert runtime.XLA_WORKAROUND in flags
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"
    monkeypatch.setenv("JAX_NUM_CPU_DEVICES", "1")
    assert runtime.cpu_devices_chosen()
