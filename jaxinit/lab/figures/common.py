"""What every figure shares: constants, the warning type, what a results folder says (programs,
initializers, grid, inputs), the curves a panel draws, overflow layers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxinit.lab.store import Results, load

DPI = 110
MAX_CURVES = 10  # per-layer panels show at most this many (initializer, grid point) curves
PANEL_W, PANEL_H = 4.4, 3.2  # inches per panel
FIGURE_FILES = {
    "q": "q_vs_depth.png",
    "grad_w_norm": "grad_norm_vs_depth.png",
    "correlation": "correlation_vs_depth.png",
    "dead_saturated": "dead_saturated_vs_depth.png",
    "jacobian_msv": "jacobian_msv_vs_depth.png",
    "spectrum": "jacobian_spectrum.png",
    "phase": "phase_{program}.png",
}
_X_LABEL = r"layer $\ell$ (pre-activation $h^\ell$; layers)"


class FigureWarning(UserWarning):
    """A figure was drawn without something it would show (a theory curve, the critical line) or a
    figure was not drawn; the message names the figure, the curves and the reason."""

_BAND_ALPHA = 0.18


def _overflow_layers(values: np.ndarray, first_nonfinite: np.ndarray | None) -> np.ndarray:
    """Per seed, the first layer where ``values`` (seed, layer) stops being finite (-1: never).

    A statistic that is not finite from layer 0 on while the network was finite there is taken as
    not measured (e.g. a correlation with a single input), not as an overflow. The engine's
    ``first_nonfinite_layer`` (first layer whose pre-activations overflowed) is folded in: a
    statistic can overflow earlier (``q = mean(h^2)`` squares ``h``), never later.
    """
    bad = ~np.isfinite(values)
    n_layers = values.shape[-1]
    first = np.where(bad.any(axis=-1), np.argmax(bad, axis=-1), -1)
    engine = (np.asarray(first_nonfinite) if first_nonfinite is not None
              else np.full(values.shape[0], -1))
    unmeasured = bad[:, 0] & (engine != 0) if n_layers else np.zeros(values.shape[0], bool)
    first = np.where(unmeasured, -1, first)
    both = np.where(first < 0, n_layers, first)
    both = np.minimum(both, np.where(engine < 0, n_layers, engine))
    return np.where(both >= n_layers, -1, both)


def _as_results(results_or_folder: Results | str | os.PathLike) -> Results:
    if isinstance(results_or_folder, Results):
        return results_or_folder
    return load(results_or_folder)


def _program_index(results: Results, program: str | int | None) -> int:
    ids = results.programs
    if program is None:
        if len(ids) != 1:
            raise ValueError(f"this sweep has {len(ids)} programs; pass program= one of {ids}.")
        return 0
    if isinstance(program, str) and program in ids:
        return ids.index(program)
    if isinstance(program, int) and not isinstance(program, bool) and 0 <= program < len(ids):
        return program
    raise ValueError(f"program must be one of {ids} or an index below {len(ids)}; got {program!r}.")


def _config(results: Results):
    """``(SweepConfig, None)``, or ``(None, why)`` when the config cannot be rebuilt from ``meta.json``."""
    try:
        return results.config, None
    except (ValueError, TypeError, ImportError, KeyError) as err:
        return None, f"the sweep's config cannot be rebuilt from meta.json ({type(err).__name__}: {err})"


def _theory_on(results: Results) -> bool:
    probes = results.meta.get("config", {}).get("probes", {})
    return bool(probes.get("theory", True)) if isinstance(probes, dict) else False


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _point_text(point: dict[str, float]) -> str:
    parts = []
    if "weight_variance" in point:
        parts.append(rf"$\sigma_w^2$={_fmt(point['weight_variance'])}")
    if "bias_variance" in point:
        parts.append(rf"$\sigma_b^2$={_fmt(point['bias_variance'])}")
    return ", ".join(parts)


def _program_title(results: Results, p: int) -> str:
    prog = results.coords["program"][p]
    return f"{prog['activation']}, depth {prog['depth']}, width {prog['width']}"


def _seeds_text(results: Results) -> str:
    n = len(results.coords.get("seed", []))
    if any(results.missing_seeds.values()):
        return f"the seeds present (of {n})"
    return f"{n} seed{'s' if n != 1 else ''}"


def _input_text(results: Results) -> str:
    inputs = results.meta.get("config", {}).get("inputs", {})
    kind = inputs.get("kind", "gaussian")
    q0 = inputs.get("q0", 1.0)
    if kind == "pairs":
        return rf"input pairs with correlation $c_0$={_fmt(inputs.get('correlation', 0.0))}, $q_0$={_fmt(q0)}"
    if kind == "digits":
        return rf"sklearn digits inputs, $q_0$={_fmt(q0)}"
    return rf"independent Gaussian inputs ($c_0\approx 0$), $q_0$={_fmt(q0)}"


class Curve(NamedTuple):
    """One line of a per-layer panel: an (initializer, grid point) pair, its label and colour."""

    init: int
    grid: int
    label: str
    color: Any


def _curves(results: Results, limit: int = MAX_CURVES) -> tuple[list[Curve], str]:
    """The (initializer, grid point) pairs the per-layer figures draw, and a note on the subset."""
    labels = list(results.coords["initializer"])
    points = list(results.coords["grid_point"])
    n_init, n_grid = len(labels), len(points)
    note = ""
    if n_init * n_grid <= limit:
        chosen = list(range(n_grid))
    else:
        per_init = max(1, limit // n_init)
        chosen = _grid_subset(points, per_init)
        note = f"showing {len(chosen)} of {n_grid} grid points"
    pairs = [(i, g) for i in range(n_init) for g in chosen][: max(limit, n_init)]
    colors = _colors(len(pairs), by_value=n_init == 1 and n_grid > 1)
    out = []
    for (i, g), color in zip(pairs, colors, strict=True):
        if n_grid == 1:
            label = labels[i]
        elif n_init == 1:
            label = _point_text(points[g]) or labels[i]
        else:
            label = f"{labels[i]}, {_point_text(points[g])}"
        out.append(Curve(i, g, label, color))
    return out, note


def _grid_subset(points: Sequence[dict[str, float]], k: int) -> list[int]:
    """Up to ``k`` grid points that tell the story: evenly spread weight variances at the middle
    bias variance (a slice across the order/chaos boundary), else evenly spread points."""
    if k >= len(points):
        return list(range(len(points)))
    wv = sorted({p["weight_variance"] for p in points if "weight_variance" in p})
    bv = sorted({p["bias_variance"] for p in points if "bias_variance" in p})
    candidates = list(range(len(points)))
    if len(wv) > 1 and len(bv) > 1:
        mid = bv[(len(bv) - 1) // 2]
        candidates = [g for g, p in enumerate(points) if p.get("bias_variance") == mid]
        candidates.sort(key=lambda g: points[g].get("weight_variance", 0.0))
    if len(candidates) <= k:
        return candidates
    picks = np.unique(np.round(np.linspace(0, len(candidates) - 1, k)).astype(int))
    return [candidates[j] for j in picks]


def _colors(n: int, by_value: bool) -> list[Any]:
    from matplotlib import colormaps

    if by_value and n > 1:  # one initializer across a grid: an ordered colour scale
        cmap = colormaps["viridis"]
        return [cmap(0.9 * j / (n - 1)) for j in range(n)]
    cmap = colormaps["tab10"]
    return [cmap(j % 10) for j in range(n)]
