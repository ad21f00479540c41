"""How much each modality brings: the fusion report and ablations."""

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.utils import check_random_state

from mmfeat.exceptions import ParameterError
from mmfeat.fusion import (
    get_modalities,
    is_fusion_model,
    is_modality_ensemble,
    unwrap_model,
)

__all__ = [
    "fusion_report",
    "mask_modality",
    "missing_modality_curve",
    "modality_columns",
]


def modality_columns(model):
    """The columns each modality of a fused model reads, by modality name.

    Parameters
    ----------
    model : estimator
        A :class:`~mmfeat.fusion.LateFusionClassifier`,
        :class:`~mmfeat.fusion.ModalityStackingClassifier`, a Pipeline (also
        imbalanced-learn's) containing a :class:`~mmfeat.fusion.MultimodalFuser`,
        or a fitted ``GridSearchCV`` around one of those.

    Returns
    -------
    columns : dict of str to column spec
        As given in the model's ``(name, estimator, columns)`` triples.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mmfeat.fusion import LateFusionClassifier
    >>> model = LateFusionClassifier([("a", LogisticRegression(), ["x"]),
    ...                               ("b", LogisticRegression(), ["z"])])
    >>> modality_columns(model)
    {'a': ['x'], 'b': ['z']}
    """
    if is_fusion_model(model):
        return {m.name: m.selector for m in get_modalities(model)}
    raise ParameterError(
        "cannot tell the modalities of this model: expected a "
        "LateFusionClassifier, a ModalityStackingClassifier or a Pipeline with a "
        f"MultimodalFuser; got {type(model).__name__}"
    )


def _column_names(X, columns):
    if callable(columns):
        columns = columns(X)
    if isinstance(columns, (str, int, np.integer)):
        columns = [columns]
    if isinstance(columns, slice):
        return list(X.columns[columns])
    columns = list(columns)
    if columns and isinstance(columns[0], (bool, np.bool_)):
        return list(X.columns[np.asarray(columns)])
    if (
        columns
        and isinstance(columns[0], (int, np.integer))
        and not all(c in X.columns for c in columns)
    ):
        return list(X.columns[columns])
    return columns


def mask_modality(X, columns, rows=None):
    """A copy of ``X`` with a modality's items missing in some rows.

    Parameters
    ----------
    X : DataFrame
        The table.
    columns : column spec
        The modality's columns (see :func:`modality_columns`).
    rows : array-like of bool or int, default=None
        Rows to mask (positions); ``None`` masks every row.

    Returns
    -------
    X_masked : DataFrame
        Numeric columns get NaN, other columns ``None`` in the masked rows.
    """
    if not isinstance(X, pd.DataFrame):
        raise ParameterError("mask_modality needs X as a DataFrame")
    out = X.copy()
    idx = np.arange(len(X)) if rows is None else np.asarray(rows)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    for col in _column_names(X, columns):
        j = out.columns.get_loc(col)
        if pd.api.types.is_numeric_dtype(out[col]) and not pd.api.types.is_bool_dtype(
            out[col]
        ):
            out[col] = out[col].astype(np.float64)
            out.iloc[idx, j] = np.nan
        else:
            out[col] = out[col].astype(object)
            values = out[col].to_numpy(copy=True)
            values[idx] = None
            out[col] = pd.Series(values, index=out.index, dtype=object)
    return out


def _scores(y_true, y_pred):
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_recall": recall_score(y_true, y_pred, average="macro", zero_division=0),
        "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
    }


def fusion_report(model, X, y, *, modalities=None):
    """Accuracy, macro recall and macro F1 of each modality alone and fused.

    Parameters
    ----------
    model : fitted estimator
        A fitted :class:`~mmfeat.fusion.LateFusionClassifier`,
        :class:`~mmfeat.fusion.ModalityStackingClassifier`, or Pipeline with a
        :class:`~mmfeat.fusion.MultimodalFuser` (or a fitted search around
        one).
    X : DataFrame
        Test table.
    y : array-like of shape (n_samples,)
        True labels.
    modalities : dict of str to column spec, default=None
        Modalities to report; default :func:`modality_columns`.

    Returns
    -------
    report : DataFrame
        One row per modality and a last row ``"fused"``; columns
        ``accuracy``, ``macro_recall``, ``macro_f1``, ``coverage`` (share of
        rows where the modality was present) and ``how``. For model-level
        fusion a modality "alone" is its own fitted model (rows where it is
        missing get the training prior's most likely class); for
        feature-level fusion it is the fused model with every other
        modality masked as missing (an ablation: the model is not refitted).
    """
    model_ = unwrap_model(model)
    y = np.asarray(y)
    mods = modality_columns(model_) if modalities is None else dict(modalities)
    rows = {}
    if is_modality_ensemble(model_):
        probas = model_.modality_proba(X)
        fallback = np.argmax(model_.class_prior_)
        for name in mods:
            p = probas[name]
            present = ~np.isnan(p[:, 0])
            idx = np.where(
                present, np.argmax(np.nan_to_num(p, nan=-1.0), axis=1), fallback
            )
            rows[name] = {
                **_scores(y, model_.classes_[idx]),
                "coverage": present.mean(),
                "how": "own model",
            }
    else:
        for name in mods:
            others = [cols for other, cols in mods.items() if other != name]
            Xm = X
            for cols in others:
                Xm = mask_modality(Xm, cols)
            rows[name] = {
                **_scores(y, model.predict(Xm)),
                "coverage": np.nan,
                "how": "others masked",
            }
    rows["fused"] = {**_scores(y, model.predict(X)), "coverage": 1.0, "how": "fused"}
    report = pd.DataFrame.from_dict(rows, orient="index")
    report.index.name = "modality"
    return report


def missing_modality_curve(
    model, X, y, modality, fractions=(0.0, 0.25, 0.5, 0.75, 1.0), *, random_state=0
):
    """Accuracy and macro F1 as a modality goes missing in more and more rows.

    Parameters
    ----------
    model : fitted estimator
        A fitted fused model (see :func:`fusion_report`).
    X : DataFrame
        Test table.
    y : array-like of shape (n_samples,)
        True labels.
    modality : str
        Name of the modality to mask.
    fractions : sequence of float, default=(0, 0.25, 0.5, 0.75, 1)
        Shares of rows in which it is masked (nested: the rows masked at a
        smaller share are masked at every larger one).
    random_state : int, RandomState or None, default=0
        Chooses the rows.

    Returns
    -------
    curve : DataFrame
        Columns ``fraction``, ``accuracy``, ``macro_recall``, ``macro_f1``.
    """
    mods = modality_columns(model)
    if modality not in mods:
        raise ParameterError(
            f"unknown modality {modality!r}; the model has {list(mods)}"
        )
    fractions = [float(f) for f in fractions]
    if any(not 0.0 <= f <= 1.0 for f in fractions):
        raise ParameterError(f"fractions must lie in [0, 1]; got {fractions}")
    y = np.asarray(y)
    order = check_random_state(random_state).permutation(len(X))
    out = []
    for f in fractions:
        rows = order[: int(round(f * len(X)))]
        Xm = mask_modality(X, mods[modality], rows) if len(rows) else X
        out.append({"fraction": f, **_scores(y, model.predict(Xm))})
    return pd.DataFrame(out)
