"""Batch scoring of a records file: chunks, parallel workers, resumable output.

:func:`score_file` streams a records file (:mod:`~mmfeat.scoring._records`)
through a :class:`~mmfeat.scoring.BatchScorer` chunk by chunk, on joblib
workers or a Dask cluster (:mod:`mmfeat.utils._dask`), into the atomic parts
folder of :mod:`~mmfeat.scoring._outputs`.
"""

import contextlib
import errno
import logging
import os
import sys
import time

from joblib import Parallel, delayed
from joblib.parallel import get_active_backend

from mmfeat.exceptions import InputError, MmfeatError, OutputError, ParameterError
from mmfeat.scoring._outputs import (
    _assemble,
    _atomic_parquet,
    _Parts,
    _remove_stale_temporaries,
    check_output_paths,
    error_schema,
    prediction_schema,
    to_table,
)
from mmfeat.scoring._records import RecordsTable, check_records_path, records_format
from mmfeat.scoring._scorer import BatchScorer
from mmfeat.utils._dask import (
    count_cores,
    dask_active,
    exit_with_parent,
    single_threaded,
    warm_workers,
    worker_kwargs,
)
from mmfeat.utils._hashing import file_sha256
from mmfeat.utils._oserrors import output_error

__all__ = ["score_file"]

logger = logging.getLogger(__name__)


def _score_chunk(scorer, frame, start, source):
    # a worker is one core: --n-jobs counts cores, and no library inside a
    # chunk starts threads of its own that would compete with other workers
    with single_threaded(scorer.inner_n_jobs):
        predictions, errors = scorer.score(frame, start=start, source=source)
    return len(frame), predictions, errors


