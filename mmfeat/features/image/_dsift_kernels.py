"""Numba dense SIFT in the manner of VLFeat's ``vl_dsift``.

For one gray image:

1. gradients by central differences (one-sided at the border), magnitude in
   float32, split into 8 orientation planes with linear interpolation
   between the two nearest orientation bins (angle counter-clockwise with
   the row axis pointing up, bin 0 at angle 0: OpenCV's convention, so the
   128 values are laid out as OpenCV's, ``(row bin * 4 + col bin) * 8 + o``);
2. 4x4 spatial bins of width ``b = size / 4`` centred at ``(k - 1.5) * b``
   from the keypoint; each pixel counts in a bin with the triangular weight
   ``max(0, 1 - |d| / b)`` along each axis (bilinear spatial binning), done
   separably: a pass along the rows of each orientation plane for the 4
   bin columns of a grid column, then a pass along the columns at the
   keypoint rows. Pixels outside the image count as zero;
3. ``window="gaussian"``: each pixel is also weighted by a Gaussian of its
   offset from the keypoint with sigma ``2 b`` (half the patch width:
   VLFeat's ``windowSize = 2`` bins, and OpenCV's ``d / 2``), folded into
   the separable kernels; ``window="flat"``: no window, the descriptor is a
   sample of the triangle-smoothed planes (VLFeat's fast approximation,
   without its per-bin window mean);
4. L2 normalise, clamp at 0.2, renormalise, times 512 (OpenCV's scale,
   not rounded).

Two paths compute the same sums in the same order. On the dense grids
mmfeat builds (columns an integer ``step`` apart, :func:`_grid_step`),
:func:`_describe_regular` streams the image a row at a time and makes every
pass one contiguous multiply-add over all keypoint columns and orientations,
which LLVM vectorises (a per-keypoint loop over 8 orientations does not):
1.75x faster than the plane path on 256x256 images (benchmarks/RESULTS.md).
Any other grid takes :func:`orientation_planes` + :func:`_describe_planes`.
"""

import math

import numpy as np
from numba import njit, prange

from mmfeat.utils._numba import JIT_PARALLEL, JIT_SERIAL

__all__ = [
    "dsift_batch",
    "dsift_batch_into",
    "dsift_image",
    "orientation_planes",
    "root_sift",
]

GAUSSIAN = 0
FLAT = 1

#: the largest row ring :func:`_describe_regular` allocates (it grows with
#: the patch size times the image width over the step); past it, the plane
#: path runs
_RING_BYTES = 64 << 20


#: tan(pi / 8): above it, :func:`_atan_unit` reduces its argument with
#: atan(a) = pi / 4 + atan((a - 1) / (a + 1)).
_TAN_PI_8 = math.tan(math.pi / 8)

# NumPy's error model: no division-by-zero branch (the divisors here are
# never zero), so the per-pixel loops vectorise
_VECTOR = dict(JIT_SERIAL, error_model="numpy")


@njit(**_VECTOR)
def _atan_unit(a):
    """atan(a) for a in [0, 1] to about 1e-10, branch-free (vectorises).

    After the reduction ``|z| <= tan(pi / 8)``, and the alternating Taylor
    series to ``z**21`` is within ``z**23 / 23`` (about 6e-11) of atan(z).
    """
    far = a > _TAN_PI_8
    z = (a - 1.0) / (a + 1.0) if far else a
    s = z * z
    p = -1.0 / 21.0
    p = p * s + 1.0 / 19.0
    p = p * s - 1.0 / 17.0
    p = p * s + 1.0 / 15.0
    p = p * s - 1.0 / 13.0
    p = p * s + 1.0 / 11.0
    p = p * s - 1.0 / 9.0
    p = p * s + 1.0 / 7.0
    p = p * s - 1.0 / 5.0
    p = p * s + 1.0 / 3.0
    return z - z * s * p + (math.pi / 4 if far else 0.0)


@njit(**_VECTOR)
def _angle(y, x):
    """``atan2(y, x)`` in [0, 2 pi), from :func:`_atan_unit` by octant."""
    ax = abs(x)
    ay = abs(y)
    big = max(ax, ay)
    # 0 / tiny = 0 for a zero gradient, without a division-by-zero branch
    r = _atan_unit(min(ax, ay) / (big if big > 0.0 else 1.0))
    r = math.pi / 2 - r if ay > ax else r
    r = math.pi - r if x < 0.0 else r
    return 2.0 * math.pi - r if y < 0.0 else r


