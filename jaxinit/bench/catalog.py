"""``jaxinit bench --catalog``: every catalog entry against ``jax.nn.initializers`` and ``torch.nn.init``.

For each entry x shape x dtype, the same draw is timed three ways with each library that has the
entry: ``eager`` (one call outside any trace, as in a notebook or an ``nnx`` module built eagerly),
``jit`` (a warm ``jax.jit`` of the call) and ``vmap`` (an eager ``jax.vmap`` of the call over 16
keys); ``torch.nn.init`` (when importable) is timed eagerly, on a fresh ``torch.empty`` of the same
shape (its own layout convention: the fans it computes for the same shape may differ, the work
does not). Each time is the median of ``repeats`` calls after one warm-up call (which compiles;
with ``--cell-budget``, as many calls as fit in it, between ``MIN_CALLS`` and ``MAX_CALLS``);
JAX's and jaxinit's calls are interleaved so a loaded machine slows them alike (torch's are timed
apart: its idle OpenMP threads spin and would slow the next call). Reported per cell:
the medians in ms, ``vs_jax`` = JAX's median / jaxinit's (above 1: jaxinit faster), ``vs_torch``
likewise, and for jaxinit's eager cells ``eager/jit`` = eager median / the median of the same draw
jitted, timed interleaved with the eager calls (``ms["jaxinit_jit"]``: a loaded machine's drift
between two cells does not enter the ratio).

Targets (issue 16): ``vs_jax >= 1`` within noise (``--noise``, default 10%) wherever JAX has the
entry, and ``eager/jit <= 1.5``. Cells missing a target are listed as misses; shapes an entry does not
fill by design (``identity`` of a conv kernel) are listed as refused, not timed. The text table
(:mod:`jaxinit.bench.catalog_table`) ends with a summary of the ratios per mode.

The model: a ``flax.linen`` transformer of ``--blocks`` pre-LayerNorm blocks (attention and MLP
projections as ``nn.Dense``), built twice with the same structure, once with ``jax.nn.initializers``
and once with ``jaxinit``'s namesakes; reported: ``jit(model.init)`` compile time (lower + compile)
and warm run time (median), and their ratios (compile: the best of two alternated compilations,
each of a fresh program).

Run ``jaxinit bench --catalog [OPTION ...]`` or ``python -m jaxinit.bench.catalog [OPTION ...]`` (``--help``
lists the options); ``main(argv)`` returns the exit status and writes the table (``--out``) and the JSON
report (``--json``). Unlike the sweep benchmark's contenders, it runs in the calling process (the
library's calls are what it times).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxinit._argtypes import positive_int, seconds
from jaxinit.bench.catalog_entries import Entry, catalog_entries
from jaxinit.bench.catalog_table import format_table

KEYS_PER_VMAP = 16
DEFAULT_SHAPES = ("64x64", "256x256", "2048x2048", "3x3x64x128", "64x256x256")
MODES = ("eager", "jit", "vmap")
DTYPES = ("float32", "bfloat16")
EAGER_OVER_JIT_TARGET = 1.5
# With --cell-budget, the timed calls per cell: as many as fit, at least MIN_CALLS, at most MAX_CALLS.
MIN_CALLS, MAX_CALLS = 3, 201


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3x3x64x128"`` -> ``(3, 3, 64, 128)``."""
    try:
        shape = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must be sizes joined by 'x' (e.g. 256x256); got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"shape sizes must be >= 1; got {text!r}")
    return shape


