"""HOGExtractor: histograms of oriented gradients over a column of images."""

import numpy as np

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.image._base import (
    MAX_IMAGE_SIDE,
    BaseImageExtractor,
    numeric_stack,
)
from mmfeat.features.image._hog_kernels import (
    NORMS,
    _cell_histograms,
    _hog_batch,
    _hog_gray_batch,
    bin_boundaries,
)
from mmfeat.io import read_image, read_image_stack
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._items import as_item_list, is_missing, item_source
from mmfeat.utils._numba import numba_threads
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    StrOptions,
    _fit_context,
    check_is_fitted,
    validate_params,
)
from mmfeat.utils._state import check_int_arg, state_error
from mmfeat.utils._validation import check_pair

__all__ = ["HOGExtractor", "hog_visualization"]


def _denominator(dtype):
    if dtype == np.uint8:
        return 255.0
    if dtype.kind in "ui":
        return float(np.iinfo(dtype).max)
    return 1.0


# the largest image side HOG accepts (a model file cannot ask for more)
_MAX_SIDE = MAX_IMAGE_SIDE
# the most orientation bins (a tenth of a degree each)
_MAX_ORIENTATIONS = 3600


def _cells(value, name):
    """``pixels_per_cell`` or ``cells_per_block`` as a (rows, cols) pair."""
    return check_pair(value, name, high=_MAX_SIDE, labels=("rows", "cols"))


def _hog_size(image_shape, ppc, cpb, orientations):
    ncr, ncc = image_shape[0] // ppc[0], image_shape[1] // ppc[1]
    nbr, nbc = ncr - cpb[0] + 1, ncc - cpb[1] + 1
    return nbr, nbc, nbr * nbc * cpb[0] * cpb[1] * orientations


