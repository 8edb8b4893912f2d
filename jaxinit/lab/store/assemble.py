"""Assembling a results folder: chunks -> ``arrays.npz``, ``arrays.json``, ``summary.csv``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxinit._io import atomic_write, write_json
from jaxinit.lab.config import SweepConfig
from jaxinit.lab.store.chunks import _chunk_schema, _fill_value
from jaxinit.lab.store.layout import (
    _SEEDS_KEY,
    ARRAYS_FILE,
    BASE_DIMS,
    CHUNKS_DIR,
    COORDS_FILE,
    FORMAT,
    SUMMARY_COLUMNS,
    SUMMARY_FILE,
    _config_from_meta,
    _now,
    _ranges,
)
from jaxinit.lab.store.reader import Results, load
from jaxinit.lab.store.summary import _write_csv, summarize


def _stack_programs(per_program: list[dict[str, np.ndarray]], programs, dims) -> tuple[dict, dict]:
    """Stack per-program arrays along a leading program dim, padding trailing dims to the longest."""
    combined: dict[str, np.ndarray] = {}
    extent: dict[str, dict[str, list[int]]] = {}
    for name in dims:
        parts = [arrays.get(name) for arrays in per_program]
        known = [p for p in parts if p is not None]
        dtype = np.result_type(*[p.dtype for p in known])
        trailing = tuple(max(p.shape[3 + i] for p in known) for i in range(known[0].ndim - 3))
        out = np.full((len(parts), *known[0].shape[:3], *trailing), _fill_value(dtype), dtype=dtype)
        extent[name] = {}
        for i, (program, part) in enumerate(zip(programs, parts, strict=True)):
            if part is None:
                extent[name][program.id] = [0] * len(trailing)
                continue
            out[(i, slice(None), slice(None), slice(None), *(slice(0, n) for n in part.shape[3:]))] = part
            extent[name][program.id] = list(part.shape[3:])
        combined[name] = out
    return combined, extent


def _coords(config: SweepConfig, dims: Mapping[str, tuple[str, ...]], combined) -> dict[str, Any]:
    points = config.grid_points()
    coords: dict[str, Any] = {
        "program": [p.describe() for p in config.programs()],
        "initializer": list(config.sweep.labels),
        "initializer_repr": [repr(e.init) for e in config.sweep.initializers],
        "grid_point": list(points),
        "grid_params": list(config.grid.params) if config.grid is not None else [],
        "seed": list(range(config.sweep.seeds)),
        "base_seed": config.sweep.base_seed,
    }
    if getattr(config, "kind", "sweep") == "train":  # a training run: the evaluated steps, not their indices
        coords["step"] = list(config.train.eval_steps())
    for name, trailing in dims.items():
        for axis, d in enumerate(trailing):
            size = combined[name].shape[4 + axis]
            if len(coords.get(d, [])) < size:
                coords[d] = list(range(size))
    return coords


# ---------------------------------------------------------------------------------------------
# Statistics across seeds (NaN/inf-aware, never raising on overflow)


class _Assembling:
    """:class:`~jaxinit.lab.store.ResultsFolder`'s assembly (a mixin)."""

    # -- assembling -------------------------------------------------------------------------
    def assemble(self, config: SweepConfig | None = None, allow_partial: bool = False) -> Results:
        """Gather every chunk into ``arrays.npz`` + ``arrays.json`` and ``summary.csv``; mark meta.

        Arrays get dims ``(program, initializer, grid_point, seed, *trailing)``; trailing dims of
        programs of different depth are padded to the longest (NaN for floats, -1 for ints, False for
        bools), and ``arrays.json`` records each program's true extent. Chunks are kept (they are
        the record; assembling again gives the same files).

        Args:
          config: the sweep's config; default: the one given to :meth:`prepare`, else the one in
            ``meta.json``.
          allow_partial: assemble even if seeds are missing (they are filled as padding and listed
            under ``missing_seeds`` in ``arrays.json``; the summary counts only present seeds).

        Raises:
          ResultsError: no chunks at all, or (unless ``allow_partial``) seeds still missing, or the
            folder's config hash differs from ``config``'s.
        """
        meta = self.read_meta()
        if config is None:
            config = self.config or _config_from_meta(meta, self.path)
        if meta.get("config_hash") not in (None, config.config_hash()):
            raise self._error("was written by a different config than the one given to assemble")
        saved_config, self.config = self.config, config
        try:
            return self._assemble(config, meta, allow_partial)
        finally:
            self.config = saved_config or config

    def _assemble(self, config: SweepConfig, meta: dict, allow_partial: bool) -> Results:
        programs = config.programs()
        n_init, n_grid, n_seeds = len(config.sweep.initializers), len(config.grid_points()), config.sweep.seeds
        per_program: list[dict[str, np.ndarray]] = []
        present: list[np.ndarray] = []
        dims: dict[str, tuple[str, ...]] = {}
        missing: dict[str, list[int]] = {}
        for program in programs:
            arrays: dict[str, np.ndarray] = {}
            have = np.zeros(n_seeds, dtype=bool)
            for cid, path in self._chunk_files(program.id).items():
                with self._open_chunk(path) as data:
                    seeds = np.asarray(data[_SEEDS_KEY], dtype=np.int64)
                    schema = _chunk_schema(data)
                    if seeds.size and (seeds.min() < 0 or seeds.max() >= n_seeds):
                        raise self._error(f"chunk {cid} of {program.id} holds seeds {_ranges(seeds)} outside "
                                          f"[0, {n_seeds})")
                    fresh = ~have[seeds]
                    for name, (trailing_dims, trailing_shape, _) in schema.items():
                        if dims.setdefault(name, trailing_dims) != trailing_dims:
                            raise self._error(f"array {name!r} has dims {trailing_dims} in {program.id} but "
                                              f"{dims[name]} elsewhere")
                        values = data[name]
                        if values.shape[:2] != (n_init, n_grid):
                            raise self._error(f"chunk {cid} of {program.id}: {name!r} has shape {values.shape}, "
                                              f"expected ({n_init}, {n_grid}, ...)")
                        if name not in arrays:
                            arrays[name] = np.full((n_init, n_grid, n_seeds, *trailing_shape),
                                                   _fill_value(values.dtype), dtype=values.dtype)
                        arrays[name][:, :, seeds[fresh]] = values[:, :, fresh]
                    have[seeds] = True
            per_program.append(arrays)
            present.append(have)
            if not have.all():
                missing[program.id] = [int(s) for s in np.flatnonzero(~have)]
        if not any(per_program):
            raise self._error(f"no chunks written yet under {CHUNKS_DIR}/; run the sweep first")
        if missing and not allow_partial:
            detail = "; ".join(f"{pid}: seeds {_ranges(s)}" for pid, s in list(missing.items())[:3])
            raise self._error(
                f"the sweep is unfinished ({detail}{'; ...' if len(missing) > 3 else ''}); rerun the same "
                "command to resume, or assemble(allow_partial=True)"
            )
        combined, extent = _stack_programs(per_program, programs, dims)
        coords = _coords(config, dims, combined)
        sidecar = {
            "format": FORMAT,
            "dims": {name: ["program", *BASE_DIMS, *d] for name, d in dims.items()},
            "coords": coords,
            "extent": extent,
            "missing_seeds": missing,
            "config_hash": config.config_hash(),
        }
        atomic_write(self.path / ARRAYS_FILE, lambda f: np.savez(f, **combined))
        write_json(self.path / COORDS_FILE, sidecar)
        rows = summarize(combined, sidecar, present)
        atomic_write(self.path / SUMMARY_FILE, lambda f: _write_csv(f, rows), binary=False)
        self.write_meta({
            "status": "partial" if missing else "complete",
            "assembled": _now(),
            "arrays": {name: ["program", *BASE_DIMS, *d] for name, d in dims.items()},
            "summary_columns": SUMMARY_COLUMNS,
        })
        return load(self.path)
