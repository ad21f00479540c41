"""Exceptions raised by mmfeat.

Every error mmfeat raises on purpose derives from :class:`MmfeatError`, so a
caller can catch them all at once. Parameter problems are also ``ValueError``
(as scikit-learn's ``InvalidParameterError`` is), and bad input items raise
:class:`InputError`, which says which row, which source and why.
"""

__all__ = ["MmfeatError", "ParameterError", "InputError", "DataNotFoundError"]


class MmfeatError(Exception):
    """Root of every exception raised by mmfeat."""


class ParameterError(MmfeatError, ValueError):
    """A parameter has a value that is not allowed.

    The message names the parameter, what is allowed and what was received.
    """


class InputError(MmfeatError, ValueError):
    """One input item could not be used.

    Parameters
    ----------
    reason : str
        Why the item was refused, e.g. ``"truncated JPEG"``.
    row : int or None, default=None
        Position of the item in the column that was given (0-based), or
        ``None`` when the item was passed on its own.
    source : str, default="array"
        Where the item came from: its file path, ``"bytes"`` or ``"array"``.

    Attributes
    ----------
    row : int or None
        Row index of the bad item.
    source : str
        File path, ``"bytes"`` or ``"array"``.
    reason : str
        Human-readable reason.

    Examples
    --------
    >>> err = InputError("zero-byte file", row=3, source="/data/a.png")
    >>> str(err)
    'row 3 (/data/a.png): zero-byte file'
    """

    def __init__(self, reason, *, row=None, source="array"):
        self.reason = str(reason)
        self.row = row
        self.source = str(source)
        super().__init__(self._message())

    def _message(self):
        where = (
            f"({self.source})"
            if self.row is None
            else f"row {self.row} ({self.source})"
        )
        return f"{where}: {self.reason}"

    def with_row(self, row):
        """Return a copy of this error that names ``row``."""
        return type(self)(self.reason, row=row, source=self.source)

    def __reduce__(self):
        return (_rebuild_input_error, (type(self), self.reason, self.row, self.source))


def _rebuild_input_error(cls, reason, row, source):
    return cls(reason, row=row, source=source)


class DataNotFoundError(MmfeatError, FileNotFoundError):
    """A dataset is not in the data home (and could not be fetched)."""
