"""A stacking meta-model that cannot turn a modality's evidence against a class."""

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)
from threadpoolctl import threadpool_limits

from mmfeat.utils._sklearn_compat import Integral, Interval, Real, _fit_context
from mmfeat.utils._state import CheckedStateMixin, state_error

__all__ = ["NonNegativeLogisticRegression", "choose_meta_C"]


def _objective(theta, X, Y, sw, alpha, n_classes, n_features):
    """Mean weighted log-loss plus ``alpha / 2`` times the squared weights.

    That is scikit-learn's ``C * loss + ||W||^2 / 2`` divided by
    ``C * sum(sw)``: the same optimum, a well-scaled problem.

    ``sw`` sums to 1 and ``alpha = 1 / (C * sum of the original weights)``.
    """
    W = theta[: n_classes * n_features].reshape(n_classes, n_features)
    b = theta[n_classes * n_features :]
    Z = X @ W.T + b
    Z -= Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    S = E.sum(axis=1, keepdims=True)
    logp = Z - np.log(S)
    loss = -(sw * (Y * logp).sum(axis=1)).sum()
    R = (E / S - Y) * sw[:, None]
    gW = R.T @ X + alpha * W
    gb = R.sum(axis=0)
    return loss + 0.5 * alpha * (W * W).sum(), np.concatenate([gW.ravel(), gb])


def _minimize(theta0, X, Y, sw, C, k, d, bounds, max_iter):
    return minimize(
        _objective,
        theta0,
        args=(X, Y, sw / sw.sum(), 1.0 / (float(C) * sw.sum()), k, d),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        # relative decrease below 1e-12: far below what moves a prediction
        options={"maxiter": int(max_iter), "ftol": 1e-12, "gtol": 1e-8},
    )


