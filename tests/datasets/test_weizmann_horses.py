import re
import shutil

import cv2
import numpy as np
import pytest

from mmfeat.datasets import load_weizmann_horses
from mmfeat.exceptions import (
    DataNotFoundError,
    InputError,
    MmfeatError,
    ParameterError,
)
from mmfeat.io import read_image

# SOURCE.md: "About 25 % of all mask pixels are foreground (mean over images 0.252)".
SOURCE_MEAN_FOREGROUND_SHARE = 0.252


@pytest.fixture(scope="module")
def horses(data_home):
    return load_weizmann_horses(data_home=data_home)


def test_load_weizmann_horses_counts_and_split(horses):
    frame = horses.frame
    assert len(frame) == 328
    assert list(frame.columns) == [
        "image",
        "mask",
        "image_path",
        "mask_path",
        "name",
        "split",
        "height",
        "width",
    ]
    assert frame["name"].tolist() == [f"horse{i:03d}" for i in range(1, 329)]
    assert frame["split"].tolist() == ["train"] * 200 + ["test"] * 128
    assert len(horses.images) == len(horses.masks) == 328
    assert horses.target_names.tolist() == ["background", "horse"]
    assert "Borenstein" in horses.DESCR and "research" in horses.DESCR
    assert "no official split" in horses.DESCR


def test_load_weizmann_horses_images_and_masks_aligned(horses):
    frame = horses.frame
    for i, (image, mask) in enumerate(zip(horses.images, horses.masks)):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert mask.dtype == np.uint8
        assert mask.shape == image.shape[:2]
        assert mask.shape == (frame["height"][i], frame["width"][i])
        assert frame["image"][i] is image and frame["mask"][i] is mask
    labels = np.unique(np.concatenate([np.unique(m) for m in horses.masks]))
    assert labels.tolist() == [1, 2]


def test_load_weizmann_horses_foreground_share_matches_source(horses):
    shares = np.array([np.mean(m == 2) for m in horses.masks])
    assert shares.min() > 0 and shares.max() < 1
    assert abs(shares.mean() - SOURCE_MEAN_FOREGROUND_SHARE) < 0.005


def test_load_weizmann_horses_photo_resized_to_mask(horses):
    # horse001 is one of the 327 items whose photo is larger than its mask.
    row = horses.frame.iloc[0]
    raw = read_image(row["image_path"], mode="rgb", dtype="uint8")
    grey = read_image(row["mask_path"], mode="gray", dtype="uint8")
    assert raw.shape[:2] != grey.shape
    h, w = grey.shape
    expected = cv2.resize(raw, (w, h), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(row["image"], expected)
    np.testing.assert_array_equal(row["mask"], np.where(grey > 127, 2, 1))


def test_load_weizmann_horses_subset_and_n_images(data_home, horses):
    test = load_weizmann_horses(data_home=data_home, subset="test")
    assert len(test.frame) == 128 and set(test.frame["split"]) == {"test"}
    assert test.frame["name"].iloc[0] == "horse201"
    train = load_weizmann_horses(data_home=data_home, subset="train", n_images=3)
    assert train.frame["name"].tolist() == ["horse001", "horse002", "horse003"]
    np.testing.assert_array_equal(train.images[2], horses.images[2])
    full_train = load_weizmann_horses(data_home=data_home, subset="train", n_images=500)
    assert len(full_train.frame) == 200


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"subset": "val"}, "subset"),
        ({"n_images": 0}, "n_images"),
        ({"n_images": True}, "n_images"),
        ({"n_images": 2.0}, "n_images"),
    ],
)
def test_load_weizmann_horses_bad_parameters(tmp_path, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        load_weizmann_horses(data_home=tmp_path, **kwargs)


def test_load_weizmann_horses_missing_data_home(tmp_path):
    with pytest.raises(
        DataNotFoundError, match=re.escape(str(tmp_path / "weizmann_horses"))
    ):
        load_weizmann_horses(data_home=tmp_path)


def _copy_two(data_home, tmp_path):
    src = data_home / "weizmann_horses"
    dst = tmp_path / "weizmann_horses"
    for sub in ("rgb", "figure_ground"):
        (dst / sub).mkdir(parents=True)
        for name in ("horse001.jpg", "horse002.jpg"):
            shutil.copy(src / sub / name, dst / sub / name)
    return dst


def test_load_weizmann_horses_unreadable_file_named(data_home, tmp_path):
    dst = _copy_two(data_home, tmp_path)
    bad = dst / "figure_ground" / "horse002.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    with pytest.raises(InputError, match=re.escape(str(bad.resolve()))):
        load_weizmann_horses(data_home=tmp_path)


def test_load_weizmann_horses_photo_without_mask(data_home, tmp_path):
    dst = _copy_two(data_home, tmp_path)
    (dst / "figure_ground" / "horse002.jpg").unlink()
    with pytest.raises(MmfeatError, match="horse002"):
        load_weizmann_horses(data_home=tmp_path)
