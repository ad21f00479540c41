"""SIFTBoVWExtractor: SIFT bag of visual words with a spatial pyramid."""

import numbers
import threading

import cv2
import numpy as np
from sklearn.utils import check_random_state

from mmfeat.exceptions import ParameterError
from mmfeat.features._bow import (
    check_bow_state,
    check_levels,
    learn_codebook,
    median_nearest,
    sample_rows,
)
from mmfeat.features.image._base import MAX_IMAGE_SIDE, BaseImageExtractor
from mmfeat.features.image._bovw_kernels import (
    HARD,
    SOFT,
    VLAD,
    _bow_encode,
    pyramid_cells,
)
from mmfeat.features.image._dsift_kernels import (
    FLAT,
    GAUSSIAN,
    dsift_batch_into,
    dsift_image,
)
from mmfeat.features.image._dsift_kernels import root_sift as _root_sift
from mmfeat.io import read_image
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._items import as_item_list
from mmfeat.utils._numba import numba_threads
from mmfeat.utils._parallel import map_items
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
    check_is_fitted,
)
from mmfeat.utils._state import reviewed_setstate

__all__ = ["SIFTBoVWExtractor", "sift_descriptors"]

_ENCODINGS = {"hard": HARD, "soft": SOFT, "vlad": VLAD}
#: Bytes of descriptors (or images) one dense batch holds at most: a
#: transform's memory stays bounded whatever the image size (one image a
#: batch at the least).
_BATCH_BYTES = 64 << 20
_local = threading.local()


def _sift(max_keypoints):
    # One OpenCV SIFT object per thread, never stored on an estimator.
    cache = getattr(_local, "sift", None)
    if cache is None:
        cache = _local.sift = {}
    if max_keypoints not in cache:
        cache[max_keypoints] = cv2.SIFT_create(nfeatures=max_keypoints)
    return cache[max_keypoints]


def _grid(h, w, step, size):
    half = size / 2.0
    ys = np.arange(half, h - half + 1e-9, step)
    xs = np.arange(half, w - half + 1e-9, step)
    if ys.size == 0:
        ys = np.array([h / 2.0])
    if xs.size == 0:
        xs = np.array([w / 2.0])
    return ys, xs


def _dense_grid(h, w, step, sizes):
    """Keypoints and pixel positions of the dense grid, cached per thread.

    Building ~1,000 ``cv2.KeyPoint`` objects costs about as much as the
    descriptors of a small image, and the grid only depends on the shape.
    """
    cache = getattr(_local, "grids", None)
    if cache is None:
        cache = _local.grids = {}
    key = (h, w, step, sizes)
    if key not in cache:
        keypoints = []
        for size in sizes:
            ys, xs = _grid(h, w, step, size)
            # OpenCV's descriptor window is 6x the keypoint size (4 bins of
            # 3 sigma, size = 2 sigma): scale so it spans ``size`` pixels.
            keypoints += [
                cv2.KeyPoint(float(x), float(y), size / 6.0, 0) for y in ys for x in xs
            ]
        pos = np.array([(k.pt[1], k.pt[0]) for k in keypoints]).reshape(-1, 2)
        if len(cache) > 64:
            cache.clear()
        cache[key] = (tuple(keypoints), pos)
    return cache[key]


def _grid_arrays(h, w, step, sizes):
    """The dense grid as flat arrays for the numba kernel, cached per thread.

    Same points, in the same order, as :func:`_dense_grid`.
    """
    cache = getattr(_local, "grid_arrays", None)
    if cache is None:
        cache = _local.grid_arrays = {}
    key = (h, w, step, sizes)
    if key not in cache:
        ys_all, xs_all, pos = [], [], []
        y_start, x_start, n_y, n_x = [], [], [], []
        for size in sizes:
            ys, xs = _grid(h, w, step, size)
            y_start.append(sum(len(a) for a in ys_all))
            x_start.append(sum(len(a) for a in xs_all))
            n_y.append(len(ys))
            n_x.append(len(xs))
            ys_all.append(ys)
            xs_all.append(xs)
            pos += [(float(y), float(x)) for y in ys for x in xs]
        arrays = (
            np.concatenate(ys_all).astype(np.float64),
            np.concatenate(xs_all).astype(np.float64),
            np.asarray(sizes, dtype=np.float64),
            np.asarray(y_start, dtype=np.int64),
            np.asarray(x_start, dtype=np.int64),
            np.asarray(n_y, dtype=np.int64),
            np.asarray(n_x, dtype=np.int64),
        )
        if len(cache) > 64:
            cache.clear()
        cache[key] = (arrays, np.array(pos, dtype=np.float64).reshape(-1, 2))
    return cache[key]


