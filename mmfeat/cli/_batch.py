"""``mmfeat fit``, ``score``, ``extract`` and ``info``: the batch workflow."""

import argparse
import contextlib
import errno
import os
import sys
import time

import numpy as np
import pandas as pd

from mmfeat.exceptions import InputError, MmfeatError, ParameterError
from mmfeat.utils._oserrors import os_error_advice

__all__ = ["add_batch_commands", "run_batch_command"]

_KINDS = ("image", "text", "audio")


def add_batch_commands(sub):
    """Add the fit / score / extract / info sub-commands to ``sub``."""
    fit = sub.add_parser(
        "fit",
        help="fit a multimodal model on a records file and save it",
        description=(
            "Fit a model on a CSV or Parquet table with one column per modality "
            "(image and audio paths, relative to the table's folder or absolute; "
            "text) and a label column. Prints the fusion report on a held-out "
            "split, refits on every row, and saves the model with mmfeat.save."
        ),
    )
    fit.add_argument("--data", required=True, help="records, .csv or .parquet")
    fit.add_argument("--image-col", help="column of image paths")
    fit.add_argument("--text-col", help="column of text")
    fit.add_argument("--audio-col", help="column of audio paths")
    fit.add_argument("--label-col", required=True, help="column of class labels")
    fit.add_argument(
        "--fusion",
        choices=["early", "late", "stacking"],
        default="late",
        help="feature-level (early), weighted late fusion, or stacking (default: late)",
    )
    fit.add_argument(
        "--classifier",
        choices=["logistic", "linear-svm", "random-forest"],
        default="logistic",
        help="classifier per modality (default: logistic)",
    )
    fit.add_argument(
        "--image-features",
        default="hog,color",
        help="comma-separated image descriptors among hog, color, bovw "
        "(default: hog,color)",
    )
    fit.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        help="held-out share for the report (default 0.2; 0 skips)",
    )
    fit.add_argument(
        "--no-refit",
        action="store_true",
        help="keep the model fitted on the training split only",
    )
    fit.add_argument(
        "--root",
        help="folder relative paths are relative to "
        "(default: the records file's folder)",
    )
    _confine_arg(fit)
    fit.add_argument("--random-state", type=int, default=0)
    fit.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="cores to use: parallel modality fits, extractor and BLAS/OpenCV "
        "threads (default 1; -1 all cores; at most the machine's cores)",
    )
    fit.add_argument("-o", "--output", required=True, help="model file (.skops)")

    score = sub.add_parser(
        "score",
        help="score a records file with a saved model",
        description=(
            "Stream a CSV or Parquet table through a saved model in chunks and "
            "write one prediction per record, in input order, with per-class "
            "probabilities; bad records are scored from the modalities they "
            "still have and listed in the error report."
        ),
    )
    _model_args(score)
    score.add_argument(
        "-o", "--output", required=True, help="predictions, .parquet or .csv"
    )
    score.add_argument(
        "--errors",
        help="error report, .csv or .parquet (default: <output stem>.errors.csv)",
    )
    score.add_argument(
        "--chunk-size", type=int, default=1000, help="records per chunk (default 1000)"
    )
    score.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="worker processes, one thread each whatever the model file "
        "says (default 1; -1 all cores; at most the machine's cores; with "
        "--scheduler, every worker of the cluster)",
    )
    score.add_argument(
        "--on-error",
        choices=["missing", "raise"],
        default="missing",
        help="score a bad record from its other modalities and "
        "report it (missing, default), or stop (raise)",
    )
    score.add_argument(
        "--id-col",
        help="column written next to each prediction (default: the row number)",
    )
    score.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run into the same output",
    )
    score.add_argument(
        "--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786"
    )
    score.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar with rows/s on stderr (default: when stderr is a terminal)",
    )

    extract = sub.add_parser(
        "extract",
        help="write a saved model's features of a records file to Parquet",
        description=(
            "Write the features one modality of a saved model computes (or the "
            "fuser's fused features) for every record, one row per record."
        ),
    )
    _model_args(extract)
    extract.add_argument(
        "--modality",
        help="modality (or fuser block) name; "
        "default: the whole fuser of an early-fusion model",
    )
    extract.add_argument("-o", "--output", required=True, help="features, .parquet")
    extract.add_argument(
        "--errors", help="error report (default: <output stem>.errors.csv)"
    )
    extract.add_argument("--chunk-size", type=int, default=1000)
    extract.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="threads for the model's extractors, BLAS and OpenCV, whatever "
        "the model file says (default 1; -1 all cores; at most the "
        "machine's cores)",
    )
    extract.add_argument("--on-error", choices=["missing", "raise"], default="missing")
    extract.add_argument("--id-col", help="column written next to the features")

    info = sub.add_parser(
        "info",
        help="describe a saved model",
        description="Print a saved model's modalities, "
        "classes, parameters and the versions it was saved "
        "with.",
    )
    info.add_argument("model", help="model file (.skops)")
    info.add_argument(
        "--trusted",
        nargs="*",
        default=None,
        metavar="TYPE",
        help="extra types to trust when loading",
    )
    _max_model_bytes_arg(info)


