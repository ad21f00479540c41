"""Tables of modality columns: selecting a modality, finding absent rows.

Shared by the model-level fusion ensembles, cross-modal retrieval and batch
scoring, which all take one table with a column (or several) per modality.
"""

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mmfeat.exceptions import InputError
from mmfeat.utils._items import is_missing
from mmfeat.utils._sklearn_compat import _safe_indexing

__all__ = ["absent_items", "check_table", "select_columns"]


def select_columns(X, columns):
    """The modality's part of ``X`` (a column, or a table of columns)."""
    if callable(columns):
        columns = columns(X)
    try:
        return _safe_indexing(X, columns, axis=1)
    except (KeyError, ValueError, IndexError) as exc:
        have = list(X.columns) if isinstance(X, pd.DataFrame) else None
        raise InputError(
            f"cannot select columns {columns!r}: {exc}"
            + (f"; the table has {have}" if have is not None else ""),
            source="X",
        ) from None


def absent_items(Xm):
    """Boolean mask of rows where every item of the modality is missing."""
    if isinstance(Xm, pd.DataFrame):
        return Xm.map(is_missing).to_numpy().all(axis=1)
    if isinstance(Xm, pd.Series):
        return Xm.map(is_missing).to_numpy(dtype=bool)
    if sp.issparse(Xm):
        return np.zeros(Xm.shape[0], dtype=bool)
    arr = np.asarray(Xm, dtype=object) if not isinstance(Xm, np.ndarray) else Xm
    if arr.dtype.kind == "f":
        return np.isnan(arr.reshape(arr.shape[0], -1)).all(axis=1)
    if arr.dtype == object:
        if arr.ndim == 1:
            return np.array([is_missing(v) for v in arr], dtype=bool)
        flat = arr.reshape(arr.shape[0], -1)
        return np.array([all(is_missing(v) for v in row) for row in flat], dtype=bool)
    return np.zeros(arr.shape[0], dtype=bool)


def check_table(est, X, *, reset):
    """Check that ``X`` is a 2-D table; record (``reset``) or compare its width."""
    name = type(est).__name__
    if sp.issparse(X):
        X = X.tocsr()
    elif not isinstance(X, pd.DataFrame):
        X = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2D table (a DataFrame with one column per "
                f"modality item, or a 2D array), got {X.ndim}D data instead. "
                "Reshape your data either using array.reshape(-1, 1) if it "
                "has a single feature or array.reshape(1, -1) if it contains "
                "a single sample."
            )
        if np.iscomplexobj(X):
            raise ValueError("Complex data not supported")
    if X.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
            f"of 1 is required by {name}."
        )
    if X.shape[1] == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
            f"of 1 is required by {name}."
        )
    if reset:
        est.n_features_in_ = X.shape[1]
        if isinstance(X, pd.DataFrame):
            est.feature_names_in_ = np.asarray(X.columns, dtype=object)
        elif hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    else:
        if X.shape[1] != est.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {name} is expecting "
                f"{est.n_features_in_} features as input."
            )
        if hasattr(est, "feature_names_in_") and isinstance(X, pd.DataFrame):
            missing = set(est.feature_names_in_) - set(X.columns)
            if missing:
                raise ValueError(
                    f"X lacks the columns {sorted(map(str, missing))} that "
                    f"{name} was fitted with"
                )
    return X
