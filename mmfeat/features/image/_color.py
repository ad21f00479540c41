"""ColorHistogramExtractor: joint HSV colour histograms."""

import numpy as np

from mmfeat.exceptions import ParameterError
from mmfeat.features.image._base import BaseImageExtractor
from mmfeat.features.image._color_kernels import _hsv_histograms
from mmfeat.io import read_image
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._numba import numba_threads
from mmfeat.utils._sklearn_compat import (
    Integral,
    StrOptions,
    _fit_context,
    check_is_fitted,
)
from mmfeat.utils._state import state_error

__all__ = ["ColorHistogramExtractor"]

# at most this many bins per channel and in all (a 1M-bin histogram of
# float64 is already 8 MB per image)
_MAX_BINS = 256
_MAX_TOTAL_BINS = 1 << 20


def _check_bins(bins):
    """``bins`` as three ints in [1, 256] with at most 2**20 bins in all."""
    try:
        bins = tuple(bins)
    except TypeError:
        bins = (bins,)
    ok = len(bins) == 3 and all(
        isinstance(b, (int, np.integer))
        and not isinstance(b, bool)
        and 1 <= b <= _MAX_BINS
        for b in bins
    )
    if not ok or int(np.prod(bins)) > _MAX_TOTAL_BINS:
        raise ParameterError(
            "bins must be three integers (hue, saturation, value) between 1 and "
            f"{_MAX_BINS}, with at most {_MAX_TOTAL_BINS} bins in all; got {bins!r}"
        )
    return tuple(int(b) for b in bins)


@fill_doc
class ColorHistogramExtractor(BaseImageExtractor):
    """Joint HSV colour histogram of each image, as a fraction of its pixels.

    Cheap and often decisive on product photos (colour, material), where
    shape descriptors see mostly the same silhouettes. Each pixel falls in
    one (hue, saturation, value) bin; the histogram is divided by the
    number of pixels (it sums to 1), then optionally square-rooted
    (``power_norm``: the Hellinger kernel under a linear model).

    Parameters
    ----------
    bins : tuple of int (hue, saturation, value), default=(8, 4, 4)
        Bins per channel; the output has their product columns.
    power_norm : bool, default=True
        Square root of each fraction.
    image_size : tuple of int (height, width), default=None
        Resize first (fewer pixels to count; the fractions barely change).
    resize : {"exact", "pad"}, default="exact"
        How ``image_size`` is reached.
    %(on_error_features)s
    n_jobs : int, default=None
        Decoding threads and numba threads.
    verbose : int, default=0
        Progress bar when > 0.

    Attributes
    ----------
    n_features_out_ : int
        Number of bins.
    n_features_in_ : int
        Always 1.

    See Also
    --------
    HOGExtractor : Shape rather than colour.

    Notes
    -----
    Grey images have no hue or saturation: all their pixels fall in the
    (0, 0, v) bins. Transparent pixels were composited on white by the
    reader.

    Examples
    --------
    >>> import numpy as np
    >>> red = np.zeros((4, 4, 3)); red[..., 0] = 1.0
    >>> hist = ColorHistogramExtractor(bins=(4, 2, 2), power_norm=False)
    >>> hist.fit_transform([red])[0].nonzero()[0].tolist()
    [3]
    """

    _parameter_constraints = {
        "bins": [tuple, list],
        "power_norm": ["boolean"],
        "image_size": [tuple, list, None],
        "resize": [StrOptions({"exact", "pad"})],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        bins=(8, 4, 4),
        power_norm=True,
        image_size=None,
        resize="exact",
        on_error="raise",
        n_jobs=None,
        verbose=0,
    ):
        self.bins = bins
        self.power_norm = power_norm
        self.image_size = image_size
        self.resize = resize
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
        self : ColorHistogramExtractor
            The fitted extractor.
        """
        bins = _check_bins(self.bins)
        self._image_size()
        self.n_features_out_ = int(np.prod(bins))
        self.n_features_in_ = 1
        return self

    def _check_fitted_state(self):
        want = int(np.prod(_check_bins(self.bins)))
        if self.n_features_out_ != want:
            raise state_error(
                self,
                f"n_features_out_={self.n_features_out_!r} but bins={self.bins!r} "
                f"give {want} bins",
            )

    def _read(self, item):
        return read_image(item, **self._read_options("rgb")).reshape(-1, 3)

    def _encode(self, pixels):
        # the kernel writes h*s*v bins: size the buffer from the checked bins
        hb, sb, vb = _check_bins(self.bins)
        if hb * sb * vb != self.n_features_out_:
            raise state_error(
                self,
                f"n_features_out_={self.n_features_out_} but bins={self.bins!r} "
                f"give {hb * sb * vb} bins",
            )
        if any(p.ndim != 2 or p.shape[1] != 3 for p in pixels):
            raise ParameterError("colour histograms need (n_pixels, 3) RGB arrays")
        offsets = np.zeros(len(pixels) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in pixels], out=offsets[1:])
        hist = np.empty((len(pixels), hb * sb * vb))
        with numba_threads(self.n_jobs):
            _hsv_histograms(np.concatenate(pixels), offsets, hb, sb, vb, hist)
        return np.sqrt(hist) if self.power_norm else hist

    def transform(self, X):
        """Histogram each image.

        Parameters
        ----------
        X : column of images
            Paths, bytes, arrays or missing values (any sizes).

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out_)
            One histogram per row; NaN rows for missing (or, with
            ``on_error="missing"``, bad) items.
        """
        check_is_fitted(self, "n_features_out_")
        return self._transform_items(X, self._read, self._encode, self.n_features_out_)

    def get_feature_names_out(self, input_features=None):
        """Names ``hsv_h{h}_s{s}_v{v}``.

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        names : ndarray of str
            One name per bin, in output order.
        """
        check_is_fitted(self, "n_features_out_")
        hb, sb, vb = (int(b) for b in self.bins)
        return np.asarray(
            [
                f"hsv_h{h}_s{s}_v{v}"
                for h in range(hb)
                for s in range(sb)
                for v in range(vb)
            ],
            dtype=object,
        )

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [{}, {"bins": (4, 2, 3), "power_norm": False, "image_size": (16, 16)}]