def _model_args(parser):
    parser.add_argument(
        "model", help="model file (.skops), from mmfeat fit or mmfeat.save"
    )
    parser.add_argument("records", help="records, .csv or .parquet")
    parser.add_argument(
        "--root",
        help="folder relative paths are relative to "
        "(default: the records file's folder)",
    )
    _confine_arg(parser)
    parser.add_argument(
        "--trusted",
        nargs="*",
        default=None,
        metavar="TYPE",
        help="extra types to trust when loading the model",
    )
    _max_model_bytes_arg(parser)


def _confine_arg(parser):
    parser.add_argument(
        "--confine-to-root",
        action="store_true",
        help="read image and audio files only from under the root (--root, "
        "else the records file's folder): a path that resolves outside it "
        "(absolute, '..', or a symlink) is not opened and is that record's "
        "error. Default: any path the records name is read",
    )


def run_batch_command(args, out=None, err=None):
    """Run one batch sub-command; return the exit status.

    Errors end the command with one line on ``err``, ``mmfeat <command>:
    error: ...``, saying what was wrong and what to do, and status 2: bad
    parameters and input (:class:`~mmfeat.MmfeatError`), and what the
    machine refused (an ``OSError``: a missing folder, a read-only or full
    disk, a file-size limit; a ``MemoryError``). No traceback is printed.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        return {"fit": _fit, "score": _score, "extract": _extract, "info": _info}[
            args.command
        ](args, out, err)
    except MmfeatError as exc:
        message = str(exc)
    except OSError as exc:
        message = _os_error_message(exc, args.command)
    except MemoryError as exc:
        message = _memory_error_message(exc, args.command)
    print(f"mmfeat {args.command}: error: {_one_line(message)}", file=err)
    return 2


def _one_line(text):
    return " ".join(str(text).split())


def _os_error_message(exc, command):
    """One line for an ``OSError``: the file, the reason, what to do."""
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    where = getattr(exc, "filename", None)
    other = getattr(exc, "filename2", None)
    if where is not None:
        where = repr(os.fspath(where))
        if other is not None:
            where += f" -> {os.fspath(other)!r}"
        text = f"{where}: {reason}"
    else:
        text = reason
    advice = os_error_advice(code)
    if command == "score" and code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        advice += "; finished chunks are kept: run again with --resume"
    return f"{text}; {advice}"


def _memory_error_message(exc, command):
    detail = f" ({exc})" if str(exc) else ""
    todo = "lower --chunk-size"
    if command == "score":
        todo += " or --n-jobs, then run again with --resume"
    return f"out of memory{detail}; {todo}, or use a machine with more memory"


def _cores(n_jobs, flag="--n-jobs"):
    """``n_jobs`` as a count of this machine's cores (None: 1), and a note.

    A value above the core count is lowered to it: more threads or
    processes than cores only compete (a model file or a typo asking for
    20000 would start 20000).
    """
    from joblib import cpu_count, effective_n_jobs

    if n_jobs is None:
        return 1, None
    if n_jobs == 0:
        raise ParameterError(f"{flag} must not be 0; give 1, a count, or -1 (all)")
    cores = cpu_count()
    n = effective_n_jobs(n_jobs)
    if n > cores:
        return (
            cores,
            f"{flag} {n_jobs} is more than the {cores} cores here; using {cores}",
        )
    return n, None


@contextlib.contextmanager
def _limited(model, n_threads):
    """Run with every part of ``model`` and BLAS/OpenCV at ``n_threads``.

    The one place the CLI caps what a model file may start in this process
    (``mmfeat score`` caps its workers the same way, in the scorer).
    """
    from mmfeat.scoring import cap_resources, single_threaded

    cap_resources(model, n_threads)
    with single_threaded(n_threads):
        yield model


def _max_model_bytes_arg(parser):
    from mmfeat import DEFAULT_MAX_BYTES

    parser.add_argument(
        "--max-model-bytes",
        type=_positive_bytes,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help="the most the model file may hold uncompressed (default "
        f"{DEFAULT_MAX_BYTES:,} bytes); checked before anything is inflated",
    )


def _positive_bytes(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a positive number of bytes, got {text!r}"
        )
    return value


def _load(args):
    from mmfeat import load

    return load(args.model, trusted=args.trusted, max_bytes=args.max_model_bytes)


# -- fit ---------------------------------------------------------------------
def _fit(args, out, err):
    from mmfeat import save
    from mmfeat.scoring import check_output_paths, make_default_model, read_records

    # a model file that cannot be written is found before the fit, not after
    check_output_paths({"records": args.data}, {"output": args.output})

    columns = {
        k: getattr(args, f"{k}_col") for k in _KINDS if getattr(args, f"{k}_col")
    }
    if not columns:
        raise ParameterError(
            "give at least one of --image-col, --text-col, --audio-col"
        )
    feats = [f.strip() for f in args.image_features.split(",") if f.strip()]
    n_jobs, note = _cores(args.n_jobs)
    if note:
        print(note, file=err)
    model = make_default_model(
        columns,
        fusion=args.fusion,
        classifier=args.classifier,
        image_features=feats,
        random_state=args.random_state,
        n_jobs=n_jobs,
    )
    t0 = time.perf_counter()
    data = args.data
    frame = read_records(data, text_columns=list(columns.values()))
    needed = list(columns.values()) + [args.label_col]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise InputError(
            f"no column(s) {absent} in the records (columns: "
            f"{list(frame.columns)[:12]})",
            source=data,
        )
    if len(frame) == 0:
        raise InputError("the records file has no rows", source=data)
    labels = frame[args.label_col]
    no_label = labels.isna().to_numpy()
    row_of = np.flatnonzero(~no_label)  # record of each kept row
    if no_label.any():
        rows = np.flatnonzero(no_label)
        print(
            f"left out {len(rows)} record(s) without a label (rows "
            f"{rows[:10].tolist()}{' ...' if len(rows) > 10 else ''})",
            file=err,
        )
        frame = frame.loc[~no_label].reset_index(drop=True)
    y = frame[args.label_col].to_numpy()
    if len(np.unique(y)) < 2:
        raise InputError(
            f"the label column {args.label_col!r} needs at least 2 classes; got "
            f"{np.unique(y).tolist()}",
            source=data,
        )
    root = args.root or os.path.dirname(os.path.abspath(data))
    X = frame[list(dict.fromkeys(columns.values()))].copy()
    for kind in ("image", "audio"):
        col = columns.get(kind)
        if col is not None:
            X[col] = _paths(
                X[col].tolist(), root, args.confine_to_root, col, err, row_of
            )
    _, counts = np.unique(y, return_counts=True)
    print(
        f"{len(y)} records, {len(counts)} classes, modalities: "
        + ", ".join(f"{k}={c!r}" for k, c in columns.items())
        + f"; {args.fusion} fusion, {args.classifier}",
        file=out,
    )
    with _limited(model, n_jobs):
        _fit_and_report(model, X, y, counts, args, out, err)
    try:
        path = save(model, args.output)
    except OSError as exc:
        if isinstance(exc, MmfeatError) or exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), args.output) from None
    print(
        f"\nsaved {type(model).__name__} to {path} ({time.perf_counter() - t0:.1f} s)",
        file=out,
    )
    return 0


def _paths(values, root, confine, col, err, row_of):
    """A fit column's paths joined to ``root``; confined ones checked."""
    from mmfeat.scoring import confine_path, resolve_path

    if not confine:
        return [resolve_path(v, root) for v in values]
    out, refused = [], []
    for i, v in enumerate(values):
        try:
            out.append(confine_path(v, root))
        except InputError:
            out.append(None)
            refused.append(int(row_of[i]))
    if refused:
        print(
            f"--confine-to-root: {len(refused)} path(s) in {col!r} resolve outside "
            f"{root!r} and were not read; those records have no {col!r} (rows "
            f"{refused[:10]}{' ...' if len(refused) > 10 else ''})",
            file=err,
        )
    return out