@njit(**_VECTOR)
def _row_bins(img, y, gx, gy, lower, w0, w1):
    """Row ``y``'s gradients, then each pixel's two orientation bins.

    ``lower`` gets the lower bin, ``w0`` and ``w1`` the magnitude's shares
    of it and of the next bin (angle by :func:`_angle`, not libm's scalar
    ``atan2``, so the loop vectorises). ``gx``, ``gy`` are scratch rows.
    """
    h, w = img.shape
    scale = 8.0 / (2.0 * math.pi)
    if h == 1:
        gy[:] = 0.0
    elif y == 0:
        for x in range(w):
            gy[x] = float(img[1, x]) - float(img[0, x])
    elif y == h - 1:
        for x in range(w):
            gy[x] = float(img[h - 1, x]) - float(img[h - 2, x])
    else:
        for x in range(w):
            gy[x] = 0.5 * (float(img[y + 1, x]) - float(img[y - 1, x]))
    if w == 1:
        gx[0] = 0.0
    else:
        gx[0] = float(img[y, 1]) - float(img[y, 0])
        gx[w - 1] = float(img[y, w - 1]) - float(img[y, w - 2])
        for x in range(1, w - 1):
            gx[x] = 0.5 * (float(img[y, x + 1]) - float(img[y, x - 1]))
    for x in range(w):
        mag = np.float32(math.sqrt(gx[x] * gx[x] + gy[x] * gy[x]))
        t = _angle(-gy[x], gx[x]) * scale
        f = math.floor(t)
        r = np.float32(t - f)
        lower[x] = np.int32(f) & 7  # t = 8 (an angle of 2 pi) is bin 0
        w0[x] = (np.float32(1.0) - r) * mag
        w1[x] = r * mag


@njit(**_VECTOR)
def orientation_planes(img):
    """Gradient magnitude split into 8 orientation planes, shape (H, W, 8).

    A row at a time (:func:`_row_bins`), each pixel's 8 values written at
    once.
    """
    h, w = img.shape
    planes = np.empty((h, w, 8), dtype=np.float32)
    gx = np.zeros(w, dtype=np.float64)
    gy = np.zeros(w, dtype=np.float64)
    lower = np.empty(w, dtype=np.int32)
    w0 = np.empty(w, dtype=np.float32)
    w1 = np.empty(w, dtype=np.float32)
    for y in range(h):
        _row_bins(img, y, gx, gy, lower, w0, w1)
        for x in range(w):
            for o in range(8):
                planes[y, x, o] = 0.0
            planes[y, x, lower[x]] = w0[x]
            planes[y, x, (lower[x] + 1) & 7] = w1[x]
    return planes


@njit(**JIT_SERIAL)
def _span(centre, b):
    """First and last pixel with a non-zero triangle weight around ``centre``."""
    return int(math.floor(centre - b)) + 1, int(math.ceil(centre + b)) - 1


@njit(**JIT_SERIAL)
def _weights(centre, kp, b, lo, hi, gaussian, out):
    """Triangle (x Gaussian window) weights of pixels ``lo..hi`` into ``out``."""
    inv_2s2 = 1.0 / (2.0 * (2.0 * b) * (2.0 * b))
    for p in range(lo, hi + 1):
        wgt = 1.0 - abs(p - centre) / b
        if wgt < 0.0:
            wgt = 0.0
        if gaussian:
            d = p - kp
            wgt *= math.exp(-d * d * inv_2s2)
        out[p - lo] = wgt


@njit(**JIT_SERIAL)
def _clipped_weights(centre, kp, b, n, gaussian, out):
    """:func:`_weights` of the pixels in ``[0, n)``; returns lo, hi."""
    lo, hi = _span(centre, b)
    lo = max(lo, 0)
    hi = min(hi, n - 1)
    _weights(centre, kp, b, lo, hi, gaussian, out)
    return lo, hi


@njit(**JIT_SERIAL)
def _normalise(d):
    nrm = 0.0
    for k in range(128):
        nrm += float(d[k]) * float(d[k])
    nrm = math.sqrt(nrm)
    if nrm <= 0.0:
        return
    thr = 0.2 * nrm
    nrm2 = 0.0
    for k in range(128):
        v = float(d[k])
        if v > thr:
            v = thr
        d[k] = v
        nrm2 += v * v
    f = 512.0 / max(math.sqrt(nrm2), 1.1920929e-07)
    for k in range(128):
        d[k] = d[k] * f


