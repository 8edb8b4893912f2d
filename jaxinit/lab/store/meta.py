"""Preparing a results folder and its ``meta.json``: create or reopen (refusing another config's
folder, and a fresh start while another writer holds it), versions and device, the meta record
(updated under the folder's lock)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from jaxinit._io import json_default
from jaxinit._prng import RANDOM_SCHEME
from jaxinit.lab.config import SweepConfig
from jaxinit.lab.store.layout import (
    _OWNED,
    _VERSIONED,
    CHUNKS_DIR,
    CONFIG_FILE,
    FORMAT,
    META_FILE,
    _now,
    read_meta,
)
from jaxinit.lab.store.writers import LOCK_FILE, WRITERS_DIR, describe, owned_write, remove_orphans


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


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}



class _Preparing:
    """:class:`~jaxinit.lab.store.ResultsFolder`'s preparation and meta (a mixin: needs ``path``, ``_error``)."""

    # -- preparing ----------------------------------------------------------------------
    def prepare(self, config: SweepConfig, config_text: str | None = None, fresh: bool = False) -> bool:
        """Create the folder, or reopen one made by the same config; returns whether it resumes.

        Writes ``config.toml`` (``config_text``, else ``config.text``, else the resolved config as
        TOML) and the first ``meta.json``. A folder holding the results of a different config (by
        :meth:`~jaxinit.lab.config.SweepConfig.config_hash`) is refused unless ``fresh``, which clears
        what this module wrote there (and ``figures/``) and leaves any other file alone.

        Several writers may share a folder (:mod:`~jaxinit.lab.store.writers`): this one registers
        as a writer; the same config prepared by two processes at once resumes in the second (they
        share the missing seeds through :meth:`claim`); ``fresh`` is refused while another live
        writer holds the folder. Runs under the folder's lock.

        Raises:
          ResultsError: the path is a file, lies under a file, cannot be created or written,
            holds another config's results (without ``fresh``), holds files that are not
            jaxinit results, or (``fresh``) another live writer holds it.
        """
        self._ensure_writable_dir()
        if not (self.path / META_FILE).exists() and not (self.path / LOCK_FILE).exists():
            self._refuse_strangers()  # before the lock file is made: a stranger's folder is left as it was
        registered = self._writer is not None
        try:
            with self._locked():
                return self._prepare(config, config_text, fresh)
        except BaseException:
            if not registered:  # a writer that never prepared holds nothing
                self.close()
            raise

    def _refuse_strangers(self) -> None:
        strangers = sorted(p.name for p in self.path.iterdir() if not p.name.startswith("."))
        if strangers:
            shown = ", ".join(strangers[:5]) + (", ..." if len(strangers) > 5 else "")
            raise self._error(
                f"holds files that are not jaxinit results (no {META_FILE}): {shown}; "
                "choose an empty or new folder (output.dir)"
            )

    def _prepare(self, config: SweepConfig, config_text: str | None, fresh: bool) -> bool:
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
            self._refuse_strangers()
        resumed = False
        if old is not None:
            if fresh or old.get("config_hash") != new_hash:
                if not fresh:
                    raise self._error(
                        f"holds results of a different config (hash {old.get('config_hash')} != "
                        f"{new_hash}; {self._describe_change(old.get('config'), config)}). "
                        "Overwrite them with fresh=True, or write elsewhere (another output.dir)"
                    )
                self._refuse_if_shared("start over (fresh=True)")
                self._clear()
                old = None
            else:
                resumed = True
        self.config = config
        self._seeds.clear()
        self._schema.clear()
        writer = self._register()
        (self.path / CHUNKS_DIR).mkdir(exist_ok=True)
        self._remove_stale_temp_files()
        self._known = {p.id: set(self._chunk_files(p.id)) for p in config.programs()}
        text = config_text if config_text is not None else config.text
        if text is None:
            text = f"# resolved config ({config.source})\n" + config.to_toml()
        owned_write(self.path / CONFIG_FILE, lambda f: f.write(text), writer.token, binary=False)
        if resumed and old is not None:
            meta = old
            meta["status"] = "running"
            meta.setdefault("resumed", []).append({"at": _now(), "versions": package_versions()})
        else:
            meta = self._initial_meta(config, new_hash)
        self._write_meta_file(meta)
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

    def _refuse_if_shared(self, action: str) -> None:
        others = self._register().others()
        if others:
            more = f" and {len(others) - 1} more" if len(others) > 1 else ""
            raise self._error(f"is in use by another writer: {describe(others[0])}{more}; cannot {action} while it "
                              "writes. Wait for it to finish (or stop it), or write elsewhere (another output.dir)")

    def _remove_stale_temp_files(self) -> None:
        """Temp files left by interrupted writes of dead writers (never read; removed on the next
        prepare), never a live writer's; the registry entries of dead writers."""
        chunks = self.path / CHUNKS_DIR
        dirs = [self.path, self.path / WRITERS_DIR]
        with contextlib.suppress(OSError):
            dirs += [chunks / d for d in sorted(os.listdir(chunks)) if (chunks / d).is_dir()]
        remove_orphans(self.path, self._register().token, dirs)

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

    def write_meta(self, update: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]]) -> dict[str, Any]:
        """Merge ``update`` into ``meta.json`` (top-level keys replaced), atomically; returns it all.

        ``update`` may be a function of the current meta returning the keys to replace: it runs
        under the folder's lock, so a writer that appends to a list another writer also appends to
        (``sessions``) loses nothing. The engine records here: ``device``
        (:func:`device_description`), ``compile_time_s``, ``run_time_s``, ``chunk_plan`` (seeds
        per chunk, padding, memory budget), and ``random_numbers`` if its scheme says more than
        :data:`RANDOM_SCHEME`.
        """
        with self._locked():
            meta = self.read_meta()
            meta.update(update(meta) if callable(update) else update)
            meta["updated"] = _now()
            self._write_meta_file(meta)
        return meta

    def _write_meta_file(self, meta: Mapping[str, Any]) -> None:
        text = json.dumps(meta, indent=2, sort_keys=False, default=json_default, allow_nan=True)
        owned_write(self.path / META_FILE, lambda f: f.write(text + "\n"), self._register().token, binary=False)
