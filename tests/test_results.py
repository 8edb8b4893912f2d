"""The results folder: atomic chunks, resume, refusal of a different config, assembly, load."""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile

import numpy as np
import pytest

from jaxinit import _io
from jaxinit.lab import store as res
from jaxinit.lab.config import ConfigError, from_dict
from jaxinit.lab.store import ResultsError, ResultsFolder, load

N_SEEDS = 5


def make_config(**overrides):
    data = {
        "network": {"depth": [3, 5], "width": 8, "activation": "tanh"},
        "sweep": {"seeds": N_SEEDS, "base_seed": 7, "initializers": ["he_normal", "lecun_normal"]},
        "grid": {"weight_variance": [1.0, 2.0], "bias_variance": [0.0]},
    }
    return from_dict(data, source="configs/tiny.toml", overrides=overrides)


@pytest.fixture
def config():
    return make_config()


def values(program, seeds, depth=None):
    """A value that encodes (program, initializer, grid point, seed, layer): checks land in place."""
    depth = program.depth if depth is None else depth
    i, g, s, layer = np.meshgrid(np.arange(2), np.arange(2), np.asarray(seeds), np.arange(depth), indexing="ij")
    return (1000 * program.index + 100 * i + 10 * g + s + layer / 100).astype(np.float32)


def chunk(program, seeds):
    return {"q": values(program, seeds),
            "first_nonfinite_layer": np.full((2, 2, len(seeds)), -1, dtype=np.int32)}


def run(folder, config, plan=((0, 1), (2, 3), (4,)), programs=None):
    for program in programs or config.programs():
        for cid, seeds in enumerate(plan):
            folder.write_chunk(program.id, cid, chunk(program, seeds), seeds)


def temp_files(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*.tmp"))


# ----------------------------------------------------------------------------- prepare


def test_prepare_creates_the_layout(tmp_path, config):
    folder = ResultsFolder(tmp_path / "out" / "run")
    assert folder.prepare(config, "# as given\n") is False
    path = folder.path
    assert (path / "config.toml").read_text() == "# as given\n"
    assert (path / "chunks").is_dir()
    meta = json.loads((path / "meta.json").read_text())
    assert meta["format"] == res.FORMAT and meta["status"] == "running"
    assert meta["config_hash"] == config.config_hash()
    assert meta["config"] == config.to_dict()
    assert set(meta["versions"]) >= {"jax", "jaxlib", "flax", "numpy", "jaxinit", "python"}
    assert meta["versions"]["numpy"] == np.__version__
    assert "base_seed = 7" in meta["random_numbers"] and "fold_in" in meta["random_numbers"]
    assert [p["id"] for p in meta["programs"]] == [p.id for p in config.programs()]
    assert [e["label"] for e in meta["initializers"]] == ["he_normal", "lecun_normal"]
    assert meta["grid_points"] == [{"weight_variance": 1.0, "bias_variance": 0.0},
                                   {"weight_variance": 2.0, "bias_variance": 0.0}]
    assert temp_files(path) == []


def test_prepare_writes_resolved_toml_when_no_text(tmp_path):
    config = make_config()
    folder = ResultsFolder(tmp_path / "r")
    folder.prepare(config)
    path = folder.path / "config.toml"
    from jaxinit.lab.config import load as load_config
    assert load_config(path) == from_dict(config.to_dict(), source=str(path))


def test_output_folder_that_is_a_file_is_refused(tmp_path, config):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(ResultsError, match=r"taken: the output folder is a file; choose another output folder \(output\.dir\)"):
        ResultsFolder(target).prepare(config)


def test_output_folder_under_a_file_is_refused(tmp_path, config):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultsError, match=r"cannot create the output folder: .*file is a file, not a folder"):
        ResultsFolder(tmp_path / "file" / "sub" / "run").prepare(config)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root may write anywhere")
