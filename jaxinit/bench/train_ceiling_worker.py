"""The training benchmark's matmul ceiling: the device's large-matmul rate, and its rate at each work's shape.

``python -P train_ceiling_worker.py SPEC_JSON`` (as the harness runs it). SPEC: ``matmul_n`` (null: 2048
on a CPU, 4096 elsewhere), ``shapes`` (``[m, k, n]`` matmuls to time as well: each work's minibatch x
width x width), ``reps`` and ``min_time``. Timed as :mod:`jaxinit.bench.ceiling_worker` times them (its
``matmul_rate``: a jitted float32 matmul at HIGHEST precision, best of ``reps``, on JAX's default
device, whose matmuls use every core). Prints one ``BENCH_RESULT {json}`` line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _sibling(name):
    import importlib.util

    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_jaxinit_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(spec):
    import jax

    rates = _sibling("ceiling_worker")
    timing = {"reps": spec.get("reps", 3), "min_time": spec.get("min_time", 0.2)}
    backend = jax.default_backend()
    n = spec.get("matmul_n") or (4096 if backend != "cpu" else 2048)
    return {"backend": backend, "device_kind": jax.devices()[0].device_kind, "matmul_n": n,
            "matmul_flops_per_s": rates.matmul_rate(n, n, n, timing),
            "shapes": [{"shape": list(s), "flops_per_s": rates.matmul_rate(*s, timing)}
                       for s in spec.get("shapes", [])]}


def main(argv):
    print("BENCH_RESULT " + json.dumps(measure(json.loads(argv[1]))), flush=True)


if __name__ == "__main__":
    main(sys.argv)