def _relative(pos, h, w):
    """Pixel (row, column) positions over the image height and width, in [0, 1)."""
    pos = pos / np.array([h, w], dtype=np.float64)
    np.clip(pos, 0.0, np.nextafter(1.0, 0.0), out=pos)
    return pos


def _dense_batches(images, step, sizes, window, root, *, reuse):
    """Dense numba SIFT of decoded gray images, same-size ones in one call.

    Yields ``(rows, desc, pos)`` per batch: the indices in ``images`` of
    same-shape images, their descriptors (len(rows), n, 128) and the grid's
    relative positions (n, 2), as :func:`sift_descriptors` gives them image
    by image (the same kernel, bit for bit). The kernel runs on numba's
    threads (the caller sets how many): one pool does the whole batch, where
    a thread pool calling the kernel per image fought numba's own threads,
    still spinning after the encoding (1.24x from a second core). With
    ``reuse`` each batch is written over the last one's buffer (a caller
    that is done with a batch before the next); otherwise each is its own.
    """
    groups = {}
    for i, img in enumerate(images):
        groups.setdefault(img.shape, []).append(i)
    win = FLAT if window == "flat" else GAUSSIAN
    buf = np.empty(0, dtype=np.float32)
    for (h, w), rows in groups.items():
        arrays, grid_pos = _grid_arrays(h, w, step, sizes)
        n = len(grid_pos)
        pos = _relative(grid_pos, h, w)
        per = max(1, _BATCH_BYTES // max(n * 128 * 4, h * w))
        for start in range(0, len(rows), per):
            part = rows[start : start + per]
            stack = np.stack([images[i] for i in part]).astype(np.uint8, copy=False)
            size = len(part) * n * 128
            if not reuse or buf.size < size:
                buf = np.empty(size, dtype=np.float32)
            desc = buf[:size].reshape(len(part), n, 128)
            dsift_batch_into(stack, *arrays, win, root, desc)
            yield part, desc, pos


def sift_descriptors(
    image,
    *,
    detector="dense",
    step=8,
    sizes=(16,),
    max_keypoints=500,
    root_sift=True,
    descriptor="numba",
    window="gaussian",
):
    """SIFT descriptors of one gray uint8 image and their relative positions.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W)
        Gray image.
    detector : {"dense", "sift", "both"}, default="dense"
        ``"dense"``: upright descriptors on a regular grid (``step`` apart)
        for each patch width in ``sizes``; ``"sift"``: OpenCV's difference
        of Gaussians keypoints (at most ``max_keypoints``); ``"both"``.
    step : int, default=8
        Grid step in pixels.
    sizes : tuple of int, default=(16,)
        Patch widths in pixels: the 4x4 spatial bins of the descriptor span
        the patch (VLFeat's ``dsift`` with bin size ``size / 4``).
    max_keypoints : int, default=500
        Cap on detected keypoints (strongest first).
    root_sift : bool, default=True
        RootSIFT: L1-normalise then square-root each descriptor
        (Arandjelovic & Zisserman, 2012), so Euclidean distance compares
        descriptors as the Hellinger kernel does.
    descriptor : {"numba", "opencv"}, default="numba"
        Who computes the dense-grid descriptors (detected keypoints always
        use OpenCV). ``"numba"``: mmfeat's VLFeat-style dense SIFT (see
        :class:`SIFTBoVWExtractor`, Notes); ``"opencv"``: ``SIFT.compute``.
    window : {"gaussian", "flat"}, default="gaussian"
        Numba descriptor only: Gaussian window over the patch (sigma half the
        patch width) or none (VLFeat's flat-window approximation).

    Returns
    -------
    descriptors : ndarray of float32, shape (n, 128)
        One row per keypoint.
    positions : ndarray of float64, shape (n, 2)
        Keypoint (row, column) divided by the image height and width, in
        [0, 1): where it falls in a spatial pyramid.
    """
    h, w = image.shape
    sift = _sift(int(max_keypoints))
    descs, points = [], []
    if detector in ("dense", "both") and descriptor == "numba":
        arrays, grid_pos = _grid_arrays(h, w, int(step), tuple(sizes))
        win = FLAT if window == "flat" else GAUSSIAN
        d = dsift_image(np.ascontiguousarray(image, dtype=np.uint8), *arrays, win)
        if len(d):
            descs.append(d)
            points.append(grid_pos)
    elif detector in ("dense", "both"):
        keypoints, grid_pos = _dense_grid(h, w, int(step), tuple(sizes))
        kps, d = sift.compute(image, keypoints)
        if d is not None and len(kps):
            descs.append(d)
            if len(kps) == len(keypoints):
                points.append(grid_pos)
            else:  # OpenCV dropped some: take the positions it returns
                points.append(np.array([(k.pt[1], k.pt[0]) for k in kps]))
    if detector in ("sift", "both"):
        kps, d = sift.detectAndCompute(image, None)
        if d is not None and len(kps):
            descs.append(d)
            points.append(np.array([(k.pt[1], k.pt[0]) for k in kps]))
    if not descs:
        return np.empty((0, 128), np.float32), np.empty((0, 2))
    # (one part: no copy; every part is this call's own array)
    desc = descs[0] if len(descs) == 1 else np.concatenate(descs)
    desc = np.ascontiguousarray(desc, dtype=np.float32)
    pos = _relative(np.concatenate(points), h, w)
    if root_sift:
        _root_sift(desc)
    return desc, pos


@reviewed_setstate
@fill_doc
class SIFTBoVWExtractor(BaseImageExtractor):
    """Bag of visual words on SIFT descriptors, with a spatial pyramid.

    The classical pipeline of image categorisation (Csurka et al., 2004;
    Lazebnik et al., 2006):

    1. local descriptors: dense SIFT on a grid (mmfeat's numba kernel or
       OpenCV) and/or SIFT keypoints (OpenCV), optionally RootSIFT;
    2. a visual vocabulary: ``MiniBatchKMeans`` on a sample of the training
       descriptors (at most ``max_descriptors_per_image`` per image), or a
       codebook you pass in;
    3. encoding (one numba pass, parallel): ``"hard"`` word histograms,
       ``"soft"`` kernel-codebook weights over the ``n_neighbors`` nearest
       words (van Gemert et al., 2008), or ``"vlad"`` residual sums
       (Jegou et al., 2010), per cell of the spatial pyramid;
    4. each pyramid level divided by the image's descriptor count, then
       signed square root (``power_norm``) and L2 (``l2_norm``).

    Parameters
    ----------
    n_words : int, default=256
        Vocabulary size (ignored when ``codebook`` is given).
    detector : {"dense", "sift", "both"}, default="dense"
        Where descriptors are computed (see :func:`sift_descriptors`).
    step : int, default=8
        Dense grid step in pixels.
    sizes : tuple of int, default=(16,)
        Dense patch widths in pixels (several give a multi-scale grid).
    max_keypoints : int, default=500
        Cap on detected SIFT keypoints per image.
    root_sift : bool, default=True
        Use RootSIFT descriptors.
    descriptor : {"numba", "opencv"}, default="numba"
        Dense-grid descriptor: mmfeat's numba dense SIFT (VLFeat's
        ``vl_dsift``, see Notes) or OpenCV's ``SIFT.compute``.
    window : {"gaussian", "flat"}, default="gaussian"
        Numba descriptor only: Gaussian window over the patch, or none
        (VLFeat's flat-window approximation; in mmfeat it costs the same,
        the window being folded into the separable weights).
    encoding : {"hard", "soft", "vlad"}, default="hard"
        How descriptors become a vector.
    n_neighbors : int, default=5
        Words sharing each descriptor in soft encoding.
    bandwidth : float, default=None
        Kernel width sigma of soft encoding; ``None`` uses the median
        distance of training descriptors to their nearest word.
    pyramid_levels : tuple of int, default=(1, 2, 4)
        Grids of the spatial pyramid: 1x1, 2x2, 4x4 cells.
    power_norm : bool, default=True
        Signed square root of every value.
    l2_norm : bool, default=True
        L2-normalise each row.
    intra_norm : bool, default=True
        VLAD only: L2-normalise each word's residual block first.
    codebook : ndarray of shape (n_words, 128), default=None
        Use this vocabulary instead of learning one.
    max_descriptors_per_image : int, default=200
        Descriptors sampled per image for learning the vocabulary.
    image_size : tuple of int (height, width), default=None
        Resize images first (bounds the work on large photos).
    resize : {"exact", "pad"}, default="exact"
        How ``image_size`` is reached.
    random_state : int, RandomState instance or None, default=None
        Seeds the descriptor sample and k-means.
    %(on_error_features)s
    n_jobs : int, default=None
        Threads for decoding (and resizing) and numba threads for the numba
        dense descriptors (a batch of same-size images per parallel call)
        and the encoding; OpenCV's descriptors run on the decoding threads.
    verbose : int, default=0
        Progress bars when > 0.

    Attributes
    ----------
    codebook_ : ndarray of float32, shape (n_words, 128)
        The visual words.
    bandwidth_ : float
        Soft-encoding sigma in use (``nan`` for other encodings).
    cells_ : ndarray of shape (n_levels, 2)
        Pyramid grids as (rows, cols).
    n_features_out_ : int
        Output width: cells x words (x 128 for VLAD).
    n_features_in_ : int
        Always 1.

    See Also
    --------
    sift_descriptors : The descriptors of one image.
    HOGExtractor : Dense gradient histograms on a fixed grid.

    Notes
    -----
    An image in which no descriptor is found (a blank image with
    ``detector="sift"``) gives a row of zeros: the image is there, it has no
    words. A missing or unreadable item gives a NaN row.

    The numba dense descriptor (``descriptor="numba"``) follows VLFeat's
    ``vl_dsift``: gradients of the image itself by central differences,
    magnitude split between the two nearest of 8 orientations, 4x4 spatial
    bins of width ``size / 4`` with triangular (bilinear) weights computed
    separably, an optional Gaussian window of sigma ``size / 2``, then L2
    normalisation, clamping at 0.2 and renormalisation (scaled by 512 as
    OpenCV's). OpenCV's ``SIFT.compute`` uses the same bin geometry, window
    and trilinear interpolation, but on the first level of its Gaussian
    scale space (the image blurred with sigma about 1.52, to 1.6 from an
    assumed 0.5), only inside a circular region, and rounds the values to
    integers; so the two descriptors are close but not equal (a per
    descriptor correlation of about 0.9 on photos). Models pickled before
    the ``descriptor`` parameter existed keep OpenCV's descriptors.

    References
    ----------
    .. [1] S. Lazebnik, C. Schmid and J. Ponce, "Beyond Bags of Features:
       Spatial Pyramid Matching for Recognizing Natural Scene Categories",
       CVPR 2006.
    .. [2] J. C. van Gemert et al., "Kernel Codebooks for Scene
       Categorization", ECCV 2008.
    .. [3] H. Jegou et al., "Aggregating local descriptors into a compact
       image representation", CVPR 2010.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.random((48, 48)) for _ in range(4)]
    >>> bovw = SIFTBoVWExtractor(n_words=8, pyramid_levels=(1, 2), random_state=0)
    >>> bovw.fit_transform(images).shape
    (4, 40)
    """

    _parameter_constraints = {
        "n_words": [Interval(Integral, 1, None, closed="left")],
        "detector": [StrOptions({"dense", "sift", "both"})],
        "step": [Interval(Integral, 1, None, closed="left")],
        "sizes": [tuple, list],
        "max_keypoints": [Interval(Integral, 1, None, closed="left")],
        "root_sift": ["boolean"],
        "descriptor": [StrOptions({"numba", "opencv"})],
        "window": [StrOptions({"gaussian", "flat"})],
        "encoding": [StrOptions(set(_ENCODINGS))],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "bandwidth": [Interval(Real, 0, None, closed="neither"), None],
        "pyramid_levels": [tuple, list],
        "power_norm": ["boolean"],
        "l2_norm": ["boolean"],
        "intra_norm": ["boolean"],
        "codebook": ["array-like", None],
        "max_descriptors_per_image": [Interval(Integral, 1, None, closed="left")],
        "image_size": [tuple, list, None],
        "resize": [StrOptions({"exact", "pad"})],
        "random_state": ["random_state"],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_words=256,
        detector="dense",
        step=8,
        sizes=(16,),
        max_keypoints=500,
        root_sift=True,
        descriptor="numba",
        window="gaussian",
        encoding="hard",
        n_neighbors=5,
        bandwidth=None,
        pyramid_levels=(1, 2, 4),
        power_norm=True,
        l2_norm=True,
        intra_norm=True,
        codebook=None,
        max_descriptors_per_image=200,
        image_size=None,
        resize="exact",
        random_state=None,
        on_error="raise",
        n_jobs=None,
        verbose=0,
    ):
        self.n_words = n_words
        self.detector = detector
        self.step = step
        self.sizes = sizes
        self.max_keypoints = max_keypoints
        self.root_sift = root_sift
        self.descriptor = descriptor
        self.window = window
        self.encoding = encoding
        self.n_neighbors = n_neighbors
        self.bandwidth = bandwidth
        self.pyramid_levels = pyramid_levels
        self.power_norm = power_norm
        self.l2_norm = l2_norm
        self.intra_norm = intra_norm
        self.codebook = codebook
        self.max_descriptors_per_image = max_descriptors_per_image
        self.image_size = image_size
        self.resize = resize
        self.random_state = random_state
        self.on_error = on_error
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- descriptors -------------------------------------------------------
    def _dense_numba(self):
        # the numba kernel on the grid alone: batches of images in one call
        return self.detector == "dense" and self.descriptor == "numba"

    def _resizes(self):
        # reading a decoded array is work worth threads only when it resizes
        return self._image_size() is not None

    def _read(self, item):
        return read_image(item, **self._read_options("gray", dtype="uint8"))

    def _dense_batches(self, images, *, reuse):
        return _dense_batches(
            images,
            int(self.step),
            tuple(self.sizes),
            self.window,
            self.root_sift,
            reuse=reuse,
        )

    def _describe(self, item):
        return sift_descriptors(
            self._read(item),
            detector=self.detector,
            step=self.step,
            sizes=tuple(self.sizes),
            max_keypoints=self.max_keypoints,
            root_sift=self.root_sift,
            descriptor=self.descriptor,
            window=self.window,
        )

    def __setstate__(self, state):
        # models pickled before the numba descriptor keep OpenCV's
        state = dict(state)
        state.setdefault("descriptor", "opencv")
        state.setdefault("window", "gaussian")
        super().__setstate__(state)

    def _describe_column(self, items):
        """``(descriptors, positions)`` per item (None where missing), errors."""
        if not self._dense_numba():
            return map_items(
                self._describe,
                items,
                n_jobs=self.n_jobs,
                on_error=self.on_error,
                # the descriptors are the work, decoded arrays or not
                threads_for_arrays=True,
            )
        images, errors = map_items(
            self._read,
            items,
            n_jobs=self.n_jobs,
            on_error=self.on_error,
            threads_for_arrays=self._resizes(),
        )
        ok = [i for i, img in enumerate(images) if img is not None]
        described = [None] * len(images)
        with numba_threads(self.n_jobs):
            batches = self._dense_batches([images[i] for i in ok], reuse=False)
            for rows, desc, pos in batches:
                for k, r in enumerate(rows):
                    described[ok[r]] = (desc[k], pos)
        return described, errors

    def _check_params(self):
        # what _parameter_constraints cannot say: the values inside tuples
        check_levels(self.pyramid_levels, example=(1, 2, 4))
        sizes = tuple(self.sizes)
        if not sizes or not all(
            isinstance(s, numbers.Real)
            and not isinstance(s, bool)
            and 0 < s <= MAX_IMAGE_SIDE
            for s in sizes
        ):
            raise ParameterError(
                "sizes must be a non-empty tuple of patch widths in pixels, "
                f"between 0 (excluded) and {MAX_IMAGE_SIDE}; got {self.sizes!r}"
            )
        self._image_size()

    def _check_fitted_state(self):
        self._check_params()
        check_bow_state(
            self,
            two_d=True,
            dim=128,
            soft=self.encoding == "soft",
            per_word=128 if self.encoding == "vlad" else 1,
        )

    # -- fit / transform ---------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the visual vocabulary from the images in ``X``.

        Parameters
        ----------
        X : column of images
            Paths, bytes, arrays or missing values.
        y : None
            Ignored.

        Returns
        -------
        self : SIFTBoVWExtractor
            The fitted extractor.
        """
        self._check_params()
        rng = check_random_state(self.random_state)
        self.cells_ = pyramid_cells(tuple(self.pyramid_levels))
        items = as_item_list(X, stack_ndim=3)
        sample = None
        if self.codebook is None or (
            self.encoding == "soft" and self.bandwidth is None
        ):
            described, _ = self._describe_column(items)
            sample = sample_rows(
                [None if d is None else d[0] for d in described],
                self.max_descriptors_per_image,
                rng,
            )
        if self.codebook is not None:
            codebook = np.asarray(self.codebook, dtype=np.float32)
            if codebook.ndim != 2 or codebook.shape[1] != 128 or len(codebook) < 1:
                raise ParameterError(
                    "codebook must be an array of shape (n_words, 128) of SIFT words; "
                    f"got shape {codebook.shape}"
                )
            self.codebook_ = np.ascontiguousarray(codebook)
        else:
            self.codebook_ = learn_codebook(
                sample,
                self.n_words,
                rng,
                what="SIFT descriptors in the training images (a denser grid, a "
                "smaller step, gives more)",
            )
        self.bandwidth_ = np.nan
        if self.encoding == "soft":
            self.bandwidth_ = (
                float(self.bandwidth)
                if self.bandwidth is not None
                else median_nearest(sample, self.codebook_)
            )
        n_cells = int((self.cells_[:, 0] * self.cells_[:, 1]).sum())
        words = len(self.codebook_)
        self.n_features_out_ = n_cells * words * (128 if self.encoding == "vlad" else 1)
        self.n_features_in_ = 1
        return self

    def _encode(self, described):
        desc = [d for d, _ in described]
        pos = [p for _, p in described]
        offsets = np.zeros(len(desc) + 1, dtype=np.int64)
        np.cumsum([len(d) for d in desc], out=offsets[1:])
        all_desc = np.ascontiguousarray(np.concatenate(desc), dtype=np.float32)
        all_pos = np.ascontiguousarray(np.concatenate(pos), dtype=np.float64)
        return self._encode_arrays(all_desc, offsets, all_pos)

    def _encode_images(self, images):
        """Encodings of decoded gray images: dense numba SIFT batch by batch."""
        out = np.empty((len(images), self.n_features_out_), dtype=np.float64)
        with numba_threads(self.n_jobs):
            for rows, desc, pos in self._dense_batches(images, reuse=True):
                m, n = desc.shape[:2]
                out[rows] = self._encode_arrays(
                    desc.reshape(m * n, 128),
                    np.arange(m + 1, dtype=np.int64) * n,
                    np.tile(pos, (m, 1)),
                )
        return out

    def _encode_arrays(self, all_desc, offsets, all_pos):
        with numba_threads(self.n_jobs):
            return _bow_encode(
                all_desc,
                offsets,
                all_pos,
                self.codebook_,
                cells=self.cells_,
                method=_ENCODINGS[self.encoding],
                n_neighbors=self.n_neighbors,
                bandwidth=self.bandwidth_ if self.encoding == "soft" else 1.0,
                power=self.power_norm,
                l2=self.l2_norm,
                intra=self.intra_norm,
            )

    def transform(self, X):
        """Encode each image as a bag of visual words.

        Parameters
        ----------
        X : column of images
            Paths, bytes, arrays or missing values.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out_)
            One encoding per row; NaN rows for missing (or, with
            ``on_error="missing"``, bad) items.
        """
        check_is_fitted(self, "codebook_")
        if self._dense_numba():
            # decode (threads for files), then the kernel on numba's threads
            return self._transform_items(
                X,
                self._read,
                self._encode_images,
                self.n_features_out_,
                batch_size=128,
                threads_for_arrays=self._resizes(),
            )
        return self._transform_items(
            X,
            self._describe,
            self._encode,
            self.n_features_out_,
            batch_size=128,
            threads_for_arrays=True,
        )

    def get_feature_names_out(self, input_features=None):
        """Names ``bovw_l{level}_c{cell}_w{word}`` (``vlad_..._d{dim}`` for VLAD).

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        names : ndarray of str
            One name per output column, in output order.
        """
        check_is_fitted(self, "codebook_")
        words = len(self.codebook_)
        names = []
        for lv, (rows, cols) in enumerate(self.cells_):
            for cell in range(rows * cols):
                for k in range(words):
                    if self.encoding == "vlad":
                        names += [f"vlad_l{lv}_c{cell}_w{k}_d{d}" for d in range(128)]
                    else:
                        names.append(f"bovw_l{lv}_c{cell}_w{k}")
        return np.asarray(names, dtype=object)

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [
            {"n_words": 8, "pyramid_levels": (1, 2), "random_state": 0},
            {
                "n_words": 4,
                "encoding": "soft",
                "n_neighbors": 2,
                "detector": "both",
                "pyramid_levels": (1,),
                "image_size": (48, 48),
                "random_state": 0,
            },
            {
                "n_words": 2,
                "encoding": "vlad",
                "pyramid_levels": (1,),
                "random_state": 0,
            },
        ]
