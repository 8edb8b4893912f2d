r"""Verdicts on a finished sweep: does the signal vanish, converge to a fixed point or explode?

Pure functions of :class:`jaxinit.lab.store.Results`; the CLI prints what they return.

A verdict reads the per-layer *trend*, not one end-to-start ratio:

* the forward signal: per seed, the least-squares slope of :math:`\log q_l` over the last half of
  the layers (the median over seeds, as a per-layer factor ``q_rate``). ``vanishing`` when
  :math:`q \to 0` (underflow, an exact 0, or ``q_rate`` below :math:`e^{-\tau}`), ``exploding``
  when it grows (``q_rate`` above :math:`e^{\tau}`, or overflow), ``converging`` when it settles
  (:math:`q \to q^* > 0`; the value reached is shown). Two more readings of the same window keep
  a slow trend from passing as flat: the whole window's change (beyond a factor
  ``WINDOW_FACTOR`` it is vanishing or exploding, however small the per-layer factor: He-initialised
  ReLU at width 128 loses 1e-8 of its median q over 1000 layers at x0.985/layer), and the power
  law :math:`q \propto l^{p}` (the slope of :math:`\log q` against :math:`\log l`): at the edge of
  chaos with :math:`q^* = 0` (tanh at :math:`\sigma_w^2 = 1`) q decays as :math:`1/l`, a factor of 2
  over the last half of any depth, so :math:`p < -1/2` reads ``vanishing (power law)`` and
  :math:`p > 1/2` ``growing (power law)`` when the theory's :math:`q^*` lies beyond the measured
  :math:`q_L` in that direction (by a factor 2). A power law the theory does not confirm may be
  the finite-width drift (a He-initialised ReLU network of width 256 drifts to
  :math:`p \approx -0.7` over layers 25-50 while its theory says :math:`q^* = 2`: converging);
  without a theory it reads ``decreasing slowly`` / ``increasing slowly``, never ``converging``.
  :math:`\tau = 6 / \mathrm{width}`: at finite width :math:`\log q` takes a random step per layer of variance about
  :math:`7/\mathrm{width}` (ReLU, one input: :math:`2/\mathrm{width}` from the new weights,
  :math:`5/\mathrm{width}` from :math:`\mathrm{Var}[\phi(h)^2]`), so its median drifts by about
  :math:`-3.5/\mathrm{width}` per layer even where :math:`E[q_l]` is constant (He-initialised ReLU);
  :math:`\tau` leaves that drift a margin of 1.7.
* the gradients: the same fit of :math:`\log \|\partial L/\partial W_l\|` over all layers, as a
  factor per layer toward the input (``grad_rate``); they ``shrink`` or ``grow toward the input``
  beyond the same :math:`\tau`. A gradient that underflowed (``first_grad_underflow_layer``) or
  whose first/last ratio is 0 *vanishes*; a non-finite one is *not finite*: neither is ever flat.
* the theory, where it applies (a plain MLP whose :math:`\sigma_w^2, \sigma_b^2` are known,
  :func:`jaxinit.lab.figures.theory_overlay`): the phase of :func:`jaxinit.theory.phase` and
  :math:`q^*` (from the network's :math:`q_1`) are shown beside the measured verdict.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np

# |log(per-layer factor)| within FLAT_PER_WIDTH / width counts as no trend (finite-width noise).
FLAT_PER_WIDTH = 6.0
# A change of q by more than this factor over the fitted window is a trend, whatever its rate.
WINDOW_FACTOR = 8.0
# |p| of q ~ l^p beyond which a slow (power-law) trend is reported: 1/l decay has p = -1.
POWER_LAW = 0.5


def flat_tolerance(width: int | None) -> float:
    r""":math:`\tau`: the per-layer :math:`|\log|` change that counts as flat at this width."""
    return FLAT_PER_WIDTH / width if width else FLAT_PER_WIDTH / 256


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One (program, initializer, grid point): medians over seeds."""

    program: str
    initializer: str
    grid: str
    q_ratio: float        # q at the last layer / q at the first layer
    rate: float           # per-layer factor of q over the last half of the layers (fit of log q)
    grad_ratio: float     # grad_w_norm first layer / last layer (nan without gradient probes)
    # Layer fields are 0-based array indices (as stored); the verdict text names the layer l = index + 1,
    # as the figures' x axes do.
    overflow_layer: int   # median first non-finite layer over seeds that overflowed; -1 if none did
    n_overflow: int
    underflow_layer: int = -1  # median first layer whose q underflowed, over seeds where it did; -1 if none
    n_underflow: int = 0
    n_seeds: int = 0
    q_last: float = math.nan   # median q at the last layer
    grad_rate: float = math.nan  # per-layer factor of grad_w_norm toward the input (fit over all layers)
    grad_underflow_layer: int = -1  # median first layer whose gradient underflowed; -1 if none did
    n_grad_underflow: int = 0
    has_gradients: bool = False
    tolerance: float = 6.0 / 256  # tau: |log rate| within it is flat
    theory: str | None = None  # "ordered, q* = 0.1" where the mean-field theory applies
    q_star: float | None = None  # the theory's q* for this row (None: no theory applies)
    window: int = 0            # layers in the fit of log q (the last half)
    power: float = math.nan    # median p of q ~ l^p over the same layers

    @property
    def forward(self) -> str:
        """The forward signal's verdict: vanishing, converging or exploding (or overflow)."""
        if self.n_overflow:
            return f"overflow at layer {self.overflow_layer + 1}"
        if self.n_underflow:
            return (f"vanishing (q underflows at layer {self.underflow_layer + 1}, "
                    f"{self.n_underflow}/{self.n_seeds} seeds)")
        if not math.isfinite(self.q_ratio) or self.q_ratio == 0.0 or not self.q_last > 0.0:
            return "vanishing (to zero)"
        if self.window < 2:  # one hidden layer: nothing to follow through depth
            return f"one layer: no trend through depth (q = {self.q_last:.3g})"
        if not math.isfinite(self.rate):
            return "vanishing (to zero)" if self.rate == 0.0 else "undetermined (no finite trend of q)"
        change = math.log(self.rate) * max(self.window - 1, 0)
        if math.log(self.rate) < -self.tolerance or change < -math.log(WINDOW_FACTOR):
            return f"vanishing (x{self.rate:.3g}/layer)"
        if math.log(self.rate) > self.tolerance or change > math.log(WINDOW_FACTOR):
            return f"exploding (x{self.rate:.3g}/layer)"
        if self._power_law(-1):
            if self.q_star is None:
                return f"decreasing slowly (q ~ l^{self.power:.2g})"
            return f"vanishing (power law, q ~ l^{self.power:.2g})"
        if self._power_law(+1):
            if self.q_star is None:
                return f"increasing slowly (q ~ l^{self.power:.2g})"
            return f"growing (power law, q ~ l^{self.power:.2g})"
        return f"converging (q -> {self.q_last:.3g})"

    def _power_law(self, sign: int) -> bool:
        """Whether q follows a power law with exponent of ``sign`` (beyond ``POWER_LAW``) that the
        theory, where it applies, confirms: its q* lies beyond q_L in that direction by 2x."""
        if not math.isfinite(self.power) or sign * self.power <= POWER_LAW:
            return False
        if self.q_star is None:
            return True
        return sign * math.log(max(self.q_star, 1e-300) / self.q_last) > math.log(2.0)

    @property
    def gradients(self) -> str | None:
        """The gradients' verdict, or ``None`` when they are flat or not measured."""
        if self.n_grad_underflow:
            return (f"gradients vanish (underflow at layer {self.grad_underflow_layer + 1}, "
                    f"{self.n_grad_underflow}/{self.n_seeds} seeds)")
        if not self.has_gradients or self.window < 2:
            return None
        if self.grad_ratio == 0.0 or self.grad_rate == 0.0:
            return "gradients vanish toward the input (to zero)"
        if not (math.isfinite(self.grad_ratio) and math.isfinite(self.grad_rate) and self.grad_rate > 0):
            return "gradients not finite"
        if math.log(self.grad_rate) < -self.tolerance:
            return f"gradients shrink toward the input (x{self.grad_rate:.3g}/layer, x{self.grad_ratio:.3g} in all)"
        if math.log(self.grad_rate) > self.tolerance:
            return f"gradients grow toward the input (x{self.grad_rate:.3g}/layer, x{self.grad_ratio:.3g} in all)"
        return None

    @property
    def verdict(self) -> str:
        """Forward signal, then the gradients when they trend, then the theory's phase."""
        text = self.forward
        if not self.n_overflow and (grads := self.gradients):
            text = f"{text}; {grads}"
        if self.theory:
            text = f"{text} [theory: {self.theory}]"
        return text


