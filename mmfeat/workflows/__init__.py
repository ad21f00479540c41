"""File workflows: the library functions behind the ``mmfeat`` command.

Each sub-command of ``mmfeat`` parses its arguments, calls one of these and
prints what it returns; Python code calls them the same way:

- :func:`fit_file` (``mmfeat fit``): fit a default or given multimodal model
  on a CSV or Parquet records file, report it on a held-out split, save it;
- :func:`score_file` (``mmfeat score``, from :mod:`mmfeat.scoring`): stream
  a records file through a fitted model into predictions and an error
  report, in parallel, resumably;
- :func:`extract_file` (``mmfeat extract``): a fitted model's features of a
  records file, to Parquet;
- :func:`describe_model` (``mmfeat info``): what a saved model is made of;
- :func:`check_file` (``mmfeat check``): the data-quality report of a
  records file (bad images, duplicates, leaks, wrong labels, mismatched
  pairs);
- :func:`caption_file` (``mmfeat caption``): a fitted captioner's text for
  each photo of a records file, as ``score_file`` scores (chunks, resume,
  error report);
- :func:`segment_file` (``mmfeat segment``): a fitted segmenter's PNG mask
  (and probability map) of each image of a records file, with an index of
  every row, resumably.

They log progress (INFO) and notes (WARNING) on the ``mmfeat.workflows``
logger, and return what they did as a dict. Row numbers in their messages
are 0-based positions of the records in the file (row 0 is the first record
after the header), as in the error reports.
"""

from mmfeat.scoring import score_file
from mmfeat.workflows._caption import caption_file
from mmfeat.workflows._check import check_file
from mmfeat.workflows._describe import describe_model
from mmfeat.workflows._extract import extract_file
from mmfeat.workflows._fit import fit_file
from mmfeat.workflows._segment import segment_file

__all__ = [
    "caption_file",
    "check_file",
    "describe_model",
    "extract_file",
    "fit_file",
    "score_file",
    "segment_file",
]
