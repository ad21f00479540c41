"""What the pixel and superpixel segmenters share: modalities, masks, rows.

A segmenter's ``X`` is a column of images, or a table with one column per
aligned modality (an RGB photo, a depth map, a precomputed feature map);
``y`` is one mask per row. This module turns both into rows the segmenters
walk one at a time (memory stays bounded by one image), checks that every
map of a row is aligned with its image, and reports refused rows through
mmfeat's item-error channel with the user's row numbers.
"""

import copy
import functools
import numbers
from contextlib import contextmanager, nullcontext

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils import check_random_state
from tqdm import tqdm

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.segmentation._io import read_mask
from mmfeat.utils._item_errors import (
    ItemError,
    capture_item_errors,
    report_item_errors,
)
from mmfeat.utils._items import as_item_list, is_missing, item_source
from mmfeat.utils._state import CheckedStateMixin, state_error
from mmfeat.utils._tags import with_item_tags

__all__ = [
    "BaseSegmenter",
    "label_dtype",
    "limit_threads",
    "proba_columns",
    "sample_pixels",
]

#: Rows whose feature maps are computed together (bounds memory: one chunk
#: of images is held at a time).
_CHUNK = 4


def limit_threads(method):
    """Run ``method`` with OpenMP/BLAS threads held to the estimator's ``n_jobs``.

    The default classifiers (gradient boosting) start OpenMP threads on every
    core; with ``n_jobs`` set, the segmenter keeps them to it (``None``
    leaves them alone): threads beyond the cores a user gave only compete,
    and on a busy machine OpenMP's waiting threads slow boosting tenfold.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from threadpoolctl import threadpool_limits

        from mmfeat.utils._dask import count_cores

        n_jobs = getattr(self, "n_jobs", None)
        limits = (
            nullcontext()
            if n_jobs is None
            else threadpool_limits(limits=count_cores(n_jobs)[0])
        )
        with limits:
            return method(self, *args, **kwargs)

    return wrapper


def proba_columns(clf, X, n_classes):
    """``clf.predict_proba(X)`` with one column per encoded class 0..K-1.

    A classifier fitted on a fold that lacked some classes has fewer
    columns; the missing classes get probability 0.
    """
    p = clf.predict_proba(X)
    classes = np.asarray(clf.classes_)
    if len(classes) == n_classes and (classes == np.arange(n_classes)).all():
        return p.astype(np.float32, copy=False)
    out = np.zeros((X.shape[0], n_classes), dtype=np.float32)
    out[:, classes.astype(np.intp)] = p
    return out


def label_dtype(classes):
    """The smallest unsigned dtype that holds every label in ``classes``."""
    top = int(np.max(classes)) if len(classes) else 0
    return np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.int32


def sample_pixels(mask, n_samples, *, balance, rng):
    """Flat indices of up to ``n_samples`` labelled pixels of ``mask``.

    ``balance=True`` draws the same number from each class present (as many
    as a class has when it has fewer), so a small foreground is not drowned
    by its background; ``False`` draws uniformly among labelled pixels.
    ``n_samples=None`` takes every labelled pixel.
    """
    flat = mask.ravel()
    labelled = np.flatnonzero(flat > 0)
    if n_samples is None or labelled.size <= n_samples and not balance:
        return labelled
    if not balance:
        return np.sort(rng.choice(labelled, size=n_samples, replace=False))
    labels = flat[labelled]
    present = np.unique(labels)
    per_class = max(1, n_samples // len(present))
    picked = []
    for lab in present:
        idx = labelled[labels == lab]
        if idx.size > per_class:
            idx = rng.choice(idx, size=per_class, replace=False)
        picked.append(idx)
    return np.sort(np.concatenate(picked))


class _Row:
    """One row's readable maps (by modality), its mask and its sources."""

    __slots__ = ("row", "maps", "sources", "mask", "shape")

    def __init__(self, row, maps, sources, mask=None):
        self.row = row
        self.maps = maps  # name -> (H, W, F) float32, or None when missing
        self.sources = sources  # name -> source string
        self.mask = mask
        present = [m for m in maps.values() if m is not None]
        self.shape = present[0].shape[:2] if present else None


