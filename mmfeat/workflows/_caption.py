"""``mmfeat caption``: a saved captioner over a records file, like ``mmfeat score``."""

import os
import time

from mmfeat.exceptions import ParameterError
from mmfeat.fusion import get_modalities, unwrap_model
from mmfeat.scoring import BatchScorer, check_output_paths, file_sha256, score_file
from mmfeat.utils._tags import get_item_tags
from mmfeat.workflows._common import load_model

__all__ = ["caption_file"]


def _check_captioner(model, path):
    inner = unwrap_model(model)
    kind = get_item_tags(inner).target
    where = path or type(inner).__name__
    if kind not in ("text", "attributes"):
        what = (
            "a tag predictor (its predictions are lists; use "
            "TagPredictor.predict in Python)"
            if kind == "tags"
            else f"a {type(inner).__name__}, not a captioner"
        )
        raise ParameterError(
            f"{where} is {what}; mmfeat caption runs the text generators of "
            "mmfeat.generation (mmfeat score runs classifiers)"
        )
    cols = [c for m in get_modalities(model) for c in (m.columns or [])]
    if not cols:
        raise ParameterError(
            f"{where} was fitted on a plain list of photos, so it does not say "
            "which column of a records file holds them: fit it on a table "
            "column, e.g. model.fit(frame[['image']], titles), and save it again"
        )


def caption_file(
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
    confine_to_root=False,
    trusted=None,
    max_model_bytes=None,
):
    """Caption every record of a CSV or Parquet file with a fitted captioner.

    :func:`~mmfeat.scoring.score_file` with a captioner of
    :mod:`mmfeat.generation`: the same chunking, parallel workers,
    ``resume``, error report and row alignment; the output has the id (or
    ``row``) and ``caption`` (null for a record whose photo could not be
    read, which has an entry in the error report).

    Parameters
    ----------
    model : fitted captioner, or str or path-like
        A :class:`~mmfeat.generation.NearestNeighborCaptioner`,
        :class:`~mmfeat.generation.AttributeCaptioner` or
        :class:`~mmfeat.generation.HybridCaptioner` fitted on a table (so
        it knows its photo column), or its file from :func:`mmfeat.save`.
    records, output, errors, chunk_size, n_jobs, on_error, id_column, root,
    resume, progress, confine_to_root, trusted, max_model_bytes
        As for :func:`~mmfeat.scoring.score_file`.

    Returns
    -------
    summary : dict
        As :func:`~mmfeat.scoring.score_file` returns it (``scored`` rows
        have a caption).
    """
    if isinstance(model, (str, os.PathLike)):
        # score_file is given the loaded model: the model file is checked
        # here, before anything is loaded or written
        err_path = errors
        if err_path is None:
            err_path = os.path.splitext(os.fspath(output))[0] + ".errors.csv"
        check_output_paths(
            {"records": os.fspath(records), "model": os.fspath(model)},
            {"output": os.fspath(output), "errors": os.fspath(err_path)},
        )
    t0 = time.perf_counter()
    model, path = load_model(model, trusted=trusted, max_bytes=max_model_bytes)
    load_seconds = time.perf_counter() - t0
    _check_captioner(model, path)
    if root is None:
        root = os.path.dirname(os.path.abspath(os.fspath(records)))
    scorer = BatchScorer(
        model,
        on_error=on_error,
        id_column=id_column,
        root=root,
        confine_to_root=confine_to_root,
        prediction_column="caption",
    )
    summary = score_file(
        scorer,
        records,
        output,
        errors=errors,
        chunk_size=chunk_size,
        n_jobs=n_jobs,
        resume=resume,
        progress=progress,
        model_id=file_sha256(path) if path is not None else None,
    )
    # the model was loaded here, not by score_file
    summary["load_seconds"] += load_seconds
    summary["seconds"] += load_seconds
    return summary
