"""segment_file: a fitted segmenter's label images of a records file, as PNGs.

The records are streamed ``chunk_size`` rows at a time through a fitted
segmenter (:class:`~mmfeat.segmentation.PixelSegmenter`, or a search CV
around one); each row gets one PNG mask (and, when asked, one ``.npy``
probability map) in the output folder, and one line in ``index.csv``. This
is ``mmfeat segment``.
"""

import contextlib
import hashlib
import io
import json
import os
import re
import time

import numpy as np
import pandas as pd

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.utils._dask import count_cores, pid_alive, single_threaded
from mmfeat.utils._item_errors import capture_item_errors
from mmfeat.utils._items import is_missing
from mmfeat.utils._tags import get_item_tags
from mmfeat.workflows._common import load_model, logger

__all__ = ["INDEX_COLUMNS", "segment_file", "segmenter_columns"]

#: Columns of ``index.csv`` (``proba`` only with ``proba=True``).
INDEX_COLUMNS = ["row", "name", "source", "mask", "proba", "status", "reason"]

MANIFEST = "segment.json"
INDEX = "index.csv"
PARTS = ".parts"
_TMP = re.compile(r".+\.mmfeat-tmp-(\d+)")
_BAD_NAME = re.compile(r"[/\\\x00-\x1f]")
_PROBA_DTYPES = {"float32": np.float32, "float16": np.float16}


# ---------------------------------------------------------------- the model
def segmenter_columns(model, columns=None):
    """``[(modality, records column or position)]`` a fitted segmenter reads.

    Asked through public API only: the segmenter's ``modalities_`` and its
    ``features`` parameter (``(name, transformer, column)`` triples name
    each modality's column; a lone transformer reads one column of images,
    ``"image"`` by default). ``columns`` maps a modality name to the records
    column that holds it, overriding those.

    Raises
    ------
    ParameterError
        ``model`` is not a fitted segmenter, or ``columns`` names a
        modality the model does not have.
    """
    from mmfeat.fusion import unwrap_model

    seg = unwrap_model(model)
    if not get_item_tags(seg).segmenter:
        raise ParameterError(
            f"the model is a {type(seg).__name__}, not a segmenter: mmfeat "
            "segment writes label images of a segmenter from mmfeat.segmentation "
            "(PixelSegmenter, fitted and saved with mmfeat.save); score a "
            "classifier with mmfeat score"
        )
    names = getattr(seg, "modalities_", None)
    if not names:
        raise ParameterError(
            f"the {type(seg).__name__} is not fitted (no modalities_); fit it and "
            "save it with mmfeat.save"
        )
    names = [str(n) for n in names]
    triples = _triples(seg)
    if triples is not None:
        found = {str(n): c for n, _, c in triples}
    else:
        found = {names[0]: names[0]}
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(names))
    if unknown:
        raise ParameterError(
            f"columns names unknown modalities {unknown}; the model's modalities "
            f"are {names} (give MODALITY=COLUMN)"
        )
    out = []
    for n in names:
        col = columns.get(n, found.get(n, n))
        if not isinstance(col, (str, int, np.integer)) or isinstance(col, bool):
            raise ParameterError(
                f"the records column of modality {n!r} must be a name; got {col!r}"
            )
        out.append((n, col if isinstance(col, str) else int(col)))
    return out


def _triples(seg):
    """The ``(name, transformer, column)`` triples of ``features``, or None."""
    feats = seg.get_params(deep=False).get("features")
    if isinstance(feats, (list, tuple)) and all(
        isinstance(t, tuple) and len(t) == 3 for t in feats
    ):
        return list(feats)
    return None


def _path_modalities(seg, names):
    """Modalities whose items may be file paths (their transformer reads files)."""
    fitted = dict(getattr(seg, "transformers_", None) or [])
    out = set()
    for n in names:
        part = fitted.get(n)
        if part is None or get_item_tags(part).reads_files:
            out.add(n)
    return out


