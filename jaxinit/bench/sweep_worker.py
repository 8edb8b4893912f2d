"""The jaxinit contender's python runner (``jaxinit bench --runner python``, and ``--growth``).

``python -P sweep_worker.py SPEC_JSON`` (as the harness runs it) or ``python -m
jaxinit.bench.sweep_worker SPEC_JSON``. SPEC: ``config`` (a TOML sweep config) and ``out`` (the
results folder). Does what ``jaxinit sweep CONFIG --out DIR --fresh --no-plots --quiet`` does, through
the library: :func:`jaxinit.runtime.configure_process` first (as the README asks of library users),
then :func:`jaxinit.lab.config.load` and :func:`jaxinit.lab.run.run`. Prints one ``BENCH_RESULT {json}``
line: import and total seconds and the device's peak memory (the engine's own timings are in the
results' ``meta.json``).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import json  # noqa: E402 - the clock starts before the imports it measures
import sys  # noqa: E402

from jaxinit.runtime import configure_process, usable_cores  # noqa: E402

RESULT_MARK = "BENCH_RESULT "


def device_peak_bytes():
    """The device's peak memory where the backend reports it (GPUs), else None."""
    import jax

    try:
        stats = jax.local_devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - a backend without memory stats
        return None
    return stats.get("peak_bytes_in_use")


def main(argv):
    spec = json.loads(argv[1])
    configure_process(usable_cores())  # before JAX starts its backend: what the CLI does
    from jaxinit.lab import config, run

    t1 = time.perf_counter()
    run.run(config.load(spec["config"]), out=spec["out"], fresh=True, progress=False)
    result = {"import_s": t1 - T0, "total_s": time.perf_counter() - T0, "device_peak_bytes": device_peak_bytes()}
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
