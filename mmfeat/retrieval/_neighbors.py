"""Same-modality retrieval: the gallery items nearest to each query."""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_array

from mmfeat.exceptions import ParameterError
from mmfeat.utils._sklearn_compat import (
    HasMethods,
    Integral,
    Interval,
    StrOptions,
    _fit_context,
    check_is_fitted,
    validate_data,
)
from mmfeat.utils._state import CheckedStateMixin, state_error

__all__ = ["NearestNeighborRetriever"]

_METRICS = ("cosine", "euclidean")


def _nan_rows(F):
    if sp.issparse(F):
        F = F.tocsr()
        bad = np.isnan(F.data)
        rows = np.zeros(F.shape[0], dtype=bool)
        if bad.any():
            rows[np.repeat(np.arange(F.shape[0]), np.diff(F.indptr))[bad]] = True
        return rows
    return np.isnan(F).any(axis=1)


class NearestNeighborRetriever(CheckedStateMixin, TransformerMixin, BaseEstimator):
    """Find the gallery items most similar to each query.

    The gallery (a column of images, texts, clips, or a table of several
    columns) goes through ``transformer`` — any mmfeat extractor, fuser or
    Pipeline — into feature vectors that scikit-learn's
    :class:`~sklearn.neighbors.NearestNeighbors` indexes; queries go through
    the same fitted transformer.

    Parameters
    ----------
    transformer : transformer, default=None
        Turns items into features (fitted on the gallery); ``None`` takes
        ``X`` as a feature matrix.
    n_neighbors : int, default=10
        Results per query when ``query`` is not given ``k``.
    metric : {"cosine", "euclidean"}, default="cosine"
        Similarity: cosine similarity of the feature vectors, or minus the
        Euclidean distance.
    n_jobs : int, default=None
        Parallel jobs of the neighbour search.
    query_chunk_size : int, default=1000
        Queries searched at once, bounding the memory of the distance block
        (``query_chunk_size x n_gallery`` floats).

    Attributes
    ----------
    transformer_ : transformer or None
        The fitted transformer.
    index_ : NearestNeighbors
        The fitted search structure over the usable gallery rows.
    embedding_ : ndarray or sparse matrix
        The indexed gallery features (normalised for cosine).
    gallery_rows_ : ndarray of int
        Gallery positions in the index: rows whose features are NaN (an
        unreadable or missing item) are left out and never returned.
    n_gallery_ : int
        Rows of the gallery given to ``fit``.
    n_features_in_ : int
        Only when ``transformer`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> gallery = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    >>> retriever = NearestNeighborRetriever(n_neighbors=2).fit(gallery)
    >>> indices, scores = retriever.query(np.array([[1.0, 0.1]]))
    >>> indices.tolist()
    [[0, 2]]
    """

    _parameter_constraints = {
        "transformer": [HasMethods(["fit_transform", "transform"]), None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(_METRICS))],
        "n_jobs": [Integral, None],
        "query_chunk_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        transformer=None,
        *,
        n_neighbors=10,
        metric="cosine",
        n_jobs=None,
        query_chunk_size=1000,
    ):
        self.transformer = transformer
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.n_jobs = n_jobs
        self.query_chunk_size = query_chunk_size

    def _features(self, X, *, fit, y=None):
        if self.transformer is None:
            F = validate_data(
                self,
                X,
                accept_sparse="csr",
                dtype=np.float64,
                ensure_all_finite="allow-nan",
                reset=fit,
            )
        elif fit:
            self.transformer_ = clone(self.transformer)
            F = self.transformer_.fit_transform(X, y)
        else:
            F = self.transformer_.transform(X)
        if not sp.issparse(F):
            F = check_array(
                F, dtype=np.float64, ensure_all_finite="allow-nan", ensure_min_samples=0
            )
        else:
            F = F.tocsr().astype(np.float64)
        return F

    def _embed(self, F):
        return normalize(F) if self.metric == "cosine" else F

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Index the gallery ``X``.

        Parameters
        ----------
        X : column, table or matrix
            The gallery items (as ``transformer`` takes them).
        y : array-like, default=None
            Passed to the transformer's ``fit`` (supervised features).

        Returns
        -------
        self : NearestNeighborRetriever
        """
        if self.transformer is not None:
            self.transformer_ = None
        F = self._features(X, fit=True, y=y)
        self.n_gallery_ = F.shape[0]
        bad = _nan_rows(F)
        self.gallery_rows_ = np.flatnonzero(~bad)
        if len(self.gallery_rows_) == 0:
            raise ValueError(
                "no usable gallery row: every item is missing or unreadable"
            )
        G = self._embed(F[self.gallery_rows_])
        self.embedding_ = G
        self.index_ = NearestNeighbors(
            metric="euclidean", algorithm="brute", n_jobs=self.n_jobs
        ).fit(G)
        return self

    def _check_fitted_state(self):
        rows = np.asarray(self.gallery_rows_)
        n = self.n_gallery_
        if not (
            rows.ndim == 1
            and rows.dtype.kind in "iu"
            and len(rows) >= 1
            and rows.min() >= 0
            and rows.max() < n
            and self.embedding_.shape[0] == len(rows)
        ):
            raise state_error(
                self,
                f"gallery_rows_ ({rows.shape}) must index the {n} gallery items "
                f"and match the {self.embedding_.shape[0]} embedded rows",
            )

    def transform(self, X):
        """The features ``query`` compares (normalised for cosine).

        Parameters
        ----------
        X : column, table or matrix

        Returns
        -------
        F : ndarray or sparse matrix of shape (n_samples, n_features)
            NaN rows for unusable items.
        """
        check_is_fitted(self, "index_")
        F = self._features(X, fit=False)
        bad = _nan_rows(F)
        if bad.any() and not sp.issparse(F):
            F = F.copy()
            F[bad] = 0.0
            F = self._embed(F)
            F[bad] = np.nan
            return F
        return self._embed(F)

    def query(self, X=None, k=None):
        """The ``k`` gallery items nearest to each query, best first.

        Parameters
        ----------
        X : column, table or matrix, default=None
            Queries of the gallery's kind. ``None`` queries the gallery with
            itself, each item left out of its own results (leave-one-out).
        k : int, default=None
            Results per query (default ``n_neighbors``); at most the number
            of usable gallery items.

        Returns
        -------
        indices : ndarray of int, shape (n_queries, k)
            Gallery positions (as given to ``fit``). A query whose own item
            is missing or unreadable gets a row of -1.
        scores : ndarray of shape (n_queries, k)
            Cosine similarity, or minus the Euclidean distance; NaN where
            ``indices`` is -1.
        """
        check_is_fitted(self, "index_")
        k = self.n_neighbors if k is None else k
        if not (isinstance(k, numbers.Integral) and k > 0):
            raise ParameterError(f"k must be a positive int; got {k!r}")
        G = self.embedding_
        if X is None:
            Q = G
            exclude = np.arange(G.shape[0])
            n_q = self.n_gallery_
            rows = self.gallery_rows_
        else:
            F = self._features(X, fit=False)
            n_q = F.shape[0]
            rows = np.flatnonzero(~_nan_rows(F))
            Q = self._embed(F[rows])
            exclude = None
        k = min(k, G.shape[0] - (exclude is not None))
        indices = np.full((n_q, max(k, 0)), -1, dtype=np.intp)
        scores = np.full((n_q, max(k, 0)), np.nan)
        if k <= 0 or len(rows) == 0:
            return indices, scores
        idx, sim = self._search(Q, k, exclude)
        indices[rows] = self.gallery_rows_[idx]
        scores[rows] = sim
        return indices, scores

    def _search(self, Q, k, exclude):
        """scikit-learn's neighbour search, chunked; distances to scores."""
        n_q = Q.shape[0]
        extra = 1 if exclude is not None else 0
        idx = np.empty((n_q, k), dtype=np.intp)
        sim = np.empty((n_q, k))
        for start in range(0, n_q, self.query_chunk_size):
            stop = min(start + self.query_chunk_size, n_q)
            dist, ind = self.index_.kneighbors(Q[start:stop], n_neighbors=k + extra)
            if exclude is not None:
                keep = ind != exclude[start:stop, None]
                # drop the query itself (or the last one when ties hid it)
                keep[keep.all(axis=1), -1] = False
                ind = ind[keep].reshape(stop - start, k)
                dist = dist[keep].reshape(stop - start, k)
            idx[start:stop] = ind
            # on unit vectors, squared Euclidean distance = 2 - 2 cos
            sim[start:stop] = 1.0 - dist**2 / 2.0 if self.metric == "cosine" else -dist
        return idx, sim

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self.transformer is None
        tags.input_tags.allow_nan = True
        return tags
