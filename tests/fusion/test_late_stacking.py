"""Tests for LateFusionClassifier and ModalityStackingClassifier.

Expectations are hand-checkable: the late fusion of equal weights is the mean
of the modality models' probabilities (the fitted ``named_estimators_``
applied to their own columns), a row missing one modality gets exactly the
other one's probabilities, and so on.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import LinearSVC

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.image import HOGExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import LateFusionClassifier, ModalityStackingClassifier
from mmfeat.fusion._modality import LogisticCalibratedClassifier

# ---------------------------------------------------------------- helpers


def _numeric(n=120, seed=0, labels=(0, 1), noise_b=1.0):
    """Columns ``a`` (informative), ``b`` (weaker), ``c`` (pure noise), ``z``.

    ``a = k + N(0, 0.5)`` and ``b = k + N(0, noise_b)`` for class index ``k``;
    ``z`` is an extra numeric column no modality reads.
    """
    rng = np.random.default_rng(seed)
    k = rng.permutation(np.arange(n) % len(labels))
    frame = pd.DataFrame(
        {
            "a": k + rng.normal(0, 0.5, n),
            "b": k + rng.normal(0, noise_b, n),
            "c": rng.normal(0, 1.0, n),
            "z": rng.normal(0, 1.0, n),
        }
    )
    y = np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[k]
    return frame, y


def _ab(a=None, b=None):
    return [
        ("a", a if a is not None else LogisticRegression(), ["a"]),
        ("b", b if b is not None else LogisticRegression(), ["b"]),
    ]


def _proba(model, name, X, cols):
    return model.named_estimators_[name].predict_proba(X[cols])


_WORDS = {
    0: ["red", "shirt", "cotton", "summer", "tee"],
    1: ["blue", "jeans", "denim", "winter", "boot"],
}


def _av(n=60, seed=0, image_noise=0.2, text_flip=0.0):
    """An image column (16x16 arrays, object) and a text column; 2 classes.

    Class 0: horizontal stripes and "red shirt" words; class 1: vertical
    stripes and "blue jeans" words. With ``text_flip`` the text of a row is
    drawn from the other class's words with that probability.
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    images, texts = [], []
    stripes = (np.arange(16) // 2 % 2).astype(float)
    for label in y:
        image = np.tile(stripes[:, None], (1, 16))
        if label == 1:
            image = image.T
        images.append(
            np.clip(image + image_noise * rng.standard_normal((16, 16)), 0, 1)
        )
        src = 1 - label if rng.random() < text_flip else label
        words = rng.choice(_WORDS[src], size=3, replace=False).tolist()
        texts.append(" ".join(words))
    frame = pd.DataFrame(
        {
            "image": pd.Series(images, dtype=object),
            "text": pd.Series(texts, dtype=object),
        }
    )
    return frame, y


def _hog(**kw):
    return HOGExtractor(
        image_size=(16, 16), pixels_per_cell=(4, 4), cells_per_block=(2, 2), **kw
    )


def _av_modalities(text_final=None, **hog_kw):
    return [
        ("image", make_pipeline(_hog(**hog_kw), LogisticRegression()), "image"),
        (
            "text",
            make_pipeline(TfidfExtractor(), text_final or LogisticRegression()),
            "text",
        ),
    ]


def _expect_columns(expected):
    """A transformer that fails unless it is given exactly ``expected``."""

    def check(X):
        if isinstance(expected, str):
            assert isinstance(X, pd.Series) and X.name == expected, X
        else:
            assert isinstance(X, pd.DataFrame), type(X)
            assert list(X.columns) == expected, list(X.columns)
        return np.asarray(X, dtype=float).reshape(len(X), -1)

    return FunctionTransformer(check)


# ---------------------------------------------------------------- late fusion: weights


def test_equal_weights_is_mean_of_modality_probas():
    X, y = _numeric()
    model = LateFusionClassifier(_ab()).fit(X, y)
    assert model.weights_ == {"a": 0.5, "b": 0.5}
    assert model.oof_proba_ is None
    pa, pb = _proba(model, "a", X, ["a"]), _proba(model, "b", X, ["b"])
    np.testing.assert_allclose(model.predict_proba(X), (pa + pb) / 2)
    np.testing.assert_array_equal(model.classes_, [0, 1])
    np.testing.assert_array_equal(
        model.predict(X), model.classes_[np.argmax((pa + pb) / 2, axis=1)]
    )
    assert model.n_training_rows_ == {"a": 120, "b": 120}
    assert model.n_features_in_ == 4
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "z"])


def test_each_modality_model_is_fitted_on_its_own_column_only():
    X, y = _numeric()
    model = LateFusionClassifier(_ab()).fit(X, y)
    ref = LogisticRegression().fit(X[["a"]], y)
    np.testing.assert_allclose(model.named_estimators_["a"].coef_, ref.coef_)
    assert model.named_estimators_["a"].n_features_in_ == 1


