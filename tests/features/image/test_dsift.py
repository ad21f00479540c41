import pickle

import cv2
import numpy as np
import pytest

from mmfeat.features.image import SIFTBoVWExtractor, _sift_bovw, sift_descriptors
from mmfeat.features.image._dsift_kernels import (
    FLAT,
    GAUSSIAN,
    dsift_batch,
    dsift_batch_into,
    dsift_image,
    root_sift,
)
from mmfeat.features.image._sift_bovw import _dense_grid, _grid_arrays


def _texture(rng, h=40, w=48):
    img = cv2.GaussianBlur((rng.random((h, w)) * 255).astype(np.uint8), (5, 5), 1.5)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def reference(img, ys, xs, sizes, gaussian):
    """Naive NumPy dense SIFT of the same algorithm, pixel by pixel."""
    f = img.astype(np.float64)
    h, w = f.shape
    gy = np.zeros_like(f)
    gx = np.zeros_like(f)
    gy[1:-1] = (f[2:] - f[:-2]) / 2
    gy[0], gy[-1] = f[1] - f[0], f[-1] - f[-2]
    gx[:, 1:-1] = (f[:, 2:] - f[:, :-2]) / 2
    gx[:, 0], gx[:, -1] = f[:, 1] - f[:, 0], f[:, -1] - f[:, -2]
    mag = np.sqrt(gx**2 + gy**2)
    t = (np.arctan2(-gy, gx) % (2 * np.pi)) * 8 / (2 * np.pi)
    b0 = np.floor(t).astype(int)
    r = t - b0
    planes = np.zeros((h, w, 8))
    for o in range(8):
        planes[..., o] = mag * ((b0 % 8 == o) * (1 - r) + ((b0 + 1) % 8 == o) * r)
    out = []
    yy, xx = np.mgrid[0:h, 0:w]
    for size, ysz, xsz in zip(sizes, ys, xs):
        b = size / 4
        for cy in ysz:
            for cx in xsz:
                d = np.zeros((4, 4, 8))
                win = 1.0
                if gaussian:
                    win = np.exp(
                        -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (2 * b) ** 2)
                    )
                for i in range(4):
                    for j in range(4):
                        wy = np.maximum(0, 1 - np.abs(yy - cy - (i - 1.5) * b) / b)
                        wx = np.maximum(0, 1 - np.abs(xx - cx - (j - 1.5) * b) / b)
                        wgt = wy * wx * win
                        d[i, j] = (planes * wgt[..., None]).sum(axis=(0, 1))
                d = d.ravel()
                n = np.linalg.norm(d)
                if n > 0:
                    d = np.minimum(d, 0.2 * n)
                    d = d * 512 / np.linalg.norm(d)
                out.append(d)
    return np.array(out)


@pytest.mark.parametrize("window", ["gaussian", "flat"])
@pytest.mark.parametrize("sizes", [(16,), (12, 18)])
def test_kernel_matches_numpy_reference(rng, window, sizes):
    img = _texture(rng, 30, 37)
    arrays, _ = _grid_arrays(30, 37, 6, sizes)
    got = dsift_image(img, *arrays, GAUSSIAN if window == "gaussian" else FLAT)
    from mmfeat.features.image._sift_bovw import _grid

    grids = [_grid(30, 37, 6, s) for s in sizes]
    ref = reference(
        img, [g[0] for g in grids], [g[1] for g in grids], sizes, window == "gaussian"
    )
    assert got.shape == ref.shape
    # descriptors are scaled to norm 512 (OpenCV's); float32 sums: ~1e-5 apart
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-4)


def _flat_grid(grids, sizes):
    ys = np.concatenate([g[0] for g in grids])
    xs = np.concatenate([g[1] for g in grids])
    n_y = np.array([len(g[0]) for g in grids])
    n_x = np.array([len(g[1]) for g in grids])
    start = lambda n: np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)  # noqa: E731
    return (ys, xs, np.asarray(sizes, float), start(n_y), start(n_x), n_y, n_x)


