"""Tests for LateFusionClassifier (``mmfeat/fusion/_late.py``).

Expectations are hand-checkable: the late fusion of equal weights is the mean
of the modality models' probabilities (the fitted ``named_estimators_``
applied to their own columns), a row missing one modality gets exactly the
other one's probabilities, and so on. Behaviour shared with
ModalityStackingClassifier is tested in ``test_base.py``.
"""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import LateFusionClassifier, ModalityStackingClassifier
from mmfeat.fusion._modality import LogisticCalibratedClassifier
from tests.fusion._helpers import (
    ab_estimators,
    av_data,
    av_modalities,
    expect_columns,
    numeric_data,
    own_proba,
    small_hog,
)

# ---------------------------------------------------------------- late fusion: weights


def test_equal_weights_is_mean_of_modality_probas():
    X, y = numeric_data()
    model = LateFusionClassifier(ab_estimators()).fit(X, y)
    assert model.weights_ == {"a": 0.5, "b": 0.5}
    assert model.oof_proba_ is None
    pa, pb = own_proba(model, "a", X, ["a"]), own_proba(model, "b", X, ["b"])
    np.testing.assert_allclose(model.predict_proba(X), (pa + pb) / 2)
    np.testing.assert_array_equal(model.classes_, [0, 1])
    np.testing.assert_array_equal(
        model.predict(X), model.classes_[np.argmax((pa + pb) / 2, axis=1)]
    )
    assert model.n_training_rows_ == {"a": 120, "b": 120}
    assert model.n_features_in_ == 4
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "z"])


def test_each_modality_model_is_fitted_on_its_own_column_only():
    X, y = numeric_data()
    model = LateFusionClassifier(ab_estimators()).fit(X, y)
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
    X, y = numeric_data()
    model = LateFusionClassifier(ab_estimators(), weights=weights).fit(X, y)
    assert model.weights_.keys() == expected.keys()
    for name, w in expected.items():
        assert model.weights_[name] == pytest.approx(w)
    pa, pb = own_proba(model, "a", X, ["a"]), own_proba(model, "b", X, ["b"])
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
    X, y = numeric_data(n=20)
    with pytest.raises(ParameterError):
        LateFusionClassifier(ab_estimators(), weights=weights).fit(X, y)


def test_unknown_weight_name_is_named_in_the_error():
    X, y = numeric_data(n=20)
    with pytest.raises(ParameterError, match="nope"):
        LateFusionClassifier(ab_estimators(), weights={"nope": 1.0}).fit(X, y)


def test_learned_weights_favour_the_informative_modality():
    X, y = numeric_data(n=200)
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
    pa, pn = own_proba(model, "a", X, ["a"]), own_proba(model, "noise", X, ["c"])
    np.testing.assert_allclose(
        model.predict_proba(X), w["a"] * pa + w["noise"] * pn, atol=1e-12
    )


def test_learned_weights_with_one_modality_is_one():
    X, y = numeric_data(n=40)
    model = LateFusionClassifier(
        [("a", LogisticRegression(), ["a"])], weights="learn", cv=2
    ).fit(X, y)
    assert model.weights_ == {"a": 1.0}


# ---------------------------------------------------------------- missing modalities


def test_row_missing_one_modality_gets_the_other_modalitys_proba():
    X, y = numeric_data()
    model = LateFusionClassifier(ab_estimators(), weights={"a": 3.0, "b": 1.0}).fit(
        X, y
    )
    Xt = X.iloc[:6].copy()
    Xt.loc[1, "a"] = np.nan
    Xt.loc[4, "b"] = np.nan
    proba = model.predict_proba(Xt)
    assert not np.isnan(proba).any()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    full = X.iloc[:6]
    pa, pb = own_proba(model, "a", full, ["a"]), own_proba(model, "b", full, ["b"])
    np.testing.assert_allclose(proba[1], pb[1])
    np.testing.assert_allclose(proba[4], pa[4])
    for i in (0, 2, 3, 5):
        np.testing.assert_allclose(proba[i], 0.75 * pa[i] + 0.25 * pb[i])


def test_row_whose_present_modalities_all_weigh_zero_falls_back_to_them():
    X, y = numeric_data()
    model = LateFusionClassifier(ab_estimators(), weights={"a": 1.0, "b": 0.0}).fit(
        X, y
    )
    Xt = X.iloc[:3].copy()
    Xt.loc[0, "a"] = np.nan
    proba = model.predict_proba(Xt)
    pb = own_proba(model, "b", X.iloc[:3], ["b"])
    np.testing.assert_allclose(proba[0], pb[0])
    np.testing.assert_allclose(proba[1:], own_proba(model, "a", X.iloc[:3], ["a"])[1:])


