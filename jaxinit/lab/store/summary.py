"""summary.csv: per-layer statistics across seeds as a tidy table (one row per program x initializer x
grid point x layer x statistic), from :mod:`jaxinit._stats`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxinit._stats import seed_stats
from jaxinit.lab.store.layout import SUMMARY_STATS


def _fmt(x: float) -> str:
    return "nan" if math.isnan(x) else format(x, ".9g")


def summarize(arrays: Mapping[str, np.ndarray], sidecar: Mapping[str, Any],
              present: Sequence[np.ndarray] | None = None) -> tuple[list[str], list[list[str]]]:
    """Tidy rows for ``summary.csv`` from assembled arrays: ``(header, rows)``.

    One row per program x statistic x initializer x grid point x layer for arrays with dims
    ``(..., seed)`` or ``(..., seed, layer)``; other arrays (spectra) stay in ``arrays.npz`` only.
    Statistics are over seeds, finite values only; ``n_seeds`` counts the seeds present and
    ``n_finite`` those with a finite value. ``std`` is the population standard deviation
    (``ddof = 0``, dividing by ``n_finite``), as ``numpy.std``'s default; the columns are described
    in :data:`SUMMARY_COLUMNS`. A training run (coords with ``step``) adds ``n_reached``: on its
    ``steps_to_*`` rows, the seeds that reached the target (``n_finite`` there; NaN = never reached).
    """
    coords = sidecar["coords"]
    params = list(coords["grid_params"])
    training = "step" in coords  # a training run: steps_to_* rows say how many seeds reached the target
    header = ["program", "activation", "depth", "width", "initializer", "grid_point", *params, "layer",
              "statistic", *SUMMARY_STATS, "n_seeds", "n_finite", *(["n_reached"] if training else [])]
    rows: list[list[str]] = []
    programs = coords["program"]
    for name, dim_names in sidecar["dims"].items():
        trailing = dim_names[4:]
        if trailing not in ([], ["layer"]):
            continue
        for p, program in enumerate(programs):
            length = sidecar["extent"][name][program["id"]]
            have = present[p] if present is not None else np.ones(arrays[name].shape[3], dtype=bool)
            if not have.any() or 0 in length:
                continue
            data = arrays[name][p][:, :, have]
            if trailing:
                data = data[..., : length[0]]
            else:
                data = data[..., None]
            stats = seed_stats(data, axis=2)
            n_init, n_grid, n_layer = stats["mean"].shape
            lead = [program["id"], program["activation"], str(program["depth"]), str(program["width"])]
            columns = [[f"{v:.9g}" for v in stats[s].ravel().tolist()] for s in SUMMARY_STATS]
            columns.append([str(v) for v in stats["n_finite"].ravel().tolist()])
            bases = [[*lead, label, str(g), *(_fmt(point[k]) if k in point else "" for k in params)]
                     for label in coords["initializer"] for g, point in enumerate(coords["grid_point"])]
            layers = [str(layer) for layer in range(n_layer)] if trailing else [""]
            tail = [name, str(int(have.sum()))]
            for flat, cells in enumerate(zip(*columns, strict=True)):
                base = bases[flat // n_layer]
                row = [*base, layers[flat % n_layer], tail[0], *cells[:-1], tail[1], cells[-1]]
                if training:
                    row.append(cells[-1] if name.startswith("steps_to_") else "")
                rows.append(row)
    return header, rows


def _write_csv(f, table: tuple[list[str], list[list[str]]]) -> None:
    header, rows = table
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


# ---------------------------------------------------------------------------------------------
# Reading a finished folder
# ---------------------------------------------------------------------------------------------
