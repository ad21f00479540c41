import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC, LinearSVC

from mmfeat.fusion import LateFusionClassifier, ModalityStackingClassifier
from mmfeat.fusion._modality import LogisticCalibratedClassifier, resolve_cv


def test_group_folds_keep_each_group_in_one_test_fold():
    y = np.repeat([0, 1], 40)
    groups = np.arange(80) // 4
    splits = resolve_cv(4, y, groups)
    assert len(splits) == 4
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
    assert np.array_equal(
        np.sort(np.concatenate([t for _, t in splits])), np.arange(80)
    )


@pytest.fixture(scope="module")
def twins():
    """Each record twice; ``id`` identifies it and says nothing across records."""
    rng = np.random.default_rng(0)
    n = 150
    y = rng.integers(0, 2, n)
    signal = y + rng.normal(0, 0.8, n)
    frame = pd.DataFrame({"id": np.arange(n, dtype=float), "signal": signal})
    frame = pd.concat([frame, frame], ignore_index=True)
    return frame, np.concatenate([y, y]), frame["id"].to_numpy()


def test_groups_stop_duplicates_from_inflating_learned_weights(twins):
    X, y, groups = twins
    mods = [
        ("memory", KNeighborsClassifier(n_neighbors=1), ["id"]),
        ("signal", LogisticRegression(), ["signal"]),
    ]
    leaky = LateFusionClassifier(mods, weights="learn", cv=3).fit(X, y)
    honest = LateFusionClassifier(mods, weights="learn", cv=3).fit(X, y, groups=groups)
    # without groups the 1-NN finds each row's twin in the training folds
    assert leaky.weights_["memory"] > 0.5
    assert honest.weights_["memory"] < 0.1 < honest.weights_["signal"]


def test_groups_must_match_rows(twins):
    X, y, groups = twins
    model = ModalityStackingClassifier([("s", LogisticRegression(), ["signal"])], cv=3)
    with pytest.raises(ValueError, match="one entry per row"):
        model.fit(X, y, groups=groups[:-1])


def test_logistic_calibration_of_decision_values():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 50)
    X = rng.normal(0, 1, (150, 4)) + y[:, None]
    model = LogisticCalibratedClassifier(SVC(C=1.0), cv=3).fit(X, y)
    # SVC's one-vs-one margins are used; predictions are the SVC's own
    assert model.estimator_.decision_function_shape == "ovo"
    assert model.estimator.decision_function_shape == "ovr"  # not changed
    proba = model.predict_proba(X)
    assert proba.shape == (150, 3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.mean(proba.argmax(1) == model.predict(X)) > 0.95
    # binary problems: one decision column
    binary = LogisticCalibratedClassifier(LinearSVC(), cv=3).fit(X[:100], y[:100])
    assert binary.predict_proba(X[:100]).shape == (100, 2)
    # prefit: the given model is used as it is, only the map is fitted
    fitted = LinearSVC().fit(X, y)
    prefit = LogisticCalibratedClassifier(fitted, cv="prefit").fit(X, y)
    assert prefit.estimator_ is fitted