@pytest.mark.parametrize(
    "weights, expected",
    [
        ({"a": 3.0, "b": 1.0}, {"a": 0.75, "b": 0.25}),
        ({"a": 3}, {"a": 0.75, "b": 0.25}),  # left-out modalities weigh 1
        ({"a": np.float32(1.0), "b": 4}, {"a": 0.2, "b": 0.8}),
        ({"a": 0.0, "b": 2.0}, {"a": 0.0, "b": 1.0}),
    ],
)
def test_dict_weights_are_normalised(weights, expected):
    X, y = _numeric()
    model = LateFusionClassifier(_ab(), weights=weights).fit(X, y)
    assert model.weights_.keys() == expected.keys()
    for name, w in expected.items():
        assert model.weights_[name] == pytest.approx(w)
    pa, pb = _proba(model, "a", X, ["a"]), _proba(model, "b", X, ["b"])
    np.testing.assert_allclose(
        model.predict_proba(X), expected["a"] * pa + expected["b"] * pb
    )


@pytest.mark.parametrize(
    "weights",
    [
        {"a": 1.0, "nope": 1.0},
        {"a": -1.0},
        {"a": 0.0, "b": 0},
        {"a": float("nan")},
        {"a": float("inf")},
        {"a": "1"},
        {"a": True},
        "bogus",
        [1.0, 1.0],
    ],
    ids=[
        "unknown",
        "negative",
        "all-zero",
        "nan",
        "inf",
        "str",
        "bool",
        "str-mode",
        "list",
    ],
)
def test_bad_weights_raise_parameter_error(weights):
    X, y = _numeric(n=20)
    with pytest.raises(ParameterError):
        LateFusionClassifier(_ab(), weights=weights).fit(X, y)


def test_unknown_weight_name_is_named_in_the_error():
    X, y = _numeric(n=20)
    with pytest.raises(ParameterError, match="nope"):
        LateFusionClassifier(_ab(), weights={"nope": 1.0}).fit(X, y)


def test_learned_weights_favour_the_informative_modality():
    X, y = _numeric(n=200)
    model = LateFusionClassifier(
        [("a", LogisticRegression(), ["a"]), ("noise", LogisticRegression(), ["c"])],
        weights="learn",
        cv=3,
    ).fit(X, y)
    w = model.weights_
    assert sum(w.values()) == pytest.approx(1.0)
    assert all(v >= 0 for v in w.values())
    assert w["a"] > 0.8 > 0.2 > w["noise"]
    assert set(model.oof_proba_) == {"a", "noise"}
    for p in model.oof_proba_.values():
        assert p.shape == (200, 2)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
    pa, pn = _proba(model, "a", X, ["a"]), _proba(model, "noise", X, ["c"])
    np.testing.assert_allclose(
        model.predict_proba(X), w["a"] * pa + w["noise"] * pn, atol=1e-12
    )


def test_learned_weights_with_one_modality_is_one():
    X, y = _numeric(n=40)
    model = LateFusionClassifier(
        [("a", LogisticRegression(), ["a"])], weights="learn", cv=2
    ).fit(X, y)
    assert model.weights_ == {"a": 1.0}


# ---------------------------------------------------------------- missing modalities


def test_row_missing_one_modality_gets_the_other_modalitys_proba():
    X, y = _numeric()
    model = LateFusionClassifier(_ab(), weights={"a": 3.0, "b": 1.0}).fit(X, y)
    Xt = X.iloc[:6].copy()
    Xt.loc[1, "a"] = np.nan
    Xt.loc[4, "b"] = np.nan
    proba = model.predict_proba(Xt)
    assert not np.isnan(proba).any()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    full = X.iloc[:6]
    pa, pb = _proba(model, "a", full, ["a"]), _proba(model, "b", full, ["b"])
    np.testing.assert_allclose(proba[1], pb[1])
    np.testing.assert_allclose(proba[4], pa[4])
    for i in (0, 2, 3, 5):
        np.testing.assert_allclose(proba[i], 0.75 * pa[i] + 0.25 * pb[i])


def test_row_whose_present_modalities_all_weigh_zero_falls_back_to_them():
    X, y = _numeric()
    model = LateFusionClassifier(_ab(), weights={"a": 1.0, "b": 0.0}).fit(X, y)
    Xt = X.iloc[:3].copy()
    Xt.loc[0, "a"] = np.nan
    proba = model.predict_proba(Xt)
    pb = _proba(model, "b", X.iloc[:3], ["b"])
    np.testing.assert_allclose(proba[0], pb[0])
    np.testing.assert_allclose(proba[1:], _proba(model, "a", X.iloc[:3], ["a"])[1:])


def test_modality_proba_gives_nan_rows_where_missing():
    X, y = _numeric()
    model = LateFusionClassifier(_ab()).fit(X, y)
    Xt = X.iloc[:4].copy()
    Xt.loc[2, "a"] = np.nan
    probas = model.modality_proba(Xt)
    assert list(probas) == ["a", "b"]
    assert probas["a"].shape == probas["b"].shape == (4, 2)
    np.testing.assert_array_equal(np.isnan(probas["a"]).all(axis=1), [0, 0, 1, 0])
    assert not np.isnan(probas["b"]).any()
    np.testing.assert_allclose(probas["b"], _proba(model, "b", Xt, ["b"]))
    keep = [0, 1, 3]
    np.testing.assert_allclose(
        probas["a"][keep], _proba(model, "a", Xt.iloc[keep], ["a"])
    )


