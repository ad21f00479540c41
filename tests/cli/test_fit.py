"""``mmfeat fit``: feature options, learned fusion weights, bad items, row numbers."""

import importlib.util
import os
import re

import numpy as np
import pandas as pd
import pytest

import mmfeat
from mmfeat.cli import main
from tests.scoring._records import make_records

#: the deep fusion candidate needs torch (not in the test extra: a CPU build
#: is installed by hand, and by .ci/run)
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _needs_torch():
    msg = "torch is not installed: --fusion deep needs it (pip install torch==2.13.0)"
    if not HAS_TORCH:
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """40 striped/checked photos and titles; row 3's image is missing, 7's broken."""
    folder = tmp_path_factory.mktemp("fit")
    records = make_records(folder, n=40, seed=3)
    (folder / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    records.loc[3, "image"] = "images/missing.png"
    records.loc[7, "image"] = "images/broken.png"
    records.to_csv(folder / "records.csv", index=False)
    return folder, records


def _fit(folder, capsys, *args, data="records.csv", name="m.skops"):
    status = main(
        ["fit", "--data", str(folder / data), "--label-col", "label"]
        + list(args)
        + ["-o", str(folder / name)]
    )
    out = capsys.readouterr()
    assert status == 0, out.err
    return folder / name, out


def _text_step(model):
    return model.named_estimators_["text"][0]


def test_fit_text_features_map_onto_tfidf_parameters(table, capsys):
    folder, _ = table
    path, _ = _fit(folder, capsys, "--text-col", "title", "--text-features", "char")
    tfidf = _text_step(mmfeat.load(path))
    assert tfidf.word_ngram_range is None
    assert tfidf.char_ngram_range == (1, 3) and tfidf.char_analyzer == "char"
    path, _ = _fit(folder, capsys, "--text-col", "title", "--text-features", "word")
    tfidf = _text_step(mmfeat.load(path))
    assert tfidf.word_ngram_range == (1, 2) and tfidf.char_ngram_range is None
    assert tfidf.analyzer_ == "word"
    with pytest.raises(SystemExit):
        main(["fit", "--data", "x.csv", "--label-col", "y", "--text-features", "bpe"])
    assert "invalid choice: 'bpe'" in capsys.readouterr().err


def test_fit_auto_text_features_choose_characters_for_scripts_without_spaces(
    tmp_path, capsys
):
    words = {
        "a": ["红色", "棉质", "衬衫", "长袖"],
        "b": ["蓝色", "皮革", "鞋子", "运动"],
    }
    rows = []
    for i in range(30):
        label = "ab"[i % 2]
        rows.append({"title": "".join(words[label][j % 4] for j in range(i, i + 3))})
        rows[-1]["label"] = label
    pd.DataFrame(rows).to_csv(tmp_path / "zh.csv", index=False)
    path, out = _fit(tmp_path, capsys, "--text-col", "title", data="zh.csv")
    tfidf = _text_step(mmfeat.load(path))
    assert tfidf.word_ngram_range == "auto"  # the extractor decides, at fit
    assert tfidf.analyzer_ == "char" and tfidf.char_analyzer_ == "char"
    assert "text features of 'text': char n-grams (1, 3) (100% of the" in out.out
    # English titles get words and character n-grams inside words
    rows = [{"title": f"striped shirt {i}", "label": "ab"[i % 2]} for i in range(30)]
    pd.DataFrame(rows).to_csv(tmp_path / "en.csv", index=False)
    path, out = _fit(tmp_path, capsys, "--text-col", "title", data="en.csv")
    assert _text_step(mmfeat.load(path)).analyzer_ == "word+char"
    assert "word+char n-grams (1, 2) and (2, 5) (0% of the" in out.out


def test_fit_image_features_option(table, capsys):
    folder, _ = table
    path, _ = _fit(
        folder, capsys, "--image-col", "image", "--image-features", "hog,color"
    )
    union = mmfeat.load(path).named_estimators_["image"][0]
    assert [name for name, _ in union.transformer_list] == ["hog", "color"]
    with pytest.raises(SystemExit):
        main(["fit", "--data", "x", "--label-col", "y", "--image-features", "gabor"])
    err = capsys.readouterr().err
    assert "hog, sift, color, cnn" in err and "'gabor'" in err


def test_fit_late_fusion_learns_its_weights_and_prints_them(table, capsys):
    folder, _ = table
    path, out = _fit(folder, capsys, "--image-col", "image", "--text-col", "title")
    model = mmfeat.load(path)
    assert model.weights == "learn"
    assert set(model.weights_) == {"image", "text"}
    weights = r"^fusion weights: image (\d\.\d+), text (\d\.\d+)$"
    shown = re.search(weights, out.out, re.M)
    assert shown is not None, out.out
    assert abs(float(shown[1]) - model.weights_["image"]) < 1e-3


def test_fit_warns_when_fusion_is_below_the_best_modality(table, capsys, monkeypatch):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    import mmfeat.recipes
    from mmfeat.features.image import HOGExtractor
    from mmfeat.features.text import TfidfExtractor
    from mmfeat.fusion import LateFusionClassifier

    folder, records = table
    noisy = records.copy()
    # titles that say nothing of the class, and all the weight on them
    rng = np.random.default_rng(0)
    noisy["title"] = rng.choice(["alpha item", "beta item"], size=len(noisy))
    noisy.to_csv(folder / "noisy.csv", index=False)

    def text_weighted(columns, **kwargs):
        image = make_pipeline(
            HOGExtractor(image_size=(32, 32), on_error="missing"), LogisticRegression()
        )
        text = make_pipeline(TfidfExtractor(on_error="missing"), LogisticRegression())
        return LateFusionClassifier(
            [("image", image, columns["image"]), ("text", text, columns["text"])],
            weights={"image": 0.0, "text": 1.0},
        )

    monkeypatch.setattr(mmfeat.recipes, "make_default_model", text_weighted)
    _, out = _fit(
        folder,
        capsys,
        "--image-col",
        "image",
        "--text-col",
        "title",
        "--text-features",
        "word",
        data="noisy.csv",
    )
    assert "held-out accuracy" in out.err and "is below 'image' alone" in out.err


def test_image_only_fit_survives_missing_and_unreadable_images(table, capsys):
    folder, records = table
    path, out = _fit(folder, capsys, "--image-col", "image", "--test-size", "0.25")
    assert "all_missing" not in out.err and "Traceback" not in out.err
    # the rows are the records' positions in the file, as mmfeat score's
    assert "could not be read" in out.err and "(rows [3, 7];" in out.err
    model = mmfeat.load(path)
    assert model.named_estimators_["image"] is not None
    status = main(
        ["score", str(path), str(folder / "records.csv"), "-o", str(folder / "p.csv")]
        + ["--no-progress"]
    )
    assert status == 0
    errors = pd.read_csv(folder / "p.errors.csv")
    assert sorted(set(errors["row"])) == [3, 7]


def test_fit_leaves_out_records_without_any_modality(table, capsys):
    folder, records = table
    empty = records.copy()
    empty.loc[[5, 12], ["image", "title"]] = None
    empty.to_csv(folder / "empty.csv", index=False)
    _, out = _fit(
        folder,
        capsys,
        "--image-col",
        "image",
        "--text-col",
        "title",
        "--test-size",
        "0",
        data="empty.csv",
    )
    assert "left out 2 record(s) with every modality missing (rows [5, 12])" in out.err
    assert out.out.startswith("38 records, 2 classes")


def test_fit_help_states_the_row_convention(capsys):
    for command in ("fit", "score", "extract"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "0-based positions of the records in the file" in text, command


def test_fit_fusion_auto_prints_every_candidate_and_saves_the_search(table, capsys):
    from mmfeat.fusion import FusionSearchCV

    folder, _ = table
    path, out = _fit(
        folder,
        capsys,
        *("--image-col", "image", "--text-col", "title", "--fusion", "auto"),
        name="auto.skops",
    )
    model = mmfeat.load(path)
    assert isinstance(model, FusionSearchCV)
    assert "fusion candidates (cross-validated on the training records)" in out.out
    for name in model.cv_results_["candidate"]:
        assert re.search(rf"^ [* ] {re.escape(name)}\s+\d\.\d{{4}}", out.out, re.M)
    assert re.search(rf"^ \* {re.escape(model.best_candidate_)}\s", out.out, re.M)
    if os.environ.get("CI"):
        assert HAS_TORCH, "CI installs torch"
    # the deep candidate exactly when torch is installed
    assert ("deep" in model.cv_results_["candidate"]) == HAS_TORCH
    assert main(["info", str(path)]) == 0
    info = capsys.readouterr().out
    assert f"chosen by cross-validation: {model.best_candidate_} (" in info


def test_fit_fusion_deep_saves_a_network_that_mmfeat_score_scores(table, capsys):
    _needs_torch()
    from mmfeat.fusion import NeuralFusionClassifier

    folder, _ = table
    path, _ = _fit(
        folder,
        capsys,
        *("--image-col", "image", "--text-col", "title", "--fusion", "deep"),
        name="deep.skops",
    )
    model = mmfeat.load(path)
    assert isinstance(model, NeuralFusionClassifier)
    assert main(["info", str(path)]) == 0
    info = capsys.readouterr().out
    assert "network: concat fusion of 2 encoders of 256 units, 2 classes, wide" in info
    assert re.search(r"^  image <- 'image' \(\d+ training rows\)$", info, re.M), info
    status = main(
        ["score", str(path), str(folder / "records.csv"), "-o", str(folder / "d.csv")]
        + ["--no-progress"]
    )
    assert status == 0
    scored = pd.read_csv(folder / "d.csv")
    assert len(scored) == 40
    errors = pd.read_csv(folder / "d.errors.csv")
    assert sorted(set(errors["row"])) == [3, 7]
