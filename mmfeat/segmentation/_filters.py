"""Numba kernels of the pixel filter bank: separable Gaussian passes, per pixel maps.

Arrays in, arrays out, no validation (the public functions in
``_features.py`` check shapes, dtypes and finiteness first). Every kernel is
float32, serial and ``nogil``: the caller runs them in threads (one task
per sigma of a channel, a chunk of rows, or one image per thread), so a
task never waits at a barrier for a thread the machine has not scheduled,
as a ``prange`` launch per pass does (measured: 25x slower at 2 threads than
at 1 on a loaded 2-core machine).

Boundary mode: ``"nearest"`` everywhere (the edge pixel repeats), which is
scikit-image's ``filters.gaussian`` default and ``scipy.ndimage``'s
``mode="nearest"``. Indices are clamped to the image, so an image smaller
than a kernel is handled like SciPy does.

A 1-D pass is a correlation with weights ``w`` of length ``2 r + 1`` (the
Gaussian kernel reversed, as ``scipy.ndimage.gaussian_filter1d`` hands it to
``correlate1d``); symmetric kernels (orders 0 and 2) and antisymmetric ones
(order 1) use their symmetry, so each tap pair costs one multiply, and four
tap pairs share one sweep over the output (:func:`_correlate_flat`). The
inner loops run along the contiguous axis in the same order for every
output, which vectorises without ``fastmath`` (no reassociation, no FMA
contraction: the sums are written in the order they are computed in);
rows are padded to a multiple of 64 floats by the caller so no row ends in
a scalar remainder. Every pass of one kernel shape computes each value by
the same float operations, whichever layout it runs on, so the planar and
the fused paths of ``_features.py`` agree bit for bit.
"""

import numpy as np
from numba import njit

from mmfeat.utils._numba import JIT_SERIAL

__all__ = [
    "gaussian_weights",
    "_eig2",
    "_gradient_magnitude",
    "_hpass",
    "_products",
    "_skimage_maps",
    "_skimage_pixels",
    "_vpass",
    "_vpass_t",
]


def gaussian_weights(sigma, order, truncate=4.0):
    """Correlation weights of a Gaussian (derivative), as SciPy computes them.

    ``scipy.ndimage`` builds ``phi(x) = exp(-x**2 / (2 sigma**2))`` on
    ``x = -r..r`` with ``r = int(truncate * sigma + 0.5)``, normalises it to
    sum 1, multiplies by the derivative's polynomial and reverses it for
    ``correlate1d``. Returns float32 of length ``2 r + 1`` and the parity
    (+1 symmetric, -1 antisymmetric).
    """
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    s2 = float(sigma) ** 2
    phi = np.exp(-0.5 / s2 * x * x)
    phi /= phi.sum()
    if order == 0:
        k = phi
    elif order == 1:
        k = -x / s2 * phi
    elif order == 2:
        k = (x * x / (s2 * s2) - 1.0 / s2) * phi
    else:  # pragma: no cover - callers pass 0, 1 or 2
        raise ValueError(f"order must be 0, 1 or 2; got {order}")
    return np.ascontiguousarray(k[::-1], dtype=np.float32), (-1 if order == 1 else 1)


#: Rows per block of the 1-D passes: each tap group then runs one long loop
#: over the block (vector iterations dominate the loop overhead) while the
#: block and the rows it reads stay in cache.
_BLOCK = 8


