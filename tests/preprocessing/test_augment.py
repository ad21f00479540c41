import pickle
from collections import Counter

import cv2
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.audio import MFCCExtractor
from mmfeat.features.image import HOGExtractor
from mmfeat.io import read_audio, read_image
from mmfeat.preprocessing import AudioAugmenter, ImageAugmenter

_IMAGE_OFF = dict(
    flip_horizontal=False,
    flip_vertical=False,
    max_rotation=0.0,
    max_shift=0.0,
    brightness=0.0,
    contrast=0.0,
)
_AUDIO_OFF = dict(snr_db=None, max_shift=0.0, gain_db=None)


def _images(rng, n, size=16, dtype=np.uint8, channels=None):
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


def _clips(rng, n, length=800):
    t = np.arange(length) / 8000
    return [
        (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32)
        + 0.01 * rng.standard_normal(length).astype(np.float32)
        for i in range(n)
    ]


def _make(kind, rng, n):
    if kind == "image":
        return _images(rng, n), ImageAugmenter
    return _clips(rng, n), lambda **kw: AudioAugmenter(sr=8000, **kw)


class _CountingSVC(LinearSVC):
    """LinearSVC that remembers how many rows it was fitted on."""

    def fit(self, X, y, sample_weight=None):
        self.n_fit_rows_ = X.shape[0]
        return super().fit(X, y, sample_weight=sample_weight)


# --------------------------------------------------------------------------
# Which rows get copies
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["image", "audio"])
def test_augmenter_auto_balances_classes(rng, kind):
    X, make = _make(kind, rng, 12)
    y = np.array([0] * 8 + [1] * 3 + [2] * 1)
    aug = make(random_state=0)
    X_res, y_res = aug.fit_resample(X, y)
    assert len(X_res) == len(y_res) == 24
    assert Counter(y_res.tolist()) == {0: 8, 1: 8, 2: 8}
    assert aug.sampling_strategy_ == {1: 5, 2: 7}
    src = aug.sample_indices_
    np.testing.assert_array_equal(src[:12], np.arange(12))
    np.testing.assert_array_equal(y[src], y_res)  # each copy has its source's label
    assert len(aug.augment_params_["row"]) == 12
    np.testing.assert_array_equal(aug.augment_params_["row"], src[12:])


def test_image_augmenter_dict_and_named_strategies(rng):
    X = _images(rng, 12)
    y = np.array([0] * 8 + [1] * 3 + [2] * 1)
    _, y_res = ImageAugmenter(
        sampling_strategy={1: 6, 2: 4}, random_state=0
    ).fit_resample(X, y)
    assert Counter(y_res.tolist()) == {0: 8, 1: 6, 2: 4}
    _, y_res = ImageAugmenter(
        sampling_strategy="minority", random_state=0
    ).fit_resample(X, y)
    assert Counter(y_res.tolist()) == {0: 8, 1: 3, 2: 8}
    yb = np.array([0] * 8 + [1] * 4)
    _, y_res = ImageAugmenter(sampling_strategy=0.75, random_state=0).fit_resample(
        X, yb
    )
    assert Counter(y_res.tolist()) == {0: 8, 1: 6}


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_augmenter_n_copies_copies_every_row(rng, kind):
    X, make = _make(kind, rng, 5)
    y = np.array([0, 0, 0, 0, 1])
    aug = make(n_copies=2, random_state=0)
    X_res, y_res = aug.fit_resample(X, y)
    assert len(X_res) == 15
    np.testing.assert_array_equal(aug.sample_indices_, np.tile(np.arange(5), 3))
    np.testing.assert_array_equal(y_res, np.tile(y, 3))
    assert aug.sampling_strategy_ == {0: 8, 1: 2}
    # no labels needed when every row is copied
    X_res, y_res = make(n_copies=1, random_state=0).fit_resample(X)
    assert len(X_res) == 10 and y_res is None


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_augmenter_originals_first_and_unchanged(rng, kind):
    X, make = _make(kind, rng, 6)
    before = [a.copy() for a in X]
    y = np.array([0, 0, 0, 0, 1, 1])
    X_res, _ = make(random_state=0).fit_resample(X, y)
    assert len(X) == 6  # input list not extended in place
    for a, b, out in zip(X, before, X_res[:6]):
        assert out is a
        np.testing.assert_array_equal(a, b)
    # copies are new arrays, not views of the sources
    for out in X_res[6:]:
        assert not any(np.shares_memory(out, a) for a in X)


