"""The config's schema: the frozen sections a validated config is made of (a sweep, or a training
run: a config with ``[train]``, whose ``data`` and ``train`` sections are set).

Their keys, defaults and allowed values are listed once in :data:`jaxinit.lab.config.keys.KEYS` (the
defaults below are the same; a test compares them). Read with :func:`jaxinit.lab.config.load`;
written back with :meth:`SweepConfig.to_toml` / :func:`jaxinit.lab.config.to_toml`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jaxinit._toml import dumps_toml
from jaxinit.activations import Activation
from jaxinit.initializers import BaseInitializer
from jaxinit.lab.config.keys import GRID_PARAMS
from jaxinit.lsuv import LSUV

DIGITS_SAMPLES = 1797  # sklearn.datasets.load_digits(): 1797 images of 8x8 = 64 features
DIGITS_FEATURES = 64
DIGITS_CLASSES = 10
READOUT_DIM = 10  # readout width for the gradient probes' loss (10 classes for xent)
MAX_SEED = 2**32

# Convenience names for overrides; any dotted key path works too.
OVERRIDE_ALIASES = {"seeds": "sweep.seeds", "chunk": "output.chunk", "out": "output.dir",
                    "dir": "output.dir", "base_seed": "sweep.base_seed"}

# The frozen result
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InitializerEntry:
    """One initializer of the sweep: its display label, the built value, and the spec as written."""

    label: str
    init: BaseInitializer | LSUV  # LSUV: a base initializer fitted on the run's own batch
    spec: Any = dataclasses.field(default=None, compare=False, repr=False)

    def to_spec(self) -> Any:
        """The spec as written in the config (a name or a table), as fresh plain data."""
        return copy.deepcopy(self.spec) if self.spec is not None else self.init.to_dict()


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    depth: tuple[int, ...]
    width: tuple[int, ...]
    activation: tuple[Activation, ...]
    bias: InitializerEntry
    dtype: str = "float32"


@dataclasses.dataclass(frozen=True)
class InputsConfig:
    batch: int = 128
    kind: str = "gaussian"
    correlation: float | None = None
    q0: float = 1.0

    @property
    def n_inputs(self) -> int:
        """Rows fed to each network: ``batch``, or ``2 * batch`` for pairs."""
        return 2 * self.batch if self.kind == "pairs" else self.batch


@dataclasses.dataclass(frozen=True)
class SweepSection:
    seeds: int
    base_seed: int
    initializers: tuple[InitializerEntry, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(e.label for e in self.initializers)


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """Either lists per parameter (Cartesian product) or explicit ``points``; see :func:`grid_points`.

    ``points`` holds each point as a tuple of ``(parameter, value)`` pairs, so the value is hashable.
    """

    weight_variance: tuple[float, ...] | None = None
    bias_variance: tuple[float, ...] | None = None
    learning_rate: tuple[float, ...] | None = None
    points: tuple[tuple[tuple[str, float], ...], ...] | None = None

    @property
    def params(self) -> tuple[str, ...]:
        """The grid parameters, in :data:`GRID_PARAMS` order."""
        if self.points is not None:
            return tuple(p for p in GRID_PARAMS if p in dict(self.points[0])) if self.points else ()
        return tuple(p for p in GRID_PARAMS if getattr(self, p) is not None)


@dataclasses.dataclass(frozen=True)
class ProbesConfig:
    forward: bool = True
    gradients: bool = True
    jacobian: bool = False
    spectrum: bool = False
    theory: bool = True
    loss: str = "mse"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """A training run's dataset (:mod:`jaxinit.lab.data`): ``name`` digits, teacher or npz.

    ``in_dim`` and ``out_dim`` (the network's input features and readout width) are resolved by
    the reader: the digits' 64 and 10, the teacher's own, an ``.npz``'s from its arrays (``None``
    when a folder's config is read back without the file).
    """

    name: str = "digits"
    path: str | None = None
    test_fraction: float = 0.25
    seed: int = 0
    task: str = "classification"
    n: int = 2048
    in_dim: int | None = None
    n_classes: int | None = None
    out_dim: int | None = None
    noise: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The keys as written for this dataset (those another dataset ignores left out)."""
        out: dict[str, Any] = {"name": self.name}
        if self.name == "npz":
            out["path"] = self.path
        else:
            out["test_fraction"] = self.test_fraction
            out["seed"] = self.seed
        if self.name != "digits":
            out["task"] = self.task
        if self.name == "teacher":
            out.update(n=self.n, in_dim=self.in_dim, noise=self.noise)
            out.update({"n_classes": self.n_classes} if self.task == "classification" else {"out_dim": self.out_dim})
        elif self.name == "npz" and self.task == "classification" and self.n_classes is not None:
            out["n_classes"] = self.n_classes
        return out


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run's optimization (:class:`jaxinit.lab.engine.train.TrainPlan` takes the same).

    ``optimizer`` is ``(name, ((argument, value), ...))``; ``learning_rate`` a number or a schedule
    table as written (``{"name": "cyclical", "base": ..., "max": ..., "step_size": ...}``).
    """

    steps: int = 1000
    batch: int = 128
    optimizer: tuple[str, tuple[tuple[str, Any], ...]] = ("sgd", ())
    learning_rate: Any = 0.05
    clip_global_norm: float | None = None
    loss: str = "xent"
    eval_every: int = 10
    target_accuracy: float | None = None
    target_loss: float | None = None

    def eval_steps(self) -> tuple[int, ...]:
        """The evaluated steps: ``0, e, 2e, ..., steps`` with ``e = min(eval_every, steps)``."""
        return evaluation_steps(self.steps, self.eval_every)

    def to_dict(self) -> dict[str, Any]:
        name, kwargs = self.optimizer
        out: dict[str, Any] = {"steps": self.steps, "batch": self.batch,
                               "optimizer": {"name": name, **dict(kwargs)} if kwargs else name,
                               "learning_rate": copy.deepcopy(self.learning_rate)}
        if self.clip_global_norm is not None:
            out["clip_global_norm"] = self.clip_global_norm
        out["loss"] = self.loss
        out["eval_every"] = self.eval_every
        for name in ("target_accuracy", "target_loss"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def evaluation_steps(steps: int, eval_every: int) -> tuple[int, ...]:
    """``0, e, 2e, ..., steps`` with ``e = min(eval_every, steps)`` (the last one is ``steps``).

    Example:
      >>> evaluation_steps(25, 10)
      (0, 10, 20, 25)
    """
    every = min(eval_every, steps)
    return tuple(min(k * every, steps) for k in range(-(-steps // every) + 1))


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    dir: str
    chunk: int = 0
    memory_budget_mb: float | None = None


@dataclasses.dataclass(frozen=True)
class Program:
    """One compiled program: a distinct (depth, width, activation) shape of the sweep."""

    index: int
    depth: int
    width: int
    activation: Activation

    @property
    def id(self) -> str:
        """A file-name-safe id, e.g. ``"depth50-width256-relu"``, unique within a sweep."""
        act = re.sub(r"[^A-Za-z0-9_.]+", "_", str(self.activation)).strip("_")
        return f"depth{self.depth}-width{self.width}-{act}"

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "depth": self.depth, "width": self.width,
                "activation": str(self.activation)}


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A validated config: build with :func:`load` or :func:`from_dict`, never by hand.

    A sweep (measurement at initialization; ``kind == "sweep"``) or, with ``data`` and ``train``
    set, a training run (``kind == "train"``: ``inputs`` and ``probes`` then hold their defaults and
    are neither written nor hashed).
    """

    network: NetworkConfig
    inputs: InputsConfig
    sweep: SweepSection
    grid: GridConfig | None
    probes: ProbesConfig
    output: OutputConfig
    source: str = dataclasses.field(default="<dict>", compare=False)
    text: str | None = dataclasses.field(default=None, compare=False, repr=False)
    data: DataConfig | None = None
    train: TrainConfig | None = None

    @property
    def name(self) -> str:
        """The config file's stem (``"quickstart"``), or ``"sweep"`` for a dict."""
        return _stem(self.source)

    @property
    def kind(self) -> str:
        """``"train"`` for a training run (a ``[train]`` section), else ``"sweep"``."""
        return "train" if self.train is not None else "sweep"

    def programs(self) -> tuple[Program, ...]:
        """One :class:`Program` per (depth, width, activation), depth outermost."""
        combos = itertools.product(self.network.depth, self.network.width, self.network.activation)
        return tuple(Program(i, d, w, a) for i, (d, w, a) in enumerate(combos))

    def grid_points(self) -> tuple[dict[str, float], ...]:
        return grid_points(self.grid)

    def in_dim(self, program: Program) -> int:
        """The network's input size: a training run's data features; the digits' 64 features; else
        the program's width."""
        if self.data is not None and self.data.in_dim is not None:
            return self.data.in_dim
        return DIGITS_FEATURES if self.inputs.kind == "digits" else program.width

    def out_dim(self) -> int:
        """The readout width: a training run's classes or targets, else the gradient probes' 10."""
        if self.data is not None and self.data.out_dim is not None:
            return self.data.out_dim
        return READOUT_DIM

    def layer_shape(self, program: Program, layer: int) -> tuple[int, int]:
        """The weight matrix of ``layer`` (0: the first, ``program.depth``: the readout)."""
        if layer == 0:
            return (self.in_dim(program), program.width)
        if layer == program.depth:
            return (program.width, self.out_dim())
        return (program.width, program.width)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (overrides and defaults applied); ``from_dict`` reads it."""
        net = self.network
        out: dict[str, Any] = {
            "network": {
                "depth": _one_or_list(net.depth),
                "width": _one_or_list(net.width),
                "activation": _one_or_list(tuple(_activation_spec(a) for a in net.activation)),
                "bias": net.bias.to_spec(),
                "dtype": net.dtype,
            },
            "inputs": {"batch": self.inputs.batch, "kind": self.inputs.kind, "q0": self.inputs.q0},
            "sweep": {"seeds": self.sweep.seeds, "base_seed": self.sweep.base_seed,
                      "initializers": [e.to_spec() for e in self.sweep.initializers]},
        }
        if self.inputs.correlation is not None:
            out["inputs"]["correlation"] = self.inputs.correlation
        if self.kind == "train":
            del out["inputs"]
            out["data"] = self.data.to_dict()
            out["train"] = self.train.to_dict()
        if self.grid is not None:
            if self.grid.points is not None:
                out["grid"] = {"points": [dict(p) for p in self.grid.points]}
            else:
                out["grid"] = {p: list(getattr(self.grid, p)) for p in self.grid.params}
        if self.kind == "sweep":
            out["probes"] = dataclasses.asdict(self.probes)
        out["output"] = {"dir": self.output.dir, "chunk": self.output.chunk}
        if self.output.memory_budget_mb is not None:
            out["output"]["memory_budget_mb"] = self.output.memory_budget_mb
        return out

    def to_toml(self) -> str:
        """:meth:`to_dict` written as TOML (``load`` reads it back to an equal config)."""
        return dumps_toml(self.to_dict())

    def hash_payload(self) -> dict[str, Any]:
        """Everything that changes the numbers or their labels: all but ``[output]``, plus the
        initializers as the registry resolved them (so a changed default is noticed too)."""
        data = self.to_dict()
        del data["output"]
        data["resolved"] = {
            "initializers": [e.init.to_dict() for e in self.sweep.initializers],
            "bias": self.network.bias.init.to_dict(),
            "activations": [[a.name, a.param] for a in self.network.activation],
            "grid_points": list(self.grid_points()),
        }
        return data

    def config_hash(self) -> str:
        """A stable 16-hex-digit digest of :meth:`hash_payload` (same config -> same hash)."""
        text = json.dumps(self.hash_payload(), sort_keys=True, separators=(",", ":"), default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def grid_points(grid: GridConfig | Mapping[str, Any] | None) -> tuple[dict[str, float], ...]:
    """Expand a grid into its points, in a fixed order.

    Lists give their Cartesian product, ``weight_variance`` outermost; explicit ``points`` are
    returned as listed; no grid gives a single empty point (the initializers' own scales).

    Example:
      >>> grid_points({"weight_variance": [1.0, 2.0], "bias_variance": [0.0, 0.1]})
      ({'weight_variance': 1.0, 'bias_variance': 0.0}, {'weight_variance': 1.0, 'bias_variance': 0.1},
       {'weight_variance': 2.0, 'bias_variance': 0.0}, {'weight_variance': 2.0, 'bias_variance': 0.1})
      >>> grid_points({"points": [{"weight_variance": 1.5, "bias_variance": 0.05}]})
      ({'weight_variance': 1.5, 'bias_variance': 0.05},)
      >>> grid_points(None)
      ({},)
    """
    if grid is None:
        return ({},)
    if isinstance(grid, GridConfig):
        if grid.points is not None:
            return tuple(dict(p) for p in grid.points)
        lists = {p: getattr(grid, p) for p in grid.params}
    elif isinstance(grid, Mapping):
        if "points" in grid:
            return tuple({k: float(v) for k, v in dict(p).items()} for p in grid["points"])
        lists = {p: grid[p] for p in GRID_PARAMS if p in grid}
        lists.update({p: v for p, v in grid.items() if p not in lists})
    else:
        raise TypeError(f"grid must be a GridConfig, a mapping or None; got {grid!r}.")
    names = list(lists)
    values = [[float(v) for v in lists[n]] for n in names]
    return tuple(dict(zip(names, combo, strict=True)) for combo in itertools.product(*values))


# ---------------------------------------------------------------------------------------------
# Reading and validating
# ---------------------------------------------------------------------------------------------


def _one_or_list(values: tuple) -> Any:
    return values[0] if len(values) == 1 else list(values)


def _activation_spec(act: Activation) -> Any:
    return act.name if str(act) == act.name else {"name": act.name, "param": act.param}


def _stem(source: str) -> str:
    path = Path(source)
    return path.stem if path.suffix == ".toml" and path.stem else "sweep"
