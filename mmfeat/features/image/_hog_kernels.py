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
``arctan2`` (the same bin, several times cheaper: in float32, 16 pixels per
instruction, and in float64 only near an edge; see :func:`_vote_row`), and
a whole batch runs in one call with ``prange`` over images.
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


#: Division without numba's zero check, which keeps a loop scalar.
_VECTOR = dict(JIT_SERIAL, error_model="numpy")

#: Bin edges compared per pass of the float32 test (the default 9
#: orientations in one pass; the loop over them is unrolled).
_TILE = 9

#: Half-width, in cosine, of the band around each bin edge inside which the
#: float32 test defers to the float64 one: about 170 times the float32
#: rounding of a pixel's cosine and of the edge's.
_TOL32 = 1e-5


@njit(**JIT_SERIAL)
def _edge_tables(cos_b, thr):
    """Per-orientation-count tables for :func:`_vote_row`.

    Returns ``(lower, upper, lo32, hi32, t90)``:

    - ``lower``/``upper``: the cosine of each bin's lower and upper edge,
      indexed by a pixel's bin count ``b`` in ``0..n_orient``; the edges
      that never decide a bin (0 degrees below bin 0, anything above the
      last) are 10.0, which no cosine comes near;
    - ``lo32``/``hi32``: each edge's cosine minus and plus :data:`_TOL32`
      in float32, padded to whole tiles of :data:`_TILE` with ``-inf``
      (which no cosine passes);
    - ``t90``: the cosine of the middle of the bin that holds 90 degrees,
      for vertical directions (``gx == 0``), whose angle is exact.
    """
    n_orient = cos_b.shape[0] - 1
    lower = np.full(n_orient + 1, 10.0)
    upper = np.full(n_orient + 1, 10.0)
    lower[1:] = cos_b[1:]
    upper[:n_orient] = cos_b[1:]
    n_tiles = (n_orient + _TILE - 1) // _TILE
    lo32 = np.full(n_tiles * _TILE, -np.inf, dtype=np.float32)
    hi32 = np.full(n_tiles * _TILE, -np.inf, dtype=np.float32)
    for k in range(1, n_orient + 1):
        lo32[k - 1] = np.float32(cos_b[k] - _TOL32)
        hi32[k - 1] = np.float32(cos_b[k] + _TOL32)
    b90 = 0  # scikit-image's bin of 90.0 degrees: the last edge <= 90
    while b90 + 1 < n_orient and thr[b90 + 1] <= 90.0:
        b90 += 1
    t90 = np.float32(math.cos(math.radians(0.5 * (thr[b90] + thr[b90 + 1]))))
    return lower, upper, lo32, hi32, t90


@njit(**JIT_SERIAL)
def _bin_f64(x, y, fx, m, cos_b, lower, upper, thr, n_orient):
    """One pixel's bin from the float64 cosine test (see :func:`_vote_row`).

    ``x``/``y`` are its gradients, ``fx``/``m`` the folded x gradient and
    the magnitude. Within rounding distance of an edge (never on the axes,
    where the angle is exact) the bin comes from NumPy's own angle.
    """
    b = 0
    for k in range(1, n_orient + 1):
        b += np.int32(fx <= cos_b[k] * m)
    d = min(abs(fx - lower[b] * m), abs(fx - upper[b] * m))
    if d <= _NEAR_EDGE * m and x != 0.0 and y != 0.0:
        b = _bin_exact(x, y, thr, n_orient)
        if b < 0:
            b = n_orient
    return b


@njit(**_VECTOR)
def _vote_row(gx, gy, ci, cell_c, thr, cos_b, edges, hist32, scratch, t32, bins):
    """Add one image row's votes to its cells' float32 histograms.

    ``gx``/``gy`` hold the row's gradients (``width`` = whole cells only);
    ``scratch`` (2, width) float64, ``t32`` (width) float32 and ``bins``
    (width) int32 are work rows; ``edges`` is :func:`_edge_tables`.
    ``hist32`` has one bin more than there are orientations: votes that
    count nowhere (zero gradient, an angle of 180 degrees) land there, so
    the voting loop has no branch on them.

    Folded into the upper half plane (angle in [0, 180]), a direction has
    passed bin edge ``k`` when its cosine ``fx / mag`` is at most
    ``cos(edge k)``, so its bin is the number of edges passed. That count
    runs twice in float32, 16 pixels per instruction, against each edge's
    cosine moved down and up by :data:`_TOL32`: the two counts agree, and
    then are the bin, unless the cosine lies within that band of an edge,
    far wider than float32 rounding. Only those pixels (3 in a million on
    the benchmark's photographs, none on 300 fashion photos) take the
    float64 test, :func:`_bin_f64`, which defers to NumPy's
    ``rad2deg(arctan2(gy, gx)) % 180`` within rounding distance of an edge:
    what decides scikit-image's bin there. Vertical directions
    (exactly 90 degrees, an edge for an even count) are given the cosine of
    their bin's middle, and zero gradients ``-2``, which passes every edge
    into the spill bin.

    Votes are added as scikit-image's Cython kernel adds them: per cell and
    bin, in row-major pixel order, rounding to float32 after each addition.
    """
    width = gx.shape[0]
    n_orient = thr.shape[0] - 1
    lower, upper, lo32, hi32, t90 = edges
    mag = scratch[0]
    fx = scratch[1]
    for c in range(width):
        x = gx[c]
        y = gy[c]
        flip = (y < 0.0) | ((y == 0.0) & (x < 0.0))
        f = -x if flip else x
        m = math.sqrt(x * x + y * y)
        fx[c] = f
        mag[c] = m
        t = t90 if x == 0.0 else np.float32(f / m)
        t32[c] = np.float32(-2.0) if m == 0.0 else t
    near = np.int32(1 << 16)  # above any count: "take the float64 test"
    for k0 in range(0, lo32.shape[0], _TILE):
        for c in range(width):
            t = t32[c]
            lo = np.int32(0)
            hi = np.int32(0)
            for j in range(_TILE):
                lo += np.int32(t <= lo32[k0 + j])
                hi += np.int32(t <= hi32[k0 + j])
            count = lo if lo == hi else lo + near
            bins[c] = count if k0 == 0 else bins[c] + count
    # one offset in every cell before the next offset: consecutive additions
    # go to different cells and do not wait on each other, while each cell
    # still sees its pixels left to right
    for off in range(cell_c):
        for cj in range(width // cell_c):
            c = cj * cell_c + off
            b = bins[c]
            if b >= near:
                b = _bin_f64(
                    gx[c], gy[c], fx[c], mag[c], cos_b, lower, upper, thr, n_orient
                )
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
    scratch = np.empty((2, width), dtype=np.float64)
    t32 = np.empty(width, dtype=np.float32)
    bins = np.empty(width, dtype=np.int32)
    edges = _edge_tables(cos_b, thr)
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
        _vote_row(gx, gy, ci, cell_c, thr, cos_b, edges, hist32, scratch, t32, bins)
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
    scratch = np.empty((2, width), dtype=np.float64)
    t32 = np.empty(width, dtype=np.float32)
    bins = np.empty(width, dtype=np.int32)
    edges = _edge_tables(cos_b, thr)
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
        _vote_row(gx, gy, ci, cell_c, thr, cos_b, edges, hist32, scratch, t32, bins)
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
