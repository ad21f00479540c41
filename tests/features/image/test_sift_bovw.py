import pickle
import threading

import cv2
import numpy as np
import pytest

from mmfeat.datasets import load_fashion_products
from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.image import SIFTBoVWExtractor, sift_descriptors
from mmfeat.features.image._dsift_kernels import root_sift


@pytest.fixture
def texture(rng):
    img = cv2.GaussianBlur((rng.random((64, 80)) * 255).astype(np.uint8), (5, 5), 1.5)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def test_dense_descriptors_equal_opencv_on_the_same_grid(texture):
    desc, pos = sift_descriptors(
        texture, step=8, sizes=(16,), root_sift=False, descriptor="opencv"
    )
    ys = np.arange(8, 64 - 8 + 1, 8)
    xs = np.arange(8, 80 - 8 + 1, 8)
    kps = [cv2.KeyPoint(float(x), float(y), 16 / 6, 0) for y in ys for x in xs]
    _, ref = cv2.SIFT_create().compute(texture, kps)
    np.testing.assert_array_equal(desc, ref)
    assert pos.shape == (len(ys) * len(xs), 2)
    assert pos.min() >= 0 and pos.max() < 1
    np.testing.assert_allclose(pos[0], [8 / 64, 8 / 80])


def test_root_sift_rows_have_unit_l2_norm(texture):
    desc, _ = sift_descriptors(texture, sizes=(12, 24))
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("descriptor", ["numba", "opencv"])
def test_root_sift_kernel_matches_numpy(texture, descriptor):
    raw, _ = sift_descriptors(
        texture, sizes=(12, 24), root_sift=False, descriptor=descriptor
    )
    raw[0] = 0  # a blank descriptor stays zero
    ref = np.sqrt(raw / (raw.sum(axis=1, keepdims=True) + 1e-7))
    got = raw.copy()
    root_sift(got)
    assert got.dtype == np.float32 and not got[0].any()
    np.testing.assert_allclose(got, ref, rtol=3e-7, atol=1e-12)
    root, _ = sift_descriptors(texture, sizes=(12, 24), descriptor=descriptor)
    np.testing.assert_allclose(root[1:], ref[1:], rtol=3e-7, atol=1e-12)


def test_detector_both_stacks_dense_and_keypoints(texture):
    dense, _ = sift_descriptors(texture, detector="dense")
    kp, _ = sift_descriptors(texture, detector="sift")
    both, _ = sift_descriptors(texture, detector="both")
    assert len(both) == len(dense) + len(kp) and len(kp) > 0


def test_bovw_hard_levels_sum_to_one_without_norms(rng):
    images = [rng.random((48, 64)) for _ in range(6)]
    ext = SIFTBoVWExtractor(
        n_words=10,
        pyramid_levels=(1, 2),
        power_norm=False,
        l2_norm=False,
        random_state=0,
    ).fit(images)
    out = ext.transform(images)
    assert out.shape == (6, 10 * 5)
    np.testing.assert_allclose(out[:, :10].sum(axis=1), 1.0)
    np.testing.assert_allclose(out[:, 10:].sum(axis=1), 1.0)
    assert ext.codebook_.shape == (10, 128) and ext.codebook_.dtype == np.float32


def test_bovw_given_codebook_is_used_unchanged(rng):
    images = [rng.random((40, 40)) for _ in range(3)]
    codebook = np.abs(rng.standard_normal((7, 128))).astype(np.float32)
    ext = SIFTBoVWExtractor(codebook=codebook, pyramid_levels=(1,)).fit(images)
    np.testing.assert_array_equal(ext.codebook_, codebook)
    assert ext.transform(images).shape == (3, 7)
    with pytest.raises(ParameterError, match=r"shape \(n_words, 128\)"):
        SIFTBoVWExtractor(codebook=np.zeros((4, 64))).fit(images)


def test_bovw_too_few_descriptors_is_a_clear_error(rng):
    with pytest.raises(ParameterError, match="fewer than n_words=500"):
        SIFTBoVWExtractor(n_words=500).fit([rng.random((32, 32))])


def test_bovw_blank_image_zero_row_missing_item_nan_row(rng):
    images = [rng.random((48, 48)) for _ in range(4)]
    ext = SIFTBoVWExtractor(
        n_words=4, detector="sift", pyramid_levels=(1,), random_state=0
    ).fit(images)
    out = ext.transform([images[0], np.zeros((48, 48)), None])
    assert np.linalg.norm(out[0]) == pytest.approx(1.0)
    assert np.all(out[1] == 0)
    assert np.isnan(out[2]).all()