def test_image_augmenter_stack_in_stack_out(rng):
    stack = np.stack(_images(rng, 6))
    keep = stack.copy()
    y = np.array([0, 0, 0, 0, 1, 1])
    X_res, y_res = ImageAugmenter(random_state=0).fit_resample(stack, y)
    assert isinstance(X_res, np.ndarray)
    assert X_res.shape == (8, 16, 16) and X_res.dtype == np.uint8
    np.testing.assert_array_equal(X_res[:6], keep)
    np.testing.assert_array_equal(stack, keep)
    assert y_res.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_augmenter_random_state_reproducible(rng, kind):
    X, make = _make(kind, rng, 8)
    y = np.array([0] * 6 + [1] * 2)
    a, _ = make(n_copies=2, random_state=3).fit_resample(X, y)
    b, _ = make(n_copies=2, random_state=3).fit_resample(X, y)
    c, _ = make(n_copies=2, random_state=4).fit_resample(X, y)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(u, v) for u, v in zip(a[8:], c[8:]))


# --------------------------------------------------------------------------
# Image transforms, one at a time
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_image_augmenter_all_off_copies_equal_sources(rng, dtype):
    X = _images(rng, 3, dtype=dtype) + _images(rng, 2, dtype=dtype, channels=3)
    X_res, _ = ImageAugmenter(n_copies=2, random_state=0, **_IMAGE_OFF).fit_resample(X)
    for j, out in enumerate(X_res[5:]):
        src = X[j % 5]
        assert out.dtype == src.dtype and out.shape == src.shape
        np.testing.assert_array_equal(out, src)


def test_image_augmenter_flip_horizontal_only(rng):
    X = _images(rng, 4, channels=3)
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
    X = _images(rng, 4)
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
    X = _images(rng, 4, channels=3) + _images(rng, 4, dtype=np.float32)
    aug = ImageAugmenter(n_copies=3, brightness=0.5, contrast=0.5, random_state=0)
    X_res, _ = aug.fit_resample(X)
    for out, row in zip(X_res[8:], aug.sample_indices_[8:]):
        src = X[row]
        assert out.shape == src.shape and out.dtype == src.dtype
        if src.dtype == np.float32:
            assert out.min() >= 0.0 and out.max() <= 1.0
        assert not np.array_equal(out, src)


def test_image_augmenter_reads_paths_and_bytes(tmp_path, rng):
    img = _images(rng, 1, size=20, channels=3)[0]
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
    X = _images(rng, 3)
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


def test_augmenter_missing_items_stay_missing(rng):
    X = _images(rng, 4)
    X[1] = None
    X[2] = float("nan")
    X_res, _ = ImageAugmenter(n_copies=1, random_state=0).fit_resample(X)
    assert X_res[5] is None
    assert isinstance(X_res[6], float) and np.isnan(X_res[6])
    assert isinstance(X_res[4], np.ndarray) and isinstance(X_res[7], np.ndarray)
    clips = _clips(rng, 3)
    clips[0] = None
    X_res, _ = AudioAugmenter(sr=8000, n_copies=2).fit_resample(clips)
    assert X_res[3] is None and X_res[6] is None
    assert X_res[4].dtype == np.float32