@njit(**JIT_SERIAL)
def _correlate_flat(s, b, d, w, k, sym, o):
    """``o[q] = sum_t w[k, r + t] * s[b + q + t * d]`` for ``t = -r..r``.

    ``s`` and ``o`` are flat; taps ``d`` apart (1: along a row, the row
    length: down a column). The kernel's symmetry (``sym``) folds tap pairs
    into one multiply, and four tap pairs share one sweep over ``o`` (one
    load and one store of the sum per four pairs instead of per pair), each
    sweep a branch-free contiguous loop that vectorises.
    """
    n = o.shape[0]
    length = w.shape[1]
    r = length // 2
    c0 = w[k, r]
    x0 = s[b : b + n]
    for q in range(n):
        o[q] = c0 * x0[q]
    t = 1
    while t + 3 <= r:
        c1 = w[k, r + t]
        c2 = w[k, r + t + 1]
        c3 = w[k, r + t + 2]
        c4 = w[k, r + t + 3]
        h1 = s[b + t * d : b + t * d + n]
        h2 = s[b + (t + 1) * d : b + (t + 1) * d + n]
        h3 = s[b + (t + 2) * d : b + (t + 2) * d + n]
        h4 = s[b + (t + 3) * d : b + (t + 3) * d + n]
        l1 = s[b - t * d : b - t * d + n]
        l2 = s[b - (t + 1) * d : b - (t + 1) * d + n]
        l3 = s[b - (t + 2) * d : b - (t + 2) * d + n]
        l4 = s[b - (t + 3) * d : b - (t + 3) * d + n]
        if sym:
            for q in range(n):
                o[q] += (
                    c1 * (h1[q] + l1[q])
                    + c2 * (h2[q] + l2[q])
                    + c3 * (h3[q] + l3[q])
                    + c4 * (h4[q] + l4[q])
                )
        else:
            for q in range(n):
                o[q] += (
                    c1 * (h1[q] - l1[q])
                    + c2 * (h2[q] - l2[q])
                    + c3 * (h3[q] - l3[q])
                    + c4 * (h4[q] - l4[q])
                )
        t += 4
    while t <= r:
        c1 = w[k, r + t]
        h1 = s[b + t * d : b + t * d + n]
        l1 = s[b - t * d : b - t * d + n]
        if sym:
            for q in range(n):
                o[q] += c1 * (h1[q] + l1[q])
        else:
            for q in range(n):
                o[q] += c1 * (h1[q] - l1[q])
        t += 1


@njit(**JIT_SERIAL)
def _correlate_rows2(s, b, d, w, k, sym, o0, o1):
    """:func:`_correlate_flat` for two outputs ``d`` apart, sharing loads.

    ``o0`` is the output at ``b`` and ``o1`` the one at ``b + d`` (the next
    row of a vertical pass): a group of four taps of both reads ten rows,
    not sixteen. Every value gets the same float operations, in the same
    order, as from :func:`_correlate_flat`.
    """
    n = o0.shape[0]
    r = w.shape[1] // 2
    c0 = w[k, r]
    x0 = s[b : b + n]
    x1 = s[b + d : b + d + n]
    for q in range(n):
        o0[q] = c0 * x0[q]
        o1[q] = c0 * x1[q]
    t = 1
    while t + 3 <= r:
        c1 = w[k, r + t]
        c2 = w[k, r + t + 1]
        c3 = w[k, r + t + 2]
        c4 = w[k, r + t + 3]
        # rows b + (t + m) d and b - (t + m - 1) d, m = 0..4
        a0 = s[b + t * d : b + t * d + n]
        a1 = s[b + (t + 1) * d : b + (t + 1) * d + n]
        a2 = s[b + (t + 2) * d : b + (t + 2) * d + n]
        a3 = s[b + (t + 3) * d : b + (t + 3) * d + n]
        a4 = s[b + (t + 4) * d : b + (t + 4) * d + n]
        z0 = s[b - (t - 1) * d : b - (t - 1) * d + n]
        z1 = s[b - t * d : b - t * d + n]
        z2 = s[b - (t + 1) * d : b - (t + 1) * d + n]
        z3 = s[b - (t + 2) * d : b - (t + 2) * d + n]
        z4 = s[b - (t + 3) * d : b - (t + 3) * d + n]
        if sym:
            for q in range(n):
                v0, v1, v2, v3, v4 = a0[q], a1[q], a2[q], a3[q], a4[q]
                u0, u1, u2, u3, u4 = z0[q], z1[q], z2[q], z3[q], z4[q]
                o0[q] += (
                    c1 * (v0 + u1) + c2 * (v1 + u2) + c3 * (v2 + u3) + c4 * (v3 + u4)
                )
                o1[q] += (
                    c1 * (v1 + u0) + c2 * (v2 + u1) + c3 * (v3 + u2) + c4 * (v4 + u3)
                )
        else:
            for q in range(n):
                v0, v1, v2, v3, v4 = a0[q], a1[q], a2[q], a3[q], a4[q]
                u0, u1, u2, u3, u4 = z0[q], z1[q], z2[q], z3[q], z4[q]
                o0[q] += (
                    c1 * (v0 - u1) + c2 * (v1 - u2) + c3 * (v2 - u3) + c4 * (v3 - u4)
                )
                o1[q] += (
                    c1 * (v1 - u0) + c2 * (v2 - u1) + c3 * (v3 - u2) + c4 * (v4 - u3)
                )
        t += 4
    while t <= r:
        c1 = w[k, r + t]
        a0 = s[b + t * d : b + t * d + n]
        a1 = s[b + (t + 1) * d : b + (t + 1) * d + n]
        z0 = s[b - (t - 1) * d : b - (t - 1) * d + n]
        z1 = s[b - t * d : b - t * d + n]
        if sym:
            for q in range(n):
                o0[q] += c1 * (a0[q] + z1[q])
                o1[q] += c1 * (a1[q] + z0[q])
        else:
            for q in range(n):
                o0[q] += c1 * (a0[q] - z1[q])
                o1[q] += c1 * (a1[q] - z0[q])
        t += 1


