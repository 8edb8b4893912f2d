"""Sweep config files: TOML -> a frozen, validated :class:`SweepConfig`.

A config is read and checked once, before anything compiles. Every problem becomes a
:class:`ConfigError` naming the file, the key path and the bad value::

    configs/phase.toml: grid.bias_variance[2] = -0.1: must be >= 0
    configs/quick.toml: network.dept: unknown key; did you mean 'depth'? allowed: depth, width, ...

The schema (every key, its type and default) lives in :data:`SCHEMA_TEXT` below and in the shipped
files under ``configs/``. Initializer and bias specs go through :func:`jaxinit.get` and activations
through :func:`jaxinit.activations.activation` at load time, so an unknown name fails here, with the
registry's own did-you-mean.

The library never opens a config on its own initiative: the CLI calls :func:`load`, research code may
call :func:`from_dict`, and the engine only ever sees the frozen result.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import hashlib
import importlib.util
import itertools
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxinit.activations import Activation, activation
from jaxinit.initializers import BaseInitializer
from jaxinit.initializers import get as get_initializer

__all__ = [
    "ConfigError", "GridConfig", "InitializerEntry", "InputsConfig", "NetworkConfig", "OutputConfig",
    "ProbesConfig", "Program", "SweepConfig", "SweepSection", "from_dict", "grid_points", "load",
    "parse_override",
]

SCHEMA_TEXT = """\
[network]
depth = 50                  # int >= 1, or a list of them (one compiled program per distinct shape)
width = 256                 # int >= 1, or a list of them
activation = "relu"         # name, {name = "leaky_relu", param = 0.2}, or a list of those
bias = "zeros"              # any initializer spec jaxinit.get reads (default "zeros")
dtype = "float32"           # float32 | float64 (needs JAX_ENABLE_X64=1) | bfloat16 | float16
[inputs]
batch = 128                 # int >= 1: inputs per network (kind = "pairs": number of pairs)
kind = "gaussian"           # gaussian | pairs | digits (sklearn's 8x8 digits, 64 features, standardized)
correlation = 0.5           # kind = "pairs" only (required there): correlation of each pair, in [-1, 1]
q0 = 1.0                    # > 0: second moment of the inputs (default 1.0)
[sweep]
seeds = 16                  # int >= 1 (default 16)
base_seed = 0               # int in [0, 2**32) (default 0)
initializers = ["he_normal", {name = "normal", stddev = 0.01, label = "N(0, 0.01^2)"}]
[grid]                      # optional; weight_variance sets sigma_w^2 = fan_in * Var[W]
weight_variance = [1.0, 2.0]  # > 0 each
bias_variance = [0.0, 0.05]   # >= 0 each; the grid is the Cartesian product of the lists,
                              # or list paired points instead: [[grid.points]] tables with these keys