@njit(**JIT_SERIAL)
def _describe_planes(planes, ys, xs, size_of, y_start, x_start, n_y, n_x, window, out):
    """Descriptors of every grid point, written to ``out`` (n, 128) in order."""
    h, w = planes.shape[0], planes.shape[1]
    gaussian = window == GAUSSIAN
    row = np.zeros((4, h, 8), dtype=np.float64)
    wx = np.zeros(w + 2, dtype=np.float64)
    acc = np.zeros(8, dtype=np.float64)
    k0 = 0
    for s in range(size_of.shape[0]):
        b = size_of[s] / 4.0
        ny, nx = n_y[s], n_x[s]
        # column weights of every keypoint row, once per scale
        col_lo = np.empty((ny, 4), dtype=np.int64)
        col_hi = np.empty((ny, 4), dtype=np.int64)
        col_w = np.zeros((ny, 4, h + 2), dtype=np.float64)
        for iy in range(ny):
            cy = ys[y_start[s] + iy]
            for i in range(4):
                lo, hi = _clipped_weights(
                    cy + (i - 1.5) * b, cy, b, h, gaussian, col_w[iy, i]
                )
                col_lo[iy, i] = lo
                col_hi[iy, i] = hi
        for ix in range(nx):
            cx = xs[x_start[s] + ix]
            # row pass: the 4 bin columns of this grid column, every row
            for j in range(4):
                c = cx + (j - 1.5) * b
                lo, hi = _clipped_weights(c, cx, b, w, gaussian, wx)
                for y in range(h):
                    for o in range(8):
                        acc[o] = 0.0
                    for p in range(lo, hi + 1):
                        wp = wx[p - lo]
                        for o in range(8):
                            acc[o] += wp * planes[y, p, o]
                    for o in range(8):
                        row[j, y, o] = acc[o]
            # column pass at each keypoint row
            for iy in range(ny):
                d = out[k0 + iy * nx + ix]
                for i in range(4):
                    lo = col_lo[iy, i]
                    hi = col_hi[iy, i]
                    wy = col_w[iy, i]
                    for j in range(4):
                        for o in range(8):
                            acc[o] = 0.0
                        for q in range(lo, hi + 1):
                            wq = wy[q - lo]
                            for o in range(8):
                                acc[o] += wq * row[j, q, o]
                        base = (i * 4 + j) * 8
                        for o in range(8):
                            d[base + o] = acc[o]
                _normalise(d)
        k0 += ny * nx


@njit(**JIT_SERIAL)
def _grid_step(xs, x_start, n_x):
    """The grid columns' common integer step, or 0 where there is none.

    Every scale's columns must be ``x0 + k * step`` exactly, with the same
    integer ``step`` (a scale with one column fits any step); 0 also where
    no scale has two columns.
    """
    step = 0.0
    for s in range(n_x.shape[0]):
        if n_x[s] >= 2:
            d = xs[x_start[s] + 1] - xs[x_start[s]]
            if step == 0.0:
                step = d
            elif d != step:
                return 0
    if not (1.0 <= step <= 65536.0) or step != math.floor(step):
        return 0
    for s in range(n_x.shape[0]):
        x0 = xs[x_start[s]]
        for k in range(n_x[s]):
            if xs[x_start[s] + k] != x0 + k * step:
                return 0
    return int(step)