@pytest.mark.parametrize("window", ["gaussian", "flat"])
@pytest.mark.parametrize(
    "case, want_step",
    [
        # columns not evenly spaced, and a fractional step: the plane path
        ("uneven", 0),
        ("fractional", 0),
        # a scale with one column beside one with three (another x0), and a
        # patch wider than the image: the phase path with wide padding
        ("mixed", 5),
    ],
)
def test_both_grid_paths_match_numpy_reference(rng, window, case, want_step):
    from mmfeat.features.image._dsift_kernels import _grid_step
    from mmfeat.features.image._sift_bovw import _grid

    img = _texture(rng, 30, 44)
    if case == "uneven":
        sizes = (12,)
        grids = [(np.array([8.0, 15.5]), np.array([7.0, 13.0, 22.5, 30.0]))]
    elif case == "fractional":
        sizes = (12, 16)
        grids = [
            (np.array([6.0, 14.0]), 6.0 + 6.5 * np.arange(4)),
            (np.array([8.0]), 8.0 + 6.5 * np.arange(3)),
        ]
    else:
        sizes = (12, 30, 60)
        grids = [_grid(30, 44, 5, s) for s in sizes]
        assert [len(g[1]) for g in grids] == [7, 3, 1]
    arrays = _flat_grid(grids, sizes)
    assert _grid_step(arrays[1], arrays[4], arrays[6]) == want_step
    got = dsift_image(img, *arrays, GAUSSIAN if window == "gaussian" else FLAT)
    ref = reference(
        img, [g[0] for g in grids], [g[1] for g in grids], sizes, window == "gaussian"
    )
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("window", [GAUSSIAN, FLAT])
@pytest.mark.parametrize("step, sizes", [(4, (8, 16)), (7, (12, 24, 9))])
def test_phase_path_equals_plane_path(rng, window, step, sizes):
    # the vectorised regular-grid path against the per-column plane path it
    # replaces on even grids (same sums in the same order)
    from mmfeat.features.image._dsift_kernels import (
        _describe_planes,
        _grid_step,
        orientation_planes,
    )

    img = _texture(rng, 41, 52)
    arrays, _ = _grid_arrays(41, 52, step, sizes)
    assert _grid_step(arrays[1], arrays[4], arrays[6]) == step
    got = dsift_image(img, *arrays, window)
    want = np.zeros_like(got)
    _describe_planes(orientation_planes(img), *arrays, window, want)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)


def test_patches_too_wide_for_the_ring_take_the_plane_path(rng):
    # 400-pixel patches at step 1 across 600 columns: the row ring would
    # take 72 MB, past _RING_BYTES; the even-grid path must refuse before
    # allocating it
    from mmfeat.features.image._dsift_kernels import (
        _describe_planes,
        _describe_regular,
        orientation_planes,
    )

    img = cv2.resize(_texture(rng, 40, 60), (600, 404))
    arrays, _ = _grid_arrays(404, 600, 1, (400,))
    out = np.zeros((5 * 201, 128), np.float32)
    assert not _describe_regular(img, *arrays, GAUSSIAN, 1, out)
    assert not out.any()
    want = np.zeros_like(out)
    _describe_planes(orientation_planes(img), *arrays, GAUSSIAN, want)
    np.testing.assert_array_equal(dsift_image(img, *arrays, GAUSSIAN), want)
    assert np.abs(want).sum(axis=1).min() > 0


def test_positions_equal_the_opencv_grid(rng):
    img = _texture(rng, 64, 80)
    _, pos_n = sift_descriptors(img, sizes=(12, 24), descriptor="numba")
    _, pos_o = sift_descriptors(img, sizes=(12, 24), descriptor="opencv")
    np.testing.assert_array_equal(pos_n, pos_o)
    _, grid = _dense_grid(64, 80, 8, (12, 24))
    _, grid2 = _grid_arrays(64, 80, 8, (12, 24))
    np.testing.assert_array_equal(grid, grid2)


