"""Segmentation metrics: pixel accuracy, IoU, Dice, boundary F1, reports, plots.

Every metric takes ``y_true`` and ``y_pred`` as one integer label image
(H x W), a stack of them (N x H x W) or a sequence of them; images may differ
in size from row to row, but the two masks of one row must have the same
shape. Labels >= 1 are classes and truth pixels equal to ``ignore_label``
(default 0, "unlabelled", scikit-image's convention) are left out of every
count; ``ignore_label=None`` scores every pixel.

Counts are accumulated over all the pixels of all the images before a ratio
is taken (one dataset-level confusion matrix, as the PASCAL VOC benchmark
does), so a large image weighs more than a small one and a class that is
absent from one image does not make that image's score undefined.
``per_image=True`` instead scores each image on its own and averages over the
images (images where the score is undefined are left out of the mean).
"""

import inspect
import numbers

import numpy as np
import pandas as pd

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    Real,
    StrOptions,
    validate_params,
)

__all__ = [
    "adapted_rand_error",
    "boundary_f1",
    "dice_score",
    "iou_score",
    "make_segmentation_scorer",
    "mean_iou",
    "pixel_accuracy",
    "plot_segmentation",
    "segmentation_confusion",
    "segmentation_report",
    "variation_of_information",
]

#: Most distinct labels the per-class metrics accept (over all images).
MAX_LABELS = 65536
#: Most distinct labels :func:`segmentation_confusion` accepts: its dense
#: matrix has the square of this many entries (4096**2 int64 = 128 MiB).
MAX_CONFUSION_LABELS = 4096
# A lookup table instead of a binary search when labels are in [0, this).
_LUT_SIZE = 1 << 16

_AVERAGES = {"macro", "micro", "weighted"}
_MASKS = "no_validation"  # _as_pairs says what is wrong with them


# --------------------------------------------------------------------------
# input handling


def _as_masks(y, name):
    """A list of 2-D label arrays from one image, a stack or a sequence."""
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise InputError(f"{name} as a DataFrame must have one column of masks")
        y = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        y = list(y)
    if isinstance(y, np.ndarray) and y.dtype != object:
        if y.ndim == 2:
            return [y]
        if y.ndim == 3:
            return list(y)
        raise InputError(
            f"{name} must be one label image (H, W), a stack (N, H, W) or a "
            f"sequence of label images; got an array of shape {y.shape}"
        )
    try:
        return list(y)
    except TypeError:
        raise InputError(
            f"{name} must be a label image or a sequence of them; "
            f"got {type(y).__name__}"
        ) from None


def _as_mask(m, name, row):
    m = np.asarray(m)
    if m.ndim != 2:
        raise InputError(
            f"{name} must be an integer label image of shape (H, W); "
            f"got shape {m.shape}",
            row=row,
        )
    if m.dtype == bool:
        return m.view(np.uint8)
    if np.issubdtype(m.dtype, np.integer):
        if m.dtype.kind == "u" and m.dtype.itemsize >= 8:
            # np.bincount refuses uint64; labels past int64 are no class labels
            if m.size and m.max() > np.iinfo(np.int64).max:
                raise InputError(f"{name} holds labels above 2**63 - 1", row=row)
            return m.astype(np.int64)
        return m
    if np.issubdtype(m.dtype, np.floating):
        if not np.isfinite(m).all() or not np.array_equal(m, np.round(m)):
            raise InputError(
                f"{name} holds non-integer or non-finite values; a mask is an "
                "integer label image",
                row=row,
            )
        return m.astype(np.int64)
    raise InputError(
        f"{name} has dtype {m.dtype}; a mask is an integer label image", row=row
    )


def _as_pairs(y_true, y_pred):
    """Check ``y_true``/``y_pred`` and return a list of (truth, pred) arrays."""
    trues, preds = _as_masks(y_true, "y_true"), _as_masks(y_pred, "y_pred")
    if len(trues) != len(preds):
        raise InputError(
            f"y_true holds {len(trues)} label images but y_pred holds {len(preds)}"
        )
    pairs = []
    for row, (t, p) in enumerate(zip(trues, preds)):
        t, p = _as_mask(t, "y_true", row), _as_mask(p, "y_pred", row)
        if t.shape != p.shape:
            raise InputError(
                f"y_true has shape {t.shape} but y_pred has shape {p.shape}; "
                "the two masks of a row must have the same shape",
                row=row,
            )
        pairs.append((t, p))
    return pairs


def _scored(t, p, ignore_label):
    """The truth and predicted labels of the scored pixels, flat."""
    if ignore_label is None:
        return t.ravel(), p.ravel()
    keep = t != ignore_label
    return t[keep], p[keep]


def _present(v):
    """Sorted distinct values of an integer array (bincount when small)."""
    if v.size == 0:
        return np.empty(0, dtype=np.int64)
    lo, hi = int(v.min()), int(v.max())
    if lo >= 0 and hi < _LUT_SIZE:
        return np.flatnonzero(np.bincount(v, minlength=hi + 1))
    return np.unique(v).astype(np.int64)


