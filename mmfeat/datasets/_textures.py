"""Embedded segmentation data built from scikit-image's bundled images.

Two loaders that need no data home and no network: texture mosaics with
exact ground truth (:func:`load_texture_mosaics`) and RGB + disparity tiles of
a rectified stereo pair with depth-layer ground truth
(:func:`load_stereo_depth`, the multimodal case).
"""

import numbers

import cv2
import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

from mmfeat.datasets._common import _object_column
from mmfeat.exceptions import ParameterError

__all__ = ["load_texture_mosaics", "load_stereo_depth"]

#: Texture classes, label ``k`` is ``_TEXTURES[k - 1]``.
_TEXTURES = ("brick", "grass", "gravel")
#: Rows of each 512x512 source texture a split may cut patches from.
_HALF = 256

TEXTURE_MOSAICS_DESCR = """\
Texture mosaics (embedded, from scikit-image's bundled CC0 textures)
====================================================================

Synthetic segmentation images with exact ground truth: each image is a random
Voronoi partition of the frame into n_regions regions (seeds at distinct
random pixels, so no region is empty), each region filled with one of three
textures. When n_regions >= 3 every texture occurs in every image (the first
three regions take the three textures in a random order, the others a random
texture each). Labels: 1 = brick, 2 = grass, 3 = gravel (0, "unlabelled",
never occurs).

Each image takes, per texture, one patch of its size at a random offset; a
region of that texture shows the patch's pixels at the same positions. No
pixel leaks between splits: the first half of the images ("train") cut their
patches from the top half (rows 0-255) of each source texture, the rest
("test") from the bottom half (rows 256-511).

Grey levels are kept as in the source, so plain intensity is a weak cue;
mean (standard deviation) of each texture, values in [0, 1]:
brick 0.437 (0.102), grass 0.464 (0.151), gravel 0.496 (0.152); top/bottom
half means: brick 0.439/0.436, grass 0.465/0.463, gravel 0.488/0.504.

Sources (files shipped inside scikit-image, skimage/data/*.png, 512x512 grey
uint8), as stated in scikit-image's documentation of skimage.data:
- brick(): "Bricks25" from CC0Textures (cc0textures.com), perspective
  transformed, rotated, cropped and scaled by scikit-image.
- grass(): "Grass 01" by linolafett on DeviantArt, cropped to 512x512 and
  converted to grey by scikit-image.
- gravel(): "Gravel04" from CC0Textures, rescaled to 1024x1024, cropped to
  512x512 and converted to grey by scikit-image.
License: all three under the Creative Commons CC0 License (public domain).
"""

STEREO_DEPTH_DESCR = """\
Stereo depth layers (embedded, Middlebury 2014 "Motorcycle" in scikit-image)
============================================================================

A multimodal segmentation scene: a rectified colour stereo pair (500x741) with
ground-truth disparity, from skimage.data.stereo_motorcycle(). Modalities per
item (a tile of the scene):

- image: the left RGB tile, uint8.
- depth: a sensor-like disparity map (pixels), float32, estimated from the
  left/right pair with OpenCV's semi-global block matching (StereoSGBM,
  minDisparity=0, numDisparities=64, blockSize=5, P1=8*25, P2=32*25,
  disp12MaxDiff=1, uniquenessRatio=10, speckleWindowSize=100,
  speckleRange=2, on the grey images). Pixels without a valid match
  (occlusions, the left border, filtered speckles; about 14 % of the scene)
  are 0 = "no reading"; valid readings are > 0 (true disparities are 7-60).
  Never NaN or inf.
- mask: ground truth depth layers, uint8: the valid ground-truth disparity
  quantised at its 1/3 and 2/3 quantiles over the whole scene (about 21.4
  and 47.5 px) into 1 = far (disparity below the first), 2 = middle,
  3 = near (at or above the second); 0 = unlabelled where the ground truth is
  unknown (about 7 % of the scene).

Tiles: the scene is cut into non-overlapping tiles of the requested size
from its top-left corner (the remainder at the right and bottom is left out).
A tile whose centre lies in the left half of the scene is "train", the others
"test". The depth map is estimated once on the whole pair (it uses no label).

Ground truth: the scene's disparity_truth marks unknown pixels as NaN (the
file in scikit-image 0.26 stores them as inf; its documentation says NaN;
both become NaN here). It is the truth, not a channel to feed a model.

Source: D. Scharstein, H. Hirschmueller, Y. Kitajima, G. Krathwohl, N. Nesic,
X. Wang and P. Westling, "High-resolution stereo datasets with
subpixel-accurate ground truth", GCPR 2014 (Middlebury 2014 stereo
benchmark), down-sampled by 4 by scikit-image (files motorcycle_left.png,
motorcycle_right.png, motorcycle_disp.npz in skimage/data).
"""


