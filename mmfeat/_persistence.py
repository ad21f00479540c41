"""Safe model persistence: skops files with version metadata.

:func:`save` writes a fitted model as a `skops <https://skops.readthedocs.io>`_
file, a zip archive of JSON and ``.npy`` members that is loaded without
unpickling, plus a ``mmfeat-metadata.json`` member recording the versions it
was saved with. :func:`load` checks every type the file names *before*
anything from it is imported or run, and refuses the file if one is not
trusted; :func:`model_metadata` reads the recorded versions without loading
the model.

What :func:`load` trusts without being told
-------------------------------------------
Besides skops' own defaults (builtins, numpy arrays and ufuncs, the
scikit-learn estimators skops lists):

- classes of mmfeat, scikit-learn and imbalanced-learn that skops rebuilds
  from their attributes (``cls.__new__`` then ``__setstate__`` or the
  instance ``__dict__``), if that rebuilding runs no code of the class: the
  class keeps ``object.__new__``, has no ``__del__``, and its
  ``__setstate__``, if any, is scikit-learn's ``BaseEstimator.__setstate__``
  or one reviewed here;
- numpy dtypes and scipy sparse matrices, which skops rebuilds from ``.npy``
  data whatever class the file names.

Nothing else, whatever package it is in: functions (``numpy.load``), methods,
classes given as values, and classes that skops would *call* with arguments
from the file (``numpy.memmap("any/path", mode="w+")`` creates a file) must be
listed in ``trusted=``. Being a class in numpy or scipy is not enough:
``numpy.lib._datasource.DataSource`` deletes a directory named by its
attributes when it is garbage-collected.

In what order a file is checked
-------------------------------
1. Sizes: the file, and every zip member's declared uncompressed size, one
   by one and in all, must fit ``max_bytes`` (zip members cannot inflate
   past their declared size: :mod:`zipfile` stops there and fails the CRC).
2. Types, from ``schema.json`` alone: skops lists the types of a copy of
   the archive whose data members are empty, so nothing is inflated, and
   the decision is made from the names; a module that is not already
   imported is imported only if it belongs to mmfeat, scikit-learn or
   imbalanced-learn (and is not a test, experimental or ``__main__``
   module), and only once every name outside those packages has passed.
3. Data that native code indexes: scipy sparse matrices (indices, index
   pointers and shape) and scikit-learn decision trees (child and feature
   indices, which must also point forward, so no loop) are validated from
   their members before skops builds them.
4. skops builds the model, and every mmfeat estimator validates its own
   parameters and fitted state as it is rebuilt
   (:class:`~mmfeat.exceptions.ModelStateError`).
"""

import contextlib
import importlib
import io
import json
import os
import platform
import re
import secrets
import stat
import sys
import warnings
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from mmfeat.exceptions import (
    InputError,
    ModelVersionWarning,
    OutputError,
    ParameterError,
    UntrustedModelError,
)
from mmfeat.utils._oserrors import output_error
from mmfeat.utils._sizes import limit_text, size_text

__all__ = ["DEFAULT_MAX_BYTES", "load", "model_metadata", "save"]

#: How much a model file may hold, uncompressed, unless ``max_bytes`` says more
DEFAULT_MAX_BYTES = 512 * 2**20
# the metadata member is a small JSON object
_METADATA_MAX_BYTES = 2**20
METADATA_MEMBER = "mmfeat-metadata.json"
_SCHEMA_MEMBER = "schema.json"
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

# (metadata key, importable module) of the versions recorded by ``save``
_RECORDED = (
    ("mmfeat", "mmfeat"),
    ("scikit-learn", "sklearn"),
    ("numpy", "numpy"),
    ("scipy", "scipy"),
    ("imbalanced-learn", "imblearn"),
    ("skops", "skops"),
)
# (metadata key, leading version numbers that must agree) checked by ``load``
_CHECKED = (("mmfeat", 2), ("scikit-learn", 2), ("numpy", 1))

