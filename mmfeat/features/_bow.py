"""Vocabulary learning shared by the image and audio bags of words."""

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from mmfeat.exceptions import ParameterError
from mmfeat.utils._state import check_array_arg, state_error

__all__ = [
    "check_bow_state",
    "check_levels",
    "learn_codebook",
    "median_nearest",
    "sample_rows",
]


def check_levels(levels, *, example):
    """Validate pyramid levels (grid sizes 1..64); return them as a tuple."""
    # imported here: the image package imports this module
    from mmfeat.features.image._bovw_kernels import MAX_PYRAMID_GRID

    try:
        levels = tuple(levels)
    except TypeError:
        levels = (levels,)
    if not levels or not all(
        isinstance(n, (int, np.integer))
        and not isinstance(n, bool)
        and 1 <= n <= MAX_PYRAMID_GRID
        for n in levels
    ):
        raise ParameterError(
            "pyramid_levels must be a non-empty tuple of grid sizes between 1 and "
            f"{MAX_PYRAMID_GRID}, such as {example}; got {levels!r}"
        )
    return levels


def sample_rows(arrays, max_per_item, rng):
    """At most ``max_per_item`` rows of each array (kept in order), stacked."""
    parts = []
    for a in arrays:
        if a is None or len(a) == 0:
            continue
        if len(a) > max_per_item:
            a = a[np.sort(rng.choice(len(a), max_per_item, replace=False))]
        parts.append(a)
    return np.concatenate(parts) if parts else None


def learn_codebook(sample, n_words, rng, *, what):
    """``MiniBatchKMeans`` words (float32) from the rows of ``sample``.

    ``what`` names the rows in the error raised when there are fewer of them
    than words (e.g. "SIFT descriptors in the training images").
    """
    count = 0 if sample is None else len(sample)
    if count < n_words:
        raise ParameterError(
            f"only {count} {what}, fewer than n_words={n_words}: lower n_words or "
            "give more training data"
        )
    km = MiniBatchKMeans(
        n_clusters=n_words,
        random_state=rng.randint(np.iinfo(np.int32).max),
        n_init=3,
        batch_size=min(count, 4096),
    ).fit(sample.astype(np.float64))  # k-means++ is several times slower on float32
    return np.ascontiguousarray(km.cluster_centers_, dtype=np.float32)


def median_nearest(sample, codebook):
    """Median distance of ``sample`` rows to their nearest word (soft bandwidth)."""
    if sample is None or len(sample) == 0:
        return 1.0
    x = sample.astype(np.float64)
    c = codebook.astype(np.float64)
    d2 = (x**2).sum(1)[:, None] - 2.0 * x @ c.T + (c**2).sum(1)[None, :]
    return float(np.median(np.sqrt(np.maximum(d2.min(axis=1), 0.0)))) or 1.0


def check_bow_state(est, *, two_d, dim, soft, per_word=1):
    """Check a fitted bag of words: codebook, pyramid cells, bandwidth, width.

    ``dim`` is the descriptor length the codebook must have (None: any),
    ``per_word`` the values per word and cell (the descriptor length for
    VLAD, else 1). Everything is compared with what the parameters imply.
    """
    from mmfeat.features.image._bovw_kernels import pyramid_cells

    codebook = check_array_arg(
        est.codebook_, "codebook_", ndim=2, dtype=np.float32, finite=True, owner=est
    )
    if len(codebook) < 1 or (dim is not None and codebook.shape[1] != dim):
        raise state_error(
            est,
            f"codebook_ has shape {codebook.shape}; expected (n_words, "
            f"{dim if dim is not None else 'n_features'}) with n_words >= 1",
        )
    levels = check_levels(est.pyramid_levels, example=(1, 2, 4))
    cells = pyramid_cells(levels, two_d=two_d)
    check_array_arg(est.cells_, "cells_", dtype=np.int64, owner=est)
    if est.cells_.shape != cells.shape or (est.cells_ != cells).any():
        raise state_error(
            est,
            f"cells_={est.cells_.tolist()} but pyramid_levels={levels} give "
            f"{cells.tolist()}",
        )
    if soft:
        bw = est.bandwidth_
        if not (isinstance(bw, (float, np.floating)) and np.isfinite(bw) and bw > 0):
            raise state_error(est, f"bandwidth_={bw!r} is not a positive number")
    width = int((cells[:, 0] * cells[:, 1]).sum()) * len(codebook) * per_word
    if est.n_features_out_ != width:
        raise state_error(
            est,
            f"n_features_out_={est.n_features_out_!r} but the codebook and "
            f"pyramid give {width}",
        )