def test_high_correlation_with_opencv(rng):
    # measured: mean per-descriptor correlation ~0.87-0.9 on textures
    img = cv2.resize(_texture(rng, 64, 64), (128, 128))
    a, _ = sift_descriptors(img, root_sift=False, descriptor="numba")
    b, _ = sift_descriptors(img, root_sift=False, descriptor="opencv")
    corr = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)]
    assert np.mean(corr) > 0.8


def test_batch_equals_per_image_and_threads(rng):
    stack = np.stack([_texture(rng) for _ in range(5)])
    arrays, _ = _grid_arrays(40, 48, 8, (16, 20))
    single = np.stack([dsift_image(im, *arrays, GAUSSIAN) for im in stack])
    np.testing.assert_array_equal(dsift_batch(stack, *arrays, GAUSSIAN), single)
    imgs = list(stack)
    one = SIFTBoVWExtractor(n_words=4, pyramid_levels=(1,), random_state=0, n_jobs=1)
    two = SIFTBoVWExtractor(n_words=4, pyramid_levels=(1,), random_state=0, n_jobs=2)
    np.testing.assert_array_equal(one.fit_transform(imgs), two.fit_transform(imgs))


@pytest.mark.parametrize(
    "shape, step, sizes",
    [
        ((40, 48), 8, (16,)),
        ((9, 9), 3, (1, 16)),
        ((7, 30), 2, (2.5,)),
        ((1, 7), 8, (4, 8)),
    ],
)
def test_batch_kernel_writes_every_row_equal_to_per_image(rng, shape, step, sizes):
    # the batch kernels fill buffers that are not zeroed (np.empty, reused):
    # a descriptor left unwritten would be stale data, not zeros
    stack = np.stack([_texture(rng, *shape) for _ in range(3)])
    arrays, _ = _grid_arrays(*shape, step, sizes)
    for win in (GAUSSIAN, FLAT):
        for root in (False, True):
            out = np.full(
                (3, int((arrays[5] * arrays[6]).sum()), 128), np.nan, np.float32
            )
            dsift_batch_into(stack, *arrays, win, root, out)
            want = np.stack([dsift_image(im, *arrays, win) for im in stack])
            if root:
                for d in want:
                    root_sift(d)
            np.testing.assert_array_equal(out, want)
    # images with no pixels: zero descriptors, whatever the buffer held
    out = np.full((2, 1, 128), np.nan, np.float32)
    dsift_batch_into(
        np.zeros((2, 0, 5), np.uint8),
        *_grid_arrays(0, 5, 8, (16,))[0],
        GAUSSIAN,
        True,
        out,
    )
    assert not out.any()


def _image_by_image(est, imgs):
    """The reference: ``sift_descriptors`` per image, then the encoding."""
    opts = dict(step=est.step, sizes=tuple(est.sizes), window=est.window)
    return est._encode([sift_descriptors(img, **opts) for img in imgs])


@pytest.mark.parametrize("window", ["gaussian", "flat"])
def test_batched_transform_equals_image_by_image(rng, window, tmp_path, monkeypatch):
    # two image sizes (a batch per shape, rows put back in order), a missing
    # row, a bad file and a good one among arrays
    a, b = (
        [_texture(rng, 40, 48) for _ in range(3)],
        [_texture(rng, 33, 57) for _ in range(2)],
    )
    bad, good = tmp_path / "bad.png", tmp_path / "good.png"
    bad.write_bytes(b"not an image")
    cv2.imwrite(str(good), b[0])
    column = [a[0], b[0], None, str(bad), a[1], str(good), b[1], a[2]]
    est = SIFTBoVWExtractor(
        n_words=6, window=window, random_state=0, on_error="missing", n_jobs=2
    ).fit(a + b)
    got = est.transform(column)
    want = _image_by_image(est, [a[0], b[0], a[1], b[0], b[1], a[2]])
    np.testing.assert_array_equal(got[[0, 1, 4, 5, 6, 7]], want)
    assert np.isnan(got[[2, 3]]).all()
    # one image a batch: each batch written over the last one's buffer
    monkeypatch.setattr(_sift_bovw, "_BATCH_BYTES", 1)
    np.testing.assert_array_equal(est.transform(column), got)


