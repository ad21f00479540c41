"""ImageAugmenter (``mmfeat/preprocessing/_image_augmenter.py``).

Each transform alone, on images where its effect can be checked exactly;
reading paths and bytes, errors, a pipeline, parameters, real USPS digits.
"""

from collections import Counter

import cv2
import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.image import HOGExtractor
from mmfeat.io import read_image
from mmfeat.preprocessing import ImageAugmenter
from tests.preprocessing._helpers import make_images

_IMAGE_OFF = dict(
    flip_horizontal=False,
    flip_vertical=False,
    max_rotation=0.0,
    max_shift=0.0,
    brightness=0.0,
    contrast=0.0,
)


class _CountingSVC(LinearSVC):
    """LinearSVC that remembers how many rows it was fitted on."""

    def fit(self, X, y, sample_weight=None):
        self.n_fit_rows_ = X.shape[0]
        return super().fit(X, y, sample_weight=sample_weight)


# --------------------------------------------------------------------------
# Image transforms, one at a time
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_image_augmenter_all_off_copies_equal_sources(rng, dtype):
    X = make_images(rng, 3, dtype=dtype) + make_images(rng, 2, dtype=dtype, channels=3)
    X_res, _ = ImageAugmenter(n_copies=2, random_state=0, **_IMAGE_OFF).fit_resample(X)
    for j, out in enumerate(X_res[5:]):
        src = X[j % 5]
        assert out.dtype == src.dtype and out.shape == src.shape
        np.testing.assert_array_equal(out, src)


def test_image_augmenter_flip_horizontal_only(rng):
    X = make_images(rng, 4, channels=3)
    off = dict(_IMAGE_OFF, flip_horizontal=True)
    aug = ImageAugmenter(n_copies=5, random_state=0, **off)
    X_res, _ = aug.fit_resample(X)
    flipped = aug.augment_params_["flip_horizontal"]
    assert 0 < flipped.sum() < len(flipped)  # both outcomes occur
    for out, row, flip in zip(X_res[4:], aug.sample_indices_[4:], flipped):
        expected = np.fliplr(X[row]) if flip else X[row]
        np.testing.assert_array_equal(out, expected)
    assert not aug.augment_params_["flip_vertical"].any()


def test_image_augmenter_flip_vertical_only(rng):
    X = make_images(rng, 4)
    off = dict(_IMAGE_OFF, flip_vertical=True)
    X_res, _ = ImageAugmenter(n_copies=5, random_state=1, **off).fit_resample(X)
    n_flipped = 0
    for out, src in zip(X_res[4:], X * 5):
        if np.array_equal(out, np.flipud(src)):
            n_flipped += 1
        else:
            np.testing.assert_array_equal(out, src)
    assert 0 < n_flipped < 20


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_image_augmenter_brightness_only(dtype):
    top = 255 if dtype == np.uint8 else 1.0
    img = np.full((12, 10), 0.5 * top).astype(dtype)
    img[3:6, 2:5] = 0.6 * top  # some texture, far from the clipping range
    off = dict(_IMAGE_OFF, brightness=0.2)
    aug = ImageAugmenter(n_copies=8, random_state=0, **off)
    X_res, _ = aug.fit_resample([img])
    deltas = aug.augment_params_["brightness"]
    assert np.all(np.abs(deltas) <= 0.2) and np.abs(deltas).max() > 0.05
    for out, delta in zip(X_res[1:], deltas):
        assert out.shape == img.shape and out.dtype == img.dtype
        shift = out.astype(float).mean() - img.astype(float).mean()
        assert shift == pytest.approx(delta * top, abs=0.6 if top == 255 else 1e-5)
        # brightness adds a constant: the texture is unchanged
        diff = out.astype(float) - img.astype(float)
        assert np.ptp(diff) <= (1.0 if top == 255 else 1e-5)


def test_image_augmenter_brightness_clips_to_range():
    white = np.full((8, 8), 250, dtype=np.uint8)
    off = dict(_IMAGE_OFF, brightness=1.0)
    X_res, _ = ImageAugmenter(n_copies=10, random_state=0, **off).fit_resample([white])
    assert all(out.dtype == np.uint8 for out in X_res)
    assert any((out == 255).all() for out in X_res[1:])  # clipped, not wrapped
    fwhite = np.full((8, 8), 0.98, dtype=np.float32)
    X_res, _ = ImageAugmenter(n_copies=10, random_state=0, **off).fit_resample([fwhite])
    stack = np.stack(X_res[1:])
    assert stack.dtype == np.float32 and stack.min() >= 0 and stack.max() <= 1
    assert stack.max() == 1.0 and stack.min() < 0.5


def test_image_augmenter_contrast_only(rng):
    img = (0.3 + 0.4 * rng.random((16, 16))).astype(np.float32)
    off = dict(_IMAGE_OFF, contrast=0.5)
    aug = ImageAugmenter(n_copies=6, random_state=0, **off)
    X_res, _ = aug.fit_resample([img])
    for out, factor in zip(X_res[1:], aug.augment_params_["contrast"]):
        assert 0.5 <= factor <= 1.5
        assert out.mean() == pytest.approx(img.mean(), abs=1e-5)
        assert out.std() == pytest.approx(factor * img.std(), rel=1e-4)


