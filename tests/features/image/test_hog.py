import numpy as np
import pytest
from skimage import data as skdata
from skimage.feature import hog

from mmfeat import collect_item_errors
from mmfeat.datasets import load_fashion_products, load_usps
from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.image import HOGExtractor, hog_visualization
from mmfeat.io import read_image


def _sk(image, **kw):
    channel_axis = -1 if image.ndim == 3 else None
    return hog(image, channel_axis=channel_axis, **kw)


def _ours(images, **kw):
    mode = "rgb" if images.ndim == 4 else "gray"
    return HOGExtractor(mode=mode, **kw).fit(images[:1]).transform(images)


BUNDLED = {
    "camera": lambda: skdata.camera() / 255.0,
    "coins": lambda: skdata.coins() / 255.0,
    "astronaut": lambda: skdata.astronaut()[::2, ::2] / 255.0,
}


@pytest.mark.parametrize("name", sorted(BUNDLED))
@pytest.mark.parametrize("orientations", [9, 8, 12, 7])
@pytest.mark.parametrize("block_norm", ["L2-Hys", "L1", "L1-sqrt", "L2"])
@pytest.mark.parametrize("transform_sqrt", [False, True])
def test_hog_matches_skimage_on_bundled_images(
    name, orientations, block_norm, transform_sqrt
):
    image = BUNDLED[name]()
    kw = dict(
        orientations=orientations,
        pixels_per_cell=(8, 8),
        cells_per_block=(3, 3),
        block_norm=block_norm,
        transform_sqrt=transform_sqrt,
    )
    got = _ours(image[None], **kw)[0]
    np.testing.assert_array_equal(got, _sk(image, **kw))


