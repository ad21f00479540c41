"""Numba kernels for HOG: arrays in, arrays out, no validation.

The numbers follow scikit-image's ``hog`` (``_hog.py`` and
``_hoghistogram.pyx``) exactly: central differences with zero gradient on the
border rows/columns, the channel with the largest gradient magnitude per
pixel, each pixel voting its magnitude into one orientation bin of one cell
(no interpolation), cell sums accumulated in float32 in row-major order and
divided by the cell area, then overlapping blocks (stride one cell)
normalised with ``eps = 1e-5``.

Two things differ in *how*, not in *what*: the orientation bin is found with
cross products against the bin boundaries instead of ``arctan2`` (the same
bin, several times cheaper), and a whole batch runs in one call with
``prange`` over images.
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


def bin_boundaries(orientations):
    """Bin edges in degrees exactly as scikit-image computes them (float32).

    Returns ``(thr, cos, sin)``: ``thr[i]`` is the lower edge of bin ``i``
    (``thr[orientations]`` the upper edge of the last), and ``cos``/``sin``
    the unit direction of each edge, for the cross-product test.
    """
    per180 = np.float32(180.0 / orientations)
    thr = np.array(
        [np.float32(per180 * np.float32(i)) for i in range(orientations + 1)],
        dtype=np.float64,
    )
    rad = np.deg2rad(thr)
    return thr, np.cos(rad), np.sin(rad)


@njit(cache=False)
def _numpy_angle(gy, gx):
    # NumPy's arctan2 may be a SIMD version that rounds differently from
    # libm's, and at a bin edge the last bit decides the bin: ask NumPy.
    # Reached only within rounding distance of an edge (a handful of pixels
    # per image, and only when edges sit on exact angles such as 45 degrees).
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
def _cell_histograms(img, cell_r, cell_c, n_orient, thr, cos_b, sin_b):
    """Cell orientation histograms of one float64 (H, W, C) image.

    Works a row at a time in branch-free loops that LLVM vectorises:
    gradients, magnitudes, then the bin of each pixel as the number of bin
    edges its direction has passed (cross product >= 0). Pixels within
    rounding distance of an edge (rare, and only off the axes) are re-binned
    from NumPy's ``rad2deg(arctan2(gy, gx)) % 180``, which is what decides
    scikit-image's bin there. Votes are then added in scikit-image's order,
    in float32 as its Cython kernel does.
    """
    H, W, C = img.shape
    ncr = H // cell_r
    ncc = W // cell_c
    width = ncc * cell_c
    hist32 = np.zeros((ncr, ncc, n_orient), dtype=np.float32)
    gx = np.zeros(width, dtype=np.float64)
    gy = np.zeros(width, dtype=np.float64)
    best = np.empty(width, dtype=np.float64)
    mag = np.empty(width, dtype=np.float64)
    fx = np.empty(width, dtype=np.float64)
    fy = np.empty(width, dtype=np.float64)
    bins = np.empty(width, dtype=np.int32)
    nearest = np.empty(width, dtype=np.float64)
    for r in range(ncr * cell_r):
        ci = r // cell_r
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
        for c in range(width):
            # fold into the upper half plane: angle in [0, 180)
            flip = gy[c] < 0.0 or (gy[c] == 0.0 and gx[c] < 0.0)
            fx[c] = -gx[c] if flip else gx[c]
            fy[c] = -gy[c] if flip else gy[c]
            mag[c] = math.sqrt(fx[c] * fx[c] + fy[c] * fy[c])
            bins[c] = 0
            nearest[c] = np.inf
        for k in range(1, n_orient + 1):
            ck = cos_b[k]
            sk = sin_b[k]
            for c in range(width):
                cross = ck * fy[c] - sk * fx[c]
                bins[c] += 1 if cross >= 0.0 else 0
                nearest[c] = min(nearest[c], abs(cross))
        for c in range(width):
            if mag[c] == 0.0:
                continue
            b = bins[c]
            # on the axes the angle (0 or 90 degrees) is exact: keep the bin
            if (
                nearest[c] <= 1e-9 * (abs(fx[c]) + abs(fy[c]))
                and fx[c] != 0.0
                and fy[c] != 0.0
            ):
                b = _bin_exact(gx[c], gy[c], thr, n_orient)
            if b < 0 or b >= n_orient:
                continue
            cj = c // cell_c
            hist32[ci, cj, b] = np.float32(np.float64(hist32[ci, cj, b]) + mag[c])
    area = np.float32(cell_r * cell_c)
    hist = np.empty((ncr, ncc, n_orient), dtype=np.float64)
    for i in range(ncr):
        for j in range(ncc):
            for o in range(n_orient):
                hist[i, j, o] = np.float64(np.float32(hist32[i, j, o] / area))
    return hist


@njit(**JIT_SERIAL)
def _normalize_blocks(hist, block_r, block_c, norm, out):
    """Write normalised overlapping blocks of ``hist`` into ``out`` (1-D).

    Divisions by the block norm are multiplications by its reciprocal (a
    last-bit difference from scikit-image's division, far below 1e-12).
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
                s = 0.0
                for k in range(size):
                    s += abs(blk[k])
                inv = 1.0 / (s + _EPS)
                for k in range(size):
                    blk[k] = math.sqrt(blk[k] * inv) if norm == 1 else blk[k] * inv
            else:
                s = 0.0
                for k in range(size):
                    s += blk[k] * blk[k]
                inv = 1.0 / math.sqrt(s + _EPS * _EPS)
                if norm == 2:
                    for k in range(size):
                        blk[k] *= inv
                else:
                    s = 0.0
                    for k in range(size):
                        v = min(blk[k] * inv, 0.2)
                        blk[k] = v
                        s += v * v
                    inv = 1.0 / math.sqrt(s + _EPS * _EPS)
                    for k in range(size):
                        blk[k] *= inv
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
    sin_b,
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
        hist = _cell_histograms(img, cell_r, cell_c, n_orient, thr, cos_b, sin_b)
        _normalize_blocks(hist, block_r, block_c, norm, out[i])


@njit(**JIT_SERIAL)
def _gray_row(images, i, r, denom, transform_sqrt, dst):
    W = dst.shape[0]
    for c in range(W):
        v = np.float64(images[i, r, c, 0]) / denom
        dst[c] = math.sqrt(v) if transform_sqrt else v


@njit(**JIT_SERIAL)
def _gray_histograms(
    images, i, denom, transform_sqrt, cell_r, cell_c, thr, cos_b, sin_b
):
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
    hist32 = np.zeros((ncr, ncc, n_orient), dtype=np.float32)
    rows = np.zeros((3, W), dtype=np.float64)
    gx = np.zeros(width, dtype=np.float64)
    gy = np.zeros(width, dtype=np.float64)
    mag = np.empty(width, dtype=np.float64)
    fx = np.empty(width, dtype=np.float64)
    fy = np.empty(width, dtype=np.float64)
    bins = np.empty(width, dtype=np.int32)
    nearest = np.empty(width, dtype=np.float64)
    _gray_row(images, i, 0, denom, transform_sqrt, rows[1])
    if H > 1:
        _gray_row(images, i, 1, denom, transform_sqrt, rows[2])
    last = min(width, W - 1)
    for r in range(ncr * cell_r):
        # rows[(r + k) % 3] holds image row r - 1 + k
        prv = rows[r % 3]
        cur = rows[(r + 1) % 3]
        nxt = rows[(r + 2) % 3]
        ci = r // cell_r
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
        for c in range(width):
            flip = gy[c] < 0.0 or (gy[c] == 0.0 and gx[c] < 0.0)
            fx[c] = -gx[c] if flip else gx[c]
            fy[c] = -gy[c] if flip else gy[c]
            mag[c] = math.sqrt(fx[c] * fx[c] + fy[c] * fy[c])
            bins[c] = 0
            nearest[c] = np.inf
        for k in range(1, n_orient + 1):
            ck = cos_b[k]
            sk = sin_b[k]
            for c in range(width):
                cross = ck * fy[c] - sk * fx[c]
                bins[c] += 1 if cross >= 0.0 else 0
                nearest[c] = min(nearest[c], abs(cross))
        for c in range(width):
            if mag[c] == 0.0:
                continue
            b = bins[c]
            if (
                nearest[c] <= 1e-9 * (abs(fx[c]) + abs(fy[c]))
                and fx[c] != 0.0
                and fy[c] != 0.0
            ):
                b = _bin_exact(gx[c], gy[c], thr, n_orient)
            if b < 0 or b >= n_orient:
                continue
            cj = c // cell_c
            hist32[ci, cj, b] = np.float32(np.float64(hist32[ci, cj, b]) + mag[c])
        # the row r + 2 enters the buffer in place of row r - 1
        if r + 2 < H:
            _gray_row(images, i, r + 2, denom, transform_sqrt, rows[r % 3])
    area = np.float32(cell_r * cell_c)
    hist = np.empty((ncr, ncc, n_orient), dtype=np.float64)
    for a in range(ncr):
        for j in range(ncc):
            for o in range(n_orient):
                hist[a, j, o] = np.float64(np.float32(hist32[a, j, o] / area))
    return hist


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
    sin_b,
    out,
):
    """:func:`_hog_batch` for an (n, H, W, 1) stack, without per-image copies."""
    n = images.shape[0]
    for i in prange(n):
        hist = _gray_histograms(
            images, i, denom, transform_sqrt, cell_r, cell_c, thr, cos_b, sin_b
        )
        _normalize_blocks(hist, block_r, block_c, norm, out[i])
