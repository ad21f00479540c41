"""The filter-bank kernels against SciPy / scikit-image references.

Images are tiny so the file also runs with ``NUMBA_DISABLE_JIT=1`` (the CI
step that runs the kernels as plain Python). Boundary mode: ``"nearest"``.
"""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.feature import (
    hessian_matrix_eigvals,
    multiscale_basic_features,
    structure_tensor_eigenvalues,
)

from mmfeat.segmentation._features import pixel_features, skimage_sigmas
from mmfeat.segmentation._filters import _hpass, _vpass, _vpass_t, gaussian_weights

ILASTIK = ("gaussian", "log", "gradient", "dog", "structure", "hessian")


def _close(ours, ref, what):
    """float32 against a float64 reference: 1e-4 relative, 1e-5 of the range."""
    ref = np.asarray(ref, dtype=np.float64)
    span = float(np.ptp(ref)) or 1.0
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * span, err_msg=what)


def _image(rng, h=13, w=11):
    return rng.random((h, w, 3)).astype(np.float32)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("order", [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1)])
def test_separable_passes_match_scipy_gaussian_filter(rng, sigma, order):
    img = rng.random((9, 12)).astype(np.float32)
    wv, pv = gaussian_weights(sigma, order[0])
    wh, ph = gaussian_weights(sigma, order[1])
    vert = np.empty((1,) + img.shape, np.float32)
    _vpass(img, wv[None], np.asarray([pv]), vert)
    out = np.empty_like(vert)
    _hpass(vert[0], wh[None], np.asarray([ph]), out, img.shape[1])
    ref = ndi.gaussian_filter(
        img.astype(np.float64), sigma, order=order, mode="nearest", truncate=4.0
    )
    _close(out[0], ref, f"order {order}")


def test_passes_match_scipy_on_images_smaller_than_the_kernel(rng):
    # sigma 3 reaches 12 pixels: far past both sides of a 3 x 2 image
    img = rng.random((3, 2)).astype(np.float32)
    ref = ndi.gaussian_filter(img.astype(np.float64), 3.0, mode="nearest")
    ours = pixel_features(
        img[..., None], sigmas=[3.0], features=["gaussian"], color="raw"
    )
    _close(ours[..., 0], ref, "tiny image")


@pytest.mark.parametrize("sigma", [0.7, 1.6, 3.5])
def test_ilastik_families_match_scipy_and_skimage(rng, sigma):
    img = _image(rng)
    ours = pixel_features(img, sigmas=[sigma], features=ILASTIK)
    assert ours.shape == (13, 11, 3 * 8)
    for c in range(3):
        g = img[..., c].astype(np.float64)
        f = ours[..., 8 * c : 8 * (c + 1)]

        def gf(x, s, order=0):
            return ndi.gaussian_filter(x, s, order=order, mode="nearest")

        _close(f[..., 0], gf(g, sigma), "gaussian")
        _close(f[..., 1], ndi.gaussian_laplace(g, sigma, mode="nearest"), "log")
        _close(
            f[..., 2],
            ndi.gaussian_gradient_magnitude(g, sigma, mode="nearest"),
            "gradient",
        )
        _close(f[..., 3], gf(g, sigma) - gf(g, 0.66 * sigma), "dog")
        gr, gc = gf(g, sigma, (1, 0)), gf(g, sigma, (0, 1))
        tensor = [gf(x, 0.5 * sigma) for x in (gr * gr, gr * gc, gc * gc)]
        st = structure_tensor_eigenvalues(tensor)
        _close(f[..., 4], st[0], "structure1")
        _close(f[..., 5], st[1], "structure2")
        hess = [gf(g, sigma, o) for o in ((2, 0), (1, 1), (0, 2))]
        he = hessian_matrix_eigvals(hess)
        _close(f[..., 6], he[0], "hessian1")
        _close(f[..., 7], he[1], "hessian2")
        assert np.all(f[..., 4] >= f[..., 5]) and np.all(f[..., 6] >= f[..., 7])


@pytest.mark.parametrize("shape", [(13, 11), (2, 5), (6, 2)])
def test_skimage_families_equal_multiscale_basic_features(rng, shape):
    img = rng.random(shape + (3,)).astype(np.float32)
    sigmas = skimage_sigmas(sigma_min=0.5, sigma_max=4)
    ours = pixel_features(
        img, sigmas=sigmas, features=("intensity", "edges", "texture"), color="rgb"
    )
    ref = multiscale_basic_features(img, channel_axis=-1, sigma_max=4)
    assert ours.shape == ref.shape
    _close(ours, ref, "multiscale_basic_features")


