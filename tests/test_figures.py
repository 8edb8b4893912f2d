"""Figures say what they show and what they leave out: a finished folder reads the same in any process,
a missing theory curve is a warning with its reason, words in the figures match the probes, partial
folders draw what exists, and every figure of every shipped config fits its canvas."""

from __future__ import annotations

import json
import shutil
import warnings

import jax
import numpy as np
import pytest

from jaxinit.lab import config as jconfig
from jaxinit.lab import figures as plots
from jaxinit.lab import run as lab_run
from jaxinit.lab import store as results
from jaxinit.lab.figures.write import _SINGLE


def _run(tmp_path_factory, name: str, data: dict):
    out = tmp_path_factory.mktemp(name)
    data = {**data, "output": {"dir": str(out)}}
    return lab_run.run(jconfig.from_dict(data), out=str(out), progress=False)


def _copy(folder, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(folder, target)
    shutil.rmtree(target / "figures", ignore_errors=True)
    return target


def _edit_meta(folder, edit) -> None:
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """ReLU, depth 4, width 32, He, 16 Gaussian inputs, 2 seeds."""
    return _run(tmp_path_factory, "small", {
        "network": {"depth": 4, "width": 32, "activation": "relu"},
        "inputs": {"batch": 16, "kind": "gaussian"},
        "sweep": {"seeds": 2, "initializers": ["he_normal"]},
        "probes": {"forward": True, "gradients": True, "theory": True},
    })


# ----------------------------------------------------------------------------- reading in another process


def test_a_float64_folder_reads_and_plots_in_a_process_without_x64(small, tmp_path):
    # The folder a float64 sweep (run with JAX_ENABLE_X64=1) leaves: the same files, dtype float64.
    folder = _copy(small.path, tmp_path)

    def to_float64(meta):
        meta["config"]["network"]["dtype"] = "float64"
        meta["config_hash"] = jconfig.from_dict(meta["config"], check_process=False).config_hash()

    _edit_meta(folder, to_float64)
    assert not jax.config.read("jax_enable_x64")
    loaded = results.load(folder)
    assert loaded.config.network.dtype == "float64"
    overlay = plots.theory_overlay(loaded)
    assert overlay["available"].all() and np.allclose(overlay["q"][0, 0], 2.0, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no figure may leave its theory out here
        paths = plots.write_all(loaded)
    assert {p.name for p in paths} >= {"q_vs_depth.png", "grad_norm_vs_depth.png"}
    # Assembling it again (numpy only) works here too.
    assert results.ResultsFolder(folder).assemble().config.network.dtype == "float64"


def test_the_float64_check_still_guards_a_sweep():
    data = {"network": {"depth": 2, "width": 4, "activation": "relu", "dtype": "float64"},
            "sweep": {"initializers": ["he_normal"]}}
    with pytest.raises(jconfig.ConfigError, match="needs 64-bit JAX"):
        jconfig.from_dict(data)
    assert jconfig.from_dict(data, check_process=False).network.dtype == "float64"


def test_a_figure_without_its_theory_says_why(small, tmp_path):
    folder = _copy(small.path, tmp_path)
    # A config this process cannot rebuild (here: an initializer this version does not know).
    _edit_meta(folder, lambda meta: meta["config"]["sweep"].update(initializers=["he_normal_from_the_future"]))
    loaded = results.load(folder)
    with pytest.warns(plots.FigureWarning) as caught:
        plots.variance_figure(loaded)
    (message,) = [str(w.message) for w in caught]
    assert message.startswith("q_vs_depth.png: no mean-field theory drawn for 'he_normal': the sweep's config "
                              "cannot be rebuilt from meta.json (ConfigError:")
    assert "he_normal_from_the_future" in message


def test_a_non_zero_mean_initializer_gets_no_theory_and_a_warning(tmp_path_factory):
    res = _run(tmp_path_factory, "mean", {
        "network": {"depth": 3, "width": 8, "activation": "tanh"},
        "inputs": {"batch": 4},
        "sweep": {"seeds": 2, "initializers": ["lecun_normal", {"name": "constant", "value": 0.1}]},
        "probes": {"forward": True, "gradients": False, "theory": True},
    })
    with pytest.warns(plots.FigureWarning, match=r"q_vs_depth.png: no mean-field theory drawn for "
                                                 r"'constant\(value=0.1\)': weights with a non-zero mean"):
        plots.variance_figure(res)


# ----------------------------------------------------------------------------- words that match the numbers


def _texts(fig) -> list[str]:
    """Every text a reader sees: the title, axis labels, panel titles, legend entries."""
    out = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()]
    return [t for t in out if t]


def test_dead_and_saturated_are_defined_as_the_probe_counts_them(small):
    from jaxinit import probes

    fig = plots.dead_saturated_figure(small)
    text = " ".join(_texts(fig)).replace("\n", " ")
    assert "dead units (fraction of units)" in text
    assert "saturated entries (fraction of (unit, input) pairs)" in text
    assert r"$|\phi'|<10^{-6}$ on every input of the batch" in text and probes.DEAD_THRESHOLD == 1e-6
    assert r"$|\phi'|<0.01$, counted per (unit, input) pair" in text and probes.SATURATION_THRESHOLD == 0.01
    # Under these words ReLU's numbers make sense: about half the entries of the first layer are
    # inactive (h <= 0: saturated), while a unit is dead only if all 16 inputs hit h <= 0 (2^-16).
    sat = small.get("saturated_fraction")[0, 0, :, 0]     # (seed,) at layer 1
    dead = small.get("dead_fraction")[0, 0, :, 0]
    n = 32 * 16                                           # entries per seed
    assert np.all(np.abs(sat - 0.5) < 6 * np.sqrt(0.25 / n))
    assert np.all(dead <= 2 / 32)                         # at most one dead unit in 32


# ----------------------------------------------------------------------------- partial folders


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory):
    """Two programs (tanh, depths 3 and 5), 4 seeds in chunks of 2, stopped after the first chunk:
    depth 3 has seeds 0-1, depth 5 none."""
    out = tmp_path_factory.mktemp("unfinished")
    data = {"network": {"depth": [3, 5], "width": 8, "activation": "tanh"}, "inputs": {"batch": 4, "kind": "pairs",
                                                                                      "correlation": 0.5},
            "sweep": {"seeds": 4, "initializers": ["lecun_normal", "he_normal"]},
            "grid": {"weight_variance": [1.0, 2.0], "bias_variance": [0.0, 0.1]},
            "probes": {"forward": True, "gradients": True, "jacobian": True, "spectrum": True, "theory": True},
            "output": {"dir": str(out), "chunk": 2}}
    assert lab_run.run(jconfig.from_dict(data), progress=False, stop_after_chunks=1) is None
    return out