def _check_int(name, value, low, high=None):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ParameterError(f"{name} must be an int {bound}; got {value!r}")
    return int(value)


def _check_size(name, value, low, high):
    """Check a (height, width) pair of ints within ``low``..``high``."""
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value
        )
    )
    if ok:
        h, w = (int(v) for v in value)
        ok = low[0] <= h <= high[0] and low[1] <= w <= high[1]
    if not ok:
        raise ParameterError(
            f"{name} must be a (height, width) pair of ints with height in "
            f"[{low[0]}, {high[0]}] and width in [{low[1]}, {high[1]}]; "
            f"got {value!r}"
        )
    return h, w


def _source_textures():
    """The three bundled textures as float32 in [0, 1], label order."""
    from skimage import data

    return [getattr(data, name)().astype(np.float32) / 255.0 for name in _TEXTURES]


#: The most regions per mosaic (the assignment's memory is H x W x regions).
_MAX_REGIONS = 256


def _voronoi_labels(rng, size, n_regions):
    """Region index per pixel: nearest of ``n_regions`` distinct seed pixels."""
    h, w = size
    seeds = rng.choice(h * w, size=n_regions, replace=False)
    sy, sx = np.divmod(seeds, w)
    yy = np.arange(h, dtype=np.float32)[:, None, None]
    xx = np.arange(w, dtype=np.float32)[None, :, None]
    d2 = (yy - sy.astype(np.float32)) ** 2 + (xx - sx.astype(np.float32)) ** 2
    # A seed is at distance 0 from its own pixel and > 0 from every other, so
    # every region holds at least its seed pixel.
    return np.argmin(d2, axis=2)


def load_texture_mosaics(*, n_images=24, size=(128, 128), n_regions=5, random_state=0):
    """Build texture mosaics with exact ground truth (embedded, no data home).

    Each image is a random Voronoi partition into ``n_regions`` regions, each
    filled with one of scikit-image's bundled CC0 textures brick, grass and
    gravel (:func:`skimage.data.brick` and friends, files shipped inside
    scikit-image, so this works offline on any fresh install). The first half
    of the images are ``"train"`` and cut their texture patches from the top
    half of each source texture; the rest are ``"test"`` and cut them from the
    bottom half, so no source pixel appears in both splits.

    =================  ============================================
    Images             ``n_images`` (24), first half train
    Classes            3: 1 = brick, 2 = grass, 3 = gravel
    Image              grey float32 in [0, 1], ``size`` (128 x 128)
    Mask               uint8 labels, exact (no 0 pixels)
    =================  ============================================

    Parameters
    ----------
    n_images : int, default=24
        Number of mosaics, >= 1. The first ``ceil(n_images / 2)`` are
        ``"train"``, the others ``"test"``.
    size : tuple of int (height, width), default=(128, 128)
        Image size; height in [8, 256] (a patch must fit in half a source
        texture), width in [8, 512].
    n_regions : int, default=5
        Regions per image, in [1, min(height * width, 256)]. With ``n_regions >= 3``
        every texture occurs in every image; with fewer, the regions take
        distinct textures.
    random_state : int, RandomState instance or None, default=0
        Seeds the partitions, textures per region and patch offsets. An int
        gives the same mosaics on every call.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        frame : pandas.DataFrame of shape (n_images, 3)
            Columns ``image`` (float32 grey array of shape ``size``, values
            in [0, 1]), ``mask`` (uint8 label array of shape ``size``, values
            1..3) and ``split`` (``"train"`` or ``"test"``).
        images : list of ndarray
            The ``image`` column as a list (the same arrays).
        masks : list of ndarray
            The ``mask`` column as a list (the same arrays).
        target_names : ndarray of shape (3,)
            ``["brick", "grass", "gravel"]``: the name of label ``k`` is
            ``target_names[k - 1]``.
        DESCR : str
            Description: construction, grey-level statistics of each texture,
            provenance and license.

    Raises
    ------
    ParameterError
        If a parameter is not allowed.

    See Also
    --------
    load_stereo_depth : Embedded RGB + disparity tiles (multimodal).
    load_weizmann_horses : Real photos with figure-ground masks.

    Notes
    -----
    Grey levels are not normalised: the three textures' mean grey levels
    (0.437, 0.464, 0.496) overlap widely given their spreads (0.10-0.15), so
    intensity alone is a weak cue and texture features are needed.

    Examples
    --------
    >>> from mmfeat.datasets import load_texture_mosaics
    >>> mosaics = load_texture_mosaics(n_images=4, size=(64, 64))
    >>> mosaics.frame["split"].tolist()
    ['train', 'train', 'test', 'test']
    >>> mosaics.images[0].shape, mosaics.images[0].dtype
    ((64, 64), dtype('float32'))
    >>> sorted(int(k) for k in set(mosaics.masks[0].ravel()))
    [1, 2, 3]
    """
    n_images = _check_int("n_images", n_images, 1)
    h, w = _check_size("size", size, (8, 8), (_HALF, 512))
    # the Voronoi assignment holds an (H, W, n_regions) distance array
    n_regions = _check_int("n_regions", n_regions, 1, min(h * w, _MAX_REGIONS))
    rng = check_random_state(random_state)
    sources = _source_textures()
    n_classes = len(sources)
    n_train = (n_images + 1) // 2
    images, masks = [], []
    for i in range(n_images):
        row0 = 0 if i < n_train else _HALF
        regions = _voronoi_labels(rng, (h, w), n_regions)
        first = rng.permutation(n_classes)[: min(n_regions, n_classes)]
        rest = rng.randint(0, n_classes, size=max(0, n_regions - n_classes))
        region_class = np.concatenate([first, rest])
        mask = (region_class[regions] + 1).astype(np.uint8)
        image = np.empty((h, w), dtype=np.float32)
        for c, source in enumerate(sources):
            y = row0 + int(rng.randint(0, _HALF - h + 1))
            x = int(rng.randint(0, source.shape[1] - w + 1))
            where = mask == c + 1
            image[where] = source[y : y + h, x : x + w][where]
        images.append(image)
        masks.append(mask)
    frame = pd.DataFrame(
        {
            "image": _object_column(images),
            "mask": _object_column(masks),
            "split": ["train"] * n_train + ["test"] * (n_images - n_train),
        }
    )
    return Bunch(
        frame=frame,
        images=images,
        masks=masks,
        target_names=np.asarray(_TEXTURES),
        DESCR=TEXTURE_MOSAICS_DESCR,
    )


