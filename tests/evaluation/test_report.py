import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from mmfeat.evaluation import (
    fusion_report,
    fusion_weights,
    mask_modality,
    missing_modality_curve,
    modality_columns,
    plot_confusion_matrix,
    plot_fusion_weights,
    plot_modality_ablation,
)
from mmfeat.exceptions import ParameterError
from mmfeat.fusion import (
    LateFusionClassifier,
    ModalityStackingClassifier,
    make_fuser,
)

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["cat", "dog", "eel"]), 60)
    code = pd.Series(y).map({"cat": 0, "dog": 1, "eel": 2}).to_numpy()
    X = pd.DataFrame(
        {
            "a1": code + rng.normal(0, 0.6, len(y)),
            "a2": rng.normal(0, 1, len(y)),
            "b": code * 0.5 + rng.normal(0, 0.6, len(y)),
            "note": ["x"] * len(y),
        }
    )
    order = rng.permutation(len(y))
    X, y = X.iloc[order].reset_index(drop=True), y[order]
    return X.iloc[:120], X.iloc[120:].reset_index(drop=True), y[:120], y[120:]


def _mods():
    return [
        ("a", LogisticRegression(), ["a1", "a2"]),
        ("b", LogisticRegression(), ["b"]),
    ]


def test_modality_columns_of_each_kind():
    late = LateFusionClassifier(_mods())
    assert modality_columns(late) == {"a": ["a1", "a2"], "b": ["b"]}
    early = make_pipeline(
        make_fuser({"a": ("passthrough", ["a1"]), "b": ("drop", ["b"])}),
        LogisticRegression(),
    )
    assert modality_columns(early) == {"a": ["a1"]}
    with pytest.raises(ParameterError, match="cannot tell the modalities"):
        modality_columns(LogisticRegression())


def test_mask_modality_masks_only_the_rows_asked(table):
    X = table[0]
    masked = mask_modality(X, ["a1", "a2"], rows=[0, 2])
    assert masked["a1"].isna().tolist()[:4] == [True, False, True, False]
    assert masked["b"].equals(X["b"])
    text = mask_modality(X, "note", rows=np.arange(len(X)) < 3)
    assert text["note"].tolist()[:4] == [None, None, None, "x"]
    assert X["note"].notna().all()  # the input is left alone


def test_fusion_report_late_uses_each_modality_model(table):
    X_tr, X_te, y_tr, y_te = table
    model = LateFusionClassifier(_mods()).fit(X_tr, y_tr)
    rep = fusion_report(model, X_te, y_te)
    assert list(rep.index) == ["a", "b", "fused"]
    own_a = model.named_estimators_["a"].predict_proba(X_te[["a1", "a2"]])
    pred_a = model.classes_[own_a.argmax(1)]
    assert rep.loc["a", "accuracy"] == pytest.approx(accuracy_score(y_te, pred_a))
    assert rep.loc["a", "macro_f1"] == pytest.approx(
        f1_score(y_te, pred_a, average="macro")
    )
    assert rep.loc["fused", "accuracy"] == pytest.approx(
        accuracy_score(y_te, model.predict(X_te))
    )
    assert rep.loc["a", "coverage"] == 1.0
    # a modality missing in some rows: coverage says so
    half = mask_modality(X_te, ["b"], rows=np.arange(len(X_te)) % 2 == 0)
    assert fusion_report(model, half, y_te).loc["b", "coverage"] == pytest.approx(0.5)


def test_fusion_report_early_fusion_is_an_ablation(table):
    X_tr, X_te, y_tr, y_te = table
    model = make_pipeline(
        make_fuser(
            {"a": ("passthrough", ["a1", "a2"]), "b": ("passthrough", ["b"])},
            block_norm=None,
        ),
        LogisticRegression(),
    ).fit(X_tr, y_tr)
    rep = fusion_report(model, X_te, y_te)
    only_a = model.predict(mask_modality(X_te, ["b"]))
    assert rep.loc["a", "accuracy"] == pytest.approx(accuracy_score(y_te, only_a))
    assert rep.loc["a", "how"] == "others masked"
    # through a fitted grid search too
    search = GridSearchCV(model, {"logisticregression__C": [0.1, 1.0]}, cv=3)
    search.fit(X_tr, y_tr)
    assert list(fusion_report(search, X_te, y_te).index) == ["a", "b", "fused"]


def test_missing_modality_curve_starts_at_the_plain_accuracy(table):
    X_tr, X_te, y_tr, y_te = table
    model = LateFusionClassifier(_mods()).fit(X_tr, y_tr)
    curve = missing_modality_curve(model, X_te, y_te, "a", fractions=(0, 0.5, 1))
    assert curve["fraction"].tolist() == [0, 0.5, 1]
    assert curve["accuracy"][0] == pytest.approx(
        accuracy_score(y_te, model.predict(X_te))
    )
    # every row without "a": exactly the "b" model alone
    only_b = model.named_estimators_["b"].predict_proba(X_te[["b"]]).argmax(1)
    assert curve["accuracy"][2] == pytest.approx(
        accuracy_score(y_te, model.classes_[only_b])
    )
    with pytest.raises(ParameterError, match="unknown modality"):
        missing_modality_curve(model, X_te, y_te, "c")
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        missing_modality_curve(model, X_te, y_te, "a", fractions=(1.5,))


def test_fusion_weights_of_each_kind(table):
    X_tr, _, y_tr, _ = table
    late = LateFusionClassifier(_mods(), weights={"a": 3, "b": 1}).fit(X_tr, y_tr)
    assert fusion_weights(late) == pytest.approx({"a": 0.75, "b": 0.25})
    stack = ModalityStackingClassifier(_mods(), cv=3).fit(X_tr, y_tr)
    w = fusion_weights(stack)
    assert set(w) == {"a", "b"} and sum(w.values()) == pytest.approx(1.0)
    assert w["a"] > w["b"]  # the stronger modality moves the meta-model more
    early = make_pipeline(
        make_fuser(
            {"a": ("passthrough", ["a1"]), "b": ("passthrough", ["b"])},
            weights={"b": 2.0},
        ),
        LogisticRegression(),
    ).fit(X_tr, y_tr)
    assert fusion_weights(early) == {"a": 1.0, "b": 2.0}


def test_plots_return_figures(table):
    X_tr, X_te, y_tr, y_te = table
    model = LateFusionClassifier(_mods()).fit(X_tr, y_tr)
    rep = fusion_report(model, X_te, y_te)
    fig = plot_confusion_matrix(y_te, model.predict(X_te))
    assert fig.axes and fig.axes[0].get_xlabel() == "Predicted label"
    fig = plot_modality_ablation(rep)
    assert len(fig.axes[0].patches) == 2 * len(rep)
    fig = plot_fusion_weights(model)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([0.5, 0.5])
    with pytest.raises(ParameterError, match="no columns"):
        plot_modality_ablation(rep, metrics=("auc",))
    import matplotlib.pyplot as plt

    plt.close("all")