def test_training_rows_missing_a_modality_are_left_out_of_its_model():
    X, y = _numeric(n=80)
    X.loc[[0, 5, 9], "a"] = np.nan
    model = LateFusionClassifier(_ab()).fit(X, y)
    assert model.n_training_rows_ == {"a": 77, "b": 80}
    keep = np.setdiff1d(np.arange(80), [0, 5, 9])
    ref = LogisticRegression().fit(X[["a"]].iloc[keep], y[keep])
    np.testing.assert_allclose(model.named_estimators_["a"].coef_, ref.coef_)


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_rows_missing_every_modality_raise_an_input_error_naming_them(cls):
    X, y = _numeric(n=60)
    model = cls(_ab(), cv=3).fit(X, y)
    Xt = X.iloc[:6].copy()
    Xt.loc[[1, 3], ["a", "b"]] = np.nan
    with pytest.raises(InputError, match=r"\[1, 3\]"):
        model.predict_proba(Xt)
    with pytest.raises(InputError, match=r"all_missing='prior'"):
        model.predict(Xt)


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_rows_missing_every_modality_get_the_prior(cls):
    X, y = _numeric(n=80)
    y = np.where(np.arange(80) < 60, 0, 1)  # 3 to 1
    X["a"] = y + np.random.default_rng(1).normal(0, 0.5, 80)
    model = cls(_ab(), cv=3, all_missing="prior").fit(X, y)
    np.testing.assert_allclose(model.class_prior_, [0.75, 0.25])
    Xt = X.iloc[[0, 70, 1]].reset_index(drop=True)
    Xt.loc[1, ["a", "b"]] = np.nan
    proba = model.predict_proba(Xt)
    np.testing.assert_allclose(proba[1], [0.75, 0.25])
    assert not np.isnan(proba).any()
    assert model.predict(Xt)[1] == 0


def test_class_prior_follows_sample_weight():
    X, y = _numeric(n=40)
    sw = np.where(y == 1, 3.0, 1.0)
    model = LateFusionClassifier(_ab(), all_missing="prior").fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(model.class_prior_, [0.25, 0.75])