class NonNegativeLogisticRegression(CheckedStateMixin, ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression with non-negative coefficients.

    The stacking meta-model of :class:`ModalityStackingClassifier`: its
    inputs are the modalities' class probabilities, and a coefficient
    ``W[c, j] >= 0`` means that evidence for input ``j`` can only *raise*
    class ``c``. An unconstrained meta-model fitted on a few hundred
    out-of-fold rows learns negative weights from the noise of a weak
    modality and falls below the strong modality alone; with the
    constraint (the non-negative stacking of Breiman [1]_) the weak
    modality's coefficients go to zero instead, and the fit needs far
    fewer rows to be safe. Columns named in ``free_columns`` (missing
    indicators, passed-through numbers) and the intercepts are
    unconstrained.

    Parameters
    ----------
    C : float, default=1.0
        Inverse strength of the L2 penalty on the coefficients (the
        intercepts are not penalised), as in ``LogisticRegression``.
    free_columns : array-like of int, default=None
        Input columns whose coefficients may be negative.
    max_iter : int, default=1000
        L-BFGS-B iterations at most.

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
    coef_ : ndarray of shape (n_classes, n_features)
    intercept_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    References
    ----------
    .. [1] L. Breiman, "Stacked Regressions", Machine Learning 24, 1996.
    .. [2] D. H. Wolpert, "Stacked Generalization", Neural Networks 5, 1992.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    >>> model = NonNegativeLogisticRegression(C=10.0).fit(X, [0, 0, 1, 1])
    >>> bool((model.coef_ >= 0).all()), model.predict(X).tolist()
    (True, [0, 0, 1, 1])
    """

    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "free_columns": [None, "array-like"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, C=1.0, *, free_columns=None, max_iter=1000):
        self.C = C
        self.free_columns = free_columns
        self.max_iter = max_iter

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the coefficients (L-BFGS-B with bounds).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : NonNegativeLogisticRegression
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        sw = _check_sample_weight(sample_weight, X)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                "NonNegativeLogisticRegression needs samples of at least 2 classes; "
                f"got one class: {self.classes_[0]!r}"
            )
        t = encoder.transform(y)
        k, d = len(self.classes_), X.shape[1]
        Y = np.zeros((len(t), k))
        Y[np.arange(len(t)), t] = 1.0
        free = np.zeros(d, dtype=bool)
        if self.free_columns is not None:
            cols = np.asarray(self.free_columns, dtype=int)
            if cols.size and (cols.min() < 0 or cols.max() >= d):
                raise ValueError(f"free_columns must be in [0, {d}); got {cols}")
            free[cols] = True
        bounds = [(None, None) if free[j] else (0.0, None) for j in range(d)] * k
        bounds += [(None, None)] * k
        # start with every coefficient a little above its bound
        theta0 = np.concatenate([np.full(k * d, 0.1), np.zeros(k)])
        if not sw.sum() > 0:
            raise ValueError(
                "Sample weights must contain at least one non-zero number."
            )
        # products of (n, d) by (d, k) with d and k in the tens: one BLAS
        # thread; several spin against each other on a loaded machine (10x
        # slower measured on 2 shared cores)
        with threadpool_limits(limits=1, user_api="blas"):
            res = _minimize(theta0, X, Y, sw, self.C, k, d, bounds, self.max_iter)
        self.coef_ = res.x[: k * d].reshape(k, d)
        # the loss is the same for intercepts shifted by one constant:
        # centred, they (and decision_function) are unique
        self.intercept_ = res.x[k * d :] - res.x[k * d :].mean()
        self.n_iter_ = int(res.nit)
        return self

    def _scores(self, X):
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_.T + self.intercept_

    def decision_function(self, X):
        """Class scores ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            With two classes, one column: the second class's score minus
            the first's (scikit-learn's convention).
        """
        Z = self._scores(X)
        return Z[:, 1] - Z[:, 0] if Z.shape[1] == 2 else Z

    def predict_proba(self, X):
        """Class probabilities (softmax of the scores).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        Z = self._scores(X)
        return np.exp(Z - logsumexp(Z, axis=1, keepdims=True))

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def _check_fitted_state(self):
        k = len(self.classes_)
        d = self.n_features_in_
        coef, icpt = np.asarray(self.coef_), np.asarray(self.intercept_)
        if coef.shape != (k, d) or icpt.shape != (k,):
            raise state_error(self, f"coef_ {coef.shape} / intercept_ {icpt.shape}")
        if not (np.isfinite(coef).all() and np.isfinite(icpt).all()):
            raise state_error(self, "non-finite coefficients")


def choose_meta_C(Z, t, sample_weight, groups, free_columns, Cs, n_splits=3, seed=0):
    """The ``C`` of ``Cs`` with the lowest cross-validated log-loss on ``Z``.

    ``groups`` keeps copies of one row (the masked copies stacking trains on)
    in one fold. Returns ``(C, losses)``.
    """
    counts = np.bincount(t)
    counts = counts[counts > 0]
    n = max(2, min(n_splits, int(counts.min())))
    if counts.min() < 2 or len(Cs) == 1:
        return Cs[0] if len(Cs) == 1 else 1.0, {}
    splitter = (
        StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)
        if groups is not None
        else StratifiedKFold(n_splits=n, shuffle=True, random_state=seed)
    )
    sw = np.ones(len(t)) if sample_weight is None else np.asarray(sample_weight)
    losses = {}
    for C in Cs:
        total = 0.0
        for train, test in splitter.split(Z, t, groups):
            if len(np.unique(t[train])) < 2:
                continue
            model = NonNegativeLogisticRegression(
                C=C, free_columns=free_columns, max_iter=300
            )
            model.fit(Z[train], t[train], sample_weight=sw[train])
            p = np.full((len(test), int(t.max()) + 1), 1e-15)
            p[:, model.classes_] = np.clip(model.predict_proba(Z[test]), 1e-15, 1)
            total += -(sw[test] * np.log(p[np.arange(len(test)), t[test]])).sum()
        losses[C] = float(total)
    # ties: the smallest C, the strongest penalty
    best = min(losses, key=lambda c: (losses[c], c))
    return best, losses
