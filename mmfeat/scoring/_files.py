"""Batch scoring of a records file: chunks, parallel workers, resumable output."""

import contextlib
import json
import os
import shutil
import sys
import time

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from joblib.parallel import get_active_backend

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.scoring._scorer import ERROR_COLUMNS, BatchScorer

__all__ = [
    "count_records",
    "iter_records",
    "parallel_backend",
    "read_records",
    "score_file",
    "warm_workers",
]

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _format(path, what="input"):
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in _FORMATS:
        raise ParameterError(
            f"{what} {os.fspath(path)!r} must be a .csv or .parquet file; got "
            f"the extension {ext or '(none)'!r}"
        )
    return _FORMATS[ext]


def _check_input(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError("records file not found", source=path)
    if os.path.isdir(path):
        raise InputError("is a directory, not a records file", source=path)
    return path


def _csv_kwargs(text_columns):
    # Only an empty cell is missing: a title "NA" or "None" is text.
    return dict(
        dtype={c: object for c in text_columns},
        keep_default_na=False,
        na_values=[""],
    )


def iter_records(path, chunk_size, *, text_columns=()):
    """Yield the records of a CSV or Parquet file as DataFrames of ``chunk_size``.

    Parameters
    ----------
    path : str or path
        A ``.csv`` (UTF-8, header row) or ``.parquet`` file.
    chunk_size : int
        Rows per chunk; the last chunk may be shorter.
    text_columns : sequence of str, default=()
        CSV columns read as text as they are (ids, paths, titles): no
        number parsing, and only an empty cell is missing.

    Yields
    ------
    chunk : DataFrame
        With a fresh ``RangeIndex``. A file with no rows (a 0-byte file or a
        header alone) yields nothing.
    """
    path = _check_input(path)
    fmt = _format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            for batch in pf.iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
        except (OSError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"cannot read Parquet: {exc}", source=path) from None
        return
    if os.path.getsize(path) == 0:
        return
    try:
        reader = pd.read_csv(
            path, chunksize=chunk_size, encoding="utf-8", **_csv_kwargs(text_columns)
        )
        with reader:
            for chunk in reader:
                yield chunk.reset_index(drop=True)
    except pd.errors.EmptyDataError:
        return
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte {exc.start}): save the CSV as UTF-8",
            source=path,
        ) from None
    except pd.errors.ParserError as exc:
        raise InputError(f"malformed CSV: {exc}", source=path) from None


def read_records(path, *, text_columns=()):
    """Read a whole CSV or Parquet records file into one DataFrame."""
    chunks = list(iter_records(path, 100_000, text_columns=text_columns))
    if not chunks:
        return pd.DataFrame(columns=list(text_columns))
    return pd.concat(chunks, ignore_index=True)


