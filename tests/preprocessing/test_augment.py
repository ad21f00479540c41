"""What both augmenters share (``mmfeat/preprocessing/_augment.py``).

Which rows get copies (sampling strategies, ``n_copies``), originals first and
untouched, ``random_state``, missing items, the containers that come in and
go out, clone and pickle, input checks, and being an imbalanced-learn sampler.
Transform-specific tests are in ``test_image_augmenter.py`` and
``test_audio_augmenter.py``.
"""

import pickle
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mmfeat.exceptions import ParameterError
from mmfeat.preprocessing import AudioAugmenter, ImageAugmenter
from tests.preprocessing._helpers import make_clips, make_images


def _make(kind, rng, n):
    if kind == "image":
        return make_images(rng, n), ImageAugmenter
    return make_clips(rng, n), lambda **kw: AudioAugmenter(sr=8000, **kw)


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
    X = make_images(rng, 12)
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
    stack = np.stack(make_images(rng, 6))
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
# Missing items
# --------------------------------------------------------------------------


def test_augmenter_missing_items_stay_missing(rng):
    X = make_images(rng, 4)
    X[1] = None
    X[2] = float("nan")
    X_res, _ = ImageAugmenter(n_copies=1, random_state=0).fit_resample(X)
    assert X_res[5] is None
    assert isinstance(X_res[6], float) and np.isnan(X_res[6])
    assert isinstance(X_res[4], np.ndarray) and isinstance(X_res[7], np.ndarray)
    clips = make_clips(rng, 3)
    clips[0] = None
    X_res, _ = AudioAugmenter(sr=8000, n_copies=2).fit_resample(clips)
    assert X_res[3] is None and X_res[6] is None
    assert X_res[4].dtype == np.float32


# --------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------


def test_image_augmenter_dataframe_column_copies_other_columns(rng):
    images = make_images(rng, 6)
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
    images = make_images(rng, 4)
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
    f32 = np.stack(make_clips(rng, 3))
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
# Pipelines, clone, pickle, parameters
# --------------------------------------------------------------------------


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


def test_augmenter_bad_inputs_raise_parameter_error(rng):
    X = make_images(rng, 4)
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
