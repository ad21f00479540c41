"""Cross-modal retrieval: text -> image and image -> text in a learnt space.

Three ways to put two modalities in one space (Rasiwasia et al., "A new
approach to cross-modal multimedia retrieval", ACM MM 2010):

- ``"cca"`` — correlation matching: canonical correlation analysis of the
  paired features (after a linear reduction: truncated SVD for sparse
  TF-IDF, PCA for dense descriptors) maps both into one correlated space.
- ``"semantic"`` — semantic matching: one classifier per modality maps each
  item to its vector of class posteriors, a space both modalities share.
- ``"scm"`` — semantic correlation matching: the classifiers learn from the
  CCA projections, so the posteriors of both modalities come from the
  correlated space.

Queries and gallery items are compared by the correlation of their vectors
(centred cosine), the similarity the paper found best.
"""

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.cross_decomposition import CCA
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array

from mmfeat.exceptions import ParameterError
from mmfeat.retrieval._neighbors import NearestNeighborRetriever, _nan_rows
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
from mmfeat.utils._tables import select_columns

__all__ = ["CrossModalRetriever", "SharedSpaceEmbedder"]

_METHODS = ("cca", "semantic", "scm")


def _as_features(F):
    """Transformer output as float64 (CSR when sparse)."""
    if sp.issparse(F):
        return F.tocsr().astype(np.float64)
    return np.asarray(F, dtype=np.float64)


def _centre(E):
    """Rows centred on their own mean: cosine of these is their correlation."""
    return E - E.mean(axis=1, keepdims=True)


