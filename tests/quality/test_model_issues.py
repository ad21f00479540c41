"""Out-of-fold probabilities, label issues, mismatched pairs and learning curves."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from imblearn.over_sampling import RandomOverSampler
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mmfeat import collect_item_errors
from mmfeat.exceptions import ParameterError
from mmfeat.fusion import (
    FusionSearchCV,
    LateFusionClassifier,
    ModalityStackingClassifier,
    make_fuser,
)
from mmfeat.quality import (
    cross_val_modality_proba,
    find_label_issues,
    find_mismatched_pairs,
    learning_curve_report,
    modality_models,
)
from mmfeat.utils._cv import resolve_cv
from mmfeat.utils._item_errors import ItemError, report_item_errors

matplotlib.use("Agg")

A = ["a0", "a1", "a2", "a3"]
B = ["b0", "b1", "b2", "b3"]


def _table(n_per_class=40, n_classes=4, noise=0.6, seed=0):
    """Two informative 4-D modalities (a class centre per axis); the truth is y."""
    rng = np.random.default_rng(seed)
    centres_a = 4.0 * np.eye(n_classes)
    centres_b = 4.0 * np.eye(n_classes)[rng.permutation(n_classes)]
    y = np.repeat(np.arange(n_classes), n_per_class)
    a = centres_a[y] + rng.normal(0, noise, (len(y), n_classes))
    b = centres_b[y] + rng.normal(0, noise, (len(y), n_classes))
    X = pd.DataFrame(np.hstack([a, b]), columns=A + B)
    return X, y


def _late(**kw):
    return LateFusionClassifier(
        [
            ("a", make_pipeline(StandardScaler(), LogisticRegression()), A),
            ("b", make_pipeline(StandardScaler(), LogisticRegression()), B),
        ],
        **kw,
    )


def _corrupt(X, y, seed=1):
    """Flip 6 labels and swap the "a" part of 3 pairs of rows of other classes."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    flipped = order[:6]
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + 1) % (y.max() + 1)
    X = X.copy()
    swapped = []
    rest = list(order[6:])
    while len(swapped) < 6:
        i = rest.pop()
        j = next(k for k in rest if y[k] != y[i])
        rest.remove(j)
        X.loc[[i, j], A] = X.loc[[j, i], A].to_numpy()
        swapped += [i, j]
    return X, noisy, np.sort(flipped), np.sort(swapped)


def test_fused_oof_equals_cross_val_predict_on_the_same_folds():
    X, y = _table()
    model = _late()
    oof = cross_val_modality_proba(model, X, y, cv=4)
    splits = resolve_cv(4, y)
    ref = cross_val_predict(model, X, y, cv=splits, method="predict_proba")
    np.testing.assert_allclose(oof.proba, ref, atol=1e-12)
    # each member's out-of-fold probabilities: the member model alone
    member = make_pipeline(StandardScaler(), LogisticRegression())
    ref_a = cross_val_predict(member, X[A], y, cv=splits, method="predict_proba")
    np.testing.assert_allclose(oof.modality_proba["a"], ref_a, atol=1e-12)
    assert sorted(np.unique(oof.fold)) == [0, 1, 2, 3]
    assert np.array_equal(oof.classes[oof.labels], y)


def test_modality_models_of_a_fuser_pipeline_are_each_block_alone():
    X, y = _table()
    ident = FunctionTransformer()
    model = make_pipeline(
        make_fuser({"a": (ident, A), "b": (ident, B)}), LogisticRegression(C=1.0)
    )
    probes = modality_models(model)
    assert sorted(probes) == ["a", "b"]
    oof = cross_val_modality_proba(model, X, y, cv=3)
    alone = make_pipeline(make_fuser({"a": (ident, A)}), LogisticRegression(C=1.0))
    ref = cross_val_predict(alone, X, y, cv=resolve_cv(3, y), method="predict_proba")
    np.testing.assert_allclose(oof.modality_proba["a"], ref, atol=1e-6)
    # ensembles need no probes: their fold models give modality_proba
    assert modality_models(_late()) == {}
    stacking = ModalityStackingClassifier(_late().estimators, cv=3)
    oof_s = cross_val_modality_proba(stacking, X, y, cv=3)
    assert sorted(oof_s.modality_proba) == ["a", "b"]