# --------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------
def test_image_augmenter_dataframe_column_copies_other_columns(rng):
    images = _images(rng, 6)
    df = pd.DataFrame(
        {
            "image": pd.Series(images, dtype=object, index=np.arange(100, 106)),
            "title": [f"item {i}" for i in range(6)],
            "price": np.arange(6) * 1.5,
        },
        index=np.arange(100, 106),
    )
    y = pd.Series([0, 0, 0, 0, 1, 1], index=df.index, name="label")
    aug = ImageAugmenter(column="image", random_state=0)
    X_res, y_res = aug.fit_resample(df, y)
    assert list(X_res.columns) == ["image", "title", "price"]
    assert isinstance(X_res.index, pd.RangeIndex) and len(X_res) == 8
    pd.testing.assert_frame_equal(
        X_res.iloc[:6][["title", "price"]],
        df.reset_index(drop=True)[["title", "price"]],
    )
    for i in range(6):
        assert X_res["image"].iloc[i] is images[i]
    src = aug.sample_indices_[6:]
    assert set(src) <= {4, 5}
    for j, row in zip(range(6, 8), src):
        assert X_res["title"].iloc[j] == f"item {row}"
        assert X_res["price"].iloc[j] == row * 1.5
        assert X_res["image"].iloc[j] is not images[row]
        assert X_res["image"].iloc[j].shape == (16, 16)
    assert isinstance(y_res, pd.Series) and y_res.name == "label"
    assert isinstance(y_res.index, pd.RangeIndex)
    assert y_res.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert aug.n_features_in_ == 3


def test_augmenter_series_object_array_and_one_column_frame(rng):
    images = _images(rng, 4)
    y = [0, 0, 0, 1]
    ser = pd.Series(images, dtype=object, name="img", index=[9, 8, 7, 6])
    out, y_res = ImageAugmenter(random_state=0).fit_resample(ser, y)
    assert isinstance(out, pd.Series) and out.name == "img" and len(out) == 6
    assert isinstance(out.index, pd.RangeIndex) and isinstance(y_res, np.ndarray)
    frame = ser.to_frame()
    out = ImageAugmenter(random_state=0).fit_resample(frame, y)[0]
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["img"]
    arr = np.empty(4, dtype=object)
    arr[:] = images
    out = ImageAugmenter(random_state=0).fit_resample(arr, y)[0]
    assert isinstance(out, np.ndarray) and out.dtype == object and out.shape == (6,)
    assert all(out[i] is images[i] for i in range(4))


def test_audio_augmenter_numeric_stacks(rng):
    y = [0, 0, 1]
    f32 = np.stack(_clips(rng, 3))
    out, _ = AudioAugmenter(sr=8000, random_state=0).fit_resample(f32, y)
    assert out.shape == (4, 800) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:3], f32)
    out, _ = AudioAugmenter(sr=8000, random_state=0).fit_resample(
        f32.astype(np.float64), y
    )
    assert out.shape == (4, 800) and out.dtype == np.float64
    i16 = (f32 * 30000).astype(np.int16)
    out, _ = AudioAugmenter(sr=8000, random_state=0).fit_resample(i16, y)
    assert out.dtype == object and out.shape == (4,)
    np.testing.assert_array_equal(out[0], i16[0])
    assert out[3].dtype == np.float32 and np.abs(out[3]).max() < 2


# --------------------------------------------------------------------------
# Audio transforms, one at a time
# --------------------------------------------------------------------------
@pytest.mark.parametrize("snr", [5.0, 20.0])
def test_audio_augmenter_noise_at_requested_snr(rng, snr):
    sr = 16000
    t = np.arange(4 * sr) / sr
    clip = (
        0.4 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 97 * t)
    ).astype(np.float32)
    aug = AudioAugmenter(
        sr=sr, n_copies=3, random_state=0, **dict(_AUDIO_OFF, snr_db=snr)
    )
    X_res, _ = aug.fit_resample([clip])
    signal = np.mean(clip.astype(float) ** 2)
    for out in X_res[1:]:
        noise = out.astype(float) - clip
        measured = 10 * np.log10(signal / np.mean(noise**2))
        assert measured == pytest.approx(snr, abs=0.5)
    # different copies get different noise
    assert not np.array_equal(X_res[1], X_res[2])


