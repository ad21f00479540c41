"""Numba kernel for per-image quality scores: arrays in, arrays out."""

import numpy as np
from numba import njit, prange

from mmfeat.utils._numba import JIT_PARALLEL

__all__ = ["N_KERNEL_SCORES", "_quality_scores"]

#: Columns the kernel writes, in order.
N_KERNEL_SCORES = 12

# quantiles of the luma histogram (inverted CDF), in output columns 4..7
_QUANTILES = (0.01, 0.05, 0.95, 0.99)


@njit(**JIT_PARALLEL)
def _quality_scores(pixels, offsets, heights, widths, dark_level, light_level, out):
    """Quality scores of each RGB uint8 image, one fused pass per image.

    ``pixels`` is the flat uint8 buffer of all images, image ``i`` owning
    ``pixels[offsets[i]:offsets[i + 1]]`` as a C-ordered
    (``heights[i]``, ``widths[i]``, 3) RGB array. Per image (a ``prange``
    over images; each writes its own row of ``out``, shape (n, 12)):

    1. luma ``Y = (9798 R + 19235 G + 3735 B + 16384) >> 15`` (OpenCV's
       fixed-point BT.601, so ``Y`` equals ``cv2.cvtColor(RGB2GRAY)``), its
       256-bin histogram, and the sums of the Hasler-Süsstrunk opponent
       channels ``rg = R - G``, ``yb = (R + G) / 2 - B``;
    2. over ``Y``: the 3x3 Laplacian ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``
       and the 3x3 Sobel derivatives with reflect-101 borders (OpenCV's
       default border), as sums of their values and squares.

    Columns: variance of the Laplacian of ``Y / 255``; Laplacian variance over the mean
    squared Sobel gradient magnitude (0 when there is no gradient); mean and
    std of luma / 255; the 1, 5, 95 and 99 % quantiles of luma / 255 (the
    smallest level whose cumulative share reaches the quantile); the share
    of pixels with luma <= ``dark_level`` and >= ``light_level``; the
    colourfulness ``sqrt(sd_rg**2 + sd_yb**2) + 0.3 * sqrt(mu_rg**2 +
    mu_yb**2)`` (0-255 scale, population moments); the entropy in bits of
    the luma histogram.
    """
    for i in prange(offsets.shape[0] - 1):
        h = heights[i]
        w = widths[i]
        base = offsets[i]
        # luma with a one-pixel reflect-101 frame (OpenCV's default border)
        luma = np.empty((h + 2, w + 2), dtype=np.int64)
        hist = np.zeros(256, dtype=np.int64)
        s_rg = 0
        s_rg2 = 0
        s_yb = 0  # of 2 * yb, in integers
        s_yb2 = 0
        for r in range(h):
            lrow = luma[r + 1]
            k = base + 3 * r * w
            for c in range(w):
                red = np.int64(pixels[k])
                green = np.int64(pixels[k + 1])
                blue = np.int64(pixels[k + 2])
                k += 3
                y = (red * 9798 + green * 19235 + blue * 3735 + 16384) >> 15
                lrow[c + 1] = y
                hist[y] += 1
                rg = red - green
                yb = red + green - 2 * blue
                s_rg += rg
                s_rg2 += rg * rg
                s_yb += yb
                s_yb2 += yb * yb
        for r in range(1, h + 1):
            lrow = luma[r]
            lrow[0] = lrow[2] if w > 1 else lrow[1]
            lrow[w + 1] = lrow[w - 1] if w > 1 else lrow[w]
        luma[0, :] = luma[2, :] if h > 1 else luma[1, :]
        luma[h + 1, :] = luma[h - 1, :] if h > 1 else luma[h, :]

        # stage 2: Laplacian and Sobel over luma, exact integer sums
        s_l = 0
        s_l2 = 0
        s_g2 = 0
        for r in range(1, h + 1):
            up = luma[r - 1]
            mid = luma[r]
            down = luma[r + 1]
            for c in range(1, w + 1):
                lap = up[c] + down[c] + mid[c - 1] + mid[c + 1] - 4 * mid[c]
                s_l += lap
                s_l2 += lap * lap
                gx = (
                    up[c + 1]
                    + 2 * mid[c + 1]
                    + down[c + 1]
                    - up[c - 1]
                    - 2 * mid[c - 1]
                    - down[c - 1]
                )
                gy = (
                    down[c - 1]
                    + 2 * down[c]
                    + down[c + 1]
                    - up[c - 1]
                    - 2 * up[c]
                    - up[c + 1]
                )
                s_g2 += gx * gx + gy * gy
        n = np.float64(h * w)
        row = out[i]
        lap_mean = s_l / n
        lap_var = max(s_l2 / n - lap_mean * lap_mean, 0.0)
        row[0] = lap_var / (255.0 * 255.0)
        g2 = s_g2 / n
        row[1] = lap_var / g2 if g2 > 0 else 0.0

        # luma moments, quantiles (inverted CDF), shares, entropy: the histogram
        s_y = 0.0
        s_y2 = 0.0
        dark = 0
        light = 0
        ent = 0.0
        for v in range(256):
            cnt = hist[v]
            s_y += v * cnt
            s_y2 += v * v * cnt
            if v <= dark_level:
                dark += cnt
            if v >= light_level:
                light += cnt
            if cnt > 0:
                p = cnt / n
                ent -= p * np.log2(p)
        y_mean = s_y / n
        row[2] = y_mean / 255.0
        row[3] = np.sqrt(max(s_y2 / n - y_mean * y_mean, 0.0)) / 255.0
        for q in range(4):
            target = _QUANTILES[q] * n
            cum = 0.0
            level = 255
            for v in range(256):
                cum += hist[v]
                if cum >= target:
                    level = v
                    break
            row[4 + q] = level / 255.0
        row[8] = dark / n
        row[9] = light / n
        row[11] = ent

        mu_rg = s_rg / n
        mu_yb = 0.5 * s_yb / n
        var_rg = max(s_rg2 / n - mu_rg * mu_rg, 0.0)
        var_yb = max(0.25 * s_yb2 / n - mu_yb * mu_yb, 0.0)
        row[10] = np.sqrt(var_rg + var_yb) + 0.3 * np.sqrt(
            mu_rg * mu_rg + mu_yb * mu_yb
        )
