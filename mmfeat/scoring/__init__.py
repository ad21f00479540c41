"""Batch scoring: records in, one prediction per record out, errors reported.

:class:`BatchScorer` scores one chunk (a pandas DataFrame, or a partition of
a Dask or Spark DataFrame); :func:`score_file` streams a CSV or Parquet file
through it in chunks, in parallel, with atomic per-chunk output and resume;
:func:`parallel_backend` sends that work to a Dask cluster through joblib.
``mmfeat score`` is the command-line face of :func:`score_file`.

The pieces :func:`score_file` is made of are public for other file
workflows (:func:`mmfeat.workflows.extract_file` uses them): records files
(:class:`RecordsTable`, :func:`iter_records`, :func:`read_records`,
:func:`count_records`), outputs (:func:`check_output_paths`,
:func:`atomic_output`, :func:`error_schema`, :func:`write_error_report`)
and paths (:func:`resolve_paths`).
"""

from mmfeat.recipes import make_default_model
from mmfeat.scoring._files import score_file
from mmfeat.scoring._outputs import (
    atomic_output,
    check_output_paths,
    error_schema,
    prediction_schema,
    to_table,
    write_error_report,
)
from mmfeat.scoring._paths import confine_path, resolve_path, resolve_paths
from mmfeat.scoring._records import (
    RECORDS_FORMATS,
    RecordsTable,
    check_records_path,
    count_records,
    iter_records,
    read_records,
    records_format,
)
from mmfeat.scoring._scorer import (
    ERROR_COLUMNS,
    BatchScorer,
    cap_resources,
    reads_files,
    score_frame,
    set_on_error,
)
from mmfeat.utils._dask import parallel_backend, single_threaded, warm_workers
from mmfeat.utils._hashing import file_sha256

__all__ = [
    "atomic_output",
    "BatchScorer",
    "cap_resources",
    "check_output_paths",
    "check_records_path",
    "confine_path",
    "count_records",
    "ERROR_COLUMNS",
    "error_schema",
    "file_sha256",
    "iter_records",
    "make_default_model",
    "parallel_backend",
    "prediction_schema",
    "read_records",
    "reads_files",
    "RECORDS_FORMATS",
    "RecordsTable",
    "records_format",
    "resolve_path",
    "resolve_paths",
    "score_file",
    "score_frame",
    "set_on_error",
    "single_threaded",
    "to_table",
    "warm_workers",
    "write_error_report",
]