def test_stacking_row_missing_a_modality_is_scored_without_nan():
    X, y = _numeric(n=120)
    model = ModalityStackingClassifier(_ab(), cv=3).fit(X, y)
    Xt = X.iloc[:10].copy()
    Xt.loc[[0, 1], "a"] = np.nan
    Xt.loc[[2], "b"] = np.nan
    proba = model.predict_proba(Xt)
    assert not np.isnan(proba).any()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # meta features of a row missing "a": zero probabilities, indicator 1
    Z = model._meta_features(list(model.modality_proba(Xt).values()), None)
    np.testing.assert_array_equal(Z[0, :3], [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(Z[2, 3:], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(proba, model.final_estimator_.predict_proba(Z))


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_training_rows_missing_every_modality_are_skipped(cls):
    X, y = _numeric(n=60)
    X.loc[[0, 1], ["a", "b"]] = np.nan
    kw = {"weights": "learn"} if cls is LateFusionClassifier else {}
    model = cls(_ab(), cv=3, **kw).fit(X, y)
    assert model.n_training_rows_ == {"a": 58, "b": 58}
    assert not np.isnan(model.predict_proba(X.iloc[2:])).any()


def test_row_order_and_index_do_not_matter():
    X, y = _numeric(n=60)
    model = LateFusionClassifier(_ab()).fit(X, y)
    np.testing.assert_allclose(
        model.predict_proba(X.iloc[::-1]), model.predict_proba(X)[::-1]
    )


@pytest.mark.parametrize(
    "cv", [KFold(3, shuffle=True, random_state=0), list(KFold(3).split(np.zeros(60)))]
)
def test_stacking_accepts_a_splitter_or_splits(cv):
    X, y = _numeric(n=60)
    model = ModalityStackingClassifier(_ab(), cv=cv).fit(X, y)
    assert not np.isnan(model.oof_proba_["a"]).any()
    assert np.mean(model.predict(X) == y) > 0.8


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_string_labels_and_three_classes(cls):
    labels = ("dog", "cat", "bird")  # not sorted on purpose
    X, y = _numeric(n=150, labels=labels, noise_b=0.5)
    model = cls(_ab(), cv=3).fit(X, y)
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


def test_late_fusion_three_classes_equal_weights_is_mean():
    X, y = _numeric(n=150, labels=("dog", "cat", "bird"))
    model = LateFusionClassifier(_ab()).fit(X, y)
    pa, pb = _proba(model, "a", X, ["a"]), _proba(model, "b", X, ["b"])
    np.testing.assert_allclose(model.predict_proba(X), (pa + pb) / 2)


def test_stacking_decision_function():
    X, y = _numeric(n=120)
    model = ModalityStackingClassifier(_ab(), cv=3, all_missing="prior").fit(X, y)
    scores = model.decision_function(X)
    assert scores.shape == (120,)
    np.testing.assert_array_equal(model.predict(X), model.classes_[(scores > 0) * 1])
    Xt = X.iloc[:3].copy()
    Xt.loc[0, ["a", "b"]] = np.nan
    prior = model.class_prior_
    assert model.decision_function(Xt)[0] == pytest.approx(np.log(prior[1] / prior[0]))

    X3, y3 = _numeric(n=150, labels=("x", "y", "z"))
    model3 = ModalityStackingClassifier(_ab(), cv=3).fit(X3, y3)
    scores3 = model3.decision_function(X3)
    assert scores3.shape == (150, 3)
    np.testing.assert_array_equal(
        model3.predict(X3), model3.classes_[scores3.argmax(axis=1)]
    )


def test_stacking_meta_model_without_predict_proba_still_predicts():
    X, y = _numeric(n=90)
    model = ModalityStackingClassifier(_ab(), final_estimator=LinearSVC(), cv=3)
    model.fit(X, y)
    scores = model.decision_function(X)
    np.testing.assert_array_equal(model.predict(X), model.classes_[(scores > 0) * 1])


def test_stacking_decision_function_only_when_the_meta_model_has_it():
    assert hasattr(ModalityStackingClassifier(_ab()), "decision_function")
    model = ModalityStackingClassifier(_ab(), final_estimator=GaussianNB())
    assert not hasattr(model, "decision_function")
    assert not hasattr(LateFusionClassifier(_ab()), "decision_function")


# ---------------------------------------------------------------- calibration, columns


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_model_without_predict_proba_is_calibrated(cls):
    X, y = _numeric(n=120)
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
    X, y = _numeric(n=60)
    X["t"] = X["b"]
    estimators = [
        (
            "ac",
            make_pipeline(_expect_columns(["a", "c"]), LogisticRegression()),
            ["a", "c"],
        ),
        ("t", make_pipeline(_expect_columns("t"), LogisticRegression()), "t"),
    ]
    model = cls(estimators, cv=3).fit(X, y)
    assert model.named_estimators_["ac"][-1].n_features_in_ == 2
    assert model.named_estimators_["t"][-1].n_features_in_ == 1
    model.predict_proba(X.iloc[:5])
    model.modality_proba(X.iloc[:5])


def test_wrong_columns_fail_the_check_transformer():
    # sanity check of the helper above: a modality given the wrong columns fails
    X, y = _numeric(n=20)
    estimators = [
        ("a", make_pipeline(_expect_columns(["b"]), LogisticRegression()), ["a"])
    ]
    with pytest.raises(AssertionError):
        LateFusionClassifier(estimators).fit(X, y)


def test_missing_column_at_predict_raises():
    X, y = _numeric(n=40)
    model = LateFusionClassifier(_ab()).fit(X, y)
    with pytest.raises(ValueError):
        model.predict_proba(X.drop(columns="b"))


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
    X, y = _numeric(n=20)
    with pytest.raises(ParameterError):
        cls(estimators).fit(X, y)


@pytest.mark.parametrize(
    "kwargs",
    [{"all_missing": "ignore"}, {"cv": "bogus"}, {"cv": 1}, {"cv": 2.5}],
)
@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_bad_options_raise_parameter_error(cls, kwargs):
    X, y = _numeric(n=20)
    if cls is LateFusionClassifier:
        kwargs = {**kwargs, "weights": "learn"}
    with pytest.raises(ParameterError):
        cls(_ab(), **kwargs).fit(X, y)


def test_stacking_needs_cv():
    X, y = _numeric(n=20)
    with pytest.raises(ParameterError):
        ModalityStackingClassifier(_ab(), cv=None).fit(X, y)


def test_one_class_raises():
    X, _ = _numeric(n=20)
    with pytest.raises(ValueError, match="2 classes"):
        LateFusionClassifier(_ab()).fit(X, np.zeros(20))


def test_unknown_column_raises_input_error():
    X, y = _numeric(n=20)
    with pytest.raises(InputError, match="nope"):
        LateFusionClassifier([("a", LogisticRegression(), ["nope"])]).fit(X, y)


# ---------------------------------------------------------------- image + text


def test_image_and_text_late_fusion_with_missing_items():
    X, y = _av(n=60)
    Xte, yte = _av(n=20, seed=1)
    model = LateFusionClassifier(_av_modalities(text_final=LinearSVC())).fit(X, y)
    assert isinstance(model.named_estimators_["text"][-1], LogisticCalibratedClassifier)
    assert np.mean(model.predict(Xte) == yte) == 1.0
    ref = {
        "image": model.named_estimators_["image"].predict_proba(Xte["image"]),
        "text": model.named_estimators_["text"].predict_proba(Xte["text"]),
    }
    np.testing.assert_allclose(
        model.predict_proba(Xte), (ref["image"] + ref["text"]) / 2
    )

    Xm = Xte.copy()
    Xm.loc[[0, 1], "image"] = None
    Xm.loc[[2], "text"] = None
    Xm.loc[[3], "text"] = ""  # an empty text is a missing text
    Xm.loc[[4], "image"] = np.nan
    proba = model.predict_proba(Xm)
    assert not np.isnan(proba).any()
    for i in (0, 1, 4):
        np.testing.assert_allclose(proba[i], ref["text"][i])
    for i in (2, 3):
        np.testing.assert_allclose(proba[i], ref["image"][i])
    np.testing.assert_allclose(proba[5:], model.predict_proba(Xte)[5:])
    assert np.mean(model.predict(Xm) == yte) == 1.0


def test_image_and_text_stacking_with_missing_items():
    X, y = _av(n=60)
    Xte, yte = _av(n=20, seed=1)
    model = ModalityStackingClassifier(_av_modalities(), cv=3).fit(X, y)
    assert model.final_estimator_.n_features_in_ == 6
    Xm = Xte.copy()
    Xm.loc[[0, 1], "image"] = None
    Xm.loc[[2], "text"] = None
    proba = model.predict_proba(Xm)
    assert not np.isnan(proba).any()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(model.predict(Xm) == yte) == 1.0


def test_unreadable_image_at_predict_is_scored_from_text(tmp_path):
    X, y = _av(n=60)
    Xte, _ = _av(n=6, seed=1)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    model = LateFusionClassifier(_av_modalities(on_error="missing")).fit(X, y)
    Xm = Xte.copy()
    Xm.loc[0, "image"] = str(bad)
    Xm.loc[1, "image"] = str(tmp_path / "does-not-exist.png")
    proba = model.predict_proba(Xm)
    assert not np.isnan(proba).any()
    text = model.named_estimators_["text"].predict_proba(Xte["text"])
    np.testing.assert_allclose(proba[:2], text[:2])
    np.testing.assert_allclose(proba[2:], model.predict_proba(Xte)[2:])
    assert np.isnan(model.modality_proba(Xm)["image"][:2]).all()

    stack = ModalityStackingClassifier(_av_modalities(on_error="missing"), cv=3)
    proba = stack.fit(X, y).predict_proba(Xm)
    assert not np.isnan(proba).any()


def test_unreadable_image_at_fit_is_left_out_of_the_image_model(tmp_path):
    X, y = _av(n=60)
    X.loc[3, "image"] = str(tmp_path / "does-not-exist.png")
    X.loc[7, "image"] = None
    model = LateFusionClassifier(_av_modalities(on_error="missing")).fit(X, y)
    assert model.n_training_rows_ == {"image": 58, "text": 60}


def test_unreadable_image_with_on_error_raise_raises_at_predict(tmp_path):
    X, y = _av(n=40)
    model = LateFusionClassifier(_av_modalities()).fit(X, y)
    Xm = X.iloc[:2].copy()
    Xm.loc[0, "image"] = str(tmp_path / "does-not-exist.png")
    with pytest.raises(InputError):
        model.predict_proba(Xm)


def test_image_and_text_rows_missing_both_raise():
    X, y = _av(n=40)
    model = LateFusionClassifier(_av_modalities()).fit(X, y)
    Xm = X.iloc[:4].copy()
    Xm.loc[2, ["image", "text"]] = None
    with pytest.raises(InputError, match=r"\[2\]"):
        model.predict(Xm)


# ---------------------------------------------------------------- stacking specifics


def test_stacking_prefit_uses_the_given_models():
    X, y = _av(n=80, text_flip=0.2)
    X1, X2, y1, y2 = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    image = make_pipeline(_hog(), LogisticRegression()).fit(X1["image"], y1)
    text = make_pipeline(TfidfExtractor(), LogisticRegression()).fit(X1["text"], y1)
    estimators = [("image", image, "image"), ("text", text, "text")]
    prefit = ModalityStackingClassifier(estimators, cv="prefit").fit(X2, y2)
    assert prefit.estimators_[0] is image and prefit.estimators_[1] is text
    assert prefit.oof_proba_ is None
    assert prefit.n_training_rows_ is None
    probas = prefit.modality_proba(X2)
    np.testing.assert_allclose(probas["image"], image.predict_proba(X2["image"]))
    np.testing.assert_allclose(probas["text"], text.predict_proba(X2["text"]))

    fitted = ModalityStackingClassifier(_av_modalities(), cv=3).fit(X2, y2)
    assert fitted.estimators_[0] is not fitted.estimators[0][1]
    with pytest.raises(NotFittedError):
        fitted.estimators[0][1].predict(X2["image"])  # the given ones stay unfitted
    assert set(fitted.oof_proba_) == {"image", "text"}
    Xte, yte = _av(n=20, seed=3)
    assert np.mean(prefit.predict(Xte) == yte) >= 0.9
    assert np.mean(fitted.predict(Xte) == yte) >= 0.9


def test_prefit_with_string_labels_and_late_fusion_learn():
    X, y = _numeric(n=200, labels=("no", "yes"))
    a = LogisticRegression().fit(X[["a"]].iloc[:100], y[:100])
    c = LogisticRegression().fit(X[["c"]].iloc[:100], y[:100])
    model = LateFusionClassifier(
        [("a", a, ["a"]), ("c", c, ["c"])], weights="learn", cv="prefit"
    ).fit(X.iloc[100:], y[100:])
    assert model.weights_["a"] > model.weights_["c"]
    np.testing.assert_array_equal(model.classes_, ["no", "yes"])
    w = model.weights_
    np.testing.assert_allclose(
        model.predict_proba(X),
        w["a"] * a.predict_proba(X[["a"]]) + w["c"] * c.predict_proba(X[["c"]]),
    )
    assert set(model.predict(X)) <= {"no", "yes"}


def test_prefit_unfitted_or_with_unknown_classes_raises():
    X, y = _numeric(n=40)
    with pytest.raises(NotFittedError):
        ModalityStackingClassifier(_ab(), cv="prefit").fit(X, y)
    a = LogisticRegression().fit(X[["a"]], np.where(y == 1, 1, 7))
    b = LogisticRegression().fit(X[["b"]], y)
    with pytest.raises(ParameterError, match="7"):
        ModalityStackingClassifier(_ab(a, b), cv="prefit").fit(X, y)


def test_prefit_model_without_predict_proba_is_not_used_as_hard_votes():
    """A prefit LinearSVC should give graded (calibrated) probabilities."""
    X, y = _numeric(n=200)
    a = LinearSVC().fit(X[["a"]].iloc[:100], y[:100])
    b = LogisticRegression().fit(X[["b"]].iloc[:100], y[:100])
    model = ModalityStackingClassifier(_ab(a, b), cv="prefit").fit(
        X.iloc[100:], y[100:]
    )
    pa = model.modality_proba(X.iloc[100:])["a"]
    np.testing.assert_allclose(pa.sum(axis=1), 1.0)
    assert ((pa > 0) & (pa < 1)).all(), "prefit LinearSVC gave 0/1 probabilities"


def test_stacking_meta_features_and_oof():
    X, y = _numeric(n=90, labels=("x", "y", "z"))
    model = ModalityStackingClassifier(_ab(), cv=3).fit(X, y)
    # 3 probabilities + 1 indicator per modality
    assert model.final_estimator_.n_features_in_ == 8
    assert isinstance(model.final_estimator_, LogisticRegression)
    for p in model.oof_proba_.values():
        assert p.shape == (90, 3)
        assert not np.isnan(p).any()
    # out-of-fold, not in-sample: different from the full models' proba
    full = _proba(model, "a", X, ["a"])
    assert not np.allclose(model.oof_proba_["a"], full)


def test_stacking_passthrough_true_uses_the_extra_numeric_column():
    rng = np.random.default_rng(0)
    n = 200
    y = rng.permutation(np.arange(n) % 2)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n) + 0.3 * y,  # weak
            "b": rng.normal(size=n),  # noise
            "z": 3.0 * y + rng.normal(0, 0.3, n),  # the answer
            "name": ["row"] * n,  # not numeric: never passed through
        }
    )
    Xtr, Xte, ytr, yte = X.iloc[:150], X.iloc[150:], y[:150], y[150:]
    plain = ModalityStackingClassifier(_ab(), cv=3).fit(Xtr, ytr)
    through = ModalityStackingClassifier(_ab(), cv=3, passthrough=True).fit(Xtr, ytr)
    assert plain.passthrough_columns_ == []
    assert through.passthrough_columns_ == ["z"]
    assert through.final_estimator_.n_features_in_ == 7
    assert np.mean(through.predict(Xte) == yte) > 0.95
    assert np.mean(plain.predict(Xte) == yte) < 0.8
    listed = ModalityStackingClassifier(_ab(), cv=3, passthrough=["z"]).fit(Xtr, ytr)
    assert listed.passthrough_columns_ == ["z"]
    np.testing.assert_allclose(listed.predict_proba(Xte), through.predict_proba(Xte))
    # NaN in a passed-through column becomes 0, no NaN out
    Xn = Xte.copy()
    Xn.iloc[0, Xn.columns.get_loc("z")] = np.nan
    assert not np.isnan(through.predict_proba(Xn)).any()