@njit(**JIT_SERIAL)
def _extend_rows(src, r):
    """``src`` (H, Wp) with ``r`` copies of its first and last rows, flat."""
    h, wp = src.shape
    ext = np.empty((h + 2 * r) * wp, dtype=np.float32)
    for i in range(h + 2 * r):
        row = src[min(max(i - r, 0), h - 1)]
        e = ext[i * wp : (i + 1) * wp]
        for j in range(wp):
            e[j] = row[j]
    return ext


@njit(**JIT_SERIAL)
def _vpass(src, w, parity, out):
    """Correlate each column of ``src`` (H, Wp) with each row of ``w`` (K, L).

    ``out`` is (K, H, Wp); ``parity[k]`` is +1 or -1 (kernel symmetry).
    ``src`` is first extended by ``r`` copies of its first and last rows
    (``"nearest"``), so every output row reads whole rows and each block
    of rows is one flat loop per tap group. Columns are independent, so
    padding columns only cost their time.
    """
    h, wp = src.shape
    n_k, length = w.shape
    r = length // 2
    ext = _extend_rows(src, r)
    for k in range(n_k):
        sym = parity[k] > 0
        o = out[k].reshape(h * wp)
        for b0 in range(0, h, _BLOCK):
            b1 = min(b0 + _BLOCK, h)
            _correlate_flat(ext, (b0 + r) * wp, wp, w, k, sym, o[b0 * wp : b1 * wp])


