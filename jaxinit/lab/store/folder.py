"""The results folder, written: :class:`ResultsFolder` composes preparation and meta (``meta``), chunks
(``chunks``) and assembly (``assemble``), as one writer among any number (``writers``). The
folder's layout is described in :mod:`jaxinit.lab.store`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from jaxinit.errors import ResultsError
from jaxinit.lab.config import SweepConfig
from jaxinit.lab.store.assemble import _Assembling
from jaxinit.lab.store.chunks import _Chunks
from jaxinit.lab.store.meta import _Preparing, device_description, package_versions
from jaxinit.lab.store.reader import Results
from jaxinit.lab.store.writers import Writer, folder_lock, other_writers

__all__ = ["ResultsFolder", "device_description", "package_versions"]


class ResultsFolder(_Preparing, _Chunks, _Assembling):
    """A sweep's output folder, written chunk by chunk, resumable, assembled at the end.

    Typical use by the engine::

        with ResultsFolder(config.output.dir) as folder:  # close(): leaves the writers' registry
            folder.prepare(config, fresh=args.fresh)       # refuses another config's folder
            for program in config.programs():
                todo = folder.missing_seeds(program.id)    # [] when resuming a finished program
                for seeds in plan(todo):
                    seeds = folder.claim(program.id, seeds)  # what no other writer has done or taken
                    if seeds:
                        folder.write_chunk(program.id, None, measure(program, seeds), seeds)
            # other writers' claimed seeds: folder.claimed_elsewhere(program.id) (wait, then resume)
            folder.write_meta({"device": device_description(), "run_time_s": ...})
            results = folder.assemble()

    Any number of processes, on any hosts sharing the folder, may do this at once: see
    :mod:`jaxinit.lab.store.writers`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config: SweepConfig | None = None
        self._seeds: dict[str, dict[str, frozenset[int]]] = {}   # program -> chunk name -> seed ids
        self._schema: dict[str, dict[str, tuple]] = {}            # program -> name -> (dims, shape, kind)
        self._known: dict[str, set[str]] = {}                     # program -> chunks known at prepare, own
        self._writer: Writer | None = None
        self._rlock = threading.RLock()
        self._depth = 0

    def __repr__(self) -> str:
        return f"ResultsFolder({str(self.path)!r})"

    def __enter__(self) -> ResultsFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The folder's lock (:func:`~jaxinit.lab.store.writers.folder_lock`), re-entrant per object."""
        with self._rlock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with folder_lock(self.path):
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0

    def _register(self) -> Writer:
        """This object's writer entry in the folder's registry (made on first use)."""
        if self._writer is None:
            writer = Writer(self.path)
            with self._locked():
                writer.save()
            self._writer = writer
            weakref.finalize(self, writer.close)  # a folder object collected unclosed leaves too
        return self._writer

    def close(self) -> None:
        """Leave the folder's registry of writers (dropping any unfinished claims); idempotent. A
        later write registers again. The process's exit does it too."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def writers(self) -> list[dict]:
        """The live writers of the folder in other processes: ``{"pid", "host", "since", "claims", ...}``."""
        return other_writers(self.path)

    def assemble(self, config: SweepConfig | None = None, allow_partial: bool = False) -> Results:
        self._register()  # its temp files are then younger than a live writer: no one removes them
        return super().assemble(config, allow_partial)

    assemble.__doc__ = _Assembling.assemble.__doc__

    def _error(self, problem: str) -> ResultsError:
        return ResultsError(self.path, problem)
