"""Sweep config files: every bad input gets one path-qualified message; good ones freeze once."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
from pathlib import Path

import pytest

import jaxinit
from jaxinit.lab import config as cfg
from jaxinit.lab.config import ConfigError, GridConfig, from_dict, grid_points, load, parse_override
from jaxinit.lab.config import validate as config_validate

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.toml"))
SHIPPED = {"quickstart", "seeds_comparison", "phase_tanh", "deep_1000", "isometry", "train_digits"}


def base() -> dict:
    """The smallest valid config, as tomllib would return it."""
    return {
        "network": {"depth": 4, "width": 8, "activation": "relu"},
        "sweep": {"seeds": 2, "initializers": ["he_normal", {"name": "normal", "stddev": 0.01}]},
    }


def with_value(path: str, value) -> dict:
    """``base()`` with the dotted ``path`` set to ``value`` (sections created as needed)."""
    data = base()
    *parents, last = path.split(".")
    table = data
    for part in parents:
        table = table.setdefault(part, {})
    table[last] = value
    return data


def check_error(data: dict, match: str, source: str = "c.toml") -> ConfigError:
    with pytest.raises(ConfigError, match=match) as info:
        from_dict(data, source=source)
    assert "\n" not in str(info.value)
    return info.value


# ----------------------------------------------------------------------------- shipped configs


def test_all_shipped_configs_are_present():
    assert SHIPPED <= {p.stem for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_loads_and_validates(path):
    config = load(path)
    text = path.read_text()
    assert config.text == text
    assert config.name == path.stem
    assert config.output.dir == f"results/{path.stem}"
    command = "train" if config.kind == "train" else "sweep"
    assert f"jaxinit {command} configs/{path.name}" in text          # the header says how to run it
    assert text.startswith(f"# {path.name}:")                    # ... and what it reproduces
    assert config.programs() and config.grid_points()
    assert len({p.id for p in config.programs()}) == len(config.programs())
    assert from_dict(config.to_dict(), source=str(path)) == config
    assert config.config_hash() == load(path).config_hash()


def test_phase_config_is_a_25_by_25_paired_input_grid():
    config = load(next(p for p in CONFIGS if p.stem == "phase_tanh"))
    points = config.grid_points()
    assert len(points) == 625 and set(points[0]) == {"weight_variance", "bias_variance"}
    assert config.inputs.kind == "pairs" and config.network.depth[0] >= 50


# ----------------------------------------------------------------------------- files and TOML


def test_malformed_toml_names_file_and_position(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[network]\ndepth = = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: malformed TOML: .*line 2"):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read config file: No such file"):
        load(tmp_path / "nope.toml")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match=r": is a directory, not a config file"):
        load(tmp_path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b"# \xe9\n")
    with pytest.raises(ConfigError, match=r"latin\.toml: not UTF-8 text"):
        load(path)


def test_load_keeps_text_and_source(tmp_path):
    path = tmp_path / "mine.toml"
    config = from_dict(base())
    path.write_text(config.to_toml())
    loaded = load(path)
    assert loaded == config and loaded.text == path.read_text()
    assert loaded.source == str(path) and loaded.name == "mine"
    assert loaded.output.dir == "results/sweep"   # to_toml wrote the dict's default explicitly
    path.write_text("\n".join(line for line in config.to_toml().splitlines() if not line.startswith("dir")))
    assert load(path).output.dir == "results/mine"


# ----------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize("path, match", [
    ("network.dept", r"c\.toml: network\.dept: unknown key; did you mean 'depth'\? allowed: depth, width, "
                     r"activation, bias, dtype$"),
    ("netwrk", r"c\.toml: netwrk: unknown key; did you mean 'network'\? allowed: network, inputs, sweep, "
               r"grid, probes, data, train, output$"),
    ("sweep.seed", r"sweep\.seed: unknown key; did you mean 'seeds'\?"),
    ("probes.gradient", r"probes\.gradient: unknown key; did you mean 'gradients'\?"),
    ("output.chunks", r"output\.chunks: unknown key; did you mean 'chunk'\?"),
    ("inputs.zzz", r"inputs\.zzz: unknown key; allowed: batch, kind, correlation, q0$"),
    ("grid.bias_var", r"grid\.bias_var: unknown key; did you mean 'bias_variance'\?"),
])
def test_unknown_key_names_closest_and_allowed(path, match):
    check_error(with_value(path, 1), match)


def test_unknown_key_in_grid_point():
    data = with_value("grid.points", [{"weight_variance": 1.0, "bias_varience": 0.1}])
    check_error(data, r"grid\.points\[0\]\.bias_varience: unknown key; did you mean 'bias_variance'\?")


def test_unknown_key_in_activation_table():
    data = with_value("network.activation", {"name": "leaky_relu", "slope": 0.2})
    check_error(data, r"network\.activation\.slope: unknown key; allowed: name, param")


@pytest.mark.parametrize("path, match", [
    ("network.depth", r"network\.depth: missing required key"),
    ("network.activation", r"network\.activation: missing required key"),
    ("sweep.initializers", r"sweep\.initializers: missing required key"),
])
def test_missing_required_key(path, match):
    data = base()
    section, key = path.split(".")
    del data[section][key]
    check_error(data, match)


def test_missing_section():
    data = base()
    del data["sweep"]
    check_error(data, r"c\.toml: sweep: missing required key")


# ----------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize("path, value, match", [
    ("network.depth", "50", r'network\.depth = "50": must be an integer >= 1; got a string'),
    ("network.depth", True, r"network\.depth = true: must be an integer >= 1; got a boolean"),
    ("network.width", 1.5, r"network\.width = 1\.5: must be an integer >= 1; got a float"),
    ("network.width", [8, "16"], r'network\.width\[1\] = "16": must be an integer >= 1; got a string'),
    ("network.activation", 3, r"network\.activation = 3: must be an activation name or a table"),
    ("network.dtype", 32, r"network\.dtype = 32: must be one of 'float32', .*; got an integer"),
    ("network.bias", 0.0, r"network\.bias = 0\.0: must be an initializer name or a table"),
    ("inputs.batch", "64", r'inputs\.batch = "64": must be an integer >= 1; got a string'),
    ("inputs.q0", "1", r'inputs\.q0 = "1": must be a number > 0; got a string'),
    ("inputs.q0", False, r"inputs\.q0 = false: must be a number > 0; got a boolean"),
    ("sweep.seeds", 4.0, r"sweep\.seeds = 4\.0: must be an integer >= 1; got a float"),
    ("sweep.base_seed", "0", r'sweep\.base_seed = "0": must be an integer >= 0; got a string'),
    ("sweep.initializers", "he_normal", r'sweep\.initializers = "he_normal": must be an array of initializer'),
    ("sweep.initializers", ["he_normal", 1], r"sweep\.initializers\[1\] = 1: must be an initializer name"),
    ("grid.weight_variance", ["a"], r'grid\.weight_variance\[0\] = "a": must be a number > 0; got a string'),
    ("grid.points", {"weight_variance": 1.0}, r"grid\.points = \{weight_variance = 1\.0\}: must be an array "
                                              r"of tables"),
    ("probes.forward", 1, r"probes\.forward = 1: must be true or false; got an integer"),
    ("probes.loss", 2, r"probes\.loss = 2: must be one of 'mse', 'xent'; got an integer"),
    ("output.dir", 3, r"output\.dir = 3: must be a string; got an integer"),
    ("output.chunk", "auto", r'output\.chunk = "auto": must be an integer >= 0; got a string'),
    ("output.memory_budget_mb", "1G", r'output\.memory_budget_mb = "1G": must be a number > 0'),
])
def test_wrong_type_is_rejected(path, value, match):
    check_error(with_value(path, value), match)


@pytest.mark.parametrize("section", ["network", "inputs", "sweep", "grid", "probes", "output"])
def test_section_must_be_a_table(section):
    data = base()
    data[section] = 5
    check_error(data, rf"c\.toml: {section} = 5: must be a table \(\[{section}\]\); got an integer")


def test_config_must_be_a_table():
    with pytest.raises(ConfigError, match=r"<dict>: a config must be a table of sections; got an array"):
        from_dict([1, 2])


# ----------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("path, value, match", [
    ("network.depth", 0, r"network\.depth = 0: must be >= 1$"),
    ("network.depth", [10, 0], r"network\.depth\[1\] = 0: must be >= 1$"),
    ("network.depth", [], r"network\.depth = \[\]: must be an integer >= 1 or a non-empty list"),
    ("network.depth", [10, 20, 10], r"network\.depth\[2\] = 10: duplicate of network\.depth\[0\]"),
    ("network.width", -8, r"network\.width = -8: must be >= 1$"),
    ("inputs.batch", 0, r"inputs\.batch = 0: must be >= 1$"),
    ("inputs.q0", 0, r"inputs\.q0 = 0: must be > 0$"),
    ("inputs.q0", float("inf"), r"inputs\.q0 = inf: must be finite$"),
    ("sweep.seeds", 0, r"sweep\.seeds = 0: must be >= 1$"),
    ("sweep.base_seed", -1, r"sweep\.base_seed = -1: must be >= 0$"),
    ("sweep.base_seed", 2**32, r"sweep\.base_seed = 4294967296: must be < 4294967296$"),
    ("sweep.initializers", [], r"sweep\.initializers = \[\]: must list at least one initializer"),
    ("output.chunk", -1, r"output\.chunk = -1: must be >= 0$"),
    ("output.memory_budget_mb", 0, r"output\.memory_budget_mb = 0: must be > 0$"),
    ("output.dir", " ", r'output\.dir = " ": must not be empty'),
    ("grid.weight_variance", [1.0, 0.0], r"grid\.weight_variance\[1\] = 0\.0: must be > 0$"),
    ("grid.weight_variance", -1, r"grid\.weight_variance = -1: must be > 0$"),
    ("grid.weight_variance", [1, 2, 1], r"grid\.weight_variance\[2\] = 1: duplicate of grid\.weight_variance\[0\]"),
])
def test_bad_value_is_rejected(path, value, match):
    check_error(with_value(path, value), match)


def test_message_shape_from_the_design_notes():
    err = check_error(with_value("grid.bias_variance", [0.0, 0.1, -0.1]),
                      r"^configs/phase\.toml: grid\.bias_variance\[2\] = -0\.1: must be >= 0$",
                      source="configs/phase.toml")
    assert (err.source, err.key, err.value, err.problem) == (
        "configs/phase.toml", "grid.bias_variance[2]", -0.1, "must be >= 0")


@pytest.mark.parametrize("path, value, match", [
    ("network.dtype", "float8", r"network\.dtype = \"float8\": must be one of 'float32', 'float64', "
                                r"'bfloat16', 'float16'"),
    ("network.dtype", "flaot32", r"did you mean 'float32'\?"),
    ("inputs.kind", "pair", r'inputs\.kind = "pair": must be one of .*; did you mean \'pairs\'\?'),
    ("probes.loss", "ce", r"probes\.loss = \"ce\": must be one of 'mse', 'xent'$"),
])
def test_choice_lists_allowed_values(path, value, match):
    check_error(with_value(path, value), match)


def test_float64_needs_x64():
    import jax

    if jax.config.read("jax_enable_x64"):
        pytest.skip("x64 is on in this process")
    check_error(with_value("network.dtype", "float64"),
                r'network\.dtype = "float64": needs 64-bit JAX: set JAX_ENABLE_X64=1')


# ----------------------------------------------------------------------------- names from registries


@pytest.mark.parametrize("spec, match", [
    ("he_nromal", r"sweep\.initializers\[2\] = \"he_nromal\": unknown initializer name 'he_nromal'\. "
                  r"Did you mean 'he_normal'\? Valid names: .*glorot_normal"),
    ({"name": "normal", "stdev": 0.1}, r"sweep\.initializers\[2\] = \{name = \"normal\", stdev = 0\.1\}: "
                                      r"initializer 'normal' takes no argument 'stdev'\. Did you mean 'stddev'\?"),
    ({"stddev": 0.1}, r"sweep\.initializers\[2\] = \{stddev = 0\.1\}: an initializer table needs a 'name' key"),
    ({"name": "normal", "stddev": -1.0}, r"sweep\.initializers\[2\] = .*: stddev must be"),
    ({"name": "normal", "label": 3}, r"sweep\.initializers\[2\]\.label = 3: must be a string"),
    ({"name": 3}, r"sweep\.initializers\[2\]\.name = 3: must be a string"),
])
def test_unknown_or_bad_initializer_names_its_index(spec, match):
    data = base()
    data["sweep"]["initializers"].append(spec)
    check_error(data, match)


def test_unknown_bias_initializer():
    check_error(with_value("network.bias", "zeroes"),
                r"network\.bias = \"zeroes\": unknown initializer name 'zeroes'\. Did you mean 'zeros'\?")


@pytest.mark.parametrize("value, match", [
    (["relu", "tahn"], r"network\.activation\[1\] = \"tahn\": unknown activation 'tahn'\. Did you mean 'tanh'\?"),
    ("rleu", r"network\.activation = \"rleu\": unknown activation 'rleu'\. Did you mean 'relu'\?"),
    ({"name": "relu", "param": 0.1}, r"network\.activation = .*: activation 'relu' takes no parameter"),
    ({"name": "leaky_relu", "param": "x"}, r'network\.activation\.param = "x": must be a number'),
    (["tanh", "tanh"], r"network\.activation\[1\] = \"tanh\": duplicate of network\.activation\[0\]"),
])
def test_bad_activation(value, match):
    check_error(with_value("network.activation", value), match)


def test_duplicate_initializer_labels():
    data = with_value("sweep.initializers", ["he_normal", "lecun_normal", "he_normal"])
    check_error(data, r"sweep\.initializers\[2\] = \"he_normal\": duplicate label 'he_normal' \(also "
                      r"sweep\.initializers\[0\]\); give one of them a distinct label")


def test_initializer_labels_and_specs():
    data = with_value("sweep.initializers", [
        "he_normal", {"name": "normal", "stddev": 0.01}, {"name": "constant", "value": 0.01, "label": "c"}])
    config = from_dict(data)
    assert config.sweep.labels == ("he_normal", "normal(stddev=0.01)", "c")
    assert config.sweep.initializers[0].init == jaxinit.get("he_normal")
    assert config.sweep.initializers[2].init == jaxinit.constant(0.01)
    assert config.to_dict()["sweep"]["initializers"] == data["sweep"]["initializers"]


# ----------------------------------------------------------------------------- inputs and probes


def test_pairs_need_a_correlation_in_range():
    check_error(with_value("inputs.kind", "pairs"),
                r'inputs\.correlation: missing: kind = "pairs" needs a correlation in \[-1, 1\]')
    data = with_value("inputs.kind", "pairs")
    data["inputs"]["correlation"] = 1.5
    check_error(data, r"inputs\.correlation = 1\.5: must be in \[-1, 1\]$")
    data["inputs"]["correlation"] = -1
    config = from_dict(data)
    assert config.inputs.correlation == -1.0
    assert config.inputs.n_inputs == 2 * config.inputs.batch


def test_correlation_only_with_pairs():
    check_error(with_value("inputs.correlation", 0.5),
                r'inputs\.correlation = 0\.5: only used with kind = "pairs" \(kind is "gaussian"\)')


def test_digits_batch_is_bounded_by_the_dataset():
    pytest.importorskip("sklearn")
    data = with_value("inputs.kind", "digits")
    data["inputs"]["batch"] = 5000
    check_error(data, r'inputs\.batch = 5000: must be <= 1797 with kind = "digits"')
    data["inputs"]["batch"] = 64
    assert from_dict(data).inputs.kind == "digits"


def test_probes_need_something_to_measure():
    data = base()
    data["probes"] = {"forward": False, "gradients": False, "theory": False}
    check_error(data, r"c\.toml: probes: nothing to measure")


def test_theory_needs_forward():
    data = base()
    data["probes"] = {"forward": False, "gradients": True}
    check_error(data, r"probes\.theory = true: needs probes\.forward = true")


def test_defaults():
    config = from_dict(base())
    assert config.network.bias.init == jaxinit.zeros and config.network.dtype == "float32"
    assert (config.inputs.batch, config.inputs.kind, config.inputs.q0) == (128, "gaussian", 1.0)
    assert config.sweep.base_seed == 0 and config.grid is None
    assert config.probes == cfg.ProbesConfig(True, True, False, False, True, "mse")
    assert config.output == cfg.OutputConfig("results/sweep", 0, None)
    assert config.grid_points() == ({},)


# ----------------------------------------------------------------------------- grids


@pytest.mark.parametrize("grid, match", [
    ({}, r"c\.toml: grid: a grid with no points"),
    ({"weight_variance": []}, r"grid\.weight_variance = \[\]: is an empty list: a grid with no points"),
    ({"bias_variance": []}, r"grid\.bias_variance = \[\]: is an empty list: a grid with no points"),
    ({"points": []}, r"grid\.points = \[\]: is an empty list: a grid with no points"),
    ({"points": [{}]}, r"grid\.points\[0\]: an empty point"),
    ({"points": [{"weight_variance": 1.0}], "bias_variance": [0.0]},
     r"grid\.bias_variance: give either lists \(a Cartesian product\) or \[\[grid\.points\]\], not both"),
    ({"points": [{"weight_variance": 1.0}, {"weight_variance": 2.0, "bias_variance": 0.1}]},
     r"grid\.points\[1\]: has keys \['bias_variance', 'weight_variance'\] but grid\.points\[0\] has "
     r"\['weight_variance'\]"),
    ({"points": [{"weight_variance": [1.0, 2.0]}]},
     r"grid\.points\[0\]\.weight_variance = \[1\.0, 2\.0\]: must be a number"),
    ({"points": [{"weight_variance": -1.0}]}, r"grid\.points\[0\]\.weight_variance = -1\.0: must be > 0"),
    ({"points": [{"bias_variance": 0.1}, {"bias_variance": 0.1}]},
     r"grid\.points\[1\]: duplicate of grid\.points\[0\]"),
])
def test_bad_grid(grid, match):
    check_error(with_value("grid", grid), match)


def test_grid_points_cartesian_product_weight_variance_outermost():
    grid = {"bias_variance": [0.0, 0.1, 0.2], "weight_variance": [1, 2]}
    points = grid_points(grid)
    assert len(points) == 6
    assert [(p["weight_variance"], p["bias_variance"]) for p in points] == [
        (1.0, 0.0), (1.0, 0.1), (1.0, 0.2), (2.0, 0.0), (2.0, 0.1), (2.0, 0.2)]
    assert all(isinstance(v, float) for p in points for v in p.values())
    config = from_dict(with_value("grid", grid))
    assert config.grid == GridConfig(weight_variance=(1.0, 2.0), bias_variance=(0.0, 0.1, 0.2))
    assert config.grid_points() == points == grid_points(config.grid)
    assert config.grid.params == ("weight_variance", "bias_variance")


def test_grid_points_single_parameter_and_scalar_shorthand():
    config = from_dict(with_value("grid", {"bias_variance": 0.05}))
    assert config.grid_points() == ({"bias_variance": 0.05},)
    assert config.grid.params == ("bias_variance",)


def test_grid_points_explicit_points_in_order():
    pts = [{"weight_variance": 2.0, "bias_variance": 0.0}, {"weight_variance": 1.0, "bias_variance": 0.05}]
    config = from_dict(with_value("grid", {"points": pts}))
    assert config.grid_points() == tuple(pts) == grid_points({"points": pts})
    assert config.grid.params == ("weight_variance", "bias_variance")
    assert config.to_dict()["grid"] == {"points": pts}
    assert "[[grid.points]]" in config.to_toml()


def test_grid_points_without_grid_is_one_empty_point():
    assert grid_points(None) == ({},)


def test_grid_points_rejects_other_types():
    with pytest.raises(TypeError, match=r"grid must be a GridConfig, a mapping or None; got 3"):
        grid_points(3)


def test_grid_points_from_toml_file(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(from_dict(base()).to_toml() + "\n[[grid.points]]\nweight_variance = 1.5\n"
                    "[[grid.points]]\nweight_variance = 2.5\n")
    assert load(path).grid_points() == ({"weight_variance": 1.5}, {"weight_variance": 2.5})


# ----------------------------------------------------------------------------- overrides


def test_overrides_apply_before_validation(tmp_path):
    path = tmp_path / "o.toml"
    path.write_text(from_dict(base()).to_toml())
    config = load(path, overrides={"seeds": 7, "chunk": 3, "out": str(tmp_path / "x"), "base_seed": None,
                                   "network.depth": [2, 3], "probes.jacobian": True})
    assert (config.sweep.seeds, config.output.chunk, config.output.dir) == (7, 3, str(tmp_path / "x"))
    assert config.network.depth == (2, 3) and config.probes.jacobian
    assert config.text == path.read_text()     # the file as given, not the overridden one


def test_bad_override_value_says_it_came_from_an_override():
    with pytest.raises(ConfigError, match=r"<dict>: sweep\.seeds = 0: must be >= 1 \(set by an override\)$"):
        from_dict(base(), overrides={"seeds": 0})


def test_override_with_unknown_key_is_caught():
    with pytest.raises(ConfigError, match=r"network\.dept: unknown key; did you mean 'depth'\?"):
        from_dict(base(), overrides={"network.dept": 3})


@pytest.mark.parametrize("key, match", [
    ("depth", r"depth: an override needs a dotted key path such as 'sweep\.seeds'"),
    ("network..depth", r"an override needs a dotted key path"),
])
def test_override_needs_a_dotted_path(key, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(base(), overrides={key: 3})


def test_override_cannot_descend_into_a_value():
    with pytest.raises(ConfigError, match=r"network\.depth = 4: cannot override inside an integer"):
        from_dict(base(), overrides={"network.depth.x": 3})


def test_overrides_do_not_mutate_input():
    data = base()
    before = copy.deepcopy(data)
    from_dict(data, overrides={"seeds": 9, "grid.bias_variance": [0.1]})
    assert data == before


def test_parse_override():
    assert parse_override("sweep.seeds=4") == ("sweep.seeds", 4)
    assert parse_override("network.activation = ['relu', 'tanh']") == ("network.activation", ["relu", "tanh"])
    assert parse_override("output.dir=results/x") == ("output.dir", "results/x")
    assert parse_override("probes.spectrum=true") == ("probes.spectrum", True)
    with pytest.raises(ConfigError, match=r"^override: must read KEY=VALUE .*; got 'seeds'"):
        parse_override("seeds")


# ----------------------------------------------------------------------------- the frozen result


def test_config_is_frozen_and_hashable():
    config = from_dict(base())
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.network = None
    assert hash(config) == hash(from_dict(base()))
    assert config == from_dict(base(), source="<other>")   # the source is not part of equality


def test_programs_are_the_product_of_depth_width_activation():
    data = base()
    data["network"].update(depth=[3, 5], width=[8, 16], activation=["relu", {"name": "leaky_relu", "param": 0.2}])
    programs = from_dict(data).programs()
    assert len(programs) == 8
    assert [p.index for p in programs] == list(range(8))
    assert programs[0].id == "depth3-width8-relu"
    assert programs[1].id == "depth3-width8-leaky_relu_0.2"
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", p.id) for p in programs)
    assert programs[-1].describe() == {"id": "depth5-width16-leaky_relu_0.2", "depth": 5, "width": 16,
                                       "activation": "leaky_relu(0.2)"}


def test_to_dict_round_trips_and_is_plain_data():
    data = with_value("grid", {"weight_variance": [1.0, 2.0], "bias_variance": [0.0]})
    data["network"]["activation"] = ["tanh", {"name": "leaky_relu", "param": 0.3}]
    data["inputs"] = {"kind": "pairs", "correlation": 0.5, "batch": 4}
    data["output"] = {"memory_budget_mb": 512}
    config = from_dict(data, source="x.toml")
    plain = config.to_dict()
    assert plain["network"]["activation"] == ["tanh", {"name": "leaky_relu", "param": 0.3}]
    assert plain["inputs"]["correlation"] == 0.5 and plain["output"]["memory_budget_mb"] == 512
    assert from_dict(plain) == config
    import json
    assert json.loads(json.dumps(plain)) == plain


def test_config_hash_tracks_what_changes_results():
    h = from_dict(base()).config_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert from_dict(base(), overrides={"chunk": 4, "out": "elsewhere"}).config_hash() == h
    assert from_dict(base(), overrides={"output.memory_budget_mb": 100}).config_hash() == h
    for change in ({"seeds": 3}, {"base_seed": 1}, {"network.depth": 5}, {"grid.bias_variance": [0.1]},
                   {"probes.jacobian": True}, {"inputs.batch": 3}):
        assert from_dict(base(), overrides=change).config_hash() != h, change
    relabeled = with_value("sweep.initializers", ["he_normal", {"name": "normal", "stddev": 0.01, "label": "n"}])
    assert from_dict(relabeled).config_hash() != h


def test_config_error_is_a_value_error_and_pickles():
    err = ConfigError("a.toml", "network.depth", "must be >= 1", 0)
    assert isinstance(err, ValueError)
    assert str(err) == "a.toml: network.depth = 0: must be >= 1"
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.key == "network.depth"
    assert str(ConfigError("a.toml", "", "malformed TOML: x")) == "a.toml: malformed TOML: x"


def test_long_values_are_cut_in_messages():
    value = ["x" * 10] * 20
    err = check_error(with_value("network.depth", value), r"network\.depth\[0\] = \"x+\"")
    assert len(str(err)) < 200
    assert cfg.format_value(value).endswith("...")


# ----------------------------------------------------------------------------- what the initializers are asked to draw


@pytest.mark.parametrize("path, value, match", [
    ("network.bias", "he_normal",
     r'network.bias = "he_normal": cannot draw the bias vector of shape \(8,\) for the layers before the readout: '
     r"fan-based initializers need a weight shape with at least 2 dims"),
    ("network.bias", "torch_linear_bias",
     r"network.bias = \"torch_linear_bias\": initializer 'torch_linear_bias' needs the argument fan_in: write it "
     r'as a table \{name = "torch_linear_bias", fan_in = \.\.\.\}$'),
    ("sweep.initializers", ["he_normal", {"name": "fan_in_uniform"}],
     r"sweep.initializers\[1\] = \{name = \"fan_in_uniform\"\}: initializer 'fan_in_uniform' needs the argument "
     r"fan_in"),
])
def test_initializers_are_checked_on_the_shapes_they_will_draw(path, value, match):
    error = check_error(with_value(path, value), match)
    assert "fan_in_uniform" not in str(error) or "fan_in_uniform" in str(value)  # never an alias not written


def _dirac_refuses(key, shape) -> str | None:
    try:
        jaxinit.get("dirac")(key, shape)
    except ValueError as err:
        return str(err)
    return None


@pytest.mark.parametrize("inputs, shape, where", [
    ({}, (16, 10), "the readout layer"),                             # (width, 10 outputs)
    ({"kind": "digits", "batch": 8}, (64, 16), "the first layer"),   # (64 digit features, width)
])
def test_a_kernel_that_cannot_draw_a_layer_is_refused_at_validation(key, inputs, shape, where):
    # dirac copies inputs to outputs and refuses a narrowing kernel (unless the catalog fills them).
    data = with_value("sweep.initializers", ["he_normal", "dirac"])
    data["network"]["width"] = 16
    data["inputs"] = inputs
    refusal = _dirac_refuses(key, shape)
    if refusal is None:  # a catalog whose dirac fills narrowing kernels: the config is valid
        assert from_dict(data).sweep.initializers[1].init == jaxinit.get("dirac")
        return
    error = check_error(data, rf'sweep.initializers\[1\] = "dirac": cannot draw the weight matrix of shape '
                              rf"{re.escape(str(shape))} for {where}")
    assert refusal in str(error)


def test_initializer_tables_with_their_arguments_pass():
    data = with_value("network.bias", {"name": "torch_linear_bias", "fan_in": 8})
    assert from_dict(data).network.bias.init == jaxinit.get({"name": "torch_linear_bias", "fan_in": 8})


def test_reading_a_finished_folders_config_does_not_trace_initializers(monkeypatch):
    calls = []
    monkeypatch.setattr(config_validate, "_draw_problem", lambda *a: calls.append(a))
    from_dict(base(), check_process=False)
    assert calls == []
    from_dict(base())
    assert {a[1] for a in calls} == {(8, 8), (8, 10), (8,), (10,)}


# -- the schema once (issue 12): one key table; the reader, the documented text and the dataclasses agree --
def _accepted_keys(section: str) -> set[str]:
    """The keys the reader accepts in ``[section]``, read from its own unknown-key error (not from the table)."""
    data = base() if section else {}
    if section in ("data", "train"):  # sections of a training run
        data["train"] = {}
    if section:
        data.setdefault(section, {})["zzz_not_a_key"] = 1
    else:
        data["zzz_not_a_key"] = 1
    with pytest.raises(ConfigError) as info:
        from_dict(data, source="c.toml")
    return set(re.search(r"allowed: (.*?)(?: \(set by an override\))?$", str(info.value)).group(1).split(", "))


def _documented_keys() -> dict[str, set[str]]:
    """Section -> keys named in SCHEMA_TEXT or TRAIN_SCHEMA_TEXT, commented-out ones included
    (``# key = ``, ``# [[grid.points]]``)."""
    out: dict[str, set[str]] = {}
    section = None
    for line in (cfg.SCHEMA_TEXT + cfg.keys.TRAIN_SCHEMA_TEXT).splitlines():
        if m := re.match(r"^\[(\w+)\]", line):
            section = m.group(1)
            out.setdefault(section, set())
        elif m := re.match(r"^(?:# )?(\w+) = ", line):
            out[section].add(m.group(1))
        elif m := re.match(r"^# \[\[(\w+)\.(\w+)\]\]", line):
            out[m.group(1)].add(m.group(2))
    return out


def test_every_key_the_reader_accepts_is_documented_and_vice_versa():
    documented = _documented_keys()
    assert _accepted_keys("") == set(documented)
    for section, keys in documented.items():
        assert _accepted_keys(section) == keys, section
    assert {k.section for k in cfg.KEYS} == set(documented)


@pytest.mark.parametrize("kind", ["sweep", "train"])
def test_the_documented_schema_is_itself_a_valid_config(kind):
    import tomllib

    text = cfg.SCHEMA_TEXT if kind == "sweep" else cfg.keys.TRAIN_SCHEMA_TEXT
    config = from_dict(tomllib.loads(text), source="schema.toml")
    assert config.kind == kind
    checked = 0
    for key in cfg.KEYS:
        if key.commented or key.kind not in (kind, "both"):
            continue
        value = config.to_dict()[key.section][key.name]
        assert value == key.example, key.path
        checked += 1
    assert checked >= 15


def test_the_dataclass_defaults_are_the_key_tables():
    """A key left out of a file gets the table's default, and the frozen section states the same default."""
    sections = {"inputs": cfg.InputsConfig, "probes": cfg.ProbesConfig, "output": cfg.OutputConfig,
                "network": cfg.NetworkConfig, "sweep": cfg.SweepSection, "data": cfg.DataConfig,
                "train": cfg.TrainConfig}
    resolved = {"sweep": from_dict(base(), source="c.toml").to_dict(),
                "train": from_dict({**base(), "train": {}}, source="c.toml").to_dict()}
    # Fields holding what the reader resolves, not the key as written: the optimizer as (name, args);
    # a teacher's widths (the dataclass's None: derived from the data of any kind).
    resolved_fields = {"train.optimizer", "data.in_dim", "data.out_dim"}
    checked = 0
    for key in cfg.KEYS:
        if key.default in (cfg.keys.REQUIRED, cfg.keys.OPTIONAL):
            continue
        field = {f.name: f for f in dataclasses.fields(sections[key.section])}.get(key.name)
        if field is not None and field.default is not dataclasses.MISSING and key.path not in resolved_fields:
            assert field.default == key.default, key.path
        written = resolved["train" if key.kind == "train" else "sweep"][key.section]
        if key.path not in ("sweep.seeds",) and key.name in written:  # base() sets seeds; digits write no teacher keys
            assert written[key.name] == key.default, key.path
            checked += 1
    assert checked >= 18


def test_each_choice_key_lists_its_choices_in_the_schema_and_refuses_others():
    for key in (k for k in cfg.KEYS if k.choices):
        text = cfg.keys.TRAIN_SCHEMA_TEXT if key.kind == "train" else cfg.SCHEMA_TEXT
        line = next(s for s in text.splitlines() if re.match(rf"(# )?{key.name} = ", s))
        assert " | ".join(key.choices) in line
        data = with_value(key.path, "nope")
        if key.kind == "train":
            data.setdefault("train", {})
            if key.path == "data.task":  # a task is chosen for the teacher's (and an npz's) data
                data["data"]["name"] = "teacher"
        check_error(data, rf"{re.escape(key.path)} = \"nope\": must be one of "
                    + re.escape(", ".join(map(repr, key.choices))))


def test_cross_entropy_is_an_alias_of_xent():
    assert from_dict(with_value("probes.loss", "cross_entropy")).probes.loss == "xent"
    assert from_dict(with_value("probes.loss", "xent")).probes.loss == "xent"


# -- writing a config back, overrides, shipped configs --------------------------------------------------
def test_to_toml_writes_a_dict_or_a_config_that_loads_back_equal(tmp_path):
    data = with_value("grid.points", [{"weight_variance": 1.5, "bias_variance": 0.1}])
    data["output"] = {"dir": "out"}
    text = cfg.to_toml(data, comment="generated by a test\nsecond line")
    assert text.startswith("# generated by a test\n# second line\n[network]\n")
    (tmp_path / "c.toml").write_text(text)
    again = load(tmp_path / "c.toml")
    assert again == from_dict(data, source=str(tmp_path / "c.toml"))
    assert cfg.to_toml(again) == again.to_toml()


def test_to_toml_refuses_an_invalid_dict():
    with pytest.raises(ConfigError, match=r"bench: network\.dept: unknown key; did you mean 'depth'\?"):
        cfg.to_toml(with_value("network.dept", 3), source="bench")


def test_overrides_are_validated_like_the_file_with_path_and_did_you_mean():
    path = CONFIGS[[p.stem for p in CONFIGS].index("quickstart")]
    cases = [
        ({"network.dept": 4}, r"network\.dept: unknown key; did you mean 'depth'\? .*\(set by an override\)$"),
        ({"netwrk.depth": 4}, r"netwrk: unknown key; did you mean 'network'\?"),
        ({"network.depth": 0}, r"network\.depth = 0: must be >= 1 \(set by an override\)$"),
        ({"network.width": "wide"}, r"network\.width = \"wide\": must be an integer >= 1; got a string"),
        ({"probes.loss": "xnet"}, r"probes\.loss = \"xnet\": must be one of 'mse', 'xent'; did you mean 'xent'\?"),
        ({"sweep.seeds.x": 1}, r"sweep\.seeds = 16: cannot override inside an integer"),
    ]
    for overrides, match in cases:
        with pytest.raises(ConfigError, match=match):
            load(path, overrides)
    config = load(path, dict([parse_override("network.depth=[3, 5]"), parse_override("seeds=2")]))
    assert config.network.depth == (3, 5) and config.sweep.seeds == 2


def test_a_shipped_config_loads_by_name_and_equals_its_file():
    assert set(cfg.shipped_names()) == SHIPPED == {p.stem for p in CONFIGS}
    for name in ("quickstart", "quickstart.toml"):
        assert load(name) == load(CONFIGS[[p.stem for p in CONFIGS].index("quickstart")])
    assert set(cfg.shipped_configs()) == SHIPPED
    assert all(summary and not summary.startswith("#") for summary in cfg.shipped_configs().values())


def test_an_unknown_name_lists_the_shipped_configs_with_did_you_mean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^quickstrat: no config file of that name here, and no shipped config of "
                       r"that name; did you mean 'quickstart'\? shipped configs: deep_1000, isometry, phase_tanh, "
                       r"quickstart, seeds_comparison, train_digits$"):
        load("quickstrat")
    (tmp_path / "quickstart.toml").write_text('[network]\ndepth = 2\nwidth = 4\nactivation = "relu"\n'
                                              '[sweep]\ninitializers = ["he_normal"]\n')
    assert load("quickstart.toml").network.depth == (2,)  # a file here wins over the shipped name


def test_copy_config_copies_and_never_overwrites(tmp_path):
    target = cfg.copy_config("phase_tanh", tmp_path / "mine")
    assert target == tmp_path / "mine" / "phase_tanh.toml"
    assert target.read_text() == cfg.shipped_path("phase_tanh").read_text()
    with pytest.raises(ConfigError, match=r"phase_tanh\.toml: already exists; remove it first"):
        cfg.copy_config("phase_tanh", tmp_path / "mine")
    with pytest.raises(ConfigError, match=r"did you mean 'isometry'"):
        cfg.copy_config("isometri", tmp_path)
