"""Numba kernels for bag-of-words encoding: arrays in, arrays out.

Shared by the image bag of visual words and the audio bag of audio words.
Items (images, clips) are given as one stacked descriptor array with
``offsets`` (item ``i`` owns rows ``offsets[i]:offsets[i + 1]``) and each
descriptor's position in [0, 1) x [0, 1) (row, column; for audio, row 0 and
column = time), so one call encodes a whole batch:

1. assignment, parallel over fixed-size chunks of descriptors whatever the
   item boundaries: one BLAS ``dot`` per chunk against the codebook (of
   its non-zero descriptors only: a blank patch's is the zero row), then
   nearest word (hard, VLAD) or the ``n_neighbors`` nearest with kernel
   weights (soft), written per descriptor;
2. pooling, parallel over items: histograms (or VLAD residual sums) per
   spatial-pyramid cell, per-level normalisation, power and L2
   normalisation, written straight into the output row.

No intermediate larger than a chunk's distance block is created.
"""

import math

import numpy as np
from numba import njit, prange

from mmfeat.exceptions import ModelStateError
from mmfeat.utils._numba import JIT_PARALLEL, JIT_SERIAL, one_blas_thread
from mmfeat.utils._state import check_array_arg

__all__ = [
    "HARD",
    "SOFT",
    "VLAD",
    "_assign",
    "_bow_encode",
    "_pool",
    "pyramid_cells",
]

HARD, SOFT, VLAD = 0, 1, 2
#: Descriptors per BLAS product: from 256 up to 1,024 where the distance
#: block stays within 2 MB and the batch still splits into 16 chunks (work
#: for 16 threads); 1,024 rows run the product about 5% faster than 256,
#: and at 1,024 words 512-row blocks (2 MB) ran 4% faster than 1,024-row
#: ones (4 MB) at two threads, the same at one. The size depends on the
#: batch and the vocabulary only, never on the thread count, so the words
#: do not either.
_CHUNK = 256
_CHUNK_MAX = 1024
_CHUNK_BYTES = 1 << 21
# the finest pyramid grid (64x64 cells) and the widest output row the
# wrapper lets the kernels write; a model file cannot ask for more
MAX_PYRAMID_GRID = 64
MAX_ENCODING_WIDTH = 1 << 26


def pyramid_cells(levels, *, two_d=True):
    """Grid shapes of a spatial (or temporal) pyramid.

    ``levels=(1, 2, 4)`` gives 1x1, 2x2 and 4x4 grids (Lazebnik et al.,
    2006) for images, and 1x1, 1x2, 1x4 (time only) with ``two_d=False``.
    Returns an int64 array of shape (n_levels, 2) of (rows, cols).
    """
    return np.array([(n if two_d else 1, n) for n in levels], dtype=np.int64)


@njit(**JIT_SERIAL)
def _argmin_diff(a, b):
    """First index of the minimum of ``a - b``.

    Eight independent running minima break the compare-and-select
    dependency chain (about 1.5x faster than one); ties go to the lowest
    index, as ``np.argmin``.
    """
    n = a.shape[0]
    m = n - n % 8
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = np.float32(np.inf)
    i0 = i1 = i2 = i3 = i4 = i5 = i6 = i7 = 0
    for k in range(0, m, 8):
        d = a[k] - b[k]
        if d < b0:
            b0, i0 = d, k
        d = a[k + 1] - b[k + 1]
        if d < b1:
            b1, i1 = d, k + 1
        d = a[k + 2] - b[k + 2]
        if d < b2:
            b2, i2 = d, k + 2
        d = a[k + 3] - b[k + 3]
        if d < b3:
            b3, i3 = d, k + 3
        d = a[k + 4] - b[k + 4]
        if d < b4:
            b4, i4 = d, k + 4
        d = a[k + 5] - b[k + 5]
        if d < b5:
            b5, i5 = d, k + 5
        d = a[k + 6] - b[k + 6]
        if d < b6:
            b6, i6 = d, k + 6
        d = a[k + 7] - b[k + 7]
        if d < b7:
            b7, i7 = d, k + 7
    # merge the lanes, ties to the lowest index (no heap arrays: this runs
    # once per descriptor)
    top = b0
    where = i0
    if b1 < top or (b1 == top and i1 < where):
        top, where = b1, i1
    if b2 < top or (b2 == top and i2 < where):
        top, where = b2, i2
    if b3 < top or (b3 == top and i3 < where):
        top, where = b3, i3
    if b4 < top or (b4 == top and i4 < where):
        top, where = b4, i4
    if b5 < top or (b5 == top and i5 < where):
        top, where = b5, i5
    if b6 < top or (b6 == top and i6 < where):
        top, where = b6, i6
    if b7 < top or (b7 == top and i7 < where):
        top, where = b7, i7
    for k in range(m, n):
        d = a[k] - b[k]
        if d < top:
            top = d
            where = k
    return where


