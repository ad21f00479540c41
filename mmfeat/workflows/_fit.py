"""fit_file: a multimodal model fitted on a records file, evaluated, saved."""

import contextlib
import os
import time

import numpy as np

from mmfeat.exceptions import InputError, MmfeatError, ParameterError
from mmfeat.utils._dask import count_cores, single_threaded
from mmfeat.utils._item_errors import capture_item_errors
from mmfeat.workflows._common import logger, rows_text

__all__ = ["fit_file"]

_KINDS = ("image", "text", "audio")
_PATH_KINDS = ("image", "audio")


def _check_columns(columns):
    if not isinstance(columns, dict) or not columns:
        raise ParameterError(
            "columns must map at least one of 'image', 'text', 'audio' to a "
            f"column of the records; got {columns!r}"
        )
    unknown = sorted(set(columns) - set(_KINDS))
    if unknown:
        raise ParameterError(
            f"unknown modality kind(s) {unknown} in columns; use 'image', 'text', "
            "'audio'"
        )
    for kind, col in columns.items():
        if not isinstance(col, str) or not col:
            raise ParameterError(
                f"columns[{kind!r}] must be a column name; got {col!r}"
            )
    return dict(columns)


def _check_test_size(test_size):
    if (
        isinstance(test_size, bool)
        or not isinstance(test_size, (int, float))
        or not 0 <= test_size < 1
    ):
        raise ParameterError(
            f"test_size must be a share in [0, 1) (0: no held-out report); got "
            f"{test_size!r}"
        )
    return float(test_size)


def _read(records, columns, label_column):
    """The records (checked as batch scoring reads them), with their columns."""
    from mmfeat.scoring import read_records

    frame = read_records(records, text_columns=list(columns.values()))
    labels = [] if label_column is None else [label_column]
    needed = list(dict.fromkeys([*columns.values(), *labels]))
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise InputError(
            f"no column(s) {absent} in the records (columns: "
            f"{list(frame.columns)[:12]})",
            source=os.fspath(records),
        )
    if len(frame) == 0:
        raise InputError("the records file has no rows", source=os.fspath(records))
    return frame


def _leave_out(frame, keep, why, notes):
    """``frame[keep]``, with a note naming the rows left out (file positions)."""
    rows = frame.index[~keep].tolist()
    if rows:
        notes.append(f"left out {len(rows)} record(s) {why} (rows {rows_text(rows)})")
        logger.warning(notes[-1])
    return frame[keep], rows


def _bad_items(log, part, path_rows, columns_of):
    """``[(row, column, source, reason)]`` of ``log``, rows as file positions.

    A bad file is the fault of every record that names it; an error that
    names no known file is placed by its row in ``part``.
    """
    out = []
    for err in log:
        top = None if err.modality is None else err.modality.split("__", 1)[0]
        column = columns_of.get(top, columns_of.get(None, "?"))
        rows = path_rows.get(err.source)
        if rows is None and 0 <= err.row < len(part):
            rows = [part.index[err.row]]
        for row in rows or []:
            out.append((int(row), column, str(err.source), str(err.reason)))
    return out


@contextlib.contextmanager
def _prior_for_empty_rows(model):
    """Score rows that have no usable modality with the class prior, for now.

    The held-out report must not stop at a row whose only image is
    unreadable; the saved model keeps its own ``all_missing``.
    """
    from mmfeat.fusion import unwrap_model

    inner = unwrap_model(model)
    if "all_missing" not in inner.get_params(deep=False):
        yield
        return
    before = inner.get_params(deep=False).get("all_missing")
    inner.set_params(all_missing="prior")
    try:
        yield
    finally:
        inner.set_params(all_missing=before)


def _report(model, X, y):
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    from mmfeat.evaluation import fusion_report
    from mmfeat.fusion import is_fusion_model

    if is_fusion_model(model):
        return fusion_report(model, X, y)
    import pandas as pd

    pred = model.predict(X)
    row = {
        "accuracy": accuracy_score(y, pred),
        "macro_recall": recall_score(y, pred, average="macro", zero_division=0),
        "macro_f1": f1_score(y, pred, average="macro", zero_division=0),
        "coverage": 1.0,
        "how": "fused",
    }
    report = pd.DataFrame([row], index=["fused"])
    report.index.name = "modality"
    return report


