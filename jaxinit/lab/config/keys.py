"""The config's keys, once: one table of every key, what it must be, its default and allowed values.

Two kinds of config share the table: a *sweep* (``[inputs]``, ``[probes]``: measurement at
initialization) and a *training run* (``[data]``, ``[train]``: a config with a ``[train]`` section);
:attr:`Key.kind` says which a key belongs to (``"both"`` for ``[network]``, ``[sweep]``, ``[grid]``,
``[output]``). The reader (:mod:`jaxinit.lab.config.validate`) takes each section's allowed keys, required keys and
defaults from :data:`KEYS`; :data:`SCHEMA_TEXT`, the documented schema, is written from the same
table, and is itself a valid sweep config (``tomllib.loads(SCHEMA_TEXT)`` loads); :data:`TRAIN_SCHEMA_TEXT`
is the same for a training run. The frozen dataclasses of
:mod:`jaxinit.lab.config.schema` state the same defaults (a test compares them), so the three cannot
drift.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxinit._toml import format_value
from jaxinit.probes import LOSSES

__all__ = [
    "DATA_NAMES", "DTYPES", "GRID_PARAMS", "INPUT_KINDS", "KEYS", "LOSSES", "OPTIONAL", "PROBES", "REQUIRED",
    "SCHEMA_TEXT", "SECTIONS", "SECTION_KINDS", "TASKS", "TRAIN_LOSSES", "TRAIN_SCHEMA_TEXT", "Key", "default",
    "key_names", "required_keys",
]

DTYPES = ("float32", "float64", "bfloat16", "float16")
INPUT_KINDS = ("gaussian", "pairs", "digits")
# The order of the Cartesian product (outer first); learning_rate only in training runs.
GRID_PARAMS = ("weight_variance", "bias_variance", "learning_rate")
DATA_NAMES = ("digits", "teacher", "npz")
TASKS = ("classification", "regression")
TRAIN_LOSSES = ("xent", "mse")
PROBES = ("forward", "gradients", "jacobian", "spectrum", "theory")


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED = _Marker("REQUIRED")  # the key must be given
OPTIONAL = _Marker("OPTIONAL")  # the key may be left out; nothing is filled in (or a default the reader derives)


@dataclasses.dataclass(frozen=True)
class Key:
    """One key of a sweep config.

    Attributes:
      section: the table it lives in (``"network"``).
      name: the key (``"depth"``).
      what: what the value must be, in words (``"int >= 1, or a list of them"``).
      example: the value :data:`SCHEMA_TEXT` shows.
      default: the value the reader fills in when the key is left out, or :data:`REQUIRED` /
        :data:`OPTIONAL`.
      choices: the allowed values of a string key (the reader checks them; the text lists them).
      default_text: how the schema text spells a default the reader derives (``output.dir``).
      commented: written as a comment in :data:`SCHEMA_TEXT` (a key valid only with other settings).
      kind: ``"sweep"``, ``"train"`` or ``"both"``: the configs that accept the key.
    """

    section: str
    name: str
    what: str
    example: Any
    default: Any = OPTIONAL
    choices: tuple[str, ...] = ()
    default_text: str | None = None
    commented: bool = False
    kind: str = "both"

    def __post_init__(self):
        if self.kind == "both" and self.section in SECTION_KINDS:  # a key of a one-kind section
            object.__setattr__(self, "kind", SECTION_KINDS[self.section])

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"

    def comment(self) -> str:
        text = f"{' | '.join(self.choices)}: {self.what}" if self.choices else self.what
        if self.default is REQUIRED:
            return f"{text} (required)"
        if self.default_text is not None:
            return f"{text} (default {self.default_text})"
        if self.default is not OPTIONAL:
            return f"{text} (default {format_value(self.default)})"
        return f"{text} (optional)"


# section -> (comment, required?)
SECTIONS: dict[str, tuple[str, bool]] = {
    "network": ("the MLP: one compiled program per (depth, width, activation)", True),
    "inputs": ("what is fed to each network", False),
    "sweep": ("seeds x initializers", True),
    "grid": ("optional; the grid is the Cartesian product of the lists, or [[grid.points]] tables", False),
    "probes": ("what is measured (at least one of forward, gradients, jacobian, spectrum)", False),
    "data": ("training only: the dataset (offline), split and standardized", False),
    "train": ("training only (its presence makes the config a training run): the optimization", False),
    "output": ("the results folder", False),
}
# Sections that only one kind of config accepts (the others take both).
SECTION_KINDS = {"inputs": "sweep", "probes": "sweep", "data": "train", "train": "train"}

KEYS: tuple[Key, ...] = (
    Key("network", "depth", "int >= 1, or a list of them (one compiled program per distinct shape)", 50, REQUIRED),
    Key("network", "width", "int >= 1, or a list of them", 256, REQUIRED),
    Key("network", "activation", 'name, {name = "leaky_relu", param = 0.2}, or a list of those', "relu",
        REQUIRED),
    Key("network", "bias", "any initializer spec jaxinit.get reads", "zeros", "zeros"),
    Key("network", "dtype", "float64 needs JAX_ENABLE_X64=1", "float32", "float32", DTYPES),
    Key("inputs", "batch", 'int >= 1: inputs per network (kind = "pairs": number of pairs)', 128, 128),
    Key("inputs", "kind", "the inputs; digits = sklearn's 8x8 digits, 64 features, standardized", "gaussian",
        "gaussian", INPUT_KINDS),
    Key("inputs", "correlation", 'kind = "pairs" only (required there): correlation of each pair, in [-1, 1]',
        0.5, commented=True),
    Key("inputs", "q0", "> 0: second moment of the inputs", 1.0, 1.0),
    Key("sweep", "seeds", "int >= 1", 16, 16),
    Key("sweep", "base_seed", "int in [0, 2**32)", 0, 0),
    Key("sweep", "initializers", "a list of initializer names or tables {name, ...args, label}",
        ["he_normal", {"name": "normal", "stddev": 0.01, "label": "N(0, 0.01^2)"}], REQUIRED),
    Key("grid", "weight_variance", "> 0 each: sigma_w^2 = fan_in * Var[W]", [1.0, 2.0]),
    Key("grid", "bias_variance", ">= 0 each", [0.0, 0.05]),
    Key("grid", "learning_rate", "> 0 each; training runs only (replaces train.learning_rate)", [0.01, 0.1],
        kind="train"),
    Key("grid", "points", "instead of the lists: paired points, each a table of the keys above",
        [{"weight_variance": 1.5, "bias_variance": 0.05}], commented=True),
    Key("probes", "forward", "q, activation statistics, correlations per layer", True, True),
    Key("probes", "gradients", "gradient norms per layer", True, True),
    Key("probes", "jacobian", "the input-output Jacobian's mean squared singular value", False, False),
    Key("probes", "spectrum", "the Jacobian's singular values", False, False),
    Key("probes", "theory", "mean-field theory beside the measurements (needs forward)", True, True),
    Key("probes", "loss", "the loss the gradient probes differentiate (cross_entropy = xent)", "mse", "mse",
        LOSSES),
    Key("data", "name", "digits = sklearn's 8x8 digits (64 features, 10 classes); teacher = a random MLP labels "
        "Gaussian inputs; npz = your x_train, y_train, x_test, y_test", "digits", "digits", DATA_NAMES, kind="train"),
    Key("data", "path", 'name = "npz" only (required there): the .npz file, relative to the working directory',
        "features.npz", commented=True, kind="train"),
    Key("data", "test_fraction", "in (0, 1): the held-out share (digits: stratified; teacher: the last rows)",
        0.25, 0.25, kind="train"),
    Key("data", "seed", "int >= 0: the digits' split, the teacher's weights and inputs", 0, 0, kind="train"),
    Key("data", "task", "teacher and npz: integer labels (classification) or real targets (regression)",
        "classification", "classification", TASKS, commented=True, kind="train"),
    Key("data", "n", "teacher only: examples (train + test)", 2048, 2048, commented=True, kind="train"),
    Key("data", "in_dim", "teacher only: input features", 16, 16, commented=True, kind="train"),
    Key("data", "n_classes", "teacher: classes (default 4); npz: classes (default: largest label + 1)", 4,
        commented=True, kind="train"),
    Key("data", "out_dim", "teacher regression only: target columns", 1, 1, commented=True, kind="train"),
    Key("data", "noise", "teacher only, >= 0: Gaussian noise on the targets (logits for classification)", 0.0,
        0.0, commented=True, kind="train"),
    Key("train", "steps", "int >= 1: optimizer steps per member", 1000, 1000, kind="train"),
    Key("train", "batch", "int >= 0: examples per step (0: the whole training set)", 128, 128, kind="train"),
    Key("train", "optimizer", 'an optax optimizer: a name or a table {name = "adam", b1 = 0.9, ...}',
        {"name": "sgd", "momentum": 0.9}, "sgd", kind="train"),
    Key("train", "learning_rate", '> 0, or a schedule table: {name = "cyclical", base, max, step_size} or '
        'an optax schedule {name = "cosine_decay_schedule", init_value = 0.1, decay_steps = 1000}', 0.05, 0.05,
        kind="train"),
    Key("train", "clip_global_norm", "> 0: clip the gradient's global norm (optax.clip_by_global_norm)", 1.0,
        commented=True, kind="train"),
    Key("train", "loss", "softmax cross-entropy (classification) or mean squared error", "xent", OPTIONAL,
        TRAIN_LOSSES, default_text="xent for classification, mse for regression", kind="train"),
    Key("train", "eval_every", "int >= 1: steps between evaluations (train and test loss, accuracy, norms)",
        10, 10, kind="train"),
    Key("train", "target_accuracy", "in [0, 1]: records steps_to_accuracy (classification)", 0.9,
        kind="train"),
    Key("train", "target_loss", "records steps_to_loss (the first evaluation with train_loss <= it)", 0.1,
        commented=True, kind="train"),
    Key("output", "dir", "the results folder", "results/quickstart", OPTIONAL,
        default_text="results/<config file stem>"),
    Key("output", "chunk", "seeds per chunk; 0 picks one from the memory budget", 0, 0),
    Key("output", "memory_budget_mb", "> 0: the budget for one chunk", 2048, default_text="from the device",
        commented=True),
)

_BY_PATH = {k.path: k for k in KEYS}


def key_names(section: str, kind: str | None = None) -> tuple[str, ...]:
    """The keys ``[section]`` accepts (in a config of ``kind``, default: either), in the schema's order."""
    return tuple(k.name for k in KEYS if k.section == section and (kind is None or k.kind in (kind, "both")))


