"""Neighbour candidates re-ranked by agreement with predicted attributes."""

import numpy as np

from mmfeat.exceptions import ParameterError
from mmfeat.generation._attributes import AttributeCaptioner, _as_frame
from mmfeat.generation._base import BaseCaptioner, check_k, check_texts
from mmfeat.generation._neighbors import _CONSENSUS, NearestNeighborCaptioner
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._ngrams import value_words
from mmfeat.utils._sklearn_compat import (
    HasMethods,
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
)
from mmfeat.utils._state import state_error

__all__ = ["HybridCaptioner"]


@fill_doc
class HybridCaptioner(BaseCaptioner):
    """Neighbour captions, re-ranked by the attributes predicted for the photo.

    The candidates are those of a :class:`NearestNeighborCaptioner` (the
    captions of the nearest training photos, with their consensus score);
    an :class:`AttributeCaptioner` predicts the photo's attributes (gender,
    colour, article type) from the same features; each candidate then
    scores ``consensus / best consensus + agreement_weight * agreement``,
    where ``agreement`` is, averaged over the attributes, the predicted
    probability of the values the candidate's words name. The result is a
    real, fluent training caption (brand, style words) that says what the
    attribute models see: the neighbourhood's caption, corrected when the
    nearest photos are of the wrong type or colour.

    Parameters
    ----------
    attributes : list of str
        Columns of ``y`` to predict and match.
    text_column : str, default="text"
        Column of ``y`` with the caption(s).
    transformer : transformer, "passthrough" or None, default=None
        Features shared by both parts (see :class:`NearestNeighborCaptioner`).
    n_neighbors : int, default=40
    consensus : {"tfidf-cosine", "cider", "bleu"} or None, \
default="tfidf-cosine"
    image_weight : float, default=1.0
        Of the neighbour captioner (see :class:`NearestNeighborCaptioner`).
    n_candidates : int, default=10
        Best consensus candidates that are re-ranked.
    agreement_weight : float, default=1.0
        Weight of the attributes against the consensus (0: the neighbour
        captioner alone).
    classifier : classifier with predict_proba, default=None
        Of the attributes (see :class:`AttributeCaptioner`).
    batch_size : int, default=256
    %(on_error_items)s
    n_jobs : int, default=None

    Attributes
    ----------
    captioner_ : NearestNeighborCaptioner
        Fitted on the features.
    attributes_ : AttributeCaptioner
        Fitted on the features.
    transformer_ : transformer or None

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> F = np.array([[1.0, 0], [0.9, 0.1], [0.8, 0.3], [0, 1], [0.1, 1]])
    >>> y = pd.DataFrame({"text": ["blue shirt", "blue shirt", "red shoe",
    ...                            "red shoe", "red shoe"],
    ...                   "type": ["shirt", "shirt", "shoe", "shoe", "shoe"]})
    >>> model = HybridCaptioner(["type"], transformer="passthrough",
    ...                         n_neighbors=3, agreement_weight=2.0)
    >>> model.fit(F, y).predict(np.array([[1.0, 0.0]])).tolist()
    ['blue shirt']
    """

    _parameter_constraints = {
        **BaseCaptioner._common_constraints,
        "attributes": [list, tuple],
        "text_column": [str],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "consensus": [StrOptions(set(_CONSENSUS)), None],
        "image_weight": [Interval(Real, 0, None, closed="left")],
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
        "agreement_weight": [Interval(Real, 0, None, closed="left")],
        "classifier": [HasMethods(["fit", "predict_proba"]), None],
    }

    def __init__(
        self,
        attributes,
        *,
        text_column="text",
        transformer=None,
        n_neighbors=40,
        consensus="tfidf-cosine",
        image_weight=1.0,
        n_candidates=10,
        agreement_weight=1.0,
        classifier=None,
        batch_size=256,
        on_error="raise",
        n_jobs=None,
    ):
        self.attributes = attributes
        self.text_column = text_column
        self.transformer = transformer
        self.n_neighbors = n_neighbors
        self.consensus = consensus
        self.image_weight = image_weight
        self.n_candidates = n_candidates
        self.agreement_weight = agreement_weight
        self.classifier = classifier
        self.batch_size = batch_size
        self.on_error = on_error
        self.n_jobs = n_jobs

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [{"attributes": ["a", "b"], "n_neighbors": 3}]

    def _target_kind(self):
        return "attributes"

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the neighbour captioner and the attribute models.

        Parameters
        ----------
        X : column of photos, table or matrix
        y : DataFrame
            ``text_column`` (the captions) and the ``attributes`` columns.

        Returns
        -------
        self : HybridCaptioner
        """
        y = _as_frame(y, "y")
        attrs = [str(a) for a in self.attributes]
        if not attrs:
            raise ParameterError("attributes must name at least one column of y")
        need = [self.text_column, *attrs]
        absent = [c for c in need if c not in y.columns]
        if absent:
            raise ParameterError(
                f"y has no column(s) {absent}; it has {list(y.columns)[:10]}"
            )
        X = self._column(X, fit=True)
        F, ok = self._features(X, fit=True)
        if len(y) != F.shape[0]:
            raise ParameterError(f"y has {len(y)} rows for {F.shape[0]} rows of X")
        texts = check_texts(y[self.text_column], F.shape[0], name=self.text_column)
        for i in np.flatnonzero(ok):
            if not texts[i]:
                self._refuse(int(i), self.text_column, "no caption for this row")
        rows = np.flatnonzero(ok & np.array([bool(t) for t in texts], dtype=bool))
        if len(rows) == 0:
            raise ValueError(
                "no usable training row: every row lacks features or a caption"
            )
        Fr = F[rows]
        self.captioner_ = NearestNeighborCaptioner(
            "passthrough",
            n_neighbors=self.n_neighbors,
            consensus=self.consensus,
            image_weight=self.image_weight,
        ).fit(Fr, [texts[i] for i in rows])
        self.attributes_ = AttributeCaptioner(
            None, "passthrough", classifier=self.classifier
        ).fit(Fr, y.loc[rows, attrs])
        return self

    def _check_fitted_state(self):
        self._check_transformer_state()
        cap, att = self.captioner_, self.attributes_
        if not (
            isinstance(cap, NearestNeighborCaptioner)
            and isinstance(att, AttributeCaptioner)
            and cap.transformer == att.transformer == "passthrough"
            and getattr(cap, "n_features_in_", None)
            == getattr(att, "n_features_in_", None)
        ):
            raise state_error(
                self,
                "captioner_ and attributes_ must be a NearestNeighborCaptioner "
                "and an AttributeCaptioner on the same passthrough features",
            )

    def _rerank(self, F, k):
        cands = self.captioner_.predict_candidates(F, k=self.n_candidates)
        proba = self.attributes_.predict_attribute_proba(F)
        tables = [
            (proba[s].to_numpy(), [value_words(str(c)) for c in proba[s].columns])
            for s in self.attributes_.slots_
        ]
        out = []
        for i, row in enumerate(cands):
            texts = [t for t, _ in row]
            cons = np.array([s for _, s in row])
            top = cons.max() if len(cons) and cons.max() > 0 else 1.0
            agree = np.zeros(len(texts))
            for P, words in tables:
                for c, t in enumerate(texts):
                    tw = value_words(t)
                    named = [j for j, w in enumerate(words) if w and w <= tw]
                    agree[c] += min(P[i, named].sum(), 1.0) if named else 0.0
            agree /= max(len(tables), 1)
            total = cons / top + self.agreement_weight * agree
            order = np.lexsort((np.arange(len(texts)), -total))[:k]
            out.append([(texts[j], float(total[j])) for j in order])
        return out

    def predict_candidates(self, X, k=5):
        """The ``k`` best re-ranked candidates of each row, with their scores.

        Returns
        -------
        candidates : list
            Per row, ``(caption, score)`` pairs best first, or ``None``
            without features.
        """
        k = check_k(k)
        return self._map_rows(X, lambda F: self._rerank(F, k), None)

    def predict(self, X):
        """One caption per row of ``X`` (``None`` without features)."""
        rows = self._map_rows(X, lambda F: self._rerank(F, 1), None)
        out = np.empty(len(rows), dtype=object)
        out[:] = [None if c is None else c[0][0] for c in rows]
        return out

    def predict_attributes(self, X):
        """The attributes predicted for each row (see :class:`AttributeCaptioner`).

        Returns
        -------
        attributes : DataFrame
            A column per attribute (``None`` where the row has no features)
            and ``<attribute>_proba``.
        """
        import pandas as pd

        parts = self._map_rows(
            X,
            lambda F: self.attributes_.predict_attributes(F).to_dict("records"),
            None,
        )
        out = {}
        for slot in self.attributes_.slots_:
            out[slot] = pd.Series(
                [None if r is None else r[slot] for r in parts], dtype=object
            )
            out[f"{slot}_proba"] = np.array(
                [np.nan if r is None else r[f"{slot}_proba"] for r in parts],
                dtype=float,
            )
        return pd.DataFrame(out)

    def score(self, X, y):
        """Corpus CIDEr-D of ``predict(X)`` against ``y[text_column]``."""
        from mmfeat.evaluation import cider_d_score

        y = _as_frame(y, "y")
        return cider_d_score(y[self.text_column], self.predict(X))
