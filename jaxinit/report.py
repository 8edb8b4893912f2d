"""Verdicts on a finished sweep: does the signal stay, vanish or explode through depth?

Pure functions of :class:`jaxinit.results.Results`; the CLI prints what they return.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

# The whole-depth factor of q within which a run counts as stable.
STABLE_FACTOR = 4.0


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One (program, initializer, grid point): medians over seeds."""

    program: str
    initializer: str
    grid: str
    q_ratio: float        # q at the last layer / q at the first layer
    rate: float           # per-layer factor: q_ratio ** (1 / (depth - 1))
    grad_ratio: float     # grad_w_norm first layer / last layer (nan without gradient probes)
    # Layer fields are 0-based array indices (as stored); the verdict text names the layer l = index + 1,
    # as the figures' x axes do.
    overflow_layer: int   # median first non-finite layer over seeds that overflowed; -1 if none did
    n_overflow: int
    underflow_layer: int = -1  # median first layer whose q underflowed, over seeds where it did; -1 if none
    n_underflow: int = 0
    n_seeds: int = 0

    @property
    def verdict(self) -> str:
        """Forward signal (q) first, then the gradients when they change by more than the same factor."""
        if self.n_overflow:
            return f"overflow at layer {self.overflow_layer + 1}"
        if self.n_underflow:
            forward = (f"vanishing (q underflows at layer {self.underflow_layer + 1}, "
                       f"{self.n_underflow}/{self.n_seeds} seeds)")
        elif not math.isfinite(self.q_ratio) or self.q_ratio == 0.0:
            forward = "vanishing (to zero)"
        elif self.q_ratio < 1 / STABLE_FACTOR:
            forward = f"vanishing (x{self.rate:.3g}/layer)"
        elif self.q_ratio > STABLE_FACTOR:
            forward = f"exploding (x{self.rate:.3g}/layer)"
        else:
            forward = "stable"
        if math.isfinite(self.grad_ratio) and self.grad_ratio > STABLE_FACTOR:
            return f"{forward}; gradients grow toward the input (x{self.grad_ratio:.3g})"
        if math.isfinite(self.grad_ratio) and 0 < self.grad_ratio < 1 / STABLE_FACTOR:
            return f"{forward}; gradients shrink toward the input (x{self.grad_ratio:.3g})"
        return forward


def verdicts(results) -> list[Verdict]:
    """A :class:`Verdict` per program x initializer x grid point."""
    out = []
    labels = results.coords["initializer"]
    points = results.coords["grid_point"]
    for program in results.programs:
        q = results.get("q", program)
        grad = results.get("grad_w_norm", program) if "grad_w_norm" in results.arrays else None
        bad = results.get("first_nonfinite_layer", program)
        under = results.get("first_underflow_layer", program) if "first_underflow_layer" in results.arrays else None
        depth = q.shape[-1]
        for i, label in enumerate(labels):
            for g, point in enumerate(points):
                with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN seeds: reported as nan
                    ratio = float(np.nanmedian(q[i, g, :, -1] / q[i, g, :, 0])) if depth else math.nan
                    grad_ratio = (float(np.nanmedian(grad[i, g, :, 0] / grad[i, g, :, -1]))
                                  if grad is not None else math.nan)
                rate = ratio ** (1.0 / (depth - 1)) if depth > 1 and ratio > 0 else math.nan
                overflowed = bad[i, g][bad[i, g] >= 0]
                underflowed = under[i, g][under[i, g] >= 0] if under is not None else np.zeros(0, int)
                out.append(Verdict(
                    program, str(label), ", ".join(f"{k}={v:g}" for k, v in point.items()) or "-",
                    ratio, rate, grad_ratio, int(np.median(overflowed)) if overflowed.size else -1,
                    int(overflowed.size), int(np.median(underflowed)) if underflowed.size else -1,
                    int(underflowed.size), int(bad.shape[2])))
    return out


def format_run(results, max_rows: int = 60) -> str:
    """The compact table printed after a sweep."""
    rows = verdicts(results)
    head = ("program", "initializer", "grid", "q_L/q_1", "grad_1/grad_L", "verdict")
    table = [(v.program, v.initializer, v.grid, _num(v.q_ratio), _num(v.grad_ratio), v.verdict)
             for v in rows[:max_rows]]
    widths = [max(len(h), *(len(r[c]) for r in table)) for c, h in enumerate(head)] if table else [len(h) for h in head]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more rows in summary.csv")
    timings = results.meta.get("timings", {})
    if timings:
        compile_s = sum(timings.get("compile_s", {}).values())
        lines.append(f"compile {compile_s:.1f} s, run {sum(timings.get('run_s', {}).values()):.1f} s, "
                     f"wall {timings.get('wall_s', float('nan')):.1f} s")
    return "\n".join(lines)


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3g}"
