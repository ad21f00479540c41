"""ImageQuality: per-image quality scores in one fused pass.

Decodes each image once, shrinks it once to a bounded working size and
computes every score in one fused numba pass per image
(:mod:`mmfeat.features.image._quality_kernels`), parallel over the batch.
:func:`mmfeat.quality.find_image_issues` turns the scores into issues.
"""

import cv2
import numpy as np

from mmfeat.features.image._base import MAX_IMAGE_SIDE, BaseImageExtractor
from mmfeat.features.image._quality_kernels import N_KERNEL_SCORES, _quality_scores
from mmfeat.io import read_image
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._numba import numba_threads
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    StrOptions,
    _fit_context,
    check_is_fitted,
)
from mmfeat.utils._state import state_error

__all__ = ["QUALITY_SCORES", "ImageQuality"]

#: Output columns of :class:`ImageQuality`, in order.
QUALITY_SCORES = (
    "sharpness",
    "edge_sharpness",
    "brightness",
    "contrast",
    "luma_p01",
    "luma_p05",
    "luma_p95",
    "luma_p99",
    "dark_fraction",
    "light_fraction",
    "colourfulness",
    "entropy",
    "height",
    "width",
    "aspect",
)

# luma levels (0-255) counted as near black / near white
_DARK_LEVEL = 25  # < 0.1
_LIGHT_LEVEL = 230  # > 0.9


