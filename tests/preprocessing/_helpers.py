"""Small images and clips shared by the augmenter tests."""

import numpy as np


def make_images(rng, n, size=16, dtype=np.uint8, channels=None):
    """Asymmetric test images (a gradient plus noise), so flips show."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    shape = (size, size) if channels is None else (size, size, channels)
    out = []
    for _ in range(n):
        img = 0.6 * xx * (0.5 + yy) + 0.3 * rng.random((size, size))
        if channels is not None:
            img = np.repeat(img[:, :, None], channels, axis=2) * rng.random(channels)
        img = np.clip(img, 0, 1).reshape(shape)
        out.append((img * 255).astype(np.uint8) if dtype == np.uint8 else img)
    return [a.astype(dtype) for a in out]


def make_clips(rng, n, length=800):
    t = np.arange(length) / 8000
    return [
        (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32)
        + 0.01 * rng.standard_normal(length).astype(np.float32)
        for i in range(n)
    ]
