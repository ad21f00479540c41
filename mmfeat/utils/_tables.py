"""Tables of modality columns: selecting a modality, finding absent rows.

Shared by the model-level fusion ensembles, cross-modal retrieval and batch
scoring, which all take one table with a column (or several) per modality.
"""

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils import check_array

from mmfeat.exceptions import InputError
from mmfeat.utils._items import is_missing
from mmfeat.utils._sklearn_compat import _safe_indexing, validate_data

__all__ = ["absent_items", "check_table", "n_rows", "select_columns", "take_rows"]


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
    # pandas' isna is is_missing, vectorised (None, NaN, pd.NA, NaT)
    if isinstance(Xm, pd.DataFrame):
        return Xm.isna().to_numpy().all(axis=1)
    if isinstance(Xm, pd.Series):
        return Xm.isna().to_numpy(dtype=bool)
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
    """Check that ``X`` is a 2-D table; record (``reset``) or compare its width.

    scikit-learn's own checks do it, with their messages: ``check_array``
    (2-D, not empty, not complex; any dtype, NaN allowed: items may be
    paths, texts or missing) and ``validate_data(skip_check_array=True)``
    for ``n_features_in_`` and ``feature_names_in_``. A DataFrame comes back
    as it is (columns are selected by name); anything else as an array.
    """
    if sp.issparse(X):
        X = X.tocsr()
    checked = check_array(
        X,
        accept_sparse="csr",
        dtype=None,
        ensure_all_finite=False,
        estimator=est,
    )
    if not isinstance(X, pd.DataFrame) and not sp.issparse(X):
        X = checked
    validate_data(est, X, skip_check_array=True, reset=reset)
    return X


def n_rows(X):
    """Number of rows of a table, column, list or array."""
    return X.shape[0] if hasattr(X, "shape") else len(X)


def take_rows(X, rows):
    """Rows ``rows`` (integer positions) of a table, column or array."""
    if isinstance(X, list):
        return [X[i] for i in rows]
    return _safe_indexing(X, rows, axis=0)
