"""SuperpixelSegmenter: classify regions (SLIC or a grid) on their descriptors."""

import numbers

import numpy as np
from scipy import ndimage, sparse

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.io import read_image
from mmfeat.segmentation._base import (
    BaseSegmenter,
    limit_threads,
    proba_columns,
    sample_pixels,
)
from mmfeat.segmentation._io import read_channel_map
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._item_errors import ItemError
from mmfeat.utils._sklearn_compat import (
    HasMethods,
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
    check_is_fitted,
)
from mmfeat.utils._state import state_error

__all__ = [
    "SuperpixelSegmenter",
    "neighbour_mean",
    "region_adjacency",
    "region_histograms",
    "region_labels",
    "region_statistics",
]

#: Descriptor groups, in column order.
DESCRIPTORS = ("mean", "std", "histogram", "geometry", "context")
_GEOMETRY = ("row", "col", "area", "aspect")


# ---------------------------------------------------------------------------
# Region statistics (vectorised: one bincount per channel, memory O(pixels))
# ---------------------------------------------------------------------------
def region_statistics(values, ids, n_regions):
    """Per-region mean and (population) standard deviation of each column.

    Parameters
    ----------
    values : ndarray of shape (n_pixels, F)
        Per-pixel features.
    ids : ndarray of int of shape (n_pixels,)
        Region of each pixel, in ``[0, n_regions)``; every region non-empty.
    n_regions : int
        Number of regions.

    Returns
    -------
    mean, std : ndarray of shape (n_regions, F), float32
        Two passes in float64 (the mean, then the squared deviations), so
        the standard deviation does not suffer from cancellation.
    """
    count = np.bincount(ids, minlength=n_regions).astype(np.float64)
    n_feat = values.shape[1]
    mean = np.empty((n_regions, n_feat), dtype=np.float32)
    std = np.empty((n_regions, n_feat), dtype=np.float32)
    for j in range(n_feat):
        v = values[:, j].astype(np.float64)
        mu = np.bincount(ids, weights=v, minlength=n_regions) / count
        d = v - mu[ids]
        var = np.bincount(ids, weights=d * d, minlength=n_regions) / count
        mean[:, j] = mu
        std[:, j] = np.sqrt(var)
    return mean, std


def region_histograms(image, ids, n_regions, n_bins):
    """Per-region histogram of each channel of ``image`` (values in [0, 1]).

    Returns (n_regions, C * n_bins) float32, channel by channel, each
    channel's histogram summing to one; bin ``b`` holds ``[b, b+1) / n_bins``
    (1.0 falls in the last bin).
    """
    flat = image.reshape(ids.size, -1)
    count = np.bincount(ids, minlength=n_regions).astype(np.float64)
    out = np.empty((n_regions, flat.shape[1] * n_bins), dtype=np.float32)
    for c in range(flat.shape[1]):
        b = np.minimum((flat[:, c] * n_bins).astype(np.intp), n_bins - 1)
        b = np.maximum(b, 0)
        h = np.bincount(ids * n_bins + b, minlength=n_regions * n_bins)
        out[:, c * n_bins : (c + 1) * n_bins] = (
            h.reshape(n_regions, n_bins) / count[:, None]
        )
    return out


def region_geometry(ids2d, n_regions):
    """Centroid row/col (in [0, 1]), area share and log bbox aspect per region."""
    h, w = ids2d.shape
    ids = ids2d.ravel()
    count = np.bincount(ids, minlength=n_regions).astype(np.float64)
    rows = np.repeat(np.arange(h, dtype=np.float64), w)
    cols = np.tile(np.arange(w, dtype=np.float64), h)
    out = np.empty((n_regions, 4), dtype=np.float32)
    out[:, 0] = (
        np.bincount(ids, weights=rows, minlength=n_regions) / count / max(h - 1, 1)
    )
    out[:, 1] = (
        np.bincount(ids, weights=cols, minlength=n_regions) / count / max(w - 1, 1)
    )
    out[:, 2] = count / (h * w)
    boxes = ndimage.find_objects(ids2d + 1, max_label=n_regions)
    aspect = np.array(
        [(s[0].stop - s[0].start) / (s[1].stop - s[1].start) for s in boxes]
    )
    out[:, 3] = np.log(aspect)
    return out


