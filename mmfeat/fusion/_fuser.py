"""Feature-level fusion: ``F = a·F1 ⊕ b·F2 ⊕ …`` over the columns of a table."""

import itertools
import math
import numbers
import os

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, normalize
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted, check_memory

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.fusion._modality import check_weight_dict
from mmfeat.utils._item_errors import (
    capture_item_errors,
    presence_of,
    report_item_errors,
    report_presence,
)
from mmfeat.utils._sklearn_compat import (
    HasMethods,
    Integral,
    StrOptions,
    _BaseComposition,
    _fit_context,
)
from mmfeat.utils._state import CheckedStateMixin, check_array_arg, state_error

__all__ = ["MultimodalFuser", "make_fuser", "fusion_weight_grid"]

_NORMS = (None, "l2", "standard")
_IMPUTES = ("zero", "mean")


class _Block(CheckedStateMixin, TransformerMixin, BaseEstimator):
    """Impute, normalise and weight one block's features (fitted per block)."""

    def __init__(self, name, norm="l2", impute="zero", indicator=False, weight=1.0):
        self.name = name
        self.norm = norm
        self.impute = impute
        self.indicator = indicator
        self.weight = weight

    def _missing_rows(self, X):
        if sp.issparse(X):
            X = X.tocsr()
            bad = np.isnan(X.data)
            rows = np.zeros(X.shape[0], dtype=bool)
            if bad.any():
                row_of = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
                rows[row_of[bad]] = True
            return rows
        return np.isnan(X).any(axis=1)

    def _as_float(self, X):
        if sp.issparse(X):
            return X.tocsr().astype(np.float64)
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"block {self.name!r} gave non-numeric features ({exc}); put an "
                "extractor in front of raw items",
                source=self.name,
            ) from None
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise InputError(
                f"block {self.name!r} gave {X.ndim}-D features, expected 2-D",
                source=self.name,
            )
        if np.isinf(X).any():
            row = int(np.flatnonzero(np.isinf(X).any(axis=1))[0])
            raise InputError(
                f"block {self.name!r} has an infinite feature",
                row=row,
                source=self.name,
            )
        return X

    def fit(self, X, y=None):
        self.fit_transform(X)
        return self

    def _check_fitted_state(self):
        n = self.n_features_in_
        if not isinstance(n, int) or n < 0:
            raise state_error(self, f"n_features_in_={n!r}")
        for name in ("fill_", "scale_", "center_"):
            value = getattr(self, name, None)
            if value is not None:
                check_array_arg(value, name, shape=(n,), finite=True, owner=self)

    def fit_transform(self, X, y=None):
        self.sparse_input_ = sp.issparse(X)
        X = self._as_float(X)
        self.n_features_in_ = X.shape[1]
        missing = self._missing_rows(X)
        means = self._column_means(X)
        dense_standard = self.norm == "standard" and not sp.issparse(X)
        # "zero" means "adds nothing": for a centred block that is the mean
        if self.impute == "mean" or dense_standard:
            self.fill_ = means
        else:
            self.fill_ = np.zeros(X.shape[1])
        filled = self._fill(X, missing)
        if self.norm == "standard":
            present = filled[~missing] if missing.any() else filled
            if present.shape[0] == 0:
                present = filled
            if sp.issparse(present):
                sq = np.asarray(present.multiply(present).mean(axis=0)).ravel()
                mean = np.asarray(present.mean(axis=0)).ravel()
                std = np.sqrt(np.maximum(sq - mean**2, 0.0))
                self.center_ = None
            else:
                self.center_ = means
                std = present.std(axis=0)
            std[std < 1e-12] = 1.0
            self.scale_ = std
        return self._finish(filled, missing)

    def transform(self, X):
        check_is_fitted(self, "fill_")
        X = self._as_float(X)
        if X.shape[1] != self.n_features_in_:
            raise InputError(
                f"block {self.name!r} gave {X.shape[1]} features, "
                f"{self.n_features_in_} when fitted",
                source=self.name,
            )
        missing = self._missing_rows(X)
        # which rows had this block (MultimodalFuser.transform_with_presence)
        report_presence(self.name, ~missing)
        return self._finish(self._fill(X, missing), missing)

    @staticmethod
    def _column_means(X):
        """Mean of each feature over the rows where it is present."""
        if sp.issparse(X):
            X = X.tocsc()
            total = np.zeros(X.shape[1])
            count = np.full(X.shape[1], float(X.shape[0]))
            cols = np.repeat(np.arange(X.shape[1]), np.diff(X.indptr))
            nan = np.isnan(X.data)
            np.add.at(total, cols[~nan], X.data[~nan])
            np.add.at(count, cols[nan], -1.0)
        else:
            nan = np.isnan(X)
            total = np.where(nan, 0.0, X).sum(axis=0)
            count = (~nan).sum(axis=0).astype(np.float64)
        return np.divide(total, count, out=np.zeros(X.shape[1]), where=count > 0)

    def _fill(self, X, missing):
        """Put ``fill_`` into the NaN cells (only those)."""
        if not missing.any():
            return X
        X = X.copy()
        if sp.issparse(X):
            nan = np.isnan(X.data)
            X.data[nan] = self.fill_[X.indices[nan]]
            X.eliminate_zeros()
            return X
        r, c = np.nonzero(np.isnan(X))
        X[r, c] = self.fill_[c]
        return X

    def _finish(self, X, missing):
        if self.norm == "l2":
            X = normalize(X, norm="l2", copy=False)
        elif self.norm == "standard":
            if sp.issparse(X):
                X = X @ sp.diags(1.0 / self.scale_)
            else:
                X = (X - self.center_) / self.scale_
            # unit expected squared norm per row, whatever the block width
            X = X / math.sqrt(X.shape[1])
        if self.weight != 1.0:
            X = X * self.weight
        if self.indicator:
            flag = missing.astype(np.float64)[:, None] * self.weight
            X = (
                sp.hstack([X, sp.csr_matrix(flag)], format="csr")
                if sp.issparse(X)
                else np.hstack([X, flag])
            )
        return X.tocsr() if sp.issparse(X) else X

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "fill_")
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)]
        names = [str(f) for f in input_features]
        if self.indicator:
            names.append("missing")
        return np.asarray(names, dtype=object)


