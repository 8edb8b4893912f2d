"""Atomic file writing: the one way this package writes a file (results folders and figures).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], binary: bool = True, *,
                 temp_name: Callable[[Path], str] | None = None) -> None:
    """Write ``path`` through a temp file in the same folder, then ``os.replace`` it into place.

    The one way this package writes a file (results and figures). A reader sees the old file or the
    complete new one, never a part; a crash leaves at most a hidden ``.<name>.<random>.tmp`` that
    nothing reads (:meth:`ResultsFolder.prepare` removes them). ``write(f)`` gets the open file
    (bytes, or UTF-8 text without newline translation when ``binary`` is false). ``temp_name(path)``
    names the temp file in the same folder (drawn again while the name is taken); by default it is
    ``.<name>.<8 hex digits>.tmp`` (:func:`jaxinit.lab.store.writers.owned_write` names its owner).

    The file gets the mode a plain ``open(path, "w")`` would give it: ``0o666`` less the process
    umask for a new file (the temp file is created with that mode, so the kernel applies the umask),
    the old file's mode when it replaces one. Its data is fsynced before the rename and the
    containing folder after it, so a finished file survives a power loss (POSIX: a rename is durable
    only once its directory is synced; where a directory cannot be opened, as on Windows, that
    step is skipped).
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.parent / (temp_name(path) if temp_name is not None else f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(fd if os.chmod in os.supports_fd else tmp, stat.S_IMODE(os.stat(path).st_mode))
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8",
                                                                          "newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder, so that the names created or renamed in it survive a power loss (POSIX).

    A no-op where folders cannot be opened (Windows) or synced (some network file systems).
    """
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)



def write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=False, default=json_default, allow_nan=True)
    atomic_write(path, lambda f: f.write(text + "\n"), binary=False)


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)
