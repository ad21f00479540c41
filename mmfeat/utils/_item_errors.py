"""The item-error channel: bad items reported to whoever asked, at any n_jobs.

An extractor with ``on_error="missing"`` turns a bad item into a missing row.
*Which* rows those were travels through this channel, not through attributes
on the estimator (a worker process or a Dask worker sets attributes on its own
copy, and the caller never sees them):

- :func:`collect_item_errors` opens a log in the calling thread;
- the per-item loops (:func:`~mmfeat.utils._parallel.map_items` and
  :func:`~mmfeat.utils._parallel.prefetch_batches`) report each refused item
  to the innermost open log of their thread with :func:`report_item_errors`;
- composites that run parts in parallel wrap each job with
  :func:`collecting`, so the job returns its errors with its result, and
  report them again in the caller with :func:`unpack_collected` (with the
  part's name, and the rows translated to the caller's rows).

That is the same path whatever carries the job: a thread, a loky process or
a Dask worker, because the errors come back in the job's return value.

The same scopes carry, for the feature-level fuser only, which rows each
block imputed (``presence``): the fuser's blocks report it and
:meth:`~mmfeat.fusion.MultimodalFuser.transform_with_presence` reads it.
"""

from collections.abc import Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

import numpy as np

from mmfeat.exceptions import InputError

__all__ = [
    "ItemError",
    "ItemErrorLog",
    "capture_item_errors",
    "collect_item_errors",
    "collecting",
    "report_item_errors",
    "report_presence",
    "unpack_collected",
]


class ItemError(NamedTuple):
    """One refused item.

    Attributes
    ----------
    row : int
        Position of the item's row in the ``X`` of the outermost call that
        reported it (a fusion model translates its parts' rows to its own).
    source : str
        The file, ``"bytes"``, ``"array"`` or the column it came from.
    reason : str
        Why it was refused.
    modality : str or None
        The modality (block or ensemble member) that read it, ``None`` for a
        lone extractor; nested fusion models join names with ``"__"``, as
        ``set_params`` does (``"image__hog"``).
    """

    row: int
    source: str
    reason: str
    modality: str | None = None


class ItemErrorLog(Sequence):
    """The errors reported inside one :func:`collect_item_errors` block.

    A read-only sequence of :class:`ItemError` in the order they were
    reported, each at most once (an extractor that reads its training items
    twice while fitting reports a bad one once).
    """

    def __init__(self):
        self._errors = []
        self._seen = set()
        self._presence = {}

    def _add(self, err):
        if err not in self._seen:
            self._seen.add(err)
            self._errors.append(err)

    def __getitem__(self, index):
        return self._errors[index]

    def __len__(self):
        return len(self._errors)

    def __repr__(self):
        return f"ItemErrorLog({self._errors!r})"

    @property
    def rows(self):
        """Sorted row numbers with at least one error."""
        return sorted({e.row for e in self._errors})

    def to_frame(self):
        """The errors as a DataFrame (``row``, ``modality``, ``source``, ``reason``)."""
        import pandas as pd

        return pd.DataFrame(
            [(e.row, e.modality, e.source, e.reason) for e in self._errors],
            columns=["row", "modality", "source", "reason"],
        )


# The open logs of this context, innermost last. A ContextVar (not a
# thread-local) so asyncio tasks each see their own, and a scope left out of
# order (a generator closed inside another block) restores exactly what it
# replaced. New threads start with no open log: a thread the caller starts
# reports nowhere unless it runs in a copy of the caller's context
# (``contextvars.copy_context().run``); mmfeat's own workers bring their
# errors back through their results instead.
_open_logs = ContextVar("mmfeat_item_error_logs", default=())


def _innermost():
    logs = _open_logs.get()
    return logs[-1] if logs else None


@contextmanager
def _scope(propagate):
    log = ItemErrorLog()
    token = _open_logs.set(_open_logs.get() + (log,))
    try:
        yield log
    finally:
        _open_logs.reset(token)
        outer = _innermost()
        if propagate and outer is not None:
            for err in log:
                outer._add(err)
            for name, mask in log._presence.items():
                outer._presence[name] = mask


