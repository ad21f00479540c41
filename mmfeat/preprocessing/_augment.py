"""Shared machinery of the augmenters: which rows get copies, and the output.

An augmenter is an imbalanced-learn style *sampler*: it has ``fit_resample``
(and a ``fit`` that only checks), not ``transform``. Inside
:class:`imblearn.pipeline.Pipeline` a sampler runs while the pipeline is
fitted and is skipped by ``predict``/``score``, so augmented copies are added
to the training rows only. The subclasses decide how one item is read and
how one copy is made; this module chooses the source rows (per class, as
imbalanced-learn's ``RandomOverSampler`` does, or ``n_copies`` per row) and
puts the copies back into a container like the one given.
"""

import numbers

import numpy as np
import pandas as pd
from imblearn.utils import check_sampling_strategy
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._items import as_item_list, is_missing
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
)
from mmfeat.utils._state import CheckedStateMixin

__all__ = []

_STRATEGIES = {"auto", "minority", "not minority", "not majority", "all"}

#: Docstring fragments shared by the augmenters (imblearn's ``Substitution``).
_SHARED_DOC = {
    "column": """column : str or int, default=None
        Name of the DataFrame column to augment. ``None``: ``X`` is itself
        one column of items. With a name, ``X`` must be a DataFrame; each new
        row copies every other column of its source row (a title, a price,
        another modality) unchanged, and only ``column`` holds the augmented
        item.""",
    "n_copies": """n_copies : int, default=None
        When set (``k >= 1``), every row gets ``k`` augmented copies whatever
        its class (scarce data rather than imbalance), and
        ``sampling_strategy`` is ignored. The copies are appended pass by
        pass: one copy of every row, then a second, and so on.""",
    "sampling_strategy": (
        "sampling_strategy : float, str, dict or callable, "
        'default="auto"'
        """
        Used when ``n_copies`` is None: how many copies each class gets, with
        the over-sampling meaning of imbalanced-learn's
        ``RandomOverSampler``:

        - ``"auto"`` (= ``"not majority"``): every class but the largest is
          brought up to the size of the largest;
        - ``"minority"``, ``"not minority"``, ``"all"``: those classes are
          brought up to the size of the largest;
        - float (binary ``y`` only): the minority class is brought up to this
          fraction of the majority;
        - dict ``{class: n_rows_wanted}``: the number of rows each named
          class should have after resampling (not fewer than it has);
        - callable ``f(y) -> dict``, as imbalanced-learn allows.

        Source rows are drawn at random, with replacement, among the rows of
        their class."""
    ),
    "random_state": """random_state : int, RandomState instance or None, default=None
        Draws the source rows and every random transform. The same integer
        gives the same output.""",
    "attributes": """sampling_strategy_ : dict
        Number of new rows per class (with ``n_copies``: ``k`` times each
        class size; ``{}`` when ``y`` was None).
    sample_indices_ : ndarray of int, shape (n_samples_resampled,)
        Set by ``fit_resample``: the row of ``X`` (0-based position) each
        output row comes from. The first ``n_samples`` entries are
        ``0, 1, ..., n_samples - 1`` (the originals).
    augment_params_ : dict of str to ndarray of shape (n_new_rows,)
        Set by ``fit_resample``: the random parameters drawn for each new
        row, in order (its source row under ``"row"``);
        ``pandas.DataFrame(augment_params_)`` shows them as a table. Plain
        arrays, so a fitted pipeline saves with :func:`mmfeat.save`. Copies of missing
        items have their parameters drawn too, and unused.
    n_features_in_ : int
        Number of columns of ``X`` (1 for a column of items).""",
}


def _fill_doc(cls):
    """Insert the shared fragments in ``cls.__doc__`` (``%(name)s`` markers)."""
    return fill_doc(**_SHARED_DOC)(cls)