@njit(**JIT_SERIAL)
def _vpass_t(src, h, w, parity, dst, ext, buf):
    """:func:`_vpass` of one kernel, transposed: ``dst[ext + j, i] = out[i, j]``.

    ``src`` (H + 2 R, Wp) holds the image in rows ``R .. R + H`` (``R =
    (len(src) - h) // 2``, at least the kernel radius) and copies of its
    first and last row around them (``"nearest"``), so every output row
    reads whole rows and each block of rows is one flat loop per tap group.
    ``dst`` (W + 2 ``ext``, Hp) gets the image in rows ``ext .. ext + W``
    (``W <= Wp``, ``Hp >= H``), the same extension of ``ext`` rows
    (ready to be the ``src`` of a second pass) and columns ``H .. Hp``
    (padding) repeating column ``H - 1``. Two such passes smooth both axes
    and leave the image as it was: the second is the horizontal pass (the
    same float operations as :func:`_hpass`, whose edge extension this
    is), with aligned loads instead of ones shifted by each tap. ``buf``
    (at least ``16 * Wp`` floats) is scratch.
    """
    wp = src.shape[1]
    big_r = (src.shape[0] - h) // 2
    hp = dst.shape[1]
    wd = dst.shape[0] - 2 * ext
    s = src.reshape(src.shape[0] * wp)
    blk = 16
    sym = parity[0] > 0
    for b0 in range(0, h, blk):
        b1 = min(b0 + blk, h)
        nb = b1 - b0
        for ii in range(0, nb - 1, 2):
            _correlate_rows2(
                s,
                (b0 + ii + big_r) * wp,
                wp,
                w,
                0,
                sym,
                buf[ii * wp : (ii + 1) * wp],
                buf[(ii + 1) * wp : (ii + 2) * wp],
            )
        if nb % 2:
            _correlate_flat(
                s, (b1 - 1 + big_r) * wp, wp, w, 0, sym, buf[(nb - 1) * wp : nb * wp]
            )
        for j in range(wd):
            d = dst[ext + j, b0:b1]
            for ii in range(nb):
                d[ii] = buf[ii * wp + j]
    for j in range(wd):
        d = dst[ext + j]
        v = d[h - 1]
        for i in range(h, hp):
            d[i] = v
    for j in range(ext):
        dst[j, :] = dst[ext, :]
        dst[ext + wd + j, :] = dst[ext + wd - 1, :]


@njit(**JIT_SERIAL)
def _hpass(src, w, parity, out, wd):
    """Correlate each row of ``src`` (H, Wp) with each row of ``w`` (K, L).

    ``out`` is (K, H, Wp); ``parity[k]`` is +1 or -1 (kernel symmetry).
    The image is ``src[:, :wd]``; columns ``wd..Wp`` are padding, computed
    but meaningless. Each row is first extended by ``r`` edge values on
    both sides (``"nearest"``), so each tap group is one branch-free loop
    over the row, written straight into ``out``.
    """
    h, wp = src.shape
    n_k, length = w.shape
    r = length // 2
    e = wp + 2 * r
    row = np.empty(e, dtype=np.float32)
    for i in range(h):
        s = src[i]
        v = s[0]
        for j in range(r):
            row[j] = v
        for j in range(wd):
            row[r + j] = s[j]
        v = s[wd - 1]
        for j in range(r + wd, e):
            row[j] = v
        for k in range(n_k):
            _correlate_flat(row, r, 1, w, k, parity[k] > 0, out[k, i])


@njit(**JIT_SERIAL)
def _eig2(a, b, c, out, col):
    """Eigenvalues of [[a, b], [b, c]] per pixel, descending, into ``out[col:col+2]``.

    scikit-image's closed form (``_symmetric_compute_eigenvalues``).
    """
    h, wd = a.shape
    half = np.float32(0.5)
    for i in range(h):
        for j in range(wd):
            m00 = a[i, j]
            m01 = b[i, j]
            m11 = c[i, j]
            mean = (m00 + m11) * half
            d = (m00 - m11) * half
            hs = np.sqrt(m01 * m01 + d * d)
            out[col, i, j] = mean + hs
            out[col + 1, i, j] = mean - hs


@njit(**JIT_SERIAL)
def _gradient_magnitude(gx, gy, out, col):
    """``sqrt(gx**2 + gy**2)`` into ``out[col]``."""
    h, wd = gx.shape
    for i in range(h):
        for j in range(wd):
            out[col, i, j] = np.sqrt(gx[i, j] * gx[i, j] + gy[i, j] * gy[i, j])