def _fit_and_report(model, X, y, counts, args, out, err):
    from sklearn.model_selection import train_test_split

    from mmfeat.evaluation import fusion_report

    if args.test_size > 0:
        stratify = y if counts.min() >= 2 else None
        if stratify is None:
            print(
                "some classes have a single record: the held-out split is "
                "not stratified",
                file=err,
            )
        X_tr, X_te, y_tr, y_te = train_test_split(
            X,
            y,
            test_size=args.test_size,
            stratify=stratify,
            random_state=args.random_state,
        )
        model.fit(X_tr, y_tr)
        report = fusion_report(model, X_te, y_te)
        print(f"\nheld-out report ({len(y_te)} records):", file=out)
        print(report.to_string(float_format=lambda v: f"{v:.4f}"), file=out)
        if not args.no_refit:
            model.fit(X, y)
    else:
        model.fit(X, y)


# -- score -------------------------------------------------------------------
def _score(args, out, err):
    from mmfeat.scoring import file_sha256, parallel_backend, score_file

    n_jobs = args.n_jobs
    if not args.scheduler and n_jobs is not None:
        n_jobs, note = _cores(n_jobs)
        if note:
            print(note, file=err)
    warm = None
    if not args.scheduler and n_jobs not in (None, 1):
        # workers import their libraries while this process loads the model
        from mmfeat.scoring import warm_workers

        warm = warm_workers(n_jobs)
    model = _load(args)
    if warm is not None:
        warm.join()
    progress = args.progress if args.progress is not None else err.isatty()
    root = args.root or os.path.dirname(os.path.abspath(args.records))
    # score_file's BatchScorer holds one thread per worker whatever the model
    # file says (cap_resources) and confines paths to the root when asked
    kwargs = dict(
        errors=args.errors,
        chunk_size=args.chunk_size,
        on_error=args.on_error,
        id_column=args.id_col,
        root=root,
        confine_to_root=args.confine_to_root,
        resume=args.resume,
        progress=progress,
        model_id=file_sha256(args.model),
    )
    try:
        if args.scheduler:
            with parallel_backend(args.scheduler):
                summary = score_file(
                    model, args.records, args.output, n_jobs=n_jobs or -1, **kwargs
                )
        else:
            summary = score_file(
                model, args.records, args.output, n_jobs=n_jobs, **kwargs
            )
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished chunks are kept; run the same command "
            "with --resume to continue",
            file=err,
        )
        return 130
    resumed = (
        f", resumed after {summary['resumed_chunks']} chunk(s)"
        if summary["resumed_chunks"]
        else ""
    )
    print(
        f"scored {summary['rows']} records in {summary['seconds']:.1f} s "
        f"({summary['rows_per_s']:.0f} rows/s{resumed}): {summary['scored']} "
        f"with a prediction, {summary['unscored']} without -> {summary['output']}",
        file=out,
    )
    print(f"{summary['errors']} error entries -> {summary['errors_path']}", file=out)
    return 0


