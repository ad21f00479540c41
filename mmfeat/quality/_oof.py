"""Out-of-fold probabilities of a fusion model and of each of its modalities.

Label-issue and mismatched-pair detection need, for every row, what a model
that never saw that row thinks of it: the fused model, and each modality
alone. :func:`cross_val_modality_proba` fits one clone of the model per
fold and asks it through public methods only: ``predict_proba`` for the
fused probabilities and, for a model-level ensemble, ``modality_proba`` for
each member's. Other fusion models get one model per modality built from
their own parameters (:func:`modality_models`).
"""

from typing import NamedTuple

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from mmfeat.exceptions import ParameterError
from mmfeat.fusion import (
    FusionSearchCV,
    LateFusionClassifier,
    MultimodalFuser,
    NeuralFusionClassifier,
    get_modalities,
    is_modality_ensemble,
    unwrap_model,
)
from mmfeat.utils._cv import resolve_cv
from mmfeat.utils._item_errors import collecting, in_callers_rows, unpack_collected
from mmfeat.utils._tables import n_rows, take_rows
from mmfeat.utils._validation import check_class_target

__all__ = ["ModalityProba", "cross_val_modality_proba", "modality_models"]


class ModalityProba(NamedTuple):
    """Out-of-fold probabilities of a model and of its modalities.

    Attributes
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        The fused model's, each row predicted by the fold model that did
        not see it.
    modality_proba : dict of str to ndarray of shape (n_samples, n_classes)
        Each modality's alone, by name; NaN rows where the row lacks it.
        Empty when the model has one modality only.
    classes : ndarray
        The class labels, in column order.
    labels : ndarray of int
        ``y`` as positions in ``classes``.
    fold : ndarray of int
        The fold each row was held out in.
    """

    proba: np.ndarray
    modality_proba: dict
    classes: np.ndarray
    labels: np.ndarray
    fold: np.ndarray


def _fuser_step(model):
    if isinstance(model, Pipeline):
        for name, step in model.steps:
            if isinstance(step, MultimodalFuser):
                return name
    return None


def modality_models(model):
    """One unfitted model per modality of ``model``, each seeing its modality alone.

    Built from the model's own parameters (through ``set_params`` on a
    clone), so each modality is judged by the same kind of model as the
    fusion:

    - a :class:`~mmfeat.fusion.MultimodalFuser` pipeline: the same
      pipeline with every other block's weight set to 0;
    - a :class:`~mmfeat.fusion.NeuralFusionClassifier`: the same network
      over that modality only;
    - a :class:`~mmfeat.fusion.FusionSearchCV`: one
      :class:`~mmfeat.fusion.LateFusionClassifier` over its modality models,
      whose ``modality_proba`` gives each one (key ``None``).

    Model-level ensembles need none (their fold models give
    ``modality_proba``): the result is ``{}`` for them and for a model
    that is not a fusion model.

    Parameters
    ----------
    model : estimator
        An unfitted (or fitted) mmfeat fusion model.

    Returns
    -------
    models : dict of str (or None) to estimator

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from mmfeat.fusion import make_fuser
    >>> ident = FunctionTransformer()
    >>> model = make_pipeline(make_fuser({"a": ident, "b": ident}),
    ...                       LogisticRegression())
    >>> probes = modality_models(model)
    >>> probes["a"].get_params()["multimodalfuser__weights"]
    {'a': 1.0, 'b': 0.0}
    """
    inner = unwrap_model(model)
    if is_modality_ensemble(inner):
        return {}
    if isinstance(inner, FusionSearchCV):
        return {None: LateFusionClassifier(list(inner.estimators))}
    if isinstance(inner, NeuralFusionClassifier):
        if len(inner.modalities) < 2:
            return {}
        return {
            name: clone(inner).set_params(modalities=[(name, part, cols)])
            for name, part, cols in inner.modalities
        }
    step = _fuser_step(inner)
    if step is None:
        return {}
    names = [m.name for m in get_modalities(inner)]
    if len(names) < 2:
        return {}
    return {
        name: clone(inner).set_params(
            **{f"{step}__weights": {n: float(n == name) for n in names}}
        )
        for name in names
    }


_derived_models = modality_models


def _in_columns(model, proba, classes):
    """``proba`` of a fitted model, with columns in ``classes`` order."""
    out = np.zeros((proba.shape[0], len(classes)))
    out[:, np.searchsorted(classes, np.asarray(model.classes_))] = proba
    return out


def _proba(model, X, classes):
    if not hasattr(model, "predict_proba"):
        raise ParameterError(
            f"the fitted {type(model).__name__} has no predict_proba; out-of-fold "
            "probabilities need a probabilistic model"
        )
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    return _in_columns(model, proba, classes)


