"""The ``jaxinit`` command line: the only module that prints and exits.

    jaxinit list                                   the catalog
    jaxinit check NAME --shape 784,256             expected vs measured statistics of one draw
    jaxinit theory ACTIVATION [--bias-variance V]  q*, chi_1, depth scales, the critical sigma_w^2
    jaxinit sweep CONFIG [--set KEY=VALUE ...] [--out DIR] [--fresh] [--seeds N] [--chunk N] [--stall-timeout S]
    jaxinit train CONFIG [--set KEY=VALUE ...] [--out DIR] [--fresh] [--seeds N] [--steps N] [--no-plots] [--quiet]
        both also: [--coordinator HOST:PORT --num-processes N --process-id I] [--join-timeout S]  (a cluster)
    jaxinit configs [--copy NAME DIR]              the shipped configs (CONFIG may be one's name)
    jaxinit plot DIR                               (re)draw the figures of a results folder
    jaxinit bench [...]                            speed against plain Flax and PyTorch loops

Bad input (a config, a name, a shape) ends with one line on stderr and exit status 2.
A sweep that stalls (a chunk without progress past its limit) ends with one line and exit status 3.
In a cluster (jaxinit.lab.cluster), a process whose peer stopped with an error ends with exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from jaxinit import bench
from jaxinit._argtypes import positive_int, seconds

EXIT_USAGE = 2
EXIT_STALLED = 3  # a sweep chunk made no progress within its stall limit
# A reader that went away (`jaxinit list | head -1`): the status of a Unix tool killed by SIGPIPE.
EXIT_BROKEN_PIPE = 128 + getattr(signal, "SIGPIPE", 13)

DESCRIPTION = """\
Weight initializers for JAX that state and check what they draw, and a laboratory for signal
propagation: sweeps of seeds x initializers x (sigma_w^2, sigma_b^2) grids through deep networks,
mean-field theory beside the measurements, figures of both.

examples:
  jaxinit list                                  every initializer in the catalog
  jaxinit check he_normal --shape 784,256       draw once; compare with the target statistics
  jaxinit theory tanh --bias-variance 0.05      q*, chi_1, depth scales, the edge of chaos
  jaxinit sweep quickstart                      run a shipped sweep; results and figures in a folder
  jaxinit sweep my.toml --set network.depth=10  a config file, one key overridden
  jaxinit train train_digits                    train seeds x initializers on digits; curves and figures
  jaxinit configs --copy quickstart .           the shipped configs; copy one to edit
  jaxinit plot results/quickstart               redraw the figures of a results folder

Bad input (a config, a name, a shape) ends with one line on stderr and exit status 2."""


class UsageError(Exception):
    """A user mistake the CLI reports in one line."""


# The library says what to do in its own terms (jaxinit.lab.run.run's arguments, config keys); here they are flags.
_FLAGS = {"fresh=True": "--fresh", "output.dir": "--out DIR", "stall_timeout": "--stall-timeout SECONDS"}


def _flag_hint(message: str, command: str = "sweep") -> str:
    """`` [jaxinit sweep: --fresh, --out DIR]``: the flags for what ``message`` says to do, or ``""``."""
    flags = [flag for term, flag in _FLAGS.items() if term in message]
    return f" [jaxinit {command}: {', '.join(flags)}]" if flags else ""


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape must be comma-separated ints like 784,256; got {text!r}") from None
    if not dims or any(d < 0 for d in dims):
        raise argparse.ArgumentTypeError(f"--shape must be comma-separated ints >= 0 like 784,256; got {text!r}")
    return dims


def _spec(text: str):
    """A registry name, or a JSON table such as '{"name": "normal", "stddev": 0.1}'."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"initializer spec is not valid JSON ({err.msg}): {text}") from None
    return text


# -- list / check ------------------------------------------------------------------------------
def cmd_list(args) -> int:
    import jaxinit

    rows = []
    for name in jaxinit.names():
        try:
            init = jaxinit.get(name)
            shown = repr(init)
        except TypeError:
            shown = "(needs arguments)"
        rows.append((name, shown))
    width = max(len(n) for n, _ in rows)
    print(f"{len(rows)} initializers (jaxinit.get(name) / jaxinit.get({{'name': ..., **kwargs}})):")
    for name, shown in rows:
        print(f"  {name:<{width}}  {shown}")
    return 0


