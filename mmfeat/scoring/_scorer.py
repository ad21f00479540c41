"""Score a table of records with a fitted model, never losing a row.

:class:`BatchScorer` wraps a fitted mmfeat model (late fusion, stacking, a
Pipeline with a fuser, or any classifier over a table) and turns one chunk of
records into one table of predictions plus one table of errors. It is the
unit of work of ``mmfeat score``, of :func:`score_file` on one machine or a
Dask cluster, and of ``map_partitions`` / ``mapInPandas`` on Dask and Spark
DataFrames.
"""

import copy
import gc
import hashlib
import io
import os

import joblib
import numpy as np
import pandas as pd

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.fusion import (
    get_modalities,
    is_modality_ensemble,
    predict_with_presence,
    unwrap_model,
)
from mmfeat.scoring._paths import resolve_paths
from mmfeat.utils._dask import effective_count
from mmfeat.utils._item_errors import capture_item_errors
from mmfeat.utils._items import is_missing
from mmfeat.utils._tags import get_item_tags

__all__ = ["BatchScorer", "cap_resources", "score_frame"]

ERROR_COLUMNS = ["row", "id", "column", "source", "reason"]

# parameters with which a model file would choose its own threads/processes
RESOURCE_PARAMS = ("n_jobs", "num_workers")

# public fitted attributes under which composites keep the parts that run
_FITTED_PARTS = (
    "best_estimator_",
    "estimators_",
    "final_estimator_",
    "column_transformer_",
    "transformers_",
    "estimator_",
    "calibrator_",
    "calibrated_classifiers_",
    "transformer_",
    "classifiers_",
    "captioner_",
    "attributes_",
)