@njit(**JIT_SERIAL)
def _products(gx, gy, out):
    """``gx*gx``, ``gx*gy``, ``gy*gy`` into ``out`` (3, H, W)."""
    h, wd = gx.shape
    for i in range(h):
        for j in range(wd):
            x = gx[i, j]
            y = gy[i, j]
            out[0, i, j] = x * x
            out[1, i, j] = x * y
            out[2, i, j] = y * y


@njit(**JIT_SERIAL)
def _grad_line(x, y, n):
    """``y[:n] = np.gradient(x[:n])``: central inside, one-sided at the ends.

    ``x`` and ``y`` are whole (contiguous) rows, so the loop vectorises.
    """
    if n < 2:
        for j in range(n):
            y[j] = np.float32(0.0)
        return
    y[0] = x[1] - x[0]
    y[n - 1] = x[n - 1] - x[n - 2]
    half = np.float32(0.5)
    a = x[2:]
    b = x[: n - 2]
    inner = y[1 : n - 1]
    for k in range(n - 2):
        inner[k] = (a[k] - b[k]) * half


@njit(**JIT_SERIAL)
def _grad_rows(rows, i, y, n):
    """``y[:n] = np.gradient(rows, axis=0)[i, :n]`` for the 2-D ``rows``."""
    h = rows.shape[0]
    if h < 2:
        for j in range(n):
            y[j] = np.float32(0.0)
        return
    if i == 0:
        a, b, scale = rows[1], rows[0], np.float32(1.0)
    elif i == h - 1:
        a, b, scale = rows[h - 1], rows[h - 2], np.float32(1.0)
    else:
        a, b, scale = rows[i + 1], rows[i - 1], np.float32(0.5)
    for j in range(n):
        y[j] = (a[j] - b[j]) * scale


@njit(**JIT_SERIAL)
def _sobel_row(e, m, o):
    """One row of the Sobel magnitude ``o = sqrt((sx**2 + sy**2) / 2)``.

    ``sx = [1 2 1] e / 4`` and ``sy = [-1 0 1] m / 4`` along the row, from
    the row's vertical difference ``e`` and vertical smoothing ``m``.
    """
    wd = e.shape[0]
    half = np.float32(0.5)
    quarter = np.float32(0.25)
    two = np.float32(2.0)
    for j in (0, wd - 1):
        lf = max(j - 1, 0)
        rt = min(j + 1, wd - 1)
        sx = (e[lf] + two * e[j] + e[rt]) * quarter
        sy = (m[rt] - m[lf]) * quarter
        o[j] = np.sqrt((sx * sx + sy * sy) * half)
    if wd < 3:
        return
    el, ec, er = e[: wd - 2], e[1 : wd - 1], e[2:]
    ml, mr = m[: wd - 2], m[2:]
    oc = o[1 : wd - 1]
    for j in range(wd - 2):
        sx = (el[j] + two * ec[j] + er[j]) * quarter
        sy = (mr[j] - ml[j]) * quarter
        oc[j] = np.sqrt((sx * sx + sy * sy) * half)