class BaseSegmenter(CheckedStateMixin, BaseEstimator):
    """Base of mmfeat's segmenters: ``fit(X, masks)``, label images out.

    Subclasses define ``_default_features()`` (the transformer of a
    one-column ``X``) and use :meth:`_iter_rows` to walk the rows.
    """

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = True
        tags.target_tags.one_d_labels = False
        tags.non_deterministic = False
        return with_item_tags(tags, modality="image", reads_files=True, segmenter=True)

    # ------------------------------------------------- nested parameters
    @property
    def _modality_triples(self):
        f = self.features
        if isinstance(f, (list, tuple)) and all(
            isinstance(t, tuple) and len(t) == 3 for t in f
        ):
            return list(f)
        return None

    @property
    def _transformers(self):
        triples = self._modality_triples
        return [] if triples is None else [(n, t) for n, t, _ in triples]

    @_transformers.setter
    def _transformers(self, value):
        triples = self._modality_triples
        if triples is not None:
            self.features = [
                (name, trans, col) for (name, trans), (_, _, col) in zip(value, triples)
            ]

    def get_params(self, deep=True):
        """Get parameters, including each modality's (``<name>__<param>``)."""
        out = super().get_params(deep=deep)
        if deep:
            for name, trans in self._transformers:
                out[name] = trans
                if hasattr(trans, "get_params"):
                    for k, v in trans.get_params(deep=True).items():
                        out[f"{name}__{k}"] = v
        return out

    def set_params(self, **params):
        """Set parameters, including ``<modality>__<param>`` ones."""
        names = dict(self._transformers)
        own = {}
        nested = {}
        for key, value in params.items():
            head, _, rest = key.partition("__")
            if head in names and head not in self.get_params(deep=False):
                if rest:
                    nested.setdefault(head, {})[rest] = value
                else:
                    names[head] = value
                    nested.setdefault(head, {})
            else:
                own[key] = value
        super().set_params(**own)
        if nested:
            triples = self._modality_triples
            new = []
            for name, trans, col in triples:
                trans = names[name]
                if name in nested and nested[name]:
                    trans = trans.set_params(**nested[name])
                new.append((name, trans, col))
            self.features = new
        return self

    # ------------------------------------------------------------ modalities
    def _default_features(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _modalities(self):
        """``[(name, unfitted transformer, column or None)]`` from ``features``."""
        f = self.features
        if f is None:
            return [("image", self._default_features(), None)]
        triples = self._modality_triples
        if triples is None:
            if not (hasattr(f, "fit") and hasattr(f, "transform")):
                raise ParameterError(
                    "features must be None, a pixel-feature transformer (such as "
                    "PixelFeatures) or a list of (name, transformer, column) "
                    f"triples, one per modality; got {f!r}"
                )
            return [("image", f, None)]
        if not triples:
            raise ParameterError("features must name at least one modality")
        seen = set()
        for name, trans, col in triples:
            if not isinstance(name, str) or not name or "__" in name:
                raise ParameterError(
                    f"modality names must be non-empty strings without '__'; got "
                    f"{name!r}"
                )
            if name in seen:
                raise ParameterError(f"modality name {name!r} is given twice")
            seen.add(name)
            if not (hasattr(trans, "fit") and hasattr(trans, "transform")):
                raise ParameterError(
                    f"the transformer of modality {name!r} must have fit and "
                    f"transform; got {trans!r}"
                )
            if not isinstance(col, (str, numbers.Integral)):
                raise ParameterError(
                    f"the column of modality {name!r} must be one column name or "
                    f"position; got {col!r}"
                )
        return [(n, t, c) for n, t, c in triples]

    def _columns(self, X, modalities):
        """``{name: list of items}`` for every modality, rows aligned."""
        single = len(modalities) == 1 and modalities[0][2] is None
        if single:
            if isinstance(X, pd.DataFrame) and X.shape[1] != 1:
                raise ParameterError(
                    f"X is a table of {X.shape[1]} columns {list(X.columns)[:5]} "
                    "but features names no modality: pass features=[(name, "
                    "PixelFeatures(...), column), ...], one triple per aligned "
                    "modality, or one column of images"
                )
            return {modalities[0][0]: as_item_list(X, stack_ndim=3)}
        if not isinstance(X, pd.DataFrame):
            raise ParameterError(
                "features names modalities by column, so X must be a pandas "
                f"DataFrame with those columns; got {type(X).__name__}"
            )
        out = {}
        for name, _, col in modalities:
            if isinstance(col, str):
                if col not in X.columns:
                    raise ParameterError(
                        f"modality {name!r} reads column {col!r}, which X lacks; "
                        f"its columns are {list(X.columns)}"
                    )
                out[name] = X[col].tolist()
            else:
                if not 0 <= int(col) < X.shape[1]:
                    raise ParameterError(
                        f"modality {name!r} reads column {col}, but X has "
                        f"{X.shape[1]} columns"
                    )
                out[name] = X.iloc[:, int(col)].tolist()
        return out

    # ------------------------------------------------------------------ masks
    @staticmethod
    def _mask_list(y, n):
        if y is None:
            raise ParameterError(
                "y is required: one mask (label image, 0 = unlabelled) per row"
            )
        if isinstance(y, np.ndarray) and y.ndim == 3:
            masks = list(y)  # a stack (np.array of equal-size masks, any dtype)
        elif isinstance(y, np.ndarray) and y.dtype != object and y.ndim == 2 and n == 1:
            masks = [y]
        else:
            try:
                masks = as_item_list(y, stack_ndim=3, name="y")
            except ParameterError as exc:
                raise ParameterError(
                    f"y must be one mask per row (a list of label images or mask "
                    f"paths); {exc.args[0]}"
                ) from None
        if len(masks) != n:
            raise ParameterError(f"X has {n} rows but y has {len(masks)} masks")
        return masks

    # ------------------------------------------------------------------- rows
    def _fit_transformers(self, modalities, columns):
        """Fit each modality's transformer on its column (cheap: settings only)."""
        fitted = []
        for name, trans, _ in modalities:
            est = clone(trans).set_params(**self._runtime_params(trans))
            with _renumbered(name):
                est.fit(columns[name])
            fitted.append((name, est))
        return fitted

    def _fit_inputs(self, X, y):
        """What every ``fit`` starts from, checked.

        Returns the modality names, ``{name: items}``, the masks, the random
        state, one seed per row (pixel or region sampling) and the fitted
        transformers.
        """
        modalities = self._modalities()
        names = [n for n, _, _ in modalities]
        columns = self._columns(X, modalities)
        n_rows = len(columns[names[0]])
        masks = self._mask_list(y, n_rows)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, 2**31 - 1, size=n_rows)
        transformers = self._fit_transformers(modalities, columns)
        return names, columns, masks, rng, seeds, transformers

    def _predict_columns(self, X):
        """``{name: items}`` of ``X`` for the fitted modalities."""
        modalities = [(n, None, c) for (n, _, c) in self._modalities()]
        return self._columns(X, modalities)

    def _runtime_params(self, trans):
        """The segmenter's ``on_error`` (and ``n_jobs``, when set) for a part."""
        own = trans.get_params(deep=False) if hasattr(trans, "get_params") else {}
        out = {}
        if "on_error" in own:
            out["on_error"] = self.on_error
        if "n_jobs" in own and self.n_jobs is not None:
            out["n_jobs"] = self.n_jobs
        return out

    def _runtime_transformers(self):
        """The fitted transformers with today's ``on_error`` / ``n_jobs``.

        Shallow copies: a parameter changed after ``fit`` applies at predict
        time, and the fitted transformers themselves are not touched.
        """
        return [
            (name, copy.copy(t).set_params(**self._runtime_params(t)))
            for name, t in self.transformers_
        ]

    def _classifier(self, seed):
        """A fresh classifier: the user's clone, or the default boosting."""
        if self.classifier is None:
            return HistGradientBoostingClassifier(max_iter=200, random_state=seed)
        return clone(self.classifier)

    def _rows(self, transformers, columns, masks, desc, rows=None):
        """:meth:`_iter_rows` with a progress bar when ``verbose``."""
        it = self._iter_rows(transformers, columns, masks=masks, rows=rows)
        total = len(rows) if rows is not None else len(next(iter(columns.values())))
        return tqdm(
            it,
            total=total,
            desc=f"{type(self).__name__} {desc}",
            disable=not self.verbose,
            unit="image",
        )

    @staticmethod
    def _check_width(n_features, name, m, row):
        """Every row's features of a modality have the same channels."""
        width = int(m.shape[-1])
        if n_features.setdefault(name, width) != width:
            raise InputError(
                f"{name} features have {width} channels here but "
                f"{n_features[name]} in earlier rows: the feature transformer must "
                "give the same channels for every image",
                row=row.row,
                source=row.sources[name],
            )

    def _check_fitted_width(self, row):
        """A row's features have the channels the model was fitted on."""
        for name, m in row.maps.items():
            if m is not None and m.shape[-1] != self.n_features_[name]:
                raise InputError(
                    f"{name} features have {m.shape[-1]} channels but the "
                    f"model was fitted on {self.n_features_[name]}",
                    row=row.row,
                    source=row.sources[name],
                )

    def _check_classes(self):
        classes = self.classes_
        if not (
            isinstance(classes, np.ndarray)
            and classes.ndim == 1
            and classes.size >= 2
            and classes.dtype.kind in "iu"
            and (classes >= 1).all()
            and (np.diff(classes) > 0).all()
            and classes.max() <= 65535
        ):
            raise state_error(self, f"classes_={classes!r} are not sorted labels >= 1")
        if list(dict(self.transformers_)) != list(self.modalities_):
            raise state_error(self, "transformers_ do not match modalities_")

    def predict(self, X):
        """Label images, one (H, W) array of ``classes_`` values per row.

        Parameters
        ----------
        X : column of images, or DataFrame of modalities
            As in :meth:`fit`.

        Returns
        -------
        labels : ndarray of object, shape (n_rows,)
            ``None`` for rows that could not be read.
        """
        proba = self.predict_proba(X)
        classes = self.classes_.astype(label_dtype(self.classes_))
        out = np.empty(len(proba), dtype=object)
        for i, p in enumerate(proba):
            out[i] = None if p is None else classes[np.argmax(p, axis=2)]
        return out

    def _iter_rows(self, transformers, columns, *, masks=None, rows=None):
        """Yield a :class:`_Row` per row, features computed a chunk at a time.

        Rows whose every modality is missing or refused are yielded with no
        maps (the caller skips them in fit and gives ``None`` at predict);
        a modality whose map is not aligned with the row's other maps is an
        :class:`InputError` naming the row and the file, or a refused item
        with ``on_error="missing"``. With ``masks``, each row's mask is read
        and checked against the row's size.
        """
        names = [n for n, _ in transformers]
        n = len(next(iter(columns.values())))
        rows = range(n) if rows is None else rows
        rows = list(rows)
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            maps = {}
            for name, trans in transformers:
                items = [columns[name][r] for r in chunk]
                with _renumbered(name, rows=chunk):
                    maps[name] = trans.transform(items)
            for j, r in enumerate(chunk):
                row_maps = {name: maps[name][j] for name in names}
                sources = {
                    name: item_source(columns[name][r])
                    if not is_missing(columns[name][r])
                    else "missing"
                    for name in names
                }
                row_maps = self._aligned(r, row_maps, sources)
                mask = None
                if masks is not None:
                    mask = self._row_mask(r, masks[r], row_maps, sources)
                    if mask is None:
                        row_maps = {name: None for name in names}
                yield _Row(r, row_maps, sources, mask)

    def _refuse(self, err):
        if self.on_error == "raise":
            raise InputError(err.reason, row=err.row, source=err.source)
        report_item_errors([err])

    def _aligned(self, row, maps, sources):
        ref = None
        for name, m in maps.items():
            if m is None:
                continue
            if ref is None:
                ref = (name, m.shape[:2])
                continue
            if m.shape[:2] != ref[1]:
                self._refuse(
                    ItemError(
                        row,
                        sources[name],
                        f"{name} map is {m.shape[0]}x{m.shape[1]} but the row's "
                        f"{ref[0]} is {ref[1][0]}x{ref[1][1]}: the modalities of "
                        "a row must be aligned pixel for pixel",
                        name,
                    )
                )
                maps = dict(maps)
                maps[name] = None
        return maps

    def _row_mask(self, row, item, maps, sources):
        present = [m for m in maps.values() if m is not None]
        if not present:
            return None  # already reported by the transformers
        if is_missing(item):
            self._refuse(ItemError(row, "missing", "the row has no mask", "mask"))
            return None
        source = item_source(item)
        try:
            mask = read_mask(item)
        except InputError as exc:
            self._refuse(ItemError(row, exc.source, exc.reason, "mask"))
            return None
        shape = present[0].shape[:2]
        if mask.shape != shape:
            where = next(s for n, s in sources.items() if maps[n] is not None)
            self._refuse(
                ItemError(
                    row,
                    source,
                    f"mask is {mask.shape[0]}x{mask.shape[1]} but its image "
                    f"({where}) is {shape[0]}x{shape[1]}; resize the image to the "
                    "mask (never the mask: that invents labels at the edges)",
                    "mask",
                )
            )
            return None
        if not (mask > 0).any():
            self._refuse(
                ItemError(
                    row,
                    source,
                    "mask has no labelled pixel (every value is 0 = unlabelled)",
                    "mask",
                )
            )
            return None
        return mask

    # ---------------------------------------------------------------- scoring
    def score(self, X, y):
        """Mean intersection over union of ``predict(X)`` against ``y``.

        Counted over every labelled pixel of every image (0 = unlabelled is
        not scored), as :func:`mmfeat.evaluation.mean_iou`; rows that could
        not be predicted count as wrong everywhere.
        """
        from mmfeat.evaluation import mean_iou

        pred = self.predict(X)
        masks = []
        for i, m in enumerate(self._mask_list(y, len(pred))):
            try:
                masks.append(read_mask(m))
            except InputError as exc:
                raise exc.with_row(i) from None
        pred = [np.zeros_like(t) if p is None else p for p, t in zip(pred, masks)]
        # the model's classes and the truth's: a class it never predicts
        # scores 0, and the unreadable rows' 0 (never a class) counts as a
        # miss, not as a class
        truth = np.unique(np.concatenate([np.unique(m) for m in masks]))
        labels = np.union1d(self.classes_, truth[truth > 0])
        return float(mean_iou(masks, pred, labels=labels))


@contextmanager
def _renumbered(modality, *, rows=None):
    """Re-report a part's item errors with the caller's rows and modality.

    An :class:`InputError` the part raises names its own row within the
    chunk; it is raised again naming the caller's row.
    """
    try:
        with capture_item_errors() as log:
            yield
    except InputError as exc:
        if rows is not None and exc.row is not None and 0 <= exc.row < len(rows):
            raise exc.with_row(rows[exc.row]) from None
        raise
    errors = [e._replace(modality=e.modality or modality) for e in log]
    report_item_errors(errors, rows=rows)
