"""A minimal TOML writer (resolved configs: tables, arrays, inline tables, ``[[grid.points]]``) and
values spelled as TOML spells them (error messages).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any


def format_value(value: Any, limit: int = 80) -> str:
    """A value as TOML would spell it (``true``, ``"relu"``, ``[1, 2]``), cut to ``limit`` chars."""
    text = _toml_value(value) if _is_plain(value) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

def _is_plain(value: Any) -> bool:
    if isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} of type {type(value).__name__} as TOML.")


def dumps_toml(data: Mapping[str, Mapping[str, Any]]) -> str:
    """Write ``{section: {key: value}}`` as TOML; a list of tables under ``points`` becomes
    ``[[section.points]]``."""
    lines: list[str] = []
    for section, table in data.items():
        arrays = {k: v for k, v in table.items()
                  if isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v) and k == "points"}
        lines.append(f"[{_toml_key(section)}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if k not in arrays)
        for k, rows in arrays.items():
            for row in rows:
                lines.append(f"[[{_toml_key(section)}.{_toml_key(k)}]]")
                lines.extend(f"{_toml_key(rk)} = {_toml_value(rv)}" for rk, rv in row.items())
        lines.append("")
    return "\n".join(lines)
