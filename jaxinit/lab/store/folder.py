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

import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxinit._io import atomic_write, fsync_dir, write_json
from jaxinit._prng import RANDOM_SCHEME
from jaxinit.errors import ResultsError
from jaxinit.lab.config import SweepConfig
from jaxinit.lab.store.layout import (
    _CHUNK_FILE,
    _DIMS_KEY,
    _NAME,
    _OWNED,
    _PROGRAM_ID,
    _PROGRAM_KEY,
    _SEEDS_KEY,
    _VERSIONED,
    ARRAYS_FILE,
    BASE_DIMS,
    CHUNKS_DIR,
    CONFIG_FILE,
    COORDS_FILE,
    FORMAT,
    META_FILE,
    SUMMARY_COLUMNS,
    SUMMARY_FILE,
    _config_from_meta,
    _now,
    _ranges,
    read_meta,
)
from jaxinit.lab.store.reader import Results, load
from jaxinit.lab.store.summary import _write_csv, summarize

__all__ = ["ResultsFolder", "device_description", "package_versions"]


def package_versions() -> dict[str, str | None]:
    """Installed versions of jax, jaxlib, flax, optax, numpy, jaxinit, plus Python and the OS."""
    out: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    out["platform"] = platform.platform()
    return out


def device_description() -> dict[str, Any]:
    """The JAX backend and devices this process sees (for ``meta.json``)."""
    import jax

    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind if devices else None,
        "devices": [str(d) for d in devices],
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "process_count": jax.process_count(),
        "cpu_count": os.cpu_count(),
        # Process settings that change speed (never the weights): see jaxinit.runtime.
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def _storable(name: str, value: Any) -> np.ndarray:
    """An array in a dtype ``np.savez`` stores portably (bfloat16 and other extension floats -> float32)."""
    arr = np.asarray(value)
    if arr.dtype.kind in "biuf" and arr.dtype.itemsize <= 8 and arr.dtype.kind != "V":
        return arr
    try:
        import jax.numpy as jnp

        if jnp.issubdtype(arr.dtype, jnp.floating):
            return arr.astype(np.float32)
    except TypeError:
        pass
    raise ValueError(f"array {name!r} must hold bool, integer or real floating values; got dtype={arr.dtype}.")


def _fill_value(dtype: np.dtype) -> Any:
    """Fill for padded layers and missing seeds: NaN for floats, -1 for integers, False for bools."""
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "b":
        return False
    return -1


def _default_dims(name: str, ndim: int) -> tuple[str, ...]:
    if ndim == 3:
        return ()
    if ndim == 4:
        return ("layer",)
    raise ValueError(
        f"array {name!r} has {ndim} dims; beyond (initializer, grid_point, seed[, layer]) name the "
        f"extra dims with dims={{{name!r}: (...)}}."
    )


# ---------------------------------------------------------------------------------------------
# The folder being written
# ---------------------------------------------------------------------------------------------


