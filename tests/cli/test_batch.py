"""mmfeat fit / score / extract / info on a small synthetic records table."""

import os
import re

import numpy as np
import pandas as pd
import pytest

import mmfeat
from mmfeat.cli import main
from tests.scoring._records import make_records


@pytest.fixture(scope="module")
def fitted_cli(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    records = make_records(folder, n=60, seed=1)
    records.to_csv(folder / "records.csv", index=False)
    return folder, records


def _fit(folder, fusion, capsys, *extra):
    model = folder / f"{fusion}.skops"
    status = main(
        [
            "fit",
            "--data",
            str(folder / "records.csv"),
            "--image-col",
            "image",
            "--text-col",
            "title",
            "--label-col",
            "label",
            "--fusion",
            fusion,
            "--image-features",
            "hog",
            "-o",
            str(model),
            *extra,
        ]
    )
    out = capsys.readouterr()
    assert status == 0, out.err
    return model, out.out


@pytest.mark.parametrize("fusion", ["early", "late", "stacking"])
def test_fit_prints_the_report_and_saves_a_loadable_model(fitted_cli, capsys, fusion):
    folder, records = fitted_cli
    path, out = _fit(folder, fusion, capsys)
    report = dict(re.findall(r"^(image|text|fused)\s+(\d\.\d{4})", out, re.M))
    assert set(report) == {"image", "text", "fused"}
    assert float(report["fused"]) >= 0.9  # two easy, separable classes
    model = mmfeat.load(path)
    assert list(model.classes_) == ["checks", "stripes"]
    X = records[["image", "title"]].copy()
    X["image"] = [str(folder / p) for p in X["image"]]
    assert (model.predict(X) == records["label"]).mean() >= 0.95


def test_score_extract_info_round_trip(fitted_cli, capsys, tmp_path):
    folder, records = fitted_cli
    path, _ = _fit(folder, "late", capsys)
    out = tmp_path / "pred.csv"
    assert (
        main(
            [
                "score",
                str(path),
                str(folder / "records.csv"),
                "-o",
                str(out),
                "--id-col",
                "id",
                "--chunk-size",
                "16",
                "--no-progress",
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert "scored 60 records" in said and "60 with a prediction" in said
    pred = pd.read_csv(out)
    assert pred["id"].tolist() == records["id"].tolist()
    assert (pred["predict"] == records["label"]).mean() >= 0.95
    np.testing.assert_allclose(pred[["proba_checks", "proba_stripes"]].sum(axis=1), 1)
    assert os.path.exists(tmp_path / "pred.errors.csv")

    feats = tmp_path / "img.parquet"
    assert (
        main(
            [
                "extract",
                str(path),
                str(folder / "records.csv"),
                "--modality",
                "image",
                "-o",
                str(feats),
                "--id-col",
                "id",
            ]
        )
        == 0
    )
    capsys.readouterr()
    table = pd.read_parquet(feats)
    assert table.shape[0] == 60 and table.columns[0] == "id"
    model = mmfeat.load(path)
    head = model.named_estimators_["image"][:-1]
    X = pd.Series([str(folder / p) for p in records["image"]])
    np.testing.assert_allclose(
        table.iloc[:, 1:].to_numpy(), head.transform(X), rtol=1e-5, atol=1e-6
    )

    # a text column is text, not a path relative to the records' folder
    text = tmp_path / "text.parquet"
    assert (
        main(
            [
                "extract",
                str(path),
                str(folder / "records.csv"),
                "--modality",
                "text",
                "-o",
                str(text),
            ]
        )
        == 0
    )
    capsys.readouterr()
    want = model.named_estimators_["text"][:-1].transform(records["title"])
    np.testing.assert_allclose(
        pd.read_parquet(text).iloc[:, 1:].to_numpy(),
        want.toarray(),
        rtol=1e-5,
        atol=1e-6,
    )

    assert main(["info", str(path)]) == 0
    info = capsys.readouterr().out
    assert "type: LateFusionClassifier" in info
    assert "classes (2): checks, stripes" in info
    assert "image <- 'image'" in info and "text <- 'title'" in info
    assert f"mmfeat {mmfeat.__version__}" in info
    assert "HOGExtractor(" in info


def test_score_raise_mode_stops_with_the_row_and_file(fitted_cli, capsys, tmp_path):
    folder, records = fitted_cli
    path, _ = _fit(folder, "early", capsys)
    bad = records.copy()
    bad.loc[5, "image"] = "images/nope.png"
    bad.to_csv(folder / "bad.csv", index=False)
    status = main(
        [
            "score",
            str(path),
            str(folder / "bad.csv"),
            "-o",
            str(tmp_path / "p.parquet"),
            "--on-error",
            "raise",
        ]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert "row 5" in err and "nope.png" in err and "not found" in err


def test_untrusted_or_pickled_model_is_refused(fitted_cli, capsys, tmp_path):
    import joblib

    folder, _ = fitted_cli
    path, _ = _fit(folder, "late", capsys)
    pickled = tmp_path / "model.joblib"
    joblib.dump(mmfeat.load(path), pickled)
    status = main(
        [
            "score",
            str(pickled),
            str(folder / "records.csv"),
            "-o",
            str(tmp_path / "p.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2 and "pickle" in err
    assert not (tmp_path / "p.csv").exists()


def test_fit_refuses_bad_tables_clearly(fitted_cli, capsys, tmp_path):
    folder, records = fitted_cli
    args = [
        "fit",
        "--image-col",
        "image",
        "--label-col",
        "label",
        "-o",
        str(tmp_path / "m.skops"),
    ]
    assert main([*args, "--data", str(tmp_path / "none.csv")]) == 2
    assert "records file not found" in capsys.readouterr().err
    records.drop(columns="label").to_csv(tmp_path / "nolabel.csv", index=False)
    assert main([*args, "--data", str(tmp_path / "nolabel.csv")]) == 2
    assert "no column(s) ['label']" in capsys.readouterr().err
    one = records.assign(label="stripes")
    one.to_csv(tmp_path / "one.csv", index=False)
    assert main([*args, "--data", str(tmp_path / "one.csv")]) == 2
    assert "at least 2 classes" in capsys.readouterr().err
    assert (
        main(
            [
                "fit",
                "--label-col",
                "label",
                "--data",
                str(folder / "records.csv"),
                "-o",
                str(tmp_path / "m.skops"),
            ]
        )
        == 2
    )
    assert "--image-col" in capsys.readouterr().err


def test_fit_leaves_out_unlabelled_rows_and_says_so(fitted_cli, capsys, tmp_path):
    folder, records = fitted_cli
    partial = records.copy()
    partial.loc[[3, 8], "label"] = None
    partial.to_csv(folder / "partial.csv", index=False)
    status = main(
        [
            "fit",
            "--data",
            str(folder / "partial.csv"),
            "--text-col",
            "title",
            "--label-col",
            "label",
            "--test-size",
            "0",
            "-o",
            str(tmp_path / "m.skops"),
        ]
    )
    out = capsys.readouterr()
    assert status == 0
    assert "left out 2 record(s) without a label (rows [3, 8])" in out.err
    assert "58 records" in out.out


def test_extract_fused_and_block_features_of_an_early_model(
    fitted_cli, capsys, tmp_path
):
    folder, records = fitted_cli
    path, _ = _fit(folder, "early", capsys)
    model = mmfeat.load(path)
    X = records[["image", "title"]].copy()
    X["image"] = [str(folder / p) for p in X["image"]]
    fused = tmp_path / "fused.parquet"
    assert (
        main(["extract", str(path), str(folder / "records.csv"), "-o", str(fused)]) == 0
    )
    table = pd.read_parquet(fused)
    want = model[0].transform(X)
    want = want.toarray() if hasattr(want, "toarray") else want
    assert table.columns[0] == "row" and table.shape == (60, want.shape[1] + 1)
    np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(), want, rtol=1e-5, atol=1e-6)
    block = tmp_path / "title.parquet"
    assert (
        main(
            [
                "extract",
                str(path),
                str(folder / "records.csv"),
                "--modality",
                "text",
                "-o",
                str(block),
            ]
        )
        == 0
    )
    assert pd.read_parquet(block).shape[0] == 60
    assert (
        main(
            [
                "extract",
                str(path),
                str(folder / "records.csv"),
                "--modality",
                "audio",
                "-o",
                str(block),
            ]
        )
        == 2
    )
    assert "(--modality) must be one of ['image', 'text']" in capsys.readouterr().err


@pytest.mark.parametrize(
    "exc, words",
    [
        (OSError(28, "No space left on device", "/data/p.csv"), "disk is full"),
        (OSError(30, "Read-only file system", "/data/p.csv"), "read-only"),
        (OSError(27, "File too large"), "ulimit -f"),
        (MemoryError(), "out of memory"),
    ],
)
def test_os_and_memory_errors_are_one_line_with_what_to_do(
    monkeypatch, capsys, tmp_path, exc, words
):
    from mmfeat.cli import _info

    def fails(args, out, err):
        raise exc

    monkeypatch.setattr(_info, "main", fails)
    assert main(["info", str(tmp_path / "m.skops")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmfeat info: error: ") and words in err
    assert len(err.strip().splitlines()) == 1
    if getattr(exc, "filename", None):
        assert "'/data/p.csv'" in err
