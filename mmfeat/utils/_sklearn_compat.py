"""The one place where mmfeat imports scikit-learn's private helpers.

scikit-learn's parameter validation (``_fit_context``, ``Interval``,
``StrOptions``) and tags are not public API; importing them in one module keeps
a future scikit-learn change to a one-file fix (imbalanced-learn does the same
through ``sklearn-compat``). (:mod:`mmfeat.exceptions` imports
``InvalidParameterError`` itself, to avoid an import cycle.)

``_fit_context`` and ``validate_params`` here are scikit-learn's, with one
change: a bad parameter raises :class:`mmfeat.ParameterError` (a subclass of
scikit-learn's ``InvalidParameterError``, with the same message), so every
bad parameter anywhere in mmfeat is caught by one type.
"""

import functools

from sklearn.base import _fit_context as _sklearn_fit_context
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Integral,
    Interval,
    InvalidParameterError,
    Options,
    Real,
    RealNotInt,
    StrOptions,
    generate_invalid_param_val,
    make_constraint,
)
from sklearn.utils._param_validation import validate_params as _sklearn_validate_params
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted, validate_data

from mmfeat.exceptions import ParameterError

__all__ = [
    "_BaseComposition",
    "_safe_indexing",
    "HasMethods",
    "Integral",
    "Interval",
    "InvalidParameterError",
    "Options",
    "Real",
    "RealNotInt",
    "StrOptions",
    "_fit_context",
    "check_is_fitted",
    "generate_invalid_param_val",
    "make_constraint",
    "validate_data",
    "validate_params",
]


def _raising_parameter_error(checked, wrapped):
    """``checked`` (a validating wrapper of ``wrapped``) raising ParameterError."""

    @functools.wraps(wrapped)
    def wrapper(*args, **kwargs):
        try:
            return checked(*args, **kwargs)
        except InvalidParameterError as exc:
            if isinstance(exc, ParameterError):
                raise
            # same message; the traceback still shows where it was found
            raise ParameterError(str(exc)).with_traceback(exc.__traceback__) from None

    return wrapper


def _fit_context(*, prefer_skip_nested_validation):
    """scikit-learn's ``_fit_context``, raising :class:`mmfeat.ParameterError`.

    Decorate ``fit`` (and ``fit_transform``, ``fit_resample``, ... when they
    do not call ``fit``): the estimator's ``_parameter_constraints`` are
    checked first, and a bad parameter, whether found there or by a nested
    scikit-learn estimator or function, raises ``ParameterError`` with
    scikit-learn's message.

    Parameters
    ----------
    prefer_skip_nested_validation : bool
        As in scikit-learn: True skips the validation of inner estimators
        and functions called during fit; False for estimators given other
        estimators as parameters.

    Returns
    -------
    decorator : callable
        Applied to the fit method.
    """

    def decorator(fit_method):
        checked = _sklearn_fit_context(
            prefer_skip_nested_validation=prefer_skip_nested_validation
        )(fit_method)
        return _raising_parameter_error(checked, fit_method)

    return decorator


def validate_params(parameter_constraints, *, prefer_skip_nested_validation):
    """scikit-learn's ``validate_params``, raising :class:`mmfeat.ParameterError`.

    Decorate a public function: its arguments are checked against
    ``parameter_constraints`` (a dict of argument name to a list of
    constraints, as in ``_parameter_constraints``) on every call.

    Parameters
    ----------
    parameter_constraints : dict
        Constraints of the function's arguments.
    prefer_skip_nested_validation : bool
        As in scikit-learn.

    Returns
    -------
    decorator : callable
        Applied to the function.
    """

    def decorator(func):
        checked = _sklearn_validate_params(
            parameter_constraints,
            prefer_skip_nested_validation=prefer_skip_nested_validation,
        )(func)
        return _raising_parameter_error(checked, func)

    return decorator