def _data_labels(pairs, ignore_label, max_labels):
    """Labels of the scored truth pixels and of the predictions there."""
    labels = np.empty(0, dtype=np.int64)
    for row, (t, p) in enumerate(pairs):
        st, sp = _scored(t, p, ignore_label)
        labels = np.union1d(labels, np.union1d(_present(st), _present(sp)))
        if max_labels is not None and labels.size > max_labels:
            raise InputError(
                f"y_true and y_pred hold more than {max_labels} distinct labels "
                f"by this row (at least {labels.size}); a label image holds "
                "class labels, not arbitrary values (pass labels= to score a "
                "few of them)",
                row=row,
            )
    return labels


def _check_labels(labels, pairs, ignore_label, max_labels=MAX_LABELS):
    if labels is None:
        return _data_labels(pairs, ignore_label, max_labels)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not (
        np.issubdtype(labels.dtype, np.integer) or labels.size == 0
    ):
        raise ParameterError(
            "labels must be a 1-D sequence of integer labels; "
            f"got {labels.dtype} of shape {labels.shape}"
        )
    labels = labels.astype(np.int64)
    if np.unique(labels).size != labels.size:
        raise ParameterError(f"labels must be distinct; got {labels.tolist()}")
    if labels.size > max_labels:
        raise ParameterError(f"at most {max_labels} labels; got {labels.size}")
    return labels


def _index(v, labels):
    """Positions of ``v`` in ``labels`` (as given), ``len(labels)`` if absent."""
    n = labels.size
    if v.size == 0:
        return np.empty(0, dtype=np.intp)
    lo, hi = int(v.min()), int(v.max())
    if n and lo >= 0 and hi < _LUT_SIZE:
        lut = np.full(hi + 1, n, dtype=np.intp)
        inside = (labels >= 0) & (labels <= hi)
        lut[labels[inside]] = np.flatnonzero(inside)
        return lut[v]
    order = np.argsort(labels, kind="stable")
    ranked = labels[order]
    pos = np.searchsorted(ranked, v)
    pos = np.minimum(pos, max(n - 1, 0))
    found = ranked[pos] == v if n else np.zeros(v.shape, dtype=bool)
    return np.where(found, order[pos] if n else 0, n)


def _counts(pairs, labels, ignore_label):
    """Per-image counts: true positives, truth pixels and predicted pixels.

    Returns arrays of shape (n_images, n_labels) and the number of scored
    pixels and of correctly labelled pixels per image, shape (n_images,).
    """
    n = labels.size
    shape = (len(pairs), n)
    tp, n_true, n_pred = (np.zeros(shape, dtype=np.int64) for _ in range(3))
    n_scored = np.zeros(len(pairs), dtype=np.int64)
    n_correct = np.zeros(len(pairs), dtype=np.int64)
    for i, (t, p) in enumerate(pairs):
        st, sp = _scored(t, p, ignore_label)
        n_scored[i] = st.size
        n_correct[i] = np.count_nonzero(st == sp)
        ti, pi = _index(st, labels), _index(sp, labels)
        n_true[i] = np.bincount(ti, minlength=n + 1)[:n]
        n_pred[i] = np.bincount(pi, minlength=n + 1)[:n]
        tp[i] = np.bincount(ti[(ti == pi) & (ti < n)], minlength=n + 1)[:n]
    return tp, n_true, n_pred, n_scored, n_correct


def _ratio(num, den, zero_division):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, float(zero_division))
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nanmean(values, axis=None, zero_division=np.nan):
    """Mean of the non-NaN values; ``zero_division`` where there are none."""
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    total = np.where(ok, values, 0.0).sum(axis=axis)
    return _ratio(total, ok.sum(axis=axis), zero_division)[()]


def _scalar(x):
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


# --------------------------------------------------------------------------
# confusion matrix and per-class metrics


_COMMON = {
    "y_true": _MASKS,
    "y_pred": _MASKS,
    "ignore_label": [Integral, None],
}
_CLASS_METRIC = {
    **_COMMON,
    "labels": ["array-like", None],
    "average": [StrOptions(_AVERAGES), None],
    "zero_division": [Real],
    "per_image": ["boolean"],
}


