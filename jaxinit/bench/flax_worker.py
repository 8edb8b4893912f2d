"""Baselines (a) and (b): the plain-Flax ways of doing the benchmark's work.

``python -P flax_worker.py SPEC_JSON`` (as the harness runs it) or ``python -m
jaxinit.bench.flax_worker SPEC_JSON``. SPEC: ``inits``, ``seeds``, ``depth``, ``width``, ``batch``,
``gradients`` and ``mode``: ``"loop"`` -- per (initializer, seed) a jitted ``model.init`` + ``model.apply``
of an unrolled ``flax.linen`` MLP; ``"vmap"`` -- per initializer ``jit(vmap(model.init))`` +
``jit(vmap(model.apply))`` over all seeds. Prints one ``BENCH_RESULT {json}`` line: import, compile and
run seconds, and the median over seeds of the first and last layers' ``q`` per initializer.

A Flax user's program: it imports Flax, JAX and NumPy, never jaxinit.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import json  # noqa: E402 - the clock starts before the imports it measures
import statistics  # noqa: E402
import sys  # noqa: E402

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

T1 = time.perf_counter()
HIGHEST = jax.lax.Precision.HIGHEST
DATA = 2**30  # inputs and targets: a branch of the seed's key that no parameter uses
RESULT_MARK = "BENCH_RESULT "


class MLP(nn.Module):
    """``depth`` Dense(width) + ReLU layers returning the per-layer ``q`` (and a readout for gradients)."""

    kernel_init: object
    depth: int
    width: int
    readout: bool

    @nn.compact
    def __call__(self, x):
        qs = []
        for _ in range(self.depth):
            h = nn.Dense(self.width, kernel_init=self.kernel_init, precision=HIGHEST)(x)
            qs.append(jnp.mean(h * h))
            x = nn.relu(h)
        if self.readout:
            x = nn.Dense(10, kernel_init=self.kernel_init, precision=HIGHEST)(x)
        return jnp.stack(qs), x


def functions(kernel_init, spec):
    """``init_one(seed) -> params`` and ``measure_one(params, seed) -> (q, gradient norms)``."""
    depth, width, batch, grads = spec["depth"], spec["width"], spec["batch"], spec["gradients"]
    model = MLP(kernel_init, depth, width, grads)

    def init_one(seed):
        return model.init(jax.random.key(seed), jnp.zeros((batch, width), jnp.float32))

    def measure_one(params, seed):
        key = jax.random.fold_in(jax.random.key(seed), DATA)
        x = jax.random.normal(key, (batch, width), jnp.float32)
        if not grads:
            return model.apply(params, x)[0], jnp.zeros((0,), jnp.float32)

        def loss(p):
            q, y = model.apply(p, x)
            t = jax.random.normal(jax.random.fold_in(key, 1), y.shape, y.dtype)
            return jnp.mean((y - t) ** 2), q

        grads_, q = jax.grad(loss, has_aux=True)(params)
        norms = [jnp.linalg.norm(grads_["params"][f"Dense_{i}"]["kernel"]) for i in range(depth)]
        return q, jnp.stack(norms)

    return init_one, measure_one


def run_loop(init_one, measure_one, seeds):
    """Baseline (a): compile once, then one jitted init + apply per seed. Returns (compile s, run s, q)."""
    seed0 = np.int32(0)
    t = time.perf_counter()
    init_c = jax.jit(init_one).lower(seed0).compile()
    measure_c = jax.jit(measure_one).lower(jax.eval_shape(init_one, seed0), seed0).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    qs = []
    for s in range(seeds):
        seed = np.int32(s)
        q, _ = measure_c(init_c(seed), seed)
        qs.append(np.asarray(q))
    return compile_s, time.perf_counter() - t, np.stack(qs)


def run_vmap(init_one, measure_one, seeds):
    """Baseline (b): ``jit(vmap(init))`` + ``jit(vmap(apply))`` over all seeds at once."""
    seeds = np.arange(seeds, dtype=np.int32)
    vinit, vmeasure = jax.jit(jax.vmap(init_one)), jax.jit(jax.vmap(measure_one))
    t = time.perf_counter()
    init_c = vinit.lower(seeds).compile()
    measure_c = vmeasure.lower(jax.eval_shape(vinit, seeds), seeds).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    params = init_c(seeds)
    q, _ = measure_c(params, seeds)
    q = np.asarray(q)
    del params
    return compile_s, time.perf_counter() - t, q


def device_peak_bytes():
    """The device's peak memory where the backend reports it (GPUs), else None."""
    try:
        stats = jax.local_devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - a backend without memory stats
        return None
    return stats.get("peak_bytes_in_use")


def main(argv):
    spec = json.loads(argv[1])
    if spec["mode"] not in ("loop", "vmap"):
        raise SystemExit(f"mode must be 'loop' or 'vmap'; got {spec['mode']!r}")
    run = run_loop if spec["mode"] == "loop" else run_vmap
    compile_s = run_s = 0.0
    q_first, q_last = {}, {}
    for name in spec["inits"]:
        init_one, measure_one = functions(getattr(jax.nn.initializers, name)(), spec)
        c, r, q = run(init_one, measure_one, spec["seeds"])
        compile_s, run_s = compile_s + c, run_s + r
        q_first[name], q_last[name] = statistics.median(q[:, 0].tolist()), statistics.median(q[:, -1].tolist())
    result = {"import_s": T1 - T0, "compile_s": compile_s, "run_s": run_s, "q_first": q_first, "q_last": q_last,
              "backend": jax.default_backend(), "device_peak_bytes": device_peak_bytes(),
              "total_s": time.perf_counter() - T0}
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
