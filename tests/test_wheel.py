"""A wheel is a complete product (issue 12): built, installed (not editable) in a fresh virtual environment,
it runs the README's quickstart by name from an empty folder, and lists its shipped configs.

The new environment sees the dev environment's dependencies through a ``.pth`` file (nothing is
downloaded) but not the source tree: it imports jaxinit from the installed wheel alone.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from jaxinit.lab import config as jconfig

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 240  # build ~10 s, shrunk quickstart ~15 s on 2 loaded cores


def _run(cmd, cwd, env, timeout=TIMEOUT_S):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_the_installed_wheel_runs_the_quickstart_by_name_from_an_empty_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(wheels),
          str(ROOT)], cwd=tmp_path, env=env)
    (wheel,) = wheels.glob("jaxinit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = {Path(n).stem for n in zf.namelist() if n.startswith("jaxinit/configs/") and n.endswith(".toml")}
    assert shipped == set(jconfig.shipped_names())

    # A fresh venv that sees the dev venv's packages (a .pth line), and jaxinit from the wheel only.
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=tmp_path, env=env).stdout.strip())
    dev_site = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "dev-deps.pth").write_text("\n".join(dev_site) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--quiet",
          str(wheel)], cwd=tmp_path, env=env)
    # The dev venv's editable jaxinit (a finder or path hook in its site-packages) must not leak in:
    # the wheel's copy is the one imported.
    where = _run([str(python), "-c", "import jaxinit; print(jaxinit.__file__)"], cwd=tmp_path, env=env).stdout
    assert Path(where.strip()).is_relative_to(target), where

    empty = tmp_path / "empty"
    empty.mkdir()
    jaxinit_cmd = str(target / "bin" / "jaxinit")
    listed = _run([jaxinit_cmd, "configs"], cwd=empty, env=env).stdout
    assert all(f"  {name}" in listed for name in shipped)
    out = _run([jaxinit_cmd, "sweep", "quickstart", "--seeds", "2", "--set", "network.depth=4", "--set",
                "network.width=16", "--set", "inputs.batch=8", "--quiet"], cwd=empty, env=env).stdout
    folder = empty / "results" / "quickstart"
    assert f"results: {Path('results') / 'quickstart'}" in out or str(folder) in out
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["status"] == "complete", meta["status"]
    import numpy as np

    with np.load(folder / "arrays.npz") as arrays:
        q = arrays["q"]
    assert q.shape[-1] == 4 and np.isfinite(q).any()  # 4 layers as set
    assert len(list((folder / "figures").glob("*.png"))) > 0
    assert sorted(p.name for p in empty.iterdir()) == ["results"]
