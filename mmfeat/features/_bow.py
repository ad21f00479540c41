"""Vocabulary learning shared by the image and audio bags of words."""

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from mmfeat.exceptions import ParameterError

__all__ = ["check_levels", "learn_codebook", "median_nearest", "sample_rows"]


def check_levels(levels, *, example):
    """Validate pyramid levels (positive grid sizes); return them as a tuple."""
    levels = tuple(levels)
    if not levels or not all(
        isinstance(n, (int, np.integer)) and n >= 1 for n in levels
    ):
        raise ParameterError(
            f"pyramid_levels must be a non-empty tuple of positive grid sizes such as "
            f"{example}; got {levels!r}"
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
