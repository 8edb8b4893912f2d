"""Reading a sweep config: a TOML file, a shipped config's name, or a dict -> a frozen, validated
:class:`~jaxinit.lab.config.SweepConfig`; overrides (``"network.depth=4"``) applied first; and writing one
back as TOML (:func:`to_toml`).

Every problem becomes a :class:`~jaxinit.errors.ConfigError` naming the file, the key path and the bad value.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jaxinit.errors import ConfigError
from jaxinit.lab.config.schema import OVERRIDE_ALIASES, SweepConfig
from jaxinit.lab.config.shipped import resolve
from jaxinit.lab.config.validate import Reader, type_name


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> SweepConfig:
    """Read a TOML sweep config, apply ``overrides``, validate everything, freeze.

    Args:
      path: the ``.toml`` file, or the name of a shipped config (``"quickstart"``, see
        :func:`~jaxinit.lab.config.shipped_names`) when no such file exists.
      overrides: ``{"sweep.seeds": 4, "output.dir": "out", ...}``: dotted key paths (or the aliases
        ``seeds``, ``base_seed``, ``chunk``, ``out``/``dir``) set before validation, in order (a later
        one for the same key wins); ``None`` values are skipped, so a CLI can pass its optional flags
        straight through. :func:`parse_override` reads ``"KEY=VALUE"`` text into a pair. An overridden
        value is validated as if the file held it, and its errors say "set by an override".

    Returns:
      A frozen :class:`SweepConfig`; ``.text`` holds the file as given.

    Raises:
      ConfigError: unreadable file, malformed TOML, or any schema violation.
    """
    path = resolve(path)
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise ConfigError(source, "", "is a directory, not a config file") from None
    except OSError as err:
        raise ConfigError(source, "", f"cannot read config file: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(source, "", f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(source, "", f"malformed TOML: {err}") from None
    return from_dict(data, source=source, overrides=overrides, text=text)


def from_dict(data: Mapping[str, Any], source: str = "<dict>", overrides: Mapping[str, Any] | None = None,
              *, text: str | None = None, check_process: bool = True) -> SweepConfig:
    """Validate plain data (as ``tomllib`` returns it) into a frozen :class:`SweepConfig`.

    ``source`` names the origin in error messages and gives the default output folder
    (``results/<stem>``). ``overrides`` as in :func:`load`.

    ``check_process=False`` skips the checks of what *this process* could run (64-bit JAX for
    ``network.dtype = "float64"``, scikit-learn for ``inputs.kind = "digits"``): for reading the
    config of a finished results folder, which must not depend on the reader's JAX settings.
    Everything about the config itself is still checked.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(source, "", f"a config must be a table of sections; got {type_name(data)}")
    data = copy.deepcopy(dict(data))
    overridden = _apply_overrides(data, overrides or {}, source)
    return Reader(source, overridden, check_process).config(data, text)


def parse_override(text: str) -> tuple[str, Any]:
    """``"network.depth=10"`` -> ``("network.depth", 10)``; the value is read as TOML, else a string.

    Example:
      >>> parse_override("network.activation=['relu', 'tanh']")
      ('network.activation', ['relu', 'tanh'])
      >>> parse_override("output.dir=results/x")
      ('output.dir', 'results/x')
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError("override", "", f"must read KEY=VALUE (e.g. sweep.seeds=4); got {text!r}")
    try:
        return key, tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value.strip()


def _apply_overrides(data: dict, overrides: Mapping[str, Any], source: str) -> set[str]:
    done = set()
    for key, value in overrides.items():
        if value is None:
            continue
        path = OVERRIDE_ALIASES.get(key, key)
        parts = path.split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(source, path, "an override needs a dotted key path such as 'sweep.seeds'")
        table = data
        for i, part in enumerate(parts[:-1]):
            node = table.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(source, ".".join(parts[: i + 1]),
                                  f"cannot override inside {type_name(node)}", node)
            table = node
        table[parts[-1]] = copy.deepcopy(value)
        done.add(path)
    return done


def to_toml(config: SweepConfig | Mapping[str, Any], *, comment: str | None = None,
            source: str = "<dict>") -> str:
    """A sweep config as TOML text that :func:`load` reads back to an equal config.

    Args:
      config: a :class:`SweepConfig`, or plain data (``{"network": {...}, "sweep": {...}, ...}``),
        which is validated first as :func:`from_dict` does (without the checks of what this process
        could run: 64-bit JAX, scikit-learn), so only a valid config is ever written.
      comment: lines written first, each as a ``# `` comment (e.g. what generated the file).
      source: names ``config`` in error messages when it is plain data.

    Returns:
      The resolved config (every default filled in) as TOML.

    Raises:
      ConfigError: ``config`` is plain data that is not a valid config.

    Example:
      >>> print(to_toml({"network": {"depth": 2, "width": 8, "activation": "tanh"},
      ...                "sweep": {"initializers": ["he_normal"]}}, comment="a tiny sweep"))
      # a tiny sweep
      [network]
      depth = 2
      width = 8
      activation = "tanh"
      bias = "zeros"
      dtype = "float32"
      ...
    """
    if not isinstance(config, SweepConfig):
        config = from_dict(config, source=source, check_process=False)
    head = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines()) if comment else ""
    return head + config.to_toml()
