import re
import subprocess
import sys

import pytest

import mmfeat
from mmfeat.cli import main


def test_main_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mmfeat {mmfeat.__version__}"


def test_main_without_command_prints_help(capsys):
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out


def test_main_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def _accuracies(text):
    return [float(m) for m in re.findall(r"SVC\s+(\d\.\d{4})", text)]


def test_demo_embedded_prints_real_metrics(capsys):
    assert main(["demo", "--embedded-only"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "macro F1" in out
    (acc,) = _accuracies(out)
    assert acc > 0.95


def test_demo_without_real_data_says_so(tmp_path, capsys):
    assert main(["demo", "--data-home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Audio-visual digits skipped" in out and str(tmp_path) in out
    assert len(_accuracies(out)) == 1


def test_demo_audio_visual_digits_as_a_subprocess(data_home):
    proc = subprocess.run(
        [sys.executable, "-m", "mmfeat", "demo", "--data-home", str(data_home)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    accs = _accuracies(proc.stdout)
    assert len(accs) == 4, proc.stdout
    image, audio, fused = accs[1:]
    assert image > 0.9 and audio > 0.9 and fused > 0.9
