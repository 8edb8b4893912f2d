"""Reading a finished results folder back: :func:`load` -> :class:`Results` (arrays, coordinates,
meta, summary), without the engine.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxinit.errors import ResultsError
from jaxinit.lab.config import SweepConfig
from jaxinit.lab.store.layout import (
    _CHUNK_FILE,
    _SEEDS_FILE,
    ARRAYS_FILE,
    CHUNKS_DIR,
    COORDS_FILE,
    SUMMARY_FILE,
    _config_from_meta,
    _ranges,
    read_meta,
)

_INT_COLUMNS = {"depth", "width", "grid_point", "layer", "n_seeds", "n_finite"}
_TEXT_COLUMNS = {"program", "activation", "initializer", "statistic"}


@dataclasses.dataclass
class Results:
    """An assembled results folder, as numpy arrays with named dims.

    Attributes:
      path: the folder.
      arrays: statistic name -> array with dims ``dims[name]``
        (``("program", "initializer", "grid_point", "seed"[, "layer"])``).
      dims: statistic name -> tuple of dim names.
      coords: dim name -> labels: ``program`` (dicts with id, depth, width, activation),
        ``initializer`` (labels; ``initializer_repr`` beside them), ``grid_point`` (dicts of grid
        values; ``grid_params`` names them), ``seed`` (seed ids), ``layer`` (indices).
      extent: statistic name -> program id -> true sizes of the trailing dims (before padding).
      meta: the contents of ``meta.json``.
      missing_seeds: program id -> seed ids absent (only for a partial assembly).
    """

    path: Path
    arrays: dict[str, np.ndarray]
    dims: dict[str, tuple[str, ...]]
    coords: dict[str, Any]
    extent: dict[str, dict[str, list[int]]]
    meta: dict[str, Any]
    missing_seeds: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    _summary: list[dict[str, Any]] | None = dataclasses.field(default=None, repr=False)

    def __repr__(self) -> str:
        """A few lines: the folder, its programs, initializers, grid, seeds and arrays (names, shapes)."""
        def listed(items: Sequence[str], limit: int = 4) -> str:
            shown = ", ".join(items[:limit])
            return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")

        arrays = [f"{name}{list(value.shape)} {value.dtype}" for name, value in self.arrays.items()]
        grid = self.coords.get("grid_params") or []
        lines = [
            f"Results({str(self.path)!r}, status {self.meta.get('status', '?')!r}",
            f"  programs: {listed(self.programs)}",
            f"  initializers: {listed([str(x) for x in self.coords.get('initializer', [])])}",
            f"  grid: {len(self.coords.get('grid_point', []))} point(s)"
            + (f" over {', '.join(grid)}" if grid else ""),
            f"  seeds: {len(self.coords.get('seed', []))}"
            + (f" (missing: {listed([f'{pid} {_ranges(s)}' for pid, s in self.missing_seeds.items() if s], 2)})"
               if any(self.missing_seeds.values()) else ""),
            f"  arrays (program, initializer, grid_point, seed, ...): {listed(arrays, 12)})",
        ]
        return "\n".join(lines)

    @property
    def programs(self) -> list[str]:
        return [p["id"] for p in self.coords["program"]]

    def get(self, name: str, program: str | int | None = None) -> np.ndarray:
        """One program's array, trailing dims cut to their true extent: dims ``dims[name][1:]``.

        ``program`` is an id or index; it may be left out when the sweep has a single program.
        """
        if name not in self.arrays:
            raise KeyError(f"no array {name!r}; have {sorted(self.arrays)}.")
        ids = self.programs
        if program is None:
            if len(ids) != 1:
                raise ValueError(f"this sweep has {len(ids)} programs; pass program= one of {ids}.")
            program = 0
        index = ids.index(program) if isinstance(program, str) and program in ids else program
        if not isinstance(index, int) or not 0 <= index < len(ids):
            raise ValueError(f"program must be one of {ids} or an index below {len(ids)}; got {program!r}.")
        sizes = self.extent[name][ids[index]]
        return self.arrays[name][(index, slice(None), slice(None), slice(None), *(slice(0, n) for n in sizes))]

    @property
    def summary(self) -> list[dict[str, Any]]:
        """``summary.csv`` as a list of dict rows (numbers parsed; empty cells are ``None``)."""
        if self._summary is None:
            with open(self.path / SUMMARY_FILE, encoding="utf-8", newline="") as f:
                self._summary = [{k: _parse_cell(k, v) for k, v in row.items()} for row in csv.DictReader(f)]
        return self._summary

    def to_pandas(self):
        """``summary.csv`` as a pandas DataFrame (pandas is optional: ImportError names it)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Results.to_pandas needs pandas (pip install pandas); "
                              "Results.summary gives the same rows as dicts.") from None
        return pd.read_csv(self.path / SUMMARY_FILE)

    @property
    def config(self) -> SweepConfig:
        """The sweep's config, rebuilt from ``meta.json``."""
        return _config_from_meta(self.meta, self.path)


def _parse_cell(column: str, text: str) -> Any:
    if text == "" or column in _TEXT_COLUMNS:
        return None if text == "" else text
    if column in _INT_COLUMNS:
        return int(text)
    return float(text)


def load(folder: str | os.PathLike) -> Results:
    """Open an assembled results folder (``arrays.npz`` + ``arrays.json`` + ``meta.json``).

    Raises:
      ResultsError: not a folder, not a jaxinit results folder, or not assembled yet.
    """
    path = Path(folder)
    if not path.is_dir():
        raise ResultsError(path, "no such results folder" if not path.exists() else "is not a folder")
    meta = read_meta(path)
    if not (path / ARRAYS_FILE).exists() or not (path / COORDS_FILE).exists():
        n = sum(1 for p in (path / CHUNKS_DIR).glob("*/*.npz")
                if _SEEDS_FILE.fullmatch(p.name) or _CHUNK_FILE.fullmatch(p.name))
        raise ResultsError(path, f"has no {ARRAYS_FILE} yet ({n} chunk files written); rerun the sweep to "
                           "finish it, or ResultsFolder(path).assemble(allow_partial=True)")
    sidecar = json.loads((path / COORDS_FILE).read_text(encoding="utf-8"))
    with np.load(path / ARRAYS_FILE, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return Results(
        path=path,
        arrays=arrays,
        dims={name: tuple(d) for name, d in sidecar["dims"].items()},
        coords=sidecar["coords"],
        extent=sidecar["extent"],
        meta=meta,
        missing_seeds=sidecar.get("missing_seeds", {}),
    )
