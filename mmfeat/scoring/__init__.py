"""Batch scoring: records in, one prediction per record out, errors reported.

:class:`BatchScorer` scores one chunk (a pandas DataFrame, or a partition of
a Dask or Spark DataFrame); :func:`score_file` streams a CSV or Parquet file
through it in chunks, in parallel, with atomic per-chunk output and resume;
:func:`parallel_backend` sends that work to a Dask cluster through joblib.
``mmfeat score`` is the command-line face of :func:`score_file`.
"""

from mmfeat.scoring._defaults import make_default_model
from mmfeat.scoring._files import (
    count_records,
    iter_records,
    parallel_backend,
    read_records,
    score_file,
)
from mmfeat.scoring._scorer import (
    BatchScorer,
    cap_resources,
    confine_path,
    score_frame,
)

__all__ = [
    "BatchScorer",
    "cap_resources",
    "confine_path",
    "count_records",
    "iter_records",
    "make_default_model",
    "parallel_backend",
    "read_records",
    "score_file",
    "score_frame",
]