class _DenseReports:
    """A block's dense output carrying its item reports back from a worker.

    Not an ndarray subclass: Dask serialises ndarrays (subclasses included)
    by their buffer and would drop the reports. ``ColumnTransformer`` only
    reads ``ndim``, ``shape`` and ``size`` of a block's output before
    :meth:`_FusedColumns._hstack` takes the array out.
    """

    ndim = 2

    def __init__(self, X, reports):
        self.X = X
        self.reports = reports

    def __array__(self, dtype=None, copy=None):
        # a block pipeline called directly (fuser.column_transformer_'s
        # blocks): np.asarray gives its features
        return self.X if dtype is None else self.X.astype(dtype, copy=False)

    @property
    def shape(self):
        return self.X.shape

    @property
    def size(self):
        return self.X.size


class _SparseReports(sp.csr_matrix):
    """A block's sparse output carrying its item reports back from a worker."""

    reports = ((), {})  # results of sparse arithmetic on it carry nothing


def _with_reports(X, log):
    """``X`` with the errors and presence ``log`` holds attached."""
    reports = (tuple(log), presence_of(log))
    if sp.issparse(X):
        X = X.tocsr()
        out = _SparseReports((X.data, X.indices, X.indptr), shape=X.shape)
        out.reports = reports
        return out
    return _DenseReports(np.asarray(X), reports)


def _take_reports(X):
    """Report what a block's output carries here; return the plain output."""
    if isinstance(X, _DenseReports):
        errors, presence = X.reports
        X = X.X
    elif isinstance(X, _SparseReports):
        errors, presence = X.reports
        X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=X.shape)
    else:
        return X
    report_item_errors(errors)
    for name, mask in presence.items():
        report_presence(name, mask)
    return X


