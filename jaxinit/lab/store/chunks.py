"""Chunks of a results folder: one atomic ``.npz`` per finished chunk of seeds, named by the seeds it
holds and written bit for bit the same by any writer; their seed ids and schema, what is done, what
is missing, and the seeds a writer has claimed."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxinit._io import fsync_dir
from jaxinit.lab.store.layout import (
    _CHUNK_FILE,
    _DIMS_KEY,
    _NAME,
    _PROGRAM_ID,
    _PROGRAM_KEY,
    _SEEDS_FILE,
    _SEEDS_KEY,
    BASE_DIMS,
    CHUNKS_DIR,
    _ranges,
)
from jaxinit.lab.store.writers import live_entries, owned_write


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


def chunk_name(seeds: Sequence[int]) -> str:
    """The file name of the chunk holding exactly ``seeds``: ``seeds-000004-000007.npz`` for a run of
    seeds, ``seeds-000002-000009-<8 hex digits of the list's sha256>.npz`` otherwise."""
    ids = sorted(int(s) for s in seeds)
    first, last = ids[0], ids[-1]
    if last - first + 1 == len(ids):
        return f"seeds-{first:06d}-{last:06d}.npz"
    digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:8]
    return f"seeds-{first:06d}-{last:06d}-{digest}.npz"