#: Rows at least this long take :func:`_argmin_diff_keys` (a default
#: vocabulary has 128 or 256 words); shorter ones the running minima.
_KEYS_FROM = 128
_KEY_BLOCK = 64


@njit(**dict(JIT_SERIAL, error_model="numpy"))
def _argmin_diff_keys(a, b, d):
    """:func:`_argmin_diff` of a long row, through integer keys.

    2-3x faster from 256 words on; ``d`` is a float32 work row as long as
    ``a``.

    LLVM vectorises neither a float minimum (numba's compare-and-select
    carries no fast-math flags) nor an arg-minimum, but it does vectorise
    an integer one, and a float32's bits, with the magnitude bits flipped
    where the sign bit is set, order as the float does. So: ``a - b`` into
    ``d`` (plus 0.0, which makes a -0.0 the +0.0 it ties with), the least
    key of every block of :data:`_KEY_BLOCK` values, and the first position
    of the least key in the first block that holds it: the first index of
    the minimum, as ``np.argmin``.
    """
    n = a.shape[0]
    for k in range(n):
        d[k] = a[k] - b[k] + np.float32(0.0)
    bits = d.view(np.int32)
    flip = np.int32(0x7FFFFFFF)
    best = np.int64(flip) + 1  # above every key, NaN's included
    first = 0
    n_blocks = n // _KEY_BLOCK
    for blk in range(n_blocks):
        low = np.int64(flip)
        for k in range(blk * _KEY_BLOCK, (blk + 1) * _KEY_BLOCK):
            v = bits[k]
            key = v ^ ((v >> 31) & flip)
            low = key if key < low else low
        if low < best:
            best = low
            first = blk * _KEY_BLOCK
    for k in range(first, first + _KEY_BLOCK if n_blocks > 0 else 0):
        v = bits[k]
        if v ^ ((v >> 31) & flip) == best:
            first = k
            break
    for k in range(n_blocks * _KEY_BLOCK, n):
        v = bits[k]
        key = v ^ ((v >> 31) & flip)
        if key < best:
            best = key
            first = k
    return first


