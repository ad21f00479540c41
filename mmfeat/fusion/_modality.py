"""One model per modality: fitting, scoring and out-of-fold probabilities.

Shared by the late-fusion and stacking classifiers. A modality is a
``(name, estimator, columns)`` triple; its estimator sees only its columns.
A row is *missing* for a modality when every one of its items is missing
(``None``/NaN) or when the features its pipeline computes contain NaN (what
mmfeat's extractors give for missing or unreadable items). Missing rows are
left out when a modality is fitted and get NaN probabilities when it is
scored, so the fusion can score them from the modalities they have.
"""

import math
import numbers

import numpy as np
import pandas as pd
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    cross_val_predict,
)
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import has_fit_parameter

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.utils._cv import _group_splits, resolve_cv
from mmfeat.utils._item_errors import (
    collecting,
    in_callers_rows,
    unpack_collected,
)
from mmfeat.utils._items import is_missing
from mmfeat.utils._state import CheckedStateMixin
from mmfeat.utils._tables import absent_items, n_rows, select_columns, take_rows

__all__ = []


def _is_classifier_part(est):
    return hasattr(est, "fit") and (
        hasattr(est, "predict_proba")
        or hasattr(est, "decision_function")
        or is_classifier(est)
    )


def _is_transformer_part(est):
    return (isinstance(est, str) and est == "passthrough") or (
        hasattr(est, "fit") and hasattr(est, "transform")
    )


_PARTS = {
    "estimator": (
        _is_classifier_part,
        "must be a classifier (or a Pipeline ending in one)",
    ),
    "transformer": (
        _is_transformer_part,
        "must be a transformer (an mmfeat extractor, a Pipeline, ...) or 'passthrough'",
    ),
}


def validate_modalities(estimators, param="estimators", part="estimator"):
    """Check ``(name, part, columns)`` triples; return the names.

    ``part`` is what the middle element must be: ``"estimator"`` (a
    classifier) or ``"transformer"`` (or ``"passthrough"``).
    """
    if not isinstance(estimators, (list, tuple)) or not estimators:
        raise ParameterError(
            f"{param} must be a non-empty list of (name, {part}, columns) "
            f"triples; got {estimators!r}"
        )
    names = []
    for entry in estimators:
        if not (isinstance(entry, tuple) and len(entry) == 3):
            raise ParameterError(
                f"each entry of {param} must be a (name, {part}, columns) "
                f"triple; got {entry!r}"
            )
        name, est, _ = entry
        if not isinstance(name, str) or not name or "__" in name:
            raise ParameterError(
                f"modality names must be non-empty strings without '__'; got {name!r}"
            )
        if name in names:
            raise ParameterError(f"modality name {name!r} is given twice")
        ok, what = _PARTS[part]
        if not ok(est):
            raise ParameterError(f"the {part} of modality {name!r} {what}; got {est!r}")
        names.append(name)
    return names


class TripleParams:
    """``get_params`` / ``set_params`` through ``(name, part, columns)`` triples.

    ``model.set_params(image__svc__C=10)`` reaches the part named
    ``image``; the parameter holding the triples is named by ``_triples``.
    For a :class:`~sklearn.utils.metaestimators._BaseComposition`.
    """

    _triples = "estimators"

    @property
    def _named_parts(self):
        triples = getattr(self, self._triples)
        try:
            return [(name, est) for name, est, _ in triples]
        except (TypeError, ValueError):  # invalid; fit says why
            return triples

    @_named_parts.setter
    def _named_parts(self, value):
        triples = getattr(self, self._triples)
        try:
            value = [
                (name, est, cols) for ((name, est), (_, _, cols)) in zip(value, triples)
            ]
        except (TypeError, ValueError):
            pass
        setattr(self, self._triples, value)

    def get_params(self, deep=True):
        """Get parameters, including those of the modalities' parts."""
        return self._get_params("_named_parts", deep=deep)

    def set_params(self, **params):
        """Set parameters, including ``<modality>__<param>`` ones."""
        self._set_params("_named_parts", **params)
        return self