def _save_npz(f, payload: Mapping[str, np.ndarray]) -> None:
    """``np.savez``'s format with fixed zip timestamps: the same arrays give the same bytes."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, value in payload.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asarray(value), allow_pickle=False)


class _Chunks:
    """:class:`~jaxinit.lab.store.ResultsFolder`'s chunk writing, reading and claiming (a mixin)."""

    # -- chunks ---------------------------------------------------------------------------
    def _program_dir(self, program_id: str) -> Path:
        if not isinstance(program_id, str) or not _PROGRAM_ID.fullmatch(program_id):
            raise ValueError(f"program_id must be a file-name-safe string ([A-Za-z0-9_.-]); got {program_id!r}.")
        if self.config is not None:
            ids = [p.id for p in self.config.programs()]
            if program_id not in ids:
                raise ValueError(f"program_id {program_id!r} is not a program of this sweep; known: {ids}.")
        return self.path / CHUNKS_DIR / program_id

    def chunk_path(self, program_id: str, seed_ids: Sequence[int]) -> Path:
        """The file of the chunk of ``program_id`` holding exactly ``seed_ids`` (:func:`chunk_name`)."""
        return self._program_dir(program_id) / chunk_name(seed_ids)

    def _chunk_files(self, program_id: str) -> dict[str, Path]:
        """Chunk files of ``program_id`` on disk now, by name (without ``.npz``), sorted."""
        folder = self._program_dir(program_id)
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        return {n[:-4]: folder / n for n in sorted(names) if _SEEDS_FILE.fullmatch(n) or _CHUNK_FILE.fullmatch(n)}

    def _chunk_seeds(self, program_id: str) -> dict[str, frozenset[int]]:
        """Seed ids of every chunk file of ``program_id`` on disk now (a name always holds the same
        seeds: a file is read once per object)."""
        known = self._seeds.setdefault(program_id, {})
        out = {}
        for name, path in self._chunk_files(program_id).items():
            if name not in known:
                match = _SEEDS_FILE.fullmatch(path.name)
                if match and match.group(3) is None:
                    known[name] = frozenset(range(int(match.group(1)), int(match.group(2)) + 1))
                else:
                    try:
                        with self._open_chunk(path) as data:
                            known[name] = frozenset(int(s) for s in data[_SEEDS_KEY])
                    except FileNotFoundError:  # removed meanwhile (another writer's fresh start)
                        continue
            out[name] = known[name]
        return out

    def _open_chunk(self, path: Path):
        try:
            return np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise self._error(f"chunk file {path.relative_to(self.path)} is damaged ({err}); delete it "
                              "and rerun to recompute that chunk") from None

    def done_chunks(self, program_id: str) -> set[str]:
        """Names (without ``.npz``) of the chunk files of ``program_id`` written so far, by any writer
        (temp files never count)."""
        return set(self._chunk_files(program_id))

    def done_seeds(self, program_id: str) -> set[int]:
        """Seed ids of ``program_id`` already written, whichever chunks (and writers) hold them."""
        return set().union(*self._chunk_seeds(program_id).values())

    def missing_seeds(self, program_id: str) -> list[int]:
        """Seed ids of ``program_id`` still to compute, ascending (needs :meth:`prepare` first).

        Plan chunks over these rather than over chunk files: a resumed run may pick another chunk
        size (``chunk = 0`` depends on the device), and seeds mean the same thing in any chunk.
        Seeds another live writer has claimed count as missing until written: take them with
        :meth:`claim`.
        """
        if self.config is None:
            raise self._error("missing_seeds needs the config: call prepare(config) first")
        done = self.done_seeds(program_id)
        return [s for s in range(self.config.sweep.seeds) if s not in done]

    # -- claims: several writers share the missing seeds ----------------------------------
    def _claimed_by_others(self, program_id: str) -> set[int]:
        mine = self._writer.token if self._writer is not None else None
        out: set[int] = set()
        for entry in live_entries(self.path):
            if entry.get("token") != mine:
                out.update(int(s) for s in (entry.get("claims") or {}).get(program_id, []))
        return out

    def claim(self, program_id: str, seed_ids: Sequence[int]) -> list[int]:
        """Take the seeds of ``seed_ids`` that no writer has written and no other live writer has
        claimed; returns them (ascending; maybe none). Compute exactly these, then
        :meth:`write_chunk` them: writing releases the claim, and so does a writer's end
        (:meth:`close`, its process's exit or death). Under the folder's lock: two writers never
        take the same seed while both are live.
        """
        self._program_dir(program_id)
        wanted = sorted({int(s) for s in seed_ids})
        with self._locked():
            writer = self._register()
            taken = self.done_seeds(program_id) | self._claimed_by_others(program_id)
            free = [s for s in wanted if s not in taken]
            if free:
                writer.claims[program_id] = sorted(set(writer.claims.get(program_id, [])) | set(free))
                writer.save()
        return free

    def claimed_elsewhere(self, program_id: str) -> list[int]:
        """Seeds of ``program_id`` that other live writers have claimed and not written yet: wait for
        them (or for their writers' end, which frees them) before assembling."""
        done = self.done_seeds(program_id)
        return sorted(s for s in self._claimed_by_others(program_id) if s not in done)

    def _release(self, program_id: str, seeds: set[int]) -> None:
        writer = self._writer
        if writer is not None and seeds & set(writer.claims.get(program_id, [])):
            left = sorted(set(writer.claims[program_id]) - seeds)
            if left:
                writer.claims[program_id] = left
            else:
                del writer.claims[program_id]
            writer.save()

    def write_chunk(self, program_id: str, chunk_id: int | None, arrays: Mapping[str, Any],
                    seed_ids: Sequence[int], dims: Mapping[str, Sequence[str]] | None = None) -> Path:
        """Write one finished chunk atomically, as ``chunks/<program_id>/`` :func:`chunk_name` ``(seed_ids)``.

        The file is named by the seeds it holds and its bytes are a function of the arrays alone
        (seeds sorted, fixed zip timestamps): two writers of the same chunk write the same file,
        and a rename never replaces a different chunk.

        Args:
          program_id: :attr:`jaxinit.lab.config.Program.id`.
          chunk_id: ``None`` or an integer >= 0; not used (a chunk is named by its seeds), accepted
            for callers written before.
          arrays: statistic name -> array of shape ``(n_initializers, n_grid_points, len(seed_ids),
            *trailing)``; names are identifiers (``q``, ``grad_w_norm``, ``first_nonfinite_layer``).
            bfloat16/float16 values are stored as float32 (float16 stays).
          seed_ids: the seed ids (``s`` in ``fold_in(root, s)``) of the chunk, in array order; padding
            seeds must be cut off before writing.
          dims: names of the trailing dims per array; default ``()`` for 3-d and ``("layer",)`` for
            4-d arrays; required for anything else (e.g. ``{"jacobian_sv": ("singular_value",)}``).

        Raises:
          ValueError: shapes that disagree with the config or with earlier chunks of the program,
            seeds already written in another chunk that this writer knew of (found at
            :meth:`prepare`, or written by it), bad names or dtypes. These are engine bugs, not
            user errors. (Seeds another writer wrote meanwhile are accepted: a chunk's numbers
            do not depend on the writer.)
        """
        if chunk_id is not None and (isinstance(chunk_id, bool) or not isinstance(chunk_id, int | np.integer)
                                     or chunk_id < 0):
            raise ValueError(f"chunk_id must be None or an integer >= 0; got {chunk_id!r}.")
        folder = self._program_dir(program_id)
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
        order = np.argsort(seeds, kind="stable")
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
            payload[name] = np.ascontiguousarray(np.take(arr, order, axis=2))
            schema[name] = (trailing_dims, arr.shape[3:], arr.dtype.kind)
        self._check_schema(program_id, schema)
        seeds = seeds[order]
        seed_set = frozenset(seeds.tolist())
        path = folder / chunk_name(seeds.tolist())
        name = path.name[:-4]
        known = self._known_chunks(program_id)
        on_disk = self._chunk_seeds(program_id)
        clash = {other: on_disk[other] & seed_set for other in known if other != name and other in on_disk}
        clash = {other: s for other, s in clash.items() if s}
        if clash:
            other, both = next(iter(clash.items()))
            raise ValueError(f"seeds {_ranges(both)} of program {program_id!r} are already written in chunk "
                             f"{other}; plan chunks over folder.missing_seeds(program_id).")
        payload[_SEEDS_KEY] = seeds
        payload[_DIMS_KEY] = np.asarray(json.dumps({n: list(s[0]) for n, s in schema.items()}))
        payload[_PROGRAM_KEY] = np.asarray(program_id)
        writer = self._register()
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            fsync_dir(folder.parent)
        owned_write(path, lambda f: _save_npz(f, payload), writer.token)
        self._seeds.setdefault(program_id, {})[name] = seed_set
        known.add(name)
        self._schema[program_id] = schema
        self._release(program_id, set(seed_set))
        return path

    def _known_chunks(self, program_id: str) -> set[str]:
        """Chunks this writer knows of: those on disk when it prepared (or first wrote), and its own."""
        if program_id not in self._known:
            self._known[program_id] = set(self._chunk_files(program_id))
        return self._known[program_id]

    def _check_schema(self, program_id: str, schema: dict[str, tuple]) -> None:
        known = self._schema.get(program_id)
        if known is None:
            for path in self._chunk_files(program_id).values():
                try:
                    with self._open_chunk(path) as data:
                        known = _chunk_schema(data)
                    break
                except FileNotFoundError:
                    continue
            if known is None:
                return
            self._schema[program_id] = known
        if set(known) != set(schema):
            raise ValueError(f"chunks of program {program_id!r} hold arrays {sorted(known)}; this one "
                             f"holds {sorted(schema)}.")
        for name, (d, shape, kind) in schema.items():
            kd, kshape, kkind = known[name]
            if (d, shape) != (kd, kshape) or (kind == "f") != (kkind == "f"):
                raise ValueError(f"array {name!r} of program {program_id!r}: trailing dims {d} shape {shape} "
                                 f"(kind {kind!r}) differ from earlier chunks: {kd} {kshape} (kind {kkind!r}).")