class _BlockPipeline(Pipeline):
    """One block: the user's transformer, then the block step.

    Its output brings back the items the transformer refused and the rows
    the block had, whether it ran in this thread, a worker process or on a
    Dask worker (``ColumnTransformer(n_jobs>1)`` runs blocks in parallel,
    and state set on a worker's copy never comes back).
    """

    def _block_name(self):
        return self.steps[-1][1].name

    def fit_transform(self, X, y=None, **params):
        """Fit the block and return its features (with its reports)."""
        with capture_item_errors() as log:
            out = super().fit_transform(X, y, **params)
        return _with_reports(out, _relabelled(log, self._block_name()))

    def transform(self, X, **params):
        """The block's features (with its reports).

        With ``memory``, the features of ``X`` are cached too (keyed by the
        fitted transformer and ``X``), with the items it refused: a grid
        search over weights or normalisation then extracts each held-out
        fold once, not once per candidate, and bad items are still reported
        on every call.
        """
        memory = check_memory(self.memory)
        with capture_item_errors() as log:
            if memory.location is None or params or len(self.steps) != 2:
                out = super().transform(X, **params)
            else:
                (_, features), (_, block) = self.steps
                cached = memory.cache(_features_and_errors)
                Xt, errors = cached(features, X, _file_stamps(X))
                report_item_errors(errors)
                out = block.transform(Xt)
        return _with_reports(out, _relabelled(log, self._block_name()))


def _file_stamps(X):
    """Size and modification time of each file a column of paths names.

    Part of the cache key of a block's transform, so a file rewritten at
    the same path (or one that appears later) is read again.
    """
    if isinstance(X, pd.DataFrame):
        values = X.to_numpy(dtype=object).ravel()
    elif isinstance(X, pd.Series):
        values = X.to_numpy(dtype=object)
    elif isinstance(X, (list, tuple)) or (
        isinstance(X, np.ndarray) and X.dtype == object
    ):
        values = np.asarray(X, dtype=object).ravel()
    else:
        return None  # numeric features: the key is their values
    stamps = []
    for v in values:
        if isinstance(v, (str, os.PathLike)):
            try:
                st = os.stat(v)
                stamps.append((st.st_size, st.st_mtime_ns))
            except (OSError, ValueError):
                stamps.append(None)
        else:
            stamps.append(None)
    return stamps


def _features_and_errors(features, X, stamps=None):
    """``features.transform(X)`` and the items it refused (cached by memory).

    ``stamps`` (:func:`_file_stamps`) only enters the cache key.
    """
    if isinstance(features, str) and features == "passthrough":
        return X, []
    with capture_item_errors() as log:
        Xt = features.transform(X)
    return Xt, list(log)


def _relabelled(log, name):
    """A log with ``name`` put in front of every error's modality.

    Only this block's own presence is kept: a fuser nested in the block
    reports presence for its own blocks, whose names may be this fuser's.
    """
    with capture_item_errors() as out:
        report_item_errors(list(log), modality=name)
        own = presence_of(log).get(name)
        if own is not None:
            report_presence(name, own)
    return out


def _dense_to_csr(X):
    """CSR view of a dense block, built directly (no COO detour)."""
    X = np.ascontiguousarray(X)
    n, d = X.shape
    return sp.csr_matrix(
        (
            X.ravel(),
            np.tile(np.arange(d, dtype=np.int32), n),
            np.arange(0, n * d + 1, d, dtype=np.int64),
        ),
        shape=(n, d),
    )


class _FusedColumns(ColumnTransformer):
    """ColumnTransformer whose sparse join converts dense blocks cheaply.

    scipy's ``hstack`` of dense and CSR blocks goes through COO, which costs
    more than the normalisation of every block; all-CSR blocks join on a
    fast path.
    """

    def _hstack(self, Xs, *args, **kwargs):
        Xs = [_take_reports(X) for X in Xs]
        if getattr(self, "sparse_output_", False) and any(sp.issparse(X) for X in Xs):
            Xs = [
                _dense_to_csr(X) if isinstance(X, np.ndarray) and X.ndim == 2 else X
                for X in Xs
            ]
        return super()._hstack(Xs, *args, **kwargs)


