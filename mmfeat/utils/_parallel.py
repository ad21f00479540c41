"""Apply a per-item function over a column, in parallel, with error policy."""

import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import cv2
import numpy as np
from joblib import Parallel, cpu_count, delayed, effective_n_jobs
from tqdm import tqdm

from mmfeat.exceptions import InputError
from mmfeat.utils._item_errors import ItemError, report_item_errors
from mmfeat.utils._items import is_missing

__all__ = ["ItemError", "in_background", "map_items", "prefetch_batches"]


def _call(func, row, item):
    try:
        return func(item), None
    except InputError as exc:
        return None, ItemError(row, exc.source, exc.reason)


def _call_chunk(func, chunk):
    return [_call(func, row, item) for row, item in chunk]


def _chunks(todo, n_workers):
    # A few chunks per worker: per-item dispatch costs more than decoding a
    # small JPEG, and chunks still balance uneven items.
    n_chunks = min(len(todo), 4 * n_workers)
    size = -(-len(todo) // n_chunks)
    return [todo[i : i + size] for i in range(0, len(todo), size)]


def map_items(
    func,
    items,
    *,
    n_jobs=None,
    verbose=0,
    desc=None,
    on_error="raise",
    prefer="threads",
    row_offset=0,
    threads_for_arrays=False,
):
    """Apply ``func`` to each non-missing item, keeping rows aligned.

    Parameters
    ----------
    func : callable
        ``func(item) -> value``; raises :class:`InputError` for a bad item.
    items : list
        The column, as returned by ``as_item_list``.
    n_jobs : int, default=None
        joblib workers; ``None`` means 1 unless a joblib context says more.
    verbose : int, default=0
        Show a tqdm progress bar when > 0.
    desc : str, default=None
        Progress bar label.
    on_error : {"raise", "missing"}, default="raise"
        ``"raise"``: the first bad item (in row order) raises ``InputError``
        naming its row. ``"missing"``: a bad item becomes ``None``; it is in
        the returned errors and reported to the open
        :func:`~mmfeat.collect_item_errors` log of the calling thread.
    prefer : {"threads", "processes"}, default="threads"
        joblib backend preference; decoders release the GIL, so threads
        avoid copying items between processes.
    row_offset : int, default=0
        Added to row numbers in errors (for chunked callers).
    threads_for_arrays : bool, default=False
        Use the workers for a column of decoded arrays too. By default such
        a column runs in the calling thread, which suits a ``func`` that
        only decodes (nothing to overlap); a ``func`` that computes per item
        (SIFT descriptors) sets it.

    Returns
    -------
    results : list
        One entry per item: ``func(item)``, or ``None`` for missing/bad items.
    errors : list of ItemError
        Bad items, in row order (empty with ``on_error="raise"``).
    """
    n = len(items)
    results = [None] * n
    errors = []
    todo = [(i, it) for i, it in enumerate(items) if not is_missing(it)]
    bar = tqdm(total=n, desc=desc, disable=not verbose, unit="item")
    bar.update(n - len(todo))
    rows = [(row_offset + i, it) for i, it in todo]
    # never more threads than cores, whatever n_jobs a model file carries
    n_workers = max(1, min(effective_n_jobs(n_jobs), cpu_count()))
    if not threads_for_arrays and all(isinstance(it, np.ndarray) for _, it in todo):
        n_workers = 1  # decoded arrays: nothing to overlap, threads only cost
    cv_threads = None
    if n_workers == 1 or len(todo) < 2:
        chunks = (_call_chunk(func, [r]) for r in rows)
    else:
        if prefer == "threads":
            # our threads already use every core: OpenCV's own thread pool
            # inside each decode/resize would only oversubscribe them
            cv_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
        chunks = Parallel(n_jobs=n_workers, prefer=prefer, return_as="generator")(
            delayed(_call_chunk)(func, c) for c in _chunks(rows, n_workers)
        )
    outputs = (out for chunk in chunks for out in chunk)
    try:
        for (i, _item), (value, err) in zip(todo, outputs):
            bar.update(1)
            if err is None:
                results[i] = value
            elif on_error == "raise":
                raise InputError(err.reason, row=err.row, source=err.source)
            else:
                errors.append(err)
        report_item_errors(errors)
    finally:
        bar.close()
        outputs.close()
        if hasattr(chunks, "close"):
            chunks.close()
        if cv_threads is not None:
            cv2.setNumThreads(cv_threads)
    return results, errors


def prefetch_batches(
    make_func, items, batch_size, *, n_jobs=None, on_error="raise", ahead=2
):
    """Map over ``items`` batch by batch, decoding ``ahead`` batches in front.

    One thread pool serves the whole column, so the workers never wait at a
    batch boundary for the slowest item of the batch (as one
    :func:`map_items` call per batch would), and no pool is started per
    batch.

    Parameters
    ----------
    make_func : callable
        ``make_func(start, chunk) -> (func, state)``: the per-item function
        of the batch starting at row ``start`` (it may write into a buffer
        that ``state`` holds) and that state.
    items : list
        The column.
    batch_size : int
        Rows per batch.
    n_jobs : int, default=None
        Worker threads, joblib semantics.
    on_error : {"raise", "missing"}, default="raise"
        As in :func:`map_items`.
    ahead : int, default=2
        Batches submitted before the one being yielded is complete.

    Yields
    ------
    start, state, values, errors
        Per batch, in order: ``values`` has one entry per row (``None`` for
        missing or bad items), ``errors`` the batch's ItemErrors.
    """
    n_workers = effective_n_jobs(n_jobs)
    pool = ThreadPoolExecutor(n_workers) if n_workers > 1 else None
    starts = iter(range(0, len(items), batch_size))
    pending = deque()

    def submit(start):
        chunk = items[start : start + batch_size]
        func, state = make_func(start, chunk)
        rows = [(start + k, it) for k, it in enumerate(chunk) if not is_missing(it)]
        futures = None
        if pool is not None and rows:
            futures = [
                pool.submit(_call_chunk, func, c) for c in _chunks(rows, n_workers)
            ]
        return start, len(chunk), func, state, rows, futures

    cv_threads = None
    if pool is not None:
        cv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # see map_items
    try:
        for start in islice(starts, max(1, ahead)):
            pending.append(submit(start))
        while pending:
            start, n, func, state, rows, futures = pending.popleft()
            nxt = next(starts, None)
            if nxt is not None:
                pending.append(submit(nxt))
            if futures is None:
                outs = _call_chunk(func, rows)
            else:
                outs = [out for f in futures for out in f.result()]
            values, errors = [None] * n, []
            for (row, _item), (value, err) in zip(rows, outs):
                if err is None:
                    values[row - start] = value
                elif on_error == "raise":
                    raise InputError(err.reason, row=err.row, source=err.source)
                else:
                    errors.append(err)
            report_item_errors(errors)
            yield start, state, values, errors
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if cv_threads is not None:
            cv2.setNumThreads(cv_threads)


class _Failure:
    """An exception raised in the producer thread, to raise in the consumer."""

    def __init__(self, exc):
        self.exc = exc


_DONE = object()


def in_background(make_iter, *, depth=2, name="mmfeat-background"):
    """Iterate ``make_iter()`` in a thread, up to ``depth`` items ahead.

    The producer runs while the caller works on the item before, as a
    decoding stage runs ahead of a network's forward pass. An exception in
    the producer is raised in the caller at the item where it happened;
    closing the generator early (``break``, an error in the caller) stops
    the producer and waits for it.

    The producer's thread has no :func:`~mmfeat.collect_item_errors` log
    open: item errors it yields must be reported by the caller
    (:func:`~mmfeat.utils._item_errors.report_item_errors`), in the thread
    where the log is.

    Parameters
    ----------
    make_iter : callable
        ``make_iter() -> iterator``, called in the producer thread.
    depth : int, default=2
        Items produced ahead of the one the caller holds.
    name : str, default="mmfeat-background"
        The producer thread's name.

    Yields
    ------
    item
        The items of ``make_iter()``, in order.
    """
    q = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(obj):
        while not stop.is_set():
            try:
                q.put(obj, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            for item in make_iter():
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()
