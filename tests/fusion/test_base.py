"""Behaviour both model-level fusers share (``mmfeat/fusion/_base.py``).

Each test runs once for LateFusionClassifier and once for
ModalityStackingClassifier: rows missing every modality, labels, calibration
of models without ``predict_proba``, column selection, parameter checks,
``n_jobs``, clone and pickle.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.fusion import LateFusionClassifier, ModalityStackingClassifier
from mmfeat.fusion._modality import LogisticCalibratedClassifier
from tests.fusion._helpers import (
    ab_estimators,
    av_data,
    av_modalities,
    expect_columns,
    numeric_data,
)

# ---------------------------------------------------------------- missing modalities


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_rows_missing_every_modality_raise_an_input_error_naming_them(cls):
    X, y = numeric_data(n=60)
    model = cls(ab_estimators(), cv=3).fit(X, y)
    Xt = X.iloc[:6].copy()
    Xt.loc[[1, 3], ["a", "b"]] = np.nan
    with pytest.raises(InputError, match=r"\[1, 3\]"):
        model.predict_proba(Xt)
    with pytest.raises(InputError, match=r"all_missing='prior'"):
        model.predict(Xt)


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_rows_missing_every_modality_get_the_prior(cls):
    X, y = numeric_data(n=80)
    y = np.where(np.arange(80) < 60, 0, 1)  # 3 to 1
    X["a"] = y + np.random.default_rng(1).normal(0, 0.5, 80)
    model = cls(ab_estimators(), cv=3, all_missing="prior").fit(X, y)
    np.testing.assert_allclose(model.class_prior_, [0.75, 0.25])
    Xt = X.iloc[[0, 70, 1]].reset_index(drop=True)
    Xt.loc[1, ["a", "b"]] = np.nan
    proba = model.predict_proba(Xt)
    np.testing.assert_allclose(proba[1], [0.75, 0.25])
    assert not np.isnan(proba).any()
    assert model.predict(Xt)[1] == 0


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_training_rows_missing_every_modality_are_skipped(cls):
    X, y = numeric_data(n=60)
    X.loc[[0, 1], ["a", "b"]] = np.nan
    kw = {"weights": "learn"} if cls is LateFusionClassifier else {}
    model = cls(ab_estimators(), cv=3, **kw).fit(X, y)
    assert model.n_training_rows_ == {"a": 58, "b": 58}
    assert not np.isnan(model.predict_proba(X.iloc[2:])).any()


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_string_labels_and_three_classes(cls):
    labels = ("dog", "cat", "bird")  # not sorted on purpose
    X, y = numeric_data(n=150, labels=labels, noise_b=0.5)
    model = cls(ab_estimators(), cv=3).fit(X, y)
    np.testing.assert_array_equal(model.classes_, ["bird", "cat", "dog"])
    proba = model.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = model.predict(X)
    assert set(pred) <= set(labels)
    np.testing.assert_array_equal(pred, model.classes_[proba.argmax(axis=1)])
    assert np.mean(pred == y) > 0.85
    # the column of a "dog" row's own class is where its probability is
    dog = np.flatnonzero(y == "dog")
    assert proba[dog, 2].mean() > 0.6
    for p in model.modality_proba(X).values():
        assert p.shape == (150, 3)
        assert p[dog, 2].mean() > 0.5


# ---------------------------------------------------------------- calibration, columns


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_model_without_predict_proba_is_calibrated(cls):
    X, y = numeric_data(n=120)
    model = cls(
        [
            ("a", LinearSVC(), ["a"]),
            ("b", make_pipeline(StandardScaler(), LinearSVC()), ["b"]),
        ],
        cv=3,
    ).fit(X, y)
    assert isinstance(model.named_estimators_["a"], LogisticCalibratedClassifier)
    pipe_b = model.named_estimators_["b"]
    assert isinstance(pipe_b, Pipeline)
    assert isinstance(pipe_b[-1], LogisticCalibratedClassifier)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba > 0) & (proba < 1)).all()  # calibrated, not hard votes
    for p in model.modality_proba(X).values():
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        assert ((p > 0) & (p < 1)).all()
    assert np.mean(model.predict(X) == y) > 0.8


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_modality_models_see_only_their_columns(cls):
    X, y = numeric_data(n=60)
    X["t"] = X["b"]
    estimators = [
        (
            "ac",
            make_pipeline(expect_columns(["a", "c"]), LogisticRegression()),
            ["a", "c"],
        ),
        ("t", make_pipeline(expect_columns("t"), LogisticRegression()), "t"),
    ]
    model = cls(estimators, cv=3).fit(X, y)
    assert model.named_estimators_["ac"][-1].n_features_in_ == 2
    assert model.named_estimators_["t"][-1].n_features_in_ == 1
    model.predict_proba(X.iloc[:5])
    model.modality_proba(X.iloc[:5])


# ---------------------------------------------------------------- parameter checks


@pytest.mark.parametrize(
    "estimators",
    [
        [],
        None,
        [("a", LogisticRegression())],
        [("a", LogisticRegression(), ["a"]), ("a", LogisticRegression(), ["b"])],
        [("a__x", LogisticRegression(), ["a"])],
        [("", LogisticRegression(), ["a"])],
        [("a", StandardScaler(), ["a"])],
    ],
    ids=["empty", "none", "pair", "duplicate", "dunder", "blank", "transformer"],
)
@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_bad_estimators_raise_parameter_error(cls, estimators):
    X, y = numeric_data(n=20)
    with pytest.raises(ParameterError):
        cls(estimators).fit(X, y)


@pytest.mark.parametrize(
    "kwargs",
    [{"all_missing": "ignore"}, {"cv": "bogus"}, {"cv": 1}, {"cv": 2.5}],
)
@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_bad_options_raise_parameter_error(cls, kwargs):
    X, y = numeric_data(n=20)
    if cls is LateFusionClassifier:
        kwargs = {**kwargs, "weights": "learn"}
    with pytest.raises(ParameterError):
        cls(ab_estimators(), **kwargs).fit(X, y)


# ---------------------------------------------------------------- n_jobs, clone, pickle


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_n_jobs_gives_the_same_output(cls):
    X, y = numeric_data(n=90)
    kw = {"weights": "learn"} if cls is LateFusionClassifier else {}
    one = cls(ab_estimators(b=LinearSVC()), cv=3, n_jobs=1, **kw).fit(X, y)
    two = cls(ab_estimators(b=LinearSVC()), cv=3, n_jobs=2, **kw).fit(X, y)
    np.testing.assert_allclose(one.predict_proba(X), two.predict_proba(X))
    if cls is LateFusionClassifier:
        assert one.weights_ == pytest.approx(two.weights_)


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_clone_and_pickle_round_trip(cls):
    X, y = av_data(n=40)
    # random_state: liblinear's dual solver (more words than rows) shuffles
    model = cls(av_modalities(text_final=LinearSVC(random_state=0)), cv=3).fit(X, y)
    Xm = X.iloc[:6].copy()
    Xm.loc[0, "image"] = None
    expected = model.predict_proba(Xm)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(Xm), expected)
    fresh = clone(model)
    assert not hasattr(fresh, "estimators_")
    assert fresh.get_params()["cv"] == 3
    np.testing.assert_allclose(fresh.fit(X, y).predict_proba(Xm), expected)
