"""Fitted state that is checked whenever an estimator is rebuilt from a file.

A model file is hostile until checked. skops (and pickle) rebuild an
estimator with ``cls.__new__`` and ``__setstate__``; nothing then ties the
fitted arrays to the parameters, and the numba kernels size their buffers
from them. :class:`CheckedStateMixin` makes ``__setstate__`` the one place
where every mmfeat estimator validates its parameters and its own fitted
attributes (shapes, dtypes, ranges, sizes that must agree), so an edited or
corrupted file fails with a :class:`~mmfeat.exceptions.ModelStateError`
naming the estimator and the attribute, before any kernel runs.

The kernels' Python wrappers check their arrays as well
(:func:`check_array_arg`), so state changed after loading (``set_params``
on a fitted model) cannot reach a kernel either.
"""

import numbers

import numpy as np
from sklearn.exceptions import NotFittedError

from mmfeat.exceptions import ModelStateError
from mmfeat.utils._sklearn_compat import check_is_fitted

__all__ = [
    "CheckedStateMixin",
    "check_array_arg",
    "check_int_arg",
    "reviewed_setstate",
    "state_error",
]


def reviewed_setstate(cls):
    """Mark ``cls.__setstate__`` as reviewed: it runs no code the state chooses.

    :func:`mmfeat.load` trusts a class whose rebuilding runs a custom
    ``__setstate__`` only when the class that *defines* that method carries
    this mark for that very function, so moving or renaming code keeps saved
    models loadable, and a subclass that overrides ``__setstate__`` is not
    trusted until its own method is reviewed and marked.
    """
    method = vars(cls).get("__setstate__")
    if method is None:
        raise TypeError(f"{cls.__name__} defines no __setstate__ to mark")
    cls._mmfeat_reviewed_setstate = method
    return cls


def state_error(est, message):
    """A :class:`ModelStateError` that names the estimator."""
    return ModelStateError(
        f"{type(est).__name__}: {message}; the model file was edited or is "
        "corrupt, re-fit and re-save the model"
    )


@reviewed_setstate
class CheckedStateMixin:
    """Validate parameters and fitted state in ``__setstate__``.

    Subclasses put their consistency checks in ``_check_fitted_state``,
    which runs only on a fitted estimator, after ``_validate_params``.
    Raise with :func:`state_error`.
    """

    def __setstate__(self, state):
        super().__setstate__(state)
        try:
            check_is_fitted(self)
        except NotFittedError:
            return  # parameters are validated when it is fitted
        except Exception as exc:  # noqa: BLE001 - a broken state is a bad file
            raise state_error(self, f"cannot tell if it is fitted ({exc})") from None
        if hasattr(type(self), "_parameter_constraints"):
            try:
                self._validate_params()
            except (TypeError, ValueError) as exc:
                raise state_error(self, f"invalid parameter: {exc}") from None
        try:
            self._check_fitted_state()
        except ModelStateError:
            raise
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
            raise state_error(
                self, f"inconsistent fitted state ({type(exc).__name__}: {exc})"
            ) from None

    def _check_fitted_state(self):
        """Check the fitted attributes; the default checks nothing more."""


def check_int_arg(value, name, *, low=None, high=None, owner=None):
    """``value`` as an int in ``[low, high]``, else a clear error."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        value = int(value)
        ok = (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        where = f"{type(owner).__name__}." if owner is not None else ""
        raise ModelStateError(
            f"{where}{name} must be an integer in [{low}, {high}]; got {value!r}"
        )
    return value


def check_array_arg(
    arr, name, *, ndim=None, shape=None, dtype=None, finite=False, owner=None
):
    """Check an array handed to a kernel: type, ndim, shape, dtype, finiteness.

    ``shape`` may hold ``None`` for any size along an axis. Returns the array.
    """
    where = f"{type(owner).__name__}." if owner is not None else ""
    if not isinstance(arr, np.ndarray):
        raise ModelStateError(
            f"{where}{name} must be a numpy array; got {type(arr).__name__}"
        )
    if ndim is not None and arr.ndim != ndim:
        raise ModelStateError(
            f"{where}{name} must have {ndim} dimension(s); got shape {arr.shape}"
        )
    if shape is not None:
        want = tuple(shape)
        if len(want) != arr.ndim or any(
            w is not None and w != s for w, s in zip(want, arr.shape)
        ):
            shown = tuple("any" if w is None else w for w in want)
            raise ModelStateError(
                f"{where}{name} must have shape {shown}; got {arr.shape}"
            )
    if dtype is not None and arr.dtype != np.dtype(dtype):
        raise ModelStateError(
            f"{where}{name} must be of dtype {np.dtype(dtype)}; got {arr.dtype}"
        )
    if finite and arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        raise ModelStateError(f"{where}{name} holds NaN or infinite values")
    return arr
