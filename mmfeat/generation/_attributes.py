"""Text from predicted attributes: template captions and multi-label tags."""

import string

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MultiLabelBinarizer, Normalizer, StandardScaler

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.generation._base import BaseCaptioner
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._items import is_missing
from mmfeat.utils._sklearn_compat import (
    HasMethods,
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
)
from mmfeat.utils._state import check_array_arg, state_error

__all__ = ["AttributeCaptioner", "TagPredictor", "template_slots"]


def template_slots(template):
    """The ``{name}`` fields of a template, in order, each once.

    Examples
    --------
    >>> template_slots("{gender} {baseColour} {articleType}")
    ['gender', 'baseColour', 'articleType']
    """
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template)]
    except ValueError as exc:
        raise ParameterError(f"template {template!r} is malformed: {exc}") from None
    out = []
    for f in fields:
        if f is None:
            continue
        if not f.isidentifier():
            raise ParameterError(
                f"template field {{{f}}} must be a plain column name "
                "(no index, attribute or format spec)"
            )
        if f not in out:
            out.append(f)
    if not out:
        raise ParameterError(f"template {template!r} names no {{column}}")
    return out


def _default_classifier():
    # multinomial logistic regression on unit-norm rows: probabilities for
    # the slots, scale-free for any features (on the fashion sample's HOG +
    # colour, as accurate as behind a StandardScaler and 4x faster to fit)
    return make_pipeline(
        Normalizer(), LogisticRegression(C=20.0, max_iter=500, tol=1e-3)
    )


