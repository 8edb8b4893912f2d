"""The results folder of a sweep: chunks written as they finish, assembled arrays, a tidy table.

Layout of a folder (``ResultsFolder(path)``)::

    config.toml      the config as given (or the resolved config, for one built from a dict)
    meta.json        resolved config and its hash, package versions, device, timings, chunk plan,
                     random-number scheme, status ("running" | "partial" | "complete")
    chunks/<program id>/seeds-000004-000007.npz
                     one file per finished chunk of seeds, named by the seeds it holds (a list that is
                     not a run of seeds adds a digest: seeds-000002-000009-<8 hex>.npz; folders
                     written before hold chunk-000003.npz, still read), written atomically (temp
                     file + os.replace) and bit for bit the same by any writer
    .writers/, .lock the live writers (pid, host, claimed seeds) and the lock of the shared state:
                     any number of processes may write one folder (jaxinit.lab.store.writers)
    arrays.npz       every probe, dims (program, initializer, grid_point, seed, *trailing)
    arrays.json      dim names per array, coordinate labels, per-program extents of padded dims
    summary.csv      tidy: one row per program x initializer x grid point x layer x statistic:
                     mean, std (population, ddof = 0), median, quantiles over the seeds with a
                     finite value, n_seeds, n_finite (columns: SUMMARY_COLUMNS)
    figures/         PNGs (written by ``jaxinit.lab.figures``, not here)

A sweep is several compiled *programs* (one per distinct depth x width x activation; see
:meth:`jaxinit.lab.config.SweepConfig.programs`). For a chunk of seeds a program produces, per
statistic, an array of shape ``(n_initializers, n_grid_points, n_seeds_in_chunk, *trailing)``:
``trailing`` is ``(depth,)`` for per-layer statistics (dim ``"layer"``), ``()`` for per-network
scalars, or anything else with its dims named explicitly. Chunks carry their seed ids, so results
never depend on how seeds were chunked, and an interrupted sweep resumes with
:meth:`ResultsFolder.missing_seeds` and recomputes nothing already written.

Non-finite values are data here: they are stored as they came, excluded from the summary's
mean/median/quantiles and counted (``n_finite``), never raised.
"""

from jaxinit.errors import ResultsError
from jaxinit.lab.store.folder import ResultsFolder, device_description, package_versions
from jaxinit.lab.store.layout import (
    ARRAYS_FILE,
    CHUNKS_DIR,
    CONFIG_FILE,
    COORDS_FILE,
    FIGURES_DIR,
    FORMAT,
    META_FILE,
    SUMMARY_COLUMNS,
    SUMMARY_FILE,
    SUMMARY_STATS,
)
from jaxinit.lab.store.reader import Results, load
from jaxinit.lab.store.summary import summarize

__all__ = [
    "ARRAYS_FILE", "CHUNKS_DIR", "CONFIG_FILE", "COORDS_FILE", "FIGURES_DIR", "FORMAT", "META_FILE",
    "SUMMARY_COLUMNS", "SUMMARY_FILE", "SUMMARY_STATS", "Results", "ResultsError", "ResultsFolder",
    "device_description", "load", "package_versions", "summarize",
]
