"""PixelSegmenter: a classifier of pixels on a filter bank, with auto-context."""

import numbers

import cv2
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils.validation import check_is_fitted

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.segmentation._base import (
    BaseSegmenter,
    limit_threads,
    proba_columns,
    sample_pixels,
)
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._fusion_weights import learn_weights
from mmfeat.utils._sklearn_compat import (
    HasMethods,
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
)
from mmfeat.utils._state import state_error

__all__ = ["PixelSegmenter"]

#: Pixels classified in one call (bounds the memory of a prediction).
_BLOCK = 1 << 16
#: The most auto-context stages.
_MAX_STAGES = 4
#: The largest context or smoothing sigma, in pixels.
_MAX_SIGMA = 256.0


def _blur(channel, sigma):
    return cv2.GaussianBlur(
        channel, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT
    )


def context_features(proba, sigmas):
    """Auto-context channels of a probability map (H, W, K) -> (H, W, K*(S+2)).

    For every class: its probability, the probability smoothed at each
    context sigma (what the neighbourhood at that scale looks like), and its
    mean over the image (how much of the class the image holds).
    """
    h, w, k = proba.shape
    out = np.empty((h, w, k * (len(sigmas) + 2)), dtype=np.float32)
    j = 0
    for c in range(k):
        p = np.ascontiguousarray(proba[:, :, c], dtype=np.float32)
        out[:, :, j] = p
        j += 1
        for s in sigmas:
            out[:, :, j] = _blur(p, s)
            j += 1
        out[:, :, j] = p.mean()
        j += 1
    return out


def _simplex(m, step=0.1):
    """Points of the m-simplex on a grid of ``step`` (m <= 3), as rows."""
    n = round(1 / step)
    if m == 1:
        return np.ones((1, 1))
    if m == 2:
        a = np.arange(n + 1) / n
        return np.stack([a, 1 - a], axis=1)
    pts = [
        (i / n, j / n, (n - i - j) / n) for i in range(n + 1) for j in range(n + 1 - i)
    ]
    return np.array(pts)


def _best_weights(probas, target):
    """Modality weights with the best out-of-fold pixel accuracy.

    The candidates are the log-loss optimum (what
    :class:`~mmfeat.fusion.LateFusionClassifier` learns), equal weights, and
    for up to three modalities a grid over the simplex; the most accurate
    wins, ties going to the lower log-loss. Log-loss alone can be flat where
    accuracy is not: when each modality tells apart only some of the
    classes, every weighting gives the true class the same averaged
    probability, but only a balanced one ranks it first.
    """
    m = len(probas)
    first = learn_weights(probas, target)
    cands = [first, np.full(m, 1.0 / m)]
    if m <= 3:
        cands.extend(_simplex(m))
    present = [~np.isnan(p[:, 0]) for p in probas]
    filled = [np.nan_to_num(p) for p in probas]
    best, best_key = first, None
    for w in cands:
        num = sum(wi * p for wi, p in zip(w, filled))
        den = sum(wi * pr for wi, pr in zip(w, present))
        ok = den > 0
        fused = num[ok] / den[ok, None]
        t = target[ok]
        acc = (fused.argmax(axis=1) == t).sum() / len(target)
        loss = -np.log(np.clip(fused[np.arange(len(t)), t], 1e-15, 1)).mean()
        key = (round(float(acc), 6), -float(loss))
        if best_key is None or key > best_key:
            best, best_key = np.asarray(w, dtype=float), key
    return best / best.sum()


