"""The training plan: :class:`TrainPlan`, its optax optimizer (names resolved by
:mod:`jaxinit.lab.optim`), the evaluation steps and the grid's arrays (the package docstring has
the engine's rules)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxinit.activations import activation as resolve_activation
from jaxinit.errors import check_choice, check_int, check_positive, check_real, did_you_mean
from jaxinit.initializers import BaseInitializer, get, zeros
from jaxinit.lab.config.schema import evaluation_steps
from jaxinit.lab.optim import (  # noqa: F401 - re-exported: the engine's surface names them
    CYCLICAL,
    Schedule,
    _pairs,
    cyclical_schedule,
    make_schedule,
    optimizer,
    optimizer_names,
    schedule_names,
)
from jaxinit.lsuv import LSUV
from jaxinit.lsuv.core import layer_names, warn_members
from jaxinit.lsuv.spec import drawing_initializers, lsuv_entries

# Data keys live on their own branch of the root key (the sweep's): no layer key reaches it.
DATA_BRANCH = 0x7FFFFFFF
DEAD_THRESHOLD = 1e-6
DISTINCT_RTOL = 1e-4
# LSUV's fit batch under full-batch training: at most this many rows of the training set.
LSUV_FULL_BATCH_ROWS = 512
LOSSES = ("xent", "mse")
TASKS = ("classification", "regression")
GRID_PARAMS = ("weight_variance", "bias_variance", "learning_rate")

EVAL_FIELDS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "grad_norm", "update_norm")
EVAL_LAYER_FIELDS = ("grad_w_norm", "weight_std", "dead_fraction")
MEMBER_FIELDS = ("final_train_loss", "final_test_loss", "final_test_accuracy", "best_test_accuracy",
                 "steps_to_loss", "steps_to_accuracy", "diverged", "distinct_units")
_ACCURACY_FIELDS = ("train_accuracy", "test_accuracy", "final_test_accuracy", "best_test_accuracy",
                    "steps_to_accuracy")


def make_optimizer(plan: TrainPlan, learning_rate: float | jax.Array | optax.Schedule) -> optax.GradientTransformation:
    """``plan``'s optax optimizer with ``learning_rate`` injected as a hyperparameter
    (``optax.inject_hyperparams``: a number lives in the optimizer state, so each member can have
    its own; a schedule is evaluated at the step count), after ``clip_by_global_norm`` when the
    plan clips.

    Raises ``ValueError`` for an unknown optimizer (with the closest optax name) or arguments optax
    does not take (naming them and the ones it does).
    """
    tx = optimizer(plan.optimizer, plan.optimizer_kwargs, learning_rate)
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
def _initializer(value: Any, arg: str) -> BaseInitializer | LSUV:
    """An initializer value from a value, a name or a table; ``"lsuv"`` / ``{"name": "lsuv", ...}``
    give an :class:`~jaxinit.lsuv.LSUV` (weights only: not for ``bias_init``)."""
    if isinstance(value, str | dict) and (value if isinstance(value, str) else value.get("name")) == LSUV.name:
        value = LSUV() if isinstance(value, str) else LSUV.from_dict(value)
    if isinstance(value, LSUV):
        if arg == "bias_init":
            raise TypeError(f"bias_init must be an initializer drawing the biases; got {value!r} (LSUV rescales "
                            "weight matrices on the data).")
        return value
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
    initializers: tuple[BaseInitializer | LSUV, ...]
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
        if self.lsuv and self.batch == 1:
            raise ValueError(f"batch must be 0 or >= 2 with an LSUV initializer ({self.lsuv[0][1]!r}): LSUV fits "
                             "each layer's output variance on the first minibatch, undefined for one example; "
                             "got batch=1.")
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
    def drawn(self) -> tuple[BaseInitializer, ...]:
        """The initializer that draws each entry's weights: itself, or an LSUV entry's base."""
        return drawing_initializers(self.initializers)

    @property
    def lsuv(self) -> tuple[tuple[int, LSUV], ...]:
        """``(index, spec)`` of every LSUV entry (empty: the programs compile no fit)."""
        return lsuv_entries(self.initializers)

    def fit_rows(self, n_train: int) -> int:
        """Rows of the LSUV fit's batch: the first minibatch's ``batch`` rows (the rows the first step
        sees); full-batch training (``batch = 0``): the first ``min(n_train, LSUV_FULL_BATCH_ROWS)``
        rows of the training set."""
        return self.batch or min(n_train, LSUV_FULL_BATCH_ROWS)

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
        return np.asarray([i.variance(shape) + i.mean(shape) ** 2 for i in self.drawn])

    def check_data(self, n_train: int, in_dim: int) -> None:
        """ValueError when the data does not fit the plan (batch larger than the training set, ...)."""
        if in_dim != self.in_dim:
            raise ValueError(f"the data has {in_dim} features; the plan's in_dim is {self.in_dim}.")
        if self.batch > n_train:
            raise ValueError(f"batch must be <= the training set's {n_train} examples (0: full batch); "
                             f"got batch={self.batch}.")
        if self.lsuv and self.fit_rows(n_train) < 2:
            raise ValueError(f"LSUV ({self.lsuv[0][1]!r}) fits each layer's output variance on a batch of the "
                             f"training set: it needs at least 2 examples; got a training set of {n_train}.")


def warn_lsuv(plans: Mapping[str, TrainPlan], reached: Mapping[str, Sequence[np.ndarray | None]],
              labels: Sequence[str] | None = None) -> None:
    """One :class:`~jaxinit.lsuv.LSUVWarning` for a whole training run whose LSUV entries missed their
    tolerance (none otherwise).

    ``plans``: per program id, its plan; ``reached``: per program id, the ``lsuv_variance`` arrays
    of its chunks, ``(n_init, n_grid, seeds, depth + 1)`` as :func:`~jaxinit.lab.engine.train.run_chunk`
    returns them (``None`` entries are skipped); ``labels``: the initializers' labels (default:
    their ``repr``). A runner collects the chunks' arrays and calls this once, at the end.
    """
    entries = []
    for pid, chunks in reached.items():
        plan, arrays = plans[pid], [np.asarray(a) for a in chunks if a is not None]
        if not arrays:
            continue
        variance = np.concatenate(arrays, axis=2)
        names = layer_names(plan.depth, True)
        for i, spec in plan.lsuv:
            label = labels[i] if labels is not None else repr(spec)
            entries.append((f"{label} in {pid}" if len(reached) > 1 else label, spec, names, variance[i]))
    warn_members(entries)


def eval_steps(plan: TrainPlan) -> np.ndarray:
    """The steps at which members are evaluated: ``0, e, 2e, ..., steps`` (int32)."""
    return np.asarray(evaluation_steps(plan.steps, plan.eval_every), np.int32)


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
