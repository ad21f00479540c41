"""PixelFeatures and pixel_features: shapes, names, colours, items, errors."""

import pickle

import cv2
import numpy as np
import pytest
from skimage.color import rgb2lab
from skimage.feature import multiscale_basic_features

from mmfeat import collect_item_errors
from mmfeat.exceptions import InputError, ModelStateError, ParameterError
from mmfeat.segmentation._features import (
    PixelFeatures,
    pixel_feature_names,
    pixel_features,
    skimage_sigmas,
)

SK = ("intensity", "edges", "texture")


def _rgb(rng, h=24, w=31):
    return rng.random((h, w, 3)).astype(np.float32)


def test_pixel_features_equals_skimage_default_set_on_a_photo(data_home):
    folder = data_home / "weizmann_horses"
    mask = cv2.imread(str(folder / "figure_ground" / "horse004.jpg"), 0)
    photo = cv2.imread(str(folder / "rgb" / "horse004.jpg"))[:, :, ::-1]
    small = (mask.shape[1] // 2, mask.shape[0] // 2)  # half size: a fast test
    img = cv2.resize(photo, small, interpolation=cv2.INTER_AREA)
    ours = pixel_features(img, sigmas=skimage_sigmas(), features=SK, color="rgb")
    ref = multiscale_basic_features(img.astype(np.float32) / 255, channel_axis=-1)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert ours.flags.c_contiguous
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_skimage_sigmas_follow_skimage():
    assert skimage_sigmas() == (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    assert len(skimage_sigmas(1, 16, num_sigma=3)) == 3
    with pytest.raises(ParameterError, match="sigma_max"):
        skimage_sigmas(4, 2)


def test_names_count_equals_feature_count(rng):
    img = _rgb(rng)
    for kw in [
        {},
        {"features": SK, "sigmas": [1.0, 2.0], "position": True},
        {"color": "grey", "features": ["dog", "structure"], "sigmas": [1.6]},
    ]:
        out = pixel_features(img, **kw)
        pf = PixelFeatures(**kw).fit([img])
        names = pf.get_feature_names_out()
        assert len(names) == out.shape[2] == pf.n_features_out_
        assert len(set(names)) == len(names)
    names = pixel_feature_names([3.5], ["hessian"], "lab", False)
    assert names == ["L_hessian1_s3.5", "L_hessian2_s3.5"] + [
        f"{c}_hessian{k}_s3.5" for c in "ab" for k in (1, 2)
    ]
    assert pixel_feature_names([1.6], ["gaussian"], "rgb", True)[0] == "R_gaussian_s1.6"
    assert pixel_feature_names([1.0], ["gaussian"], "raw", True, 2)[-2:] == [
        "pos_row",
        "pos_col",
    ]


def test_column_order_is_channel_sigma_family(rng):
    img = _rgb(rng)
    out = pixel_features(img, sigmas=[1.0, 2.0], features=["gaussian", "log"])
    for c in range(3):
        one = pixel_features(img[..., c], sigmas=[2.0], features=["log"], color="raw")
        np.testing.assert_array_equal(out[..., 4 * c + 3], one[..., 0])


def test_position_channels(rng):
    out = pixel_features(
        _rgb(rng, 5, 3), sigmas=[1.0], features=["gaussian"], position=True
    )
    np.testing.assert_allclose(out[:, 0, -2], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(out[0, :, -1], [0, 0.5, 1])
    flat = pixel_features(
        _rgb(rng, 1, 4), sigmas=[1.0], features=["gaussian"], position=True
    )
    np.testing.assert_allclose(flat[0, :, -2], 0.5)


def test_grey_and_lab_channels(rng):
    img = _rgb(rng)
    grey = pixel_features(img, sigmas=[1.0], features=["gaussian"], color="grey")
    assert grey.shape == (24, 31, 1)
    lab = pixel_features(img, sigmas=[0.1], features=["gaussian"], color="lab")
    # sigma 0.1 has a one-tap kernel: the smoothed Lab is Lab itself
    np.testing.assert_allclose(lab, rgb2lab(img.astype(np.float64)), atol=1e-3)


def test_raw_maps_take_any_finite_values(rng):
    depth = (rng.random((20, 22)) * 1000 - 300).astype(np.float32)
    out = pixel_features(depth, sigmas=[1.0], features=["gaussian"], color="raw")
    assert out.shape == (20, 22, 1)
    assert out.min() < 0 and out.max() > 100
    bad = depth.copy()
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match="NaN"):
        pixel_features(bad, sigmas=[1.0], color="raw")


def test_transformer_raw_learns_and_checks_the_channel_count(rng, tmp_path):
    maps = [rng.random((10, 12, 2)).astype(np.float32) * 50 for _ in range(2)]
    path = tmp_path / "map.npy"
    np.save(path, maps[1])
    pf = PixelFeatures(color="raw", sigmas=[1.0], features=["gaussian"])
    pf.fit([None, maps[0]])
    assert pf.n_channels_in_ == 2 and pf.n_features_out_ == 2
    out = pf.transform([maps[0], str(path)])
    np.testing.assert_array_equal(out[1], pf.features_of(maps[1]))
    with pytest.raises(InputError, match=r"row 1 .*3 channels.*fitted on maps of 2"):
        pf.transform([maps[0], np.zeros((10, 12, 3), np.float32)])
    nan = maps[0].copy()
    nan[0, 0, 1] = np.inf
    with pytest.raises(InputError, match="row 0"):
        pf.transform([nan])
    with pytest.raises(ParameterError, match="needs X"):
        PixelFeatures(color="raw").fit()


def test_transformer_output_per_row_with_different_sizes(rng):
    images = [_rgb(rng, 20, 30), None, (_rgb(rng, 9, 7) * 255).astype(np.uint8)]
    pf = PixelFeatures(sigmas=[1.0, 2.0], features=["gaussian", "hessian"]).fit(images)
    before = dict(vars(pf))
    out = pf.transform(images)
    assert vars(pf) == before
    assert out.dtype == object and out.shape == (3,)
    assert out[0].shape == (20, 30, 18) and out[2].shape == (9, 7, 18)
    assert out[1] is None
    assert out[0].dtype == np.float32 and out[0].flags.c_contiguous
    np.testing.assert_array_equal(out[0], pf.features_of(images[0]))
    np.testing.assert_array_equal(
        out[0],
        pixel_features(images[0], sigmas=[1.0, 2.0], features=["gaussian", "hessian"]),
    )


def test_transformer_bad_items_raise_or_are_recorded(rng, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    images = [_rgb(rng, 8, 8), str(bad), _rgb(rng, 8, 8)]
    pf = PixelFeatures(sigmas=[1.0], features=["gaussian"]).fit(images)
    with pytest.raises(InputError, match="row 1") as exc:
        pf.transform(images)
    assert "broken.png" in exc.value.source
    with collect_item_errors() as errors:
        out = pf.set_params(on_error="missing").transform(images)
    assert out[1] is None and out[0] is not None and out[2] is not None
    assert [e.row for e in errors] == [1]
    with pytest.raises(InputError, match=r"row 7 \(.*broken.png\)"):
        pf.features_of(str(bad), row=7)


def test_one_pixel_image_through_the_transformer():
    pf = PixelFeatures(position=True).fit()
    out = pf.transform([np.full((1, 1, 3), 0.5, np.float32)])
    assert out[0].shape == (1, 1, pf.n_features_out_) and np.isfinite(out[0]).all()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"sigmas": []}, "non-empty"),
        ({"sigmas": [1.0, 100.0]}, r"\[0.1, 64\]"),
        ({"sigmas": [0.01]}, r"\[0.1, 64\]"),
        ({"sigmas": [1.0, 1.0]}, "distinct"),
        ({"sigmas": [float("nan")]}, r"\[0.1, 64\]"),
        ({"features": ["gaussian", "sift"]}, "unknown feature family"),
        ({"features": []}, "non-empty"),
        ({"features": ["log", "log"]}, "twice"),
        ({"color": "hsv"}, "color"),
    ],
)
def test_bad_parameters_are_parameter_errors(rng, kw, match):
    with pytest.raises(ParameterError, match=match):
        pixel_features(_rgb(rng, 4, 4), **kw)
    with pytest.raises(ParameterError):
        PixelFeatures(**kw).fit([_rgb(rng, 4, 4)])


