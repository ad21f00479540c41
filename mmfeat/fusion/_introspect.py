"""What a fitted fusion model is made of, through public names only.

Evaluation, batch scoring and the command line ask a model for its
modalities and for the modalities each row had; these functions are the one
place that knows how, for every shape of model mmfeat builds: a
model-level ensemble, a Pipeline around a :class:`MultimodalFuser`, either
of them inside a fitted search CV, or any other fitted estimator over a
table.
"""

from typing import NamedTuple

import numpy as np
from sklearn.pipeline import Pipeline

from mmfeat.fusion._base import BaseModalityEnsemble
from mmfeat.fusion._fuser import MultimodalFuser
from mmfeat.fusion._modality import split_modality_model
from mmfeat.fusion._neural import NeuralFusionClassifier
from mmfeat.utils._tags import get_item_tags

__all__ = [
    "Modality",
    "find_fuser",
    "get_modalities",
    "is_fusion_model",
    "is_modality_ensemble",
    "predict_with_presence",
    "split_modality_model",
    "unwrap_model",
]


class Modality(NamedTuple):
    """One modality of a fitted model.

    Attributes
    ----------
    name : str
        The block or ensemble member's name (``"X"`` for a model that is
        not a fusion model).
    estimator : estimator or None
        The fitted part that reads them (the block transformer, or the
        modality's fitted model); the unfitted template when the model is
        not fitted; ``None`` for a model that is not a fusion model.
    columns : list or None
        The input columns it reads, or ``None`` when the model selects them
        with a callable or a slice, or does not say.
    selector : object
        The column selection as the model was given it (a name, a list, a
        slice, a mask or a callable).
    """

    name: str
    estimator: object
    columns: list | None
    selector: object = None


def unwrap_model(model):
    """The model a fitted search CV refitted (``best_estimator_``), else ``model``."""
    return getattr(model, "best_estimator_", model)


def is_modality_ensemble(model):
    """True for the model-level ensembles (late fusion, stacking)."""
    return isinstance(model, BaseModalityEnsemble)


def find_fuser(model):
    """The :class:`MultimodalFuser` of ``model`` or of its pipeline, or None."""
    steps = getattr(model, "steps", None)
    if steps is None:
        return model if isinstance(model, MultimodalFuser) else None
    for _, step in steps:
        if isinstance(step, MultimodalFuser):
            return step
    return None


def _as_list(cols):
    if isinstance(cols, (str, int, np.integer)):
        return [cols]
    if callable(cols) or isinstance(cols, slice) or cols is None:
        return None
    cols = list(cols)
    if cols and all(isinstance(c, (bool, np.bool_)) for c in cols):
        return None  # a boolean mask: positions, not names
    return cols


def get_modalities(model):
    """The modalities of a fitted model: name, input columns, fitted part.

    Parameters
    ----------
    model : fitted estimator
        A :class:`LateFusionClassifier` or
        :class:`ModalityStackingClassifier`, a Pipeline with a
        :class:`MultimodalFuser` (or the fuser alone), any of them inside a
        fitted ``GridSearchCV``, or any fitted estimator over a table.

    Returns
    -------
    modalities : list of Modality
        ``(name, estimator, columns, selector)`` per modality, in the
        model's order (as its ``(name, estimator, columns)`` triples):
        the ensemble's members, a :class:`NeuralFusionClassifier`'s
        modalities (its fitted transformers), or the fuser's blocks
        (dropped blocks left out). A captioner of
        :mod:`mmfeat.generation` (tagged with an ``item_tags.target``)
        has the modalities of its fitted ``transformer_`` when that is a
        fusion model, else one modality ``"X"`` read by it. Any other
        model is one modality ``"X"`` whose columns are
        ``feature_names_in_`` when it has them.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mmfeat.fusion import LateFusionClassifier, get_modalities
    >>> X = pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 0, 1, 0]})
    >>> model = LateFusionClassifier([("left", LogisticRegression(), ["a"]),
    ...                               ("right", LogisticRegression(), ["b"])],
    ...                              cv=2).fit(X, [0, 0, 1, 1])
    >>> [(m.name, m.columns) for m in get_modalities(model)]
    [('left', ['a']), ('right', ['b'])]
    """
    model = unwrap_model(model)
    if is_modality_ensemble(model):
        fitted = getattr(model, "estimators_", None)
        if fitted is None or len(fitted) != len(model.estimators):
            fitted = [est for _, est, _ in model.estimators]
        return [
            Modality(name, part, _as_list(cols), cols)
            for (name, _, cols), part in zip(model.estimators, fitted)
        ]
    if isinstance(model, NeuralFusionClassifier):
        parts = getattr(model, "transformers_", None)
        if parts is None or len(parts) != len(model.modalities):
            parts = model.modalities
        return [
            Modality(name, part, _as_list(cols), cols) for name, part, cols in parts
        ]
    fuser = find_fuser(model)
    if fuser is not None:
        blocks = (
            fuser.transformers_
            if hasattr(fuser, "column_transformer_")
            else fuser.transformers
        )
        return [
            Modality(name, part, _as_list(cols), cols)
            for name, part, cols in blocks
            if name != "remainder" and not (isinstance(part, str) and part == "drop")
        ]
    names = getattr(model, "feature_names_in_", None)
    cols = None if names is None else [str(c) for c in names]
    # a model that turns its input into features with one fitted transformer
    # (mmfeat's captioners): that transformer is the part that reads it
    part = getattr(model, "transformer_", None)
    if (
        get_item_tags(model).target is not None
        and part is not None
        and hasattr(part, "transform")
    ):
        if is_fusion_model(part):
            return get_modalities(part)
        return [Modality("X", part, cols, cols)]
    return [Modality("X", None, cols, cols)]


def is_fusion_model(model):
    """True for an ensemble, a deep fusion network, a fuser or a Pipeline with one.

    Search CVs (and :class:`FusionSearchCV`) are unwrapped first.
    """
    model = unwrap_model(model)
    return (
        is_modality_ensemble(model)
        or isinstance(model, NeuralFusionClassifier)
        or find_fuser(model) is not None
    )


def predict_with_presence(model, X):
    """Predict ``X`` and tell which modalities each row had.

    Parameters
    ----------
    model : fitted estimator
        As for :func:`get_modalities`.
    X : DataFrame
        The table.

    Returns
    -------
    prediction : ndarray
        ``predict_proba(X)`` when the model has it, else ``predict(X)``.
    presence : DataFrame of bool or None
        One column per modality (:func:`get_modalities` order), True where
        the row had it: from the ensemble's or the fuser's
        ``*_with_presence`` method. ``None`` when the model cannot tell
        (a model that is not a fusion model).
    """
    inner = unwrap_model(model)
    has_proba = hasattr(model, "predict_proba")
    if has_proba and hasattr(inner, "predict_proba_with_presence"):
        return inner.predict_proba_with_presence(X)
    if isinstance(inner, Pipeline):
        for i, (_, step) in enumerate(inner.steps):
            if isinstance(step, MultimodalFuser):
                Xt = inner[:i].transform(X) if i else X
                Xt, presence = step.transform_with_presence(Xt)
                rest = inner[i + 1 :]
                if not len(rest):
                    return Xt, presence
                predict = rest.predict_proba if has_proba else rest.predict
                return predict(Xt), presence
    predict = model.predict_proba if has_proba else model.predict
    return predict(X), None
