import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mmfeat import InputError
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import LateFusionClassifier
from mmfeat.scoring import BatchScorer, score_frame
from tests.scoring._records import absolute

KINDS = ["late", "stacking", "early"]


@pytest.fixture
def table(records_dir):
    folder, records = records_dir
    return absolute(records, folder)


@pytest.mark.parametrize("kind", KINDS)
def test_clean_rows_match_the_model(fitted, table, kind):
    model = fitted[kind]
    X = table[["image", "title"]]
    preds = score_frame(model, table, id_column="id")
    assert list(preds.columns) == ["id", "predict", "proba_checks", "proba_stripes"]
    assert preds["id"].tolist() == table["id"].tolist()
    np.testing.assert_array_equal(
        preds["predict"].to_numpy(dtype=object), model.predict(X)
    )
    np.testing.assert_allclose(
        preds[["proba_checks", "proba_stripes"]], model.predict_proba(X)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_bad_image_scored_from_title_and_reported(fitted, table, kind, tmp_path):
    model = fitted[kind]
    X = table.head(8).copy()
    broken = tmp_path / "broken image.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    X.loc[2, "image"] = str(broken)
    preds, errors = score_frame(model, X, return_errors=True)
    assert len(preds) == 8 and preds["predict"].notna().all()
    assert errors["row"].tolist() == [2]
    assert errors.loc[0, "column"] == "image"
    assert errors.loc[0, "source"] == str(broken)
    assert errors.loc[0, "reason"]
    if kind == "late":
        # late fusion renormalises onto the title model alone
        title_only = model.modality_proba(X[["image", "title"]])["title"][2]
        np.testing.assert_allclose(preds.iloc[2, 2:].to_numpy(float), title_only)


@pytest.mark.parametrize("kind", KINDS)
def test_row_with_no_usable_modality_gets_no_prediction(fitted, table, kind):
    X = table.head(6).copy()
    X.loc[1, "image"] = "/no/such/file.png"
    X.loc[1, "title"] = None
    X.loc[4, ["image", "title"]] = None
    preds, errors = score_frame(fitted[kind], X, return_errors=True)
    assert preds["predict"].isna().tolist() == [False, True, False, False, True, False]
    assert preds.loc[[1, 4], "proba_checks"].isna().all()
    dead = errors[errors["column"] == "*"]
    assert dead["row"].tolist() == [1, 4]
    assert "image: image file not found" in dead.iloc[0]["reason"]
    assert "title: missing" in dead.iloc[0]["reason"]
    assert errors[errors["column"] == "image"]["row"].tolist() == [1]


def test_missing_column_is_reported_per_row_or_raises(fitted, table):
    X = table.head(5).drop(columns="image")
    preds, errors = score_frame(fitted["late"], X, id_column="id", return_errors=True)
    assert preds["predict"].notna().all()
    assert errors["row"].tolist() == [0, 1, 2, 3, 4]
    assert errors["id"].tolist() == X["id"].tolist()
    assert (errors["reason"] == "column 'image' is not in the input").all()
    with pytest.raises(InputError, match=r"no column\(s\) \['image'\]"):
        score_frame(fitted["late"], X, on_error="raise")


def test_raise_mode_names_the_absolute_row(fitted, table):
    X = table.head(6).copy()
    X.loc[4, "image"] = "/no/such/file.png"
    scorer = BatchScorer(fitted["early"], on_error="raise")
    with pytest.raises(InputError) as info:
        scorer.score(X, start=100)
    assert info.value.row == 104
    assert info.value.source == "/no/such/file.png"


class _Boom(BaseEstimator, TransformerMixin):
    """Numbers from text; a crash (not an InputError) on the item 'boom'."""

    def fit(self, X, y=None):
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        items = list(np.asarray(X).ravel())
        if "boom" in items:
            raise RuntimeError("kernel exploded")
        return np.array([[float(len(str(s)))] for s in items])


def test_unexpected_crash_is_isolated_to_its_row(fitted, table):
    X = table.head(10).copy()
    model = LateFusionClassifier(
        [
            ("title", make_pipeline(TfidfExtractor(), LogisticRegression()), "title"),
            ("len", make_pipeline(_Boom(), LogisticRegression()), "image"),
        ],
        cv=2,
    ).fit(X[["image", "title"]], X["label"])
    X.loc[7, "image"] = "boom"
    preds, errors = score_frame(model, X, return_errors=True)
    assert preds["predict"].notna().all()  # row 7 scored from its title
    assert errors["row"].tolist() == [7]
    assert errors.loc[0, "column"] == "image"
    assert "RuntimeError: kernel exploded" in errors.loc[0, "reason"]
    clean = score_frame(model, X.drop(index=7))
    assert preds.drop(index=7)["predict"].tolist() == clean["predict"].tolist()


def test_scorer_does_not_touch_the_users_model(fitted):
    model = fitted["late"]
    BatchScorer(model, inner_n_jobs=1)
    image_pipe = model.estimators_[0]
    assert image_pipe[0].on_error == "missing"
    assert model.all_missing == "raise"


def test_scorer_pickles_and_caches_the_model(fitted, table):
    import pickle

    scorer = BatchScorer(fitted["stacking"])
    blob = pickle.dumps(scorer)
    a, b = pickle.loads(blob), pickle.loads(blob)
    assert a.model_ is b.model_  # rebuilt once per process
    pd.testing.assert_frame_equal(a(table), scorer(table))


def test_meta_has_the_output_schema(fitted):
    scorer = BatchScorer(fitted["late"], id_column="id")
    meta = scorer.meta
    assert len(meta) == 0
    assert list(meta.columns) == ["id", "predict", "proba_checks", "proba_stripes"]