def test_modality_proba_gives_nan_rows_where_missing():
    X, y = numeric_data()
    model = LateFusionClassifier(ab_estimators()).fit(X, y)
    Xt = X.iloc[:4].copy()
    Xt.loc[2, "a"] = np.nan
    probas = model.modality_proba(Xt)
    assert list(probas) == ["a", "b"]
    assert probas["a"].shape == probas["b"].shape == (4, 2)
    np.testing.assert_array_equal(np.isnan(probas["a"]).all(axis=1), [0, 0, 1, 0])
    assert not np.isnan(probas["b"]).any()
    np.testing.assert_allclose(probas["b"], own_proba(model, "b", Xt, ["b"]))
    keep = [0, 1, 3]
    np.testing.assert_allclose(
        probas["a"][keep], own_proba(model, "a", Xt.iloc[keep], ["a"])
    )


def test_training_rows_missing_a_modality_are_left_out_of_its_model():
    X, y = numeric_data(n=80)
    X.loc[[0, 5, 9], "a"] = np.nan
    model = LateFusionClassifier(ab_estimators()).fit(X, y)
    assert model.n_training_rows_ == {"a": 77, "b": 80}
    keep = np.setdiff1d(np.arange(80), [0, 5, 9])
    ref = LogisticRegression().fit(X[["a"]].iloc[keep], y[keep])
    np.testing.assert_allclose(model.named_estimators_["a"].coef_, ref.coef_)


def test_class_prior_follows_sample_weight():
    X, y = numeric_data(n=40)
    sw = np.where(y == 1, 3.0, 1.0)
    model = LateFusionClassifier(ab_estimators(), all_missing="prior").fit(
        X, y, sample_weight=sw
    )
    np.testing.assert_allclose(model.class_prior_, [0.25, 0.75])


def test_row_order_and_index_do_not_matter():
    X, y = numeric_data(n=60)
    model = LateFusionClassifier(ab_estimators()).fit(X, y)
    np.testing.assert_allclose(
        model.predict_proba(X.iloc[::-1]), model.predict_proba(X)[::-1]
    )


# ---------------------------------------------------------------- labels


def test_late_fusion_three_classes_equal_weights_is_mean():
    X, y = numeric_data(n=150, labels=("dog", "cat", "bird"))
    model = LateFusionClassifier(ab_estimators()).fit(X, y)
    pa, pb = own_proba(model, "a", X, ["a"]), own_proba(model, "b", X, ["b"])
    np.testing.assert_allclose(model.predict_proba(X), (pa + pb) / 2)


# ---------------------------------------------------------------- calibration, columns


def test_wrong_columns_fail_the_check_transformer():
    # sanity check of the helper above: a modality given the wrong columns fails
    X, y = numeric_data(n=20)
    estimators = [
        ("a", make_pipeline(expect_columns(["b"]), LogisticRegression()), ["a"])
    ]
    with pytest.raises(AssertionError):
        LateFusionClassifier(estimators).fit(X, y)


def test_missing_column_at_predict_raises():
    X, y = numeric_data(n=40)
    model = LateFusionClassifier(ab_estimators()).fit(X, y)
    with pytest.raises(ValueError):
        model.predict_proba(X.drop(columns="b"))


# ---------------------------------------------------------------- parameter checks


def test_one_class_raises():
    X, _ = numeric_data(n=20)
    with pytest.raises(ValueError, match="2 classes"):
        LateFusionClassifier(ab_estimators()).fit(X, np.zeros(20))


def test_unknown_column_raises_input_error():
    X, y = numeric_data(n=20)
    with pytest.raises(InputError, match="nope"):
        LateFusionClassifier([("a", LogisticRegression(), ["nope"])]).fit(X, y)


# ---------------------------------------------------------------- image + text


def test_image_and_text_late_fusion_with_missing_items():
    X, y = av_data(n=60)
    Xte, yte = av_data(n=20, seed=1)
    model = LateFusionClassifier(av_modalities(text_final=LinearSVC())).fit(X, y)
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