class _Design:
    """Turns a row's maps (and context) into the matrices a stage classifies.

    Feature-level fusion: one matrix, each modality standardised (when
    ``block_norm="standard"``) and multiplied by its weight, a missing
    modality's block at its training mean (zeros), the context appended.
    Late fusion: one matrix per present modality, the context appended.
    """

    def __init__(self, names, n_features, fusion, scalers, weights, fills):
        self.names = names
        self.n_features = n_features
        self.fusion = fusion
        self.scalers = scalers
        self.weights = weights
        self.fills = fills

    def fused(self, blocks, ctx):
        n = (
            next(b.shape[0] for b in blocks if b is not None)
            if any(b is not None for b in blocks)
            else ctx.shape[0]
        )
        parts = []
        for name, b in zip(self.names, blocks):
            if b is None:
                fill = self.fills[name] * np.float32(self.weights[name])
                parts.append(np.broadcast_to(fill, (n, fill.size)))
                continue
            if self.scalers is not None:
                mean, scale = self.scalers[name]
                b = (b - mean) / scale
            w = self.weights[name]
            parts.append((b * np.float32(w)) if w != 1.0 else b)
        if ctx is not None:
            parts.append(ctx)
        return np.ascontiguousarray(np.hstack(parts), dtype=np.float32)

    def per_modality(self, blocks, ctx):
        out = []
        for b in blocks:
            if b is None:
                out.append(None)
            elif ctx is None:
                out.append(b)
            else:
                out.append(np.ascontiguousarray(np.hstack([b, ctx]), dtype=np.float32))
        return out


