"""Tests for ModalityStackingClassifier (``mmfeat/fusion/_stacking.py``).

The meta-model sees out-of-fold modality probabilities plus a missing
indicator per modality; prefit models, passthrough columns and
``drop_modalities`` are checked against what a hand-built model gives.
Behaviour shared with LateFusionClassifier is tested in ``test_base.py``.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import KFold, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from mmfeat.exceptions import ParameterError
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import (
    LateFusionClassifier,
    ModalityStackingClassifier,
    NonNegativeLogisticRegression,
)
from mmfeat.fusion._stacking import META_CS
from tests.fusion._helpers import (
    ab_estimators,
    av_data,
    av_modalities,
    expect_columns,
    numeric_data,
    own_proba,
    small_hog,
)

# ---------------------------------------------------------------- missing modalities


def test_stacking_row_missing_a_modality_is_scored_without_nan():
    X, y = numeric_data(n=120)
    model = ModalityStackingClassifier(ab_estimators(), cv=3).fit(X, y)
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


@pytest.mark.parametrize(
    "cv", [KFold(3, shuffle=True, random_state=0), list(KFold(3).split(np.zeros(60)))]
)
def test_stacking_accepts_a_splitter_or_splits(cv):
    X, y = numeric_data(n=60)
    model = ModalityStackingClassifier(ab_estimators(), cv=cv).fit(X, y)
    assert not np.isnan(model.oof_proba_["a"]).any()
    assert np.mean(model.predict(X) == y) > 0.8


# ---------------------------------------------------------------- decision_function


def test_stacking_decision_function():
    X, y = numeric_data(n=120)
    model = ModalityStackingClassifier(ab_estimators(), cv=3, all_missing="prior").fit(
        X, y
    )
    scores = model.decision_function(X)
    assert scores.shape == (120,)
    np.testing.assert_array_equal(model.predict(X), model.classes_[(scores > 0) * 1])
    Xt = X.iloc[:3].copy()
    Xt.loc[0, ["a", "b"]] = np.nan
    prior = model.class_prior_
    assert model.decision_function(Xt)[0] == pytest.approx(np.log(prior[1] / prior[0]))

    X3, y3 = numeric_data(n=150, labels=("x", "y", "z"))
    model3 = ModalityStackingClassifier(ab_estimators(), cv=3).fit(X3, y3)
    scores3 = model3.decision_function(X3)
    assert scores3.shape == (150, 3)
    np.testing.assert_array_equal(
        model3.predict(X3), model3.classes_[scores3.argmax(axis=1)]
    )


def test_stacking_meta_model_without_predict_proba_still_predicts():
    X, y = numeric_data(n=90)
    model = ModalityStackingClassifier(
        ab_estimators(), final_estimator=LinearSVC(), cv=3
    )
    model.fit(X, y)
    scores = model.decision_function(X)
    np.testing.assert_array_equal(model.predict(X), model.classes_[(scores > 0) * 1])


def test_stacking_decision_function_only_when_the_meta_model_has_it():
    assert hasattr(ModalityStackingClassifier(ab_estimators()), "decision_function")
    model = ModalityStackingClassifier(ab_estimators(), final_estimator=GaussianNB())
    assert not hasattr(model, "decision_function")
    assert not hasattr(LateFusionClassifier(ab_estimators()), "decision_function")


# ---------------------------------------------------------------- parameter checks


def test_stacking_needs_cv():
    X, y = numeric_data(n=20)
    with pytest.raises(ParameterError):
        ModalityStackingClassifier(ab_estimators(), cv=None).fit(X, y)


# ---------------------------------------------------------------- image + text


def test_image_and_text_stacking_with_missing_items():
    X, y = av_data(n=60)
    Xte, yte = av_data(n=20, seed=1)
    model = ModalityStackingClassifier(av_modalities(), cv=3).fit(X, y)
    assert model.final_estimator_.n_features_in_ == 6
    Xm = Xte.copy()
    Xm.loc[[0, 1], "image"] = None
    Xm.loc[[2], "text"] = None
    proba = model.predict_proba(Xm)
    assert not np.isnan(proba).any()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(model.predict(Xm) == yte) == 1.0


# ---------------------------------------------------------------- prefit, passthrough


def test_stacking_prefit_uses_the_given_models():
    X, y = av_data(n=80, text_flip=0.2)
    X1, X2, y1, y2 = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    image = make_pipeline(small_hog(), LogisticRegression()).fit(X1["image"], y1)
    text = make_pipeline(TfidfExtractor(), LogisticRegression()).fit(X1["text"], y1)
    estimators = [("image", image, "image"), ("text", text, "text")]
    prefit = ModalityStackingClassifier(estimators, cv="prefit").fit(X2, y2)
    assert prefit.estimators_[0] is image and prefit.estimators_[1] is text
    assert prefit.oof_proba_ is None
    assert prefit.n_training_rows_ is None
    probas = prefit.modality_proba(X2)
    np.testing.assert_allclose(probas["image"], image.predict_proba(X2["image"]))
    np.testing.assert_allclose(probas["text"], text.predict_proba(X2["text"]))

    fitted = ModalityStackingClassifier(av_modalities(), cv=3).fit(X2, y2)
    assert fitted.estimators_[0] is not fitted.estimators[0][1]
    with pytest.raises(NotFittedError):
        fitted.estimators[0][1].predict(X2["image"])  # the given ones stay unfitted
    assert set(fitted.oof_proba_) == {"image", "text"}
    Xte, yte = av_data(n=20, seed=3)
    assert np.mean(prefit.predict(Xte) == yte) >= 0.9
    assert np.mean(fitted.predict(Xte) == yte) >= 0.9


def test_prefit_unfitted_or_with_unknown_classes_raises():
    X, y = numeric_data(n=40)
    with pytest.raises(NotFittedError):
        ModalityStackingClassifier(ab_estimators(), cv="prefit").fit(X, y)
    a = LogisticRegression().fit(X[["a"]], np.where(y == 1, 1, 7))
    b = LogisticRegression().fit(X[["b"]], y)
    with pytest.raises(ParameterError, match="7"):
        ModalityStackingClassifier(ab_estimators(a, b), cv="prefit").fit(X, y)


def test_prefit_model_without_predict_proba_is_not_used_as_hard_votes():
    """A prefit LinearSVC should give graded (calibrated) probabilities."""
    X, y = numeric_data(n=200)
    a = LinearSVC().fit(X[["a"]].iloc[:100], y[:100])
    b = LogisticRegression().fit(X[["b"]].iloc[:100], y[:100])
    model = ModalityStackingClassifier(ab_estimators(a, b), cv="prefit").fit(
        X.iloc[100:], y[100:]
    )
    pa = model.modality_proba(X.iloc[100:])["a"]
    np.testing.assert_allclose(pa.sum(axis=1), 1.0)
    assert ((pa > 0) & (pa < 1)).all(), "prefit LinearSVC gave 0/1 probabilities"


def test_stacking_meta_features_and_oof():
    X, y = numeric_data(n=90, labels=("x", "y", "z"))
    model = ModalityStackingClassifier(ab_estimators(), cv=3).fit(X, y)
    # 3 probabilities + 1 indicator per modality
    assert model.final_estimator_.n_features_in_ == 8
    # the default meta-model: non-negative on the probabilities, the
    # indicators (columns 3 and 7) free
    meta = model.final_estimator_
    assert isinstance(meta, NonNegativeLogisticRegression)
    assert meta.free_columns.tolist() == [3, 7]
    probability = np.r_[0:3, 4:7]
    assert (meta.coef_[:, probability] >= 0).all()
    assert meta.C in META_CS and set(model.meta_cv_loss_) == set(META_CS)
    for p in model.oof_proba_.values():
        assert p.shape == (90, 3)
        assert not np.isnan(p).any()
    # out-of-fold, not in-sample: different from the full models' proba
    full = own_proba(model, "a", X, ["a"])
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
    plain = ModalityStackingClassifier(ab_estimators(), cv=3).fit(Xtr, ytr)
    through = ModalityStackingClassifier(ab_estimators(), cv=3, passthrough=True).fit(
        Xtr, ytr
    )
    assert plain.passthrough_columns_ == []
    assert through.passthrough_columns_ == ["z"]
    assert through.final_estimator_.n_features_in_ == 7
    assert np.mean(through.predict(Xte) == yte) > 0.95
    assert np.mean(plain.predict(Xte) == yte) < 0.8
    listed = ModalityStackingClassifier(ab_estimators(), cv=3, passthrough=["z"]).fit(
        Xtr, ytr
    )
    assert listed.passthrough_columns_ == ["z"]
    np.testing.assert_allclose(listed.predict_proba(Xte), through.predict_proba(Xte))
    # NaN in a passed-through column becomes 0, no NaN out
    Xn = Xte.copy()
    Xn.iloc[0, Xn.columns.get_loc("z")] = np.nan
    assert not np.isnan(through.predict_proba(Xn)).any()


def test_stacking_passthrough_true_skips_columns_read_by_position():
    X, y = numeric_data(n=60)
    estimators = [("a", LogisticRegression(), [0]), ("b", LogisticRegression(), [1])]
    model = ModalityStackingClassifier(estimators, cv=3, passthrough=True).fit(X, y)
    assert model.passthrough_columns_ == ["c", "z"]


def test_stacking_passthrough_true_skips_columns_read_by_name_string():
    X, y = numeric_data(n=60)
    estimators = [
        ("a", make_pipeline(expect_columns("a"), LogisticRegression()), "a"),
        ("b", LogisticRegression(), slice(1, 2)),
    ]
    model = ModalityStackingClassifier(estimators, cv=3, passthrough=True).fit(X, y)
    assert model.passthrough_columns_ == ["c", "z"]


@pytest.mark.parametrize("passthrough", [["nope"], ["a", "nope"], ["name"]])
def test_bad_passthrough_raises_parameter_error(passthrough):
    X, y = numeric_data(n=30)
    X["name"] = "x"
    with pytest.raises(ParameterError):
        ModalityStackingClassifier(ab_estimators(), cv=3, passthrough=passthrough).fit(
            X, y
        )


def test_passthrough_needs_a_dataframe():
    X, y = numeric_data(n=30)
    with pytest.raises(ParameterError):
        ModalityStackingClassifier(
            [("a", LogisticRegression(), [0]), ("b", LogisticRegression(), [1])],
            cv=3,
            passthrough=True,
        ).fit(X.to_numpy(), y)


def test_drop_modalities_scores_text_only_rows_like_the_text_model():
    # image: clean stripes; text: right words 85% of the time. Training rows
    # have both; test rows lack the image.
    X, y = av_data(n=200, text_flip=0.15)
    Xte, yte = av_data(n=200, seed=1, text_flip=0.15)
    Xm = Xte.copy()
    Xm["image"] = None
    model = ModalityStackingClassifier(av_modalities(), cv=3).fit(X, y)
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
    no_drop = ModalityStackingClassifier(av_modalities(), cv=3, drop_modalities=False)
    assert log_loss(yte, no_drop.fit(X, y).predict_proba(Xm)) > text_loss + 0.1


# ---------------------------------------------------------------- sample_weight


def test_zero_sample_weight_is_dropping_the_rows_prefit_stacking():
    X, y = numeric_data(n=200)
    a = LogisticRegression().fit(X[["a"]].iloc[:100], y[:100])
    b = LogisticRegression().fit(X[["b"]].iloc[:100], y[:100])
    meta = LogisticRegression(tol=1e-10, max_iter=10_000)
    held, yh = X.iloc[100:], y[100:]
    sw = np.ones(100)
    sw[:40] = 0.0
    weighted = ModalityStackingClassifier(
        ab_estimators(a, b), cv="prefit", final_estimator=meta
    ).fit(held, yh, sample_weight=sw)
    dropped = ModalityStackingClassifier(
        ab_estimators(a, b), cv="prefit", final_estimator=meta
    ).fit(held.iloc[40:], yh[40:])
    np.testing.assert_allclose(
        weighted.final_estimator_.coef_, dropped.final_estimator_.coef_, atol=1e-5
    )
