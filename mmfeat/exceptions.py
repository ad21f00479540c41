"""Exceptions raised by mmfeat.

Every error mmfeat raises on purpose derives from :class:`MmfeatError`, so a
caller can catch them all at once. Every bad parameter raises
:class:`ParameterError`, also when scikit-learn's parameter validation found
it: it is scikit-learn's ``InvalidParameterError`` too, hence also a
``ValueError`` and a ``TypeError``. Bad input items raise
:class:`InputError`, which says which row, which source and why. A model file
that :func:`mmfeat.load` will not open without being told to raises
:class:`UntrustedModelError`; one whose fitted state does not hold together
(edited arrays, sizes that disagree with the parameters) raises
:class:`ModelStateError` while it is rebuilt; one saved with other package
versions warns with :class:`ModelVersionWarning`. An output that cannot be
written (no space, a size limit, another run writing it) raises
:class:`OutputError`, which is also an ``OSError``.
"""

# The one scikit-learn private imported outside mmfeat.utils._sklearn_compat
# (which re-exports it for everyone else): that module's package imports this
# one, so importing it from here would be circular.
from sklearn.utils._param_validation import InvalidParameterError

__all__ = [
    "MmfeatError",
    "ParameterError",
    "InputError",
    "DataNotFoundError",
    "UntrustedModelError",
    "ModelStateError",
    "OutputError",
    "ModelVersionWarning",
]


class MmfeatError(Exception):
    """Root of every exception raised by mmfeat."""


class ParameterError(MmfeatError, InvalidParameterError):
    """A parameter has a value that is not allowed.

    The message names the parameter, what is allowed and what was received.
    It is raised for every bad parameter of an mmfeat estimator or function:
    the checks of ``_parameter_constraints`` (scikit-learn's machinery, whose
    ``InvalidParameterError`` mmfeat's ``_fit_context`` turns into this
    error, same message) and the checks those cannot express (a pair of
    sizes, one parameter against another).

    It subclasses scikit-learn's ``InvalidParameterError``, so it is also a
    ``ValueError`` and a ``TypeError``: code that catches those, and
    scikit-learn's own estimator checks, keep working.

    Examples
    --------
    >>> from mmfeat.features.image import HOGExtractor
    >>> try:
    ...     HOGExtractor(orientations=0, image_size=(32, 32)).fit()
    ... except ParameterError as exc:
    ...     print(str(exc).split(" must ")[0], isinstance(exc, ValueError))
    The 'orientations' parameter of HOGExtractor True
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


class UntrustedModelError(MmfeatError, ValueError):
    """A model file would run code that mmfeat does not trust by default.

    Raised by :func:`mmfeat.load` before anything from the file is imported or
    run: for a skops file holding types outside mmfeat's default trust (the
    message lists them all and says how to trust them), and for a pickle or
    joblib file unless ``allow_pickle=True``.

    Attributes
    ----------
    types : tuple of str
        The refused type names (what ``trusted=`` would have to list);
        empty for a pickle or joblib file.
    """

    def __init__(self, message, *, types=()):
        super().__init__(message)
        self.types = tuple(types)

    def __reduce__(self):
        return (_rebuild_untrusted, (str(self), self.types))


def _rebuild_untrusted(message, types):
    return UntrustedModelError(message, types=types)


class ModelStateError(MmfeatError, ValueError):
    """A loaded or unpickled estimator's fitted state is not self-consistent.

    Raised while an mmfeat estimator is rebuilt from a file (skops, pickle or
    joblib), before it can be used: an array of the wrong shape or dtype, a
    size that disagrees with the parameters, a value out of range. Such a
    file was edited or corrupted; the numba kernels would otherwise read or
    write out of bounds. The message names the estimator, the attribute and
    what was expected.
    """


class OutputError(MmfeatError, OSError):
    """An output could not be written: no space, a size limit, a busy output.

    The message is one line: the path, the reason, and what to do. It is an
    ``OSError`` too (``errno`` is set), so code that caught the raw error
    still catches it.
    """

    def __init__(self, message, *, errno=None):
        super().__init__(message)
        self.errno = errno

    def __str__(self):
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):
        return (_rebuild_output_error, (str(self), self.errno))


def _rebuild_output_error(message, errno):
    return OutputError(message, errno=errno)


class ModelVersionWarning(UserWarning):
    """A model was saved with other versions of mmfeat, scikit-learn or numpy.

    Issued by :func:`mmfeat.load` when the ``major.minor`` version of mmfeat or
    scikit-learn, or the major version of numpy, recorded in the file differs
    from the running one. The message names each package with both versions.
    """
