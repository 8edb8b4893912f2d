"""``jaxinit bench``: the sweep against the plain-Flax and PyTorch ways of doing the same work.

Everything is a ratio measured in one run, on one machine, on the same work: ``initializers x seeds``
ReLU MLPs of ``depth`` layers of ``width`` units fed ``batch`` Gaussian inputs, measuring the
per-layer second moment ``q`` of the pre-activations (and, with ``--gradients``, per-layer gradient
norms). Each contender runs end to end in a fresh Python process (import, compile, run, write or
collect), timed from outside; compile and warm run times are read from inside:

* ``jaxinit`` -- ``python -m jaxinit.cli sweep CONFIG --out DIR --fresh --no-plots --quiet`` on a
  generated TOML config (or, ``--runner python``, a few lines calling :func:`jaxinit.lab.run.run`);
  compile and run times come from the results' ``meta.json``;
* ``flax_loop`` -- baseline (a): per (initializer, seed), a jitted ``model.init`` + ``model.apply``
  of an unrolled ``flax.linen`` MLP (``nn.Dense`` layers, ``relu``) returning the per-layer ``q``;
* ``flax_vmap`` -- baseline (b): per initializer, ``jit(vmap(model.init))`` + ``jit(vmap(model.apply))``
  over all seeds at once, the strongest plain-Flax way;
* ``torch_loop`` -- baseline (c), when ``torch`` is importable: the loop a PyTorch user writes
  (``torch.nn.init.kaiming_normal_`` / ``xavier_normal_`` / ``orthogonal_`` on ``nn.Linear`` layers,
  then a forward pass collecting ``q``); reported as unavailable otherwise;
* ``ceiling`` -- the device's large-matmul rate (jitted float32 ``n x n`` matmul at HIGHEST
  precision, as the sweep uses) and random-number rates (``jax.random.normal`` /
  ``truncated_normal`` / ``uniform`` of a large array), so each run's per-network time can be read
  as a fraction of what the hardware allows for that work.

``--growth`` measures instead the sweep's compile time and peak memory at depths 10, 100 and 1000
(the engine promises both flat in depth).

Peak memory is each child's ``ru_maxrss`` (``os.wait4``), plus the device's ``peak_bytes_in_use``
where the backend reports memory stats (GPUs). The parent process never starts a JAX backend.

Random numbers are counted as the engine spends them: initializers that share a base distribution
(he/glorot/lecun normals) draw one noise array per (seed, layer) -- one *noise group* -- and differ
only by a factor, and groups whose draws are maps of the same random bits (normal, truncated normal,
uniform, orthogonal's Gaussian) share one bit stream (see :mod:`jaxinit.sweep`), so the sweep draws
fewer numbers than the baselines.

OpenBLAS threads: jaxlib's CPU QR (orthogonal init) calls LAPACK through SciPy's OpenBLAS, whose
own thread pool fights XLA's on a small machine (measured on 2 loaded cores: a 256x256 QR took
~0.5-1 s against ~3 ms with one OpenBLAS thread). Unless the environment already sets it, every
child runs with ``OPENBLAS_NUM_THREADS=1`` (``--openblas-threads``; 0 keeps the environment);
the report records the value. PyTorch (MKL + OpenMP) does not read it; ``--torch-threads`` sets its
threads. Every child also gets ``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false``
(``--no-xla-workaround`` to leave XLA_FLAGS alone): with jaxlib 0.10.2 on 2 cores, baseline (b)'s
vmapped orthogonal init (two or more batched QRs per program, R used, batch >= 8) otherwise never
returns: every XLA thread idle, the caller blocked.

The library API: :func:`run_benchmark` / :func:`run_growth` return a JSON-able report dict,
:func:`format_table` prints it, :func:`add_arguments` / :func:`run_from_args` are the CLI's.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

# jaxinit.runtime imports nothing heavy: the flags jaxinit sets for itself, named once.
from jaxinit.runtime import XLA_FAST_COMPILE, XLA_WORKAROUND

__all__ = [
    "DEFAULT_INITS", "GROWTH_DEPTHS", "RUNS", "SUPPORTED_INITS", "TARGETS", "Settings", "Work", "add_arguments",
    "combine_ceilings", "compute_ratios", "evaluate_targets", "format_table", "measure_ceiling", "measure_flax",
    "measure_jaxinit", "measure_torch", "positive_int", "run_benchmark", "run_from_args", "run_growth",
    "torch_available",
]

REPORT_FORMAT = "jaxinit-bench/1"
DEFAULT_INITS = ("he_normal", "glorot_normal", "lecun_normal", "orthogonal")
# Initializers every contender has: jaxinit's registry name == jax.nn.initializers.<name>; torch below.
SUPPORTED_INITS = ("he_normal", "glorot_normal", "lecun_normal", "orthogonal", "he_uniform", "glorot_uniform",
                   "lecun_uniform")
GROWTH_DEPTHS = (10, 100, 1000)
GROWTH_SEEDS = 4  # one seed block of the engine: growth measures compile time and memory, not throughput
DEFAULT_TIMEOUT_S = 900.0
RESULT_MARK = "BENCH_RESULT "
MiB = 2**20

# run key -> display label; the order of the table.
RUNS = {
    "jaxinit": "jaxinit sweep",
    "flax_loop": "(a) flax loop",
    "flax_vmap": "(b) flax jit(vmap)",
    "torch_loop": "(c) torch loop",
}
LEGEND = {
    "flax_loop": "jit(model.init) + jit(model.apply) per (initializer, seed), unrolled flax.linen MLP",
    "flax_vmap": "per initializer jit(vmap(model.init)) + jit(vmap(model.apply)) over all seeds",
    "torch_loop": "per (initializer, seed) torch.nn.init on nn.Linear layers + forward",
}
BASELINES = ("flax_loop", "flax_vmap", "torch_loop")

# Targets of the benchmark (measured on a 2-core CPU). Each compares jaxinit with a baseline
# as speedup = baseline time / jaxinit time (> 1: jaxinit ahead). "within 2x of torch" is speedup >= 0.5.
TARGETS = {
    "default": (  # the default work: 4 initializers x 32 seeds, depth 50, width 256, batch 128
        ("end_to_end", "flax_vmap", 5.0, "end to end >= 5x faster than jit(vmap(flax))"),
        ("end_to_end", "torch_loop", 0.5, "end to end within 2x of the PyTorch loop"),
        ("per_network", "flax_vmap", 1.0, "warm per-network time ahead of jit(vmap(flax))"),
        ("per_network", "torch_loop", 1.0, "warm per-network time ahead of the PyTorch loop"),
    ),
    "256_seeds": (  # 4 initializers x 256 seeds (1024 networks): compile amortized
        ("end_to_end", "flax_vmap", 2.0, "end to end >= 2x faster than jit(vmap(flax)) at 256 seeds"),
        ("end_to_end", "torch_loop", 1.5, "end to end >= 1.5x faster than the PyTorch loop at 256 seeds"),
        ("per_network", "flax_vmap", 1.0, "warm per-network time ahead of jit(vmap(flax))"),
        ("per_network", "torch_loop", 1.0, "warm per-network time ahead of the PyTorch loop"),
    ),
}
GROWTH_TARGET = 1.5  # depth 1000 / depth 10, for compile time and peak memory


# ---------------------------------------------------------------------------------------------
# The work
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Work:
    """What every contender computes: ``len(inits) x seeds`` ReLU MLPs, per-layer ``q`` (and gradients)."""

    inits: tuple[str, ...] = DEFAULT_INITS
    seeds: int = 32
    depth: int = 50
    width: int = 256
    batch: int = 128
    gradients: bool = False

    def __post_init__(self):
        object.__setattr__(self, "inits", tuple(self.inits))
        unknown = [name for name in self.inits if name not in SUPPORTED_INITS]
        if unknown or not self.inits:
            raise ValueError(f"initializers must be some of {', '.join(SUPPORTED_INITS)} (every contender has "
                             f"them); got {', '.join(unknown) if unknown else 'none'}.")
        if len(set(self.inits)) != len(self.inits):
            raise ValueError(f"initializers must be distinct; got {', '.join(self.inits)}.")
        for name in ("seeds", "depth", "width", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")

    @property
    def networks(self) -> int:
        return len(self.inits) * self.seeds

    def flops_per_network(self) -> float:
        """Matmul FLOPs of one network: ``depth x 2 batch width^2`` forward; with gradients, the
        engine's backward adds a transposed matmul and two batch x batch Gram products per layer."""
        forward = self.depth * 2.0 * self.batch * self.width**2
        if not self.gradients:
            return forward
        return forward + self.depth * (2.0 * self.batch * self.width**2 + 4.0 * self.batch**2 * self.width)

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "inits": list(self.inits), "networks": self.networks,
                "flops_per_network": self.flops_per_network()}

    def toml(self, out_dir: str | Path) -> str:
        """The sweep config of this work (forward probes, gradients as asked, no theory overlay)."""
        inits = ", ".join(json.dumps(name) for name in self.inits)
        return textwrap.dedent(f"""\
            # generated by jaxinit bench
            [network]
            depth = {self.depth}
            width = {self.width}
            activation = "relu"
            bias = "zeros"
            dtype = "float32"

            [inputs]
            batch = {self.batch}
            kind = "gaussian"

            [sweep]
            seeds = {self.seeds}
            base_seed = 0
            initializers = [{inits}]

            [probes]
            forward = true
            gradients = {"true" if self.gradients else "false"}
            theory = false

            [output]
            dir = {json.dumps(str(out_dir))}
            """)

    def matches(self, **kwargs: Any) -> bool:
        return all(getattr(self, k) == v for k, v in kwargs.items())


