"""extract_file: a fitted model's features of a records file, to Parquet."""

import copy
import os
import time

import numpy as np

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.utils._dask import count_cores, single_threaded
from mmfeat.utils._item_errors import capture_item_errors
from mmfeat.workflows._common import load_model, logger

__all__ = ["extract_file"]


def _as_list(cols):
    return [cols] if isinstance(cols, str) else list(cols)


def feature_part(model, modality=None):
    """``(fitted transformer, its input columns, its name)`` of a fitted model.

    A model-level ensemble's modality ``modality`` (its pipeline without the
    classifier); a fused model's block ``modality``, or its whole fuser when
    ``modality`` is None.
    """
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
            raise ParameterError(
                f"modality (--modality) must be one of {names}; got {modality!r}"
            )
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
        cols = [c for _, _, cs in fuser.transformers for c in _as_list(cs)]
        return fuser, list(dict.fromkeys(cols)), "fused"
    blocks = {name: (part, cols) for name, part, cols in fuser.transformers_}
    if modality not in blocks or modality == "remainder":
        raise ParameterError(
            "modality (--modality) must be one of "
            f"{[b for b in blocks if b != 'remainder']}; got {modality!r}"
        )
    part, cols = blocks[modality]
    return part, cols, modality


def _path_columns(part, col_list):
    """The columns of ``part`` that hold file paths (image and audio)."""
    from mmfeat.scoring import reads_files

    if hasattr(part, "transformers_"):
        return {
            c
            for _, block, bcols in part.transformers_
            if not isinstance(block, str) and reads_files(block)
            for c in _as_list(bcols)
        }
    return set(col_list) if reads_files(part) else set()


