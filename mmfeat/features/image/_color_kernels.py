"""Numba kernel for joint HSV colour histograms: arrays in, arrays out."""

import numpy as np
from numba import njit, prange

from mmfeat.utils._numba import JIT_PARALLEL

__all__ = ["_hsv_histograms"]


@njit(**JIT_PARALLEL)
def _hsv_histograms(pixels, offsets, h_bins, s_bins, v_bins, out):
    """Joint HSV histogram of each image's RGB pixels, L1-normalised.

    ``pixels`` is (N, 3) float32 RGB in [0, 1], image ``i`` owning rows
    ``offsets[i]:offsets[i + 1]``. Hue is binned over [0, 360) degrees,
    saturation and value over [0, 1] (OpenCV's conversion: V = max,
    S = (V - min) / V, H from the dominant channel). ``out`` has shape
    (n_images, h_bins * s_bins * v_bins); bin (h, s, v) is column
    ``(h * s_bins + s) * v_bins + v``.
    """
    for i in prange(offsets.shape[0] - 1):
        row = out[i]
        row[:] = 0.0
        start = offsets[i]
        stop = offsets[i + 1]
        for j in range(start, stop):
            r = np.float64(pixels[j, 0])
            g = np.float64(pixels[j, 1])
            b = np.float64(pixels[j, 2])
            v = max(r, g, b)
            delta = v - min(r, g, b)
            s = delta / v if v > 0 else 0.0
            if delta == 0:
                h = 0.0
            elif v == r:
                h = 60.0 * (g - b) / delta
            elif v == g:
                h = 120.0 + 60.0 * (b - r) / delta
            else:
                h = 240.0 + 60.0 * (r - g) / delta
            if h < 0:
                h += 360.0
            hb = min(int(h * h_bins / 360.0), h_bins - 1)
            sb = min(int(s * s_bins), s_bins - 1)
            vb = min(int(v * v_bins), v_bins - 1)
            row[(hb * s_bins + sb) * v_bins + vb] += 1.0
        n = stop - start
        if n > 0:
            for f in range(row.shape[0]):
                row[f] /= n
