"""argparse types shared by the command line (:mod:`jaxinit.cli`) and the benchmark (:mod:`jaxinit.bench`).

Each takes the flag's text and returns the value, or raises :class:`argparse.ArgumentTypeError`, which
argparse reports as ``argument --flag: <message>`` with exit status 2. No jaxinit imports: this is a
bottom-layer piece.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["positive_int", "positive_ints", "seconds"]


def positive_int(text: str) -> int:
    """An integer >= 1 (``"8"`` -> 8)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def positive_ints(text: str) -> tuple[int, ...]:
    """Comma-separated integers >= 1 (``"10,50"`` -> (10, 50)); empty items are skipped, none at all is an error."""
    values = tuple(positive_int(t) for t in text.split(",") if t.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers >= 1 like 10,50; got {text!r}")
    return values


def seconds(text: str) -> float:
    """A finite number of seconds >= 0 (0 conventionally meaning "no limit")."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0 (0: no limit); got {text!r}")
    return value