@njit(**JIT_SERIAL)
def _chunk_rows(n, n_words):
    """Rows per BLAS product in :func:`_assign` (see :data:`_CHUNK`)."""
    rows = min(_CHUNK_MAX, max(_CHUNK, _CHUNK_BYTES // (4 * max(n_words, 1))))
    while rows > _CHUNK and n < 16 * rows:
        rows //= 2
    return rows


@njit(**JIT_PARALLEL)
def _assign(desc, codebook_t, half_sq, n_neighbors, inv_two_sigma2, words, weights):
    """Nearest word(s) of every descriptor.

    The nearest word minimises ``|c|^2 / 2 - x.c`` (``half_sq`` holds the
    halved squared norms), so one BLAS product per chunk does the heavy work.
    ``words``/``weights`` have shape (N, n_neighbors); with one neighbour the
    weight is 1 (hard assignment), otherwise the normalised kernel weights
    ``exp(-(d^2 - d_min^2) / (2 sigma^2))`` of the nearest words.
    """
    n, dim = desc.shape
    n_words = codebook_t.shape[1]
    rows = _chunk_rows(n, n_words)
    n_chunks = (n + rows - 1) // rows
    for ch in prange(n_chunks):
        start = ch * rows
        stop = min(n, start + rows)
        # all-zero descriptors (a blank patch: 30-40% of dense SIFT on product
        # photos) skip the product: their dots are the zero row
        live = np.empty(stop - start, dtype=np.int64)
        n_live = 0
        for j in range(stop - start):
            for q in range(dim):
                if desc[start + j, q] != 0.0:
                    live[n_live] = j
                    n_live += 1
                    break
        zero_dots = np.zeros(n_words, dtype=np.float32)
        work = np.empty(n_words, dtype=np.float32)
        if n_live == stop - start:
            dots = np.dot(desc[start:stop], codebook_t)
        elif n_live > 0:
            packed = np.empty((n_live, dim), dtype=np.float32)
            for r in range(n_live):
                packed[r] = desc[start + live[r]]
            dots = np.dot(packed, codebook_t)
        else:
            dots = np.zeros((1, n_words), dtype=np.float32)
        dist = np.empty(n_neighbors, dtype=np.float64)
        idx = np.empty(n_neighbors, dtype=np.int64)
        last = n_neighbors - 1
        r = 0
        for j in range(stop - start):
            if r < n_live and live[r] == j:
                row = dots[r]
                r += 1
            else:
                row = zero_dots
            if n_neighbors == 1:
                if n_words >= _KEYS_FROM:
                    words[start + j, 0] = _argmin_diff_keys(half_sq, row, work)
                else:
                    words[start + j, 0] = _argmin_diff(half_sq, row)
                weights[start + j, 0] = 1.0
                continue
            for m in range(n_neighbors):
                dist[m] = np.inf
                idx[m] = 0
            for k in range(n_words):
                d = np.float64(half_sq[k] - row[k])
                if d >= dist[last]:
                    continue
                m = last
                while m > 0 and dist[m - 1] > d:
                    dist[m] = dist[m - 1]
                    idx[m] = idx[m - 1]
                    m -= 1
                dist[m] = d
                idx[m] = k
            total = 0.0
            for m in range(n_neighbors):
                # squared distances are 2 * (half_sq - dot) + |x|^2
                w = math.exp(-2.0 * (dist[m] - dist[0]) * inv_two_sigma2)
                weights[start + j, m] = w
                total += w
            for m in range(n_neighbors):
                words[start + j, m] = idx[m]
                weights[start + j, m] /= total


@njit(**JIT_PARALLEL)
def _pool(
    desc,
    offsets,
    pos,
    words,
    weights,
    codebook,
    cells,
    method,
    power,
    l2,
    intra,
    out,
):
    """Pool assignments into one vector per item (pyramid, normalisation).

    Hard/soft: per cell, the weighted word counts; each pyramid level is
    divided by the item's number of descriptors (each level sums to 1).
    VLAD: per cell and word, the sum of residuals ``x - c``; with ``intra``
    each word's residual block is L2-normalised (Arandjelovic & Zisserman,
    2013). Then optional signed square root (``power``) and L2 of the row.
    An item with no descriptors gives a zero row.
    """
    n_items = offsets.shape[0] - 1
    n_words, dim = codebook.shape
    n_neighbors = words.shape[1]
    block = dim if method == VLAD else 1
    for i in prange(n_items):
        row = out[i]
        row[:] = 0.0
        start = offsets[i]
        stop = offsets[i + 1]
        count = stop - start
        if count == 0:
            continue
        base = 0
        for lv in range(cells.shape[0]):
            rows = cells[lv, 0]
            cols = cells[lv, 1]
            for j in range(start, stop):
                cy = min(int(pos[j, 0] * rows), rows - 1)
                cx = min(int(pos[j, 1] * cols), cols - 1)
                cell = base + cy * cols + cx
                for m in range(n_neighbors):
                    w = weights[j, m]
                    k = words[j, m]
                    o = (cell * n_words + k) * block
                    if method == VLAD:
                        for d in range(dim):
                            row[o + d] += w * (desc[j, d] - codebook[k, d])
                    else:
                        row[o] += w
            if method != VLAD:
                lo = base * n_words
                hi = (base + rows * cols) * n_words
                for f in range(lo, hi):
                    row[f] /= count
            base += rows * cols
        if method == VLAD and intra:
            for b in range(row.shape[0] // dim):
                s = 0.0
                for d in range(dim):
                    s += row[b * dim + d] ** 2
                if s > 0.0:
                    inv = 1.0 / math.sqrt(s)
                    for d in range(dim):
                        row[b * dim + d] *= inv
        if power:
            for f in range(row.shape[0]):
                v = row[f]
                row[f] = math.sqrt(v) if v >= 0.0 else -math.sqrt(-v)
        if l2:
            s = 0.0
            for f in range(row.shape[0]):
                s += row[f] * row[f]
            if s > 0.0:
                inv = 1.0 / math.sqrt(s)
                for f in range(row.shape[0]):
                    row[f] *= inv


def check_bow_arrays(desc, offsets, pos, codebook, cells, method=HARD):
    """Check the arrays of :func:`_bow_encode` as its kernels index them."""
    check_array_arg(codebook, "codebook", ndim=2, finite=True)
    n_words, dim = codebook.shape
    if n_words < 1 or dim < 1:
        raise ModelStateError(f"codebook has shape {codebook.shape}: no words")
    check_array_arg(cells, "cells", ndim=2, shape=(None, 2), dtype=np.int64)
    if len(cells) < 1 or cells.min() < 1 or cells.max() > MAX_PYRAMID_GRID:
        raise ModelStateError(
            "pyramid cells must be grids of 1 to "
            f"{MAX_PYRAMID_GRID} rows and columns; got {cells.tolist()}"
        )
    if method not in (HARD, SOFT, VLAD):
        raise ModelStateError(f"unknown encoding method {method!r}")
    check_array_arg(desc, "desc", ndim=2, shape=(None, dim), dtype=np.float32)
    n = desc.shape[0]
    check_array_arg(offsets, "offsets", ndim=1, dtype=np.int64)
    if (
        len(offsets) < 1
        or offsets[0] != 0
        or offsets[-1] != n
        or (np.diff(offsets) < 0).any()
    ):
        raise ModelStateError(
            f"offsets must rise from 0 to the {n} descriptors; got "
            f"{offsets[:5].tolist()}..."
        )
    check_array_arg(pos, "pos", shape=(n, 2), dtype=np.float64)
    if n and not (np.isfinite(pos).all() and pos.min() >= 0.0 and pos.max() <= 1.0):
        raise ModelStateError("descriptor positions must be finite, in [0, 1]")


def _bow_encode(
    desc,
    offsets,
    pos,
    codebook,
    *,
    cells,
    method=HARD,
    n_neighbors=1,
    bandwidth=1.0,
    power=True,
    l2=True,
    intra=True,
    out=None,
):
    """Encode a batch of items; the public extractors call this.

    Parameters are arrays as the kernels want them: ``desc`` float32 (N, D)
    C-contiguous, ``offsets`` int64 (n_items + 1), ``pos`` float64 (N, 2),
    ``codebook`` float32 (K, D), ``cells`` from :func:`pyramid_cells`.
    Returns ``out`` of shape (n_items, n_cells * K [* D for VLAD]).

    Every size and index the kernels use is checked here first (they do no
    bounds checks): a bad array raises :class:`~mmfeat.exceptions.ModelStateError`.
    """
    check_bow_arrays(desc, offsets, pos, codebook, cells, method)
    n_items = offsets.shape[0] - 1
    n_words, dim = codebook.shape
    n_cells = int((cells[:, 0] * cells[:, 1]).sum())
    width = n_cells * n_words * (dim if method == VLAD else 1)
    if width > MAX_ENCODING_WIDTH:
        raise ModelStateError(
            f"a bag-of-words encoding of {width} values per item (over "
            f"{MAX_ENCODING_WIDTH}): fewer words or pyramid cells"
        )
    if out is None:
        out = np.empty((n_items, width), dtype=np.float64)
    else:
        check_array_arg(out, "out", shape=(n_items, width), dtype=np.float64)
    # more neighbours than words would only add zero weights
    nn = 1 if method != SOFT else min(int(n_neighbors), n_words)
    if nn < 1:
        raise ModelStateError(f"n_neighbors={n_neighbors} must be at least 1")
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        raise ModelStateError(f"bandwidth must be positive and finite; got {bandwidth}")
    words = np.empty((desc.shape[0], nn), dtype=np.int64)
    weights = np.empty((desc.shape[0], nn), dtype=np.float64)
    codebook = np.ascontiguousarray(codebook, dtype=np.float32)
    half_sq = (0.5 * (codebook.astype(np.float64) ** 2).sum(axis=1)).astype(np.float32)
    # One BLAS thread inside the kernel's own threads: no oversubscription,
    # and the same float32 dot products (so the same words on near-ties)
    # whatever n_jobs is; multi-threaded OpenBLAS rounds differently.
    if desc.shape[0]:
        with one_blas_thread():
            _assign(
                desc,
                np.ascontiguousarray(codebook.T),
                half_sq,
                nn,
                1.0 / (2.0 * bandwidth**2),
                words,
                weights,
            )
    _pool(
        desc,
        offsets,
        pos,
        words,
        weights,
        codebook,
        cells,
        method,
        power,
        l2,
        intra,
        out,
    )
    return out