# ---------------------------------------------------------------------------------------------
# Child processes: timed from outside, peak memory from os.wait4
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Proc:
    returncode: int
    wall_s: float
    cpu_s: float | None
    peak_rss_mb: float | None
    stdout: str
    stderr: str
    timed_out: bool

    def result(self) -> dict[str, Any] | None:
        """The JSON a worker printed on its ``BENCH_RESULT`` line, if any."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(RESULT_MARK):
                return json.loads(line[len(RESULT_MARK):])
        return None

    def failure(self) -> str:
        if self.timed_out:
            return f"timed out after {self.wall_s:.0f} s"
        tail = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return f"exit status {self.returncode}" + (f": {tail[-1].strip()[:300]}" if tail else "")


def _maxrss_mb(ru_maxrss: int) -> float:
    return ru_maxrss / MiB if sys.platform == "darwin" else ru_maxrss / 1024  # bytes on macOS, KiB on Linux


def run_process(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                cwd: str | Path | None = None) -> Proc:
    """Run ``cmd`` to completion; wall time from outside, CPU time and peak RSS of that child alone."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        cpu = rss = None
        try:
            if hasattr(os, "wait4"):
                _, status, usage = os.wait4(proc.pid, 0)
                timer.cancel()
                proc.returncode = os.waitstatus_to_exitcode(status)
                cpu, rss = usage.ru_utime + usage.ru_stime, _maxrss_mb(usage.ru_maxrss)
            else:  # pragma: no cover - Windows
                proc.wait()
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Proc(proc.returncode, wall, cpu, rss, out.read().decode(errors="replace"),
                    err.read().decode(errors="replace"), timed_out.is_set())


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the children run: the same environment for every contender.

    Attributes:
      timeout: seconds per child process (a child past it is killed and reported as failed).
      openblas_threads: ``OPENBLAS_NUM_THREADS`` (see :func:`openblas_setting`).
      xla_workaround: add ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` to ``XLA_FLAGS``:
        with jaxlib 0.10.2 on a 2-core CPU, a jitted vmap of two or more batched QRs whose R factor is
        used (``jax.nn.initializers.orthogonal`` under ``vmap``, i.e. baseline (b)) never returns (every
        XLA thread idle, the caller waiting); this flag avoids it and did not change the sweep's speed.
      torch_threads: ``torch.set_num_threads`` for the PyTorch baseline (``None``: torch's default).
      same_xla_flags: give the Flax baselines and the ceiling the XLA flags jaxinit's sweep sets for
        itself (``jaxinit.runtime.XLA_FAST_COMPILE``); by default they run with JAX's defaults, as a
        Flax user's program would. The jaxinit sweep always runs with its own settings (its CLI, or
        ``configure_process`` in the python runner), which the report lists.
    """

    timeout: float = DEFAULT_TIMEOUT_S
    openblas_threads: int | None = None
    xla_workaround: bool = True
    torch_threads: int | None = None
    same_xla_flags: bool = False

    def env(self) -> dict[str, str]:
        # Every contender compiles cold: a persistent compilation cache left in the environment would
        # turn the second benchmark run's compile times into cache reads.
        env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        value = openblas_setting(self.openblas_threads)
        if value is not None:
            env["OPENBLAS_NUM_THREADS"] = value
        if self.xla_workaround and XLA_WORKAROUND not in env.get("XLA_FLAGS", ""):
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_WORKAROUND}".strip()
        if self.same_xla_flags and XLA_FAST_COMPILE.split("=")[0] not in env.get("XLA_FLAGS", ""):
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_FAST_COMPILE}".strip()
        return env

    def describe(self) -> dict[str, Any]:
        env = self.env()
        return {"openblas_num_threads": env.get("OPENBLAS_NUM_THREADS"), "xla_flags": env.get("XLA_FLAGS"),
                "torch_threads": self.torch_threads, "timeout_s": self.timeout}




def child_env(openblas_threads: int | None = None) -> dict[str, str]:
    """The environment of every child (:meth:`Settings.env` with the defaults but ``openblas_threads``)."""
    return Settings(openblas_threads=openblas_threads).env()


def openblas_setting(openblas_threads: int | None = None) -> str | None:
    """``None``: the environment's value (or 1 where unset); ``0``: the environment as is; ``n``: n."""
    if openblas_threads is None:
        return os.environ.get("OPENBLAS_NUM_THREADS", "1")
    if openblas_threads == 0:
        return os.environ.get("OPENBLAS_NUM_THREADS")
    return str(int(openblas_threads))


def _python(code: str, spec: dict[str, Any]) -> list[str]:
    return [sys.executable, "-c", code, json.dumps(spec)]


# The workers: self-contained scripts (the torch one never imports JAX, and no worker imports this
# module), run as `python -c CODE SPEC_JSON`; each prints one `BENCH_RESULT {json}` line.
_PRELUDE = """\
import json, sys, time
T0 = time.perf_counter()
SPEC = json.loads(sys.argv[1])


def emit(result):
    print("BENCH_RESULT " + json.dumps(result), flush=True)


def device_peak_bytes():
    try:
        import jax
        stats = jax.local_devices()[0].memory_stats() or {}
    except Exception:
        return None
    return stats.get("peak_bytes_in_use")


def median(values):
    values = sorted(values)
    n = len(values)
    return 0.5 * (values[(n - 1) // 2] + values[n // 2])
"""

_JAXINIT_WORKER = _PRELUDE + """
from jaxinit.runtime import configure_process, usable_cores
configure_process(usable_cores())  # what the CLI does, and the README asks of library users
from jaxinit.lab import config, run
T1 = time.perf_counter()
run.run(config.load(SPEC["config"]), out=SPEC["out"], fresh=True, progress=False)
emit({"import_s": T1 - T0, "total_s": time.perf_counter() - T0, "device_peak_bytes": device_peak_bytes()})
"""

_FLAX_WORKER = _PRELUDE + """
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
T1 = time.perf_counter()

DEPTH, WIDTH, BATCH, SEEDS, GRADS = SPEC["depth"], SPEC["width"], SPEC["batch"], SPEC["seeds"], SPEC["gradients"]
HIGHEST = jax.lax.Precision.HIGHEST
DATA = 2**30  # inputs and targets: a branch of the seed's key that no parameter uses


class MLP(nn.Module):
    kernel_init: object

    @nn.compact
    def __call__(self, x):
        qs = []
        for _ in range(DEPTH):
            h = nn.Dense(WIDTH, kernel_init=self.kernel_init, precision=HIGHEST)(x)
            qs.append(jnp.mean(h * h))
            x = nn.relu(h)
        if GRADS:
            x = nn.Dense(10, kernel_init=self.kernel_init, precision=HIGHEST)(x)
        return jnp.stack(qs), x


def functions(kernel_init):
    model = MLP(kernel_init)

    def init_one(seed):
        return model.init(jax.random.key(seed), jnp.zeros((BATCH, WIDTH), jnp.float32))

    def measure_one(params, seed):
        key = jax.random.fold_in(jax.random.key(seed), DATA)
        x = jax.random.normal(key, (BATCH, WIDTH), jnp.float32)
        if not GRADS:
            return model.apply(params, x)[0], jnp.zeros((0,), jnp.float32)

        def loss(p):
            q, y = model.apply(p, x)
            t = jax.random.normal(jax.random.fold_in(key, 1), y.shape, y.dtype)
            return jnp.mean((y - t) ** 2), q

        grads, q = jax.grad(loss, has_aux=True)(params)
        norms = [jnp.linalg.norm(grads["params"][f"Dense_{i}"]["kernel"]) for i in range(DEPTH)]
        return q, jnp.stack(norms)

    return init_one, measure_one


compile_s = run_s = 0.0
q_first, q_last = {}, {}
for name in SPEC["inits"]:
    init_one, measure_one = functions(getattr(jax.nn.initializers, name)())
    if SPEC["mode"] == "loop":
        seed0 = np.int32(0)
        t = time.perf_counter()
        init_c = jax.jit(init_one).lower(seed0).compile()
        measure_c = jax.jit(measure_one).lower(jax.eval_shape(init_one, seed0), seed0).compile()
        compile_s += time.perf_counter() - t
        t = time.perf_counter()
        qs = []
        for s in range(SEEDS):
            seed = np.int32(s)
            q, _ = measure_c(init_c(seed), seed)
            qs.append(np.asarray(q))
        q = np.stack(qs)
        run_s += time.perf_counter() - t
    else:
        seeds = np.arange(SEEDS, dtype=np.int32)
        vinit, vmeasure = jax.jit(jax.vmap(init_one)), jax.jit(jax.vmap(measure_one))
        t = time.perf_counter()
        init_c = vinit.lower(seeds).compile()
        measure_c = vmeasure.lower(jax.eval_shape(vinit, seeds), seeds).compile()
        compile_s += time.perf_counter() - t
        t = time.perf_counter()
        params = init_c(seeds)
        q, _ = measure_c(params, seeds)
        q = np.asarray(q)
        del params
        run_s += time.perf_counter() - t
    q_first[name], q_last[name] = median(q[:, 0].tolist()), median(q[:, -1].tolist())
emit({"import_s": T1 - T0, "compile_s": compile_s, "run_s": run_s, "q_first": q_first, "q_last": q_last,
      "backend": jax.default_backend(), "device_peak_bytes": device_peak_bytes(), "total_s": time.perf_counter() - T0})
"""

_TORCH_WORKER = _PRELUDE + """
import torch
T1 = time.perf_counter()

DEPTH, WIDTH, BATCH, SEEDS, GRADS = SPEC["depth"], SPEC["width"], SPEC["batch"], SPEC["seeds"], SPEC["gradients"]
init = torch.nn.init
INITS = {
    "he_normal": lambda w: init.kaiming_normal_(w, nonlinearity="relu"),
    "he_uniform": lambda w: init.kaiming_uniform_(w, nonlinearity="relu"),
    "glorot_normal": init.xavier_normal_,
    "glorot_uniform": init.xavier_uniform_,
    "lecun_normal": lambda w: init.kaiming_normal_(w, nonlinearity="linear"),
    "lecun_uniform": lambda w: init.kaiming_uniform_(w, nonlinearity="linear"),
    "orthogonal": init.orthogonal_,
}
torch.set_float32_matmul_precision("highest")
if SPEC.get("threads"):
    torch.set_num_threads(SPEC["threads"])
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
layers = torch.nn.ModuleList([torch.nn.Linear(WIDTH, WIDTH) for _ in range(DEPTH)]).to(device)
readout = torch.nn.Linear(WIDTH, 10).to(device) if GRADS else None

t = time.perf_counter()
q_first, q_last = {}, {}
for name in SPEC["inits"]:
    reinit = INITS[name]
    firsts, finals = [], []
    for seed in range(SEEDS):
        torch.manual_seed(seed)
        with torch.no_grad():
            for linear in layers:
                reinit(linear.weight)
                linear.bias.zero_()
            if readout is not None:
                reinit(readout.weight)
                readout.bias.zero_()
        x = torch.randn(BATCH, WIDTH, device=device)
        with torch.set_grad_enabled(GRADS):
            qs = []
            for linear in layers:
                h = linear(x)
                qs.append((h * h).mean())
                x = torch.relu(h)
            q = torch.stack(qs)
            if GRADS:
                y = readout(x)
                loss = ((y - torch.randn_like(y)) ** 2).mean()
                grads = torch.autograd.grad(loss, [linear.weight for linear in layers])
                norms = torch.stack([g.norm() for g in grads]).cpu().numpy()
        q = q.detach().cpu().numpy()
        firsts.append(float(q[0]))
        finals.append(float(q[-1]))
    q_first[name], q_last[name] = median(firsts), median(finals)
if device.type == "cuda":
    torch.cuda.synchronize()
run_s = time.perf_counter() - t
emit({"import_s": T1 - T0, "compile_s": 0.0, "run_s": run_s, "q_first": q_first, "q_last": q_last,
      "backend": device.type,
      "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
      "total_s": time.perf_counter() - T0})
"""

_CEILING_WORKER = _PRELUDE + """
import math
import jax
import jax.numpy as jnp
import numpy as np
from jaxinit.runtime import cpu_devices_chosen, usable_cores

# Random numbers are drawn on one thread per device: on a CPU the hardware's rate is one device per
# core drawing side by side (as jaxinit's sweep runs), unless the environment fixed the count.
if not cpu_devices_chosen():
    jax.config.update("jax_num_cpu_devices", usable_cores())
backend = jax.default_backend()
HIGHEST = jax.lax.Precision.HIGHEST
REPS, MIN_TIME = SPEC["reps"], SPEC["min_time"]


def best_time(fn, *args):
    jax.block_until_ready(fn(*args))  # compile and warm up
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    inner = max(1, int(MIN_TIME / max(time.perf_counter() - t, 1e-9)))
    best = math.inf
    for _ in range(REPS):
        t = time.perf_counter()
        for _ in range(inner):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t) / inner)
    return best


def matmul_rate(m, k, n):
    a = jax.random.normal(jax.random.key(1), (m, k), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (k, n), jnp.float32)
    f = jax.jit(lambda a, b: jnp.dot(a, b, precision=HIGHEST))
    return 2.0 * m * k * n / best_time(f, a, b)


n = SPEC["matmul_n"] or (4096 if backend != "cpu" else 2048)
out = {"backend": backend, "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count(),
       "matmul_n": n, "matmul_flops_per_s": matmul_rate(n, n, n),
       "work_matmul_shape": [SPEC["batch"], SPEC["width"], SPEC["width"]],
       "work_matmul_flops_per_s": matmul_rate(SPEC["batch"], SPEC["width"], SPEC["width"])}
m = SPEC["rng_n"] or (2**26 if backend != "cpu" else 2**23)
samplers = {
    "normal": lambda k, n: jax.random.normal(k, (n,), jnp.float32),
    "truncated_normal": lambda k, n: jax.random.truncated_normal(k, -2.0, 2.0, (n,), jnp.float32),
    "uniform": lambda k, n: jax.random.uniform(k, (n,), jnp.float32, -1.0, 1.0),
}
out["rng_n"] = m
out["rng_per_s_large"] = {name: m / best_time(jax.jit(lambda k, f=f: f(k, m)), jax.random.key(3))
                          for name, f in samplers.items()}

# At the work's shape, one (width, width) draw after another, one stream per device side by side:
# the draws stay in cache, as the sweep's do (a large array is bound by memory, ~2x slower on a CPU).
devices = jax.local_devices()
mesh = jax.make_mesh((len(devices),), ("d",), devices=devices)
P = jax.sharding.PartitionSpec
shape = (SPEC["width"], SPEC["width"])
reps = max(1, m // (len(devices) * shape[0] * shape[1]))


def work_shaped(f):
    def one(k):
        k = jax.random.fold_in(k, jax.lax.axis_index("d"))
        body = lambda i, acc: acc + jnp.sum(f(jax.random.fold_in(k, i), shape[0] * shape[1]))  # noqa: E731
        start = jax.lax.pcast(jnp.zeros((1,), jnp.float32), ("d",), to="varying")
        return jax.lax.fori_loop(0, reps, body, start)
    return jax.jit(jax.shard_map(one, mesh=mesh, in_specs=P(), out_specs=P("d")))


out["rng_devices"] = len(devices)
out["rng_per_s_work"] = {name: reps * len(devices) * shape[0] * shape[1] / best_time(work_shaped(f),
                                                                                     jax.random.key(4))
                         for name, f in samplers.items()}
# The ceiling: the better of the two ways of drawing.
out["rng_per_s"] = {name: max(out["rng_per_s_large"][name], out["rng_per_s_work"][name]) for name in samplers}

# The engine's noise groups for this work (which initializers share one draw per seed and layer).
try:
    import jaxinit
    from jaxinit.lab.engine.sweep import noise_group

    groups = []
    for name in SPEC["inits"]:
        group, _ = noise_group(jaxinit.get(name), (SPEC["width"], SPEC["width"]), np.dtype("float32"))
        for entry in groups:
            if entry["group"] == group:
                entry["members"].append(name)
                break
        else:
            groups.append({"group": group, "members": [name]})
    out["noise_groups"] = [{"kind": g["group"].kind, "members": g["members"]} for g in groups]
    # Groups whose draws are maps of the same random bits share one stream (drawn once).
    shapes = [g["group"].bits_shape((SPEC["width"], SPEC["width"]), np.dtype("float32")) for g in groups]
    out["bit_streams"] = len({s for s in shapes if s is not None}) + sum(s is None for s in shapes)
except Exception as err:  # the ceiling stands without it
    out["noise_groups_error"] = repr(err)
emit(out)
"""


def _worker_failure(name: str, proc: Proc) -> dict[str, Any]:
    return {"name": name, "available": False, "reason": f"failed: {proc.failure()}",
            "end_to_end_s": proc.wall_s, "peak_rss_mb": proc.peak_rss_mb}


def _finish(run: dict[str, Any], work: Work, proc: Proc) -> dict[str, Any]:
    """Fill the derived timings of a run measured by ``proc``."""
    run.update(available=True, end_to_end_s=proc.wall_s, cpu_s=proc.cpu_s, peak_rss_mb=proc.peak_rss_mb)
    run["wall_without_compile_s"] = proc.wall_s - run["compile_s"]
    run["per_network_s"] = run["run_s"] / work.networks
    peak = run.pop("device_peak_bytes", None)
    run["device_peak_mb"] = peak / MiB if peak else None
    return run


# ---------------------------------------------------------------------------------------------
# The contenders
# ---------------------------------------------------------------------------------------------
def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("jaxinit")  # a top-level find_spec imports nothing
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def byte_compile_package() -> bool:
    """Byte-compile jaxinit's sources where no current bytecode exists, as ``pip install`` does.

    An editable install is not byte-compiled, and where ``PYTHONDONTWRITEBYTECODE`` is set Python
    never caches it: each fresh ``jaxinit`` process would compile the sources again (~0.1 s), a
    cost the installed package does not have. Returns whether every module compiled.
    """
    import compileall

    folder = _package_dir()
    return folder is not None and bool(compileall.compile_dir(str(folder), quiet=2))


def cli_available() -> bool:
    """Whether ``python -m jaxinit.cli`` exists (checked without importing jaxinit, hence JAX)."""
    folder = _package_dir()
    return folder is not None and (folder / "cli.py").is_file()


def torch_available() -> bool:
    """Whether the PyTorch baseline can run (``torch`` importable by this interpreter)."""
    return importlib.util.find_spec("torch") is not None


def measure_jaxinit(work: Work, *, runner: str = "auto", plots: bool = False, settings: Settings = Settings(),
                    workdir: str | Path | None = None) -> dict[str, Any]:
    """The sweep end to end in a fresh process; compile and run time from its ``meta.json``.

    ``runner``: ``"cli"`` (``python -m jaxinit.cli sweep``), ``"python"`` (``config.load`` +
    ``sweep.run``, which also reports the device's peak memory), or ``"auto"`` (the CLI if present).
    """
    if runner == "auto":
        runner = "cli" if cli_available() else "python"
    if runner not in ("cli", "python"):
        raise ValueError(f"runner must be 'auto', 'cli' or 'python'; got {runner!r}.")
    with tempfile.TemporaryDirectory(prefix="jaxinit-bench-", dir=workdir) as tmp:
        config_path, out_dir = Path(tmp) / "bench.toml", Path(tmp) / "results"
        config_path.write_text(work.toml(out_dir))
        if runner == "cli":
            cmd = [sys.executable, "-m", "jaxinit.cli", "sweep", str(config_path), "--out", str(out_dir), "--fresh",
                   "--quiet"] + ([] if plots else ["--no-plots"])
        else:
            cmd = _python(_JAXINIT_WORKER, {"config": str(config_path), "out": str(out_dir)})
        proc = run_process(cmd, env=settings.env(), timeout=settings.timeout)
        name = f"jaxinit sweep ({runner})"
        if proc.returncode != 0:
            return _worker_failure(name, proc)
        try:
            meta = json.loads((out_dir / "meta.json").read_text())
            timings = meta["timings"]
        except (OSError, ValueError, KeyError) as err:
            return {"name": name, "available": False, "reason": f"failed: no timings in meta.json ({err})",
                    "end_to_end_s": proc.wall_s, "peak_rss_mb": proc.peak_rss_mb}
        inner = proc.result() or {}
        run: dict[str, Any] = {
            "name": name,
            "runner": runner,
            "command": (f"python -m jaxinit.cli sweep CONFIG --out DIR --fresh --quiet{'' if plots else ' --no-plots'}"
                        if runner == "cli" else "python -c <config.load + jaxinit.lab.run.run>"),
            "compile_s": float(sum(timings.get("compile_s", {}).values())),
            "run_s": float(sum(timings.get("run_s", {}).values())),
            "engine_wall_s": timings.get("wall_s"),
            "import_s": inner.get("import_s"),
            "device_peak_bytes": inner.get("device_peak_bytes"),
            "backend": (meta.get("device") or {}).get("backend"),
            "chunk_plan": meta.get("chunk_plan"),
            "xla_flags": (meta.get("device") or {}).get("xla_flags"),
            "device_count": (meta.get("device") or {}).get("local_device_count"),
        }
        run.update(_q_from_results(out_dir, work))
        return _finish(run, work, proc)


def _q_from_results(folder: Path, work: Work) -> dict[str, dict[str, float] | None]:
    """Median over seeds of the first and last layers' q per initializer, from ``arrays.npz`` (a sanity check)."""
    try:
        import numpy as np

        with np.load(folder / "arrays.npz") as arrays:
            q = arrays["q"]  # (program, initializer, grid_point, seed, layer)
        return {key: {name: float(np.median(q[0, i, 0, :, layer])) for i, name in enumerate(work.inits)}
                for key, layer in (("q_first", 0), ("q_last", work.depth - 1))}
    except Exception:  # noqa: BLE001 - a sanity figure, never a reason to fail the benchmark
        return {"q_first": None, "q_last": None}


def measure_flax(work: Work, mode: str, *, settings: Settings = Settings()) -> dict[str, Any]:
    """Baseline (a) (``mode="loop"``) or (b) (``mode="vmap"``) end to end in a fresh process."""
    if mode not in ("loop", "vmap"):
        raise ValueError(f"mode must be 'loop' or 'vmap'; got {mode!r}.")
    spec = {**work.as_dict(), "mode": mode}
    proc = run_process(_python(_FLAX_WORKER, spec), env=settings.env(), timeout=settings.timeout)
    name = RUNS[f"flax_{mode}"]
    inner = proc.result() if proc.returncode == 0 else None
    if inner is None:
        return _worker_failure(name, proc)
    run = {"name": name, "command": f"python -c <flax {mode} worker>", **inner}
    run.pop("total_s", None)
    return _finish(run, work, proc)


def measure_torch(work: Work, *, settings: Settings = Settings()) -> dict[str, Any]:
    """Baseline (c) end to end in a fresh process, or ``available: False`` when torch is missing."""
    name = RUNS["torch_loop"]
    if not torch_available():
        return {"name": name, "available": False,
                "reason": "unavailable: torch is not importable (pip install 'jaxinit[bench]')"}
    spec = {**work.as_dict(), "threads": settings.torch_threads}
    proc = run_process(_python(_TORCH_WORKER, spec), env=settings.env(), timeout=settings.timeout)
    inner = proc.result() if proc.returncode == 0 else None
    if inner is None:
        return _worker_failure(name, proc)
    run = {"name": name, "command": "python -c <torch worker>", **inner}
    run.pop("total_s", None)
    return _finish(run, work, proc)


def measure_ceiling(work: Work, *, matmul_n: int | None = None, rng_n: int | None = None, reps: int = 3,
                    min_time: float = 0.2, settings: Settings = Settings()) -> dict[str, Any]:
    """The device's matmul and random-number rates (best of ``reps``), and the work's noise groups."""
    spec = {**work.as_dict(), "matmul_n": matmul_n, "rng_n": rng_n, "reps": reps, "min_time": min_time}
    proc = run_process(_python(_CEILING_WORKER, spec), env=settings.env(), timeout=settings.timeout)
    inner = proc.result() if proc.returncode == 0 else None
    if inner is None:
        return {"available": False, "reason": f"failed: {proc.failure()}"}
    return {"available": True, **inner}


# ---------------------------------------------------------------------------------------------
# Derived figures: random numbers, fractions of the ceiling, ratios, targets
# ---------------------------------------------------------------------------------------------
def _distribution(kind: str, members: Sequence[str]) -> str:
    """The JAX sampler a noise group costs like: truncated_normal, normal or uniform."""
    if kind.startswith("raw:"):
        d = kind.split(":", 1)[1]
        return d if d in ("normal", "truncated_normal", "uniform") else "normal"
    return "uniform" if any("uniform" in m for m in members) else "normal"


def _baseline_distribution(name: str, run: str) -> str:
    if name.endswith("uniform"):
        return "uniform"
    if name == "orthogonal" or run == "torch_loop":
        return "normal"
    return "truncated_normal"  # jax.nn.initializers' he/glorot/lecun normals are truncated normals


def random_numbers(work: Work, run: str, ceiling: dict[str, Any] | None = None) -> dict[str, float] | None:
    """Random numbers drawn per network, by distribution, as the run spends them (weights + inputs).

    jaxinit draws one random-bits stream per (seed, layer) for all the noise groups that map the same
    bits (``bit_streams``, from the ceiling run; else one array per group) and shares it between the
    groups' initializers; the baselines draw one per (initializer, seed, layer). ``None`` when the
    engine's groups are unknown (no ceiling).
    """
    per_layer = float(work.width) ** 2
    readout = work.width * 10.0 if work.gradients else 0.0
    weights = per_layer * work.depth + readout
    inputs = float(work.batch * work.width)
    counts: dict[str, float] = {}
    if run == "jaxinit":
        groups = (ceiling or {}).get("noise_groups")
        if not groups:
            return None
        # The forward scan draws each layer's bits one step ahead (one unused stream after the last
        # layer); the gradient probes redraw the hidden layers in the reversed scan and the readout twice.
        weights = per_layer * (work.depth + 1) + (per_layer * (work.depth - 1) + 2 * readout if work.gradients else 0.0)
        streams = (ceiling or {}).get("bit_streams")
        if streams is not None:
            # Charged at the uniform rate: the cheapest map of the bits, the closest to the bits' own cost.
            counts["uniform"] = weights * streams / len(work.inits)
        else:
            for g in groups:
                d = _distribution(g["kind"], g["members"])
                counts[d] = counts.get(d, 0.0) + weights / len(work.inits)
        counts["normal"] = counts.get("normal", 0.0) + inputs / len(work.inits)  # inputs: once per seed
        return counts
    for name in work.inits:
        d = _baseline_distribution(name, run)
        counts[d] = counts.get(d, 0.0) + weights / len(work.inits)
    counts["normal"] = counts.get("normal", 0.0) + inputs
    return counts


def _fill_ceiling_fractions(report: dict[str, Any]) -> None:
    """Per run: achieved GFLOP/s, fraction of the matmul peak, ideal per-network time and fraction of it."""
    work, ceiling = Work(**{k: report["work"][k] for k in _WORK_FIELDS}), report.get("ceiling") or {}
    peak = ceiling.get("matmul_flops_per_s") if ceiling.get("available") else None
    rates = ceiling.get("rng_per_s") or {}
    flops = work.flops_per_network()
    for key, run in report["runs"].items():
        if not run.get("available") or not run.get("per_network_s"):
            continue
        per = run["per_network_s"]
        run["achieved_flops_per_s"] = flops / per
        run["fraction_of_matmul_peak"] = flops / per / peak if peak else None
        counts = random_numbers(work, key, ceiling)
        run["random_numbers_per_network"] = sum(counts.values()) if counts else None
        run["ideal_per_network_s"] = run["fraction_of_ceiling"] = None
        if peak and counts and key != "torch_loop" and all(d in rates for d in counts):
            ideal = flops / peak + sum(n / rates[d] for d, n in counts.items())
            run["ideal_per_network_s"] = ideal
            run["fraction_of_ceiling"] = ideal / per


_WORK_FIELDS = ("inits", "seeds", "depth", "width", "batch", "gradients")


def compute_ratios(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """``{baseline: {"end_to_end": b / j, "per_network": b / j, "without_compile": b / j, "cpu_time": b / j}}``:
    how many times faster jaxinit is (> 1: jaxinit ahead); ``None`` where either side did not run.
    ``cpu_time`` compares the children's CPU seconds (user + system), steadier than wall time on a
    loaded machine."""
    j = runs.get("jaxinit") or {}
    out = {}
    for key in BASELINES:
        b = runs.get(key) or {}
        ratios: dict[str, float | None] = {}
        for name, field in (("end_to_end", "end_to_end_s"), ("per_network", "per_network_s"),
                            ("without_compile", "wall_without_compile_s"), ("cpu_time", "cpu_s")):
            ok = j.get("available") and b.get("available") and j.get(field) and b.get(field) is not None
            ratios[name] = b[field] / j[field] if ok else None
        out[key] = ratios
    return out


def target_set(work: Work) -> str:
    return "256_seeds" if work.seeds >= 256 else "default"


def evaluate_targets(work: Work, ratios: dict[str, dict[str, float | None]]) -> list[dict[str, Any]]:
    """The issue's targets beside the measured ratios; ``met`` is True/False, or None (not measured)."""
    out = []
    for kind, baseline, target, text in TARGETS[target_set(work)]:
        measured = (ratios.get(baseline) or {}).get(kind)
        out.append({"target": text, "kind": kind, "baseline": baseline, "at_least": target, "measured": measured,
                    "met": None if measured is None else measured >= target})
    return out


def _environment(settings: Settings, loadavg_before: Sequence[float] | None) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg_before": list(loadavg_before) if loadavg_before else None,
        "loadavg_after": _loadavg(),
        "jax_platforms": os.environ.get("JAX_PLATFORMS"),
        **settings.describe(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return None


def _note_work(work: Work) -> str | None:
    if target_set(work) == "default" and not work.matches(inits=DEFAULT_INITS, seeds=32, depth=50, width=256,
                                                          batch=128, gradients=False):
        return "the work differs from the targets' default work (4 inits x 32 seeds, depth 50, width 256, " \
               "batch 128, forward): the marks are indicative"
    if target_set(work) == "256_seeds" and not work.matches(inits=DEFAULT_INITS, seeds=256, depth=50, width=256,
                                                            batch=128, gradients=False):
        return "the work differs from the targets' 256-seed work: the marks are indicative"
    return None


# ---------------------------------------------------------------------------------------------
# The two modes
# ---------------------------------------------------------------------------------------------
def run_benchmark(work: Work = Work(), *, runner: str = "auto", skip: Iterable[str] = (), plots: bool = False,
                  settings: Settings = Settings(), ceiling_options: dict[str, Any] | None = None,
                  log: Callable[[str], None] | None = None, repeats: int = 1) -> dict[str, Any]:
    """Run every contender on ``work`` one after another and return the report (a JSON-able dict).

    With ``repeats > 1`` the contenders run that many rounds, interleaved, and each figure of a run
    is its median over the rounds (:func:`median_run`).

    The ceiling is measured twice, first and last, and the best of each rate kept (on a shared machine
    the load moves). ``skip``: run keys (``flax_loop``, ``flax_vmap``, ``torch_loop``, ``ceiling``) to
    leave out; ``log``: called with a line before each step (progress).
    """
    skip = set(skip)
    unknown = skip - set(BASELINES) - {"ceiling"}
    if unknown:
        raise ValueError(f"skip takes {', '.join((*BASELINES, 'ceiling'))}; got {', '.join(sorted(unknown))}.")
    log = log or (lambda line: None)
    bytecode = byte_compile_package()
    before = _loadavg()
    started = time.perf_counter()
    ceilings = []
    if "ceiling" not in skip:
        log("ceiling (1/2): matmul and random-number rates ...")
        ceilings.append(measure_ceiling(work, **(ceiling_options or {}), settings=settings))
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("jaxinit", lambda: measure_jaxinit(work, runner=runner, plots=plots, settings=settings)),
        ("flax_loop", lambda: measure_flax(work, "loop", settings=settings)),
        ("flax_vmap", lambda: measure_flax(work, "vmap", settings=settings)),
        ("torch_loop", lambda: measure_torch(work, settings=settings)),
    ]
    rounds: dict[str, list[dict[str, Any]]] = {}
    for r in range(repeats):  # interleaved, so a change of load hits every contender alike
        for key, step in steps:
            if key in skip:
                rounds[key] = [{"name": RUNS[key], "available": False, "reason": "skipped (--skip)"}]
                continue
            log(f"{RUNS[key] if key != 'jaxinit' else f'jaxinit sweep: {work.networks} networks'} ..."
                + (f" (round {r + 1}/{repeats})" if repeats > 1 else ""))
            rounds.setdefault(key, []).append(step())
    runs = {key: median_run(each) for key, each in rounds.items()}
    if "ceiling" not in skip:
        log("ceiling (2/2) ...")
        ceilings.append(measure_ceiling(work, **(ceiling_options or {}), settings=settings))
    ceiling = combine_ceilings(ceilings) if ceilings else {"available": False, "reason": "skipped (--skip)"}
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "mode": "compare",
        "work": work.as_dict(),
        "environment": {**_environment(settings, before), "jaxinit_bytecode": bytecode},
        "runs": runs,
        "ceiling": ceiling,
        "bench_wall_s": time.perf_counter() - started,
    }
    _fill_ceiling_fractions(report)
    report["ratios"] = compute_ratios(runs)
    report["target_set"] = target_set(work)
    report["targets"] = evaluate_targets(work, report["ratios"])
    notes = [_note_work(work)]
    if any((r.get("fraction_of_ceiling") or 0) > 1 for r in runs.values()):
        notes.append("a fraction of the ceiling above 100% means the run beat the rates measured in the ceiling "
                     "runs (load moved between them on a shared machine, or small draws ran faster than the "
                     "large-array RNG rate)")
    report["notes"] = [n for n in notes if n]
    return report


def median_run(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One run from several rounds of it: every numeric figure is its median over the rounds that
    finished; ``rounds`` counts them and ``end_to_end_s_each`` lists each round's end-to-end time."""
    ok = [r for r in rounds if r.get("available")]
    if not ok:
        return dict(rounds[-1])
    if len(ok) == 1 and len(rounds) == 1:
        return dict(ok[0])
    out = dict(ok[0])
    for key, value in ok[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = [r[key] for r in ok if isinstance(r.get(key), int | float) and not isinstance(r[key], bool)]
            if len(set(values)) > 1:  # a figure that moved between rounds (counts that did not keep their type)
                out[key] = float(statistics.median(values))
    out["rounds"] = len(ok)
    out["end_to_end_s_each"] = [r.get("end_to_end_s") for r in ok]
    return out


def combine_ceilings(ceilings: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The best of several ceiling measurements: the max of each rate."""
    ok = [c for c in ceilings if c.get("available")]
    if not ok:
        return ceilings[-1] if ceilings else {"available": False, "reason": "not measured"}
    out = dict(ok[0])
    for key in ("matmul_flops_per_s", "work_matmul_flops_per_s"):
        out[key] = max(c[key] for c in ok)
    for key in ("rng_per_s", "rng_per_s_large", "rng_per_s_work"):
        if all(key in c for c in ok):
            out[key] = {k: max(c[key][k] for c in ok) for k in ok[0][key]}
    out["measurements"] = len(ok)
    out["matmul_flops_per_s_each"] = [c["matmul_flops_per_s"] for c in ok]
    return out


def run_growth(work: Work = Work(seeds=GROWTH_SEEDS), depths: Sequence[int] = GROWTH_DEPTHS, *,
               settings: Settings = Settings(), log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Compile time and peak memory of the sweep (python runner, fresh process each) per depth."""
    log = log or (lambda line: None)
    depths = sorted(set(int(d) for d in depths))
    if not depths or depths[0] < 1:
        raise ValueError(f"depths must be integers >= 1; got {depths!r}.")
    byte_compile_package()
    before = _loadavg()
    started = time.perf_counter()
    rows = []
    for depth in depths:
        log(f"growth: depth {depth} ...")
        w = dataclasses.replace(work, depth=depth)
        run = measure_jaxinit(w, runner="python", settings=settings)
        rows.append({"depth": depth, **run})
    first, last = rows[0], rows[-1]

    def ratio(field):
        a, b = first.get(field), last.get(field)
        return b / a if a and b is not None and first.get("available") and last.get("available") else None

    ratios = {"compile": ratio("compile_s"), "peak_rss": ratio("peak_rss_mb"), "device_peak": ratio("device_peak_mb"),
              "run_per_layer": None}
    if first.get("available") and last.get("available") and first.get("run_s"):
        ratios["run_per_layer"] = (last["run_s"] / last["depth"]) / (first["run_s"] / first["depth"])
    targets = []
    for key, text in (("compile", "compile time"), ("peak_rss", "peak memory (RSS)"),
                      ("device_peak", "peak device memory")):
        if key == "device_peak" and ratios[key] is None:
            continue
        measured = ratios[key]
        targets.append({"target": f"{text} at depth {last['depth']} within {GROWTH_TARGET:g}x of depth "
                                  f"{first['depth']}", "kind": key, "at_most": GROWTH_TARGET, "measured": measured,
                        "met": None if measured is None else measured <= GROWTH_TARGET})
    return {
        "format": REPORT_FORMAT,
        "mode": "growth",
        "work": {**work.as_dict(), "depth": None, "depths": depths},
        "environment": _environment(settings, before),
        "growth": rows,
        "ratios": ratios,
        "targets": targets,
        "notes": [],
        "bench_wall_s": time.perf_counter() - started,
    }


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------
def _s(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f} s"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.0f} us"


def _mb(x: float | None) -> str:
    return "-" if x is None else (f"{x / 1024:.2f} GiB" if x >= 1024 else f"{x:.0f} MiB")


def _x(x: float | None) -> str:
    return "-" if x is None else (f"{x:.2f}x" if x < 10 else f"{x:.1f}x")


def _pct(x: float | None) -> str:
    return "-" if x is None else (f"{100 * x:.1f}%" if x < 0.1 else f"{100 * x:.0f}%")


def _rate(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.1f} {prefix}{unit}"
    return f"{x:.0f} {unit}"


def _mark(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "MISSED")


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]], first_left: bool = True) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [str(c).ljust(w) if (i == 0 and first_left) else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _env_line(env: dict[str, Any]) -> str:
    load = env.get("loadavg_before")
    after = env.get("loadavg_after")
    text = f"{env.get('cpu_count')} CPUs, python {env.get('python')}"
    if load:
        text += f"; load average {load[0]:.2f} before" + (f", {after[0]:.2f} after" if after else "")
    text += f"; OPENBLAS_NUM_THREADS={env.get('openblas_num_threads') or '(unset)'}"
    if env.get("xla_flags"):
        text += f"; XLA_FLAGS={env['xla_flags']}"
    if env.get("torch_threads"):
        text += f"; torch threads {env['torch_threads']}"
    return text


def format_table(report: dict[str, Any]) -> str:
    """The report as text: runs, ceiling, ratios and targets (or the growth table in growth mode)."""
    if report.get("mode") == "growth":
        return _format_growth(report)
    work, runs = report["work"], report["runs"]
    probes = "forward + gradient probes" if work.get("gradients") else "forward probes"
    lines = [f"jaxinit bench: {len(work['inits'])} initializers x {work['seeds']} seeds = {work['networks']} networks; "
             f"depth {work['depth']}, width {work['width']}, batch {work['batch']}, {probes}",
             f"initializers: {', '.join(work['inits'])}",
             f"machine: {_env_line(report.get('environment', {}))}"]
    own = runs.get("jaxinit") or {}
    if own.get("available"):
        lines.append(f"jaxinit's own process settings: {own.get('device_count')} JAX device(s) sharing the seeds; "
                     f"XLA_FLAGS={own.get('xla_flags') or '(none)'}")
    lines.append("")
    header = ("run", "end to end", "compile", "w/o compile", "warm run", "per network", "peak RSS", "CPU time",
              "FLOP/s", "of ceiling")
    rows, unavailable = [], []
    for key in RUNS:
        run = runs.get(key)
        if run is None:
            continue
        label = run.get("name", RUNS[key]) if key == "jaxinit" else RUNS[key]
        if not run.get("available"):
            unavailable.append(f"{label}: {run.get('reason', 'not run')}")
            continue
        compile_s = None if key == "torch_loop" else run.get("compile_s")
        gflops = run.get("achieved_flops_per_s")
        rows.append((label, _s(run.get("end_to_end_s")), "none" if key == "torch_loop" else _s(compile_s),
                     _s(run.get("wall_without_compile_s")), _s(run.get("run_s")), _s(run.get("per_network_s")),
                     _mb(run.get("peak_rss_mb")), _s(run.get("cpu_s")),
                     _rate(gflops, ""),
                     _pct(run.get("fraction_of_ceiling") if run.get("fraction_of_ceiling") is not None
                          else run.get("fraction_of_matmul_peak"))))
    lines += _grid(header, rows)
    lines += [f"  {u}" for u in unavailable]
    lines += [f"  {RUNS[k]}: {LEGEND[k]}" for k in BASELINES if (runs.get(k) or {}).get("available")]
    lines.append("  per network = warm run / networks; of ceiling = ideal time (FLOPs at the matmul peak + random "
                 "numbers at the RNG rates) / per network (torch: fraction of the matmul peak only)")
    jx = runs.get("jaxinit") or {}
    if jx.get("device_peak_mb"):
        lines.append(f"  jaxinit device peak memory: {_mb(jx['device_peak_mb'])}")
    lines.append("")
    c = report.get("ceiling") or {}
    if c.get("available"):
        rng = c.get("rng_per_s") or {}
        lines.append(f"ceiling ({c.get('backend')}, {c.get('device_kind')}): matmul {c['matmul_n']}^2 f32 HIGHEST "
                     f"{_rate(c.get('matmul_flops_per_s'), 'FLOP/s')}; at the work's shape "
                     f"{'x'.join(map(str, c.get('work_matmul_shape', [])))} "
                     f"{_rate(c.get('work_matmul_flops_per_s'), 'FLOP/s')}")
        large, work_rng = c.get("rng_per_s_large") or {}, c.get("rng_per_s_work") or {}
        if large and work_rng:
            lines.append("  random numbers: " + ", ".join(
                f"{k} {_rate(large[k], '/s')} (one large array) / {_rate(work_rng[k], '/s')} (work-shaped draws, "
                f"{c.get('rng_devices', 1)} device(s) side by side)" for k in rng))
        else:
            lines.append("  random numbers: " + ", ".join(f"{k} {_rate(v, '/s')}" for k, v in rng.items()))
        groups = c.get("noise_groups")
        if groups:
            text = "; ".join(f"{{{', '.join(g['members'])}}}" for g in groups)
            streams = c.get("bit_streams")
            shared = f"; {streams} random-bits stream(s) per seed and layer between them" if streams else ""
            lines.append(f"  sweep noise groups: {text}{shared}")
    else:
        lines.append(f"ceiling: {c.get('reason', 'not measured')}")
    flops = work.get("flops_per_network")
    rn = {k: r.get("random_numbers_per_network") for k, r in runs.items() if r.get("available")}
    text = f"work per network: {_rate(flops, 'FLOP')} of matmuls"
    if rn.get("jaxinit"):
        text += f"; random numbers {_rate(rn['jaxinit'], '')} (jaxinit, shared noise)"
    base = next((rn[k] for k in ("flax_loop", "flax_vmap") if rn.get(k)), None)
    if base:
        text += f" vs {_rate(base, '')} (baselines)"
    lines += [text, ""]

    ratio_rows = []
    for key in BASELINES:
        r = (report.get("ratios") or {}).get(key) or {}
        if all(v is None for v in r.values()):
            ratio_rows.append((f"vs {RUNS[key]}", "-", "-", "-", "-"))
            continue
        ratio_rows.append((f"vs {RUNS[key]}", _x(r.get("end_to_end")), _x(r.get("without_compile")),
                           _x(r.get("per_network")), _x(r.get("cpu_time"))))
    lines.append("ratios: baseline time / jaxinit time (> 1: jaxinit faster)")
    lines += _grid(("jaxinit", "end to end", "w/o compile", "warm per network", "CPU time"), ratio_rows)
    lines.append("")
    lines += _format_targets(report)
    sanity = _format_sanity(report)
    if sanity:
        lines += ["", *sanity]
    for note in report.get("notes") or []:
        lines.append(f"note: {note}")
    return "\n".join(lines).rstrip() + "\n"


def _format_targets(report: dict[str, Any]) -> list[str]:
    which = {"default": "default work", "256_seeds": "256 seeds", None: "depth growth"}[report.get("target_set")]
    rows = []
    for t in report.get("targets") or []:
        bound = f">= {t['at_least']:g}x" if "at_least" in t else f"<= {t['at_most']:g}x"
        rows.append((t["target"], bound, _x(t.get("measured")), _mark(t.get("met"))))
    if not rows:
        return []
    return [f"targets ({which}, set on a 2-core CPU)", *_grid(("", "target", "measured", ""), rows)]


def _format_sanity(report: dict[str, Any]) -> list[str]:
    """Final-layer q per initializer and run: the contenders computed the same thing."""
    runs = report["runs"]
    keys = [k for k in RUNS if (runs.get(k) or {}).get("available") and runs[k].get("q_last")]
    if not keys:
        return []
    rows = []
    for name in report["work"]["inits"]:
        cells = []
        for k in keys:
            first = (runs[k].get("q_first") or {}).get(name)
            last = runs[k]["q_last"].get(name, math.nan)
            cells.append(f"{'-' if first is None else format(first, '.3g')} / {last:.3g}")
        rows.append((name, *cells))
    short = {"jaxinit": "jaxinit", "flax_loop": "flax loop", "flax_vmap": "flax vmap", "torch_loop": "torch"}
    return ["sanity: q at the first / last layer, median over seeds (the same work: the columns agree up to "
            "seed noise, which grows with depth)", *_grid(("", *(short[k] for k in keys)), rows)]


def _format_growth(report: dict[str, Any]) -> str:
    work = report["work"]
    lines = [f"jaxinit bench --growth: {len(work['inits'])} initializers x {work['seeds']} seeds, width "
             f"{work['width']}, batch {work['batch']}, depths {', '.join(map(str, work['depths']))}",
             f"machine: {_env_line(report.get('environment', {}))}", ""]
    rows, failed = [], []
    for r in report["growth"]:
        if not r.get("available"):
            failed.append(f"  depth {r['depth']}: {r.get('reason')}")
            continue
        rows.append((str(r["depth"]), _s(r.get("compile_s")), _s(r.get("run_s")), _s(r.get("end_to_end_s")),
                     _mb(r.get("peak_rss_mb")), _mb(r.get("device_peak_mb"))))
    lines += _grid(("depth", "compile", "run", "end to end", "peak RSS", "device peak"), rows)
    lines += failed
    ratios = report.get("ratios") or {}
    lines += ["", f"ratios depth {work['depths'][-1]} / depth {work['depths'][0]}: compile "
              f"{_x(ratios.get('compile'))}, peak RSS {_x(ratios.get('peak_rss'))}, device peak "
              f"{_x(ratios.get('device_peak'))}, run time per layer {_x(ratios.get('run_per_layer'))}", ""]
    lines += _format_targets(report)
    for note in report.get("notes") or []:
        lines.append(f"note: {note}")
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def _inits(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in SUPPORTED_INITS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SUPPORTED_INITS)}; got {text!r}")
    return names


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def _depths(text: str) -> tuple[int, ...]:
    return tuple(positive_int(t) for t in text.split(",") if t.strip())


def _skips(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    allowed = (*BASELINES, "ceiling")
    bad = [n for n in names if n not in allowed]
    if bad:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}; got {text!r}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``jaxinit bench`` flags."""
    parser.description = (
        "Time jaxinit's sweep against plain Flax (a jitted loop; jit(vmap) per initializer) and the PyTorch "
        "loop on the same work, each end to end in a fresh process, plus the device's matmul and random-number "
        "rates. Prints ratios beside the project's targets; never fails on a missed target.")
    parser.add_argument("--seeds", type=positive_int, default=None, help="seeds per initializer (default 32; 4 with "
                        "--growth)")
    parser.add_argument("--depth", type=positive_int, default=50, help="hidden layers (default 50)")
    parser.add_argument("--width", type=positive_int, default=256, help="hidden width (default 256)")
    parser.add_argument("--batch", type=positive_int, default=128, help="inputs per network (default 128)")
    parser.add_argument("--inits", type=_inits, default=DEFAULT_INITS,
                        help=f"comma-separated initializers (default {','.join(DEFAULT_INITS)}; any of "
                             f"{', '.join(SUPPORTED_INITS)})")
    parser.add_argument("--gradients", action="store_true", help="add the gradient probes (all contenders)")
    parser.add_argument("--growth", action="store_true", help="measure compile time and peak memory of the sweep "
                        "per depth instead (--growth-depths)")
    parser.add_argument("--growth-depths", type=_depths, default=GROWTH_DEPTHS,
                        help="depths for --growth (default 10,100,1000)")
    parser.add_argument("--runner", choices=("auto", "cli", "python"), default="auto",
                        help="how to start jaxinit's sweep: the CLI (auto, when present) or a python -c calling "
                             "jaxinit.lab.run.run")
    parser.add_argument("--plots", action="store_true", help="let the jaxinit sweep draw its figures too")
    parser.add_argument("--skip", type=_skips, default=(), help="comma-separated runs to leave out: "
                        "flax_loop, flax_vmap, torch_loop, ceiling")
    parser.add_argument("--openblas-threads", type=int, default=None, metavar="N",
                        help="OPENBLAS_NUM_THREADS for every child (default: the environment's, else 1; 0: leave "
                             "the environment as is)")
    parser.add_argument("--no-xla-workaround", action="store_true",
                        help=f"leave XLA_FLAGS alone (by default every child gets {XLA_WORKAROUND}, which avoids a "
                             "jaxlib 0.10 CPU hang of vmapped orthogonal init in baseline (b))")
    parser.add_argument("--repeats", type=positive_int, default=1, metavar="N",
                        help="run the contenders N rounds, interleaved, and report each figure's median (default 1)")
    parser.add_argument("--same-xla-flags", action="store_true",
                        help=f"give the Flax baselines and the ceiling the XLA flags jaxinit sets for itself "
                             f"({XLA_FAST_COMPILE}); by default they run with JAX's defaults")
    parser.add_argument("--torch-threads", type=positive_int, default=None, metavar="N",
                        help="torch.set_num_threads for the PyTorch baseline (default: torch's own)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per child process "
                        f"(default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--json", default=None, metavar="PATH", help="also save the report as JSON")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the benchmark the flags describe, print the table; 0 unless jaxinit's own run failed."""
    def log(line: str) -> None:
        print(f"[bench] {line}", file=sys.stderr, flush=True)

    try:
        seeds = args.seeds or (GROWTH_SEEDS if args.growth else 32)
        work = Work(inits=args.inits, seeds=seeds, depth=args.depth, width=args.width, batch=args.batch,
                    gradients=args.gradients)
    except ValueError as err:
        print(f"jaxinit bench: {err}", file=sys.stderr)
        return 2
    settings = Settings(timeout=args.timeout, openblas_threads=args.openblas_threads,
                        xla_workaround=not args.no_xla_workaround, torch_threads=args.torch_threads,
                        same_xla_flags=args.same_xla_flags)
    if args.growth:
        report = run_growth(work, args.growth_depths, settings=settings, log=log)
        ok = all(r.get("available") for r in report["growth"])
    else:
        report = run_benchmark(work, runner=args.runner, skip=args.skip, plots=args.plots, settings=settings,
                               log=log, repeats=args.repeats)
        ok = bool(report["runs"]["jaxinit"].get("available"))
    print(format_table(report), end="")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"report saved to {path}")
    return 0 if ok else 1
