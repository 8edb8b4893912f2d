"""The registry: names, specs, round trips and did-you-mean errors."""

from __future__ import annotations

import pytest

import jaxinit

from catalog_cases import CASES

# The registered factories that need arguments, with arguments to build them: every name is built
# and checked, none skipped. A factory that starts or stops needing arguments fails the first test.
REQUIRED_ARGS = {
    "Constant": {"value": 0.5}, "constant": {"value": 0.5}, "constant_": {"val": 0.5},
    "depth_scaled": {"base": "he_normal", "depth": 8}, "equinox_linear_bias": {"fan_in": 16},
    "fan_in_uniform": {"fan_in": 16}, "from_array": {"array": [[1.0, 2.0], [3.0, 4.0]]},
    "low_rank": {"rank": 2, "base": "he_normal"}, "scaled": {"base": "he_normal", "factor": 0.5},
    "sparse": {"sparsity": 0.5}, "torch_conv_bias": {"fan_in": 16}, "torch_conv_transpose_bias": {"fan_in": 16},
    "torch_linear_bias": {"fan_in": 16},
}


def _build(name):
    return jaxinit.get({"name": name, **REQUIRED_ARGS.get(name, {})})


@pytest.mark.parametrize("name", jaxinit.names())
def test_every_registered_name_builds_and_round_trips(name):
    if name in REQUIRED_ARGS:
        for arg in REQUIRED_ARGS[name]:  # without its arguments: an error naming each
            with pytest.raises(TypeError, match=rf"missing \d+ required positional argument.*'{arg}'"):
                jaxinit.get(name)
    init = _build(name)
    assert jaxinit.get(init.to_dict()) == init
    assert jaxinit.get(init) is init


# The table's entries fill any shape they are given; from_array holds one array of a fixed shape.
NOT_IN_TABLE = {"from_array": "tests/test_constant.py::test_from_array_returns_the_array_and_checks_shape_and_dtype"}


def test_catalog_table_covers_every_family():
    covered = {type(jaxinit.get(spec)) for spec, _, _ in CASES}
    missing = {name for name in jaxinit.names() if type(_build(name)) not in covered}
    assert missing == set(NOT_IN_TABLE), f"no line in tests/catalog_cases.py: {sorted(missing - set(NOT_IN_TABLE))}"


def test_get_accepts_names_dicts_and_instances():
    init = jaxinit.get({"name": "normal", "stddev": 0.5})
    assert init == jaxinit.normal(0.5)
    assert jaxinit.get(init) is init
    assert jaxinit.get("xavier_uniform") == jaxinit.glorot_uniform()


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ("he_nromal", ValueError, r"unknown initializer name 'he_nromal'. Did you mean 'he_normal'\? Valid names: .*glorot_normal"),
        ("qwertyuiop", ValueError, r"unknown initializer name 'qwertyuiop'. Valid names:"),
        ({"stddev": 1.0}, ValueError, r"an initializer table needs a 'name' key"),
        ({"name": "normal", "stdev": 1.0}, ValueError, r"initializer 'normal' takes no argument 'stdev'. Did you mean 'stddev'\?"),
        (3, TypeError, r"an initializer spec must be a name, a dict with a 'name' key, or an initializer; got 3"),
    ],
)
def test_bad_specs(spec, error, match):
    with pytest.raises(error, match=match):
        jaxinit.get(spec)


def test_names_are_sorted_and_include_aliases():
    names = jaxinit.names()
    assert names == sorted(names)
    assert {"xavier_normal", "kaiming_uniform", "he_normal", "zeros"} <= set(names)


def test_register_refuses_to_overwrite():
    with pytest.raises(ValueError, match=r"initializer name 'he_normal' is already registered"):
        jaxinit.register("he_normal", jaxinit.lecun_normal)
