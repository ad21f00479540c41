"""Every kind of model ``mmfeat fit`` makes loads back with ``mmfeat.load``.

Fitted on records with missing and unreadable images, recordings and titles:
bad items are reported, never stored, so no ``ItemError`` (which skops does
not trust) can end up in a model file. A random forest's trees are the one
type ``mmfeat.load`` wants named in ``trusted=``; ``mmfeat fit`` says so.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from scipy.io import wavfile

import mmfeat
from mmfeat.cli import main
from tests.scoring._records import make_records

CASES = {
    # fusion, image features, text features, classifier, held-out share
    "late-hog-sift-word": ("late", "hog,sift", "word", "logistic", "0.25"),
    "early-color-char": ("early", "color", "char", "linear-svm", "0"),
    "stacking-hog": ("stacking", "hog", "auto", "random-forest", "0.25"),
    "late-cnn": ("late", "cnn", "word", "logistic", "0"),
}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round_trip")
    table = make_records(folder, n=24, seed=5)
    (folder / "audio").mkdir()
    sr = 16000
    t = np.arange(sr // 4) / sr
    paths = []
    for i, label in enumerate(table["label"]):
        tone = 440.0 if label == "stripes" else 880.0
        clip = 0.3 * np.sin(2 * np.pi * (tone + 10 * i) * t)
        wavfile.write(folder / "audio" / f"{i:03d}.wav", sr, clip.astype(np.float32))
        paths.append(f"audio/{i:03d}.wav")
    table["audio"] = paths
    (folder / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    (folder / "audio" / "broken.wav").write_text("not a wave file")
    table.loc[2, "image"] = "images/none.png"  # missing file
    table.loc[5, "image"] = "images/broken.png"  # unreadable
    table.loc[8, "image"] = None  # empty cell
    table.loc[4, "audio"] = "audio/none.wav"
    table.loc[9, "audio"] = "audio/broken.wav"
    table.loc[11, "title"] = None
    table.to_csv(folder / "records.csv", index=False)
    return folder


@pytest.mark.parametrize("case", list(CASES))
def test_every_fit_model_round_trips_through_load(records, case, capsys):
    fusion, image, text, classifier, test_size = CASES[case]
    if image == "cnn":
        pytest.importorskip("torch")
    path = records / f"{case}.skops"
    status = main(
        ["fit", "--data", str(records / "records.csv"), "--label-col", "label"]
        + ["--image-col", "image", "--text-col", "title", "--audio-col", "audio"]
        + ["--fusion", fusion, "--image-features", image, "--text-features", text]
        + ["--classifier", classifier, "--test-size", test_size, "-o", str(path)]
    )
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "could not be read" in out.err
    for row in (2, 4, 5, 9):  # the records' positions in the file
        assert str(row) in out.err.split("rows [", 1)[1].split("]")[0]
    assert not [t for t in sio.get_untrusted_types(file=path) if "ItemError" in t]
    # fit loads the file back and names what it needs trusted: only the
    # trees of a random forest, which mmfeat.load checks but wants named
    trusted = ["sklearn.tree._tree.Tree"] if classifier == "random-forest" else None
    if trusted:
        assert "--trusted sklearn.tree._tree.Tree" in out.err
    else:
        assert "--trusted" not in out.err
    model = mmfeat.load(path, trusted=trusted)
    assert b"ItemError" not in pickle.dumps(model)
    X = pd.read_csv(records / "records.csv")
    for col in ("image", "audio"):
        X[col] = [None if pd.isna(p) else str(records / p) for p in X[col]]
    good = X.drop(index=[2, 4, 5, 8, 9, 11])
    pred = model.predict(good[["image", "title", "audio"]])
    assert (pred == good["label"]).mean() >= 0.8