def test_stacking_passthrough_true_skips_columns_read_by_position():
    X, y = _numeric(n=60)
    estimators = [("a", LogisticRegression(), [0]), ("b", LogisticRegression(), [1])]
    model = ModalityStackingClassifier(estimators, cv=3, passthrough=True).fit(X, y)
    assert model.passthrough_columns_ == ["c", "z"]


def test_stacking_passthrough_true_skips_columns_read_by_name_string():
    X, y = _numeric(n=60)
    estimators = [
        ("a", make_pipeline(_expect_columns("a"), LogisticRegression()), "a"),
        ("b", LogisticRegression(), slice(1, 2)),
    ]
    model = ModalityStackingClassifier(estimators, cv=3, passthrough=True).fit(X, y)
    assert model.passthrough_columns_ == ["c", "z"]


@pytest.mark.parametrize("passthrough", [["nope"], ["a", "nope"], ["name"]])
def test_bad_passthrough_raises_parameter_error(passthrough):
    X, y = _numeric(n=30)
    X["name"] = "x"
    with pytest.raises(ParameterError):
        ModalityStackingClassifier(_ab(), cv=3, passthrough=passthrough).fit(X, y)


def test_passthrough_needs_a_dataframe():
    X, y = _numeric(n=30)
    with pytest.raises(ParameterError):
        ModalityStackingClassifier(
            [("a", LogisticRegression(), [0]), ("b", LogisticRegression(), [1])],
            cv=3,
            passthrough=True,
        ).fit(X.to_numpy(), y)


