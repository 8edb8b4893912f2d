"""Figures from results folders: every figure that applies is written as a valid PNG, overflow never
breaks a plot and is marked, and the theory overlay is exact where the mean-field maps are closed-form."""

from __future__ import annotations

import copy
import dataclasses
import math
import struct
import zlib

import numpy as np
import pytest

from jaxinit.lab import config as jconfig
from jaxinit.lab import figures as plots
from jaxinit.lab import run as lab_run
from jaxinit.lab.figures.theory import _prediction

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SINGLE_FIGURES = ("q", "grad_w_norm", "correlation", "dead_saturated", "jacobian_msv", "spectrum")


def _run(tmp_path_factory, name: str, data: dict):
    out = tmp_path_factory.mktemp(name)
    data = {**data, "output": {"dir": str(out)}}
    return lab_run.run(jconfig.from_dict(data), out=str(out), progress=False)


@pytest.fixture(scope="module")
def overflow_results(tmp_path_factory):
    """ReLU, depth 6, width 32: He (q constant), Glorot (q halves) and N(0, 1e6^2), whose q = mean(h^2)
    leaves float32's range at the third layer (h ~ 1e20, h^2 ~ 1e40)."""
    return _run(tmp_path_factory, "overflow", {
        "network": {"depth": 6, "width": 32, "activation": "relu"},
        "inputs": {"batch": 8, "kind": "gaussian", "q0": 1.0},
        "sweep": {"seeds": 4, "initializers": ["he_normal", "glorot_normal",
                                               {"name": "normal", "stddev": 1e6, "label": "huge"}]},
        "probes": {"forward": True, "gradients": True, "jacobian": True, "spectrum": True, "theory": True},
    })


@pytest.fixture(scope="module")
def phase_results(tmp_path_factory):
    """tanh on a 3 x 3 (sigma_w^2, sigma_b^2) grid with correlated input pairs."""
    return _run(tmp_path_factory, "phase", {
        "network": {"depth": 5, "width": 16, "activation": "tanh"},
        "inputs": {"batch": 4, "kind": "pairs", "correlation": 0.5},
        "sweep": {"seeds": 4, "initializers": ["lecun_normal"]},
        "grid": {"weight_variance": [0.5, 1.5, 3.0], "bias_variance": [0.0, 0.1, 0.3]},
        "probes": {"forward": True, "gradients": False, "theory": True},
    })


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    # The first chunk is IHDR with a valid CRC and a non-empty image.
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert width > 100 and height > 100
    (crc,) = struct.unpack(">I", data[16 + length:20 + length])
    assert crc == zlib.crc32(data[12:16 + length])
    assert data.endswith(b"IEND\xaeB`\x82")


def test_overflow_is_recorded(overflow_results):
    first = overflow_results.get("first_nonfinite_layer")  # (initializer, grid point, seed)
    assert (first[2] >= 0).all() and (first[2] <= 5).all()  # "huge" overflows within the 6 layers
    assert (first[:2] == -1).all()


def test_write_all_draws_every_figure(overflow_results):
    paths = plots.write_all(overflow_results.path)  # from the folder: load() is part of the path
    names = {p.name for p in paths}
    assert names == {plots.FIGURE_FILES[k] for k in SINGLE_FIGURES}
    for path in paths:
        assert path.parent == overflow_results.path / "figures"
        _assert_png(path)


def test_overflow_is_marked_and_the_rest_still_drawn(overflow_results):
    fig = plots.variance_figure(overflow_results)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    first = int(overflow_results.get("first_nonfinite_layer")[2, 0].min())
    dotted = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    assert [ln.get_xdata()[0] for ln in dotted] == [first + 1]  # layer index j is drawn at l = j + 1
    medians = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    assert len(medians) == 3
    he = np.asarray(medians[0].get_ydata(), float)
    assert np.isfinite(he).all() and len(he) == 6
    huge = np.asarray(medians[2].get_ydata(), float)
    assert np.isfinite(huge[:first]).all() and np.isnan(huge[first:]).all()


def test_all_nan_results_still_draw(overflow_results, tmp_path):
    arrays = {k: (np.full(v.shape, np.nan, v.dtype) if v.dtype.kind == "f" else v)
              for k, v in overflow_results.arrays.items()}
    arrays["first_nonfinite_layer"] = np.zeros_like(overflow_results.arrays["first_nonfinite_layer"])
    broken = dataclasses.replace(overflow_results, arrays=arrays)
    paths = plots.write_all(broken, out=tmp_path)
    assert {p.name for p in paths} >= {plots.FIGURE_FILES["q"], plots.FIGURE_FILES["spectrum"]}
    for path in paths:
        _assert_png(path)


