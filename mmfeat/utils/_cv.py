"""Cross-validation folds shared by the fusion models and the quality tools."""

import numbers
import warnings

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, check_cv

from mmfeat.exceptions import ParameterError

__all__ = ["resolve_cv"]


def _group_splits(n_splits, y, groups):
    """Stratified folds that keep every group in one fold."""
    n_groups = len(np.unique(groups))
    splitter = StratifiedGroupKFold(n_splits=max(2, min(n_splits, n_groups)))
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The least populated class", category=UserWarning
        )
        return list(splitter.split(np.zeros((len(y), 1)), y, groups))


def resolve_cv(cv, y, groups=None):
    """Splits from ``cv`` (int, splitter or iterable), as a list.

    An int asks for stratified folds (stratified group folds when
    ``groups`` is given); when the least populated class has fewer members
    than that, the number of folds drops to its size (at least 2; a class
    with a single member then appears in one test fold).
    """
    if isinstance(cv, numbers.Integral) and groups is not None:
        if cv < 2:
            raise ParameterError(f"cv must be >= 2 folds or 'prefit'; got {cv!r}")
        return _group_splits(cv, y, groups)
    if isinstance(cv, numbers.Integral):
        if cv < 2:
            raise ParameterError(f"cv must be >= 2 folds or 'prefit'; got {cv!r}")
        codes = np.unique(y, return_inverse=True)[1]
        smallest = int(np.bincount(codes).min()) if len(y) else 0
        cv = StratifiedKFold(n_splits=max(2, min(cv, smallest)))
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="The least populated class", category=UserWarning
            )
            return list(cv.split(np.zeros((len(y), 1)), y))
    return list(
        check_cv(cv, y, classifier=True).split(np.zeros((len(y), 1)), y, groups)
    )
