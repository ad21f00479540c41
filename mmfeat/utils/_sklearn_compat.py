"""The one place where mmfeat imports scikit-learn's private helpers.

scikit-learn's parameter validation (``_fit_context``, ``Interval``,
``StrOptions``) and tags are not public API; importing them in one module keeps
a future scikit-learn change to a one-file fix (imbalanced-learn does the same
through ``sklearn-compat``).
"""

from sklearn.base import _fit_context
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Integral,
    Interval,
    Options,
    Real,
    StrOptions,
    validate_params,
)
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "_BaseComposition",
    "_safe_indexing",
    "HasMethods",
    "Integral",
    "Interval",
    "Options",
    "Real",
    "StrOptions",
    "_fit_context",
    "check_is_fitted",
    "validate_data",
    "validate_params",
]
