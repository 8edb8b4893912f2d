"""What the training reproductions share: running a training config of experiments/configs/ through
:func:`jaxinit.lab.training.train`, and the numbers every one of them reads (steps to a target with
"never" as infinity, medians and spreads over seeds, quantile bands for the figures).

A training reproduction is a module ``experiments/repro/train_<name>.py`` with the interface of
:mod:`experiments.repro.common` (``main(out, small=False, publish=None)``, a pure ``verdict(numbers)``,
``<out>/<name>.png|csv|md``, ``<out>/verdict.json``).
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.repro import common

NEVER = math.inf  # steps to a target a member never reached


def config_data(name: str) -> dict[str, Any]:
    """``experiments/configs/<name>.toml`` as a plain dict (for variants the overrides cannot express)."""
    with open(common.config_path(name), "rb") as f:
        return tomllib.load(f)


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


def train(config: str, out: Path, overrides: Mapping[str, Any] | None = None, label: str = ""):
    """Train ``experiments/configs/<config>.toml`` into ``out`` from scratch; return its
    :class:`jaxinit.lab.store.Results`.

    ``overrides``: dotted keys set on the file's contents before validation; a value of ``None``
    removes the key (``{"grid.learning_rate": None}``), which :func:`jaxinit.lab.config.load`'s
    overrides cannot. ``label`` only names the run in error messages.
    """
    from jaxinit.lab import config as config_lib
    from jaxinit.lab.training import train as train_run

    data = config_data(config)
    for key, value in {**(overrides or {}), "output.dir": str(out)}.items():
        _set(data, key, value)
    if not data.get("grid", True):
        data.pop("grid")
    source = str(common.config_path(config)) + (f" ({label})" if label else "")
    cfg = config_lib.from_dict(data, source=source)
    return train_run(cfg, fresh=True, progress=False, stall_timeout=0)


def train_noting(config: str, out: Path, overrides: Mapping[str, Any] | None = None, label: str = "",
                 category: type[Warning] = UserWarning):
    """:func:`train`, with the warnings of ``category`` (an LSUV that missed its tolerance) kept as
    notes: ``(results, notes)``; any other warning is raised again."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        res = train(config, out, overrides, label)
    notes: list[str] = []
    for w in caught:
        if not issubclass(w.category, category):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in notes:
            notes.append(str(w.message))
    return res, notes


def steps_never(steps) -> np.ndarray:
    """``steps_to_accuracy``/``steps_to_loss`` with "never reached" (NaN) as ``inf``, as float64."""
    s = np.asarray(steps, np.float64)
    return np.where(np.isnan(s), NEVER, s)


