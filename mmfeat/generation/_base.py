"""What every captioner shares: items -> features, bad rows, chunked predict."""

import numbers

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import FeatureUnion
from sklearn.utils.validation import check_array

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.utils._item_errors import (
    ItemError,
    capture_item_errors,
    report_item_errors,
)
from mmfeat.utils._items import is_missing
from mmfeat.utils._sklearn_compat import (
    HasMethods,
    Integral,
    Interval,
    StrOptions,
    _safe_indexing,
    check_is_fitted,
)
from mmfeat.utils._state import CheckedStateMixin, state_error
from mmfeat.utils._tags import get_item_tags, with_item_tags

__all__ = ["BaseCaptioner", "make_image_features"]


def make_image_features(
    *, image_size=(64, 64), color_weight=1.0, on_error="missing", n_jobs=None
):
    """The captioners' default image features: HOG + colour histogram.

    HOG (shape) and a joint HSV colour histogram (colour), each scaled to
    unit norm, side by side: cosine similarity of two photos then weighs
    shape and colour equally (``color_weight`` changes that; it is
    grid-searchable as ``transformer__transformer_weights``).

    Parameters
    ----------
    image_size : (int, int), default=(64, 64)
        Size the photos are resized to before HOG and the histogram.
    color_weight : float, default=1.0
        Weight of the colour block against the HOG block.
    on_error : {"missing", "raise"}, default="missing"
        Passed to both extractors.
    n_jobs : int, default=None
        Passed to both extractors.

    Returns
    -------
    features : FeatureUnion
    """
    from mmfeat.features.image import ColorHistogramExtractor, HOGExtractor

    hog = HOGExtractor(image_size=image_size, on_error=on_error, n_jobs=n_jobs)
    color = ColorHistogramExtractor(
        image_size=image_size, on_error=on_error, n_jobs=n_jobs
    )
    cells = (image_size[0] // 8, image_size[1] // 8)
    blocks = max((cells[0] - 2) * (cells[1] - 2), 1)
    return FeatureUnion(
        [("hog", hog), ("color", color)],
        transformer_weights={"hog": 1.0 / np.sqrt(blocks), "color": color_weight},
    )


def _nan_rows(F):
    if sp.issparse(F):
        F = F.tocsr()
        rows = np.zeros(F.shape[0], dtype=bool)
        bad = np.isnan(F.data)
        if bad.any():
            rows[np.repeat(np.arange(F.shape[0]), np.diff(F.indptr))[bad]] = True
        return rows
    return np.isnan(F).any(axis=1)


def _n_rows(X):
    if hasattr(X, "shape") and not isinstance(X, pd.Series):
        return X.shape[0]
    return len(X)


class BaseCaptioner(CheckedStateMixin, BaseEstimator):
    """Shared machinery of the captioners (not public on its own).

    ``transformer`` turns the rows of ``X`` into one feature vector each:
    ``None`` is :func:`make_image_features` over a column of photos,
    ``"passthrough"`` takes ``X`` as a numeric matrix (features computed
    elsewhere), anything else is a transformer (an mmfeat extractor, a
    fuser over a table, a Pipeline). A row whose features are NaN (an
    unreadable, missing or corrupt item) is left out of ``fit`` and gets no
    output from ``predict``; an unreadable or corrupt item's error reaches
    :func:`mmfeat.collect_item_errors` with its row (a missing item, ``None``
    or a NaN row of a feature matrix, is no error: it is missing).
    """

    _common_constraints = {
        "transformer": [
            HasMethods(["fit_transform", "transform"]),
            StrOptions({"passthrough"}),
            None,
        ],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
    }

    # ------------------------------------------------------------ features
    def _new_transformer(self):
        if self.transformer is None:
            # the extractors never raise: this estimator's on_error decides
            return make_image_features(on_error="missing", n_jobs=self.n_jobs)
        if isinstance(self.transformer, str):
            return None
        return clone(self.transformer)

    def _column(self, X, *, fit):
        """``X`` as the transformer takes it; one column for the default."""
        if isinstance(X, pd.DataFrame):
            if fit:
                self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                missing = [c for c in self.feature_names_in_ if c not in X.columns]
                if missing:
                    raise InputError(
                        f"X has no column(s) {missing}; the captioner was "
                        f"fitted on {list(self.feature_names_in_)}",
                        source="X",
                    )
                X = X[list(self.feature_names_in_)]
            if self.transformer is None and X.shape[1] != 1:
                raise ParameterError(
                    "the default image features read one column of photos; X "
                    f"has {X.shape[1]} columns {list(X.columns)[:5]}: select "
                    "the photo column, or give a transformer that reads a "
                    "table (a MultimodalFuser)"
                )
        elif fit and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return X

    def _as_matrix(self, F):
        if sp.issparse(F):
            return F.tocsr().astype(np.float64)
        F = check_array(
            F,
            dtype=np.float64,
            ensure_all_finite="allow-nan",
            ensure_min_samples=0,
            input_name="features",
        )
        return F

    def _features(self, X, *, fit, offset=0):
        """Feature matrix of ``X`` and the rows that have features.

        Item errors are reported once per (row, source, reason), with the
        rows of ``X`` plus ``offset``; with ``on_error="raise"`` the first
        one raises.
        """
        n = _n_rows(X)
        if fit:
            # a refit leaves nothing of the previous fit's input behind
            passthrough = self.transformer == "passthrough"
            self.transformer_ = None if passthrough else self._new_transformer()
            if passthrough:
                self.n_features_in_ = X.shape[1] if hasattr(X, "shape") else None
                if self.n_features_in_ is None:
                    raise ParameterError(
                        'transformer="passthrough" takes X as a 2-D numeric '
                        f"matrix; got {type(X).__name__}"
                    )
            elif hasattr(self, "n_features_in_"):
                del self.n_features_in_
        with capture_item_errors() as log:
            if self.transformer == "passthrough":
                F = X
            elif fit:
                F = self.transformer_.fit_transform(X)
            else:
                F = self.transformer_.transform(X)
        errors = list(dict.fromkeys((e.row, e.source, e.reason) for e in log))
        if errors and self.on_error == "raise":
            row, source, reason = errors[0]
            raise InputError(reason, row=offset + row, source=source)
        F = self._as_matrix(F)
        if F.shape[0] != n:
            raise InputError(
                f"the transformer gave {F.shape[0]} rows for {n} rows of X",
                source="transformer",
            )
        ok = ~_nan_rows(F)
        report_item_errors(
            [ItemError(offset + r, s, why, None) for r, s, why in errors]
        )
        return F, ok

    def _refuse(self, row, source, reason):
        if self.on_error == "raise":
            raise InputError(reason, row=row, source=source)
        report_item_errors([ItemError(row, source, reason, None)])

    # -------------------------------------------------------------- chunks
    def _chunks(self, X):
        """``(start, rows of X)`` in chunks of ``batch_size``."""
        n = _n_rows(X)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if start == 0 and stop == n:
                yield 0, X
            else:
                yield start, _safe_indexing(X, np.arange(start, stop))

    def _map_rows(self, X, func, empty):
        """``func(features of the usable rows)`` chunk by chunk, in row order.

        ``func`` returns one output per usable row; unusable rows get
        ``empty``. Returns a list, one entry per row of ``X``.
        """
        check_is_fitted(self)
        X = self._column(X, fit=False)
        out = []
        for start, part in self._chunks(X):
            F, ok = self._features(part, fit=False, offset=start)
            rows = np.flatnonzero(ok)
            values = func(F[rows]) if len(rows) else []
            chunk = [empty] * F.shape[0]
            for r, v in zip(rows, values):
                chunk[r] = v
            out.extend(chunk)
        return out

    # ---------------------------------------------------------------- tags
    def _target_kind(self):
        return "text"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.non_deterministic = False
        t = self.transformer
        if t is None:
            modality, reads = "image", True
        elif isinstance(t, str):
            modality, reads = None, False
        else:
            item = get_item_tags(t)
            modality, reads = item.modality, item.reads_files
        if modality is None:
            tags.input_tags.allow_nan = True
            tags.input_tags.sparse = t == "passthrough"
            return with_item_tags(
                tags, modality=None, reads_files=False, target=self._target_kind()
            )
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return with_item_tags(
            tags, modality=modality, reads_files=reads, target=self._target_kind()
        )

    def _check_transformer_state(self):
        if self.transformer == "passthrough":
            if getattr(self, "transformer_", None) is not None:
                raise state_error(self, 'transformer="passthrough" with a transformer_')
        elif not hasattr(getattr(self, "transformer_", None), "transform"):
            raise state_error(self, "transformer_ is missing or cannot transform")

    def _check_rows(self, name, rows, n):
        rows = np.asarray(rows)
        if not (
            rows.ndim == 1
            and rows.dtype.kind in "iu"
            and (len(rows) == 0 or (rows.min() >= 0 and rows.max() < n))
        ):
            raise state_error(self, f"{name} must index {n} rows; got {rows.shape}")


def check_texts(y, n, *, name="y"):
    """``y`` as a list of ``n`` entries, each a tuple of reference texts.

    An entry is a string, or a list / tuple of strings (several references
    of one image); ``None``, NaN or an empty string are missing (an empty
    tuple).
    """
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ParameterError(
                f"{name} must be one column of texts; got {y.shape[1]} columns"
            )
        y = y.iloc[:, 0]
    if isinstance(y, str) or not hasattr(y, "__len__"):
        raise ParameterError(
            f"{name} must be a sequence of texts, one per row; got {type(y).__name__}"
        )
    y = list(y.tolist() if hasattr(y, "tolist") else y)
    if len(y) != n:
        raise ParameterError(f"{name} has {len(y)} entries for {n} rows of X")
    out = []
    for i, v in enumerate(y):
        if isinstance(v, (list, tuple, np.ndarray)):
            refs = [t for t in list(v) if not is_missing(t)]
        elif is_missing(v):
            refs = []
        else:
            refs = [v]
        for t in refs:
            if not isinstance(t, str):
                raise InputError(
                    f"a caption must be text; got {type(t).__name__} ({t!r:.40})",
                    row=i,
                    source=name,
                )
        out.append(tuple(t for t in refs if t.strip()))
    return out


def check_k(k, name="k"):
    """``k`` as a positive int."""
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ParameterError(f"{name} must be a positive int; got {k!r}")
    return int(k)
