"""The training reproductions of experiments/repro (issue 14: train_seeds, train_order_chaos,
train_isometry, train_gains, train_lsuv, train_schedule) at small size, and their verdict logic.

Each runs shrunk (``--small``: one compiled program or two, a few steps) into a temporary folder and
writes its figure, table and verdict; the verdict written is the one its verdict function computes
from the numbers written beside it, and a few numbers are checked against what must hold at any
size (zeros keep one distinct unit; every grid cell and learning rate is measured). Each verdict
function is also fed numbers made up for each outcome, so what the README reports is what the
numbers say, not a fixed string.
"""

from __future__ import annotations

import math

import pytest

from experiments.repro import (
    train_common,
    train_gains,
    train_isometry,
    train_lsuv,
    train_order_chaos,
    train_schedule,
    train_seeds,
)
from experiments.repro.common import AGREES, DOES_NOT, PARTLY

from helpers import run_small, statuses

INF = math.inf


# -- train_common ------------------------------------------------------------------------------------
def test_median_steps_counts_never_as_infinite():
    nan = math.nan
    assert train_common.median_steps([10.0, 30.0, nan]) == 30.0
    assert train_common.median_steps([10.0, nan, nan]) == INF         # most seeds never got there
    assert train_common.median_steps([10.0, 20.0, 40.0, nan]) == 30.0
    assert train_common.reached([10.0, nan, 5.0]) == 2
    with pytest.raises(ValueError, match="at least one seed"):
        train_common.median_steps([])


def test_overrides_set_and_remove_keys(monkeypatch, tmp_path):
    from jaxinit.lab import training

    seen = {}
    monkeypatch.setattr(training, "train", lambda cfg, **kw: seen.setdefault("cfg", cfg))
    cfg = train_common.train("train_schedule", tmp_path, train_schedule.regime_overrides(
        train_schedule.CYCLICAL, 0.1, 500))
    assert not cfg.grid_points()[0]                       # the grid's learning_rate removed
    assert cfg.train.clip_global_norm == train_schedule.CLIP
    assert cfg.train.learning_rate == {"name": "cyclical", "base": 0.001, "max": 0.1, "step_size": 125}
    assert cfg.output.dir == str(tmp_path)
    assert train_common.lsuv_in_training() == (True, "")


# -- reproduction 1 in training: the seeds' initializers -----------------------------------------------
def _seeds_numbers(units=1, he=75.0, small=INF, sig_final=0.1, tanh_fastest=50.0, he_final=0.96):
    def m(steps, final=0.96, u=64):
        return {"steps": steps, "final": final, "units": u}

    relu = {"zeros": m(INF, 0.1, units), "constant(0.01)": m(INF, 0.1, units), "N(0, 0.01²)": m(small, 0.1),
            "U(±0.05)": m(INF, 0.1), "he": m(he, he_final), "xavier": m(125.0), "lecun": m(150.0)}
    tanh = {"zeros": m(INF, 0.1, 1), "N(0, 0.01²)": m(INF, 0.1), "xavier": m(50.0, 0.97), "lecun": m(75.0),
            "he": m(tanh_fastest, 0.97)}
    sigmoid = {"zeros": m(INF, 0.1, 1), "N(0, 0.01²)": m(INF, 0.1), "xavier": m(INF, sig_final),
               "lecun": m(INF, 0.1), "he": m(INF, 0.11)}
    return {"eval_every": 25, "acts": {"relu": relu, "tanh": tanh, "sigmoid": sigmoid}}


def test_seeds_verdict_follows_the_numbers():
    v = train_seeds.verdict(_seeds_numbers())
    assert statuses(v) == [AGREES, PARTLY, AGREES, AGREES, DOES_NOT]  # sigmoid: nothing trains
    assert "neither reaches the target" in v[1].why and "no initializer trains sigmoid" in v[4].why
    v = train_seeds.verdict(_seeds_numbers(units=64, he=300.0, small=100.0, sig_final=0.9, tanh_fastest=10.0,
                                           he_final=0.5))
    assert v[0].status == PARTLY      # relu's zeros/constant broke the symmetry, tanh's and sigmoid's did not
    assert v[1].status == PARTLY      # relu: N(0, 0.01²) before He; tanh: Xavier first
    assert "relu: he 300 vs N(0, 0.01²) 100 steps (not faster)" in v[1].why
    assert v[2].status == DOES_NOT    # He: 200 steps behind the fastest and 0.46 below the best
    assert v[3].status == PARTLY      # tanh: Xavier 40 steps behind He, as accurate
    assert v[4].status == PARTLY      # sigmoid trains (0.9) without reaching the target: as accurate, not quicker
    only_tanh = {"eval_every": 25, "acts": {"tanh": _seeds_numbers()["acts"]["tanh"]}}
    only_tanh["acts"]["tanh"]["N(0, 0.01²)"]["steps"] = 25.0
    assert statuses(train_seeds.verdict(only_tanh)) == [AGREES, DOES_NOT, AGREES]


