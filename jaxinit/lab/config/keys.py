"""The sweep config's keys, once: one table of every key, what it must be, its default and allowed values.

The reader (:mod:`jaxinit.lab.config.validate`) takes each section's allowed keys, required keys and
defaults from :data:`KEYS`; :data:`SCHEMA_TEXT`, the documented schema, is written from the same
table, and is itself a valid config (``tomllib.loads(SCHEMA_TEXT)`` loads). The frozen dataclasses of
:mod:`jaxinit.lab.config.schema` state the same defaults (a test compares them), so the three cannot
drift.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxinit._toml import format_value
from jaxinit.probes import LOSSES

__all__ = [
    "DTYPES", "GRID_PARAMS", "INPUT_KINDS", "KEYS", "LOSSES", "OPTIONAL", "PROBES", "REQUIRED", "SCHEMA_TEXT",
    "SECTIONS", "Key", "default", "key_names", "required_keys",
]

DTYPES = ("float32", "float64", "bfloat16", "float16")
INPUT_KINDS = ("gaussian", "pairs", "digits")
GRID_PARAMS = ("weight_variance", "bias_variance")  # the order of the Cartesian product (outer first)
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
    """

    section: str
    name: str
    what: str
    example: Any
    default: Any = OPTIONAL
    choices: tuple[str, ...] = ()
    default_text: str | None = None
    commented: bool = False

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
    "output": ("the results folder", False),
}

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
    Key("grid", "points", "instead of the lists: paired points, each a table of the keys above",
        [{"weight_variance": 1.5, "bias_variance": 0.05}], commented=True),
    Key("probes", "forward", "q, activation statistics, correlations per layer", True, True),
    Key("probes", "gradients", "gradient norms per layer", True, True),
    Key("probes", "jacobian", "the input-output Jacobian's mean squared singular value", False, False),
    Key("probes", "spectrum", "the Jacobian's singular values", False, False),
    Key("probes", "theory", "mean-field theory beside the measurements (needs forward)", True, True),
    Key("probes", "loss", "the loss the gradient probes differentiate (cross_entropy = xent)", "mse", "mse",
        LOSSES),
    Key("output", "dir", "the results folder", "results/quickstart", OPTIONAL,
        default_text="results/<config file stem>"),
    Key("output", "chunk", "seeds per chunk; 0 picks one from the memory budget", 0, 0),
    Key("output", "memory_budget_mb", "> 0: the budget for one chunk", 2048, default_text="from the device",
        commented=True),
)

_BY_PATH = {k.path: k for k in KEYS}


def key_names(section: str) -> tuple[str, ...]:
    """The keys ``[section]`` accepts, in the schema's order."""
    return tuple(k.name for k in KEYS if k.section == section)


def required_keys(section: str) -> tuple[str, ...]:
    return tuple(k.name for k in KEYS if k.section == section and k.default is REQUIRED)


def default(section: str, name: str) -> Any:
    """The default of ``section.name`` (a fresh copy for a list); :data:`REQUIRED` or :data:`OPTIONAL` if none."""
    value = _BY_PATH[f"{section}.{name}"].default
    return list(value) if isinstance(value, list) else value


_COLUMN = 28  # where the comments start


def _schema_text() -> str:
    lines: list[str] = []
    for section, (comment, _) in SECTIONS.items():
        lines.append(f"{f'[{section}]':<{_COLUMN}}# {comment}")
        for key in (k for k in KEYS if k.section == section):
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


SCHEMA_TEXT = _schema_text()
