"""Columns of items: the edge format of every raw-input estimator.

An extractor's ``X`` is one column of items (a list, a 1-D array, a pandas
Series or a one-column DataFrame). An item is a path, raw bytes, an ndarray,
a string, or a missing value (``None``/NaN/``pd.NA``).
"""

import errno
import math
import os
import stat

import numpy as np
import pandas as pd

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.utils._sizes import size_text

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "as_item_list",
    "is_missing",
    "item_source",
    "read_source_bytes",
]


def is_missing(item):
    """Return True when ``item`` stands for a missing value.

    ``None``, float NaN, ``pd.NA`` and ``pd.NaT`` are missing; an empty array
    or an empty string is *not* (those are bad or empty items, not absent ones).

    Examples
    --------
    >>> is_missing(None), is_missing(float("nan")), is_missing("cat")
    (True, True, False)
    """
    if item is None or item is pd.NA or item is pd.NaT:
        return True
    if isinstance(item, (float, np.floating)):
        return math.isnan(item)
    return False


def as_item_list(X, *, stack_ndim=None, name="X"):
    """Turn a column of items into a Python list, one entry per row.

    Parameters
    ----------
    X : list, tuple, ndarray, pandas Series or one-column DataFrame
        The column.
    stack_ndim : int, default=None
        A numeric ndarray with this many dimensions or more is taken as a
        stack of items along its first axis (``(n, H, W)`` images,
        ``(n, n_samples)`` clips). ``None`` treats only 1-D arrays as columns.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    items : list
        The items, in row order.

    Examples
    --------
    >>> import pandas as pd
    >>> as_item_list(pd.DataFrame({"path": ["a.png", "b.png"]}))
    ['a.png', 'b.png']
    """
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            raise ParameterError(
                f"{name} must be one column of items; got a DataFrame with "
                f"{X.shape[1]} columns {list(X.columns)[:5]}. Select one column, "
                "or use MultimodalFuser to route several columns."
            )
        return X.iloc[:, 0].tolist()
    if isinstance(X, pd.Series):
        return X.tolist()
    if isinstance(X, (list, tuple)):
        return list(X)
    if isinstance(X, np.ndarray):
        if X.dtype == object or X.dtype.kind in "USO":
            if X.ndim == 2 and X.shape[1] == 1:
                return X[:, 0].tolist()
            if X.ndim != 1:
                raise ParameterError(
                    f"{name} must be a 1-D column of items; got an array of "
                    f"shape {X.shape}."
                )
            return X.tolist()
        if X.ndim == 1 and stack_ndim is None:
            return list(X)
        if stack_ndim is not None and X.ndim >= stack_ndim:
            return list(X)
        raise ParameterError(
            f"{name} must be a column of items (one item per row); got a numeric "
            f"array of shape {X.shape}. Pass a list of arrays, or a stack with "
            f"at least {stack_ndim} dimensions whose first axis is the row."
        )
    if isinstance(X, (str, bytes, os.PathLike)):
        raise ParameterError(
            f"{name} must be a column of items, not a single {type(X).__name__}; "
            f"wrap it in a list: [{X!r}]."
        )
    try:
        return list(X)
    except TypeError:
        raise ParameterError(
            f"{name} must be a list, 1-D array, pandas Series or one-column "
            f"DataFrame of items; got {type(X).__name__}."
        ) from None


def item_source(item):
    """Describe where ``item`` comes from: its path, ``"bytes"`` or ``"array"``."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(item, np.ndarray):
        return "array"
    return type(item).__name__


#: Default cap on the size of one item file read whole (256 MiB).
DEFAULT_MAX_FILE_BYTES = 256 * 2**20


def _refuse_size(size, max_file_bytes, *, source, kind, grew=False):
    what = "grew to at least" if grew else "is"
    raise InputError(
        f"{kind} {what} {size_text(size)}, over max_file_bytes="
        f"{size_text(max_file_bytes)}; raise max_file_bytes if this file is expected",
        source=source,
    )


def read_source_bytes(item, *, kind="file", max_file_bytes=DEFAULT_MAX_FILE_BYTES):
    """Return the raw bytes of a path or bytes item, with clear errors.

    The read is bounded: a file whose ``stat`` size is over ``max_file_bytes`` is
    refused without reading it, and at most ``max_file_bytes + 1`` bytes are ever
    read, so a file that grows (or a size that lies, as ``/proc`` files do)
    cannot make the read unbounded.

    Parameters
    ----------
    item : str, path-like, bytes, bytearray or memoryview
        A file path, or the file's bytes.
    kind : str, default="file"
        What the file should be (``"image file"``), for the messages.
    max_file_bytes : int or None, default=DEFAULT_MAX_FILE_BYTES
        Largest file accepted, in bytes (256 MiB by default); ``None`` reads
        files of any size.

    Returns
    -------
    data : bytes
        The file's content.

    Raises
    ------
    InputError
        A missing path, a broken symbolic link, a directory, a pipe or device,
        an unreadable, empty or too large file. The message names the file,
        its size and the limit.
    """
    if isinstance(item, (bytes, bytearray, memoryview)):
        n = item.nbytes if isinstance(item, memoryview) else len(item)
        if max_file_bytes is not None and n > max_file_bytes:
            _refuse_size(n, max_file_bytes, source="bytes", kind=f"{kind} content")
        data = bytes(item)
        if not data:
            raise InputError("empty bytes (0 bytes)", source="bytes")
        return data
    path = os.fspath(item)
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        if isinstance(exc, OSError) and os.path.lexists(path):
            raise InputError(
                f"{kind} is a broken or looping symbolic link", source=path
            ) from None
        if isinstance(exc, OSError) and exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise InputError(
                f"cannot read: {exc.strerror or exc}", source=path
            ) from None
        raise InputError(f"{kind} not found", source=path) from None
    if stat.S_ISDIR(st.st_mode):
        article = "an" if kind[:1] in "aeiou" else "a"
        raise InputError(f"is a directory, not {article} {kind}", source=path)
    if not stat.S_ISREG(st.st_mode):
        # a FIFO would block forever and /dev/zero never ends
        raise InputError("not a regular file (a pipe, socket or device)", source=path)
    if max_file_bytes is not None and st.st_size > max_file_bytes:
        # refused from its size alone: a sparse or huge file is never read
        _refuse_size(st.st_size, max_file_bytes, source=path, kind=kind)
    try:
        with open(path, "rb") as fh:
            if max_file_bytes is None:
                data = fh.read()
            else:
                # ask for no more than the file claims (+1 to see it grow), so
                # a small file does not reserve a max_file_bytes buffer
                want = min(st.st_size, max_file_bytes) + 1
                data = fh.read(want)
                if len(data) == want and want <= max_file_bytes:
                    # bigger than stat said (growing, or /proc): read on,
                    # never past the limit
                    data += fh.read(max_file_bytes + 1 - want)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=path) from None
    if max_file_bytes is not None and len(data) > max_file_bytes:
        _refuse_size(len(data), max_file_bytes, source=path, kind=kind, grew=True)
    if not data:
        raise InputError("empty file (0 bytes)", source=path)
    return data
