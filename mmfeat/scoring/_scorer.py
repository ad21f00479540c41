"""Score a table of records with a fitted model, never losing a row.

:class:`BatchScorer` wraps a fitted mmfeat model (late fusion, stacking, a
Pipeline with a fuser, or any classifier over a table) and turns one chunk of
records into one table of predictions plus one table of errors. It is the
unit of work of ``mmfeat score``, of :func:`score_file` on one machine or a
Dask cluster, and of ``map_partitions`` / ``mapInPandas`` on Dask and Spark
DataFrames.
"""

import copy
import hashlib
import io
import os

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.fusion._base import BaseModalityEnsemble
from mmfeat.fusion._fuser import MultimodalFuser
from mmfeat.fusion._modality import absent_items, select_columns
from mmfeat.utils._items import is_missing

__all__ = ["BatchScorer", "score_frame"]

ERROR_COLUMNS = ["row", "id", "column", "source", "reason"]

_PATH_MODULES = ("mmfeat.features.image", "mmfeat.features.audio", "mmfeat.io")


def _walk(obj, seen=None):
    """Every estimator inside ``obj`` (fitted attributes included), once."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, BaseEstimator):
        yield obj
        children = list(vars(obj).values())
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif isinstance(obj, dict):
        children = list(obj.values())
    else:
        return
    for child in children:
        yield from _walk(child, seen)


def _is_mmfeat(est):
    return type(est).__module__.startswith("mmfeat.")


def _unwrap(model):
    return getattr(model, "best_estimator_", model)


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
    model = _unwrap(model)
    if isinstance(model, BaseModalityEnsemble):
        fitted = getattr(model, "estimators_", [None] * len(model.estimators))
        return [
            (name, _as_list(cols), part)
            for (name, _, cols), part in zip(model.estimators, fitted)
        ]
    steps = getattr(model, "steps", None) or []
    for _, step in steps:
        if isinstance(step, MultimodalFuser) and hasattr(step, "transformers_"):
            out = []
            for name, part, cols in step.transformers_:
                if name == "remainder" or (isinstance(part, str) and part == "drop"):
                    continue
                out.append((name, _as_list(cols), part))
            return out
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [("X", [str(c) for c in names], None)]
    return [("X", None, None)]


def resolve_path(item, root):
    """``item`` joined to ``root`` when it is a relative path string."""
    if isinstance(item, str) and item and not os.path.isabs(item):
        return os.path.join(root, item)
    return item


def reads_files(part):
    """True when a fitted part reads image or audio files (path columns)."""
    return any(type(est).__module__.startswith(_PATH_MODULES) for est in _walk(part))


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        ``n_jobs`` set on every estimator inside the model. Batch scoring
        parallelises over chunks, so one thread per chunk avoids
        oversubscription; ``None`` keeps the model's own settings.

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
        self, model, *, on_error="missing", id_column=None, root=None, inner_n_jobs=1
    ):
        if on_error not in ("missing", "raise"):
            raise ParameterError(
                f"on_error must be 'missing' or 'raise'; got {on_error!r}"
            )
        self.on_error = on_error
        self.id_column = id_column
        self.root = None if root is None else os.fspath(root)
        self.inner_n_jobs = inner_n_jobs
        self._set_model(copy.deepcopy(model))

    # -- the model -------------------------------------------------------
    def _set_model(self, model):
        self.model_ = model
        inner = _unwrap(model)
        for est in _walk(model):
            if _is_mmfeat(est) and "on_error" in vars(est):
                est.on_error = self.on_error
            if self.inner_n_jobs is not None and "n_jobs" in vars(est):
                est.n_jobs = self.inner_n_jobs
            if isinstance(est, BaseModalityEnsemble):
                # rows with no usable modality are reported by the scorer
                est.all_missing = "prior"
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
        self.output_columns_ = [key, "predict"] + (
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
                    frame[col] = [self._resolve(v) for v in frame[col].tolist()]
        return frame, errors

    def _resolve(self, item):
        return resolve_path(item, self.root)

    def _collect(self, frame, start):
        """Errors the model's readers recorded, with rows of the chunk."""
        out = []
        for _, cols, part in self._parts:
            if part is None:
                continue
            label = _column_label(cols) if cols is not None else "?"
            rows = None
            if isinstance(_unwrap(self.model_), BaseModalityEnsemble):
                # the ensemble passes a modality only its present rows
                rows = np.flatnonzero(~absent_items(select_columns(frame, cols)))
            for est in _walk(part):
                for err in vars(est).get("errors_", None) or []:
                    r = int(err.row) if rows is None else int(rows[err.row])
                    out.append((start + r, label, err.source, err.reason))
        return out

    def _predict(self, frame):
        """Predictions, probabilities, and which modalities each row had.

        The last is a boolean (rows, modalities) array when the model can
        tell (fusion ensembles, fused blocks), else None.
        """
        model = self.model_
        if self._input_columns is not None:
            frame = frame[self._input_columns]
        inner = _unwrap(model)
        present = None
        if self._has_proba and hasattr(inner, "_proba_and_modalities"):
            proba, probas = inner._proba_and_modalities(frame)
            present = np.column_stack([~np.isnan(p[:, 0]) for p in probas])
        elif self._has_proba:
            proba = model.predict_proba(frame)
        else:
            return np.asarray(model.predict(frame)), None, self._block_presence()
        proba = np.asarray(proba, dtype=float)
        if present is None:
            present = self._block_presence()
        return self.classes_[np.argmax(proba, axis=1)], proba, present

    def _block_presence(self):
        """Rows each fused block had, from the fuser's last transform."""
        cols = []
        for _, _, part in self._parts:
            blocks = [e for e in _walk(part) if hasattr(e, "missing_rows_")]
            if not blocks or blocks[-1].missing_rows_ is None:
                return None
            cols.append(~np.asarray(blocks[-1].missing_rows_, dtype=bool))
        return np.column_stack(cols) if cols else None

    def _try(self, frame, start):
        for est in _walk(self.model_):
            if "errors_" in vars(est):
                est.errors_ = []
            if "missing_rows_" in vars(est):
                est.missing_rows_ = None
        pred, proba, present = self._predict(frame)
        errors = self._collect(frame, start)
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
        """Predict; on an unexpected failure, split the chunk to isolate rows."""
        try:
            return self._try(frame, start)
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
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
            half = n // 2
            a = self._score_robust(frame.iloc[:half], start, source)
            b = self._score_robust(
                frame.iloc[half:].reset_index(drop=True), start + half, source
            )
            return (
                np.concatenate([a[0], b[0]]),
                None if a[1] is None else np.vstack([a[1], b[1]]),
                a[2] + b[2],
                np.vstack([a[3], b[3]]),
            )
        # one row that breaks the model: drop one modality at a time
        reason = f"{type(failure).__name__}: {failure}"
        for k, (_, cols, _) in enumerate(self._parts):
            if not cols:
                continue
            masked = frame.copy()
            for c in cols:
                masked[c] = pd.Series([None], dtype=object)
            try:
                pred, proba, errs, present = self._try(masked, start)
            except (KeyboardInterrupt, SystemExit, MemoryError):
                raise
            except Exception:  # noqa: S112 - try the next modality
                continue
            present[:, k] = False
            return (
                pred,
                proba,
                errs + [(start, _column_label(cols), "model", reason)],
                present,
            )
        pred = np.full(1, None, dtype=object)
        proba = (
            None if not self._has_proba else np.full((1, len(self.classes_)), np.nan)
        )
        present = np.zeros((1, len(self._parts)), dtype=bool)
        return pred, proba, [(start, "*", "model", reason)], present

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
        out = {self.output_columns_[0]: ids, "predict": pred}
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
    model, frame, *, on_error="missing", id_column=None, root=None, return_errors=False
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

    Returns
    -------
    predictions : DataFrame
    errors : DataFrame
        Only when ``return_errors=True``.
    """
    scorer = BatchScorer(
        model, on_error=on_error, id_column=id_column, root=root, inner_n_jobs=None
    )
    predictions, errors = scorer.score(frame)
    return (predictions, errors) if return_errors else predictions