@fill_doc
class PixelSegmenter(BaseSegmenter):
    """Segment images by classifying every pixel on a bank of filter responses.

    The classical trainable segmenter (scikit-image's ``TrainableSegmenter``,
    ilastik's pixel classification, Fiji's Trainable Weka Segmentation) as a
    scikit-learn estimator: each image becomes a stack of per-pixel features
    (:class:`PixelFeatures`: Gaussian, Laplacian of Gaussian, gradient
    magnitude, difference of Gaussians, structure-tensor and Hessian
    eigenvalues at several scales), a class-balanced sample of the labelled
    pixels of every training image trains one classifier (a random forest by
    default), and ``predict`` classifies every pixel.

    Training memory is bounded: images are read and filtered a few at a time
    and only ``n_samples_per_image`` pixels of each are kept, so it grows with
    the number of images, not with their size. Images of different sizes mix
    freely.

    **Masks** are integer label images: labels >= 1 are classes and 0 means
    unlabelled (scikit-image's convention), so a few scribbles train as well
    as a full mask. **Auto-context** (Tu and Bai, 2010; ilastik's
    "autocontext") adds stages: each later classifier also sees the previous
    stage's probabilities, smoothed at ``context_sigmas`` and averaged over the
    image, computed out of fold on the training images (``cv`` folds of
    images) so that a stage learns from probabilities as good as those it
    will see on new images.

    **Modalities.** ``X`` may be a table with one column per aligned
    modality (an RGB photo, a depth map, a precomputed feature map): give
    ``features`` as ``(name, transformer, column)`` triples, as
    :class:`~mmfeat.fusion.MultimodalFuser` takes them. ``fusion="feature"``
    classifies the joined per-pixel features ``F = a·F1 ⊕ b·F2`` (each block
    standardised, then weighted); ``fusion="late"`` trains one pixel
    classifier per modality and fuses their probabilities
    ``P = Σ w_m·P_m``, with the weights learnt on out-of-fold pixels (the
    most accurate of the log-loss optimum that
    :class:`~mmfeat.fusion.LateFusionClassifier` learns, equal weights and a
    grid over the simplex). A modality
    missing or unreadable for an image falls back to the others: late fusion
    renormalises the weights of the modalities present; feature fusion puts
    the missing block at its training mean.

    Parameters
    ----------
    features : transformer or list of (str, transformer, column), default=None
        ``None``: ``PixelFeatures()`` on a one-column ``X``. A pixel-feature
        transformer (a column of images to one (H, W, F) array per row, such
        as :class:`PixelFeatures`), or one triple per modality of a table
        ``X``. A transformer with an ``on_error`` parameter runs with the
        segmenter's. Grid-search its parameters as ``features__sigmas`` (one
        transformer) or ``<modality>__sigmas`` (triples).
    classifier : classifier, default=None
        Any scikit-learn classifier with ``predict_proba``, cloned for each
        stage (and modality). ``None``: ``HistGradientBoostingClassifier(
        max_iter=200)`` with the segmenter's ``random_state``: on the
        Weizmann horses it beat a random forest of 100 trees by 3 points of
        pixel accuracy and 8 of foreground IoU. Tree models hold objects
        that skops rebuilds by calling their class, so :func:`mmfeat.load`
        asks you to trust them by name (``trusted=["sklearn.ensemble.
        _hist_gradient_boosting.predictor.TreePredictor"]``, or
        ``["sklearn.tree._tree.Tree"]`` for a forest); the segmenter's own
        state rebuilds without code.
    n_samples_per_image : int or None, default=2000
        Labelled pixels sampled from each training image; ``None`` takes all
        of them (memory then grows with image size).
    class_balance : bool, default=True
        Sample the same number of pixels from each class present in an
        image, so a small object is not drowned by its background.
    autocontext : int, default=0
        Extra classification stages that see the previous stage's
        probabilities (0 = plain pixel classification).
    context_sigmas : tuple of float, default=(2.0, 8.0, 32.0)
        Scales, in pixels, at which the auto-context probabilities are
        smoothed.
    fusion : {"feature", "late"}, default="feature"
        How modalities combine (one modality: no difference).
    weights : dict of str to float, "learn" or None, default=None
        Modality weights. ``None``: equal weights for feature fusion, learnt
        weights for late fusion; ``"learn"`` (late fusion only): the weights
        with the best out-of-fold pixel accuracy among the log-loss optimum,
        equal weights and (up to three modalities) a 0.1 grid over the
        simplex.
    block_norm : {"standard", None}, default="standard"
        Standardise each modality's features (training-pixel statistics)
        before feature-level weighting; trees do not need it, distance- and
        linear-model classifiers do.
    smoothing : float, default=0.0
        Sigma, in pixels, of a Gaussian applied to the probability maps
        before the labels are taken (0 = none).
    cv : int, default=3
        Folds of training images for auto-context and learnt late weights.
    %(on_error_items)s
    n_jobs : int, default=None
        Threads of the feature kernels, and the most OpenMP / BLAS threads
        the classifier may start while the segmenter fits and predicts
        (``None`` leaves those to the libraries: every core).
    random_state : int, RandomState or None, default=None
        Pixel sampling, image folds and the default classifier.
    verbose : int, default=0
        Progress bars over the images when > 0.

    Attributes
    ----------
    classes_ : ndarray of int
        The labels (>= 1) seen in the training masks.
    modalities_ : list of str
        Modality names (``["image"]`` for a one-column ``X``).
    transformers_ : list of (str, transformer)
        The fitted feature transformer of each modality.
    n_features_ : dict of str to int
        Features per pixel of each modality.
    estimators_ : list of list of classifiers
        Per stage: the fitted classifier (feature fusion) or one per
        modality (late fusion).
    stage_weights_ : list of ndarray
        Per stage, the weight of each modality.
    n_images_fit_ : int
        Training images used (rows with an image and a labelled mask).
    n_pixels_fit_ : int
        Training pixels sampled in all.

    See Also
    --------
    PixelFeatures : The filter bank.
    SuperpixelSegmenter : Classify regions instead of pixels.
    mmfeat.evaluation.segmentation_report : IoU, Dice and boundary F1.

    References
    ----------
    .. [1] S. Berg et al., "ilastik: interactive machine learning for
       (bio)image analysis", Nature Methods 16, 2019.
    .. [2] Z. Tu and X. Bai, "Auto-context and its application to high-level
       vision tasks and 3D brain image segmentation", IEEE TPAMI 32(10), 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from mmfeat.segmentation import PixelFeatures, PixelSegmenter
    >>> rng = np.random.default_rng(0)
    >>> image = rng.random((32, 32)) * 0.2
    >>> image[8:24, 8:24] += 0.7
    >>> mask = np.ones((32, 32), dtype=np.uint8)
    >>> mask[8:24, 8:24] = 2
    >>> seg = PixelSegmenter(
    ...     features=PixelFeatures(sigmas=(1.0, 2.0), color="grey"), random_state=0
    ... )
    >>> labels = seg.fit([image], [mask]).predict([image])[0]
    >>> float((labels == mask).mean()) > 0.95
    True
    """

    _parameter_constraints = {
        "features": [None, list, tuple, HasMethods(["fit", "transform"])],
        "classifier": [None, HasMethods(["fit", "predict_proba"])],
        "n_samples_per_image": [Interval(Integral, 1, None, closed="left"), None],
        "class_balance": ["boolean"],
        "autocontext": [Interval(Integral, 0, _MAX_STAGES, closed="both")],
        "context_sigmas": [tuple, list],
        "fusion": [StrOptions({"feature", "late"})],
        "weights": [None, dict, StrOptions({"learn"})],
        "block_norm": [StrOptions({"standard"}), None],
        "smoothing": [Interval(Real, 0, _MAX_SIGMA, closed="both")],
        "cv": [Interval(Integral, 2, 50, closed="both")],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        features=None,
        *,
        classifier=None,
        n_samples_per_image=2000,
        class_balance=True,
        autocontext=0,
        context_sigmas=(2.0, 8.0, 32.0),
        fusion="feature",
        weights=None,
        block_norm="standard",
        smoothing=0.0,
        cv=3,
        on_error="raise",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.features = features
        self.classifier = classifier
        self.n_samples_per_image = n_samples_per_image
        self.class_balance = class_balance
        self.autocontext = autocontext
        self.context_sigmas = context_sigmas
        self.fusion = fusion
        self.weights = weights
        self.block_norm = block_norm
        self.smoothing = smoothing
        self.cv = cv
        self.on_error = on_error
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def get_test_params(cls):
        """Small settings for the common checks (fast on 64x64 images)."""
        from mmfeat.segmentation import PixelFeatures

        fast = PixelFeatures(sigmas=(1.0, 3.0), features=("gaussian", "gradient"))
        small_rf = RandomForestClassifier(n_estimators=5, max_depth=6, random_state=0)
        return [
            {"features": fast, "classifier": small_rf, "n_samples_per_image": 200},
            {
                "features": fast,
                "classifier": small_rf,
                "n_samples_per_image": 200,
                "autocontext": 1,
                "cv": 2,
            },
        ]

    # ------------------------------------------------------------- checks
    def _default_features(self):
        from mmfeat.segmentation import PixelFeatures

        return PixelFeatures()

    def _context_sigmas(self):
        s = self.context_sigmas
        if not isinstance(s, (tuple, list)) or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in s
        ):
            raise ParameterError(
                f"context_sigmas must be a tuple of numbers; got {s!r}"
            )
        s = tuple(float(v) for v in s)
        if not all(0 < v <= _MAX_SIGMA for v in s) or len(s) > 16:
            raise ParameterError(
                f"context_sigmas must hold at most 16 values in (0, {_MAX_SIGMA}]; "
                f"got {s!r}"
            )
        return s

    def _weights(self, names):
        w = self.weights
        if w is None or (isinstance(w, str) and w == "learn"):
            if w == "learn" and self.fusion != "late":
                raise ParameterError(
                    "weights='learn' needs fusion='late' (feature-level weights "
                    "are grid-searched: pass a dict)"
                )
            return {n: 1.0 for n in names}, self.fusion == "late"
        unknown = set(w) - set(names)
        if unknown:
            raise ParameterError(
                f"weights names unknown modalities {sorted(unknown)}; the "
                f"modalities are {names}"
            )
        out = {}
        for n in names:
            v = w.get(n, 1.0)
            if not (isinstance(v, numbers.Real) and np.isfinite(v) and v >= 0):
                raise ParameterError(
                    f"weight of {n!r} must be a finite number >= 0; got {v!r}"
                )
            out[n] = float(v)
        if sum(out.values()) <= 0:
            raise ParameterError("at least one modality weight must be > 0")
        return out, False

    # ---------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=False)
    @limit_threads
    def fit(self, X, y):
        """Learn from images (or a table of aligned modalities) and masks.

        Parameters
        ----------
        X : column of images, or DataFrame of modalities
            Paths, bytes or arrays; a table when ``features`` names columns.
        y : list of masks
            One label image (array or lossless image file) per row, of its
            image's height and width; 0 = unlabelled.

        Returns
        -------
        self : PixelSegmenter
        """
        sigmas = self._context_sigmas()
        names = [n for n, _, _ in self._modalities()]
        weights, learn = self._weights(names)
        names, columns, masks, rng, seeds, transformers = self._fit_inputs(X, y)

        # pass 1: sample pixels, keep their features; labels and row sizes
        samples = {}  # row -> (idx, labels, {name: (n, F) or None})
        n_features = {}
        for row in self._rows(transformers, columns, masks, "sampling"):
            if row.shape is None:
                continue
            idx = sample_pixels(
                row.mask,
                self.n_samples_per_image,
                balance=self.class_balance,
                rng=np.random.RandomState(seeds[row.row]),
            )
            feats = {}
            for name, m in row.maps.items():
                if m is None:
                    feats[name] = None
                    continue
                self._check_width(n_features, name, m, row)
                feats[name] = np.ascontiguousarray(m.reshape(-1, m.shape[-1])[idx])
            samples[row.row] = (idx, row.mask.ravel()[idx], feats)
        if not samples:
            raise InputError(
                "no training row has both a readable image and a labelled mask"
            )
        labels = np.concatenate([s[1] for s in samples.values()])
        classes = np.unique(labels)
        if len(classes) < 2:
            raise InputError(
                f"every labelled pixel of the training masks is class "
                f"{int(classes[0])}: a segmenter needs at least two classes (0 "
                "means unlabelled; if 0 is your background, add 1 to the masks)"
            )
        missing = [n for n in names if n not in n_features]
        if missing:
            raise InputError(
                f"modality {missing[0]!r} is missing or unreadable in every "
                "training row"
            )
        rows = sorted(samples)
        y_enc = {r: np.searchsorted(classes, samples[r][1]) for r in rows}

        # each modality's training mean fills its block where it is missing
        # (zeros once standardised)
        scalers, fills = {}, {}
        for name in names:
            stack = [
                samples[r][2][name] for r in rows if samples[r][2][name] is not None
            ]
            stack = np.concatenate(stack).astype(np.float64)
            mean = stack.mean(axis=0)
            scale = stack.std(axis=0)
            scale[scale < 1e-12] = 1.0
            scalers[name] = (mean.astype(np.float32), scale.astype(np.float32))
            fills[name] = mean.astype(np.float32)
        if self.fusion != "feature" or self.block_norm != "standard":
            scalers = None
        else:
            fills = {n: np.zeros_like(v) for n, v in fills.items()}
        design = _Design(names, n_features, self.fusion, scalers, weights, fills)

        n_stages = self.autocontext + 1
        needs_folds = self.autocontext > 0 or learn
        folds = None
        if needs_folds:
            if len(rows) < 2:
                raise InputError(
                    f"autocontext and learnt late-fusion weights need at least two "
                    f"training images (folds of images); got {len(rows)}"
                )
            k = min(self.cv, len(rows))
            order = rng.permutation(len(rows))
            folds = {rows[i]: j % k for j, i in enumerate(order)}
        n_classes = len(classes)
        estimators, stage_weights = [], []
        fold_models = []  # per stage: {fold: (classifiers, weights)}
        ctx = {r: None for r in rows}
        for stage in range(n_stages):
            w = np.array([weights[n] for n in names], dtype=np.float64)
            fold_stage = {}
            if folds is not None and (stage < n_stages - 1 or learn):
                k = max(folds.values()) + 1
                oof, oof_rows = [], []
                for j in range(k):
                    train = [r for r in rows if folds[r] != j]
                    held = [r for r in rows if folds[r] == j]
                    clfs = self._fit_stage(
                        design, samples, y_enc, ctx, train, seeds[train[0]] + stage
                    )
                    fold_stage[j] = clfs
                    if learn:
                        for r in held:
                            blocks = [samples[r][2][n] for n in names]
                            oof.append(
                                self._stage_probas(
                                    design, clfs, blocks, ctx[r], n_classes
                                )
                            )
                            oof_rows.append(r)
                if learn:
                    probas = [
                        np.concatenate([o[m] for o in oof]) for m in range(len(names))
                    ]
                    target = np.concatenate([y_enc[r] for r in oof_rows])
                    w = _best_weights(probas, target)
            clfs = self._fit_stage(
                design, samples, y_enc, ctx, rows, seeds[rows[0]] + stage
            )
            estimators.append(clfs)
            stage_weights.append(w)
            fold_models.append({j: (c, w) for j, c in fold_stage.items()})
            if stage < n_stages - 1:
                ctx = self._oof_context(
                    transformers,
                    columns,
                    masks,
                    design,
                    samples,
                    folds,
                    fold_models,
                    sigmas,
                    n_classes,
                )
        # every fitted attribute at the end: a fit that fails leaves the
        # earlier model whole
        self.classes_ = classes.astype(np.int64)
        self.modalities_ = names
        self.transformers_ = transformers
        self.n_features_ = n_features
        self.scalers_ = scalers
        self.fill_values_ = fills
        self.modality_weights_ = weights
        self.estimators_ = estimators
        self.stage_weights_ = stage_weights
        self.n_images_fit_ = len(rows)
        self.n_pixels_fit_ = int(labels.size)
        return self

    def _fit_stage(self, design, samples, y_enc, ctx, rows, seed):
        """Fit one stage's classifier(s) on the sampled pixels of ``rows``."""
        names = design.names
        target = np.concatenate([y_enc[r] for r in rows])
        if self.fusion == "feature":
            X = np.concatenate(
                [design.fused([samples[r][2][n] for n in names], ctx[r]) for r in rows]
            )
            return [self._classifier(int(seed)).fit(X, target)]
        clfs = []
        for m, name in enumerate(names):
            keep = [r for r in rows if samples[r][2][name] is not None]
            if not keep:
                clfs.append(None)
                continue
            X = np.concatenate(
                [design.per_modality([samples[r][2][name]], ctx[r])[0] for r in keep]
            )
            t = np.concatenate([y_enc[r] for r in keep])
            clfs.append(self._classifier(int(seed) + m).fit(X, t))
        return clfs

    def _stage_probas(self, design, clfs, blocks, ctx, n_classes):
        """Per-modality probabilities (late) or the one fused (feature)."""
        if self.fusion == "feature":
            X = design.fused(blocks, ctx)
            return [proba_columns(clfs[0], X, n_classes)]
        out = []
        for clf, X in zip(clfs, design.per_modality(blocks, ctx)):
            if X is None or clf is None:
                n = next((b.shape[0] for b in blocks if b is not None), 0)
                out.append(np.full((n, n_classes), np.nan, dtype=np.float32))
            else:
                out.append(proba_columns(clf, X, n_classes))
        return out

    def _fuse(self, probas, weights):
        if self.fusion == "feature":
            return probas[0]
        num = np.zeros_like(probas[0])
        den = np.zeros(probas[0].shape[0], dtype=np.float32)
        for p, w in zip(probas, weights):
            if w <= 0:
                continue
            present = ~np.isnan(p[:, 0])
            num[present] += np.float32(w) * p[present]
            den[present] += np.float32(w)
        stuck = den <= 0
        if stuck.any():
            # only modalities weighted 0 are present in these pixels: they
            # are fused with equal weights rather than left undefined
            for p in probas:
                present = stuck & ~np.isnan(p[:, 0])
                num[present] += p[present]
                den[present] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / den[:, None]

    def _image_proba(self, design, stages, maps, sigmas, n_classes):
        """Probability map (H, W, K) of one row through ``stages``."""
        shape = next(m.shape[:2] for m in maps.values() if m is not None)
        n = shape[0] * shape[1]
        ctx = None
        proba = None
        for clfs, weights in stages:
            proba = np.empty((n, n_classes), dtype=np.float32)
            for start in range(0, n, _BLOCK):
                sl = slice(start, min(n, start + _BLOCK))
                blocks = []
                for name in design.names:
                    m = maps.get(name)
                    blocks.append(None if m is None else m.reshape(n, -1)[sl])
                c = None if ctx is None else ctx.reshape(n, -1)[sl]
                parts = self._stage_probas(design, clfs, blocks, c, n_classes)
                proba[sl] = self._fuse(parts, weights)
            proba = proba.reshape(shape[0], shape[1], n_classes)
            ctx = context_features(proba, sigmas)
        return proba

    def _oof_context(
        self,
        transformers,
        columns,
        masks,
        design,
        samples,
        folds,
        fold_models,
        sigmas,
        n_classes,
    ):
        """Context of the next stage at each training row's sampled pixels."""
        out = {}
        rows = sorted(samples)
        for row in self._rows(transformers, columns, masks, "auto-context", rows):
            j = folds[row.row]
            stages = [fm[j] for fm in fold_models]
            proba = self._image_proba(design, stages, row.maps, sigmas, n_classes)
            idx = samples[row.row][0]
            ctx = context_features(proba, sigmas)
            out[row.row] = np.ascontiguousarray(ctx.reshape(-1, ctx.shape[-1])[idx])
        return out

    # ------------------------------------------------------------ predict
    def _design(self):
        return _Design(
            self.modalities_,
            self.n_features_,
            self.fusion,
            self.scalers_,
            self.modality_weights_,
            self.fill_values_,
        )

    @limit_threads
    def predict_proba(self, X):
        """Probability maps, one (H, W, n_classes) float32 array per row.

        Rows whose every modality is missing or refused (``on_error=
        "missing"``) give ``None``; the refused items are reported to
        :func:`mmfeat.collect_item_errors`.

        Parameters
        ----------
        X : column of images, or DataFrame of modalities
            As in :meth:`fit`.

        Returns
        -------
        proba : ndarray of object, shape (n_rows,)
            Columns follow ``classes_``.
        """
        check_is_fitted(self)
        sigmas = self._context_sigmas()
        columns = self._predict_columns(X)
        design = self._design()
        stages = list(zip(self.estimators_, self.stage_weights_))
        n_classes = len(self.classes_)
        n_rows = len(columns[self.modalities_[0]])
        out = np.empty(n_rows, dtype=object)
        transformers = self._runtime_transformers()
        for row in self._rows(transformers, columns, None, "predict"):
            if row.shape is None:
                out[row.row] = None
                continue
            self._check_fitted_width(row)
            proba = self._image_proba(design, stages, row.maps, sigmas, n_classes)
            if self.smoothing > 0:
                proba = np.stack(
                    [
                        _blur(np.ascontiguousarray(proba[:, :, c]), self.smoothing)
                        for c in range(n_classes)
                    ],
                    axis=2,
                )
                proba /= proba.sum(axis=2, keepdims=True)
            out[row.row] = np.ascontiguousarray(proba, dtype=np.float32)
        return out

    # -------------------------------------------------------------- state
    def _check_fitted_state(self):
        self._check_classes()
        names = self.modalities_
        if len(self.estimators_) != self.autocontext + 1 or len(
            self.stage_weights_
        ) != len(self.estimators_):
            raise state_error(
                self,
                f"{len(self.estimators_)} stages for autocontext={self.autocontext}",
            )
        per_stage = 1 if self.fusion == "feature" else len(names)
        for clfs, w in zip(self.estimators_, self.stage_weights_):
            if len(clfs) != per_stage:
                raise state_error(self, f"a stage holds {len(clfs)} classifiers")
            w = np.asarray(w, dtype=float)
            if w.shape != (len(names),) or not np.isfinite(w).all() or (w < 0).any():
                raise state_error(self, f"stage weights {w!r} are not valid")
        for name in names:
            width = self.n_features_.get(name)
            if not isinstance(width, numbers.Integral) or not 0 < width <= 1 << 16:
                raise state_error(self, f"n_features_[{name!r}]={width!r}")
            if self.scalers_ is not None:
                mean, scale = self.scalers_[name]
                if mean.shape != (width,) or scale.shape != (width,):
                    raise state_error(self, f"scaler of {name!r} has the wrong size")
            fill = self.fill_values_[name]
            if not (isinstance(fill, np.ndarray) and fill.shape == (width,)):
                raise state_error(self, f"fill values of {name!r} have the wrong size")
