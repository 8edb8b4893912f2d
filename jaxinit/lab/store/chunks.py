"""Chunks of a results folder: one atomic ``.npz`` per finished chunk of seeds, their seed ids and
schema, what is done and what is missing."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxinit._io import atomic_write, fsync_dir
from jaxinit.lab.store.layout import (
    _CHUNK_FILE,
    _DIMS_KEY,
    _NAME,
    _PROGRAM_ID,
    _PROGRAM_KEY,
    _SEEDS_KEY,
    BASE_DIMS,
    CHUNKS_DIR,
    _ranges,
)


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


def _chunk_schema(data) -> dict[str, tuple]:
    declared = json.loads(str(data[_DIMS_KEY]))
    out = {}
    for name, trailing in declared.items():
        arr = data[name]
        out[name] = (tuple(trailing), arr.shape[3:], arr.dtype.kind)
    return out


class _Chunks:
    """:class:`~jaxinit.lab.store.ResultsFolder`'s chunk writing and reading (a mixin)."""

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
          program_id: :attr:`jaxinit.lab.config.Program.id`.
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
