"""Outputs of batch work on records files: where they may go, how they are written.

Shared by :func:`~mmfeat.scoring.score_file` and
:func:`~mmfeat.workflows.extract_file`: the checks run before any record is
read (:func:`check_output_paths`), whole-file atomic writes
(:func:`atomic_output`), the Arrow schemas of predictions and error reports
(:func:`prediction_schema`, :func:`error_schema`, :func:`to_table`), and the
folder of finished chunks beside an output (``<output>.parts``) with its
resume manifest and its one-run-at-a-time lock.
"""

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import socket
import threading
import time

import numpy as np
import pandas as pd

from mmfeat.exceptions import MmfeatError, OutputError, ParameterError
from mmfeat.scoring._records import records_format
from mmfeat.scoring._scorer import ERROR_COLUMNS
from mmfeat.utils._dask import pid_alive
from mmfeat.utils._oserrors import output_error

__all__ = [
    "atomic_output",
    "check_output_paths",
    "error_schema",
    "prediction_schema",
    "to_table",
    "write_error_report",
]

logger = logging.getLogger(__name__)


def _same_file(a, b):
    """Whether ``a`` and ``b`` name one file (through symbolic or hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _labelled(paths, default):
    if paths is None:
        return []
    if isinstance(paths, dict):
        items = paths.items()
    else:
        items = [(default, p) for p in paths]
    return [(label, os.fspath(p)) for label, p in items if p is not None]


def _probe_folder(folder, label, path):
    """Create and remove a file in ``folder``, or raise ParameterError.

    Trying is the only test that root, a read-only mount or an ACL cannot
    fool (``os.access`` can be).
    """
    probe = os.path.join(folder, f".mmfeat-probe-{os.getpid()}-{threading.get_ident()}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ParameterError(
            f"{label} {path!r}: cannot create a file in its folder {folder!r} "
            f"({exc.strerror or exc}); choose a writable folder"
        ) from None
    os.close(fd)
    os.remove(probe)


def check_output_paths(inputs, outputs):
    """Refuse outputs that would overwrite an input, before any work is done.

    Every output must differ from every input and from every other output,
    also through symbolic and hard links (``os.path.realpath`` and the
    file's device and inode); must not be a folder; and its folder must
    exist and take a new file (checked by creating one, so that a read-only
    mount is found even by root). ``mmfeat score`` and ``mmfeat extract``
    call it before they read a record.

    Parameters
    ----------
    inputs : dict of str to path, or sequence of path
        The files read, by what they are (``{"records": ..., "model": ...}``);
        ``None`` values are skipped.
    outputs : dict of str to path, or sequence of path
        The files written (``{"output": ..., "errors": ...}``).

    Raises
    ------
    ParameterError
        Naming both paths (or the folder) and what would work.
    """
    ins = _labelled(inputs, "input")
    outs = _labelled(outputs, "output")
    for k, (label, out) in enumerate(outs):
        for ilabel, inp in ins:
            if _same_file(out, inp):
                how = (
                    ""
                    if os.path.abspath(out) == os.path.abspath(inp)
                    else (", through a link")
                )
                raise ParameterError(
                    f"{label} {out!r} is the {ilabel} file {inp!r}{how}: writing "
                    f"it would replace the {ilabel}; choose another {label} path"
                )
        for olabel, other in outs[:k]:
            if _same_file(out, other):
                raise ParameterError(
                    f"{label} {out!r} and {olabel} {other!r} are the same file; "
                    f"give them different paths"
                )
        if os.path.isdir(out):
            raise ParameterError(
                f"{label} {out!r} is a folder; give a file path inside it"
            )
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            up = folder
            while not os.path.exists(up):
                up = os.path.dirname(up)
            where = (
                f"{up!r} is a file, not a folder"
                if not os.path.isdir(up)
                else f"the folder {folder!r} does not exist"
            )
            raise ParameterError(
                f"{label} {out!r}: {where}; create the folder first or choose "
                "another path"
            )
        _probe_folder(folder, label, out)


def _temporary(path):
    """The temporary file beside ``path`` that this process writes it through."""
    return f"{path}.mmfeat-tmp-{os.getpid()}"


def _remove_stale_temporaries(path):
    """Delete temporaries of ``path`` left by killed runs (whose PID is gone).

    Only names made by :func:`_temporary` for exactly this output (and the
    ``<name>.tmp<pid>`` of earlier versions) are touched.
    """
    folder, base = os.path.split(os.path.abspath(path))
    pattern = re.compile(re.escape(base) + r"\.(?:mmfeat-tmp-|tmp)(\d+)")
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and pid_alive(pid):
            continue  # another live process is writing it
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def _is_about(exc, paths):
    """Whether ``exc`` came from writing one of ``paths``, not reading input.

    pyarrow's and Python's write errors name no file.
    """
    name = getattr(exc, "filename", None)
    return name is None or os.fspath(name) in paths


@contextlib.contextmanager
def atomic_output(path, *, clean=True):
    """Write ``path`` through a temporary file beside it, renamed at the end.

    Yields the temporary path (``<path>.mmfeat-tmp-<pid>``); write the whole
    file there. On success it replaces ``path`` in one rename, so a reader
    never sees half a file; on any failure it is removed, and an ``OSError``
    while writing (disk full, ``ulimit -f``, read-only folder) becomes a
    one-line :class:`OutputError`. Temporaries that killed runs left for
    this same ``path`` are removed first.

    Parameters
    ----------
    path : str or path
        The output file.
    clean : bool, default=True
        Remove temporaries of ``path`` left by killed runs first.

    Yields
    ------
    tmp : str
        Where to write.
    """
    path = os.fspath(path)
    if clean:
        _remove_stale_temporaries(path)
    tmp = _temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if isinstance(exc, MmfeatError) or not _is_about(exc, (tmp, path)):
            raise
        raise output_error(exc, path) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def prediction_schema(scorer, id_type):
    """Arrow schema of a :class:`~mmfeat.scoring.BatchScorer`'s predictions.

    The key column (``row`` as int64, or the id column with ``id_type``),
    the prediction (``predict``, or the scorer's ``prediction_column``)
    typed as the classes are (text for a model without classes: a
    captioner), and one float64 ``proba_<class>`` column per class.
    """
    import pyarrow as pa

    fields = []
    key = scorer.output_columns_[0]
    fields.append(pa.field(key, pa.int64() if scorer.id_column is None else id_type))
    kind = (
        np.asarray(scorer.classes_).dtype.kind if scorer.classes_ is not None else "O"
    )
    ptype = {"i": pa.int64(), "u": pa.int64(), "f": pa.float64(), "b": pa.bool_()}.get(
        kind, pa.string()
    )
    fields.append(pa.field(scorer.output_columns_[1], ptype))
    fields.extend(pa.field(c, pa.float64()) for c in scorer.output_columns_[2:])
    return pa.schema(fields)


def error_schema():
    """Arrow schema of an error report: int64 ``row``, the other columns text."""
    import pyarrow as pa

    types = {"row": pa.int64()}  # the other columns are text
    return pa.schema([pa.field(c, types.get(c, pa.string())) for c in ERROR_COLUMNS])


def to_table(frame, schema):
    """``frame`` as an Arrow table of ``schema``; text columns hold str or null."""
    import pyarrow as pa

    frame = frame.copy()
    for field in schema:
        if pa.types.is_string(field.type):
            frame[field.name] = [
                None
                if (v is None or v is pd.NA or (isinstance(v, float) and v != v))
                else str(v)
                for v in frame[field.name].tolist()
            ]
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def write_error_report(rows, path):
    """Write an error report (``.csv`` or ``.parquet``) atomically.

    Parameters
    ----------
    rows : iterable of tuple
        ``(row, id, column, source, reason)`` entries, in any order; they
        are written sorted by row (stable). None gives a header alone.
    path : str or path-like
        The report; its extension chooses the format.

    Returns
    -------
    n : int
        Entries written.
    """
    import pyarrow.parquet as pq

    path = os.fspath(path)
    fmt = records_format(path, "errors")
    frame = pd.DataFrame(sorted(rows, key=lambda e: e[0]), columns=ERROR_COLUMNS)
    table = to_table(frame, error_schema())
    with atomic_output(path) as tmp:
        if fmt == "parquet":
            pq.write_table(table, tmp)
        else:
            table.to_pandas().to_csv(tmp, index=False, encoding="utf-8")
    return len(frame)


def _atomic_parquet(table, path):
    import pyarrow.parquet as pq

    with atomic_output(path, clean=False) as tmp:
        pq.write_table(table, tmp)


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class _Lock:
    """One run at a time per output: ``<output>.parts/lock``.

    The lock file names its owner (PID, host, start time). It is created
    already locked with ``flock`` (written beside, then hard-linked into
    place, which fails if a lock exists), and the owner keeps it locked
    until it ends: the kernel drops an ``flock`` when its process dies,
    however it dies, so a lock that can be locked again belongs to a dead
    run and is taken over; one that cannot belongs to a live run, and the
    newcomer stops. Where there is no ``flock`` (Windows), an owner whose
    PID is gone from this host is dead.
    """

    def __init__(self, folder, output):
        self.folder = folder
        self.path = os.path.join(folder, "lock")
        self.output = os.fspath(output)
        self.fd = None
        self.took_over = None

    def _info(self):
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "output": os.path.abspath(self.output),
        }

    def _busy(self, owner):
        host = owner.get("host")
        here = host in (None, socket.gethostname())
        on = "" if here else f" on {host}"
        gone = "" if here else f"; if no such run is alive, delete {self.path}"
        return OutputError(
            f"another mmfeat score is writing to {self.output} (pid "
            f"{owner.get('pid', '?')}{on} since {owner.get('started', '?')}); wait "
            f"for it to finish or stop it{gone}",
            errno=errno.EBUSY,
        )

    def _create(self):
        """Put a new, locked lock file in place: True, False (one exists)."""
        new = os.path.join(self.folder, f"lock-{os.getpid()}-{threading.get_ident()}")
        fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, json.dumps(self._info()).encode())
            try:
                os.link(new, self.path)
            except FileExistsError:
                os.close(fd)
                return False
            except OSError:  # no hard links here (FAT, some FUSE)
                os.close(fd)
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, json.dumps(self._info()).encode())
        finally:
            with contextlib.suppress(OSError):
                os.remove(new)
        self.fd = fd
        return True

    def _read(self, fd):
        try:
            os.lseek(fd, 0, os.SEEK_SET)  # (no os.pread on Windows)
            owner = json.loads(os.read(fd, 1 << 16) or b"{}")
        except (OSError, ValueError):
            owner = {}
        return owner if isinstance(owner, dict) else {}

    def _same(self, fd):
        try:
            a, b = os.fstat(fd), os.stat(self.path)
        except OSError:
            return False
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    def _take_over(self):
        """Take an existing lock whose owner died: True, False (look again)."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False
        owner = self._read(fd)
        here = owner.get("host", socket.gethostname()) == socket.gethostname()
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self._busy(owner) from None
            if not self._same(fd):  # its owner finished and removed it
                os.close(fd)
                return False
            if not here:  # flock may not reach across machines: be careful
                os.close(fd)
                raise self._busy(owner)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(self._info()).encode(), 0)
            self.fd = fd
        else:  # pragma: no cover - Windows
            os.close(fd)
            if not here or pid_alive(owner.get("pid")):
                raise self._busy(owner)
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
            return False
        self.took_over = owner
        logger.warning(
            "%s: taking over the lock of a run that is no longer running (pid %s "
            "since %s)",
            self.output,
            owner.get("pid", "?"),
            owner.get("started", "?"),
        )
        return True

    def acquire(self):
        try:
            for _ in range(100):
                os.makedirs(self.folder, exist_ok=True)
                try:
                    if self._create() or self._take_over():
                        return self
                except FileNotFoundError:  # the folder went away: make it again
                    continue
        except OSError as exc:
            if isinstance(exc, MmfeatError):
                raise
            raise output_error(exc, self.path) from None
        raise OutputError(
            f"cannot lock {self.path}: it keeps changing; is another mmfeat "
            "score starting on the same output?",
            errno=errno.EBUSY,
        )

    def held(self):
        """Whether this run still owns the lock (nobody removed the folder)."""
        return self.fd is not None and self._same(self.fd)

    def release(self):
        if self.fd is None:
            return
        if self._same(self.fd):
            with contextlib.suppress(OSError):
                os.remove(self.path)
        os.close(self.fd)  # after the removal: nobody can lock a stale file
        self.fd = None
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)  # only when nothing else is left

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