def _log_slopes(values: np.ndarray, layers: slice) -> np.ndarray:
    """Per seed (leading axes), the least-squares slope of log(values) over ``layers``; NaN where a
    value there is not positive and finite, or fewer than 2 layers."""
    v = values[..., layers]
    n = v.shape[-1]
    if n < 2:
        return np.full(v.shape[:-1], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(np.where((v > 0) & np.isfinite(v), v, np.nan))
    x = np.arange(n) - (n - 1) / 2
    return np.sum(y * x, axis=-1) / np.sum(x * x)


def _power_laws(values: np.ndarray, first: int) -> np.ndarray:
    """Per seed, the least-squares slope of log(values[..., first:]) against log(l), l = layer index + 1."""
    v = values[..., first:]
    if v.shape[-1] < 2:
        return np.full(v.shape[:-1], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(np.where((v > 0) & np.isfinite(v), v, np.nan))
    x = np.log(np.arange(first, values.shape[-1]) + 1.0)
    x = x - x.mean()
    return np.sum(y * x, axis=-1) / np.sum(x * x)


def _median(x: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: reported as nan
        return float(np.nanmedian(x)) if x.size else math.nan


def _theory_texts(results, program: str) -> dict[tuple[int, int], tuple[str, float]]:
    """``{(i, g): "phase, q* = ..."}`` where the mean-field theory applies to the row."""
    from jaxinit import theory
    try:
        from jaxinit.lab.figures import theory_overlay

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            overlay = theory_overlay(results, program)
    except Exception:  # no config, or a network theory does not describe: measured verdicts only
        return {}
    out = {}
    act = overlay.get("activation")
    for (i, g), ok in np.ndenumerate(overlay["available"]):
        if not ok:
            continue
        sw, sb = float(overlay["weight_variance"][i, g]), float(overlay["bias_variance"][i, g])
        q1 = float(overlay["q"][i, g, 0])
        try:
            ph = theory.phase(act, sw, sb)
            qs = theory.q_star(act, sw, sb, q0=q1)
        except (ValueError, TypeError, ArithmeticError):
            continue
        out[(i, g)] = (f"{ph}, q* = {qs:.3g}", float(qs))
    return out


def verdicts(results) -> list[Verdict]:
    """A :class:`Verdict` per program x initializer x grid point."""
    out = []
    labels = results.coords["initializer"]
    points = results.coords["grid_point"]
    for p, program in enumerate(results.programs):
        q = results.get("q", program)
        grad = results.get("grad_w_norm", program) if "grad_w_norm" in results.arrays else None
        bad = results.get("first_nonfinite_layer", program)
        under = results.get("first_underflow_layer", program) if "first_underflow_layer" in results.arrays else None
        grad_under = (results.get("first_grad_underflow_layer", program)
                      if "first_grad_underflow_layer" in results.arrays else None)
        depth = q.shape[-1]
        width = results.coords["program"][p].get("width")
        tol = flat_tolerance(int(width) if width else None)
        first = depth // 2 if depth >= 4 else 0
        q_slopes = _log_slopes(q, slice(first, depth))
        q_powers = _power_laws(q, first)
        grad_slopes = _log_slopes(grad, slice(0, grad.shape[-1])) if grad is not None else None
        theory_texts = _theory_texts(results, program) if results.meta.get("config", {}).get(
            "probes", {}).get("theory", True) else {}
        for i, label in enumerate(labels):
            for g, point in enumerate(points):
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = _median(q[i, g, :, -1] / q[i, g, :, 0]) if depth else math.nan
                    grad_ratio = _median(grad[i, g, :, 0] / grad[i, g, :, -1]) if grad is not None else math.nan
                slope = _median(q_slopes[i, g])
                # toward the input: grad_1 / grad_L = exp(-slope)^(L - 1)
                grad_slope = _median(grad_slopes[i, g]) if grad_slopes is not None else math.nan
                overflowed = bad[i, g][bad[i, g] >= 0]
                underflowed = under[i, g][under[i, g] >= 0] if under is not None else np.zeros(0, int)
                g_under = grad_under[i, g][grad_under[i, g] >= 0] if grad_under is not None else np.zeros(0, int)
                out.append(Verdict(
                    program, str(label), ", ".join(f"{k}={v:g}" for k, v in point.items()) or "-",
                    ratio, math.exp(slope) if math.isfinite(slope) else math.nan, grad_ratio,
                    int(np.median(overflowed)) if overflowed.size else -1, int(overflowed.size),
                    int(np.median(underflowed)) if underflowed.size else -1, int(underflowed.size),
                    int(bad.shape[2]), q_last=_median(q[i, g, :, -1]) if depth else math.nan,
                    grad_rate=math.exp(-grad_slope) if math.isfinite(grad_slope) else (
                        0.0 if grad is not None and grad_ratio == 0.0 else math.nan),
                    grad_underflow_layer=int(np.median(g_under)) if g_under.size else -1,
                    n_grad_underflow=int(g_under.size), has_gradients=grad is not None, tolerance=tol,
                    theory=theory_texts[(i, g)][0] if (i, g) in theory_texts else None,
                    q_star=theory_texts[(i, g)][1] if (i, g) in theory_texts else None,
                    window=depth - first, power=_median(q_powers[i, g])))
    return out


def training_rows(results) -> list[dict[str, Any]]:
    """Per program x initializer x grid point of a training run, over seeds: the median final test
    accuracy (or test loss, for regression), its 25-75% range, the median steps to each target set
    with how many seeds reached it (``reached`` / ``n``; the median is over those that did), the
    diverged members, and the fewest distinct units in any hidden layer (median over seeds)."""
    coords = results.coords
    labels, points = coords["initializer"], coords["grid_point"]
    out = []
    for p, program in enumerate(coords["program"]):
        def get(name, p=p):
            return np.asarray(results.arrays[name][p], np.float64) if name in results.arrays else None

        acc, loss = get("final_test_accuracy"), get("final_test_loss")
        final = acc if acc is not None else loss
        diverged, distinct = get("diverged"), get("distinct_units")
        for i, label in enumerate(labels):
            for g, point in enumerate(points):
                row: dict[str, Any] = {"program": program["id"], "initializer": label, "grid": _point_text(point),
                                       "metric": "test_accuracy" if acc is not None else "test_loss"}
                values = final[i, g]
                row["final"] = _median(values)
                row["final_q25"], row["final_q75"] = (
                    (float(np.nanquantile(values, 0.25)), float(np.nanquantile(values, 0.75)))
                    if np.isfinite(values).any() else (math.nan, math.nan))
                for target in ("steps_to_accuracy", "steps_to_loss"):
                    steps = get(target)
                    if steps is not None:
                        reached = np.isfinite(steps[i, g])
                        row[target] = _median(steps[i, g])
                        row[f"{target}_reached"] = int(reached.sum())
                row["n"] = int(values.size)
                row["diverged"] = int(np.sum(diverged[i, g] > 0)) if diverged is not None else 0
                row["min_distinct_units"] = (_median(np.nanmin(np.where(distinct[i, g] < 0, np.nan, distinct[i, g]),
                                                               axis=-1))
                                             if distinct is not None and distinct.shape[-1] else math.nan)
                out.append(row)
    return out


def _point_text(point: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in point.items()) or "-"


def format_training(results, max_rows: int = 60) -> str:
    """The compact table printed after a training run (:func:`training_rows`)."""
    rows = training_rows(results)
    metric = rows[0]["metric"] if rows else "test_accuracy"
    targets = [t for t in ("steps_to_accuracy", "steps_to_loss") if rows and t in rows[0]]
    head = ("program", "initializer", "grid", f"final {metric} (median [25%, 75%])",
            *(f"{t} (median, reached)" for t in targets), "diverged", "distinct units (min layer)")
    table = []
    for r in rows[:max_rows]:
        final = f"{_num(r['final'])} [{_num(r['final_q25'])}, {_num(r['final_q75'])}]"
        reached = [f"{_num(r[t]) if r[f'{t}_reached'] else 'not reached'} ({r[f'{t}_reached']}/{r['n']})"
                   for t in targets]
        table.append((r["program"], r["initializer"], r["grid"], final, *reached, f"{r['diverged']}/{r['n']}",
                      _num(r["min_distinct_units"])))
    widths = [max(len(h), *(len(t[c]) for t in table)) for c, h in enumerate(head)] if table else [len(h) for h in head]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)) for t in table]
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more rows in summary.csv")
    lines += _timing_lines(results)
    return "\n".join(lines)


def _timing_lines(results) -> list[str]:
    timings = results.meta.get("timings", {})
    if not timings:
        return []
    compile_s = sum(timings.get("compile_s", {}).values())
    return [f"compile {compile_s:.1f} s, run {sum(timings.get('run_s', {}).values()):.1f} s, "
            f"wall {timings.get('wall_s', float('nan')):.1f} s"]


def format_run(results, max_rows: int = 60) -> str:
    """The compact table printed after a sweep (or, for a training run, :func:`format_training`)."""
    if results.config.kind == "train":
        return format_training(results, max_rows)
    rows = verdicts(results)
    head = ("program", "initializer", "grid", "q_L/q_1", "grad_1/grad_L", "verdict")
    table = [(v.program, v.initializer, v.grid, _num(v.q_ratio), _num(v.grad_ratio), v.verdict)
             for v in rows[:max_rows]]
    widths = [max(len(h), *(len(r[c]) for r in table)) for c, h in enumerate(head)] if table else [len(h) for h in head]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more rows in summary.csv")
    lines += _timing_lines(results)
    return "\n".join(lines)


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3g}"