@njit(**_VECTOR)
def _describe_regular(
    img, ys, xs, size_of, y_start, x_start, n_y, n_x, window, step, out
):
    """:func:`_describe_planes` for columns ``step`` pixels apart, vectorised.

    On such a grid the bin columns of every keypoint column of a scale have
    the same weights, shifted by ``step``: so each image row is stored by
    phase (``x % step``), orientation, then ``x // step`` (zero-padded past
    the image), and one tap of the row pass is a single contiguous
    multiply-add over every keypoint column and orientation at once. Row
    pass results stay in a ring of the last rows a keypoint row needs, and
    a keypoint row's column pass (also contiguous, over the 4 bin columns,
    8 orientations and every keypoint column) runs as its last row arrives,
    so nothing image-sized is kept. Same sums in the same order as
    :func:`_describe_planes`. Returns False, having written nothing, where
    the ring would pass ``_RING_BYTES`` (patches hundreds of pixels wide).
    """
    h, w = img.shape
    ns = size_of.shape[0]
    gaussian = window == GAUSSIAN
    bmax = 0.0
    for s in range(ns):
        bmax = max(bmax, size_of[s] / 4.0)
    ntap = int(2.0 * bmax) + 2
    # row pass taps of each scale's first keypoint column (unclipped: the
    # phase rows are zero outside the image), and the padding that needs
    tap_lo = np.empty((ns, 4), dtype=np.int64)
    tap_n = np.empty((ns, 4), dtype=np.int64)
    tap_w = np.zeros((ns, 4, ntap), dtype=np.float64)
    pad = 0
    right = 0
    for s in range(ns):
        b = size_of[s] / 4.0
        x0 = xs[x_start[s]]
        for j in range(4):
            c = x0 + (j - 1.5) * b
            lo, hi = _span(c, b)
            _weights(c, x0, b, lo, hi, gaussian, tap_w[s, j])
            tap_lo[s, j] = lo
            tap_n[s, j] = hi - lo + 1
            pad = max(pad, -lo)
            right = max(right, hi + (n_x[s] - 1) * step - (w - 1))
    ncol = (w - 1 + right + pad) // step + 1
    plane = 8 * ncol
    # phase[(x' % step) * plane + o * ncol + x' // step], x' = x + pad; the
    # tail lets the last phase's shifted reads run past its end (into
    # columns no keypoint uses)
    phase = np.zeros(step * plane + ncol, dtype=np.float32)
    # column pass weights of every keypoint row (clipped to the image), the
    # row each keypoint row's pass waits for, and each scale's ring length
    nys = ys.shape[0]
    col_lo = np.empty((nys, 4), dtype=np.int64)
    col_hi = np.empty((nys, 4), dtype=np.int64)
    col_w = np.zeros((nys, 4, ntap), dtype=np.float64)
    last = np.empty(nys, dtype=np.int64)
    span = np.ones(ns, dtype=np.int64)
    for s in range(ns):
        b = size_of[s] / 4.0
        for g in range(y_start[s], y_start[s] + n_y[s]):
            cy = ys[g]
            first = h
            last[g] = -1
            for i in range(4):
                lo, hi = _clipped_weights(
                    cy + (i - 1.5) * b, cy, b, h, gaussian, col_w[g, i]
                )
                col_lo[g, i] = lo
                col_hi[g, i] = hi
                if lo <= hi:
                    first = min(first, lo)
                    last[g] = max(last[g], hi)
            if last[g] >= first:
                span[s] = max(span[s], last[g] - first + 1)
    nspan = 1
    for s in range(ns):
        nspan = max(nspan, span[s])
    if ns * nspan * 4 * plane * 8 > _RING_BYTES:
        return False  # patches this large: the plane path's memory is less
    ring = np.zeros((ns, nspan, 4 * plane), dtype=np.float64)
    acc = np.zeros(16 * plane, dtype=np.float64)
    gx = np.zeros(w, dtype=np.float64)
    gy = np.zeros(w, dtype=np.float64)
    lower = np.empty(w, dtype=np.int32)
    w0 = np.empty(w, dtype=np.float32)
    w1 = np.empty(w, dtype=np.float32)
    # the lower bin as float32, so the selects compare lanes of one width
    lower_p = np.zeros(step * ncol, dtype=np.float32)
    w0_p = np.zeros(step * ncol, dtype=np.float32)
    w1_p = np.zeros(step * ncol, dtype=np.float32)
    for y in range(h):
        _row_bins(img, y, gx, gy, lower, w0, w1)
        # the two bins of each pixel in phase order, then each phase's 8
        # orientation rows as contiguous selects (the padding stays zero)
        for x in range(w):
            xp = x + pad
            k = (xp % step) * ncol + xp // step
            lower_p[k] = np.float32(lower[x])
            w0_p[k] = w0[x]
            w1_p[k] = w1[x]
        for ph in range(step):
            lp = lower_p[ph * ncol : (ph + 1) * ncol]
            a0 = w0_p[ph * ncol : (ph + 1) * ncol]
            a1 = w1_p[ph * ncol : (ph + 1) * ncol]
            for o in range(8):
                dst = phase[ph * plane + o * ncol : ph * plane + (o + 1) * ncol]
                o0 = np.float32(o)
                o1 = np.float32((o - 1) & 7)
                for c in range(ncol):
                    v = a0[c] if lp[c] == o0 else np.float32(0.0)
                    dst[c] = a1[c] if lp[c] == o1 else v
        k0 = 0
        for s in range(ns):
            slot = ring[s, y % span[s]]
            slot[:] = 0.0
            for j in range(4):
                rr = slot[j * plane : (j + 1) * plane]
                for t in range(tap_n[s, j]):
                    wt = tap_w[s, j, t]
                    q = tap_lo[s, j] + t + pad
                    src = (q % step) * plane + q // step
                    pp = phase[src : src + plane]
                    for k in range(plane):
                        rr[k] += wt * pp[k]
            nx = n_x[s]
            for iy in range(n_y[s]):
                g = y_start[s] + iy
                if last[g] != y:
                    continue
                acc[:] = 0.0
                for i in range(4):
                    ai = acc[i * 4 * plane : (i + 1) * 4 * plane]
                    lo = col_lo[g, i]
                    for q in range(lo, col_hi[g, i] + 1):
                        wq = col_w[g, i, q - lo]
                        src2 = ring[s, q % span[s]]
                        for k in range(4 * plane):
                            ai[k] += wq * src2[k]
                for ix in range(nx):
                    d = out[k0 + iy * nx + ix]
                    for ij in range(16):
                        for o in range(8):
                            d[ij * 8 + o] = acc[ij * plane + o * ncol + ix]
                    _normalise(d)
            k0 += n_y[s] * nx
    return True