# -- extract -----------------------------------------------------------------
def _feature_part(model, modality):
    """The fitted transformer to run, its input columns, its name."""
    from mmfeat.fusion import (
        find_fuser,
        is_modality_ensemble,
        split_modality_model,
        unwrap_model,
    )

    model = unwrap_model(model)
    if is_modality_ensemble(model):
        names = list(model.modality_names_)
        if modality is None or modality not in names:
            raise ParameterError(f"--modality must be one of {names}; got {modality!r}")
        k = names.index(modality)
        head, _ = split_modality_model(model.estimators_[k])
        if head is None:
            raise ParameterError(f"modality {modality!r} has no feature step")
        return head, model.estimators[k][2], modality
    fuser = find_fuser(model)
    if fuser is None:
        raise ParameterError(
            "extract needs a fusion model (late, stacking, or a Pipeline with a "
            f"MultimodalFuser); got {type(model).__name__}"
        )
    if modality is None:
        cols = [
            c
            for _, _, cs in fuser.transformers
            for c in ([cs] if isinstance(cs, str) else list(cs))
        ]
        return fuser, list(dict.fromkeys(cols)), "fused"
    blocks = {name: (part, cols) for name, part, cols in fuser.transformers_}
    if modality not in blocks or modality == "remainder":
        raise ParameterError(
            f"--modality must be one of {[b for b in blocks if b != 'remainder']}"
            f"; got {modality!r}"
        )
    part, cols = blocks[modality]
    return part, cols, modality


