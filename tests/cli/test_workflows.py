"""The library functions behind the command line, called from Python."""

import logging

import numpy as np
import pandas as pd
import pytest

import mmfeat
from mmfeat.utils._hashing import file_sha256
from mmfeat.workflows import describe_model, extract_file, fit_file, score_file
from tests.scoring._records import make_records
from tests.scoring.conftest import build


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("workflows")
    make_records(folder, n=40, seed=6).to_csv(folder / "records.csv", index=False)
    return folder


def test_fit_file_returns_the_model_report_and_notes(folder, caplog):
    with caplog.at_level(logging.INFO, logger="mmfeat.workflows"):
        result = fit_file(
            folder / "records.csv",
            columns={"image": "image", "text": "title"},
            label_column="label",
            image_features=["hog"],
        )
    assert result["path"] is None and result["n_records"] == 40
    assert result["n_held_out"] == 8 and result["n_classes"] == 2
    assert list(result["report"].index) == ["image", "text", "fused"]
    assert result["model"].weights == "learn" and result["notes"] == []
    assert "40 records, 2 classes" in caplog.text
    assert result["left_out"] == {"no label": [], "outside root": [], "no modality": []}


def test_fit_file_fits_a_given_model_and_refuses_bad_arguments(folder, tmp_path):
    given = build("stacking")
    result = fit_file(
        folder / "records.csv",
        tmp_path / "m.skops",
        columns={"image": "image", "text": "title"},
        label_column="label",
        model=given,
        test_size=0,
    )
    assert type(result["model"]).__name__ == "ModalityStackingClassifier"
    assert not hasattr(given, "estimators_")  # a clone was fitted
    assert result["report"] is None and result["trusted"] == []
    assert mmfeat.load(result["path"]).predict(
        pd.DataFrame({"image": [str(folder / "images/000.png")], "title": ["x"]})
    ).shape == (1,)
    with pytest.raises(mmfeat.ParameterError, match="test_size"):
        fit_file(
            folder / "records.csv",
            columns={"text": "title"},
            label_column="label",
            test_size=1,
        )
    with pytest.raises(mmfeat.ParameterError, match="unknown modality"):
        fit_file(folder / "records.csv", columns={"video": "v"}, label_column="label")
    with pytest.raises(mmfeat.ParameterError, match="text_features"):
        fit_file(
            folder / "records.csv",
            columns={"text": "title"},
            label_column="label",
            text_features="bpe",
        )


def test_score_and_extract_take_a_model_file_and_describe_it(folder, tmp_path, caplog):
    model = build("late").fit(
        pd.read_csv(folder / "records.csv").assign(
            image=lambda t: [str(folder / p) for p in t["image"]]
        )[["image", "title"]],
        pd.read_csv(folder / "records.csv")["label"],
    )
    path = mmfeat.save(model, tmp_path / "m.skops")
    with caplog.at_level(logging.WARNING):
        summary = score_file(
            path, folder / "records.csv", tmp_path / "p.csv", n_jobs=10_000
        )
    assert summary["rows"] == 40 and summary["unscored"] == 0
    assert "more than the" in caplog.text and "cores here" in caplog.text
    assert summary["load_seconds"] > 0
    assert summary["scoring_seconds"] + summary["load_seconds"] == pytest.approx(
        summary["seconds"]
    )
    # the resume manifest names the model file by its content
    info = describe_model(path)
    assert info["type"] == "LateFusionClassifier" and info["kind"] == "ensemble"
    assert info["classes"] == ["checks", "stripes"] and info["file_bytes"] > 0
    assert info["versions"]["mmfeat"] == mmfeat.__version__
    assert [m["name"] for m in info["modalities"]] == ["image", "title"]
    assert info["modalities"][0]["steps"][0]["estimator"].startswith("HOGExtractor(")
    assert len(file_sha256(path)) == 64
    # extract from the model object: the caller's model is not changed
    before = model.named_estimators_["image"][0].get_params()
    out = extract_file(
        model,
        folder / "records.csv",
        tmp_path / "f.parquet",
        modality="image",
        on_error="raise",
        n_jobs=2,
    )
    assert model.named_estimators_["image"][0].get_params() == before
    table = pd.read_parquet(out["output"])
    assert table.shape[0] == 40 and out["name"] == "image" and out["errors"] == 0
    assert np.isfinite(table.iloc[:, 1:].to_numpy()).all()