def test_label_issues_rank_the_flipped_labels_first_and_match_cleanlab():
    X, y = _table()
    Xc, noisy, flipped, _ = _corrupt(X, y)
    oof = cross_val_modality_proba(_late(), X, noisy, cv=5)
    issues = find_label_issues(_late(), X, noisy, oof=oof)
    assert len(issues) == len(y) and sorted(issues["row"]) == list(range(len(y)))
    assert issues["score"].is_monotonic_decreasing
    top = set(issues["row"][: len(flipped)])
    assert top == set(flipped.tolist())
    # the flag is cleanlab's confident learning on the fused probabilities
    proba = oof.proba / oof.proba.sum(1, keepdims=True)
    ref = cleanlab_find_label_issues(oof.labels, proba)
    flagged = issues.sort_values("row")["is_issue"].to_numpy()
    np.testing.assert_array_equal(flagged, ref)
    # both modalities disagree with a flipped label; the suggestion is the truth
    first = issues.set_index("row").loc[flipped]
    assert (first["disagreeing"] == "a,b").all()
    np.testing.assert_array_equal(first["suggested_label"], y[flipped])
    np.testing.assert_allclose(
        first["a_label_proba"], oof.modality_proba["a"][flipped, noisy[flipped]]
    )


def test_label_issues_name_the_one_modality_that_disagrees():
    X, y = _table()
    Xc, noisy, _, swapped = _corrupt(X, y)
    issues = find_label_issues(_late(), Xc, y, cv=5).set_index("row")
    # labels are right on swapped rows: only modality "a" (the swapped one)
    # disagrees
    assert (issues.loc[swapped, "disagreeing"] == "a").mean() >= 0.8


def test_mismatched_pairs_rank_swapped_rows_first_and_blame_the_swapped_modality():
    X, y = _table()
    Xc, noisy, flipped, swapped = _corrupt(X, y)
    for retriever in (None, "cca", "scm"):
        pairs = find_mismatched_pairs(_late(), Xc, noisy, cv=5, retriever=retriever)
        assert len(pairs) == len(y)
        top = pairs.head(len(swapped))
        assert set(top["row"]) == set(swapped.tolist()), retriever
        assert (top["suspect"] == "a").all()
        # a flipped label is not a mismatch: both modalities agree
        ranked = pairs.set_index("row")["score"].rank(ascending=False)
        assert ranked.loc[flipped].min() > len(swapped)
        if retriever is None:
            assert pairs["retrieval_rank"].isna().all()
        else:
            ranks = pairs.set_index("row")["retrieval_rank"]
            assert ranks.between(0, 1).all()
            assert ranks.loc[swapped].mean() > 4 * ranks.drop(swapped).mean()


def test_mismatched_pairs_read_the_features_of_every_kind_of_fusion_model():
    X, y = _table()
    Xc, noisy, _, swapped = _corrupt(X, y)
    scaler = StandardScaler()
    fuser = make_pipeline(
        make_fuser({"a": (scaler, A), "b": (scaler, B)}), LogisticRegression()
    )
    search = FusionSearchCV(_late().estimators, candidates=["single", "late"], cv=3)
    for model in (fuser, search):
        pairs = find_mismatched_pairs(model, Xc, noisy, cv=4)
        ranks = pairs.set_index("row")["retrieval_rank"]
        assert ranks.notna().all(), type(model).__name__
        assert set(pairs["row"][: len(swapped)]) == set(swapped.tolist())


