"""The results folder's layout: file names, formats and columns, and reading its meta.json."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jaxinit.errors import ResultsError
from jaxinit.lab.config import SweepConfig, from_dict

FORMAT = "jaxinit-results/1"
CONFIG_FILE = "config.toml"
META_FILE = "meta.json"
CHUNKS_DIR = "chunks"
ARRAYS_FILE = "arrays.npz"
COORDS_FILE = "arrays.json"
SUMMARY_FILE = "summary.csv"
FIGURES_DIR = "figures"
# What --fresh removes; anything else in the folder is left alone.
_OWNED = (CONFIG_FILE, META_FILE, CHUNKS_DIR, ARRAYS_FILE, COORDS_FILE, SUMMARY_FILE, FIGURES_DIR)

BASE_DIMS = ("initializer", "grid_point", "seed")
SUMMARY_STATS = ("mean", "std", "median", "q05", "q25", "q75", "q95")
# What each column of summary.csv means (also written to meta.json as "summary_columns").
SUMMARY_COLUMNS = {
    "program": "program id (depth x width x activation)",
    "activation": "activation of the program", "depth": "depth of the program", "width": "width of the program",
    "initializer": "initializer label", "grid_point": "index of the grid point (0 without a grid)",
    "weight_variance": "grid sigma_w^2 (empty: the initializer's own)",
    "bias_variance": "grid sigma_b^2 (empty: the bias initializer's own)",
    "learning_rate": "grid learning rate of a training run (empty: train.learning_rate)",
    "layer": "layer index j = 0 .. depth - 1 (pre-activation h^(j+1)); empty for per-network statistics",
    "statistic": "array name in arrays.npz",
    "mean": "mean over the seeds with a finite value",
    "std": "population standard deviation over the seeds with a finite value (ddof = 0: divides by n_finite, "
           "not n_finite - 1)",
    "median": "median over the seeds with a finite value",
    "q05": "5% quantile over the seeds with a finite value (numpy's linear rule)",
    "q25": "25% quantile (likewise)", "q75": "75% quantile (likewise)", "q95": "95% quantile (likewise)",
    "n_seeds": "seeds present (a partial assembly has fewer than sweep.seeds)",
    "n_finite": "seeds present with a finite value (NaN, inf: overflow; left out of every statistic)",
    "n_reached": "training runs, steps_to_* rows: seeds whose member reached the target (the statistics are over "
                 "them; NaN steps = never reached); empty on other rows",
}
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_PROGRAM_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Chunk files are named by the seeds they hold: seeds-<first>-<last>.npz for a run of seeds,
# seeds-<first>-<last>-<digest of the seed list>.npz otherwise. chunk-<id>.npz: folders written
# before (read, resumed and assembled as before; never written).
_SEEDS_FILE = re.compile(r"seeds-(\d+)-(\d+)(?:-([0-9a-f]{8}))?\.npz")
_CHUNK_FILE = re.compile(r"chunk-(\d+)\.npz")
_SEEDS_KEY, _DIMS_KEY, _PROGRAM_KEY = "__seed_ids__", "__dims__", "__program__"
_VERSIONED = ("jax", "jaxlib", "flax", "optax", "numpy", "jaxinit")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _ranges(ids: Iterable[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``."""
    ids = sorted(ids)
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ", ".join(parts)


def _config_from_meta(meta: Mapping[str, Any], path: Path) -> SweepConfig:
    if "config" not in meta:
        raise ResultsError(path, f"{META_FILE} holds no config")
    # A finished folder reads the same in any process: its config was checked against the writer's
    # settings (x64, extras) when the sweep ran.
    return from_dict(meta["config"], source=str(meta.get("config_source", path / CONFIG_FILE)),
                     check_process=False)


def read_meta(path: Path) -> dict[str, Any]:
    """The folder's ``meta.json``; a :class:`~jaxinit.errors.ResultsError` when absent or unreadable."""
    try:
        return json.loads((Path(path) / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(path, f"no {META_FILE}: not a jaxinit results folder (or not prepared yet)") from None
    except (OSError, ValueError) as err:
        raise ResultsError(path, f"{META_FILE} is unreadable ({err})") from None