def _check_range(value, name):
    """Return ``value`` as a ``(low, high)`` pair of floats, or None.

    A single number ``v`` is the fixed range ``(v, v)``.
    """
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        pair = (float(value), float(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    ):
        pair = (float(value[0]), float(value[1]))
    else:
        raise ParameterError(
            f"{name} must be None, a number or a (low, high) pair of numbers; "
            f"got {value!r}"
        )
    if not all(np.isfinite(pair)) or pair[0] > pair[1]:
        raise ParameterError(f"{name} must be finite with low <= high; got {value!r}")
    return pair


class _BaseAugmenter(CheckedStateMixin, BaseEstimator):
    """Base of the augmenters: source rows, containers and parameter checks.

    Subclasses set their item tags (``with_item_tags``), ``_stack_ndim`` and implement
    ``_check_params`` (extra checks), ``_draw_params(rng, n)`` (a dict of
    per-copy arrays), ``_read(item)`` (decode one non-missing item) and
    ``_augment(data, item, params)`` (make one copy).
    """

    # imbalanced-learn's marker: ``imblearn.base.is_sampler`` is True
    _estimator_type = "sampler"

    _sampler_constraints = {
        "column": [str, Integral, None],
        "n_copies": [Interval(Integral, 1, None, closed="left"), None],
        "sampling_strategy": [
            Interval(Real, 0, 1, closed="right"),
            StrOptions(_STRATEGIES),
            dict,
            callable,
        ],
        "random_state": ["random_state"],
    }

    # ------------------------------------------------------------------
    # parameters
    # ------------------------------------------------------------------
    def _check_base_params(self):
        """What ``_parameter_constraints`` cannot say (checked after them)."""
        if isinstance(self.n_copies, (bool, np.bool_)):
            raise ParameterError(
                f"n_copies must be None or an int >= 1; got {self.n_copies!r}"
            )
        self._check_params()

    def _check_params(self):
        """Extra checks of the subclass."""

    # ------------------------------------------------------------------
    # input
    # ------------------------------------------------------------------
    def _items_of(self, X):
        """Return ``(items, column_name)`` of the column to augment."""
        if self.column is not None:
            if not isinstance(X, pd.DataFrame):
                raise ParameterError(
                    f"column={self.column!r} needs X to be a pandas DataFrame; "
                    f"got {type(X).__name__}. Pass column=None for a single "
                    "column of items."
                )
            if self.column not in X.columns:
                raise ParameterError(
                    f"column={self.column!r} is not a column of X; its columns "
                    f"are {list(X.columns)[:10]}"
                )
            return X[self.column].tolist(), self.column
        if isinstance(X, pd.DataFrame):
            if X.shape[1] != 1:
                raise ParameterError(
                    f"X is a DataFrame with {X.shape[1]} columns "
                    f"{list(X.columns)[:5]}; pass column=<name> to choose the "
                    "one to augment (the others are copied)."
                )
            return X.iloc[:, 0].tolist(), X.columns[0]
        return as_item_list(X, stack_ndim=self._stack_ndim), None

    @staticmethod
    def _labels(y, n):
        if y is None:
            return None
        y_arr = y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y)
        if y_arr.ndim != 1 or len(y_arr) != n:
            raise ParameterError(
                f"y must be 1-D with one label per row of X ({n} rows); got "
                f"shape {y_arr.shape}"
            )
        return y_arr

    def _strategy(self, y_arr, n):
        """Number of new rows per class: ``sampling_strategy_``."""
        if self.n_copies is not None:
            if y_arr is None:
                return {}
            classes, counts = np.unique(y_arr, return_counts=True)
            return {c: int(k) * int(self.n_copies) for c, k in zip(classes, counts)}
        if y_arr is None:
            raise ParameterError(
                "y is None: sampling_strategy needs class labels; pass y, or set "
                "n_copies to augment every row"
            )
        check_classification_targets(y_arr)
        try:
            strategy = check_sampling_strategy(
                self.sampling_strategy, y_arr, "over-sampling"
            )
        except ValueError as exc:
            raise ParameterError(
                f"sampling_strategy={self.sampling_strategy!r} cannot be used with "
                f"this y: {exc}"
            ) from None
        return {c: int(k) for c, k in strategy.items()}

    # ------------------------------------------------------------------
    # public API
    # ------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the parameters and compute ``sampling_strategy_``.

        Nothing is read or augmented: use :meth:`fit_resample`, which is what
        :class:`imblearn.pipeline.Pipeline` calls.

        Parameters
        ----------
        X : column of items, or DataFrame with ``column``
            The rows to be augmented.
        y : array-like of shape (n_samples,), default=None
            Class labels; may be None only when ``n_copies`` is set.

        Returns
        -------
        self : object
            This augmenter.
        """
        self._check_base_params()
        items, _ = self._items_of(X)
        y_arr = self._labels(y, len(items))
        self.sampling_strategy_ = self._strategy(y_arr, len(items))
        self.n_features_in_ = X.shape[1] if isinstance(X, pd.DataFrame) else 1
        return self

    def fit_resample(self, X, y=None):
        """Append augmented copies of chosen rows to ``X`` and ``y``.

        Parameters
        ----------
        X : column of items, or DataFrame with ``column``
            The rows to augment (see ``column``).
        y : array-like of shape (n_samples,), default=None
            Class labels; may be None only when ``n_copies`` is set.

        Returns
        -------
        X_resampled : same container as X
            The original rows first, unchanged and in order, then the new
            rows:

            - list or tuple in: list out;
            - 1-D object array in: 1-D object array out;
            - numeric stack in: numeric stack of the same dtype out when every
              copy has the rows' shape and a dtype safely cast to it, else a
              1-D object array of items;
            - Series in: Series (same name) out;
            - DataFrame in: DataFrame with the same columns out.

            pandas outputs have a fresh ``RangeIndex`` (``0 .. n - 1``: the
            original rows keep their positions, not their labels); map rows
            back with ``sample_indices_``.
        y_resampled : ndarray or pandas Series of shape (n_samples_resampled,)
            ``y`` followed by the label of each new row (its source row's). A
            Series stays a Series with a fresh ``RangeIndex``; other inputs
            give an ndarray. ``None`` when ``y`` was None (``n_copies`` only).
        """
        self.fit(X, y)
        items, name = self._items_of(X)
        n = len(items)
        y_arr = self._labels(y, n)
        rng = check_random_state(self.random_state)

        if self.n_copies is not None:
            src = np.tile(np.arange(n, dtype=np.intp), int(self.n_copies))
        else:
            parts = []
            for cls, n_new in self.sampling_strategy_.items():
                rows = np.flatnonzero(y_arr == cls)
                parts.append(rows[rng.randint(0, len(rows), size=n_new)])
            src = (
                np.concatenate(parts).astype(np.intp)
                if parts
                else np.empty(0, dtype=np.intp)
            )

        params = self._draw_params(rng, len(src))
        # Copies are made grouped by source row, so each source is decoded
        # once and only one decoded source is held at a time; every copy has
        # its own parameters, so the order of work does not change the output.
        copies = [None] * len(src)
        current_row, data = -1, None
        for j in np.argsort(src, kind="stable"):
            row = int(src[j])
            item = items[row]
            if is_missing(item):
                copies[j] = item  # a copy of a missing item stays missing
                continue
            if row != current_row:
                try:
                    data = self._read(item)
                except InputError as exc:
                    raise exc.with_row(row) from None
                current_row = row
            copies[j] = self._augment(data, item, {k: v[j] for k, v in params.items()})

        self.sample_indices_ = np.concatenate([np.arange(n, dtype=np.intp), src])
        self.augment_params_ = {
            "row": np.asarray(src),
            **{k: np.asarray(v) for k, v in params.items()},
        }
        X_res = self._assemble(X, items, name, src, copies)
        return X_res, self._assemble_y(y, y_arr, src)

    # ------------------------------------------------------------------
    # output
    # ------------------------------------------------------------------
    def _assemble(self, X, items, name, src, copies):
        new = np.empty(len(copies), dtype=object)
        new[:] = copies if copies else []
        if isinstance(X, pd.DataFrame):
            base = X.reset_index(drop=True)
            added = X.iloc[src].reset_index(drop=True)
            added[name] = pd.Series(new, dtype=object)
            return pd.concat([base, added], ignore_index=True)
        if isinstance(X, pd.Series):
            return pd.concat(
                [X.reset_index(drop=True), pd.Series(new, dtype=object, name=X.name)],
                ignore_index=True,
            )
        if isinstance(X, (list, tuple)):
            return list(X) + list(copies)
        if isinstance(X, np.ndarray) and X.dtype != object and X.dtype.kind not in "US":
            if all(
                isinstance(c, np.ndarray)
                and c.shape == X.shape[1:]
                and np.can_cast(c.dtype, X.dtype, "safe")
                for c in copies
            ):
                stack = np.empty((len(copies),) + X.shape[1:], dtype=X.dtype)
                for j, c in enumerate(copies):
                    stack[j] = c
                return np.concatenate([X, stack])
            out = np.empty(len(items) + len(copies), dtype=object)
            out[:] = items + list(copies)
            return out
        if isinstance(X, np.ndarray):
            out = np.empty(len(items) + len(copies), dtype=object)
            out[:] = items + list(copies)
            return out.reshape((-1,) + X.shape[1:]) if X.ndim == 2 else out
        return list(items) + list(copies)

    @staticmethod
    def _assemble_y(y, y_arr, src):
        if y is None:
            return None
        if isinstance(y, pd.Series):
            return pd.concat(
                [y.reset_index(drop=True), y.iloc[src].reset_index(drop=True)],
                ignore_index=True,
            )
        return np.concatenate([y_arr, y_arr[src]])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "sampler"
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = False
        return tags