def test_unreadable_image_at_predict_is_scored_from_text(tmp_path):
    X, y = av_data(n=60)
    Xte, _ = av_data(n=6, seed=1)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    model = LateFusionClassifier(av_modalities(on_error="missing")).fit(X, y)
    Xm = Xte.copy()
    Xm.loc[0, "image"] = str(bad)
    Xm.loc[1, "image"] = str(tmp_path / "does-not-exist.png")
    proba = model.predict_proba(Xm)
    assert not np.isnan(proba).any()
    text = model.named_estimators_["text"].predict_proba(Xte["text"])
    np.testing.assert_allclose(proba[:2], text[:2])
    np.testing.assert_allclose(proba[2:], model.predict_proba(Xte)[2:])
    assert np.isnan(model.modality_proba(Xm)["image"][:2]).all()

    stack = ModalityStackingClassifier(av_modalities(on_error="missing"), cv=3)
    proba = stack.fit(X, y).predict_proba(Xm)
    assert not np.isnan(proba).any()


def test_unreadable_image_at_fit_is_left_out_of_the_image_model(tmp_path):
    X, y = av_data(n=60)
    X.loc[3, "image"] = str(tmp_path / "does-not-exist.png")
    X.loc[7, "image"] = None
    model = LateFusionClassifier(av_modalities(on_error="missing")).fit(X, y)
    assert model.n_training_rows_ == {"image": 58, "text": 60}


def test_unreadable_image_with_on_error_raise_raises_at_predict(tmp_path):
    X, y = av_data(n=40)
    model = LateFusionClassifier(av_modalities()).fit(X, y)
    Xm = X.iloc[:2].copy()
    Xm.loc[0, "image"] = str(tmp_path / "does-not-exist.png")
    with pytest.raises(InputError):
        model.predict_proba(Xm)


def test_image_and_text_rows_missing_both_raise():
    X, y = av_data(n=40)
    model = LateFusionClassifier(av_modalities()).fit(X, y)
    Xm = X.iloc[:4].copy()
    Xm.loc[2, ["image", "text"]] = None
    with pytest.raises(InputError, match=r"\[2\]"):
        model.predict(Xm)


# ---------------------------------------------------------------- prefit models


def test_prefit_with_string_labels_and_late_fusion_learn():
    X, y = numeric_data(n=200, labels=("no", "yes"))
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


# ---------------------------------------------------------------- sample_weight


def test_zero_sample_weight_is_dropping_the_rows_late_fusion():
    X, y = numeric_data(n=100)
    sw = np.ones(100)
    sw[:30] = 0.0
    lr = LogisticRegression(tol=1e-10, max_iter=10_000)
    weighted = LateFusionClassifier(ab_estimators(lr, clone(lr))).fit(
        X, y, sample_weight=sw
    )
    dropped = LateFusionClassifier(ab_estimators(lr, clone(lr))).fit(
        X.iloc[30:], y[30:]
    )
    unweighted = LateFusionClassifier(ab_estimators(lr, clone(lr))).fit(X, y)
    np.testing.assert_allclose(
        weighted.predict_proba(X), dropped.predict_proba(X), atol=1e-6
    )
    assert not np.allclose(weighted.predict_proba(X), unweighted.predict_proba(X))
    np.testing.assert_allclose(weighted.class_prior_, dropped.class_prior_)


def test_sample_weight_reaches_a_calibrated_model():
    X, y = numeric_data(n=120)
    sw = np.linspace(0.5, 2.0, 120)
    model = LateFusionClassifier([("a", LinearSVC(), ["a"])]).fit(
        X, y, sample_weight=sw
    )
    plain = LateFusionClassifier([("a", LinearSVC(), ["a"])]).fit(X, y)
    assert not np.allclose(model.predict_proba(X), plain.predict_proba(X))


def test_sample_weight_for_a_model_without_it_is_not_an_error():
    X, y = numeric_data(n=60)

    class NoWeights(LogisticRegression):
        def fit(self, X, y):
            return super().fit(X, y)

    sw = np.ones(60)
    model = LateFusionClassifier(ab_estimators(NoWeights(), LogisticRegression()))
    model.fit(X, y, sample_weight=sw)
    assert not np.isnan(model.predict_proba(X)).any()


# ---------------------------------------------------------------- params, grid search


def test_get_and_set_nested_params_keep_the_columns():
    model = LateFusionClassifier(av_modalities())
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
    X, y = av_data(n=60, image_noise=1.5, text_flip=0.2)
    grid = GridSearchCV(
        LateFusionClassifier(av_modalities()),
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
        ModalityStackingClassifier(av_modalities(), cv=2),
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
                make_pipeline(small_hog(), LogisticRegression(max_iter=2000)),
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
