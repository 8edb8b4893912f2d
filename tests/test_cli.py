"""The command line: exit statuses and one-line errors (the CLI is the only module that prints)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jaxinit import cli


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_list_prints_the_catalog(capsys):
    status, out, _ = run(capsys, "list")
    assert status == 0 and "he_normal" in out and "orthogonal" in out


def test_check_reports_expected_and_measured(capsys):
    status, out, _ = run(capsys, "check", "he_normal", "--shape", "256,128")
    assert status == 0 and "expected" in out and "verdict: OK" in out


def test_check_with_a_json_spec(capsys):
    status, out, _ = run(capsys, "check", '{"name": "normal", "stddev": 0.1}', "--shape", "300,200")
    assert status == 0 and "0.1" in out


def test_unknown_initializer_is_one_line_and_status_2(capsys):
    status, _, err = run(capsys, "check", "he_nromal", "--shape", "4,4")
    assert status == 2
    assert err.count("\n") == 1 and "Did you mean 'he_normal'" in err


def test_theory_prints_the_edge_of_chaos(capsys):
    status, out, _ = run(capsys, "theory", "tanh", "--bias-variance", "0.05")
    assert status == 0 and "critical sigma_w^2" in out and "1.76" in out


def test_bad_config_is_one_line_and_status_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[network]\ndept = 5\nwidth = 8\nactivation = "relu"\n[sweep]\ninitializers = ["he_normal"]\n')
    status, _, err = run(capsys, "sweep", str(bad), "--out", str(tmp_path / "out"))
    assert status == 2
    assert err.startswith("jaxinit: ") and err.count("\n") == 1
    assert "network.dept" in err and "did you mean 'depth'" in err


def test_malformed_toml_is_one_line_and_status_2(tmp_path, capsys):
    bad = tmp_path / "broken.toml"
    bad.write_text("[network\ndepth = 5\n")
    status, _, err = run(capsys, "sweep", str(bad))
    assert status == 2 and err.count("\n") == 1 and "broken.toml" in err


def test_output_folder_that_is_a_file_is_refused(tmp_path, capsys):
    config = tmp_path / "ok.toml"
    config.write_text('[network]\ndepth = 2\nwidth = 4\nactivation = "relu"\n[sweep]\nseeds = 1\n'
                      'initializers = ["he_normal"]\n[inputs]\nbatch = 2\n')
    target = tmp_path / "file"
    target.write_text("not a folder")
    status, _, err = run(capsys, "sweep", str(config), "--out", str(target))
    assert status == 2 and "file" in err
    # The library says what to do in its terms (output.dir); the CLI names the flag that does it.
    assert "output folder (output.dir)" in err and err.rstrip().endswith("[jaxinit sweep: --out DIR]")


@pytest.mark.parametrize("argv", [["--help"], ["sweep", "--help"], ["bench", "--help"], ["check", "--help"]])
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    assert "usage: jaxinit" in capsys.readouterr().out


@pytest.mark.parametrize("argv, status, stream, text", [
    (["theory", "relu"], 0, "stdout", "critical sigma_w^2"),
    (["check", "he_nromal", "--shape", "4,4"], 2, "stderr", "Did you mean 'he_normal'"),
])
def test_the_console_entry_flushes_its_output_and_keeps_the_status(argv, status, stream, text):
    # cli.run ends with os._exit: piped (block-buffered) output must still arrive whole.
    code = f"import sys; sys.argv = ['jaxinit'] + {argv!r}; from jaxinit import cli; cli.run()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == status
    assert text in getattr(proc, stream) and getattr(proc, stream).endswith("\n")


def test_a_closed_pipe_ends_quietly_with_the_sigpipe_status():
    # `jaxinit list | head -1`: the reader has gone before the first line is written.
    import os
    import signal

    read_end, write_end = os.pipe()
    os.close(read_end)
    code = "import sys; sys.argv = ['jaxinit', 'list']; from jaxinit import cli; cli.run()"
    try:
        proc = subprocess.run([sys.executable, "-c", code], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == cli.EXIT_BROKEN_PIPE == 128 + signal.SIGPIPE


def test_help_describes_the_tool_not_the_module(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "only module" not in out and "``" not in out
    assert "initializers" in out and "jaxinit sweep quickstart" in out


def test_an_initializer_that_cannot_draw_its_shape_is_a_config_error(tmp_path, capsys):
    config = tmp_path / "bias.toml"
    config.write_text('[network]\ndepth = 2\nwidth = 4\nactivation = "relu"\nbias = "he_normal"\n[sweep]\nseeds = 1\n'
                      'initializers = ["he_normal"]\n[inputs]\nbatch = 2\n')
    status, _, err = run(capsys, "sweep", str(config), "--out", str(tmp_path / "out"), "--quiet")
    assert status == 2 and err.count("\n") == 1
    assert 'network.bias = "he_normal": cannot draw the bias vector of shape (4,)' in err
    assert not (tmp_path / "out").exists()


def test_plot_on_an_unfinished_folder_draws_what_exists_and_says_what_is_missing(tmp_path, capsys):
    from jaxinit.lab import config as jconfig
    from jaxinit.lab import run as lab_run

    out = tmp_path / "run"
    data = {"network": {"depth": [2, 3], "width": 4, "activation": "tanh"}, "inputs": {"batch": 2},
            "sweep": {"seeds": 2, "initializers": ["lecun_normal"]}, "output": {"dir": str(out)}}
    assert lab_run.run(jconfig.from_dict(data), progress=False, stop_after_chunks=1) is None
    assert not (out / "arrays.npz").exists()
    status, stdout, err = run(capsys, "plot", str(out))
    assert status == 0
    assert f"jaxinit: {out} is unfinished; assembling the chunks written so far" in err
    assert "jaxinit: note: partial results: the figures show the seeds present; missing depth3-width4-tanh: no " \
           "seeds yet" in err
    assert "Traceback" not in err
    assert str(out / "figures" / "q_vs_depth.png") in stdout.split("\n")


# -- shipped configs by name, --set, `jaxinit configs` (issue 12) -------------------------------------------
def test_sweep_runs_a_shipped_config_by_name_with_set_overrides(tmp_path, capsys, monkeypatch):
    from jaxinit.lab import config as jconfig
    from jaxinit.lab.store import load

    monkeypatch.chdir(tmp_path)  # nothing here: the name can only mean the shipped config
    status, out, err = run(capsys, "sweep", "quickstart", "--set", "network.depth=2", "--set", "network.width=8",
                           "--set", "inputs.batch=4", "--set", "network.width=6", "--set", "sweep.seeds=5",
                           "--seeds", "1", "--no-plots", "--quiet")
    assert status == 0, err
    assert "results/quickstart" in out
    config = load(tmp_path / "results" / "quickstart").config
    # a later --set wins over an earlier one; a named flag (--seeds) wins over --set
    assert (config.network.depth, config.network.width, config.inputs.batch, config.sweep.seeds) == ((2,), (6,), 4, 1)
    shipped = jconfig.load("quickstart")
    assert config.network.activation == shipped.network.activation
    assert config.sweep.labels == shipped.sweep.labels


def test_set_errors_are_one_line_with_the_path_and_did_you_mean(capsys):
    status, _, err = run(capsys, "sweep", "quickstart", "--set", "network.dept=3")
    assert status == 2 and err.count("\n") == 1
    assert "network.dept: unknown key; did you mean 'depth'?" in err and "(set by an override)" in err
    with pytest.raises(SystemExit) as info:
        cli.main(["sweep", "quickstart", "--set", "depth"])
    assert info.value.code == 2
    assert "argument --set: override: must read KEY=VALUE" in capsys.readouterr().err


def test_an_unknown_config_name_lists_the_shipped_ones(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, "sweep", "isometri")
    assert status == 2 and err.count("\n") == 1
    assert "did you mean 'isometry'? shipped configs: deep_1000, isometry, phase_tanh, quickstart" in err


def test_configs_lists_the_shipped_configs_and_copies_one(tmp_path, capsys):
    from jaxinit.lab import config as jconfig

    status, out, _ = run(capsys, "configs")
    assert status == 0
    for name, summary in jconfig.shipped_configs().items():
        assert f"  {name}" in out and summary in out
    status, out, _ = run(capsys, "configs", "--copy", "quickstart", str(tmp_path))
    assert status == 0 and out.strip() == str(tmp_path / "quickstart.toml")
    assert (tmp_path / "quickstart.toml").read_text() == jconfig.shipped_path("quickstart").read_text()
    status, _, err = run(capsys, "configs", "--copy", "quickstart", str(tmp_path))
    assert status == 2 and "already exists" in err and err.count("\n") == 1
