"""Batch scoring of a records file: chunks, parallel workers, resumable output."""

import codecs
import contextlib
import csv
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import sys
import threading
import time

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from joblib.parallel import get_active_backend

from mmfeat.exceptions import InputError, MmfeatError, OutputError, ParameterError
from mmfeat.scoring._scorer import ERROR_COLUMNS, BatchScorer
from mmfeat.utils._oserrors import output_error

__all__ = [
    "OutputError",
    "atomic_output",
    "check_output_paths",
    "count_records",
    "iter_records",
    "parallel_backend",
    "read_records",
    "score_file",
    "warm_workers",
]

logger = logging.getLogger(__name__)

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _format(path, what="input"):
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in _FORMATS:
        raise ParameterError(
            f"{what} {os.fspath(path)!r} must be a .csv or .parquet file; got "
            f"the extension {ext or '(none)'!r}"
        )
    return _FORMATS[ext]


def _check_input(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError("records file not found", source=path)
    if os.path.isdir(path):
        raise InputError("is a directory, not a records file", source=path)
    return path


def _csv_kwargs(text_columns):
    # Only an empty cell is missing: a title "NA" or "None" is text.
    return dict(
        dtype={c: object for c in text_columns},
        keep_default_na=False,
        na_values=[""],
    )


def _first_bad_utf8(path, block_size=1 << 20):
    """``(byte offset, line, bad bytes)`` of the first non-UTF-8 bytes, or None.

    Streams the file through an incremental decoder, so the offset is the
    one in the file (a chunked reader's exception only knows its buffer).
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    lines = 1
    with open(path, "rb") as fh:
        while True:
            block = fh.read(block_size)
            pending = decoder.getstate()[0]
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                data = pending + block
                at = offset - len(pending) + exc.start
                before = data[: exc.start]
                return at, lines + before.count(b"\n"), data[exc.start : exc.end]
            if not block:
                return None
            lines += block.count(b"\n")
            offset += len(block)


def _not_utf8(path):
    found = _first_bad_utf8(path)
    if found is None:  # the file changed since pandas read it
        return InputError("not UTF-8 text: save the CSV as UTF-8", source=path)
    at, line, bad = found
    return InputError(
        f"not UTF-8 text: byte {at} (line {line}) is 0x{bad.hex()}, which is not "
        "UTF-8 (Latin-1 or Windows-1252?); save the CSV as UTF-8",
        source=path,
    )


def _refuse_duplicates(names, path, *, csv=False):
    """Raise InputError naming every column name that occurs more than once."""
    seen = {}
    for i, name in enumerate(names):
        seen.setdefault(name, []).append(i)
    dups = {n: pos for n, pos in seen.items() if len(pos) > 1 and n != ""}
    if dups:
        first = next(iter(dups))
        hint = f" (pandas would read the second as {first + '.1'!r})" if csv else ""
        listed = "; ".join(
            f"{n!r} at columns {', '.join(str(p + 1) for p in pos)}"
            for n, pos in dups.items()
        )
        raise InputError(
            f"duplicate column names: {listed}. Which one a model would read is "
            f"ambiguous{hint}; give every column a distinct name",
            source=path,
        )


def _csv_header(path):
    """The CSV's header names, read as pandas reads them (first non-blank row)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for row in csv.reader(fh):
            if row:
                return row
    return []


def _check_table(path, fmt):
    """Refuse, before any work, a table whose columns cannot be told apart."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            names = pq.ParquetFile(path).schema_arrow.names
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read Parquet: {exc}", source=path) from None
        _refuse_duplicates(names, path)
        return
    try:
        _refuse_duplicates(_csv_header(path), path, csv=True)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", source=path) from None


def iter_records(path, chunk_size, *, text_columns=()):
    """Yield the records of a CSV or Parquet file as DataFrames of ``chunk_size``.

    Parameters
    ----------
    path : str or path
        A ``.csv`` (UTF-8, header row) or ``.parquet`` file.
    chunk_size : int
        Rows per chunk; the last chunk may be shorter.
    text_columns : sequence of str, default=()
        CSV columns read as text as they are (ids, paths, titles): no
        number parsing, and only an empty cell is missing.

    Yields
    ------
    chunk : DataFrame
        With a fresh ``RangeIndex``. A file with no rows (a 0-byte file or a
        header alone) yields nothing.

    Raises
    ------
    InputError
        For a file that is not a readable table: two columns with one name
        (CSV or Parquet), a CSV that is not UTF-8 (the message gives the
        byte offset and line of the first bad byte), malformed CSV or
        Parquet.
    """
    path = _check_input(path)
    fmt = _format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            _refuse_duplicates(pf.schema_arrow.names, path)
            for batch in pf.iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
        except (OSError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"cannot read Parquet: {exc}", source=path) from None
        return
    if os.path.getsize(path) == 0:
        return
    try:
        # pandas renames a repeated name ("title" -> "title.1"): read it first
        _refuse_duplicates(_csv_header(path), path, csv=True)
        reader = pd.read_csv(
            path, chunksize=chunk_size, encoding="utf-8", **_csv_kwargs(text_columns)
        )
        with reader:
            for chunk in reader:
                yield chunk.reset_index(drop=True)
    except pd.errors.EmptyDataError:
        return
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise InputError(f"malformed CSV: {exc}", source=path) from None


def read_records(path, *, text_columns=()):
    """Read a whole CSV or Parquet records file into one DataFrame."""
    chunks = list(iter_records(path, 100_000, text_columns=text_columns))
    if not chunks:
        return pd.DataFrame(columns=list(text_columns))
    return pd.concat(chunks, ignore_index=True)


def count_records(path):
    """Number of records in a file (CSV: its lines less the header), or None."""
    path = _check_input(path)
    if _format(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (OSError, ValueError):
            return None
    n = 0
    last = b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        n += 1
    return max(n - 1, 0)


@contextlib.contextmanager
def parallel_backend(scheduler, *, n_jobs=-1):
    """Run mmfeat's parallel work on a Dask cluster, through joblib.

    Inside the ``with`` block, :func:`score_file` (and every estimator's
    ``n_jobs``) dispatches to the cluster's workers with joblib's Dask
    backend.

    Parameters
    ----------
    scheduler : str or dask.distributed.Client
        The scheduler's address (``"tcp://host:8786"``) or a client. A client
        made here is closed on exit.
    n_jobs : int, default=-1
        Parallel tasks; -1 uses every worker thread of the cluster.

    Yields
    ------
    client : dask.distributed.Client
    """
    try:
        from dask.distributed import Client
    except ImportError:  # pragma: no cover - depends on the environment
        raise ParameterError(
            "a Dask scheduler needs dask.distributed: "
            "python -m pip install 'mmfeat[distributed]'"
        ) from None
    import joblib

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        with joblib.parallel_config(backend="dask", n_jobs=n_jobs):
            yield client
    finally:
        if own:
            client.close()


# -- where outputs may go ----------------------------------------------------
def _pid_alive(pid):
    """Whether process ``pid`` exists on this machine (a zombie counts as dead)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


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
        if pid != os.getpid() and _pid_alive(pid):
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


def _fingerprint(path, fmt):
    """SHA-256 of the file's bytes and its number of records, in one pass.

    Streams 1 MiB blocks (about 1.3 GB/s: 0.08 s for 100 MB once cached),
    so it costs a fraction of reading the records.
    """
    h = hashlib.sha256()
    newlines = 0
    last = b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            newlines += block.count(b"\n")
            last = block[-1:]
    if fmt == "parquet":
        return h.hexdigest(), count_records(path)
    if last != b"\n":
        newlines += 1
    return h.hexdigest(), max(newlines - 1, 0)


# -- output ------------------------------------------------------------------
def _arrow_schema(scorer, id_type):
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
    fields.append(pa.field("predict", ptype))
    fields.extend(pa.field(c, pa.float64()) for c in scorer.output_columns_[2:])
    return pa.schema(fields)


def error_schema():
    import pyarrow as pa

    types = {"row": pa.int64()}  # the other columns are text
    return pa.schema([pa.field(c, types.get(c, pa.string())) for c in ERROR_COLUMNS])


def to_table(frame, schema):
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
            if not here or _pid_alive(owner.get("pid")):
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


@contextlib.contextmanager
def single_threaded(limit):
    """OpenCV and BLAS threads capped at ``limit`` (None: unchanged)."""
    if limit is None:
        yield
        return
    import cv2
    from threadpoolctl import threadpool_limits

    before = cv2.getNumThreads()
    cv2.setNumThreads(limit)
    try:
        with threadpool_limits(limits=limit):
            yield
    finally:
        cv2.setNumThreads(before)


def _score_chunk(scorer, frame, start, source):
    # a worker is one core: --n-jobs counts cores, and no library inside a
    # chunk starts threads of its own that would compete with other workers
    with single_threaded(scorer.inner_n_jobs):
        predictions, errors = scorer.score(frame, start=start, source=source)
    return len(frame), predictions, errors


# processes in which a parent watch runs (a forked child does not inherit it)
_WATCHING = set()
_WATCH_INTERVAL = 0.2


def _exit_with_parent(parent):
    """In a worker process: end it as soon as ``parent`` (the scorer) dies.

    joblib's loky workers are children of the scoring process but outlive a
    ``SIGKILL`` of it (they wait minutes for work before exiting). A daemon
    thread polls ``os.getppid()``, which changes the moment the parent dies
    (the worker is handed to init), and ends the worker. Linux's
    ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that
    started the worker ends, and loky starts workers from short-lived
    threads (``warm_workers``, its executor manager), so it would kill
    healthy workers.
    """
    me = os.getpid()
    if parent is None or parent == me or me in _WATCHING:
        return
    if os.getppid() != parent:
        if not _pid_alive(parent):
            os._exit(1)  # orphaned before the watch started
        return  # started by someone else (a Dask worker, a nested pool)
    _WATCHING.add(me)

    def watch():
        while os.getppid() == parent:
            time.sleep(_WATCH_INTERVAL)
        os._exit(1)

    threading.Thread(target=watch, name="mmfeat-exit-with-parent", daemon=True).start()


def _worker_kwargs():
    """``Parallel`` arguments that make loky start each worker watching us.

    Every worker, busy or idle, runs :func:`_exit_with_parent` as it starts
    (the same arguments in :func:`warm_workers` and :func:`score_file` let
    joblib reuse the warmed workers). Other backends get nothing here; their
    workers start the watch with their first chunk.
    """
    backend, _ = get_active_backend()
    if type(backend).__name__ != "LokyBackend":
        return {}
    return {"initializer": _exit_with_parent, "initargs": (os.getpid(),)}


def _score_in_worker(parent, scorer, frame, start, source):
    _exit_with_parent(parent)
    return _score_chunk(scorer, frame, start, source)


def _warm(parent=None):
    """Import what scoring needs (in a worker process)."""
    _exit_with_parent(parent)
    import mmfeat.features.audio  # noqa: F401
    import mmfeat.features.image  # noqa: F401
    import mmfeat.features.text  # noqa: F401
    import mmfeat.scoring  # noqa: F401

    return os.getpid()


def warm_workers(n_jobs):
    """Start ``n_jobs`` joblib worker processes in the background.

    A worker spends seconds importing scikit-learn, OpenCV, numba and mmfeat
    before its first chunk; ``mmfeat score`` starts them while it loads the
    model, so that time overlaps. Returns the thread; join it before
    scoring (joblib then reuses the started workers). Each worker ends when
    this process dies, however it dies.
    """
    from joblib import effective_n_jobs

    n = effective_n_jobs(n_jobs)
    parent = os.getpid()
    kwargs = _worker_kwargs()
    thread = threading.Thread(
        target=lambda: Parallel(n_jobs=n_jobs, **kwargs)(
            delayed(_warm)(parent) for _ in range(n)
        ),
        daemon=True,
    )
    thread.start()
    return thread


def _dask_active():
    backend, _ = get_active_backend()
    return "Dask" in type(backend).__name__


def score_file(
    model,
    records,
    output,
    *,
    errors=None,
    chunk_size=1000,
    n_jobs=None,
    on_error="missing",
    id_column=None,
    root=None,
    resume=False,
    progress=False,
    model_id=None,
    confine_to_root=False,
):
    """Score a CSV or Parquet file of records in chunks, in parallel, resumably.

    The input is streamed ``chunk_size`` rows at a time, so memory does not
    grow with the file. Each finished chunk is written atomically (temporary
    file, then rename) into ``<output>.parts/``; at the end the parts are
    joined into ``output`` and ``errors``, in input order, and the folder is
    removed. After an interruption (even ``SIGKILL``), ``resume=True`` skips
    the finished chunks, so no row is lost or written twice.

    Parameters
    ----------
    model : fitted estimator
        See :class:`~mmfeat.scoring.BatchScorer`.
    records : str or path
        Input ``.csv`` (UTF-8, header row, distinct column names) or
        ``.parquet``.
    output : str or path
        Predictions, ``.csv`` or ``.parquet``: the id (or ``row``),
        ``predict`` and ``proba_<class>`` columns, one row per record.
    errors : str or path, default=None
        Error report (``.csv`` or ``.parquet``): ``row``, ``id``, ``column``,
        ``source``, ``reason``. Default ``<output stem>.errors.csv``. Always
        written, with a header alone when nothing was wrong.
    chunk_size : int, default=1000
        Records per chunk (the unit of parallel work and of resumption).
    n_jobs : int, default=None
        Worker processes scoring chunks; ``None`` means 1 (or the active
        joblib backend's setting, e.g. inside :func:`parallel_backend`), -1
        all cores.
    on_error : {"missing", "raise"}, default="missing"
        See :class:`~mmfeat.scoring.BatchScorer`.
    id_column : str, default=None
        Column written next to each prediction (else ``row``).
    root : str or path, default=None
        Folder relative image/audio paths are relative to; default the
        records file's folder.
    resume : bool, default=False
        Continue an interrupted run into the same ``output``. The run is
        refused (nothing is scored) when the records file's content
        (SHA-256), the model, ``chunk_size``, ``on_error``, ``id_column`` or
        ``root`` changed since: its finished chunks belong to other input.
    progress : bool, default=False
        Show a progress bar with rows/s on stderr.
    model_id : str, default=None
        Identity of the model for the resume check (``mmfeat score`` passes
        the model file's SHA-256); default a hash of the model's bytes.
    confine_to_root : bool, default=False
        Refuse (as an error entry of its row) every image or audio path that
        resolves outside ``root``, links followed. See
        :class:`~mmfeat.scoring.BatchScorer`; ignored when ``model`` is a
        :class:`~mmfeat.scoring.BatchScorer` already.

    Returns
    -------
    summary : dict
        ``rows``, ``scored``, ``unscored`` (rows with no prediction),
        ``errors`` (error entries), ``seconds``, ``rows_per_s``, ``output``,
        ``errors_path``, ``resumed_chunks``, ``stale_lock`` (the owner of a
        dead run's lock that was taken over, else None).

    Raises
    ------
    ParameterError
        Before anything is scored: an output (or the error report) that is
        the records file or each other, also through links; an output
        folder that is missing or not writable; a resume that does not match
        the interrupted run.
    OutputError
        Another run is writing the same output (its PID and start time are
        named), or writing failed (disk full, ``ulimit -f``): one line that
        says what to do; no temporary file is left and an existing output is
        left as it was.
    InputError
        The records file is not a readable table (see :func:`iter_records`).

    Notes
    -----
    Safety of the output:

    - one run at a time per output: ``<output>.parts/lock`` holds the
      owner's PID, host and start time, and a run finding a live owner
      stops; a dead owner's lock is taken over;
    - the output and the error report are replaced only after every chunk
      of the input is present in the parts folder, each through a
      temporary ``<name>.mmfeat-tmp-<pid>`` that is removed on failure (and,
      left by a killed run, at the next run);
    - worker processes end within a fraction of a second when this process
      dies, even by ``SIGKILL``.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    records = _check_input(records)
    output = os.fspath(output)
    out_fmt = _format(output, "output")
    if errors is None:
        errors = os.path.splitext(output)[0] + ".errors.csv"
    errors = os.fspath(errors)
    err_fmt = _format(errors, "errors")
    if not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ParameterError(f"chunk_size must be a positive int; got {chunk_size!r}")
    parts = _Parts(output)
    # every place written is checked before a record is read or scored
    check_output_paths({"records": records}, {"output": output, "errors": errors})
    parts_dir = os.path.realpath(parts.dir) + os.sep
    if os.path.realpath(records).startswith(parts_dir):
        raise ParameterError(
            f"records {records!r} is inside {parts.dir!r}, the folder this run "
            "keeps its finished chunks in and removes at the end; move it"
        )
    if root is None:
        root = os.path.dirname(os.path.abspath(records))
    scorer = (
        model
        if isinstance(model, BatchScorer)
        else BatchScorer(
            model,
            on_error=on_error,
            id_column=id_column,
            root=root,
            confine_to_root=confine_to_root,
        )
    )
    # the scorer's settings, not the arguments: a BatchScorer brings its own
    id_column = scorer.id_column
    text_cols = list(scorer.columns_) + ([id_column] if id_column else [])
    in_fmt = _format(records)
    _check_table(records, in_fmt)
    id_type = _id_type(records, in_fmt, id_column)
    schema = _arrow_schema(scorer, id_type)
    eschema = error_schema()
    if model_id is None:
        model_id = scorer.__getstate__()["_blob_key"]
    digest, total = _fingerprint(records, in_fmt)
    manifest = {
        "records": os.path.abspath(records),
        "records_size": os.stat(records).st_size,
        "records_sha256": digest,
        "model": model_id,
        "chunk_size": chunk_size,
        "on_error": scorer.on_error,
        "id_column": scorer.id_column,
        "root": None if scorer.root is None else os.path.abspath(scorer.root),
        "confine_to_root": bool(scorer.confine_to_root),
    }
    with parts.lock:
        for path in (output, errors):
            _remove_stale_temporaries(path)
        try:
            done = parts.start(manifest, resume=resume)
        except OSError as exc:
            if isinstance(exc, MmfeatError):
                raise
            raise output_error(exc, parts.dir) from None
        try:
            n_chunks = _score_parts(
                scorer,
                records,
                parts,
                done,
                chunk_size,
                n_jobs,
                text_cols,
                total,
                schema,
                eschema,
                progress,
                tqdm,
            )
        except BaseException:
            # nothing to resume (no chunk, or a table that cannot be read to
            # its end, so must change before any run can finish): no leftovers
            if parts.done() == 0 or parts.unreadable:
                with contextlib.suppress(OSError):
                    parts.clear()
            raise
        # replace the outputs only with every chunk of this input in hand
        n_parts = parts.done()
        if n_parts != n_chunks or not parts.lock.held():
            raise OutputError(
                f"{parts.dir} changed while this run was writing it (expected "
                f"{n_chunks} finished chunk(s), found {n_parts}): another process "
                f"removed or replaced it. {output} was left as it was; run again",
                errno=errno.ESTALE,
            )
        pred_paths = [parts.pred(i) for i in range(n_parts)]
        err_paths = [parts.err(i) for i in range(n_parts)]
        rows = _assemble(pred_paths, schema, output, out_fmt)
        n_err = _assemble(err_paths, eschema, errors, err_fmt)
        unscored = _count_null_predictions(pred_paths)
        with contextlib.suppress(OSError):
            parts.clear()
    seconds = time.perf_counter() - t0
    return {
        "rows": rows,
        "scored": rows - unscored,
        "unscored": unscored,
        "errors": n_err,
        "seconds": seconds,
        "rows_per_s": rows / seconds if seconds > 0 else float("nan"),
        "output": output,
        "errors_path": errors,
        "resumed_chunks": done,
        "stale_lock": parts.lock.took_over,
    }


def _score_parts(
    scorer,
    records,
    parts,
    done,
    chunk_size,
    n_jobs,
    text_cols,
    total,
    schema,
    eschema,
    progress,
    tqdm,
):
    """Score the chunks after ``done`` into ``parts``; return the chunk count."""
    bar = tqdm(
        total=total,
        unit="rows",
        unit_scale=True,
        disable=not progress,
        file=sys.stderr,
        initial=min(done * chunk_size, total or 0),
        desc="scoring",
        dynamic_ncols=True,
    )
    source = os.path.basename(records)
    seen = [done]

    def chunks():
        try:
            for i, frame in enumerate(
                iter_records(records, chunk_size, text_columns=text_cols)
            ):
                if i >= done:
                    seen[0] = i + 1
                    yield i, frame
        except InputError:
            parts.unreadable = True
            raise

    def write(i, predictions, errs):
        _atomic_parquet(to_table(errs, eschema), parts.err(i))
        _atomic_parquet(to_table(predictions, schema), parts.pred(i))

    backend_n = get_active_backend()[1]
    eff = n_jobs if n_jobs is not None else backend_n
    try:
        if eff == 1 and not _dask_active():
            for i, frame in chunks():
                n, predictions, errs = _score_chunk(
                    scorer, frame, i * chunk_size, source
                )
                write(i, predictions, errs)
                bar.update(n)
        else:
            index = []
            # workers watch this process and end with it (not Dask's workers)
            parent = None if _dask_active() else os.getpid()

            def tasks():
                for i, frame in chunks():
                    index.append(i)
                    yield delayed(_score_in_worker)(
                        parent, scorer, frame, i * chunk_size, source
                    )

            results = Parallel(
                n_jobs=n_jobs,
                return_as="generator",
                pre_dispatch="2*n_jobs",
                **_worker_kwargs(),
            )(tasks())
            for k, (n, predictions, errs) in enumerate(results):
                write(index[k], predictions, errs)
                bar.update(n)
    finally:
        bar.close()
    return seen[0]


def _count_null_predictions(paths):
    import pyarrow.parquet as pq

    return sum(
        pq.read_table(p, columns=["predict"]).column(0).null_count for p in paths
    )


def _id_type(records, fmt, id_column):
    import pyarrow as pa

    if id_column is None or fmt == "csv":
        return pa.string()
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(records).schema_arrow
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read Parquet: {exc}", source=records) from None
    if id_column not in schema.names:
        raise InputError(
            f"the id column {id_column!r} is not in the input (columns: "
            f"{schema.names[:10]})",
            source=records,
        )
    return schema.field(id_column).type