def test_image_augmenter_shift_only_moves_a_dot():
    img = np.zeros((21, 21), dtype=np.uint8)
    img[10, 10] = 200
    off = dict(_IMAGE_OFF, max_shift=0.2)
    aug = ImageAugmenter(n_copies=10, random_state=0, **off)
    X_res, _ = aug.fit_resample([img])
    moved = 0
    for out in X_res[1:]:
        (ys, xs) = np.nonzero(out)
        assert len(ys) == 1 and out[ys[0], xs[0]] == 200  # whole pixels, no blur
        dy, dx = ys[0] - 10, xs[0] - 10
        assert abs(dy) <= 4 and abs(dx) <= 4  # 0.2 * 21
        moved += (dy, dx) != (0, 0)
        np.testing.assert_array_equal(out, np.roll(img, (dy, dx), axis=(0, 1)))
    assert moved >= 8


def _orientation(a):
    yy, xx = np.mgrid[: a.shape[0], : a.shape[1]]
    m = a.sum()
    cx, cy = (a * xx).sum() / m, (a * yy).sum() / m
    mu20 = (a * (xx - cx) ** 2).sum()
    mu02 = (a * (yy - cy) ** 2).sum()
    mu11 = (a * (xx - cx) * (yy - cy)).sum()
    return np.degrees(0.5 * np.arctan2(2 * mu11, mu20 - mu02))


def test_image_augmenter_rotation_only_turns_a_bar():
    img = np.zeros((41, 41), dtype=np.float32)
    img[19:22, 6:35] = 1.0  # a horizontal bar through the centre
    off = dict(_IMAGE_OFF, max_rotation=30.0)
    aug = ImageAugmenter(n_copies=8, random_state=0, **off)
    X_res, _ = aug.fit_resample([img])
    angles = aug.augment_params_["rotation"]
    assert np.all(np.abs(angles) <= 30) and np.abs(angles).max() > 10
    for out, angle in zip(X_res[1:], angles):
        assert out.shape == img.shape and out.dtype == np.float32
        # counter-clockwise on screen (y axis pointing down) for angle > 0
        assert _orientation(out) == pytest.approx(-angle, abs=1.0)
        assert out.sum() == pytest.approx(img.sum(), rel=0.05)  # turned, not cut


def test_image_augmenter_warp_reflects_the_border():
    # a flat image stays flat under any rotation and shift: the corners the
    # warp uncovers are filled by reflection, not with black
    flat = np.full((20, 30, 3), 180, dtype=np.uint8)
    off = dict(_IMAGE_OFF, max_rotation=45.0, max_shift=0.3)
    X_res, _ = ImageAugmenter(n_copies=5, random_state=0, **off).fit_resample([flat])
    for out in X_res[1:]:
        np.testing.assert_array_equal(out, flat)
    # a ramp shifted sideways: uncovered columns mirror the edge (reflect-101)
    ramp = np.tile(np.arange(30, dtype=np.float32) / 29, (20, 1))
    aug = ImageAugmenter(n_copies=6, random_state=0, **dict(_IMAGE_OFF, max_shift=0.2))
    X_res, _ = aug.fit_resample([ramp])
    shifts = np.rint(aug.augment_params_["shift_x"] * 30).astype(int)
    assert (shifts != 0).sum() >= 4
    for out, dx in zip(X_res[1:], shifts):
        src_col = np.arange(30) - dx
        src_col = np.where(src_col < 0, -src_col, src_col)
        src_col = np.where(src_col > 29, 58 - src_col, src_col)
        np.testing.assert_allclose(out, ramp[:, src_col], atol=1e-6)


def test_image_augmenter_defaults_keep_dtype_and_range(rng):
    X = make_images(rng, 4, channels=3) + make_images(rng, 4, dtype=np.float32)
    aug = ImageAugmenter(n_copies=3, brightness=0.5, contrast=0.5, random_state=0)
    X_res, _ = aug.fit_resample(X)
    for out, row in zip(X_res[8:], aug.sample_indices_[8:]):
        src = X[row]
        assert out.shape == src.shape and out.dtype == src.dtype
        if src.dtype == np.float32:
            assert out.min() >= 0.0 and out.max() <= 1.0
        assert not np.array_equal(out, src)


def test_image_augmenter_reads_paths_and_bytes(tmp_path, rng):
    img = make_images(rng, 1, size=20, channels=3)[0]
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), img[:, :, ::-1])  # OpenCV writes BGR
    data = cv2.imencode(".png", img[:, :, ::-1])[1].tobytes()
    X = [str(path), data]
    X_res, _ = ImageAugmenter(n_copies=1, random_state=0, **_IMAGE_OFF).fit_resample(X)
    assert X_res[:2] == X
    for out in X_res[2:]:
        assert out.dtype == np.uint8 and out.shape == (20, 20, 3)
        np.testing.assert_array_equal(out, img)
    aug = ImageAugmenter(n_copies=1, mode="gray", dtype="float32", **_IMAGE_OFF)
    X_res, _ = aug.fit_resample(X)
    expected = read_image(str(path), mode="gray", dtype="float32")
    np.testing.assert_array_equal(X_res[2], expected)