# packages whose classes are trusted when skops rebuilds them from attributes
_ESTIMATOR_PACKAGES = ("mmfeat", "sklearn", "imblearn")
# packages whose classes are trusted when skops rebuilds them from array data
_ARRAY_PACKAGES = ("numpy", "scipy")
# skops loaders that build the value from .npy data, not from the named class
_DATA_LOADERS = frozenset({"DTypeNode", "SparseMatrixNode"})
# modules of the trusted packages that are never imported to decide trust
_NO_IMPORT_PARTS = frozenset(
    {"tests", "conftest", "experimental", "_build_utils", "externals", "benchmarks"}
)
# sparse formats whose index arrays are checked before loading
_SPARSE_FORMATS = ("csr", "csc", "coo")
# members are inflated this much at a time
_BLOCK = 2**20
# A custom ``__setstate__`` is trusted when the class defining it is
# scikit-learn's BaseEstimator, or carries mmfeat's review mark for that
# very method (``mmfeat.utils._state.reviewed_setstate``: CheckedStateMixin
# validates the state; CNNExtractor checks a spec of ints or a torchvision
# name in ``list_models()`` against the stored arrays' shapes on the meta
# device, then builds the network); any other must be listed in ``trusted=``


# ---------------------------------------------------------------- save


def save(model, path):
    """Save a fitted model as a skops file, atomically, with version metadata.

    The model is written with :func:`skops.io.dump` to a temporary file in
    the folder of ``path``, a ``mmfeat-metadata.json`` member is appended to
    the archive, and the file is then renamed onto ``path``
    (:func:`os.replace`), so ``path`` holds either the old file or the
    complete new one, never a partial write.

    Parameters
    ----------
    model : object
        The (fitted) estimator or pipeline to save. Its attributes must be
        types skops can store: numpy arrays, scipy sparse matrices, Python
        builtins and objects made of them (not pandas DataFrames).
    path : str or os.PathLike
        Where to write, conventionally ending in ``.skops``. Its folder must
        exist; an existing file is replaced.

    Returns
    -------
    path : pathlib.Path
        The path written.

    Raises
    ------
    ParameterError
        If ``path`` ends in ``.pkl``, ``.pickle`` or ``.joblib`` (this writes
        skops files, not pickles), is a folder or is in a folder that does not
        exist, or if ``model`` holds a value skops cannot store (the message
        names the attribute).
    OutputError
        If the file cannot be written (disk full, quota, file-size limit,
        read-only folder): one line with the path and what to do; ``path``
        is left as it was.

    See Also
    --------
    load : Load the file again, checking the types it holds.
    model_metadata : Read the versions recorded in the file.

    Notes
    -----
    The metadata records the versions of mmfeat, scikit-learn, numpy, scipy,
    imbalanced-learn, skops and Python, the model's class and the UTC time
    of saving. :func:`skops.io.load` ignores the extra member, so the file
    stays a plain skops file.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.linear_model import LogisticRegression
    >>> import mmfeat
    >>> model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = mmfeat.save(model, os.path.join(tmp, "model.skops"))
    ...     loaded = mmfeat.load(path)
    ...     meta = mmfeat.model_metadata(path)
    >>> loaded.predict([[0.9]])
    array([1])
    >>> meta["model_class"]
    'sklearn.linear_model._logistic.LogisticRegression'
    """
    path = _as_path(path)
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise ParameterError(
            f"path={str(path)!r} ends in {path.suffix!r}, a pickle/joblib "
            "suffix; mmfeat.save writes skops files, which load without "
            f"unpickling: use a path ending in '.skops', e.g. "
            f"{str(path.with_suffix('.skops'))!r}"
        )
    if path.is_dir():
        raise ParameterError(
            f"path={str(path)!r} is a folder; give a file path such as "
            f"{str(path / 'model.skops')!r}"
        )
    folder = path.parent
    if not folder.is_dir():
        raise ParameterError(
            f"path={str(path)!r}: the folder {str(folder)!r} does not exist; "
            "create it first"
        )
    import skops.io as sio

    metadata = _metadata(model)
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # O_EXCL: never follow or reuse someone else's file; mode 0o666 lets the
    # umask decide the permissions, as for any new file
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "w+b") as f:
            try:
                sio.dump(model, f)
            except OSError as exc:  # the disk, not the model
                raise _write_error(path, exc) from None
            except Exception as exc:
                raise ParameterError(_unsavable_message(model, exc, sio)) from exc
            f.seek(0)
            with zipfile.ZipFile(f, "a") as archive:
                archive.writestr(
                    METADATA_MEMBER, json.dumps(metadata, indent=2, sort_keys=True)
                )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OutputError):
            raise
        raise _write_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _write_error(path, exc):
    """One-line :class:`OutputError` for a failed write of ``path``."""
    err = output_error(exc, path)
    return OutputError(
        f"{err}; the file at that path, if any, is unchanged", errno=err.errno
    )