_PART = re.compile(r"(?:part|errors)-\d{6}\.parquet")


class _Parts:
    """The folder of finished chunks beside the output, with its manifest."""

    # what a changed manifest entry means, for the resume message
    _CHANGED = {
        "records_sha256": "the records file's content (SHA-256)",
        "records_size": "the records file's size",
        "records": "the records file",
        "model": "the model",
        "confine_to_root": "path confinement (--confine-to-root)",
    }

    def __init__(self, output):
        self.dir = f"{os.fspath(output)}.parts"
        self.manifest = os.path.join(self.dir, "manifest.json")
        self.lock = _Lock(self.dir, output)
        self.unreadable = False  # the records file failed to read to its end

    def pred(self, i):
        return os.path.join(self.dir, f"part-{i:06d}.parquet")

    def err(self, i):
        return os.path.join(self.dir, f"errors-{i:06d}.parquet")

    def done(self):
        i = 0
        while os.path.exists(self.pred(i)) and os.path.exists(self.err(i)):
            i += 1
        return i

    def clear(self):
        """Remove everything but the lock (which :class:`_Lock` owns)."""
        for name in os.listdir(self.dir):
            if name == "lock" or name.startswith("lock-"):
                continue
            path = os.path.join(self.dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    def start(self, manifest, *, resume):
        """Chunks already finished (resume), or 0 after a fresh start.

        Call with the lock held.
        """
        if os.path.exists(self.manifest):
            try:
                with open(self.manifest, encoding="utf-8") as fh:
                    old = json.load(fh)
            except ValueError:
                old = {}
            if not resume:
                raise ParameterError(
                    f"an interrupted run left {self.done()} finished chunk(s) in "
                    f"{self.dir}; pass resume=True (--resume) to continue it, or "
                    "delete that folder to start over"
                )
            diff = [
                self._CHANGED.get(k, k)
                for k in manifest
                if not isinstance(old, dict) or old.get(k) != manifest[k]
            ]
            if diff:
                raise ParameterError(
                    f"cannot resume: {', '.join(dict.fromkeys(diff))} changed since "
                    f"the interrupted run (see {self.manifest}); its finished chunks "
                    f"belong to that run. Delete {self.dir} to start over"
                )
            done = self.done()
            for name in os.listdir(self.dir):  # half-written leftovers
                if not (
                    _PART.fullmatch(name)
                    or name in ("manifest.json", "lock")
                    or name.startswith("lock-")
                ):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(os.path.join(self.dir, name))
            return done
        self.clear()
        with atomic_output(self.manifest, clean=False) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=1)
        return 0


def _assemble(paths, schema, out, fmt):
    """Concatenate part files into ``out`` (temporary file, then rename)."""
    import pyarrow.parquet as pq

    n = 0
    with atomic_output(out, clean=False) as tmp:  # score_file cleaned already
        if fmt == "parquet":
            with pq.ParquetWriter(tmp, schema) as writer:
                for p in paths:
                    table = pq.read_table(p, schema=schema)
                    writer.write_table(table)
                    n += table.num_rows
                if not paths:
                    writer.write_table(schema.empty_table())
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                pd.DataFrame(columns=schema.names).to_csv(fh, index=False)
                for p in paths:
                    frame = pq.read_table(p, schema=schema).to_pandas()
                    frame.to_csv(fh, index=False, header=False)
                    n += len(frame)
    return n
