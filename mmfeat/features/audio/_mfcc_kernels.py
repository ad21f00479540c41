"""Numba kernels for MFCC: arrays in, arrays out, no validation.

A batch of clips is one flat sample array with ``offsets``; its frames are
one (n_frames_total, ...) array with ``frame_offsets``. The kernels run in
parallel over frames, runs of a clip's frames or (clip, column) pairs,
never only over clips, so one long clip uses every thread as a batch of
short ones does. For a
power-of-two ``n_fft`` one kernel (:func:`_stft_mel_db`) frames, transforms
(its own FFT, vectorised across frames) and takes the mel dB of blocks of
frames, with no frame or spectrum array; otherwise SciPy's FFT runs in
between on the whole batch. The mel filterbank is applied sparsely (each
band's nonzero bins), and the DCT is one single-threaded BLAS product.
"""

import functools
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
    "_stft_mel_db",
    "fft_tables",
    "_pool_frames",
]

#: Pooling statistic codes.
STATS = {"mean": 0, "std": 1, "min": 2, "max": 3}
_PERCENTILE = 4


@njit(**JIT_SERIAL)
def _clip_of(frame_offsets, g):
    """The clip that frame ``g`` belongs to, by bisection over the offsets."""
    lo = 0
    hi = frame_offsets.shape[0] - 1
    while hi - lo > 1:  # last clip i with frame_offsets[i] <= g
        mid = (lo + hi) // 2
        if frame_offsets[mid] <= g:
            lo = mid
        else:
            hi = mid
    while frame_offsets[lo + 1] <= g:  # skip clips with no frames
        lo += 1
    return lo


@njit(**JIT_PARALLEL)
def _frame(samples, offsets, n_fft, hop, pad, window, frame_offsets, frames):
    """Windowed frames of every clip (zero padding of ``pad`` samples each side).

    Parallel over all frames of the batch (not over clips), so one long clip
    uses every thread: frame ``g`` finds its clip by bisection in
    ``frame_offsets``.
    """
    for g in prange(frames.shape[0]):
        i = _clip_of(frame_offsets, g)
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


_LN2 = math.log(2.0)
_INV_LN10 = 1.0 / math.log(10.0)
_SQRT2 = math.sqrt(2.0)
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_EXP = 0x3FF0000000000000


@njit(**dict(JIT_SERIAL, error_model="numpy"))
def _log10_into(x, out, ebuf):
    """``out = log10(x)`` for positive ``x``, in loops that vectorise.

    libm's scalar ``log10`` was a fifth of the fused kernel. The exponent and
    mantissa come from the bits (``x = 2**e * m``, ``m`` in [sqrt(1/2),
    sqrt(2))), then ``ln m = 2 atanh(s)``, ``s = (m - 1) / (m + 1)``, to
    ``s**21`` (``|s| <= 0.172``: truncation below 1e-17). Within a few ulp
    of ``np.log10`` (tested); subnormal, zero, negative or non-finite ``x``
    (never reached from the kernel, which floors at ``amin``) get NumPy's
    answers. ``x`` is scratch: its bits are overwritten.
    """
    n = x.shape[0]
    bits = x.view(np.int64)
    for k in range(n):
        b = bits[k]
        ebuf[k] = ((b >> 52) & 0x7FF) - 1023
        out[k] = x[k]  # kept for the fix-up below
        bits[k] = (b & _MANTISSA) | _ONE_EXP
    for k in range(n):
        m = x[k]
        e = ebuf[k]
        big = m > _SQRT2
        m = 0.5 * m if big else m
        e = e + 1 if big else e
        s = (m - 1.0) / (m + 1.0)
        z = s * s
        q = 1.0 / 21.0
        q = q * z + 1.0 / 19.0
        q = q * z + 1.0 / 17.0
        q = q * z + 1.0 / 15.0
        q = q * z + 1.0 / 13.0
        q = q * z + 1.0 / 11.0
        q = q * z + 1.0 / 9.0
        q = q * z + 1.0 / 7.0
        q = q * z + 1.0 / 5.0
        q = q * z + 1.0 / 3.0
        q = q * z + 1.0
        v = out[k]  # the input
        ok = 2.2250738585072014e-308 <= v <= 1.7976931348623157e308
        out[k] = (2.0 * s * q + e * _LN2) * _INV_LN10 if ok else v
        ebuf[k] = 0 if ok else 1
    for k in range(n):
        if ebuf[k]:
            v = out[k]
            if 0.0 < v < np.inf:  # subnormal
                out[k] = math.log10(v)
            elif v == 0.0:
                out[k] = -np.inf
            elif v != np.inf:  # negative or NaN (log10(inf) is inf: kept)
                out[k] = np.nan
    return out