def test_drop_modalities_scores_text_only_rows_like_the_text_model():
    # image: clean stripes; text: right words 85% of the time. Training rows
    # have both; test rows lack the image.
    X, y = _av(n=200, text_flip=0.15)
    Xte, yte = _av(n=200, seed=1, text_flip=0.15)
    Xm = Xte.copy()
    Xm["image"] = None
    model = ModalityStackingClassifier(_av_modalities(), cv=3).fit(X, y)
    text_only = make_pipeline(TfidfExtractor(), LogisticRegression()).fit(X["text"], y)
    text_acc = np.mean(text_only.predict(Xte["text"]) == yte)
    proba = model.predict_proba(Xm)
    assert not np.isnan(proba).any()
    stack_acc = np.mean(model.predict(Xm) == yte)
    assert text_acc > 0.75
    assert stack_acc >= text_acc - 0.03
    # with both modalities it is as good as the image
    assert np.mean(model.predict(Xte) == yte) >= 0.97
    # its probabilities are as sharp as the text model's (log-loss); without
    # drop_modalities the meta-model never saw a missing image and is not
    text_loss = log_loss(yte, text_only.predict_proba(Xte["text"]))
    assert log_loss(yte, proba) <= text_loss + 0.05
    no_drop = ModalityStackingClassifier(_av_modalities(), cv=3, drop_modalities=False)
    assert log_loss(yte, no_drop.fit(X, y).predict_proba(Xm)) > text_loss + 0.1


