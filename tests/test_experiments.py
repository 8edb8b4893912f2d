"""The reproductions of experiments/repro (issue 14) at small size.

Each reproduction runs shrunk (``--small``: fewer seeds, smaller depths and widths) into a temporary
folder and writes its figure, tables and verdict; the verdict written is the one its verdict
function computes from the numbers written beside it; a few of those numbers are checked against
what must hold at any size (an orthogonal linear network is an exact isometry, zeros draw one
distinct unit, ...). Each verdict function is also fed numbers made up for each outcome, so what
the README reports is what the numbers say, not a fixed string.
"""

from __future__ import annotations

import math

import pytest

from experiments.repro import common, depth, gains, isometry, order_chaos, seeds_init
from experiments.repro.common import AGREES, DOES_NOT, PARTLY, Verdict

from helpers import run_small, statuses


# -- common ---------------------------------------------------------------------------------------
def test_overall_combines_statuses():
    a, p, d = (Verdict("c", s, "w") for s in (AGREES, PARTLY, DOES_NOT))
    assert common.overall([a, a]) == AGREES
    assert common.overall([d, d]) == DOES_NOT
    assert common.overall([a, d]) == PARTLY
    assert common.overall([p]) == PARTLY
    with pytest.raises(ValueError, match="status must be one of"):
        Verdict("c", "maybe", "w")
    with pytest.raises(ValueError, match="at least one verdict"):
        common.overall([])


def test_save_figure_shrinks_a_png_to_its_budget(tmp_path):
    import numpy as np
    from matplotlib.image import imread

    fig, axes = common.new_figure(1, 1)
    axes[0][0].imshow(np.random.default_rng(0).random((300, 300)), interpolation="nearest")  # noise: a large PNG
    full = common.save_figure(fig, tmp_path / "full.png", max_bytes=10**9)
    assert imread(full).shape[1] == round(common.FIG_WIDTH_IN * common.DPI)
    budget = full.stat().st_size // 2
    shrunk = common.save_figure(fig, tmp_path / "shrunk.png", max_bytes=budget)
    width = imread(shrunk).shape[1]
    assert shrunk.stat().st_size <= budget or width == round(common.FIG_WIDTH_IN * 60)  # 60 dpi: the floor
    assert width < imread(full).shape[1]


# -- reproduction 4: depth ---------------------------------------------------------------------------
def _depth_numbers(he_ratio=1.0, he_se=0.001, lecun_ratio=0.5, died_at=126.0, he_median=0.5):
    he = {"depth": 1000, "mean_ratio": he_ratio, "ratio_se": he_se, "theory_ratio": 1.0, "typical_death_layer": math.inf,
          "seeds_died": 0, "seeds": 16, "median_death_layer": math.inf, "theory_death_layer": math.inf,
          "death_tolerance": math.nan, "median_qL_over_q1": he_median, "finite_width_qL_over_q1": 0.4}
    lecun = {"depth": 1000, "mean_ratio": lecun_ratio, "ratio_se": 0.001, "theory_ratio": 0.5, "typical_death_layer": 125.0,
             "seeds_died": 16, "seeds": 16, "median_death_layer": died_at, "theory_death_layer": 128.0,
             "death_tolerance": 4.0, "median_qL_over_q1": 0.0, "finite_width_qL_over_q1": 0.0}
    return {"he_normal": {1000: he}, "lecun_normal": {1000: lecun}}


def test_depth_verdict_follows_the_numbers():
    assert statuses(depth.verdict(_depth_numbers())) == [AGREES, AGREES, AGREES]
    # He's mean ratio 0.98 is 20 standard errors off 1; LeCun dies 30 layers early; He's typical q 1e-4
    bad = depth.verdict(_depth_numbers(he_ratio=0.98, died_at=95.0, he_median=1e-4))
    assert statuses(bad) == [PARTLY, PARTLY, DOES_NOT]
    assert "he_normal L=1000: 0.9800" in bad[0].why
    assert statuses(depth.verdict(_depth_numbers(he_ratio=0.9, lecun_ratio=0.6)))[0] == DOES_NOT


def test_depth_theory_death_layer():
    # q_l = 2^-(l-1) first falls below float32's smallest normal 2^-126 at l = 128
    assert depth.theory_death_layer(1.0, 0.5) == 128
    assert depth.theory_death_layer(1.0, 1.0) == math.inf
    assert depth.theory_death_layer(1.0, 1.0, drift=0.01) < math.inf


