"""The dflite command: help texts, clear errors, exit codes."""
import subprocess
import sys

import pytest
from dflite import cli


def run(*args):
    return subprocess.run([sys.executable, "-m", "dflite", *args], capture_output=True, text=True)


def test_help_for_every_subcommand():
    top = run("--help")
    assert top.returncode == 0 and "synth" in top.stdout and "reproduce" in top.stdout
    for sub in ("synth", "reproduce", "inspect"):
        res = run(sub, "--help")
        assert res.returncode == 0 and "usage: dflite " + sub in res.stdout


def test_version(capsys):
    from dflite import __version__

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"dflite {__version__}"


def test_synth_into_a_file_is_a_clear_error(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert cli.main(["synth", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_synth_into_a_foreign_folder_is_refused(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("x")
    assert cli.main(["synth", "--out", str(tmp_path), "--force"]) == 2
    assert "not made by `dflite synth`" in capsys.readouterr().err


def test_inspect_wrong_root(tmp_path, capsys):
    assert cli.main(["inspect", "--dataset", "ffpp", "--root", str(tmp_path)]) == 2
    assert "expected a FaceForensics++ root" in capsys.readouterr().err


def test_unknown_profile_is_rejected():
    with pytest.raises(SystemExit):
        cli.main(["synth", "--profile", "huge"])


@pytest.mark.parametrize("argv", [
    ["synth", "--workers", "0"], ["synth", "--seed", "-1"],
    ["extract", "--dataset", "ffpp", "--root", ".", "--frames", "0"],
    ["extract", "--dataset", "ffpp", "--root", ".", "--size", "2"],
    ["extract", "--dataset", "ffpp", "--root", ".", "--workers", "zero"],
    ["train", "--store", ".", "--model", "cnn5", "--epochs", "0"],
    ["train", "--store", ".", "--model", "cnn5", "--threads", "0"],
    ["demo", "--max-mb", "0"], ["demo", "--max-mb", "nan"], ["demo", "--port", "0"], ["demo", "--port", "70000"]])
def test_a_number_out_of_range_is_refused_by_its_option(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    option = next(a for a in argv if a.startswith("--") and argv.index(a) == len(argv) - 2)
    assert exit_.value.code == 2 and f"argument {option}" in capsys.readouterr().err


def test_every_help_says_its_default_and_train_lists_the_models_without_importing_torch():
    import argparse
    import subprocess
    import sys

    from dflite.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    silent = [(name, a.option_strings) for name, sp in sub.choices.items() for a in sp._actions
              if a.default is not None and a.default is not False and a.default != argparse.SUPPRESS
              and "default" not in (a.help or "")]
    assert silent == []
    out = subprocess.run([sys.executable, "-c", "import sys; from dflite.cli import build_parser; "
                          "h = build_parser()._subparsers._group_actions[0].choices['train'].format_help(); "
                          "print('torch' in sys.modules, 'efficientnet_lite0' in h and 'cnn5' in h)"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