# ---------------------------------------------------------------- sample_weight


def test_zero_sample_weight_is_dropping_the_rows_late_fusion():
    X, y = _numeric(n=100)
    sw = np.ones(100)
    sw[:30] = 0.0
    lr = LogisticRegression(tol=1e-10, max_iter=10_000)
    weighted = LateFusionClassifier(_ab(lr, clone(lr))).fit(X, y, sample_weight=sw)
    dropped = LateFusionClassifier(_ab(lr, clone(lr))).fit(X.iloc[30:], y[30:])
    unweighted = LateFusionClassifier(_ab(lr, clone(lr))).fit(X, y)
    np.testing.assert_allclose(
        weighted.predict_proba(X), dropped.predict_proba(X), atol=1e-6
    )
    assert not np.allclose(weighted.predict_proba(X), unweighted.predict_proba(X))
    np.testing.assert_allclose(weighted.class_prior_, dropped.class_prior_)


def test_zero_sample_weight_is_dropping_the_rows_prefit_stacking():
    X, y = _numeric(n=200)
    a = LogisticRegression().fit(X[["a"]].iloc[:100], y[:100])
    b = LogisticRegression().fit(X[["b"]].iloc[:100], y[:100])
    meta = LogisticRegression(tol=1e-10, max_iter=10_000)
    held, yh = X.iloc[100:], y[100:]
    sw = np.ones(100)
    sw[:40] = 0.0
    weighted = ModalityStackingClassifier(
        _ab(a, b), cv="prefit", final_estimator=meta
    ).fit(held, yh, sample_weight=sw)
    dropped = ModalityStackingClassifier(
        _ab(a, b), cv="prefit", final_estimator=meta
    ).fit(held.iloc[40:], yh[40:])
    np.testing.assert_allclose(
        weighted.final_estimator_.coef_, dropped.final_estimator_.coef_, atol=1e-5
    )


def test_sample_weight_reaches_a_calibrated_model():
    X, y = _numeric(n=120)
    sw = np.linspace(0.5, 2.0, 120)
    model = LateFusionClassifier([("a", LinearSVC(), ["a"])]).fit(
        X, y, sample_weight=sw
    )
    plain = LateFusionClassifier([("a", LinearSVC(), ["a"])]).fit(X, y)
    assert not np.allclose(model.predict_proba(X), plain.predict_proba(X))


def test_sample_weight_for_a_model_without_it_is_not_an_error():
    X, y = _numeric(n=60)

    class NoWeights(LogisticRegression):
        def fit(self, X, y):
            return super().fit(X, y)

    sw = np.ones(60)
    model = LateFusionClassifier(_ab(NoWeights(), LogisticRegression()))
    model.fit(X, y, sample_weight=sw)
    assert not np.isnan(model.predict_proba(X)).any()