def check_weight_dict(weights, names, kind):
    """Weights by name as floats >= 0, 1 for the names left out.

    ``kind`` is ``(singular, plural)`` for messages, e.g. ``("block",
    "blocks")``; anything but a dict of finite numbers >= 0 over known names
    raises :class:`ParameterError`.
    """
    one, many = kind
    out = dict.fromkeys(names, 1.0)
    if weights is None:
        return out
    if not isinstance(weights, dict):
        raise ParameterError(
            f"weights must be a dict by {one} name, e.g. {{{names[0]!r}: 1.0}}; "
            f"got {weights!r}"
        )
    unknown = set(weights) - set(names)
    if unknown:
        raise ParameterError(
            f"weights name unknown {many} {sorted(unknown)}; the {many} are {names}"
        )
    for name, w in weights.items():
        if (
            not isinstance(w, numbers.Real)
            or isinstance(w, bool)
            or not math.isfinite(w)
            or w < 0
        ):
            raise ParameterError(
                f"weight of {one} {name!r} must be a finite number >= 0; got {w!r}"
            )
        out[name] = float(w)
    return out


def nan_rows(Xt):
    """Boolean mask of feature rows that contain NaN (missing for the model)."""
    if sp.issparse(Xt):
        Xt = Xt.tocsr()
        out = np.zeros(Xt.shape[0], dtype=bool)
        if Xt.dtype.kind == "f":
            bad = np.isnan(Xt.data)
            if bad.any():
                rows = np.repeat(np.arange(Xt.shape[0]), np.diff(Xt.indptr))
                out[rows[bad]] = True
        return out
    if isinstance(Xt, (pd.DataFrame, pd.Series)):
        Xt = Xt.to_numpy()
    arr = np.asarray(Xt)
    if arr.dtype.kind in "fc":
        return np.isnan(arr.reshape(arr.shape[0], -1)).any(axis=1)
    if arr.dtype == object:
        flat = arr.reshape(arr.shape[0], -1)
        return np.array([any(is_missing(v) for v in row) for row in flat], dtype=bool)
    return np.zeros(arr.shape[0], dtype=bool)


class LogisticCalibratedClassifier(CheckedStateMixin, ClassifierMixin, BaseEstimator):
    """Probabilities for a classifier that only has ``decision_function``.

    A multinomial logistic regression maps the classifier's decision values
    to class probabilities; it is fitted on out-of-fold decision values
    (``cv`` folds) and the classifier itself on every row. For SVC and NuSVC
    the one-vs-one decision values are used (``decision_function_shape`` set
    to ``"ovo"``; predictions do not change): the pairwise margins carry
    much more than the one-vs-rest summary, and fused probabilities are
    markedly better than with per-class sigmoid calibration (on the
    audio-visual digits, late fusion 99.9% against 98.0%).

    Parameters
    ----------
    estimator : classifier
        Has ``decision_function``.
    cv : int, iterable of splits or "prefit", default=3
        Folds for the out-of-fold decision values; ``"prefit"``: the
        estimator is fitted already and the logistic map is fitted on the
        data given to ``fit``.
    """

    def __init__(self, estimator, cv=3):
        self.estimator = estimator
        self.cv = cv

    def _decisions(self, est, X):
        d = np.asarray(est.decision_function(X), dtype=np.float64)
        return d[:, None] if d.ndim == 1 else d

    def fit(self, X, y, sample_weight=None):
        """Fit the classifier and the logistic map from its decision values."""
        params = {} if sample_weight is None else {"sample_weight": sample_weight}
        if isinstance(self.cv, str) and self.cv == "prefit":
            self.estimator_ = self.estimator
            D = self._decisions(self.estimator_, X)
        else:
            est = clone(self.estimator)
            if "decision_function_shape" in est.get_params():
                est.set_params(decision_function_shape="ovo")
            D = cross_val_predict(
                est, X, y, cv=self.cv, method="decision_function", params=params
            )
            D = D[:, None] if D.ndim == 1 else D
            self.estimator_ = est.fit(X, y, **params)
        return self._fit_map(self.estimator_, D, y, sample_weight)

    def _fit_map(self, fitted, D, y, sample_weight=None):
        """Use ``fitted`` as it is; fit the logistic map on decision values ``D``.

        For out-of-fold decision values computed elsewhere (the fusion's own
        folds), so no second cross-validation runs.
        """
        params = {} if sample_weight is None else {"sample_weight": sample_weight}
        self.estimator_ = fitted
        self.calibrator_ = LogisticRegression(max_iter=2000).fit(D, y, **params)
        self.classes_ = self.calibrator_.classes_
        return self

    def predict_proba(self, X):
        """Class probabilities."""
        return self.predict_proba_from_decisions(self._decisions(self.estimator_, X))

    def predict_proba_from_decisions(self, D):
        """Class probabilities from the classifier's decision values ``D``."""
        return self.calibrator_.predict_proba(D)

    def predict(self, X):
        """The classifier's own predictions."""
        return self.estimator_.predict(X)


