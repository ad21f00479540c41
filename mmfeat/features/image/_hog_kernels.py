"""Numba kernels for HOG: arrays in, arrays out, no validation.

The numbers follow scikit-image's ``hog`` (``_hog.py`` and
``_hoghistogram.pyx``) exactly: central differences with zero gradient on the
border rows/columns, the channel with the largest gradient magnitude per
pixel, each pixel voting its magnitude into one orientation bin of one cell
(no interpolation), cell sums accumulated in float32 in row-major order and
divided by the cell area, then overlapping blocks (stride one cell)
normalised with ``eps = 1e-5``.

Two things differ in *how*, not in *what*: the orientation bin is found by
comparing the direction's cosine with the bin edges' instead of calling
``arctan2`` (the same bin, several times cheaper), and a whole batch runs in
one call with ``prange`` over images.
"""

import math

import numpy as np
from numba import njit, objmode, prange

from mmfeat.utils._numba import JIT_PARALLEL, JIT_SERIAL

__all__ = [
    "NORMS",
    "_cell_histograms",
    "_hog_batch",
    "_hog_gray_batch",
    "bin_boundaries",
]

#: Block normalisation codes used by the kernels.
NORMS = {"L1": 0, "L1-sqrt": 1, "L2": 2, "L2-Hys": 3}

_EPS = 1e-5

#: A pixel whose direction lies this close (relative to its magnitude) to a
#: bin edge is re-binned from NumPy's own angle. Rounding moves the cosine
#: test by about 1e-16.
_NEAR_EDGE = 1e-9


def bin_boundaries(orientations):
    """Bin edges in degrees exactly as scikit-image computes them (float32).

    Returns ``(thr, cos)``: ``thr[i]`` is the lower edge of bin ``i``
    (``thr[orientations]`` the upper edge of the last), and ``cos`` the
    cosine of each edge, for the comparison that finds a pixel's bin.
    """
    per180 = np.float32(180.0 / orientations)
    thr = np.array(
        [np.float32(per180 * np.float32(i)) for i in range(orientations + 1)],
        dtype=np.float64,
    )
    return thr, np.cos(np.deg2rad(thr))


@njit(cache=False)
def _numpy_angle(gy, gx):
    # NumPy's arctan2 may be a SIMD version that rounds differently from
    # libm's, and at a bin edge the last bit decides the bin: ask NumPy.
    # Reached only within rounding distance of an edge: on every 8-bit
    # gradient pair, with 4 to 18 orientations, the cosine test alone
    # already gives NumPy's bin; this is the guard for other inputs.
    with objmode(o="float64"):
        o = float(np.rad2deg(np.arctan2(np.float64(gy), np.float64(gx))) % 180.0)
    return o


@njit(**JIT_SERIAL)
def _bin_exact(gx, gy, thr, n_orient):
    """Bin from NumPy's own angle; for pixels within rounding of an edge."""
    o = _numpy_angle(gy, gx)
    if o >= thr[n_orient]:
        return -1
    b = 0
    while o >= thr[b + 1]:
        b += 1
    return b


@njit(**JIT_SERIAL)
def _edge_tables(cos_b):
    """``(lower, upper)``: the cosine of each bin's lower and upper edge.

    Indexed by a pixel's bin count ``b`` in ``0..n_orient``; the edges that
    never decide a bin (0 degrees below bin 0, anything above the last) are
    10.0, which no cosine comes near.
    """
    n_orient = cos_b.shape[0] - 1
    lower = np.full(n_orient + 1, 10.0)
    upper = np.full(n_orient + 1, 10.0)
    lower[1:] = cos_b[1:]
    upper[:n_orient] = cos_b[1:]
    return lower, upper