#: frames per block of the fused kernel: the FFT's inner loops run over
#: them. 64 (a 256 KB block at n_fft=512) with the radix-4 stages against
#: 16 with radix-2 ones: 1.27x at n_fft=512, 1.32x at 256 (one thread);
#: with radix-2 stages the wider block alone gained nothing at 512.
_LANES = 64


@functools.lru_cache(maxsize=16)
def fft_tables(n_fft):
    """Tables of :func:`_stft_mel_db` for a power-of-two ``n_fft`` >= 8.

    ``rev``: bit reversal of ``range(n_fft // 2)``; ``tw``: the half-size
    complex FFT's twiddles ``exp(-2 pi i j / (n_fft / 2))``, ``j < 3 n_fft / 8``
    (the radix-4 stages' third twiddle reaches past ``n_fft / 4``);
    ``post``: the real-FFT split's ``exp(-2 pi i k / n_fft)``, ``k <= n_fft / 2``.
    Returns None for any other ``n_fft`` (SciPy's FFT then runs instead).
    Built once per size (cached, read-only): each batch used to rebuild them.
    """
    if n_fft < 8 or n_fft & (n_fft - 1):
        return None
    m = n_fft // 2
    bits = m.bit_length() - 1
    idx = np.arange(m)
    rev = np.zeros(m, dtype=np.int64)
    for b in range(bits):
        rev |= ((idx >> b) & 1) << (bits - 1 - b)
    j = np.arange(3 * m // 4)
    k = np.arange(m + 1)
    tables = (
        rev,
        np.cos(-2 * np.pi * j / m),
        np.sin(-2 * np.pi * j / m),
        np.cos(-2 * np.pi * k / n_fft),
        np.sin(-2 * np.pi * k / n_fft),
    )
    for t in tables:  # cached and shared: never written
        t.flags.writeable = False
    return tables


@njit(**JIT_PARALLEL)
def _stft_mel_db(
    samples,
    offsets,
    n_fft,
    hop,
    pad,
    window,
    frame_offsets,
    rev,
    tw_re,
    tw_im,
    post_re,
    post_im,
    power,
    mel,
    band_lo,
    band_hi,
    amin,
    ref_db,
    out,
    row_top,
):
    """:func:`_frame`, the real FFT and :func:`_power_mel_db` in one pass.

    For a power-of-two ``n_fft`` (tables from :func:`fft_tables`). Blocks of
    ``_LANES`` frames run in parallel; in a block, each frame's ``n_fft``
    real samples are the ``n_fft / 2`` complex values ``x[2n] + i x[2n+1]``
    (placed in bit-reversed order), one decimation-in-time FFT of that half
    size (one twiddle-free radix-2 stage where the count of stages is odd,
    then radix-4 stages) runs with the frames as the
    innermost (vectorised) axis, and the standard split gives the
    ``n_fft / 2 + 1`` bins of the real FFT. A block loads every lane at
    once, then reloads the frames that reach past their clip (zero
    padding) one by one. No frame or spectrum array is written; the mel and
    dB steps are those of :func:`_power_mel_db`, sums in the same order.
    """
    n_frames = out.shape[0]
    n_mels = mel.shape[0]
    m = n_fft // 2
    n_bins = m + 1
    lanes = _LANES
    n_blocks = (n_frames + lanes - 1) // lanes
    bits = 0  # log2(m)
    while (1 << bits) < m:
        bits += 1
    for blk in prange(n_blocks):
        g0 = blk * lanes
        re = np.zeros((m, lanes))
        im = np.zeros((m, lanes))
        p = np.empty((n_bins, lanes))
        melv = np.empty(n_mels * lanes)
        logv = np.empty(n_mels * lanes)
        ebuf = np.empty(n_mels * lanes, dtype=np.int64)
        # where each frame starts in ``samples``; frames that reach past
        # their clip (the zero padding) are loaded one by one
        fstart = np.empty(lanes, dtype=np.int64)
        n_edge = 0
        for lane in range(lanes):
            g = g0 + lane
            fstart[lane] = 0  # a frame past the end: any samples (not kept)
            if g >= n_frames:
                n_edge += 1
                continue
            i = _clip_of(frame_offsets, g)
            first = (g - frame_offsets[i]) * hop - pad
            if first >= 0 and first + n_fft <= offsets[i + 1] - offsets[i]:
                fstart[lane] = offsets[i] + first
            else:
                n_edge += 1
        if n_edge < lanes:
            # some frame lies inside its clip, so ``samples`` holds n_fft
            # values from 0: every lane loads at once (the edge frames'
            # lanes are loaded again below)
            for t in range(m):
                r = rev[t]
                w0 = window[2 * t]
                w1 = window[2 * t + 1]
                rr = re[r]
                ir = im[r]
                for lane in range(lanes):
                    a = fstart[lane] + 2 * t
                    rr[lane] = samples[a] * w0
                    ir[lane] = samples[a + 1] * w1
        if n_edge > 0:
            # frames that reach past their clip (the zero padding), one by one
            for lane in range(lanes):
                g = g0 + lane
                if g >= n_frames:
                    continue
                i = _clip_of(frame_offsets, g)
                start = offsets[i]
                n = offsets[i + 1] - start
                first = (g - frame_offsets[i]) * hop - pad
                if first >= 0 and first + n_fft <= n:
                    continue
                for t in range(m):
                    a = first + 2 * t
                    x0 = samples[start + a] if 0 <= a < n else 0.0
                    x1 = samples[start + a + 1] if 0 <= a + 1 < n else 0.0
                    re[rev[t], lane] = x0 * window[2 * t]
                    im[rev[t], lane] = x1 * window[2 * t + 1]
        size = 1  # the size of the sub-FFTs done so far
        if bits % 2 == 1:
            # an odd count of stages: one twiddle-free radix-2 stage first
            for base in range(0, m, 2):
                ra = re[base]
                ia = im[base]
                rb = re[base + 1]
                ib = im[base + 1]
                for lane in range(lanes):
                    tr = rb[lane]
                    ti = ib[lane]
                    rb[lane] = ra[lane] - tr
                    ib[lane] = ia[lane] - ti
                    ra[lane] = ra[lane] + tr
                    ia[lane] = ia[lane] + ti
            size = 2
        # then radix-4 stages: four sub-FFTs of ``size`` into one of 4 x size,
        # three twiddles instead of two stages' four (a sixth fewer
        # operations; the first pass's twiddles are all 1, exact products).
        # In bit-reversed order the sub-FFT of the second quarter of the
        # decimated input sits at offset 2 s, the third's at s.
        while 4 * size <= m:
            s1 = size
            st = m // (4 * s1)
            for base in range(0, m, 4 * s1):
                for j in range(s1):
                    w1r = tw_re[j * st]
                    w1i = tw_im[j * st]
                    w2r = tw_re[2 * j * st]
                    w2i = tw_im[2 * j * st]
                    w3r = tw_re[3 * j * st]
                    w3i = tw_im[3 * j * st]
                    r0 = re[base + j]
                    i0 = im[base + j]
                    r1 = re[base + j + s1]
                    i1 = im[base + j + s1]
                    r2 = re[base + j + 2 * s1]
                    i2 = im[base + j + 2 * s1]
                    r3 = re[base + j + 3 * s1]
                    i3 = im[base + j + 3 * s1]
                    for lane in range(lanes):
                        ar = r0[lane]
                        ai = i0[lane]
                        # b = W^j Y1 (offset 2 s), c = W^2j Y2 (offset s),
                        # d = W^3j Y3 (offset 3 s)
                        br = w1r * r2[lane] - w1i * i2[lane]
                        bi = w1r * i2[lane] + w1i * r2[lane]
                        cr = w2r * r1[lane] - w2i * i1[lane]
                        ci = w2r * i1[lane] + w2i * r1[lane]
                        dr = w3r * r3[lane] - w3i * i3[lane]
                        di = w3r * i3[lane] + w3i * r3[lane]
                        t0r = ar + cr
                        t0i = ai + ci
                        t1r = ar - cr
                        t1i = ai - ci
                        t2r = br + dr
                        t2i = bi + di
                        t3r = br - dr
                        t3i = bi - di
                        r0[lane] = t0r + t2r
                        i0[lane] = t0i + t2i
                        r2[lane] = t0r - t2r
                        i2[lane] = t0i - t2i
                        # X[j + s] = t1 - i t3, X[j + 3 s] = t1 + i t3
                        r1[lane] = t1r + t3i
                        i1[lane] = t1i - t3r
                        r3[lane] = t1r - t3i
                        i3[lane] = t1i + t3r
            size *= 4
        # X[k] = E[k] + W^k O[k], E and O from Z[k] and conj(Z[m - k])
        for k in range(n_bins):
            k1 = k % m
            k2 = (m - k) % m
            wr = post_re[k]
            wi = post_im[k]
            ra = re[k1]
            ia = im[k1]
            rc = re[k2]
            ic = im[k2]
            pk = p[k]
            for lane in range(lanes):
                er = 0.5 * (ra[lane] + rc[lane])
                ei = 0.5 * (ia[lane] - ic[lane])
                orr = 0.5 * (ia[lane] + ic[lane])
                oi = -0.5 * (ra[lane] - rc[lane])
                xr = er + wr * orr - wi * oi
                xi = ei + wr * oi + wi * orr
                pk[lane] = xr * xr + xi * xi
        if power != 2.0:
            for k in range(n_bins):
                for lane in range(lanes):
                    p[k, lane] = math.sqrt(p[k, lane]) ** power
        for mb in range(n_mels):
            acc = melv[mb * lanes : (mb + 1) * lanes]
            acc[:] = 0.0
            for j in range(band_lo[mb], band_hi[mb]):
                wgt = mel[mb, j]
                pj = p[j]
                for lane in range(lanes):
                    acc[lane] += wgt * pj[lane]
        for k in range(n_mels * lanes):
            melv[k] = max(amin, melv[k])
        _log10_into(melv, logv, ebuf)
        for lane in range(lanes):
            g = g0 + lane
            if g >= n_frames:
                continue
            top = -np.inf
            for mb in range(n_mels):
                d = 10.0 * logv[mb * lanes + lane] - ref_db
                out[g, mb] = d
                top = max(top, d)
            row_top[g] = top


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


#: frames per task of :func:`_deltas_cmvn` (a long clip splits into many)
_DELTA_ROWS = 256


@njit(**JIT_SERIAL)
def _savgol_rows(x, n, t0, t1, conv, edge_lo, edge_hi, width, out, col0):
    """Rows ``t0:t1`` of the Savitzky-Golay derivative of every column of x[:n].

    scipy's 'interp' mode: interior frames are the convolution with ``conv``;
    the first and last ``width // 2`` frames the derivative of the
    least-squares polynomial fitted to the first / last ``width`` frames
    (``edge_lo`` / ``edge_hi`` hold those linear maps). Row by row, the
    coefficients innermost (contiguous: it vectorises), each sum in the
    order of ``k``. Written to ``out[t, col0:col0 + n_coef]``.
    """
    half = width // 2
    n_coef = x.shape[1]
    for t in range(t0, t1):
        # the weights and the frames they take: the first / last frames'
        # polynomial fits, or the convolution (frames t + half down to
        # t - half)
        if t < half:
            wts, first, step = edge_lo[t], 0, 1
        elif t >= n - half:
            wts, first, step = edge_hi[t - (n - half)], n - width, 1
        else:
            wts, first, step = conv, t + half, -1
        dst = out[t, col0 : col0 + n_coef]
        for c in range(n_coef):
            dst[c] = 0.0
        for k in range(width):
            wk = wts[k]
            src = x[first + step * k]
            for c in range(n_coef):
                dst[c] += wk * src[c]


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
    n_clips = frame_offsets.shape[0] - 1
    # tasks: runs of up to _DELTA_ROWS frames of one clip, so a single long
    # clip splits across threads and each frame's row is written whole
    task_offsets = np.zeros(n_clips + 1, dtype=np.int64)
    for i in range(n_clips):
        n = frame_offsets[i + 1] - frame_offsets[i]
        task_offsets[i + 1] = task_offsets[i] + (n + _DELTA_ROWS - 1) // _DELTA_ROWS
    for task in prange(task_offsets[n_clips]):
        i = _clip_of(task_offsets, task)
        a = frame_offsets[i]
        n = frame_offsets[i + 1] - a
        t0 = (task - task_offsets[i]) * _DELTA_ROWS
        t1 = min(n, t0 + _DELTA_ROWS)
        x = coef[a : a + n]
        out = feat[a : a + n]
        for t in range(t0, t1):
            for c in range(n_coef):
                out[t, c] = x[t, c]
        w = -1
        for j in range(widths.shape[0]):
            if widths[j] <= n:
                w = j
                break
        for d in range(n_deltas):
            col0 = (d + 1) * n_coef
            if w < 0:
                for t in range(t0, t1):
                    for c in range(n_coef):
                        out[t, col0 + c] = 0.0
            else:
                _savgol_rows(
                    x,
                    n,
                    t0,
                    t1,
                    conv[d, w],
                    edge_lo[d, w],
                    edge_hi[d, w],
                    widths[w],
                    out,
                    col0,
                )
    if cmvn == 0:
        return
    n_cols = feat.shape[1]
    for task in prange(n_clips * n_cols):
        i = task // n_cols
        col = task % n_cols
        a = frame_offsets[i]
        n = frame_offsets[i + 1] - a
        if n == 0:
            continue
        out = feat[a : a + n]
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