@fill_doc
class HOGExtractor(BaseImageExtractor):
    """Histograms of oriented gradients; images of mixed sizes need ``image_size``.

    The HOG descriptor of Dalal & Triggs (2005). Its length depends on the
    image size, so every image must have the same size: with the default
    ``image_size=None`` that is the size of the first image seen in ``fit``,
    and an image of another size raises an :class:`~mmfeat.exceptions.InputError`
    naming its row. Set ``image_size=(height, width)`` whenever images may
    differ (photos from several sources, a fused table), and every image is
    resized to it.

    A numba port of :func:`skimage.feature.hog` that encodes a whole column
    of images in one parallel pass and gives the same numbers: bit for bit
    for blocks of up to 128 values (3 x 3 cells of up to 14 orientations),
    within a last bit past that (both checked against scikit-image in the
    test suite).

    The algorithm, as scikit-image states it:

    1. (optional) global normalisation: square root of each pixel
       (``transform_sqrt``);
    2. gradients by central differences, per colour channel, keeping at each
       pixel the channel with the largest gradient magnitude;
    3. each pixel votes its gradient magnitude into one of ``orientations``
       unsigned orientation bins (0-180 degrees) of its cell; cell sums are
       divided by the cell area;
    4. cells are grouped into overlapping blocks (stride one cell), and each
       block is normalised (``block_norm``);
    5. the blocks are concatenated into one vector.

    Parameters
    ----------
    orientations : int, default=9
        Number of orientation bins.
    pixels_per_cell : tuple of int (rows, cols), default=(8, 8)
        Size of a cell in pixels.
    cells_per_block : tuple of int (rows, cols), default=(3, 3)
        Number of cells in each block.
    block_norm : {"L2-Hys", "L1", "L1-sqrt", "L2"}, default="L2-Hys"
        Block normalisation, as in scikit-image (``eps = 1e-5``).
    transform_sqrt : bool, default=False
        Apply power-law (square root) compression before processing.
    mode : {"gray", "rgb"}, default="gray"
        Read images as grey, or as RGB with the per-pixel dominant channel.
    image_size : tuple of int (height, width), default=None
        Resize every image to this size so each yields a vector of the same
        length; needed when images differ in size. ``None``: all images must
        share the size seen in ``fit`` (an image of another size is a bad
        item). It must hold at least one block (``pixels_per_cell`` times
        ``cells_per_block``).
    resize : {"exact", "pad"}, default="exact"
        How ``image_size`` is reached: stretch, or fit (keeping the aspect
        ratio) and pad.
    %(on_error_features)s
    n_jobs : int, default=None
        Threads: numba threads for the kernel and decoding threads.
    verbose : int, default=0
        Show a progress bar when > 0.

    Attributes
    ----------
    image_shape_ : tuple of int (height, width)
        Size of the images the features are computed on.
    n_features_out_ : int
        Length of each HOG vector.
    n_features_in_ : int
        Always 1: one column of images.

    See Also
    --------
    hog_visualization : Picture of the cell histograms, for plots.
    SIFTBoVWExtractor : Bag of visual words on SIFT descriptors.

    Notes
    -----
    Pixel values are taken in [0, 1]: uint8 images are divided by 255, as
    :func:`~mmfeat.io.read_image` does, so the features equal
    ``skimage.feature.hog(image / 255)``. scikit-image's ``hog`` on raw uint8
    values differs slightly in near-flat blocks, where ``eps`` matters.

    References
    ----------
    .. [1] N. Dalal and B. Triggs, "Histograms of Oriented Gradients for Human
       Detection", CVPR 2005.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).random((4, 32, 32))
    >>> hog = HOGExtractor(pixels_per_cell=(8, 8), cells_per_block=(2, 2))
    >>> hog.fit_transform(images).shape
    (4, 324)
    """

    _parameter_constraints = {
        "orientations": [Interval(Integral, 1, _MAX_ORIENTATIONS, closed="both")],
        "pixels_per_cell": [tuple, list],
        "cells_per_block": [tuple, list],
        "block_norm": [StrOptions(set(NORMS))],
        "transform_sqrt": ["boolean"],
        "mode": [StrOptions({"gray", "rgb"})],
        "image_size": [tuple, list, None],
        "resize": [StrOptions({"exact", "pad"})],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        orientations=9,
        pixels_per_cell=(8, 8),
        cells_per_block=(3, 3),
        block_norm="L2-Hys",
        transform_sqrt=False,
        mode="gray",
        image_size=None,
        resize="exact",
        on_error="raise",
        n_jobs=None,
        verbose=0,
    ):
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.transform_sqrt = transform_sqrt
        self.mode = mode
        self.image_size = image_size
        self.resize = resize
        self.on_error = on_error
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _min_size(self):
        ppc = _cells(self.pixels_per_cell, "pixels_per_cell")
        cpb = _cells(self.cells_per_block, "cells_per_block")
        return ppc[0] * cpb[0], ppc[1] * cpb[1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Fix the image size (from ``image_size`` or the first image).

        Parameters
        ----------
        X : column of images, default=None
            Paths, bytes, arrays or missing values. Only needed when
            ``image_size`` is None, to learn the common image size.
        y : None
            Ignored.

        Returns
        -------
        self : HOGExtractor
            The fitted extractor.
        """
        min_size = self._min_size()
        if self.image_size is not None:
            shape = self._image_size()
            if shape[0] < min_size[0] or shape[1] < min_size[1]:
                raise ParameterError(
                    f"image_size={shape} is smaller than one HOG block: with "
                    f"pixels_per_cell={tuple(self.pixels_per_cell)} and "
                    f"cells_per_block={tuple(self.cells_per_block)} images must be at "
                    f"least {min_size[0]}x{min_size[1]} (height x width)"
                )
        else:
            if X is None:
                raise ParameterError(
                    "HOGExtractor needs X in fit when image_size is None, to learn "
                    "the image size; or set image_size=(height, width)"
                )
            shape = self._first_shape(X, min_size)
        self.image_shape_ = tuple(int(s) for s in shape)
        self.n_features_out_ = _hog_size(
            self.image_shape_,
            _cells(self.pixels_per_cell, "pixels_per_cell"),
            _cells(self.cells_per_block, "cells_per_block"),
            self.orientations,
        )[2]
        self.n_features_in_ = 1
        return self

    def _check_fitted_state(self):
        ppc = _cells(self.pixels_per_cell, "pixels_per_cell")
        cpb = _cells(self.cells_per_block, "cells_per_block")
        shape = self.image_shape_
        min_size = self._min_size()
        if not (
            isinstance(shape, tuple)
            and len(shape) == 2
            and all(
                isinstance(s, (int, np.integer)) and lo <= s <= _MAX_SIDE
                for s, lo in zip(shape, min_size)
            )
        ):
            raise state_error(
                self,
                f"image_shape_={shape!r} is not a (height, width) pair between "
                f"{min_size} and {_MAX_SIDE} pixels",
            )
        want = _hog_size(shape, ppc, cpb, self.orientations)[2]
        if self.n_features_out_ != want:
            raise state_error(
                self,
                f"n_features_out_={self.n_features_out_!r} but image_shape_="
                f"{shape}, pixels_per_cell={ppc}, cells_per_block={cpb} and "
                f"orientations={self.orientations} give {want}",
            )

    def _first_shape(self, X, min_size):
        stack = numeric_stack(X, mode=self.mode, size=None, min_size=min_size)
        if stack is not None and len(stack):
            return stack.shape[1:3]
        for row, item in enumerate(as_item_list(X, stack_ndim=3)):
            if is_missing(item):
                continue
            try:
                return read_image(item, mode=self.mode, min_size=min_size).shape[:2]
            except InputError as exc:
                if self.on_error == "raise":
                    raise exc.with_row(row) from None
        raise ParameterError(
            "HOGExtractor.fit saw no readable image to learn the size from; "
            "set image_size=(height, width)"
        )

    def _read(self, item):
        # the minimum size matters only when images are not resized
        min_size = self._min_size() if self.image_size is None else None
        img = read_image(item, **self._read_options(self.mode, min_size=min_size))
        if img.shape[:2] != self.image_shape_:
            (h, w), (fh, fw) = img.shape[:2], self.image_shape_
            raise InputError(
                f"image is {w}x{h} (width x height) but the extractor was fitted on "
                f"{fw}x{fh}; set image_size=(height, width), e.g. image_size="
                f"({fh}, {fw}), so every image is resized",
                source=item_source(item),
            )
        return img

    def _encode(self, stack):
        # sizes come from the validated parameters and the images themselves,
        # never from fitted state alone: the kernel writes exactly this many
        orientations = check_int_arg(
            self.orientations,
            "orientations",
            low=1,
            high=_MAX_ORIENTATIONS,
            owner=self,
        )
        ppc = _cells(self.pixels_per_cell, "pixels_per_cell")
        cpb = _cells(self.cells_per_block, "cells_per_block")
        if (
            stack.ndim != 4
            or stack.shape[1] < ppc[0] * cpb[0]
            or stack.shape[2] < ppc[1] * cpb[1]
        ):
            raise ParameterError(
                f"HOG needs a stack of images of at least {ppc[0] * cpb[0]}x"
                f"{ppc[1] * cpb[1]} pixels; got an array of shape {stack.shape}"
            )
        width = _hog_size(stack.shape[1:3], ppc, cpb, orientations)[2]
        if width != self.n_features_out_:
            raise state_error(
                self,
                f"n_features_out_={self.n_features_out_} but images of "
                f"{stack.shape[1]}x{stack.shape[2]} give {width} HOG features",
            )
        thr, cos_b = bin_boundaries(orientations)
        out = np.empty((stack.shape[0], width), dtype=np.float64)
        kernel = _hog_gray_batch if stack.shape[3] == 1 else _hog_batch
        with numba_threads(self.n_jobs):
            kernel(
                np.ascontiguousarray(stack),
                _denominator(stack.dtype),
                bool(self.transform_sqrt),
                ppc[0],
                ppc[1],
                cpb[0],
                cpb[1],
                NORMS[self.block_norm],
                thr,
                cos_b,
                out,
            )
        return out

    def transform(self, X):
        """Compute the HOG vector of each image.

        Parameters
        ----------
        X : list, 1-D array, Series, one-column DataFrame, or ndarray stack
            Paths, bytes, arrays or missing values; a numeric stack of shape
            (n, H, W) or (n, H, W, C) is encoded without per-item decoding.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out_)
            One HOG vector per row; NaN rows for missing (or, with
            ``on_error="missing"``, bad) items.
        """
        check_is_fitted(self, "image_shape_")
        stack = numeric_stack(
            X, mode=self.mode, size=self.image_shape_, min_size=self._min_size()
        )
        resize = False
        if stack is None and self.image_size is not None:
            # a numeric stack of another size: resized at once, equal to the
            # per-item path (16x16 digits to 32x32: no read_image per item)
            # (signed or wide integers go item by item: their errors name rows)
            stack = numeric_stack(X, mode=self.mode, size=None)
            resize = stack is not None and (
                stack.dtype.kind in "fb" or stack.dtype in (np.uint8, np.uint16)
            )
            stack = stack if resize else None
        if stack is not None:  # decoded arrays: no per-item work
            out = np.empty((len(stack), self.n_features_out_))
            for start in range(0, len(stack), 256):
                part = stack[start : start + 256]
                if resize:
                    part = read_image_stack(
                        part, size=self.image_shape_, resize=self.resize
                    )
                out[start : start + 256] = self._encode(part)
            return out
        return self._transform_items(
            X,
            self._read,
            lambda images: self._encode(_as_stack(images)),
            self.n_features_out_,
        )

    def get_feature_names_out(self, input_features=None):
        """Names ``hog_0`` ... ``hog_{n-1}``, in the order of scikit-image.

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        names : ndarray of str
            One name per output column.
        """
        check_is_fitted(self, "n_features_out_")
        return np.asarray(
            [f"hog_{i}" for i in range(self.n_features_out_)], dtype=object
        )

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [
            {
                "image_size": (32, 32),
                "pixels_per_cell": (8, 8),
                "cells_per_block": (2, 2),
            },
            {
                "mode": "rgb",
                "image_size": (24, 32),
                "block_norm": "L1-sqrt",
                "transform_sqrt": True,
                "orientations": 6,
            },
        ]


def _as_stack(images):
    stack = np.stack(images)
    return stack if stack.ndim == 4 else stack[..., None]


@validate_params(
    {
        "image": "no_validation",  # read_image says what is wrong with it
        "orientations": [Interval(Integral, 1, _MAX_ORIENTATIONS, closed="both")],
        "pixels_per_cell": [tuple, list],
        "transform_sqrt": ["boolean"],
        "mode": [StrOptions({"gray", "rgb"})],
    },
    prefer_skip_nested_validation=True,
)
def hog_visualization(
    image, *, orientations=9, pixels_per_cell=(8, 8), transform_sqrt=False, mode="gray"
):
    """Draw the cell orientation histograms of one image, for plots.

    The same picture as ``skimage.feature.hog(..., visualize=True)``: in
    each cell, a line through the centre for every orientation bin, along
    the middle of the bin's edge direction, brightness proportional to the
    bin's vote.

    Parameters
    ----------
    image : str, path-like, bytes or ndarray
        The image (read with :func:`~mmfeat.io.read_image`).
    orientations : int, default=9
        Number of orientation bins.
    pixels_per_cell : tuple of int (rows, cols), default=(8, 8)
        Cell size.
    transform_sqrt : bool, default=False
        Square-root compression first.
    mode : {"gray", "rgb"}, default="gray"
        Colour handling, as in :class:`HOGExtractor`.

    Returns
    -------
    picture : ndarray of float64, shape (H, W)
        The visualisation; show it with ``plt.imshow(picture, cmap="gray")``.

    Examples
    --------
    >>> import numpy as np
    >>> hog_visualization(np.eye(16), pixels_per_cell=(4, 4)).shape
    (16, 16)
    """
    from skimage.draw import line

    ppc = _cells(pixels_per_cell, "pixels_per_cell")
    if (
        isinstance(image, np.ndarray)
        and image.dtype.kind == "f"
        and image.ndim == (2 if mode == "gray" else 3)
    ):
        img = np.asarray(image, dtype=np.float64)  # keep float64 input exact
    else:
        img = np.asarray(read_image(image, mode=mode), dtype=np.float64)
    if img.ndim == 2:
        img = img[:, :, None]
    if transform_sqrt:
        img = np.sqrt(img)
    thr, cos_b = bin_boundaries(orientations)
    hist = _cell_histograms(
        np.ascontiguousarray(img), ppc[0], ppc[1], orientations, thr, cos_b
    )
    radius = min(ppc) // 2 - 1
    mids = np.pi * (np.arange(orientations) + 0.5) / orientations
    dr, dc = radius * np.sin(mids), radius * np.cos(mids)
    picture = np.zeros(img.shape[:2], dtype=np.float64)
    for r in range(hist.shape[0]):
        for c in range(hist.shape[1]):
            cr, cc = r * ppc[0] + ppc[0] // 2, c * ppc[1] + ppc[1] // 2
            for o in range(orientations):
                rr, cols = line(
                    int(cr - dc[o]), int(cc + dr[o]), int(cr + dc[o]), int(cc - dr[o])
                )
                picture[rr, cols] += hist[r, c, o]
    return picture