def cmd_check(args) -> int:
    import jax

    import jaxinit

    spec = _spec(args.name)
    init = jaxinit.get(spec)
    dtype = init.resolve_dtype(args.dtype)  # the call's dtype, else the spec's own
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:  # as `sweep` refuses network.dtype = "float64"
        raise UsageError(f"dtype {dtype.name} needs 64-bit JAX: set JAX_ENABLE_X64=1 before starting "
                         f"(without it JAX would draw {jax.dtypes.canonicalize_dtype(dtype).name})")
    description = jaxinit.describe(init, args.shape, key=jax.random.key(args.seed), dtype=dtype)
    print(description)
    return 0 if description.ok else 1


# -- theory ------------------------------------------------------------------------------------
def cmd_theory(args) -> int:
    from jaxinit import theory
    from jaxinit.activations import activation

    phi = activation(args.activation, args.param)
    bv = args.bias_variance
    print(f"activation {args.activation}, sigma_b^2 = {bv:g}")
    try:
        critical = theory.critical(phi, bv)
    except theory.NoEdgeOfChaos as err:  # no critical point: say why, evaluate only where asked
        print(f"  critical sigma_w^2 (chi_1 = 1, edge of chaos): none: {err}")
        if args.weight_variance is None:
            print("  (pass --weight-variance to evaluate q*, chi_1 and the phase at one)")
            return 1
        critical = None
    else:
        print(f"  critical sigma_w^2 (chi_1 = 1 at its own q*, to {theory.CRITICAL_TOL:g}; edge of chaos): "
              f"{critical:.6g}")
    wv = critical if args.weight_variance is None else args.weight_variance
    q = theory.q_star(phi, wv, bv)
    chi = theory.chi1(phi, wv, bv)
    xi_q, xi_c = theory.depth_scales(phi, wv, bv)
    c = theory.c_star(phi, wv, bv)
    print(f"  at sigma_w^2 = {wv:.6g}:  q* = {q:.6g}  c* = {c:.6g}  chi_1 = {chi:.6g}"
          f"  xi_q = {_fmt(xi_q)}  xi_c = {_fmt(xi_c)}  phase: {theory.phase(phi, wv, bv)}")
    return 0


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.4g}"


# -- sweep / plot ------------------------------------------------------------------------------
def cmd_sweep(args) -> int:
    from jaxinit.lab import config as config_lib
    from jaxinit.lab import run as lab_run

    # --set KEY=VALUE in order (a later one wins), then the named flags: one mechanism, one validation.
    overrides = dict(args.set or ())
    for key, value in (("sweep.seeds", args.seeds), ("output.chunk", args.chunk), ("output.dir", args.out)):
        if value is not None:
            overrides[key] = value

    def load():
        config = config_lib.load(args.config, overrides=overrides)
        if config.kind == "train":
            raise UsageError(f"{config.source} is a training config (it has a [train] section): run it with "
                             "jaxinit train")
        return config

    return _run_lab(args, "sweep", load, lab_run.run)


def cmd_train(args) -> int:
    from jaxinit.lab import config as config_lib
    from jaxinit.lab import training

    overrides = dict(args.set or ())
    for key, value in (("sweep.seeds", args.seeds), ("train.steps", args.steps), ("output.chunk", args.chunk),
                       ("output.dir", args.out)):
        if value is not None:
            overrides[key] = value

    def load():
        config = config_lib.load(args.config, overrides=overrides)
        if config.kind != "train":
            raise UsageError(f"{config.source} is a sweep config (no [train] section): run it with jaxinit sweep")
        return config

    return _run_lab(args, "train", load, training.train)


