"""Config files: TOML -> a frozen, validated :class:`SweepConfig` (schema, reading, writing back).

A config is a sweep (measurement at initialization: ``jaxinit sweep``) or, with a ``[train]``
section, a training run (``[data]`` and ``[train]``: ``jaxinit train``); :attr:`SweepConfig.kind`
says which.

A config is read and checked once, before anything compiles. Every problem becomes a
:class:`ConfigError` naming the file, the key path and the bad value::

    configs/phase.toml: grid.bias_variance[2] = -0.1: must be >= 0
    configs/quick.toml: network.dept: unknown key; did you mean 'depth'? allowed: depth, width, ...

The schema is one table, :data:`KEYS` (every key, what it must be, its default and allowed values):
the reader checks against it and :data:`SCHEMA_TEXT`, the documented schema, is written from it. The
shipped configs (package data, ``configs/`` in a checkout) load by name (``load("quickstart")``).
Initializer and bias specs go through :func:`jaxinit.get` and activations
through :func:`jaxinit.activations.activation` at load time, so an unknown name fails here, with the
registry's own did-you-mean.

The library never opens a config on its own initiative: the CLI calls :func:`load`, research code may
call :func:`from_dict`, and the engine only ever sees the frozen result.
"""

from jaxinit._toml import dumps_toml, format_value
from jaxinit.errors import ConfigError
from jaxinit.lab.config.keys import (
    DTYPES,
    GRID_PARAMS,
    INPUT_KINDS,
    KEYS,
    LOSSES,
    PROBES,
    SCHEMA_TEXT,
    TRAIN_SCHEMA_TEXT,
    Key,
)
from jaxinit.lab.config.read import from_dict, load, parse_override, to_toml
from jaxinit.lab.config.schema import (
    DIGITS_FEATURES,
    READOUT_DIM,
    DataConfig,
    GridConfig,
    InitializerEntry,
    InputsConfig,
    NetworkConfig,
    OutputConfig,
    ProbesConfig,
    Program,
    SweepConfig,
    SweepSection,
    TrainConfig,
    evaluation_steps,
    grid_points,
)
from jaxinit.lab.config.shipped import copy_config, shipped_configs, shipped_names, shipped_path

__all__ = [
    "DIGITS_FEATURES", "DTYPES", "KEYS", "READOUT_DIM", "GRID_PARAMS", "INPUT_KINDS", "LOSSES", "PROBES",
    "SCHEMA_TEXT", "TRAIN_SCHEMA_TEXT", "ConfigError", "DataConfig", "GridConfig", "InitializerEntry",
    "InputsConfig", "Key", "NetworkConfig", "OutputConfig", "ProbesConfig", "Program", "SweepConfig", "SweepSection",
    "TrainConfig", "copy_config", "dumps_toml", "evaluation_steps", "format_value", "from_dict", "grid_points",
    "load", "parse_override", "shipped_configs", "shipped_names", "shipped_path", "to_toml",
]
