"""The verdicts printed after a sweep: read from the per-layer trend, never "flat" for a zero or
non-finite gradient, and beside the mean-field theory's phase where it applies (issue 11 item 4)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from jaxinit.lab import config as config_lib
from jaxinit.lab import report
from jaxinit.lab import run as lab_run
from jaxinit.lab.report import Verdict, _num
from jaxinit.lab.store import Results


def synthetic(q, grad=None, width=256, grad_underflow=None, underflow=None, nonfinite=None):
    """A Results holding one program, one initializer, one grid point: q, grad of shape (seeds, depth)."""
    q = np.asarray(q, np.float64)
    seeds, depth = q.shape
    arrays = {"q": q[None, None, None], "first_nonfinite_layer": np.full((1, 1, 1, seeds), -1, np.int32)}
    if nonfinite is not None:
        arrays["first_nonfinite_layer"][...] = nonfinite
    if underflow is not None:
        arrays["first_underflow_layer"] = np.full((1, 1, 1, seeds), underflow, np.int32)
    if grad is not None:
        arrays["grad_w_norm"] = np.asarray(grad, np.float64)[None, None, None]
    if grad_underflow is not None:
        arrays["first_grad_underflow_layer"] = np.full((1, 1, 1, seeds), grad_underflow, np.int32)
    dims = {k: ("program", "initializer", "grid_point", "seed", "layer")[:v.ndim] for k, v in arrays.items()}
    coords = {"program": [{"id": "p", "depth": depth, "width": width, "activation": "tanh"}],
              "initializer": ["init"], "grid_point": [{}], "seed": list(range(seeds)), "layer": list(range(depth))}
    extent = {k: {"p": list(v.shape[4:])} for k, v in arrays.items()}
    return Results(Path("."), arrays, dims, coords, extent, {"config": {"probes": {"theory": False}}})


def one(results):
    (v,) = report.verdicts(results)
    return v


def layers(depth=50):
    return np.arange(depth, dtype=np.float64)


def test_q_converging_to_a_positive_fixed_point_is_not_vanishing():
    # q_l = q* + (q_1 - q*) 0.4^l: the end/start ratio is 0.18 (the old rule said "vanishing"),
    # but q settles at q* = 0.1: the trend over the last layers is flat.
    q = 0.1 + 0.45 * 0.4 ** layers()
    v = one(synthetic(np.tile(q, (4, 1))))
    assert v.q_ratio == pytest.approx(0.1 / 0.55, rel=1e-9)
    assert v.verdict == "converging (q -> 0.1)"


def test_q_decaying_or_growing_geometrically():
    assert one(synthetic(np.tile(0.5 ** layers(), (4, 1)))).verdict == "vanishing (x0.5/layer)"
    assert one(synthetic(np.tile(1.3 ** layers(), (4, 1)))).verdict == "exploding (x1.3/layer)"
    # A slow power law (q* = 0 on the edge of chaos, q_l ~ 1/l) still vanishes: -1/l per layer at l ~ 40
    assert one(synthetic(np.tile(1 / (1 + layers()), (4, 1)))).verdict.startswith("vanishing (x0.97")
    zeros = np.tile(np.r_[1.0, np.zeros(49)], (4, 1))
    assert one(synthetic(zeros)).verdict == "vanishing (to zero)"


def test_slow_trends_over_long_depth_are_not_converging():
    # He ReLU at width 128, depth 1000 (configs/deep_1000.toml): x0.985/layer is within the
    # per-layer tolerance 6/128, but the median q loses a factor 1e-8 over the last 500 layers.
    slow = np.tile(0.985 ** np.arange(1000.0), (4, 1))
    assert one(synthetic(slow, width=128)).verdict == "vanishing (x0.985/layer)"
    assert one(synthetic(1 / slow, width=128)).verdict == "exploding (x1.02/layer)"
    # At the edge of chaos with q* = 0, q ~ 1/l: a factor 2 over the last half of any depth, and a
    # per-layer factor that tends to 1 with depth; the power law tells it from a settled q.
    # Without a theory a power law may be the finite-width drift: it is said, but not as vanishing.
    power = np.tile(1 / (1 + np.arange(1000.0)), (4, 1))
    assert one(synthetic(power, width=128)).verdict == "decreasing slowly (q ~ l^-1)"
    linear = np.tile(1 + np.arange(1000.0), (4, 1))  # ReLU at sigma_w^2 = 2 with a bias: q grows ~ l
    assert one(synthetic(linear, width=128)).verdict == "increasing slowly (q ~ l^1)"
    settled = np.tile(0.6 + 0.4 * 0.9 ** np.arange(1000.0), (4, 1))
    assert one(synthetic(settled, width=128)).verdict == "converging (q -> 0.6)"


def test_a_power_law_is_read_with_the_theory_where_it_applies():
    power = np.tile(1 / (1 + np.arange(1000.0)), (4, 1))
    row = dataclasses.replace(one(synthetic(power, width=128)), q_star=0.0, theory="critical, q* = 0")
    assert row.forward == "vanishing (power law, q ~ l^-1)"
    # He ReLU's finite-width drift (p ~ -0.7 over layers 25-50, q_L ~ 1) while the theory says q* = 2:
    drift = np.tile(np.exp(-0.0185 * np.arange(50.0)), (4, 1))  # x0.982/layer: within tau = 6/256
    row = one(synthetic(drift, width=256))
    assert row.power < -0.5
    assert dataclasses.replace(row, q_star=2.0).forward.startswith("converging")
    assert dataclasses.replace(row, q_star=0.0).forward.startswith("vanishing (power law")


def test_zero_or_underflowed_or_non_finite_gradients_are_never_flat():
    q = np.ones((4, 50))
    grad = np.tile(np.r_[np.zeros(17), np.geomspace(1e-17, 1.0, 33)], (4, 1))  # issue 11: ratio exactly 0
    v = one(synthetic(q, grad))
    assert v.grad_ratio == 0.0
    assert v.verdict == "converging (q -> 1); gradients vanish toward the input (to zero)"
    v = one(synthetic(q, np.tile(np.geomspace(1e-30, 1.0, 50), (4, 1)), grad_underflow=16))
    assert v.verdict == "converging (q -> 1); gradients vanish (underflow at layer 17, 4/4 seeds)"
    v = one(synthetic(q, np.full((4, 50), np.nan)))
    assert v.verdict == "converging (q -> 1); gradients not finite"


def test_gradients_with_nearly_the_same_trend_get_the_same_verdict():
    # issue 11: sigmoid LeCun (ratio 0.248) was "vanishing", He (0.267) "stable"; both shrink by
    # ~2.7% per layer, beyond the finite-width tolerance 6/256 = 2.3%.
    q = np.ones((4, 50))
    for ratio in (0.248, 0.267):
        grad = np.tile(ratio ** (1 - layers() / 49), (4, 1))
        v = one(synthetic(q, grad))
        assert v.grad_ratio == pytest.approx(ratio, rel=1e-9)
        assert v.grad_rate == pytest.approx(ratio ** (1 / 49), rel=1e-9)
        assert v.verdict == (f"converging (q -> 1); gradients shrink toward the input (x{ratio ** (1 / 49):.3g}/layer, "
                             f"x{ratio:.3g} in all)")
    grow = one(synthetic(q, np.tile(11.1 ** (1 - layers() / 49), (4, 1))))
    assert "gradients grow toward the input (x1.05/layer, x11.1 in all)" in grow.verdict
    flat = one(synthetic(q, np.tile(0.9 ** (1 - layers() / 49), (4, 1))))  # 0.2%/layer: within 6/256
    assert flat.verdict == "converging (q -> 1)"


def test_overflow_and_underflow_name_their_layer():
    v = Verdict("p", "normal(0.01)", "-", 0.0, float("nan"), float("nan"), -1, 0, underflow_layer=19, n_underflow=30,
                n_seeds=32)
    assert v.verdict == "vanishing (q underflows at layer 20, 30/32 seeds)"
    v = Verdict("p", "x", "-", float("nan"), float("nan"), 1.0, 4, 2, underflow_layer=9, n_underflow=1, n_seeds=2)
    assert v.verdict == "overflow at layer 5"  # overflow wins: after it, nothing is measured


def test_run_table_prints_a_dash_for_a_ratio_it_did_not_measure():
    assert _num(float("nan")) == "-" and _num(float("inf")) == "inf" and _num(0.5) == "0.5"


# -- real sweeps whose behaviour the theory fixes -----------------------------------------------------
def _sweep(tmp_path, activation, initializers, grid=None, depth=30, width=128, seeds=8, name="out"):
    data = config_lib.load("configs/quickstart.toml").to_dict()
    data["network"].update(depth=depth, width=width, activation=activation, bias="zeros")
    data["sweep"].update(initializers=initializers, seeds=seeds)
    data["inputs"]["batch"] = 16
    data["probes"].update(gradients=True, theory=True)
    if grid:
        data["grid"] = grid
    data["output"] = {"dir": str(tmp_path / name), "chunk": 0}
    return lab_run.run(config_lib.from_dict(data, source="test"), progress=False)


@pytest.mark.slow
def test_verdicts_of_sweeps_the_theory_describes(tmp_path):
    gaussian = {"name": "variance_scaling", "scale": 1.0, "mode": "fan_in", "distribution": "normal",
                "label": "gaussian"}
    # tanh, sigma_w^2 = 0.5, sigma_b^2 = 0.05: ordered, q -> q* ~ 0.1 > 0 (was "vanishing");
    # sigma_w^2 = 4, sigma_b^2 = 0.05: chaotic, q -> q* ~ 2.5 (the gradients grow toward the input).
    res = _sweep(tmp_path, "tanh", [gaussian], {"points": [{"weight_variance": 0.5, "bias_variance": 0.05},
                                                          {"weight_variance": 4.0, "bias_variance": 0.05}]})
    ordered, chaotic = report.verdicts(res)
    assert ordered.forward.startswith("converging (q -> ")
    assert "[theory: ordered, q* = 0.0876]" in ordered.verdict
    # width 128: q at the fixed point is q* up to O(1/width) corrections and the seeds' spread
    assert ordered.q_last == pytest.approx(0.0876, rel=0.1)
    assert chaotic.forward.startswith("converging") and "[theory: chaotic" in chaotic.verdict
    assert "gradients grow toward the input" in chaotic.verdict
    # relu: He is critical (q flat), LeCun ordered (q halves per layer: q* = 0).
    res = _sweep(tmp_path, "relu", ["he_normal", "lecun_normal"], name="relu")
    he, lecun = report.verdicts(res)
    assert he.forward.startswith("converging") and "[theory: critical" in he.verdict
    assert lecun.forward.startswith("vanishing (x0.5") and "[theory: ordered, q* = 0]" in lecun.verdict
    text = report.format_run(res)
    assert "stable" not in text and "converging" in text


def test_a_one_layer_sweep_runs_and_its_verdict_says_there_is_no_trend(tmp_path):
    """Depth 1 compiled no program (the hidden-layer scan was traced with the readout's shape)."""
    config = config_lib.from_dict({"network": {"depth": 1, "width": 8, "activation": ["relu", "tanh"]},
                            "sweep": {"seeds": 2, "initializers": ["he_normal", "orthogonal"]},
                            "inputs": {"batch": 8}}, source="d1.toml")
    results = lab_run.run(config, out=str(tmp_path / "d1"), progress=False)
    q = results.get("q", program=0)
    assert q.shape == (2, 1, 2, 1) and np.isfinite(q).all()
    assert np.isfinite(results.get("grad_w_norm", program=1)).all()
    assert all(v.verdict.startswith("one layer: no trend through depth") for v in report.verdicts(results))
