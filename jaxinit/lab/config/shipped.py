"""The configs shipped with jaxinit (package data, ``jaxinit/configs/*.toml``; ``configs/`` in a checkout).

A shipped config runs by name (``jaxinit sweep quickstart``, :func:`jaxinit.lab.config.load`), is
listed with the first line of its own description (:func:`shipped_configs`) and is copied out to be
edited (:func:`copy_config`).
"""

from __future__ import annotations

import difflib
import importlib.resources
import shutil
from pathlib import Path

from jaxinit.errors import ConfigError

__all__ = ["copy_config", "resolve", "shipped_configs", "shipped_names", "shipped_path"]


def _folder() -> Path:
    # A Traversable; for an installed package (wheel or editable) a real folder on disk.
    return Path(str(importlib.resources.files("jaxinit") / "configs"))


def shipped_names() -> tuple[str, ...]:
    """The shipped configs' names (file stems), sorted."""
    return tuple(sorted(p.stem for p in _folder().glob("*.toml")))


def shipped_configs() -> dict[str, str]:
    """``{name: summary}``: each shipped config with its summary, the first comment line of the file
    without its leading ``"<name>.toml: "``."""
    out = {}
    for name in shipped_names():
        first = shipped_path(name).read_text(encoding="utf-8").partition("\n")[0]
        out[name] = first.lstrip("# ").removeprefix(f"{name}.toml:").strip()
    return out


def _unknown(name: str, problem: str) -> ConfigError:
    names = shipped_names()
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return ConfigError(name, "", f"{problem}{hint} shipped configs: {', '.join(names)}")


def shipped_path(name: str) -> Path:
    """The file of the shipped config ``name`` (``"quickstart"`` or ``"quickstart.toml"``).

    Raises:
      ConfigError: no shipped config has that name (the message lists them, with a did-you-mean).
    """
    stem = name.removesuffix(".toml")
    if stem in shipped_names():
        return _folder() / f"{stem}.toml"
    raise _unknown(name, "no shipped config of that name")


def resolve(path_or_name: str | Path) -> Path:
    """``path_or_name`` as a file to read: the path itself if anything exists there or it names a
    folder (``configs/x.toml``, ``./x``), else the shipped config of that name.

    A bare name that is neither an existing file nor a shipped config raises :class:`ConfigError`
    listing the shipped configs; a missing path with folders in it is returned as given, for the
    reader to report.
    """
    path = Path(path_or_name)
    if path.exists() or len(path.parts) != 1:
        return path
    stem = path.name.removesuffix(".toml")
    if stem in shipped_names():
        return _folder() / f"{stem}.toml"
    raise _unknown(str(path_or_name), "no config file of that name here, and no shipped config of that name")


def copy_config(name: str, folder: str | Path) -> Path:
    """Copy the shipped config ``name`` into ``folder`` (created if needed) as ``<name>.toml``, to edit.

    Returns:
      The new file.

    Raises:
      ConfigError: an unknown name, or ``<folder>/<name>.toml`` exists already (it is never
        overwritten: remove it first or copy into another folder).
    """
    source = shipped_path(name)
    folder = Path(folder)
    target = folder / source.name
    if target.exists() or target.is_symlink():
        raise ConfigError(str(target), "", "already exists; remove it first or copy into another folder")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(str(folder), "", "is a file, not a folder to copy the config into")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
