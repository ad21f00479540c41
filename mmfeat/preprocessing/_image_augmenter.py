"""ImageAugmenter: random flips, rotations, shifts and colour jitter, at fit time."""

import cv2
import numpy as np

from mmfeat.exceptions import InputError
from mmfeat.io import read_image, validate_image_array
from mmfeat.preprocessing._augment import _BaseAugmenter, _fill_doc
from mmfeat.utils._items import item_source
from mmfeat.utils._sklearn_compat import Interval, Real, StrOptions
from mmfeat.utils._tags import with_item_tags

__all__ = ["ImageAugmenter"]


@_fill_doc
class ImageAugmenter(_BaseAugmenter):
    """Add randomly flipped, rotated, shifted and jittered copies of images.

    A sampler in the sense of imbalanced-learn: ``fit_resample(X, y)``
    returns ``X`` and ``y`` with new rows appended, each an augmented copy of
    a source row with its source's label. Put it first in an
    :class:`imblearn.pipeline.Pipeline`: the copies are then made while the
    pipeline is fitted (also inside cross-validation, on the training folds
    only) and never at ``predict`` or ``score`` time. A scikit-learn
    ``Pipeline`` refuses it, since it has no ``transform``.

    Each copy goes through these stages, each with its own random draw:

    1. flip left-right and/or top-bottom, each with probability 1/2
       (``flip_horizontal``, ``flip_vertical``);
    2. one affine warp (``cv2.warpAffine``, bilinear, reflected border
       ``BORDER_REFLECT_101``): a rotation by an angle drawn uniformly in
       ``[-max_rotation, max_rotation]`` degrees about the image centre,
       then a shift drawn uniformly in ``[-max_shift, max_shift]`` times the
       width (horizontally) and the height (vertically), rounded to whole
       pixels; skipped when both are zero, so no resampling blur is added;
    3. contrast: the deviation from the image mean is multiplied by a factor
       drawn in ``[1 - contrast, 1 + contrast]``;
    4. brightness: a value drawn in ``[-brightness, brightness]`` times the
       full range (1 for float images, 255 for uint8) is added;
    5. values are clipped to the full range and cast back to the dtype.

    Parameters
    ----------
    %(column)s
    %(n_copies)s
    %(sampling_strategy)s
    flip_horizontal : bool, default=True
        Flip left-right with probability 1/2. Turn it off when mirror images
        change the class (text, some digits).
    flip_vertical : bool, default=False
        Flip top-bottom with probability 1/2.
    max_rotation : float, default=10.0
        Largest rotation, in degrees (0 to 180); 0 disables rotation.
    max_shift : float, default=0.1
        Largest shift, as a fraction of the image's width and height (0 to
        below 1); 0 disables shifting.
    brightness : float, default=0.1
        Largest brightness change, as a fraction of the full range (0 to 1);
        0 disables it.
    contrast : float, default=0.1
        Largest relative contrast change (0 to 1); 0 disables it.
    mode : {"rgb", "gray"}, default="rgb"
        Colour mode in which paths and bytes are decoded
        (:func:`~mmfeat.io.read_image`). Array items keep their own layout.
    dtype : {"uint8", "float32"}, default="uint8"
        dtype in which paths and bytes are decoded: uint8 in [0, 255] (lossless
        for 8-bit files, four times smaller) or float32 in [0, 1]. Array items
        keep their own dtype.
    %(random_state)s

    Attributes
    ----------
    %(attributes)s

    See Also
    --------
    AudioAugmenter : The same for audio clips.
    imblearn.over_sampling.RandomOverSampler : Duplicates rows without
        changing them.

    Notes
    -----
    Copies are decoded arrays: the column of the output mixes the original
    items (paths, bytes or arrays, unchanged) with ndarray copies. Array
    items keep their shape and dtype in their copies (uint8 stays uint8,
    float stays float in [0, 1]; float arrays must lie in [0, 1], as
    :func:`~mmfeat.io.read_image` requires; bool arrays give float32
    copies). The copies keep their source's size: resize downstream with the
    extractor's ``image_size``.

    A row whose item is missing (``None``/NaN) can be drawn as a source; its
    copy is missing too, while the other columns of a DataFrame (another
    modality) are still copied. An item that cannot be read raises
    :class:`~mmfeat.exceptions.InputError` naming its row and source.

    The defaults are mild, label-preserving transforms for photographs;
    for digits or text keep ``flip_horizontal=False``.

    References
    ----------
    .. [1] P. Y. Simard, D. Steinkraus and J. C. Platt, "Best practices for
       convolutional neural networks applied to visual document analysis",
       ICDAR 2003.
    .. [2] C. Shorten and T. M. Khoshgoftaar, "A survey on image data
       augmentation for deep learning", Journal of Big Data 6:60, 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from mmfeat.preprocessing import ImageAugmenter
    >>> images = np.zeros((3, 8, 8), dtype=np.uint8)
    >>> y = np.array([0, 0, 1])
    >>> X_res, y_res = ImageAugmenter(random_state=0).fit_resample(images, y)
    >>> X_res.shape, X_res.dtype, y_res.tolist()
    ((4, 8, 8), dtype('uint8'), [0, 0, 1, 1])

    With ``n_copies``, every row gets that many copies, pass by pass:

    >>> aug = ImageAugmenter(n_copies=2, random_state=0)
    >>> X_res, y_res = aug.fit_resample(list(images), y)
    >>> len(X_res), aug.sample_indices_.tolist()
    (9, [0, 1, 2, 0, 1, 2, 0, 1, 2])
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        return with_item_tags(tags, modality="image", reads_files=True)

    _stack_ndim = 3

    _parameter_constraints = {
        **_BaseAugmenter._sampler_constraints,
        "flip_horizontal": ["boolean"],
        "flip_vertical": ["boolean"],
        "max_rotation": [Interval(Real, 0, 180, closed="both")],
        "max_shift": [Interval(Real, 0, 1, closed="left")],
        "brightness": [Interval(Real, 0, 1, closed="both")],
        "contrast": [Interval(Real, 0, 1, closed="both")],
        "mode": [StrOptions({"rgb", "gray"})],
        "dtype": [StrOptions({"uint8", "float32"})],
    }

    def __init__(
        self,
        *,
        column=None,
        n_copies=None,
        sampling_strategy="auto",
        flip_horizontal=True,
        flip_vertical=False,
        max_rotation=10.0,
        max_shift=0.1,
        brightness=0.1,
        contrast=0.1,
        mode="rgb",
        dtype="uint8",
        random_state=None,
    ):
        self.column = column
        self.n_copies = n_copies
        self.sampling_strategy = sampling_strategy
        self.flip_horizontal = flip_horizontal
        self.flip_vertical = flip_vertical
        self.max_rotation = max_rotation
        self.max_shift = max_shift
        self.brightness = brightness
        self.contrast = contrast
        self.mode = mode
        self.dtype = dtype
        self.random_state = random_state

    def _draw_params(self, rng, n):
        # One (n, 7) draw whatever is enabled: switching a transform off does
        # not change the draws of the others.
        u = rng.uniform(0.0, 1.0, size=(n, 7))
        s = 2.0 * u - 1.0
        return {
            "flip_horizontal": (u[:, 0] < 0.5) & bool(self.flip_horizontal),
            "flip_vertical": (u[:, 1] < 0.5) & bool(self.flip_vertical),
            "rotation": s[:, 2] * float(self.max_rotation),
            "shift_x": s[:, 3] * float(self.max_shift),
            "shift_y": s[:, 4] * float(self.max_shift),
            "contrast": 1.0 + s[:, 5] * float(self.contrast),
            "brightness": s[:, 6] * float(self.brightness),
        }

    def _read(self, item):
        if not isinstance(item, np.ndarray):
            return read_image(item, mode=self.mode, dtype=self.dtype)
        source = item_source(item)
        validate_image_array(item, source=source)
        kind = item.dtype.kind
        if kind == "f":
            if not np.isfinite(item).all():
                raise InputError("image contains NaN or infinite values", source=source)
            lo, hi = float(item.min()), float(item.max())
            if lo < -1e-6 or hi > 1 + 1e-6:
                raise InputError(
                    f"float image values must lie in [0, 1]; got [{lo:.4g}, "
                    f"{hi:.4g}]. Divide by the maximum value (e.g. 255) first",
                    source=source,
                )
        elif kind in "iu":
            if item.min() < 0:
                raise InputError(
                    f"integer image of dtype {item.dtype} has negative values",
                    source=source,
                )
        elif kind != "b":
            raise InputError(f"unsupported image dtype {item.dtype}", source=source)
        return item

    def _augment(self, img, item, p):
        kind = img.dtype.kind
        if kind == "f":
            out_dtype, top = img.dtype, 1.0
        elif kind == "b":
            out_dtype, top = np.dtype(np.float32), 1.0
        else:
            out_dtype, top = img.dtype, float(np.iinfo(img.dtype).max)
        work_dtype = np.float64 if out_dtype == np.float64 else np.float32
        work = img.astype(work_dtype)
        if p["flip_horizontal"]:
            work = work[:, ::-1]
        if p["flip_vertical"]:
            work = work[::-1]
        h, w = work.shape[:2]
        angle = float(p["rotation"])
        dx = int(np.rint(p["shift_x"] * w))
        dy = int(np.rint(p["shift_y"] * h))
        if angle != 0.0 or dx != 0 or dy != 0:
            m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
            m[0, 2] += dx
            m[1, 2] += dy
            warped = cv2.warpAffine(
                np.ascontiguousarray(work),
                m,
                (w, h),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT_101,
            )
            work = warped.reshape(work.shape)
        factor = float(p["contrast"])
        if factor != 1.0:
            mean = work.mean()
            work = (work - mean) * factor + mean
        delta = float(p["brightness"])
        if delta != 0.0:
            work = work + delta * top
        work = np.clip(work, 0.0, top)
        if out_dtype.kind in "iu":
            work = np.rint(work)
        return np.ascontiguousarray(work, dtype=out_dtype)

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [
            {"random_state": 0},
            {
                "n_copies": 1,
                "flip_horizontal": False,
                "flip_vertical": True,
                "max_rotation": 0.0,
                "random_state": 0,
            },
        ]