def collect_item_errors():
    """Collect the items that estimators refused inside the ``with`` block.

    Extractors and readers with ``on_error="missing"`` turn a bad item (an
    unreadable or missing file, a truncated image, a WAV with a lying
    header, a value of the wrong type) into a missing row of their output.
    This context manager tells you which: every refused item is reported
    with its row, its source and the reason, at any ``n_jobs`` and whatever
    runs the work (threads, processes, a Dask cluster), because mmfeat's
    fusion models (:class:`~mmfeat.fusion.MultimodalFuser`,
    :class:`~mmfeat.fusion.LateFusionClassifier`,
    :class:`~mmfeat.fusion.ModalityStackingClassifier`) bring their parts'
    reports back with their results and give them the rows of their own
    ``X``. Blocks nest: an inner block's errors are also given to the outer
    one when it closes.

    What it cannot see: work that scikit-learn's own composites run in
    parallel (``ColumnTransformer``, ``FeatureUnion``, ``cross_val_score``
    or ``GridSearchCV`` with ``n_jobs > 1``: their workers' reports are not
    sent back; use mmfeat's fuser and ensembles, or ``n_jobs=1``), and
    threads you start yourself (run them in
    ``contextvars.copy_context()``). Rows are those of the ``X`` each
    estimator was given: inside a scikit-learn cross-validation, a fold's.

    Yields
    ------
    errors : ItemErrorLog
        Sequence of :class:`ItemError` ``(row, source, reason, modality)``;
        it fills while the block runs. ``errors.rows`` lists the bad rows,
        ``errors.to_frame()`` makes a table of them.

    Examples
    --------
    >>> import mmfeat
    >>> from mmfeat.io import ImageReader
    >>> reader = ImageReader(on_error="missing")
    >>> with mmfeat.collect_item_errors() as errors:
    ...     images = reader.fit_transform(["no/such/file.png", None])
    >>> list(images)
    [None, None]
    >>> [(e.row, e.source, e.reason) for e in errors]
    [(0, 'no/such/file.png', 'image file not found')]
    """
    return _scope(propagate=True)


def capture_item_errors():
    """Like :func:`collect_item_errors`, but keep the errors from outer scopes.

    For composites that translate their parts' rows and names before they
    report them again (with :func:`report_item_errors`).
    """
    return _scope(propagate=False)


def report_item_errors(errors, *, rows=None, modality=None):
    """Report refused items to the innermost open log of this thread.

    Parameters
    ----------
    errors : iterable of ItemError
        What a part refused, with the part's own row numbers.
    rows : array-like of int, default=None
        The caller's row of each of the part's rows (a part that saw only
        some rows); ``None`` keeps the numbers.
    modality : str, default=None
        Name to put in front of each error's modality (``"__"``-joined).

    Nothing happens when no log is open: nobody asked.
    """
    log = _innermost()
    if log is None:
        return
    for err in errors:
        if not isinstance(err, ItemError):
            err = ItemError(*err)
        if rows is not None:
            err = err._replace(row=int(rows[err.row]))
        if modality is not None:
            inner = err.modality
            err = err._replace(
                modality=modality if inner is None else f"{modality}__{inner}"
            )
        log._add(err)


def report_presence(name, present):
    """Report which rows of block ``name`` had features (True) in this call."""
    log = _innermost()
    if log is not None:
        log._presence[name] = np.asarray(present, dtype=bool)


def presence_of(log):
    """The presence masks reported in ``log``, by block name."""
    return dict(log._presence)


class _Collecting:
    """A job that returns ``(result, errors, presence)`` (picklable)."""

    def __init__(self, func):
        self.func = func

    def __call__(self, *args, **kwargs):
        with capture_item_errors() as log:
            result = self.func(*args, **kwargs)
        return result, list(log), dict(log._presence)


def collecting(func):
    """Wrap a job for a parallel worker so its item errors come back with it.

    ``collecting(func)(*args)`` returns ``(result, errors, presence)``; give
    the list of those to :func:`unpack_collected` in the caller.
    """
    return _Collecting(func)


def unpack_collected(outputs, *, modalities=None, rows=None):
    """Results of :func:`collecting` jobs, their errors reported here.

    Parameters
    ----------
    outputs : iterable of (result, errors, presence)
        What the jobs returned, in order.
    modalities : list of str or None, default=None
        The name of each job's part, put in front of its errors' modality.
    rows : list of array-like or None, default=None
        Per job, the caller's row of each of the job's rows.

    Returns
    -------
    results : list
        The jobs' results, in order.
    """
    results = []
    for k, (result, errors, presence) in enumerate(outputs):
        report_item_errors(
            errors,
            rows=None if rows is None else rows[k],
            modality=None if modalities is None else modalities[k],
        )
        for name, mask in presence.items():
            report_presence(name, mask)
        results.append(result)
    return results


@contextmanager
def in_callers_rows(present, rows, name):
    """Run a modality's pipeline on some rows; speak of the caller's rows.

    ``present`` are the positions (in the modality's ``Xm``) of the rows the
    pipeline gets, ``rows`` the caller's row of each row of ``Xm`` (None:
    the same). Items it refuses are reported under ``name`` with the
    caller's rows, and an :class:`InputError` it raises (``on_error="raise"``)
    names the caller's row, not its position among the rows it was given.
    """
    where = np.asarray(present) if rows is None else np.asarray(rows)[present]
    with capture_item_errors() as log:
        try:
            yield
        except InputError as exc:
            if exc.row is not None and 0 <= exc.row < len(where):
                raise exc.with_row(int(where[exc.row])).with_traceback(
                    exc.__traceback__
                ) from None
            raise
    report_item_errors(list(log), rows=where, modality=name)
