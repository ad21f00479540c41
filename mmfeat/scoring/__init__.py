"""Batch scoring: records in, one prediction per record out, errors reported.

:class:`BatchScorer` scores one chunk (a pandas DataFrame, or a partition of
a Dask or Spark DataFrame); :func:`score_file` streams a CSV or Parquet file
through it in chunks, in parallel, with atomic per-chunk output and resume;
:func:`parallel_backend` sends that work to a Dask cluster through joblib.
``mmfeat score`` is the command-line face of :func:`score_file`.
"""

from mmfeat.scoring._defaults import make_default_model
from mmfeat.scoring._files import (
    atomic_output,
    check_output_paths,
    count_records,
    error_schema,
    iter_records,
    parallel_backend,
    read_records,
    score_file,
    single_threaded,
    to_table,
    warm_workers,
)
from mmfeat.scoring._scorer import (
    ERROR_COLUMNS,
    BatchScorer,
    cap_resources,
    confine_path,
    file_sha256,
    reads_files,
    resolve_path,
    score_frame,
    set_on_error,
)

__all__ = [
    "atomic_output",
    "BatchScorer",
    "cap_resources",
    "check_output_paths",
    "confine_path",
    "count_records",
    "ERROR_COLUMNS",
    "error_schema",
    "file_sha256",
    "iter_records",
    "make_default_model",
    "parallel_backend",
    "read_records",
    "reads_files",
    "resolve_path",
    "score_file",
    "score_frame",
    "set_on_error",
    "single_threaded",
    "to_table",
    "warm_workers",
]
