"""The results folder, written: :class:`ResultsFolder` composes preparation and meta (``meta``), chunks
(``chunks``) and assembly (``assemble``). The folder's layout is described in :mod:`jaxinit.lab.store`.
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