@validate_params(
    {**_COMMON, "labels": ["array-like", None]}, prefer_skip_nested_validation=True
)
def segmentation_confusion(y_true, y_pred, *, labels=None, ignore_label=0):
    """Dataset-level pixel confusion matrix of label images.

    Parameters
    ----------
    y_true : ndarray of shape (H, W) or (N, H, W), or sequence of ndarray
        True label images (integer; ``ignore_label`` marks unlabelled pixels).
        Images may differ in size from row to row.
    y_pred : same as y_true
        Predicted label images, each the shape of its truth.
    labels : array-like of int, default=None
        Classes to count, in this order. ``None``: every label found in the
        scored truth pixels and in the predictions at those pixels, sorted.
        Pixels whose truth or prediction is not in ``labels`` are not counted
        (as in :func:`sklearn.metrics.confusion_matrix`).
    ignore_label : int or None, default=0
        Truth pixels with this label are not scored; ``None`` scores all.

    Returns
    -------
    labels : ndarray of shape (n_classes,)
        The classes, in the order of the matrix.
    confusion : ndarray of shape (n_classes, n_classes), dtype int64
        ``confusion[i, j]`` is the number of scored pixels, summed over all
        images, with truth ``labels[i]`` and prediction ``labels[j]``.

    Notes
    -----
    One ``np.bincount`` per image over the label indices; memory is the
    matrix plus a few arrays the size of one image. The matrix is dense, so
    at most ``MAX_CONFUSION_LABELS`` (4096) classes are accepted; the
    per-class metrics (:func:`iou_score`, ...) count per class and accept up
    to ``MAX_LABELS`` (65536).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[0, 1, 1], [2, 2, 2]])
    >>> p = np.array([[2, 1, 2], [2, 2, 1]])
    >>> labels, cm = segmentation_confusion(t, p)
    >>> labels.tolist(), cm.tolist()
    ([1, 2], [[1, 1], [1, 2]])
    """
    pairs = _as_pairs(y_true, y_pred)
    labels = _check_labels(labels, pairs, ignore_label, MAX_CONFUSION_LABELS)
    n = labels.size
    cm = np.zeros((n + 1) * (n + 1), dtype=np.int64)
    for t, p in pairs:
        st, sp = _scored(t, p, ignore_label)
        code = _index(st, labels) * (n + 1) + _index(sp, labels)
        cm += np.bincount(code, minlength=(n + 1) * (n + 1))
    return labels, cm.reshape(n + 1, n + 1)[:n, :n]


def _class_score(kind, pairs, labels, average, ignore_label, zero_division, per_image):
    labels = _check_labels(labels, pairs, ignore_label)
    tp, n_true, n_pred, _, _ = _counts(pairs, labels, ignore_label)
    if not per_image:
        tp, n_true, n_pred = (
            a.sum(axis=0, keepdims=True) for a in (tp, n_true, n_pred)
        )
    factor = 2 if kind == "dice" else 1
    if kind == "dice":
        den = n_true + n_pred
    else:
        den = n_true + n_pred - tp
    scores = _ratio(factor * tp, den, zero_division)  # (n_images, n_classes)
    if average is None:
        out = scores
    elif average == "macro":
        out = _nanmean(scores, axis=1, zero_division=zero_division)
    elif average == "micro":
        out = _ratio(factor * tp.sum(axis=1), den.sum(axis=1), zero_division)
    else:  # weighted by the truth pixels of each class
        w = np.where(np.isnan(scores), 0, n_true)
        out = _ratio(
            (np.nan_to_num(scores) * w).sum(axis=1), w.sum(axis=1), zero_division
        )
    if per_image:
        return _scalar(_nanmean(out, axis=0, zero_division=zero_division))
    return _scalar(out[0])


_CLASS_DOC = """
    Parameters
    ----------
    y_true : ndarray of shape (H, W) or (N, H, W), or sequence of ndarray
        True label images (integer; ``ignore_label`` marks unlabelled pixels).
        Images may differ in size from row to row.
    y_pred : same as y_true
        Predicted label images, each the shape of its truth.
    labels : array-like of int, default=None
        Classes to score. ``None``: every label found in the scored truth
        pixels and in the predictions at those pixels, sorted. A pixel of a
        class outside ``labels`` still counts against the class it was
        confused with (as in :func:`sklearn.metrics.jaccard_score`).
    average : {"macro", "micro", "weighted"} or None, default="macro"
        ``None``: the score of each class. ``"macro"``: their unweighted
        mean (undefined classes, NaN, left out). ``"micro"``: from the
        counts summed over classes. ``"weighted"``: mean weighted by each
        class's truth pixels.
    ignore_label : int or None, default=0
        Truth pixels with this label are not scored; ``None`` scores all.
    zero_division : float, default=np.nan
        The score of a class that is in neither the truth nor the prediction
        (only possible through ``labels``), and of the average when nothing
        is scored (every truth pixel unlabelled, or no image). NaN values
        are left out of averages, as in scikit-learn.
    per_image : bool, default=False
        ``False``: counts summed over every pixel of every image first
        (dataset-level, as PASCAL VOC). ``True``: the score of each image,
        then the mean over the images where it is defined (a class absent
        from an image is undefined there, not zero).

    Returns
    -------
    score : float or ndarray of shape (n_classes,)
        A float when ``average`` is given, else one score per class of
        ``labels`` (sorted when from the data).
"""


@validate_params(_CLASS_METRIC, prefer_skip_nested_validation=True)
def iou_score(
    y_true,
    y_pred,
    *,
    labels=None,
    average="macro",
    ignore_label=0,
    zero_division=np.nan,
    per_image=False,
):
    """Intersection over union (Jaccard index) of label images, per class.

    IoU of class c = TP / (TP + FP + FN), counted over pixels.
    %(doc)s

    See Also
    --------
    mean_iou : The macro average.
    dice_score : 2 TP / (2 TP + FP + FN).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[0, 1, 1], [2, 2, 2]])
    >>> p = np.array([[2, 1, 2], [2, 2, 1]])
    >>> iou_score(t, p, average=None).tolist()
    [0.3333333333333333, 0.5]
    >>> round(iou_score(t, p), 4)
    0.4167
    """
    pairs = _as_pairs(y_true, y_pred)
    return _class_score(
        "iou", pairs, labels, average, ignore_label, zero_division, per_image
    )


