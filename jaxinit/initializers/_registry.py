"""Names -> initializers: ``get("he_normal")``, ``get({"name": "orthogonal", "scale": 1.4})``.

Each catalog module registers its factories here at import. Configs, the CLI and ``to_dict``
round-trips all go through :func:`get`, so an unknown name fails in one place, with the list of
valid names and the closest match.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from jaxinit.errors import did_you_mean
from jaxinit.initializers._base import BaseInitializer

_REGISTRY: dict[str, Callable[..., BaseInitializer]] = {}


def register(name: str, factory: Callable[..., BaseInitializer], *aliases: str) -> None:
    """Make ``factory`` reachable as ``get(name)`` and under each alias."""
    for key in (name, *aliases):
        if key in _REGISTRY and _REGISTRY[key] is not factory:
            raise ValueError(f"initializer name {key!r} is already registered.")
        _REGISTRY[key] = factory


def names() -> list[str]:
    """Every name :func:`get` accepts, sorted."""
    return sorted(_REGISTRY)


def get(spec: str | Mapping[str, Any] | BaseInitializer) -> BaseInitializer:
    """Build an initializer from a name, a ``{"name": ..., **kwargs}`` dict, or pass one through.

    Example:
      >>> get({"name": "orthogonal", "scale": 1.4})
      orthogonal(scale=1.4)
      >>> get("he_normal") == get(get("he_normal").to_dict())
      True
    """
    if isinstance(spec, BaseInitializer):
        return spec
    if isinstance(spec, str):
        name, kwargs = spec, {}
    elif isinstance(spec, Mapping):
        if "name" not in spec:
            raise ValueError(f"an initializer table needs a 'name' key; got {dict(spec)!r}.")
        kwargs = {k: v for k, v in spec.items() if k != "name"}
        name = spec["name"]
    else:
        raise TypeError(
            "an initializer spec must be a name, a dict with a 'name' key, or an initializer; "
            f"got {spec!r} of type {type(spec).__name__}."
        )
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown initializer name {name!r}.{did_you_mean(name, _REGISTRY)} "
            f"Valid names: {', '.join(names())}."
        )
    factory = _REGISTRY[name]
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            allowed = [n for n, p in params.items() if p.kind is not p.VAR_POSITIONAL]
            raise ValueError(
                f"initializer {name!r} takes no argument {unknown[0]!r}."
                f"{did_you_mean(unknown[0], allowed)} Allowed: {allowed}."
            )
    return factory(**kwargs)


def as_initializer(arg: str, spec: Any) -> BaseInitializer:
    """Coerce a combinator's argument (initializer, name or dict) or fail naming ``arg``."""
    if isinstance(spec, str | Mapping | BaseInitializer):
        return get(spec)
    raise TypeError(
        f"{arg} must be a jaxinit initializer, a registry name or a dict spec; got {spec!r}. "
        "Wrap plain functions with jaxinit.get or use a catalog entry."
    )