@fill_doc
class ImageQuality(BaseImageExtractor):
    """Per-image quality scores: sharpness, exposure, contrast, colour, size.

    Each image is decoded once (:func:`~mmfeat.io.read_image`, with its
    checks on hostile files), shrunk once so its longest side is at most
    ``working_size`` (``cv2.INTER_AREA`` when it shrinks by 2x or more,
    bilinear below that; smaller images are not enlarged)
    and scored in one fused numba pass; a batch is scored in parallel.

    Parameters
    ----------
    working_size : int or None, default=256
        Longest side, in pixels, that every score except ``height``,
        ``width`` and ``aspect`` is computed at. A fixed working resolution
        makes the sharpness scores comparable across image sizes (a Laplacian
        sees finer detail the more pixels an image has) and bounds the work
        per image. ``None`` scores the decoded image as it is.
    %(on_error_features)s
    n_jobs : int, default=None
        Decoding threads and numba threads.
    verbose : int, default=0
        Progress bar when > 0.

    Attributes
    ----------
    n_features_out_ : int
        Number of scores (15).
    n_features_in_ : int
        Always 1.

    See Also
    --------
    find_image_issues : Flags blurry, dark, light, ... images from these scores.

    Notes
    -----
    The scores, all computed on the working image's luma ``Y`` (BT.601, as
    ``cv2.cvtColor(..., COLOR_RGB2GRAY)``, 0-255) unless said otherwise:

    - ``sharpness``: variance of the 3x3 Laplacian of ``Y / 255`` (Pertuz et
      al.'s ``LAP4``; ``cv2.Laplacian(Y, cv2.CV_64F).var() / 255**2``). It
      grows with contrast and with how much of the frame is textured;
    - ``edge_sharpness``: the same variance divided by the mean squared 3x3
      Sobel gradient magnitude. Blur removes high frequencies faster than
      it removes gradients, while contrast, exposure and the amount of
      edges cancel out: a dark or sparse photo is not mistaken for a blurry
      one. 0 for a flat image. :func:`find_image_issues` flags blur on it;
    - ``brightness``, ``contrast``: mean and standard deviation of ``Y / 255``;
    - ``luma_p01`` ... ``luma_p99``: the 1, 5, 95 and 99 %% quantiles of
      ``Y / 255`` (inverted CDF): a dark image has a low ``luma_p99``, an
      over-exposed one a high ``luma_p05``;
    - ``dark_fraction``, ``light_fraction``: share of pixels with
      ``Y <= 25`` (about 0.1) and ``Y >= 230`` (about 0.9);
    - ``colourfulness``: Hasler and Süsstrunk's metric on RGB 0-255 (0 for a
      grey image, about 15 for muted and 100 for very colourful photos);
    - ``entropy``: entropy in bits (0 to 8) of the 256-bin histogram of
      ``Y``; low means little information (blank or nearly flat images);
    - ``height``, ``width``, ``aspect``: the decoded image's size and
      ``width / height``, before shrinking.

    Alpha is composited on white; grey images are scored as RGB with equal
    channels.

    References
    ----------
    .. [1] D. Hasler and S. Süsstrunk, "Measuring colourfulness in natural
       images", Proc. SPIE 5007, Human Vision and Electronic Imaging, 2003.
    .. [2] S. Pertuz, D. Puig and M. A. Garcia, "Analysis of focus measure
       operators for shape-from-focus", Pattern Recognition 46(5), 2013.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    >>> black = np.zeros((16, 16, 3), dtype=np.uint8)
    >>> quality = ImageQuality().set_output(transform="pandas")
    >>> scores = quality.fit_transform([noise, black, None])
    >>> scores[["brightness", "entropy", "aspect"]].round(2)
       brightness  entropy  aspect
    0         0.5     7.51     1.5
    1         0.0     0.00     1.0
    2         NaN      NaN     NaN
    """

    _parameter_constraints = {
        "working_size": [Interval(Integral, 8, MAX_IMAGE_SIDE, closed="both"), None],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(self, *, working_size=256, on_error="raise", n_jobs=None, verbose=0):
        self.working_size = working_size
        self.on_error = on_error
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Check the parameters; nothing is learned from data.

        Parameters
        ----------
        X : column of images, default=None
            Ignored.
        y : None
            Ignored.

        Returns
        -------
        self : ImageQuality
            The fitted extractor.
        """
        self.n_features_out_ = len(QUALITY_SCORES)
        self.n_features_in_ = 1
        return self

    def _check_fitted_state(self):
        if self.n_features_out_ != len(QUALITY_SCORES):
            raise state_error(
                self,
                f"n_features_out_={self.n_features_out_!r} but ImageQuality "
                f"computes {len(QUALITY_SCORES)} scores",
            )

    def _read(self, item):
        img = read_image(item, mode="rgb", dtype="uint8")
        h, w = img.shape[:2]
        side = self.working_size
        if side is not None and max(h, w) > side:
            scale = side / max(h, w)
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            # area averaging where shrinking by 2x or more; below that
            # bilinear reads every pixel anyway, and OpenCV's area path for
            # fractional ratios costs 6x more (as mmfeat.io's resizing)
            interp = cv2.INTER_AREA if scale <= 0.5 else cv2.INTER_LINEAR
            img = cv2.resize(img, size, interpolation=interp)
        return np.ascontiguousarray(img, dtype=np.uint8), h, w

    def _encode(self, values):
        if self.n_features_out_ != len(QUALITY_SCORES):
            raise state_error(self, f"n_features_out_={self.n_features_out_!r}")
        images = [v[0] for v in values]
        heights = np.asarray([im.shape[0] for im in images], dtype=np.int64)
        widths = np.asarray([im.shape[1] for im in images], dtype=np.int64)
        offsets = np.zeros(len(images) + 1, dtype=np.int64)
        np.cumsum(heights * widths * 3, out=offsets[1:])
        pixels = np.concatenate([im.reshape(-1) for im in images])
        out = np.empty((len(images), len(QUALITY_SCORES)))
        with numba_threads(self.n_jobs):
            _quality_scores(
                pixels,
                offsets,
                heights,
                widths,
                _DARK_LEVEL,
                _LIGHT_LEVEL,
                out[:, :N_KERNEL_SCORES],
            )
        sizes = np.asarray([v[1:] for v in values], dtype=np.float64)
        out[:, N_KERNEL_SCORES] = sizes[:, 0]
        out[:, N_KERNEL_SCORES + 1] = sizes[:, 1]
        out[:, N_KERNEL_SCORES + 2] = sizes[:, 1] / sizes[:, 0]
        return out

    def transform(self, X):
        """Score each image.

        Parameters
        ----------
        X : column of images
            Paths, bytes, arrays or missing values (any sizes).

        Returns
        -------
        scores : ndarray of shape (n_samples, 15)
            One row of scores per input row (columns as
            :meth:`get_feature_names_out`); NaN rows for missing (or, with
            ``on_error="missing"``, unreadable) items.
        """
        check_is_fitted(self, "n_features_out_")
        return self._transform_items(X, self._read, self._encode, self.n_features_out_)

    def get_feature_names_out(self, input_features=None):
        """Names of the scores.

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        names : ndarray of str
            ``sharpness``, ``edge_sharpness``, ``brightness``, ... in output order.
        """
        check_is_fitted(self, "n_features_out_")
        return np.asarray(QUALITY_SCORES, dtype=object)

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [{}, {"working_size": 16}]
