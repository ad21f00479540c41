"""Ranking metrics for label-defined relevance."""

import numpy as np

from mmfeat.exceptions import ParameterError

__all__ = ["mean_average_precision", "precision_at_k", "recall_at_k"]


def _check(y_query, y_gallery, ranking, n_relevant):
    y_query = np.asarray(y_query)
    y_gallery = np.asarray(y_gallery)
    ranking = np.asarray(ranking)
    if ranking.ndim != 2 or ranking.shape[0] != len(y_query):
        raise ParameterError(
            f"ranking must have one row per query ({len(y_query)}); got shape "
            f"{ranking.shape}"
        )
    if ranking.size and not np.issubdtype(ranking.dtype, np.integer):
        raise ParameterError("ranking must hold integer gallery positions")
    valid = ranking >= 0  # -1 pads rows that retrieved fewer items
    if ranking.size and ranking.max() >= len(y_gallery):
        raise ParameterError(
            f"ranking refers to gallery position {int(ranking.max())} but the "
            f"gallery has {len(y_gallery)} items"
        )
    relevant = np.zeros(ranking.shape, dtype=bool)
    relevant[valid] = (
        y_gallery[ranking[valid]]
        == np.repeat(y_query, ranking.shape[1]).reshape(ranking.shape)[valid]
    )
    if n_relevant is None:
        labels, counts = np.unique(y_gallery, return_counts=True)
        lookup = dict(zip(labels.tolist(), counts.tolist()))
        n_relevant = np.array([lookup.get(v, 0) for v in y_query.tolist()])
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    if n_relevant.shape != (len(y_query),):
        raise ParameterError(
            f"n_relevant must have one entry per query; got shape {n_relevant.shape}"
        )
    return relevant, n_relevant


def _k(k, width):
    if k is None:
        return width
    if not (isinstance(k, (int, np.integer)) and k > 0):
        raise ParameterError(f"k must be a positive int or None; got {k!r}")
    return min(int(k), width)


def mean_average_precision(y_query, y_gallery, ranking, *, k=None, n_relevant=None):
    """Mean over queries of the average precision of their rankings.

    A gallery item is relevant to a query when their labels are equal. The
    average precision of one query is ``sum_i P@i * rel_i / R``, over the
    ranks ``i`` of the first ``k`` results, with ``R`` its number of relevant
    gallery items (at most ``k`` when ``k`` is given: "MAP@k").

    Parameters
    ----------
    y_query : array-like of shape (n_queries,)
        Label of each query.
    y_gallery : array-like of shape (n_gallery,)
        Label of each gallery item.
    ranking : array-like of int, shape (n_queries, n_ranked)
        Gallery positions, best first, per query (-1 pads shorter lists).
    k : int, default=None
        Cut-off; ``None`` uses every ranked item.
    n_relevant : array-like of shape (n_queries,), default=None
        Relevant items per query; default the gallery items with the query's
        label. Pass it when a query is left out of its own gallery (one
        fewer relevant item).

    Returns
    -------
    map : float
        Queries with no relevant item count as 0.

    Examples
    --------
    >>> mean_average_precision(["a"], ["a", "b", "a"], [[1, 0, 2]])
    0.5833333333333333
    """
    relevant, n_rel = _check(y_query, y_gallery, ranking, n_relevant)
    cut = k is not None
    k = _k(k, relevant.shape[1])
    rel = relevant[:, :k]
    hits = np.cumsum(rel, axis=1)
    prec = hits / np.arange(1, k + 1)
    denom = np.minimum(n_rel, k) if cut else n_rel
    ap = np.divide(
        (prec * rel).sum(axis=1), denom, out=np.zeros(len(n_rel)), where=denom > 0
    )
    return float(ap.mean()) if len(ap) else 0.0


def precision_at_k(y_query, y_gallery, ranking, k):
    """Mean share of relevant items among each query's first ``k`` results.

    Examples
    --------
    >>> precision_at_k(["a", "b"], ["a", "b", "a"], [[1, 0], [1, 2]], k=2)
    0.5
    """
    relevant, _ = _check(y_query, y_gallery, ranking, np.zeros(len(y_query)))
    k = _k(k, relevant.shape[1])
    return float(relevant[:, :k].sum(axis=1).mean() / k) if len(relevant) else 0.0


def recall_at_k(y_query, y_gallery, ranking, k, *, n_relevant=None):
    """Mean share of each query's relevant gallery items found in the first ``k``.

    Examples
    --------
    >>> recall_at_k(["a"], ["a", "b", "a"], [[0, 1, 2]], k=2)
    0.5
    """
    relevant, n_rel = _check(y_query, y_gallery, ranking, n_relevant)
    k = _k(k, relevant.shape[1])
    found = relevant[:, :k].sum(axis=1)
    rec = np.divide(found, n_rel, out=np.zeros(len(n_rel)), where=n_rel > 0)
    return float(rec.mean()) if len(rec) else 0.0
