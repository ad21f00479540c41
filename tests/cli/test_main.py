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


def _rows(text):
    """{model name: accuracy} from the demo's tables."""
    found = re.findall(
        r"^  (\S.*?\S)\s+(\d\.\d{4})\s+\d\.\d{4}\s+\d\.\d{4}$", text, re.M
    )
    return {name: float(acc) for name, acc in found}


def test_demo_embedded_prints_real_metrics(capsys):
    assert main(["demo", "--embedded-only"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "macro F1" in out
    rows = _rows(out)
    assert set(rows) == {"pixels + SVC", "HOG + SVC", "fused pixels+HOG + SVC"}
    assert min(rows.values()) > 0.95
    # two views of the digits fused beat either alone on this split
    assert rows["fused pixels+HOG + SVC"] >= max(
        rows["pixels + SVC"], rows["HOG + SVC"]
    )


def test_demo_without_real_data_says_so(tmp_path, capsys):
    assert main(["demo", "--data-home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Audio-visual digits skipped" in out and str(tmp_path) in out
    assert len(_rows(out)) == 3


@pytest.mark.slow
def test_demo_audio_visual_digits_as_a_subprocess(data_home):
    proc = subprocess.run(
        [sys.executable, "-m", "mmfeat", "demo", "--data-home", str(data_home)],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    rows = _rows(proc.stdout)
    assert len(rows) == 8, proc.stdout
    image, audio = rows["image alone (SVC)"], rows["audio alone (SVC)"]
    assert image > 0.9 and audio > 0.9
    for fused in ("late fusion (equal weights)", "stacking (logistic meta-model)"):
        assert rows[fused] > max(image, audio) and rows[fused] >= 0.995, proc.stdout
    assert rows["early fusion (fuser + SVC)"] > max(image, audio)