def _run_lab(args, command: str, load, compute) -> int:
    """``jaxinit sweep`` / ``jaxinit train``: load the config, compute into the results folder, report.

    In a cluster (``args.cluster``, :mod:`jaxinit.lab.cluster`) every process runs this: the
    processes agree on the config, process 0 prepares the folder (``--fresh`` once), every process
    computes the seeds it claims, and process 0 assembles, reports and draws while the others wait
    for its word and say so.
    """
    from jaxinit.lab import cluster as cluster_lib
    from jaxinit.lab import report
    from jaxinit.lab import run as lab_run

    cluster = getattr(args, "cluster", None)
    prefix = "" if cluster is None else f"{cluster.describe()}: "

    def note(text: str) -> None:
        print(f"jaxinit: {prefix}note: {text}", file=sys.stderr)

    if cluster is None:
        config, fresh, first = load(), args.fresh, True
    else:
        config = cluster_lib.check_config(cluster, load, args.fresh)
        cluster_lib.prepare_folder(cluster, config, args.fresh)
        fresh, first = False, cluster.process_id == 0  # process 0 made it fresh, before anyone wrote
    try:
        share = None if cluster is None else (cluster.process_id, cluster.num_processes)
        results = compute(config, fresh=fresh, progress=not args.quiet and first, stall_timeout=args.stall_timeout,
                          notify=note, assemble=first, share=share)
    except lab_run.SweepStalled as err:  # a hang: say what was running and end (jaxinit.cli.run exits at once)
        what = "sweep" if command == "sweep" else "training"
        print(f"jaxinit: {prefix}{what} stalled: {err}{_flag_hint(str(err), command)}", file=sys.stderr)
        return EXIT_STALLED
    if results is None:  # a process of a cluster other than 0: its chunks are written
        print(f"jaxinit: {prefix}every seed is written in {Path(config.output.dir) / 'chunks'}; process 0 "
              "assembles arrays.npz, summary.csv and the figures", file=sys.stderr)
        cluster.wait("done", 0)
        print(f"{cluster.describe()}: done; results: {config.output.dir} (written by process 0)")
        return 0
    print(report.format_run(results))
    if not args.no_plots:
        paths = _write_figures(results)
        print(f"figures: {len(paths)} PNGs in {Path(results.path) / 'figures'}")
    print(f"results: {results.path} (arrays.npz, summary.csv, meta.json)")
    if cluster is not None:
        cluster.publish("done", {"host": cluster.host})
    return 0


def cmd_plot(args) -> int:
    from jaxinit.lab import store as results

    path = Path(args.folder)
    if (path / results.META_FILE).is_file() and not (path / results.ARRAYS_FILE).exists():
        # An unfinished sweep (interrupted before it assembled): draw the chunks written so far.
        print(f"jaxinit: {path} is unfinished; assembling the chunks written so far (rerun the sweep to "
              "finish it)", file=sys.stderr)
        results.ResultsFolder(path).assemble(allow_partial=True)
    for p in _write_figures(results.load(path)):
        print(p)
    return 0


