"""``jaxinit bench``'s flags and what they run: the sweep benchmark, its ``--growth`` mode, or, with
``--catalog``, the catalog benchmark (:mod:`jaxinit.bench.catalog`), which takes every option after it."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from jaxinit._argtypes import positive_int, positive_ints
from jaxinit.bench.harness import DEFAULT_TIMEOUT_S, Settings
from jaxinit.bench.modes import GROWTH_DEPTHS, GROWTH_SEEDS, run_benchmark, run_growth
from jaxinit.bench.table import format_table
from jaxinit.bench.train_work import work_choice
from jaxinit.bench.work import BASELINES, DEFAULT_INITS, SUPPORTED_INITS, Work
from jaxinit.runtime import XLA_FAST_COMPILE, XLA_WORKAROUND

__all__ = ["add_arguments", "run_from_args"]

DESCRIPTION = (
    "Time jaxinit's sweep against plain Flax (a jitted loop; jit(vmap) per initializer) and the PyTorch "
    "loop on the same work, each end to end in a fresh process, plus the device's matmul and random-number "
    "rates. Prints ratios beside the project's targets; never fails on a missed target.")


def _inits(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in SUPPORTED_INITS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SUPPORTED_INITS)}; got {text!r}")
    return names


def _skips(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    allowed = (*BASELINES, "ceiling")
    bad = [n for n in names if n not in allowed]
    if bad:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}; got {text!r}")
    return names


def _catalog_epilog() -> str:
    from jaxinit.bench import catalog

    text = catalog.parser("jaxinit bench --catalog").format_help()
    options = text[text.index("options:"):]
    intro = ("--catalog [OPTION ...]: run the catalog benchmark instead (every catalog entry x shapes x "
             "eager/jit/vmap x dtypes against jax.nn.initializers and torch.nn.init, and a transformer's "
             "jit(init)). Every argument after --catalog is one of its options; the sweep benchmark's above "
             "do not apply.")
    return textwrap.fill(intro, 100) + "\n\n" + textwrap.indent(options.strip(), "  ") + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``jaxinit bench`` flags (``--catalog`` last: the catalog benchmark's options follow it)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = textwrap.fill(DESCRIPTION, 100)
    parser.epilog = _catalog_epilog()
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
    parser.add_argument("--growth-depths", type=positive_ints, default=GROWTH_DEPTHS,
                        help="depths for --growth (default 10,100,1000)")
    parser.add_argument("--runner", choices=("auto", "cli", "python"), default="auto",
                        help="how to start jaxinit's sweep: the CLI (auto, when present) or the python runner "
                             "(jaxinit.bench.sweep_worker: jaxinit.lab.run.run)")
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
                        help="torch.set_num_threads for the PyTorch baseline (default: torch's own; with --train: 1)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per child process "
                        f"(default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--json", default=None, metavar="PATH", help="also save the report as JSON")
    parser.add_argument("--train", action="store_true",
                        help="run the training benchmark instead (jaxinit's training engine against a Flax loop, a "
                             "jitted lax.scan per member and PyTorch on digits; takes --work, --quick, --out, "
                             "--repeats, --timeout, --torch-threads, --openblas-threads, --json)")
    parser.add_argument("--work", type=work_choice, default=None, help="--train: T0, T1 or both (default both)")
    parser.add_argument("--quick", action="store_true", help="--train: a tiny work instead (a smoke run)")
    parser.add_argument("--out", default=None, metavar="FILE", help="--train: also save the report's text to FILE")
    parser.add_argument("--catalog", nargs=argparse.REMAINDER, default=None, metavar="OPTION",
                        help="run the catalog benchmark instead, with the options that follow (listed below)")


def _sweep_options_given(args: argparse.Namespace) -> list[str]:
    """The sweep benchmark's flags given a value other than their default (they do not apply to --catalog)."""
    defaults = argparse.ArgumentParser()
    add_arguments(defaults)
    return sorted(f"--{name.replace('_', '-')}" for name, value in vars(defaults.parse_args([])).items()
                  if name != "catalog" and hasattr(args, name) and getattr(args, name) != value)


def run_from_args(args: argparse.Namespace) -> int:
    """Run the benchmark the flags describe, print the table; 0 unless jaxinit's own run failed
    (with ``--catalog``: the catalog benchmark's status, 0 when every cell meets its target)."""
    if args.train or args.work or args.quick or args.out:
        from jaxinit.bench import train_bench

        return train_bench.run_train_from_args(args, _sweep_options_given(args))
    if args.catalog is not None:
        given = _sweep_options_given(args)
        if given:
            print(f"jaxinit bench: {', '.join(given)} belong(s) to the sweep benchmark; the catalog benchmark "
                  "takes only the options after --catalog (jaxinit bench --help lists them)", file=sys.stderr)
            return 2
        from jaxinit.bench import catalog

        return catalog.main(args.catalog, prog="jaxinit bench --catalog")

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
