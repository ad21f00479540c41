"""Read a column in batches, encode the readable items, keep rows aligned."""

import numpy as np
from tqdm import tqdm

from mmfeat.utils._parallel import map_items

__all__ = ["transform_in_batches"]


def transform_in_batches(
    items,
    read,
    encode,
    *,
    n_features,
    n_jobs=None,
    on_error="raise",
    verbose=0,
    desc=None,
    batch_size=256,
    threads_for_arrays=False,
):
    """Decode ``items`` batch by batch and encode each batch in one call.

    Parameters
    ----------
    items : list
        The column (``as_item_list`` output).
    read : callable
        ``read(item) -> value``; raises :class:`~mmfeat.exceptions.InputError`
        for a bad item. Runs in threads (``n_jobs``).
    encode : callable
        ``encode(list_of_values)`` -> array of shape (len, n_features), or a
        list of per-item outputs when ``n_features`` is None.
    n_features : int or None
        Output width; ``None`` gives an object array of per-item outputs.
    n_jobs, on_error, verbose, desc, batch_size
        Threads for ``read``; bad-item policy (see ``map_items``); progress
        bar; its label; items per batch (bounds memory).
    threads_for_arrays : bool, default=False
        Run ``read`` in the threads for decoded arrays too (see
        ``map_items``): for a ``read`` that computes, not only decodes.

    Returns
    -------
    out : ndarray
        (n_items, n_features) float64 with NaN rows for missing and bad
        items, or an object array with ``None`` there.
    errors : list of ItemError
        Bad items turned into missing rows (``on_error="missing"``).
    """
    n = len(items)
    if n_features is None:
        out = np.empty(n, dtype=object)
    else:
        out = np.full((n, n_features), np.nan, dtype=np.float64)
    errors = []
    bar = tqdm(total=n, desc=desc, disable=not verbose, unit="item")
    try:
        for start in range(0, n, batch_size):
            chunk = items[start : start + batch_size]
            values, errs = map_items(
                read,
                chunk,
                n_jobs=n_jobs,
                on_error=on_error,
                row_offset=start,
                threads_for_arrays=threads_for_arrays,
            )
            errors.extend(errs)
            rows = [i for i, v in enumerate(values) if v is not None]
            if rows:
                encoded = encode([values[i] for i in rows])
                if n_features is None:
                    for i, e in zip(rows, encoded):
                        out[start + i] = e
                else:
                    out[[start + i for i in rows]] = encoded
            bar.update(len(chunk))
    finally:
        bar.close()
    return out, errors