def _metadata(model):
    cls = type(model)
    meta = {
        "format": "mmfeat.save",
        "format_version": 1,
        "model_class": f"{cls.__module__}.{cls.__qualname__}",
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }
    for key, module in _RECORDED:
        meta[key] = _running_version(module)
    return meta


def _running_version(module):
    try:
        return str(importlib.import_module(module).__version__)
    except (ImportError, AttributeError):
        return None


def _unsavable_message(model, exc, sio):
    where, value = _unsavable_part(model, "model", sio)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    return (
        f"cannot save {type(model).__name__} as a skops file: {where} is a "
        f"{kind}, which skops cannot store ({type(exc).__name__}: {exc}). "
        "Keep fitted state as numpy arrays, scipy sparse matrices or Python "
        "builtins"
    )


def _unsavable_part(obj, where, sio, depth=0):
    """Innermost container, estimator or attribute that skops fails on."""
    if isinstance(obj, dict):
        children = [(f"{where}[{k!r}]", v) for k, v in obj.items()]
    elif isinstance(obj, (list, tuple)):
        children = [(f"{where}[{i}]", v) for i, v in enumerate(obj)]
    elif hasattr(obj, "get_params") and hasattr(obj, "__dict__"):
        children = [(f"{where}.{k}", v) for k, v in vars(obj).items()]
    else:
        children = []
    if depth < 32:
        for name, child in children:
            try:
                sio.dumps(child)
            except Exception:
                return _unsavable_part(child, name, sio, depth + 1)
    return where, obj


# ---------------------------------------------------------------- metadata