def test_seeds_small_run(tmp_path):
    written = run_small(train_seeds, tmp_path)
    relu = written["numbers"]["acts"]["relu"]
    assert relu["zeros"]["units"] == 1 and relu["he"]["units"] > 1


# -- reproduction 2 in training: order and chaos ------------------------------------------------------
def _chaos_numbers(beyond_final=0.1, crit_deep=0.8):
    cells = []
    for w, bound in ((0.5, 7.0), (1.75, INF), (4.0, 42.0)):
        for d in (10, 80):
            final = (crit_deep if d == 80 else 0.95) if w == 1.75 else (beyond_final if d > bound else 0.9)
            cells.append({"depth": d, "weight_variance": w, "bound": bound, "final": final})
    return {"cells": cells, "critical": 1.76, "nearest_critical": 1.75}


def test_order_chaos_verdict_follows_the_numbers():
    assert statuses(train_order_chaos.verdict(_chaos_numbers())) == [AGREES, AGREES]
    v = train_order_chaos.verdict(_chaos_numbers(beyond_final=0.7, crit_deep=0.2))
    assert statuses(v) == [DOES_NOT, PARTLY]
    assert "3 of 3 cells deeper than 6 ξ_c train" in v[0].why
    assert train_order_chaos.bound_depth("tanh", 1.0, 0.05) == pytest.approx(6 * 3.627, rel=1e-3)


def test_order_chaos_small_run(tmp_path):
    written = run_small(train_order_chaos, tmp_path)
    cells = written["numbers"]["cells"]
    assert sorted(c["weight_variance"] for c in cells) == [0.5, 1.75, 4.0]
    assert all(0.0 <= c["final"] <= 1.0 for c in cells)


# -- reproduction 3 in training: isometry ---------------------------------------------------------------
def _iso_numbers(orth=(100.0, 100.0), gauss=(120.0, 400.0)):
    by = {str(d): {"orthogonal": {"steps": o, "lr": 0.01}, "gaussian": {"steps": g, "lr": 0.003}}
          for d, o, g in zip((4, 64), orth, gauss, strict=True)}
    return {"acts": {"linear": by}}


def test_isometry_verdict_follows_the_numbers():
    assert statuses(train_isometry.verdict(_iso_numbers())) == [AGREES]
    assert statuses(train_isometry.verdict(_iso_numbers(gauss=(120.0, INF)))) == [AGREES]
    assert statuses(train_isometry.verdict(_iso_numbers(gauss=(200.0, 200.0)))) == [PARTLY]   # 2x at both depths
    assert statuses(train_isometry.verdict(_iso_numbers(gauss=(80.0, 60.0)))) == [DOES_NOT]
    assert statuses(train_isometry.verdict(_iso_numbers(orth=(100.0, INF), gauss=(80.0, INF)))) == [DOES_NOT]
    assert statuses(train_isometry.verdict(_iso_numbers(gauss=(INF, INF)))) == [PARTLY]   # no growth to measure
    assert math.isnan(train_isometry.advantage(INF, INF)) and train_isometry.advantage(300.0, 100.0) == 3.0


def test_isometry_small_run(tmp_path):
    written = run_small(train_isometry, tmp_path)
    by = written["numbers"]["acts"]["linear"]["4"]
    assert set(by) == {"orthogonal", "gaussian"}
    assert all(len(m["steps_by_lr"]) == len(train_isometry.SMALL["grid.learning_rate"]) for m in by.values())


# -- reproduction 6: LSUV --------------------------------------------------------------------------------
def _lsuv_numbers(lsuv_steps=50.0, lsuv_final=0.96):
    by = {"lsuv": {"steps": lsuv_steps, "final": lsuv_final}, "he": {"steps": 75.0, "final": 0.95},
          "orthogonal": {"steps": 100.0, "final": 0.96}}
    return {"eval_every": 25, "acts": {"relu": by}}


