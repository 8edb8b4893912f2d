"""LSUV as a value: :class:`LSUV`, the frozen spec a config names (a base initializer plus the fit)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jaxinit import nets
from jaxinit.initializers import BaseInitializer, get, orthogonal, zeros
from jaxinit.lsuv.core import _check_args, _fit_scale, lsuv


# -- the spec value ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, repr=False)
class LSUV:
    """LSUV as a value: a base initializer plus the fit's ``target``, ``tol`` and ``max_iter``.

    Not a ``(key, shape, dtype)`` initializer: LSUV needs data. The engines draw each layer with
    ``base`` and then apply the fit to the run's own input batch (:meth:`apply`, or :func:`lsuv`
    with these fields); a config names it ``{name = "lsuv", base = "orthogonal", tol = 0.1,
    max_iter = 10}``. Frozen and hashable (a static argument traces once), ``repr`` reads back
    as code, :meth:`to_dict` / :meth:`from_dict` round-trip.

    Args:
      base: the initializer drawing the weights before the fit: a jaxinit initializer, a
        registry name or a ``{"name": ...}`` dict (default ``orthogonal()``, the paper's).
      target: output variance aimed at, > 0.
      tol: accepted ``|Var - target|``, > 0.
      max_iter: rescalings per layer at most, >= 1.

    Example:
      >>> from jaxinit import LSUV
      >>> spec = LSUV(base="orthogonal", tol=0.05)
      >>> spec
      LSUV(base=orthogonal(), target=1.0, tol=0.05, max_iter=10)
      >>> spec.to_dict()
      {'name': 'lsuv', 'base': 'orthogonal', 'target': 1.0, 'tol': 0.05, 'max_iter': 10}
      >>> LSUV(base={"name": "orthogonal", "scale": 2.0}).to_dict()["base"]
      {'name': 'orthogonal', 'scale': 2.0}
      >>> LSUV.from_dict(spec.to_dict()) == spec
      True
    """

    base: BaseInitializer = dataclasses.field(default_factory=orthogonal)
    target: float = 1.0
    tol: float = 0.1
    max_iter: int = 10

    name: ClassVar[str] = "lsuv"  # the config's name

    def __post_init__(self):
        base = self.base
        if isinstance(base, LSUV) or not isinstance(base, str | Mapping | BaseInitializer):
            raise TypeError(
                f"base must be a jaxinit initializer, a registry name or a {{'name': ...}} dict; got {base!r} "
                f"of type {type(base).__name__} (LSUV)."
            )
        object.__setattr__(self, "base", get(base))
        target, tol, max_iter = _check_args(self.target, self.tol, self.max_iter)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "tol", tol)
        object.__setattr__(self, "max_iter", max_iter)

    def to_dict(self) -> dict[str, Any]:
        """``{"name": "lsuv", "base": ..., "target", "tol", "max_iter"}``; the base as a name when
        it has no arguments, else as its own dict."""
        base = self.base.to_dict()
        return {"name": self.name, "base": base["name"] if len(base) == 1 else base,
                "target": self.target, "tol": self.tol, "max_iter": self.max_iter}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> LSUV:
        """The value :meth:`to_dict` wrote (``name`` must be ``"lsuv"``; unknown keys are refused)."""
        if not isinstance(spec, Mapping) or spec.get("name") != cls.name:
            raise ValueError(f"an LSUV table has name = 'lsuv'; got {spec!r}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(spec) - fields - {"name"})
        if unknown:
            raise ValueError(f"LSUV takes no argument {unknown[0]!r}; allowed: {sorted(fields)}.")
        return cls(**{k: v for k, v in spec.items() if k != "name"})

    def __repr__(self) -> str:
        return f"LSUV(base={self.base!r}, target={self.target!r}, tol={self.tol!r}, max_iter={self.max_iter!r})"

    def variance(self, shape: Any) -> float:
        """Not stated: LSUV's weight variance depends on the data batch (raises NotImplementedError,
        as an initializer that does not state its target does; the theory overlay skips it)."""
        raise NotImplementedError(f"{self!r} sets each layer's scale from the data batch: its weight "
                                  "variance is not known before the fit")

    def mean(self, shape: Any) -> float:
        """Not stated either (see :meth:`variance`)."""
        raise NotImplementedError(f"{self!r} sets each layer's scale from the data batch")

    def fit_scale(self, z: jax.Array, offset: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """LSUV's iteration on one layer whose output at kernel ``s W`` is ``s z + offset``: the scale
        ``s``, the variance reached ``Var(s z + offset)`` (over all entries) and the rescalings done.

        ``z`` is the layer's output at its drawn kernel without the bias (``x @ W``), ``offset`` the
        bias (broadcast). Pure, jit- and vmap-able (a ``lax.while_loop``: under ``vmap`` each member
        stops at its own tolerance); the engines apply the fit this way inside their programs.
        """
        return _fit_scale(z, offset, self.target, self.tol, self.max_iter)

    def apply(self, params: dict[str, Any], x: Any, activation: str | Callable[..., Any], *,
              return_stats: bool = False) -> Any:
        """:func:`lsuv` with this value's ``target``, ``tol`` and ``max_iter``."""
        return lsuv(params, x, activation, target=self.target, tol=self.tol, max_iter=self.max_iter,
                    return_stats=return_stats)

    def init(self, key: jax.Array, x: Any, width: int, depth: int, out_dim: int | None,
             activation: str | Callable[..., Any], *, bias_init: Any = zeros, dtype: Any = jnp.float32,
             return_stats: bool = False) -> Any:
        """``nets.init(key, x.shape[-1], width, depth, out_dim, base, bias_init, dtype)``, then :meth:`apply`."""
        x = jnp.asarray(x)
        params = nets.init(key, x.shape[-1], width, depth, out_dim, self.base, bias_init, dtype)
        return self.apply(params, x, activation, return_stats=return_stats)


def drawing_initializers(initializers) -> tuple[BaseInitializer, ...]:
    """The initializer that draws each entry's weights: the entry itself, or an :class:`LSUV` entry's base."""
    return tuple(i.base if isinstance(i, LSUV) else i for i in initializers)


def lsuv_entries(initializers) -> tuple[tuple[int, LSUV], ...]:
    """``(index, spec)`` of every :class:`LSUV` entry (empty: an engine compiles no fit)."""
    return tuple((i, init) for i, init in enumerate(initializers) if isinstance(init, LSUV))