def test_fit_descriptors_equal_sift_descriptors(rng):
    imgs = [_texture(rng, 40, 48), None, _texture(rng, 31, 50), _texture(rng, 40, 48)]
    est = SIFTBoVWExtractor(sizes=(12, 20), root_sift=False, window="flat")
    described, errors = est._describe_column(imgs)
    assert described[1] is None and errors == []
    for img, (desc, pos) in zip(imgs[::2] + imgs[3:], described[::2] + described[3:]):
        want_desc, want_pos = sift_descriptors(
            img, sizes=(12, 20), root_sift=False, window="flat"
        )
        np.testing.assert_array_equal(desc, want_desc)
        np.testing.assert_array_equal(pos, want_pos)


def test_dense_kernel_takes_whole_batches_on_n_jobs_numba_threads(rng, monkeypatch):
    # one numba pool for the batch, not a thread per image calling the kernel
    # (which fought numba's spinning threads: 1.24x from a second core)
    import numba

    seen = []
    real = _sift_bovw.dsift_batch_into

    def spy(stack, *args):
        seen.append((len(stack), numba.get_num_threads()))
        return real(stack, *args)

    imgs = [_texture(rng) for _ in range(6)]
    est = SIFTBoVWExtractor(n_words=4, pyramid_levels=(1,), random_state=0, n_jobs=2)
    monkeypatch.setattr(_sift_bovw, "dsift_batch_into", spy)
    est.fit(imgs).transform(imgs)
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    assert seen == [(6, threads), (6, threads)]


def test_tiny_and_blank_images():
    for shape in [(1, 1), (3, 5), (10, 10)]:
        d, p = sift_descriptors(np.zeros(shape, np.uint8), sizes=(16,))
        d2, p2 = sift_descriptors(np.zeros(shape, np.uint8), descriptor="opencv")
        assert d.shape[1] == 128 and len(d) == len(p) == len(p2)
        assert np.isfinite(d).all()
    d, _ = sift_descriptors(np.full((20, 20), 7, np.uint8), root_sift=False)
    assert not d.any()


def test_old_pickles_keep_opencv(rng):
    imgs = [_texture(rng) for _ in range(3)]
    est = SIFTBoVWExtractor(
        n_words=4, pyramid_levels=(1,), descriptor="opencv", random_state=0
    ).fit(imgs)
    state = dict(est.__getstate__())
    del state["descriptor"], state["window"]
    old = SIFTBoVWExtractor.__new__(SIFTBoVWExtractor)
    old.__setstate__(state)
    assert old.descriptor == "opencv" and old.window == "gaussian"
    np.testing.assert_array_equal(old.transform(imgs), est.transform(imgs))
    new = pickle.loads(pickle.dumps(SIFTBoVWExtractor(window="flat")))
    assert new.descriptor == "numba" and new.window == "flat"


def test_kernel_angle_equals_numpy_arctan2(rng):
    from mmfeat.features.image._dsift_kernels import _angle

    y = rng.standard_normal(5000) * rng.choice([1e-6, 1.0, 1e6], 5000)
    x = rng.standard_normal(5000)
    # the axes, the diagonals, a zero gradient and integer gradients of 8-bit images
    y[:9] = [0.0, 0.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 0.0]
    x[:9] = [1.0, -1.0, 0.0, 0.0, 1.0, -1.0, -1.0, 1.0, 0.0]
    y[9:1009] = rng.integers(-255, 256, 1000) / 2
    x[9:1009] = rng.integers(-255, 256, 1000) / 2
    got = np.array([_angle(a, b) for a, b in zip(y, x)])
    want = np.arctan2(y, x) % (2 * np.pi)
    assert ((got >= 0) & (got < 2 * np.pi)).all()
    diff = np.abs(got - want)
    np.testing.assert_array_less(np.minimum(diff, 2 * np.pi - diff), 1e-9)