def split_modality_model(estimator):
    """(feature pipeline or None, final estimator) of one modality's model."""
    if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
        return estimator[:-1], estimator.steps[-1][1]
    return None, estimator


def _needs_calibration(final):
    return not hasattr(final, "predict_proba")


def _prepare(estimator, Xm, y, sample_weight, groups, name, rows):
    """Clone and fit the feature steps on the present rows; return the rest.

    Returns ``(estimator, head, final, Xt, yp, sw, gp)``: the clone, its
    fitted feature steps (or None), its unfitted final step, and the
    features, labels, weights and groups of the rows it can use.
    """
    estimator = clone(estimator)
    present = np.flatnonzero(~absent_items(Xm))
    Xp = take_rows(Xm, present)
    yp = y[present]
    sw = None if sample_weight is None else sample_weight[present]
    gp = None if groups is None else groups[present]
    head, final = split_modality_model(estimator)
    if head is not None:
        with in_callers_rows(present, rows, name):
            Xt = head.fit_transform(Xp, yp)
    else:
        Xt = Xp
    ok = ~nan_rows(Xt)
    if not ok.all():
        Xt = take_rows(Xt, np.flatnonzero(ok))
        yp = yp[ok]
        sw = None if sw is None else sw[ok]
        gp = None if gp is None else gp[ok]
    if len(yp) == 0:
        raise InputError(
            "no training row has this modality (every item is missing or unreadable)",
            source=name or "modality",
        )
    return estimator, head, final, Xt, yp, sw, gp


def _fit_final(final, Xt, yp, sw):
    """Fit the final step, with the sample weights when it takes them."""
    fit_params = {}
    if sw is not None:
        target = (
            final.estimator
            if isinstance(final, LogisticCalibratedClassifier)
            else final
        )
        if has_fit_parameter(target, "sample_weight"):
            fit_params["sample_weight"] = sw
    return final.fit(Xt, yp, **fit_params)


def _assemble(estimator, head, final):
    """The fitted modality model: the fitted feature steps, then ``final``."""
    if head is None:
        return final
    return Pipeline(list(head.steps) + [(estimator.steps[-1][0], final)])


def fit_modality(
    estimator,
    Xm,
    y,
    sample_weight=None,
    calibration_cv=3,
    groups=None,
    *,
    name=None,
    rows=None,
):
    """Fit one modality's model on the rows where the modality is present.

    With ``groups``, the calibration folds keep each group in one fold.
    Items the modality's pipeline refuses are reported (see
    :func:`mmfeat.collect_item_errors`) under ``name``, with the caller's
    row numbers: ``rows`` maps the rows of ``Xm`` to them (``None``: the
    same).

    Returns
    -------
    fitted : estimator
        The fitted model: a Pipeline whose last step is the classifier
        (wrapped in ``LogisticCalibratedClassifier`` when it has no
        ``predict_proba``), or the classifier itself.
    n_used : int
        Rows the model was fitted on.
    """
    estimator, head, final, Xt, yp, sw, gp = _prepare(
        estimator, Xm, y, sample_weight, groups, name, rows
    )
    if _needs_calibration(final):
        classes, counts = np.unique(yp, return_counts=True)
        cv = max(2, min(calibration_cv, int(counts.min())))
        if gp is not None and counts.min() >= 2:
            cv = _group_splits(cv, yp, gp)
        final = (
            LogisticCalibratedClassifier(final, cv=cv)
            if counts.min() >= 2 and len(classes) > 1
            else final
        )
    _fit_final(final, Xt, yp, sw)
    return _assemble(estimator, head, final), len(yp)