@njit(**JIT_SERIAL)
def _describe(img, ys, xs, size_of, y_start, x_start, n_y, n_x, window, out):
    """Descriptors of one image into ``out``: the regular-grid path if it fits."""
    step = _grid_step(xs, x_start, n_x)
    done = step > 0 and _describe_regular(
        img, ys, xs, size_of, y_start, x_start, n_y, n_x, window, step, out
    )
    if not done:
        planes = orientation_planes(img)
        _describe_planes(
            planes, ys, xs, size_of, y_start, x_start, n_y, n_x, window, out
        )


@njit(**JIT_SERIAL)
def root_sift(desc):
    """RootSIFT in place: each row over its sum plus 1e-7, then square-rooted.

    ``desc`` is float32 (n, 128), non-negative. One pass per row, where the
    NumPy version (``desc /= desc.sum(1, keepdims=True) + 1e-7``, then
    ``np.sqrt``) made three over the whole array, a fifth of an image's time
    beside the kernel. Sums in float64 over eight interleaved partial sums
    (so they vectorise), rounded to float32 as NumPy's float32 sum is: within
    an ulp or two of it (tested).
    """
    acc = np.zeros(8)
    for i in range(desc.shape[0]):
        row = desc[i]
        acc[:] = 0.0
        for k0 in range(0, 128, 8):
            for lane in range(8):
                acc[lane] += row[k0 + lane]
        total = np.float32(acc.sum()) + np.float32(1e-7)
        for k in range(128):
            row[k] = np.float32(math.sqrt(row[k] / total))


@njit(**JIT_SERIAL)
def dsift_image(img, ys, xs, size_of, y_start, x_start, n_y, n_x, window):
    """Dense SIFT of one gray uint8 image: float32 array (n, 128)."""
    n = 0
    for s in range(size_of.shape[0]):
        n += n_y[s] * n_x[s]
    out = np.zeros((n, 128), dtype=np.float32)
    if img.shape[0] == 0 or img.shape[1] == 0:
        return out
    _describe(img, ys, xs, size_of, y_start, x_start, n_y, n_x, window, out)
    return out


@njit(**JIT_PARALLEL)
def dsift_batch_into(
    stack, ys, xs, size_of, y_start, x_start, n_y, n_x, window, root, out
):
    """Dense SIFT of same-size images into ``out`` (N, n, 128), in parallel.

    ``root``: RootSIFT each image's rows as it is done (while they are in
    cache; same as :func:`root_sift` over the whole block). ``out`` is
    float32 C-contiguous of exactly that shape (the caller's own buffer:
    nothing here checks it).
    """
    for k in prange(stack.shape[0]):
        if stack.shape[1] == 0 or stack.shape[2] == 0:
            out[k] = 0.0
            continue
        _describe(stack[k], ys, xs, size_of, y_start, x_start, n_y, n_x, window, out[k])
        if root:
            root_sift(out[k])


def dsift_batch(stack, ys, xs, size_of, y_start, x_start, n_y, n_x, window):
    """Dense SIFT of a stack of same-size images, in parallel: (N, n, 128)."""
    n = int((n_y * n_x).sum())
    out = np.empty((stack.shape[0], n, 128), dtype=np.float32)
    dsift_batch_into(
        stack, ys, xs, size_of, y_start, x_start, n_y, n_x, window, False, out
    )
    return out