def test_folds_in_parallel_give_the_same_probabilities_and_report_bad_items():
    X, y = _table()
    X = X.astype(object)
    X.loc[7, "a0"] = "not a number"

    def to_float(frame):
        out = np.full(frame.shape, np.nan)
        for i, row in enumerate(np.asarray(frame, dtype=object)):
            try:
                out[i] = np.asarray(row, dtype=float)
            except ValueError:
                report_item_errors([ItemError(i, "cell", "not a number")])
        return out

    member = make_pipeline(FunctionTransformer(to_float), LogisticRegression())
    model = LateFusionClassifier([("a", member, A), ("b", clone(member), B)])
    with collect_item_errors() as serial_errors:
        serial = cross_val_modality_proba(model, X, y, cv=3)
    with collect_item_errors() as parallel_errors:
        parallel = cross_val_modality_proba(model, X, y, cv=3, n_jobs=2)
    np.testing.assert_allclose(parallel.proba, serial.proba)
    # the bad cell is row 7 of the caller's table, from the worker processes too
    assert {e.row for e in parallel_errors} == {e.row for e in serial_errors} == {7}
    assert np.isnan(serial.modality_proba["a"][7]).all()


def test_mismatched_pairs_need_two_modalities_and_valid_parameters():
    X, y = _table()
    single = LateFusionClassifier([("a", LogisticRegression(), A)])
    with pytest.raises(ParameterError, match="at least two modalities"):
        find_mismatched_pairs(single, X, y, cv=3)
    with pytest.raises(ParameterError, match="retrieval_weight"):
        find_mismatched_pairs(_late(), X, y, retrieval_weight=2.0)
    with pytest.raises(ParameterError, match="retriever"):
        find_mismatched_pairs(_late(), X, y, retriever="knn")


def test_precomputed_oof_must_belong_to_the_labels():
    X, y = _table()
    oof = cross_val_modality_proba(_late(), X, y, cv=3)
    with pytest.raises(ParameterError, match="other labels"):
        find_label_issues(_late(), X, (y + 1) % 4, oof=oof)
    with pytest.raises(ParameterError, match="rows"):
        find_label_issues(_late(), X.iloc[:10], y[:10], oof=oof)
    with pytest.raises(ParameterError, match="predict_proba"):
        cross_val_modality_proba(StandardScaler(), X, y)
    with pytest.raises(ParameterError, match="rows but y"):
        cross_val_modality_proba(_late(), X.iloc[:5], y)


def test_learning_curves_fit_every_model_on_the_same_subsamples():
    X, y = _table(n_per_class=40, noise=2.0)

    def factory():
        a, b = _late().estimators
        return {
            "a": LateFusionClassifier([a]),
            "b": LateFusionClassifier([b]),
            "late": _late(),
            "auto": FusionSearchCV(_late().estimators, candidates=["late"], cv=2),
        }

    report = learning_curve_report(
        factory, X, y, n_per_class=[3, 20], n_repeats=2, augmenter=RandomOverSampler()
    )
    t = report.table
    assert len(t) == 4 * 2 * 2 * 2  # models x sizes x repeats x (with, without)
    assert t.groupby(["n_per_class", "repeat"])["n_train"].nunique().eq(1).all()
    assert set(t.loc[t["n_per_class"] == 3, "n_train"]) == {12}
    assert t.set_index("model")["fused"].to_dict() == {
        "a": False,
        "b": False,
        "late": True,
        "auto": True,
    }
    assert t["augmented"].any() and (~t["augmented"]).any()
    np.testing.assert_allclose(t["gap"], t["train_score"] - t["test_score"])
    adv = report.fusion_advantage()
    assert set(adv["best_fused"]) <= {"late", "auto"}
    # two noisy modalities: fusing them helps at every size
    assert (adv["advantage"] > 0).all()
    summary = report.summary()
    assert {"test_mean", "test_std", "train_mean", "gap_mean"} <= set(summary)
    assert report.plot().get_xlabel() == "training examples per class"


def test_learning_curve_parameters_are_checked():
    X, y = _table()
    with pytest.raises(ParameterError, match="n_per_class"):
        learning_curve_report({"a": _late()}, X, y, n_per_class=[0])
    with pytest.raises(ParameterError, match="models"):
        learning_curve_report({}, X, y)
    with pytest.raises(ParameterError, match="augmenter"):
        learning_curve_report({"a": _late()}, X, y, augmenter=StandardScaler())
    with pytest.raises(ParameterError, match="fused and one"):
        learning_curve_report(
            {"late": _late()}, X, y, n_per_class=[5]
        ).fusion_advantage()
