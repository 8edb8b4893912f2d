"""Statistics across seeds, NaN/inf-aware and overflow-safe: the one implementation that summary.csv
and the figures share (so a figure's median is the table's median)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

QUANTILES = (("q05", 0.05), ("q25", 0.25), ("median", 0.5), ("q75", 0.75), ("q95", 0.95))


def _quantiles(v: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`QUANTILES` over the last axis ignoring NaN, numpy's default (linear) rule, vectorized.

    ``np.nanquantile`` loops in Python over every slice; this sorts once (NaN last) and
    interpolates between order statistics ``h = (n - 1) p``.
    """
    ordered = np.sort(v, axis=-1)
    top = np.maximum(n - 1, 0)
    out = {}
    for name, p in QUANTILES:
        h = top * p
        lo = np.floor(h).astype(np.int64)
        hi = np.minimum(lo + 1, top)
        a = np.take_along_axis(ordered, lo[..., None], axis=-1)[..., 0]
        b = np.take_along_axis(ordered, hi[..., None], axis=-1)[..., 0]
        t = h - lo
        value = np.where(t == 0, a, a + t * (b - a))
        out[name] = np.where(n > 0, value, np.nan)
    return out


def seed_stats(values: Any, axis: int = 0) -> dict[str, np.ndarray]:
    """Mean, std, quantiles (q05, q25, median, q75, q95) and the count of finite values along ``axis``.

    Non-finite entries (overflow, missing seeds) are left out; a slice with none finite gives NaN.
    Never warns. Quantiles use numpy's default (linear) rule. Sums or interpolations that overflow on
    huge finite values are redone in units of a power of two near the largest ``|value|`` (an exact
    rescaling), then scaled back.

    Example:
      >>> s = seed_stats([[1.0, 2.0], [3.0, np.inf], [5.0, np.nan]], axis=0)
      >>> s["median"].tolist(), s["n_finite"].tolist()
      ([3.0, 2.0], [3, 1])
    """
    x = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    finite = np.isfinite(x)
    n_finite = finite.sum(axis=-1)
    x = np.where(finite, x, np.nan)

    def compute(v):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return {"mean": np.nanmean(v, axis=-1), "std": np.nanstd(v, axis=-1), **_quantiles(v, n_finite)}

    stats = compute(x)
    bad = np.zeros(n_finite.shape, dtype=bool)
    for value in stats.values():
        bad |= ~np.isfinite(value) & (n_finite > 0)
    if bad.any():
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            peak = np.nanmax(np.abs(x), axis=-1, keepdims=True)
            scale = np.where(np.isfinite(peak) & (peak > 0), 2.0 ** np.floor(np.log2(np.where(peak > 0, peak, 1))),
                             1.0)
            scaled = compute(x / scale)
            for name in stats:
                stats[name] = np.where(bad, scaled[name] * np.squeeze(scale, axis=-1), stats[name])
    stats["n_finite"] = n_finite
    return stats