def _check_table(X):
    """Refuse 1-D input; give ColumnTransformer sparse input it can index."""
    if sp.issparse(X):
        return X if X.format in ("csr", "csc") else X.tocsc()
    ndim = getattr(X, "ndim", None)
    if ndim is None and isinstance(X, (list, tuple)):
        ndim = np.ndim(np.asarray(X, dtype=object)) if len(X) else 1
    if ndim == 2 and getattr(X, "shape", (1, 1))[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 "
            "is required by MultimodalFuser."
        )
    if ndim == 2 and not hasattr(X, "columns") and np.iscomplexobj(X):
        raise ValueError("Complex data not supported")
    if ndim == 1:
        raise ParameterError(
            "expected a 2-D table (a DataFrame, or an array with one column per "
            "feature); got a 1-D column. Reshape your data with "
            "array.reshape(-1, 1), or pass a DataFrame with the column named."
        )
    return X


def _per_block(value, names, param, allowed):
    """Expand a per-block option (one value or a dict by block name)."""
    if isinstance(value, dict):
        unknown = set(value) - set(names)
        if unknown:
            raise ParameterError(
                f"{param} names unknown blocks {sorted(unknown)}; the blocks are "
                f"{list(names)}"
            )
        out = {
            n: value.get(n, allowed[0] if param != "block_norm" else "l2")
            for n in names
        }
    else:
        out = dict.fromkeys(names, value)
    for name, v in out.items():
        if v not in allowed:
            raise ParameterError(
                f"{param} for block {name!r} must be one of {list(allowed)}; got {v!r}"
            )
    return out


