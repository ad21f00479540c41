"""``mmfeat demo`` says what it is doing on stderr between its tables."""

import re

from mmfeat.cli import main

_LINE = re.compile(r"^\[\s*\d+\.\d s\] \S")


def test_demo_prints_progress_lines_on_stderr(capsys, tmp_path):
    assert main(["demo", "--data-home", str(tmp_path)]) == 0
    said = capsys.readouterr()
    lines = said.err.splitlines()
    assert lines and all(_LINE.match(line) for line in lines), said.err
    assert sum("embedded digits: fitting" in line for line in lines) == 3
    assert any("audio-visual digits: loading" in line for line in lines)
    assert lines[-1].endswith("] done")
    # the tables stay on stdout, without the progress
    assert "fitting" not in said.out and "Audio-visual digits skipped" in said.out


def test_demo_av_part_names_each_fit(monkeypatch, capsys, tmp_path):
    import numpy as np
    import pandas as pd
    from scipy.io import wavfile

    import mmfeat.datasets

    # a stand-in for USPS + FSDD: bright or dark digits, low or high tones
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    images = [(150 * k + rng.integers(0, 60, (16, 16))).astype(np.uint8) for k in y]
    t = np.arange(2000) / 8000
    audio = []
    for i, k in enumerate(y):
        path = tmp_path / f"{i}.wav"
        clip = np.sin(2 * np.pi * (300 + 500 * k + i) * t).astype(np.float32)
        wavfile.write(path, 8000, clip)
        audio.append(str(path))
    frame = pd.DataFrame(
        {"image": images, "audio": audio, "split": ["train"] * 40 + ["test"] * 20}
    )

    class Bunch:
        pass

    bunch = Bunch()
    bunch.frame, bunch.target = frame, y
    monkeypatch.setattr(mmfeat.datasets, "load_av_digits", lambda **kw: bunch)
    assert main(["demo"]) == 0
    said = capsys.readouterr()
    fits = [ln for ln in said.err.splitlines() if "audio-visual digits: fitting" in ln]
    assert [re.search(r"fitting (.+) on", line)[1] for line in fits] == [
        "early fusion (fuser + SVC)",
        "late fusion (equal weights)",
        "stacking (logistic meta-model)",
    ]
    assert "(3/3)" in fits[-1]
    assert "Audio-visual digits: USPS image + FSDD recording" in said.out