class CrossModalRetriever(CheckedStateMixin, BaseEstimator):
    """Retrieve items of one modality with queries of another.

    Learns a space shared by two modalities from paired training items (a
    photo and its title), then answers text -> image and image -> text
    queries (and same-modality ones) by nearest neighbours in that space.

    Parameters
    ----------
    estimators : list of two (str, transformer, columns)
        Each modality's name, the transformer that turns its items into
        features (any mmfeat extractor, fuser or Pipeline), and its column(s)
        of the table.
    method : {"scm", "cca", "semantic"}, default="scm"
        How the shared space is learnt (see the module docstring); ``"cca"``
        needs no labels.
    n_components : int, default=None
        Canonical components for ``"cca"`` / ``"scm"``; default
        ``min(reduce_dim, n_classes - 1 or 16)`` (``y`` given) or 16.
    reduce_dim : int, default=100
        Dimensions kept by the truncated SVD (sparse features) or PCA (dense
        features) in front of CCA, capped by the data.
    classifier : classifier with ``predict_proba``, default=None
        Per-modality classifier of ``"semantic"`` / ``"scm"``; default a
        multinomial ``LogisticRegression``: ``C=1`` behind a
        ``StandardScaler`` for dense features, ``C=10`` on sparse ones
        (TF-IDF).
    n_jobs : int, default=None
        Parallel jobs of the neighbour search.
    random_state : int, RandomState or None, default=0
        Seed of the randomised SVD.

    Attributes
    ----------
    modality_names_ : list of str
    transformers_ : dict of str to transformer
        Fitted feature transformers.
    reducers_ : dict of str to Pipeline
        Fitted reduction (SVD / PCA, then scaling), ``"cca"``/``"scm"`` only.
    cca_ : CCA
        Fitted on the paired, reduced features (``"cca"``/``"scm"``).
    classifiers_ : dict of str to classifier
        Fitted per-modality classifiers (``"semantic"``/``"scm"``).
    classes_ : ndarray or None
    n_pairs_ : int
        Training pairs used (rows where both modalities are usable).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> X = pd.DataFrame({"a": list(np.eye(3)[y] + 0.1 * rng.random((60, 3))),
    ...                   "b": list(np.eye(3)[y] + 0.1 * rng.random((60, 3)))})
    >>> as_matrix = FunctionTransformer(lambda col: np.stack(list(col)))
    >>> retriever = CrossModalRetriever(
    ...     [("a", as_matrix, "a"), ("b", as_matrix, "b")], method="semantic"
    ... ).fit(X, y)
    >>> indices, scores = retriever.query(X.head(1), source="a", target="b",
    ...                                   gallery=X, k=3)
    >>> y[indices[0]].tolist()
    [0, 0, 0]
    """

    _parameter_constraints = {
        "estimators": [list, tuple],
        "method": [StrOptions(set(_METHODS))],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "reduce_dim": [Interval(Integral, 1, None, closed="left")],
        "classifier": [HasMethods(["fit", "predict_proba"]), None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimators,
        *,
        method="scm",
        n_components=None,
        reduce_dim=100,
        classifier=None,
        n_jobs=None,
        random_state=0,
    ):
        self.estimators = estimators
        self.method = method
        self.n_components = n_components
        self.reduce_dim = reduce_dim
        self.classifier = classifier
        self.n_jobs = n_jobs
        self.random_state = random_state

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        from sklearn.preprocessing import FunctionTransformer as Identity

        everything = slice(0, None)
        two = [("a", Identity(), everything), ("b", Identity(), everything)]
        return [{"estimators": two, "method": "cca", "n_components": 1}]

    # -- checks ----------------------------------------------------------
    def _check_params(self, y):
        # what _parameter_constraints cannot say: the shape of estimators,
        # and method against y
        est = self.estimators
        if not (
            len(est) == 2 and all(isinstance(e, tuple) and len(e) == 3 for e in est)
        ):
            raise ParameterError(
                "estimators must be two (name, transformer, columns) triples; "
                f"got {est!r}"
            )
        names = [e[0] for e in est]
        if len(set(names)) != 2 or not all(isinstance(n, str) and n for n in names):
            raise ParameterError(f"the two modality names must differ; got {names}")
        if self.method != "cca" and y is None:
            raise ParameterError(
                f"method={self.method!r} learns class posteriors and needs y; "
                "use method='cca' without labels"
            )
        return names

    def _check_table(self, X, *, reset):
        """A 2-D table (DataFrame, array or sparse); its width is recorded.

        scikit-learn's checks and messages: 2-D, not empty, not complex, no
        infinity (NaN marks a missing item); then the width and column names
        against ``fit`` (``validate_data``). The table itself is kept (a
        DataFrame stays one, its columns are selected by name).
        """
        if not (sp.issparse(X) or isinstance(X, pd.DataFrame)):
            X = np.asarray(X)
        check_array(X, accept_sparse="csr", dtype=None, ensure_all_finite="allow-nan")
        validate_data(self, X, skip_check_array=True, reset=reset)
        return X.tocsr() if sp.issparse(X) else X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.string = True
        tags.target_tags.required = self.method != "cca"
        return tags

    def _modality(self, name):
        names = [e[0] for e in self.estimators]
        if name not in names:
            raise ParameterError(
                f"unknown modality {name!r}; the modalities are {names}"
            )
        return names.index(name)

    # -- fitting ---------------------------------------------------------
    def _reducer(self, F, n_pairs):
        n = max(
            1,
            min(
                self.reduce_dim,
                F.shape[1] - 1 if sp.issparse(F) else F.shape[1],
                n_pairs - 1,
            ),
        )
        if sp.issparse(F):
            reduce = TruncatedSVD(n_components=n, random_state=self.random_state)
        else:
            reduce = PCA(n_components=n, random_state=self.random_state)
        return make_pipeline(reduce, StandardScaler())

    def _classifier(self, sparse):
        if self.classifier is not None:
            return clone(self.classifier)
        if sparse:  # TF-IDF: already scaled, and centring would densify it
            return LogisticRegression(C=10.0, max_iter=2000)
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Learn the shared space from paired rows of ``X``.

        Parameters
        ----------
        X : DataFrame
            Paired training items, one column (or several) per modality.
        y : array-like of shape (n_samples,), default=None
            Class labels (needed by ``"semantic"`` and ``"scm"``).

        Returns
        -------
        self : CrossModalRetriever
        """
        names = self._check_params(y)
        X = self._check_table(X, reset=True)
        y = None if y is None else np.asarray(y)
        feats, self.transformers_ = {}, {}
        for name, trans, cols in self.estimators:
            t = clone(trans)
            feats[name] = _as_features(t.fit_transform(select_columns(X, cols), y))
            self.transformers_[name] = t
        ok = np.ones(feats[names[0]].shape[0], dtype=bool)
        for F in feats.values():
            ok &= ~_nan_rows(F)
        rows = np.flatnonzero(ok)
        if len(rows) < 3:
            raise ValueError(
                f"only {len(rows)} sample(s) have both modalities usable; "
                "cross-modal retrieval needs at least 3 paired items"
            )
        self.n_pairs_ = len(rows)
        self.modality_names_ = names
        yp = None if y is None else y[rows]
        self.classes_ = None if y is None else np.unique(yp)
        space = {n: feats[n][rows] for n in names}
        if self.method in ("cca", "scm"):
            self.reducers_ = {}
            reduced = {}
            for n in names:
                r = self._reducer(space[n], len(rows))
                reduced[n] = r.fit_transform(space[n])
                self.reducers_[n] = r
            k = self.n_components
            if k is None:
                k = 16 if y is None else max(1, len(self.classes_) - 1)
            k = max(1, min(k, *(v.shape[1] for v in reduced.values())))
            self.cca_ = CCA(n_components=k, max_iter=1000).fit(
                reduced[names[0]], reduced[names[1]]
            )
            space = {n: self._project(n, reduced[n]) for n in names}
        if self.method in ("semantic", "scm"):
            self.classifiers_ = {
                n: self._classifier(sp.issparse(space[n])).fit(space[n], yp)
                for n in names
            }
        return self

    def _project(self, name, R):
        """CCA scores of one modality's reduced features."""
        first = self._modality(name) == 0
        if first:
            return self.cca_.transform(R)
        # the y-scores of CCA do not depend on X: pass zeros for it
        dummy = np.zeros((R.shape[0], self.cca_.x_weights_.shape[0]))
        return self.cca_.transform(dummy, R)[1]

    # -- the space -------------------------------------------------------
    def embed(self, X, modality):
        """Vectors of ``modality``'s items of ``X`` in the shared space.

        Parameters
        ----------
        X : DataFrame
            A table holding the modality's column(s).
        modality : str
            One of ``modality_names_``.

        Returns
        -------
        E : ndarray of shape (n_samples, n_dims)
            NaN rows where the item is missing or unreadable.
        """
        check_is_fitted(self, "transformers_")
        X = self._check_table(X, reset=False)
        k = self._modality(modality)
        _, _, cols = self.estimators[k]
        F = _as_features(
            self.transformers_[modality].transform(select_columns(X, cols))
        )
        bad = _nan_rows(F)
        rows = np.flatnonzero(~bad)
        Fp = F[rows]
        if self.method in ("cca", "scm"):
            Fp = self._project(modality, self.reducers_[modality].transform(Fp))
        if self.method in ("semantic", "scm"):
            Fp = self.classifiers_[modality].predict_proba(Fp)
        Fp = np.asarray(Fp, dtype=np.float64)
        E = np.full((F.shape[0], Fp.shape[1]), np.nan)
        E[rows] = Fp
        return E

    def query(self, X, *, source, target, gallery, k=10):
        """Rank ``gallery``'s ``target`` items for each ``source`` item of ``X``.

        Parameters
        ----------
        X : DataFrame
            Queries: a table holding the ``source`` modality.
        source, target : str
            Modality names; equal for same-modality retrieval in the shared
            space.
        gallery : DataFrame
            The items to retrieve, holding the ``target`` modality.
        k : int or None, default=10
            Results per query; ``None`` ranks the whole gallery.

        Returns
        -------
        indices : ndarray of int, shape (n_queries, k)
            Gallery positions, best first; -1 rows for unusable queries.
        scores : ndarray of shape (n_queries, k)
            Correlation of query and gallery vectors.
        """
        G = self.embed(gallery, target)
        Q = self.embed(X, source)
        index = NearestNeighborRetriever(metric="cosine", n_jobs=self.n_jobs)
        index.fit(np.where(np.isnan(G), np.nan, _centre(np.nan_to_num(G))))
        k = index.gallery_rows_.shape[0] if k is None else k
        return index.query(
            np.where(np.isnan(Q), np.nan, _centre(np.nan_to_num(Q))), k=k
        )


class SharedSpaceEmbedder(CheckedStateMixin, TransformerMixin, BaseEstimator):
    """One modality's vectors in a :class:`CrossModalRetriever`'s shared space.

    A transformer for the estimators that take one (a captioner's photo
    features, a classifier): the space was learnt from paired items (a photo
    and its title, with labels for ``"semantic"`` / ``"scm"``), and at
    transform time only ``modality``'s columns are needed (the other
    modality's may be absent from the table).

    Parameters
    ----------
    retriever : CrossModalRetriever
        Fitted already (wrap it in :class:`sklearn.frozen.FrozenEstimator`
        so that cloning, as ``GridSearchCV`` and the captioners do, keeps it
        fitted), or unfitted: then ``fit(X, y)`` fits it on the paired
        table ``X``.
    modality : str
        The retriever's modality to embed (``"image"``).

    Attributes
    ----------
    retriever_ : CrossModalRetriever
        The fitted retriever used.
    n_features_in_ : int
        The retriever's (the width of the paired table).
    feature_names_in_ : ndarray of str
        The retriever's, when it was fitted on a DataFrame.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> X = pd.DataFrame({"a": list(np.eye(3)[y] + 0.1 * rng.random((60, 3))),
    ...                   "b": list(np.eye(3)[y] + 0.1 * rng.random((60, 3)))})
    >>> as_matrix = FunctionTransformer(lambda col: np.stack(list(col)))
    >>> retriever = CrossModalRetriever(
    ...     [("a", as_matrix, "a"), ("b", as_matrix, "b")], method="semantic"
    ... )
    >>> SharedSpaceEmbedder(retriever, "a").fit(X, y).transform(X[["a"]]).shape
    (60, 3)
    """

    _parameter_constraints = {
        "retriever": [HasMethods(["fit", "embed"])],
        "modality": [str],
    }

    def __init__(self, retriever, modality):
        self.retriever = retriever
        self.modality = modality

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        (params,) = CrossModalRetriever.get_test_params()
        return [{"retriever": CrossModalRetriever(**params), "modality": "a"}]

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Use the fitted retriever, or fit it on the paired table ``X``.

        Returns
        -------
        self : SharedSpaceEmbedder
        """
        try:
            check_is_fitted(self.retriever)
            retriever = self.retriever
        except NotFittedError:
            retriever = clone(self.retriever).fit(X, y)
        names = list(retriever.modality_names_)
        if self.modality not in names:
            raise ParameterError(
                f"unknown modality {self.modality!r}; the modalities are {names}"
            )
        self.retriever_ = retriever
        self.n_features_in_ = retriever.n_features_in_
        if hasattr(retriever, "feature_names_in_"):
            self.feature_names_in_ = retriever.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def _check_fitted_state(self):
        names = list(getattr(self.retriever_, "modality_names_", []))
        if self.modality not in names:
            raise state_error(self, f"modality {self.modality!r} is not one of {names}")

    def transform(self, X):
        """The rows' vectors in the shared space (NaN rows: unusable items)."""
        check_is_fitted(self, "retriever_")
        names = getattr(self.retriever_, "feature_names_in_", None)
        if isinstance(X, pd.DataFrame) and names is not None:
            # the retriever checks the whole table it was fitted on; the
            # other modality's columns are not read: absent ones are empty
            X = X.reindex(columns=list(names))
        return self.retriever_.embed(X, self.modality)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.string = True
        return tags
