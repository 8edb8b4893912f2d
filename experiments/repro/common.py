"""What every reproduction shares: its command line, running a sweep from experiments/configs/,
writing its table and verdict, and saving a figure small enough for the README.

A reproduction is a module ``experiments/repro/<name>.py`` with

* ``main(out, small=False, publish=None) -> dict``: runs its sweep(s) through jaxinit's importable
  API (:func:`jaxinit.lab.config.load` + :func:`jaxinit.lab.run.run`), computes its numbers, decides
  its verdict with a pure function of those numbers, and writes ``<out>/<name>.png``,
  ``<out>/<name>.csv``, ``<out>/<name>.md`` and ``<out>/verdict.json``; ``publish`` (a folder) also
  receives the PNG and the markdown table (the full-size runs publish to ``docs/figures/``);
* ``verdict(numbers) -> Verdict``: pure, tested on numbers for each outcome.

Run one alone: ``.venv/bin/python experiments/repro/<name>.py [--out DIR] [--small]``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "experiments" / "configs"
DEFAULT_OUT = ROOT / "results" / "experiments"
DOCS_FIGURES = ROOT / "docs" / "figures"

AGREES, PARTLY, DOES_NOT = "agrees", "partly", "does not"
STATUSES = (AGREES, PARTLY, DOES_NOT)

MAX_PNG_BYTES = 150_000  # the README's budget per committed figure
FIG_WIDTH_IN = 10.0      # 1000 px at the DPI below: legible at README width (~800-1000 px)
DPI = 100


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of one claim: ``status`` one of :data:`STATUSES`, and why, in numbers."""

    claim: str
    status: str
    why: str

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}; got {self.status!r}")


def overall(verdicts: Sequence[Verdict]) -> str:
    """All agree -> agrees; none agrees (all 'does not') -> does not; else partly."""
    if not verdicts:
        raise ValueError("overall() needs at least one verdict")
    statuses = {v.status for v in verdicts}
    if statuses == {AGREES}:
        return AGREES
    if statuses == {DOES_NOT}:
        return DOES_NOT
    return PARTLY


def config_path(name: str) -> Path:
    return CONFIGS / f"{name}.toml"


def sweep(config: str, out: Path, overrides: Mapping[str, Any] | None = None):
    """Run ``experiments/configs/<config>.toml`` (with ``overrides``) into ``out`` from scratch and
    return the assembled :class:`jaxinit.lab.store.Results`."""
    from jaxinit.lab import config as config_lib
    from jaxinit.lab.run import run

    cfg = config_lib.load(config_path(config), overrides={**(overrides or {}), "output.dir": str(out)})
    return run(cfg, fresh=True, progress=False)


def sweep_noting(config: str, out: Path, overrides: Mapping[str, Any] | None = None,
                 category: type[Warning] = UserWarning):
    """:func:`sweep`, with the warnings of ``category`` it raises kept as notes: ``(results, notes)``."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        res = sweep(config, out, overrides)
    notes = []
    for w in caught:
        if not issubclass(w.category, category):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)  # not ours to keep: re-raise
        elif str(w.message) not in notes:
            notes.append(str(w.message))
    return res, notes


def write_table(out: Path, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                title: str = "", notes: Sequence[str] = ()) -> str:
    """``<out>/<name>.csv`` and ``<out>/<name>.md`` (a markdown table under ``title``); returns the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    (out / f"{name}.csv").write_text(buf.getvalue(), encoding="utf-8")
    lines = [f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    lines += ["", *notes] if notes else []
    text = "\n".join(lines) + "\n"
    (out / f"{name}.md").write_text(text, encoding="utf-8")
    return text


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.3g}"
    return str(v)


def write_verdict(out: Path, name: str, verdicts: Sequence[Verdict], numbers: Mapping[str, Any],
                  seconds: float) -> dict[str, Any]:
    """``<out>/verdict.json``: the verdicts, the overall status, the numbers they came from, the run time
    (non-finite numbers written as the strings "inf", "-inf", "nan"). Returns the record with the
    numbers as given (what :func:`verdict` functions read)."""
    record = {
        "reproduction": name,
        "overall": overall(verdicts),
        "verdicts": [dataclasses.asdict(v) for v in verdicts],
        "numbers": numbers,
        "seconds": round(seconds, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**record, "numbers": _jsonable(numbers)}, indent=2, allow_nan=False)
    (out / "verdict.json").write_text(text + "\n", encoding="utf-8")
    return record