def _modality_proba(model, X, classes):
    inner = unwrap_model(model)
    return {
        name: _in_columns(inner, np.asarray(p, dtype=np.float64), classes)
        for name, p in inner.modality_proba(X).items()
    }


def _fold(model, probes, X, y, train, test, classes):
    """Fit on ``train``; fused and per-modality probabilities on ``test``."""
    with in_callers_rows(np.arange(len(train)), train, None):
        Xtr, ytr = take_rows(X, train), y[train]
        fitted = clone(model).fit(Xtr, ytr)
    with in_callers_rows(np.arange(len(test)), test, None):
        Xte = take_rows(X, test)
        fused = _proba(fitted, Xte, classes)
        if not probes and hasattr(unwrap_model(fitted), "modality_proba"):
            return test, fused, _modality_proba(fitted, Xte, classes)
    per = {}
    for name, probe in probes.items():
        with in_callers_rows(np.arange(len(train)), train, name):
            probe = clone(probe).fit(Xtr, ytr)
        with in_callers_rows(np.arange(len(test)), test, name):
            if name is None:
                per.update(_modality_proba(probe, Xte, classes))
            else:
                per[name] = _proba(probe, Xte, classes)
    return test, fused, per


def cross_val_modality_proba(
    model, X, y, *, cv=5, groups=None, modality_models=None, n_jobs=None
):
    """Out-of-fold probabilities of ``model`` and of each of its modalities.

    Parameters
    ----------
    model : classifier
        Any mmfeat fusion model (late fusion, stacking, a fuser pipeline,
        deep fusion, :class:`~mmfeat.fusion.FusionSearchCV`) or any
        classifier with ``predict_proba``; unfitted (it is cloned per fold).
    X : DataFrame
        The table.
    y : array-like of shape (n_samples,)
        Labels as given (possibly wrong: that is what is looked for).
    cv : int, cross-validation splitter or iterable, default=5
        Folds; an int gives stratified folds (fewer when the smallest class
        has fewer rows).
    groups : array-like, default=None
        Rows of a group stay in one fold (the same product photographed
        twice, the same speaker).
    modality_models : dict of str to classifier, default=None
        One model per modality (each reading the whole table and using its
        own columns), instead of those :func:`modality_models` derives.
    n_jobs : int, default=None
        Folds fitted in parallel (joblib).

    Returns
    -------
    result : ModalityProba
        ``(proba, modality_proba, classes, labels, fold)``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mmfeat.fusion import LateFusionClassifier
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 20)
    >>> X = pd.DataFrame({"a": y + rng.normal(0, .3, 40),
    ...                   "b": y + rng.normal(0, .3, 40)})
    >>> model = LateFusionClassifier([("a", LogisticRegression(), ["a"]),
    ...                               ("b", LogisticRegression(), ["b"])])
    >>> oof = cross_val_modality_proba(model, X, y, cv=4)
    >>> oof.proba.shape, sorted(oof.modality_proba)
    ((40, 2), ['a', 'b'])
    """
    # a search CV has predict_proba once fitted (when its best model has it)
    if not hasattr(model, "fit") or not (
        hasattr(model, "predict_proba")
        or hasattr(model, "best_estimator_")
        or isinstance(model, FusionSearchCV)
    ):
        raise ParameterError(
            f"model must be a classifier with predict_proba; got {type(model).__name__}"
        )
    y = check_class_target(model, y)
    if n_rows(X) != len(y):
        raise ParameterError(f"X has {n_rows(X)} rows but y has {len(y)} labels")
    classes, labels = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ParameterError("y needs at least two classes")
    if modality_models is None:
        probes = _derived_models(model)
    elif isinstance(modality_models, dict) and all(
        hasattr(m, "predict_proba") for m in modality_models.values()
    ):
        probes = dict(modality_models)
    else:
        raise ParameterError(
            "modality_models must be a dict of modality name to a classifier "
            "with predict_proba"
        )
    groups = None if groups is None else np.asarray(groups)
    splits = resolve_cv(cv, y, groups)
    # items a fold's extractors refuse come back from the workers with it
    job = collecting(_fold)
    results = unpack_collected(
        Parallel(n_jobs=n_jobs)(
            delayed(job)(model, probes, X, y, train, test, classes)
            for train, test in splits
        )
    )
    n, k = len(y), len(classes)
    proba = np.full((n, k), np.nan)
    fold = np.full(n, -1, dtype=np.int64)
    per = {}
    for i, (test, fused, parts) in enumerate(results):
        proba[test] = fused
        fold[test] = i
        for name, p in parts.items():
            per.setdefault(name, np.full((n, k), np.nan))[test] = p
    if (fold < 0).any():
        raise ParameterError(
            f"cv left {int((fold < 0).sum())} rows out of every test fold; "
            "out-of-fold probabilities need each row held out once"
        )
    return ModalityProba(proba, per, classes, labels, fold)
