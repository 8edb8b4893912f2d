"""Validating a sweep config: plain data -> the frozen sections of :mod:`jaxinit.lab.config.schema`.

Each section's allowed keys, required keys and defaults come from the one key table,
:data:`jaxinit.lab.config.keys.KEYS`. Every problem becomes a :class:`~jaxinit.errors.ConfigError`
naming the file, the key path and the bad value, with a did-you-mean for a misspelt key or choice.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib.util
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jaxinit._toml import format_value
from jaxinit.activations import Activation, activation
from jaxinit.errors import ConfigError
from jaxinit.initializers import BaseInitializer
from jaxinit.initializers import get as get_initializer
from jaxinit.lab.config.keys import (
    DATA_NAMES,
    DTYPES,
    GRID_PARAMS,
    INPUT_KINDS,
    KEYS,
    LOSSES,
    PROBES,
    SECTION_KINDS,
    SECTIONS,
    TASKS,
    TRAIN_LOSSES,
    default,
    key_names,
    required_keys,
)
from jaxinit.lab.config.schema import (
    DIGITS_CLASSES,
    DIGITS_FEATURES,
    DIGITS_SAMPLES,
    MAX_SEED,
    DataConfig,
    GridConfig,
    InitializerEntry,
    InputsConfig,
    NetworkConfig,
    OutputConfig,
    ProbesConfig,
    SweepConfig,
    SweepSection,
    TrainConfig,
    _stem,
)
from jaxinit.lab.optim import Schedule, make_schedule, optimizer
from jaxinit.probes import LOSS_ALIASES, loss_name


def type_name(value: Any) -> str:
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


def _label(spec: Any) -> str:
    """``"he_normal"`` or ``"normal(stddev=0.01)"`` for a table (values as written)."""
    if isinstance(spec, str):
        return spec
    args = ", ".join(f"{k}={format_value(v)}" for k, v in spec.items() if k not in ("name", "label"))
    return f"{spec['name']}({args})"


class Reader:
    """Walks the raw data once; every check raises a path-qualified ConfigError."""

    def __init__(self, source: str, overridden: set[str], check_process: bool = True):
        self.source = source
        self.overridden = overridden
        self.check_process = check_process
        self.kind = "sweep"  # set by config(): "train" when the data holds a [train] section

    def error(self, key: str, problem: str, value: Any = ConfigError.NO_VALUE) -> ConfigError:
        if any(key == o or key.startswith(o + ".") or key.startswith(o + "[") for o in self.overridden):
            problem += " (set by an override)"
        return ConfigError(self.source, key, problem, value)

    # -- generic pieces -------------------------------------------------------------------
    def table(self, value: Any, key: str, allowed: Sequence[str], required: Iterable[str] = ()) -> dict:
        if not isinstance(value, Mapping):
            header = f"[{key}]" if key else "a table"
            raise self.error(key, f"must be a table ({header}); got {type_name(value)}", value)
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
            raise self.error(key, f"must be an integer >= {minimum}; got {type_name(value)}", value)
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
            raise self.error(key, f"must be a number {bound}; got {type_name(value)}", value)
        number = float(value)
        if not math.isfinite(number):
            raise self.error(key, "must be finite", value)
        if number < minimum or (strict and number == minimum) or (maximum is not None and number > maximum):
            raise self.error(key, f"must be {bound}", value)
        return number

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false; got {type_name(value)}", value)
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"must be a string; got {type_name(value)}", value)
        return value

    def choice(self, value: Any, key: str, allowed: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in allowed:
            close = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            got = "" if isinstance(value, str) else f"; got {type_name(value)}"
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

    def section(self, raw: Any, name: str) -> dict:
        """``[name]`` with only the keys :data:`~jaxinit.lab.config.keys.KEYS` lists, and its required ones."""
        table = self.table(raw, name, key_names(name), required=required_keys(name))
        for key in table:
            only = next(k.kind for k in KEYS if k.section == name and k.name == key)
            if only not in (self.kind, "both"):
                raise self.error(f"{name}.{key}", _kind_problem(only, self.kind), table[key])
        return table

    # -- sections -------------------------------------------------------------------------
    def config(self, data: dict, text: str | None) -> SweepConfig:
        top = self.table(data, "", tuple(SECTIONS), required=tuple(s for s, (_, req) in SECTIONS.items() if req))
        self.kind = "train" if "train" in top else "sweep"
        for name in top:
            only = SECTION_KINDS.get(name, self.kind)
            if only != self.kind:
                raise self.error(name, _kind_problem(only, self.kind))
        network = self.network(top["network"])
        sweep = self.sweep(top["sweep"])
        grid = self.grid(top["grid"]) if "grid" in top else None
        output = self.output(top.get("output", {}))
        if self.kind == "sweep":
            inputs, probes = self.inputs(top.get("inputs", {})), self.probes(top.get("probes", {}))
            data = train = None
        else:
            inputs, probes = InputsConfig(), ProbesConfig()
            data = self.data(top.get("data", {}))
            train = self.train(top["train"], data, grid)
        config = SweepConfig(network, inputs, sweep, grid, probes, output, source=self.source, text=text,
                             data=data, train=train)
        if self.check_process:
            self.draws(config)
        return config

    def draws(self, config: SweepConfig) -> None:
        """Ask every initializer for what the engine will ask of it, on every shape, before anything runs.

        Per program (:meth:`SweepConfig.layer_shape`): the first layer's ``(in_dim, width)``, the
        hidden ``(width, width)``, the readout ``(width, 10)`` weight matrices (each initializer, its
        draw traced with ``jax.eval_shape`` and its target ``variance``/``mean``, which a grid's
        weight_variance rescales), and the bias vectors ``(width,)`` and ``(10,)`` (the bias
        initializer). A refusal becomes a ConfigError naming the key path, the shape and the layer.
        An LSUV entry draws with its base (asked the same); its fit needs a batch of at least 2 rows.
        """
        from jaxinit.lsuv import LSUV

        dtype = config.network.dtype
        lsuv = [i for i, e in enumerate(config.sweep.initializers) if isinstance(e.init, LSUV)]
        rows = config.train.batch if config.train is not None else config.inputs.n_inputs
        if lsuv and rows == 1:  # LSUV fits a variance over the batch (train.batch = 0: the training set)
            key = "train.batch" if config.train is not None else "inputs.batch"
            raise self.error(key, f"LSUV (sweep.initializers[{lsuv[0]}]) fits each layer's output variance on "
                             "the batch: it needs at least 2 examples, not one", 1)
        wanted: dict[tuple[str, Any, tuple[int, ...], bool], str] = {}  # (key, init, shape, is_bias) -> where
        for program in config.programs():
            depth = program.depth
            for layer in sorted({0, min(1, depth), depth}):
                shape = config.layer_shape(program, layer)
                where = ("the readout layer (the gradient probes' loss)" if layer == depth
                         else "the first layer" if layer == 0 else "the hidden layers")
                for i, entry in enumerate(config.sweep.initializers):
                    init = entry.init.base if isinstance(entry.init, LSUV) else entry.init  # LSUV draws with its base
                    wanted.setdefault((f"sweep.initializers[{i}]", init, shape, False), where)
                wanted.setdefault(("network.bias", config.network.bias.init, (shape[1],), True),
                                  where if layer == depth else "the layers before the readout")
        entries = {f"sweep.initializers[{i}]": e for i, e in enumerate(config.sweep.initializers)}
        entries["network.bias"] = config.network.bias
        for (key, init, shape, is_bias), where in wanted.items():
            problem = _draw_problem(init, shape, dtype, is_bias)
            if problem is not None:
                what = "bias vector" if is_bias else "weight matrix"
                raise self.error(key, f"cannot draw the {what} of shape {shape} for {where}: {problem}",
                                 entries[key].spec if entries[key].spec is not None else repr(init))

    def network(self, raw: Any) -> NetworkConfig:
        t = self.section(raw, "network")
        depth = self.one_or_list(t["depth"], "network.depth", lambda v, k: self.integer(v, k, 1),
                                 "an integer >= 1")
        width = self.one_or_list(t["width"], "network.width", lambda v, k: self.integer(v, k, 1),
                                 "an integer >= 1")
        acts = self.one_or_list(t["activation"], "network.activation", self.activation,
                                "an activation name or table")
        bias = self.initializer(t.get("bias", default("network", "bias")), "network.bias")
        dtype = self.choice(t.get("dtype", default("network", "dtype")), "network.dtype", DTYPES)
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
                             f"{type_name(value)}", value)
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
                             f"{type_name(value)}", value)
        if (spec if isinstance(spec, str) else spec["name"]) == "lsuv":  # data-dependent: Reader.lsuv
            written = copy.deepcopy(value) if isinstance(value, str) else dict(value)
            return InitializerEntry(label or _label(spec), self.lsuv(spec, key, value), written)
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

    def lsuv(self, spec: Any, key: str, value: Any) -> Any:
        """``"lsuv"`` (the defaults) or ``{name = "lsuv", base = ..., target, tol, max_iter}``: an
        :class:`~jaxinit.lsuv.LSUV` (its base any initializer spec but LSUV; the weights only)."""
        from jaxinit.lsuv import LSUV

        if key == "network.bias":
            raise self.error(key, "lsuv rescales weight matrices on the data; it cannot initialize the "
                             "biases (give a bias initializer such as zeros)", value)
        t = self.table({} if isinstance(spec, str) else spec, key, ("name", "base", "target", "tol", "max_iter"))
        defaults = LSUV()
        base = t.get("base")
        if (base.get("name") if isinstance(base, Mapping) else base) == LSUV.name:
            raise self.error(f"{key}.base", "must be an initializer that draws the weights, not lsuv", base)
        if isinstance(base, Mapping) and "label" in base:
            raise self.error(f"{key}.base.label", "the base takes no label (label the lsuv entry)", base["label"])
        base = defaults.base if base is None else self.initializer(base, f"{key}.base").init
        target = self.number(t.get("target", defaults.target), f"{key}.target", minimum=0.0, strict=True)
        tol = self.number(t.get("tol", defaults.tol), f"{key}.tol", minimum=0.0, strict=True)
        max_iter = self.integer(t.get("max_iter", defaults.max_iter), f"{key}.max_iter", 1)
        return LSUV(base, target, tol, max_iter)

    def inputs(self, raw: Any) -> InputsConfig:
        t = self.section(raw, "inputs")
        batch = self.integer(t.get("batch", default("inputs", "batch")), "inputs.batch", 1)
        kind = self.choice(t.get("kind", default("inputs", "kind")), "inputs.kind", INPUT_KINDS)
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
        q0 = self.number(t.get("q0", default("inputs", "q0")), "inputs.q0", minimum=0.0, strict=True)
        return InputsConfig(batch, kind, correlation, q0)

    def sweep(self, raw: Any) -> SweepSection:
        t = self.section(raw, "sweep")
        seeds = self.integer(t.get("seeds", default("sweep", "seeds")), "sweep.seeds", 1)
        base_seed = self.integer(t.get("base_seed", default("sweep", "base_seed")), "sweep.base_seed", 0, MAX_SEED)
        specs = t["initializers"]
        if not isinstance(specs, list):
            raise self.error("sweep.initializers", "must be an array of initializer names or tables; got "
                             f"{type_name(specs)}", specs)
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
        return self.number(value, key, minimum=0.0, strict=param in ("weight_variance", "learning_rate"))

    def grid_list(self, value: Any, key: str) -> tuple[float, ...]:
        if isinstance(value, list) and not value:
            raise self.error(key, "is an empty list: a grid with no points", value)
        return self.one_or_list(value, key, self.grid_value, "a number")

    def grid(self, raw: Any) -> GridConfig:
        t = self.section(raw, "grid")
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
                                 f"{type_name(points)}", points)
            if not points:
                raise self.error("grid.points", "is an empty list: a grid with no points", points)
            out = []
            for i, point in enumerate(points):
                key = f"grid.points[{i}]"
                p = self.table(point, key, GRID_PARAMS)
                if "learning_rate" in p and self.kind != "train":
                    raise self.error(f"{key}.learning_rate", _kind_problem("train", self.kind), p["learning_rate"])
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
        t = self.section(raw, "probes")
        flags = {p: self.boolean(t.get(p, default("probes", p)), f"probes.{p}") for p in PROBES}
        loss = t.get("loss", default("probes", "loss"))
        if isinstance(loss, str) and loss in LOSS_ALIASES:  # "cross_entropy" is "xent" (jaxinit.probes)
            loss = loss_name(loss)
        loss = self.choice(loss, "probes.loss", LOSSES)
        if not any(flags[p] for p in ("forward", "gradients", "jacobian", "spectrum")):
            raise self.error("probes", "nothing to measure: set at least one of forward, gradients, "
                             "jacobian, spectrum to true")
        if flags["theory"] and not flags["forward"]:
            raise self.error("probes.theory", "needs probes.forward = true (theory is overlaid on the "
                             "measured q and c)", True)
        return ProbesConfig(**flags, loss=loss)

    def output(self, raw: Any) -> OutputConfig:
        t = self.section(raw, "output")
        folder = self.string(t.get("dir", f"results/{_stem(self.source)}"), "output.dir")
        if not folder.strip():
            raise self.error("output.dir", "must not be empty", folder)
        chunk = self.integer(t.get("chunk", default("output", "chunk")), "output.chunk", 0)
        budget = t.get("memory_budget_mb")
        if budget is not None:
            budget = self.number(budget, "output.memory_budget_mb", minimum=0.0, strict=True)
        return OutputConfig(folder, chunk, budget)


    # -- training runs -------------------------------------------------------------------------
    def data(self, raw: Any) -> DataConfig:
        """``[data]``: the dataset and the network's input and readout widths it implies."""
        t = self.section(raw, "data")
        name = self.choice(t.get("name", default("data", "name")), "data.name", DATA_NAMES)
        allowed = {"digits": {"name", "test_fraction", "seed"},
                   "teacher": {"name", "test_fraction", "seed", "task", "n", "in_dim", "n_classes", "out_dim",
                               "noise"},
                   "npz": {"name", "path", "task", "n_classes"}}[name]
        for key in t:
            if key not in allowed:
                raise self.error(f"data.{key}", f'not used with name = "{name}" (it takes '
                                 f"{', '.join(sorted(allowed - {'name'}))})", t[key])
        task = self.choice(t.get("task", default("data", "task")), "data.task", TASKS)
        fraction = self.number(t.get("test_fraction", default("data", "test_fraction")), "data.test_fraction",
                               minimum=0.0, strict=True, maximum=1.0)
        if fraction >= 1.0:
            raise self.error("data.test_fraction", "must be in (0, 1): both splits need examples", fraction)
        seed = self.integer(t.get("seed", default("data", "seed")), "data.seed", 0, MAX_SEED)
        if task == "regression" and "n_classes" in t:
            raise self.error("data.n_classes", 'only with task = "classification"', t["n_classes"])
        if task == "classification" and "out_dim" in t:
            raise self.error("data.out_dim", 'only with task = "regression" (classification: n_classes)', t["out_dim"])
        n_classes = self.integer(t["n_classes"], "data.n_classes", 2) if "n_classes" in t else None
        if name == "digits":
            return DataConfig("digits", None, fraction, seed, "classification", in_dim=DIGITS_FEATURES,
                              n_classes=DIGITS_CLASSES, out_dim=DIGITS_CLASSES)
        if name == "teacher":
            n = self.integer(t.get("n", default("data", "n")), "data.n", 4)
            in_dim = self.integer(t.get("in_dim", default("data", "in_dim")), "data.in_dim", 1)
            noise = self.number(t.get("noise", default("data", "noise")), "data.noise", minimum=0.0, strict=False)
            if task == "classification":
                n_classes = n_classes or 4
                out_dim = n_classes
            else:
                out_dim = self.integer(t.get("out_dim", default("data", "out_dim")), "data.out_dim", 1)
            n_test = round(n * fraction)
            if not 1 <= n_test <= n - 1:
                raise self.error("data.test_fraction", f"leaves {n_test} test and {n - n_test} training examples "
                                 f"of data.n = {n}; both need at least 1", fraction)
            return DataConfig("teacher", None, fraction, seed, task, n, in_dim, n_classes, out_dim, noise)
        if "path" not in t:
            raise self.error("data.path", 'missing: name = "npz" needs the path of an .npz holding x_train, '
                             "y_train, x_test, y_test")
        path = self.string(t["path"], "data.path")
        in_dim = out_dim = None
        if self.check_process:
            in_dim, out_dim = self.npz_dims(path, task, n_classes)
        return DataConfig("npz", path, fraction, seed, task, in_dim=in_dim, n_classes=n_classes, out_dim=out_dim)

    def npz_dims(self, path: str, task: str, n_classes: int | None) -> tuple[int, int]:
        """The features and readout width of the ``.npz`` at ``path``, its arrays checked
        (:func:`jaxinit.lab.data.from_npz`: names, rows, finite features, integer labels in range)."""
        from jaxinit.lab import data as data_lib

        try:
            dataset = data_lib.from_npz(path, task=task, n_classes=n_classes)
        except FileNotFoundError:
            raise self.error("data.path", "no such file", path) from None
        except (OSError, EOFError) as err:
            raise self.error("data.path", f"cannot read it as an .npz: {err}", path) from None
        except ValueError as err:
            raise self.error("data.path", str(err).rstrip("."), path) from None
        return dataset.in_dim, dataset.out_dim

    def train(self, raw: Any, data: DataConfig, grid: GridConfig | None) -> TrainConfig:
        """``[train]``: steps, batch, the optax optimizer and learning rate, clipping, loss, evaluations."""
        t = self.section(raw, "train")
        steps = self.integer(t.get("steps", default("train", "steps")), "train.steps", 1)
        batch = self.integer(t.get("batch", default("train", "batch")), "train.batch", 0)
        if data.name == "digits":
            n_train = DIGITS_SAMPLES - _stratified_test_size(data.test_fraction)
        elif data.name == "teacher":
            n_train = data.n - round(data.n * data.test_fraction)
        else:
            n_train = None
        if n_train is not None and batch > n_train:
            raise self.error("train.batch", f"must be <= the training set's {n_train} examples (0: full batch)", batch)
        every = self.integer(t.get("eval_every", default("train", "eval_every")), "train.eval_every", 1)
        opt = t.get("optimizer", default("train", "optimizer"))
        if isinstance(opt, Mapping):
            if "name" not in opt:
                raise self.error("train.optimizer", "an optimizer table needs a 'name' (sgd, adam, ...)", opt)
            name = self.string(opt["name"], "train.optimizer.name")
            kwargs = tuple((k, v) for k, v in opt.items() if k != "name")
        elif isinstance(opt, str):
            name, kwargs = opt, ()
        else:
            raise self.error("train.optimizer", "must be an optax optimizer name or a table {name = ..., ...}; "
                             f"got {type_name(opt)}", opt)
        try:
            optimizer(name, kwargs)
        except (ValueError, TypeError) as err:
            raise self.error("train.optimizer", str(err).rstrip("."), opt) from None
        lr = t.get("learning_rate", default("train", "learning_rate"))
        if isinstance(lr, Mapping):
            try:
                make_schedule(Schedule.from_spec(lr))
            except (ValueError, TypeError) as err:
                raise self.error("train.learning_rate", str(err).rstrip("."), lr) from None
            lr = copy.deepcopy(dict(lr))
            if grid is not None and "learning_rate" in grid.params:
                raise self.error("grid.learning_rate", "replaces a number, but train.learning_rate is the schedule "
                                 f"{lr.get('name')!r}: give train.learning_rate as a number to grid it")
        else:
            lr = self.number(lr, "train.learning_rate", minimum=0.0, strict=True)
        clip = t.get("clip_global_norm")
        if clip is not None:
            clip = self.number(clip, "train.clip_global_norm", minimum=0.0, strict=True)
        loss = self.choice(t.get("loss", "xent" if data.task == "classification" else "mse"), "train.loss",
                           TRAIN_LOSSES)
        if loss == "xent" and data.task != "classification":
            raise self.error("train.loss", 'xent needs class labels; this data is a regression task: use "mse"', loss)
        target_acc = t.get("target_accuracy")
        if target_acc is not None:
            if data.task != "classification":
                raise self.error("train.target_accuracy", "needs a classification task", target_acc)
            target_acc = self.number(target_acc, "train.target_accuracy", minimum=0.0, strict=False, maximum=1.0)
        target_loss = t.get("target_loss")
        if target_loss is not None:
            target_loss = self.number(target_loss, "train.target_loss", minimum=0.0, strict=False)
        return TrainConfig(steps, batch, (name, kwargs), lr, clip, loss, every, target_acc, target_loss)


def _stratified_test_size(test_fraction: float) -> int:
    """The digits' test rows for ``test_fraction`` (scikit-learn's ``train_test_split``: ``ceil(n * f)``)."""
    return math.ceil(DIGITS_SAMPLES * test_fraction)


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


def _kind_problem(only: str, kind: str) -> str:
    """Why a key of one kind of config is refused in the other."""
    if only == "train":
        return "only in training runs (a config with a [train] section; run it with jaxinit train)"
    return ("only in sweeps (a training run, a config with [train], measures what its [train] section "
            f"records; run sweeps with jaxinit sweep): this config is a {'training run' if kind == 'train' else kind}")


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else str(name)