def _unusable_rows(X_part, bad):
    """File positions of rows of ``X_part`` with no modality left to use."""
    bad_cells = {(row, col) for row, col, _, _ in bad}
    out = []
    for row in X_part.index:
        usable = False
        for col in X_part.columns:
            value = X_part.at[row, col]
            missing = value is None or (isinstance(value, float) and value != value)
            if not missing and (row, col) not in bad_cells:
                usable = True
                break
        if not usable:
            out.append(int(row))
    return out


def fit_file(
    records,
    output=None,
    *,
    columns,
    label_column,
    model=None,
    fusion="late",
    classifier="logistic",
    image_features=("hog", "color"),
    text_features="auto",
    test_size=0.2,
    refit=True,
    root=None,
    confine_to_root=False,
    random_state=0,
    n_jobs=None,
):
    """Fit a multimodal model on a records file, report it on a held-out split, save.

    The records are a CSV or Parquet table with one column per modality
    (image and audio paths, relative to ``root`` or absolute; text) and a
    label column. Records without a label, and records with every modality
    cell empty, are left out (and named). A share ``test_size`` of the
    records is held out (stratified when every class has two records): the
    model is fitted on the rest and its :func:`~mmfeat.evaluation.fusion_report`
    computed on it; then, with ``refit``, it is fitted again on every record
    and saved with :func:`mmfeat.save`. This is ``mmfeat fit``.

    Row numbers in the notes and in ``bad_items`` are 0-based positions of
    the records in the file (row 0 is the first record after the header),
    as in the error reports of :func:`~mmfeat.scoring.score_file`.

    Parameters
    ----------
    records : str or path-like
        The ``.csv`` (UTF-8, header row) or ``.parquet`` table.
    output : str or path-like, default=None
        Where to save the model (a ``.skops`` file); checked before anything
        is read. ``None`` saves nothing.
    columns : dict of str to str
        Modality kind (``"image"``, ``"text"``, ``"audio"``) to its column.
    label_column : str
        The column of class labels.
    model : estimator, default=None
        The model to fit (a fusion model over ``columns``' columns); default
        :func:`~mmfeat.recipes.make_default_model` with ``fusion``,
        ``classifier``, ``image_features`` and ``text_features``, which are
        ignored when a model is given.
    fusion : {"early", "late", "stacking", "deep", "auto"}, default="late"
        See :func:`~mmfeat.recipes.make_default_model`; late fusion learns
        its weights.
    classifier : {"logistic", "linear-svm", "random-forest"}, default="logistic"
        See :func:`~mmfeat.recipes.make_default_model`.
    image_features : sequence of str, default=("hog", "color")
        Among ``"hog"``, ``"sift"``, ``"color"``, ``"cnn"``.
    text_features : {"auto", "word", "char"}, default="auto"
        Word or character n-grams; ``"auto"``: the text extractor chooses
        character n-grams when the training texts are in a script written
        without spaces (Chinese, Japanese, Thai), else word n-grams and
        character n-grams inside words.
    test_size : float in [0, 1), default=0.2
        Held-out share for the report; 0 fits on every record at once and
        reports nothing.
    refit : bool, default=True
        Fit again on every record after the report (else the saved model is
        the one fitted without the held-out records).
    root : str or path-like, default=None
        Folder relative paths are relative to; default the records file's.
    confine_to_root : bool, default=False
        Read image and audio files only from under ``root`` (links
        followed); a path that leaves it is not read and its record has no
        such modality (named in a note).
    random_state : int, default=0
        Seed of the split and of the default model.
    n_jobs : int, default=None
        Cores for parallel modality fits, extractors and BLAS/OpenCV threads
        (``None``: 1, -1: all), never more than the machine has.

    Returns
    -------
    result : dict
        ``model`` (fitted), ``path`` (the saved file or None), ``report``
        (DataFrame, or None with ``test_size=0``), ``n_held_out`` (records
        it was computed on), ``n_records`` (fitted on at the end, None
        without ``refit``), ``n_classes``, ``left_out`` (``{"no label": rows,
        "no modality": rows, "outside root": rows}``), ``bad_items``
        (``[(row, column, source, reason)]``: items that could not be read,
        whose modality the record then lacked), ``unscorable`` (held-out
        rows with no usable modality, scored with the class prior in the
        report), ``notes`` (every warning, as logged), ``trusted`` (the types
        the saved model needs in ``mmfeat.load(path, trusted=...)``: the
        file is loaded back once to find them; [] for most models) and
        ``seconds``.

    Raises
    ------
    ParameterError
        A bad argument, or an output that cannot be written (before any
        work).
    InputError
        The records are not a readable table, lack a column, have no rows,
        or fewer than 2 classes.

    See Also
    --------
    mmfeat.scoring.score_file : Score a records file with the saved model.
    mmfeat.recipes.make_default_model : The model fitted by default.

    Notes
    -----
    Progress is logged at INFO level and the notes at WARNING level on the
    ``mmfeat.workflows`` logger (the ``mmfeat`` command prints them). A note
    is made when the fused model scores below its best modality alone on the
    held-out records (accuracy): a modality that hurts is worth leaving out.

    Examples
    --------
    Fit on a table of product photos and titles, hold out 20%::

        from mmfeat.workflows import fit_file

        result = fit_file(
            "products.csv",
            "model.skops",
            columns={"image": "photo", "text": "title"},
            label_column="category",
        )
        print(result["report"])
    """
    from mmfeat import save
    from mmfeat.recipes import make_default_model
    from mmfeat.scoring import cap_resources, check_output_paths, resolve_paths

    t0 = time.perf_counter()
    records = os.fspath(records)
    if output is not None:
        # a model file that cannot be written is found before the fit
        check_output_paths({"records": records}, {"output": output})
    columns = _check_columns(columns)
    test_size = _check_test_size(test_size)
    notes = []
    n_cores, lowered = count_cores(n_jobs)
    if lowered:
        notes.append(
            f"{n_jobs} jobs is more than the {n_cores} cores here; using {n_cores}"
        )
        logger.warning(notes[-1])

    if model is None:
        # the parameters are checked before anything is read
        model = make_default_model(
            columns,
            fusion=fusion,
            classifier=classifier,
            image_features=image_features,
            text_features=text_features,
            random_state=random_state,
            n_jobs=n_cores,
        )
        described = f"{fusion} fusion, {classifier}"
    else:
        from sklearn.base import clone

        model = clone(model)
        described = type(model).__name__
    frame = _read(records, columns, label_column)
    left_out = {}
    frame, left_out["no label"] = _leave_out(
        frame, frame[label_column].notna().to_numpy(), "without a label", notes
    )
    if root is None:
        root = os.path.dirname(os.path.abspath(records))
    X = frame[list(dict.fromkeys(columns.values()))].copy()
    left_out["outside root"] = []
    for kind in _PATH_KINDS:
        col = columns.get(kind)
        if col is None:
            continue
        X[col], refused = resolve_paths(X[col].tolist(), root, confine=confine_to_root)
        if refused:
            rows = [int(X.index[i]) for i, _ in refused]
            left_out["outside root"].extend(rows)
            notes.append(
                f"{len(rows)} path(s) in {col!r} resolve outside the root "
                f"{os.fspath(root)!r} and were not read (paths are confined to "
                f"the root); those records have no {col!r} (rows {rows_text(rows)})"
            )
            logger.warning(notes[-1])
    present = X.notna().any(axis=1).to_numpy()
    X, left_out["no modality"] = _leave_out(
        X, present, "with every modality missing", notes
    )
    y = frame.loc[X.index, label_column].to_numpy()
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise InputError(
            f"the label column {label_column!r} needs at least 2 classes; got "
            f"{classes.tolist()}",
            source=records,
        )
    logger.info(
        f"{len(y)} records, {len(classes)} classes, modalities: "
        + ", ".join(f"{k}={c!r}" for k, c in columns.items())
        + f"; {described}"
    )
    path_rows = {}
    for kind in _PATH_KINDS:
        if kind in columns:
            for row, value in X[columns[kind]].items():
                if isinstance(value, str):
                    path_rows.setdefault(value, []).append(row)
    from mmfeat.fusion import get_modalities

    # the table column of each modality, for the messages
    columns_of = {
        m.name: m.columns[0]
        for m in get_modalities(model)
        if m.columns and len(m.columns) == 1
    }
    if len(columns) == 1:
        columns_of.setdefault(None, next(iter(columns.values())))
    bad, report, unscorable, n_held_out = [], None, [], 0
    cap_resources(model, n_cores)
    with single_threaded(n_cores):
        if test_size > 0:
            report, unscorable, bad, n_held_out = _held_out(
                model,
                X,
                y,
                counts,
                test_size,
                random_state,
                path_rows,
                columns_of,
                notes,
            )
        if test_size == 0 or refit:
            if test_size > 0:
                logger.info(f"refitting on all {len(y)} records")
            with capture_item_errors() as log:
                model.fit(X, y)
            bad.extend(_bad_items(log, X, path_rows, columns_of))
    text_analyzer = _text_analyzer(model)
    if text_analyzer is not None:
        name, part = text_analyzer
        ranges = [r for r in (part.word_ngram_range_, part.char_ngram_range_) if r]
        logger.info(
            f"text features of {name!r}: {part.analyzer_} n-grams "
            f"{' and '.join(map(str, ranges))} ({part.unspaced_share_:.0%} of the "
            "letters are in scripts written without spaces)"
        )
    bad = sorted(set(bad))
    if bad:
        rows = sorted({b[0] for b in bad})
        first = bad[0]
        notes.append(
            f"{len(bad)} item(s) could not be read and their records were fitted "
            f"without that modality (rows {rows_text(rows)}; row {first[0]}, "
            f"{first[1]!r}: {first[3]})"
        )
        logger.warning(notes[-1])
    path, trusted = None, []
    if output is not None:
        try:
            path = save(model, output)
        except OSError as exc:
            if isinstance(exc, MmfeatError) or exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror or str(exc), output) from None
        trusted = _needs_trust(path)
        if trusted:
            notes.append(
                f"the saved model holds type(s) mmfeat.load does not trust by "
                f"default: {', '.join(trusted)} (the decision trees of a random "
                "forest are one); score it with --trusted "
                f"{' '.join(trusted)} (in Python: mmfeat.load(path, "
                f"trusted={trusted!r}))"
            )
            logger.warning(notes[-1])
    return {
        "model": model,
        "path": path,
        "report": report,
        "n_held_out": n_held_out,
        "n_records": len(y) if (test_size == 0 or refit) else None,
        "n_classes": len(classes),
        "left_out": left_out,
        "bad_items": bad,
        "unscorable": unscorable,
        "notes": notes,
        "trusted": trusted,
        "seconds": time.perf_counter() - t0,
    }