def required_keys(section: str) -> tuple[str, ...]:
    return tuple(k.name for k in KEYS if k.section == section and k.default is REQUIRED)


def default(section: str, name: str) -> Any:
    """The default of ``section.name`` (a fresh copy for a list); :data:`REQUIRED` or :data:`OPTIONAL` if none."""
    value = _BY_PATH[f"{section}.{name}"].default
    return list(value) if isinstance(value, list) else value


_COLUMN = 28  # where the comments start


def _schema_text(kind: str) -> str:
    lines: list[str] = []
    for section, (comment, _) in SECTIONS.items():
        if SECTION_KINDS.get(section, kind) != kind:
            continue
        lines.append(f"{f'[{section}]':<{_COLUMN}}# {comment}")
        for key in (k for k in KEYS if k.section == section and k.kind in (kind, "both")):
            if key.name == "points":  # an array of tables is spelled as one in the documentation
                row = ", ".join(f"{n} = {format_value(v)}" for n, v in key.example[0].items())
                lines.append(f"# [[grid.points]]  {row}    # {key.comment()}")
                continue
            line = f"{'# ' if key.commented else ''}{key.name} = {format_value(key.example, limit=200)}"
            if len(line) >= _COLUMN:
                lines.append(f"# {key.name}: {key.comment()}")
                lines.append(line)
            else:
                lines.append(f"{line:<{_COLUMN}}# {key.comment()}")
    return "\n".join(lines) + "\n"


SCHEMA_TEXT = _schema_text("sweep")
TRAIN_SCHEMA_TEXT = _schema_text("train")
