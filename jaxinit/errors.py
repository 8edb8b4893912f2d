"""One error style for the whole package, and its error types (:class:`ConfigError`, :class:`ResultsError`).

Messages read ``<what> must be <allowed>; got <value>[ (<context>)].[ Did you mean ...?]``
so the user sees the argument, the offending value and what to do instead.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Iterable
from typing import Any

from jaxinit._toml import format_value


def _context(where: object | None) -> str:
    return f" ({where})" if where is not None else ""


def did_you_mean(value: object, allowed: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest allowed name, or ``""``."""
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_choice(arg: str, value: object, allowed: Iterable[str], where: object | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    allowed = sorted(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"{arg} must be one of {allowed}; got {value!r}{_context(where)}."
            f"{did_you_mean(value, allowed)}"
        )


def check_real(arg: str, value: object, where: object | None = None) -> float:
    """Return ``value`` as a finite Python float, or raise naming ``arg``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{arg} must be a real number; got {value!r} of type {type(value).__name__}"
            f"{_context(where)}."
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{arg} must be finite; got {value!r}{_context(where)}.")
    return value


def check_positive(arg: str, value: object, where: object | None = None) -> float:
    """A finite float > 0."""
    value = check_real(arg, value, where)
    if value <= 0:
        raise ValueError(f"{arg} must be > 0; got {value!r}{_context(where)}.")
    return value


def check_nonnegative(arg: str, value: object, where: object | None = None) -> float:
    """A finite float >= 0."""
    value = check_real(arg, value, where)
    if value < 0:
        raise ValueError(f"{arg} must be >= 0; got {value!r}{_context(where)}.")
    return value


def check_int(arg: str, value: object, minimum: int | None = None, where: object | None = None) -> int:
    """A Python int (bools rejected), optionally >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{arg} must be an integer; got {value!r} of type {type(value).__name__}"
            f"{_context(where)}."
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{arg} must be >= {minimum}; got {value!r}{_context(where)}.")
    return value


def check_in_range(
    arg: str, value: object, low: float, high: float, *, closed_low=True, closed_high=False, where=None
) -> float:
    """A finite float in the interval between ``low`` and ``high`` (closedness as given)."""
    value = check_real(arg, value, where)
    ok_low = value >= low if closed_low else value > low
    ok_high = value <= high if closed_high else value < high
    if not (ok_low and ok_high):
        interval = f"{'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}"
        raise ValueError(f"{arg} must be in {interval}; got {value!r}{_context(where)}.")
    return value


class ConfigError(ValueError):
    """A bad config: ``<file>: <key path>[ = <value>]: <problem>``, one line.

    Attributes:
      source: the file (or ``"<dict>"``) the config came from.
      key: the dotted key path (``"grid.bias_variance[2]"``), or ``""`` for the whole file.
      problem: what is wrong and what is allowed.
      value: the offending value, when there is one (else the class attribute ``NO_VALUE``).
    """

    NO_VALUE: Any = object()

    def __init__(self, source: str, key: str, problem: str, value: Any = NO_VALUE):
        self.source = str(source)
        self.key = key
        self.problem = problem
        self.value = value
        where = key
        if value is not ConfigError.NO_VALUE:
            where = f"{key} = {format_value(value)}"
        super().__init__(f"{self.source}: {where}: {problem}" if where else f"{self.source}: {problem}")

    def __reduce__(self):
        return (type(self), (self.source, self.key, self.problem, self.value))


class ResultsError(ConfigError):
    """A results folder that cannot be used as asked: ``<folder>: <problem>``.

    A :class:`ConfigError` (so a ``ValueError``): the CLI reports it in one line
    with exit status 2, like a bad config.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str):
        super().__init__(str(path), "", problem)

    def __reduce__(self):
        return (type(self), (self.source, self.problem))
