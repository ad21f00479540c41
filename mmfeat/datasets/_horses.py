"""Loader for the Weizmann horses (photo + figure-ground mask, segmentation)."""

import numbers
import os
import re
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from mmfeat.datasets._base import _dataset_dir
from mmfeat.datasets._common import _object_column
from mmfeat.exceptions import InputError, MmfeatError, ParameterError
from mmfeat.io import read_image

__all__ = ["load_weizmann_horses"]

WEIZMANN_HORSES_DESCR = """\
Weizmann Horse Database (figure-ground segmentation)
====================================================

328 side-view colour photographs of horses (horse001-horse328), each with a
hand-drawn figure-ground mask: horse = foreground, everything else =
background. A standard benchmark for class-specific figure-ground
segmentation since 2002.

As loaded here: each mask is the source's 8-bit grey JPEG thresholded at 127
(value > 127 = horse), stored as uint8 labels 1 = background, 2 = horse (0,
"unlabelled" in mmfeat's mask convention, never occurs: the masks are full).
The masks were drawn on scaled copies of the photos (327 of 328 sizes differ;
mask heights 112-508 px, widths 195-560 px, aspect ratios agree to 0.3 %), so
each PHOTO is resized to its mask's size with OpenCV's area interpolation
(cv2.INTER_AREA); the mask is never resized. About 25 % of all mask pixels are
horse (mean foreground share over images 0.252).

Split: there is no official split. mmfeat uses the common protocol of the
first 200 images (horse001-horse200) for training and the remaining 128
(horse201-horse328) for testing.

Provenance: the original weizmann_horse_db archive (folders rgb/ and
figure_ground/), as redistributed in the public GitHub repository
shenshutao/image_segmentation, commit
2653401d6ea617026895aac17059eb57e017abcb; files byte-identical to that commit.

Citation: E. Borenstein and S. Ullman, "Class-specific, top-down
segmentation", ECCV 2002; E. Borenstein, E. Sharon and S. Ullman, "Combining
top-down and bottom-up segmentation", CVPR Workshop on Perceptual
Organization in Computer Vision, 2004.

License: distributed by its authors for research use; no licence file
accompanies it. Research use only; do not redistribute it inside a package.
"""

_N_HORSES = 328
_N_TRAIN = 200
_NAME_RE = re.compile(r"^horse(\d{3})\.jpg$")
#: Labels in the masks: index ``label - 1``.
_HORSE_TARGET_NAMES = ("background", "horse")


def _check_params(subset, n_images):
    if not isinstance(subset, str) or subset not in ("all", "train", "test"):
        raise ParameterError(
            f"subset must be one of 'all', 'train', 'test'; got {subset!r}"
        )
    if n_images is not None and (
        isinstance(n_images, bool)
        or not isinstance(n_images, numbers.Integral)
        or n_images < 1
    ):
        raise ParameterError(
            f"n_images must be a positive int or None; got {n_images!r}"
        )


def _list_items(folder):
    """Return ``(number, name)`` of every horse, checking photo/mask pairs."""
    rgb, fg = folder / "rgb", folder / "figure_ground"
    photos = {m.group(1) for f in os.listdir(rgb) if (m := _NAME_RE.match(f))}
    masks = {m.group(1) for f in os.listdir(fg) if (m := _NAME_RE.match(f))}
    if photos != masks:
        lone = sorted(
            [str(rgb / f"horse{n}.jpg") for n in photos - masks]
            + [str(fg / f"horse{n}.jpg") for n in masks - photos]
        )
        raise MmfeatError(
            f"weizmann_horses: {len(lone)} file(s) without their photo/mask "
            f"partner (each rgb/horseNNN.jpg needs figure_ground/horseNNN.jpg): "
            f"{lone[:5]}{' ...' if len(lone) > 5 else ''}"
        )
    if not photos:
        raise MmfeatError(f"weizmann_horses: no horseNNN.jpg files in {rgb}")
    return sorted(int(n) for n in photos)


def _read_pair(row, photo_path, mask_path):
    """Read one photo and its mask; the photo at the mask's size."""
    try:
        grey = read_image(mask_path, mode="gray", dtype="uint8")
        photo = read_image(photo_path, mode="rgb", dtype="uint8")
    except InputError as exc:
        raise InputError(
            f"Weizmann horses file cannot be read: {exc.reason}",
            row=row,
            source=exc.source,
        ) from exc
    h, w = grey.shape
    if photo.shape[:2] != (h, w):
        photo = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    mask = np.where(grey > 127, np.uint8(2), np.uint8(1))
    return np.ascontiguousarray(photo), mask