def _estimators_in(value):
    """Estimators held in a parameter or fitted attribute's value."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        return [value]
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            # (name, est) and (name, est, columns) entries of steps/transformers
            if isinstance(v, tuple) and len(v) in (2, 3) and isinstance(v[0], str):
                v = v[1]
            if hasattr(v, "get_params") and not isinstance(v, type):
                out.append(v)
            elif hasattr(v, "estimator") and hasattr(v.estimator, "get_params"):
                out.append(v.estimator)  # CalibratedClassifierCV's fitted parts
            elif isinstance(v, list):
                out.extend(_estimators_in(v))  # per stage: a segmenter's stages
        return out
    return []


def fitted_parts(model):
    """``model`` and every estimator it holds, through public API only.

    Children are found in ``get_params(deep=False)`` values (pipeline steps,
    modality and block templates) and in the public fitted attributes that
    composites run at predict time (``estimators_``, ``transformers_``,
    ``final_estimator_``, ``best_estimator_`` ...); ``vars()`` is not read.
    """
    seen = set()
    todo = [model]
    while todo:
        est = todo.pop()
        if id(est) in seen:
            continue
        seen.add(id(est))
        yield est
        try:
            params = est.get_params(deep=False)
        except Exception:  # noqa: BLE001 - a part that cannot list its params
            params = {}
        children = []
        for value in params.values():
            children.extend(_estimators_in(value))
        for name in _FITTED_PARTS:
            try:
                value = getattr(est, name, None)
            except Exception:  # noqa: BLE001 - a property of an unfitted part
                value = None
            if value is not None:
                children.extend(_estimators_in(value))
        todo.extend(reversed(children))


def _set_own_params(model, values, *, only=None):
    """``set_params`` every part of ``model`` that has one of ``values``' keys.

    ``values`` maps a parameter name to a function of its current value that
    returns the new one. Returns ``[(part, name, old, new)]`` for each change.
    """
    changed = []
    for est in fitted_parts(model):
        if only is not None and not only(est):
            continue
        try:
            own = est.get_params(deep=False)
        except Exception:  # noqa: BLE001
            continue
        update = {}
        for name, new_value in values.items():
            if name in own:
                new = new_value(own[name])
                if new != own[name]:
                    update[name] = new
                    changed.append((type(est).__name__, name, own[name], new))
        if update:
            est.set_params(**update)
    return changed


def cap_resources(model, n_jobs=1):
    """Cap the threads and processes every part of a model may start.

    A saved model carries its own ``n_jobs`` (and ``num_workers`` for the
    CNN's readers): a file with ``n_jobs=20000`` would start that many
    threads per call. Every CLI path and :class:`BatchScorer` run the model
    through this function first. Only public API is used:
    ``get_params(deep=False)`` / ``set_params`` on each part (see
    :func:`fitted_parts`); nothing is assigned on nested estimators.

    Parameters
    ----------
    model : estimator
        The model, changed in place.
    n_jobs : int or None, default=1
        The most any ``n_jobs`` / ``num_workers`` may ask for (joblib
        counting: -1 is every core). A part asking for more (-1 included,
        when that is more cores) is set to it; one asking for less, or
        ``None`` (one, outside a joblib context), keeps its setting. ``None``
        caps at the machine's core count (:func:`joblib.cpu_count`: CPU
        affinity and container quotas counted).

    Returns
    -------
    changed : list of (str, str, object, object)
        ``(type of the part, parameter, old value, new value)`` for each
        parameter that changed.
    """
    cores = joblib.cpu_count()
    if n_jobs is None:
        cap = cores
    elif isinstance(n_jobs, (int, np.integer)) and not isinstance(n_jobs, bool):
        if n_jobs == 0:
            raise ParameterError("n_jobs must not be 0; give 1, a count, or -1 (all)")
        cap = int(n_jobs)
    else:
        raise ParameterError(f"n_jobs must be None or an int; got {n_jobs!r}")
    limit = effective_count(cap, cores)

    def new(old):
        if old is None:
            return old
        if isinstance(old, (int, np.integer)) and not isinstance(old, bool):
            if old != 0 and effective_count(int(old), cores) <= limit:
                return old
        return cap  # more than the cap, or not a count at all

    return _set_own_params(model, {name: new for name in RESOURCE_PARAMS})


def set_on_error(model, on_error):
    """Set ``on_error`` on every mmfeat reader and extractor in ``model``."""
    return _set_own_params(model, {"on_error": lambda old: on_error}, only=_is_mmfeat)


def _is_mmfeat(est):
    return type(est).__module__.startswith("mmfeat.")


def _as_list(cols):
    if isinstance(cols, (str, int, np.integer)):
        return [cols]
    if callable(cols):
        return None
    return list(cols)


def _column_label(cols):
    cols = _as_list(cols)
    if cols is None:
        return "?"
    return ",".join(map(str, cols))


def _modalities(model):
    """``[(name, columns, fitted part or None)]`` for the model's modalities."""
    return [(m.name, m.columns, m.estimator) for m in get_modalities(model)]


def reads_files(part):
    """True when a fitted part reads files (its tags say so: image and audio)."""
    return any(get_item_tags(est).reads_files for est in fitted_parts(part))


# fitted models already rebuilt in this process, by the hash of their bytes:
# a worker scoring many chunks unpickles the model once
_MODEL_CACHE = {}