def test_audio_augmenter_snr_range_and_silence(rng):
    clip = _clips(rng, 1, length=16000)[0]
    aug = AudioAugmenter(
        sr=8000, n_copies=6, random_state=0, **dict(_AUDIO_OFF, snr_db=(10, 30))
    )
    X_res, _ = aug.fit_resample([clip])
    snrs = aug.augment_params_["snr_db"]
    assert np.all((snrs >= 10) & (snrs <= 30)) and np.ptp(snrs) > 1
    for out, snr in zip(X_res[1:], snrs):
        measured = 10 * np.log10(
            np.mean(clip.astype(float) ** 2) / np.mean((out - clip) ** 2)
        )
        assert measured == pytest.approx(snr, abs=0.5)
    silent = np.zeros(1000, dtype=np.float32)
    out, _ = AudioAugmenter(sr=8000, n_copies=1, random_state=0).fit_resample([silent])
    np.testing.assert_array_equal(out[1], silent)


def test_audio_augmenter_gain_scales_by_db(rng):
    clip = _clips(rng, 1)[0]
    out, _ = AudioAugmenter(
        sr=8000, n_copies=1, **dict(_AUDIO_OFF, gain_db=-6.0)
    ).fit_resample([clip])
    np.testing.assert_allclose(out[1], clip * 10 ** (-6 / 20), rtol=1e-6)
    aug = AudioAugmenter(
        sr=8000, n_copies=5, random_state=0, **dict(_AUDIO_OFF, gain_db=(-6, 6))
    )
    X_res, _ = aug.fit_resample([clip])
    gains = aug.augment_params_["gain_db"]
    assert np.all(np.abs(gains) <= 6) and np.ptp(gains) > 1
    for out, g in zip(X_res[1:], gains):
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, clip * 10 ** (g / 20), rtol=1e-5, atol=1e-7)


def test_audio_augmenter_shift_moves_the_signal_circularly():
    clip = np.zeros(4000, dtype=np.float32)
    clip[1000] = 1.0
    clip[3990] = -0.5  # near the end: wraps around
    aug = AudioAugmenter(
        sr=8000, n_copies=8, random_state=0, **dict(_AUDIO_OFF, max_shift=0.25)
    )
    X_res, _ = aug.fit_resample([clip])
    moved = 0
    for out in X_res[1:]:
        (peak,) = np.flatnonzero(out == 1.0)
        k = peak - 1000
        assert abs(k) <= 1000
        moved += k != 0
        np.testing.assert_array_equal(out, np.roll(clip, k))
        assert np.sum(out**2) == pytest.approx(np.sum(clip**2))
    assert moved >= 6


def test_audio_augmenter_all_off_and_reads_files(tmp_path, rng):
    clip = _clips(rng, 1, length=4000)[0]
    path = tmp_path / "a.wav"
    sf.write(path, clip, 8000, subtype="FLOAT")
    aug = AudioAugmenter(sr=16000, n_copies=1, **_AUDIO_OFF)
    X_res, _ = aug.fit_resample([str(path), clip])
    assert X_res[0] == str(path)
    expected = read_audio(str(path), sr=16000)[0]
    assert X_res[2].shape == (8000,)  # resampled to sr
    np.testing.assert_array_equal(X_res[2], expected)
    np.testing.assert_array_equal(X_res[3], clip)  # arrays are taken at sr
    with pytest.raises(InputError, match=r"row 1 \(.*gone\.wav\)"):
        AudioAugmenter(n_copies=1).fit_resample([clip, str(tmp_path / "gone.wav")])


# --------------------------------------------------------------------------
# Pipelines, clone, pickle, parameters
# --------------------------------------------------------------------------
def test_image_augmenter_in_imblearn_pipeline_only_at_fit(rng):
    X = np.stack(_images(rng, 14))
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