def _median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def _time_interleaved(calls: dict[str, Callable[[], Any]], repeats: int,
                      budget_s: float | None = None) -> tuple[dict[str, float | str], int]:
    """Median ms per call name, calls interleaved, and the number of timed calls each; a call that
    fails on its warm-up gives its error.

    ``budget_s``: instead of ``repeats`` rounds (one call of each name), as many as fit in
    ``budget_s``, judged from the first round: at least ``MIN_CALLS`` (large shapes under ``vmap``),
    at most ``MAX_CALLS`` (fast cells, whose medians a loaded machine's hiccups would swing)."""
    import jax

    out: dict[str, float | str] = {}
    live: dict[str, Callable[[], Any]] = {}
    for name, call in calls.items():
        try:
            jax.block_until_ready(call())  # warm-up: compiles
            live[name] = call
        except Exception as err:  # noqa: BLE001 -- the cell reports what the library refused
            out[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
    times: dict[str, list[float]] = {name: [] for name in live}
    order = list(live.items())
    rounds, done = (repeats if live else 0), 0
    while done < rounds:  # each round starts with the next name: no call always follows the same one
        for name, call in order[done % len(order):] + order[:done % len(order)]:
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[name].append(time.perf_counter() - start)
        done += 1
        if done == 1 and budget_s is not None and live:
            first = sum(ts[0] for ts in times.values())
            rounds = max(MIN_CALLS, min(MAX_CALLS, int(budget_s / max(first, 1e-9))))
    out.update({name: _median_ms(ts) for name, ts in times.items()})
    return out, min(len(ts) for ts in times.values()) if times else 0


def _torch_call(entry: Entry, shape: tuple[int, ...], dtype: str) -> Callable[[], Any] | None:
    try:
        import torch
    except ImportError:
        return None
    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    fill = entry.torch

    def call() -> Any:
        tensor = torch.empty(shape, dtype=tdtype)
        with torch.no_grad():
            fill(tensor)
        return None

    return call


def bench_cell(entry: Entry, shape: tuple[int, ...], dtype: str, mode: str, repeats: int,
               use_torch: bool, budget_s: float | None = None) -> dict[str, Any]:
    """One (entry, shape, dtype, mode) cell: medians (ms) for each library that has the entry, and
    ``calls``, the timed calls behind each (``repeats``, fewer where ``budget_s`` runs out).

    A shape the jaxinit entry refuses by design (``identity`` of a conv kernel) gives a cell with
    ``refused`` (the error) and no timings: not a miss."""
    import jax

    import jaxinit

    ours = jaxinit.get(entry.spec)
    theirs = entry.jax() if entry.jax is not None else None
    key = jax.random.key(0)
    keys = jax.random.split(key, KEYS_PER_VMAP)
    cell: dict[str, Any] = {"entry": entry.name, "shape": list(shape), "dtype": dtype, "mode": mode, "ms": {}}
    try:
        jax.eval_shape(lambda k: ours(k, shape, dtype), key)
    except (TypeError, ValueError) as err:
        return cell | {"refused": f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"}

    def make(init: Any) -> Callable[[], Any]:
        def draw(k: Any) -> Any:
            return init(k, shape, dtype)
        if mode == "eager":
            return lambda: draw(key)
        if mode == "jit":
            jitted = jax.jit(draw)
            return lambda: jitted(key)
        vmapped = jax.vmap(draw)
        return lambda: vmapped(keys)

    calls = {"jaxinit": make(ours)}
    if theirs is not None:
        calls["jax"] = make(theirs)
    if mode == "eager":  # eager/jit from calls interleaved with the eager ones, not from the jit cell's
        jitted = jax.jit(lambda k: ours(k, shape, dtype))
        calls["jaxinit_jit"] = lambda: jitted(key)
    medians, cell["calls"] = _time_interleaved(calls, repeats, budget_s)
    if use_torch and mode == "eager" and entry.torch is not None:
        torch_call = _torch_call(entry, shape, dtype)
        if torch_call is not None:  # timed apart: torch's spinning OpenMP threads slow the next JAX call
            medians |= _time_interleaved({"torch": torch_call}, repeats, budget_s)[0]
    cell["ms"] = medians
    mine, jit = medians.get("jaxinit"), medians.get("jaxinit_jit")
    if isinstance(mine, float) and isinstance(jit, float) and jit > 0:
        cell["eager/jit"] = mine / jit
    for lib in ("jax", "torch"):
        other = medians.get(lib)
        if isinstance(mine, float) and isinstance(other, float) and mine > 0:
            cell[f"vs_{lib}"] = other / mine
    return cell


def check_targets(cells: list[dict[str, Any]], noise: float) -> list[dict[str, Any]]:
    """The cells that miss a target: ``vs_jax < 1 - noise``, ``eager/jit > 1.5``, or jaxinit failing."""
    misses = []
    for cell in cells:
        where = {k: cell[k] for k in ("entry", "shape", "dtype", "mode")}
        if isinstance(cell["ms"].get("jaxinit"), str):
            misses.append({**where, "target": "runs", "value": cell["ms"]["jaxinit"]})
        if "vs_jax" in cell and cell["vs_jax"] < 1.0 - noise:
            misses.append({**where, "target": "vs_jax >= 1", "value": round(cell["vs_jax"], 3)})
        if cell.get("eager/jit", 0.0) > EAGER_OVER_JIT_TARGET:
            misses.append({**where, "target": f"eager/jit <= {EAGER_OVER_JIT_TARGET}",
                           "value": round(cell["eager/jit"], 3)})
    return misses


# -- the model ----------------------------------------------------------------------------------
def _transformer(inits: dict[str, Any], blocks: int, width: int, heads: int, vocab: int) -> Any:
    import flax.linen as nn

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.LayerNorm()(x)
            h = nn.MultiHeadDotProductAttention(num_heads=heads, kernel_init=inits["attention"],
                                                bias_init=inits["bias"])(h, h)
            x = x + h
            h = nn.LayerNorm()(x)
            h = nn.Dense(4 * width, kernel_init=inits["mlp_in"], bias_init=inits["bias"])(h)
            h = nn.Dense(width, kernel_init=inits["mlp_out"], bias_init=inits["bias"])(nn.gelu(h))
            return x + h

    class Transformer(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            x = nn.Embed(vocab, width, embedding_init=inits["embed"])(tokens)
            for _ in range(blocks):
                x = Block()(x)
            return nn.Dense(vocab, kernel_init=inits["head"], bias_init=inits["bias"])(nn.LayerNorm()(x))

    return Transformer()


def bench_model(blocks: int, width: int, heads: int, vocab: int, seq: int, repeats: int) -> dict[str, Any]:
    """``jit(model.init)`` compile (lower + compile) and warm run time, JAX's initializers vs jaxinit's."""
    import jax
    import jax.nn.initializers as J
    import jax.numpy as jnp

    import jaxinit

    libs = {
        "jax": {"attention": J.glorot_uniform(), "mlp_in": J.he_normal(), "mlp_out": J.lecun_normal(),
                "embed": J.normal(0.02), "head": J.truncated_normal(0.02), "bias": J.zeros},
        "jaxinit": {"attention": jaxinit.glorot_uniform(), "mlp_in": jaxinit.he_normal(),
                    "mlp_out": jaxinit.lecun_normal(), "embed": jaxinit.normal(0.02),
                    "head": jaxinit.truncated_normal(0.02), "bias": jaxinit.zeros},
    }
    tokens = jnp.zeros((1, seq), jnp.int32)
    key = jax.random.key(0)
    out: dict[str, Any] = {"blocks": blocks, "width": width, "heads": heads, "vocab": vocab, "seq": seq}
    compiled = {}
    compile_s: dict[str, list[float]] = {lib: [] for lib in libs}
    for _ in range(2):  # alternated, fresh programs each round; the best of two (the first warms XLA)
        for lib, inits in libs.items():
            model = _transformer(inits, blocks, width, heads, vocab)
            start = time.perf_counter()
            compiled[lib] = jax.jit(lambda k, x, m=model: m.init(k, x)).lower(key, tokens).compile()
            compile_s[lib].append(time.perf_counter() - start)
    for lib in libs:
        out[f"{lib}_compile_s"] = min(compile_s[lib])
    out["params"] = int(sum(math.prod(p.shape) for p in jax.tree.leaves(compiled["jaxinit"](key, tokens))))
    runs, _ = _time_interleaved({lib: (lambda c=c: c(key, tokens)) for lib, c in compiled.items()}, repeats)
    for lib in libs:
        out[f"{lib}_run_ms"] = runs[lib]
    out["compile_vs_jax"] = out["jax_compile_s"] / out["jaxinit_compile_s"]
    out["run_vs_jax"] = out["jax_run_ms"] / out["jaxinit_run_ms"]
    return out


# -- the run and its report -----------------------------------------------------------------
def run(entries: Sequence[str] | None = None, shapes: Sequence[tuple[int, ...]] | None = None,
        modes: Sequence[str] = MODES, dtypes: Sequence[str] = DTYPES, repeats: int = 7,
        use_torch: bool = True, model: dict[str, int] | None = None, noise: float = 0.1,
        progress: Callable[[str], None] | None = None, budget_s: float | None = None) -> dict[str, Any]:
    """The report: ``{"meta", "cells", "model", "misses"}`` (JSON-able); ``budget_s`` bounds each
    cell's timed calls (see :func:`bench_cell`)."""
    import jax

    import jaxinit

    catalog = catalog_entries()
    known = [e.name for e in catalog]
    if entries:
        unknown = [n for n in entries if n not in known]
        if unknown:
            raise ValueError(f"entries {unknown} are not in the catalog benchmark; choose from {known}.")
        catalog = [e for e in catalog if e.name in entries]
    shapes = [tuple(s) for s in (shapes or [parse_shape(s) for s in DEFAULT_SHAPES])]
    cells = []
    for entry in catalog:
        for shape in shapes:
            for dtype in dtypes:
                for mode in modes:
                    if progress:
                        progress(f"{entry.name} {shape} {dtype} {mode}")
                    cells.append(bench_cell(entry, shape, dtype, mode, repeats, use_torch, budget_s))
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    report = {
        "meta": {"jax": jax.__version__, "jaxinit": getattr(jaxinit, "__version__", None), "torch": torch_version,
                 "device": str(jax.devices()[0].device_kind), "platform": platform.platform(),
                 "python": platform.python_version(), "repeats": repeats, "keys_per_vmap": KEYS_PER_VMAP,
                 "noise": noise, "cell_budget_s": budget_s, "min_calls": MIN_CALLS, "max_calls": MAX_CALLS},
        "cells": cells,
        "model": bench_model(repeats=max(3, repeats), **model) if model else None,
    }
    report["misses"] = check_targets(cells, noise)
    if report["model"]:
        for what in ("compile_vs_jax", "run_vs_jax"):
            if report["model"][what] < 1.0 - noise:
                report["misses"].append({"entry": "transformer", "target": f"{what} >= 1",
                                         "value": round(report["model"][what], 3)})
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The catalog benchmark's options (for ``jaxinit bench --catalog``)."""
    parser.add_argument("--entries", nargs="+", metavar="NAME", help="entries to run (default: all)")
    parser.add_argument("--shapes", nargs="+", type=parse_shape, metavar="AxB",
                        help=f"shapes (default: {' '.join(DEFAULT_SHAPES)})")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="modes (default: all)")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES), help="dtypes (default: all)")
    parser.add_argument("--repeats", type=positive_int, default=7, help="timed calls per cell (median; default 7)")
    parser.add_argument("--cell-budget", type=seconds, default=0.0, metavar="SECONDS",
                        help=f"time each cell for about this long instead of --repeats calls: as many calls as fit, "
                             f"{MIN_CALLS} to {MAX_CALLS} (default 0: --repeats calls)")
    parser.add_argument("--noise", type=float, default=0.1, help="tolerance of the vs_jax >= 1 target (0.1)")
    parser.add_argument("--no-torch", action="store_true", help="skip torch.nn.init")
    parser.add_argument("--no-model", action="store_true", help="skip the transformer")
    parser.add_argument("--blocks", type=positive_int, default=12, help="transformer blocks (default 12)")
    parser.add_argument("--width", type=positive_int, default=512, help="transformer width (default 512)")
    parser.add_argument("--heads", type=positive_int, default=8, help="attention heads (default 8)")
    parser.add_argument("--vocab", type=positive_int, default=8192, help="vocabulary size (default 8192)")
    parser.add_argument("--seq", type=positive_int, default=16, help="tokens per sequence (default 16)")
    parser.add_argument("--out", type=Path, help="write the table here (else stdout)")
    parser.add_argument("--json", type=Path, help="write the JSON report here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run_from_args(args: argparse.Namespace) -> int:
    """Run from parsed arguments; 0 when every cell meets its target, 1 otherwise."""
    model = None if args.no_model else {"blocks": args.blocks, "width": args.width, "heads": args.heads,
                                        "vocab": args.vocab, "seq": args.seq}
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    report = run(args.entries, args.shapes, args.modes, args.dtypes, args.repeats, not args.no_torch, model,
                 args.noise, progress, args.cell_budget or None)
    table = format_table(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    else:
        sys.stdout.write(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if not report["misses"] else 1


def parser(prog: str = "python -m jaxinit.bench.catalog") -> argparse.ArgumentParser:
    """The catalog benchmark's own parser (``jaxinit bench --catalog`` hands it every argument after the flag)."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    add_arguments(p)
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m jaxinit.bench.catalog") -> int:
    from jaxinit.runtime import configure_process

    configure_process()  # OpenBLAS threads and the XLA CPU workaround, before the backend starts
    return run_from_args(parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