def count_records(path):
    """Number of records in a file (CSV: its lines less the header), or None."""
    path = _check_input(path)
    if _format(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (OSError, ValueError):
            return None
    n = 0
    last = b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        n += 1
    return max(n - 1, 0)


@contextlib.contextmanager
def parallel_backend(scheduler, *, n_jobs=-1):
    """Run mmfeat's parallel work on a Dask cluster, through joblib.

    Inside the ``with`` block, :func:`score_file` (and every estimator's
    ``n_jobs``) dispatches to the cluster's workers with joblib's Dask
    backend.

    Parameters
    ----------
    scheduler : str or dask.distributed.Client
        The scheduler's address (``"tcp://host:8786"``) or a client. A client
        made here is closed on exit.
    n_jobs : int, default=-1
        Parallel tasks; -1 uses every worker thread of the cluster.

    Yields
    ------
    client : dask.distributed.Client
    """
    try:
        from dask.distributed import Client
    except ImportError:  # pragma: no cover - depends on the environment
        raise ParameterError(
            "a Dask scheduler needs dask.distributed: "
            "python -m pip install 'mmfeat[distributed]'"
        ) from None
    import joblib

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        with joblib.parallel_config(backend="dask", n_jobs=n_jobs):
            yield client
    finally:
        if own:
            client.close()


# -- output ------------------------------------------------------------------
def _arrow_schema(scorer, id_type):
    import pyarrow as pa

    fields = []
    key = scorer.output_columns_[0]
    fields.append(pa.field(key, pa.int64() if scorer.id_column is None else id_type))
    kind = (
        np.asarray(scorer.classes_).dtype.kind if scorer.classes_ is not None else "O"
    )
    ptype = {"i": pa.int64(), "u": pa.int64(), "f": pa.float64(), "b": pa.bool_()}.get(
        kind, pa.string()
    )
    fields.append(pa.field("predict", ptype))
    fields.extend(pa.field(c, pa.float64()) for c in scorer.output_columns_[2:])
    return pa.schema(fields)


def _error_schema():
    import pyarrow as pa

    types = {"row": pa.int64()}  # the other columns are text
    return pa.schema([pa.field(c, types.get(c, pa.string())) for c in ERROR_COLUMNS])


def _to_table(frame, schema):
    import pyarrow as pa

    frame = frame.copy()
    for field in schema:
        if pa.types.is_string(field.type):
            frame[field.name] = [
                None
                if (v is None or v is pd.NA or (isinstance(v, float) and v != v))
                else str(v)
                for v in frame[field.name].tolist()
            ]
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def _atomic_parquet(table, path):
    import pyarrow.parquet as pq

    tmp = f"{path}.tmp{os.getpid()}"
    pq.write_table(table, tmp)
    os.replace(tmp, path)


class _Parts:
    """The folder of finished chunks beside the output, with its manifest."""

    def __init__(self, output):
        self.dir = f"{os.fspath(output)}.parts"
        self.manifest = os.path.join(self.dir, "manifest.json")

    def pred(self, i):
        return os.path.join(self.dir, f"part-{i:06d}.parquet")

    def err(self, i):
        return os.path.join(self.dir, f"errors-{i:06d}.parquet")

    def done(self):
        i = 0
        while os.path.exists(self.pred(i)) and os.path.exists(self.err(i)):
            i += 1
        return i

    def start(self, manifest, *, resume):
        if os.path.isdir(self.dir) and os.path.exists(self.manifest):
            with open(self.manifest, encoding="utf-8") as fh:
                old = json.load(fh)
            if not resume:
                raise ParameterError(
                    f"an interrupted run left {self.done()} finished chunk(s) in "
                    f"{self.dir}; pass resume=True (--resume) to continue it, or "
                    "delete that folder to start over"
                )
            diff = sorted(k for k in manifest if old.get(k) != manifest[k])
            if diff:
                raise ParameterError(
                    f"cannot resume: {', '.join(diff)} changed since the "
                    f"interrupted run (see {self.manifest}); delete {self.dir} to "
                    "start over"
                )
            done = self.done()
            for name in os.listdir(self.dir):  # half-written leftovers
                if ".tmp" in name:
                    os.remove(os.path.join(self.dir, name))
            return done
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        tmp = self.manifest + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
        os.replace(tmp, self.manifest)
        return 0


def _assemble(paths, schema, out, fmt):
    """Concatenate part files into ``out`` (temporary file, then rename)."""
    import pyarrow.parquet as pq

    tmp = f"{out}.tmp{os.getpid()}"
    n = 0
    if fmt == "parquet":
        with pq.ParquetWriter(tmp, schema) as writer:
            for p in paths:
                table = pq.read_table(p, schema=schema)
                writer.write_table(table)
                n += table.num_rows
            if not paths:
                writer.write_table(schema.empty_table())
    else:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            pd.DataFrame(columns=schema.names).to_csv(fh, index=False)
            for p in paths:
                frame = pq.read_table(p, schema=schema).to_pandas()
                frame.to_csv(fh, index=False, header=False)
                n += len(frame)
    os.replace(tmp, out)
    return n


@contextlib.contextmanager
def _single_threaded(limit):
    """OpenCV and BLAS threads capped at ``limit`` (None: unchanged)."""
    if limit is None:
        yield
        return
    import cv2
    from threadpoolctl import threadpool_limits

    before = cv2.getNumThreads()
    cv2.setNumThreads(limit)
    try:
        with threadpool_limits(limits=limit):
            yield
    finally:
        cv2.setNumThreads(before)


def _score_chunk(scorer, frame, start, source):
    # a worker is one core: --n-jobs counts cores, and no library inside a
    # chunk starts threads of its own that would compete with other workers
    with _single_threaded(scorer.inner_n_jobs):
        predictions, errors = scorer.score(frame, start=start, source=source)
    return len(frame), predictions, errors


def _warm():
    """Import what scoring needs (in a worker process)."""
    import mmfeat.features.audio  # noqa: F401
    import mmfeat.features.image  # noqa: F401
    import mmfeat.features.text  # noqa: F401
    import mmfeat.scoring  # noqa: F401

    return os.getpid()


def warm_workers(n_jobs):
    """Start ``n_jobs`` joblib worker processes in the background.

    A worker spends seconds importing scikit-learn, OpenCV, numba and mmfeat
    before its first chunk; ``mmfeat score`` starts them while it loads the
    model, so that time overlaps. Returns the thread; join it before
    scoring (joblib then reuses the started workers).
    """
    import threading

    from joblib import effective_n_jobs

    n = effective_n_jobs(n_jobs)
    thread = threading.Thread(
        target=lambda: Parallel(n_jobs=n_jobs)(delayed(_warm)() for _ in range(n)),
        daemon=True,
    )
    thread.start()
    return thread


def _dask_active():
    backend, _ = get_active_backend()
    return "Dask" in type(backend).__name__


def score_file(
    model,
    records,
    output,
    *,
    errors=None,
    chunk_size=1000,
    n_jobs=None,
    on_error="missing",
    id_column=None,
    root=None,
    resume=False,
    progress=False,
    model_id=None,
):
    """Score a CSV or Parquet file of records in chunks, in parallel, resumably.

    The input is streamed ``chunk_size`` rows at a time, so memory does not
    grow with the file. Each finished chunk is written atomically (temporary
    file, then rename) into ``<output>.parts/``; at the end the parts are
    joined into ``output`` and ``errors``, in input order, and the folder is
    removed. After an interruption (even ``SIGKILL``), ``resume=True`` skips
    the finished chunks, so no row is lost or written twice.

    Parameters
    ----------
    model : fitted estimator
        See :class:`~mmfeat.scoring.BatchScorer`.
    records : str or path
        Input ``.csv`` (UTF-8, header row) or ``.parquet``.
    output : str or path
        Predictions, ``.csv`` or ``.parquet``: the id (or ``row``),
        ``predict`` and ``proba_<class>`` columns, one row per record.
    errors : str or path, default=None
        Error report (``.csv`` or ``.parquet``): ``row``, ``id``, ``column``,
        ``source``, ``reason``. Default ``<output stem>.errors.csv``. Always
        written, with a header alone when nothing was wrong.
    chunk_size : int, default=1000
        Records per chunk (the unit of parallel work and of resumption).
    n_jobs : int, default=None
        Worker processes scoring chunks; ``None`` means 1 (or the active
        joblib backend's setting, e.g. inside :func:`parallel_backend`), -1
        all cores.
    on_error : {"missing", "raise"}, default="missing"
        See :class:`~mmfeat.scoring.BatchScorer`.
    id_column : str, default=None
        Column written next to each prediction (else ``row``).
    root : str or path, default=None
        Folder relative image/audio paths are relative to; default the
        records file's folder.
    resume : bool, default=False
        Continue an interrupted run into the same ``output``.
    progress : bool, default=False
        Show a progress bar with rows/s on stderr.
    model_id : str, default=None
        Identity of the model for the resume check (``mmfeat score`` passes
        the model file's SHA-256); default a hash of the model's bytes.

    Returns
    -------
    summary : dict
        ``rows``, ``scored``, ``unscored`` (rows with no prediction),
        ``errors`` (error entries), ``seconds``, ``rows_per_s``, ``output``,
        ``errors_path``, ``resumed_chunks``.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    records = _check_input(records)
    output = os.fspath(output)
    out_fmt = _format(output, "output")
    if errors is None:
        errors = os.path.splitext(output)[0] + ".errors.csv"
    errors = os.fspath(errors)
    err_fmt = _format(errors, "errors")
    if os.path.abspath(errors) == os.path.abspath(output):
        raise ParameterError("errors and output must be different files")
    if not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ParameterError(f"chunk_size must be a positive int; got {chunk_size!r}")
    if root is None:
        root = os.path.dirname(os.path.abspath(records))
    scorer = (
        model
        if isinstance(model, BatchScorer)
        else BatchScorer(model, on_error=on_error, id_column=id_column, root=root)
    )
    text_cols = list(scorer.columns_) + ([id_column] if id_column else [])
    in_fmt = _format(records)
    id_type = _id_type(records, in_fmt, id_column)
    schema = _arrow_schema(scorer, id_type)
    eschema = _error_schema()
    if model_id is None:
        import hashlib

        model_id = hashlib.sha256(scorer.__getstate__()["_blob"]).hexdigest()
    stat = os.stat(records)
    manifest = {
        "records": os.path.abspath(records),
        "records_size": stat.st_size,
        "records_mtime_ns": stat.st_mtime_ns,
        "model": model_id,
        "chunk_size": chunk_size,
        "on_error": scorer.on_error,
        "id_column": scorer.id_column,
        "root": os.path.abspath(root),
    }
    parts = _Parts(output)
    done = parts.start(manifest, resume=resume)
    total = count_records(records)
    bar = tqdm(
        total=total,
        unit="rows",
        unit_scale=True,
        disable=not progress,
        file=sys.stderr,
        initial=min(done * chunk_size, total or 0),
        desc="scoring",
        dynamic_ncols=True,
    )
    source = os.path.basename(records)

    def chunks():
        for i, frame in enumerate(
            iter_records(records, chunk_size, text_columns=text_cols)
        ):
            if i >= done:
                yield i, frame

    def write(i, predictions, errs):
        _atomic_parquet(_to_table(errs, eschema), parts.err(i))
        _atomic_parquet(_to_table(predictions, schema), parts.pred(i))

    backend_n = get_active_backend()[1]
    eff = n_jobs if n_jobs is not None else backend_n
    try:
        if eff == 1 and not _dask_active():
            for i, frame in chunks():
                n, predictions, errs = _score_chunk(
                    scorer, frame, i * chunk_size, source
                )
                write(i, predictions, errs)
                bar.update(n)
        else:
            index = []

            def tasks():
                for i, frame in chunks():
                    index.append(i)
                    yield delayed(_score_chunk)(scorer, frame, i * chunk_size, source)

            results = Parallel(
                n_jobs=n_jobs, return_as="generator", pre_dispatch="2*n_jobs"
            )(tasks())
            for k, (n, predictions, errs) in enumerate(results):
                write(index[k], predictions, errs)
                bar.update(n)
    finally:
        bar.close()
    n_parts = parts.done()
    pred_paths = [parts.pred(i) for i in range(n_parts)]
    err_paths = [parts.err(i) for i in range(n_parts)]
    rows = _assemble(pred_paths, schema, output, out_fmt)
    n_err = _assemble(err_paths, eschema, errors, err_fmt)
    unscored = _count_null_predictions(pred_paths)
    shutil.rmtree(parts.dir)
    seconds = time.perf_counter() - t0
    return {
        "rows": rows,
        "scored": rows - unscored,
        "unscored": unscored,
        "errors": n_err,
        "seconds": seconds,
        "rows_per_s": rows / seconds if seconds > 0 else float("nan"),
        "output": output,
        "errors_path": errors,
        "resumed_chunks": done,
    }


def _count_null_predictions(paths):
    import pyarrow.parquet as pq

    return sum(
        pq.read_table(p, columns=["predict"]).column(0).null_count for p in paths
    )


def _id_type(records, fmt, id_column):
    import pyarrow as pa

    if id_column is None or fmt == "csv":
        return pa.string()
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(records).schema_arrow
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read Parquet: {exc}", source=records) from None
    if id_column not in schema.names:
        raise InputError(
            f"the id column {id_column!r} is not in the input (columns: "
            f"{schema.names[:10]})",
            source=records,
        )
    return schema.field(id_column).type