def _extract(args, out, err):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import scipy.sparse as sp

    from mmfeat.scoring import (
        ERROR_COLUMNS,
        atomic_output,
        check_output_paths,
        error_schema,
        iter_records,
        reads_files,
        set_on_error,
        to_table,
    )
    from mmfeat.utils._item_errors import capture_item_errors

    if not args.output.lower().endswith((".parquet", ".pq")):
        raise ParameterError(f"--output must be a .parquet file; got {args.output!r}")
    err_path = args.errors or os.path.splitext(args.output)[0] + ".errors.csv"
    # nothing is read or computed before every output is known to be writable
    # and none of them is an input
    check_output_paths(
        {"records": args.records, "model": args.model},
        {"output": args.output, "errors": err_path},
    )
    n_threads, note = _cores(args.n_jobs)
    if note:
        print(note, file=err)
    model = _load(args)
    part, cols, name = _feature_part(model, args.modality)
    set_on_error(part, args.on_error)
    col_list = [cols] if isinstance(cols, str) else list(cols)
    # only image and audio columns hold paths (a title is not one)
    if hasattr(part, "transformers_"):
        path_cols = {
            c
            for _, block, bcols in part.transformers_
            if not isinstance(block, str) and reads_files(block)
            for c in ([bcols] if isinstance(bcols, str) else list(bcols))
        }
    else:
        path_cols = set(col_list) if reads_files(part) else set()
    root = args.root or os.path.dirname(os.path.abspath(args.records))
    try:
        names = [str(n) for n in part.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        names = None
    key = args.id_col or "row"
    errors = []
    start = 0
    t0 = time.perf_counter()
    text_cols = col_list + ([args.id_col] if args.id_col else [])
    with _limited(part, n_threads), atomic_output(args.output) as tmp:
        writer = None
        try:
            for chunk in iter_records(
                args.records, args.chunk_size, text_columns=text_cols
            ):
                ids = (
                    chunk[args.id_col].astype(str).to_numpy()
                    if args.id_col
                    else np.arange(start, start + len(chunk))
                )
                for c in col_list:
                    if c not in chunk.columns:
                        raise InputError(
                            f"no column {c!r} in the records", source=args.records
                        )
                    if c in path_cols:
                        chunk[c] = _extract_paths(
                            chunk[c].tolist(), root, args, start, ids, name, errors
                        )
                Xm = (
                    chunk[cols]
                    if isinstance(cols, str) or len(col_list) > 1
                    else chunk[col_list]
                )
                with capture_item_errors() as log:
                    feats = part.transform(Xm)
                if sp.issparse(feats):
                    feats = feats.toarray()
                feats = np.asarray(feats, dtype=np.float32)
                if names is None or len(names) != feats.shape[1]:
                    names = [f"{name}{j}" for j in range(feats.shape[1])]
                errors.extend(
                    (start + e.row, str(ids[e.row]), name, e.source, e.reason)
                    for e in log
                )
                table = pa.table(
                    [pa.array(ids)]
                    + [pa.array(feats[:, j]) for j in range(feats.shape[1])],
                    names=[key] + names,
                )
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                start += len(chunk)
            if writer is None:
                raise InputError("the records file has no rows", source=args.records)
        finally:
            if writer is not None:
                writer.close()
    frame = pd.DataFrame(sorted(errors, key=lambda e: e[0]), columns=ERROR_COLUMNS)
    table = to_table(frame, error_schema())
    with atomic_output(err_path) as tmp:
        if err_path.lower().endswith((".parquet", ".pq")):
            pq.write_table(table, tmp)
        else:
            table.to_pandas().to_csv(tmp, index=False, encoding="utf-8")
    print(
        f"wrote {start} x {len(names)} {name} features in "
        f"{time.perf_counter() - t0:.1f} s -> {args.output}; "
        f"{len(errors)} error entries -> {err_path}",
        file=out,
    )
    return 0


def _extract_paths(values, root, args, start, ids, name, errors):
    """A chunk's paths joined to ``root``; with --confine-to-root, checked."""
    from mmfeat.scoring import confine_path, resolve_path

    if not args.confine_to_root:
        return [resolve_path(v, root) for v in values]
    out = []
    for i, v in enumerate(values):
        try:
            out.append(confine_path(v, root))
        except InputError as exc:
            if args.on_error == "raise":
                raise exc.with_row(start + i) from None
            errors.append((start + i, str(ids[i]), name, exc.source, exc.reason))
            out.append(None)
    return out


# -- info --------------------------------------------------------------------
def _short(est):
    params = est.get_params(deep=False) if hasattr(est, "get_params") else {}
    try:
        default = type(est)().get_params(deep=False)
    except TypeError:
        default = {}
    changed = {
        k: v
        for k, v in params.items()
        if not hasattr(v, "get_params")
        and not isinstance(v, list)
        and k in default
        and repr(default[k]) != repr(v)
    }
    inner = ", ".join(f"{k}={v!r}" for k, v in changed.items())
    return f"{type(est).__name__}({inner})"


def _describe(est, indent, out):
    steps = getattr(est, "steps", None)
    if steps is not None:
        for name, step in steps:
            print(f"{indent}{name}: {_short(step)}", file=out)
            for sub in getattr(step, "transformer_list", []) or []:
                print(f"{indent}  {sub[0]}: {_short(sub[1])}", file=out)
        return
    print(f"{indent}{_short(est)}", file=out)


def _info(args, out, err):
    from mmfeat import model_metadata
    from mmfeat.fusion import find_fuser, is_modality_ensemble, unwrap_model

    meta = model_metadata(args.model)
    model = _load(args)
    inner = unwrap_model(model)
    print(f"model: {args.model} ({os.path.getsize(args.model):,} bytes)", file=out)
    print(f"type: {type(model).__name__}", file=out)
    if meta:
        pkgs = (
            "mmfeat",
            "scikit-learn",
            "imbalanced-learn",
            "numpy",
            "scipy",
            "skops",
            "python",
        )
        saved = ", ".join(f"{k} {meta[k]}" for k in pkgs if k in meta)
        print(f"saved: {meta.get('saved_at', '?')} with {saved}", file=out)
    classes = getattr(inner, "classes_", None)
    if classes is not None:
        shown = ", ".join(map(str, classes[:30]))
        more = f" ... ({len(classes)} in all)" if len(classes) > 30 else ""
        print(f"classes ({len(classes)}): {shown}{more}", file=out)
    if is_modality_ensemble(inner):
        rows = getattr(inner, "n_training_rows_", None) or {}
        weights = getattr(inner, "weights_", None)
        print("modalities:", file=out)
        for name, est, cols in inner.estimators:
            extra = []
            if name in rows:
                extra.append(f"{rows[name]} training rows")
            if isinstance(weights, dict) and name in weights:
                extra.append(f"weight {weights[name]:.3f}")
            print(
                f"  {name} <- {cols!r}" + (f" ({', '.join(extra)})" if extra else ""),
                file=out,
            )
            _describe(est, "    ", out)
        final = getattr(inner, "final_estimator", None)
        if final is not None:
            print(f"final estimator: {_short(final)}", file=out)
    else:
        fuser = find_fuser(inner)
        if fuser is not None:
            print("modalities (fused blocks):", file=out)
            for name, est, cols in fuser.transformers:
                print(f"  {name} <- {cols!r}", file=out)
                _describe(est, "    ", out)
        print("steps:", file=out)
        _describe(inner, "  ", out)
    print(f"parameters: {_short(inner)}", file=out)
    return 0