def _decision_model(estimator, Xm, y, sample_weight, groups, name, rows):
    """Fit a modality whose classifier has no ``predict_proba``, uncalibrated.

    SVC and NuSVC give one-vs-one margins (see
    :class:`LogisticCalibratedClassifier`). Returns ``(estimator, head,
    final, n_used)``.
    """
    estimator, head, final, Xt, yp, sw, _ = _prepare(
        estimator, Xm, y, sample_weight, groups, name, rows
    )
    if "decision_function_shape" in final.get_params():
        final.set_params(decision_function_shape="ovo")
    _fit_final(final, Xt, yp, sw)
    return estimator, head, final, len(yp)


def _usable_features(head, Xm, name, rows=None):
    """Features of the rows of ``Xm`` where the modality is usable.

    Returns ``(used, Xt)``: the positions in ``Xm`` of the rows whose items
    are present and whose features (through the fitted feature steps
    ``head``) have no NaN, and those features. Refused items are reported
    in the caller's rows (``rows``, see :func:`in_callers_rows`).
    """
    present = np.flatnonzero(~absent_items(Xm))
    Xt = take_rows(Xm, present)
    if not len(present):
        return present, Xt
    if head is not None:
        with in_callers_rows(present, rows, name):
            Xt = head.transform(Xt)
    ok = ~nan_rows(Xt)
    if not ok.all():
        Xt = take_rows(Xt, np.flatnonzero(ok))
    return present[ok], Xt


def _decisions_on(head, final, Xm, name, rows=None):
    """Decision values of a fitted modality on ``Xm``; NaN rows where missing."""
    n = n_rows(Xm)
    used, Xt = _usable_features(head, Xm, name, rows)
    if not len(used):
        return np.full((n, 0), np.nan)
    d = np.asarray(final.decision_function(Xt), dtype=np.float64)
    d = d[:, None] if d.ndim == 1 else d
    D = np.full((n, d.shape[1]), np.nan)
    D[used] = d
    return D


def calibrate_prefit(estimator, Xm, y, *, name=None):
    """A fitted model without ``predict_proba``, calibrated on ``Xm``, ``y``.

    Models that have ``predict_proba`` come back as they are. The others get
    their final step wrapped in a :class:`LogisticCalibratedClassifier` whose
    logistic map is fitted on the rows of ``Xm`` where the modality is present
    (the model itself is not refitted).
    """
    head, final = split_modality_model(estimator)
    if hasattr(final, "predict_proba"):
        return estimator
    used, Xt = _usable_features(head, Xm, name)
    calibrated = LogisticCalibratedClassifier(final, cv="prefit")
    calibrated.fit(Xt, np.asarray(y)[used])
    if head is None:
        return calibrated
    return Pipeline(list(head.steps) + [(estimator.steps[-1][0], calibrated)])


def modality_proba(fitted, Xm, classes, *, name=None):
    """Class probabilities of one modality, NaN rows where it is missing.

    Parameters
    ----------
    fitted : estimator
        From :func:`fit_modality`.
    Xm : column or table
        The modality's part of ``X``.
    classes : ndarray
        The fusion's classes; columns of the result follow them.
    name : str, default=None
        The modality's name, given to the items its pipeline refuses
        (reported to :func:`mmfeat.collect_item_errors` with ``Xm``'s rows).

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        NaN rows where the modality is missing.
    """
    n = n_rows(Xm)
    out = np.full((n, len(classes)), np.nan)
    head, final = split_modality_model(fitted)
    rows, Xt = _usable_features(head, Xm, name)
    if len(rows) == 0:
        return out
    if hasattr(final, "predict_proba"):
        proba = np.asarray(final.predict_proba(Xt), dtype=np.float64)
    else:  # a single-class modality model kept uncalibrated
        pred = final.predict(Xt)
        proba = (pred[:, None] == final.classes_[None, :]).astype(np.float64)
    cols = np.searchsorted(classes, final.classes_)
    block = np.zeros((len(rows), len(classes)))
    block[:, cols] = proba
    out[rows] = block
    return out


