"""Numba kernels for MFCC: arrays in, arrays out, no validation.

A batch of clips is one flat sample array with ``offsets``; its frames are
one (n_frames_total, ...) array with ``frame_offsets``. The kernels run in
parallel over frames, or over (clip, column) pairs, never only over clips,
so one long clip uses every thread as a batch of short ones does. The FFT
runs in between on the whole batch with SciPy; the mel filterbank is applied
sparsely (each band's nonzero bins) inside the power/dB kernel, and the DCT
is one BLAS product.
"""

import math

import numpy as np
from numba import njit, prange

from mmfeat.utils._numba import JIT_PARALLEL, JIT_SERIAL

__all__ = [
    "STATS",
    "_deltas_cmvn",
    "_floor_db",
    "_frame",
    "_power_mel_db",
    "_pool_frames",
]

#: Pooling statistic codes.
STATS = {"mean": 0, "std": 1, "min": 2, "max": 3}
_PERCENTILE = 4


@njit(**JIT_PARALLEL)
def _frame(samples, offsets, n_fft, hop, pad, window, frame_offsets, frames):
    """Windowed frames of every clip (zero padding of ``pad`` samples each side).

    Parallel over all frames of the batch (not over clips), so one long clip
    uses every thread: frame ``g`` finds its clip by bisection in
    ``frame_offsets``.
    """
    n_clips = offsets.shape[0] - 1
    for g in prange(frames.shape[0]):
        lo = 0
        hi = n_clips
        while hi - lo > 1:  # last clip i with frame_offsets[i] <= g
            mid = (lo + hi) // 2
            if frame_offsets[mid] <= g:
                lo = mid
            else:
                hi = mid
        i = lo
        while frame_offsets[i + 1] <= g:  # skip clips with no frames
            i += 1
        start = offsets[i]
        n = offsets[i + 1] - start
        row = frames[g]
        first = (g - frame_offsets[i]) * hop - pad
        if first >= 0 and first + n_fft <= n:
            base = start + first
            for t in range(n_fft):
                row[t] = samples[base + t] * window[t]
        else:
            for t in range(n_fft):
                idx = first + t
                v = samples[start + idx] if 0 <= idx < n else 0.0
                row[t] = v * window[t]


@njit(**JIT_PARALLEL)
def _power_mel_db(spec, power, mel, band_lo, band_hi, amin, ref_db, out, row_top):
    """Power spectrum, mel bands and dB of every frame in one pass (parallel).

    ``mel`` is the (n_mels, n_bins) filterbank; band ``m`` is nonzero only
    on bins ``band_lo[m]:band_hi[m]``, so the product skips the zeros.
    ``row_top`` gets each frame's largest dB value (for the floor).
    """
    n_frames, n_bins = spec.shape
    n_mels = mel.shape[0]
    for f in prange(n_frames):
        p = np.empty(n_bins)
        row = spec[f]
        for j in range(n_bins):
            p[j] = row[j].real * row[j].real + row[j].imag * row[j].imag
        if power != 2.0:
            for j in range(n_bins):
                p[j] = math.sqrt(p[j]) ** power
        top = -np.inf
        for m in range(n_mels):
            acc = 0.0
            for j in range(band_lo[m], band_hi[m]):
                acc += mel[m, j] * p[j]
            d = 10.0 * math.log10(max(amin, acc)) - ref_db
            out[f, m] = d
            top = max(top, d)
        row_top[f] = top


@njit(**JIT_PARALLEL)
def _floor_db(frame_offsets, top_db, row_top, out):
    """Floor each clip's dB values at its maximum - ``top_db`` (parallel)."""
    n_frames, n_mels = out.shape
    low = np.empty(n_frames)
    for i in range(frame_offsets.shape[0] - 1):
        top = -np.inf
        for f in range(frame_offsets[i], frame_offsets[i + 1]):
            top = max(top, row_top[f])
        for f in range(frame_offsets[i], frame_offsets[i + 1]):
            low[f] = top - top_db
    for f in prange(n_frames):
        lf = low[f]
        for m in range(n_mels):
            if out[f, m] < lf:
                out[f, m] = lf


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
    # one task per (clip, coefficient): its column, its deltas, their CMVN,
    # so a single long clip still splits across threads
    for task in prange((frame_offsets.shape[0] - 1) * n_coef):
        i = task // n_coef
        c = task % n_coef
        a = frame_offsets[i]
        b = frame_offsets[i + 1]
        n = b - a
        x = coef[a:b]
        out = feat[a:b]
        for t in range(n):
            out[t, c] = x[t, c]
        w = -1
        for j in range(widths.shape[0]):
            if widths[j] <= n:
                w = j
                break
        for d in range(n_deltas):
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
            for d in range(n_deltas + 1):
                col = d * n_coef + c
                mean = 0.0
                for t in range(n):
                    mean += out[t, col]
                mean /= n
                scale = 1.0
                if cmvn == 2:
                    var = 0.0
                    for t in range(n):
                        var += (out[t, col] - mean) ** 2
                    sd = math.sqrt(var / n)
                    scale = 1.0 / sd if sd > 0 else 1.0
                for t in range(n):
                    out[t, col] = (out[t, col] - mean) * scale


@njit(**JIT_PARALLEL)
def _pool_frames(feat, frame_offsets, stats, qs, out):
    """Pool each clip's frames: one block of ``n_feat`` values per statistic.

    ``stats`` codes: 0 mean, 1 std (ddof 0), 2 min, 3 max, 4 percentile
    ``qs[s]`` (linear interpolation, as ``np.percentile``).
    """
    n_feat = feat.shape[1]
    has_pct = False
    for s in range(stats.shape[0]):
        if stats[s] == _PERCENTILE:
            has_pct = True
    # one task per (clip, column), so a single long clip splits too
    for task in prange((frame_offsets.shape[0] - 1) * n_feat):
        i = task // n_feat
        c = task % n_feat
        a = frame_offsets[i]
        b = frame_offsets[i + 1]
        n = b - a
        col = np.empty(n, dtype=np.float64)
        for t in range(n):
            col[t] = feat[a + t, c]
        mean = 0.0
        for t in range(n):
            mean += col[t]
        mean /= n
        sorted_col = np.sort(col) if has_pct else col
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
