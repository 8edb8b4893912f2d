"""``jaxinit bench``: the sweep against the plain-Flax and PyTorch ways of doing the same work.

Everything is a ratio measured in one run, on one machine, on the same work: ``initializers x seeds``
ReLU MLPs of ``depth`` layers of ``width`` units fed ``batch`` Gaussian inputs, measuring the
per-layer second moment ``q`` of the pre-activations (and, with ``--gradients``, per-layer gradient
norms). Each contender runs end to end in a fresh Python process (import, compile, run, write or
collect), timed from outside; compile and warm run times are read from inside:

* ``jaxinit`` -- ``python -m jaxinit.cli sweep CONFIG --out DIR --fresh --no-plots --quiet`` on a
  config the config module generates (or, ``--runner python``, :mod:`~jaxinit.bench.sweep_worker`,
  calling :func:`jaxinit.lab.run.run`); compile and run times come from the results' ``meta.json``;
* ``flax_loop`` -- baseline (a): per (initializer, seed), a jitted ``model.init`` + ``model.apply``
  of an unrolled ``flax.linen`` MLP (``nn.Dense`` layers, ``relu``) returning the per-layer ``q``;
* ``flax_vmap`` -- baseline (b): per initializer, ``jit(vmap(model.init))`` + ``jit(vmap(model.apply))``
  over all seeds at once, the strongest plain-Flax way (both: :mod:`~jaxinit.bench.flax_worker`);
* ``torch_loop`` -- baseline (c), when ``torch`` is importable: the loop a PyTorch user writes
  (``torch.nn.init.kaiming_normal_`` / ``xavier_normal_`` / ``orthogonal_`` on ``nn.Linear`` layers,
  then a forward pass collecting ``q``; :mod:`~jaxinit.bench.torch_worker`); reported as unavailable
  otherwise;
* ``ceiling`` -- the device's large-matmul rate (jitted float32 ``n x n`` matmul at HIGHEST
  precision, as the sweep uses) and random-number rates (:mod:`~jaxinit.bench.ceiling_worker`), so
  each run's per-network time can be read as a fraction of what the hardware allows for that work.

``--growth`` measures instead the sweep's compile time and peak memory at depths 10, 100 and 1000
(the engine promises both flat in depth). ``--catalog`` runs the catalog benchmark instead
(:mod:`jaxinit.bench.catalog`: every entry against ``jax.nn.initializers`` and ``torch.nn.init``).
``--train`` runs the training benchmark instead (:mod:`jaxinit.bench.train_bench`, issue 13's works
T0 and T1: jaxinit's training engine against a Flax loop of a jitted optax step, a whole-run jitted
``lax.scan`` per member and PyTorch, with the matmul ceiling and compile-time flatness).

Peak memory is each child's ``ru_maxrss`` (``os.wait4``), plus the device's ``peak_bytes_in_use``
where the backend reports memory stats (GPUs). The parent process never starts a JAX backend.

Random numbers are counted as the engine spends them: initializers that share a base distribution
(he/glorot/lecun normals) draw one noise array per (seed, layer) -- one *noise group* -- and differ
only by a factor, and groups whose draws are maps of the same random bits (normal, truncated normal,
uniform, orthogonal's Gaussian) share one bit stream (see :mod:`jaxinit.lab.engine.sweep`), so the
sweep draws fewer numbers than the baselines.

OpenBLAS threads: jaxlib's CPU QR (orthogonal init) calls LAPACK through SciPy's OpenBLAS, whose
own thread pool fights XLA's on a small machine (measured on 2 loaded cores: a 256x256 QR took
~0.5-1 s against ~3 ms with one OpenBLAS thread). Unless the environment already sets it, every
child runs with ``OPENBLAS_NUM_THREADS=1`` (``--openblas-threads``; 0 keeps the environment);
the report records the value. PyTorch (MKL + OpenMP) does not read it; ``--torch-threads`` sets its
threads. Every child also gets ``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false``
(``--no-xla-workaround`` to leave XLA_FLAGS alone): with jaxlib 0.10.2 on 2 cores, baseline (b)'s
vmapped orthogonal init (two or more batched QRs per program, R used, batch >= 8) otherwise never
returns: every XLA thread idle, the caller blocked.

The modules, one job each: :mod:`~jaxinit.bench.work` (the work, its generated config, the runs'
names), :mod:`~jaxinit.bench.harness` (fresh processes, timing, peak RSS, the children's environment,
medians over rounds), :mod:`~jaxinit.bench.contenders` (each contender measured),
:mod:`~jaxinit.bench.report` (random numbers, fractions of the ceiling, ratios, targets),
:mod:`~jaxinit.bench.table` (the text), :mod:`~jaxinit.bench.modes` (:func:`run_benchmark`,
:func:`run_growth`), :mod:`~jaxinit.bench.options` (the CLI's :func:`add_arguments` and
:func:`run_from_args`), the four ``*_worker`` programs (each runnable as ``python -m
jaxinit.bench.<worker> SPEC_JSON``), :mod:`~jaxinit.bench.catalog` and its
:mod:`~jaxinit.bench.catalog_entries`; the training benchmark's ``train_*`` modules (work, shared
worker pieces, five workers, the bench, the report).
"""

from __future__ import annotations

from jaxinit.bench.contenders import combine_ceilings, measure_ceiling, measure_flax, measure_jaxinit, measure_torch
from jaxinit.bench.harness import (
    DEFAULT_TIMEOUT_S,
    RESULT_MARK,
    Proc,
    Settings,
    byte_compile_package,
    child_env,
    cli_available,
    median_run,
    openblas_setting,
    run_process,
    torch_available,
    worker_command,
)
from jaxinit.bench.modes import GROWTH_DEPTHS, GROWTH_SEEDS, run_benchmark, run_growth
from jaxinit.bench.options import add_arguments, run_from_args
from jaxinit.bench.report import (
    GROWTH_TARGET,
    REPORT_FORMAT,
    TARGETS,
    compute_ratios,
    evaluate_targets,
    random_numbers,
    target_set,
)
from jaxinit.bench.table import format_table
from jaxinit.bench.train_bench import run_train_benchmark
from jaxinit.bench.train_report import format_train_table
from jaxinit.bench.train_work import WORKS, TrainWork
from jaxinit.bench.work import BASELINES, DEFAULT_INITS, LEGEND, RUNS, SUPPORTED_INITS, Work
from jaxinit.runtime import XLA_FAST_COMPILE, XLA_WORKAROUND

__all__ = [
    "BASELINES", "DEFAULT_INITS", "DEFAULT_TIMEOUT_S", "GROWTH_DEPTHS", "GROWTH_SEEDS", "GROWTH_TARGET", "LEGEND",
    "REPORT_FORMAT", "RESULT_MARK", "RUNS", "SUPPORTED_INITS", "TARGETS", "WORKS", "XLA_FAST_COMPILE",
    "XLA_WORKAROUND", "Proc", "Settings", "TrainWork", "Work", "add_arguments", "byte_compile_package", "child_env",
    "cli_available", "combine_ceilings", "compute_ratios", "evaluate_targets", "format_table", "format_train_table",
    "measure_ceiling", "measure_flax", "measure_jaxinit", "measure_torch", "median_run", "openblas_setting",
    "random_numbers", "run_benchmark", "run_from_args", "run_growth", "run_process", "run_train_benchmark",
    "target_set", "torch_available", "worker_command",
]
