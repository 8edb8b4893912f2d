"""Writing every figure that applies to a results folder."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaxinit._io import atomic_write
from jaxinit.lab.figures.common import DPI, FIGURE_FILES, FigureWarning, _as_results, _config
from jaxinit.lab.figures.depth import (
    correlation_figure,
    dead_saturated_figure,
    gradient_figure,
    jacobian_msv_figure,
    variance_figure,
)
from jaxinit.lab.figures.layout import _Context
from jaxinit.lab.figures.phase import phase_figures
from jaxinit.lab.figures.spectrum import spectrum_figure
from jaxinit.lab.figures.train import TRAIN_FIGURE_FILES, train_figures
from jaxinit.lab.store import FIGURES_DIR, Results


def _save(fig, path: Path) -> None:
    """savefig through :func:`jaxinit._io.atomic_write` (readers never see half a PNG; the
    file gets the umask's mode and survives a power loss once written)."""
    atomic_write(path, lambda f: fig.savefig(f, dpi=DPI, format="png"))


_SINGLE: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("q", variance_figure),
    ("grad_w_norm", gradient_figure),
    ("correlation", correlation_figure),
    ("dead_saturated", dead_saturated_figure),
    ("jacobian_msv", jacobian_msv_figure),
    ("spectrum", spectrum_figure),
)


def _is_training(results: Results) -> bool:
    """Whether a folder holds a training run: its config's ``kind`` (a ``[train]`` section), read from
    ``meta.json``'s config when the config cannot be rebuilt in this process."""
    config, _ = _config(results)
    if config is not None:
        return config.kind == "train"
    return isinstance(results.meta.get("config", {}).get("train"), dict)


def write_all(results_or_folder: Results | str | os.PathLike, out: str | os.PathLike | None = None) -> list[Path]:
    """Draw every figure that applies to a results folder; return the PNG paths written.

    Args:
      results_or_folder: a :class:`~jaxinit.lab.store.Results` or the folder to :func:`~jaxinit.lab.store.load`.
      out: where to write (default ``<folder>/figures``; created if needed).

    Figures whose statistics were not measured are skipped (no gradients: no gradient figure; no
    (sigma_w^2, sigma_b^2) grid: no phase diagram). File names: :data:`FIGURE_FILES`.

    A training run's folder (its config's ``kind == "train"``) gets the training figures instead
    (:mod:`jaxinit.lab.figures.train`; file names: :data:`~jaxinit.lab.figures.train.TRAIN_FIGURE_FILES`).
    """
    ctx = _Context(_as_results(results_or_folder))
    missing = ctx.missing_text()
    if missing is not None:
        warnings.warn(f"partial results: the figures show the seeds present; missing {missing}", FigureWarning,
                      stacklevel=2)
    folder = Path(out) if out is not None else ctx.results.path / FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if _is_training(ctx.results):
        for name, fig in train_figures(ctx).items():
            path = folder / TRAIN_FIGURE_FILES[name]
            _save(fig, path)
            written.append(path)
        return written
    for name, build in _SINGLE:
        fig = build(ctx)
        if fig is None:
            continue
        path = folder / FIGURE_FILES[name]
        _save(fig, path)
        written.append(path)
    for pid, fig in phase_figures(ctx).items():
        path = folder / FIGURE_FILES["phase"].format(program=pid)
        _save(fig, path)
        written.append(path)
    return written
