"""What the file workflows share: the model they are given, rows in messages."""

import logging
import os

__all__ = ["load_model", "logger", "rows_text"]

#: Progress (INFO) and notes (WARNING) of the workflows; ``mmfeat`` prints
#: them on stdout and stderr.
logger = logging.getLogger("mmfeat.workflows")


def load_model(model, *, trusted=None, max_bytes=None):
    """``(fitted model, its file or None)`` from a model or a model file.

    A ``str`` or path-like is a file written by :func:`mmfeat.save`, loaded
    with :func:`mmfeat.load` (``trusted`` and ``max_bytes`` passed on);
    anything else is taken as a fitted model.
    """
    if not isinstance(model, (str, os.PathLike)):
        return model, None
    from mmfeat import DEFAULT_MAX_BYTES, load

    path = os.fspath(model)
    limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    return load(path, trusted=trusted, max_bytes=limit), path


def rows_text(rows, limit=10):
    """``[3, 8]`` or ``[3, 8, ... ] (25 in all)``: row numbers for a message.

    Rows are 0-based positions of the records in the file (row 0 is the
    first record after the header), as in the error reports.
    """
    rows = [int(r) for r in rows]
    if len(rows) <= limit:
        return str(rows)
    return f"{str(rows[:limit])[:-1]}, ...] ({len(rows)} in all)"