def test_image_augmenter_unreadable_item_names_row(tmp_path, rng):
    X = make_images(rng, 3)
    missing = str(tmp_path / "nope.png")
    with pytest.raises(InputError, match=r"row 3 \(.*nope\.png\)") as info:
        ImageAugmenter(random_state=0).fit_resample(X + [missing], [0, 0, 0, 1])
    assert info.value.row == 3 and info.value.source == missing
    text = tmp_path / "notes.png"
    text.write_text("not an image at all\n" * 5)
    with pytest.raises(InputError, match="row 1") as info:
        ImageAugmenter(n_copies=1).fit_resample([X[0], str(text)], [0, 1])
    assert info.value.source == str(text)
    with pytest.raises(InputError, match=r"row 0 \(array\).*\[0, 1\]"):
        ImageAugmenter(n_copies=1).fit_resample([np.full((4, 4), 3.0)], [0])


# --------------------------------------------------------------------------
# Pipelines, clone, pickle, parameters
# --------------------------------------------------------------------------


def test_image_augmenter_in_imblearn_pipeline_only_at_fit(rng):
    X = np.stack(make_images(rng, 14))
    y = np.array([0] * 10 + [1] * 4)
    pipe = Pipeline(
        [
            ("aug", ImageAugmenter(random_state=0)),
            (
                "hog",
                HOGExtractor(
                    image_size=(16, 16), pixels_per_cell=(4, 4), cells_per_block=(2, 2)
                ),
            ),
            ("clf", _CountingSVC(max_iter=20000)),
        ]
    )
    pipe.fit(X, y)
    assert pipe.named_steps["clf"].n_fit_rows_ == 20  # 10 + 4 + 6 copies
    pred = pipe.predict(X)
    assert pred.shape == (14,)
    assert pipe.predict(X[:3]).shape == (3,)
    assert pipe.score(X, y) >= 0.5


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_copies": 0}, "The 'n_copies' parameter of ImageAugmenter must be"),
        ({"n_copies": 1.5}, "n_copies"),
        ({"n_copies": True}, r"n_copies must be None or an int >= 1; got True"),
        ({"sampling_strategy": "most"}, "sampling_strategy"),
        ({"max_rotation": -5}, "max_rotation"),
        ({"max_shift": 1.0}, "max_shift"),
        ({"brightness": 2.0}, "brightness"),
        ({"contrast": -0.1}, "contrast"),
        ({"flip_horizontal": "yes"}, "flip_horizontal"),
        ({"mode": "cmyk"}, "mode"),
    ],
)
def test_image_augmenter_bad_params(rng, params, match):
    X = make_images(rng, 4)
    with pytest.raises(ParameterError, match=match):
        ImageAugmenter(**params).fit_resample(X, [0, 0, 0, 1])


# --------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------


def test_image_augmenter_on_usps_digits(data_home):
    from mmfeat.datasets import load_usps

    frame = load_usps(data_home=data_home).frame
    train = frame[frame["split"] == "train"]
    rows = pd.concat(
        [train[train["digit"] == 0].iloc[:60], train[train["digit"] == 7].iloc[:15]]
    )[["image", "digit"]]
    aug = ImageAugmenter(
        column="image", flip_horizontal=False, max_rotation=10, random_state=0
    )
    X_res, y_res = aug.fit_resample(rows, rows["digit"])
    assert Counter(y_res.tolist()) == {0: 60, 7: 60}
    assert (X_res["digit"].to_numpy() == y_res.to_numpy()).all()
    srcs = rows["image"].tolist()
    for out, row in zip(X_res["image"].iloc[75:], aug.sample_indices_[75:]):
        src = srcs[row]
        assert out.shape == (16, 16) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
        assert not np.array_equal(out, src)
        # still the same digit: once the shift (at most round(0.1 * 16) = 2
        # pixels) is undone, strongly correlated with its source...
        best = max(
            np.corrcoef(
                np.roll(out, (dy, dx), axis=(0, 1))[3:-3, 3:-3].ravel(),
                src[3:-3, 3:-3].ravel(),
            )[0, 1]
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        )
        assert best > 0.7
    # ...and more like its own source than like the other class on average
    zero_mean = np.mean([s for s in srcs[:60]], axis=0).ravel()
    seven_mean = np.mean([s for s in srcs[60:]], axis=0).ravel()
    sevens = np.stack(X_res["image"].iloc[75:].tolist()).reshape(45, -1)
    closer = np.linalg.norm(sevens - seven_mean, axis=1) < np.linalg.norm(
        sevens - zero_mean, axis=1
    )
    assert closer.mean() > 0.9