def _text_analyzer(model):
    """``(modality, fitted TfidfExtractor)`` of the model's text, or None."""
    from mmfeat.fusion import get_modalities

    for m in get_modalities(model):
        steps = getattr(m.estimator, "steps", None)
        for part in [s for _, s in steps] if steps else [m.estimator]:
            if hasattr(part, "analyzer_") and hasattr(part, "unspaced_share_"):
                return m.name, part
    return None


def _needs_trust(path):
    """The types ``mmfeat.load(path)`` refuses, [] when it loads the file.

    Every saved model is loaded back once, so a model that needs
    ``trusted=`` is found at fit time, not when it is first scored.
    """
    from mmfeat import load
    from mmfeat.exceptions import UntrustedModelError

    try:
        load(path)
    except UntrustedModelError as exc:
        if not exc.types:
            raise
        return list(exc.types)
    return []


def _held_out(
    model, X, y, counts, test_size, random_state, path_rows, columns_of, notes
):
    """Fit on the training split, report on the rest.

    Returns ``(report, unscorable rows, bad items, held-out records)``.
    """
    from sklearn.model_selection import train_test_split

    stratify = y if counts.min() >= 2 else None
    if stratify is None:
        notes.append(
            "some classes have a single record: the held-out split is not stratified"
        )
        logger.warning(notes[-1])
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_size, stratify=stratify, random_state=random_state
    )
    logger.info(f"fitting on {len(y_tr)} records, {len(y_te)} held out")
    with capture_item_errors() as log:
        model.fit(X_tr, y_tr)
    bad = _bad_items(log, X_tr, path_rows, columns_of)
    with capture_item_errors() as log, _prior_for_empty_rows(model):
        report = _report(model, X_te, y_te)
    test_bad = _bad_items(log, X_te, path_rows, columns_of)
    bad.extend(test_bad)
    unscorable = _unusable_rows(X_te, test_bad)
    if unscorable:
        notes.append(
            f"{len(unscorable)} held-out record(s) have no readable modality (rows "
            f"{rows_text(unscorable)}); the report scores them as the model scores "
            "such records: the training class prior (late fusion, stacking) or "
            "imputed features (early fusion). mmfeat score lists them in its "
            "error report"
        )
        logger.warning(notes[-1])
    singles = report.drop(index="fused", errors="ignore")
    if len(singles) > 1 and "fused" in report.index:
        best = singles["accuracy"].idxmax()
        fused, alone = report.loc["fused", "accuracy"], singles.loc[best, "accuracy"]
        if fused < alone:
            notes.append(
                f"the fused model's held-out accuracy ({fused:.4f}) is below "
                f"{best!r} alone ({alone:.4f}): the other modalities hurt on "
                f"this data; consider fitting on {best!r} only"
            )
            logger.warning(notes[-1])
    return report, unscorable, bad, len(y_te)
