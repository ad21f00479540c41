"""Numba kernels for MFCC: arrays in, arrays out, no validation.

A batch of clips is one flat sample array with ``offsets``; its frames are
one (n_frames_total, ...) array with ``frame_offsets``. The kernels run in
parallel over clips; the FFT and the two matrix products (mel filterbank,
DCT) run in between on the whole batch with SciPy/BLAS.
"""

import math

import numpy as np
from numba import njit, prange

from mmfeat.utils._numba import JIT_PARALLEL, JIT_SERIAL

__all__ = [
    "STATS",
    "_db_floor",
    "_deltas_cmvn",
    "_frame",
    "_power",
    "_pool_frames",
]

#: Pooling statistic codes.
STATS = {"mean": 0, "std": 1, "min": 2, "max": 3}
_PERCENTILE = 4


@njit(**JIT_PARALLEL)
def _frame(samples, offsets, n_fft, hop, pad, window, frame_offsets, frames):
    """Windowed frames of every clip (zero padding of ``pad`` samples each side)."""
    for i in prange(offsets.shape[0] - 1):
        start = offsets[i]
        n = offsets[i + 1] - start
        for f in range(frame_offsets[i + 1] - frame_offsets[i]):
            row = frames[frame_offsets[i] + f]
            first = f * hop - pad
            for t in range(n_fft):
                idx = first + t
                v = samples[start + idx] if 0 <= idx < n else 0.0
                row[t] = v * window[t]


@njit(**JIT_PARALLEL)
def _power(spec, power, out):
    """``|spec| ** power`` into ``out`` (``re^2 + im^2`` for power 2)."""
    n, m = spec.shape
    for i in prange(n):
        for j in range(m):
            v = spec[i, j]
            p2 = v.real * v.real + v.imag * v.imag
            out[i, j] = p2 if power == 2.0 else math.sqrt(p2) ** power


@njit(**JIT_PARALLEL)
def _db_floor(mel, frame_offsets, amin, ref_db, top_db, out):
    """``power_to_db`` per clip: 10 log10(max(amin, S)) - ref, floored at max - top_db.

    The floor uses each clip's own maximum, so a batch gives what per-clip
    calls give (librosa's floor is the maximum of whatever array it gets).
    ``top_db < 0`` disables the floor.
    """
    n_mels = mel.shape[1]
    for i in prange(frame_offsets.shape[0] - 1):
        a = frame_offsets[i]
        b = frame_offsets[i + 1]
        top = -np.inf
        for f in range(a, b):
            for m in range(n_mels):
                d = 10.0 * math.log10(max(amin, mel[f, m])) - ref_db
                out[f, m] = d
                top = max(top, d)
        if top_db >= 0:
            low = top - top_db
            for f in range(a, b):
                for m in range(n_mels):
                    if out[f, m] < low:
                        out[f, m] = low


@njit(**JIT_SERIAL)
def _savgol(x, n, col, conv, edge_lo, edge_hi, width, out, out_col):
    """Savitzky-Golay derivative of column ``col`` of x[:n], scipy's 'interp' mode.

    Interior frames: convolution with ``conv``; the first and last
    ``width // 2`` frames: the derivative of the least-squares polynomial
    fitted to the first / last ``width`` frames (``edge_lo`` / ``edge_hi``
    hold those linear maps).
    """
    half = width // 2
    for t in range(half, n - half):
        s = 0.0
        for k in range(width):
            s += conv[k] * x[t + half - k, col]
        out[t, out_col] = s
    for t in range(half):
        lo = 0.0
        hi = 0.0
        for k in range(width):
            lo += edge_lo[t, k] * x[k, col]
            hi += edge_hi[t, k] * x[n - width + k, col]
        out[t, out_col] = lo
        out[n - half + t, out_col] = hi


@njit(**JIT_PARALLEL)
def _deltas_cmvn(
    coef, frame_offsets, n_deltas, conv, edge_lo, edge_hi, widths, cmvn, feat
):
    """Stack coefficients and their deltas per frame, then normalise per clip.

    ``feat`` has shape (n_frames_total, n_coef * (1 + n_deltas)). For a clip
    with ``n`` frames the delta window is the largest prepared width that
    fits (``widths`` is descending, index into ``conv``/``edge_*``); a clip
    too short for the smallest gets zero deltas. ``cmvn``: 0 none, 1 mean,
    2 mean and variance, per clip and column.
    """
    n_coef = coef.shape[1]
    n_feat = feat.shape[1]
    for i in prange(frame_offsets.shape[0] - 1):
        a = frame_offsets[i]
        b = frame_offsets[i + 1]
        n = b - a
        x = coef[a:b]
        out = feat[a:b]
        for t in range(n):
            for c in range(n_coef):
                out[t, c] = x[t, c]
        for d in range(n_deltas):
            w = -1
            for j in range(widths.shape[0]):
                if widths[j] <= n:
                    w = j
                    break
            for c in range(n_coef):
                col = (d + 1) * n_coef + c
                if w < 0:
                    for t in range(n):
                        out[t, col] = 0.0
                else:
                    _savgol(
                        x,
                        n,
                        c,
                        conv[d, w],
                        edge_lo[d, w],
                        edge_hi[d, w],
                        widths[w],
                        out,
                        col,
                    )
        if cmvn > 0 and n > 0:
            for c in range(n_feat):
                mean = 0.0
                for t in range(n):
                    mean += out[t, c]
                mean /= n
                scale = 1.0
                if cmvn == 2:
                    var = 0.0
                    for t in range(n):
                        var += (out[t, c] - mean) ** 2
                    sd = math.sqrt(var / n)
                    scale = 1.0 / sd if sd > 0 else 1.0
                for t in range(n):
                    out[t, c] = (out[t, c] - mean) * scale


@njit(**JIT_PARALLEL)
def _pool_frames(feat, frame_offsets, stats, qs, out):
    """Pool each clip's frames: one block of ``n_feat`` values per statistic.

    ``stats`` codes: 0 mean, 1 std (ddof 0), 2 min, 3 max, 4 percentile
    ``qs[s]`` (linear interpolation, as ``np.percentile``).
    """
    n_feat = feat.shape[1]
    for i in prange(frame_offsets.shape[0] - 1):
        a = frame_offsets[i]
        b = frame_offsets[i + 1]
        n = b - a
        col = np.empty(n, dtype=np.float64)
        for c in range(n_feat):
            for t in range(n):
                col[t] = feat[a + t, c]
            mean = 0.0
            for t in range(n):
                mean += col[t]
            mean /= n
            sorted_col = col.copy()
            has_pct = False
            for s in range(stats.shape[0]):
                if stats[s] == _PERCENTILE:
                    has_pct = True
            if has_pct:
                sorted_col = np.sort(col)
            for s in range(stats.shape[0]):
                code = stats[s]
                if code == 0:
                    v = mean
                elif code == 1:
                    var = 0.0
                    for t in range(n):
                        var += (col[t] - mean) ** 2
                    v = math.sqrt(var / n)
                elif code == 2:
                    v = col.min()
                elif code == 3:
                    v = col.max()
                else:
                    pos = qs[s] / 100.0 * (n - 1)
                    lo = int(math.floor(pos))
                    hi = min(lo + 1, n - 1)
                    v = sorted_col[lo] + (sorted_col[hi] - sorted_col[lo]) * (pos - lo)
                out[i, s * n_feat + c] = v