@njit(**JIT_SERIAL)
def _skimage_maps(g, out, col_i, col_e, col_t, wd):
    """scikit-image's per-sigma maps of one smoothed channel ``g`` (H, W).

    Into the planes ``out[col]`` of ``out`` (K, H, W) when ``col >= 0``:
    the smoothed value (``intensity``); the Sobel magnitude
    ``sqrt((sx**2 + sy**2) / 2)`` with a 3x3 kernel in ``"reflect"`` mode,
    equal to ``"nearest"`` for 3 taps (``edges``); the eigenvalues of the
    Hessian from two ``np.gradient`` passes, ``H_rr = d0(d0 g)``,
    ``H_rc = d1(d0 g)``, ``H_cc = d1(d1 g)``, descending (``texture``, two
    columns). The image is ``g[:, :wd]`` (the rest is padding).
    """
    h = g.shape[0]
    half = np.float32(0.5)
    two = np.float32(2.0)
    d0 = np.empty((h if col_t >= 0 else 1, wd), dtype=np.float32)
    if col_t >= 0:
        for i in range(h):
            _grad_rows(g, i, d0[i], wd)
    e = np.empty(wd, dtype=np.float32)
    m = np.empty(wd, dtype=np.float32)
    hrr = np.empty(wd, dtype=np.float32)
    hrc = np.empty(wd, dtype=np.float32)
    hcc = np.empty(wd, dtype=np.float32)
    d1 = np.empty(wd, dtype=np.float32)
    for i in range(h):
        up = max(i - 1, 0)
        dn = min(i + 1, h - 1)
        gi = g[i]
        if col_i >= 0:
            for j in range(wd):
                out[col_i, i, j] = gi[j]
        if col_e >= 0:
            gu = g[up]
            gd = g[dn]
            for j in range(wd):
                e[j] = gd[j] - gu[j]
                m[j] = gu[j] + two * gi[j] + gd[j]
            # x-smoothed e and the x-difference of m: interior as views
            _sobel_row(e, m, out[col_e, i, :wd])
        if col_t >= 0:
            _grad_rows(d0, i, hrr, wd)
            _grad_line(d0[i], hrc, wd)
            _grad_line(gi, d1, wd)
            _grad_line(d1, hcc, wd)
            for j in range(wd):
                mean = (hrr[j] + hcc[j]) * half
                d = (hrr[j] - hcc[j]) * half
                hs = np.sqrt(hrc[j] * hrc[j] + d * d)
                out[col_t, i, j] = mean + hs
                out[col_t + 1, i, j] = mean - hs


#: Pixels per segment of a row in :func:`_skimage_pixels`: the temporaries
#: of one segment stay in the L1 cache.
_SEG = 32


@njit(**JIT_SERIAL)
def _jgrad(x, y, ns, n, a, b):
    """Pixels ``a..b`` of ``np.gradient`` along a flat row of ``n`` pixels by ``ns``.

    ``x[j * ns + s]`` is pixel ``j`` of plane ``s`` (read at pixels
    ``a - 1 .. b``); central inside, one-sided at the ends, as
    :func:`_grad_line` (the same float operations).
    """
    if n < 2:
        y[a * ns : b * ns] = np.float32(0.0)
        return
    if a == 0:
        for s in range(ns):
            y[s] = x[ns + s] - x[s]
    if b == n:
        for s in range((n - 1) * ns, n * ns):
            y[s] = x[s] - x[s - ns]
    lo = max(a, 1) * ns
    hi = min(b, n - 1) * ns
    if hi > lo:
        half = np.float32(0.5)
        xa = x[lo + ns : hi + ns]
        xb = x[lo - ns : hi - ns]
        yi = y[lo:hi]
        for q in range(hi - lo):
            yi[q] = (xa[q] - xb[q]) * half


@njit(**JIT_SERIAL)
def _row_pair(planes, h, wd, ring, tags, i):
    """The rows and scale of ``np.gradient(g, axis=0)[i] = (hi - lo) * scale``."""
    if i == 0:
        ia, ib, scale = 1, 0, np.float32(1.0)
    elif i == h - 1:
        ia, ib, scale = h - 1, h - 2, np.float32(1.0)
    else:
        ia, ib, scale = i + 1, i - 1, np.float32(0.5)
    return (
        _pixel_row(planes, ia, wd, ring, tags),
        _pixel_row(planes, ib, wd, ring, tags),
        scale,
    )