def _score_in_worker(parent, scorer, frame, start, source):
    exit_with_parent(parent)
    return _score_chunk(scorer, frame, start, source)


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
    confine_to_root=False,
    trusted=None,
    max_model_bytes=None,
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
    model : fitted estimator, BatchScorer, or str or path-like
        See :class:`~mmfeat.scoring.BatchScorer`; or a file written by
        :func:`mmfeat.save`, loaded with :func:`mmfeat.load` (``trusted``
        and ``max_model_bytes`` passed on) after the outputs are checked,
        while the worker processes start.
    records : str or path
        Input ``.csv`` (UTF-8, header row, distinct column names) or
        ``.parquet``.
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
        Worker processes scoring chunks, one thread each whatever the model
        says; ``None`` means 1 (or the active joblib backend's setting, e.g.
        every worker of the cluster inside :func:`parallel_backend`), -1 all
        cores. On one machine, never more than its cores (a larger value is
        lowered, with a warning).
    on_error : {"missing", "raise"}, default="missing"
        See :class:`~mmfeat.scoring.BatchScorer`.
    id_column : str, default=None
        Column written next to each prediction (else ``row``).
    root : str or path, default=None
        Folder relative image/audio paths are relative to; default the
        records file's folder.
    resume : bool, default=False
        Continue an interrupted run into the same ``output``. The run is
        refused (nothing is scored) when the records file's content
        (SHA-256), the model, ``chunk_size``, ``on_error``, ``id_column`` or
        ``root`` changed since: its finished chunks belong to other input.
    progress : bool, default=False
        Show a progress bar with rows/s on stderr.
    model_id : str, default=None
        Identity of the model for the resume check; default the model
        file's SHA-256 when ``model`` is a file, else a hash of the model's
        bytes.
    confine_to_root : bool, default=False
        Refuse (as an error entry of its row) every image or audio path that
        resolves outside ``root``, links followed. See
        :class:`~mmfeat.scoring.BatchScorer`; ignored when ``model`` is a
        :class:`~mmfeat.scoring.BatchScorer` already.
    trusted : list of str, default=None
        Extra types to trust when ``model`` is a file.
    max_model_bytes : int, default=None
        The most a model file may hold uncompressed (default
        :data:`mmfeat.DEFAULT_MAX_BYTES`).

    Returns
    -------
    summary : dict
        ``rows``, ``scored``, ``unscored`` (rows with no prediction),
        ``errors`` (error entries), ``seconds`` (the whole call),
        ``load_seconds`` (loading a model file and starting the workers),
        ``scoring_seconds`` (the rest: reading, scoring, writing),
        ``rows_per_s`` (rows per scoring second), ``output``,
        ``errors_path``, ``resumed_chunks``, ``stale_lock`` (the owner of a
        dead run's lock that was taken over, else None).

    Raises
    ------
    ParameterError
        Before anything is scored: an output (or the error report) that is
        the records file or each other, also through links; an output
        folder that is missing or not writable; a resume that does not match
        the interrupted run.
    OutputError
        Another run is writing the same output (its PID and start time are
        named), or writing failed (disk full, ``ulimit -f``): one line that
        says what to do; no temporary file is left and an existing output is
        left as it was.
    InputError
        The records file is not a readable table (see :func:`iter_records`).

    Notes
    -----
    Safety of the output:

    - one run at a time per output: ``<output>.parts/lock`` holds the
      owner's PID, host and start time, and a run finding a live owner
      stops; a dead owner's lock is taken over;
    - the output and the error report are replaced only after every chunk
      of the input is present in the parts folder, each through a
      temporary ``<name>.mmfeat-tmp-<pid>`` that is removed on failure (and,
      left by a killed run, at the next run);
    - worker processes end within a fraction of a second when this process
      dies, even by ``SIGKILL``.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    records = check_records_path(records)
    output = os.fspath(output)
    out_fmt = records_format(output, "output")
    if errors is None:
        errors = os.path.splitext(output)[0] + ".errors.csv"
    errors = os.fspath(errors)
    err_fmt = records_format(errors, "errors")
    if not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ParameterError(f"chunk_size must be a positive int; got {chunk_size!r}")
    parts = _Parts(output)
    model_path = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
    inputs = {"records": records}
    if model_path is not None:
        inputs["model"] = model_path
    # every place written is checked before a record is read or scored
    check_output_paths(inputs, {"output": output, "errors": errors})
    parts_dir = os.path.realpath(parts.dir) + os.sep
    if os.path.realpath(records).startswith(parts_dir):
        raise ParameterError(
            f"records {records!r} is inside {parts.dir!r}, the folder this run "
            "keeps its finished chunks in and removes at the end; move it"
        )
    if root is None:
        root = os.path.dirname(os.path.abspath(records))
    if n_jobs is not None and not dask_active():
        asked = n_jobs
        n_jobs, lowered = count_cores(n_jobs)
        if lowered:
            logger.warning(
                f"{asked} jobs is more than the {n_jobs} cores here; using {n_jobs}"
            )
    t_load = time.perf_counter()
    if model_path is not None:
        model = _load(model_path, n_jobs, trusted, max_model_bytes)
        if model_id is None:
            model_id = file_sha256(model_path)
    load_seconds = time.perf_counter() - t_load
    scorer = (
        model
        if isinstance(model, BatchScorer)
        else BatchScorer(
            model,
            on_error=on_error,
            id_column=id_column,
            root=root,
            confine_to_root=confine_to_root,
        )
    )
    # the scorer's settings, not the arguments: a BatchScorer brings its own
    id_column = scorer.id_column
    text_cols = list(scorer.columns_) + ([id_column] if id_column else [])
    # the table is opened once: a Parquet footer is read here, not per question
    with RecordsTable(records) as table:
        id_type = None if id_column is None else table.arrow_type(id_column)
        schema = prediction_schema(scorer, id_type or _string())
        eschema = error_schema()
        if model_id is None:
            model_id = scorer.__getstate__()["_blob_key"]
        digest, total = table.fingerprint()
        manifest = {
            "records": os.path.abspath(records),
            "records_size": os.stat(records).st_size,
            "records_sha256": digest,
            "model": model_id,
            "chunk_size": chunk_size,
            "on_error": scorer.on_error,
            "id_column": scorer.id_column,
            "root": None if scorer.root is None else os.path.abspath(scorer.root),
            "confine_to_root": bool(scorer.confine_to_root),
            "prediction_column": scorer.prediction_column,
        }
        with parts.lock:
            for path in (output, errors):
                _remove_stale_temporaries(path)
            try:
                done = parts.start(manifest, resume=resume)
            except OSError as exc:
                if isinstance(exc, MmfeatError):
                    raise
                raise output_error(exc, parts.dir) from None
            try:
                n_chunks = _score_parts(
                    scorer,
                    table,
                    parts,
                    done,
                    chunk_size,
                    n_jobs,
                    text_cols,
                    total,
                    schema,
                    eschema,
                    progress,
                    tqdm,
                )
            except BaseException:
                # nothing to resume (no chunk, or a table that cannot be read
                # to its end, so must change before any run can finish): no
                # leftovers
                if parts.done() == 0 or parts.unreadable:
                    with contextlib.suppress(OSError):
                        parts.clear()
                raise
            # replace the outputs only with every chunk of this input in hand
            n_parts = parts.done()
            if n_parts != n_chunks or not parts.lock.held():
                raise OutputError(
                    f"{parts.dir} changed while this run was writing it (expected "
                    f"{n_chunks} finished chunk(s), found {n_parts}): another "
                    f"process removed or replaced it. {output} was left as it "
                    "was; run again",
                    errno=errno.ESTALE,
                )
            pred_paths = [parts.pred(i) for i in range(n_parts)]
            err_paths = [parts.err(i) for i in range(n_parts)]
            rows = _assemble(pred_paths, schema, output, out_fmt)
            n_err = _assemble(err_paths, eschema, errors, err_fmt)
            unscored = _count_null_predictions(pred_paths, schema.names[1])
            with contextlib.suppress(OSError):
                parts.clear()
    seconds = time.perf_counter() - t0
    scoring = seconds - load_seconds
    return {
        "rows": rows,
        "scored": rows - unscored,
        "unscored": unscored,
        "errors": n_err,
        "seconds": seconds,
        "load_seconds": load_seconds,
        "scoring_seconds": scoring,
        "rows_per_s": rows / scoring if scoring > 0 else float("nan"),
        "output": output,
        "errors_path": errors,
        "resumed_chunks": done,
        "stale_lock": parts.lock.took_over,
    }


def _load(path, n_jobs, trusted, max_bytes):
    """Load the model file while ``n_jobs`` worker processes start."""
    from mmfeat import DEFAULT_MAX_BYTES, load

    warm = None
    if n_jobs not in (None, 1) and not dask_active():
        # workers import their libraries while this process loads the model
        warm = warm_workers(n_jobs)
    model = load(
        path,
        trusted=trusted,
        max_bytes=DEFAULT_MAX_BYTES if max_bytes is None else max_bytes,
    )
    if warm is not None:
        warm.join()
    return model


def _string():
    import pyarrow as pa

    return pa.string()


def _score_parts(
    scorer,
    table,
    parts,
    done,
    chunk_size,
    n_jobs,
    text_cols,
    total,
    schema,
    eschema,
    progress,
    tqdm,
):
    """Score the chunks after ``done`` into ``parts``; return the chunk count."""
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
    source = os.path.basename(table.path)
    seen = [done]

    def chunks():
        try:
            for i, frame in enumerate(table.chunks(chunk_size, text_columns=text_cols)):
                if i >= done:
                    seen[0] = i + 1
                    yield i, frame
        except InputError:
            parts.unreadable = True
            raise

    def write(i, predictions, errs):
        _atomic_parquet(to_table(errs, eschema), parts.err(i))
        _atomic_parquet(to_table(predictions, schema), parts.pred(i))

    backend_n = get_active_backend()[1]
    eff = n_jobs if n_jobs is not None else backend_n
    try:
        if eff == 1 and not dask_active():
            for i, frame in chunks():
                n, predictions, errs = _score_chunk(
                    scorer, frame, i * chunk_size, source
                )
                write(i, predictions, errs)
                bar.update(n)
        else:
            index = []
            # workers watch this process and end with it (not Dask's workers)
            parent = None if dask_active() else os.getpid()

            def tasks():
                for i, frame in chunks():
                    index.append(i)
                    yield delayed(_score_in_worker)(
                        parent, scorer, frame, i * chunk_size, source
                    )

            results = Parallel(
                n_jobs=n_jobs,
                return_as="generator",
                pre_dispatch="2*n_jobs",
                **worker_kwargs(),
            )(tasks())
            for k, (n, predictions, errs) in enumerate(results):
                write(index[k], predictions, errs)
                bar.update(n)
        if bar.total is not None and bar.n != bar.total:
            # the count ahead of the run is an estimate (a CSV's blank lines)
            bar.total = bar.n
            bar.refresh()
    finally:
        bar.close()
    return seen[0]


def _count_null_predictions(paths, column):
    import pyarrow.parquet as pq

    return sum(pq.read_table(p, columns=[column]).column(0).null_count for p in paths)