class MultimodalFuser(CheckedStateMixin, TransformerMixin, _BaseComposition):
    """Feature-level fusion of modality blocks: ``F = a·F1 ⊕ b·F2 ⊕ …``.

    Built like :class:`~sklearn.compose.ColumnTransformer` (and on top of it):
    each ``(name, transformer, columns)`` triple turns some columns of a table
    into a block of features. Each block is then imputed where its rows are
    missing, normalised, and multiplied by its weight, and the blocks are
    joined side by side. Because every block is normalised before it is
    weighted, the weights mean what the formula says whatever the number of
    features in each block: with ``block_norm="l2"`` every row of every block
    has unit length, so a block weighted 2 contributes four times as much to
    a linear kernel as a block weighted 1.

    Parameters
    ----------
    transformers : list of (str, transformer, columns)
        The blocks. ``name`` names the modality (and prefixes its feature
        names), ``transformer`` is any scikit-learn transformer (an mmfeat
        extractor, a Pipeline, ...) or ``"passthrough"`` (numeric columns as
        they are) or ``"drop"``, and ``columns`` selects its input as
        ``ColumnTransformer`` does: a column name (the transformer gets a
        1-D column, which is what mmfeat's extractors take), a list of
        names, integer positions, a slice, a boolean mask or a callable.
    weights : dict of str to float, default=None
        Weight of each block by name; blocks left out weigh 1. A weight of 0
        switches a block off. Grid-search it as ``fuser__weights`` with a list
        of dicts, e.g. from :func:`fusion_weight_grid`.
    block_norm : {"l2", "standard", None} or dict, default="l2"
        Normalisation of each block before weighting (or a dict by block
        name): ``"l2"`` scales each row of the block to unit length;
        ``"standard"`` centres and scales each feature with the training
        statistics and divides the block by the square root of its width, so
        each row has unit expected squared length (sparse blocks are scaled,
        not centred); ``None`` leaves the features as they are.
    impute : {"zero", "mean"} or dict, default="zero"
        Value put into missing features (NaN, which mmfeat's extractors give
        for missing or unreadable items), per block: zero, or the feature's
        mean over the training rows where it was present. Imputation happens
        before normalisation.
    missing_indicator : bool or list of str, default=False
        Add a ``<name>__missing`` column (1 where the row's block had missing
        features, scaled by the block weight) for every block, or for the
        named ones.
    sparse_output : {"auto", True, False}, default="auto"
        ``"auto"`` returns a sparse CSR matrix when any block is sparse (such
        as TF-IDF) and a dense array otherwise, so dense and sparse blocks mix
        without densifying; ``True`` always returns CSR; ``False`` always
        returns a dense array.
    remainder : {"drop", "passthrough"}, default="drop"
        What happens to the columns that no block names (``"passthrough"``
        appends them as they are, without normalisation or weight).
    memory : str, path or joblib.Memory, default=None
        Cache of each block's fitted extractor and training features (as
        ``Pipeline(memory=...)`` caches a step), and of the features it
        computes at ``transform`` (keyed by the fitted extractor and the
        rows). The key is the extractor and its data, not the block's
        weight or normalisation, so a grid search over ``weights`` or
        ``block_norm`` extracts each fold's training and held-out features
        once; a ``Pipeline(memory=...)`` around the whole fuser would
        extract again for every weight. Items refused at ``transform`` are
        reported on every call (cached with the features); a fit served
        from the cache reports none (they were reported when it ran).
    n_jobs : int, default=None
        Blocks fitted and transformed in parallel (joblib), as in
        ``ColumnTransformer``.
    verbose : bool, default=False
        Print the time each block takes.

    Attributes
    ----------
    column_transformer_ : ColumnTransformer
        The fitted column transformer that does the work; each of its blocks
        is a Pipeline of the user's transformer and the block step.
    transformers_ : list of (str, transformer, columns)
        The fitted transformers, as given (without the block step).
    named_transformers_ : Bunch
        The fitted transformers by block name.
    weights_ : dict of str to float
        The weight used for every block.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of str
        Input column names, when ``X`` was a DataFrame.

    See Also
    --------
    make_fuser : Build a fuser from one transformer per column.
    fusion_weight_grid : Weight dicts to grid-search.
    mmfeat.fusion.LateFusionClassifier : Model-level fusion.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from mmfeat.fusion import MultimodalFuser
    >>> table = pd.DataFrame({"a": [3.0, 0.0], "b": [4.0, 2.0], "c": [1.0, -5.0]})
    >>> fuser = MultimodalFuser(
    ...     [("left", "passthrough", ["a", "b"]), ("right", "passthrough", ["c"])],
    ...     weights={"right": 2.0},
    ... )
    >>> fuser.fit_transform(table).round(3)
    array([[ 0.6,  0.8,  2. ],
           [ 0. ,  1. , -2. ]])
    >>> fuser.get_feature_names_out().tolist()
    ['left__a', 'left__b', 'right__c']
    """

    _required_parameters = ["transformers"]

    _parameter_constraints = {
        # (name, transformer, columns) triples; _validate says what is wrong
        "transformers": [list, tuple],
        "weights": [None, dict],
        "block_norm": [StrOptions({"l2", "standard"}), None, dict],
        "impute": [StrOptions(set(_IMPUTES)), dict],
        "missing_indicator": ["boolean", list, tuple, set],
        "sparse_output": [StrOptions({"auto"}), "boolean"],
        "remainder": [StrOptions({"drop", "passthrough"})],
        "memory": [None, str, HasMethods(["cache"])],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        transformers,
        *,
        weights=None,
        block_norm="l2",
        impute="zero",
        missing_indicator=False,
        sparse_output="auto",
        remainder="drop",
        memory=None,
        n_jobs=None,
        verbose=False,
    ):
        self.transformers = transformers
        self.weights = weights
        self.block_norm = block_norm
        self.impute = impute
        self.missing_indicator = missing_indicator
        self.sparse_output = sparse_output
        self.remainder = remainder
        self.memory = memory
        self.n_jobs = n_jobs
        self.verbose = verbose

    # parameters of nested transformers: fuser.set_params(image__orientations=8)
    @property
    def _transformers(self):
        try:
            return [(name, trans) for name, trans, _ in self.transformers]
        except (TypeError, ValueError):  # invalid; fit says why
            return self.transformers

    @_transformers.setter
    def _transformers(self, value):
        try:
            self.transformers = [
                (name, trans, col)
                for ((name, trans), (_, _, col)) in zip(value, self.transformers)
            ]
        except (TypeError, ValueError):
            self.transformers = value

    def get_params(self, deep=True):
        """Get parameters, including those of the block transformers."""
        return self._get_params("_transformers", deep=deep)

    def set_params(self, **params):
        """Set parameters, including ``<block>__<param>`` ones."""
        self._set_params("_transformers", **params)
        return self

    def _validate(self):
        if not isinstance(self.transformers, (list, tuple)) or not self.transformers:
            raise ParameterError(
                "transformers must be a non-empty list of (name, transformer, "
                f"columns) triples; got {self.transformers!r}"
            )
        for entry in self.transformers:
            if not (isinstance(entry, tuple) and len(entry) == 3):
                raise ParameterError(
                    "each entry of transformers must be a (name, transformer, "
                    f"columns) triple; got {entry!r}"
                )
        names = [name for name, _, _ in self.transformers]
        self._validate_names(names)
        weights = check_weight_dict(self.weights, names, ("block", "blocks"))
        norms = _per_block(
            self.block_norm, names, "block_norm", ("l2", "standard", None)
        )
        imputes = _per_block(self.impute, names, "impute", _IMPUTES)
        if isinstance(self.missing_indicator, (bool, np.bool_)):
            flagged = set(names) if self.missing_indicator else set()
        elif isinstance(self.missing_indicator, (list, tuple, set)) and all(
            isinstance(n, str) for n in self.missing_indicator
        ):
            flagged = set(self.missing_indicator)
        else:
            raise ParameterError(
                "missing_indicator must be True, False or a list of block names; "
                f"got {self.missing_indicator!r}"
            )
        if flagged:
            if flagged - set(names):
                raise ParameterError(
                    f"missing_indicator names unknown blocks "
                    f"{sorted(flagged - set(names))}; the blocks are {names}"
                )
        return names, weights, norms, imputes, flagged

    def _column_transformer(self):
        names, weights, norms, imputes, flagged = self._validate()
        blocks = []
        for name, trans, columns in self.transformers:
            if isinstance(trans, str) and trans == "drop":
                blocks.append((name, "drop", columns))
                continue
            if isinstance(trans, str) and trans == "passthrough":
                trans = FunctionTransformer(feature_names_out="one-to-one")
            elif isinstance(trans, str) or not (
                hasattr(trans, "fit") and hasattr(trans, "transform")
            ):
                raise ParameterError(
                    f"the transformer of block {name!r} must be an estimator with "
                    f"fit and transform, 'passthrough' or 'drop'; got {trans!r}"
                )
            step = _Block(
                name,
                norm=norms[name],
                impute=imputes[name],
                indicator=name in flagged,
                weight=weights[name],
            )
            blocks.append(
                (
                    name,
                    _BlockPipeline(
                        [("features", clone(trans)), ("block", step)],
                        memory=self.memory,
                    ),
                    columns,
                )
            )
        self.weights_ = {n: weights[n] for n in names}
        return _FusedColumns(
            blocks,
            remainder=self.remainder,
            sparse_threshold=1.0 if self._sparse_mode() != "dense" else 0.0,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            verbose_feature_names_out=True,
        )

    def _check_fitted_state(self):
        w = self.weights_
        if not isinstance(w, dict) or not all(
            isinstance(v, numbers.Real) and math.isfinite(v) and v >= 0
            for v in w.values()
        ):
            raise state_error(self, f"weights_={w!r} are not finite weights >= 0")

    def fit(self, X, y=None, **params):
        """Fit every block.

        Parameters
        ----------
        X : DataFrame or array-like
            The table.
        y : array-like, default=None
            Targets, given to the block transformers.
        **params : dict
            Routed to the transformers as ``ColumnTransformer`` routes them.

        Returns
        -------
        self : MultimodalFuser
        """
        self.fit_transform(X, y, **params)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X, y=None, **params):
        """Fit every block and return the fused features.

        Parameters
        ----------
        X : DataFrame or array-like
            The table.
        y : array-like, default=None
            Targets, given to the block transformers.
        **params : dict
            Routed to the transformers as ``ColumnTransformer`` routes them.

        Returns
        -------
        F : ndarray or CSR matrix of shape (n_samples, n_fused_features)
            The fused features.
        """
        ct = self._column_transformer()
        Xt = ct.fit_transform(_check_table(X), y, **params)
        self.column_transformer_ = ct
        if hasattr(ct, "n_features_in_"):
            self.n_features_in_ = ct.n_features_in_
        if hasattr(ct, "feature_names_in_"):
            self.feature_names_in_ = ct.feature_names_in_
        return self._convert(Xt)

    def _sparse_mode(self):
        """``"auto"``, ``"sparse"`` or ``"dense"`` from ``sparse_output``."""
        if isinstance(self.sparse_output, str):
            return "auto"
        return "sparse" if self.sparse_output else "dense"

    def _convert(self, Xt):
        any_sparse = False
        for _, trans, _ in self.column_transformer_.transformers_:
            if isinstance(trans, Pipeline):
                any_sparse |= getattr(trans.steps[-1][1], "sparse_input_", False)
        mode = self._sparse_mode()
        if mode == "sparse" or (mode == "auto" and any_sparse):
            return Xt.tocsr() if sp.issparse(Xt) else sp.csr_matrix(Xt)
        return Xt.toarray() if sp.issparse(Xt) else Xt

    def transform(self, X, **params):
        """Return the fused features of ``X``.

        Parameters
        ----------
        X : DataFrame or array-like
            The table, with the columns the fuser was fitted on.
        **params : dict
            Routed to the transformers as ``ColumnTransformer`` routes them.

        Returns
        -------
        F : ndarray or CSR matrix of shape (n_samples, n_fused_features)
            The fused features.
        """
        check_is_fitted(self, "column_transformer_")
        return self._convert(
            self.column_transformer_.transform(_check_table(X), **params)
        )

    def transform_with_presence(self, X, **params):
        """Fused features of ``X`` and which blocks each row had.

        A row lacks a block when the block's features for it were missing
        (NaN: a missing or unreadable item) and were imputed. This is what
        batch scoring uses to find records with no usable modality; it is
        computed in the call (at any ``n_jobs``), not left on the fuser.

        Parameters
        ----------
        X : DataFrame or array-like
            The table, with the columns the fuser was fitted on.
        **params : dict
            Routed to the transformers as ``ColumnTransformer`` routes them.

        Returns
        -------
        F : ndarray or CSR matrix of shape (n_samples, n_fused_features)
            The fused features, as :meth:`transform` gives them.
        presence : DataFrame of bool, shape (n_samples, n_blocks)
            One column per block (in ``transformers_`` order, dropped blocks
            left out): True where the row had the block's features.
        """
        with capture_item_errors() as log:
            F = self.transform(X, **params)
        report_item_errors(list(log))
        masks = presence_of(log)
        names = [
            name
            for name, trans, _ in self.transformers_
            if name != "remainder" and not (isinstance(trans, str) and trans == "drop")
        ]
        n = F.shape[0]
        presence = pd.DataFrame(
            {name: masks.get(name, np.ones(n, dtype=bool)) for name in names},
            columns=names,
        )
        return F, presence

    @property
    def transformers_(self):
        """The fitted block transformers as ``(name, transformer, columns)``."""
        check_is_fitted(self, "column_transformer_")
        out = []
        for name, trans, columns in self.column_transformer_.transformers_:
            if isinstance(trans, Pipeline) and "block" in trans.named_steps:
                trans = trans.named_steps["features"]
            out.append((name, trans, columns))
        return out

    @property
    def named_transformers_(self):
        """The fitted block transformers by name."""
        return Bunch(**{name: trans for name, trans, _ in self.transformers_})

    @property
    def output_indices_(self):
        """Slice of the fused columns that each block fills, by name."""
        check_is_fitted(self, "column_transformer_")
        return dict(self.column_transformer_.output_indices_)

    def get_feature_names_out(self, input_features=None):
        """Fused feature names, ``<block>__<feature>``.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Passed on to ``ColumnTransformer.get_feature_names_out``.

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self, "column_transformer_")
        return self.column_transformer_.get_feature_names_out(input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.two_d_array = True
        return tags

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        from sklearn.preprocessing import StandardScaler

        everything = slice(0, None)
        return [
            {"transformers": [("a", StandardScaler(with_mean=False), everything)]},
            {
                "transformers": [
                    ("a", "passthrough", everything),
                    ("b", StandardScaler(with_mean=False), everything),
                ],
                "weights": {"a": 0.5},
                "block_norm": {"a": "standard", "b": None},
                "impute": "mean",
                "missing_indicator": ["a"],
            },
        ]


def make_fuser(blocks, **kwargs):
    """Build a :class:`MultimodalFuser` from one transformer per column.

    The common case: each modality is one column of the table and the block
    takes the column's name.

    Parameters
    ----------
    blocks : dict of str to transformer or (transformer, columns)
        Block name (the column name, unless columns are given) to its
        transformer.
    **kwargs : dict
        Other :class:`MultimodalFuser` parameters (``weights``,
        ``block_norm``, ...).

    Returns
    -------
    fuser : MultimodalFuser

    Examples
    --------
    >>> from mmfeat.features.image import HOGExtractor
    >>> from mmfeat.features.text import TfidfExtractor
    >>> fuser = make_fuser(
    ...     {"image": HOGExtractor(image_size=(64, 64)), "title": TfidfExtractor()},
    ...     weights={"title": 2.0},
    ... )
    >>> [name for name, _, _ in fuser.transformers]
    ['image', 'title']
    """
    if not isinstance(blocks, dict) or not blocks:
        raise ParameterError(
            "blocks must be a non-empty dict of column name to transformer; "
            f"got {blocks!r}"
        )
    triples = []
    for name, spec in blocks.items():
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise ParameterError(
                    f"block {name!r} must be a transformer or (transformer, "
                    f"columns); got {spec!r}"
                )
            trans, columns = spec
        else:
            trans, columns = spec, name
        triples.append((name, trans, columns))
    return MultimodalFuser(triples, **kwargs)


def fusion_weight_grid(**weights):
    """Expand per-modality weight lists into a list of weight dicts.

    Parameters
    ----------
    **weights : list of float
        For each block name, the weights to try.

    Returns
    -------
    grid : list of dict
        Every combination, ready for ``param_grid={"fuser__weights": grid}``.
        Combinations where every weight is 0 are left out.

    Examples
    --------
    >>> fusion_weight_grid(image=[0.5, 1.0], text=[1.0])
    [{'image': 0.5, 'text': 1.0}, {'image': 1.0, 'text': 1.0}]
    """
    if not weights:
        raise ParameterError("give at least one block, e.g. image=[0.5, 1, 2]")
    names = list(weights)
    values = []
    for name in names:
        vals = weights[name]
        if isinstance(vals, numbers.Real) and not isinstance(vals, bool):
            vals = [vals]
        ok = (
            np.iterable(vals)
            and not isinstance(vals, (str, bytes))
            and len(list(vals)) > 0
            and all(
                isinstance(v, numbers.Real)
                and not isinstance(v, bool)
                and math.isfinite(v)
                and v >= 0
                for v in vals
            )
        )
        if not ok:
            raise ParameterError(
                f"weights for {name!r} must be a non-empty list of finite numbers "
                f">= 0; got {weights[name]!r}"
            )
        values.append([float(v) for v in vals])
    grid = [dict(zip(names, combo)) for combo in itertools.product(*values)]
    grid = [g for g in grid if any(v > 0 for v in g.values())]
    if not grid:
        raise ParameterError("every combination has all weights 0; give a weight > 0")
    return grid
