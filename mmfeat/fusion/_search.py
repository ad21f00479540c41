"""Choose the fusion by cross-validation: never below the best single modality."""

import time

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.pipeline import Pipeline
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from mmfeat.exceptions import ParameterError
from mmfeat.fusion._fuser import MultimodalFuser
from mmfeat.fusion._late import LateFusionClassifier, _fused
from mmfeat.fusion._modality import (
    TripleParams,
    all_missing_rows,
    fit_modalities,
    in_callers_rows,
    resolve_cv,
    split_modality_model,
    take_rows,
    validate_modalities,
)
from mmfeat.fusion._neural import NeuralFusionClassifier
from mmfeat.fusion._stacking import (
    ModalityStackingClassifier,
    fit_meta_model,
    meta_features,
)
from mmfeat.utils._fusion_weights import learn_weights
from mmfeat.utils._item_errors import collecting, unpack_collected
from mmfeat.utils._sklearn_compat import (
    HasMethods,
    Integral,
    StrOptions,
    _BaseComposition,
    _fit_context,
)
from mmfeat.utils._state import CheckedStateMixin, state_error
from mmfeat.utils._tables import check_table
from mmfeat.utils._validation import check_class_target

__all__ = ["FusionSearchCV"]

#: The kinds of candidate, in the order ties are broken (simplest first)
KINDS = ("single", "late", "late-learned", "stacking", "early", "deep")
_SCORINGS = ("accuracy", "balanced_accuracy", "f1_macro", "neg_log_loss")


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _score(scoring, y, proba):
    """``scoring`` of probabilities ``proba`` (columns: encoded classes)."""
    if scoring == "neg_log_loss":
        p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
        return float(np.log(p).mean())
    pred = np.argmax(proba, axis=1)
    if scoring == "accuracy":
        return float(accuracy_score(y, pred))
    if scoring == "balanced_accuracy":
        return float(balanced_accuracy_score(y, pred))
    return float(f1_score(y, pred, average="macro", zero_division=0))


def _in_columns(model, proba, n_classes):
    """Probabilities of a fitted model, in the search's encoded class order."""
    out = np.zeros((proba.shape[0], n_classes))
    out[:, np.asarray(model.classes_, dtype=int)] = proba
    return out


def _fit_params(model, sample_weight, groups):
    """The ``fit`` keywords a candidate takes for the weights and groups."""
    params = {}
    if sample_weight is not None:
        key = (
            "classifier__sample_weight"
            if isinstance(model, Pipeline)
            else "sample_weight"
        )
        params[key] = sample_weight
    if groups is not None and isinstance(
        model, (LateFusionClassifier, ModalityStackingClassifier)
    ):
        params["groups"] = groups
    return params


def _fold_proba(model, X, y_enc, train, test, n_classes, sample_weight, groups):
    """Fit a clone on ``train``; probabilities on ``test`` (encoded classes)."""
    model = clone(model)
    params = _fit_params(
        model,
        None if sample_weight is None else sample_weight[train],
        None if groups is None else groups[train],
    )
    with in_callers_rows(np.arange(len(train)), train, None):
        model.fit(take_rows(X, train), y_enc[train], **params)
    with in_callers_rows(np.arange(len(test)), test, None):
        part = take_rows(X, test)
        if hasattr(model, "predict_proba"):
            proba = model.predict_proba(part)
        else:
            pred = np.asarray(model.predict(part), dtype=int)
            proba = (pred[:, None] == np.asarray(model.classes_)[None, :]).astype(float)
    return test, _in_columns(model, np.asarray(proba, dtype=np.float64), n_classes)


