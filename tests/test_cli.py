"""`lqsearch profile` prints the cost table; `--version` the version; bad input exits 2 with one clear line."""
import subprocess
import sys

import pytest

import lqsearch
from lqsearch import cli


def test_profile_prints_the_cost_of_a_genome(capsys):
    assert cli.main(["profile", "vgg_small", "--genome", "0.5,2,1,1,1,0.5"]) == 0
    out = capsys.readouterr().out
    assert "FLOPs (binary/64 + fp)" in out and "(11.25 M)" in out
    assert "603,979,776" in out  # binary MACs of VGG-Auto-A


def test_profile_uniform_and_options(capsys):
    assert cli.main(["profile", "mobilenet_m3", "--genome", "uniform:16", "--option", "width_multiplier=0.5",
                     "--input-shape", "64,64,3"]) == 0
    assert "mobilenet_m3" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["profile", "vgg_smal"], "Unknown search space 'vgg_smal'; valid spaces are"),
        (["profile", "vgg_small", "--genome", "0.5,2,1"], "has 3 values but this space has 6 genes"),
        (["profile", "vgg_small", "--genome", "0.5,2,1,1,1,7"],
         "Gene 'conv6': value 7 is not allowed; allowed values are"),
        (["profile", "vgg_small", "--genome", "a,b"], "is not a number"),
        (["profile", "vgg_small", "--quantizer", "dorefaa"], "valid presets are bireal, dorefa, float, ste"),
        (["profile", "vgg_small", "--option", "widht=2"], "valid options are"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, capsys):
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("lqsearch: error:") and captured.err.count("\n") == 1, captured.err
    assert message in captured.err


@pytest.mark.slow
def test_the_console_entry_point_exits_2_on_bad_input():
    result = subprocess.run([sys.executable, "-m", "lqsearch.cli", "profile", "vgg_smal"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("lqsearch: error: Unknown search space 'vgg_smal'"), result.stderr


def test_version_prints_the_version_and_exits_0(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"lqsearch {lqsearch.__version__}\n"
    assert cli.main(["--version", "profile", "vgg_smal"]) == 0  # before any command, as argparse does
    assert capsys.readouterr().out == f"lqsearch {lqsearch.__version__}\n"


@pytest.mark.slow
def test_the_console_entry_point_prints_the_version():
    result = subprocess.run([sys.executable, "-m", "lqsearch.cli", "--version"], capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"lqsearch {lqsearch.__version__}\n", "")