class ResultsFolder:
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

    # -- preparing ----------------------------------------------------------------------
    def prepare(self, config: SweepConfig, config_text: str | None = None, fresh: bool = False) -> bool:
        """Create the folder, or reopen one made by the same config; returns whether it resumes.

        Writes ``config.toml`` (``config_text``, else ``config.text``, else the resolved config as
        TOML) and the first ``meta.json``. A folder holding the results of a different config (by
        :meth:`~jaxinit.config.SweepConfig.config_hash`) is refused unless ``fresh``, which clears
        what this module wrote there (and ``figures/``) and leaves any other file alone.

        Raises:
          ResultsError: the path is a file, lies under a file, cannot be created or written,
            holds another config's results (without ``fresh``), or holds files that are not
            jaxinit results.
        """
        self._ensure_writable_dir()
        meta_path = self.path / META_FILE
        new_hash = config.config_hash()
        old: dict[str, Any] | None = None
        if meta_path.exists():
            try:
                old = json.loads(meta_path.read_text(encoding="utf-8"))
                if not isinstance(old, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as err:
                if not fresh:
                    raise self._error(f"{META_FILE} is unreadable ({err}); start over with fresh=True (clears "
                                      "the folder)") from None
                old = {}
        else:
            strangers = sorted(p.name for p in self.path.iterdir() if not p.name.startswith("."))
            if strangers:
                shown = ", ".join(strangers[:5]) + (", ..." if len(strangers) > 5 else "")
                raise self._error(
                    f"holds files that are not jaxinit results (no {META_FILE}): {shown}; "
                    "choose an empty or new folder (output.dir)"
                )
        resumed = False
        if old is not None:
            if fresh or old.get("config_hash") != new_hash:
                if not fresh:
                    raise self._error(
                        f"holds results of a different config (hash {old.get('config_hash')} != "
                        f"{new_hash}; {self._describe_change(old.get('config'), config)}). "
                        "Overwrite them with fresh=True, or write elsewhere (another output.dir)"
                    )
                self._clear()
                old = None
            else:
                resumed = True
        self.config = config
        self._seeds.clear()
        self._schema.clear()
        (self.path / CHUNKS_DIR).mkdir(exist_ok=True)
        self._remove_stale_temp_files()
        text = config_text if config_text is not None else config.text
        if text is None:
            text = f"# resolved config ({config.source})\n" + config.to_toml()
        atomic_write(self.path / CONFIG_FILE, lambda f: f.write(text), binary=False)
        if resumed and old is not None:
            meta = old
            meta["status"] = "running"
            meta.setdefault("resumed", []).append({"at": _now(), "versions": package_versions()})
        else:
            meta = self._initial_meta(config, new_hash)
        write_json(meta_path, meta)
        return resumed

    def _ensure_writable_dir(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise self._error("the output folder is a file; choose another output folder (output.dir) or remove "
                              "the file")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            blocker = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
            raise self._error(f"cannot create the output folder: {blocker or 'a parent'} is a file, "
                              "not a folder") from None
        except PermissionError:
            raise self._error("cannot create the output folder: permission denied") from None
        except OSError as err:
            raise self._error(f"cannot create the output folder: {err.strerror or err}") from None
        try:
            fd, probe = tempfile.mkstemp(dir=self.path, prefix=".write-test-")
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise self._error(f"the output folder is not writable ({err.strerror or err}); choose "
                              "another output folder (output.dir) or fix its permissions") from None

    def _describe_change(self, old_config: Any, config: SweepConfig) -> str:
        if not isinstance(old_config, Mapping):
            return "its config is unknown"
        new = config.to_dict()
        keys = sorted(
            k for k in set(_flatten(old_config)) | set(_flatten(new))
            if not k.startswith("output.") and _flatten(old_config).get(k) != _flatten(new).get(k)
        )
        if not keys:
            return "the resolved initializers differ"
        return "changed: " + ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")

    def _clear(self) -> None:
        for name in _OWNED:
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        for png in self.path.glob("*.png"):
            png.unlink()

    def _remove_stale_temp_files(self) -> None:
        """Temp files left by an interrupted write (never read; removed on the next prepare)."""
        for tmp in [*self.path.glob(".*.tmp"), *(self.path / CHUNKS_DIR).glob("*/.*.tmp")]:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _initial_meta(self, config: SweepConfig, config_hash: str) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "status": "running",
            "created": _now(),
            "config_hash": config_hash,
            "config_source": config.source,
            "config": config.to_dict(),
            "programs": [p.describe() for p in config.programs()],
            "initializers": [{"label": e.label, "repr": repr(e.init), "spec": e.to_spec()}
                             for e in config.sweep.initializers],
            "bias": {"label": config.network.bias.label, "repr": repr(config.network.bias.init)},
            "grid_points": list(config.grid_points()),
            "random_numbers": RANDOM_SCHEME.format(base_seed=config.sweep.base_seed),
            "versions": package_versions(),
        }

    # -- metadata -------------------------------------------------------------------------
    def read_meta(self) -> dict[str, Any]:
        return read_meta(self.path)

    def write_meta(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``update`` into ``meta.json`` (top-level keys replaced), atomically; returns it all.

        The engine records here: ``device`` (:func:`device_description`), ``compile_time_s``,
        ``run_time_s``, ``chunk_plan`` (seeds per chunk, padding, memory budget), and
        ``random_numbers`` if its scheme says more than :data:`RANDOM_SCHEME`.
        """
        meta = self.read_meta()
        meta.update(update)
        meta["updated"] = _now()
        write_json(self.path / META_FILE, meta)
        return meta

    # -- chunks ---------------------------------------------------------------------------
    def _program_dir(self, program_id: str) -> Path:
        if not isinstance(program_id, str) or not _PROGRAM_ID.fullmatch(program_id):
            raise ValueError(f"program_id must be a file-name-safe string ([A-Za-z0-9_.-]); got {program_id!r}.")
        if self.config is not None:
            ids = [p.id for p in self.config.programs()]
            if program_id not in ids:
                raise ValueError(f"program_id {program_id!r} is not a program of this sweep; known: {ids}.")
        return self.path / CHUNKS_DIR / program_id

    def chunk_path(self, program_id: str, chunk_id: int) -> Path:
        if isinstance(chunk_id, bool) or not isinstance(chunk_id, int | np.integer) or chunk_id < 0:
            raise ValueError(f"chunk_id must be an integer >= 0; got {chunk_id!r}.")
        return self._program_dir(program_id) / f"chunk-{int(chunk_id):06d}.npz"

    def _chunk_files(self, program_id: str) -> dict[int, Path]:
        folder = self._program_dir(program_id)
        if not folder.is_dir():
            return {}
        out = {}
        for path in folder.iterdir():
            match = _CHUNK_FILE.fullmatch(path.name)
            if match:
                out[int(match.group(1))] = path
        return dict(sorted(out.items()))

    def _chunk_seeds(self, program_id: str) -> dict[int, frozenset[int]]:
        if program_id not in self._seeds:
            seeds = {}
            for cid, path in self._chunk_files(program_id).items():
                with self._open_chunk(path) as data:
                    seeds[cid] = frozenset(int(s) for s in data[_SEEDS_KEY])
            self._seeds[program_id] = seeds
        return self._seeds[program_id]

    def _open_chunk(self, path: Path):
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise self._error(f"chunk file {path.relative_to(self.path)} is damaged ({err}); delete it "
                              "and rerun to recompute that chunk") from None

    def done_chunks(self, program_id: str) -> set[int]:
        """Ids of the chunks of ``program_id`` already written (temp files never count)."""
        return set(self._chunk_files(program_id))

    def done_seeds(self, program_id: str) -> set[int]:
        """Seed ids of ``program_id`` already written, whichever chunks hold them."""
        return set().union(*self._chunk_seeds(program_id).values())

    def missing_seeds(self, program_id: str) -> list[int]:
        """Seed ids of ``program_id`` still to compute, ascending (needs :meth:`prepare` first).

        Plan chunks over these rather than over chunk ids: a resumed run may pick another chunk size
        (``chunk = 0`` depends on the device), and seeds, unlike chunk ids, mean the same thing.
        """
        if self.config is None:
            raise self._error("missing_seeds needs the config: call prepare(config) first")
        done = self.done_seeds(program_id)
        return [s for s in range(self.config.sweep.seeds) if s not in done]

    def write_chunk(self, program_id: str, chunk_id: int | None, arrays: Mapping[str, Any],
                    seed_ids: Sequence[int], dims: Mapping[str, Sequence[str]] | None = None) -> Path:
        """Write one finished chunk atomically.

        Args:
          program_id: :attr:`jaxinit.config.Program.id`.
          chunk_id: an integer >= 0 naming one set of seeds within the program (rewriting it with the
            same seeds replaces it; with other seeds is refused), or ``None`` for the next free id,
            which is always safe when a resumed run chunks the missing seeds differently.
          arrays: statistic name -> array of shape ``(n_initializers, n_grid_points, len(seed_ids),
            *trailing)``; names are identifiers (``q``, ``grad_w_norm``, ``first_nonfinite_layer``).
            bfloat16/float16 values are stored as float32 (float16 stays).
          seed_ids: the seed ids (``s`` in ``fold_in(root, s)``) of the chunk, in array order; padding
            seeds must be cut off before writing.
          dims: names of the trailing dims per array; default ``()`` for 3-d and ``("layer",)`` for
            4-d arrays; required for anything else (e.g. ``{"jacobian_sv": ("singular_value",)}``).

        Raises:
          ValueError: shapes that disagree with the config or with earlier chunks of the program,
            seed ids already written by another chunk, bad names or dtypes. These are engine bugs,
            not user errors.
        """
        if chunk_id is None:
            chunk_id = max(self._chunk_seeds(program_id), default=-1) + 1
        path = self.chunk_path(program_id, chunk_id)
        seeds = np.asarray(seed_ids)
        if seeds.ndim != 1 or seeds.size == 0 or seeds.dtype.kind not in "iu":
            raise ValueError(f"seed_ids must be a non-empty 1-d sequence of ints; got {seed_ids!r}.")
        seeds = seeds.astype(np.int64)
        if len(set(seeds.tolist())) != seeds.size:
            raise ValueError(f"seed_ids must be distinct; got {seeds.tolist()}.")
        if self.config is not None and (seeds.min() < 0 or seeds.max() >= self.config.sweep.seeds):
            raise ValueError(f"seed_ids must lie in [0, {self.config.sweep.seeds}); got {seeds.tolist()}.")
        if not arrays:
            raise ValueError("arrays must hold at least one statistic.")
        expected = None
        if self.config is not None:
            expected = (len(self.config.sweep.initializers), len(self.config.grid_points()))
        dims = dict(dims or {})
        unknown = sorted(set(dims) - set(arrays))
        if unknown:
            raise ValueError(f"dims names arrays that are not given: {unknown}.")
        payload: dict[str, np.ndarray] = {}
        schema: dict[str, tuple] = {}
        for name, value in arrays.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ValueError(f"array names must be identifiers starting with a letter; got {name!r}.")
            arr = _storable(name, value)
            lead = expected or next(iter(payload.values()), arr).shape[:2]
            if arr.ndim < 3 or arr.shape[:2] != tuple(lead) or arr.shape[2] != seeds.size:
                raise ValueError(
                    f"array {name!r} has shape {arr.shape}; expected (n_initializers, n_grid_points, "
                    f"n_seeds_in_chunk, ...) = ({lead[0]}, {lead[1]}, {seeds.size}, ...)."
                )
            trailing_dims = tuple(dims[name]) if name in dims else _default_dims(name, arr.ndim)
            if len(trailing_dims) != arr.ndim - 3:
                raise ValueError(f"dims[{name!r}] = {trailing_dims} names {len(trailing_dims)} dims; the "
                                 f"array has {arr.ndim - 3} after (initializer, grid_point, seed).")
            for d in trailing_dims:
                if not isinstance(d, str) or not _NAME.fullmatch(d) or d in (*BASE_DIMS, "program"):
                    raise ValueError(f"dim names must be identifiers other than {(*BASE_DIMS, 'program')}; "
                                     f"got {d!r} for {name!r}.")
            payload[name] = arr
            schema[name] = (trailing_dims, arr.shape[3:], arr.dtype.kind)
        self._check_schema(program_id, schema)
        previous = self._chunk_seeds(program_id).get(int(chunk_id))
        if previous is not None and previous != set(seeds.tolist()):
            raise ValueError(f"chunk {int(chunk_id)} of program {program_id!r} already holds seeds "
                             f"{_ranges(previous)}; a chunk id names one set of seeds (pass chunk_id=None for "
                             "the next free id).")
        overlap = {cid: s & set(seeds.tolist()) for cid, s in self._chunk_seeds(program_id).items()
                   if cid != int(chunk_id)}
        overlap = {cid: s for cid, s in overlap.items() if s}
        if overlap:
            cid, clash = next(iter(overlap.items()))
            raise ValueError(f"seeds {_ranges(clash)} of program {program_id!r} are already written in chunk "
                             f"{cid}; plan chunks over folder.missing_seeds(program_id).")
        payload[_SEEDS_KEY] = seeds
        payload[_DIMS_KEY] = np.asarray(json.dumps({n: list(s[0]) for n, s in schema.items()}))
        payload[_PROGRAM_KEY] = np.asarray(program_id)
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            fsync_dir(path.parent.parent)
        atomic_write(path, lambda f: np.savez(f, **payload))
        self._chunk_seeds(program_id)[int(chunk_id)] = frozenset(seeds.tolist())
        self._schema[program_id] = schema
        return path

    def _check_schema(self, program_id: str, schema: dict[str, tuple]) -> None:
        known = self._schema.get(program_id)
        if known is None:
            files = self._chunk_files(program_id)
            if not files:
                return
            with self._open_chunk(next(iter(files.values()))) as data:
                known = _chunk_schema(data)
            self._schema[program_id] = known
        if set(known) != set(schema):
            raise ValueError(f"chunks of program {program_id!r} hold arrays {sorted(known)}; this one "
                             f"holds {sorted(schema)}.")
        for name, (d, shape, kind) in schema.items():
            kd, kshape, kkind = known[name]
            if (d, shape) != (kd, kshape) or (kind == "f") != (kkind == "f"):
                raise ValueError(f"array {name!r} of program {program_id!r}: trailing dims {d} shape {shape} "
                                 f"(kind {kind!r}) differ from earlier chunks: {kd} {kshape} (kind {kkind!r}).")

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


def _chunk_schema(data) -> dict[str, tuple]:
    declared = json.loads(str(data[_DIMS_KEY]))
    out = {}
    for name, trailing in declared.items():
        arr = data[name]
        out[name] = (tuple(trailing), arr.shape[3:], arr.dtype.kind)
    return out


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


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
    for name, trailing in dims.items():
        for axis, d in enumerate(trailing):
            size = combined[name].shape[4 + axis]
            if len(coords.get(d, [])) < size:
                coords[d] = list(range(size))
    return coords


# ---------------------------------------------------------------------------------------------
# Statistics across seeds (NaN/inf-aware, never raising on overflow)
# ---------------------------------------------------------------------------------------------
