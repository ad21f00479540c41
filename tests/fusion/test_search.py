"""FusionSearchCV, the non-negative stacking meta-model and learnt weights."""

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

import mmfeat
from mmfeat.exceptions import ParameterError
from mmfeat.fusion import (
    FusionSearchCV,
    LateFusionClassifier,
    ModalityStackingClassifier,
    NonNegativeLogisticRegression,
    get_modalities,
    predict_with_presence,
)
from mmfeat.fusion._meta import choose_meta_C
from mmfeat.utils._fusion_weights import learn_weights
from tests.fusion._helpers import ab_estimators, av_data, av_modalities, numeric_data

MODEL_LEVEL = ["single", "late", "late-learned", "stacking"]


def _weak_data(n=600, seed=0, k=6):
    """``a`` knows the class well; ``w`` is a weak, noisy modality."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    strong = np.eye(k)[y] * 2.0 + rng.normal(0, 0.9, (n, k))
    weak = np.eye(k)[y] * 0.3 + rng.normal(0, 1.0, (n, k))
    cols = {f"a{i}": strong[:, i] for i in range(k)}
    cols.update({f"w{i}": weak[:, i] for i in range(k)})
    return pd.DataFrame(cols), y


def _weak_estimators(k=6):
    return [
        ("a", LogisticRegression(max_iter=1000), [f"a{i}" for i in range(k)]),
        ("w", LogisticRegression(max_iter=1000), [f"w{i}" for i in range(k)]),
    ]


# -- learnt late-fusion weights -------------------------------------------------
def test_learn_weights_is_the_simplex_optimum_and_reaches_zero():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    good = np.full((300, 3), 0.1)
    good[np.arange(300), y] = 0.8
    noise = rng.dirichlet(np.ones(3), 300)
    fair = 0.5 * good + 0.5 * rng.dirichlet(np.ones(3), 300)
    w = learn_weights([good, noise, fair], y)
    assert w[1] == 0.0 and abs(w.sum() - 1) < 1e-12

    def loss(v):
        p = sum(vi * P for vi, P in zip(v, (good, noise, fair)))
        return -np.log(p[np.arange(300), y]).mean()

    grid = [
        np.array(v) / 20 for v in itertools.product(range(21), repeat=3) if sum(v) == 20
    ]
    best = min(grid, key=loss)
    assert loss(w) <= loss(best) + 1e-9


# -- the non-negative meta-model ------------------------------------------------------
def test_non_negative_logistic_regression_without_constraints_is_sklearns():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] - X[:, 1] + rng.normal(0, 0.5, 200) > 0).astype(int) + (X[:, 2] > 1)
    ours = NonNegativeLogisticRegression(C=0.7, free_columns=[0, 1, 2, 3]).fit(X, y)
    ref = LogisticRegression(C=0.7, tol=1e-10, max_iter=5000).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)


def test_non_negative_coefficients_and_the_weak_columns_go_to_zero():
    X, y = _weak_data()
    model = NonNegativeLogisticRegression(C=1.0).fit(X.to_numpy(), y)
    assert (model.coef_ >= 0).all()
    assert model.predict(X.to_numpy()).shape == (len(y),)
    binary = NonNegativeLogisticRegression().fit(X.to_numpy()[:, :2], y % 2)
    assert binary.decision_function(X.to_numpy()[:, :2]).shape == (len(y),)


def test_choose_meta_c_keeps_groups_together_and_picks_from_the_grid():
    X, y = _weak_data(n=300)
    Z = X.to_numpy()
    groups = np.arange(len(y)) // 2
    C, losses = choose_meta_C(Z, y, None, groups, [], (0.01, 1.0, 100.0))
    assert C in (0.01, 1.0, 100.0) and set(losses) == {0.01, 1.0, 100.0}
    assert losses[0.01] > min(losses.values())  # far too strong a penalty


def test_stacking_with_a_weak_modality_does_not_fall_below_the_strong_one():
    X, y = _weak_data(n=900, seed=1)
    train, test = np.arange(600), np.arange(600, 900)
    strong = LogisticRegression(max_iter=1000).fit(X.iloc[train, :6], y[train])
    alone = strong.score(X.iloc[test, :6], y[test])
    stack = ModalityStackingClassifier(_weak_estimators(), cv=5).fit(
        X.iloc[train], y[train]
    )
    assert stack.score(X.iloc[test], y[test]) >= alone - 0.01
    old = ModalityStackingClassifier(
        _weak_estimators(), cv=5, final_estimator=LogisticRegression(max_iter=1000)
    ).fit(X.iloc[train], y[train])
    assert stack.score(X.iloc[test], y[test]) >= old.score(X.iloc[test], y[test]) - 0.01


# -- FusionSearchCV --------------------------------------------------------------
def test_search_scores_every_candidate_on_the_same_folds():
    X, y = numeric_data(n=150)
    search = FusionSearchCV(ab_estimators(), candidates=MODEL_LEVEL + ["early"], cv=3)
    search.fit(X, y)
    res = pd.DataFrame(search.cv_results_)
    assert res["candidate"].tolist() == [
        "a alone",
        "b alone",
        "late",
        "late-learned",
        "stacking",
        "early",
    ]
    splits = res[[f"split{i}_test_score" for i in range(3)]].to_numpy()
    np.testing.assert_allclose(res["mean_test_score"], splits.mean(axis=1))
    assert res["rank_test_score"].min() == 1
    best = res.loc[res["mean_test_score"].idxmax()]
    assert search.best_candidate_ == best["candidate"]
    assert search.best_score_ == best["mean_test_score"]
    assert search.predict(X).shape == (150,)
    assert search.classes_.tolist() == [0, 1]


def test_search_never_picks_worse_than_the_best_single_in_cv_and_reports_weights():
    X, y = _weak_data(n=600)
    search = FusionSearchCV(_weak_estimators(), candidates=MODEL_LEVEL, cv=5).fit(X, y)
    scores = pd.DataFrame(search.cv_results_).set_index("candidate")["mean_test_score"]
    assert search.best_score_ >= max(scores["a alone"], scores["w alone"])
    assert set(search.learned_weights_) == {"a", "w"}
    assert (
        "a "
        in pd.DataFrame(search.cv_results_)
        .set_index("candidate")
        .loc["late-learned", "note"]
    )


def test_search_picks_a_fused_model_when_the_modalities_complement_each_other():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    # a tells {0,1} from {2,3}; b tells even from odd: only together all four
    X = pd.DataFrame(
        {
            "a": (y >= 2) + rng.normal(0, 0.2, 400),
            "b": (y % 2) + rng.normal(0, 0.2, 400),
        }
    )
    search = FusionSearchCV(ab_estimators(), candidates=MODEL_LEVEL, cv=3).fit(X, y)
    assert search.best_candidate_ in ("late", "late-learned", "stacking")
    assert search.best_score_ > 0.9
    assert (
        pd.DataFrame(search.cv_results_)
        .set_index("candidate")
        .loc["a alone", "mean_test_score"]
        < 0.6
    )


def test_search_refits_the_winner_as_that_candidate_alone_would_be():
    X, y = numeric_data(n=120)
    search = FusionSearchCV(
        ab_estimators(), candidates=["late"], cv=3, all_missing="prior"
    ).fit(X, y)
    direct = LateFusionClassifier(ab_estimators(), all_missing="prior").fit(X, y)
    assert isinstance(search.best_estimator_, LateFusionClassifier)
    np.testing.assert_allclose(search.predict_proba(X), direct.predict_proba(X))
    assert search.best_estimator_.all_missing == "prior"


def test_search_with_images_and_text_is_a_fusion_model_for_the_tools(tmp_path):
    X, y = av_data(n=60, text_flip=0.2)
    search = FusionSearchCV(
        av_modalities(), candidates=["single", "late", "early"], cv=3
    )
    search.fit(X, y)
    names = [m.name for m in get_modalities(search)]
    assert names in (["image"], ["text"], ["image", "text"])
    proba, presence = predict_with_presence(search, X)
    assert proba.shape == (60, 2)
    path = tmp_path / "auto.skops"
    mmfeat.save(search, path)
    np.testing.assert_allclose(mmfeat.load(path).predict_proba(X), proba)


def test_search_candidates_are_checked():
    X, y = numeric_data(n=60)
    with pytest.raises(ParameterError, match="candidates"):
        FusionSearchCV(ab_estimators(), candidates=["magic"]).fit(X, y)
    one = FusionSearchCV([("a", GaussianNB(), ["a"])], cv=3).fit(X, y)
    assert one.cv_results_["candidate"] == ["a alone"]


@pytest.mark.parametrize(
    "late, selection, chosen",
    [
        ([0.90, 0.91, 0.905], "paired-se", 0),  # +0.5 points, within the noise
        ([0.90, 0.91, 0.905], "best", 2),
        ([0.95, 0.96, 0.95], "paired-se", 2),  # +5 points on every fold
    ],
)
def test_a_fusion_must_beat_the_best_modality_by_more_than_the_noise(
    late, selection, chosen
):
    single = [0.88, 0.92, 0.90]
    frame = pd.DataFrame(
        {
            "candidate": ["a alone", "b alone", "late"],
            "kind": ["single", "single", "late"],
            "mean_test_score": [np.mean(single), 0.5, np.mean(late)],
            **{f"split{i}_test_score": [single[i], 0.5, late[i]] for i in range(3)},
        }
    )
    search = FusionSearchCV(ab_estimators(), selection=selection)
    assert search._choose(frame, 3) == chosen