@fill_doc
class AttributeCaptioner(BaseCaptioner):
    """Caption a photo by predicting its attributes and filling a template.

    One classifier per attribute (a column of ``y``: gender, colour, article
    type, ...) on the photo's features; ``predict`` writes the most
    probable value of each into ``template`` (``"{gender} {baseColour}
    {articleType}"`` -> ``"Men Blue Tshirts"``). Structured, explainable
    text: each slot comes with its probability
    (:meth:`predict_attributes`), and a slot the model is unsure of can be
    left out by the caller.

    Parameters
    ----------
    template : str, default=None
        A :meth:`str.format` template whose ``{fields}`` are columns of
        ``y``; ``None`` joins every column of ``y`` with spaces.
    transformer : transformer, "passthrough" or None, default=None
        Turns rows of ``X`` into features (see
        :class:`NearestNeighborCaptioner`).
    classifier : classifier with predict_proba, default=None
        Cloned per attribute; default a multinomial logistic regression
        (``C=20``) on L2-normalised rows.
    batch_size : int, default=256
        Query rows turned into features at once.
    %(on_error_items)s
    n_jobs : int, default=None
        Threads of the default image features.

    Attributes
    ----------
    slots_ : list of str
        The attributes predicted, in template order.
    classifiers_ : list of classifier
        The fitted classifier of each slot (a constant one for a slot with a
        single value in the training data).
    classes_ : list of ndarray
        The values of each slot.
    transformer_ : transformer or None
    n_features_in_ : int
        Only with ``transformer="passthrough"``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> F = np.array([[0.0, 1], [0.1, 1], [1, 0], [1, 0.1]])
    >>> y = pd.DataFrame({"colour": ["Blue", "Blue", "Red", "Red"],
    ...                   "type": ["Shirt", "Shirt", "Shoe", "Shoe"]})
    >>> model = AttributeCaptioner("{colour} {type}", "passthrough").fit(F, y)
    >>> model.predict(np.array([[1.0, 0.0]])).tolist()
    ['Red Shoe']
    """

    _parameter_constraints = {
        **BaseCaptioner._common_constraints,
        "template": [str, None],
        "classifier": [HasMethods(["fit", "predict_proba"]), None],
    }

    def __init__(
        self,
        template=None,
        transformer=None,
        *,
        classifier=None,
        batch_size=256,
        on_error="raise",
        n_jobs=None,
    ):
        self.template = template
        self.transformer = transformer
        self.classifier = classifier
        self.batch_size = batch_size
        self.on_error = on_error
        self.n_jobs = n_jobs

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [{"template": "{a} {b}"}]

    def _target_kind(self):
        return "attributes"

    def _slot_names(self, y):
        if self.template is not None:
            return template_slots(self.template)
        return [str(c) for c in y.columns]

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit one classifier per attribute.

        Parameters
        ----------
        X : column of photos, table or matrix
        y : DataFrame
            One column per attribute the template names; a missing value
            leaves that row out of that attribute's classifier only.

        Returns
        -------
        self : AttributeCaptioner
        """
        y = _as_frame(y, "y")
        slots = self._slot_names(y)
        absent = [s for s in slots if s not in y.columns]
        if absent:
            raise ParameterError(
                f"the template names {absent}, which are not columns of y "
                f"({list(y.columns)[:10]})"
            )
        X = self._column(X, fit=True)
        F, ok = self._features(X, fit=True)
        if len(y) != F.shape[0]:
            raise ParameterError(f"y has {len(y)} rows for {F.shape[0]} rows of X")
        if not ok.any():
            raise ValueError("no usable training row: every row lacks features")
        self.slots_ = slots
        self.classifiers_, self.classes_ = [], []
        for slot in slots:
            values = y[slot].to_numpy(dtype=object)
            have = ok & ~np.fromiter((is_missing(v) for v in values), bool, len(values))
            rows = np.flatnonzero(have)
            if len(rows) == 0:
                raise ValueError(f"attribute {slot!r} has no value on a usable row")
            labels = np.asarray([str(v) for v in values[rows]], dtype=object)
            if len(set(labels)) == 1:
                clf = DummyClassifier(strategy="prior")
            elif self.classifier is None:
                clf = _default_classifier()
            else:
                clf = clone(self.classifier)
            clf.fit(F[rows], labels)
            self.classifiers_.append(clf)
            self.classes_.append(np.asarray(clf.classes_, dtype=object))
        return self

    def _check_fitted_state(self):
        self._check_transformer_state()
        if not (
            isinstance(self.slots_, list)
            and len(self.slots_) == len(self.classifiers_) == len(self.classes_)
            and all(isinstance(s, str) for s in self.slots_)
        ):
            raise state_error(self, "slots_, classifiers_ and classes_ must align")
        for slot, clf, classes in zip(self.slots_, self.classifiers_, self.classes_):
            own = getattr(clf, "classes_", None)
            if (
                own is None
                or len(own) != len(classes)
                or len(classes) < 1
                or not np.array_equal(np.asarray(own, dtype=object), classes)
            ):
                raise state_error(
                    self, f"classes_ of slot {slot!r} do not match its classifier"
                )
        if self.template is not None:
            absent = set(template_slots(self.template)) - set(self.slots_)
            if absent:
                raise state_error(
                    self, f"the template names {sorted(absent)}, not in slots_"
                )

    def _slot_proba(self, F):
        return [clf.predict_proba(F) for clf in self.classifiers_]

    def predict_attribute_proba(self, X):
        """Probability of every value of every slot.

        Returns
        -------
        proba : dict of str to DataFrame
            Per slot, an (n_samples, n_values) table; NaN rows where the
            row has no features.
        """
        n_slots = len(self.slots_)
        rows = self._map_rows(
            X, lambda F: list(zip(*self._slot_proba(F))), (None,) * n_slots
        )
        out = {}
        for k, (slot, classes) in enumerate(zip(self.slots_, self.classes_)):
            P = np.full((len(rows), len(classes)), np.nan)
            for i, r in enumerate(rows):
                if r[k] is not None:
                    P[i] = r[k]
            out[slot] = pd.DataFrame(P, columns=list(classes))
        return out

    def predict_attributes(self, X):
        """The most probable value of each slot, and its probability.

        Returns
        -------
        attributes : DataFrame
            One row per row of ``X``: a column per slot (``None`` where the
            row has no features) and ``<slot>_proba``.
        """
        proba = self.predict_attribute_proba(X)
        out = {}
        for slot, classes in zip(self.slots_, self.classes_):
            P = proba[slot].to_numpy()
            bad = np.isnan(P).any(axis=1)
            best = np.argmax(np.nan_to_num(P, nan=-1.0), axis=1)
            values = np.asarray(classes, dtype=object)[best]
            values[bad] = None
            out[slot] = pd.Series(values, dtype=object)
            p = P[np.arange(len(P)), best]
            p[bad] = np.nan
            out[f"{slot}_proba"] = p
        return pd.DataFrame(out)

    def _fill(self, values):
        if self.template is None:
            return " ".join(str(values[s]) for s in self.slots_)
        return self.template.format(**{s: values[s] for s in self.slots_})

    def predict(self, X):
        """The filled template of each row (``None`` without features)."""
        table = self.predict_attributes(X)
        out = np.empty(len(table), dtype=object)
        for i, row in enumerate(table[self.slots_].itertuples(index=False)):
            values = dict(zip(self.slots_, row))
            out[i] = None if is_missing(values[self.slots_[0]]) else self._fill(values)
        return out

    def score(self, X, y):
        """Mean accuracy over the slots (rows with a true value only)."""
        y = _as_frame(y, "y")
        absent = [s for s in self.slots_ if s not in y.columns]
        if absent:
            raise ParameterError(f"y has no column(s) {absent}")
        pred = self.predict_attributes(X)
        if len(y) != len(pred):
            raise ParameterError(f"y has {len(y)} rows for {len(pred)} rows of X")
        accs = []
        for slot in self.slots_:
            truth = y[slot].to_numpy(dtype=object)
            have = ~np.fromiter((is_missing(v) for v in truth), bool, len(truth))
            if have.any():
                got = pred[slot].to_numpy(dtype=object)[have]
                accs.append(
                    np.mean([str(a) == str(b) for a, b in zip(got, truth[have])])
                )
        return float(np.mean(accs)) if accs else float("nan")


def _as_frame(y, name):
    if isinstance(y, pd.DataFrame):
        return y.reset_index(drop=True)
    if isinstance(y, dict):
        return pd.DataFrame(y)
    raise ParameterError(
        f"{name} must be a DataFrame with one column per attribute; got "
        f"{type(y).__name__}"
    )


def _check_tags(y, n):
    if isinstance(y, (str, bytes)) or not hasattr(y, "__len__"):
        raise ParameterError("y must be a sequence of tag lists, one per row")
    y = list(y)
    if len(y) != n:
        raise ParameterError(f"y has {len(y)} entries for {n} rows of X")
    out = []
    for i, tags in enumerate(y):
        if not isinstance(tags, (list, tuple, set, np.ndarray)) and is_missing(tags):
            out.append(None)
            continue
        if isinstance(tags, str) or not hasattr(tags, "__iter__"):
            raise InputError(
                f"the tags of a row must be a list of str; got "
                f"{type(tags).__name__} ({tags!r:.40}) (split a string first)",
                row=i,
                source="y",
            )
        tags = [t for t in tags if not is_missing(t)]
        if not all(isinstance(t, str) for t in tags):
            raise InputError("a tag must be a str", row=i, source="y")
        out.append(sorted(set(tags)))
    return out


#: A tag whose best out-of-fold F1 is below this keeps the cut 0.5: its
#: "best" cut is noise (a rare tag's best F1 is that of a low cut that tags
#: a third of the photos to catch one).
MIN_TUNED_F1 = 0.5


def _best_threshold(scores, truth):
    """The score threshold with the best F1 of one tag.

    0.5 when the tag is on every row or none, or when even the best cut's
    F1 is below :data:`MIN_TUNED_F1`.
    """
    if truth.all() or not truth.any():
        return 0.5
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], truth[order].astype(float)
    tp = np.cumsum(t)
    fp = np.cumsum(1.0 - t)
    f1 = 2 * tp / (tp + fp + t.sum())
    # only cut between distinct scores
    last = np.r_[s[1:] != s[:-1], True]
    k = int(np.argmax(np.where(last, f1, -1.0)))
    if f1[k] < MIN_TUNED_F1:
        return 0.5
    nxt = s[k + 1] if k + 1 < len(s) else s[k] - 1.0
    return float((s[k] + nxt) / 2.0)


@fill_doc
class TagPredictor(BaseCaptioner):
    """Predict a set of tags for each photo, thresholds tuned out of fold.

    One score per tag from a multi-output model on the photo's features;
    a tag is given when its score reaches the tag's own threshold, chosen
    for the best F1 of that tag on out-of-fold scores of the training rows
    (so rare tags are not drowned by a single global cut).

    Parameters
    ----------
    transformer : transformer, "passthrough" or None, default=None
        Turns rows of ``X`` into features (see
        :class:`NearestNeighborCaptioner`).
    estimator : regressor or classifier, default=None
        Fitted on the (rows, tags) 0/1 matrix; scores are its
        ``predict_proba`` (a multi-label classifier) or ``predict`` (a
        multi-output regressor). Default: ridge regression on standardised
        features (one solve for every tag).
    threshold : "tuned" or float, default="tuned"
        ``"tuned"``: per tag, the cut with the best F1 of its out-of-fold
        scores, or 0.5 when even that F1 is below 0.5 (a rare tag's best
        cut is noise: it tags many photos to catch one); a number: the
        same cut for all.
    cv : int, default=3
        Folds of the out-of-fold scores.
    min_count : int, default=5
        Tags on fewer training rows are not learnt.
    random_state : int, RandomState or None, default=0
        Seed of the folds.
    batch_size : int, default=256
    %(on_error_items)s
    n_jobs : int, default=None
        Threads of the default image features.

    Attributes
    ----------
    classes_ : ndarray of str
        The tags learnt.
    thresholds_ : ndarray of float
        Per tag.
    estimator_ : estimator
        Fitted on every usable training row.
    transformer_ : transformer or None

    Examples
    --------
    >>> import numpy as np
    >>> F = np.array([[0.0, 1], [0.1, 1], [1, 0], [1, 0.1], [1, 1], [0.9, 1]])
    >>> tags = [["blue"], ["blue"], ["red"], ["red"], ["blue", "red"],
    ...         ["blue", "red"]]
    >>> model = TagPredictor("passthrough", cv=2, min_count=1).fit(F, tags)
    >>> model.predict(np.array([[1.0, 0.0]]))[0]
    ['red']
    """

    _parameter_constraints = {
        **BaseCaptioner._common_constraints,
        "estimator": [HasMethods(["fit", "predict"]), None],
        "threshold": [StrOptions({"tuned"}), Interval(Real, None, None, closed="both")],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "min_count": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        transformer=None,
        *,
        estimator=None,
        threshold="tuned",
        cv=3,
        min_count=5,
        random_state=0,
        batch_size=256,
        on_error="raise",
        n_jobs=None,
    ):
        self.transformer = transformer
        self.estimator = estimator
        self.threshold = threshold
        self.cv = cv
        self.min_count = min_count
        self.random_state = random_state
        self.batch_size = batch_size
        self.on_error = on_error
        self.n_jobs = n_jobs

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [{"cv": 2, "min_count": 1}]

    def _target_kind(self):
        return "tags"

    def _new_estimator(self, sparse):
        if self.estimator is not None:
            return clone(self.estimator)
        return make_pipeline(StandardScaler(with_mean=not sparse), Ridge(alpha=100.0))

    @staticmethod
    def _scores_of(est, F):
        if hasattr(est, "predict_proba"):
            P = est.predict_proba(F)
            if isinstance(P, list):  # one (rows, classes) array per tag
                classes = getattr(est, "classes_", [None] * len(P))
                cols = []
                for p, c in zip(P, classes):
                    # a tag absent from a fold's training rows has classes [0]
                    hit = np.flatnonzero(np.asarray(c) == 1) if c is not None else []
                    cols.append(p[:, hit[0]] if len(hit) else np.zeros(len(p)))
                P = np.column_stack(cols)
            return np.asarray(P, dtype=float)
        S = np.asarray(est.predict(F), dtype=float)
        return S[:, None] if S.ndim == 1 else S

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Learn the tags of the training photos.

        Parameters
        ----------
        X : column of photos, table or matrix
        y : sequence of lists of str
            The tags of each row (an empty list: no tag; ``None``: unknown,
            the row is left out and reported).

        Returns
        -------
        self : TagPredictor
        """
        X = self._column(X, fit=True)
        F, ok = self._features(X, fit=True)
        tags = _check_tags(y, F.shape[0])
        for i in np.flatnonzero(ok):
            if tags[i] is None:
                self._refuse(int(i), "y", "no tags for this row (None)")
        rows = np.flatnonzero(ok & np.array([t is not None for t in tags], bool))
        if len(rows) < self.cv:
            raise ValueError(
                f"{len(rows)} usable training rows; at least cv={self.cv} needed"
            )
        mlb = MultiLabelBinarizer()
        Y = mlb.fit_transform([tags[i] for i in rows])
        keep = Y.sum(axis=0) >= self.min_count
        if not keep.any():
            raise ValueError(f"no tag is on min_count={self.min_count} rows")
        Y = Y[:, keep].astype(float)
        self.classes_ = np.asarray(mlb.classes_[keep], dtype=object)
        Fr = F[rows]
        sparse = sp.issparse(F)
        if self.threshold == "tuned":
            oof = np.zeros_like(Y)
            folds = KFold(self.cv, shuffle=True, random_state=self.random_state)
            for train, test in folds.split(Fr):
                est = self._new_estimator(sparse).fit(Fr[train], Y[train])
                oof[test] = self._scores_of(est, Fr[test])
            self.thresholds_ = np.array(
                [_best_threshold(oof[:, j], Y[:, j] > 0) for j in range(Y.shape[1])]
            )
        else:
            self.thresholds_ = np.full(Y.shape[1], float(self.threshold))
        self.estimator_ = self._new_estimator(sparse).fit(Fr, Y)
        return self

    def _check_fitted_state(self):
        self._check_transformer_state()
        classes = self.classes_
        if not (
            isinstance(classes, np.ndarray)
            and classes.ndim == 1
            and len(classes) >= 1
            and all(isinstance(t, str) for t in classes)
        ):
            raise state_error(self, "classes_ must be a 1-D array of tag names")
        check_array_arg(
            self.thresholds_,
            "thresholds_",
            shape=(len(classes),),
            finite=True,
            owner=self,
        )

    def predict_scores(self, X):
        """Per-tag scores, (n_samples, n_tags); NaN rows without features."""
        n = len(self.classes_)
        rows = self._map_rows(
            X, lambda F: list(self._scores_of(self.estimator_, F)), None
        )
        S = np.full((len(rows), n), np.nan)
        for i, r in enumerate(rows):
            if r is not None:
                S[i] = r
        return S

    def predict(self, X):
        """The tags of each row: a list of str, or ``None`` without features."""
        S = self.predict_scores(X)
        out = np.empty(len(S), dtype=object)
        for i, s in enumerate(S):
            out[i] = (
                None
                if np.isnan(s).any()
                else [
                    t for t, v, c in zip(self.classes_, s, self.thresholds_) if v >= c
                ]
            )
        return out

    def score(self, X, y):
        """Mean per-row F1 of the predicted tag sets (rows with tags only)."""
        pred = self.predict(X)
        tags = _check_tags(y, len(pred))
        f1 = []
        for p, t in zip(pred, tags):
            if t is None:
                continue
            p, t = set(p or []), set(t)
            if not p and not t:
                f1.append(1.0)
            else:
                f1.append(2 * len(p & t) / (len(p) + len(t)))
        return float(np.mean(f1)) if f1 else float("nan")