@pytest.mark.slow
def test_depth_small_run(tmp_path):
    written = run_small(depth, tmp_path)
    numbers = written["numbers"]
    assert {m["theory_ratio"] for m in numbers["he_normal"].values()} == {1.0}
    assert {m["theory_ratio"] for m in numbers["lecun_normal"].values()} == {0.5}
    # LeCun and Xavier draw the same weights on square layers (same noise, same variance)
    assert numbers["lecun_normal"]["150"]["mean_ratio"] == numbers["xavier_normal"]["150"]["mean_ratio"]


# -- reproduction 3: isometry ------------------------------------------------------------------------
def _iso(orth, gauss):
    return {"orthogonal": {"depths": [2, 128], "within2": orth}, "gaussian": {"depths": [2, 128], "within2": gauss}}


def test_isometry_verdict_follows_the_numbers():
    assert statuses(isometry.verdict({"linear": _iso([1.0, 1.0], [0.47, 0.02])})) == [AGREES]
    assert statuses(isometry.verdict({"tanh": _iso([0.77, 0.60], [0.40, 0.02])})) == [PARTLY]
    assert statuses(isometry.verdict({"tanh": _iso([1.0, 0.95], [0.40, 0.30])})) == [PARTLY]
    assert statuses(isometry.verdict({"x": _iso([0.5, 0.3], [0.4, 0.35])})) == [DOES_NOT]


def test_isometry_lyapunov_quantiles_scale_with_depth():
    one, ten = isometry.lyapunov_log10(64, 1, [0.5]), isometry.lyapunov_log10(64, 10, [0.5])
    assert ten[0] == pytest.approx(10 * one[0])
    assert one[0] < 0


@pytest.mark.slow
def test_isometry_small_run(tmp_path):
    written = run_small(isometry, tmp_path)
    linear = written["numbers"]["linear"]["orthogonal"]
    assert linear["within2"] == [1.0] * len(linear["depths"])   # an exact isometry, whatever the depth
    assert max(linear["spread"]) < 1e-5
    assert max(linear["msv"]) == pytest.approx(1.0, abs=1e-5)


# -- reproduction 2: order and chaos -----------------------------------------------------------------
def _oc(boundaries, xis, critical_row=1.761):
    return {"boundary": [{"bias_variance": 0.05 * (i + 1), "measured": m, "critical": c, "step": 0.25}
                         for i, (m, c) in enumerate(boundaries)],
            "xi": [{"weight_variance": w, "measured": m, "theory_fit": t, "theory": t} for w, m, t in xis],
            "critical_row": critical_row}


def test_order_chaos_verdict_follows_the_numbers():
    xis = [(1.0, 3.5, 3.6), (1.75, 25.0, 25.0), (3.0, 11.0, 10.5)]
    assert statuses(order_chaos.verdict(_oc([(1.6, 1.76), (2.0, 1.99)], xis))) == [AGREES, AGREES]
    far = order_chaos.verdict(_oc([(1.2, 1.76), (math.nan, 1.99)], [(1.0, 9.0, 3.6), (1.75, 5.0, 25.0),
                                                                      (3.0, 30.0, 10.5)]))
    assert statuses(far) == [DOES_NOT, DOES_NOT]
    assert statuses(order_chaos.verdict(_oc([(1.6, 1.76), (1.2, 1.99)], xis)))[0] == PARTLY


def test_order_chaos_boundary_and_fit():
    assert order_chaos.measured_boundary([1.0, 2.0, 3.0], [0.0, 0.02, 0.5], 0.01) == pytest.approx(1.5)
    assert math.isnan(order_chaos.measured_boundary([1.0, 2.0], [0.0, 0.001]))
    import numpy as np

    layers = np.arange(1, 61)
    delta = np.stack([0.3 * np.exp(-layers / 7.0)] * 3)  # three identical seeds: no noise
    xi, first, last = order_chaos.fit_xi(delta)
    assert xi == pytest.approx(7.0, rel=1e-6)
    assert first == order_chaos.FIT_START and last <= 60


@pytest.mark.slow
def test_order_chaos_small_run(tmp_path):
    written = run_small(order_chaos, tmp_path)
    assert all(math.isfinite(r["critical"]) for r in written["numbers"]["boundary"])
    ordered = written["numbers"]["xi"][0]  # sigma_w^2 = 0.5: deep in the ordered phase, xi_c ~ 1.2
    assert ordered["weight_variance"] == 0.5
    assert ordered["measured"] == pytest.approx(ordered["theory"], rel=0.25)