@pytest.mark.parametrize(
    "ppc,cpb", [((4, 4), (2, 2)), ((8, 8), (1, 1)), ((3, 5), (2, 1)), ((2, 2), (3, 3))]
)
def test_hog_matches_skimage_on_usps(data_home, ppc, cpb):
    images = load_usps(data_home=data_home).images[:300].astype(np.float64)
    got = _ours(images, pixels_per_cell=ppc, cells_per_block=cpb)
    ref = np.stack([_sk(im, pixels_per_cell=ppc, cells_per_block=cpb) for im in images])
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("mode", ["gray", "rgb"])
def test_hog_matches_skimage_on_fashion_photos_from_files(data_home, mode):
    paths = load_fashion_products(data_home=data_home).frame["path"][:40].tolist()
    ext = HOGExtractor(mode=mode, image_size=(128, 96), orientations=9, n_jobs=2)
    got = ext.fit(paths).transform(paths)
    for path, row in zip(paths, got):
        image = read_image(path, mode=mode, size=(128, 96)).astype(np.float64)
        ref = _sk(image, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3))
        np.testing.assert_array_equal(row, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_hog_dtypes_equal_skimage_on_unit_range_values(dtype, rng):
    base = rng.random((3, 40, 48))
    if dtype == np.uint8:
        images = (base * 255).astype(np.uint8)
        as_float = images / 255.0
    else:
        images = base.astype(dtype)
        as_float = images.astype(np.float64)
    got = _ours(images, cells_per_block=(2, 2))
    ref = np.stack([_sk(im, cells_per_block=(2, 2)) for im in as_float])
    np.testing.assert_array_equal(got, ref)


def test_hog_threads_do_not_change_results(rng):
    images = rng.random((16, 64, 64))
    one = HOGExtractor(n_jobs=1).fit(images).transform(images)
    two = HOGExtractor(n_jobs=2).fit(images).transform(images)
    np.testing.assert_array_equal(one, two)


def test_hog_missing_and_bad_items_keep_rows(tmp_path, rng):
    img = rng.random((32, 32))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ext = HOGExtractor(cells_per_block=(2, 2), on_error="missing").fit([img])
    with collect_item_errors() as errors:
        out = ext.transform([img, None, str(bad), img])
    assert out.shape == (4, ext.n_features_out_)
    assert np.isnan(out[1]).all() and np.isnan(out[2]).all()
    np.testing.assert_array_equal(out[0], out[3])
    assert [(e.row, e.source) for e in errors] == [(2, str(bad))]


def test_hog_too_small_image_names_minimum_and_image_size(rng):
    ext = HOGExtractor(pixels_per_cell=(8, 8), cells_per_block=(3, 3))
    with pytest.raises(InputError, match=r"smaller than the minimum 24x24.*image_size"):
        ext.fit([rng.random((16, 40))])
    with pytest.raises(ParameterError, match="at least 24x24"):
        HOGExtractor(image_size=(20, 20)).fit()


def test_hog_mixed_sizes_need_image_size(rng):
    items = [rng.random((32, 32)), rng.random((40, 32))]
    with pytest.raises(
        InputError,
        match=r"row 1 .*image is 32x40 .* fitted on 32x32; set image_size=.*"
        r"image_size=\(32, 32\)",
    ):
        HOGExtractor(cells_per_block=(2, 2)).fit(items).transform(items)
    out = (
        HOGExtractor(cells_per_block=(2, 2), image_size=(32, 32)).fit().transform(items)
    )
    assert out.shape == (2, 324) and np.isfinite(out).all()


def test_hog_feature_names_and_set_output(rng):
    images = rng.random((3, 24, 24))
    ext = HOGExtractor(cells_per_block=(2, 2)).set_output(transform="pandas")
    frame = ext.fit(images).transform(images)
    assert list(frame.columns[:2]) == ["hog_0", "hog_1"]
    assert frame.shape == (3, ext.n_features_out_)


def test_hog_visualization_matches_skimage():
    image = skdata.camera()[:128, :160] / 255.0
    _, ref = hog(image, pixels_per_cell=(8, 8), cells_per_block=(2, 2), visualize=True)
    np.testing.assert_allclose(hog_visualization(image), ref, atol=1e-6)


def test_hog_small_images_are_fine_when_image_size_resizes_them(rng):
    small = [rng.random((16, 16)) for _ in range(3)]
    ext = HOGExtractor(image_size=(32, 32), cells_per_block=(3, 3)).fit()
    out = ext.transform(small)
    assert out.shape == (3, ext.n_features_out_) and np.isfinite(out).all()


def test_hog_summary_line_says_mixed_sizes_need_image_size():
    summary = HOGExtractor.__doc__.strip().splitlines()[0]
    assert "image_size" in summary and "sizes" in summary


@pytest.mark.parametrize(
    "params, match",
    [
        (
            {"pixels_per_cell": (0, 8)},
            r"pixels_per_cell must be a \(rows, cols\) pair of integers, each "
            r"from 1 to 32768; got \(0, 8\)",
        ),
        ({"cells_per_block": (2, 2, 2)}, r"cells_per_block must be a \(rows, cols\)"),
        ({"cells_per_block": (True, 2)}, r"cells_per_block must be"),
        ({"image_size": (32, 0)}, r"image_size must be None or a \(height, width\)"),
        ({"image_size": (32, 1 << 16)}, r"from 1 to 32768; got \(32, 65536\)"),
        ({"image_size": "32x32"}, r"The 'image_size' parameter of HOGExtractor"),
        ({"orientations": 4000}, r"The 'orientations' parameter of HOGExtractor"),
    ],
)
def test_hog_bad_parameters_are_parameter_errors(params, match):
    with pytest.raises(ParameterError, match=match):
        HOGExtractor(**{"image_size": (32, 32), **params}).fit()


def test_hog_visualization_checks_its_parameters():
    with pytest.raises(ParameterError, match="'orientations' parameter of hog_vis"):
        hog_visualization(np.eye(16), orientations=0)
    with pytest.raises(ParameterError, match="'mode' parameter of hog_visualization"):
        hog_visualization(np.eye(16), mode="cmyk")
    with pytest.raises(ParameterError, match=r"pixels_per_cell must be a \(rows"):
        hog_visualization(np.eye(16), pixels_per_cell=(4, -4))


@pytest.mark.parametrize(
    "dtype, resize", [(np.uint8, "exact"), (np.float64, "exact"), (np.uint8, "pad")]
)
def test_a_numeric_stack_resized_at_once_equals_the_item_by_item_path(dtype, resize):
    # USPS-style 16x16 digits to 32x32: the whole stack is resized in one
    # step; the result must be the per-item path's, bit for bit
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 256, (300, 16, 12)).astype(np.uint8)
    if dtype is np.float64:
        stack = stack / 255.0
    hog = HOGExtractor(image_size=(32, 32), resize=resize).fit(stack[:2])
    fast = hog.transform(stack)
    slow = hog.transform(list(stack))  # a list: read_image per item
    assert fast.shape == (300, hog.n_features_out_)
    np.testing.assert_array_equal(fast, slow)


def test_a_stack_with_negative_integers_still_names_the_row():
    stack = np.zeros((4, 16, 16), np.int16)
    stack[2, 3, 3] = -1
    hog = HOGExtractor(image_size=(32, 32)).fit(np.zeros((1, 16, 16), np.uint8))
    with pytest.raises(InputError, match="row 2"):
        hog.transform(stack)