class BatchScorer:
    """Turn chunks of records into predictions and an error report.

    Parameters
    ----------
    model : fitted estimator
        A fitted :class:`~mmfeat.fusion.LateFusionClassifier`,
        :class:`~mmfeat.fusion.ModalityStackingClassifier`, a Pipeline with a
        :class:`~mmfeat.fusion.MultimodalFuser`, or any fitted classifier
        whose input is a table. The scorer works on its own copy.
    on_error : {"missing", "raise"}, default="missing"
        ``"missing"``: a bad item (unreadable file, wrong type) is recorded
        in the error table and its row is scored from the modalities it
        still has; a row with no usable modality gets no prediction (null)
        and an error entry. ``"raise"``: the first bad item raises
        :class:`~mmfeat.InputError`.
    id_column : str, default=None
        Column written next to each prediction; ``None`` writes ``row``, the
        position of the record in the input.
    root : str or path, default=None
        Folder that relative paths in image and audio columns are relative
        to (``mmfeat score`` uses the records file's folder). ``None`` leaves
        paths as they are.
    inner_n_jobs : int or None, default=1
        The most threads or processes any part of the model may use (its
        ``n_jobs`` and ``num_workers``, capped with :func:`cap_resources`,
        whatever the model file says); also the BLAS and OpenCV threads of
        a chunk in :func:`~mmfeat.scoring.score_file`. Batch scoring
        parallelises over chunks, so one thread per chunk avoids
        oversubscription; ``None`` keeps the model's own settings, but never
        more than the machine's cores.
    confine_to_root : bool, default=False
        Read image and audio files only from under ``root``: each path,
        relative or absolute, is resolved with :func:`os.path.realpath`
        (symlinks followed) and must lie inside the resolved ``root``;
        one that does not is never opened, and becomes that item's error
        (or :class:`~mmfeat.InputError` with ``on_error="raise"``). The
        reader is then given the resolved path. ``False`` (the default)
        reads any path the records name, absolute or with ``..``. Needs a
        ``root``.
    prediction_column : str, default="predict"
        Name of the prediction's column in the output (``mmfeat caption``
        writes ``caption``).

    Attributes
    ----------
    classes_ : ndarray or None
        The model's classes (``None`` when it has none).
    modalities_ : list of (str, list of str)
        Each modality and the input columns it reads.
    columns_ : list of str
        Input columns the model needs.
    output_columns_ : list of str
        Columns of the prediction table.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mmfeat.fusion import LateFusionClassifier
    >>> X = pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 0, 1, 0]})
    >>> model = LateFusionClassifier([("a", LogisticRegression(), ["a"]),
    ...                               ("b", LogisticRegression(), ["b"])],
    ...                              cv=2).fit(X, [0, 0, 1, 1])
    >>> scorer = BatchScorer(model)
    >>> scorer.output_columns_
    ['row', 'predict', 'proba_0', 'proba_1']
    >>> scorer(X)["predict"].tolist()
    [0, 0, 1, 1]
    """

    def __init__(
        self,
        model,
        *,
        on_error="missing",
        id_column=None,
        root=None,
        inner_n_jobs=1,
        confine_to_root=False,
        prediction_column="predict",
    ):
        if on_error not in ("missing", "raise"):
            raise ParameterError(
                f"on_error must be 'missing' or 'raise'; got {on_error!r}"
            )
        if not isinstance(confine_to_root, (bool, np.bool_)):
            raise ParameterError(
                f"confine_to_root must be True or False; got {confine_to_root!r}"
            )
        if confine_to_root and root is None:
            raise ParameterError(
                "confine_to_root=True needs a root: give root= (mmfeat score "
                "uses the records file's folder, or --root)"
            )
        if inner_n_jobs is not None and (
            isinstance(inner_n_jobs, bool)
            or not isinstance(inner_n_jobs, (int, np.integer))
            or inner_n_jobs == 0
        ):
            raise ParameterError(
                "inner_n_jobs must be None or a non-zero int (1: one thread "
                f"per chunk; -1: all cores); got {inner_n_jobs!r}"
            )
        self.on_error = on_error
        self.id_column = id_column
        self.root = None if root is None else os.fspath(root)
        self.inner_n_jobs = inner_n_jobs
        self.confine_to_root = bool(confine_to_root)
        key = "row" if id_column is None else id_column
        if (
            not isinstance(prediction_column, str)
            or not prediction_column
            or prediction_column == key
            or prediction_column.startswith("proba_")
        ):
            raise ParameterError(
                "prediction_column must be a non-empty name other than the id "
                f"column and proba_*; got {prediction_column!r}"
            )
        self.prediction_column = prediction_column
        self._set_model(copy.deepcopy(model))

    # -- the model -------------------------------------------------------
    def _set_model(self, model):
        self.model_ = model
        inner = unwrap_model(model)
        cap_resources(model, self.inner_n_jobs)
        set_on_error(model, self.on_error)
        # rows with no usable modality are reported by the scorer
        _set_own_params(
            model,
            {"all_missing": lambda old: "prior"},
            only=lambda est: is_modality_ensemble(est),
        )
        if get_item_tags(inner).target is not None:
            # a captioner's classes_ (per attribute slot, or tags) are not
            # the classes of its predictions: those are texts
            self.classes_ = None
        else:
            self.classes_ = getattr(inner, "classes_", getattr(model, "classes_", None))
        self._has_proba = hasattr(model, "predict_proba") and self.classes_ is not None
        mods = _modalities(model)
        self._parts = mods
        self.modalities_ = [(name, cols) for name, cols, _ in mods]
        cols = []
        for _, mcols, _ in mods:
            for c in mcols or []:
                if c not in cols:
                    cols.append(c)
        names = getattr(inner, "feature_names_in_", None)
        # the model's input table, in the order it was fitted with
        self._input_columns = None if names is None else [str(c) for c in names]
        for c in self._input_columns or []:
            if c not in cols:
                cols.append(c)
        self.columns_ = cols
        self.path_columns_ = self._find_path_columns(mods)
        key = self.id_column if self.id_column is not None else "row"
        self.output_columns_ = [key, self.prediction_column] + (
            [f"proba_{c}" for c in self.classes_] if self._has_proba else []
        )

    @staticmethod
    def _find_path_columns(mods):
        out = []
        for _, cols, part in mods:
            if part is None or cols is None:
                continue
            if reads_files(part):
                out.extend(c for c in cols if c not in out)
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        blob = state.pop("_blob", None)
        if blob is None:
            buf = io.BytesIO()
            joblib.dump(self.model_, buf)
            blob = buf.getvalue()
            self._blob = blob
        state["_blob"] = blob
        state["_blob_key"] = hashlib.sha256(blob).hexdigest()
        for name in ("model_", "_parts"):
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        blob = state.pop("_blob")
        key = state.pop("_blob_key")
        self.__dict__.update(state)
        self._blob = blob
        cached = _MODEL_CACHE.get(key)
        if cached is None:
            # the bytes come from this scorer's own __getstate__ (a model the
            # caller already loaded and trusted), not from a file
            cached = joblib.load(io.BytesIO(blob))
            _MODEL_CACHE.clear()
            _MODEL_CACHE[key] = cached
        self.model_ = cached
        self._parts = _modalities(cached)

    # -- one chunk -------------------------------------------------------
    def prepare(self, frame, *, start=0, source="input"):
        """Check and complete one chunk of records; return it with its errors.

        Missing model columns are added as missing values (each row gets an
        error entry, or :class:`~mmfeat.InputError` with ``on_error="raise"``);
        relative paths in image and audio columns are joined to ``root``.
        """
        frame = frame.reset_index(drop=True)
        errors = []
        absent = [c for c in self.columns_ if c not in frame.columns]
        if absent and self.on_error == "raise":
            raise InputError(
                f"the input has no column(s) {absent}; the model reads {self.columns_}",
                source=source,
            )
        if absent:
            frame = frame.copy()
            for col in absent:
                frame[col] = None
                errors.extend(
                    (start + i, col, source, f"column {col!r} is not in the input")
                    for i in range(len(frame))
                )
        if self.root is not None:
            frame = frame.copy() if not absent else frame
            for col in self.path_columns_:
                if col in frame.columns and col not in absent:
                    frame[col] = self._resolve_column(
                        frame[col].tolist(), col, start, errors
                    )
        return frame, errors

    def _resolve_column(self, values, col, start, errors):
        """Paths joined to ``root``; with ``confine_to_root``, checked too."""
        paths, refused = resolve_paths(values, self.root, confine=self.confine_to_root)
        if refused and self.on_error == "raise":
            i, exc = refused[0]
            raise exc.with_row(start + i) from None
        errors.extend((start + i, col, exc.source, exc.reason) for i, exc in refused)
        return paths

    def _label(self, modality):
        """Error-table column label of the modality an item error names."""
        labels = {
            name: (_column_label(cols) if cols is not None else "?")
            for name, cols, _ in self._parts
        }
        if modality is not None:
            top = modality.split("__", 1)[0]
            if top in labels:
                return labels[top]
        if len(labels) == 1:
            return next(iter(labels.values()))
        return "?"

    def _predict(self, frame):
        """Predictions, probabilities, and which modalities each row had.

        The last is a boolean (rows, modalities) array when the model can
        tell (fusion ensembles, fused blocks), else None.
        """
        if self._input_columns is not None:
            frame = frame[self._input_columns]
        out, presence = predict_with_presence(self.model_, frame)
        if presence is not None:
            presence = presence.to_numpy(dtype=bool, copy=True)
        if not self._has_proba:
            return np.asarray(out), None, presence
        proba = np.asarray(out, dtype=float)
        return self.classes_[np.argmax(proba, axis=1)], proba, presence

    def _try(self, frame, start):
        # the model's readers report refused items here, from any worker
        with capture_item_errors() as log:
            pred, proba, present = self._predict(frame)
        errors = [
            (start + int(e.row), self._label(e.modality), e.source, e.reason)
            for e in log
        ]
        if present is None or present.shape != (len(frame), len(self._parts)):
            present = self._cell_presence(frame, errors, start)
        return pred, proba, errors, present

    def _cell_presence(self, frame, errors, start):
        """Modalities of each row judged from its cells and the errors."""
        n = len(frame)
        out = np.ones((n, len(self._parts)), dtype=bool)
        for k, (_, cols, _) in enumerate(self._parts):
            if cols is None:
                continue
            for c in cols:
                vals = frame[c].tolist()
                out[:, k] &= ~np.fromiter((is_missing(v) for v in vals), bool, n)
            label = _column_label(cols)
            for row, col, _, _ in errors:
                if col == label or col in map(str, cols):
                    out[row - start, k] = False
        return out

    def _score_robust(self, frame, start, source):
        """Predict; on a failure, split the chunk to isolate the rows at fault.

        A record that makes the model fail (an exception that is not an
        :class:`~mmfeat.InputError` its readers handled, or a
        ``MemoryError``: one decompressed image too large) is found by
        halving the chunk, so the other rows are scored; that record is then
        scored without the modality at fault, or gets no prediction, and the
        failure is its error entry. When every row of a chunk runs out of
        memory the machine, not a record, is short of memory: that raises
        ``MemoryError``. ``KeyboardInterrupt`` and ``SystemExit`` propagate.
        """
        result = self._isolate(frame, start, source)
        n = len(frame)
        if n > 1 and result[4] == n:
            raise MemoryError(
                f"out of memory on every one of the {n} records "
                f"{start}..{start + n - 1} of {source}: the machine is short of "
                "memory, not one record; lower the chunk size (--chunk-size) "
                "or the workers (--n-jobs) and resume (--resume)"
            )
        return result[:4]

    def _isolate(self, frame, start, source):
        """``_try`` with failures isolated; the 5th item counts OOM rows."""
        try:
            return (*self._try(frame, start), 0)
        except (KeyboardInterrupt, SystemExit):
            raise
        except MemoryError as exc:
            failure = exc
            gc.collect()  # what the failed attempt held, before the retries
        except Exception as exc:
            if self.on_error == "raise":
                if isinstance(exc, InputError) and exc.row is not None:
                    raise InputError(
                        f"{exc.reason} (in the chunk of rows {start}.."
                        f"{start + len(frame) - 1} of {source})",
                        row=start + exc.row,
                        source=exc.source,
                    ) from exc
                raise
            failure = exc
        n = len(frame)
        if n > 1:
            # halving: a bad row costs log2(chunk size) retries, not one each
            half = n // 2
            a = self._isolate(frame.iloc[:half], start, source)
            b = self._isolate(
                frame.iloc[half:].reset_index(drop=True), start + half, source
            )
            return (
                np.concatenate([a[0], b[0]]),
                None if a[1] is None else np.vstack([a[1], b[1]]),
                a[2] + b[2],
                np.vstack([a[3], b[3]]),
                a[4] + b[4],
            )
        oom = isinstance(failure, MemoryError)
        if oom:
            reason = f"out of memory (MemoryError: {failure}) while scoring it"
        else:
            reason = f"{type(failure).__name__}: {failure}"
        # one row that breaks the model: drop one modality at a time
        for k, (_, cols, _) in enumerate(self._parts):
            if not cols:
                continue
            masked = frame.copy()
            for c in cols:
                masked[c] = pd.Series([None], dtype=object)
            try:
                pred, proba, errs, present = self._try(masked, start)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception:  # noqa: S112 - try the next modality
                continue
            where = self._cell_source(frame, cols)
            if oom and self.on_error == "raise":
                raise InputError(reason, row=start, source=where) from failure
            present[:, k] = False
            return (
                pred,
                proba,
                errs + [(start, _column_label(cols), where, reason)],
                present,
                0,
            )
        if oom and self.on_error == "raise":
            raise InputError(reason, row=start, source=source) from failure
        pred = np.full(1, None, dtype=object)
        proba = (
            None if not self._has_proba else np.full((1, len(self.classes_)), np.nan)
        )
        present = np.zeros((1, len(self._parts)), dtype=bool)
        return pred, proba, [(start, "*", "model", reason)], present, int(oom)

    def _cell_source(self, frame, cols):
        """The file of a one-row frame's modality, else ``"model"``."""
        for c in cols:
            if c in self.path_columns_ and c in frame.columns:
                value = frame[c].iat[0]
                if isinstance(value, (str, os.PathLike)):
                    return os.fspath(value)
        return "model"

    def _why(self, frame, errors, start, row):
        """Why each modality of ``row`` (chunk position) was not usable."""
        out = []
        for name, cols, _ in self._parts:
            label = _column_label(cols) if cols is not None else "?"
            names = {label, *map(str, cols or [])}
            reasons = [e[3] for e in errors if e[0] == start + row and e[1] in names]
            if reasons:
                out.append(f"{name}: {reasons[0]}")
            elif cols and all(is_missing(frame[c].iat[row]) for c in cols):
                out.append(f"{name}: missing")
            else:
                out.append(f"{name}: nothing usable in it")
        return "; ".join(out)

    def score(self, frame, *, start=0, source="input"):
        """Score one chunk of records.

        Parameters
        ----------
        frame : DataFrame
            Records; the model's columns (missing ones are reported).
        start : int, default=0
            Position of the chunk's first row in the whole input; rows in
            the output and the error table count from it.
        source : str, default="input"
            Name of the input, for error messages.

        Returns
        -------
        predictions : DataFrame
            One row per input row, in order: the id (or ``row``),
            ``predict`` (null where no modality was usable) and
            ``proba_<class>`` columns.
        errors : DataFrame
            Columns ``row``, ``id``, ``column``, ``source``, ``reason``; one
            row per bad item, and one per record that got no prediction.
        """
        if not isinstance(frame, pd.DataFrame):
            raise ParameterError(
                f"records must be a pandas DataFrame; got {type(frame).__name__}"
            )
        frame, errors = self.prepare(frame, start=start, source=source)
        n = len(frame)
        if n:
            pred, proba, found, present = self._score_robust(frame, start, source)
            errors = errors + found
        else:
            pred = np.empty(0, dtype=object)
            proba = None if not self._has_proba else np.empty((0, len(self.classes_)))
            present = np.ones((0, len(self._parts)), dtype=bool)
        errors = list(dict.fromkeys(errors))  # one entry per item and reason
        dead = ~present.any(axis=1)
        pred = pd.array(list(pred), dtype=self._predict_dtype())
        if dead.any():
            pred[dead] = pd.NA
            if proba is not None:
                proba = proba.copy()
                proba[dead] = np.nan
            reported = {e[0] for e in errors if e[1] == "*"}
            errors.extend(
                (
                    start + int(r),
                    "*",
                    "record",
                    f"no usable modality ({self._why(frame, errors, start, r)})",
                )
                for r in np.flatnonzero(dead)
                if start + int(r) not in reported
            )
        ids = self._ids(frame, start)
        out = {self.output_columns_[0]: ids, self.output_columns_[1]: pred}
        if proba is not None:
            for j, name in enumerate(self.output_columns_[2:]):
                out[name] = proba[:, j]
        predictions = pd.DataFrame(out, columns=self.output_columns_)
        err = pd.DataFrame(errors, columns=["row", "column", "source", "reason"])
        err = err.sort_values("row", kind="stable").reset_index(drop=True)
        id_map = dict(zip(range(start, start + n), ids))
        err.insert(1, "id", [id_map.get(r) for r in err["row"]])
        err["id"] = err["id"].astype(object)
        return predictions, err

    def __call__(self, frame):
        """Score ``frame`` and return only the predictions (for map_partitions)."""
        return self.score(frame)[0]

    def _ids(self, frame, start):
        if self.id_column is None:
            return np.arange(start, start + len(frame), dtype=np.int64)
        if self.id_column not in frame.columns:
            raise InputError(
                f"the id column {self.id_column!r} is not in the input "
                f"(columns: {list(frame.columns)[:10]})",
                source="input",
            )
        return frame[self.id_column].to_numpy(dtype=object)

    def _predict_dtype(self):
        classes = self.classes_
        if classes is None:
            return object
        kind = np.asarray(classes).dtype.kind
        return {
            "i": "Int64",
            "u": "Int64",
            "f": "Float64",
            "b": "boolean",
            "U": "string",
            "S": "string",
        }.get(kind, object)

    @property
    def meta(self):
        """An empty prediction table with the output's columns and dtypes.

        Pass it as ``meta=`` to ``dask.dataframe.map_partitions``.
        """
        return self.score(
            pd.DataFrame(
                {
                    c: pd.Series([], dtype=object)
                    for c in self.columns_
                    + ([self.id_column] if self.id_column else [])
                }
            )
        )[0]


