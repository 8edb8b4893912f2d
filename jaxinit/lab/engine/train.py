r"""The training engine: every member of one network shape trains in one compiled program.

A *member* is one (initializer ``i``, grid point ``g``, seed ``s``). Structure of the program
(:func:`compile_train`, one per :class:`TrainPlan`):

* seeds are mapped with ``lax.map(..., batch_size=block)``: every seed trains inside a vmap of the
  same fixed width, so its numbers do not depend on the chunk it landed in; chunks are padded to
  a multiple of ``block x devices`` and sharded over local devices with ``shard_map`` (seed axis);
* per seed, the members (initializer x grid point, initializer-major ``k = i * n_grid + g``) are
  vmapped: parameters and optimizer states are stacked over members;
* training is a ``lax.scan`` over evaluation chunks, each a ``lax.scan`` of ``eval_every`` steps
  (the last chunk's steps beyond ``steps`` are masked out): no Python loop over members or steps,
  compile time flat in the number of steps.

Keys (the sweep's scheme, so the weights are :func:`jaxinit.nets.init`'s): the seed key is
``fold_in(key(base_seed), s)``, layer ``l`` draws from ``fold_in(seed_key, l)`` (biases from the
nets bias branch, :func:`jaxinit.nets.layer_keys`); the key does not depend on the initializer
(common random numbers). A grid ``weight_variance`` rescales each layer's kernel to
``sigma_w^2 = fan_in * E[W^2]`` (an initializer with ``E[W^2] = 0`` keeps its weights); a grid
``bias_variance`` draws biases ``N(0, sigma_b^2)`` from the layer's bias key; a grid
``learning_rate`` is a traced per-member value (``optax.inject_hyperparams``). The minibatch order
of seed ``s`` comes from its data key ``fold_in(fold_in(key(base_seed), DATA_BRANCH), s)``:
epoch ``e`` is the permutation ``jax.random.permutation(fold_in(data_key, e), n_train)``, cut into
``n_train // batch`` minibatches (the remainder is dropped); every initializer and grid point of
the seed sees the same minibatches (common random numbers).

Non-finite values: a step whose loss, raw-gradient norm or update norm is not finite is not
applied; the member is marked ``diverged``, stops updating, and its later evaluations are NaN.
The others train on.

What is recorded (:data:`EVAL_FIELDS`, :data:`EVAL_LAYER_FIELDS`, :data:`MEMBER_FIELDS`), every
evaluation at steps ``0, e, 2e, ..., steps`` (:func:`eval_steps`; ``e = min(eval_every, steps)``):

* ``train_loss``, ``train_accuracy``: on the whole training set; ``test_loss``, ``test_accuracy``:
  on the test set (accuracies for classification only);
* ``grad_norm`` (global norm of the raw minibatch gradient, before clipping) and ``update_norm``
  (global norm of the applied update): the mean over the steps since the previous evaluation; at
  step 0, the first step's;
* per layer ``l = 0 .. depth`` (``depth`` the readout): ``grad_w_norm`` (norm of the kernel's raw
  gradient, mean over the chunk as above), ``weight_std`` (std of the kernel's entries); per hidden
  layer ``l = 0 .. depth-1``: ``dead_fraction`` (units with ``|phi'(h)| < 1e-6`` on every training
  example, as :mod:`jaxinit.probes` defines it);
* per member: ``final_train_loss``, ``final_test_loss``, ``final_test_accuracy``,
  ``best_test_accuracy``, ``steps_to_loss`` (first evaluated step with ``train_loss <= target_loss``),
  ``steps_to_accuracy`` (first evaluated step with ``test_accuracy >= target_accuracy``), NaN when
  never reached (present only when the plan sets the target), ``diverged``, and per hidden layer
  ``distinct_units``: how many of the layer's units (kernel column and bias) differ from every
  other, two units being the same when ``max|u_i - u_j| <= 1e-4 * max(max|u_i|, max|u_j|)``
  (1 when all units stayed identical, ``width`` when none did: the symmetry problem, measured).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxinit import nets
from jaxinit._prng import fold_in
from jaxinit.activations import activation as resolve_activation
from jaxinit.errors import check_choice, check_int, check_positive, check_real, did_you_mean
from jaxinit.initializers import BaseInitializer, get, normal, zeros

__all__ = [
    "CYCLICAL", "DATA_BRANCH", "DEAD_THRESHOLD", "DISTINCT_RTOL", "EVAL_FIELDS", "EVAL_LAYER_FIELDS",
    "LOSSES", "Layout", "MEMBER_FIELDS", "Program", "Schedule", "TrainPlan", "compile_train", "cyclical_schedule",
    "eval_steps", "grid_arrays", "layout", "make_optimizer", "make_schedule", "optimizer_names", "run_chunk",
    "schedule_names", "train_members",
]

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


# ---------------------------------------------------------------------------------------------
# One seed: parameters of every member, the training scan, the evaluations
# ---------------------------------------------------------------------------------------------
def _wide(plan: TrainPlan) -> np.dtype:
    return np.dtype(np.float64) if plan.dtype == "float64" else np.dtype(np.float32)


def _member_params(plan: TrainPlan, key: jax.Array, wv: jax.Array, bv: jax.Array) -> dict[str, Any]:
    """Parameters of every member of one seed, stacked (n_init * n_grid, ...), initializer-major."""
    dtype, wide = np.dtype(plan.dtype), _wide(plan)
    n_grid = wv.shape[0]
    noise = normal(1.0)
    bias_noise = {
        "input": noise(nets.layer_keys(key, 0)[1], (plan.width,), wide),
        "hidden": jax.vmap(lambda i: noise(nets.layer_keys(key, i)[1], (plan.width,), wide))(
            jnp.arange(1, plan.depth, dtype=jnp.int32)) if plan.depth > 1 else jnp.zeros((0, plan.width), wide),
        "readout": noise(nets.layer_keys(key, plan.depth)[1], (plan.out_dim,), wide),
    }
    layer_of = {"input": 0, "hidden": min(1, plan.depth), "readout": plan.depth}
    per_init = []
    for i, init in enumerate(plan.initializers):
        p = nets.init(key, plan.in_dim, plan.width, plan.depth, plan.out_dim, init, plan.bias_init, dtype)
        out = {}
        for part, layer in layer_of.items():
            fan_in = plan.layer_shape(layer)[0]
            m2 = float(plan.second_moment(layer)[i])
            keep = jnp.isnan(wv) | (m2 == 0.0)
            f = jnp.where(keep, 1.0, jnp.sqrt(jnp.nan_to_num(wv) / (fan_in * (m2 or 1.0)))).astype(wide)
            kernel, bias = p[part]["kernel"], p[part]["bias"]
            f = f.reshape((n_grid,) + (1,) * kernel.ndim)
            k = (kernel[None].astype(wide) * f).astype(dtype)  # exact (f = 1) where the grid sets nothing
            bstd = jnp.sqrt(jnp.nan_to_num(bv)).astype(wide).reshape((n_grid,) + (1,) * bias.ndim)
            b = jnp.where(jnp.isnan(bv).reshape(bstd.shape), bias[None].astype(wide), bstd * bias_noise[part][None])
            out[part] = {"kernel": k, "bias": b.astype(dtype)}
        per_init.append(out)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *per_init)  # (n_init, n_grid, ...)
    return jax.tree.map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), stacked)


def _forward(plan: TrainPlan, params: dict[str, Any], x: jax.Array, dead: bool = False):
    """Logits (and, with ``dead``, each hidden layer's dead-unit fraction on ``x``)."""
    phi = plan.activation

    def layer(x, p):
        h = jnp.matmul(x, p["kernel"]) + p["bias"]
        out = phi(h)
        if not dead:
            return out, None
        slope = jax.jvp(phi, (h,), (jnp.ones_like(h),))[1]
        frac = jnp.mean(jnp.all(jnp.abs(slope.astype(_wide(plan))) < DEAD_THRESHOLD, axis=0).astype(_wide(plan)))
        return out, frac

    x, d0 = layer(x, params["input"])
    x, dh = jax.lax.scan(layer, x, params["hidden"])
    logits = jnp.matmul(x, params["readout"]["kernel"]) + params["readout"]["bias"]
    if not dead:
        return logits
    return logits, jnp.concatenate([d0[None], dh])


def _loss(plan: TrainPlan, logits: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy over the batch (``xent``), or the mean squared error over every
    output (``mse``; one-hot targets for class labels)."""
    logits = logits.astype(_wide(plan))
    if plan.loss == "xent":
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
    target = jax.nn.one_hot(y, plan.out_dim, dtype=logits.dtype) if plan.task == "classification" else y
    return jnp.mean(jnp.square(logits - target.astype(logits.dtype)))


def _accuracy(plan: TrainPlan, logits: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(_wide(plan)))


def _layer_norms(plan: TrainPlan, tree: dict[str, Any]) -> jax.Array:
    """Frobenius norm of each layer's kernel, layers 0 .. depth."""
    w = _wide(plan)

    def norm(a, axes):
        return jnp.sqrt(jnp.sum(jnp.square(a.astype(w)), axis=axes))

    return jnp.concatenate([norm(tree["input"]["kernel"], None)[None], norm(tree["hidden"]["kernel"], (1, 2)),
                            norm(tree["readout"]["kernel"], None)[None]])


def _weight_std(plan: TrainPlan, params: dict[str, Any]) -> jax.Array:
    w = _wide(plan)
    return jnp.concatenate([jnp.std(params["input"]["kernel"].astype(w))[None],
                            jnp.std(params["hidden"]["kernel"].astype(w), axis=(1, 2)),
                            jnp.std(params["readout"]["kernel"].astype(w))[None]])


def _distinct(plan: TrainPlan, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """How many units (columns of ``[kernel; bias]``) differ from every earlier unit."""
    u = jnp.concatenate([kernel, bias[None]], axis=0).T.astype(_wide(plan))  # (width, fan_in + 1)
    scale = jnp.max(jnp.abs(u), axis=1)
    diff = jax.lax.map(lambda ui: jnp.max(jnp.abs(u - ui), axis=1), u)  # (width, width), one row at a time
    same = diff <= DISTINCT_RTOL * jnp.maximum(scale[:, None], scale[None, :])
    earlier = jnp.tril(same, k=-1)  # same[j, i] for i < j
    return jnp.sum(~jnp.any(earlier, axis=1)).astype(jnp.int32)


def _distinct_units(plan: TrainPlan, params: dict[str, Any]) -> jax.Array:
    first = _distinct(plan, params["input"]["kernel"], params["input"]["bias"])
    rest = jax.vmap(lambda k, b: _distinct(plan, k, b))(params["hidden"]["kernel"], params["hidden"]["bias"])
    return jnp.concatenate([first[None], rest])


def _member_summary(plan: TrainPlan, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-member scalars, from the evaluations (numpy, after the program: each is a copy or a
    reduction of recorded values, so it cannot round differently from them)."""
    steps = eval_steps(plan).astype(np.float32)

    def first(reached):
        return np.where(reached.any(-1), steps[np.argmax(reached, axis=-1)], np.float32(np.nan))

    res = {"final_train_loss": out["train_loss"][..., -1], "final_test_loss": out["test_loss"][..., -1]}
    with np.errstate(invalid="ignore"):
        if plan.task == "classification":
            acc = out["test_accuracy"]
            res["final_test_accuracy"] = acc[..., -1]
            res["best_test_accuracy"] = np.where(np.isnan(acc).all(-1), np.float32(np.nan),
                                                 np.max(np.nan_to_num(acc, nan=-np.inf), axis=-1))
            if plan.target_accuracy is not None:
                res["steps_to_accuracy"] = first(acc >= plan.target_accuracy)
        if plan.target_loss is not None:
            res["steps_to_loss"] = first(out["train_loss"] <= plan.target_loss)
    return {k: np.asarray(v, np.float32) for k, v in res.items()}


def _seed_init(plan: TrainPlan, base_seed, seed, wv, bv):
    """Initial parameters of every member of one seed (seed key ``fold_in(key(base_seed), seed)``)."""
    return _member_params(plan, fold_in(jax.random.key(base_seed), seed), wv, bv)


def _seed_train(plan: TrainPlan, base_seed, seed, params, lr, x_train, y_train, x_test, y_test):
    """Train every member of one seed from ``params`` (stacked over members); arrays (n_init, n_grid, ...)."""
    wide = _wide(plan)
    root = jax.random.key(base_seed)
    dkey = fold_in(fold_in(root, DATA_BRANCH), seed)
    n_grid = lr.shape[0]
    schedule = plan.learning_rate
    if isinstance(schedule, Schedule):
        schedule = make_schedule(schedule, check=False)
    tx = make_optimizer(plan, schedule)
    lr_member = jnp.tile(jnp.where(jnp.isnan(lr), jnp.asarray(
        plan.learning_rate if not isinstance(plan.learning_rate, Schedule) else 0.0, lr.dtype), lr), plan.n_init)
    opt = jax.vmap(tx.init)(params)
    if not isinstance(plan.learning_rate, Schedule):
        opt = jax.vmap(lambda s, r: _set_learning_rate(plan, s, r))(opt, lr_member)
    n_combo = plan.n_init * n_grid
    n_train = x_train.shape[0]
    dtype = np.dtype(plan.dtype)
    x_train, x_test = x_train.astype(dtype), x_test.astype(dtype)
    batch = plan.batch or n_train
    per_epoch = n_train // batch

    def minibatch(t):
        if plan.batch == 0:
            return x_train, y_train
        perm = jax.random.permutation(fold_in(dkey, t // per_epoch), n_train)
        idx = jax.lax.dynamic_slice(perm, ((t % per_epoch) * batch,), (batch,))
        return x_train[idx], y_train[idx]

    def member_step(p, s, alive, xb, yb, active):
        loss, g = jax.value_and_grad(lambda q: _loss(plan, _forward(plan, q, xb), yb))(p)
        gnorm = optax.tree.norm(g).astype(wide)
        updates, s_new = tx.update(g, s, p)
        unorm = optax.tree.norm(updates).astype(wide)
        finite = jnp.isfinite(loss) & jnp.isfinite(gnorm) & jnp.isfinite(unorm)
        ok = alive & active & finite
        p_new = optax.apply_updates(p, updates)
        p = jax.tree.map(lambda a, b: jnp.where(ok, a, b), p_new, p)
        s = jax.tree.map(lambda a, b: jnp.where(ok, a, b), s_new, s)
        alive = alive & ~(active & ~finite)
        stats = (gnorm, unorm, _layer_norms(plan, g))
        return p, s, alive, ok, stats

    def train_step(carry, t):
        (p, s, alive), sums, count, firsts = carry
        xb, yb = minibatch(t)
        active = t < plan.steps
        p, s, alive, ok, stats = jax.vmap(member_step, in_axes=(0, 0, 0, None, None, None))(
            p, s, alive, xb, yb, active)
        # Sums carried step by step (not a reduction over the stacked steps, whose order XLA may
        # choose differently in another program): the chunk means are bitwise the same everywhere.
        w = ok.astype(wide)
        sums = tuple(acc + jnp.where(w.reshape(w.shape + (1,) * (a.ndim - 1)) > 0, a, 0.0)
                     for acc, a in zip(sums, stats, strict=True))
        # The first step of each chunk is kept as well (chunk 0's is the step-0 record).
        firsts = tuple(jnp.where(t % plan.chunk_steps == 0,
                                 jnp.where(ok.reshape(ok.shape + (1,) * (a.ndim - 1)), a, jnp.nan), f)
                       for f, a in zip(firsts, stats, strict=True))
        return ((p, s, alive), sums, count + w, firsts), None

    def evaluate(p, alive):
        def one(q):
            logits, dead = _forward(plan, q, x_train, dead=True)
            test_logits = _forward(plan, q, x_test)
            out = {"train_loss": _loss(plan, logits, y_train), "test_loss": _loss(plan, test_logits, y_test),
                   "weight_std": _weight_std(plan, q), "dead_fraction": dead}
            if plan.task == "classification":
                out["train_accuracy"] = _accuracy(plan, logits, y_train)
                out["test_accuracy"] = _accuracy(plan, test_logits, y_test)
            return out

        out = jax.vmap(one)(p)
        return {k: jnp.where(alive.reshape((-1,) + (1,) * (v.ndim - 1)), v, jnp.nan) for k, v in out.items()}

    names = ("grad_norm", "update_norm", "grad_w_norm")
    zero_sums = (jnp.zeros((n_combo,), wide), jnp.zeros((n_combo,), wide), jnp.zeros((n_combo, plan.depth + 1), wide))

    def chunk(carry, k):
        steps = k * plan.chunk_steps + jnp.arange(plan.chunk_steps, dtype=jnp.int32)
        inner = (carry, zero_sums, jnp.zeros((n_combo,), wide), zero_sums)
        (carry, sums, count, firsts), _ = jax.lax.scan(train_step, inner, steps)
        means = {}
        for n, total in zip(names, sums, strict=True):
            c = count.reshape(count.shape + (1,) * (total.ndim - 1))
            means[n] = jnp.where(c > 0, total / jnp.maximum(c, 1.0), jnp.nan)
        return carry, ({**evaluate(carry[0], carry[2]), **means}, dict(zip(names, firsts, strict=True)))

    alive0 = jnp.ones((n_combo,), bool)
    ev0 = evaluate(params, alive0)
    (params, _, alive), (evals, firsts) = jax.lax.scan(chunk, (params, opt, alive0),
                                                       jnp.arange(plan.n_chunks, dtype=jnp.int32))
    ev0.update({n: a[0] for n, a in firsts.items()})
    evals = {n: jnp.concatenate([ev0[n][None], evals[n]]) for n in evals}  # (n_eval, combo, ...)
    evals = {n: jnp.moveaxis(a, 0, 1) for n, a in evals.items()}  # (combo, n_eval, ...)
    out = dict(evals)
    out["diverged"] = ~alive
    out["distinct_units"] = jax.vmap(lambda q: _distinct_units(plan, q))(params)
    return {k: v.reshape(plan.n_init, n_grid, *v.shape[1:]) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Programs, chunks of seeds
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Layout:
    """How one program's seeds are cut: ``block`` seeds per vmap (fixed: a member's numbers depend
    on it, not on ``size`` or ``devices``), ``size`` seeds per chunk, ``devices`` local devices."""

    block: int
    size: int
    devices: int

    def chunks(self, seeds: Sequence[int]) -> list[list[int]]:
        return [list(seeds[i:i + self.size]) for i in range(0, len(seeds), self.size)]


def layout(n_seeds: int, *, chunk: int = 0, block: int | None = None, devices: int | None = None) -> Layout:
    """Seeds per vmap block (default: 4 on the CPU, 32 on accelerators, at most the seeds rounded
    up to a power of two), devices (default: every local device with a block of seeds to run) and a
    chunk size that is a multiple of ``block x devices`` (default: all seeds in one chunk)."""
    n_seeds = check_int("n_seeds", n_seeds, minimum=1)
    if block is None:
        cap = 4 if jax.default_backend() == "cpu" else 32
        block = 1
        while block < min(cap, n_seeds):
            block *= 2
    block = check_int("block", block, minimum=1)
    if devices is None:
        devices = max(1, min(jax.local_device_count(), -(-n_seeds // block)))
    devices = check_int("devices", devices, minimum=1)
    if devices > jax.local_device_count():
        raise ValueError(f"devices must be <= the {jax.local_device_count()} local device(s); got {devices}.")
    unit = block * devices
    chunk = n_seeds if chunk <= 0 else chunk
    return Layout(block=block, size=-(-chunk // unit) * unit, devices=devices)


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


def _data_structs(plan: TrainPlan, n_train: int, n_test: int) -> tuple[jax.ShapeDtypeStruct, ...]:
    y = (lambda n: jax.ShapeDtypeStruct((n,), jnp.int32)) if plan.task == "classification" else (
        lambda n: jax.ShapeDtypeStruct((n, plan.out_dim), jnp.float32))
    return (jax.ShapeDtypeStruct((n_train, plan.in_dim), jnp.float32), y(n_train),
            jax.ShapeDtypeStruct((n_test, plan.in_dim), jnp.float32), y(n_test))


@dataclasses.dataclass(frozen=True)
class Program:
    """The two compiled programs of one plan: ``init`` (initial parameters of a chunk's members) and
    ``train`` (the training of the chunk from them). Initialization is its own XLA program because
    its random-number code, compiled inside the training loop's nest, tripled the compile time."""

    init: Any
    train: Any


def compile_train(plan: TrainPlan, n_train: int, n_test: int, n_grid: int, chunks: Layout) -> tuple[Program, float]:
    """Compile the :class:`Program` of ``plan`` for chunks of ``chunks.size`` seeds; returns
    ``(program, seconds)``. Run it on every chunk of seeds with :func:`run_chunk` (no
    recompilation per chunk). Outputs have the seed axis first."""
    plan.check_data(n_train, plan.in_dim)
    wide = _wide(plan)

    def init_chunk(base_seed, seeds, wv, bv):
        # lax.map's batching cannot reshape zero-size outputs: depth 1's empty hidden stack is
        # dropped from the map and restored after it.
        def one(s):
            p = _seed_init(plan, base_seed, s, wv, bv)
            return p if plan.depth > 1 else {k: v for k, v in p.items() if k != "hidden"}

        out = jax.lax.map(one, seeds, batch_size=chunks.block)
        if plan.depth == 1:
            n = seeds.shape[0]
            m = plan.n_init * wv.shape[0]
            dt = np.dtype(plan.dtype)
            out["hidden"] = {"kernel": jnp.zeros((n, m, 0, plan.width, plan.width), dt),
                             "bias": jnp.zeros((n, m, 0, plan.width), dt)}
        return out

    def train_chunk(base_seed, seeds, params, lr, *data):
        return jax.lax.map(lambda sp: _seed_train(plan, base_seed, sp[0], sp[1], lr, *data), (seeds, params),
                           batch_size=chunks.block)

    # shard_map even over one device: the per-device program is then the same for every device
    # count (a plain jit of the same function fused the gradient norms differently, 1 ulp apart).
    if True:
        mesh = jax.make_mesh((chunks.devices,), ("seeds",), devices=jax.local_devices()[:chunks.devices])
        P = jax.sharding.PartitionSpec
        seed_sharding = jax.sharding.NamedSharding(mesh, P("seeds"))
        init_chunk = jax.shard_map(init_chunk, mesh=mesh, in_specs=(P(), P("seeds"), P(), P()),
                                   out_specs=P("seeds"), check_vma=False)
        train_chunk = jax.shard_map(train_chunk, mesh=mesh, in_specs=(P(), P("seeds"), P("seeds"), *(P(),) * 5),
                                    out_specs=P("seeds"), check_vma=False)
    base = jax.ShapeDtypeStruct((), jnp.uint32)
    seeds = jax.ShapeDtypeStruct((chunks.size,), jnp.int32, sharding=seed_sharding)
    grid = jax.ShapeDtypeStruct((n_grid,), wide)
    start = time.perf_counter()
    init = jax.jit(init_chunk).lower(base, seeds, grid, grid).compile()
    params = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=seed_sharding),
                          jax.eval_shape(init_chunk, base, seeds, grid, grid))
    train = jax.jit(train_chunk).lower(base, seeds, params, grid, *_data_structs(plan, n_train, n_test)).compile()
    return Program(init, train), time.perf_counter() - start


def _data_arrays(plan: TrainPlan, data: Any) -> tuple[np.ndarray, ...]:
    arrays = data.arrays() if hasattr(data, "arrays") else tuple(data)
    if len(arrays) != 4:
        raise ValueError(f"data must be (x_train, y_train, x_test, y_test) or a Dataset; got {len(arrays)} arrays.")
    xtr, ytr, xte, yte = (np.asarray(a) for a in arrays)
    ylab = np.int32 if plan.task == "classification" else np.float32
    if plan.task == "regression":
        ytr, yte = (y.reshape(y.shape[0], -1) for y in (ytr, yte))
    plan.check_data(xtr.shape[0], xtr.shape[1])
    return xtr.astype(np.float32), ytr.astype(ylab), xte.astype(np.float32), yte.astype(ylab)


def run_chunk(program: Program, plan: TrainPlan, chunks: Layout, data: Any, base_seed: int,
              seed_ids: Sequence[int], grid: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """Run one chunk of seeds (padded to the compiled size with repeats of its last seed); numpy
    arrays shaped ``(n_init, n_grid, len(seed_ids), ...)``."""
    n = len(seed_ids)
    if not 1 <= n <= chunks.size:
        raise ValueError(f"a chunk holds 1 to {chunks.size} seeds; got {n}.")
    padded = np.asarray(list(seed_ids) + [seed_ids[-1]] * (chunks.size - n), np.int32)
    seeds = jnp.asarray(padded)
    seeds = jax.device_put(seeds, program.init.input_shardings[0][1])
    wide = _wide(plan)
    wv, bv, lr = (np.asarray(a, wide) for a in grid)
    params = program.init(np.uint32(base_seed), seeds, wv, bv)
    out = program.train(np.uint32(base_seed), seeds, params, lr, *_data_arrays(plan, data))
    out = {k: np.moveaxis(np.asarray(v)[:n], 0, 2) for k, v in out.items()}
    return {**out, **_member_summary(plan, out)}


def train_members(plan: TrainPlan, data: Any, base_seed: int = 0, seed_ids: Sequence[int] = (0,),
                  grid: Sequence[Mapping[str, float]] | None = None, *, chunk: int = 0, block: int | None = None,
                  devices: int | None = None) -> dict[str, np.ndarray]:
    """Train every (initializer, grid point, seed) member of ``plan`` on ``data``; one compiled program.

    Args:
      plan: the :class:`TrainPlan`.
      data: a :class:`jaxinit.lab.data.Dataset` or ``(x_train, y_train, x_test, y_test)``.
      base_seed: the root key's seed (``key(base_seed)``).
      seed_ids: the seeds ``s`` to train (keys ``fold_in(key(base_seed), s)``).
      grid: points ``{"weight_variance": ..., "bias_variance": ..., "learning_rate": ...}`` (each
        optional), or ``None`` for the plan as is.
      chunk, block, devices: see :func:`layout`; a member's numbers depend on ``block`` alone.

    Returns:
      numpy arrays with dims ``(initializer, grid_point, seed, ...)``: per evaluation
      ``(..., step)`` and ``(..., step, layer)`` (steps :func:`eval_steps`), per member
      ``(...)`` and ``distinct_units`` ``(..., layer)``; names in the module docstring.

    Example:
      >>> import numpy as np, jaxinit
      >>> from jaxinit.lab.engine.train import TrainPlan, train_members
      >>> rng = np.random.default_rng(0)
      >>> x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 2, 64)
      >>> plan = TrainPlan(2, 8, 4, 2, ("he_normal", "zeros"), steps=10, batch=16, eval_every=5)
      >>> out = train_members(plan, (x, y, x, y), seed_ids=[0, 1])
      >>> out["train_loss"].shape, out["grad_w_norm"].shape, out["distinct_units"][1].max()
      ((2, 1, 2, 3), (2, 1, 2, 3, 3), np.int32(1))
    """
    seed_ids = [check_int("seed_ids entries", s, minimum=0) for s in seed_ids]
    if not seed_ids:
        raise ValueError("seed_ids must name at least one seed; got [].")
    base_seed = check_int("base_seed", base_seed, minimum=0)
    arrays = _data_arrays(plan, data)
    g = grid_arrays(plan, grid)
    chunks = layout(len(seed_ids), chunk=chunk, block=block, devices=devices)
    program, _ = compile_train(plan, arrays[0].shape[0], arrays[2].shape[0], g[0].shape[0], chunks)
    parts = [run_chunk(program, plan, chunks, arrays, base_seed, ids, g) for ids in chunks.chunks(seed_ids)]
    return {k: np.concatenate([p[k] for p in parts], axis=2) for k in parts[0]}