@validate_params(
    {k: v for k, v in _CLASS_METRIC.items() if k != "average"},
    prefer_skip_nested_validation=True,
)
def mean_iou(
    y_true,
    y_pred,
    *,
    labels=None,
    ignore_label=0,
    zero_division=np.nan,
    per_image=False,
):
    """Mean intersection over union: :func:`iou_score` with ``average="macro"``.

    Parameters
    ----------
    y_true, y_pred : label images
        As in :func:`iou_score`.
    labels, ignore_label, zero_division, per_image
        As in :func:`iou_score`.

    Returns
    -------
    score : float

    Examples
    --------
    >>> import numpy as np
    >>> round(mean_iou(np.array([[1, 1, 2]]), np.array([[1, 2, 2]])), 4)
    0.5
    """
    pairs = _as_pairs(y_true, y_pred)
    return _class_score(
        "iou", pairs, labels, "macro", ignore_label, zero_division, per_image
    )


@validate_params(_CLASS_METRIC, prefer_skip_nested_validation=True)
def dice_score(
    y_true,
    y_pred,
    *,
    labels=None,
    average="macro",
    ignore_label=0,
    zero_division=np.nan,
    per_image=False,
):
    """Dice coefficient (pixel F1) of label images, per class.

    Dice of class c = 2 TP / (2 TP + FP + FN), counted over pixels; equal to
    :func:`sklearn.metrics.f1_score` on the flattened scored pixels.
    %(doc)s

    See Also
    --------
    iou_score : TP / (TP + FP + FN); Dice = 2 IoU / (1 + IoU) per class.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[0, 1, 1], [2, 2, 2]])
    >>> p = np.array([[2, 1, 2], [2, 2, 1]])
    >>> dice_score(t, p, average=None).tolist()
    [0.5, 0.6666666666666666]
    """
    pairs = _as_pairs(y_true, y_pred)
    return _class_score(
        "dice", pairs, labels, average, ignore_label, zero_division, per_image
    )


iou_score.__doc__ = iou_score.__doc__ % {"doc": _CLASS_DOC.rstrip()}
dice_score.__doc__ = dice_score.__doc__ % {"doc": _CLASS_DOC.rstrip()}
iou_score.__wrapped__.__doc__ = iou_score.__doc__
dice_score.__wrapped__.__doc__ = dice_score.__doc__