[probes]
forward = true              # defaults: forward, gradients, theory true; jacobian, spectrum false
gradients = true
jacobian = false
spectrum = false
theory = true               # needs forward
loss = "mse"                # mse | xent: the loss the gradient probes differentiate
[output]
dir = "results/quickstart"  # default results/<config file stem>
chunk = 0                   # seeds per chunk; 0 picks one from the memory budget
memory_budget_mb = 2048     # optional: budget for one chunk (default: from the device)
"""

DTYPES = ("float32", "float64", "bfloat16", "float16")
INPUT_KINDS = ("gaussian", "pairs", "digits")
LOSSES = ("mse", "xent")
GRID_PARAMS = ("weight_variance", "bias_variance")  # the order of the Cartesian product (outer first)
PROBES = ("forward", "gradients", "jacobian", "spectrum", "theory")
DIGITS_SAMPLES = 1797  # sklearn.datasets.load_digits(): 1797 images of 8x8 = 64 features
DIGITS_FEATURES = 64
MAX_SEED = 2**32

# Convenience names for overrides; any dotted key path works too.
OVERRIDE_ALIASES = {"seeds": "sweep.seeds", "chunk": "output.chunk", "out": "output.dir",
                    "dir": "output.dir", "base_seed": "sweep.base_seed"}


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


def format_value(value: Any, limit: int = 80) -> str:
    """A value as TOML would spell it (``true``, ``"relu"``, ``[1, 2]``), cut to ``limit`` chars."""
    text = _toml_value(value) if _is_plain(value) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------------
# The frozen result
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InitializerEntry:
    """One initializer of the sweep: its display label, the built value, and the spec as written."""

    label: str
    init: BaseInitializer
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
    """A validated sweep: build with :func:`load` or :func:`from_dict`, never by hand."""

    network: NetworkConfig
    inputs: InputsConfig
    sweep: SweepSection
    grid: GridConfig | None
    probes: ProbesConfig
    output: OutputConfig
    source: str = dataclasses.field(default="<dict>", compare=False)
    text: str | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        """The config file's stem (``"quickstart"``), or ``"sweep"`` for a dict."""
        return _stem(self.source)

    def programs(self) -> tuple[Program, ...]:
        """One :class:`Program` per (depth, width, activation), depth outermost."""
        combos = itertools.product(self.network.depth, self.network.width, self.network.activation)
        return tuple(Program(i, d, w, a) for i, (d, w, a) in enumerate(combos))

    def grid_points(self) -> tuple[dict[str, float], ...]:
        return grid_points(self.grid)

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
        if self.grid is not None:
            if self.grid.points is not None:
                out["grid"] = {"points": [dict(p) for p in self.grid.points]}
            else:
                out["grid"] = {p: list(getattr(self.grid, p)) for p in self.grid.params}
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


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> SweepConfig:
    """Read a TOML sweep config, apply ``overrides``, validate everything, freeze.

    Args:
      path: the ``.toml`` file.
      overrides: ``{"sweep.seeds": 4, "output.dir": "out", ...}``: dotted key paths (or the aliases
        ``seeds``, ``base_seed``, ``chunk``, ``out``/``dir``) set before validation; ``None`` values
        are skipped, so a CLI can pass its optional flags straight through.

    Returns:
      A frozen :class:`SweepConfig`; ``.text`` holds the file as given.

    Raises:
      ConfigError: unreadable file, malformed TOML, or any schema violation.
    """
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise ConfigError(source, "", "is a directory, not a config file") from None
    except OSError as err:
        raise ConfigError(source, "", f"cannot read config file: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(source, "", f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(source, "", f"malformed TOML: {err}") from None
    return from_dict(data, source=source, overrides=overrides, text=text)


def from_dict(data: Mapping[str, Any], source: str = "<dict>", overrides: Mapping[str, Any] | None = None,
              *, text: str | None = None, check_process: bool = True) -> SweepConfig:
    """Validate plain data (as ``tomllib`` returns it) into a frozen :class:`SweepConfig`.

    ``source`` names the origin in error messages and gives the default output folder
    (``results/<stem>``). ``overrides`` as in :func:`load`.

    ``check_process=False`` skips the checks of what *this process* could run (64-bit JAX for
    ``network.dtype = "float64"``, scikit-learn for ``inputs.kind = "digits"``): for reading the
    config of a finished results folder, which must not depend on the reader's JAX settings.
    Everything about the config itself is still checked.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(source, "", f"a config must be a table of sections; got {_type_name(data)}")
    data = copy.deepcopy(dict(data))
    overridden = _apply_overrides(data, overrides or {}, source)
    return _Reader(source, overridden, check_process).config(data, text)


def parse_override(text: str) -> tuple[str, Any]:
    """``"network.depth=10"`` -> ``("network.depth", 10)``; the value is read as TOML, else a string.

    Example:
      >>> parse_override("network.activation=['relu', 'tanh']")
      ('network.activation', ['relu', 'tanh'])
      >>> parse_override("output.dir=results/x")
      ('output.dir', 'results/x')
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError("--set", "", f"an override must read KEY=VALUE (e.g. sweep.seeds=4); got {text!r}")
    try:
        return key, tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value.strip()


def _apply_overrides(data: dict, overrides: Mapping[str, Any], source: str) -> set[str]:
    done = set()
    for key, value in overrides.items():
        if value is None:
            continue
        path = OVERRIDE_ALIASES.get(key, key)
        parts = path.split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(source, path, "an override needs a dotted key path such as 'sweep.seeds'")
        table = data
        for i, part in enumerate(parts[:-1]):
            node = table.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(source, ".".join(parts[: i + 1]),
                                  f"cannot override inside {_type_name(node)}", node)
            table = node
        table[parts[-1]] = copy.deepcopy(value)
        done.add(path)
    return done


def _one_or_list(values: tuple) -> Any:
    return values[0] if len(values) == 1 else list(values)


def _activation_spec(act: Activation) -> Any:
    return act.name if str(act) == act.name else {"name": act.name, "param": act.param}


def _stem(source: str) -> str:
    path = Path(source)
    return path.stem if path.suffix == ".toml" and path.stem else "sweep"


def _label(spec: Any) -> str:
    """``"he_normal"`` or ``"normal(stddev=0.01)"`` for a table (values as written)."""
    if isinstance(spec, str):
        return spec
    args = ", ".join(f"{k}={format_value(v)}" for k, v in spec.items() if k not in ("name", "label"))
    return f"{spec['name']}({args})"


class _Reader:
    """Walks the raw data once; every check raises a path-qualified ConfigError."""

    def __init__(self, source: str, overridden: set[str], check_process: bool = True):
        self.source = source
        self.overridden = overridden
        self.check_process = check_process

    def error(self, key: str, problem: str, value: Any = ConfigError.NO_VALUE) -> ConfigError:
        if any(key == o or key.startswith(o + ".") or key.startswith(o + "[") for o in self.overridden):
            problem += " (set by an override)"
        return ConfigError(self.source, key, problem, value)

    # -- generic pieces -------------------------------------------------------------------
    def table(self, value: Any, key: str, allowed: Sequence[str], required: Iterable[str] = ()) -> dict:
        if not isinstance(value, Mapping):
            header = f"[{key}]" if key else "a table"
            raise self.error(key, f"must be a table ({header}); got {_type_name(value)}", value)
        for name in value:
            if name not in allowed:
                close = difflib.get_close_matches(str(name), list(allowed), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ";"
                raise self.error(_join(key, name), f"unknown key{hint} allowed: {', '.join(allowed)}")
        for name in required:
            if name not in value:
                raise self.error(_join(key, name), "missing required key")
        return dict(value)

    def integer(self, value: Any, key: str, minimum: int, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer >= {minimum}; got {_type_name(value)}", value)
        if value < minimum:
            raise self.error(key, f"must be >= {minimum}", value)
        if maximum is not None and value >= maximum:
            raise self.error(key, f"must be < {maximum}", value)
        return value

    def number(self, value: Any, key: str, *, minimum: float, strict: bool, maximum: float | None = None) -> float:
        bound = f"{'>' if strict else '>='} {minimum:g}"
        if maximum is not None:
            bound = f"in [{minimum:g}, {maximum:g}]"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number {bound}; got {_type_name(value)}", value)
        number = float(value)
        if not math.isfinite(number):
            raise self.error(key, "must be finite", value)
        if number < minimum or (strict and number == minimum) or (maximum is not None and number > maximum):
            raise self.error(key, f"must be {bound}", value)
        return number

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false; got {_type_name(value)}", value)
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"must be a string; got {_type_name(value)}", value)
        return value

    def choice(self, value: Any, key: str, allowed: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in allowed:
            close = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            got = "" if isinstance(value, str) else f"; got {_type_name(value)}"
            raise self.error(key, f"must be one of {', '.join(map(repr, allowed))}{got}{hint}", value)
        return value

    def one_or_list(self, value: Any, key: str, item, what: str) -> tuple:
        """A scalar (one item) or a non-empty array of distinct items, each checked by ``item``."""
        if isinstance(value, list):
            if not value:
                raise self.error(key, f"must be {what} or a non-empty list of them; got an empty list", value)
            items = tuple(item(v, f"{key}[{i}]") for i, v in enumerate(value))
            for i, v in enumerate(items):
                if v in items[:i]:
                    raise self.error(f"{key}[{i}]", f"duplicate of {key}[{items.index(v)}]", value[i])
            return items
        return (item(value, key),)

    # -- sections -------------------------------------------------------------------------
    def config(self, data: dict, text: str | None) -> SweepConfig:
        top = self.table(data, "", ("network", "inputs", "sweep", "grid", "probes", "output"),
                         required=("network", "sweep"))
        network = self.network(top["network"])
        inputs = self.inputs(top.get("inputs", {}))
        sweep = self.sweep(top["sweep"])
        grid = self.grid(top["grid"]) if "grid" in top else None
        probes = self.probes(top.get("probes", {}))
        output = self.output(top.get("output", {}))
        config = SweepConfig(network, inputs, sweep, grid, probes, output, source=self.source, text=text)
        if self.check_process:
            self.draws(config)
        return config

    def draws(self, config: SweepConfig) -> None:
        """Ask every initializer for what the engine will ask of it, on every shape, before anything runs.

        Per program (:func:`jaxinit.sweep.plan_for`): the first layer's ``(in_dim, width)``, the
        hidden ``(width, width)``, the readout ``(width, 10)`` weight matrices (each initializer, its
        draw traced with ``jax.eval_shape`` and its target ``variance``/``mean``, which a grid's
        weight_variance rescales), and the bias vectors ``(width,)`` and ``(10,)`` (the bias
        initializer). A refusal becomes a ConfigError naming the key path, the shape and the layer.
        """
        from jaxinit import sweep as engine  # the engine imports this module: import it when used

        dtype = config.network.dtype
        wanted: dict[tuple[str, Any, tuple[int, ...], bool], str] = {}  # (key, init, shape, is_bias) -> where
        for program in config.programs():
            plan = engine.plan_for(config, program)
            for layer in sorted({0, min(1, plan.depth), plan.depth}):
                shape = tuple(plan.layer_shape(layer))
                where = ("the readout layer (the gradient probes' loss)" if layer == plan.depth
                         else "the first layer" if layer == 0 else "the hidden layers")
                for i, entry in enumerate(config.sweep.initializers):
                    wanted.setdefault((f"sweep.initializers[{i}]", entry.init, shape, False), where)
                wanted.setdefault(("network.bias", config.network.bias.init, (shape[1],), True),
                                  where if layer == plan.depth else "the layers before the readout")
        entries = {f"sweep.initializers[{i}]": e for i, e in enumerate(config.sweep.initializers)}
        entries["network.bias"] = config.network.bias
        for (key, init, shape, is_bias), where in wanted.items():
            problem = _draw_problem(init, shape, dtype, is_bias)
            if problem is not None:
                what = "bias vector" if is_bias else "weight matrix"
                raise self.error(key, f"cannot draw the {what} of shape {shape} for {where}: {problem}",
                                 entries[key].spec if entries[key].spec is not None else repr(init))

    def network(self, raw: Any) -> NetworkConfig:
        t = self.table(raw, "network", ("depth", "width", "activation", "bias", "dtype"),
                       required=("depth", "width", "activation"))
        depth = self.one_or_list(t["depth"], "network.depth", lambda v, k: self.integer(v, k, 1),
                                 "an integer >= 1")
        width = self.one_or_list(t["width"], "network.width", lambda v, k: self.integer(v, k, 1),
                                 "an integer >= 1")
        acts = self.one_or_list(t["activation"], "network.activation", self.activation,
                                "an activation name or table")
        bias = self.initializer(t.get("bias", "zeros"), "network.bias")
        dtype = self.choice(t.get("dtype", "float32"), "network.dtype", DTYPES)
        if dtype == "float64" and self.check_process:
            import jax

            if not jax.config.read("jax_enable_x64"):
                raise self.error("network.dtype", "needs 64-bit JAX: set JAX_ENABLE_X64=1 before starting",
                                 dtype)
        return NetworkConfig(depth, width, acts, bias, dtype)

    def activation(self, value: Any, key: str) -> Activation:
        if isinstance(value, Mapping):
            t = self.table(value, key, ("name", "param"), required=("name",))
            name = self.string(t["name"], f"{key}.name")
            param = t.get("param")
            if param is not None:
                param = self.number(param, f"{key}.param", minimum=-math.inf, strict=False)
        elif isinstance(value, str):
            name, param = value, None
        else:
            raise self.error(key, f"must be an activation name or a table {{name, param}}; got "
                             f"{_type_name(value)}", value)
        try:
            return activation(name, param)
        except (ValueError, TypeError) as err:
            raise self.error(key, str(err), value) from None

    def initializer(self, value: Any, key: str) -> InitializerEntry:
        if isinstance(value, Mapping):
            spec = dict(value)
            if "name" not in spec:
                raise self.error(key, "an initializer table needs a 'name' key", value)
            self.string(spec["name"], f"{key}.name")
            label = self.string(spec.pop("label"), f"{key}.label") if "label" in spec else None
            if label is not None and not label.strip():
                raise self.error(f"{key}.label", "must not be empty", label)
        elif isinstance(value, str):
            spec, label = value, None
        else:
            raise self.error(key, f"must be an initializer name or a table {{name = ..., ...}}; got "
                             f"{_type_name(value)}", value)
        missing = _missing_arguments(spec)
        if missing:
            name = spec if isinstance(spec, str) else spec["name"]
            example = ", ".join(f"{m} = ..." for m in missing)
            raise self.error(key, f"initializer {name!r} needs the argument{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)}: write it as a table {{name = {json.dumps(name)}, {example}}}",
                             value)
        try:
            init = get_initializer(spec)
        except (ValueError, TypeError) as err:
            raise self.error(key, str(err), value) from None
        written = copy.deepcopy(value) if isinstance(value, str) else dict(value)
        return InitializerEntry(label or _label(spec), init, written)

    def inputs(self, raw: Any) -> InputsConfig:
        t = self.table(raw, "inputs", ("batch", "kind", "correlation", "q0"))
        batch = self.integer(t.get("batch", 128), "inputs.batch", 1)
        kind = self.choice(t.get("kind", "gaussian"), "inputs.kind", INPUT_KINDS)
        correlation = None
        if kind == "pairs":
            if "correlation" not in t:
                raise self.error("inputs.correlation", 'missing: kind = "pairs" needs a correlation in [-1, 1]')
            correlation = self.number(t["correlation"], "inputs.correlation", minimum=-1.0, strict=False,
                                      maximum=1.0)
        elif "correlation" in t:
            raise self.error("inputs.correlation", f'only used with kind = "pairs" (kind is "{kind}")',
                             t["correlation"])
        if kind == "digits":
            if batch > DIGITS_SAMPLES:
                raise self.error("inputs.batch", f'must be <= {DIGITS_SAMPLES} with kind = "digits" '
                                 f"(the dataset's size)", batch)
            if self.check_process and importlib.util.find_spec("sklearn") is None:
                raise self.error("inputs.kind", "needs scikit-learn for the digits dataset: "
                                 "pip install 'jaxinit[data]'", kind)
        q0 = self.number(t.get("q0", 1.0), "inputs.q0", minimum=0.0, strict=True)
        return InputsConfig(batch, kind, correlation, q0)

    def sweep(self, raw: Any) -> SweepSection:
        t = self.table(raw, "sweep", ("seeds", "base_seed", "initializers"), required=("initializers",))
        seeds = self.integer(t.get("seeds", 16), "sweep.seeds", 1)
        base_seed = self.integer(t.get("base_seed", 0), "sweep.base_seed", 0, MAX_SEED)
        specs = t["initializers"]
        if not isinstance(specs, list):
            raise self.error("sweep.initializers", "must be an array of initializer names or tables; got "
                             f"{_type_name(specs)}", specs)
        if not specs:
            raise self.error("sweep.initializers", "must list at least one initializer", specs)
        entries: list[InitializerEntry] = []
        for i, spec in enumerate(specs):
            entry = self.initializer(spec, f"sweep.initializers[{i}]")
            for j, other in enumerate(entries):
                if other.label == entry.label:
                    raise self.error(f"sweep.initializers[{i}]", f"duplicate label {entry.label!r} (also "
                                     f"sweep.initializers[{j}]); give one of them a distinct label = \"...\"",
                                     spec)
            entries.append(entry)
        return SweepSection(seeds, base_seed, tuple(entries))

    def grid_value(self, value: Any, key: str) -> float:
        """weight_variance > 0, bias_variance >= 0 (the key's last part says which)."""
        param = re.sub(r"\[\d+\]$", "", key).rsplit(".", 1)[-1]
        return self.number(value, key, minimum=0.0, strict=param == "weight_variance")

    def grid_list(self, value: Any, key: str) -> tuple[float, ...]:
        if isinstance(value, list) and not value:
            raise self.error(key, "is an empty list: a grid with no points", value)
        return self.one_or_list(value, key, self.grid_value, "a number")

    def grid(self, raw: Any) -> GridConfig:
        t = self.table(raw, "grid", (*GRID_PARAMS, "points"))
        if not t:
            raise self.error("grid", "a grid with no points: give lists "
                             f"({', '.join(GRID_PARAMS)}) or [[grid.points]], or remove [grid]")
        if "points" in t:
            if len(t) > 1:
                other = next(k for k in t if k != "points")
                raise self.error(f"grid.{other}", "give either lists (a Cartesian product) or "
                                 "[[grid.points]], not both")
            points = t["points"]
            if not isinstance(points, list):
                raise self.error("grid.points", f"must be an array of tables ([[grid.points]]); got "
                                 f"{_type_name(points)}", points)
            if not points:
                raise self.error("grid.points", "is an empty list: a grid with no points", points)
            out = []
            for i, point in enumerate(points):
                key = f"grid.points[{i}]"
                p = self.table(point, key, GRID_PARAMS)
                if not p:
                    raise self.error(key, f"an empty point; give {' and/or '.join(GRID_PARAMS)}")
                for name in p:
                    if isinstance(p[name], list):
                        raise self.error(f"{key}.{name}", "must be a number (a point holds one value per key)",
                                         p[name])
                vals = tuple((name, self.grid_value(p[name], f"{key}.{name}")) for name in GRID_PARAMS
                             if name in p)
                if out and set(p) != {k for k, _ in out[0]}:
                    raise self.error(key, f"has keys {sorted(p)} but grid.points[0] has "
                                     f"{sorted(k for k, _ in out[0])}; every point sets the same keys")
                if vals in out:
                    raise self.error(key, f"duplicate of grid.points[{out.index(vals)}]")
                out.append(vals)
            return GridConfig(points=tuple(out))
        lists = {name: self.grid_list(t[name], f"grid.{name}") for name in GRID_PARAMS if name in t}
        return GridConfig(**lists)

    def probes(self, raw: Any) -> ProbesConfig:
        t = self.table(raw, "probes", (*PROBES, "loss"))
        defaults = ProbesConfig()
        flags = {p: self.boolean(t.get(p, getattr(defaults, p)), f"probes.{p}") for p in PROBES}
        loss = self.choice(t.get("loss", defaults.loss), "probes.loss", LOSSES)
        if not any(flags[p] for p in ("forward", "gradients", "jacobian", "spectrum")):
            raise self.error("probes", "nothing to measure: set at least one of forward, gradients, "
                             "jacobian, spectrum to true")
        if flags["theory"] and not flags["forward"]:
            raise self.error("probes.theory", "needs probes.forward = true (theory is overlaid on the "
                             "measured q and c)", True)
        return ProbesConfig(**flags, loss=loss)

    def output(self, raw: Any) -> OutputConfig:
        t = self.table(raw, "output", ("dir", "chunk", "memory_budget_mb"))
        folder = self.string(t.get("dir", f"results/{_stem(self.source)}"), "output.dir")
        if not folder.strip():
            raise self.error("output.dir", "must not be empty", folder)
        chunk = self.integer(t.get("chunk", 0), "output.chunk", 0)
        budget = t.get("memory_budget_mb")
        if budget is not None:
            budget = self.number(budget, "output.memory_budget_mb", minimum=0.0, strict=True)
        return OutputConfig(folder, chunk, budget)


def _missing_arguments(spec: Any) -> list[str]:
    """Required arguments of a registry entry that ``spec`` (a name or a table) does not give."""
    import inspect

    from jaxinit.initializers import _registry

    name, given = (spec, {}) if isinstance(spec, str) else (spec.get("name"), spec)
    factory = _registry._REGISTRY.get(name) if isinstance(name, str) else None
    if factory is None:
        return []
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is p.empty and p.name not in given
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


@functools.lru_cache(maxsize=4096)
def _draw_problem(init: BaseInitializer, shape: tuple[int, ...], dtype: str, is_bias: bool) -> str | None:
    """Why ``init`` cannot draw ``shape`` in ``dtype`` (traced with ``jax.eval_shape``, nothing drawn),
    or None. Weights must also state their target variance and mean (the engine rescales by them)."""
    import jax

    try:
        out = jax.eval_shape(lambda key: init(key, shape, dtype), jax.random.key(0))
        if tuple(out.shape) != shape:
            return f"{init!r} returned shape {tuple(out.shape)}"
        if not is_bias:
            float(init.variance(shape))
            float(init.mean(shape))
    except NotImplementedError:
        return (f"{init!r} does not state the variance it targets for this shape, which the sweep needs "
                "to rescale and compare initializers")
    except (ValueError, TypeError) as err:
        return str(err)
    return None


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else str(name)


# ---------------------------------------------------------------------------------------------
# A minimal TOML writer (for resolved configs: tables, arrays, inline tables, [[grid.points]])
# ---------------------------------------------------------------------------------------------


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