def test_a_partial_folder_draws_what_exists_and_says_what_is_missing(unfinished, tmp_path):
    folder = _copy(unfinished, tmp_path)
    partial = results.ResultsFolder(folder).assemble(allow_partial=True)
    # The first chunk holds some or all seeds of depth 3 (the engine may round the chunk size up).
    assert partial.missing_seeds["depth5-width8-tanh"] == [0, 1, 2, 3]
    assert len(partial.missing_seeds.get("depth3-width8-tanh", [])) < 4
    with pytest.warns(plots.FigureWarning, match=r"partial results: the figures show the seeds present; missing "
                                                 r"(depth3-width8-tanh: seeds [0-9, -]+; )?depth5-width8-tanh: no "
                                                 r"seeds yet"):
        paths = plots.write_all(partial)
    assert {p.name for p in paths} == {"q_vs_depth.png", "grad_norm_vs_depth.png", "correlation_vs_depth.png",
                                       "dead_saturated_vs_depth.png", "jacobian_msv_vs_depth.png",
                                       "jacobian_spectrum.png", "phase_depth3-width8-tanh.png"}
    fig = plots.variance_figure(partial)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    empty = panels["tanh, depth 5, width 8"]
    assert any("no data yet" in t.get_text() for t in empty.texts) and not empty.lines
    assert len(panels["tanh, depth 3, width 8"].lines) > 0
    assert "depth5-width8-tanh: no seeds yet" in fig._suptitle.get_text().replace("\n", " ")
    assert "median over the seeds present (of 4)" in _texts(fig)


# ----------------------------------------------------------------------------- underflow and overflow, marked apart


