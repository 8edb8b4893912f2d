"""The training plan: :class:`TrainPlan`, optimizers and schedules by name (optax), the cyclical
schedule, the evaluation steps and the grid's arrays (the package docstring has the engine's rules)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxinit.activations import activation as resolve_activation
from jaxinit.errors import check_choice, check_int, check_positive, check_real, did_you_mean
from jaxinit.initializers import BaseInitializer, get, zeros

# Data keys live on their own branch of the root key (the sweep's): no layer key reaches it.
DATA_BRANCH = 0x7FFFFFFF
DEAD_THRESHOLD = 1e-6
DISTINCT_RTOL = 1e-4
LOSSES = ("xent", "mse")
TASKS = ("classification", "regression")
CYCLICAL = "cyclical"
GRID_PARAMS = ("weight_variance", "bias_variance", "learning_rate")

EVAL_FIELDS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "grad_norm", "update_norm")
EVAL_LAYER_FIELDS = ("grad_w_norm", "weight_std", "dead_fraction")
MEMBER_FIELDS = ("final_train_loss", "final_test_loss", "final_test_accuracy", "best_test_accuracy",
                 "steps_to_loss", "steps_to_accuracy", "diverged", "distinct_units")
_ACCURACY_FIELDS = ("train_accuracy", "test_accuracy", "final_test_accuracy", "best_test_accuracy",
                    "steps_to_accuracy")


# ---------------------------------------------------------------------------------------------
# optax by name: optimizers, schedules, the cyclical schedule
# ---------------------------------------------------------------------------------------------
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


def make_optimizer(plan: TrainPlan, learning_rate: float | jax.Array | optax.Schedule) -> optax.GradientTransformation:
    """``plan``'s optax optimizer with ``learning_rate`` injected as a hyperparameter
    (``optax.inject_hyperparams``: a number lives in the optimizer state, so each member can have
    its own; a schedule is evaluated at the step count), after ``clip_by_global_norm`` when the
    plan clips.

    Raises ``ValueError`` for an unknown optimizer (with the closest optax name) or arguments optax
    does not take (naming them and the ones it does).
    """
    names = optimizer_names()
    if plan.optimizer not in names:
        raise ValueError(f"optimizer must be an optax optimizer taking a learning_rate, one of {list(names)}; "
                         f"got {plan.optimizer!r}.{did_you_mean(plan.optimizer, names)}")
    factory = getattr(optax, plan.optimizer)
    kwargs = dict(plan.optimizer_kwargs)
    _bind("optimizer", plan.optimizer, factory, kwargs, ("learning_rate",))
    try:
        tx = optax.inject_hyperparams(factory, static_args=tuple(kwargs))(learning_rate=learning_rate, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"optimizer {plan.optimizer!r} with {kwargs}: {e}") from None
    if plan.clip_global_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(plan.clip_global_norm), tx)
    return tx


def _set_learning_rate(plan: TrainPlan, state: Any, lr: jax.Array) -> Any:
    """The optimizer state with its injected learning rate replaced by ``lr`` (a traced value)."""
    if plan.clip_global_norm is not None:
        clip, inner = state
        return (clip, _set_learning_rate(dataclasses.replace(plan, clip_global_norm=None), inner, lr))
    hp = dict(state.hyperparams)
    hp["learning_rate"] = jnp.asarray(lr, hp["learning_rate"].dtype)
    return state._replace(hyperparams=hp)


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------
def _initializer(value: Any, arg: str) -> BaseInitializer:
    if isinstance(value, BaseInitializer):
        return value
    if isinstance(value, str | dict):
        return get(value)
    raise TypeError(f"{arg} must be an initializer, a name or a {{name = ...}} table; got {value!r}.")


@dataclasses.dataclass(frozen=True)
class TrainPlan:
    """Everything static about one training program; hashable, a jit static argument.

    ``optimizer`` may be given as a name or ``{"name": "sgd", "momentum": 0.9}``, ``learning_rate``
    as a number, a :class:`Schedule` or ``{"name": ..., **kwargs}``, initializers as names, specs
    or initializer values: they are normalized to hashable values on construction, and the
    optimizer and schedule are built once so that a bad name or argument fails here.
    ``batch = 0`` is full-batch training.
    """

    depth: int
    width: int
    in_dim: int
    out_dim: int
    initializers: tuple[BaseInitializer, ...]
    activation: Any = "relu"
    bias_init: BaseInitializer = zeros
    dtype: str = "float32"
    task: str = "classification"
    loss: str = "xent"
    optimizer: str = "sgd"
    optimizer_kwargs: tuple[tuple[str, Any], ...] = ()
    learning_rate: float | Schedule = 0.01
    clip_global_norm: float | None = None
    steps: int = 100
    batch: int = 64
    eval_every: int = 10
    target_loss: float | None = None
    target_accuracy: float | None = None

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        for name in ("depth", "width", "in_dim", "out_dim", "steps", "eval_every"):
            put(name, check_int(name, getattr(self, name), minimum=1))
        put("batch", check_int("batch", self.batch, minimum=0))
        put("activation", resolve_activation(self.activation))
        inits = self.initializers
        if isinstance(inits, BaseInitializer | str | dict):
            inits = (inits,)
        inits = tuple(_initializer(v, "initializers") for v in inits)
        if not inits:
            raise ValueError("initializers must name at least one initializer; got ().")
        put("initializers", inits)
        put("bias_init", _initializer(self.bias_init, "bias_init"))
        dt = np.dtype(self.dtype)
        if not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(f"dtype must be a floating-point dtype; got dtype={dt.name}.")
        put("dtype", dt.name)
        check_choice("task", self.task, TASKS)
        check_choice("loss", self.loss, LOSSES)
        if self.loss == "xent" and self.task != "classification":
            raise ValueError("loss='xent' needs task='classification' (integer labels); "
                             f"got task={self.task!r}. Use loss='mse' for regression.")
        if self.task == "classification" and self.out_dim < 2:
            raise ValueError(f"out_dim must be the number of classes (>= 2) for classification; got {self.out_dim}.")
        opt = self.optimizer
        if isinstance(opt, Mapping):
            opt = dict(opt)
            if "name" not in opt:
                raise ValueError(f"optimizer needs a 'name' (sgd, adam, ...); got {opt!r}.")
            name = opt.pop("name")
            if self.optimizer_kwargs:
                raise ValueError("give the optimizer's arguments either in optimizer={name = ..., ...} or in "
                                 f"optimizer_kwargs, not both; got {self.optimizer_kwargs!r}.")
            put("optimizer", name)
            put("optimizer_kwargs", _pairs("optimizer", opt))
        elif not isinstance(opt, str):
            raise TypeError(f"optimizer must be an optax optimizer name or a table with a name; got {opt!r}.")
        else:
            put("optimizer_kwargs", _pairs("optimizer", self.optimizer_kwargs))
        lr = self.learning_rate
        if isinstance(lr, Mapping):
            lr = Schedule.from_spec(lr)
        if isinstance(lr, Schedule):
            make_schedule(lr)
        else:
            lr = check_positive("learning_rate", lr)
        put("learning_rate", lr)
        if self.clip_global_norm is not None:
            put("clip_global_norm", check_positive("clip_global_norm", self.clip_global_norm))
        if self.target_loss is not None:
            put("target_loss", check_real("target_loss", self.target_loss))
        if self.target_accuracy is not None:
            acc = check_real("target_accuracy", self.target_accuracy)
            if not 0.0 <= acc <= 1.0:
                raise ValueError(f"target_accuracy must be in [0, 1]; got {acc!r}.")
            if self.task != "classification":
                raise ValueError("target_accuracy needs task='classification'; got task='regression'.")
            put("target_accuracy", acc)
        make_optimizer(self, 0.01)

    @property
    def n_init(self) -> int:
        return len(self.initializers)

    @property
    def chunk_steps(self) -> int:
        """Training steps between evaluations: ``min(eval_every, steps)``."""
        return min(self.eval_every, self.steps)

    @property
    def n_chunks(self) -> int:
        return -(-self.steps // self.chunk_steps)

    def layer_shape(self, layer: int) -> tuple[int, int]:
        if layer == 0:
            return (self.in_dim, self.width)
        if layer == self.depth:
            return (self.width, self.out_dim)
        return (self.width, self.width)

    def second_moment(self, layer: int) -> np.ndarray:
        """E[W^2] per initializer at ``layer`` (what a weight_variance grid point rescales)."""
        shape = self.layer_shape(layer)
        return np.asarray([i.variance(shape) + i.mean(shape) ** 2 for i in self.initializers])

    def check_data(self, n_train: int, in_dim: int) -> None:
        """ValueError when the data does not fit the plan (batch larger than the training set, ...)."""
        if in_dim != self.in_dim:
            raise ValueError(f"the data has {in_dim} features; the plan's in_dim is {self.in_dim}.")
        if self.batch > n_train:
            raise ValueError(f"batch must be <= the training set's {n_train} examples (0: full batch); "
                             f"got batch={self.batch}.")


def eval_steps(plan: TrainPlan) -> np.ndarray:
    """The steps at which members are evaluated: ``0, e, 2e, ..., steps`` (int32)."""
    k = np.arange(plan.n_chunks + 1, dtype=np.int64) * plan.chunk_steps
    return np.minimum(k, plan.steps).astype(np.int32)


def _wide(plan: TrainPlan) -> np.dtype:
    return np.dtype(np.float64) if plan.dtype == "float64" else np.dtype(np.float32)


def grid_arrays(plan: TrainPlan, grid: Sequence[Mapping[str, float]] | None) -> tuple[np.ndarray, ...]:
    """``(weight_variance, bias_variance, learning_rate)`` arrays over grid points, NaN where a
    point leaves the parameter to the plan. ``None``: one point that sets nothing."""
    points = [{}] if grid is None else [dict(p) for p in grid]
    if not points:
        raise ValueError("grid must hold at least one point (or be None); got [].")
    for i, p in enumerate(points):
        unknown = sorted(set(p) - set(GRID_PARAMS))
        if unknown:
            raise ValueError(f"grid point {i} sets {unknown}; a training grid sets {list(GRID_PARAMS)}."
                             f"{did_you_mean(unknown[0], GRID_PARAMS)}")
        for name, v in p.items():
            check_positive(name, v, f"grid point {i}") if name == "learning_rate" else check_real(name, v)
            if name != "learning_rate" and v < 0:
                raise ValueError(f"{name} must be >= 0; got {v!r} (grid point {i}).")
    out = tuple(np.asarray([p.get(n, np.nan) for p in points], np.float64) for n in GRID_PARAMS)
    if isinstance(plan.learning_rate, Schedule) and not np.isnan(out[2]).all():
        raise ValueError(f"a grid learning_rate replaces a number; the plan's learning_rate is the schedule "
                         f"{plan.learning_rate.name!r}. Give learning_rate as a number to grid it.")
    return out
