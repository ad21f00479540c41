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
from mmfeat.segmentation._filters import _hpass, _vpass, gaussian_weights

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
