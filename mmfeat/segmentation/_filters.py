"""Numba kernels of the pixel filter bank: separable Gaussian passes, per pixel maps.

Arrays in, arrays out, no validation (the public functions in
``_features.py`` check shapes, dtypes and finiteness first). Every kernel is
float32 and runs ``prange`` over image rows.

Boundary mode: ``"nearest"`` everywhere (the edge pixel repeats), which is
scikit-image's ``filters.gaussian`` default and ``scipy.ndimage``'s
``mode="nearest"``. Indices are clamped to the image, so an image smaller
than a kernel is handled like SciPy does.

A 1-D pass is a correlation with weights ``w`` of length ``2 r + 1`` (the
Gaussian kernel reversed, as ``scipy.ndimage.gaussian_filter1d`` hands it to
``correlate1d``); symmetric kernels (orders 0 and 2) and antisymmetric ones
(order 1) use their symmetry, so each tap pair costs one multiply. The
inner loops run along the contiguous axis in the same order for every
output, which vectorises without ``fastmath``.
"""

import numpy as np
from numba import njit, prange

from mmfeat.utils._numba import JIT_PARALLEL, JIT_SERIAL

__all__ = [
    "gaussian_weights",
    "_eig2",
    "_gradient_magnitude",
    "_hpass",
    "_products",
    "_skimage_maps",
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


@njit(**JIT_PARALLEL)
def _vpass(src, w, parity, out):
    """Correlate each column of ``src`` (H, W) with each row of ``w`` (K, L).

    ``out`` is (K, H, W); ``parity[k]`` is +1 or -1 (kernel symmetry).
    """
    h, wd = src.shape
    n_k, length = w.shape
    r = length // 2
    for i in prange(h):
        for k in range(n_k):
            o = out[k, i]
            c0 = w[k, r]
            s = src[i]
            for j in range(wd):
                o[j] = c0 * s[j]
            sym = parity[k] > 0
            for t in range(1, r + 1):
                c = w[k, r + t]
                lo = src[max(i - t, 0)]
                hi = src[min(i + t, h - 1)]
                if sym:
                    for j in range(wd):
                        o[j] += c * (hi[j] + lo[j])
                else:
                    for j in range(wd):
                        o[j] += c * (hi[j] - lo[j])


@njit(**JIT_PARALLEL)
def _hpass(src, w, parity, out):
    """Correlate each row of ``src`` (H, W) with each row of ``w`` (K, L).

    ``out`` is (K, H, W); ``parity[k]`` is +1 or -1 (kernel symmetry).
    """
    h, wd = src.shape
    n_k, length = w.shape
    r = length // 2
    for i in prange(h):
        buf = np.empty(wd + 2 * r, dtype=np.float32)
        s = src[i]
        for j in range(r):
            buf[j] = s[0]
            buf[r + wd + j] = s[wd - 1]
        for j in range(wd):
            buf[r + j] = s[j]
        for k in range(n_k):
            o = out[k, i]
            c0 = w[k, r]
            mid = buf[r : r + wd]
            for j in range(wd):
                o[j] = c0 * mid[j]
            sym = parity[k] > 0
            for t in range(1, r + 1):
                c = w[k, r + t]
                # views, so the indices are plain j (no wrap-around checks)
                hi = buf[r + t : r + t + wd]
                lo = buf[r - t : r - t + wd]
                if sym:
                    for j in range(wd):
                        o[j] += c * (hi[j] + lo[j])
                else:
                    for j in range(wd):
                        o[j] += c * (hi[j] - lo[j])


@njit(**JIT_PARALLEL)
def _eig2(a, b, c, out, col):
    """Eigenvalues of [[a, b], [b, c]] per pixel, descending, into ``out[col:col+2]``.

    scikit-image's closed form (``_symmetric_compute_eigenvalues``).
    """
    h, wd = a.shape
    half = np.float32(0.5)
    for i in prange(h):
        for j in range(wd):
            m00 = a[i, j]
            m01 = b[i, j]
            m11 = c[i, j]
            mean = (m00 + m11) * half
            d = (m00 - m11) * half
            hs = np.sqrt(m01 * m01 + d * d)
            out[col, i, j] = mean + hs
            out[col + 1, i, j] = mean - hs


@njit(**JIT_PARALLEL)
def _gradient_magnitude(gx, gy, out, col):
    """``sqrt(gx**2 + gy**2)`` into ``out[col]``."""
    h, wd = gx.shape
    for i in prange(h):
        for j in range(wd):
            out[col, i, j] = np.sqrt(gx[i, j] * gx[i, j] + gy[i, j] * gy[i, j])


@njit(**JIT_PARALLEL)
def _products(gx, gy, out):
    """``gx*gx``, ``gx*gy``, ``gy*gy`` into ``out`` (3, H, W)."""
    h, wd = gx.shape
    for i in prange(h):
        for j in range(wd):
            x = gx[i, j]
            y = gy[i, j]
            out[0, i, j] = x * x
            out[1, i, j] = x * y
            out[2, i, j] = y * y


@njit(**JIT_SERIAL)
def _grad_line(x, y):
    """``y = np.gradient(x)``: central differences inside, one-sided at the ends."""
    n = x.shape[0]
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
def _grad_rows(rows, i, y):
    """``y = np.gradient(rows, axis=0)[i]`` for the 2-D ``rows``."""
    h, n = rows.shape
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


@njit(**JIT_PARALLEL)
def _skimage_maps(g, out, col_i, col_e, col_t):
    """scikit-image's per-sigma maps of one smoothed channel ``g`` (H, W).

    Into the planes ``out[col]`` of ``out`` (K, H, W) when ``col >= 0``:
    the smoothed value (``intensity``); the Sobel magnitude
    ``sqrt((sx**2 + sy**2) / 2)`` with a 3x3 kernel in ``"reflect"`` mode,
    equal to ``"nearest"`` for 3 taps (``edges``); the eigenvalues of the
    Hessian from two ``np.gradient`` passes, ``H_rr = d0(d0 g)``,
    ``H_rc = d1(d0 g)``, ``H_cc = d1(d1 g)``, descending (``texture``, two
    columns).
    """
    h, wd = g.shape
    half = np.float32(0.5)
    quarter = np.float32(0.25)
    two = np.float32(2.0)
    d0 = np.empty((h, wd), dtype=np.float32)
    if col_t >= 0:
        for i in prange(h):
            _grad_rows(g, i, d0[i])
    for i in prange(h):
        up = max(i - 1, 0)
        dn = min(i + 1, h - 1)
        gi = g[i]
        if col_i >= 0:
            for j in range(wd):
                out[col_i, i, j] = gi[j]
        if col_e >= 0:
            e = np.empty(wd, dtype=np.float32)
            m = np.empty(wd, dtype=np.float32)
            gu = g[up]
            gd = g[dn]
            for j in range(wd):
                e[j] = gd[j] - gu[j]
                m[j] = gu[j] + two * gi[j] + gd[j]
            for j in range(wd):
                lf = max(j - 1, 0)
                rt = min(j + 1, wd - 1)
                sx = (e[lf] + two * e[j] + e[rt]) * quarter
                sy = (m[rt] - m[lf]) * quarter
                out[col_e, i, j] = np.sqrt((sx * sx + sy * sy) * half)
        if col_t >= 0:
            hrr = np.empty(wd, dtype=np.float32)
            hrc = np.empty(wd, dtype=np.float32)
            hcc = np.empty(wd, dtype=np.float32)
            d1 = np.empty(wd, dtype=np.float32)
            _grad_rows(d0, i, hrr)
            _grad_line(d0[i], hrc)
            _grad_line(gi, d1)
            _grad_line(d1, hcc)
            for j in range(wd):
                mean = (hrr[j] + hcc[j]) * half
                d = (hrr[j] - hcc[j]) * half
                hs = np.sqrt(hrc[j] * hrc[j] + d * d)
                out[col_t, i, j] = mean + hs
                out[col_t + 1, i, j] = mean - hs
