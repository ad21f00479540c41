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
(order 1) use their symmetry, so each tap pair costs one multiply. The
inner loops run along the contiguous axis in the same order for every
output, which vectorises without ``fastmath``; rows are padded to a
multiple of 64 floats by the caller so no row ends in a scalar remainder.
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
    "_row_gradient_plane",
    "_skimage_maps",
    "_skimage_stack",
    "_vpass",
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


#: Rows per block of the 1-D passes: each tap then runs one long loop over
#: the block (vector iterations dominate the loop overhead) while the block
#: and the rows it reads stay in cache.
_BLOCK = 16


@njit(**JIT_SERIAL)
def _axpy_pair(o, c, hi, lo, sym):
    """``o += c * (hi + lo)`` (``sym``) or ``o += c * (hi - lo)``."""
    if sym:
        for q in range(o.shape[0]):
            o[q] += c * (hi[q] + lo[q])
    else:
        for q in range(o.shape[0]):
            o[q] += c * (hi[q] - lo[q])


@njit(**JIT_SERIAL)
def _vpass(src, w, parity, out):
    """Correlate each column of ``src`` (H, Wp) with each row of ``w`` (K, L).

    ``out`` is (K, H, Wp); ``parity[k]`` is +1 or -1 (kernel symmetry). The
    rows a tap reads are clamped to the image (``"nearest"``). Columns are
    independent, so padding columns only cost their time. Rows whose taps
    all fall inside the image are one flat loop per tap and block.
    """
    h, wp = src.shape
    n_k, length = w.shape
    r = length // 2
    s = src.reshape(h * wp)
    for k in range(n_k):
        sym = parity[k] > 0
        c0 = w[k, r]
        o2 = out[k]
        o = o2.reshape(h * wp)
        for b0 in range(0, h, _BLOCK):
            b1 = min(b0 + _BLOCK, h)
            ob = o[b0 * wp : b1 * wp]
            sb = s[b0 * wp : b1 * wp]
            for q in range(ob.shape[0]):
                ob[q] = c0 * sb[q]
            for t in range(1, r + 1):
                c = w[k, r + t]
                lo_i = min(max(b0, t), b1)
                hi_i = max(min(b1, h - t), lo_i)
                if hi_i > lo_i:  # interior rows: one flat loop
                    n = (hi_i - lo_i) * wp
                    _axpy_pair(
                        o[lo_i * wp : lo_i * wp + n],
                        c,
                        s[(lo_i + t) * wp : (lo_i + t) * wp + n],
                        s[(lo_i - t) * wp : (lo_i - t) * wp + n],
                        sym,
                    )
                for i in range(b0, b1):  # rows near the top or bottom edge
                    if lo_i <= i < hi_i:
                        continue
                    _axpy_pair(
                        o2[i], c, src[min(i + t, h - 1)], src[max(i - t, 0)], sym
                    )


@njit(**JIT_SERIAL)
def _hpass(src, w, parity, out, wd):
    """Correlate each row of ``src`` (H, Wp) with each row of ``w`` (K, L).

    ``out`` is (K, H, Wp); ``parity[k]`` is +1 or -1 (kernel symmetry).
    The image is ``src[:, :wd]``; columns ``wd..Wp`` are padding, computed
    but meaningless. A block of rows is laid end to end, each extended by
    ``r`` edge values on both sides (``"nearest"``), so each tap is one flat
    loop over the block: a tap reaching into the next row only lands in
    an extension, which is not kept.
    """
    h, wp = src.shape
    n_k, length = w.shape
    r = length // 2
    e = wp + 2 * r
    ext = np.empty(_BLOCK * e, dtype=np.float32)
    res = np.empty(_BLOCK * e, dtype=np.float32)
    for b0 in range(0, h, _BLOCK):
        b1 = min(b0 + _BLOCK, h)
        n = (b1 - b0) * e
        for ii in range(b1 - b0):
            s = src[b0 + ii]
            row = ext[ii * e : (ii + 1) * e]
            for j in range(r):
                row[j] = s[0]
            for j in range(wd):
                row[r + j] = s[j]
            for j in range(r + wd, e):
                row[j] = s[wd - 1]
        for k in range(n_k):
            sym = parity[k] > 0
            c0 = w[k, r]
            for q in range(n):
                res[q] = c0 * ext[q]
            if n > 2 * r:
                for t in range(1, r + 1):
                    _axpy_pair(
                        res[r : n - r],
                        w[k, r + t],
                        ext[r + t : n - r + t],
                        ext[r - t : n - r - t],
                        sym,
                    )
            for ii in range(b1 - b0):
                o = out[k, b0 + ii]
                row = res[ii * e + r : ii * e + r + wp]
                for j in range(wp):
                    o[j] = row[j]


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


@njit(**JIT_SERIAL)
def _row_gradient_plane(g, d0, wd):
    """``d0[:, :wd] = np.gradient(g[:, :wd], axis=0)``."""
    for i in range(g.shape[0]):
        _grad_rows(g, i, d0[i], wd)


@njit(**JIT_SERIAL)
def _skimage_stack(gs, d0s, out, col0, per, col_i, col_e, col_t, i0, i1):
    """scikit-image's maps of every sigma of one channel, rows ``i0..i1``.

    ``gs`` (S, H, Wp) holds the smoothed channel at each sigma and ``d0s``
    its ``np.gradient`` along rows (needed for ``texture`` only); the maps
    of sigma ``s`` go to ``out[i, :, col0 + s * per + col]`` (``col >= 0``),
    the same maps as :func:`_skimage_maps`. Each output row is first built
    as planes of one row (contiguous, vectorised), then written pixel by
    pixel, the ``S * per`` values of a pixel side by side.
    """
    n_s, h, wp = gs.shape
    wd = out.shape[1]
    half = np.float32(0.5)
    two = np.float32(2.0)
    rows = np.empty((n_s * per, wd), dtype=np.float32)
    e = np.empty(wd, dtype=np.float32)
    m = np.empty(wd, dtype=np.float32)
    hrr = np.empty(wd, dtype=np.float32)
    hrc = np.empty(wd, dtype=np.float32)
    hcc = np.empty(wd, dtype=np.float32)
    d1 = np.empty(wd, dtype=np.float32)
    for i in range(i0, i1):
        up = max(i - 1, 0)
        dn = min(i + 1, h - 1)
        for s in range(n_s):
            g = gs[s]
            base = s * per
            gi = g[i]
            if col_i >= 0:
                r_i = rows[base + col_i]
                for j in range(wd):
                    r_i[j] = gi[j]
            if col_e >= 0:
                gu = g[up]
                gd = g[dn]
                for j in range(wd):
                    e[j] = gd[j] - gu[j]
                    m[j] = gu[j] + two * gi[j] + gd[j]
                _sobel_row(e, m, rows[base + col_e])
            if col_t >= 0:
                d0 = d0s[s]
                _grad_rows(d0, i, hrr, wd)
                _grad_line(d0[i], hrc, wd)
                _grad_line(gi, d1, wd)
                _grad_line(d1, hcc, wd)
                r1 = rows[base + col_t]
                r2 = rows[base + col_t + 1]
                for j in range(wd):
                    mean = (hrr[j] + hcc[j]) * half
                    d = (hrr[j] - hcc[j]) * half
                    hs = np.sqrt(hrc[j] * hrc[j] + d * d)
                    r1[j] = mean + hs
                    r2[j] = mean - hs
        o = out[i]
        n_k = n_s * per
        for k in range(n_k):
            rk = rows[k]
            c = col0 + k
            for j in range(wd):
                o[j, c] = rk[j]