@pytest.mark.parametrize("orientations", [4, 6, 8, 9, 12])
def test_hog_bins_pixels_on_exact_bin_edges_as_skimage_does(orientations, rng):
    # few grey levels: many gradients at exactly 0, 45, 90 and 135 degrees,
    # which are bin edges for 4, 8 and 12 orientations; a pixel put in the
    # neighbouring bin would move its whole magnitude (far above 1e-12)
    image = rng.integers(0, 4, (48, 40)) / 3.0
    kw = dict(orientations=orientations, pixels_per_cell=(4, 4), cells_per_block=(2, 2))
    got = _ours(image[None], **kw)[0]
    np.testing.assert_allclose(got, _sk(image, **kw), rtol=0, atol=1e-12)


def test_hog_blocks_over_128_values_stay_within_a_last_bit_of_skimage():
    # past 128 values NumPy sums a block's two halves; mmfeat keeps its
    # eight running sums (bit-equal up to 128 values, tests above)
    image = skdata.camera()[::2, ::2] / 255.0
    for orientations, cpb in [(9, (4, 4)), (18, (3, 3))]:
        kw = dict(orientations=orientations, cells_per_block=cpb)
        got = _ours(image[None], **kw)[0]
        np.testing.assert_allclose(got, _sk(image, **kw), rtol=1e-14, atol=1e-15)


def _numpy_bins(gx, gy, thr):
    # scikit-image's rule: the angle from NumPy, bin i holds [thr[i],
    # thr[i + 1]); zero gradients and angles past the last edge count nowhere
    # (the kernel's spill bin, index n_orient)
    n_orient = thr.shape[0] - 1
    angle = np.rad2deg(np.arctan2(gy, gx)) % 180
    bins = np.searchsorted(thr, angle, side="right") - 1
    bins[(angle >= thr[-1]) | ((gx == 0) & (gy == 0))] = n_orient
    return bins


@pytest.mark.parametrize("orientations", [4, 7, 9, 10, 18, 20, 36, 360])
def test_hog_orientation_bin_of_every_direction_is_numpys(orientations, rng):
    # the kernel's float32 cosine test defers to float64 within 1e-5 of an
    # edge, and float64 to NumPy's angle within rounding: directions at, and
    # at every distance from, each edge (inside and outside both bands), the
    # axes and random ones, over more than one tile of nine edges
    from mmfeat.features.image._hog_kernels import (
        _edge_tables,
        _vote_row,
        bin_boundaries,
    )

    thr, cos_b = bin_boundaries(orientations)
    deltas = np.array([0.0, 1e-13, 1e-10, 1e-7, 1e-5, 3e-4, 1e-3, 1e-2, 1.0])
    deltas = np.concatenate([deltas, -deltas[1:]])
    angles = (thr[:, None] + deltas[None, :]).ravel()
    angles = np.concatenate([angles, angles + 180.0, rng.uniform(-180, 180, 500)])
    radius = rng.uniform(0.01, 300.0, angles.size)
    gx = radius * np.cos(np.deg2rad(angles))
    gy = radius * np.sin(np.deg2rad(angles))
    levels = np.arange(-3.0, 4.0)  # integer pairs: exact 0/45/90/135 degrees
    ix, iy = np.meshgrid(levels, levels)
    gx = np.concatenate([gx, ix.ravel(), [0.0, -0.0, 5.0, -5.0]])
    gy = np.concatenate([gy, iy.ravel(), [2.0, -2.0, -0.0, 0.0]])
    width = gx.size
    hist32 = np.zeros((1, width, orientations + 1), np.float32)
    scratch = np.empty((2, width))
    t32 = np.empty(width, np.float32)
    bins = np.empty(width, np.int32)
    edges = _edge_tables(cos_b, thr)
    _vote_row(gx, gy, 0, 1, thr, cos_b, edges, hist32, scratch, t32, bins)
    # one pixel per cell: its bin is where its magnitude went
    voted = hist32[0].argmax(axis=1)
    expected = _numpy_bins(gx, gy, thr)
    moving = np.hypot(gx, gy) > 0
    np.testing.assert_array_equal(voted[moving], expected[moving])
    # a zero gradient adds nothing anywhere but the spill bin
    assert not hist32[0, ~moving, :orientations].any()


@pytest.mark.parametrize("orientations", [10, 18, 19, 36])
def test_hog_orientation_counts_past_one_tile_match_skimage(orientations):
    # more than nine orientations take the float32 test in several tiles of
    # edges; a count that is not a multiple of nine pads the last one (blocks
    # stay at most 128 values, where the sums are bit-equal: test above)
    image = BUNDLED["coins"]()
    kw = dict(orientations=orientations, pixels_per_cell=(8, 8), cells_per_block=(1, 3))
    got = _ours(image[None], **kw)[0]
    np.testing.assert_array_equal(got, _sk(image, **kw))
