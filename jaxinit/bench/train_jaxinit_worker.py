"""The training benchmark's jaxinit contender: every member in one compiled program.

``python -P train_jaxinit_worker.py SPEC_JSON`` (as the harness runs it). SPEC: the work
(:meth:`jaxinit.bench.train_work.TrainWork.spec`), ``data`` (the ``.npz`` path), and optionally
``compile_only`` (compile the program and stop: the compile-time flatness check, with the work's
``steps`` as given), ``block`` (seeds per vmap; null: the engine's default) and ``evals_out`` (after
the timed run, save every member's ``train_loss, test_loss, train_accuracy, test_accuracy``, dims
``(initializer, grid_point, seed, evaluation)``, to this ``.npz``). What a library user
writes: :func:`jaxinit.runtime.configure_process` with one CPU device per usable core (before JAX
starts), then :func:`jaxinit.lab.engine.train.layout`, :func:`~jaxinit.lab.engine.train.compile_train`
and :func:`~jaxinit.lab.engine.train.run_chunk` per chunk of seeds -- what
:func:`~jaxinit.lab.engine.train.train_members` does, timed in its two parts. The members train with
``optimizer = {name = "sgd", momentum}``, the work's learning rate, and record everything the engine
records (besides the losses and accuracies every contender computes, gradient and update norms every
step, per-layer statistics and dead units at every evaluation). Prints one ``BENCH_RESULT {json}`` line.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import json  # noqa: E402 - the clock starts before the imports it measures
import os  # noqa: E402
import sys  # noqa: E402

from jaxinit.runtime import configure_process, usable_cores  # noqa: E402


def plan_of(spec, in_dim, out_dim):
    """The engine's :class:`~jaxinit.lab.engine.train.TrainPlan` of the work ``spec``."""
    from jaxinit.lab.engine.train import TrainPlan

    return TrainPlan(spec["depth"], spec["width"], in_dim, out_dim, tuple(spec["inits"]), activation="relu",
                     optimizer={"name": "sgd", "momentum": spec["momentum"]}, learning_rate=spec["learning_rate"],
                     steps=spec["steps"], batch=spec["batch"], eval_every=spec["eval_every"])


def main(argv):
    spec = json.loads(argv[1])
    configure_process(usable_cores())  # before JAX starts its backend: one CPU device per core
    import jax
    import numpy as np

    from jaxinit.lab.engine.train import compile_train, grid_arrays, layout, member_bytes, run_chunk

    t1 = time.perf_counter()
    with np.load(spec["data"]) as f:
        data = tuple(f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    in_dim, out_dim = data[0].shape[1], int(max(data[1].max(), data[3].max())) + 1
    plan = plan_of(spec, in_dim, out_dim)
    grid = grid_arrays(plan, None)
    seeds = list(range(spec["seeds"]))
    chunks = layout(len(seeds), block=spec.get("block"), members=plan.n_init * grid[0].shape[0],
                    member_bytes=member_bytes(plan), group=spec.get("group"))
    cpu = time.process_time()
    program, compile_s = compile_train(plan, data[0].shape[0], data[2].shape[0], grid[0].shape[0], chunks)
    cpu = time.process_time() - cpu
    result = {"import_s": t1 - T0, "compile_s": compile_s, "compile_cpu_s": cpu, "backend": jax.default_backend(),
              "device_count": chunks.devices, "block": chunks.block, "group": chunks.group, "chunk_size": chunks.size,
              "xla_flags": os.environ.get("XLA_FLAGS")}
    if spec.get("compile_only"):
        result["steps"] = spec["steps"]
        result["total_s"] = time.perf_counter() - T0
        print("BENCH_RESULT " + json.dumps(result), flush=True)
        return
    t = time.perf_counter()
    parts = [run_chunk(program, plan, chunks, data, 0, ids, grid) for ids in chunks.chunks(seeds)]
    run_s = time.perf_counter() - t
    names = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "diverged")
    out = {k: np.concatenate([p[k] for p in parts], axis=2) for k in names}
    if spec.get("evals_out"):
        np.savez(spec["evals_out"], **{k: out[k] for k in names[:4]})
    inits = spec["inits"]
    def final(name):
        return {n: float(np.mean(out[name][i, 0, :, -1])) for i, n in enumerate(inits)}

    result.update(run_s=run_s, final_train_loss=final("train_loss"), final_test_accuracy=final("test_accuracy"),
                  diverged=int(out["diverged"].sum()), total_s=time.perf_counter() - T0)
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