def _fold_job(
    name, estimator, Xm, y, sample_weight, groups, train, test, classes, calibration_cv
):
    fitted, _ = fit_modality(
        estimator,
        take_rows(Xm, train),
        y[train],
        None if sample_weight is None else sample_weight[train],
        calibration_cv,
        None if groups is None else groups[train],
        name=name,
        rows=train,
    )
    with in_callers_rows(np.arange(len(test)), test, None):
        proba = modality_proba(fitted, take_rows(Xm, test), classes, name=name)
    return test, proba


def _full_job(name, estimator, Xm, y, sample_weight, groups, calibration_cv):
    return fit_modality(
        estimator, Xm, y, sample_weight, calibration_cv, groups, name=name
    )


def _decision_full_job(name, estimator, Xm, y, sample_weight, groups, calibration_cv):
    return _decision_model(estimator, Xm, y, sample_weight, groups, name, None)


def _decision_fold_job(
    name, estimator, Xm, y, sample_weight, groups, train, test, classes, calibration_cv
):
    _, head, final, _ = _decision_model(
        estimator,
        take_rows(Xm, train),
        y[train],
        None if sample_weight is None else sample_weight[train],
        None if groups is None else groups[train],
        name,
        train,
    )
    D = _decisions_on(head, final, take_rows(Xm, test), name, rows=test)
    return test, D, final.classes_


def _calibrate_from_folds(full, folds, y, classes, sample_weight):
    """The calibrated model and out-of-fold probabilities of a decision modality.

    ``full`` is ``(estimator, head, final, n_used)`` fitted on every row and
    ``folds`` the ``(test, decisions, classes)`` of each fold model: the
    model's logistic map is fitted on all the out-of-fold decision values,
    and the out-of-fold probabilities come from maps fitted on the other
    folds' decision values (cross-fitted, so not optimistic). Returns
    None when the folds do not line up (a fold lacked a class), so the
    caller falls back to calibrating inside each fold.
    """
    estimator, head, final, n_used = full
    width = {D.shape[1] for _, D, _ in folds}
    same = all(np.array_equal(c, final.classes_) for _, _, c in folds)
    if not same or len(width) != 1 or 0 in width or len(final.classes_) < 2:
        return None
    D = np.full((len(y), width.pop()), np.nan)
    for test, block, _ in folds:
        D[test] = block
    ok = ~np.isnan(D).any(axis=1)
    if len(np.unique(y[ok])) < 2:
        return None
    sw = None if sample_weight is None else sample_weight
    calibrated = LogisticCalibratedClassifier(final, cv="prefit")
    calibrated._fit_map(final, D[ok], y[ok], None if sw is None else sw[ok])
    # the out-of-fold probabilities are cross-fitted too: each fold's
    # decision values go through a map fitted on the other folds', so the
    # fusion does not learn from probabilities the map has already seen
    oof = np.full((len(y), len(classes)), np.nan)
    for test, _, _ in folds:
        held = np.zeros(len(y), dtype=bool)
        held[test] = True
        fit_rows, out_rows = ok & ~held, ok & held
        if not out_rows.any():
            continue
        if len(np.unique(y[fit_rows])) < 2:
            return None
        part = LogisticCalibratedClassifier(final, cv="prefit")._fit_map(
            final, D[fit_rows], y[fit_rows], None if sw is None else sw[fit_rows]
        )
        block = np.zeros((int(out_rows.sum()), len(classes)))
        block[:, np.searchsorted(classes, part.classes_)] = (
            part.predict_proba_from_decisions(D[out_rows])
        )
        oof[out_rows] = block
    return _assemble(estimator, head, calibrated), n_used, oof