class FusionSearchCV(
    TripleParams, CheckedStateMixin, ClassifierMixin, _BaseComposition
):
    """Choose how to fuse the modalities by cross-validation, then refit it.

    Takes the ``(name, classifier-or-pipeline, columns)`` modalities of
    :class:`LateFusionClassifier` once and scores, on the same folds of the
    training data only, every way mmfeat can use them:

    - ``"single"``: each modality alone (its own model; a row without it
      gets the training prior);
    - ``"late"``: late fusion with equal weights;
    - ``"late-learned"``: late fusion with weights learnt on out-of-fold
      probabilities (a weight may go to 0: ``learned_weights_``);
    - ``"stacking"``: :class:`ModalityStackingClassifier` with its
      non-negative, cross-validated meta-model;
    - ``"early"``: the modalities' feature steps in one
      :class:`MultimodalFuser` (l2 blocks) and ``early_classifier``;
    - ``"deep"``: a :class:`NeuralFusionClassifier` on the same feature
      steps (only when torch imports).

    The model-level candidates (single, late, late-learned, stacking) are
    scored from one set of out-of-fold probabilities: each modality is
    fitted once per fold, and the fusion weights or meta-model of fold
    ``k`` are learnt on the out-of-fold probabilities of the other folds
    only (cross-fitted): no weight or meta-model sees the rows it is scored
    on. (The modality models behind the other folds' probabilities were
    trained with fold ``k``, as in any such shortcut; a fully nested
    cross-validation would cost ``cv`` times as many fits.)
    Early and deep fusion are fitted once per fold. The candidate with the
    best mean score is refitted on every row (ties go to the earlier kind
    above, single modalities first); with ``selection="paired-se"`` a fused
    candidate must also beat the best single modality by more than the
    standard error of their paired fold differences, so adding a weak
    modality cannot make the choice worse than the best modality alone by
    more than the folds' noise.

    Parameters
    ----------
    estimators : list of (str, estimator, columns)
        The modality models, as in :class:`LateFusionClassifier`. For early
        and deep fusion a Pipeline's steps before its classifier are the
        modality's features; a bare classifier's columns are used as they
        are (``"passthrough"``).
    candidates : list of str, default=None
        Kinds to try, among ``"single"``, ``"late"``, ``"late-learned"``,
        ``"stacking"``, ``"early"`` and ``"deep"``; ``None`` tries all
        (``"deep"`` when torch imports; with one modality only
        ``"single"``).
    cv : int, cross-validation splitter or iterable, default=5
        Folds of the search (stratified when an int; stratified group folds
        with ``groups``). The refitted late-learned and stacking models use
        the same number of folds inside.
    scoring : {"accuracy", "balanced_accuracy", "f1_macro", "neg_log_loss"}, \
default="accuracy"
        What the candidates are ranked by.
    selection : {"paired-se", "best"}, default="paired-se"
        ``"best"``: the candidate with the best mean score. ``"paired-se"``:
        the same, except that a fused candidate must beat the best single
        modality by more than the standard error of their paired per-fold
        differences; otherwise that modality alone is chosen. A fusion that
        wins by less than the folds' noise (0.05 points on the fashion
        sample's gender, where the title alone is 98.9% right) is as likely
        to lose on new data, and the single model is the simpler one.
    early_classifier : classifier, default=None
        The classifier of early fusion; ``None`` is
        ``LogisticRegression(C=10, max_iter=2000)``.
    deep_params : dict, default=None
        Parameters of the :class:`NeuralFusionClassifier` (its
        ``random_state`` defaults to this search's).
    all_missing : {"raise", "prior"}, default="raise"
        The chosen model's handling of rows where every modality is missing
        (during the search every candidate scores them with the prior).
    random_state : int, default=0
        Seeds the deep candidate.
    n_jobs : int, default=None
        Modality fits and folds in parallel (joblib).
    verbose : int, default=0
        Print each candidate's score.

    Attributes
    ----------
    cv_results_ : dict of str to list
        A table by column (``pd.DataFrame(search.cv_results_)`` shows it),
        one entry per candidate: ``candidate``, ``kind``, ``mean_test_score``,
        ``std_test_score``, ``split<k>_test_score``, ``rank_test_score``,
        ``fit_time`` (seconds of its cross-validation; the model-level
        candidates share the out-of-fold fits, counted once under the
        first of them) and ``note`` (the learnt weights, the chosen ``C``).
    best_candidate_ : str
        Name of the chosen candidate.
    best_score_ : float
        Its mean cross-validated score (below the best candidate's when
        ``selection`` preferred a single modality).
    best_estimator_ : estimator
        The chosen candidate, refitted on every row.
    learned_weights_ : dict of str to float or None
        Late-fusion weights learnt on all the out-of-fold probabilities.
    classes_ : ndarray
        Class labels.
    modality_names_ : list of str
        Modality names in order.
    n_features_in_ : int
        Number of columns of ``X``.

    See Also
    --------
    LateFusionClassifier, ModalityStackingClassifier, MultimodalFuser,
    NeuralFusionClassifier : The candidates.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 40)
    >>> table = pd.DataFrame({"a": y + rng.normal(0, 0.5, 80),
    ...                       "b": rng.normal(0, 1.0, 80)})  # b is noise
    >>> search = FusionSearchCV(
    ...     [("a", LogisticRegression(), ["a"]), ("b", LogisticRegression(), ["b"])],
    ...     candidates=["single", "late", "late-learned", "stacking"], cv=3,
    ... ).fit(table, y)
    >>> results = pd.DataFrame(search.cv_results_).set_index("candidate")
    >>> results.index.tolist()
    ['a alone', 'b alone', 'late', 'late-learned', 'stacking']
    >>> scores = results["mean_test_score"]
    >>> bool(search.best_score_ >= scores["a alone"]), search.learned_weights_["b"]
    (True, 0.0)
    """

    _required_parameters = ["estimators"]

    _parameter_constraints = {
        "estimators": [list, tuple],
        "candidates": [None, list, tuple],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(_SCORINGS))],
        "selection": [StrOptions({"paired-se", "best"})],
        "early_classifier": [None, HasMethods("fit")],
        "deep_params": [None, dict],
        "all_missing": [StrOptions({"raise", "prior"})],
        "random_state": [Integral],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimators,
        *,
        candidates=None,
        cv=5,
        scoring="accuracy",
        selection="paired-se",
        early_classifier=None,
        deep_params=None,
        all_missing="raise",
        random_state=0,
        n_jobs=None,
        verbose=0,
    ):
        self.estimators = estimators
        self.candidates = candidates
        self.cv = cv
        self.scoring = scoring
        self.selection = selection
        self.early_classifier = early_classifier
        self.deep_params = deep_params
        self.all_missing = all_missing
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- the candidates --------------------------------------------------------------
    def _kinds(self, n_modalities):
        if self.candidates is None:
            kinds = list(KINDS) if _has_torch() else list(KINDS[:-1])
        else:
            kinds = list(self.candidates)
            unknown = [k for k in kinds if k not in KINDS]
            if unknown or not kinds or len(set(kinds)) != len(kinds):
                raise ParameterError(
                    f"candidates must be distinct kinds among {list(KINDS)}; got "
                    f"{self.candidates!r}"
                )
        if n_modalities == 1:
            kinds = ["single"]
        return [k for k in KINDS if k in kinds]

    def _features(self):
        """``(name, feature steps or "passthrough", columns)`` of each modality."""
        out = []
        for name, est, cols in self.estimators:
            head, _ = split_modality_model(est)
            out.append((name, "passthrough" if head is None else clone(head), cols))
        return out

    def _candidate(self, kind, *, name=None, weights=None, missing="prior"):
        """The unfitted model of a candidate."""
        mods = [(n, clone(e), c) for n, e, c in self.estimators]
        if kind == "single":
            triple = next(m for m in mods if m[0] == name)
            return LateFusionClassifier(
                [triple], all_missing=missing, n_jobs=self.n_jobs
            )
        if kind in ("late", "late-learned"):
            return LateFusionClassifier(
                mods,
                weights=weights if kind == "late-learned" else None,
                cv=self._inner_cv(),
                all_missing=missing,
                n_jobs=self.n_jobs,
            )
        if kind == "stacking":
            return ModalityStackingClassifier(
                mods, cv=self._inner_cv(), all_missing=missing, n_jobs=self.n_jobs
            )
        if kind == "early":
            final = (
                LogisticRegression(C=10.0, max_iter=2000)
                if self.early_classifier is None
                else clone(self.early_classifier)
            )
            return Pipeline(
                [
                    ("fuser", MultimodalFuser(self._features(), n_jobs=self.n_jobs)),
                    ("classifier", final),
                ]
            )
        params = {"random_state": self.random_state, **(self.deep_params or {})}
        return NeuralFusionClassifier(self._features(), all_missing=missing, **params)

    def _inner_cv(self):
        return self.cv if isinstance(self.cv, Integral) else 5

    # -- fit -------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Score every candidate on the same folds, then refit the best.

        Parameters
        ----------
        X : DataFrame
            The table, with every modality's columns.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the modality models that take it and to the weights.
        groups : array-like of shape (n_samples,), default=None
            Rows of a group stay in one fold (the same recording, product).

        Returns
        -------
        self : FusionSearchCV
        """
        names = validate_modalities(self.estimators)
        X = check_table(self, X, reset=True)
        y = check_class_target(self, y)
        if X.shape[0] != len(y):
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: X has "
                f"{X.shape[0]} rows, y has {len(y)}"
            )
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "FusionSearchCV needs samples of at least 2 classes in the data, but "
                f"the data contains only one class: {self.classes_[0]!r}"
            )
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, np.zeros((len(y), 1)))
            if len(np.unique(y[sw > 0])) < 2:
                raise ValueError(
                    "FusionSearchCV needs samples of at least 2 classes with a "
                    "positive sample weight; the data contains only one class"
                )
        groups = None if groups is None else np.asarray(groups)
        k_classes = len(self.classes_)
        kinds = self._kinds(len(names))
        splits = resolve_cv(self.cv, y_enc, groups)
        prior = np.bincount(y_enc, minlength=k_classes) / len(y_enc)
        results = []  # (candidate, kind, proba per fold, fit seconds, note)

        def fold_scores(proba):
            return [
                _score(self.scoring, y_enc[test], proba[test]) for _, test in splits
            ]

        model_level = [
            k for k in kinds if k in ("single", "late", "late-learned", "stacking")
        ]
        self.learned_weights_ = None
        if model_level:
            t0 = time.perf_counter()
            _, _, oof = fit_modalities(
                self.estimators,
                X,
                y_enc,
                np.arange(k_classes),
                sample_weight=sw,
                groups=groups,
                cv=splits,
                n_jobs=self.n_jobs,
            )
            shared = time.perf_counter() - t0
            first = True

            def cost():
                nonlocal first
                out, first = (shared if first else 0.0), False
                return out

            if "single" in kinds:
                for name, p in zip(names, oof):
                    filled = np.where(np.isnan(p), prior, p)
                    results.append((f"{name} alone", "single", filled, cost(), ""))
            if "late" in kinds:
                fused, _ = _fused(oof, np.ones(len(oof)))
                fused[np.isnan(fused[:, 0])] = prior
                results.append(("late", "late", fused, cost(), "equal weights"))
            if "late-learned" in kinds or "stacking" in kinds:
                learned = np.zeros((len(y_enc), k_classes))
                stacked = np.zeros((len(y_enc), k_classes))
                t1 = time.perf_counter()
                for _train, test in splits:
                    held = np.zeros(len(y_enc), dtype=bool)
                    held[test] = True
                    fit_rows = np.flatnonzero(~held)
                    if "late-learned" in kinds:
                        w = learn_weights(
                            [p[fit_rows] for p in oof],
                            y_enc[fit_rows],
                            None if sw is None else sw[fit_rows],
                        )
                        part, _ = _fused([p[test] for p in oof], w)
                        part[np.isnan(part[:, 0])] = prior
                        learned[test] = part
                    if "stacking" in kinds:
                        meta, _ = fit_meta_model(
                            None,
                            [p[fit_rows] for p in oof],
                            None,
                            y_enc[fit_rows],
                            None if sw is None else sw[fit_rows],
                            True,
                            None if groups is None else groups[fit_rows],
                        )
                        probas = [p[test] for p in oof]
                        part = np.zeros((len(test), k_classes))
                        part[:, np.asarray(meta.classes_, dtype=int)] = (
                            meta.predict_proba(meta_features(probas, None))
                        )
                        part[all_missing_rows(probas)] = prior
                        stacked[test] = part
                spent = time.perf_counter() - t1
                if "late-learned" in kinds:
                    w = learn_weights(oof, y_enc, sw)
                    self.learned_weights_ = dict(zip(names, w.tolist()))
                    shown = ", ".join(
                        f"{n} {v:.2f}" for n, v in self.learned_weights_.items()
                    )
                    results.append(
                        ("late-learned", "late-learned", learned, cost() + spent, shown)
                    )
                    spent = 0.0
                if "stacking" in kinds:
                    results.append(
                        ("stacking", "stacking", stacked, cost() + spent, "")
                    )
        for kind in ("early", "deep"):
            if kind not in kinds:
                continue
            model = self._candidate(kind)
            t0 = time.perf_counter()
            # folds one after the other: the candidate parallelises inside
            # (the fuser's blocks, torch's threads), and a table of decoded
            # images is not copied into every worker
            job = collecting(_fold_proba)
            parts = unpack_collected(
                [
                    job(model, X, y_enc, train, test, k_classes, sw, groups)
                    for train, test in splits
                ]
            )
            proba = np.zeros((len(y_enc), k_classes))
            for test, block in parts:
                proba[test] = block
            results.append((kind, kind, proba, time.perf_counter() - t0, ""))

        table = []
        for cand, kind, proba, secs, note in results:
            scores = fold_scores(proba)
            row = {
                "candidate": cand,
                "kind": kind,
                "mean_test_score": float(np.mean(scores)),
                "std_test_score": float(np.std(scores)),
                **{f"split{i}_test_score": s for i, s in enumerate(scores)},
                "fit_time": secs,
                "note": note,
            }
            table.append(row)
            if self.verbose:
                print(
                    f"[FusionSearchCV] {cand}: {row['mean_test_score']:.4f} "
                    f"(+/- {row['std_test_score']:.4f})",
                    flush=True,
                )
        frame = pd.DataFrame(table)
        # rank: higher is better; ties share the better rank
        frame["rank_test_score"] = (
            frame["mean_test_score"].rank(ascending=False, method="min").astype(int)
        )
        # plain lists (as GridSearchCV's dict of arrays): pd.DataFrame(...)
        # shows it, and skops saves it
        self.cv_results_ = {
            col: [v.item() if hasattr(v, "item") else v for v in frame[col]]
            for col in frame.columns
        }
        best = self._choose(frame, len(splits))
        self.best_candidate_ = str(frame["candidate"][best])
        self.best_score_ = float(frame["mean_test_score"][best])
        kind = str(frame["kind"][best])
        winner = self._candidate(
            kind,
            name=self.best_candidate_[: -len(" alone")] if kind == "single" else None,
            weights=self.learned_weights_,
            missing=self.all_missing,
        )
        self.best_estimator_ = winner.fit(X, y, **_fit_params(winner, sw, groups))
        self.modality_names_ = names
        return self

    def _choose(self, frame, n_splits):
        """The row of the chosen candidate (see ``selection``)."""
        means = frame["mean_test_score"].to_numpy()
        best = int(np.argmax(means))  # the first (simplest) of ties
        singles = np.flatnonzero(frame["kind"].to_numpy() == "single")
        if (
            self.selection == "best"
            or frame["kind"][best] == "single"
            or not len(singles)
        ):
            return best
        single = int(singles[np.argmax(means[singles])])
        cols = [f"split{i}_test_score" for i in range(n_splits)]
        diff = frame.loc[best, cols].to_numpy(float) - frame.loc[single, cols].to_numpy(
            float
        )
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        return best if diff.mean() > se else single

    # -- predict -----------------------------------------------------------------------
    def predict(self, X):
        """The chosen model's predictions.

        Parameters
        ----------
        X : DataFrame

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def _best_has(attr):
        def check(self):
            check_is_fitted(self, "best_estimator_")
            getattr(self.best_estimator_, attr)
            return True

        return check

    @available_if(_best_has("predict_proba"))
    def predict_proba(self, X):
        """The chosen model's class probabilities.

        Parameters
        ----------
        X : DataFrame

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self.best_estimator_.predict_proba(X)

    @available_if(_best_has("predict_proba_with_presence"))
    def predict_proba_with_presence(self, X):
        """The chosen model's probabilities and which modalities each row had.

        Parameters
        ----------
        X : DataFrame

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        presence : DataFrame of bool
        """
        return self.best_estimator_.predict_proba_with_presence(X)

    @available_if(_best_has("decision_function"))
    def decision_function(self, X):
        """The chosen model's decision function.

        Parameters
        ----------
        X : DataFrame

        Returns
        -------
        scores : ndarray
        """
        return self.best_estimator_.decision_function(X)

    def _check_fitted_state(self):
        names = self.cv_results_["candidate"]
        if not isinstance(names, list) or self.best_candidate_ not in names:
            raise state_error(self, f"best_candidate_={self.best_candidate_!r}")
        if not np.array_equal(
            np.asarray(self.classes_), np.asarray(self.best_estimator_.classes_)
        ):
            raise state_error(self, "classes_ differ from the chosen model's")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        from sklearn.naive_bayes import GaussianNB

        everything = slice(0, None)
        return [
            {
                "estimators": [
                    ("a", LogisticRegression(), everything),
                    ("b", GaussianNB(), everything),
                ],
                "candidates": ["single", "late", "late-learned", "stacking", "early"],
                "all_missing": "prior",
                "cv": 3,
            }
        ]