# ---------------------------------------------------------------- n_jobs, clone, pickle


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_n_jobs_gives_the_same_output(cls):
    X, y = _numeric(n=90)
    kw = {"weights": "learn"} if cls is LateFusionClassifier else {}
    one = cls(_ab(b=LinearSVC()), cv=3, n_jobs=1, **kw).fit(X, y)
    two = cls(_ab(b=LinearSVC()), cv=3, n_jobs=2, **kw).fit(X, y)
    np.testing.assert_allclose(one.predict_proba(X), two.predict_proba(X))
    if cls is LateFusionClassifier:
        assert one.weights_ == pytest.approx(two.weights_)


@pytest.mark.parametrize("cls", [LateFusionClassifier, ModalityStackingClassifier])
def test_clone_and_pickle_round_trip(cls):
    X, y = _av(n=40)
    # random_state: liblinear's dual solver (more words than rows) shuffles
    model = cls(_av_modalities(text_final=LinearSVC(random_state=0)), cv=3).fit(X, y)
    Xm = X.iloc[:6].copy()
    Xm.loc[0, "image"] = None
    expected = model.predict_proba(Xm)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(Xm), expected)
    fresh = clone(model)
    assert not hasattr(fresh, "estimators_")
    assert fresh.get_params()["cv"] == 3
    np.testing.assert_allclose(fresh.fit(X, y).predict_proba(Xm), expected)


def test_get_and_set_nested_params_keep_the_columns():
    model = LateFusionClassifier(_av_modalities())
    params = model.get_params()
    assert params["image__logisticregression__C"] == 1.0
    assert "text__tfidfextractor__min_df" in params
    model.set_params(image__logisticregression__C=5.0, weights={"text": 2.0})
    name, est, cols = model.estimators[0]
    assert (name, cols) == ("image", "image")
    assert est[-1].C == 5.0
    new_text = make_pipeline(TfidfExtractor(), LinearSVC())
    model.set_params(text=new_text)
    assert model.estimators[1] == ("text", new_text, "text")


def test_grid_search_over_nested_params_and_weights():
    X, y = _av(n=60, image_noise=1.5, text_flip=0.2)
    grid = GridSearchCV(
        LateFusionClassifier(_av_modalities()),
        {
            "image__logisticregression__C": [0.01, 10.0],
            "weights": [None, {"image": 1.0, "text": 3.0}],
        },
        cv=3,
    ).fit(X, y)
    assert grid.best_params_["image__logisticregression__C"] in (0.01, 10.0)
    best = grid.best_estimator_
    C = best.named_estimators_["image"][-1].C
    assert C == grid.best_params_["image__logisticregression__C"]
    assert best.weights_ == (
        {"image": 0.5, "text": 0.5}
        if grid.best_params_["weights"] is None
        else {"image": 0.25, "text": 0.75}
    )
    assert len(grid.cv_results_["params"]) == 4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()

    stack = GridSearchCV(
        ModalityStackingClassifier(_av_modalities(), cv=2),
        {"text__logisticregression__C": [0.1, 1.0]},
        cv=2,
    ).fit(X, y)
    assert np.isfinite(stack.cv_results_["mean_test_score"]).all()


# ---------------------------------------------------------------- real data


def test_av_digits_late_fusion_beats_each_modality(data_home):
    from mmfeat.datasets import load_av_digits
    from mmfeat.features.audio import MFCCExtractor

    frame = load_av_digits(data_home=data_home).frame
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    train, _ = train_test_split(
        train, train_size=400, stratify=train.digit, random_state=0
    )
    test, _ = train_test_split(
        test, train_size=200, stratify=test.digit, random_state=0
    )
    cols = ["image", "audio"]
    Xtr, ytr = train[cols].reset_index(drop=True), train.digit.to_numpy()
    Xte, yte = test[cols].reset_index(drop=True), test.digit.to_numpy()
    model = LateFusionClassifier(
        [
            (
                "image",
                make_pipeline(_hog(), LogisticRegression(max_iter=2000)),
                "image",
            ),
            (
                "audio",
                make_pipeline(
                    MFCCExtractor(
                        sr=8000, n_fft=256, hop_length=64, n_mels=40, n_mfcc=13
                    ),
                    StandardScaler(),
                    LogisticRegression(max_iter=2000),
                ),
                "audio",
            ),
        ]
    ).fit(Xtr, ytr)
    np.testing.assert_array_equal(model.classes_, np.arange(10))
    single = {
        name: np.mean(model.classes_[p.argmax(axis=1)] == yte)
        for name, p in model.modality_proba(Xte).items()
    }
    fused = np.mean(model.predict(Xte) == yte)
    assert fused >= max(single.values()) - 0.01, (fused, single)
    assert fused > 0.9, (fused, single)
    # a row without its recording is scored from its image
    Xm = Xte.iloc[:5].copy()
    Xm["audio"] = None
    np.testing.assert_allclose(
        model.predict_proba(Xm), model.modality_proba(Xte.iloc[:5])["image"]
    )