def test_output_folder_not_writable_is_refused(tmp_path, config):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ResultsError, match=r"locked: the output folder is not writable"):
            ResultsFolder(locked).prepare(config)
        with pytest.raises(ResultsError, match=r"cannot create the output folder: permission denied"):
            ResultsFolder(locked / "inner").prepare(config)
    finally:
        locked.chmod(0o700)


def test_output_folder_not_writable_is_refused_even_as_root(tmp_path, config, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(ResultsError, match=r"ro: the output folder is not writable \(Permission denied\); choose "
                                           r"another output folder \(output\.dir\) or fix its permissions"):
        ResultsFolder(tmp_path / "ro").prepare(config)


def test_results_error_is_a_config_error(tmp_path):
    err = ResultsError(tmp_path, "the output folder is a file")
    assert isinstance(err, ConfigError) and isinstance(err, ValueError)
    assert str(err) == f"{tmp_path}: the output folder is a file"


def test_folder_with_foreign_files_is_refused_even_with_fresh(tmp_path, config):
    (tmp_path / "notes.txt").write_text("mine")
    for fresh in (False, True):
        with pytest.raises(ResultsError, match=r"holds files that are not jaxinit results \(no meta\.json\): "
                                               r"notes\.txt; choose an empty or new folder"):
            ResultsFolder(tmp_path).prepare(config, fresh=fresh)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_changed_config_is_refused_unless_fresh(tmp_path, config):
    folder = ResultsFolder(tmp_path / "r")
    folder.prepare(config)
    run(folder, config)
    (folder.path / "figures").mkdir()
    (folder.path / "figures" / "q.png").write_bytes(b"png")
    (folder.path / "notes.txt").write_text("mine")
    changed = make_config(seeds=6, **{"network.width": 16})
    with pytest.raises(ResultsError, match=r"r: holds results of a different config \(hash [0-9a-f]{16} != "
                                           r"[0-9a-f]{16}; changed: network\.width, sweep\.seeds\)\. Overwrite them with fresh=True, or write elsewhere \(another output\.dir\)"):
        ResultsFolder(folder.path).prepare(changed)
    assert len(folder.done_chunks(config.programs()[0].id)) == 3        # nothing was touched
    again = ResultsFolder(folder.path)
    assert again.prepare(changed, fresh=True) is False
    assert again.done_seeds(changed.programs()[0].id) == set()
    assert not (folder.path / "figures").exists() and list((folder.path / "chunks").iterdir()) == []
    assert (folder.path / "notes.txt").read_text() == "mine"            # not ours: left alone
    assert json.loads((folder.path / "meta.json").read_text())["config_hash"] == changed.config_hash()


def test_output_only_changes_resume(tmp_path, config):
    folder = ResultsFolder(tmp_path / "r")
    folder.prepare(config)
    run(folder, config, plan=((0, 1),))
    again = ResultsFolder(folder.path)
    assert again.prepare(make_config(chunk=4, out="elsewhere")) is True
    assert again.done_seeds(config.programs()[0].id) == {0, 1}
    meta = again.read_meta()
    assert meta["status"] == "running" and len(meta["resumed"]) == 1


def test_unreadable_meta_is_refused_unless_fresh(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(ResultsError, match=r"meta\.json is unreadable .*; start over with fresh=True"):
        ResultsFolder(tmp_path).prepare(config)
    assert ResultsFolder(tmp_path).prepare(config, fresh=True) is False


# ----------------------------------------------------------------------------- chunks


def test_chunks_are_written_atomically_and_resume_sees_them(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    p0, p1 = config.programs()
    assert folder.done_chunks(p0.id) == set() and folder.missing_seeds(p0.id) == [0, 1, 2, 3, 4]
    path = folder.write_chunk(p0.id, 0, chunk(p0, [0, 1]), [0, 1])
    folder.write_chunk(p0.id, 2, chunk(p0, [4]), [4])
    assert path == tmp_path / "chunks" / p0.id / "seeds-000000-000001.npz"      # named by its seeds
    assert temp_files(tmp_path) == []
    with np.load(path) as data:
        np.testing.assert_array_equal(data["q"], values(p0, [0, 1]))
        np.testing.assert_array_equal(data["__seed_ids__"], [0, 1])
    # a fresh process resuming the same config sees exactly what was written
    resumed = ResultsFolder(tmp_path)
    assert resumed.prepare(config) is True
    assert resumed.done_chunks(p0.id) == {"seeds-000000-000001", "seeds-000004-000004"}
    assert resumed.done_chunks(p1.id) == set()
    assert resumed.done_seeds(p0.id) == {0, 1, 4}
    assert resumed.missing_seeds(p0.id) == [2, 3] and resumed.missing_seeds(p1.id) == [0, 1, 2, 3, 4]


def test_partially_written_temp_file_is_ignored_and_cleaned(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    p0 = config.programs()[0]
    folder.write_chunk(p0.id, 0, chunk(p0, [0, 1]), [0, 1])
    stale = tmp_path / "chunks" / p0.id / ".chunk-000001.npz.x1y2.tmp"
    stale.write_bytes(b"PK\x03\x04 half a zip")                   # killed mid-write
    # A temp file that names no owner is removed once it is older than every live writer (here:
    # than the resuming one; a live writer's own temp files are never removed: test_store_writers).
    os.utime(stale, (os.path.getmtime(stale) - 3600,) * 2)
    assert folder.done_chunks(p0.id) == {"seeds-000000-000001"} and folder.done_seeds(p0.id) == {0, 1}
    assert ResultsFolder(tmp_path).prepare(config) is True       # the resume removes it
    assert not stale.exists()


def test_failed_write_leaves_no_file(tmp_path, config, monkeypatch):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    p0 = config.programs()[0]

    def crash(f, array, **kwargs):
        f.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", crash)
    with pytest.raises(KeyboardInterrupt):
        folder.write_chunk(p0.id, 0, chunk(p0, [0]), [0])
    monkeypatch.undo()
    assert folder.done_chunks(p0.id) == set() and temp_files(tmp_path) == []
    folder.write_chunk(p0.id, 0, chunk(p0, [0]), [0])
    assert folder.done_chunks(p0.id) == {"seeds-000000-000000"}


@pytest.mark.parametrize("program, chunk_id, arrays, seeds, match", [
    ("nope", 0, None, [0], r"program_id 'nope' is not a program of this sweep"),
    ("../x", 0, None, [0], r"program_id must be a file-name-safe string"),
    (0, -1, None, [0], r"chunk_id must be None or an integer >= 0; got -1"),
    (0, True, None, [0], r"chunk_id must be None or an integer >= 0; got True"),
    (0, 0, None, [], r"seed_ids must be a non-empty 1-d sequence of ints"),
    (0, 0, None, [0, 0], r"seed_ids must be distinct"),
    (0, 0, None, [5], r"seed_ids must lie in \[0, 5\)"),
    (0, 0, {}, [0], r"arrays must hold at least one statistic"),
    (0, 0, {"q": np.zeros((2, 3, 1, 3))}, [0], r"array 'q' has shape \(2, 3, 1, 3\); expected \(n_initializers, "
                                               r"n_grid_points, n_seeds_in_chunk, \.\.\.\) = \(2, 2, 1, \.\.\.\)"),
    (0, 0, {"q": np.zeros((2, 2, 2, 3))}, [0], r"array 'q' has shape \(2, 2, 2, 3\)"),
    (0, 0, {"q": np.zeros((2, 2, 1, 3, 3))}, [0], r"array 'q' has 5 dims; .* name the extra dims with dims="),
    (0, 0, {"__q": np.zeros((2, 2, 1))}, [0], r"array names must be identifiers starting with a letter"),
    (0, 0, {"q": np.zeros((2, 2, 1), complex)}, [0], r"array 'q' must hold bool, integer or real floating"),
])
def test_write_chunk_rejects_bad_input(tmp_path, config, program, chunk_id, arrays, seeds, match):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    p = config.programs()[program] if isinstance(program, int) else None
    program_id = p.id if p else program
    arrays = chunk(config.programs()[0], seeds) if arrays is None else arrays
    with pytest.raises(ValueError, match=match):
        folder.write_chunk(program_id, chunk_id, arrays, seeds)
    assert temp_files(tmp_path) == []


def test_write_chunk_rejects_seeds_written_by_another_chunk(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    p0 = config.programs()[0]
    first = folder.write_chunk(p0.id, 0, chunk(p0, [0, 1, 2]), [0, 1, 2]).read_bytes()
    with pytest.raises(ValueError, match=r"seeds 1-2 of program '.*' are already written in chunk "
                                         r"seeds-000000-000002; plan chunks over folder\.missing_seeds"):
        ResultsFolder(tmp_path).write_chunk(p0.id, 1, chunk(p0, [1, 2, 3]), [1, 2, 3])
    # The same seeds again (in another order): the same file, byte for byte; the chunk id names nothing.
    again = folder.write_chunk(p0.id, 5, {k: v[:, :, ::-1] for k, v in chunk(p0, [0, 1, 2]).items()}, [2, 1, 0])
    assert again.read_bytes() == first
    assert folder.write_chunk(p0.id, None, chunk(p0, [3, 4]), [3, 4]).name == "seeds-000003-000004.npz"
    assert folder.done_seeds(p0.id) == {0, 1, 2, 3, 4}
    assert folder.done_chunks(p0.id) == {"seeds-000000-000002", "seeds-000003-000004"}


def test_resume_with_another_chunk_size_loses_nothing(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    run(folder, config, plan=((0, 1), (2, 3)))                         # interrupted; 2 seeds per chunk
    resumed = ResultsFolder(tmp_path)
    resumed.prepare(config)
    for p in config.programs():
        todo = resumed.missing_seeds(p.id)
        assert todo == [4]
        resumed.write_chunk(p.id, None, chunk(p, todo), todo)           # a new chunk size: next free id
    results = resumed.assemble()
    for p in config.programs():
        np.testing.assert_array_equal(results.get("q", p.id), values(p, range(N_SEEDS)))


def test_write_chunk_rejects_schema_changes_within_a_program(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    p0 = config.programs()[0]
    folder.write_chunk(p0.id, 0, chunk(p0, [0]), [0])
    fresh = ResultsFolder(tmp_path)                       # the schema is read back from disk too
    fresh.prepare(config)
    with pytest.raises(ValueError, match=r"chunks of program .* hold arrays \['first_nonfinite_layer', 'q'\]; "
                                         r"this one holds \['q'\]"):
        fresh.write_chunk(p0.id, 1, {"q": values(p0, [1])}, [1])
    with pytest.raises(ValueError, match=r"array 'q' of program .*: trailing dims \('layer',\) shape \(4,\)"):
        fresh.write_chunk(p0.id, 1, {**chunk(p0, [1]), "q": values(p0, [1], depth=4)}, [1])


def test_extra_dims_are_named_and_bfloat16_is_stored_as_float32(tmp_path, config):
    import jax.numpy as jnp

    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    for p in config.programs():
        arrays = {"q": jnp.asarray(values(p, [0, 1, 2, 3, 4]), jnp.bfloat16),
                  "spectrum": np.ones((2, 2, 5, p.width, 2))}
        with pytest.raises(ValueError, match=r"dims\['spectrum'\] = \('singular_value',\) names 1 dims; the "
                                             r"array has 2"):
            folder.write_chunk(p.id, 0, arrays, range(5), dims={"spectrum": ("singular_value",)})
        with pytest.raises(ValueError, match=r"dim names must be identifiers other than"):
            folder.write_chunk(p.id, 0, arrays, range(5), dims={"spectrum": ("seed", "x")})
        folder.write_chunk(p.id, 0, arrays, list(range(5)), dims={"spectrum": ("singular_value", "part")})
    results = folder.assemble()
    assert results.arrays["q"].dtype == np.float32
    assert results.dims["spectrum"] == ("program", "initializer", "grid_point", "seed", "singular_value", "part")
    assert results.coords["singular_value"] == list(range(8))
    assert {row["statistic"] for row in results.summary} == {"q"}       # spectra stay out of the table


# ----------------------------------------------------------------------------- assembly and load


def test_assemble_and_load_round_trip(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    run(folder, config)
    results = folder.assemble()
    assert (tmp_path / "arrays.npz").exists() and (tmp_path / "summary.csv").exists()
    q = results.arrays["q"]
    assert q.shape == (2, 2, 2, N_SEEDS, 5) and q.dtype == np.float32
    assert results.dims["q"] == ("program", "initializer", "grid_point", "seed", "layer")
    assert results.dims["first_nonfinite_layer"] == ("program", "initializer", "grid_point", "seed")
    p0, p1 = config.programs()
    np.testing.assert_array_equal(q[1], values(p1, range(N_SEEDS)))
    np.testing.assert_array_equal(q[0, ..., :3], values(p0, range(N_SEEDS)))
    assert np.isnan(q[0, ..., 3:]).all()                                  # depth 3 padded to 5
    np.testing.assert_array_equal(results.get("q", p0.id), values(p0, range(N_SEEDS)))
    np.testing.assert_array_equal(results.get("q", 1), values(p1, range(N_SEEDS)))
    assert results.extent["q"] == {p0.id: [3], p1.id: [5]}
    assert results.coords["initializer"] == ["he_normal", "lecun_normal"]
    assert results.coords["initializer_repr"][0].startswith("variance_scaling(scale=2.0")
    assert results.coords["grid_point"][1] == {"weight_variance": 2.0, "bias_variance": 0.0}
    assert results.coords["grid_params"] == ["weight_variance", "bias_variance"]
    assert results.coords["seed"] == list(range(N_SEEDS)) and results.coords["layer"] == list(range(5))
    assert [p["depth"] for p in results.coords["program"]] == [3, 5]
    assert results.meta["status"] == "complete" and results.config == config
    again = load(tmp_path)
    assert set(again.arrays) == {"q", "first_nonfinite_layer"}
    for name in again.arrays:
        np.testing.assert_array_equal(again.arrays[name], results.arrays[name])
    assert again.summary == results.summary
    with pytest.raises(ValueError, match=r"this sweep has 2 programs; pass program= one of"):
        again.get("q")
    with pytest.raises(KeyError, match=r"no array 'x'"):
        again.get("x", 0)


def _assembled_with_summary_header(tmp_path, config):
    """Run ``config`` into ``tmp_path``, assemble it, and return (results, summary.csv's header)."""
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    run(folder, config)
    results = folder.assemble()
    with open(tmp_path / "summary.csv", newline="") as f:
        return results, next(csv.reader(f))


def test_summary_is_tidy(tmp_path, config):
    results, header = _assembled_with_summary_header(tmp_path, config)
    assert header == ["program", "activation", "depth", "width", "initializer", "grid_point", "weight_variance",
                      "bias_variance", "layer", "statistic", "mean", "std", "median", "q05", "q25", "q75", "q95",
                      "n_seeds", "n_finite"]
    rows = results.summary
    # per layer: 2 inits x 2 points x (3 + 5 layers); scalars: 2 x 2 x 2 programs
    assert sum(r["statistic"] == "q" for r in rows) == 2 * 2 * 8
    assert sum(r["statistic"] == "first_nonfinite_layer" for r in rows) == 2 * 2 * 2
    row = next(r for r in rows if r["statistic"] == "q" and r["depth"] == 5 and r["initializer"] == "lecun_normal"
               and r["grid_point"] == 1 and r["layer"] == 4)
    expected = values(config.programs()[1], range(N_SEEDS))[1, 1, :, 4].astype(np.float64)
    assert row["weight_variance"] == 2.0 and row["activation"] == "tanh" and row["width"] == 8
    assert row["mean"] == pytest.approx(expected.mean(), rel=1e-8)
    assert row["median"] == pytest.approx(np.median(expected), rel=1e-8)
    assert row["q05"] == pytest.approx(np.quantile(expected, 0.05), rel=1e-8)
    assert row["q95"] == pytest.approx(np.quantile(expected, 0.95), rel=1e-8)
    assert (row["n_seeds"], row["n_finite"]) == (N_SEEDS, N_SEEDS)
    scalar = next(r for r in rows if r["statistic"] == "first_nonfinite_layer")
    assert scalar["layer"] is None and scalar["mean"] == -1.0


def test_summary_without_grid_has_one_grid_point(tmp_path):
    config = from_dict({"network": {"depth": 2, "width": 4, "activation": "relu"},
                        "sweep": {"seeds": 2, "initializers": ["he_normal"]}})
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    folder.write_chunk(config.programs()[0].id, 0, {"q": np.ones((1, 1, 2, 2))}, [0, 1])
    results = folder.assemble()
    assert results.coords["grid_point"] == [{}] and results.coords["grid_params"] == []
    assert [(r["grid_point"], r["layer"], r["mean"]) for r in results.summary] == [(0, 0, 1.0), (0, 1, 1.0)]
    assert "weight_variance" not in results.summary[0]
    assert results.get("q").shape == (1, 1, 2, 2)


def test_summary_excludes_and_counts_non_finite_values(tmp_path):
    config = make_config(**{"network.depth": 4, "grid.weight_variance": [1.0]})
    assert len(config.grid_points()) == 1
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    p = config.programs()[0]
    q = np.ones((2, 1, N_SEEDS, 4))
    q[:, :, :, 0] = [1.0, 2.0, np.nan, np.inf, -np.inf]                  # layer 0: two finite values
    q[:, :, :, 1] = np.nan                                               # layer 1: none finite
    q[:, :, :, 2] = [1e308, 1.5e308, -1.7e308, 1.2e308, 1.0e308]         # layer 2: sums overflow
    q[:, :, :, 3] = np.arange(N_SEEDS)
    folder.write_chunk(p.id, 0, {"q": q}, range(N_SEEDS))
    rows = {r["layer"]: r for r in folder.assemble().summary if r["initializer"] == "he_normal"}
    assert (rows[0]["n_finite"], rows[0]["mean"], rows[0]["median"]) == (2, 1.5, 1.5)
    assert rows[1]["n_finite"] == 0 and all(np.isnan(rows[1][s]) for s in res.SUMMARY_STATS)
    big = np.array([1e308, 1.5e308, -1.7e308, 1.2e308, 1.0e308])
    assert rows[2]["n_finite"] == 5 and np.isfinite([rows[2][s] for s in res.SUMMARY_STATS]).all()
    assert rows[2]["mean"] == pytest.approx(np.mean(big / 1e300) * 1e300, rel=1e-8)
    assert rows[2]["q05"] == pytest.approx(np.quantile(big / 1e300, 0.05) * 1e300, rel=1e-8)
    assert rows[3]["std"] == pytest.approx(np.std(np.arange(N_SEEDS)), rel=1e-8)
    assert all(r["n_seeds"] == N_SEEDS for r in rows.values())
    with open(tmp_path / "summary.csv") as f:
        assert ",nan," in f.read()


def test_unfinished_sweep_is_not_assembled_unless_partial(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    with pytest.raises(ResultsError, match=r"no chunks written yet under chunks/; run the sweep first"):
        folder.assemble()
    run(folder, config, plan=((0, 1), (2,)))
    p0 = config.programs()[0]
    with pytest.raises(ResultsError, match=rf"the sweep is unfinished \({p0.id}: seeds 3-4; .*\); rerun the same "
                                           r"command to resume, or assemble\(allow_partial=True\)"):
        folder.assemble()
    with pytest.raises(ResultsError, match=r"has no arrays\.npz yet \(4 chunk files written\); rerun the sweep"):
        load(tmp_path)
    results = folder.assemble(allow_partial=True)
    assert results.meta["status"] == "partial"
    assert results.missing_seeds == {p.id: [3, 4] for p in config.programs()}
    assert np.isnan(results.arrays["q"][:, :, :, 3:]).all()
    assert (results.arrays["first_nonfinite_layer"][:, :, :, 3:] == -1).all()
    assert {r["n_seeds"] for r in results.summary} == {3}
    # resuming finishes it; the same files come out as from an uninterrupted run
    resumed = ResultsFolder(tmp_path)
    assert resumed.prepare(config) is True
    for p in config.programs():
        assert resumed.missing_seeds(p.id) == [3, 4]
        resumed.write_chunk(p.id, 7, chunk(p, [3, 4]), [3, 4])
    finished = resumed.assemble()
    assert finished.meta["status"] == "complete" and finished.missing_seeds == {}
    other = ResultsFolder(tmp_path / "straight")
    other.prepare(config)
    run(other, config, plan=((0, 1, 2, 3, 4),))
    straight = other.assemble()
    for name in straight.arrays:
        np.testing.assert_array_equal(finished.arrays[name], straight.arrays[name])
    assert (tmp_path / "summary.csv").read_bytes() == (tmp_path / "straight" / "summary.csv").read_bytes()


def test_assemble_uses_config_from_meta_in_a_new_process(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    run(folder, config)
    results = ResultsFolder(tmp_path).assemble()       # no prepare: the config comes from meta.json
    assert results.arrays["q"].shape == (2, 2, 2, N_SEEDS, 5)
    with pytest.raises(ResultsError, match=r"was written by a different config"):
        ResultsFolder(tmp_path).assemble(make_config(seeds=6))


def test_damaged_chunk_is_reported(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    run(folder, config)
    p0 = config.programs()[0]
    (tmp_path / "chunks" / p0.id / "seeds-000002-000003.npz").write_bytes(b"garbage")
    with pytest.raises(ResultsError, match=r"chunk file chunks/.*/seeds-000002-000003\.npz is damaged .*; delete it and "
                                           r"rerun"):
        ResultsFolder(tmp_path).assemble()


def test_write_meta_merges(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    meta = folder.write_meta({"compile_time_s": 1.5, "chunk_plan": {"seeds_per_chunk": 2}})
    assert meta["compile_time_s"] == 1.5 and meta["config_hash"] == config.config_hash()
    meta = folder.write_meta({"run_time_s": 3.0})
    assert meta["compile_time_s"] == 1.5 and meta["run_time_s"] == 3.0 and "updated" in meta
    assert json.loads((tmp_path / "meta.json").read_text()) == meta
    assert temp_files(tmp_path) == []


def test_load_errors(tmp_path):
    with pytest.raises(ResultsError, match=r"nothing: no such results folder"):
        load(tmp_path / "nothing")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ResultsError, match=r"f: is not a folder"):
        load(tmp_path / "f")
    with pytest.raises(ResultsError, match=r"no meta\.json: not a jaxinit results folder"):
        load(tmp_path)


def test_to_pandas_is_optional(tmp_path, config, monkeypatch):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    run(folder, config)
    results = folder.assemble()
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"Results\.to_pandas needs pandas \(pip install pandas\)"):
        results.to_pandas()


def test_device_description_and_versions():
    desc = res.device_description()
    assert desc["device_count"] >= 1 and desc["backend"] in ("cpu", "gpu", "tpu", "cuda", "rocm")
    assert res.package_versions()["jaxinit"] is not None


# ----------------------------------------------------------------------------- file modes, durability


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and umask")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_results_files_get_the_mode_a_plain_write_gives(tmp_path, config, umask):
    old = os.umask(umask)
    try:
        folder = ResultsFolder(tmp_path / "out")
        folder.prepare(config)
        run(folder, config)
        folder.assemble()
        plain = tmp_path / "plain.txt"
        plain.write_text("x")                     # what open(path, "w") gives under this umask
    finally:
        os.umask(old)
    expected = plain.stat().st_mode & 0o777
    assert expected == 0o666 & ~umask
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"config.toml", "meta.json", "arrays.npz", "arrays.json", "summary.csv",
                                         "seeds-000000-000001.npz"}
    assert {p.relative_to(tmp_path).as_posix(): oct(p.stat().st_mode & 0o777) for p in written} == {
        p.relative_to(tmp_path).as_posix(): oct(expected) for p in written}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_rewriting_a_file_keeps_its_mode(tmp_path):
    target = tmp_path / "meta.json"
    target.write_text("{}")
    target.chmod(0o640)
    _io.atomic_write(target, lambda f: f.write("{\"a\": 1}\n"), binary=False)
    assert target.read_text() == "{\"a\": 1}\n" and target.stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(sys.platform == "win32", reason="directories cannot be fsynced on Windows")
def test_the_folder_is_fsynced_after_each_rename(tmp_path, config, monkeypatch):
    import stat

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file",
                       os.path.realpath(f"/proc/self/fd/{fd}") if sys.platform == "linux" else None))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.realpath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    p0 = config.programs()[0]
    events.clear()
    path = folder.write_chunk(p0.id, 0, chunk(p0, [0, 1]), [0, 1])
    kinds = [e[0] for e in events]
    # data synced, renamed into place, then the folder holding the new name synced
    i = kinds.index("replace")
    assert "fsync-file" in kinds[:i] and "fsync-dir" in kinds[i + 1:]
    assert events[i][1] == os.path.realpath(path)
    if sys.platform == "linux":
        assert ("fsync-dir", os.path.realpath(path.parent)) in events[i + 1:]


# ----------------------------------------------------------------------------- what a reader sees


def test_repr_of_results_is_a_short_summary(tmp_path):
    config = make_config(**{"sweep.seeds": 64, "network.depth": [50, 100]})
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    for program in config.programs():
        q = np.random.default_rng(0).random((2, 2, 64, program.depth))
        folder.write_chunk(program.id, 0, {"q": q, "first_nonfinite_layer": np.full((2, 2, 64), -1)}, range(64))
    text = repr(folder.assemble())
    assert len(text) < 800 and text.count("\n") <= 6
    assert text.startswith(f"Results({str(tmp_path)!r}, status 'complete'")
    assert "depth50-width8-tanh, depth100-width8-tanh" in text and "he_normal, lecun_normal" in text
    assert "seeds: 64" in text and "q[2, 2, 2, 64, 100] float64" in text


def test_summary_columns_are_described_and_std_is_the_population_std(tmp_path, config):
    results, header = _assembled_with_summary_header(tmp_path, config)
    described = results.meta["summary_columns"]
    assert set(header) <= set(described) and described == res.SUMMARY_COLUMNS
    assert "ddof = 0" in described["std"]
    row = next(r for r in results.summary if r["layer"] == 0 and r["initializer"] == "he_normal"
               and r["grid_point"] == 0 and r["program"] == config.programs()[0].id)
    seeds = results.get("q", 0)[0, 0, :, 0].astype(np.float64)
    assert row["std"] == pytest.approx(np.std(seeds, ddof=0), rel=1e-6)
    assert row["std"] != pytest.approx(np.std(seeds, ddof=1), rel=1e-3)


def test_repr_of_a_partial_assembly_names_the_missing_seeds(tmp_path, config):
    folder = ResultsFolder(tmp_path)
    folder.prepare(config)
    run(folder, config, plan=((0, 1),), programs=config.programs()[:1])
    text = repr(folder.assemble(allow_partial=True))
    assert "status 'partial'" in text
    assert "seeds: 5 (missing: depth3-width8-tanh 2-4, depth5-width8-tanh 0-4)" in text
