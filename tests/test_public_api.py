"""The public surface: __all__ resolves, and the README's catalog table matches the registry."""

from __future__ import annotations

import re
from pathlib import Path

import jaxinit
from jaxinit import nets

from conftest import run_python

README = Path(__file__).resolve().parents[1] / "README.md"


def _table_names() -> set[str]:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- catalog-table", 1)[1].split("<!-- end catalog-table -->", 1)[0]
    names = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= {re.match(r"[A-Za-z_0-9]+", n).group(0) for n in re.findall(r"`([^`]+)`", first_cell)}
    return names


def test_every_name_in_all_resolves():
    for name in jaxinit.__all__:
        assert hasattr(jaxinit, name), name


def test_every_name_in_nets_all_resolves():
    for name in nets.__all__:
        assert hasattr(nets, name), name


def test_the_library_and_the_sweep_do_not_import_flax_until_a_flax_face_is_used():
    out = run_python("""
    import sys
    import jaxinit, jaxinit.cli, jaxinit.lab.run
    print("flax" in sys.modules)
    model = jaxinit.MLP(4, depth=2)
    print("flax" in sys.modules, type(model).__module__, jaxinit.nets.NnxMLP.__name__)
    """)
    assert out.split() == ["False", "True", "jaxinit.nets.linen", "NnxMLP"]


def test_readme_catalog_table_matches_the_registry():
    table = _table_names()
    registered = set(jaxinit.names())
    assert table - registered == set(), "README lists names the registry does not know"
    # PyTorch's in-place names (trailing _) and Keras' class names are listed in prose below the table.
    own = {n for n in registered if not n.endswith("_") and not n[0].isupper()}
    assert own - table == set(), "registered names missing from the README's catalog table"


def test_readme_lists_the_other_libraries_names():
    text = README.read_text(encoding="utf-8")
    for name in jaxinit.names():
        if name.endswith("_") or name[0].isupper():
            assert f"`{name}`" in text, name