@njit(**JIT_SERIAL)
def _vote_row(gx, gy, ci, cell_c, thr, cos_b, edges, hist32, scratch, bins):
    """Add one image row's votes to its cells' float32 histograms.

    ``gx``/``gy`` hold the row's gradients (``width`` = whole cells only);
    ``scratch`` (3, width) float64 and ``bins`` (width) int32 are work rows;
    ``edges`` is :func:`_edge_tables`. ``hist32`` has one bin more than
    there are orientations: votes that count nowhere (zero gradient, an
    angle of 180 degrees) land there, so the voting loop has no branch.

    Folded into the upper half plane (angle in [0, 180]), a direction has
    passed bin edge ``k`` when its cosine ``fx / mag`` is at most
    ``cos(edge k)``, so its bin is the number of edges passed: branch-free
    loops that LLVM vectorises. A pixel within rounding distance of its bin's
    lower or upper edge (rare, and never on the axes, where the angle is
    exact) is re-binned from NumPy's ``rad2deg(arctan2(gy, gx)) % 180``,
    which is what decides scikit-image's bin there.

    Votes are added as scikit-image's Cython kernel adds them: per cell and
    bin, in row-major pixel order, rounding to float32 after each addition.
    """
    width = gx.shape[0]
    n_orient = thr.shape[0] - 1
    lower, upper = edges
    mag = scratch[0]
    fx = scratch[1]
    near = scratch[2]
    for c in range(width):
        x = gx[c]
        y = gy[c]
        flip = (y < 0.0) | ((y == 0.0) & (x < 0.0))
        fx[c] = -x if flip else x
        mag[c] = math.sqrt(x * x + y * y)
        bins[c] = 0
    for k in range(1, n_orient + 1):
        ck = cos_b[k]
        for c in range(width):
            bins[c] += np.int32(fx[c] <= ck * mag[c])
    for c in range(width):
        b = bins[c]
        m = mag[c]
        d = min(abs(fx[c] - lower[b] * m), abs(fx[c] - upper[b] * m))
        on_axis = (gx[c] == 0.0) | (gy[c] == 0.0)
        near[c] = 1.0 if (d <= _NEAR_EDGE * m) & ~on_axis else 0.0
    # one offset in every cell before the next offset: consecutive additions
    # go to different cells and do not wait on each other, while each cell
    # still sees its pixels left to right
    for off in range(cell_c):
        for cj in range(width // cell_c):
            c = cj * cell_c + off
            b = bins[c]
            if near[c] != 0.0:
                b = _bin_exact(gx[c], gy[c], thr, n_orient)
                if b < 0:
                    b = n_orient
            hist32[ci, cj, b] = np.float32(np.float64(hist32[ci, cj, b]) + mag[c])


@njit(**JIT_SERIAL)
def _cell_means(hist32, cell_r, cell_c):
    """float32 cell sums divided by the cell area in float32, as float64.

    ``hist32``'s last bin (the votes that count nowhere) is left out.
    """
    ncr, ncc, n_bins = hist32.shape
    n_orient = n_bins - 1  # the last bin holds the votes that count nowhere
    area = np.float32(cell_r * cell_c)
    hist = np.empty((ncr, ncc, n_orient), dtype=np.float64)
    for i in range(ncr):
        for j in range(ncc):
            for o in range(n_orient):
                hist[i, j, o] = np.float64(np.float32(hist32[i, j, o] / area))
    return hist


@njit(**JIT_SERIAL)
def _cell_histograms(img, cell_r, cell_c, n_orient, thr, cos_b):
    """Cell orientation histograms of one float64 (H, W, C) image.

    Per row: central differences of every channel, the channel with the
    largest magnitude per pixel, then :func:`_vote_row`.
    """
    H, W, C = img.shape
    ncr = H // cell_r
    ncc = W // cell_c
    width = ncc * cell_c
    hist32 = np.zeros((ncr, ncc, n_orient + 1), dtype=np.float32)
    gx = np.zeros(width, dtype=np.float64)
    gy = np.zeros(width, dtype=np.float64)
    best = np.empty(width, dtype=np.float64)
    scratch = np.empty((3, width), dtype=np.float64)
    bins = np.empty(width, dtype=np.int32)
    edges = _edge_tables(cos_b)
    for r in range(ncr * cell_r):
        inner_r = 0 < r < H - 1
        for ch in range(C):
            if C == 1:
                # single channel: straight into gx/gy, branch-free interior
                if inner_r:
                    for c in range(width):
                        gy[c] = img[r + 1, c, 0] - img[r - 1, c, 0]
                else:
                    gy[:] = 0.0
                for c in range(1, min(width, W - 1)):
                    gx[c] = img[r, c + 1, 0] - img[r, c - 1, 0]
                gx[0] = 0.0
                if width == W:
                    gx[W - 1] = 0.0
                continue
            for c in range(width):
                gyc = img[r + 1, c, ch] - img[r - 1, c, ch] if inner_r else 0.0
                gxc = 0.0
                if 0 < c < W - 1:
                    gxc = img[r, c + 1, ch] - img[r, c - 1, ch]
                m = math.hypot(gxc, gyc)
                if ch == 0 or m > best[c]:
                    best[c] = m
                    gx[c] = gxc
                    gy[c] = gyc
        ci = r // cell_r
        _vote_row(gx, gy, ci, cell_c, thr, cos_b, edges, hist32, scratch, bins)
    return _cell_means(hist32, cell_r, cell_c)


@njit(**JIT_SERIAL)
def _pairwise_sum(x, lo, n, square):
    """``np.sum`` of ``x[lo:lo + n]`` squared or absolute, in NumPy's order.

    ``square``: the sum of the squares, else of the absolute values. NumPy's
    pairwise summation of up to 128 values: fewer than 8 one by one, else
    eight running sums over ``k % 8`` combined as
    ``((0+1)+(2+3))+((4+5)+(6+7))``, then the rest one by one. Same bits as
    scikit-image's block norms, and eight independent chains where one
    running sum waited on every addition. Past 128 values NumPy sums two
    halves so and adds them; this goes on with the eight sums (within a last
    bit; a recursive version ran 77 against 56 us per 64x128 image, one
    noisy run).
    """
    if n < 8:
        s = 0.0
        for k in range(lo, lo + n):
            s += x[k] * x[k] if square else abs(x[k])
        return s
    r0 = r1 = r2 = r3 = r4 = r5 = r6 = r7 = 0.0
    m = lo + n - n % 8
    for k in range(lo, m, 8):
        a0, a1, a2, a3 = x[k], x[k + 1], x[k + 2], x[k + 3]
        a4, a5, a6, a7 = x[k + 4], x[k + 5], x[k + 6], x[k + 7]
        if square:
            a0, a1, a2, a3 = a0 * a0, a1 * a1, a2 * a2, a3 * a3
            a4, a5, a6, a7 = a4 * a4, a5 * a5, a6 * a6, a7 * a7
        else:
            a0, a1, a2, a3 = abs(a0), abs(a1), abs(a2), abs(a3)
            a4, a5, a6, a7 = abs(a4), abs(a5), abs(a6), abs(a7)
        r0 += a0
        r1 += a1
        r2 += a2
        r3 += a3
        r4 += a4
        r5 += a5
        r6 += a6
        r7 += a7
    s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for k in range(m, lo + n):
        s += x[k] * x[k] if square else abs(x[k])
    return s


@njit(**JIT_SERIAL)
def _normalize_blocks(hist, block_r, block_c, norm, out):
    """Write normalised overlapping blocks of ``hist`` into ``out`` (1-D).

    scikit-image's arithmetic in its order (NumPy's pairwise block sums,
    divisions by the norm), so the features are its features bit for bit
    for blocks of up to 128 values (3 x 3 cells of 14 orientations), within
    a last bit past that; a product by the reciprocal and one running sum
    were slower and a last bit off in half the values.
    """
    ncr, ncc, n_orient = hist.shape
    flat = hist.reshape(-1)
    row = block_c * n_orient  # one block row is contiguous in hist
    size = block_r * row
    idx = 0
    for br in range(ncr - block_r + 1):
        for bc in range(ncc - block_c + 1):
            blk = out[idx : idx + size]
            for i in range(block_r):
                start = ((br + i) * ncc + bc) * n_orient
                for j in range(row):
                    blk[i * row + j] = flat[start + j]
            if norm == 0 or norm == 1:
                d = _pairwise_sum(blk, 0, size, False) + _EPS
                for k in range(size):
                    blk[k] = math.sqrt(blk[k] / d) if norm == 1 else blk[k] / d
            else:
                d = math.sqrt(_pairwise_sum(blk, 0, size, True) + _EPS * _EPS)
                for k in range(size):
                    blk[k] = blk[k] / d
                if norm == 3:
                    for k in range(size):
                        blk[k] = min(blk[k], 0.2)
                    d = math.sqrt(_pairwise_sum(blk, 0, size, True) + _EPS * _EPS)
                    for k in range(size):
                        blk[k] = blk[k] / d
            idx += size


@njit(**JIT_PARALLEL)
def _hog_batch(
    images,
    denom,
    transform_sqrt,
    cell_r,
    cell_c,
    block_r,
    block_c,
    norm,
    thr,
    cos_b,
    out,
):
    """HOG of every image in an (n, H, W, C) stack, in parallel over images.

    Pixels are converted to float64 as ``value / denom`` (``denom`` is 255
    for uint8 stacks, 1 for float ones), square-rooted when
    ``transform_sqrt``; ``out`` has shape (n, n_features).
    """
    n, H, W, C = images.shape
    n_orient = thr.shape[0] - 1
    for i in prange(n):
        img = np.empty((H, W, C), dtype=np.float64)
        for r in range(H):
            for c in range(W):
                for ch in range(C):
                    v = np.float64(images[i, r, c, ch]) / denom
                    img[r, c, ch] = math.sqrt(v) if transform_sqrt else v
        hist = _cell_histograms(img, cell_r, cell_c, n_orient, thr, cos_b)
        _normalize_blocks(hist, block_r, block_c, norm, out[i])


@njit(**JIT_SERIAL)
def _gray_row(images, i, r, denom, transform_sqrt, dst):
    W = dst.shape[0]
    for c in range(W):
        v = np.float64(images[i, r, c, 0]) / denom
        dst[c] = math.sqrt(v) if transform_sqrt else v


@njit(**JIT_SERIAL)
def _gray_histograms(images, i, denom, transform_sqrt, cell_r, cell_c, thr, cos_b):
    """Cell histograms of gray image ``i`` of a stack, read straight from it.

    The same numbers as :func:`_cell_histograms` on ``images[i] / denom``
    (pixels are converted exactly as there, a row at a time into a rolling
    three-row buffer), without the float64 copy of the whole image.
    """
    _, H, W, _ = images.shape
    n_orient = thr.shape[0] - 1
    ncr = H // cell_r
    ncc = W // cell_c
    width = ncc * cell_c
    hist32 = np.zeros((ncr, ncc, n_orient + 1), dtype=np.float32)
    rows = np.zeros((3, W), dtype=np.float64)
    gx = np.zeros(width, dtype=np.float64)
    gy = np.zeros(width, dtype=np.float64)
    scratch = np.empty((3, width), dtype=np.float64)
    bins = np.empty(width, dtype=np.int32)
    edges = _edge_tables(cos_b)
    _gray_row(images, i, 0, denom, transform_sqrt, rows[1])
    if H > 1:
        _gray_row(images, i, 1, denom, transform_sqrt, rows[2])
    last = min(width, W - 1)
    for r in range(ncr * cell_r):
        # rows[(r + k) % 3] holds image row r - 1 + k
        prv = rows[r % 3]
        cur = rows[(r + 1) % 3]
        nxt = rows[(r + 2) % 3]
        if 0 < r < H - 1:
            for c in range(width):
                gy[c] = nxt[c] - prv[c]
        else:
            gy[:] = 0.0
        for c in range(1, last):
            gx[c] = cur[c + 1] - cur[c - 1]
        gx[0] = 0.0
        if width == W:
            gx[W - 1] = 0.0
        ci = r // cell_r
        _vote_row(gx, gy, ci, cell_c, thr, cos_b, edges, hist32, scratch, bins)
        # the row r + 2 enters the buffer in place of row r - 1
        if r + 2 < H:
            _gray_row(images, i, r + 2, denom, transform_sqrt, rows[r % 3])
    return _cell_means(hist32, cell_r, cell_c)


@njit(**JIT_PARALLEL)
def _hog_gray_batch(
    images,
    denom,
    transform_sqrt,
    cell_r,
    cell_c,
    block_r,
    block_c,
    norm,
    thr,
    cos_b,
    out,
):
    """:func:`_hog_batch` for an (n, H, W, 1) stack, without per-image copies."""
    n = images.shape[0]
    for i in prange(n):
        hist = _gray_histograms(
            images, i, denom, transform_sqrt, cell_r, cell_c, thr, cos_b
        )
        _normalize_blocks(hist, block_r, block_c, norm, out[i])