@njit(**JIT_SERIAL)
def _pixel_row(planes, r, wd, ring, tags):
    """Row ``r`` of every plane of ``planes`` (S, H, Wp), pixel by pixel.

    ``ring`` (5, W * S) keeps the last rows built (slot ``r % 5``, row
    number in ``tags``): the maps of a row read rows ``r - 2 .. r + 2``, so
    each row is transposed once.
    """
    slot = r % ring.shape[0]
    row = ring[slot]
    if tags[slot] != r:
        ns = planes.shape[0]
        s = 0
        while s + 3 < ns:  # four planes at a time: stores side by side
            p0, p1, p2, p3 = (
                planes[s, r],
                planes[s + 1, r],
                planes[s + 2, r],
                planes[s + 3, r],
            )
            for j in range(wd):
                q = j * ns + s
                row[q] = p0[j]
                row[q + 1] = p1[j]
                row[q + 2] = p2[j]
                row[q + 3] = p3[j]
            s += 4
        while s < ns:
            p = planes[s, r]
            for j in range(wd):
                row[j * ns + s] = p[j]
            s += 1
        tags[slot] = r
    return row


@njit(**JIT_SERIAL)
def _skimage_pixels(planes, out, per, col_i, col_e, col_t, i0, i1):
    """scikit-image's maps of every smoothed plane, rows ``i0..i1``, pixel by pixel.

    ``planes`` (S, H, Wp) holds the S smoothed planes (channel by channel,
    sigma by sigma; the image is ``[:, :, :W]``); the maps of plane ``s`` go
    to ``out[i, j, s * per + col]`` (``col >= 0``). The same float
    operations as :func:`_skimage_maps`, but on rows transposed to pixel
    order (the S values of a pixel side by side, as in the output): the
    loops run over whole rows of ``W * S`` values (neighbours ``S`` apart)
    and the output is written in pixel order with no transpose of its
    ``4 S`` values per pixel.
    """
    ns = planes.shape[0]
    h, wd = out.shape[:2]
    f = out.shape[2]
    m = wd * ns
    ring = np.empty((5, m), dtype=np.float32)
    tags = np.full(5, -1, dtype=np.int64)
    half = np.float32(0.5)
    quarter = np.float32(0.25)
    two = np.float32(2.0)
    e = np.empty(m, dtype=np.float32)
    mm = np.empty(m, dtype=np.float32)
    sob = np.empty(m, dtype=np.float32)
    d0 = np.empty(m, dtype=np.float32)
    hrr = np.empty(m, dtype=np.float32)
    hrc = np.empty(m, dtype=np.float32)
    d1 = np.empty(m, dtype=np.float32)
    hcc = np.empty(m, dtype=np.float32)
    t1 = np.empty(m, dtype=np.float32)
    t2 = np.empty(m, dtype=np.float32)
    dense = f == ns * per
    default = dense and per == 4 and col_i == 0 and col_e == 1 and col_t == 2
    for i in range(i0, i1):
        gi = _pixel_row(planes, i, wd, ring, tags)
        gu = _pixel_row(planes, max(i - 1, 0), wd, ring, tags)
        gd = _pixel_row(planes, min(i + 1, h - 1), wd, ring, tags)
        if h >= 2:  # np.gradient along rows of rows ia, ib (for H_rr) and i
            if i == 0:
                ia, ib, scale = 1, 0, np.float32(1.0)
            elif i == h - 1:
                ia, ib, scale = h - 1, h - 2, np.float32(1.0)
            else:
                ia, ib, scale = i + 1, i - 1, half
            a_hi, a_lo, a_sc = _row_pair(planes, h, wd, ring, tags, ia)
            b_hi, b_lo, b_sc = _row_pair(planes, h, wd, ring, tags, ib)
            c_hi, c_lo, c_sc = _row_pair(planes, h, wd, ring, tags, i)
        o = out[i].reshape(wd * f)
        # segments of pixels, so that the temporaries stay in the L1 cache;
        # each value is computed by the same operations as over the row
        for j0 in range(0, wd, _SEG):
            j1 = min(j0 + _SEG, wd)
            a1 = max(j0 - 1, 0)
            b1 = min(j1 + 1, wd)
            if col_e >= 0:
                lo, hi = a1 * ns, b1 * ns
                es, ms = e[lo:hi], mm[lo:hi]
                us, cs, ds = gu[lo:hi], gi[lo:hi], gd[lo:hi]
                for q in range(hi - lo):
                    es[q] = ds[q] - us[q]
                    ms[q] = us[q] + two * cs[q] + ds[q]
                for j in (0, wd - 1):
                    if j < j0 or j >= j1:
                        continue
                    lf = max(j - 1, 0) * ns
                    rt = min(j + 1, wd - 1) * ns
                    for s in range(ns):
                        q = j * ns + s
                        sx = (e[lf + s] + two * e[q] + e[rt + s]) * quarter
                        sy = (mm[rt + s] - mm[lf + s]) * quarter
                        sob[q] = np.sqrt((sx * sx + sy * sy) * half)
                lo = max(j0, 1) * ns
                hi = min(j1, wd - 1) * ns
                if hi > lo:
                    n = hi - lo
                    el, ec, er = e[lo - ns : hi - ns], e[lo:hi], e[lo + ns : hi + ns]
                    ml, mr = mm[lo - ns : hi - ns], mm[lo + ns : hi + ns]
                    oc = sob[lo:hi]
                    for q in range(n):
                        sx = (el[q] + two * ec[q] + er[q]) * quarter
                        sy = (mr[q] - ml[q]) * quarter
                        oc[q] = np.sqrt((sx * sx + sy * sy) * half)
            if col_t >= 0:
                if h < 2:
                    hrr[a1 * ns : b1 * ns] = np.float32(0.0)
                    d0[a1 * ns : b1 * ns] = np.float32(0.0)
                else:
                    lo, hi = j0 * ns, j1 * ns
                    ah, al, bh, bl = a_hi[lo:hi], a_lo[lo:hi], b_hi[lo:hi], b_lo[lo:hi]
                    rr = hrr[lo:hi]
                    for q in range(hi - lo):
                        da = (ah[q] - al[q]) * a_sc
                        db = (bh[q] - bl[q]) * b_sc
                        rr[q] = (da - db) * scale
                    lo, hi = a1 * ns, b1 * ns
                    ch, cl, dd = c_hi[lo:hi], c_lo[lo:hi], d0[lo:hi]
                    for q in range(hi - lo):
                        dd[q] = (ch[q] - cl[q]) * c_sc
                _jgrad(d0, hrc, ns, wd, j0, j1)
                _jgrad(gi, d1, ns, wd, a1, b1)
                _jgrad(d1, hcc, ns, wd, j0, j1)
                lo, hi = j0 * ns, j1 * ns
                rr, cc, rc = hrr[lo:hi], hcc[lo:hi], hrc[lo:hi]
                u1, u2 = t1[lo:hi], t2[lo:hi]
                for q in range(hi - lo):
                    mean = (rr[q] + cc[q]) * half
                    d = (rr[q] - cc[q]) * half
                    hs = np.sqrt(rc[q] * rc[q] + d * d)
                    u1[q] = mean + hs
                    u2[q] = mean - hs
            if default:
                lo, hi = j0 * ns, j1 * ns
                oo = o[4 * lo : 4 * hi]
                cs, sb, u1, u2 = gi[lo:hi], sob[lo:hi], t1[lo:hi], t2[lo:hi]
                for q in range(hi - lo):
                    oo[4 * q] = cs[q]
                    oo[4 * q + 1] = sb[q]
                    oo[4 * q + 2] = u1[q]
                    oo[4 * q + 3] = u2[q]
                continue
            for j in range(j0, j1):
                for s in range(ns):
                    q = j * ns + s
                    base = j * f + s * per
                    if col_i >= 0:
                        o[base + col_i] = gi[q]
                    if col_e >= 0:
                        o[base + col_e] = sob[q]
                    if col_t >= 0:
                        o[base + col_t] = t1[q]
                        o[base + col_t + 1] = t2[q]