def extract_file(
    model,
    records,
    output,
    *,
    modality=None,
    errors=None,
    chunk_size=1000,
    n_jobs=None,
    on_error="missing",
    id_column=None,
    root=None,
    confine_to_root=False,
    trusted=None,
    max_model_bytes=None,
):
    """Write the features a fitted model computes for each record to Parquet.

    The records are streamed ``chunk_size`` rows at a time through one
    modality's feature steps (a late-fusion or stacking model's pipeline
    without its classifier, or one block of a fuser) or through the whole
    :class:`~mmfeat.fusion.MultimodalFuser` of an early-fusion model. The
    output has one row per record, in input order: the id (or ``row``), then
    one float32 column per feature. Bad items give rows of NaN and an entry
    in the error report. This is ``mmfeat extract``.

    Parameters
    ----------
    model : fitted estimator, or str or path-like
        A fitted fusion model, or a file written by :func:`mmfeat.save`
        (loaded with :func:`mmfeat.load`, ``trusted`` and
        ``max_model_bytes`` passed on). A model given as an object is not
        changed (its copy is).
    records : str or path-like
        The ``.csv`` or ``.parquet`` records.
    output : str or path-like
        The features, a ``.parquet`` file (written atomically).
    modality : str, default=None
        The modality (or fuser block) whose features to write; ``None``:
        the whole fuser of an early-fusion model.
    errors : str or path-like, default=None
        Error report (``.csv`` or ``.parquet``): ``row``, ``id``, ``column``,
        ``source``, ``reason``; default ``<output stem>.errors.csv``. Always
        written.
    chunk_size : int, default=1000
        Records per chunk.
    n_jobs : int, default=None
        Threads of the model's extractors, BLAS and OpenCV, whatever the
        model says (``None``: 1, -1: all cores, never more than the machine
        has).
    on_error : {"missing", "raise"}, default="missing"
        A bad item becomes a NaN row and an error entry, or stops the run
        with :class:`~mmfeat.InputError` naming its row.
    id_column : str, default=None
        Column written first (else ``row``, the record's position).
    root : str or path-like, default=None
        Folder relative paths are relative to; default the records file's.
    confine_to_root : bool, default=False
        Read image and audio files only from under ``root`` (links
        followed); a path that leaves it is not read and is its record's
        error.
    trusted : list of str, default=None
        Extra types to trust when ``model`` is a file.
    max_model_bytes : int, default=None
        The most a model file may hold uncompressed (default
        :data:`mmfeat.DEFAULT_MAX_BYTES`).

    Returns
    -------
    summary : dict
        ``rows``, ``n_features``, ``name`` (the modality, or ``"fused"``),
        ``errors`` (entries), ``seconds``, ``output``, ``errors_path``.

    Raises
    ------
    ParameterError
        Before anything is read: an output that is not ``.parquet``, an
        output or report that is an input (also through links) or cannot be
        written, an unknown modality.
    InputError
        The records are not a readable table, lack a column the part reads,
        or have no rows; with ``on_error="raise"``, the first bad item.

    See Also
    --------
    mmfeat.scoring.score_file : Predictions instead of features.

    Examples
    --------
    The image features of a late-fusion model, one row per record::

        from mmfeat.workflows import extract_file

        extract_file("model.skops", "products.csv", "image.parquet",
                     modality="image", id_column="id")
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import scipy.sparse as sp

    from mmfeat.scoring import (
        atomic_output,
        cap_resources,
        check_output_paths,
        iter_records,
        resolve_paths,
        set_on_error,
        write_error_report,
    )

    t0 = time.perf_counter()
    records = os.fspath(records)
    output = os.fspath(output)
    if not output.lower().endswith((".parquet", ".pq")):
        raise ParameterError(f"output must be a .parquet file; got {output!r}")
    if on_error not in ("missing", "raise"):
        raise ParameterError(f"on_error must be 'missing' or 'raise'; got {on_error!r}")
    if not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ParameterError(f"chunk_size must be a positive int; got {chunk_size!r}")
    err_path = (
        os.fspath(errors)
        if errors is not None
        else os.path.splitext(output)[0] + ".errors.csv"
    )
    inputs = {"records": records}
    if isinstance(model, (str, os.PathLike)):
        inputs["model"] = os.fspath(model)
    # nothing is read or computed before every output is known to be writable
    # and none of them is an input
    check_output_paths(inputs, {"output": output, "errors": err_path})
    n_threads, lowered = count_cores(n_jobs)
    if lowered:
        logger.warning(
            f"{n_jobs} jobs is more than the {n_threads} cores here; using {n_threads}"
        )
    model, path = load_model(model, trusted=trusted, max_bytes=max_model_bytes)
    part, cols, name = feature_part(model, modality)
    if path is None:
        part = copy.deepcopy(part)  # the caller's model stays as it was
    set_on_error(part, on_error)
    col_list = _as_list(cols)
    path_cols = _path_columns(part, col_list)  # a title is not a path
    if root is None:
        root = os.path.dirname(os.path.abspath(records))
    try:
        names = [str(n) for n in part.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        names = None
    key = id_column or "row"
    found = []
    start = 0
    text_cols = col_list + ([id_column] if id_column else [])
    cap_resources(part, n_threads)
    with single_threaded(n_threads), atomic_output(output) as tmp:
        writer = None
        try:
            for chunk in iter_records(records, chunk_size, text_columns=text_cols):
                ids = (
                    chunk[id_column].astype(str).to_numpy()
                    if id_column
                    else np.arange(start, start + len(chunk))
                )
                for c in col_list:
                    if c not in chunk.columns:
                        raise InputError(
                            f"no column {c!r} in the records", source=records
                        )
                    if c in path_cols:
                        chunk[c], refused = resolve_paths(
                            chunk[c].tolist(), root, confine=confine_to_root
                        )
                        if refused and on_error == "raise":
                            i, exc = refused[0]
                            raise exc.with_row(start + i) from None
                        found.extend(
                            (start + i, str(ids[i]), name, exc.source, exc.reason)
                            for i, exc in refused
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
                found.extend(
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
                raise InputError("the records file has no rows", source=records)
        finally:
            if writer is not None:
                writer.close()
    n_errors = write_error_report(found, err_path)
    return {
        "rows": start,
        "n_features": len(names),
        "name": name,
        "errors": n_errors,
        "seconds": time.perf_counter() - t0,
        "output": output,
        "errors_path": err_path,
    }