def score_frame(
    model,
    frame,
    *,
    on_error="missing",
    id_column=None,
    root=None,
    return_errors=False,
    confine_to_root=False,
):
    """Score a table of records with a fitted model; one prediction per row.

    A convenience around :class:`BatchScorer` for one DataFrame (a pandas
    table, or one partition of a Dask or Spark DataFrame).

    Parameters
    ----------
    model : fitted estimator
        See :class:`BatchScorer`.
    frame : DataFrame
        The records.
    on_error : {"missing", "raise"}, default="missing"
        See :class:`BatchScorer`.
    id_column : str, default=None
        Column to copy next to each prediction (else ``row``).
    root : str or path, default=None
        Folder relative image/audio paths are relative to.
    return_errors : bool, default=False
        Also return the error table.
    confine_to_root : bool, default=False
        Read image and audio files only from under ``root`` (see
        :class:`BatchScorer`).

    Returns
    -------
    predictions : DataFrame
    errors : DataFrame
        Only when ``return_errors=True``.
    """
    scorer = BatchScorer(
        model,
        on_error=on_error,
        id_column=id_column,
        root=root,
        inner_n_jobs=None,
        confine_to_root=confine_to_root,
    )
    predictions, errors = scorer.score(frame)
    return (predictions, errors) if return_errors else predictions
