"""The corrupted fashion sample the data-quality benchmarks share (issue 17).

The fashion sample's articleType classes with >= 50 items (1,908 records,
14 classes), split 75/25 (stratified, seeded), then corrupted under a fixed
seed with the truth kept in separate columns:

- 5% of all records get a label flipped to another class (``label_flipped``;
  ``true_label`` keeps the original);
- 3% of records get the photo of a record of another type (swapped in pairs:
  ``photo_swapped``);
- 3% of photos are blurred, darkened or over-exposed (``image_issue``:
  "blurry", "dark" or "light"); written as JPEGs under ``workdir``;
- 2% of the training records are duplicated into the test part with the
  photo re-encoded (JPEG quality 60, resized by 0.9) and the title lightly
  edited (one word dropped or the case changed) (``duplicate_of``: the
  position of the original, -1 elsewhere).

The four corruptions touch disjoint records, so each truth is clean.
"""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mmfeat.datasets import load_fashion_products

__all__ = ["corrupted_fashion"]


def _blur(img, rng):
    k = int(rng.choice([9, 13, 17]))
    return cv2.GaussianBlur(img, (k, k), 0)


def _dark(img, rng):
    return (img.astype(np.float32) * rng.uniform(0.08, 0.18)).astype(np.uint8)


def _light(img, rng):
    # over-exposed: push everything towards white, clip
    gain, lift = rng.uniform(1.8, 2.5), rng.uniform(90, 140)
    return np.clip(img.astype(np.float32) * gain + lift, 0, 255).astype(np.uint8)


_EFFECTS = {"blurry": _blur, "dark": _dark, "light": _light}


def _edit_title(title, rng):
    words = str(title).split()
    if len(words) > 3 and rng.random() < 0.5:
        del words[int(rng.integers(1, len(words)))]
        return " ".join(words)
    return str(title).lower() if rng.random() < 0.5 else str(title).upper()


def corrupted_fashion(workdir, *, seed=0, data_home=None):
    """The corrupted sample as one table; modified photos are written to ``workdir``.

    Returns a DataFrame with columns ``image`` (path), ``title``, ``label``
    (as given, possibly flipped), ``split`` ("train" or "test") and the
    truth: ``true_label``, ``label_flipped``, ``photo_swapped``,
    ``image_issue`` (None or the effect) and ``duplicate_of``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frame = load_fashion_products(
        data_home=data_home, target="articleType", min_count=50
    ).frame
    df = pd.DataFrame(
        {
            "image": frame["path"].astype(str),
            "title": frame["title"].astype(str),
            "label": frame["articleType"].astype(str),
        }
    )
    n = len(df)
    train, _ = train_test_split(
        np.arange(n), test_size=0.25, stratify=df["label"], random_state=seed
    )
    df["split"] = "test"
    df.loc[train, "split"] = "train"
    df["true_label"] = df["label"]
    df["label_flipped"] = False
    df["photo_swapped"] = False
    df["image_issue"] = None
    df["duplicate_of"] = -1

    order = rng.permutation(n)
    n_flip, n_swap, n_bad = round(0.05 * n), 2 * round(0.015 * n), round(0.03 * n)
    flip = order[:n_flip]
    swap = order[n_flip : n_flip + n_swap]
    bad = order[n_flip + n_swap : n_flip + n_swap + n_bad]
    taken = set(order[: n_flip + n_swap + n_bad].tolist())

    classes = np.array(sorted(df["label"].unique()))
    for i in flip:
        others = classes[classes != df.at[i, "label"]]
        df.at[i, "label"] = str(rng.choice(others))
        df.at[i, "label_flipped"] = True

    # swap photos in pairs of records of different types
    swap = list(swap)
    while len(swap) >= 2:
        a = swap.pop()
        partner = next(
            (j for j in swap if df.at[j, "true_label"] != df.at[a, "true_label"]), None
        )
        if partner is None:
            break
        swap.remove(partner)
        df.at[a, "image"], df.at[partner, "image"] = (
            df.at[partner, "image"],
            df.at[a, "image"],
        )
        df.loc[[a, partner], "photo_swapped"] = True

    for k, i in enumerate(bad):
        effect = ("blurry", "dark", "light")[k % 3]
        img = cv2.imread(df.at[i, "image"], cv2.IMREAD_COLOR)
        out = workdir / f"bad_{i}_{effect}.jpg"
        degraded = _EFFECTS[effect](img, rng)
        cv2.imwrite(str(out), degraded, [cv2.IMWRITE_JPEG_QUALITY, 90])
        df.at[i, "image"] = str(out)
        df.at[i, "image_issue"] = effect

    # duplicates of clean training records, appended to the test part
    pool = [i for i in rng.permutation(train) if i not in taken]
    n_dup = round(0.02 * n)
    rows = []
    for i in pool[:n_dup]:
        img = cv2.imread(df.at[i, "image"], cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        img = cv2.resize(img, (round(0.9 * w), round(0.9 * h)), cv2.INTER_AREA)
        out = workdir / f"dup_{i}.jpg"
        cv2.imwrite(str(out), img, [cv2.IMWRITE_JPEG_QUALITY, 60])
        row = df.loc[i].copy()
        row["image"] = str(out)
        row["title"] = _edit_title(row["title"], rng)
        row["split"] = "test"
        row["duplicate_of"] = int(i)
        rows.append(row)
    df = pd.concat([df, pd.DataFrame(rows)], ignore_index=True)
    return df
