"""The results folder of a sweep, written: chunks written as they finish, assembled arrays, a tidy table.

Layout of a folder (``ResultsFolder(path)``)::

    config.toml      the config as given (or the resolved config, for one built from a dict)
    meta.json        resolved config and its hash, package versions, device, timings, chunk plan,
                     random-number scheme, status ("running" | "partial" | "complete")
    chunks/<program id>/chunk-000003.npz
                     one file per finished chunk of seeds, written atomically (temp file + os.replace)
    arrays.npz       every probe, dims (program, initializer, grid_point, seed, *trailing)
    arrays.json      dim names per array, coordinate labels, per-program extents of padded dims
    summary.csv      tidy: one row per program x initializer x grid point x layer x statistic:
                     mean, std (population, ddof = 0), median, quantiles over the seeds with a
                     finite value, n_seeds, n_finite (columns: SUMMARY_COLUMNS)
    figures/         PNGs (written by ``jaxinit.plots``, not here)

A sweep is several compiled *programs* (one per distinct depth x width x activation; see
:meth:`jaxinit.config.SweepConfig.programs`). For a chunk of seeds a program produces, per
statistic, an array of shape ``(n_initializers, n_grid_points, n_seeds_in_chunk, *trailing)``:
``trailing`` is ``(depth,)`` for per-layer statistics (dim ``"layer"``), ``()`` for per-network
scalars, or anything else with its dims named explicitly. Chunks carry their seed ids, so results
never depend on how seeds were chunked, and an interrupted sweep resumes with
:meth:`ResultsFolder.missing_seeds` and recomputes nothing already written.

Non-finite values are data here: they are stored as they came, excluded from the summary's
mean/median/quantiles and counted (``n_finite``), never raised.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxinit.errors import ResultsError
from jaxinit.lab.config import SweepConfig
from jaxinit.lab.store.assemble import _Assembling
from jaxinit.lab.store.chunks import _Chunks
from jaxinit.lab.store.meta import _Preparing, device_description, package_versions

__all__ = ["ResultsFolder", "device_description", "package_versions"]


class ResultsFolder(_Preparing, _Chunks, _Assembling):
    """A sweep's output folder, written chunk by chunk, resumable, assembled at the end.

    Typical use by the engine::

        folder = ResultsFolder(config.output.dir)
        folder.prepare(config, fresh=args.fresh)           # refuses another config's folder
        for program in config.programs():
            todo = folder.missing_seeds(program.id)        # [] when resuming a finished program
            for chunk_id, seeds in plan(todo):
                folder.write_chunk(program.id, chunk_id, measure(program, seeds), seeds)
        folder.write_meta({"device": device_description(), "run_time_s": ...})
        results = folder.assemble()
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config: SweepConfig | None = None
        self._seeds: dict[str, dict[int, frozenset[int]]] = {}   # program -> chunk id -> seed ids
        self._schema: dict[str, dict[str, tuple]] = {}            # program -> name -> (dims, shape, kind)

    def __repr__(self) -> str:
        return f"ResultsFolder({str(self.path)!r})"

    def _error(self, problem: str) -> ResultsError:
        return ResultsError(self.path, problem)
