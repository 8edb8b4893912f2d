"""optax by name: the optimizers and learning-rate schedules a config names, and the cyclical schedule.

A training config names its optimizer and schedule as optax does (``{name = "sgd", momentum = 0.9}``,
``{name = "cosine_decay_schedule", init_value = 0.1, decay_steps = 1000}``); this module turns the
names into optax objects, with a did-you-mean for an unknown name and the arguments optax takes for
a wrong one. Pure: no files, no engine (the config reader checks names with it before anything runs).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxinit.errors import check_int, check_positive, did_you_mean

__all__ = ["CYCLICAL", "Schedule", "cyclical_schedule", "make_schedule", "optimizer", "optimizer_names",
           "schedule_names"]

CYCLICAL = "cyclical"


@functools.cache
def optimizer_names() -> tuple[str, ...]:
    """optax's optimizers that take a ``learning_rate`` (``sgd``, ``adam``, ``adamw``, ...)."""
    out = []
    for name in dir(optax):
        fn = getattr(optax, name)
        if name.startswith(("_", "scale_by")) or name == "lbfgs" or not inspect.isfunction(fn):
            continue  # lbfgs needs the loss function at every update: not a plain gradient step
        if "learning_rate" in inspect.signature(fn).parameters:
            out.append(name)
    return tuple(sorted(out))


@functools.cache
def schedule_names() -> tuple[str, ...]:
    """optax's schedules (``optax.schedules``) that take plain numbers, plus ``cyclical``."""
    out = [n for n in dir(optax.schedules) if not n.startswith("_") and n not in ("join_schedules",)
           and (n.endswith("_schedule") or n == "exponential_decay") and inspect.isfunction(getattr(optax, n, None))]
    return tuple(sorted([*out, CYCLICAL]))


def _pairs(arg: str, kwargs: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    items = dict(kwargs).items()
    out = []
    for k, v in sorted(items):
        if not isinstance(k, str):
            raise TypeError(f"{arg} keys must be strings; got {k!r}.")
        out.append((k, tuple(v) if isinstance(v, list) else v))
    return tuple(out)


def _bind(what: str, name: str, fn: Callable[..., Any], kwargs: dict[str, Any], given: tuple[str, ...]) -> None:
    """ValueError naming the arguments ``fn`` does not take (or lacks), with the ones it does."""
    params = inspect.signature(fn).parameters
    takes = [p for p in params if p not in given]
    unknown = [k for k in kwargs if k not in params or k in given]
    if unknown:
        hints = "".join(did_you_mean(k, takes) for k in unknown)
        raise ValueError(f"{what} {name!r} does not take {unknown}; optax.{name} takes {takes}.{hints}")
    try:
        inspect.signature(fn).bind(**{g: 0.1 for g in given}, **kwargs)
    except TypeError as e:
        raise ValueError(f"{what} {name!r}: {e}; optax.{name} takes {takes}.") from None


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule by name: an optax schedule (``cosine_decay_schedule``, ...) with its
    keyword arguments, or ``cyclical`` with ``base``, ``max``, ``step_size``."""

    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Schedule:
        spec = dict(spec)
        if "name" not in spec:
            raise ValueError(f"a learning_rate schedule needs a 'name' ({', '.join(schedule_names())}); got {spec!r}.")
        name = spec.pop("name")
        return cls(name, _pairs("learning_rate", spec))


def cyclical_schedule(base: float, max: float, step_size: int) -> optax.Schedule:  # noqa: A002 - the config's name
    r"""The triangular cyclical learning rate (Smith 2017, "Cyclical Learning Rates for Training
    Neural Networks"): from ``base`` up to ``max`` in ``step_size`` steps and back, period
    ``2 step_size``,

        lr(t) = base + (max - base) * max(0, 1 - |t / step_size - 2 floor(1 + t / (2 step_size)) + 1|).

    Built from optax's pieces: ``join_schedules`` of two ``linear_schedule`` ramps, evaluated at
    ``t mod (2 step_size)``.

    Example:
      >>> f = cyclical_schedule(0.1, 1.0, 10)
      >>> [round(float(f(t)), 4) for t in (0, 5, 10, 15, 20, 25)]
      [0.1, 0.55, 1.0, 0.55, 0.1, 0.55]
    """
    base = check_positive("base", base, "cyclical learning_rate")
    top = check_positive("max", max, "cyclical learning_rate")
    step_size = check_int("step_size", step_size, minimum=1, where="cyclical learning_rate")
    cycle = optax.join_schedules([optax.linear_schedule(base, top, step_size),
                                  optax.linear_schedule(top, base, step_size)], [step_size])
    return lambda count: cycle(jnp.mod(count, 2 * step_size))


def make_schedule(spec: Schedule | Mapping[str, Any], *, check: bool = True) -> optax.Schedule:
    """An optax schedule from its name and keyword arguments (or ``cyclical``).

    Raises ``ValueError`` for an unknown name (with the closest one) or arguments the schedule
    does not take (naming them and the ones it does). ``check`` evaluates the schedule once at
    step 0 (eagerly: pass ``False`` inside a traced function).
    """
    if not isinstance(spec, Schedule):
        spec = Schedule.from_spec(spec)
    names = schedule_names()
    if spec.name not in names:
        raise ValueError(f"learning_rate schedule must be one of {list(names)}; got {spec.name!r}."
                         f"{did_you_mean(spec.name, names)}")
    kwargs = dict(spec.kwargs)
    fn = cyclical_schedule if spec.name == CYCLICAL else getattr(optax, spec.name)
    _bind("learning_rate schedule", spec.name, fn, kwargs, ())
    try:
        sched = fn(**kwargs)
        if check:
            float(sched(0))
    except (TypeError, ValueError) as e:
        if spec.name == CYCLICAL:
            raise
        raise ValueError(f"learning_rate schedule {spec.name!r} with {kwargs}: {e}") from None
    return sched


def optimizer(name: str, kwargs: Mapping[str, Any] | Sequence[tuple[str, Any]] = (),
              learning_rate: float | jax.Array | optax.Schedule = 0.01) -> optax.GradientTransformation:
    """optax's optimizer ``name`` with ``kwargs`` and ``learning_rate`` injected as a hyperparameter
    (``optax.inject_hyperparams``: a number lives in the optimizer state, so each member of an
    ensemble can have its own; a schedule is evaluated at the step count).

    Raises ``ValueError`` for an unknown optimizer (with the closest optax name) or arguments optax
    does not take (naming them and the ones it does).

    Example:
      >>> tx = optimizer("sgd", {"momentum": 0.9}, 0.1)
      >>> round(float(tx.init({"w": jnp.zeros(2)}).hyperparams["learning_rate"]), 6)
      0.1
    """
    names = optimizer_names()
    if name not in names:
        raise ValueError(f"optimizer must be an optax optimizer taking a learning_rate, one of {list(names)}; "
                         f"got {name!r}.{did_you_mean(str(name), names)}")
    factory = getattr(optax, name)
    kwargs = dict(kwargs)
    _bind("optimizer", name, factory, kwargs, ("learning_rate",))
    try:
        return optax.inject_hyperparams(factory, static_args=tuple(kwargs))(learning_rate=learning_rate, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"optimizer {name!r} with {kwargs}: {e}") from None