def test_pickle_and_state_check(rng):
    pf = PixelFeatures(sigmas=[1.0], features=["structure"], color="grey").fit()
    img = _rgb(rng, 12, 12)
    loaded = pickle.loads(pickle.dumps(pf))
    np.testing.assert_array_equal(loaded.transform([img])[0], pf.transform([img])[0])
    state = dict(pf.__getstate__())
    state["n_channels_in_"] = 3
    with pytest.raises(ModelStateError, match="n_channels_in_"):
        PixelFeatures.__new__(PixelFeatures).__setstate__(state)


@pytest.mark.parametrize("features", [None, SK])
def test_threads_give_the_same_numbers(rng, features):
    img = _rgb(rng, 40, 71)
    kw = {} if features is None else {"features": features}
    one = pixel_features(img, sigmas=[1.0, 3.5], n_jobs=1, **kw)
    two = pixel_features(img, sigmas=[1.0, 3.5], n_jobs=2, **kw)
    np.testing.assert_array_equal(one, two)


def test_threads_over_images_give_the_same_numbers(rng):
    images = [_rgb(rng, 12 + i, 20 - i) for i in range(4)]
    for features in (SK, ("gaussian", "structure")):
        one = PixelFeatures(sigmas=[1.0, 2.0], features=features, n_jobs=1)
        two = PixelFeatures(sigmas=[1.0, 2.0], features=features, n_jobs=2)
        for a, b in zip(one.fit_transform(images), two.fit_transform(images)):
            np.testing.assert_array_equal(a, b)
        a = pixel_features(images[0], sigmas=[1.0, 2.0], features=features, n_jobs=2)
        np.testing.assert_array_equal(a, one.features_of(images[0]))
