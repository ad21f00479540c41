"""Find mmfeat's public estimators, so checks cover new ones automatically."""

import importlib
import inspect
import pkgutil

from sklearn.base import BaseEstimator

from mmfeat.utils._tags import get_item_tags

__all__ = ["all_estimators", "is_raw_input", "item_modality"]

# Subpackages whose import needs an optional extra; skipped when it is absent.
_OPTIONAL = {"torch"}


def item_modality(estimator):
    """The modality of the raw items an estimator (or estimator class) reads.

    Raw-input estimators (readers, extractors, augmenters) declare it in
    their tags (``get_tags(est).item_tags``, see :class:`mmfeat.utils.Tags`):
    ``"image"``, ``"audio"`` or ``"text"``. Any other estimator gives
    ``None``. A class is asked through an instance built with its first
    test parameters (or its defaults).

    Examples
    --------
    >>> from mmfeat.features.text import TfidfExtractor
    >>> item_modality(TfidfExtractor), item_modality(TfidfExtractor())
    ('text', 'text')
    """
    if isinstance(estimator, type):
        try:
            params = (getattr(estimator, "get_test_params", lambda: [{}])() or [{}])[0]
            estimator = estimator(**params)
        except TypeError:  # required parameters and no test parameters
            return None
    return get_item_tags(estimator).modality


def is_raw_input(estimator):
    """Return True for estimators (or classes) whose ``X`` is a column of raw items.

    scikit-learn's checks do not apply to them and mmfeat's own checks in
    :mod:`mmfeat.utils.estimator_checks` do; see :func:`item_modality`.
    """
    return item_modality(estimator) is not None


def all_estimators(type_filter=None):
    """Return ``(name, class)`` for every public estimator in mmfeat.

    An estimator is public when a public (sub)package lists it in ``__all__``.

    Parameters
    ----------
    type_filter : {"raw", "matrix"}, default=None
        ``"raw"``: only raw-input estimators (see :func:`is_raw_input`);
        ``"matrix"``: only those that take a 2-D numeric matrix; ``None``: all.

    Returns
    -------
    estimators : list of (str, type)
        Sorted by name, without duplicates.

    Examples
    --------
    >>> names = [name for name, _ in all_estimators("raw")]
    >>> "ImageReader" in names
    True
    """
    import mmfeat

    found = {}
    modules = [mmfeat]
    for info in pkgutil.walk_packages(mmfeat.__path__, prefix="mmfeat."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError as exc:  # an optional extra is not installed
            if getattr(exc, "name", None) in _OPTIONAL:
                continue
            raise
    for module in modules:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and not inspect.isabstract(obj)
                and not name.startswith("_")
            ):
                found[name] = obj
    items = sorted(found.items())
    if type_filter == "raw":
        items = [(n, c) for n, c in items if is_raw_input(c)]
    elif type_filter == "matrix":
        items = [(n, c) for n, c in items if not is_raw_input(c)]
    elif type_filter is not None:
        raise ValueError(
            f"type_filter must be None, 'raw' or 'matrix'; got {type_filter!r}"
        )
    return items