@validate_params(
    {**_COMMON, "zero_division": [Real], "per_image": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def pixel_accuracy(
    y_true, y_pred, *, ignore_label=0, zero_division=np.nan, per_image=False
):
    """Share of scored pixels whose predicted label is the true one.

    Parameters
    ----------
    y_true, y_pred : label images
        As in :func:`iou_score`.
    ignore_label : int or None, default=0
        Truth pixels with this label are not scored; ``None`` scores all.
    zero_division : float, default=np.nan
        Returned when no pixel is scored.
    per_image : bool, default=False
        ``False``: correct pixels over scored pixels, summed over all images.
        ``True``: the mean of each image's accuracy (images with no scored
        pixel left out).

    Returns
    -------
    accuracy : float

    Examples
    --------
    >>> import numpy as np
    >>> pixel_accuracy(np.array([[0, 1, 1], [2, 2, 2]]),
    ...                np.array([[2, 1, 2], [2, 2, 1]]))
    0.6
    """
    pairs = _as_pairs(y_true, y_pred)
    correct = np.zeros(len(pairs), dtype=np.int64)
    total = np.zeros(len(pairs), dtype=np.int64)
    for i, (t, p) in enumerate(pairs):
        st, sp = _scored(t, p, ignore_label)
        correct[i], total[i] = np.count_nonzero(st == sp), st.size
    if per_image:
        return float(
            _nanmean(_ratio(correct, total, np.nan), zero_division=zero_division)
        )
    return float(_ratio(correct.sum(), total.sum(), zero_division))


# --------------------------------------------------------------------------
# boundary F1


def _boundaries(labels, valid):
    """Pixels with a 4-neighbour of another label, both pixels scored."""
    edge = np.zeros(labels.shape, dtype=bool)
    for axis in (0, 1):
        a = [slice(None)] * 2
        b = [slice(None)] * 2
        a[axis], b[axis] = slice(1, None), slice(None, -1)
        a, b = tuple(a), tuple(b)
        change = (labels[a] != labels[b]) & valid[a] & valid[b]
        edge[a] |= change
        edge[b] |= change
    return edge


def _boundary_pr(t, p, tolerance, ignore_label):
    """(precision, recall, f1) of one image; None when nothing is scored."""
    from scipy.ndimage import distance_transform_edt

    valid = np.ones(t.shape, dtype=bool) if ignore_label is None else t != ignore_label
    if not valid.any():
        return None
    bt, bp = _boundaries(t, valid), _boundaries(p, valid)
    nt, np_ = int(bt.sum()), int(bp.sum())
    if nt == 0 and np_ == 0:
        return 1.0, 1.0, 1.0
    if nt == 0 or np_ == 0:
        # boundaries in one only: the missing side has nothing to match
        return (0.0 if np_ else np.nan), (0.0 if nt else np.nan), 0.0
    precision = np.count_nonzero(distance_transform_edt(~bt)[bp] <= tolerance) / np_
    recall = np.count_nonzero(distance_transform_edt(~bp)[bt] <= tolerance) / nt
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@validate_params(
    {
        **_COMMON,
        "tolerance": [Interval(Real, 0, None, closed="left")],
        "zero_division": [Real],
        "return_precision_recall": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def boundary_f1(
    y_true,
    y_pred,
    *,
    tolerance=2,
    ignore_label=0,
    zero_division=np.nan,
    return_precision_recall=False,
):
    """Boundary F1 (BF score) of label images at a pixel tolerance.

    The BF score of Csurka et al. (2013): a predicted boundary pixel is
    correct when a true boundary pixel lies within ``tolerance`` pixels
    (Euclidean) of it, and a true boundary pixel is found when a predicted
    one lies within ``tolerance`` of it; precision and recall are those
    shares and F1 their harmonic mean, per image, then averaged over images.

    Boundaries come from label changes: a pixel is a boundary pixel when one
    of its 4 neighbours has another label (both sides of a change are
    marked). Unlabelled truth pixels (``ignore_label``) are left out: a
    change between a labelled and an unlabelled pixel is no boundary, in
    the truth or in the prediction. Distances use
    :func:`scipy.ndimage.distance_transform_edt`.

    Parameters
    ----------
    y_true, y_pred : label images
        As in :func:`iou_score`.
    tolerance : float, default=2
        Largest distance, in pixels, at which two boundary pixels match
        (0: exact match).
    ignore_label : int or None, default=0
        Truth pixels with this label are not scored; ``None`` scores all.
    zero_division : float, default=np.nan
        Returned when no image has a scored pixel.
    return_precision_recall : bool, default=False
        Also return the mean boundary precision and recall.

    Returns
    -------
    f1 : float
        Mean over images of each image's boundary F1. An image with no
        boundary in either mask scores 1, one with boundaries in only one of
        them 0 (its undefined precision or recall is left out of the
        precision or recall mean); an image with no scored pixel is left out.
    precision, recall : float
        Only with ``return_precision_recall=True``: means over images.

    References
    ----------
    .. [1] G. Csurka, D. Larlus, F. Perronnin (2013). What is a good
       evaluation measure for semantic segmentation? BMVC.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.ones((6, 6), dtype=int); t[:, 3:] = 2
    >>> p = np.ones((6, 6), dtype=int); p[:, 4:] = 2
    >>> boundary_f1(t, p, tolerance=1), boundary_f1(t, p, tolerance=0)
    (1.0, 0.5)
    """
    pairs = _as_pairs(y_true, y_pred)
    rows = [_boundary_pr(t, p, float(tolerance), ignore_label) for t, p in pairs]
    rows = np.array([r for r in rows if r is not None], dtype=np.float64)
    if rows.size == 0:
        rows = np.full((1, 3), np.nan)
    precision, recall, f1 = (
        float(_nanmean(rows[:, k], zero_division=zero_division)) for k in range(3)
    )
    return (f1, precision, recall) if return_precision_recall else f1


# --------------------------------------------------------------------------
# scikit-image's region-agreement metrics


def _contingency(pairs, ignore_label):
    """Sparse truth x prediction pixel counts, summed over the images."""
    from scipy import sparse

    labels = _data_labels(pairs, ignore_label, None)
    table = None
    for t, p in pairs:
        st, sp = _scored(t, p, ignore_label)
        one = sparse.csr_array(
            (np.ones(st.size), (_index(st, labels), _index(sp, labels))),
            shape=(labels.size, labels.size),
        )
        table = one if table is None else table + one
    return table


def _per_pairs(pairs, ignore_label, per_image, fn, zero_division):
    """``fn(table)`` pooled over the images, or its mean over the images."""
    groups = [[pair] for pair in pairs] if per_image else [pairs]
    values = []
    for group in groups:
        table = _contingency(group, ignore_label) if group else None
        if table is None or table.sum() == 0:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            try:
                value = fn(table)
            except AttributeError:
                # older scikit-image reads the sums of a sparse *matrix* (.A)
                from scipy import sparse

                value = fn(sparse.csr_matrix(table))
            values.append(np.asarray(value, dtype=np.float64))
    if not values:
        return None
    return _nanmean(np.array(values), axis=0, zero_division=zero_division)


@validate_params(
    {
        **_COMMON,
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "zero_division": [Real],
        "per_image": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def adapted_rand_error(
    y_true, y_pred, *, alpha=0.5, ignore_label=0, zero_division=np.nan, per_image=False
):
    """Adapted Rand error of label images (scikit-image's, over a dataset).

    A wrapper of :func:`skimage.metrics.adapted_rand_error` (SNEMI3D
    contest): 1 minus the F-score of pixel pairs that share a label in both
    masks. It compares regions, not class names: renaming the labels of one
    mask changes nothing.

    Parameters
    ----------
    y_true, y_pred : label images
        As in :func:`iou_score`.
    alpha : float, default=0.5
        Weight of precision against recall (as in scikit-image).
    ignore_label : int or None, default=0
        Truth pixels with this label are not scored; ``None`` scores all.
    zero_division : float, default=np.nan
        Each returned value when nothing is scored.
    per_image : bool, default=False
        ``False``: one contingency table over every scored pixel of every
        image (pairs of pixels from different images count too, as they do
        for the class confusion). ``True``: the mean over images.

    Returns
    -------
    are : float
        Adapted Rand error, in [0, 1]; 0 is a perfect match.
    precision : float
        Pairs with the same label in both, over pairs with the same label in
        ``y_pred``.
    recall : float
        The same pairs over pairs with the same label in ``y_true``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[1, 1, 2, 2]])
    >>> adapted_rand_error(t, t + 5)
    (0.0, 1.0, 1.0)
    """
    from skimage import metrics

    pairs = _as_pairs(y_true, y_pred)
    out = _per_pairs(
        pairs,
        ignore_label,
        per_image,
        lambda table: metrics.adapted_rand_error(table=table, alpha=alpha),
        zero_division,
    )
    if out is None:
        return (float(zero_division),) * 3
    return tuple(float(v) for v in out)


@validate_params(
    {**_COMMON, "zero_division": [Real], "per_image": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def variation_of_information(
    y_true, y_pred, *, ignore_label=0, zero_division=np.nan, per_image=False
):
    """Variation of information of label images (scikit-image's, over a dataset).

    A wrapper of :func:`skimage.metrics.variation_of_information` (Meila
    2007), which returns the two conditional entropies (bits) whose sum is
    the VI; this function returns the same pair.

    Parameters
    ----------
    y_true, y_pred : label images
        As in :func:`iou_score`.
    ignore_label : int or None, default=0
        Truth pixels with this label are not scored; ``None`` scores all.
    zero_division : float, default=np.nan
        Each returned value when nothing is scored.
    per_image : bool, default=False
        ``False``: one contingency table over every scored pixel of every
        image. ``True``: the mean over images.

    Returns
    -------
    entropies : ndarray of shape (2,)
        ``[H(y_pred | y_true), H(y_true | y_pred)]``: the over-segmentation
        (false splits) and the under-segmentation (false merges), as
        scikit-image orders them. ``entropies.sum()`` is the VI; 0 is a
        perfect match.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[1, 1, 2, 2]])
    >>> variation_of_information(t, np.array([[1, 1, 1, 1]])).tolist()
    [0.0, 1.0]
    """
    from skimage import metrics

    # scikit-image reads only the table when one is given, but still checks
    # the images' shapes, so it gets two matching placeholders.
    dummy = np.zeros(1, dtype=np.int64)

    def vi(table):
        return metrics.variation_of_information(dummy, dummy, table=table / table.sum())

    pairs = _as_pairs(y_true, y_pred)
    out = _per_pairs(pairs, ignore_label, per_image, vi, zero_division)
    if out is None:
        return np.full(2, float(zero_division))
    return np.asarray(out, dtype=np.float64)


# --------------------------------------------------------------------------
# report


def _names(labels, target_names):
    if target_names is None:
        return [str(v) for v in labels.tolist()]
    if isinstance(target_names, dict):
        return [str(target_names.get(v, v)) for v in labels.tolist()]
    target_names = list(target_names)
    if len(target_names) != labels.size:
        raise ParameterError(
            f"target_names has {len(target_names)} names but the masks hold "
            f"{labels.size} classes {labels.tolist()}; give one name per class "
            "in sorted label order, or a dict of label to name"
        )
    return [str(n) for n in target_names]


@validate_params(
    {
        **_COMMON,
        "target_names": ["array-like", dict, None],
        "tolerance": [Interval(Real, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def segmentation_report(
    y_true, y_pred, *, target_names=None, ignore_label=0, tolerance=2
):
    """Per-class IoU, Dice, precision, recall and support, with summaries.

    Parameters
    ----------
    y_true, y_pred : label images
        As in :func:`iou_score`; counts are summed over every scored pixel
        of every image.
    target_names : sequence of str or dict of int to str, default=None
        Class names: one per class in sorted label order, or a mapping of
        label to name. Default: the labels as strings.
    ignore_label : int or None, default=0
        Truth pixels with this label are not scored; ``None`` scores all.
    tolerance : float, default=2
        Boundary F1 tolerance in pixels (see :func:`boundary_f1`).

    Returns
    -------
    report : DataFrame
        Index ``class``: one row per class found in the data (sorted by
        label), columns ``iou``, ``dice``, ``precision``, ``recall`` (NaN
        when undefined) and ``support`` (truth pixels), ``score`` empty.
        Then three summary rows whose ``score`` holds the value:
        ``"mean_iou"`` (also the macro averages of the rate columns and the
        total support), ``"pixel_accuracy"`` (support: scored pixels) and
        ``"boundary_f1"`` (mean over images).

    See Also
    --------
    mmfeat.evaluation.fusion_report : The same idea for fused classifiers.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[0, 1, 1], [2, 2, 2]])
    >>> p = np.array([[2, 1, 2], [2, 2, 1]])
    >>> report = segmentation_report(t, p, target_names=["sky", "sea"])
    >>> report.loc["sea", ["iou", "support"]].tolist()
    [0.5, 3.0]
    >>> print(round(report.loc["mean_iou", "score"], 4))
    0.4167
    """
    pairs = _as_pairs(y_true, y_pred)
    labels = _check_labels(None, pairs, ignore_label)
    tp, n_true, n_pred, n_scored, n_correct = (
        a.sum(axis=0) for a in _counts(pairs, labels, ignore_label)
    )
    table = pd.DataFrame(
        {
            "iou": _ratio(tp, n_true + n_pred - tp, np.nan),
            "dice": _ratio(2 * tp, n_true + n_pred, np.nan),
            "precision": _ratio(tp, n_pred, np.nan),
            "recall": _ratio(tp, n_true, np.nan),
            "support": n_true.astype(np.float64),
            "score": np.nan,
        },
        index=pd.Index(_names(labels, target_names), name="class"),
    )
    rates = ["iou", "dice", "precision", "recall"]
    mean = {c: float(_nanmean(table[c].to_numpy())) for c in rates}
    nan4 = dict.fromkeys(rates, np.nan)
    summary = pd.DataFrame.from_dict(
        {
            "mean_iou": {**mean, "support": float(n_true.sum()), "score": mean["iou"]},
            "pixel_accuracy": {
                **nan4,
                "support": float(n_scored),
                "score": float(_ratio(n_correct, n_scored, np.nan)),
            },
            "boundary_f1": {
                **nan4,
                "support": np.nan,
                "score": boundary_f1(
                    [t for t, _ in pairs],
                    [p for _, p in pairs],
                    tolerance=tolerance,
                    ignore_label=ignore_label,
                ),
            },
        },
        orient="index",
    )
    report = pd.concat([table, summary[table.columns]])
    report.index.name = "class"
    return report


# --------------------------------------------------------------------------
# scorer


def _foreground_iou(y_true, y_pred, *, label, **kwargs):
    return float(iou_score(y_true, y_pred, labels=[label], average=None, **kwargs)[0])


_SCORERS = {
    "mean_iou": mean_iou,
    "pixel_accuracy": pixel_accuracy,
    "dice": dice_score,
    "boundary_f1": boundary_f1,
    "foreground_iou": _foreground_iou,
}


class _SegmentationScorer:
    """``scorer(estimator, X, y)``: a segmentation metric of ``predict(X)``.

    A module-level class (not a closure) so that it pickles into joblib /
    loky workers.
    """

    def __init__(self, metric, kwargs):
        self.metric = metric
        self.kwargs = dict(kwargs)

    def __call__(self, estimator, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ParameterError("segmentation scorers take no sample_weight")
        from mmfeat.segmentation import read_mask

        # masks as the segmenter's fit reads them (arrays or mask files)
        items = _as_masks(y, "y")
        truth = []
        for i, m in enumerate(items):
            try:
                truth.append(read_mask(m))
            except InputError as exc:
                raise exc.with_row(i) from None
        pred = list(estimator.predict(X))
        if len(pred) != len(truth):
            raise InputError(
                f"predict gave {len(pred)} label images for {len(truth)} masks"
            )
        # a row the segmenter could not read counts as wrong everywhere: 0 is
        # never a class, and the classes scored are the model's and the truth's
        pred = [np.zeros_like(t) if p is None else p for p, t in zip(pred, truth)]
        kwargs = dict(self.kwargs)
        if (
            self.metric in ("mean_iou", "dice")
            and "labels" not in kwargs
            and hasattr(estimator, "classes_")
        ):
            seen = np.unique(np.concatenate([np.unique(t) for t in truth]))
            kwargs["labels"] = np.union1d(estimator.classes_, seen[seen > 0])
        return float(_SCORERS[self.metric](truth, pred, **kwargs))

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"make_segmentation_scorer({self.metric!r}{args})"


@validate_params(
    {"metric": [StrOptions(set(_SCORERS))]}, prefer_skip_nested_validation=True
)
def make_segmentation_scorer(metric="mean_iou", **kwargs):
    """A scorer for segmenters, for ``GridSearchCV(scoring=...)``.

    The scorer calls ``estimator.predict(X)`` (a list or stack of label
    images) and scores it against ``y`` (the true masks) with the metric;
    greater is better for every metric offered.

    Parameters
    ----------
    metric : {"mean_iou", "pixel_accuracy", "dice", "boundary_f1", \
"foreground_iou"}, default="mean_iou"
        :func:`mean_iou`, :func:`pixel_accuracy`, :func:`dice_score` (macro
        by default), :func:`boundary_f1`, or the IoU of one class
        (``label=`` is then required).
    **kwargs
        Keyword arguments of the metric (``ignore_label``, ``per_image``,
        ``tolerance``, ``average``, ``label``, ...).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``; it pickles.

    Examples
    --------
    >>> scorer = make_segmentation_scorer("foreground_iou", label=2)
    >>> scorer
    make_segmentation_scorer('foreground_iou', label=2)
    """
    fn = _SCORERS[metric]
    if metric == "foreground_iou" and "label" not in kwargs:
        raise ParameterError(
            "make_segmentation_scorer('foreground_iou') needs label=, the class "
            "whose IoU is the score"
        )
    if metric == "foreground_iou":
        if not isinstance(kwargs["label"], numbers.Integral):
            raise ParameterError(
                f"label must be an integer class label; got {kwargs['label']!r}"
            )
        allowed = {"label", "ignore_label", "zero_division", "per_image"}
    else:
        allowed = set(inspect.signature(fn).parameters) - {"y_true", "y_pred"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ParameterError(
            f"make_segmentation_scorer({metric!r}) got unknown arguments {unknown}; "
            f"it takes {sorted(allowed)}"
        )
    return _SegmentationScorer(metric, kwargs)


# --------------------------------------------------------------------------
# plot


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("plots need matplotlib: pip install 'mmfeat[plots]'") from exc
    return plt


def _overlay(mask, colours, index, alpha, ignore_label):
    rgba = np.zeros((*mask.shape, 4))
    idx = _index(mask.ravel(), index).reshape(mask.shape)
    rgba[..., :3] = colours[np.minimum(idx, len(colours) - 1)]
    shown = (
        np.ones(mask.shape, dtype=bool)
        if ignore_label is None
        else mask != ignore_label
    )
    rgba[..., 3] = np.where(shown, alpha, 0.0)
    return rgba


@validate_params(
    {
        "image": "no_validation",  # read_image says what is wrong with it
        "y_true": [None, "array-like"],
        "y_pred": [None, "array-like"],
        "ax": "no_validation",
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "target_names": ["array-like", dict, None],
        "ignore_label": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def plot_segmentation(
    image,
    y_true=None,
    y_pred=None,
    *,
    ax=None,
    alpha=0.5,
    target_names=None,
    ignore_label=0,
):
    """Draw an image with its true and predicted masks and the errors.

    One panel each: the image; the truth over it; the prediction over it
    (both only when given); the errors when both are given (pixels where
    the prediction differs from the truth, in red, unlabelled truth pixels
    left out). Classes keep one colour across panels.

    Parameters
    ----------
    image : str, path-like, bytes or ndarray
        The image (read with :func:`~mmfeat.io.read_image`: a 2-D array is
        shown grey, anything else as RGB).
    y_true, y_pred : ndarray of shape (H, W), default=None
        Integer label images of the image's height and width.
    ax : matplotlib Axes or sequence of Axes, default=None
        Where to draw, one Axes per panel; a new figure when ``None``.
    alpha : float, default=0.5
        Opacity of the overlays.
    target_names : sequence of str or dict of int to str, default=None
        Class names for the legend (as in :func:`segmentation_report`).
    ignore_label : int or None, default=0
        The unlabelled value, drawn transparent and never an error.

    Returns
    -------
    fig : matplotlib Figure
        The figure; the panels are ``fig.axes``.
    """
    from mmfeat.io import read_image

    plt = _pyplot()
    from matplotlib.patches import Patch

    is_grey = isinstance(image, np.ndarray) and image.ndim == 2
    picture = read_image(image, mode="gray" if is_grey else "rgb")
    masks = {}
    for name, m in (("y_true", y_true), ("y_pred", y_pred)):
        if m is None:
            continue
        m = _as_mask(m, name, None)
        if m.shape != picture.shape[:2]:
            raise InputError(
                f"{name} has shape {m.shape} but the image is {picture.shape[:2]}"
            )
        masks[name] = m
    panels = ["image"] + [k for k in ("y_true", "y_pred") if k in masks]
    if len(masks) == 2:
        panels.append("errors")
    if ax is None:
        fig, axes = plt.subplots(
            1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False
        )
        axes = list(axes[0])
    else:
        axes = [ax] if hasattr(ax, "imshow") else list(ax)
        if len(axes) != len(panels):
            raise ParameterError(
                f"ax must hold {len(panels)} Axes (panels {panels}); got {len(axes)}"
            )
        fig = axes[0].figure
    present = [
        _present(m[m != ignore_label] if ignore_label is not None else m.ravel())
        for m in masks.values()
    ]
    labels = np.unique(np.concatenate(present)) if present else np.empty(0, int)
    k = 10 if labels.size <= 10 else 20  # tab20's neighbours are look-alikes
    cmap = plt.get_cmap(f"tab{k}")
    colours = np.array([cmap(i % k)[:3] for i in range(max(labels.size, 1))])
    colours = np.vstack([colours, [[0.0, 0.0, 0.0]]])
    names = _names(labels, target_names) if labels.size else []
    grey = {"cmap": "gray", "vmin": 0, "vmax": 1} if picture.ndim == 2 else {}
    titles = {"image": "image", "y_true": "truth", "y_pred": "prediction"}
    for a, panel in zip(axes, panels):
        a.imshow(picture, **grey)
        if panel in masks:
            a.imshow(_overlay(masks[panel], colours, labels, alpha, ignore_label))
            a.set_title(titles[panel])
        elif panel == "errors":
            t, p = masks["y_true"], masks["y_pred"]
            scored = (
                np.ones(t.shape, bool) if ignore_label is None else t != ignore_label
            )
            wrong = scored & (t != p)
            rgba = np.zeros((*t.shape, 4))
            rgba[wrong] = (0.85, 0.1, 0.1, max(alpha, 0.6))
            a.imshow(rgba)
            share = wrong.sum() / max(int(scored.sum()), 1)
            a.set_title(f"errors ({share:.1%} of labelled)")
        else:
            a.set_title(titles[panel])
        a.set_axis_off()
    if names and len(panels) > 1:
        handles = [Patch(color=colours[i], label=n) for i, n in enumerate(names)]
        axes[len(masks)].legend(handles=handles, loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig
