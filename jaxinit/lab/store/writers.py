"""Several writers on one results folder: who writes (a registry of live writers), the folder's
lock, files written through temp files their writer owns, and what a dead writer left behind.

* A *writer* is one :class:`~jaxinit.lab.store.ResultsFolder` object that prepares, claims seeds,
  writes chunks or assembles. It registers in ``.writers/<token>.json`` (host, pid, start, the
  seeds it has claimed) before it writes anything, and removes its entry when closed (or at exit).
  Its token names it everywhere: ``<host>-<pid>-<random>``.
* Live or dead: a writer on this host is live while its process runs (pid and process start time;
  a process never counts as another writer of itself); a writer on another host is live while its
  entry's heartbeat (the file's mtime, refreshed every :data:`HEARTBEAT_S` by a daemon thread) is
  younger than :data:`STALE_S`. Misjudging a live remote writer as dead costs only work done
  twice: chunk files are named by the seeds they hold and written bit for bit the same.
* Temp files are ``.<name>.w-<token>.<random>.tmp``: a writer removes its own and those of dead
  writers, never a live writer's. Temp files without an owner (``jaxinit._io.atomic_write``'s
  ``.<name>.<random>.tmp``) are removed only when older than every live writer
  (less :data:`OWNERLESS_GRACE_S` for clocks that disagree across hosts).
* The lock (``fcntl.flock`` on ``.lock``) serializes what reads and rewrites shared state: the
  meta's read-modify-write, claims, preparing and clearing the folder, the registry.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jaxinit._io import atomic_write

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: one writer per folder, unlocked
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
WRITERS_DIR = ".writers"
HEARTBEAT_S = 30.0
STALE_S = 600.0
OWNERLESS_GRACE_S = 120.0
# .<name>.w-<token>.<random>.tmp (owned) and .<name>.<random>.tmp (jaxinit._io.atomic_write's)
_OWNED_TEMP = re.compile(r"\..+\.w-(?P<token>[A-Za-z0-9-]+)\.[0-9a-f]+\.tmp")
_TEMP = re.compile(r"\..+\.tmp")

_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"
_LIVE_TOKENS: set[str] = set()          # tokens registered by this process and not yet closed
_BEATS: dict[str, Path] = {}            # token -> registry entry, refreshed by the heartbeat thread
_LIVE_LOCK = threading.Lock()
_BEAT_THREAD: list[threading.Thread] = []


def _heartbeat() -> None:
    """Refresh the registry entries of this process's live writers every HEARTBEAT_S (one thread)."""
    while True:
        time.sleep(HEARTBEAT_S)
        with _LIVE_LOCK:
            paths = list(_BEATS.values())
        for path in paths:
            with contextlib.suppress(OSError):
                os.utime(path)


def host() -> str:
    """This host's name as writers record it (letters and digits)."""
    return _HOST


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[19]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


def is_alive(entry: dict[str, Any], mtime: float, now: float | None = None) -> bool:
    """Whether the writer of a registry ``entry`` (last heartbeat at ``mtime``) is live."""
    if entry.get("host") != _HOST:
        return (now if now is not None else time.time()) - mtime < STALE_S
    pid = int(entry.get("pid", -1))
    if pid == os.getpid():
        with _LIVE_LOCK:
            return entry.get("token") in _LIVE_TOKENS
    if pid <= 0 or not _pid_alive(pid):
        return False
    recorded, current = entry.get("proc_start"), _proc_start(pid)
    return recorded is None or current is None or recorded == current


def describe(entry: dict[str, Any]) -> str:
    """``pid 123 on host node7 (since 2026-01-02T03:04:05+00:00)``."""
    return f"pid {entry.get('pid')} on host {entry.get('host')} (since {entry.get('since')})"


def owned_write(path: Path, write: Callable[[Any], None], token: str, binary: bool = True) -> None:
    """Write ``path`` through a temp file owned by ``token``, then ``os.replace`` it into place.

    By :func:`jaxinit._io.atomic_write` (the mode a plain ``open(path, "w")`` gives, the data
    fsynced before the rename and the folder after it), with the writer's token in the temp name,
    so that no other writer removes it while it is written. Should another writer have removed it
    all the same (it judged this writer dead: a remote heartbeat that came late), it is written again.
    """
    path = Path(path)
    for attempt in range(3):
        try:
            _owned_write_once(path, write, token, binary)
            break
        except _TempVanished:
            if attempt == 2:
                raise FileNotFoundError(f"{path}: the temp file was removed three times while written") from None


class _TempVanished(Exception):
    pass


def _owned_write_once(path: Path, write: Callable[[Any], None], token: str, binary: bool) -> None:
    try:
        atomic_write(path, write, binary, temp_name=lambda p: f".{p.name}.w-{token}.{secrets.token_hex(3)}.tmp")
    except FileNotFoundError as err:
        # only the rename names two paths: the temp file went missing while the folder stands
        if err.filename2 is not None and path.parent.is_dir():
            raise _TempVanished from None
        raise


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's exclusive lock (``fcntl.flock`` on ``.lock``; blocks until it is free).

    A lock taken on a lock file that was removed meanwhile (the folder discarded) is retaken on
    the current one. Where ``fcntl`` is missing (Windows) it does nothing.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = Path(folder) / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def read_entries(folder: Path) -> list[tuple[dict[str, Any], float, Path]]:
    """Every registry entry ``(entry, mtime, path)`` of the folder, live or not."""
    out = []
    base = Path(folder) / WRITERS_DIR
    try:
        names = sorted(os.listdir(base))
    except OSError:  # no registry (or no folder) yet
        return []
    for name in names:
        if name.startswith(".") or not name.endswith(".json"):
            continue
        path = base / name
        try:
            mtime = path.stat().st_mtime
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict):
            out.append((entry, mtime, path))
    return out


def live_entries(folder: Path) -> list[dict[str, Any]]:
    now = time.time()
    return [e for e, mtime, _ in read_entries(folder) if is_alive(e, mtime, now)]


class Writer:
    """This process's registration as a writer of one folder (see the module docstring)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.pid = os.getpid()
        self.token = f"{_HOST}-{self.pid}-{secrets.token_hex(4)}"
        self.started = time.time()
        self.claims: dict[str, list[int]] = {}
        with _LIVE_LOCK:
            _LIVE_TOKENS.add(self.token)
        atexit.register(self.close)

    @property
    def path(self) -> Path:
        return self.folder / WRITERS_DIR / f"{self.token}.json"

    def entry(self) -> dict[str, Any]:
        return {"token": self.token, "host": _HOST, "pid": self.pid, "proc_start": _proc_start(self.pid),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
                "started": self.started, "claims": self.claims}

    def save(self) -> None:
        """Write (or rewrite) the registry entry; its heartbeat runs until :meth:`close`."""
        self.path.parent.mkdir(exist_ok=True)
        text = json.dumps(self.entry(), sort_keys=True)
        owned_write(self.path, lambda f: f.write(text), self.token, binary=False)
        with _LIVE_LOCK:
            if self.token in _LIVE_TOKENS:
                _BEATS[self.token] = self.path
            if not _BEAT_THREAD:
                _BEAT_THREAD.append(threading.Thread(target=_heartbeat, name="jaxinit-writers", daemon=True))
                _BEAT_THREAD[0].start()

    def close(self) -> None:
        """Leave the registry (the claims go with the entry); idempotent."""
        with _LIVE_LOCK:
            _LIVE_TOKENS.discard(self.token)
            _BEATS.pop(self.token, None)
        with contextlib.suppress(OSError):
            self.path.unlink()
        atexit.unregister(self.close)

    def others(self) -> list[dict[str, Any]]:
        """Live writers of the folder in other processes."""
        return other_writers(self.folder)


def other_writers(folder: Path) -> list[dict[str, Any]]:
    """Live writers of ``folder`` in processes other than this one."""
    return [e for e in live_entries(folder) if not (e.get("host") == _HOST and int(e.get("pid", -1)) == os.getpid())]


def remove_orphans(folder: Path, token: str, dirs: list[Path]) -> None:
    """Remove temp files under ``dirs`` left by dead writers, and the registry entries of dead
    writers; never a live writer's (see the module docstring). Call it holding the lock."""
    temps = []
    for d in dirs:
        with contextlib.suppress(OSError):
            temps += [d / n for n in os.listdir(d) if _TEMP.fullmatch(n)]
    # Temp files are listed before the registry is read: a temp file that exists now was made by
    # a writer registered before now, so its owner is found if it is live.
    now = time.time()
    entries = read_entries(folder)
    live = {e.get("token"): e for e, mtime, _ in entries if is_alive(e, mtime, now)}
    live[token] = {"started": now}
    oldest = min(float(e.get("started", now)) for e in live.values())
    for tmp in temps:
        owned = _OWNED_TEMP.fullmatch(tmp.name)
        if owned:
            stale = owned.group("token") not in live
        else:
            try:
                stale = tmp.stat().st_mtime < oldest - OWNERLESS_GRACE_S
            except OSError:
                continue
        if stale:
            with contextlib.suppress(OSError):
                tmp.unlink()
    for entry, _, path in entries:
        if entry.get("token") not in live:
            with contextlib.suppress(OSError):
                path.unlink()
