import cv2
import numpy as np
import pytest

from mmfeat.exceptions import ParameterError
from mmfeat.features.image import ColorHistogramExtractor
from mmfeat.io import read_image


def _naive_hsv(img):
    rgb = img.reshape(-1, 3).astype(np.float64)
    r, g, b = rgb.T
    v = rgb.max(1)
    delta = v - rgb.min(1)
    s = np.divide(delta, v, out=np.zeros_like(v), where=v > 0)
    safe = np.where(delta > 0, delta, 1)
    h = np.where(
        v == r,
        60 * (g - b) / safe,
        np.where(v == g, 120 + 60 * (b - r) / safe, 240 + 60 * (r - g) / safe),
    )
    h = np.where(delta == 0, 0, h)
    return np.where(h < 0, h + 360, h), s, v


def _opencv_hsv(img):
    hsv = cv2.cvtColor(img.astype(np.float32), cv2.COLOR_RGB2HSV)  # H in [0, 360)
    return hsv[..., 0].ravel(), hsv[..., 1].ravel(), hsv[..., 2].ravel()


def _hist(hsv, bins):
    h, s, v = hsv
    hb = np.minimum((h * bins[0] / 360).astype(int), bins[0] - 1)
    sb = np.minimum((s * bins[1]).astype(int), bins[1] - 1)
    vb = np.minimum((v * bins[2]).astype(int), bins[2] - 1)
    idx = (hb * bins[1] + sb) * bins[2] + vb
    return np.bincount(idx, minlength=int(np.prod(bins))) / idx.size


@pytest.mark.parametrize("bins", [(8, 4, 4), (6, 3, 2), (1, 1, 1)])
def test_color_histogram_matches_opencv_hsv(rng, bins):
    images = [(rng.random((20 + i, 30, 3)) * 255).astype(np.uint8) for i in range(4)]
    ext = ColorHistogramExtractor(bins=bins, power_norm=False).fit()
    got = ext.transform(images)
    for img, row in zip(images, got):
        pixels = read_image(img, mode="rgb")  # the float32 values mmfeat sees
        np.testing.assert_allclose(row, _hist(_naive_hsv(pixels), bins), atol=1e-12)
        # OpenCV computes in float32: pixels on a bin edge may land next door
        opencv = _hist(_opencv_hsv(pixels), bins)
        assert np.abs(row - opencv).sum() / 2 <= 0.02
        assert row.sum() == pytest.approx(1.0)


def test_color_histogram_power_norm_and_names(rng):
    img = rng.random((8, 8, 3))
    plain = ColorHistogramExtractor(power_norm=False).fit().transform([img])
    rooted = ColorHistogramExtractor().fit().transform([img])
    np.testing.assert_allclose(rooted, np.sqrt(plain))
    names = ColorHistogramExtractor(bins=(2, 1, 3)).fit().get_feature_names_out()
    assert list(names[:4]) == [
        "hsv_h0_s0_v0",
        "hsv_h0_s0_v1",
        "hsv_h0_s0_v2",
        "hsv_h1_s0_v0",
    ]


def test_color_histogram_gray_images_use_value_only():
    gray = np.linspace(0, 1, 64).reshape(8, 8)
    out = (
        ColorHistogramExtractor(bins=(4, 2, 4), power_norm=False)
        .fit()
        .transform([gray])
    )
    nz = np.flatnonzero(out[0])
    assert set(nz) <= {0, 1, 2, 3}  # hue bin 0, saturation bin 0
    np.testing.assert_allclose(out[0, :4], 0.25)


def test_color_histogram_bad_bins():
    with pytest.raises(ParameterError, match="three integers"):
        ColorHistogramExtractor(bins=(8, 4)).fit()


def test_color_histogram_bad_image_size_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"image_size must be None or a \(height"):
        ColorHistogramExtractor(image_size=(0, 16)).fit()
    with pytest.raises(ParameterError, match="'power_norm' parameter"):
        ColorHistogramExtractor(power_norm="yes").fit()