def _model_id(model, path):
    from mmfeat.utils._hashing import file_sha256

    if path is not None:
        return file_sha256(path)
    import joblib

    buf = io.BytesIO()
    joblib.dump(model, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


# --------------------------------------------------------------- the folder
def _inside(path, folder_real):
    real = os.path.realpath(path)
    return os.path.commonpath([real, folder_real]) == folder_real


def _check_output_dir(output_dir, records, model_path, root):
    """Refuse an output folder that is or holds an input; return its real path."""
    out = os.path.abspath(output_dir)
    inputs = {"records file": records}
    if model_path is not None:
        inputs["model file"] = model_path
    if os.path.exists(out) and not os.path.isdir(out):
        real = os.path.realpath(out)
        what = next((k for k, p in inputs.items() if os.path.realpath(p) == real), None)
        hint = f"it is the {what}" if what else "it is a file"
        raise ParameterError(
            f"output folder {output_dir!r}: {hint}; give a new or empty folder "
            "(masks/, for instance)"
        )
    real = os.path.realpath(out)
    for what, folder in (
        ("the records file's folder", os.path.dirname(os.path.abspath(records))),
        ("the root (--root) relative paths are read from", root),
    ):
        if os.path.realpath(folder) == real:
            raise ParameterError(
                f"output folder {output_dir!r} is {what}: masks written there "
                "would sit among the inputs (and could replace one); give a "
                "folder of their own, such as "
                f"{os.path.join(output_dir, 'masks')!r}"
            )
    for what, path in inputs.items():
        if _inside(path, real):
            raise ParameterError(
                f"the {what} {path!r} is inside the output folder {output_dir!r}; "
                "give another output folder"
            )
    if os.path.isdir(out):
        names = set(os.listdir(out))
        if names and MANIFEST not in names:
            raise ParameterError(
                f"output folder {output_dir!r} holds files that are not from an "
                f"earlier mmfeat segment run (no {MANIFEST}); give a new or empty "
                "folder, so that no file of yours is replaced"
            )
    elif not os.path.isdir(os.path.dirname(out)):
        raise ParameterError(
            f"output folder {output_dir!r}: its parent {os.path.dirname(out)!r} "
            "does not exist; create it first"
        )
    return real


def _make_dir(output_dir):
    if os.path.isdir(output_dir):
        return
    try:
        os.mkdir(output_dir)
    except OSError as exc:
        raise ParameterError(
            f"output folder {os.fspath(output_dir)!r}: cannot create it "
            f"({exc.strerror or exc}); choose a writable place"
        ) from None


def _remove_stale_temporaries(folder):
    """Temporaries left by killed runs (dead PIDs), one listing of the folder."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            m = _TMP.fullmatch(name)
            if m and (int(m.group(1)) == os.getpid() or not pid_alive(int(m.group(1)))):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, name))


@contextlib.contextmanager
def _atomic(path):
    """Write through ``<path>.mmfeat-tmp-<pid>``, renamed onto ``path`` at the end."""
    from mmfeat.scoring import atomic_output

    with atomic_output(path, clean=False) as tmp:
        yield tmp


def _write_bytes(path, data):
    with _atomic(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def _write_proba(path, proba, dtype):
    with _atomic(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(proba, dtype=dtype), allow_pickle=False)


def _remove_earlier_outputs(folder):
    """Delete the masks and maps an earlier run listed in its index.

    A fresh run into the folder must not leave an earlier run's mask beside
    a row that is now an error (or no longer exists). Only plain file names
    that the index lists and that end as this command names its outputs are
    removed, and only inside ``folder``: the index is read as untrusted text.
    """
    index = os.path.join(folder, INDEX)
    if not os.path.isfile(index) or os.path.getsize(index) > 1 << 30:
        return
    try:
        table = pd.read_csv(index, usecols=lambda c: c in ("mask", "proba"), dtype=str)
    except (OSError, ValueError, pd.errors.ParserError):
        return
    for column in table.columns:
        for name in table[column].dropna():
            if (
                name == os.path.basename(name)
                and name not in ("", ".", "..")
                and name.endswith((".png", ".proba.npy"))
            ):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, name))
    with contextlib.suppress(OSError):
        os.remove(index)


def _start(folder, manifest, resume):
    """Check or write the manifest; return True when resuming."""
    path = os.path.join(folder, MANIFEST)
    old = None
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                old = json.load(fh)
        except (OSError, ValueError):
            old = None
    if resume and old is not None:
        changed = [k for k in manifest if old.get(k) != manifest[k]]
        if changed:
            raise ParameterError(
                f"cannot resume into {folder!r}: {', '.join(changed)} changed since "
                "the interrupted run, so its masks belong to other input; run "
                "without --resume (masks are rewritten) or give another folder"
            )
    if old is not None and not resume:
        _remove_earlier_outputs(folder)
    parts = os.path.join(folder, PARTS)
    if not (resume and old is not None) and os.path.isdir(parts):
        for name in os.listdir(parts):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(parts, name))
    os.makedirs(parts, exist_ok=True)
    _write_bytes(path, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return bool(resume and old is not None)


# ---------------------------------------------------------------- predicting
def _frame_for(chunk_cols, model_cols):
    """What the segmenter's ``predict`` takes: a column, or a table.

    ``model_cols`` maps each modality to the column (name or position) the
    model was fitted with, ``None`` for a model fitted on one column.
    """
    if None in model_cols.values():
        return next(iter(chunk_cols.values()))
    n = len(next(iter(chunk_cols.values())))
    data = {}
    positions = [c for c in model_cols.values() if isinstance(c, int)]
    for p in range(max(positions) + 1 if positions else 0):
        data[f"_position_{p}"] = pd.Series([None] * n, dtype=object)
    for name, col in model_cols.items():
        key = f"_position_{col}" if isinstance(col, int) else col
        data[key] = pd.Series(chunk_cols[name], dtype=object)
    return pd.DataFrame(data)


def _predict_rows(model, X, on_error):
    """``(probability maps, item errors, failures)`` for one chunk.

    A chunk whose prediction fails on something other than a refused item
    is retried row by row, so one bad row costs only itself.
    """
    try:
        with capture_item_errors() as log:
            out = model.predict_proba(X)
        return list(out), list(log), {}
    except (KeyboardInterrupt, SystemExit):
        raise
    except ParameterError:
        raise  # the model and its input do not fit: no row is at fault
    except InputError as exc:
        if on_error == "raise":
            raise
        failure = exc
    except Exception as exc:
        if on_error == "raise":
            raise
        failure = exc
    n = len(X)
    if n == 1:
        return [None], [], {0: failure}
    maps, errors, failures = [], [], {}
    oom = 0
    for i in range(n):
        row = X.iloc[[i]].reset_index(drop=True) if hasattr(X, "iloc") else [X[i]]
        m, e, f = _predict_rows(model, row, on_error)
        maps.append(m[0])
        errors.extend(err._replace(row=i) for err in e)
        if f:
            failures[i] = f[0]
            oom += isinstance(f[0], MemoryError)
    if oom == n:
        raise MemoryError(
            f"out of memory on every one of the {n} rows of a chunk: the machine "
            "is short of memory, not one image; lower --chunk-size and resume "
            "(--resume)"
        )
    return maps, errors, failures


def _reason(failure):
    if isinstance(failure, InputError):
        return failure.reason
    if isinstance(failure, MemoryError):
        return f"out of memory (MemoryError: {failure}) while segmenting it"
    return f"{type(failure).__name__}: {failure}"


def _name_error(name):
    if not name:
        return "empty name"
    if name in (".", "..") or name.startswith(".") or _BAD_NAME.search(name):
        return (
            f"name {name!r} is not a plain file name (no '/', '\\', control "
            "characters or leading '.')"
        )
    if len(name) > 200:
        return f"name is {len(name)} characters long; at most 200"
    return None


def _index_frame(lines, proba):
    frame = pd.DataFrame(lines, columns=INDEX_COLUMNS)
    if not proba:
        frame = frame.drop(columns="proba")
    return frame


# --------------------------------------------------------------- the workflow
def segment_file(
    model,
    records,
    output_dir,
    *,
    columns=None,
    name_column=None,
    root=None,
    confine_to_root=False,
    chunk_size=32,
    resume=False,
    proba=False,
    proba_dtype="float32",
    on_error="missing",
    n_jobs=None,
    trusted=None,
    max_model_bytes=None,
    progress=False,
):
    """Write one PNG mask per record of a CSV or Parquet file, resumably.

    The records are streamed ``chunk_size`` rows at a time (memory stays
    flat however many rows there are) through a fitted segmenter's
    ``predict_proba``; every row gets a label image ``<name>.png`` in
    ``output_dir`` (8-bit, or 16-bit when a label exceeds 255; the values
    are the model's ``classes_``, never 0), optionally its probability map
    ``<name>.proba.npy``, and one line in ``index.csv``, in input order.
    This is ``mmfeat segment``.

    Parameters
    ----------
    model : fitted segmenter, or str or path-like
        A fitted :class:`~mmfeat.segmentation.PixelSegmenter` (or a fitted
        search CV around one), or a file written by :func:`mmfeat.save`,
        loaded with :func:`mmfeat.load` (``trusted`` and
        ``max_model_bytes`` passed on). A model given as an object is not
        changed (its copy is). A model that is not a segmenter (its tags
        say so) is refused.
    records : str or path-like
        ``.csv`` (UTF-8, header row) or ``.parquet``: one record per image,
        with a column per modality the model reads (paths, relative to
        ``root`` or absolute).
    output_dir : str or path-like
        The folder written: a new one (its parent must exist), an empty
        one, or one an earlier run wrote (it holds ``segment.json``). It
        may not be, or hold, the records file or the model file, and may not
        be the records' folder or ``root``; no input item is read from
        inside it (such an item is its row's error), so no input file can
        be replaced.
    columns : dict of str to str, default=None
        Records column of each modality, by the model's modality name
        (``modalities_``): ``{"image": "photo", "depth": "disparity"}``.
        Default: the columns the model was fitted with (its
        ``(name, transformer, column)`` triples), or ``"image"`` for a
        model fitted on one column of images.
    name_column : str, default=None
        Column whose values name the files (``<value>.png``); each must be
        a plain file name, unique in the file (else that row's error).
        Default: the row's position, zero-padded (``000042.png``; at least
        6 digits, more for a larger file).
    root : str or path-like, default=None
        Folder relative paths are relative to; default the records file's.
    confine_to_root : bool, default=False
        Read files only from under ``root`` (links followed); a path that
        leaves it is not read and is its row's error.
    chunk_size : int, default=32
        Rows per chunk: the unit of prediction, of the index parts and of
        resumption. The probability maps of one chunk are held at once.
    resume : bool, default=False
        Continue an interrupted run into the same folder: rows whose mask
        (and probability map, with ``proba``) already exists are not
        predicted again. Refused when the records file's content
        (SHA-256), the model, ``columns``, ``name_column``, ``root``,
        ``confine_to_root``, ``chunk_size``, ``proba``, ``proba_dtype`` or
        ``on_error`` changed since.
    proba : bool, default=False
        Also write ``<name>.proba.npy``: an (H, W, K) array, channel ``k``
        the probability of ``classes_[k]`` (listed in ``segment.json``);
        each pixel's channels sum to 1.
    proba_dtype : {"float32", "float16"}, default="float32"
        The probability maps' type (float16 halves the files; its sums are
        within about 1e-3 of 1).
    on_error : {"missing", "raise"}, default="missing"
        ``"missing"``: a row that cannot be segmented (unreadable or
        missing image, a map not aligned with it, a path refused) gets no
        mask, status ``"error"`` and the reason in the index; a row that
        lost one modality of several is segmented from the others (status
        ``"ok"``, the lost item in ``reason``). ``"raise"``: the first bad
        item stops the run with :class:`~mmfeat.InputError` naming its row
        (finished rows are kept; ``resume=True`` continues).
    n_jobs : int, default=None
        Threads of the model (BLAS, OpenMP, OpenCV and its parts'
        ``n_jobs``), whatever the model file says (``None``: 1, -1: all
        cores, never more than the machine has).
    trusted : list of str, default=None
        Extra types to trust when ``model`` is a file. A segmenter with the
        default classifier (histogram gradient boosting) needs
        ``["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]``;
        :func:`mmfeat.load`'s error names the types a file needs.
    max_model_bytes : int, default=None
        The most a model file may hold uncompressed (default
        :data:`mmfeat.DEFAULT_MAX_BYTES`).
    progress : bool, default=False
        Progress bar of rows on stderr.

    Returns
    -------
    summary : dict
        ``rows``, ``ok`` (rows with a mask), ``errors`` (rows without),
        ``skipped`` (rows a resumed run found done), ``resumed`` (bool),
        ``seconds``, ``rows_per_s``, ``output_dir``, ``index`` (path of
        ``index.csv``), ``classes``.

    Raises
    ------
    ParameterError
        Before anything is read: a model that is not a segmenter, a bad
        output folder (see ``output_dir``), bad parameters, a resume that
        does not match the interrupted run.
    InputError
        The records are not a readable table or lack a column the model
        reads; with ``on_error="raise"``, the first bad item.
    OutputError
        Writing failed (disk full, ``ulimit -f``).

    Notes
    -----
    Output layout of ``output_dir``:

    - ``<name>.png``: the label image (H, W) of the row, the image's size;
    - ``<name>.proba.npy``: with ``proba=True``, its (H, W, K) map;
    - ``index.csv``: one line per input row, in input order: ``row``
      (0-based position in the records), ``name``, ``source`` (the row's
      input as the records give it; ``modality=value`` pairs joined by
      ``;`` for several modalities), ``mask`` and ``proba`` (file names in
      ``output_dir``, empty without one), ``status`` (``ok`` or ``error``),
      ``reason`` (why there is no mask, or which item an ``ok`` row was
      segmented without);
    - ``segment.json``: the run's settings (for ``resume``) and the
      classes.

    Every file is written to ``<file>.mmfeat-tmp-<pid>`` and renamed into
    place, the probability map before the mask, so a mask that exists is
    complete and its row done: a killed run never leaves a half file that
    ``resume`` would trust. ``index.csv`` is assembled at the end from the
    per-chunk parts in ``.parts/`` (a finished chunk's part makes ``resume``
    skip the chunk whole). A row that ``resume`` finds done inside an
    unfinished chunk keeps status ``ok`` but not the note of an item it was
    segmented without. Two runs into one folder at once are not guarded
    against.

    Examples
    --------
    Fit, save, then segment a folder of photos listed in ``photos.csv``
    (column ``image``)::

        import mmfeat
        from mmfeat.segmentation import PixelSegmenter
        from mmfeat.workflows import segment_file

        seg = PixelSegmenter(random_state=0).fit(train_images, train_masks)
        mmfeat.save(seg, "seg.skops")
        segment_file(
            "seg.skops", "photos.csv", "masks",
            trusted=["sklearn.ensemble._hist_gradient_boosting.predictor."
                     "TreePredictor"],
        )
    """
    from tqdm import tqdm

    from mmfeat.fusion import unwrap_model
    from mmfeat.scoring import (
        RecordsTable,
        cap_resources,
        check_records_path,
        resolve_paths,
        set_on_error,
    )
    from mmfeat.segmentation import encode_png

    t0 = time.perf_counter()
    records = check_records_path(records)
    if on_error not in ("missing", "raise"):
        raise ParameterError(f"on_error must be 'missing' or 'raise'; got {on_error!r}")
    if isinstance(chunk_size, bool) or not (
        isinstance(chunk_size, (int, np.integer)) and chunk_size > 0
    ):
        raise ParameterError(f"chunk_size must be a positive int; got {chunk_size!r}")
    chunk_size = int(chunk_size)
    if proba_dtype not in _PROBA_DTYPES:
        raise ParameterError(
            f"proba_dtype must be 'float32' or 'float16'; got {proba_dtype!r}"
        )
    if columns is not None and not isinstance(columns, dict):
        raise ParameterError(
            f"columns must be a dict of modality to column; got {columns!r}"
        )
    model_path = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
    root = os.path.dirname(os.path.abspath(records)) if root is None else root
    root = os.fspath(root)
    folder = _check_output_dir(output_dir, records, model_path, root)
    n_threads, lowered = count_cores(n_jobs)
    if lowered:
        logger.warning(
            f"{n_jobs} jobs is more than the {n_threads} cores here; using {n_threads}"
        )

    model, path = load_model(model, trusted=trusted, max_bytes=max_model_bytes)
    modalities = segmenter_columns(model, columns)  # refuses a non-segmenter
    model_id = _model_id(model, path)
    if path is None:
        import copy

        model = copy.deepcopy(model)  # the caller's model stays as it was
    seg = unwrap_model(model)
    set_on_error(model, on_error)
    cap_resources(model, n_threads)
    names = [n for n, _ in modalities]
    path_mods = _path_modalities(seg, names)
    triples = _triples(seg)
    model_cols = (
        {names[0]: None}
        if triples is None
        else {str(n): (c if isinstance(c, str) else int(c)) for n, _, c in triples}
    )
    classes = [int(c) for c in np.asarray(seg.classes_)]
    label_type = np.uint8 if max(classes) <= 255 else np.uint16

    with RecordsTable(records) as table:
        digest, total = table.fingerprint()
        header = list(table.columns)
        resolved = []
        for name, col in modalities:
            if isinstance(col, int):
                if not 0 <= col < len(header):
                    raise InputError(
                        f"modality {name!r} reads column position {col}, but the "
                        f"records have {len(header)} columns; name its column "
                        "(columns= / --column MODALITY=COLUMN)",
                        source=records,
                    )
                resolved.append((name, header[col]))
            elif col not in header:
                raise InputError(
                    f"no column {col!r} in the records for modality {name!r} (the "
                    f"records' columns: {header[:10]}); map it with columns= / "
                    "--column MODALITY=COLUMN",
                    source=records,
                )
            else:
                resolved.append((name, col))
        if name_column is not None and name_column not in header:
            raise InputError(
                f"the name column {name_column!r} is not in the records (columns: "
                f"{header[:10]})",
                source=records,
            )
        manifest = {
            "records": os.path.abspath(records),
            "records_sha256": digest,
            "model": model_id,
            "columns": {n: c for n, c in resolved},
            "name_column": name_column,
            "root": os.path.abspath(root),
            "confine_to_root": bool(confine_to_root),
            "chunk_size": chunk_size,
            "proba": bool(proba),
            "proba_dtype": proba_dtype if proba else None,
            "on_error": on_error,
            "classes": classes,
        }
        _make_dir(folder)
        _remove_stale_temporaries(folder)
        resumed = _start(folder, manifest, resume)
        parts = os.path.join(folder, PARTS)
        _remove_stale_temporaries(parts)
        width = max(6, len(str(max((total or 1) - 1, 0))))
        text_cols = [c for _, c in resolved] + ([name_column] if name_column else [])
        seen_names = {}
        counts = {"ok": 0, "error": 0, "skipped": 0}
        bar = tqdm(
            total=total,
            unit="images",
            disable=not progress,
            desc="segmenting",
            dynamic_ncols=True,
        )
        start = 0
        n_chunks = 0
        try:
            with single_threaded(n_threads):
                for i, chunk in enumerate(
                    table.chunks(chunk_size, text_columns=text_cols)
                ):
                    n_chunks = i + 1
                    n = len(chunk)
                    part = os.path.join(parts, f"index-{i:06d}.csv")
                    row_names, name_errors = _row_names(
                        chunk, name_column, start, width, seen_names
                    )
                    if resumed and os.path.exists(part):
                        done = pd.read_csv(part, usecols=["status"])["status"]
                        counts["ok"] += int((done == "ok").sum())
                        counts["error"] += int((done != "ok").sum())
                        counts["skipped"] += n
                        start += n
                        bar.update(n)
                        continue
                    lines = _segment_chunk(
                        model,
                        chunk,
                        start,
                        resolved,
                        model_cols,
                        path_mods,
                        row_names,
                        name_errors,
                        folder,
                        root,
                        confine_to_root,
                        proba,
                        _PROBA_DTYPES[proba_dtype],
                        on_error,
                        resumed,
                        label_type,
                        counts,
                        resolve_paths,
                        encode_png,
                    )
                    with _atomic(part) as tmp:
                        _index_frame(lines, True).to_csv(
                            tmp, index=False, encoding="utf-8"
                        )
                    start += n
                    bar.update(n)
        finally:
            bar.close()
    index = os.path.join(folder, INDEX)
    _assemble_index(parts, n_chunks, index, proba)
    seconds = time.perf_counter() - t0
    done_rows = start - counts["skipped"]
    return {
        "rows": start,
        "ok": counts["ok"],
        "errors": counts["error"],
        "skipped": counts["skipped"],
        "resumed": resumed,
        "seconds": seconds,
        "rows_per_s": done_rows / seconds if seconds > 0 else float("nan"),
        "output_dir": os.fspath(output_dir),
        "index": index,
        "classes": classes,
    }


def _row_names(chunk, name_column, start, width, seen):
    """File stems of a chunk's rows, and the rows whose name is refused."""
    n = len(chunk)
    if name_column is None:
        return [f"{start + j:0{width}d}" for j in range(n)], {}
    names, errors = [], {}
    for j, value in enumerate(chunk[name_column].tolist()):
        row = start + j
        if is_missing(value):
            names.append("")
            errors[j] = f"no name in the name column {name_column!r}"
            continue
        name = str(value)
        bad = _name_error(name)
        if bad is None and name in seen:
            bad = f"name {name!r} is already used by row {seen[name]}"
        names.append(name)
        if bad is not None:
            errors[j] = bad
        else:
            seen[name] = row
    return names, errors


def _source_text(values, modalities):
    if len(modalities) == 1:
        v = values[modalities[0][0]]
        return "" if is_missing(v) else str(v)
    return ";".join(
        f"{n}={'' if is_missing(values[n]) else values[n]}" for n, _ in modalities
    )


def _segment_chunk(
    model,
    chunk,
    start,
    modalities,
    model_cols,
    path_mods,
    row_names,
    name_errors,
    folder,
    root,
    confine,
    proba,
    dtype,
    on_error,
    resumed,
    label_type,
    counts,
    resolve_paths,
    encode_png,
):
    """Predict and write one chunk's rows; return its index lines."""
    n = len(chunk)
    raw = {name: chunk[col].tolist() for name, col in modalities}
    notes = {j: [] for j in range(n)}  # item errors per chunk row
    fatal = dict(name_errors)  # chunk row -> why it gets no mask
    items = {}
    for name, _ in modalities:
        values = raw[name]
        if name in path_mods:
            values, refused = resolve_paths(values, root, confine=confine)
            for j, exc in refused:
                if on_error == "raise":
                    raise exc.with_row(start + j) from None
                notes[j].append((name, exc.reason))
            values = list(values)
            for j, v in enumerate(values):
                if isinstance(v, str) and v and _inside(v, folder):
                    reason = (
                        f"{name} {v!r} lies inside the output folder; mmfeat "
                        "segment never reads from the folder it writes"
                    )
                    if on_error == "raise":
                        raise InputError(reason, row=start + j, source=v)
                    notes[j].append((name, reason))
                    values[j] = None
        items[name] = values
    paths = {}
    todo = []
    for j in range(n):
        mask = f"{row_names[j]}.png" if j not in fatal else ""
        pmap = f"{row_names[j]}.proba.npy" if proba and j not in fatal else ""
        paths[j] = (mask, pmap)
        if j in fatal:
            continue
        if resumed and os.path.exists(os.path.join(folder, mask)):
            if not proba or os.path.exists(os.path.join(folder, pmap)):
                continue  # done by the interrupted run
        todo.append(j)
    skipped = set(range(n)) - set(todo) - set(fatal)
    maps = {}
    if todo:
        sub = {name: [items[name][j] for j in todo] for name in items}
        X = _frame_for(sub, model_cols)
        try:
            out, errors, failures = _predict_rows(model, X, on_error)
        except InputError as exc:
            if exc.row is not None and 0 <= exc.row < len(todo):
                raise exc.with_row(start + todo[exc.row]) from None
            raise
        for e in errors:
            if 0 <= e.row < len(todo):
                notes[todo[e.row]].append((e.modality, e.reason))
        for k, j in enumerate(todo):
            if k in failures:
                fatal[j] = _reason(failures[k])
            elif out[k] is None:
                fatal[j] = None  # reason from the notes
            else:
                maps[j] = out[k]
    lines = []
    for j in range(n):
        row = start + j
        source = _source_text({m: raw[m][j] for m, _ in modalities}, modalities)
        reason = "; ".join(
            (f"{m}: {r}" if m and len(modalities) > 1 else r) for m, r in notes[j]
        )
        mask, pmap = paths[j]
        if j in fatal:
            why = fatal[j]
            if why is None:
                why = reason or _why_missing(raw, modalities, j)
            elif reason:
                why = f"{why}; {reason}"
            counts["error"] += 1
            lines.append((row, row_names[j], source, "", "", "error", why))
            continue
        if j in skipped:
            counts["ok"] += 1
            counts["skipped"] += 1
            lines.append((row, row_names[j], source, mask, pmap, "ok", reason))
            continue
        p = maps[j]
        labels = np.asarray(np.argmax(p, axis=2))
        labels = np.asarray(model_classes(model), dtype=label_type)[labels]
        if proba:
            _write_proba(os.path.join(folder, pmap), p, dtype)
        _write_bytes(os.path.join(folder, mask), encode_png(labels))  # last
        counts["ok"] += 1
        lines.append((row, row_names[j], source, mask, pmap, "ok", reason))
    return lines


def model_classes(model):
    """The classes of a fitted segmenter (of its refit, in a search CV)."""
    from mmfeat.fusion import unwrap_model

    return unwrap_model(model).classes_


def _why_missing(raw, modalities, j):
    empty = [n for n, _ in modalities if is_missing(raw[n][j])]
    if empty:
        return f"missing: no {' or '.join(empty)} in the row"
    return "nothing usable in the row"


def _assemble_index(parts, n_chunks, index, proba):
    """Join the chunks' index parts into ``index.csv``; remove the parts."""
    with _atomic(index) as tmp, open(tmp, "w", encoding="utf-8", newline="") as out:
        _index_frame([], proba).to_csv(out, index=False)
        for i in range(n_chunks):
            part = os.path.join(parts, f"index-{i:06d}.csv")
            frame = pd.read_csv(part, dtype=str, keep_default_na=False, na_values=[])
            if not proba:
                frame = frame.drop(columns="proba")
            frame.to_csv(out, index=False, header=False)
    with contextlib.suppress(OSError):
        for name in os.listdir(parts):
            os.remove(os.path.join(parts, name))
        os.rmdir(parts)