def test_audio_augmenter_in_pipeline_with_mfcc(rng):
    clips = _clips(rng, 8)
    y = np.array([0] * 6 + [1] * 2)
    pipe = Pipeline(
        [
            ("aug", AudioAugmenter(sr=8000, random_state=0)),
            ("mfcc", MFCCExtractor(sr=8000, n_fft=256, n_mels=32, n_mfcc=12)),
            ("clf", LogisticRegression()),
        ]
    )
    pipe.fit(clips, y)
    assert pipe.named_steps["clf"].n_features_in_ > 0
    assert pipe.predict(clips).shape == (8,)


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_augmenter_clone_and_pickle(rng, kind):
    X, make = _make(kind, rng, 6)
    y = np.array([0, 0, 0, 0, 1, 1])
    aug = make(n_copies=1, random_state=5)
    assert aug.fit(X, y) is aug
    X_a, _ = aug.fit_resample(X, y)
    cloned = clone(aug)
    assert cloned.get_params() == aug.get_params()
    assert not hasattr(cloned, "sample_indices_")
    loaded = pickle.loads(pickle.dumps(aug))
    np.testing.assert_array_equal(loaded.sample_indices_, aug.sample_indices_)
    for X_b in (loaded.fit_resample(X, y)[0], cloned.fit_resample(X, y)[0]):
        for u, v in zip(X_a, X_b):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_copies": 0}, "n_copies"),
        ({"n_copies": 1.5}, "n_copies"),
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
    X = _images(rng, 4)
    with pytest.raises(ParameterError, match=match):
        ImageAugmenter(**params).fit_resample(X, [0, 0, 0, 1])


@pytest.mark.parametrize(
    "params, match",
    [
        (
            {"snr_db": (30, 10)},
            r"snr_db must be finite with low <= high; got \(30, 10\)",
        ),
        ({"snr_db": "loud"}, "snr_db"),
        ({"gain_db": (1, 2, 3)}, r"gain_db must be None, a number or a \(low, high\)"),
        ({"sr": 0}, "sr"),
        ({"max_shift": -0.1}, "max_shift"),
    ],
)
def test_audio_augmenter_bad_params(rng, params, match):
    with pytest.raises(ParameterError, match=match):
        AudioAugmenter(**params).fit(_clips(rng, 2), [0, 1])


def test_augmenter_bad_inputs_raise_parameter_error(rng):
    X = _images(rng, 4)
    df = pd.DataFrame({"image": pd.Series(X, dtype=object), "title": list("abcd")})
    y = [0, 0, 0, 1]
    with pytest.raises(ParameterError, match="column='image' needs X to be a pandas"):
        ImageAugmenter(column="image").fit_resample(X, y)
    with pytest.raises(ParameterError, match=r"column='photo' is not a column"):
        ImageAugmenter(column="photo").fit_resample(df, y)
    with pytest.raises(ParameterError, match="pass column=<name>"):
        ImageAugmenter().fit_resample(df, y)
    with pytest.raises(ParameterError, match="y is None"):
        ImageAugmenter().fit_resample(X)
    with pytest.raises(ParameterError, match="one label per row"):
        ImageAugmenter().fit_resample(X, [0, 1])
    with pytest.raises(
        ParameterError, match="float only when the type of target is binary"
    ):
        ImageAugmenter(sampling_strategy=0.5).fit_resample(X, [0, 1, 2, 2])
    with pytest.raises(ParameterError, match="sampling_strategy"):
        ImageAugmenter(sampling_strategy={1: 0}).fit_resample(X, y)


def test_augmenters_are_samplers_not_transformers():
    from imblearn.base import is_sampler

    for aug in (ImageAugmenter(), AudioAugmenter()):
        assert is_sampler(aug)
        assert not hasattr(aug, "transform")
        assert hasattr(aug, "fit_resample")


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