def load_weizmann_horses(*, data_home=None, subset="all", n_images=None):
    """Load the Weizmann horses: photos and figure-ground masks.

    Reads ``<data_home>/weizmann_horses/rgb/horseNNN.jpg`` (colour photos)
    and ``figure_ground/horseNNN.jpg`` (masks, grey JPEG) with
    :func:`mmfeat.io.read_image`, in parallel threads. Each mask is
    thresholded at 127 into labels 1 = background and 2 = horse; each photo is
    resized to its mask's size with ``cv2.INTER_AREA`` (the masks were drawn
    on scaled copies; the mask itself is never resized). Items are in
    ascending file number.

    =================  ===========================================
    Items              328 (200 train, 128 test)
    Classes            2: 1 = background, 2 = horse (no 0 pixels)
    Image              RGB uint8 at the mask's size (112-508 x 195-560)
    Foreground share   about 0.25 of all mask pixels
    =================  ===========================================

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that holds ``weizmann_horses/``. ``None`` means the
        ``MMFEAT_DATA_HOME`` environment variable, else ``~/mmfeat_data``.
    subset : {"all", "train", "test"}, default="all"
        ``"train"``: horse001-horse200; ``"test"``: horse201-horse328 (the
        common protocol; the dataset has no official split).
    n_images : int or None, default=None
        If given, load only the first ``n_images`` items of ``subset`` (in
        file order); ``None`` loads them all.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        frame : pandas.DataFrame of shape (n_items, 8)
            One row per item; columns ``image`` (uint8 RGB array of shape
            (H, W, 3), the photo at the mask's size), ``mask`` (uint8 label
            array of shape (H, W): 1 = background, 2 = horse), ``image_path``
            and ``mask_path`` (absolute paths of the source JPEGs, str),
            ``name`` (e.g. ``"horse001"``), ``split`` (``"train"`` or
            ``"test"``), ``height`` and ``width`` (the mask's size, int).
            The index is ``0..n_items-1``.
        images : list of ndarray
            The ``image`` column as a list (the same arrays).
        masks : list of ndarray
            The ``mask`` column as a list (the same arrays).
        target_names : ndarray of shape (2,)
            ``["background", "horse"]``: the name of label ``k`` is
            ``target_names[k - 1]``.
        DESCR : str
            Description: provenance, split, citation and license.

    Raises
    ------
    DataNotFoundError
        If ``<data_home>/weizmann_horses`` or its ``rgb/`` or
        ``figure_ground/`` folder does not exist.
    InputError
        If a photo or mask cannot be read (the message names the file).
    MmfeatError
        If a photo has no mask or a mask no photo.
    ParameterError
        If ``subset`` or ``n_images`` is not allowed.

    See Also
    --------
    load_texture_mosaics : Embedded texture mosaics with exact ground truth.
    load_stereo_depth : Embedded RGB + disparity tiles with depth layers.

    Notes
    -----
    Everything is held as uint8: the 328 images and masks take about 76 MB.
    JPEG compression noise along the mask edges is removed by the threshold.

    References
    ----------
    .. [1] E. Borenstein and S. Ullman, "Class-specific, top-down
       segmentation", ECCV 2002.
    .. [2] E. Borenstein, E. Sharon and S. Ullman, "Combining top-down and
       bottom-up segmentation", CVPR Workshop on Perceptual Organization in
       Computer Vision, 2004.

    Examples
    --------
    >>> from mmfeat.datasets import load_weizmann_horses
    >>> horses = load_weizmann_horses(subset="test", n_images=2)  # doctest: +SKIP
    >>> horses.frame["name"].tolist()  # doctest: +SKIP
    ['horse201', 'horse202']
    >>> img, mask = horses.images[0], horses.masks[0]  # doctest: +SKIP
    >>> img.shape[:2] == mask.shape, sorted(set(mask.ravel()))  # doctest: +SKIP
    (True, [1, 2])
    """
    _check_params(subset, n_images)
    folder = _dataset_dir(
        "weizmann_horses", data_home, required=("rgb", "figure_ground")
    )
    numbers_ = _list_items(folder)
    if subset == "train":
        numbers_ = [n for n in numbers_ if n <= _N_TRAIN]
    elif subset == "test":
        numbers_ = [n for n in numbers_ if n > _N_TRAIN]
    if n_images is not None:
        numbers_ = numbers_[:n_images]
    root = folder.resolve()
    names = [f"horse{n:03d}" for n in numbers_]
    photo_paths = [str(root / "rgb" / f"{name}.jpg") for name in names]
    mask_paths = [str(root / "figure_ground" / f"{name}.jpg") for name in names]
    # Decoding and resizing run in OpenCV, which releases the GIL: threads.
    workers = max(1, min(8, os.cpu_count() or 1, len(names)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pairs = list(pool.map(_read_pair, range(len(names)), photo_paths, mask_paths))
    images = [p for p, _ in pairs]
    masks = [m for _, m in pairs]
    frame = pd.DataFrame(
        {
            "image": _object_column(images),
            "mask": _object_column(masks),
            "image_path": photo_paths,
            "mask_path": mask_paths,
            "name": names,
            "split": ["train" if n <= _N_TRAIN else "test" for n in numbers_],
            "height": np.array([m.shape[0] for m in masks], dtype=np.int64),
            "width": np.array([m.shape[1] for m in masks], dtype=np.int64),
        }
    )
    return Bunch(
        frame=frame,
        images=images,
        masks=masks,
        target_names=np.asarray(_HORSE_TARGET_NAMES),
        DESCR=WEIZMANN_HORSES_DESCR,
    )
