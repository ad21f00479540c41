"""Model-level fusion by a weighted sum of per-modality probabilities."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from mmfeat.exceptions import ParameterError
from mmfeat.fusion._base import BaseModalityEnsemble
from mmfeat.fusion._modality import check_weight_dict
from mmfeat.utils._fusion_weights import learn_weights
from mmfeat.utils._sklearn_compat import StrOptions, _fit_context

__all__ = ["LateFusionClassifier"]


def _fused(probas, weights):
    """``Σ w_m P_m / Σ w_m`` over the modalities present in each row."""
    num = np.zeros_like(probas[0])
    den = np.zeros(probas[0].shape[0])
    for p, w in zip(probas, weights):
        present = ~np.isnan(p[:, 0])
        num[present] += w * p[present]
        den[present] += w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den[:, None]
    return out, den > 0


class LateFusionClassifier(BaseModalityEnsemble):
    """Weighted late fusion, one classifier per modality: ``Y = Σ w_m·P_m``.

    Each ``(name, estimator, columns)`` modality model sees only its own
    columns of the table (an image-path column with HOG + SVC, a text column
    with TF-IDF + LinearSVC, an audio column with MFCC + RandomForest, ...),
    which is what scikit-learn's stacking cannot do. ``predict_proba`` is the
    weighted mean of the modality models' probabilities over the modalities
    each row has: a row whose image is missing or unreadable is scored from
    its text (and whatever else it has), with the weights renormalised.

    Parameters
    ----------
    estimators : list of (str, estimator, columns)
        The modality models: a name, a classifier or a Pipeline ending in one
        (typically an mmfeat extractor and a classifier), and the columns it
        reads (a column name gives it a 1-D column of items, as mmfeat's
        extractors take). Models without ``predict_proba`` (LinearSVC, SVC
        without ``probability=True``) are calibrated by a multinomial
        logistic regression on their out-of-fold decision values (one-vs-one
        margins for SVC). What that costs: with ``weights="learn"`` the
        ``cv`` fold models give those decision values, so such a modality
        is fitted ``cv + 1`` times, as any other; with given weights it
        takes a 3-fold inner split (4 fits). ``verbose=1`` prints the count
        and joblib's progress.
    weights : None, dict of str to float, or "learn", default=None
        ``None``: equal weights. A dict: weight by modality name (left-out
        modalities weigh 1; weights are normalised to sum to 1). ``"learn"``:
        weights on the simplex that minimise the log-loss of the fused
        out-of-fold probabilities (``cv`` folds), so a weak modality gets a
        small weight (possibly 0) instead of dragging the fusion down.
    cv : int, cross-validation splitter, iterable or "prefit", default=5
        Folds for ``weights="learn"`` (stratified when an int); unused
        otherwise. ``"prefit"``: the estimators are already fitted and are
        used as they are; ``fit`` only learns the weights (on the ``X`` it is
        given, which should be held out from the models' training data).
    all_missing : {"raise", "prior"}, default="raise"
        Rows where every modality is missing or unreadable: raise an
        :class:`~mmfeat.InputError` naming them, or score them with the
        training class prior.
    n_jobs : int, default=None
        Modality models (and folds) fitted and scored in parallel (joblib).
    verbose : int, default=0
        joblib verbosity.

    Attributes
    ----------
    estimators_ : list of estimators
        Fitted modality models (on every training row that has the modality).
    named_estimators_ : dict
        The same, by modality name.
    weights_ : dict of str to float
        Weight of each modality, summing to 1.
    modality_names_ : list of str
        Modality names in order.
    classes_ : ndarray
        Class labels.
    class_prior_ : ndarray
        Training class frequencies (for ``all_missing="prior"``).
    oof_proba_ : dict of str to ndarray or None
        Out-of-fold probabilities of each modality when weights were learned.
    n_training_rows_ : dict of str to int or None
        Training rows each modality had (rows where it was present).

    See Also
    --------
    ModalityStackingClassifier : A meta-model instead of a weighted sum.
    MultimodalFuser : Feature-level fusion.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 30)
    >>> table = pd.DataFrame({"a": y + rng.normal(0, 0.5, 60),
    ...                       "b": y + rng.normal(0, 2.0, 60)})
    >>> model = LateFusionClassifier(
    ...     [("a", LogisticRegression(), ["a"]), ("b", LogisticRegression(), ["b"])],
    ...     weights="learn",
    ... ).fit(table, y)
    >>> model.weights_["a"] > model.weights_["b"]
    True
    >>> table.loc[0, "a"] = np.nan  # modality "a" missing: scored from "b"
    >>> model.predict_proba(table.iloc[:1]).shape
    (1, 2)
    """

    _parameter_constraints = {
        **BaseModalityEnsemble._parameter_constraints,
        "weights": [None, dict, StrOptions({"learn"})],
    }

    def __init__(
        self,
        estimators,
        *,
        weights=None,
        cv=5,
        all_missing="raise",
        n_jobs=None,
        verbose=0,
    ):
        self.estimators = estimators
        self.weights = weights
        self.cv = cv
        self.all_missing = all_missing
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _given_weights(self, names):
        if self.weights is None:
            return np.ones(len(names)) / len(names)
        if not isinstance(self.weights, dict):
            raise ParameterError(
                "weights must be None, a dict by modality name or 'learn'; got "
                f"{self.weights!r}"
            )
        given = check_weight_dict(self.weights, names, ("modality", "modalities"))
        w = np.asarray([given[n] for n in names])
        if w.sum() == 0:
            raise ParameterError("at least one modality weight must be > 0")
        return w / w.sum()

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Fit the modality models (and learn the weights when asked).

        Parameters
        ----------
        X : DataFrame
            The table, with every modality's columns.
        y : array-like of shape (n_samples,)
            Labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to every modality model that accepts it (and to the
            weight-learning log-loss).
        groups : array-like of shape (n_samples,), default=None
            Rows that share a group (the same recording, the same product)
            stay in one fold of the out-of-fold and calibration splits, so
            duplicates cannot leak between them. Used with an int ``cv``
            (stratified group folds) or a group-aware splitter.

        Returns
        -------
        self : LateFusionClassifier
        """
        names = self._check_common()
        learn = isinstance(self.weights, str)
        if learn and self.weights != "learn":
            raise ParameterError(
                "weights must be None, a dict by modality name or 'learn'; got "
                f"{self.weights!r}"
            )
        if not learn:
            given = self._given_weights(names)
        oof, y_enc, sw = self._fit_base(
            X, y, sample_weight, self.cv if learn else None, groups
        )
        if learn:
            w = learn_weights(oof, y_enc, sw)
            self.oof_proba_ = dict(zip(names, oof))
        else:
            w = given
            self.oof_proba_ = None
        self.weights_ = dict(zip(names, w.tolist()))
        return self

    def predict_proba(self, X):
        """Weighted mean of the modality probabilities present in each row.

        Parameters
        ----------
        X : DataFrame
            The table, with every modality's columns.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``. No NaN: rows missing some modalities
            are scored from the rest.
        """
        return self._fused_proba(X)[0]

    def _fused_proba(self, X):
        """Fused probabilities and each modality's (NaN rows where missing)."""
        check_is_fitted(self, "weights_")
        probas = self._predict_encoded(X)
        w = [self.weights_[n] for n in self.modality_names_]
        out, _ = _fused(probas, w)
        # rows whose present modalities all weigh 0: fall back to equal weights
        zero = np.isnan(out[:, 0]) & ~np.all(
            [np.isnan(p[:, 0]) for p in probas], axis=0
        )
        if zero.any():
            eq, _ = _fused([p[zero] for p in probas], np.ones(len(probas)))
            out[zero] = eq
        return self._handle_all_missing(probas, out), probas

    def _xfail_checks(self):
        """scikit-learn checks that cannot pass, with the reason."""
        if self.weights != "learn":
            return {}
        why = (
            "weights are learned on out-of-fold probabilities; repeating rows "
            "instead of weighting them changes the folds"
        )
        return {
            "check_sample_weight_equivalence_on_dense_data": why,
            "check_sample_weight_equivalence_on_sparse_data": why,
        }

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.naive_bayes import GaussianNB
        from sklearn.svm import LinearSVC

        everything = slice(0, None)
        # the common checks put NaN in some rows: score those from the prior
        return [
            {
                "all_missing": "prior",
                "estimators": [
                    ("a", LogisticRegression(), everything),
                    ("b", GaussianNB(), everything),
                ],
            },
            {
                "all_missing": "prior",
                "estimators": [
                    ("a", LogisticRegression(), everything),
                    ("b", LinearSVC(), everything),
                ],
                "weights": "learn",
                "cv": 3,
            },
        ]