# -- reproduction 5: gains ---------------------------------------------------------------------------
def _gains(gain_drift, relu_drift=10.0, gap=0.1):
    return {"gelu": {"no gain": {"drift": 29.0, "theory_gap": gap}, "ReLU gain √2": {"drift": relu_drift,
                     "theory_gap": gap}, "activation_gain": {"drift": gain_drift, "theory_gap": gap}}}


def test_gains_verdict_follows_the_numbers():
    assert statuses(gains.verdict(_gains(0.5))) == [AGREES, AGREES, AGREES]
    assert statuses(gains.verdict(_gains(3.1))) == [DOES_NOT, AGREES, AGREES]
    assert statuses(gains.verdict(_gains(3.1, relu_drift=2.0, gap=1.0))) == [DOES_NOT, DOES_NOT, DOES_NOT]


@pytest.mark.slow
def test_gains_small_run(tmp_path):
    written = run_small(gains, tmp_path)
    gelu = written["numbers"]["gelu"]
    assert gelu["activation_gain"]["fixed_point_slope"] > 1.0   # the gain's fixed point q = 1 repels (theory)
    assert gelu["activation_gain"]["log10_qL_over_q1"] > 0 > gelu["no gain"]["log10_qL_over_q1"]


# -- reproduction 1: the tutorials' comparison at init ------------------------------------------------
def _seeds(relu_best="he", tanh_scores=None):
    units = {"zeros": 1, "constant(0.01)": 1, "N(0, 0.01²)": 8, "U(±0.05)": 8, "he": 8, "xavier": 8}
    small = {"q_ratio": -30.0, "g_ratio": 0.0, "g_1": 1e-20}
    relu = {"N(0, 0.01²)": {**small, "score": math.inf}, "U(±0.05)": {**small, "score": 30.0},
            "he": {"q_ratio": -0.1, "g_ratio": -0.5, "g_1": 1.0, "score": 0.5},
            "xavier": {"q_ratio": -15.0, "g_ratio": 0.0, "g_1": 1e-8, "score": 15.0}}
    if relu_best != "he":
        relu["he"]["score"] = 20.0
    tanh_scores = tanh_scores or {"he": 0.8, "xavier": 1.6}
    tanh = {"N(0, 0.01²)": {**small, "score": 30.0}, "U(±0.05)": {**small, "score": 30.0},
            **{i: {"q_ratio": -s, "g_ratio": 0.0, "g_1": 0.1, "score": s} for i, s in tanh_scores.items()}}
    return {"width": 8, "units": units, "relu": relu, "tanh": tanh}


def test_seeds_verdict_follows_the_numbers():
    v = seeds_init.verdict(_seeds())
    assert [x.claim for x in v][2:] == ["he suits relu", "xavier / lecun suit tanh"]
    assert statuses(v) == [AGREES, AGREES, AGREES, DOES_NOT]      # tanh: He scores better than Xavier
    v = seeds_init.verdict(_seeds(relu_best="xavier", tanh_scores={"he": 3.0, "xavier": 0.9}))
    assert statuses(v)[2:] == [DOES_NOT, AGREES]
    numbers = _seeds()
    numbers["units"]["constant(0.01)"] = 8
    numbers["tanh"]["U(±0.05)"]["g_1"] = 0.5
    assert statuses(seeds_init.verdict(numbers))[:2] == [PARTLY, PARTLY]


def test_seeds_helpers():
    import numpy as np

    assert seeds_init.distinct_units(np.zeros((4, 3))) == 1
    assert seeds_init.distinct_units(np.eye(3)) == 3
    assert seeds_init.log_ratio(0.0, 1.0) == -math.inf
    assert math.isnan(seeds_init.log_ratio(0.0, 0.0))
    assert seeds_init.score(-2.0, 0.5) == 2.0
    assert seeds_init.score(math.nan, 0.0) == math.inf


@pytest.mark.slow
def test_seeds_small_run(tmp_path):
    written = run_small(seeds_init, tmp_path)
    units = written["numbers"]["units"]
    assert units["zeros"] == units["constant(0.01)"] == 1
    assert all(n == written["numbers"]["width"] for i, n in units.items() if i not in seeds_init.SYMMETRIC)
