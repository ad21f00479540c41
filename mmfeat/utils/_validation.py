"""Parameter checks that ``_parameter_constraints`` cannot express.

scikit-learn's constraints check a parameter's type and range; a pair of
sizes (``image_size``, ``pixels_per_cell``, ``size``, ...) can only be
declared as ``[tuple, list]`` there, and its two values are checked here, in
``fit``, with one message for all of them.
"""

import numbers
import warnings

import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets

from mmfeat.exceptions import ParameterError

__all__ = ["check_class_target", "check_pair"]


def check_pair(
    value,
    name,
    *,
    low=1,
    high=None,
    allow_none=False,
    square=False,
    labels=("height", "width"),
):
    """``value`` as a pair of ints in ``[low, high]``, else :class:`ParameterError`.

    Parameters
    ----------
    value : object
        The parameter's value: a tuple or list of two integers (NumPy
        integers too; not booleans).
    name : str
        The parameter's name, for the message.
    low : int, default=1
        Smallest value allowed for each of the two.
    high : int, default=None
        Largest value allowed for each; ``None``: no upper bound.
    allow_none : bool, default=False
        Accept ``None`` (and return it).
    square : bool, default=False
        Accept one integer, the side of a square: ``n`` is ``(n, n)``.
    labels : tuple of str, default=("height", "width")
        What the two values are, for the message: ``("rows", "cols")`` for
        cells.

    Returns
    -------
    pair : tuple of int or None
        ``(int, int)``, or None when ``value`` is None and that is allowed.

    Raises
    ------
    ParameterError
        The message names the parameter, what is allowed and what was given.

    Examples
    --------
    >>> check_pair([32, 48], "image_size")
    (32, 48)
    >>> check_pair(224, "image_size", square=True)
    (224, 224)
    >>> check_pair((0, 8), "pixels_per_cell", labels=("rows", "cols"))
    Traceback (most recent call last):
    ...
    mmfeat.exceptions.ParameterError: pixels_per_cell must be a (rows, cols) \
pair of integers, each >= 1; got (0, 8)
    """
    if value is None and allow_none:
        return None

    def ok(v):
        return (
            isinstance(v, numbers.Integral)
            and not isinstance(v, bool)
            and v >= low
            and (high is None or v <= high)
        )

    if square and ok(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(ok, value)):
        return int(value[0]), int(value[1])
    bounds = f">= {low}" if high is None else f"from {low} to {high}"
    allowed = [
        "None" if allow_none else "",
        "an integer (the side of a square)" if square else "",
        f"a ({labels[0]}, {labels[1]}) pair of integers",
    ]
    raise ParameterError(
        f"{name} must be {' or '.join(a for a in allowed if a)}, each {bounds}; "
        f"got {value!r}"
    )


def check_class_target(est, y):
    """``y`` as a 1-D array of class labels, with scikit-learn's messages."""
    name = type(est).__name__
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. "
            "Please change the shape of y to (n_samples,), for example "
            "using ravel().",
            DataConversionWarning,
            stacklevel=4,
        )
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {y.shape}")
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        raise ValueError("Input y contains NaN or infinity.")
    check_classification_targets(y)
    return y
