import numpy as np
import pytest
from skimage import data

from mmfeat.datasets import load_texture_mosaics
from mmfeat.exceptions import ParameterError

SOURCES = [data.brick(), data.grass(), data.gravel()]


@pytest.fixture(scope="module")
def mosaics():
    return load_texture_mosaics()


def test_load_texture_mosaics_defaults(mosaics):
    frame = mosaics.frame
    assert list(frame.columns) == ["image", "mask", "split"]
    assert frame["split"].tolist() == ["train"] * 12 + ["test"] * 12
    assert mosaics.target_names.tolist() == ["brick", "grass", "gravel"]
    assert "CC0" in mosaics.DESCR
    for i, (image, mask) in enumerate(zip(mosaics.images, mosaics.masks)):
        assert image.shape == mask.shape == (128, 128)
        assert image.dtype == np.float32 and mask.dtype == np.uint8
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert frame["image"][i] is image and frame["mask"][i] is mask
        # n_regions=5 >= 3: every texture in every image, no unlabelled pixel.
        assert np.unique(mask).tolist() == [1, 2, 3]


def _find_patch(source, image, where):
    """Return the (y, x) offsets where ``image[where]`` matches ``source``."""
    ys, xs = np.nonzero(where)
    y0, x0 = ys[0], xs[0]
    h, w = image.shape
    hits = []
    for cy, cx in np.argwhere(source == round(float(image[y0, x0]) * 255)):
        oy, ox = cy - y0, cx - x0
        if oy < 0 or ox < 0 or oy > 512 - h or ox > 512 - w:
            continue
        patch = source[oy : oy + h, ox : ox + w].astype(np.float32) / 255
        if np.array_equal(patch[where], image[where]):
            hits.append((oy, ox))
    return hits


def test_load_texture_mosaics_pixels_from_the_split_half(mosaics):
    # Exact ground truth: every region's pixels are an untouched patch of the
    # texture its label names, taken from the top half for train images and
    # the bottom half for test images.
    for i in (0, 11, 12, 23):
        image, mask = mosaics.images[i], mosaics.masks[i]
        for label, source in enumerate(SOURCES, start=1):
            hits = _find_patch(source, image, mask == label)
            assert hits, f"image {i}, label {label}: no matching patch"
            for oy, _ in hits:
                if mosaics.frame["split"][i] == "train":
                    assert oy + 128 <= 256
                else:
                    assert oy >= 256


def test_load_texture_mosaics_deterministic(mosaics):
    again = load_texture_mosaics()
    for a, b in zip(mosaics.images, again.images):
        np.testing.assert_array_equal(a, b)
    other = load_texture_mosaics(random_state=1)
    assert not np.array_equal(other.masks[0], mosaics.masks[0])


def test_load_texture_mosaics_parameters():
    small = load_texture_mosaics(n_images=3, size=(32, 48), n_regions=2)
    assert small.frame["split"].tolist() == ["train", "train", "test"]
    for mask in small.masks:
        assert mask.shape == (32, 48)
        assert len(np.unique(mask)) == 2
    many = load_texture_mosaics(n_images=2, size=(16, 16), n_regions=256)
    assert all(np.unique(m).tolist() == [1, 2, 3] for m in many.masks)
    one = load_texture_mosaics(n_images=1, n_regions=1)
    assert one.frame["split"].tolist() == ["train"]
    assert len(np.unique(one.masks[0])) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_images": 0}, "n_images"),
        ({"n_images": 2.5}, "n_images"),
        ({"size": (257, 64)}, "size"),
        ({"size": (64,)}, "size"),
        ({"size": (4, 64)}, "size"),
        ({"n_regions": 0}, "n_regions"),
        ({"size": (8, 8), "n_regions": 65}, "n_regions"),
    ],
)
def test_load_texture_mosaics_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        load_texture_mosaics(**kwargs)


def test_region_count_is_capped_so_memory_stays_bounded():
    from mmfeat.exceptions import ParameterError

    with pytest.raises(ParameterError, match=r"n_regions must be an int in \[1, 256\]"):
        load_texture_mosaics(size=(256, 256), n_regions=100_000)
