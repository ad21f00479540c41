"""Calibrating a classifier without predict_proba costs no inner CV per fold."""

import numpy as np
import pandas as pd
import pytest
from sklearn.svm import LinearSVC

from mmfeat.fusion import LateFusionClassifier, ModalityStackingClassifier


class CountingSVC(LinearSVC):
    fits = 0

    def fit(self, X, y, sample_weight=None):
        type(self).fits += 1
        return super().fit(X, y, sample_weight=sample_weight)


def _table(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = pd.DataFrame({"a": y + rng.normal(0, 0.6, n), "b": y + rng.normal(0, 1.5, n)})
    return X, y


@pytest.mark.parametrize(
    "cls, kw",
    [(LateFusionClassifier, {"weights": "learn"}), (ModalityStackingClassifier, {})],
)
def test_a_decision_only_modality_is_fitted_cv_plus_one_times(cls, kw):
    X, y = _table()
    CountingSVC.fits = 0
    model = cls(
        [("a", CountingSVC(), ["a"]), ("b", CountingSVC(), ["b"])], cv=4, **kw
    ).fit(X, y)
    # 4 fold models + 1 full model per modality; a calibration inside each
    # fold (the old way) cost 5 * 4 = 20 per modality
    assert CountingSVC.fits == 2 * 5
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (model.predict(X) == y).mean() > 0.6  # chance is 1/3
    # the out-of-fold probabilities come from the same calibration
    oof = model.oof_proba_["a"]
    assert np.isfinite(oof).all() and np.allclose(oof.sum(axis=1), 1.0)


def test_a_fold_without_some_class_falls_back_to_calibrating_per_fold():
    X, y = _table(n=40)
    y = y.copy()
    y[:] = 0
    y[[1, 2, 3]] = 1  # 3 rows of class 1 across 4 folds: one fold has none
    y[[4, 5, 6, 7, 8, 9]] = 2
    model = LateFusionClassifier(
        [("a", CountingSVC(), ["a"]), ("b", CountingSVC(), ["b"])],
        cv=4,
        weights="learn",
    ).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