def test_bovw_soft_bandwidth_learned_and_vlad_width(rng):
    images = [rng.random((40, 40)) for _ in range(4)]
    soft = SIFTBoVWExtractor(
        n_words=6, encoding="soft", pyramid_levels=(1,), random_state=0
    ).fit(images)
    assert soft.bandwidth_ > 0
    assert soft.transform(images).shape == (4, 6)
    vlad = SIFTBoVWExtractor(n_words=3, encoding="vlad", pyramid_levels=(1, 2)).fit(
        images
    )
    assert vlad.transform(images).shape == (4, 3 * 5 * 128)
    names = vlad.get_feature_names_out()
    assert names[0] == "vlad_l0_c0_w0_d0" and names[-1] == "vlad_l1_c3_w2_d127"


def test_bovw_same_seed_same_codebook_and_pickles_without_opencv(rng):
    images = [rng.random((40, 40)) for _ in range(4)]
    a = SIFTBoVWExtractor(n_words=5, random_state=3).fit(images)
    b = SIFTBoVWExtractor(n_words=5, random_state=3).fit(images)
    np.testing.assert_array_equal(a.codebook_, b.codebook_)
    blob = pickle.dumps(a)
    assert b"cv2" not in blob
    np.testing.assert_array_equal(
        pickle.loads(blob).transform(images), a.transform(images)
    )


def test_bovw_bad_file_row_named(tmp_path, rng):
    images = [rng.random((40, 40)) for _ in range(3)]
    ext = SIFTBoVWExtractor(n_words=4, random_state=0).fit(images)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(InputError, match=r"row 1 \(.*bad\.jpg\)"):
        ext.transform([images[0], str(bad)])


def test_bovw_on_real_product_photos(data_home):
    paths = load_fashion_products(data_home=data_home).frame["path"][:12].tolist()
    ext = SIFTBoVWExtractor(n_words=16, image_size=(96, 72), random_state=0, n_jobs=2)
    out = ext.fit(paths).transform(paths)
    assert out.shape == (12, 16 * 21)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"sizes": ()}, "sizes must be a non-empty tuple of patch widths"),
        ({"sizes": (16, "big")}, "sizes must be a non-empty tuple of patch widths"),
        ({"sizes": (0,)}, "sizes must be a non-empty tuple of patch widths"),
        ({"image_size": (48,)}, r"image_size must be None or a \(height, width\)"),
        ({"pyramid_levels": (0,)}, "pyramid_levels must be"),
        ({"encoding": "fisher"}, "'encoding' parameter of SIFTBoVWExtractor"),
        ({"n_words": 0}, "'n_words' parameter of SIFTBoVWExtractor"),
    ],
)
def test_bovw_bad_parameters_are_parameter_errors(rng, params, match):
    with pytest.raises(ParameterError, match=match):
        SIFTBoVWExtractor(**params).fit([rng.random((32, 32))])


def _threads_calling(monkeypatch, name, est, imgs):
    """Transform at n_jobs=1, then at 2 with ``_sift_bovw.<name>`` spied on.

    Returns the two outputs and the set of threads that called ``name``.
    """
    import time

    from joblib import cpu_count

    from mmfeat.features.image import _sift_bovw

    if cpu_count() < 2:
        pytest.skip("one core: map_items caps the workers at the cores")
    seen = set()
    real = getattr(_sift_bovw, name)

    def spy(*args, **kwargs):
        seen.add(threading.get_ident())
        time.sleep(0.01)  # so one worker cannot take every chunk
        return real(*args, **kwargs)

    one = est.set_params(n_jobs=1).fit(imgs).transform(imgs)
    monkeypatch.setattr(_sift_bovw, name, spy)
    two = est.set_params(n_jobs=2).transform(imgs)
    return one, two, seen


def test_decoded_arrays_are_described_on_n_jobs_threads(texture, monkeypatch):
    # the descriptors are the work: a column of arrays must not run in the
    # calling thread alone at n_jobs=2 (it did; 1.0x at two threads). The
    # per-image path: OpenCV's descriptors (the dense numba kernel takes
    # whole batches on numba's threads, test_dsift.py)
    imgs = [np.roll(texture, k, axis=1) for k in range(16)]
    est = SIFTBoVWExtractor(
        n_words=4, pyramid_levels=(1,), random_state=0, descriptor="opencv"
    )
    one, two, seen = _threads_calling(monkeypatch, "sift_descriptors", est, imgs)
    assert len(seen) == 2 and threading.get_ident() not in seen
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("image_size", [None, (48, 60)])
def test_dense_numba_reads_arrays_on_threads_only_to_resize(
    texture, monkeypatch, image_size
):
    # the numba descriptor takes whole batches on numba's threads; reading a
    # decoded array is worth worker threads only when it is resized
    imgs = [np.roll(texture, k, axis=1) for k in range(16)]
    est = SIFTBoVWExtractor(
        n_words=4, pyramid_levels=(1,), random_state=0, image_size=image_size
    )
    one, two, seen = _threads_calling(monkeypatch, "read_image", est, imgs)
    if image_size is None:
        assert seen == {threading.get_ident()}
    else:
        assert len(seen) == 2 and threading.get_ident() not in seen
    np.testing.assert_array_equal(one, two)