def test_skimage_family_subsets_equal_their_columns_of_the_full_set(rng):
    img = _image(rng)[..., :1]
    full = pixel_features(
        img, sigmas=[1.0], features=("intensity", "edges", "texture"), color="raw"
    )
    for k, fam in [(0, "intensity"), (1, "edges")]:
        one = pixel_features(img, sigmas=[1.0], features=(fam,), color="raw")
        np.testing.assert_array_equal(one[..., 0], full[..., k])
    tex = pixel_features(img, sigmas=[1.0], features=("texture",), color="raw")
    np.testing.assert_array_equal(tex, full[..., 2:])


def test_one_pixel_image_features_match_the_constant():
    img = np.full((1, 1, 3), 0.25, np.float32)
    out = pixel_features(img, features=ILASTIK + ("edges", "texture"), position=True)
    assert out.shape[:2] == (1, 1) and np.isfinite(out).all()
    np.testing.assert_allclose(out[0, 0, 0], 0.25, rtol=1e-6)  # smoothing a constant
    np.testing.assert_array_equal(out[0, 0, -2:], [0.5, 0.5])


def test_skimage_maps_equal_in_the_fused_and_the_planar_path(rng):
    # scikit-image's families alone take the fused path (maps computed
    # while interleaving); with another family they are computed as planes
    img = _image(rng)
    sk = ("intensity", "edges", "texture")
    fused = pixel_features(img, sigmas=[0.5, 2.0], features=sk)
    planar = pixel_features(img, sigmas=[0.5, 2.0], features=sk + ("gaussian",))
    keep = [k for k in range(planar.shape[2]) if k % 5 != 4]
    np.testing.assert_array_equal(fused, planar[..., keep])
    np.testing.assert_array_equal(planar[..., 4::5], planar[..., 0::5])


@pytest.mark.parametrize("sigma", [0.5, 2.0, 4.0])
def test_transposed_passes_match_scipy_gaussian_filter(rng, sigma):
    # two transposed vertical passes smooth both axes and leave the image
    # as it was; padding rows and columns beyond the image are ignored
    img = rng.random((7, 10)).astype(np.float32)
    w, p = gaussian_weights(sigma, 0)
    r = len(w) // 2 + 1  # more than the radius: the passes use what they need
    src = np.pad(img, ((r, r), (0, 16 - 10)), mode="edge")
    tmp = np.full((10 + 2 * r, 16), np.nan, np.float32)
    out = np.full((7, 16), np.nan, np.float32)
    buf = np.empty(16 * 16, np.float32)
    _vpass_t(src, 7, w[None], np.asarray([p]), tmp, r, buf)
    np.testing.assert_array_equal(tmp[:r], np.repeat(tmp[r : r + 1], r, 0))
    _vpass_t(tmp, 10, w[None], np.asarray([p]), out, 0, buf)
    ref = ndi.gaussian_filter(img.astype(np.float64), sigma, mode="nearest")
    _close(out[:, :10], ref, f"sigma {sigma}")
    np.testing.assert_array_equal(out[:, 10:], np.repeat(out[:, 9:10], 6, 1))


def test_skimage_families_on_rows_of_several_segments_equal_multiscale(rng):
    # wider than one segment of the fused kernel (32 pixels), not a multiple
    img = rng.random((6, 70, 3)).astype(np.float32)
    ours = pixel_features(
        img,
        sigmas=skimage_sigmas(sigma_max=2),
        features=("intensity", "edges", "texture"),
    )
    ref = multiscale_basic_features(img, channel_axis=-1, sigma_max=2)
    _close(ours, ref, "multiscale_basic_features, 70 pixels wide")


def test_skimage_families_in_any_order_equal_the_default_order(rng):
    # another family order (and the position columns) writes the maps
    # through the general path; the numbers are the same
    img = rng.random((9, 40, 3)).astype(np.float32)
    sk = ("intensity", "edges", "texture")
    ref = pixel_features(img, sigmas=[0.5, 2.0], features=sk)
    order = ("texture", "intensity", "edges")
    ours = pixel_features(img, sigmas=[0.5, 2.0], features=order, position=True)
    assert ours.shape == (9, 40, 3 * 2 * 4 + 2)
    keep = [4 * (k // 4) + (2, 3, 0, 1)[k % 4] for k in range(ref.shape[2])]
    np.testing.assert_array_equal(ours[..., keep], ref)
    np.testing.assert_array_equal(ours[0, :, -2], 0.0)