def test_theory_overlay_relu_exact(overflow_results):
    program = overflow_results.programs[0]
    overlay = plots.theory_overlay(overflow_results, program)
    assert overlay["available"].all()
    np.testing.assert_array_equal(overlay["weight_variance"][:, 0], [2.0, 1.0, 32 * 1e12])
    np.testing.assert_array_equal(overlay["bias_variance"][:, 0], [0.0, 0.0, 0.0])
    # He: q_l = sigma_w^2 q0 = 2 at every layer; Glorot (sigma_w^2 = 1): q_1 = 1 then halves.
    np.testing.assert_allclose(overlay["q"][0, 0], np.full(6, 2.0), rtol=1e-14)
    np.testing.assert_allclose(overlay["q"][1, 0], 0.5 ** np.arange(6), rtol=1e-14)
    # Gaussian inputs are independent (c0 = 0); ReLU's arc-cosine map sends 0 to 1/pi.
    assert overlay["c0"] == 0.0
    assert overlay["correlation"][0, 0, 0] == 0.0
    assert overlay["correlation"][0, 0, 1] == pytest.approx(1 / math.pi, rel=1e-12)
    # Jacobian mean squared singular value: sigma_w^2 chi_1^(l-1) = 2 for He.
    np.testing.assert_allclose(overlay["jacobian_msv"][0, 0], np.full(6, 2.0), rtol=1e-12)
    # The measurement agrees with the prediction for He at layer 1 (S = 4 seeds x B = 8 inputs x n = 32 units,
    # h = x W with x ~ N(0, 1) in d = 32 and E[h^2] = 2): Var(q) = (8 + 24/d + 8(B-1)/d + 8(n-1)/d) / (B n S)
    # (the Gaussian-W bound; entries of one input or one unit share |x|^2 or |W_j|^2). Z of those standard
    # errors is 0.80: Glorot's q_1 = 1 fails.
    from helpers import Z

    measured = overflow_results.get("q")[0, 0, :, 0]
    se = math.sqrt((8 + 24 / 32 + 8 * 7 / 32 + 8 * 31 / 32) / (8 * 32 * measured.size))
    assert abs(measured.mean() - 2.0) < Z * se, (measured, Z * se)


def test_theory_overlay_subset_and_switch(overflow_results):
    overlay = plots.theory_overlay(overflow_results, combos=[(1, 0)])
    assert overlay["available"].tolist() == [[False], [True], [False]]
    assert np.isnan(overlay["q"][0]).all()
    res = dataclasses.replace(overflow_results, meta=copy.deepcopy(overflow_results.meta))
    res.meta["config"]["probes"]["theory"] = False
    fig = plots.variance_figure(res)
    assert not [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "--"]


def test_phase_diagram(phase_results):
    program = phase_results.programs[0]
    wv, bv, table = plots.phase_table(phase_results, program, "final_correlation")
    assert wv.tolist() == [0.5, 1.5, 3.0] and bv.tolist() == [0.0, 0.1, 0.3]
    assert table.shape == (1, 3, 3) and np.isfinite(table).all()
    assert (table <= 1.0 + 1e-6).all()
    # Ordered (sigma_w^2 = 0.5, sigma_b^2 = 0.3): pairs become identical; chaotic (3.0, 0.0): they do not.
    assert table[0, 0, 2] > 0.95 and table[0, 2, 0] < 0.9
    with pytest.raises(ValueError, match="gradient"):
        plots.phase_table(phase_results, program, "gradient_ratio")

    paths = plots.write_all(phase_results)
    names = {p.name for p in paths}
    assert plots.FIGURE_FILES["phase"].format(program=program) in names
    assert plots.FIGURE_FILES["q"] in names and plots.FIGURE_FILES["spectrum"] not in names
    for path in paths:
        _assert_png(path)

    fig = plots.phase_figures(phase_results)[program]
    heat = fig.axes[0]
    critical = [ln for ln in heat.lines if ln.get_linestyle() == "--"]
    assert len(critical) == 1
    assert critical[0].get_xdata()[0] == pytest.approx(1.0, abs=1e-6)  # tanh: sigma_w^2 = 1 at sigma_b^2 = 0


def test_theory_overlay_on_a_grid(phase_results):
    overlay = plots.theory_overlay(phase_results)
    points = phase_results.coords["grid_point"]
    np.testing.assert_array_equal(overlay["weight_variance"][0], [p["weight_variance"] for p in points])
    np.testing.assert_array_equal(overlay["bias_variance"][0], [p["bias_variance"] for p in points])
    # Layer 1 is linear in the input: q_1 = sigma_w^2 q0 + sigma_b^2, c_1 = (sigma_w^2 q0 c0 + sigma_b^2) / q_1.
    for g, p in enumerate(points):
        q1 = p["weight_variance"] + p["bias_variance"]
        assert overlay["q"][0, g, 0] == pytest.approx(q1, rel=1e-14)
        assert overlay["correlation"][0, g, 0] == pytest.approx((p["weight_variance"] * 0.5 + p["bias_variance"]) / q1,
                                                               rel=1e-14)


def test_first_layer_of_another_width_is_composed_exactly():
    """digits inputs (64 features) with a fan mode that sees them give layer 0 its own sigma_w^2;
    for ReLU the composed prediction must equal the closed-form length and arc-cosine maps."""
    from jaxinit.activations import activation

    sw0, sw, sb, q0, c0 = 0.4, 2.0, 0.1, 1.3, 0.3
    q, c = _prediction(activation("relu"), sw0, sw, sb, q0, c0, 5)
    qs, cs = [sw0 * q0 + sb], [(sw0 * q0 * c0 + sb) / (sw0 * q0 + sb)]
    for _ in range(4):
        t = math.acos(cs[-1])
        cross = qs[-1] / (2 * math.pi) * (math.sin(t) + (math.pi - t) * math.cos(t))
        qs.append(sw * qs[-1] / 2 + sb)
        cs.append((sw * cross + sb) / qs[-1])
    np.testing.assert_allclose(q, qs, rtol=1e-13)
    np.testing.assert_allclose(c, cs, rtol=1e-13)


def test_seed_stats_ignore_non_finite_quietly():
    values = np.array([[1.0, np.inf, np.nan], [3.0, 2.0, np.nan], [5.0, -np.inf, np.nan]])
    stats = plots.seed_stats(values, axis=0)
    assert stats["median"][:2].tolist() == [3.0, 2.0] and np.isnan(stats["median"][2])
    assert stats["n_finite"].tolist() == [3, 1, 0]
    assert stats["q05"][0] == pytest.approx(np.quantile([1.0, 3.0, 5.0], 0.05))