def test_lsuv_verdict_follows_the_numbers():
    assert statuses(train_lsuv.verdict(_lsuv_numbers())) == [AGREES]
    assert statuses(train_lsuv.verdict(_lsuv_numbers(lsuv_steps=100.0))) == [AGREES]     # within one interval
    assert statuses(train_lsuv.verdict(_lsuv_numbers(lsuv_steps=150.0))) == [PARTLY]
    assert statuses(train_lsuv.verdict(_lsuv_numbers(lsuv_steps=150.0, lsuv_final=0.9))) == [DOES_NOT]


def test_lsuv_small_run(tmp_path):
    written = run_small(train_lsuv, tmp_path)
    assert set(written["numbers"]["acts"]["tanh"]) == {"lsuv", "orthogonal"}


# -- reproduction 7: schedules -----------------------------------------------------------------------------
def _schedule_numbers(poor_cyc=(INF, 0.1), good_cyc=(50.0, 0.96)):
    def by_lr(steps, final):
        return {"0.01": {"steps": steps, "final": final}, "0.1": {"steps": INF, "final": 0.1}}

    constant = {"N(0, 0.01²)": by_lr(INF, 0.1), "he": by_lr(100.0, 0.96)}
    cyclical = {"N(0, 0.01²)": by_lr(*poor_cyc), "he": by_lr(*good_cyc)}
    return {"eval_every": 25, "regimes": {"constant": constant, "cyclical+clip": cyclical}}


def test_schedule_verdict_follows_the_numbers():
    v = train_schedule.verdict(_schedule_numbers())
    assert statuses(v) == [AGREES, AGREES] and "(it stays)" in v[1].claim
    v = train_schedule.verdict(_schedule_numbers(poor_cyc=(INF, 0.6), good_cyc=(110.0, 0.96)))
    assert statuses(v) == [PARTLY, PARTLY] and "(it narrows)" in v[1].claim
    v = train_schedule.verdict(_schedule_numbers(poor_cyc=(60.0, 0.96), good_cyc=(200.0, 0.96)))
    assert statuses(v) == [DOES_NOT, DOES_NOT] and "(it closes)" in v[1].claim
    numbers = _schedule_numbers()                       # xavier as good as He at the best constant rate
    for regime in numbers["regimes"].values():
        regime["xavier"] = {"0.01": {"steps": 110.0, "final": 0.955}}
    v = train_schedule.verdict(numbers)
    assert len(v) == 2 and "xavier vs he: no gap at the best constant rate" in v[1].why


def test_schedule_small_run(tmp_path):
    written = run_small(train_schedule, tmp_path)
    regimes = written["numbers"]["regimes"]
    assert set(regimes) == set(train_schedule.SMALL_REGIMES)
    assert all(set(by) == {"0.05"} for r in regimes.values() for by in r.values())


# -- reproduction 5 in training: gains ---------------------------------------------------------------------
def _gains_numbers(own=(150.0, 0.95), relu=(150.0, 0.95), none=(INF, 0.1), acts=("gelu", "silu")):
    def by(steps, final):
        return {"steps": steps, "final": final}

    schemes = dict(zip(train_gains.SCHEMES, (by(*none), by(*relu), by(*own)), strict=True))
    return {"eval_every": 25, "acts": {a: dict(schemes) for a in acts}}


def test_gains_verdict_follows_the_numbers():
    assert statuses(train_gains.verdict(_gains_numbers())) == [AGREES, AGREES]
    assert statuses(train_gains.verdict(_gains_numbers(own=(175.0, 0.945)))) == [AGREES, AGREES]  # within tolerance
    assert statuses(train_gains.verdict(_gains_numbers(own=(200.0, 0.93)))) == [DOES_NOT, DOES_NOT]
    assert statuses(train_gains.verdict(_gains_numbers(none=(160.0, 0.95)))) == [DOES_NOT, AGREES]  # not faster
    v = train_gains.verdict(_gains_numbers(own=(INF, 0.5), relu=(INF, 0.5)))
    assert statuses(v) == [DOES_NOT, AGREES] and "not faster than no gain" in v[0].why
    numbers = _gains_numbers()
    numbers["acts"]["silu"] = _gains_numbers(own=(300.0, 0.9))["acts"]["silu"]   # one activation of two
    assert statuses(train_gains.verdict(numbers)) == [PARTLY, PARTLY]


def test_gains_small_run(tmp_path):
    import jaxinit

    written = run_small(train_gains, tmp_path)
    by = written["numbers"]["acts"]["gelu"]
    assert set(by) == set(train_gains.SCHEMES)
    assert by["activation_gain"]["weight_variance"] == pytest.approx(jaxinit.activation_gain("gelu") ** 2, rel=1e-6)
    assert [by[s]["weight_variance"] for s in train_gains.SCHEMES[:2]] == [1.0, 2.0]