def model_metadata(path):
    """Return the metadata :func:`save` recorded, without loading the model.

    Only the ``mmfeat-metadata.json`` member of the archive is read; nothing
    in the model is imported or built.

    Parameters
    ----------
    path : str or os.PathLike
        A skops file.

    Returns
    -------
    metadata : dict
        The versions of ``"mmfeat"``, ``"scikit-learn"``, ``"numpy"``,
        ``"scipy"``, ``"imbalanced-learn"``, ``"skops"`` and ``"python"`` the
        model was saved with, ``"model_class"`` (module and class name) and
        ``"saved_at"`` (ISO 8601, UTC). Empty for a skops file written by
        other means than :func:`save`.

    Raises
    ------
    InputError
        If the file is missing, not a zip archive (e.g. a pickle) or corrupt;
        the error's ``source`` is the path.

    See Also
    --------
    save : Write the file and its metadata.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.preprocessing import StandardScaler
    >>> import mmfeat
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = mmfeat.save(StandardScaler(), os.path.join(tmp, "s.skops"))
    ...     meta = mmfeat.model_metadata(path)
    >>> meta["model_class"], meta["mmfeat"] == mmfeat.__version__
    ('sklearn.preprocessing._data.StandardScaler', True)
    """
    path = _as_path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return _read_metadata(archive, path)
    except FileNotFoundError:
        raise InputError("no such file", source=path) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a model file", source=path) from None
    except zipfile.BadZipFile as exc:
        raise InputError(
            f"not a skops file: not a zip archive, or a corrupt one ({exc})",
            source=path,
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read it ({exc})", source=path) from None


def _read_metadata(archive, path):
    if METADATA_MEMBER not in archive.namelist():
        return {}
    try:
        meta = json.loads(
            _read_member(archive, METADATA_MEMBER, _METADATA_MAX_BYTES, path)
        )
    except (ValueError, zipfile.BadZipFile) as exc:
        raise InputError(
            f"its {METADATA_MEMBER} member is not valid JSON ({exc})", source=path
        ) from None
    if not isinstance(meta, dict):
        raise InputError(
            f"its {METADATA_MEMBER} member holds a {type(meta).__name__}, "
            "not a JSON object",
            source=path,
        )
    return meta


# ---------------------------------------------------------------- load


def load(path, trusted=None, allow_pickle=False, *, max_bytes=DEFAULT_MAX_BYTES):
    """Load a model saved by :func:`save`, refusing types that could run code.

    Before anything in the file is imported or built, every type it names
    is checked (:func:`skops.io.get_untrusted_types`). The types of normal
    mmfeat, scikit-learn and imbalanced-learn models are trusted (see the
    module's notes for the exact rule); any other type must be listed in
    ``trusted``, or the file is refused with a message listing them all.

    Parameters
    ----------
    path : str or os.PathLike
        A skops file (recognised by its content, not its suffix: a zip
        archive with a ``schema.json`` member). Anything else is treated as a
        pickle/joblib file.
    trusted : list of str, default=None
        Further type names to trust, such as ``["numpy.load"]``, as
        :func:`skops.io.get_untrusted_types` spells them. List only types you
        have checked; ``True`` (trust everything) is not accepted.
    allow_pickle : bool, default=False
        Load a pickle/joblib file with :func:`joblib.load`. Unpickling runs
        whatever code the file asks for: only pass ``True`` for files you
        created yourself, and convert them to skops files once.
    max_bytes : int, default=DEFAULT_MAX_BYTES
        The most a skops file may hold uncompressed (512 MiB): the file itself,
        each member's declared size and their sum. Checked before anything is
        inflated; raise it for a model you know to be larger.

    Returns
    -------
    model : object
        The loaded model.

    Raises
    ------
    UntrustedModelError
        If the skops file holds types that are neither trusted by default nor
        listed in ``trusted`` (nothing from the file has run), or if the file
        is a pickle/joblib file and ``allow_pickle`` is false.
    InputError
        If the file is missing, a folder, empty, a corrupt zip archive, a zip
        archive without ``schema.json``, larger than ``max_bytes`` (file or
        members), holds sparse matrices or trees whose indices point outside
        them, or cannot be loaded (e.g. an mmfeat estimator whose fitted state
        does not hold together); the error's ``source`` is the path.
    ParameterError
        If ``trusted`` is not ``None`` or a list of type names, or
        ``allow_pickle`` is not a bool.

    Warns
    -----
    ModelVersionWarning
        If the file was saved with another ``major.minor`` version of mmfeat
        or scikit-learn, or another major version of numpy, than the running
        ones. The model may then fail or predict differently.

    See Also
    --------
    save : Write a model as a skops file.
    model_metadata : Read the recorded versions without loading.
    skops.io.get_untrusted_types : List the types a file holds beyond skops'
        defaults.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> import mmfeat
    >>> from mmfeat.exceptions import UntrustedModelError
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = mmfeat.save(
    ...         FunctionTransformer(np.load), os.path.join(tmp, "f.skops")
    ...     )
    ...     try:
    ...         mmfeat.load(path)
    ...     except UntrustedModelError as err:
    ...         print("refused:", "numpy.load" in str(err))
    ...     loaded = mmfeat.load(path, trusted=["numpy.load"])
    refused: True
    >>> loaded.func is np.load
    True
    """
    path = _as_path(path)
    extra = _check_trusted(trusted)
    if not isinstance(allow_pickle, bool):
        raise ParameterError(
            f"allow_pickle must be True or False, got {allow_pickle!r}"
        )
    max_bytes = _check_max_bytes(max_bytes)
    data = _read_bytes(path, max_bytes)
    archive = None if data is None else _skops_archive(data, path)
    if archive is None:
        return _load_pickle(path, allow_pickle)
    with archive:
        _check_sizes(archive, path, max_bytes)
        return _load_skops(path, data, archive, extra, max_bytes)


def _load_skops(path, data, archive, extra, max_bytes):
    import skops.io as sio

    try:
        schema = json.loads(_read_member(archive, _SCHEMA_MEMBER, max_bytes, path))
        # the types, from the schema alone: data members left empty
        untrusted = sio.get_untrusted_types(data=_schema_only(archive, schema))
    except InputError:
        raise
    except Exception as exc:  # anything skops or json fails on: a bad file
        raise InputError(
            f"not a valid skops file ({type(exc).__name__}: {exc})", source=path
        ) from None
    metadata = _read_metadata(archive, path)
    uses = _types_in_schema(schema)
    pending = [name for name in untrusted if name not in extra]
    # names alone first: nothing is imported while any name is refused
    refused = sorted(n for n in pending if not _allowed_by_name(uses.get(n, ())))
    if not refused:
        refused = sorted(n for n in pending if not _trusted_by_default(uses[n]))
    if refused:
        raise UntrustedModelError(_untrusted_message(path, refused), types=refused)
    _check_inflation(archive, path)
    _check_native_data(archive, schema, path, max_bytes)
    try:
        model = sio.loads(data, trusted=list(untrusted))
    except ImportError:
        raise  # a package is missing here: the environment, not the file
    except Exception as exc:
        raise InputError(
            f"could not load the skops file ({type(exc).__name__}: {exc})",
            source=path,
        ) from exc
    mismatches = _version_mismatches(metadata)
    if mismatches:
        warnings.warn(
            f"{path} was saved with other package versions than this Python "
            f"runs: {'; '.join(mismatches)}. The model may fail or predict "
            "differently: check it, then re-fit or re-save it with "
            "mmfeat.save, or load it with the saved versions",
            ModelVersionWarning,
            stacklevel=3,
        )
    return model


def _load_pickle(path, allow_pickle):
    if not allow_pickle:
        target = path.with_suffix(".skops")
        if target == path:
            target = path.with_name(f"{path.stem}-converted.skops")
        raise UntrustedModelError(
            f"{path} is not a skops file (a zip archive with schema.json), so "
            "it is read as a pickle/joblib file, and unpickling can run "
            "arbitrary code on load. mmfeat.load refuses it unless "
            "allow_pickle=True; pass that only for files you created yourself "
            "(or trust as much as your own code). Convert it once to a skops "
            f"file: mmfeat.save(mmfeat.load({str(path)!r}, allow_pickle=True), "
            f"{str(target)!r})"
        )
    import joblib

    try:
        return joblib.load(path)
    except ImportError:
        raise
    except Exception as exc:
        raise InputError(
            f"could not load it as a pickle/joblib file ({type(exc).__name__}: {exc})",
            source=path,
        ) from exc


def _untrusted_message(path, refused):
    return (
        f"{path} holds {len(refused)} type(s) that mmfeat does not trust by "
        f"default: {', '.join(refused)}. Loading would import and build or "
        "call them, which can run code chosen by whoever wrote the file "
        "(mmfeat trusts only mmfeat, scikit-learn and imbalanced-learn classes "
        "rebuilt from their attributes, numpy dtypes and scipy sparse "
        "matrices; not functions, methods or classes called with arguments "
        "from the file). Inspect the file, e.g. with "
        f"skops.io.get_untrusted_types(file={str(path)!r}); if you trust "
        f"these types, load it with mmfeat.load({str(path)!r}, "
        f"trusted={refused!r})"
    )


# ---------------------------------------------------------------- helpers


def _as_path(path):
    try:
        return Path(path)
    except TypeError:
        raise ParameterError(
            f"path must be a str or os.PathLike, got {type(path).__name__}"
        ) from None


def _check_trusted(trusted):
    if trusted is None:
        return frozenset()
    if trusted is True:
        raise ParameterError(
            "trusted=True (trust every type in the file) is not supported: it "
            "would let the file run any code. List the type names you have "
            "checked instead, e.g. trusted=['numpy.load']; "
            "skops.io.get_untrusted_types(file=path) lists a file's types"
        )
    if isinstance(trusted, (str, bytes, bool)) or not hasattr(trusted, "__iter__"):
        raise ParameterError(
            "trusted must be None or a list of type names such as "
            f"['numpy.load'], got {trusted!r}"
        )
    names = list(trusted)
    bad = [name for name in names if not isinstance(name, str)]
    if bad:
        raise ParameterError(
            "trusted must list type names as strings, such as 'numpy.load'; "
            f"got {bad[0]!r} ({type(bad[0]).__name__})"
        )
    return frozenset(names)


def _check_max_bytes(max_bytes):
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ParameterError(
            f"max_bytes must be a positive number of bytes, got {max_bytes!r}"
        )
    return max_bytes


def _too_big(what, size, max_bytes):
    return (
        f"{what} is {size_text(size)}, over {limit_text('max_bytes', max_bytes)}; "
        "if you trust the file, pass a larger max_bytes"
    )


def _read_bytes(path, max_bytes):
    """The file's bytes, at most ``max_bytes``; None for a larger non-zip file.

    A larger zip archive is refused here; a larger file of another kind can
    only be a pickle, which :func:`_load_pickle` refuses or hands to joblib.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError("no such file", source=path) from None
    except OSError as exc:
        raise InputError(f"cannot read it ({exc})", source=path) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("is a folder, not a model file", source=path)
    if not stat.S_ISREG(st.st_mode):
        # a FIFO would block forever and /dev/zero never ends
        raise InputError("not a regular file (a pipe, socket or device)", source=path)
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read it ({exc})", source=path) from None
    if not data:
        raise InputError("empty file (0 bytes)", source=path)
    if len(data) > max_bytes:
        if data[:4] in _ZIP_MAGIC:
            raise InputError(
                _too_big("the file", max(st.st_size, len(data)), max_bytes),
                source=path,
            )
        return None
    return data


def _check_sizes(archive, path, max_bytes):
    """Each member's declared size, and their sum, within ``max_bytes``."""
    total = 0
    for info in archive.infolist():
        if info.file_size > max_bytes:
            raise InputError(
                _too_big(
                    f"member {info.filename!r} (uncompressed)",
                    info.file_size,
                    max_bytes,
                ),
                source=path,
            )
        total += info.file_size
    if total > max_bytes:
        raise InputError(
            _too_big(
                f"its {len(archive.infolist())} members (uncompressed)",
                total,
                max_bytes,
            ),
            source=path,
        )


def _read_member(archive, name, limit, path):
    """A member's bytes, inflated in bounded blocks, refused past ``limit``.

    The declared size is checked first; then the member is read 1 MiB at a
    time, because :meth:`zipfile.ZipFile.read` inflates a whole deflated
    member in one call (up to 2 GiB for a member that lies about its size)
    before cutting it to the declared size and failing its CRC.
    """
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise InputError(f"the member {name!r} is missing", source=path) from None
    if info.file_size > limit:
        raise InputError(
            _too_big(f"member {name!r} (uncompressed)", info.file_size, limit),
            source=path,
        )
    return _stream_member(archive, info, path, keep=True)


def _stream_member(archive, info, path, *, keep):
    """Inflate ``info`` 1 MiB at a time; its bytes if ``keep``, else None."""
    parts = [] if keep else None
    try:
        with archive.open(info) as fh:
            while True:
                block = fh.read(_BLOCK)
                if not block:
                    break
                if keep:
                    parts.append(block)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise InputError(
            f"its member {info.filename!r} is corrupt ({type(exc).__name__}: {exc})",
            source=path,
        ) from None
    return b"".join(parts) if keep else None


def _check_inflation(archive, path):
    """Inflate every compressed member in bounded blocks before skops reads it.

    :mod:`zipfile` stops a member at its declared size and fails its CRC,
    but only after inflating one whole read at once; reading each compressed
    member here first, block by block, turns a member that lies about its
    size into an error at a cost of 1 MiB. skops stores its members
    uncompressed, so its own files cost nothing here.
    """
    for info in archive.infolist():
        if info.compress_type != zipfile.ZIP_STORED:
            _stream_member(archive, info, path, keep=False)


def _schema_only(archive, schema):
    """A copy of the archive with its schema and every other member empty.

    skops lists a file's types by building its node tree, which reads (and
    inflates) every array member; on this copy it reads nothing.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as copy:
        copy.writestr(_SCHEMA_MEMBER, json.dumps(schema))
        for name in archive.namelist():
            if name != _SCHEMA_MEMBER:
                copy.writestr(name, b"")
    return out.getvalue()


def _nodes(schema, loader):
    """Every schema node that skops builds with ``loader``."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if node.get("__loader__") == loader:
                yield node
            stack.extend(node.values())


def _check_native_data(archive, schema, path, max_bytes):
    """Sparse matrices and trees: indices within bounds before skops builds them.

    skops trusts both by default, and scipy's and scikit-learn's compiled
    code index memory with them unchecked (a CSR column index of 2**31 is
    a segmentation fault in ``predict``).
    """
    for node in _nodes(schema, "SparseMatrixNode"):
        name = node.get("file")
        if not isinstance(name, str):
            raise InputError("a sparse matrix node names no data member", source=path)
        reason = _sparse_problem(_read_member(archive, name, max_bytes, path))
        if reason:
            raise InputError(f"sparse matrix {name!r}: {reason}", source=path)
    for node in _nodes(schema, "TreeNode"):
        reason = _tree_problem(node, archive, path, max_bytes)
        if reason:
            raise InputError(f"decision tree: {reason}", source=path)


def _sparse_problem(data):
    """Why the ``.npz`` of a scipy sparse matrix is unsafe, or None."""
    import numpy as np

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # not an npz, object arrays, ...
        return f"unreadable ({type(exc).__name__}: {exc})"
    fmt = arrays.get("format")
    fmt = fmt.item() if isinstance(fmt, np.ndarray) and fmt.ndim == 0 else fmt
    if isinstance(fmt, bytes):
        fmt = fmt.decode("ascii", "replace")
    if fmt not in _SPARSE_FORMATS:
        return (
            f"format {fmt!r} is not checked (only {', '.join(_SPARSE_FORMATS)} "
            "are); convert it with .tocsr() before saving"
        )
    shape = arrays.get("shape")
    if (
        not isinstance(shape, np.ndarray)
        or shape.shape != (2,)
        or shape.dtype.kind not in "iu"
        or (shape < 0).any()
        or (shape >= 2**62).any()
    ):
        return f"bad shape {shape!r}"
    n_rows, n_cols = (int(v) for v in shape)
    data_ = arrays.get("data")
    if not isinstance(data_, np.ndarray) or data_.ndim != 1:
        return "no 1-D data array"
    if fmt == "coo":
        row, col = arrays.get("row"), arrays.get("col")
        if row is None or col is None:  # scipy >= 1.13 writes "coords"
            coords = arrays.get("coords")
            if not isinstance(coords, np.ndarray) or coords.ndim != 2:
                return "no row/column indices"
            row, col = coords
        return _index_problem("row", row, len(data_), n_rows) or _index_problem(
            "column", col, len(data_), n_cols
        )
    major, minor = (n_rows, n_cols) if fmt == "csr" else (n_cols, n_rows)
    indptr, indices = arrays.get("indptr"), arrays.get("indices")
    if not (
        isinstance(indptr, np.ndarray)
        and indptr.ndim == 1
        and indptr.dtype.kind in "iu"
        and len(indptr) == major + 1
    ):
        return f"indptr must hold {major + 1} integers"
    if indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != len(data_):
        return "indptr must rise from 0 to the number of stored values"
    return _index_problem("index", indices, len(data_), minor)


def _index_problem(what, idx, n, bound):
    import numpy as np

    if not (isinstance(idx, np.ndarray) and idx.ndim == 1 and idx.dtype.kind in "iu"):
        return f"{what} indices are not a 1-D integer array"
    if len(idx) != n:
        return f"{len(idx)} {what} indices for {n} stored values"
    if n and (idx.min() < 0 or idx.max() >= bound):
        return f"{what} indices outside [0, {bound})"
    return None


def _tree_problem(node, archive, path, max_bytes):
    """Why a skops ``TreeNode`` (scikit-learn's ``Tree``) is unsafe, or None.

    Child indices must point forward inside the node array (a tree cannot
    loop) and internal nodes must split on an existing feature.
    """
    import numpy as np

    content = node.get("content")
    try:  # Tree(n_features, n_classes, n_outputs), as skops records it
        n_features = int(
            json.loads(node["__reduce__"]["args"]["content"][0]["content"])
        )
    except Exception:
        return "no number of features"
    state = content.get("content") if isinstance(content, dict) else None
    nodes = state.get("nodes") if isinstance(state, dict) else None
    name = nodes.get("file") if isinstance(nodes, dict) else None
    if not isinstance(name, str):
        return "no node array"
    try:
        arr = np.load(
            io.BytesIO(_read_member(archive, name, max_bytes, path)),
            allow_pickle=False,
        )
    except InputError:
        raise
    except Exception as exc:
        return f"unreadable node array ({type(exc).__name__}: {exc})"
    fields = arr.dtype.names or ()
    if arr.ndim != 1 or not {"left_child", "right_child", "feature"} <= set(fields):
        return "the node array lacks left_child / right_child / feature"
    n = len(arr)
    pos = np.arange(n)
    left, right, feature = arr["left_child"], arr["right_child"], arr["feature"]
    leaf = (left == -1) & (right == -1)
    inner = ~leaf
    if ((left[inner] <= pos[inner]) | (left[inner] >= n)).any() or (
        (right[inner] <= pos[inner]) | (right[inner] >= n)
    ).any():
        return "child indices must point forward inside the tree"
    if inner.any() and (feature[inner].min() < 0 or feature[inner].max() >= n_features):
        return "a split on a feature that does not exist"
    return None


def _skops_archive(data, path):
    """The open skops archive, or None if ``data`` is not a zip archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        if data[:4] in _ZIP_MAGIC:
            raise InputError(
                f"corrupt zip archive, e.g. truncated ({exc})", source=path
            ) from None
        return None
    if _SCHEMA_MEMBER not in archive.namelist():
        archive.close()
        raise InputError(
            f"a zip archive without {_SCHEMA_MEMBER}, so not a skops file",
            source=path,
        )
    return archive


def _types_in_schema(schema):
    """Map each type name in a skops schema to its ``(module, name, loader)``s.

    Every dict with ``__module__`` and ``__class__`` strings is counted, so
    the uses found include all the nodes skops builds (and possibly more,
    which only makes :func:`_trusted_by_default` stricter). A method is
    named ``module.Class.method``, as skops names it.
    """
    uses = {}
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        module, name = node.get("__module__"), node.get("__class__")
        if not (isinstance(module, str) and isinstance(name, str)):
            continue
        loader = node.get("__loader__")
        use = (module, name, loader if isinstance(loader, str) else "")
        uses.setdefault(f"{module}.{name}", set()).add(use)
        content = node.get("content")
        if isinstance(content, dict) and isinstance(content.get("func"), str):
            uses.setdefault(f"{module}.{name}.{content['func']}", set()).add(
                (module, f"{name}.{content['func']}", "MethodNode")
            )
    return uses


def _allowed_by_name(uses):
    """Whether the names and loaders alone allow the type (nothing imported)."""
    return bool(uses) and all(_name_is_allowed(*use) for use in uses)


def _name_is_allowed(module, name, loader):
    if not _plain_name(module, name):
        return False
    if _in_packages(module, _ESTIMATOR_PACKAGES):
        return loader == "ObjectNode" and not (
            _NO_IMPORT_PARTS & set(module.split("."))
        )
    # skops builds these from the .npy/.npz data, whatever the class named
    return _in_packages(module, _ARRAY_PACKAGES) and loader in _DATA_LOADERS


def _trusted_by_default(uses):
    return bool(uses) and all(_use_is_safe(*use) for use in uses)


def _in_packages(module, packages):
    return any(module == p or module.startswith(p + ".") for p in packages)


def _use_is_safe(module, name, loader):
    if not _name_is_allowed(module, name, loader):
        return False
    if loader in _DATA_LOADERS:
        return True
    cls = _resolve(module, name)
    return isinstance(cls, type) and _rebuilt_without_code(cls)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _plain_name(module, name):
    """Dotted identifiers, none a dunder (``__main__`` runs on import)."""
    parts = module.split(".")
    return (
        all(_IDENTIFIER.match(p) and not p.startswith("__") for p in parts)
        and bool(_IDENTIFIER.match(name))
        and not name.startswith("__")
    )


def _resolve(module, name):
    """``getattr(import_module(module), name)``, as skops does, or None.

    Only called for modules of mmfeat, scikit-learn and imbalanced-learn
    (:func:`_name_is_allowed`), once every other name has been cleared.
    """
    if not _plain_name(module, name):
        return None
    loaded = sys.modules.get(module)
    try:
        if loaded is None:
            loaded = importlib.import_module(module)
        return getattr(loaded, name, None)
    except Exception:  # a module that fails to import is not trusted
        return None


def _rebuilt_without_code(cls):
    """Whether skops' ``cls.__new__(cls)`` + attribute setting runs no code."""
    if cls.__new__ is not object.__new__ or getattr(cls, "__del__", None):
        return False
    definer = next((k for k in cls.__mro__ if "__setstate__" in vars(k)), None)
    if definer is None or definer is object:
        return True
    from sklearn.base import BaseEstimator

    if definer is BaseEstimator:
        return True
    method = vars(definer)["__setstate__"]
    return vars(definer).get("_mmfeat_reviewed_setstate") is method


def _release(version, n):
    match = re.match(r"\d+(?:\.\d+)*", str(version))
    if match is None:
        return None
    return tuple(int(x) for x in match.group().split(".")[:n])


def _version_mismatches(metadata):
    running = dict(_RECORDED)
    out = []
    for key, n in _CHECKED:
        saved = metadata.get(key)
        now = _running_version(running[key])
        if saved is None or now is None:
            continue
        if _release(saved, n) != _release(now, n):
            out.append(f"{key} {saved} (running {now})")
    return out