def finish(out: Path, name: str, verdicts: Sequence[Verdict], numbers: Mapping[str, Any], seconds: float,
           columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str, png: Path, publish: Path | None,
           notes: Sequence[str] = ()) -> dict[str, Any]:
    """How every reproduction's ``main`` ends: its table (:func:`write_table`, under it a line per
    verdict, ``notes`` and the run time ``seconds``), its ``verdict.json`` (:func:`write_verdict`),
    the figure ``png`` and the table published to ``publish`` (:func:`publish_files`). Returns the
    verdict record."""
    write_table(out, name, columns, rows, title=title,
                notes=[f"[{v.status}] {v.claim}: {v.why}" for v in verdicts] + list(notes)
                + [f"run time {seconds:.0f} s"])
    record = write_verdict(out, name, verdicts, numbers, seconds)
    publish_files([png, out / f"{name}.md"], publish)
    return record


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "tolist"):
        return _jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def new_figure(n_rows: int, n_cols: int, height_per_row: float = 3.4, width: float = FIG_WIDTH_IN):
    """A constrained-layout Agg figure of ``n_rows x n_cols`` panels (no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height_per_row * n_rows + 0.9), dpi=DPI, layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, axes


def save_figure(fig, path: Path, max_bytes: int = MAX_PNG_BYTES) -> Path:
    """Save ``fig`` as a PNG; lower the resolution until it fits ``max_bytes`` (never below 60 dpi)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dpi = DPI
    while True:
        fig.savefig(path, dpi=dpi, format="png")
        if path.stat().st_size <= max_bytes or dpi <= 60:
            return path
        dpi = int(dpi * 0.85)


def publish_files(files: Sequence[Path], folder: Path | None) -> list[Path]:
    """Copy ``files`` into ``folder`` (the full runs publish to ``docs/figures/``); none when ``folder`` is None."""
    if folder is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(f, folder / f.name)) for f in files]


def cli(name: str, main: Callable[..., dict[str, Any]], doc: str, argv: Sequence[str] | None = None) -> int:
    """``<name>.py [--out DIR] [--small] [--publish DIR | --no-publish]``: set up the process, run ``main``,
    print the verdict and how long it took."""
    parser = argparse.ArgumentParser(prog=f"experiments/repro/{name}.py", description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default results/experiments/{name})")
    parser.add_argument("--small", action="store_true", help="the shrunk run of the tests (seconds, not minutes)")
    parser.add_argument("--publish", type=Path, default=None,
                        help="also copy the figure and table here (default: docs/figures for a full run, "
                             "nothing for --small)")
    parser.add_argument("--no-publish", action="store_true", help="do not copy the figure and table anywhere")
    args = parser.parse_args(argv)

    from jaxinit.runtime import configure_process, usable_cores

    configure_process(usable_cores())  # before JAX starts: one CPU device per core, as `jaxinit sweep` does
    out = args.out or DEFAULT_OUT / (f"{name}-small" if args.small else name)
    publish = None if args.no_publish else (args.publish or (None if args.small else DOCS_FIGURES))
    start = time.perf_counter()
    record = main(out, small=args.small, publish=publish)
    seconds = time.perf_counter() - start
    print(f"{name}: {record['overall']} ({seconds:.0f} s; results in {out})")
    for v in record["verdicts"]:
        print(f"  [{v['status']}] {v['claim']}: {v['why']}")
    return 0


def repo_importable() -> None:
    """Put the repository root on ``sys.path`` (a script run by path has only its own folder there)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def seed_quantiles(values, qs: Sequence[float], axis: int = 0) -> list:
    """NaN-aware quantiles over seeds (``axis``); an all-NaN column gives NaN without a warning."""
    import warnings

    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (a layer past underflow)
        return [np.nanquantile(values, q, axis=axis) for q in qs]


def read_verdict(out: Path) -> dict[str, Any]:
    """``<out>/verdict.json`` back, with the strings "inf", "-inf" and "nan" turned into floats again."""
    def restore(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: restore(v) for k, v in x.items()}
        if isinstance(x, list):
            return [restore(v) for v in x]
        if x in ("inf", "-inf", "nan"):
            return float(x)
        return x

    return restore(json.loads((Path(out) / "verdict.json").read_text(encoding="utf-8")))
