"""The ceiling: the device's large-matmul and random-number rates, and the engine's noise groups.

``python -P ceiling_worker.py SPEC_JSON`` (as the harness runs it) or ``python -m
jaxinit.bench.ceiling_worker SPEC_JSON``. SPEC: the work (``inits``, ``width``, ``batch``, ...) and
``matmul_n``, ``rng_n`` (null: sizes for the backend), ``reps`` and ``min_time``. Measured, best of
``reps``:

* the jitted float32 ``n x n`` matmul at HIGHEST precision (as the sweep uses), and at the work's
  ``batch x width x width`` shape;
* ``jax.random.normal`` / ``truncated_normal`` / ``uniform`` rates two ways: one large array (bound by
  memory on a CPU), and work-shaped ``width x width`` draws one after another, one stream per device
  side by side (as the sweep draws); ``rng_per_s`` is the better of the two;
* which of the work's initializers share one noise draw per (seed, layer) in the engine, and how
  many random-bit streams those groups need.

Prints one ``BENCH_RESULT {json}`` line.
"""

from __future__ import annotations

import json
import math
import sys
import time

RESULT_MARK = "BENCH_RESULT "
SAMPLERS = ("normal", "truncated_normal", "uniform")


def best_time(fn, *args, reps, min_time):
    """The best of ``reps`` timings of ``fn(*args)``, each averaging enough calls to last ``min_time``."""
    import jax

    jax.block_until_ready(fn(*args))  # compile and warm up
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    inner = max(1, int(min_time / max(time.perf_counter() - t, 1e-9)))
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t) / inner)
    return best


def sampler(name):
    import jax
    import jax.numpy as jnp

    return {
        "normal": lambda k, n: jax.random.normal(k, (n,), jnp.float32),
        "truncated_normal": lambda k, n: jax.random.truncated_normal(k, -2.0, 2.0, (n,), jnp.float32),
        "uniform": lambda k, n: jax.random.uniform(k, (n,), jnp.float32, -1.0, 1.0),
    }[name]


def matmul_rate(m, k, n, timing):
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(1), (m, k), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (k, n), jnp.float32)
    f = jax.jit(lambda a, b: jnp.dot(a, b, precision=jax.lax.Precision.HIGHEST))
    return 2.0 * m * k * n / best_time(f, a, b, **timing)


def one_array(f, n):
    """One large array of ``n`` draws (bound by memory on a CPU)."""
    import jax

    return jax.jit(lambda k: f(k, n))


def work_shaped(f, shape, reps):
    """One ``shape`` draw after another, one stream per device side by side: the draws stay in cache,
    as the sweep's do (a large array is bound by memory, ~2x slower on a CPU)."""
    import jax
    import jax.numpy as jnp

    devices = jax.local_devices()
    mesh = jax.make_mesh((len(devices),), ("d",), devices=devices)
    P = jax.sharding.PartitionSpec
    size = shape[0] * shape[1]

    def one(k):
        k = jax.random.fold_in(k, jax.lax.axis_index("d"))

        def body(i, acc):
            return acc + jnp.sum(f(jax.random.fold_in(k, i), size))

        start = jax.lax.pcast(jnp.zeros((1,), jnp.float32), ("d",), to="varying")
        return jax.lax.fori_loop(0, reps, body, start)

    return jax.jit(jax.shard_map(one, mesh=mesh, in_specs=P(), out_specs=P("d")))


def noise_groups(inits, shape):
    """The engine's noise groups for ``inits`` at ``shape`` (float32) and the bit streams they need."""
    import numpy as np

    import jaxinit
    from jaxinit.lab.engine.sweep import noise_group

    groups = []
    for name in inits:
        group, _ = noise_group(jaxinit.get(name), shape, np.dtype("float32"))
        for entry in groups:
            if entry["group"] == group:
                entry["members"].append(name)
                break
        else:
            groups.append({"group": group, "members": [name]})
    # Groups whose draws are maps of the same random bits share one stream (drawn once).
    shapes = [g["group"].bits_shape(shape, np.dtype("float32")) for g in groups]
    return ([{"kind": g["group"].kind, "members": g["members"]} for g in groups],
            len({s for s in shapes if s is not None}) + sum(s is None for s in shapes))


def measure(spec):
    import jax

    from jaxinit.runtime import cpu_devices_chosen, usable_cores

    # Random numbers are drawn on one thread per device: on a CPU the hardware's rate is one device per
    # core drawing side by side (as jaxinit's sweep runs), unless the environment fixed the count.
    if not cpu_devices_chosen():
        jax.config.update("jax_num_cpu_devices", usable_cores())
    backend = jax.default_backend()
    timing = {"reps": spec["reps"], "min_time": spec["min_time"]}
    n = spec["matmul_n"] or (4096 if backend != "cpu" else 2048)
    width, batch = spec["width"], spec["batch"]
    out = {"backend": backend, "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
           "matmul_n": n, "matmul_flops_per_s": matmul_rate(n, n, n, timing),
           "work_matmul_shape": [batch, width, width],
           "work_matmul_flops_per_s": matmul_rate(batch, width, width, timing)}
    m = spec["rng_n"] or (2**26 if backend != "cpu" else 2**23)
    out["rng_n"] = m
    out["rng_per_s_large"] = {name: m / best_time(one_array(sampler(name), m), jax.random.key(3), **timing)
                              for name in SAMPLERS}
    devices = len(jax.local_devices())
    reps = max(1, m // (devices * width * width))
    out["rng_devices"] = devices
    out["rng_per_s_work"] = {
        name: reps * devices * width * width / best_time(work_shaped(sampler(name), (width, width), reps),
                                                         jax.random.key(4), **timing)
        for name in SAMPLERS}
    out["rng_per_s"] = {name: max(out["rng_per_s_large"][name], out["rng_per_s_work"][name]) for name in SAMPLERS}
    try:
        out["noise_groups"], out["bit_streams"] = noise_groups(spec["inits"], (width, width))
    except Exception as err:  # noqa: BLE001 - the ceiling stands without it
        out["noise_groups_error"] = repr(err)
    return out


def main(argv):
    print(RESULT_MARK + json.dumps(measure(json.loads(argv[1]))), flush=True)


if __name__ == "__main__":
    main(sys.argv)