def median_steps(steps) -> float:
    """The median over seeds of the steps to a target, "never" counted as ``inf`` (so the median is
    ``inf`` when half the seeds or more never reached it)."""
    s = np.sort(steps_never(steps).ravel())
    if s.size == 0:
        raise ValueError("median_steps needs at least one seed")
    n = s.size
    return float(s[n // 2]) if n % 2 else float(0.5 * (s[n // 2 - 1] + s[n // 2]))


def reached(steps) -> int:
    """How many seeds reached the target."""
    return int(np.isfinite(steps_never(steps)).sum())


def spread(values) -> dict[str, float]:
    """Median, min and max over seeds (float64; NaN-free input expected)."""
    v = np.asarray(values, np.float64).ravel()
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def band(values, lo: float = 0.25, hi: float = 0.75, axis: int = 0):
    """``(low, median, high)`` quantiles over ``axis`` (seeds), NaN-aware."""
    return tuple(common.seed_quantiles(values, (lo, 0.5, hi), axis=axis))


def fmt_steps(s: float, n: int | None = None, of: int | None = None) -> str:
    """``"125"`` or ``"never"``, with ``" (3/4)"`` seeds reached when ``n``/``of`` are given."""
    text = "never" if not math.isfinite(s) else f"{s:.0f}"
    return text + (f" ({n}/{of})" if n is not None and of is not None else "")


def seed_numbers(steps, final, diverged, per_seed: bool = True) -> dict[str, Any]:
    """One cell's numbers over its seeds: ``steps`` (:func:`median_steps`), ``reached``, with
    ``per_seed`` the ``steps_per_seed`` (:func:`steps_never`), the final test accuracy's ``final``
    (median), ``final_min`` and ``final_max``, and how many seeds ``diverged``."""
    fin = spread(final)
    m: dict[str, Any] = {"steps": median_steps(steps), "reached": reached(steps)}
    if per_seed:
        m["steps_per_seed"] = steps_never(steps).tolist()
    return {**m, "final": fin["median"], "final_min": fin["min"], "final_max": fin["max"],
            "diverged": int(diverged.sum())}


def final_cell(m: Mapping[str, float]) -> str:
    """``"0.912 (0.905–0.920)"``: the final accuracy's median (min–max) over seeds, as the tables give it."""
    return f"{m['final']:.3f} ({m['final_min']:.3f}–{m['final_max']:.3f})"


def seed_cells(m: Mapping[str, Any], n_seeds: int) -> list:
    """The table cells of :func:`seed_numbers`: steps (seeds reached), final accuracy, seeds diverged."""
    return [fmt_steps(m["steps"], m["reached"], n_seeds), final_cell(m), m["diverged"]]


def accuracy_bands(ax, steps, curves, target: float, title: str, title_size: float = 10) -> None:
    """Test accuracy through training on ``ax``: per ``(accuracy, color, line width)`` of ``curves``
    (``accuracy``: ``(seed, step)``), the median over seeds as a line over its 25–75% band
    (:func:`band`), and ``target`` dotted."""
    for acc, color, lw in curves:
        lo, mid, hi = band(acc)
        ax.fill_between(steps, lo, hi, color=color, alpha=0.15, lw=0)
        ax.plot(steps, mid, color=color, lw=lw)
    ax.axhline(target, color="0.3", lw=0.8, ls=":")
    ax.set_ylim(0, 1)
    ax.set_xlabel("SGD step")
    ax.set_title(title, fontsize=title_size)
    ax.grid(True, alpha=0.3)


def steps_panel(ax, groups: Mapping[str, Mapping[str, Mapping[str, Any]]], colors: Mapping[str, str],
                n_steps: int, target: float) -> None:
    """Steps to ``target`` per seed on ``ax``: per group (an x tick: ``{key: numbers}``, numbers as
    :func:`seed_numbers` gives them) and key, a dot per seed (jittered; "never" drawn at 1.12
    ``n_steps``) in the key's color, and a bar at the median."""
    never = n_steps * 1.12
    n = len(next(iter(groups.values())))  # keys per group
    for p, by in enumerate(groups.values()):
        for i, key in enumerate(by):
            x = p * (n + 1) + i
            ys = np.asarray(by[key]["steps_per_seed"], np.float64)
            jitter = np.linspace(-0.25, 0.25, len(ys))
            ax.scatter(x + jitter, np.where(np.isfinite(ys), ys, never), s=14, color=colors[key], alpha=0.8,
                       edgecolors="none")
            if math.isfinite(by[key]["steps"]):
                ax.hlines(by[key]["steps"], x - 0.35, x + 0.35, color="black", lw=1.5)
    ax.axhline(never, color="0.5", ls=":", lw=0.8)
    ax.text(-0.5, never * 1.02, "never (in the steps run)", fontsize=7, color="0.3")
    ax.set_xticks([p * (n + 1) + (n - 1) / 2 for p in range(len(groups))], list(groups))
    ax.set_ylim(0, never * 1.12)
    ax.set_ylabel(f"steps to {target:g} test accuracy\n(dot: one seed; bar: median)", fontsize=9)
    ax.set_title("steps to target, per seed", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)


def label_index(res, label: str) -> int:
    labels = list(res.coords["initializer"])
    if label not in labels:
        raise KeyError(f"no initializer labelled {label!r}; have {labels}")
    return labels.index(label)


def grid_values(res, key: str) -> list[float]:
    """The grid's values of ``key`` per grid point (``res.coords["grid_point"]``)."""
    return [float(g[key]) for g in res.coords["grid_point"]]


def lsuv_in_training() -> tuple[bool, str]:
    """Whether ``{name = "lsuv", base = "orthogonal"}`` is accepted in a training config, and why not."""
    from jaxinit.lab import config as config_lib

    data = {"network": {"depth": 2, "width": 4, "activation": "relu"},
            "sweep": {"seeds": 1, "initializers": [{"name": "lsuv", "base": "orthogonal"}]},
            "data": {"name": "digits"}, "train": {"steps": 1}}
    try:
        config_lib.from_dict(data, source="<lsuv check>")
    except Exception as e:  # noqa: BLE001 - any refusal is the answer, reported with its reason
        return False, f"{type(e).__name__}: {e}"
    return True, ""


def finite_or(values: Sequence[float], default: float) -> list[float]:
    return [v if math.isfinite(v) else default for v in values]