def _write_figures(results_or_folder) -> list[Path]:
    """:func:`jaxinit.lab.figures.write_all`, its :class:`~jaxinit.lab.figures.FigureWarning` s (a theory curve
    left out, seeds missing) printed as one ``jaxinit: note:`` line each on stderr."""
    import warnings

    from jaxinit.lab import figures as plots

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", plots.FigureWarning)
        paths = plots.write_all(results_or_folder)
    for w in caught:
        if issubclass(w.category, plots.FigureWarning):
            print(f"jaxinit: note: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return paths


def cmd_configs(args) -> int:
    from jaxinit.lab import config as config_lib

    if args.copy is not None:
        name, folder = args.copy
        print(config_lib.copy_config(name, folder))
        return 0
    shipped = config_lib.shipped_configs()
    width = max(map(len, shipped), default=0)
    print(f"{len(shipped)} shipped configs (jaxinit sweep NAME; jaxinit configs --copy NAME DIR to edit one):")
    for name, summary in shipped.items():
        print(f"  {name:<{width}}  {summary}")
    return 0


def _override(text: str) -> tuple[str, object]:
    from jaxinit.lab.config import ConfigError, parse_override

    try:
        return parse_override(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_bench(args) -> int:
    return bench.run_from_args(args)


# -- parser ------------------------------------------------------------------------------------
def _cluster_arguments(s: argparse.ArgumentParser) -> None:
    """The flags that join a cluster (jaxinit.lab.cluster); the same command runs on every process."""
    g = s.add_argument_group(
        "cluster", "run the same command on every process of a job (JAX's multi-controller runtime): each computes "
                   "the seeds it claims on its own devices, process 0 assembles. Without these flags: "
                   "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID, or a launcher JAX detects (srun, "
                   "mpirun, a TPU pod slice) with more than one process")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="process 0's host and a free port, the same on every process")
    g.add_argument("--num-processes", type=positive_int, default=None, metavar="N", help="processes in the job")
    g.add_argument("--process-id", type=int, default=None, metavar="I", help="this process's id, 0 .. N-1")
    g.add_argument("--join-timeout", type=seconds, default=None, metavar="SECONDS",
                   help="end with an error (exit 2) when the coordinator does not answer or not every process "
                        "joined within this time (default 300; 0: no limit)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxinit", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("list", help="print the catalog of initializers")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("check", help="draw once and compare with the target mean/std and exact CDF")
    s.add_argument("name", help="registry name, or a JSON table like '{\"name\": \"normal\", \"stddev\": 0.1}'")
    s.add_argument("--shape", type=_shape, required=True, help="weight shape, e.g. 784,256 or 3,3,16,32")
    s.add_argument("--dtype", default=None, help="dtype to draw in (default float32)")
    s.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("theory", help="mean-field quantities and the edge of chaos for an activation")
    s.add_argument("activation", help="activation name (relu, tanh, gelu, ...)")
    s.add_argument("--param", type=float, default=None, help="slope/alpha for leaky_relu or elu")
    s.add_argument("--bias-variance", type=float, default=0.0, help="sigma_b^2 (default 0)")
    s.add_argument("--weight-variance", type=float, default=None,
                   help="sigma_w^2 to evaluate at (default: the critical one)")
    s.set_defaults(func=cmd_theory)

    s = sub.add_parser("sweep", help="run a sweep config into a results folder (resumes if interrupted)")
    s.add_argument("config", help="a TOML sweep config file, or a shipped config's name (jaxinit configs lists "
                                  "them), e.g. quickstart")
    s.add_argument("--set", type=_override, action="append", metavar="KEY=VALUE",
                   help="override one key of the config, e.g. --set network.depth=10 or --set "
                        "\"network.activation=['relu', 'tanh']\" (the value is TOML, else a string); "
                        "repeatable; checked as the file is")
    s.add_argument("--out", default=None, help="results folder (default: the config's output.dir)")
    s.add_argument("--fresh", action="store_true", help="overwrite a folder holding another config's results")
    s.add_argument("--seeds", type=int, default=None, help="override sweep.seeds (as --set sweep.seeds=N)")
    s.add_argument("--chunk", type=int, default=None,
                   help="override output.chunk (seeds per chunk; rounded up, with a note, to a multiple of the "
                        "seeds computed together)")
    s.add_argument("--stall-timeout", type=seconds, default=None, metavar="SECONDS",
                   help="end with an error (exit 3) naming the program and chunk when a chunk runs longer than "
                        "this without progress (on the CPU: with the process idle); default: a limit derived "
                        "from the chunks already done and the compile time; 0: wait forever")
    s.add_argument("--no-plots", action="store_true", help="skip the figures")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--cpu-devices", type=positive_int, default=None, metavar="N",
                   help="on the CPU, split the cores into N JAX devices that each run their own seeds "
                        "(default: one per usable core; 1: a single device; ignored when JAX_NUM_CPU_DEVICES "
                        "or XLA_FLAGS already set a count). Results do not depend on it.")
    _cluster_arguments(s)
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("train", help="train seeds x initializers (x grid) in one compiled program per network shape; "
                                     "results and figures in a folder (resumes if interrupted)")
    s.add_argument("config", help="a TOML training config (with a [train] section), or a shipped one's name, e.g. "
                                  "train_digits")
    s.add_argument("--set", type=_override, action="append", metavar="KEY=VALUE",
                   help="override one key of the config, e.g. --set train.batch=64 (the value is TOML, else a "
                        "string); repeatable; checked as the file is")
    s.add_argument("--out", default=None, help="results folder (default: the config's output.dir)")
    s.add_argument("--fresh", action="store_true", help="overwrite a folder holding another config's results")
    s.add_argument("--seeds", type=int, default=None, help="override sweep.seeds (as --set sweep.seeds=N)")
    s.add_argument("--steps", type=int, default=None, help="override train.steps (as --set train.steps=N)")
    s.add_argument("--chunk", type=int, default=None,
                   help="override output.chunk (seeds per chunk: the progress bar and resumption advance by chunk)")
    s.add_argument("--stall-timeout", type=seconds, default=None, metavar="SECONDS",
                   help="end with an error (exit 3) when a chunk runs longer than this without progress; as in sweep")
    s.add_argument("--no-plots", action="store_true", help="skip the figures")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--cpu-devices", type=positive_int, default=None, metavar="N",
                   help="on the CPU, split the cores into N JAX devices that each train their own seeds (default: "
                        "one per usable core). Results do not depend on it.")
    _cluster_arguments(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("configs", help="list the shipped sweep configs, or copy one to edit")
    s.add_argument("--copy", nargs=2, metavar=("NAME", "DIR"), default=None,
                   help="copy the shipped config NAME into the folder DIR as NAME.toml (never overwrites)")
    s.set_defaults(func=cmd_configs)

    s = sub.add_parser("plot", help="draw the figures of a results folder")
    s.add_argument("folder", help="a results folder written by 'jaxinit sweep'")
    s.set_defaults(func=cmd_plot)

    s = sub.add_parser("bench", help="benchmark the sweep against plain Flax and PyTorch loops (--catalog: every "
                                     "initializer against jax.nn.initializers and torch.nn.init)")
    bench.add_arguments(s)
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from jaxinit.runtime import configure_process, usable_cores

    args = parser().parse_args(argv)
    if args.command != "bench":  # the benchmark's children choose their own settings (jaxinit.bench)
        cpu_devices = (args.cpu_devices or usable_cores()) if args.command in ("sweep", "train") else None
        configure_process(cpu_devices)  # before JAX starts its backend (see jaxinit.runtime)
    from jaxinit.errors import ConfigError, ResultsError
    from jaxinit.lab.cluster import ClusterError

    args.cluster = None
    try:
        if args.command in ("sweep", "train"):
            args.cluster = _join(args)  # before JAX starts its backend, as configure_process
        return _call(args)
    except ClusterError as err:
        print(f"jaxinit: {err}", file=sys.stderr)
        return err.status
    except (ConfigError, UsageError) as err:
        hint = (_flag_hint(str(err), args.command) if isinstance(err, ResultsError)
                and args.command in ("sweep", "train") else "")
        print(f"jaxinit: {err}{hint}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError) as err:
        # Bad names, shapes and dtypes from the library come with a message meant for the user.
        if args.command in ("check", "theory", "list"):
            print(f"jaxinit: {err}", file=sys.stderr)
            return EXIT_USAGE
        raise
    except KeyboardInterrupt:
        print("jaxinit: interrupted; finished chunks are saved, rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        if args.cluster is not None:
            args.cluster.leave()  # waits for every process to leave: none ends the job under another


def _join(args):
    """The cluster this process joins (:mod:`jaxinit.lab.cluster`), or ``None`` for a single process."""
    from jaxinit.lab import cluster as cluster_lib

    launch = cluster_lib.launch_from(args.coordinator, args.num_processes, args.process_id)
    if launch is None:
        return None
    timeout = cluster_lib.JOIN_TIMEOUT_S if args.join_timeout is None else args.join_timeout
    cluster = cluster_lib.join(launch, timeout, give_up=_give_up)
    import jax

    print(f"jaxinit: {cluster.describe()} joined the cluster at {cluster.coordinator} ({launch.source}) in "
          f"{cluster.join_s:.2f} s: {jax.local_device_count()} of its {jax.device_count()} devices here",
          file=sys.stderr)
    return cluster


def _give_up(message: str) -> NoReturn:
    """End the process from the join's watchdog thread (the main thread waits inside JAX)."""
    print(f"jaxinit: {message}", file=sys.stderr, flush=True)
    os._exit(EXIT_USAGE)


def _call(args) -> int:
    """``args.func(args)``; in a cluster, an error here is told to the other processes first."""
    try:
        return args.func(args)
    except BaseException as err:
        if args.cluster is not None:
            args.cluster.abort(str(err).splitlines()[0] if str(err) else type(err).__name__)
        raise


def run() -> NoReturn:
    """The console entry point: :func:`main`, then exit without tearing down the XLA runtime.

    Every result file is written, renamed and closed by then; interpreter finalization would only
    join XLA's thread pools and free compiled programs, 0.15-0.2 s of a 5 s sweep on 2 cores.
    An exception still ends the normal way, with its traceback; a reader that closed the pipe
    (``jaxinit list | head -1``) ends the command quietly with :data:`EXIT_BROKEN_PIPE`, as a Unix
    tool killed by SIGPIPE does (Python ignores SIGPIPE and raises ``BrokenPipeError`` instead).
    """
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        code = EXIT_BROKEN_PIPE
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