def _synthetic(tmp_path, extra: dict) -> results.Results:
    """A results folder written directly (no engine): ReLU, depth 6, width 8, He, 2 seeds."""
    config = jconfig.from_dict({"network": {"depth": 6, "width": 8, "activation": "relu"},
                                "sweep": {"seeds": 2, "initializers": ["he_normal"]},
                                "probes": {"forward": True, "gradients": True, "theory": False}})
    folder = results.ResultsFolder(tmp_path)
    folder.prepare(config)
    grad = np.geomspace(1e-30, 1.0, 6)[None, None, None, :].repeat(2, axis=2)
    arrays = {"q": np.ones((1, 1, 2, 6)), "grad_w_norm": grad, "grad_h_norm": grad,
              "first_nonfinite_layer": np.full((1, 1, 2), -1), "first_underflow_layer": np.full((1, 1, 2), -1),
              **extra}
    folder.write_chunk(config.programs()[0].id, 0, arrays, [0, 1])
    return folder.assemble()


def _markers(fig, marker: str) -> list[float]:
    return [float(x) for ax in fig.axes for line in ax.lines if line.get_marker() == marker
            for x in line.get_xdata()]


def test_gradient_underflow_is_marked_on_the_gradient_figure(tmp_path):
    res = _synthetic(tmp_path, {"first_grad_underflow_layer": np.full((1, 1, 2), 2)})
    fig = plots.gradient_figure(res)
    assert _markers(fig, "<") == [3.0]  # layer index 2 is drawn at l = 3
    assert any("gradient underflows" in t for t in _texts(fig))
    assert _markers(plots.variance_figure(res), "<") == []  # the q figure marks q's underflow only


def test_old_folders_without_gradient_underflow_draw_without_the_marker(tmp_path):
    fig = plots.gradient_figure(_synthetic(tmp_path, {}))
    assert _markers(fig, "<") == [] and not any("gradient underflows" in t for t in _texts(fig))


@pytest.fixture(scope="module")
def blanks(tmp_path_factory):
    """ReLU, depth 5, width 8, input pairs; lecun_normal and zeros on sigma_w^2 in {1, 1e30} x sigma_b^2
    in {0, 0.1}: zeros at sigma_b^2 = 0 has h = 0 exactly (q = 0), lecun at 1e30 overflows float32."""
    return _run(tmp_path_factory, "blanks", {
        "network": {"depth": 5, "width": 8, "activation": "relu"},
        "inputs": {"batch": 4, "kind": "pairs", "correlation": 0.5},
        "sweep": {"seeds": 2, "initializers": ["lecun_normal", "zeros"]},
        "grid": {"weight_variance": [1.0, 1e30], "bias_variance": [0.0, 0.1]},
        "probes": {"forward": True, "gradients": True, "theory": True},
    })


def test_the_phase_figure_tells_a_zero_signal_from_overflow(blanks):
    blank = plots.phase_blanks(blanks, 0, "final_correlation")  # (init, wv, bv)
    assert blank[1, :, 0].tolist() == [plots.BLANK_ZERO] * 2     # zeros, sigma_b^2 = 0: c = 0/0
    assert blank[0, 1].tolist() == [plots.BLANK_OVERFLOW] * 2     # lecun at sigma_w^2 = 1e30: inf
    assert blank[0, 0].tolist() == [plots.BLANK_NONE] * 2 and blank[1, :, 1].tolist() == [plots.BLANK_NONE] * 2
    with warnings.catch_warnings():  # the critical line of ReLU is theory's business, not this test's
        warnings.simplefilter("ignore", plots.FigureWarning)
        figures = plots.phase_figures(blanks)
    labels = _texts(next(iter(figures.values())))
    assert any(t.startswith("no value: the signal is 0 (q = 0 or a zero gradient") for t in labels)
    assert any(t.startswith("no value: overflow (inf or NaN)") for t in labels)
    assert not any("no finite value (overflow)" in t for t in labels)


# ----------------------------------------------------------------------------- layout: nothing off the canvas


@pytest.fixture(scope="module")
def large_grid(tmp_path_factory):
    """3 initializers x 8 grid points (4 sigma_w^2 x 2 sigma_b^2), tanh, two programs, every probe."""
    return _run(tmp_path_factory, "large_grid", {
        "network": {"depth": [4, 6], "width": 16, "activation": "tanh"},
        "inputs": {"batch": 4, "kind": "pairs", "correlation": 0.5},
        "sweep": {"seeds": 2, "initializers": ["lecun_normal", "he_normal",
                                               {"name": "orthogonal", "label": "orthogonal (scale 1)"}]},
        "grid": {"weight_variance": [0.5, 1.0, 1.5, 2.0], "bias_variance": [0.0, 0.05]},
        "probes": {"forward": True, "gradients": True, "jacobian": True, "spectrum": True, "theory": True},
    })