def region_adjacency(ids2d, n_regions):
    """Adjacent region pairs and their boundary lengths, from 4-neighbours.

    Returns ``(a, b, length)``: ``a < b`` region ids and the number of
    4-neighbour pixel pairs of the image with one pixel in each.
    """
    a = np.concatenate([ids2d[:, :-1].ravel(), ids2d[:-1, :].ravel()])
    b = np.concatenate([ids2d[:, 1:].ravel(), ids2d[1:, :].ravel()])
    change = a != b
    a, b = a[change], b[change]
    key = np.minimum(a, b).astype(np.int64) * n_regions + np.maximum(a, b)
    key, length = np.unique(key, return_counts=True)
    return key // n_regions, key % n_regions, length


def _adjacency_matrix(edges, n_regions):
    a, b, length = edges
    w = length.astype(np.float64)
    return sparse.csr_matrix(
        (np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))),
        shape=(n_regions, n_regions),
    )


def neighbour_mean(values, edges, n_regions):
    """Boundary-length-weighted mean of each region's neighbours' ``values``.

    A region without neighbours (the image is one region) keeps its own.
    """
    adj = _adjacency_matrix(edges, n_regions)
    deg = np.asarray(adj.sum(axis=1)).ravel()
    out = np.asarray(adj @ values.astype(np.float64))
    alone = deg == 0
    out[~alone] /= deg[~alone, None]
    out[alone] = values[alone]
    return out.astype(values.dtype, copy=False)


def region_labels(mask, ids, n_regions, min_labelled=0.0):
    """The majority label of each region's labelled pixels (0 = skipped).

    A region with no labelled pixel, or whose labelled share of pixels is
    below ``min_labelled``, gets 0; ties go to the smaller label.
    """
    flat = mask.ravel()
    lab = flat > 0
    present = np.unique(flat[lab])
    if present.size == 0:
        return np.zeros(n_regions, dtype=np.int64)
    enc = np.searchsorted(present, flat[lab])
    k = len(present)
    counts = np.bincount(ids[lab] * k + enc, minlength=n_regions * k).reshape(
        n_regions, k
    )
    labelled = counts.sum(axis=1)
    size = np.bincount(ids, minlength=n_regions)
    out = present[counts.argmax(axis=1)].astype(np.int64)
    out[(labelled == 0) | (labelled < min_labelled * size)] = 0
    return out


def _contiguous(ids):
    present = np.bincount(ids.ravel()) > 0
    lut = (np.cumsum(present) - 1).astype(np.intp)
    return lut[ids], int(present.sum())


def _raw_kind(trans):
    """How the raw map of a modality is read, from its transformer's colour.

    ``"auto"`` for a transformer that does not say (a pipeline, one of the
    user's): the item is read as a photo, else as a channel map.
    """
    color = None
    if hasattr(trans, "get_params"):
        color = trans.get_params(deep=False).get("color")
    if color in ("grey", "raw"):
        return color
    return "rgb" if color in ("rgb", "lab") else "auto"


def _read_raw(item, kind):
    """The row's raw map (H, W, C) float32 in [0, 1] (channel maps min-max)."""
    if kind == "grey":
        return read_image(item, mode="gray")[:, :, None]
    if kind == "rgb":
        return read_image(item, mode="rgb")
    if kind == "auto":
        try:
            return read_image(item, mode="rgb")
        except InputError:
            pass  # not a photo (a feature map of any values): a channel map
    img = read_channel_map(item)  # (H, W, C) float32, finite
    lo = img.min(axis=(0, 1))
    span = img.max(axis=(0, 1)) - lo
    span[span <= 0] = 1.0
    return ((img - lo) / span).astype(np.float32)