#: StereoSGBM settings (documented in STEREO_DEPTH_DESCR).
_SGBM_BLOCK = 5
_SGBM_PARAMS = dict(
    minDisparity=0,
    numDisparities=64,
    blockSize=_SGBM_BLOCK,
    P1=8 * _SGBM_BLOCK**2,
    P2=32 * _SGBM_BLOCK**2,
    disp12MaxDiff=1,
    uniquenessRatio=10,
    speckleWindowSize=100,
    speckleRange=2,
    mode=cv2.STEREO_SGBM_MODE_SGBM,
)
_LAYERS = ("far", "middle", "near")


def _sgbm_disparity(left, right):
    """Sensor-like disparity of a rectified RGB pair: float32, 0 = no match."""
    grey_l = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY)
    grey_r = cv2.cvtColor(right, cv2.COLOR_RGB2GRAY)
    raw = cv2.StereoSGBM_create(**_SGBM_PARAMS).compute(grey_l, grey_r)
    # Fixed point with 4 fractional bits; no match is (minDisparity - 1) * 16.
    # A disparity of exactly 0 (a point at infinity) is also "no reading".
    return np.where(raw > 0, raw.astype(np.float32) / 16.0, np.float32(0.0))


def load_stereo_depth(*, tile=(128, 128), random_state=0):
    """Load RGB + disparity tiles of a stereo scene with depth-layer truth.

    The embedded multimodal segmentation default, from scikit-image's bundled
    Middlebury 2014 "Motorcycle" pair (:func:`skimage.data.stereo_motorcycle`,
    no data home, no network). Each item is a tile of the 500x741 scene with
    two aligned modalities, the left colour image and a disparity map
    estimated from the pair with OpenCV's StereoSGBM (as a depth sensor would
    give it: holes are 0 = no reading), and a mask of three depth layers
    quantised from the ground-truth disparity.

    =================  ================================================
    Scene              500 x 741, RGB + disparity
    Items              non-overlapping tiles (15 of 128 x 128: 9 train)
    Classes            3: 1 = far, 2 = middle, 3 = near; 0 = unlabelled
    Split              tile centre in the left half: train, else test
    =================  ================================================

    Parameters
    ----------
    tile : tuple of int (height, width), default=(128, 128)
        Tile size; height in [8, 500], width in [8, 370]. Tiles start at the
        scene's top-left corner; the remainder at the right and bottom is
        left out. Too wide a tile leaves a split empty (an error).
    random_state : int, RandomState instance or None, default=0
        Accepted for the embedded loaders' common signature; the scene, the
        block matching and the tiling are deterministic, so it changes
        nothing.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        frame : pandas.DataFrame of shape (n_tiles, 6)
            One row per tile, in row-major tile order; columns ``image``
            (uint8 RGB array of shape (h, w, 3), the left view), ``depth``
            (float32 array of shape (h, w): SGBM disparity in pixels, 0 = no
            reading, never NaN), ``mask`` (uint8 array of shape (h, w):
            1 = far, 2 = middle, 3 = near, 0 = unknown truth), ``split``
            (``"train"`` or ``"test"``), ``y`` and ``x`` (the tile's
            top-left pixel in the scene, int).
        images, depths, masks : list of ndarray
            The ``image``, ``depth`` and ``mask`` columns as lists.
        scene : :class:`~sklearn.utils.Bunch`
            The whole scene: ``image`` (500, 741, 3) uint8 left view,
            ``image_right`` the right view, ``depth`` (500, 741) float32 SGBM
            disparity (0 = no reading), ``disparity_truth`` (500, 741)
            float32 ground truth (NaN = unknown) and ``mask`` (500, 741)
            uint8 depth layers.
        layer_thresholds : ndarray of shape (2,)
            The ground-truth disparities at the 1/3 and 2/3 quantiles that
            separate far | middle | near.
        target_names : ndarray of shape (3,)
            ``["far", "middle", "near"]``: the name of label ``k`` is
            ``target_names[k - 1]``.
        DESCR : str
            Description: modalities, the SGBM settings, the layers, the
            split, provenance and citation.

    Raises
    ------
    ParameterError
        If ``tile`` is not allowed or leaves a split without tiles.

    See Also
    --------
    load_texture_mosaics : Embedded grey texture mosaics.
    load_weizmann_horses : Real photos with figure-ground masks.

    References
    ----------
    .. [1] D. Scharstein et al., "High-resolution stereo datasets with
       subpixel-accurate ground truth", GCPR 2014.
    .. [2] H. Hirschmueller, "Stereo processing by semiglobal matching and
       mutual information", IEEE TPAMI 30(2):328-341, 2008.

    Examples
    --------
    >>> from mmfeat.datasets import load_stereo_depth
    >>> stereo = load_stereo_depth()
    >>> stereo.frame["split"].value_counts().to_dict()
    {'train': 9, 'test': 6}
    >>> row = stereo.frame.iloc[0]
    >>> row["image"].shape, row["depth"].shape, row["mask"].shape
    ((128, 128, 3), (128, 128), (128, 128))
    >>> stereo.target_names[row["mask"].max() - 1] in stereo.target_names
    True
    """
    from skimage import data

    th, tw = _check_size("tile", tile, (8, 8), (500, 370))
    check_random_state(random_state)  # validated only: nothing is random
    left, right, truth = data.stereo_motorcycle()
    left = np.ascontiguousarray(left, dtype=np.uint8)
    right = np.ascontiguousarray(right, dtype=np.uint8)
    truth = np.asarray(truth, dtype=np.float32)
    if truth.ndim == 3:  # documented as (H, W, 3) in some releases
        truth = truth[..., 0]
    truth = np.where(np.isfinite(truth), truth, np.float32(np.nan))
    H, W = truth.shape
    depth = _sgbm_disparity(left, right)
    known = np.isfinite(truth)
    thresholds = np.quantile(truth[known], [1 / 3, 2 / 3])
    layer = 1 + (truth >= thresholds[0]).astype(np.uint8) + (truth >= thresholds[1])
    mask = np.where(known, layer, 0).astype(np.uint8)

    rows = []
    for y in range(0, H - th + 1, th):
        for x in range(0, W - tw + 1, tw):
            split = "train" if x + tw / 2 < W / 2 else "test"
            rows.append((y, x, split))
    splits = {s for _, _, s in rows}
    if splits != {"train", "test"}:
        raise ParameterError(
            f"tile={tile!r} leaves a split without tiles in the {H}x{W} scene; "
            f"use a tile at most {W // 2} px wide"
        )
    images = [np.ascontiguousarray(left[y : y + th, x : x + tw]) for y, x, _ in rows]
    depths = [np.ascontiguousarray(depth[y : y + th, x : x + tw]) for y, x, _ in rows]
    masks = [np.ascontiguousarray(mask[y : y + th, x : x + tw]) for y, x, _ in rows]
    frame = pd.DataFrame(
        {
            "image": _object_column(images),
            "depth": _object_column(depths),
            "mask": _object_column(masks),
            "split": [s for _, _, s in rows],
            "y": np.array([y for y, _, _ in rows], dtype=np.int64),
            "x": np.array([x for _, x, _ in rows], dtype=np.int64),
        }
    )
    scene = Bunch(
        image=left,
        image_right=right,
        depth=depth,
        disparity_truth=truth,
        mask=mask,
    )
    return Bunch(
        frame=frame,
        images=images,
        depths=depths,
        masks=masks,
        scene=scene,
        layer_thresholds=thresholds,
        target_names=np.asarray(_LAYERS),
        DESCR=STEREO_DEPTH_DESCR,
    )