def _laid_out(fig):
    """Draw ``fig`` once on an Agg canvas (its layout runs, as in savefig) and return the renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _off_canvas(fig, renderer=None) -> list[str]:
    """Texts, legends and panels that reach outside the figure once it is laid out (1 px slack)."""
    renderer = renderer or _laid_out(fig)
    width, height = fig.bbox.width, fig.bbox.height
    artists = [*fig.legends, *([fig._suptitle] if fig._suptitle is not None else []), *fig.axes]
    out = []
    for artist in artists:
        if not artist.get_visible():
            continue
        box = artist.get_tightbbox(renderer) if hasattr(artist, "get_tightbbox") else artist.get_window_extent(renderer)
        if box.x0 < -1 or box.y0 < -1 or box.x1 > width + 1 or box.y1 > height + 1:
            out.append(f"{type(artist).__name__} {box.bounds} outside {width:.0f}x{height:.0f}")
    return out


def _every_figure(results) -> dict:
    """Every figure a results folder draws, by name (the theory warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", plots.FigureWarning)
        figures = {name: build(results) for name, build in _SINGLE}
        figures.update(plots.phase_figures(results))
    return figures


def test_every_figure_of_a_large_grid_fits_its_canvas(large_grid):
    figures = _every_figure(large_grid)
    assert set(figures) >= {"q", "grad_w_norm", "correlation", "dead_saturated", "jacobian_msv", "spectrum",
                            "depth4-width16-tanh", "depth6-width16-tanh"}
    for name, fig in figures.items():
        assert fig is not None, name
        assert _off_canvas(fig) == [], name


@pytest.fixture(scope="module")
def not_drawn(tmp_path_factory):
    """configs/seeds_comparison.toml, shrunk: three activations, curves that are 0 at every layer
    (zeros, N(0, 0.01^2) underflowing) or never finite, so panels carry long "not drawn" subtitles."""
    return _run(tmp_path_factory, "not_drawn", {
        "network": {"depth": 40, "width": 32, "activation": ["relu", "tanh", "sigmoid"], "bias": "zeros"},
        "inputs": {"batch": 8, "kind": "gaussian"},
        "sweep": {"seeds": 2, "initializers": [
            {"name": "zeros", "label": "zeros (every weight 0: no symmetry to break, no signal to pass on)"},
            {"name": "constant", "value": 0.01, "label": "constant(0.01)"},
            {"name": "normal", "stddev": 0.01, "label": "normal(0.01)"},
            {"name": "uniform", "scale": 0.01, "label": "uniform(0.01)"},
            "xavier_uniform", "he_normal", "lecun_normal", "orthogonal"]},
        "probes": {"forward": True, "gradients": True, "jacobian": True, "theory": True},
    })


def _title_overhang(fig, renderer=None) -> list[str]:
    """Panel titles wider than their panel once the figure is laid out (1 px slack)."""
    renderer = renderer or _laid_out(fig)
    out = []
    for ax in fig.axes:
        if not ax.get_visible() or not ax.get_title():
            continue
        title, panel = ax.title.get_window_extent(renderer), ax.get_window_extent(renderer)
        if title.width > panel.width + 1:
            out.append(f"{ax.get_title()!r}: {title.width:.0f} px over a {panel.width:.0f} px panel")
    return out


def test_long_not_drawn_subtitles_are_wrapped_to_their_panel(not_drawn):
    figures = _every_figure(not_drawn)
    titles = [t for fig in figures.values() if fig is not None for ax in fig.axes for t in [ax.get_title()]]
    assert any("not drawn: 0 at every layer: zeros (every weight 0" in " ".join(t.split()) for t in titles)
    for name, fig in figures.items():
        if fig is None:
            continue
        renderer = _laid_out(fig)  # one draw serves both checks (a draw of these figures is ~0.5 s)
        assert _off_canvas(fig, renderer) == [], name
        assert _title_overhang(fig, renderer) == [], name


def test_figures_are_written_with_the_umask_mode_and_the_folder_synced(small, tmp_path, monkeypatch):
    import os
    import stat

    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    old = os.umask(0o027)
    try:
        paths = plots.write_all(small, out=tmp_path / "figs")
    finally:
        os.umask(old)
    assert paths and {oct(p.stat().st_mode & 0o777) for p in paths} == {oct(0o640)}
    assert synced.count(True) >= len(paths) and synced.count(False) >= len(paths)
    assert not list((tmp_path / "figs").glob(".*.tmp"))
