"""Preparing a results folder and its ``meta.json``: create or reopen (refusing another config's
folder), versions and device, the meta record."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

from jaxinit._io import atomic_write, write_json
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