@fill_doc
class SuperpixelSegmenter(BaseSegmenter):
    """Segment images by classifying superpixels on their descriptors.

    Each image is cut into regions -- SLIC superpixels (Achanta et al.,
    2012, scikit-image's :func:`~skimage.segmentation.slic`) or a grid of
    square cells -- and each region is described by statistics of its
    pixels and of its neighbourhood; one classifier labels regions, and
    ``predict_proba`` paints each region's probabilities back onto its
    pixels. Regions follow edges, so labels do too, and a region sees much
    more context than a pixel at little cost.

    **Descriptors** (``descriptors``, column groups in this order):

    - ``"mean"``, ``"std"``: mean and standard deviation over the region of
      every pixel-feature channel of every modality (the ``features``
      transformers; for a depth modality that is the depth statistics);
    - ``"histogram"``: ``n_bins`` bins per channel of the first modality's
      raw image (RGB, grey, or min-max scaled channels for
      ``color="raw"``), each channel summing to one;
    - ``"geometry"``: centroid row and column (0..1), share of the image's
      area, log aspect of the bounding box;
    - ``"context"``: the boundary-length-weighted mean of the adjacent
      regions' ``mean``/``std``/``histogram`` columns.

    HOG of each region's box is not offered: it needs one resize and one
    HOG call per region (hundreds per image, in Python), for texture the
    per-region statistics of the filter bank already describe.

    **Training** labels a region with the majority label of its labelled
    pixels (0 = unlabelled is ignored, so scribbles train); regions whose
    labelled share is below ``min_labelled`` are left out.

    **Smoothing** (``smoothing`` = s > 0) repeats ``smoothing_iterations``
    times ``P <- (1 - s) P + s N(P)``, ``N(P)`` the boundary-length-weighted
    mean probability of a region's 4-adjacent neighbours.

    **Modalities** are ``(name, transformer, column)`` triples of a table
    ``X`` as in :class:`PixelSegmenter`, fused at feature level: the
    regions come from the first modality's raw image, and the descriptor
    blocks of all modalities are concatenated. A modality missing for a
    row has its blocks (and the context columns that derive from them)
    imputed with their training means; when the first modality is missing
    the regions come from the first modality present.

    Parameters
    ----------
    features : transformer or list of (str, transformer, column), default=None
        ``None``: ``PixelFeatures(sigmas=(1.0, 3.5, 10.0), features=(
        "gaussian", "log", "gradient", "hessian"), color="lab")``. Otherwise
        as in :class:`PixelSegmenter`.
    regions : {"slic", "grid"}, default="slic"
        ``"slic"``: ``slic(image, n_segments=, compactness=, start_label=1)``
        on the raw image; a grey image (one channel, or three equal ones)
        is scaled to [0, 100], the range of Lab's L, and passed with
        ``channel_axis=None``, so ``compactness`` means the same for grey
        and colour; channel maps are scaled to [0, 100] without Lab.
        ``"grid"``: square cells of ``region_size`` pixels.
    n_segments : int, default=300
        Approximate number of SLIC regions per image.
    compactness : float, default=10.0
        SLIC's balance of colour against space (higher: squarer regions).
    region_size : int, default=16
        Cell side of ``regions="grid"``, in pixels.
    descriptors : tuple of str, default=("mean", "std", "histogram", \
"geometry", "context")
        Descriptor groups, from those above.
    n_bins : int, default=8
        Histogram bins per channel.
    min_labelled : float, default=0.0
        Smallest share of labelled pixels for a region to train (a region
        needs at least one labelled pixel in any case).
    n_regions_per_image : int or None, default=None
        Training regions drawn per image (``None``: all labelled ones).
    class_balance : bool, default=False
        Draw the same number of regions from each class of an image (as
        many as a class has when it has fewer), so a small object is not
        drowned by its background; with ``n_regions_per_image=None``,
        ``False`` takes every labelled region.
    classifier : classifier, default=None
        Any classifier with ``predict_proba``; ``None``:
        ``HistGradientBoostingClassifier(max_iter=200)`` with the
        segmenter's ``random_state``. Tree models need to be trusted by
        name when loaded (see :class:`PixelSegmenter`).
    smoothing : float, default=0.0
        Weight ``s`` of the neighbours in each smoothing step (0 = none).
    smoothing_iterations : int, default=3
        Smoothing steps.
    %(on_error_items)s
    n_jobs : int, default=None
        Threads of the default feature transformer.
    random_state : int, RandomState or None, default=None
        Region sampling and the default classifier.
    verbose : int, default=0
        Progress bars over the images when > 0.

    Attributes
    ----------
    classes_ : ndarray of int
        The labels (>= 1) seen in the training masks.
    modalities_ : list of str
        Modality names.
    transformers_ : list of (str, transformer)
        The fitted feature transformer of each modality.
    n_features_ : dict of str to int
        Pixel features of each modality.
    n_hist_channels_ : int
        Channels of the first modality's raw image (histogram width /
        ``n_bins``; 0 without ``"histogram"``).
    descriptor_names_ : list of str
        One name per descriptor column.
    impute_ : ndarray of shape (n_descriptors,)
        Training mean of each column (fills a missing modality's blocks).
    estimator_ : classifier
        The fitted region classifier.
    n_images_fit_ : int
        Training images used.
    n_regions_fit_ : int
        Training regions used.

    See Also
    --------
    PixelSegmenter : Classify pixels instead of regions.
    PixelFeatures : The filter bank the region statistics summarise.

    References
    ----------
    .. [1] R. Achanta et al., "SLIC superpixels compared to state-of-the-art
       superpixel methods", IEEE TPAMI 34(11), 2012.
    .. [2] B. Fulkerson, A. Vedaldi and S. Soatto, "Class segmentation and
       object localization with superpixel neighborhoods", ICCV 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from mmfeat.segmentation import PixelFeatures, SuperpixelSegmenter
    >>> rng = np.random.default_rng(0)
    >>> image = rng.random((32, 32)) * 0.2
    >>> image[8:24, 8:24] += 0.7
    >>> mask = np.ones((32, 32), dtype=np.uint8)
    >>> mask[8:24, 8:24] = 2
    >>> seg = SuperpixelSegmenter(
    ...     PixelFeatures(sigmas=(1.0,), features=("gaussian",), color="grey"),
    ...     regions="grid", region_size=4, random_state=0,
    ... )
    >>> labels = seg.fit([image], [mask]).predict([image])[0]
    >>> float((labels == mask).mean()) > 0.95
    True
    """

    _parameter_constraints = {
        "features": [None, list, tuple, HasMethods(["fit", "transform"])],
        "regions": [StrOptions({"slic", "grid"})],
        "n_segments": [Interval(Integral, 1, None, closed="left")],
        "compactness": [Interval(Real, 0, None, closed="neither")],
        "region_size": [Interval(Integral, 1, None, closed="left")],
        "descriptors": [tuple, list],
        "n_bins": [Interval(Integral, 2, 256, closed="both")],
        "min_labelled": [Interval(Real, 0, 1, closed="both")],
        "n_regions_per_image": [Interval(Integral, 1, None, closed="left"), None],
        "class_balance": ["boolean"],
        "classifier": [None, HasMethods(["fit", "predict_proba"])],
        "smoothing": [Interval(Real, 0, 1, closed="both")],
        "smoothing_iterations": [Interval(Integral, 1, 100, closed="both")],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        features=None,
        *,
        regions="slic",
        n_segments=300,
        compactness=10.0,
        region_size=16,
        descriptors=DESCRIPTORS,
        n_bins=8,
        min_labelled=0.0,
        n_regions_per_image=None,
        class_balance=False,
        classifier=None,
        smoothing=0.0,
        smoothing_iterations=3,
        on_error="raise",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.features = features
        self.regions = regions
        self.n_segments = n_segments
        self.compactness = compactness
        self.region_size = region_size
        self.descriptors = descriptors
        self.n_bins = n_bins
        self.min_labelled = min_labelled
        self.n_regions_per_image = n_regions_per_image
        self.class_balance = class_balance
        self.classifier = classifier
        self.smoothing = smoothing
        self.smoothing_iterations = smoothing_iterations
        self.on_error = on_error
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def get_test_params(cls):
        """Small settings for the common checks (fast on small images)."""
        from sklearn.ensemble import RandomForestClassifier

        from mmfeat.segmentation import PixelFeatures

        fast = PixelFeatures(sigmas=(1.0,), features=("gaussian", "gradient"))
        small_rf = RandomForestClassifier(n_estimators=5, max_depth=6, random_state=0)
        return [
            {"features": fast, "classifier": small_rf, "n_segments": 40},
            {
                "features": fast,
                "classifier": small_rf,
                "regions": "grid",
                "region_size": 6,
                "smoothing": 0.5,
            },
        ]

    # ------------------------------------------------------------- checks
    def _default_features(self):
        from mmfeat.segmentation import PixelFeatures

        return PixelFeatures(
            sigmas=(1.0, 3.5, 10.0),
            features=("gaussian", "log", "gradient", "hessian"),
            color="lab",
            n_jobs=self.n_jobs,
        )

    def _descriptor_set(self):
        d = self.descriptors
        if isinstance(d, str) or not isinstance(d, (tuple, list)):
            raise ParameterError(
                f"descriptors must be a tuple of names from {DESCRIPTORS}; got {d!r}"
            )
        unknown = [x for x in d if x not in DESCRIPTORS]
        if unknown or not d or len(set(d)) != len(d):
            raise ParameterError(
                f"descriptors must be a non-empty tuple of distinct names from "
                f"{DESCRIPTORS}; got {d!r}"
            )
        if "context" in d and not {"mean", "std", "histogram"} & set(d):
            raise ParameterError(
                "descriptors='context' summarises the neighbours' mean, std or "
                "histogram columns: add at least one of them"
            )
        return frozenset(d)

    # ------------------------------------------------------------ regions
    def _segment(self, raw):
        """Region ids (H, W), contiguous from 0, and their count."""
        h, w = raw.shape[:2]
        if self.regions == "grid":
            s = int(self.region_size)
            n_cols = -(-w // s)
            ids = (np.arange(h)[:, None] // s) * n_cols + np.arange(w)[None, :] // s
            return _contiguous(ids.astype(np.intp))
        from skimage.segmentation import slic

        c = raw.shape[2]
        grey = c == 1 or (
            c == 3
            and np.array_equal(raw[:, :, 0], raw[:, :, 1])
            and np.array_equal(raw[:, :, 0], raw[:, :, 2])
        )
        kw = {}
        if grey:
            img = raw[:, :, 0].astype(np.float64) * 100.0
            kw["channel_axis"] = None
        elif c == 3:
            img = raw.astype(np.float64)
            kw.update(channel_axis=-1, convert2lab=True)
        else:
            img = raw.astype(np.float64) * 100.0
            kw.update(channel_axis=-1, convert2lab=False)
        ids = slic(
            img,
            n_segments=int(self.n_segments),
            compactness=float(self.compactness),
            start_label=1,
            **kw,
        )
        return _contiguous(ids.astype(np.intp) - 1)

    def _row_regions(self, row, columns, kinds):
        """(raw, from_first, ids, n) of a row, or None when it cannot be read."""
        names = list(columns)
        name = next(n for n in names if row.maps[n] is not None)
        item = columns[name][row.row]
        try:
            raw = _read_raw(item, kinds[name])
        except InputError as exc:
            self._refuse(ItemError(row.row, row.sources[name], exc.reason, name))
            return None
        if raw.shape[:2] != row.shape:
            self._refuse(
                ItemError(
                    row.row,
                    row.sources[name],
                    f"{name} is {raw.shape[0]}x{raw.shape[1]} but its features "
                    f"are {row.shape[0]}x{row.shape[1]}: the feature transformer "
                    "must keep the image's size",
                    name,
                )
            )
            return None
        ids, n = self._segment(raw)
        return raw, name == names[0], ids, n

    # --------------------------------------------------------- descriptors
    def _layout(self, names, n_features, n_hist, feature_names):
        """Descriptor column names, and the count of context-able columns."""
        use = self._descriptor_set()
        cols = []
        for name in names:
            for stat in ("mean", "std"):
                if stat in use:
                    cols += [f"{name}__{stat}_{f}" for f in feature_names[name]]
        if "histogram" in use:
            cols += [
                f"{names[0]}__hist_c{c}_b{b}"
                for c in range(n_hist)
                for b in range(self.n_bins)
            ]
        n_ctx = len(cols)
        if "geometry" in use:
            cols += [f"geometry__{g}" for g in _GEOMETRY]
        if "context" in use:
            cols += [f"context__{c}" for c in cols[:n_ctx]]
        return cols

    def _descriptors(self, row, regions, names, n_features, n_hist):
        """(n_regions, n_descriptors) float32, NaN where a modality is missing."""
        use = self._descriptor_set()
        raw, from_first, ids2d, n = regions
        ids = ids2d.ravel()
        parts = []
        for name in names:
            m = row.maps[name]
            stats = None
            if m is not None and ({"mean", "std"} & use):
                stats = region_statistics(m.reshape(ids.size, -1), ids, n)
            for k, stat in enumerate(("mean", "std")):
                if stat not in use:
                    continue
                if stats is None:
                    parts.append(np.full((n, n_features[name]), np.nan, np.float32))
                else:
                    parts.append(stats[k])
        if "histogram" in use:
            if from_first and raw.shape[2] == n_hist:
                parts.append(region_histograms(raw, ids, n, self.n_bins))
            elif from_first:
                raise InputError(
                    f"{names[0]} has {raw.shape[2]} channels here but "
                    f"{n_hist} in the training images",
                    row=row.row,
                    source=row.sources[names[0]],
                )
            else:
                parts.append(np.full((n, n_hist * self.n_bins), np.nan, np.float32))
        base = np.hstack(parts) if parts else np.empty((n, 0), np.float32)
        out = [base]
        if "geometry" in use:
            out.append(region_geometry(ids2d, n))
        if "context" in use:
            edges = region_adjacency(ids2d, n)
            out.append(neighbour_mean(base, edges, n))
        return np.ascontiguousarray(np.hstack(out), dtype=np.float32)

    # ---------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    @limit_threads
    def fit(self, X, y):
        """Learn from images (or a table of aligned modalities) and masks.

        Parameters
        ----------
        X : column of images, or DataFrame of modalities
            Paths, bytes or arrays; a table when ``features`` names columns.
        y : list of masks
            One label image per row, of its image's height and width;
            0 = unlabelled.

        Returns
        -------
        self : SuperpixelSegmenter
        """
        self._descriptor_set()
        names, columns, masks, rng, seeds, transformers = self._fit_inputs(X, y)
        kinds = {n: _raw_kind(t) for n, t in transformers}

        # one pass: per-pixel features and masks -> region descriptors and
        # labels. A row's maps are dropped once it is described; only a row
        # that comes before any width is known (a transformer that cannot
        # say its output size, a first modality missing) waits.
        use = self._descriptor_set()
        n_features = {}
        for name, trans in transformers:
            try:
                n_features[name] = len(trans.get_feature_names_out())
            except Exception:  # noqa: BLE001 - any transformer: learn it from rows
                pass
        n_hist = None if "histogram" in use else 0
        waiting, blocks, targets = [], [], []

        def describe(row, regions, keep, lab):
            d = self._descriptors(row, regions, names, n_features, n_hist)
            blocks.append(d[keep])
            targets.append(lab)

        n_images = 0
        for row in self._rows(transformers, columns, masks, "regions"):
            if row.shape is None:
                continue
            for name, m in row.maps.items():
                if m is not None:
                    self._check_width(n_features, name, m, row)
            regions = self._row_regions(row, columns, kinds)
            if regions is None:
                continue
            if regions[1] and n_hist is None:
                n_hist = int(regions[0].shape[2])
            ids = regions[2].ravel()
            labels = region_labels(row.mask, ids, regions[3], self.min_labelled)
            keep = sample_pixels(
                labels,
                self.n_regions_per_image,
                balance=self.class_balance,
                rng=np.random.RandomState(seeds[row.row]),
            )
            if keep.size == 0:
                continue
            n_images += 1
            waiting.append((row, regions, keep, labels[keep]))
            if n_hist is not None and all(n in n_features for n in names):
                for entry in waiting:
                    describe(*entry)
                waiting = []
        if not n_images:
            raise InputError(
                "no training row has a readable image and a region with labelled pixels"
            )
        missing = [n for n in names if n not in n_features]
        if missing:
            raise InputError(
                f"modality {missing[0]!r} is missing or unreadable in every "
                "training row"
            )
        if n_hist is None:
            raise InputError(
                f"modality {names[0]!r} (the histogram's) is missing in every "
                "training row"
            )
        for entry in waiting:
            describe(*entry)
        del waiting
        y_all = np.concatenate(targets)
        classes = np.unique(y_all)
        if len(classes) < 2:
            raise InputError(
                f"every labelled region of the training masks is class "
                f"{int(classes[0])}: a segmenter needs at least two classes (0 "
                "means unlabelled; if 0 is your background, add 1 to the masks)"
            )
        X_all = np.concatenate(blocks)
        with np.errstate(invalid="ignore"):
            present = ~np.isnan(X_all)
            sums = np.where(present, X_all, 0).sum(axis=0, dtype=np.float64)
            impute = sums / np.maximum(present.sum(axis=0), 1)
        X_all = np.where(present, X_all, impute.astype(np.float32)[None, :])
        feature_names = {}
        for name, trans in transformers:
            try:
                fn = [str(f) for f in trans.get_feature_names_out()]
            except Exception:  # noqa: BLE001 - any transformer: plain numbers
                fn = []
            if len(fn) != n_features[name]:
                fn = [str(i) for i in range(n_features[name])]
            feature_names[name] = fn
        descriptor_names = self._layout(names, n_features, n_hist, feature_names)
        if len(descriptor_names) != X_all.shape[1]:  # pragma: no cover
            raise state_error(self, "descriptor names do not match the columns")
        y_enc = np.searchsorted(classes, y_all)
        estimator = self._classifier(int(seeds[0])).fit(X_all, y_enc)
        # every fitted attribute at the end: a fit that fails leaves the
        # earlier model whole
        self.classes_ = classes.astype(np.int64)
        self.modalities_ = names
        self.transformers_ = transformers
        self.n_features_ = n_features
        self.n_hist_channels_ = n_hist
        self.descriptor_names_ = descriptor_names
        self.impute_ = impute.astype(np.float32)
        self.estimator_ = estimator
        self.n_images_fit_ = n_images
        self.n_regions_fit_ = int(y_all.size)
        return self

    # ------------------------------------------------------------ predict
    def _smooth(self, proba, ids2d, n):
        s = float(self.smoothing)
        if s <= 0 or n < 2:
            return proba
        edges = region_adjacency(ids2d, n)
        p = proba.astype(np.float64)
        for _ in range(int(self.smoothing_iterations)):
            p = (1 - s) * p + s * neighbour_mean(p, edges, n)
        p /= p.sum(axis=1, keepdims=True)
        return p.astype(np.float32)

    @limit_threads
    def predict_proba(self, X):
        """Probability maps, one (H, W, n_classes) float32 array per row.

        Rows whose every modality is missing or refused (``on_error=
        "missing"``) give ``None``; refused items are reported to
        :func:`mmfeat.collect_item_errors`.

        Parameters
        ----------
        X : column of images, or DataFrame of modalities
            As in :meth:`fit`.

        Returns
        -------
        proba : ndarray of object, shape (n_rows,)
            Columns follow ``classes_``; every pixel of a region holds the
            region's probabilities.
        """
        check_is_fitted(self)
        columns = self._predict_columns(X)
        names = self.modalities_
        kinds = {n: _raw_kind(t) for n, t in self.transformers_}
        n_classes = len(self.classes_)
        n_rows = len(columns[names[0]])
        out = np.empty(n_rows, dtype=object)
        out[:] = None
        transformers = self._runtime_transformers()
        for row in self._rows(transformers, columns, None, "predict"):
            if row.shape is None:
                continue
            self._check_fitted_width(row)
            regions = self._row_regions(row, columns, kinds)
            if regions is None:
                continue
            d = self._descriptors(
                row, regions, names, self.n_features_, self.n_hist_channels_
            )
            bad = np.isnan(d)
            if bad.any():
                d = np.where(bad, self.impute_[None, :], d)
            proba = proba_columns(self.estimator_, d, n_classes)
            ids2d, n = regions[2], regions[3]
            proba = self._smooth(proba, ids2d, n)
            out[row.row] = np.ascontiguousarray(proba[ids2d], dtype=np.float32)
        return out

    # -------------------------------------------------------------- state
    def _check_fitted_state(self):
        self._check_classes()
        names = self.modalities_
        for name in names:
            width = self.n_features_.get(name)
            if not isinstance(width, numbers.Integral) or not 0 < width <= 1 << 16:
                raise state_error(self, f"n_features_[{name!r}]={width!r}")
        n_hist = self.n_hist_channels_
        if not isinstance(n_hist, numbers.Integral) or not 0 <= n_hist <= 512:
            raise state_error(self, f"n_hist_channels_={n_hist!r}")
        n = len(self.descriptor_names_)
        impute = self.impute_
        if not (
            isinstance(impute, np.ndarray)
            and impute.shape == (n,)
            and np.isfinite(impute).all()
        ):
            raise state_error(self, f"impute_ is not {n} finite values")
        width = getattr(self.estimator_, "n_features_in_", n)
        if width != n:
            raise state_error(
                self, f"the classifier takes {width} columns, the descriptors {n}"
            )
