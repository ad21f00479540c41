"""A small synthetic records table: striped photos and titles, two classes."""

import cv2
import numpy as np
import pandas as pd

WORDS = {
    "stripes": ["striped", "shirt", "cotton", "navy"],
    "checks": ["checked", "dress", "linen", "plaid"],
}


def _image(kind, rng, size=32):
    x = np.arange(size)
    period = int(rng.integers(3, 6))
    wave = ((x // period) % 2).astype(np.float64)
    img = np.tile(wave, (size, 1))
    if kind == "checks":
        img = np.logical_xor(img > 0, img.T > 0).astype(np.float64)
    img = 0.8 * img + 0.2 * rng.random((size, size))
    return (img * 255).astype(np.uint8)


def make_records(folder, n=60, seed=0):
    """Write ``n`` PNGs into ``folder/images`` and return the records table.

    Columns: ``id`` (``"r000"``...), ``image`` (path relative to
    ``folder``), ``title`` and ``label``; classes alternate.
    """
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        label = "stripes" if i % 2 == 0 else "checks"
        rel = f"images/{i:03d}.png"
        cv2.imwrite(str(folder / rel), _image(label, rng))
        words = list(rng.choice(WORDS[label], size=3)) + ["item"]
        rows.append(
            {"id": f"r{i:03d}", "image": rel, "title": " ".join(words), "label": label}
        )
    return pd.DataFrame(rows)


def absolute(records, folder):
    """The records with image paths made absolute (as a model sees them)."""
    out = records.copy().astype(object)
    out["image"] = [str(folder / p) for p in out["image"]]
    return out