def fit_modalities(
    modalities,
    X,
    y,
    classes,
    *,
    sample_weight=None,
    groups=None,
    cv=None,
    calibration_cv=3,
    n_jobs=None,
    verbose=0,
):
    """Fit every modality on all rows and, with ``cv``, get out-of-fold proba.

    A modality whose classifier has no ``predict_proba`` (LinearSVC, SVC)
    is calibrated on decision values. Without ``cv`` that takes an inner
    ``calibration_cv``-fold cross-validation (``calibration_cv + 1`` fits
    of the classifier). With ``cv``, the ``cv`` fold models give the
    out-of-fold decision values once and the logistic map is fitted on
    them: ``cv + 1`` fits in all, where a calibration inside every fold
    would cost ``(cv + 1) * (calibration_cv + 1)``.

    Returns
    -------
    fitted : list of estimators
        One per modality, fitted on every row where it is present.
    n_used : list of int
        Training rows each modality had.
    oof : list of ndarray or None
        Out-of-fold probabilities per modality (NaN where missing), or
        ``None`` when ``cv`` is ``None``.
    """
    parts = [select_columns(X, cols) for _, _, cols in modalities]
    one_pass = [
        cv is not None and _needs_calibration(split_modality_model(est)[1])
        for _, est, _ in modalities
    ]
    # each job brings its refused items back with its result (any backend)
    jobs = [
        delayed(collecting(_decision_full_job if quick else _full_job))(
            name, est, Xm, y, sample_weight, groups, calibration_cv
        )
        for (name, est, _), Xm, quick in zip(modalities, parts, one_pass)
    ]

    def fold_args(name, est, Xm, split):
        train, test = split
        common = (y, sample_weight, groups, train, test, classes, calibration_cv)
        return (name, est, Xm, *common)

    splits = []
    if cv is not None:
        # one split for every modality, so their out-of-fold rows line up
        splits = resolve_cv(cv, y, groups)
        for (name, est, _), Xm, quick in zip(modalities, parts, one_pass):
            fold = collecting(_decision_fold_job if quick else _fold_job)
            jobs.extend(delayed(fold)(*fold_args(name, est, Xm, t)) for t in splits)
    if verbose:
        # a calibrated modality without folds splits calibration_cv ways
        fits = [
            1 + len(splits)
            if cv is not None or not _needs_calibration(split_modality_model(est)[1])
            else 1 + calibration_cv
            for _, est, _ in modalities
        ]
        print(
            f"[mmfeat] fitting {len(modalities)} modalities: {sum(fits)} fits of "
            f"their classifiers ({', '.join(map(str, fits))})",
            flush=True,
        )
    results = unpack_collected(Parallel(n_jobs=n_jobs, verbose=verbose)(jobs))
    m = len(modalities)
    k = len(splits)
    fitted, n_used, oof = [], [], []
    for i, ((name, est, _), Xm) in enumerate(zip(modalities, parts)):
        folds = results[m + i * k : m + (i + 1) * k]
        if one_pass[i]:
            done = _calibrate_from_folds(results[i], folds, y, classes, sample_weight)
            if done is None:  # a fold without some class: calibrate per fold
                full = _full_job(
                    name, est, Xm, y, sample_weight, groups, calibration_cv
                )
                folds = [_fold_job(*fold_args(name, est, Xm, t)) for t in splits]
            else:
                fitted.append(done[0])
                n_used.append(done[1])
                oof.append(done[2])
                continue
        else:
            full = results[i]
        fitted.append(full[0])
        n_used.append(full[1])
        if cv is not None:
            proba = np.full((len(y), len(classes)), np.nan)
            for test, block in folds:
                proba[test] = block
            oof.append(proba)
    return fitted, n_used, (oof if cv is not None else None)


def predict_modalities(fitted, modalities, X, classes, *, n_jobs=None):
    """Probabilities of every fitted modality on ``X`` (NaN where missing)."""
    parts = [select_columns(X, cols) for _, _, cols in modalities]
    job = collecting(modality_proba)
    return unpack_collected(
        Parallel(n_jobs=n_jobs)(
            delayed(job)(est, Xm, classes, name=name)
            for est, Xm, (name, _, _) in zip(fitted, parts, modalities)
        )
    )


def all_missing_rows(probas):
    """Rows where no modality gave probabilities."""
    return np.all([np.isnan(p[:, 0]) for p in probas], axis=0)


def raise_all_missing(rows, names):
    """Raise the error for rows that miss every modality."""
    first = rows[:5].tolist()
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    raise InputError(
        f"every modality ({', '.join(names)}) is missing or unreadable in rows "
        f"{first}{more}; set all_missing='prior' to score them with the "
        "training class prior",
        row=int(rows[0]),
        source="X",
    )
