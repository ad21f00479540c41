"""Fetch FSDD into the data home: checksums, safe extraction, clear offline errors.

The generic part, :func:`_fetch_archive`, streams an archive to a temporary
file in the destination folder, checks its SHA-256, renames it atomically and
extracts it member by member into a fresh staging folder, refusing archives
that try to write outside it. :func:`fetch_fsdd` then checks the extracted
recordings against a pinned content digest (GitHub's generated archives are
not byte-stable, their content is) and moves them into
``<data_home>/fsdd/recordings``.

Everything that comes from the network or from an archive is bounded, so a
hostile server or archive costs at most what the limits allow:

- the download stops past ``max_download_bytes`` (and is refused at once when
  ``Content-Length`` declares more), and past ``deadline`` seconds in all,
  however slowly the bytes drip (``timeout`` still bounds each read);
- extraction refuses an archive whose declared sizes exceed
  ``max_member_bytes`` (one member) or ``max_total_bytes`` (all members)
  before writing anything, and counts the bytes it really writes against
  the same budgets, copying in blocks of 64 KiB; a tar's decompressed stream
  (headers included) is read through a reader that stops at
  ``max_total_bytes``, so a lying header or a huge pax/long-name record
  cannot inflate either; a zip symlink's target is read with a bound
  (``_MAX_LINK_TARGET`` bytes), never whole;
- whatever fails, the partial download and the partial extraction are
  removed, and nothing is ever written outside the staging folder.
"""

import bz2
import gzip
import hashlib
import http.client
import io
import lzma
import numbers
import os
import re
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from fnmatch import fnmatchcase
from pathlib import Path

from mmfeat.datasets._base import get_data_home
from mmfeat.datasets._fsdd import _FSDD_NAME
from mmfeat.exceptions import DataNotFoundError, MmfeatError, ParameterError
from mmfeat.utils._hashing import file_sha256
from mmfeat.utils._sizes import limit_text, size_text

__all__ = [
    "fetch_fsdd",
    "DEFAULT_URL",
    "FSDD_CONTENT_SHA256",
    "FSDD_MAX_DOWNLOAD_BYTES",
    "FSDD_MAX_MEMBER_BYTES",
    "FSDD_MAX_TOTAL_BYTES",
    "DEFAULT_DEADLINE",
]

#: The FSDD commit staged for mmfeat, as GitHub's generated ``.tar.gz``.
DEFAULT_URL = (
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/"
    "26eb9aaf76e81b692f806f9140c2d2777410d7a1.tar.gz"
)

#: :func:`_content_digest` of the 3,000 recordings of that commit.
FSDD_CONTENT_SHA256 = "99aa5e3a7c822ab55b2a3b47e0b05aeb9f011c54837a12e3831ad24108330829"

#: The 3,000 recordings are 21,128,848 bytes of WAV (their largest is 36,568
#: bytes); GitHub's archive of the commit adds a README and a few small
#: scripts. The fetch_fsdd limits allow about three times that.
FSDD_MAX_DOWNLOAD_BYTES = 64 << 20
FSDD_MAX_TOTAL_BYTES = 64 << 20
FSDD_MAX_MEMBER_BYTES = 4 << 20

#: Seconds a whole download may take (connection and body), by default.
DEFAULT_DEADLINE = 900.0

# Generic limits of the private helpers when a caller gives none.
_MAX_DOWNLOAD_BYTES = 1 << 30
_MAX_TOTAL_BYTES = 4 << 30
_MAX_MEMBER_BYTES = 1 << 30
# A symlink target longer than PATH_MAX is no path: refused, never read whole.
_MAX_LINK_TARGET = 4096

_FSDD_N_RECORDINGS = 3000
_FSDD_MEMBERS = ("recordings/*.wav", "*/recordings/*.wav")
_CHUNK_SIZE = 1 << 16
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_DRIVE = re.compile(r"^[A-Za-z]:")
# Errors that mean "the network did not deliver": offline, refused, timed out,
# HTTP error status, connection dropped mid-transfer.
_NETWORK_ERRORS = (
    urllib.error.URLError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)


def _sha256_file(path):
    """Return the hex SHA-256 of a file's bytes."""
    return file_sha256(path, block_size=_CHUNK_SIZE)


def _content_digest(folder):
    """Return a SHA-256 over the names and contents of the WAV files in a folder.

    The digest covers the ``*.wav`` files directly in ``folder``, sorted by
    name (code point order): for each one, the UTF-8 name, a NUL byte, the hex
    SHA-256 of its bytes and a newline are fed to one SHA-256. It identifies
    the recordings whatever archive they came in.

    Parameters
    ----------
    folder : str or path-like
        Folder holding the recordings.

    Returns
    -------
    digest : str
        64 lowercase hex digits.
    """
    folder = Path(folder)
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".wav"))
    digest = hashlib.sha256()
    for name in names:
        file_digest = _sha256_file(folder / name)
        digest.update(
            name.encode("utf-8") + b"\0" + file_digest.encode("ascii") + b"\n"
        )
    return digest.hexdigest()


def _check_sha256(value, name):
    if value is not None and (
        not isinstance(value, str) or not _SHA256_HEX.match(value)
    ):
        raise ParameterError(
            f"{name} must be None or a SHA-256 as 64 hex digits; got {value!r}"
        )
    return None if value is None else value.lower()


def _check_positive(value, name, *, integer=False, allow_none=False):
    """Raise ParameterError unless ``value`` is a positive number (or None)."""
    if value is None and allow_none:
        return value
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        what = "a positive int" if integer else "a positive number"
        if allow_none:
            what += " or None (no limit)"
        raise ParameterError(f"{name} must be {what}; got {value!r}")
    return value


# --------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------


def _response_socket(response):
    """The socket under an ``http.client`` response, or None (best effort)."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _download(
    url,
    dest_dir,
    *,
    timeout,
    deadline=DEFAULT_DEADLINE,
    max_bytes=_MAX_DOWNLOAD_BYTES,
    offline_help="",
):
    """Stream ``url`` into a temporary file in ``dest_dir``, within limits.

    ``timeout`` bounds the connection and each read; ``deadline`` (seconds)
    bounds the whole download, checked after every read of whatever the
    server sent (so a body dripped byte by byte still ends); ``max_bytes``
    bounds the body: a ``Content-Length`` above it is refused before the
    body is read, and the body is refused as soon as it passes it, with at
    most ``max_bytes`` bytes ever written. ``deadline`` and ``max_bytes`` may
    be None (no limit).

    Returns ``(temporary_path, sha256_hex)``. The temporary file is removed
    when anything goes wrong; network failures and an expired deadline
    become :class:`~mmfeat.exceptions.DataNotFoundError`, a body over
    ``max_bytes`` an :class:`~mmfeat.exceptions.MmfeatError`.
    """
    tmp_path = None
    started = time.monotonic()
    ends_at = None if deadline is None else started + deadline
    n_bytes = 0

    def check_deadline():
        if ends_at is not None and time.monotonic() >= ends_at:
            raise _DeadlineExpired

    def read_timeout():
        if ends_at is None:
            return timeout
        return max(min(timeout, ends_at - time.monotonic()), 0.001)

    try:
        with urllib.request.urlopen(url, timeout=read_timeout()) as response:
            expected = response.headers.get("Content-Length")
            expected = int(expected) if expected and expected.isdigit() else None
            if max_bytes is not None and expected is not None and expected > max_bytes:
                raise MmfeatError(
                    f"refused to download {url}: the server declares "
                    f"Content-Length {size_text(expected)}, over "
                    f"{limit_text('max_download_bytes', max_bytes)}. Raise "
                    "max_download_bytes (or pass None) if this archive is genuine."
                )
            dest_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(
                dir=dest_dir, prefix=".mmfeat-download-", suffix=".part"
            )
            digest = hashlib.sha256()
            sock = _response_socket(response)
            # read1 returns what one read of the socket gave: a slow body
            # returns often enough for the deadline to be checked
            read = getattr(response, "read1", response.read)
            with os.fdopen(fd, "wb") as out:
                while True:
                    check_deadline()
                    if sock is not None:
                        sock.settimeout(read_timeout())
                    want = _CHUNK_SIZE
                    if max_bytes is not None:
                        want = min(want, max_bytes - n_bytes + 1)
                    chunk = read(want)
                    if not chunk:
                        break
                    if max_bytes is not None and n_bytes + len(chunk) > max_bytes:
                        raise MmfeatError(
                            f"refused to download {url}: the body is longer than "
                            f"{limit_text('max_download_bytes', max_bytes)}; the "
                            "partial download was deleted. Raise "
                            "max_download_bytes (or pass None) if this archive "
                            "is genuine."
                        )
                    out.write(chunk)
                    digest.update(chunk)
                    n_bytes += len(chunk)
            if expected is not None and expected != n_bytes:
                raise http.client.IncompleteRead(b"", expected - n_bytes)
    except (_DeadlineExpired, *_NETWORK_ERRORS) as exc:
        _remove(tmp_path)
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()  # an HTTPError holds the open error response
            reason = f"HTTP {exc.code} {exc.reason}"
        elif isinstance(exc, _DeadlineExpired) or (
            isinstance(exc, TimeoutError)
            and ends_at is not None
            and time.monotonic() >= ends_at - 0.01
        ):
            reason = (
                f"not finished within deadline={deadline:g} s "
                f"({n_bytes:,} bytes received); the partial download was "
                "deleted. Raise deadline if the connection is just slow"
            )
        else:
            reason = getattr(exc, "reason", None) or exc
        raise DataNotFoundError(
            f"could not download {url}: {reason}. {offline_help}".rstrip()
        ) from exc
    except BaseException:
        _remove(tmp_path)
        raise
    return Path(tmp_path), digest.hexdigest()


class _DeadlineExpired(Exception):
    """Internal: the download's deadline passed (becomes DataNotFoundError)."""


def _remove(path):
    if path is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------
# Safe extraction
# --------------------------------------------------------------------------


def _member_parts(name):
    r"""Split an archive member name into safe path parts, or raise MmfeatError.

    Refuses absolute names (``/x``, ``\x``, ``C:x``) and any ``..``
    component. Backslashes count as separators.
    """
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise MmfeatError(f"unsafe archive member {name!r}: absolute path")
    parts = tuple(p for p in norm.split("/") if p not in ("", "."))
    if ".." in parts:
        raise MmfeatError(f"unsafe archive member {name!r}: '..' in its path")
    return parts


def _check_link(name, parts, target, *, relative_to_member):
    """Refuse a link whose target is absolute or resolves outside the archive."""
    norm = target.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise MmfeatError(
            f"unsafe archive member {name!r}: link to absolute path {target!r}"
        )
    resolved = list(parts[:-1]) if relative_to_member else []
    for part in norm.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise MmfeatError(
                    f"unsafe archive member {name!r}: link {target!r} points "
                    "outside the archive"
                )
            resolved.pop()
        else:
            resolved.append(part)


def _matches(parts, patterns):
    """Whether member ``parts`` match one of the glob ``patterns``.

    A pattern matches component by component (``*`` never crosses ``/``).
    """
    for pattern in patterns:
        pattern_parts = tuple(p for p in pattern.split("/") if p)
        if len(pattern_parts) == len(parts) and all(
            fnmatchcase(p, q) for p, q in zip(parts, pattern_parts, strict=True)
        ):
            return True
    return False


# Errors the decompressors and archive readers raise on corrupt input.
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    RuntimeError,  # zipfile: an encrypted member
    NotImplementedError,  # zipfile: an unsupported compression method
)
# Tar header records (pax headers, GNU long names) are read whole by tarfile;
# genuine ones are a few hundred bytes.
_MAX_TAR_RECORD = 1 << 20


def _refused(path, what, limit_name, limit):
    return MmfeatError(
        f"refused archive {path}: {what}, over {limit_text(limit_name, limit)}. "
        f"Nothing was kept. Raise {limit_name} (or pass None) "
        "if this archive is genuine."
    )


class _BoundedStream:
    """A tar's decompressed stream that stops ``limit`` bytes in.

    tarfile reads headers and skips (seeks over) the data of members it does
    not extract; through this reader neither can go past ``limit`` bytes of
    uncompressed stream, and no single read (a pax header or a GNU long name
    that tarfile would hold in memory) may ask for more than
    ``_MAX_TAR_RECORD`` bytes. Past either, :class:`MmfeatError`.
    """

    def __init__(self, raw, limit, path):
        self._raw = raw
        self._limit = limit
        self._path = path
        self._pos = 0

    def _over(self):
        return _refused(
            self._path,
            "its decompressed tar stream (headers and all members) goes on "
            "past the limit",
            "max_total_bytes",
            self._limit,
        )

    def read(self, n=-1):
        if n is None or n < 0 or n > _MAX_TAR_RECORD:
            # tarfile reads data in blocks it chooses; only a header record is
            # read in one go, and an oversized one is a memory bomb
            raise MmfeatError(
                f"refused archive {self._path}: a tar header record (pax "
                f"header or GNU long name) of {n:,} bytes, over "
                f"{_MAX_TAR_RECORD:,}"
            )
        if self._limit is not None and self._pos + n > self._limit:
            room = self._limit - self._pos
            data = self._raw.read(room + 1)
            if len(data) > room:
                raise self._over()
        else:
            data = self._raw.read(n)
        self._pos += len(data)
        return data

    def seek(self, pos, whence=os.SEEK_SET):
        if whence == os.SEEK_CUR:
            pos += self._pos
        elif whence != os.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end")
        if self._limit is not None and pos > self._limit:
            raise self._over()
        self._pos = self._raw.seek(pos)
        return self._pos

    def tell(self):
        return self._pos


def _open_tar(path, max_total_bytes):
    """Open a (compressed) tar through a :class:`_BoundedStream`.

    Returns ``(tarfile, raw)``; close both. The compression is detected from
    the magic bytes (gzip, bzip2, xz, else plain).
    """
    with open(path, "rb") as f:
        head = f.read(6)
    if head[:2] == b"\x1f\x8b":
        raw = gzip.GzipFile(path, "rb")
    elif head[:3] == b"BZh":
        raw = bz2.BZ2File(path, "rb")
    elif head == b"\xfd7zXZ\x00":
        raw = lzma.LZMAFile(path, "rb")
    else:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    try:
        stream = _BoundedStream(raw, max_total_bytes, path)
        return tarfile.open(fileobj=stream, mode="r:"), raw
    except MmfeatError:
        raw.close()
        raise
    except _ARCHIVE_ERRORS as exc:
        raw.close()
        raise MmfeatError(f"{path} is neither a tar nor a zip archive ({exc})") from exc


def _check_declared(path, name, size, keep, declared_total, limits):
    """Refuse from the declared sizes before anything is written."""
    max_member_bytes, max_total_bytes = limits
    if keep and max_member_bytes is not None and size > max_member_bytes:
        raise _refused(
            path,
            f"member {name!r} declares {size_text(size)} uncompressed",
            "max_member_bytes",
            max_member_bytes,
        )
    if max_total_bytes is not None and declared_total > max_total_bytes:
        raise _refused(
            path,
            f"its members declare at least {size_text(declared_total)} "
            "uncompressed in all",
            "max_total_bytes",
            max_total_bytes,
        )


def _tar_plan(path, archive, keep, limits):
    """Check every tar member; return ``[(parts, member)]`` of files to extract.

    Members are read one by one (never all headers first), so a refused size
    stops the scan before the stream goes further.
    """
    plan = []
    declared_total = 0
    for member in archive:
        parts = _member_parts(member.name)
        if member.isreg():
            declared_total += member.size
            wanted = bool(parts) and keep(parts)
            _check_declared(
                path, member.name, member.size, wanted, declared_total, limits
            )
            if wanted:
                plan.append((parts, member))
        elif member.isdir():
            continue
        elif member.issym():
            _check_link(member.name, parts, member.linkname, relative_to_member=True)
        elif member.islnk():
            _check_link(member.name, parts, member.linkname, relative_to_member=False)
        else:
            raise MmfeatError(
                f"unsafe archive member {member.name!r}: device, FIFO or other "
                "special file"
            )
    return plan


def _read_zip_link(archive, info):
    """Read a zip symlink's target, never more than ``_MAX_LINK_TARGET`` bytes."""
    too_long = (
        f"unsafe archive member {info.filename!r}: symlink whose target is "
        "longer than {:,} bytes (PATH_MAX); refused without reading it"
    )
    if info.file_size > _MAX_LINK_TARGET:
        raise MmfeatError(too_long.format(_MAX_LINK_TARGET))
    with archive.open(info) as f:
        target = f.read(_MAX_LINK_TARGET + 1)
    if len(target) > _MAX_LINK_TARGET:  # its header lied about its size
        raise MmfeatError(too_long.format(_MAX_LINK_TARGET))
    return target.decode("utf-8", "replace")


def _zip_plan(path, archive, keep, limits):
    """Check every zip member; return ``[(parts, info)]`` of files to extract."""
    plan = []
    declared_total = 0
    for info in archive.infolist():
        parts = _member_parts(info.filename)
        mode = info.external_attr >> 16
        declared_total += info.file_size
        if info.is_dir():
            _check_declared(path, info.filename, 0, False, declared_total, limits)
            continue
        if stat.S_ISLNK(mode):
            _check_declared(path, info.filename, 0, False, declared_total, limits)
            target = _read_zip_link(archive, info)
            _check_link(info.filename, parts, target, relative_to_member=True)
        elif mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise MmfeatError(
                f"unsafe archive member {info.filename!r}: device, FIFO or other "
                "special file"
            )
        else:
            wanted = bool(parts) and keep(parts)
            _check_declared(
                path, info.filename, info.file_size, wanted, declared_total, limits
            )
            if wanted:
                plan.append((parts, info))
    return plan


def _archive_kind(path):
    """Return ``"zip"`` or ``"tar"`` from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
    return "zip" if head in (b"PK\x03\x04", b"PK\x05\x06") else "tar"


def _copy_bounded(source, out, *, path, name, max_member_bytes, max_total_bytes, done):
    """Copy ``source`` to ``out`` in blocks, counting what is really written.

    ``done`` bytes of the archive were written before. Never writes more than
    ``max_member_bytes`` bytes of this member nor more than
    ``max_total_bytes`` in all (either may be None): one byte past either
    refuses the archive. Returns the number of bytes written.
    """
    total_left = None if max_total_bytes is None else max_total_bytes - done
    caps = [c for c in (max_member_bytes, total_left) if c is not None]
    cap = min(caps) if caps else None
    n = 0
    while True:
        want = _CHUNK_SIZE if cap is None else min(_CHUNK_SIZE, cap - n + 1)
        block = source.read(want)
        if not block:
            return n
        if max_member_bytes is not None and n + len(block) > max_member_bytes:
            raise _refused(
                path,
                f"member {name!r} inflates past the limit while being extracted "
                "(more than its header declared)",
                "max_member_bytes",
                max_member_bytes,
            )
        if total_left is not None and n + len(block) > total_left:
            raise _refused(
                path,
                "its extracted members go on past the limit while being written "
                "(more than their headers declared)",
                "max_total_bytes",
                max_total_bytes,
            )
        out.write(block)
        n += len(block)


def _safe_extract(
    path,
    root,
    *,
    expected_members=None,
    max_member_bytes=_MAX_MEMBER_BYTES,
    max_total_bytes=_MAX_TOTAL_BYTES,
):
    """Extract the regular files of a tar or zip archive into ``root``.

    Every member is checked before anything is written: absolute names,
    ``..`` components, links pointing outside the archive and device or FIFO
    entries make the whole archive refused with a
    :class:`~mmfeat.exceptions.MmfeatError` naming the member. Links inside
    the archive are skipped, never created. Only members accepted by
    ``expected_members`` are written.

    Sizes are bounded twice: from the headers before anything is written (a
    member to extract declaring more than ``max_member_bytes``, or all
    members declaring more than ``max_total_bytes``), then from the bytes
    really written (one byte past either budget). A tar's decompressed
    stream is read through a :class:`_BoundedStream` stopped at
    ``max_total_bytes``. Either limit may be None (no limit). On any failure
    the files and folders this call created are removed.

    Returns the list of extracted member parts (tuples of path components).
    """
    root = Path(root)
    real_root = os.path.realpath(root)
    if expected_members is None:
        keep = lambda parts: True  # noqa: E731
    elif callable(expected_members):
        keep = expected_members
    else:
        keep = lambda parts: _matches(parts, expected_members)  # noqa: E731
    limits = (max_member_bytes, max_total_bytes)
    kind = _archive_kind(path)
    raw = None
    try:
        if kind == "zip":
            opened = zipfile.ZipFile(path)
        else:
            opened, raw = _open_tar(path, max_total_bytes)
    except MmfeatError:
        raise
    except _ARCHIVE_ERRORS as exc:
        raise MmfeatError(f"cannot read archive {path}: {exc}") from exc
    written, new_dirs, extracted = [], [], []
    try:
        with opened as archive:
            try:
                plan = (
                    _zip_plan(path, archive, keep, limits)
                    if kind == "zip"
                    else _tar_plan(path, archive, keep, limits)
                )
            except MmfeatError:
                raise
            except _ARCHIVE_ERRORS as exc:
                raise MmfeatError(f"cannot read archive {path}: {exc}") from exc
            total = 0
            for parts, member in plan:
                name = "/".join(parts)
                target = root.joinpath(*parts)
                real_target = os.path.realpath(target)
                if os.path.commonpath([real_root, real_target]) != real_root:
                    raise MmfeatError(
                        f"unsafe archive member {name!r}: resolves outside {root}"
                    )
                try:
                    missing = []
                    folder = target.parent
                    while folder != root and not folder.exists():
                        missing.append(folder)
                        folder = folder.parent
                    target.parent.mkdir(parents=True, exist_ok=True)
                    new_dirs.extend(reversed(missing))
                    source = (
                        archive.open(member)
                        if kind == "zip"
                        else archive.extractfile(member)
                    )
                    with source, open(target, "wb") as out:
                        written.append(target)
                        total += _copy_bounded(
                            source,
                            out,
                            path=path,
                            name=name,
                            max_member_bytes=max_member_bytes,
                            max_total_bytes=max_total_bytes,
                            done=total,
                        )
                except MmfeatError:
                    raise
                except _ARCHIVE_ERRORS as exc:
                    raise MmfeatError(
                        f"cannot extract archive member {name!r} of {path}: {exc}"
                    ) from exc
                extracted.append(parts)
    except BaseException:
        for target in written:
            _remove(target)
        for folder in reversed(new_dirs):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    finally:
        if raw is not None:
            raw.close()
    return extracted


def _fetch_archive(
    url,
    dest_dir,
    *,
    sha256=None,
    expected_members=None,
    filename=None,
    timeout=60,
    download=True,
    keep_archive=False,
    offline_help="",
    deadline=DEFAULT_DEADLINE,
    max_download_bytes=_MAX_DOWNLOAD_BYTES,
    max_member_bytes=_MAX_MEMBER_BYTES,
    max_total_bytes=_MAX_TOTAL_BYTES,
):
    """Download (or reuse) an archive, verify it and extract it safely.

    Parameters
    ----------
    url : str
        Address of a tar (plain, gz, bz2, xz) or zip archive; the kind is
        detected from the content.
    dest_dir : str or path-like
        Folder for the archive and the staging folder (created if needed).
    sha256 : str or None, default=None
        Expected SHA-256 of the archive's bytes. On mismatch a downloaded
        archive is deleted and :class:`~mmfeat.exceptions.MmfeatError` says
        what was expected and what was got.
    expected_members : callable, sequence of str or None, default=None
        Which regular-file members to extract: a predicate on the member's
        path components, or glob patterns matched component by component
        (e.g. ``"*/recordings/*.wav"``). ``None`` extracts every file. Every
        member is checked for safety either way.
    filename : str, default=None
        Name of the archive in ``dest_dir``; defaults to the URL's last path
        segment. An archive already there is used instead of downloading.
    timeout : float, default=60
        Socket timeout in seconds (the connection and each read).
    download : bool, default=True
        If False and the archive is not in ``dest_dir``, raise
        :class:`~mmfeat.exceptions.DataNotFoundError` instead of downloading.
    keep_archive : bool, default=False
        Keep a downloaded archive after extraction.
    offline_help : str, default=""
        Appended to the message of the error raised when the download fails.
    deadline : float or None, default=DEFAULT_DEADLINE
        Seconds the whole download may take; past it the partial download is
        deleted and :class:`~mmfeat.exceptions.DataNotFoundError` is raised.
    max_download_bytes : int or None, default=1 GiB
        Largest body accepted; a larger ``Content-Length`` is refused before
        the body is read, a longer body as soon as it passes the limit.
    max_member_bytes : int or None, default=1 GiB
        Largest uncompressed size of one extracted member.
    max_total_bytes : int or None, default=4 GiB
        Largest uncompressed size of the whole archive (the declared sizes of
        all members, a tar's decompressed stream and the bytes written).

    Returns
    -------
    staging : pathlib.Path
        A new hidden folder in ``dest_dir`` holding the extracted files; the
        caller moves what it needs and removes it.
    """
    dest_dir = Path(dest_dir)
    sha256 = _check_sha256(sha256, "sha256")
    if filename is None:
        filename = os.path.basename(urllib.parse.urlparse(url).path) or "download"
    archive = dest_dir / filename
    downloaded = False
    if archive.is_file():
        if sha256 is not None:
            got = _sha256_file(archive)
            if got != sha256:
                raise MmfeatError(
                    f"checksum mismatch for {archive}: expected SHA-256 {sha256}, "
                    f"got {got}. Delete the file (or fix sha256) and try again."
                )
    elif not download:
        raise DataNotFoundError(f"{archive} not found. {offline_help}".rstrip())
    else:
        tmp_path, got = _download(
            url,
            dest_dir,
            timeout=timeout,
            deadline=deadline,
            max_bytes=max_download_bytes,
            offline_help=offline_help,
        )
        if sha256 is not None and got != sha256:
            _remove(tmp_path)
            raise MmfeatError(
                f"checksum mismatch for {url}: expected SHA-256 {sha256}, got {got}. "
                "The download was deleted."
            )
        os.replace(tmp_path, archive)
        downloaded = True
    staging = Path(tempfile.mkdtemp(dir=dest_dir, prefix=".mmfeat-extract-"))
    try:
        _safe_extract(
            archive,
            staging,
            expected_members=expected_members,
            max_member_bytes=max_member_bytes,
            max_total_bytes=max_total_bytes,
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if downloaded:
            _remove(archive)
        raise
    if downloaded and not keep_archive:
        _remove(archive)
    return staging


# --------------------------------------------------------------------------
# FSDD
# --------------------------------------------------------------------------


def _count_fsdd_recordings(recordings):
    if not recordings.is_dir():
        return 0
    return sum(1 for p in recordings.iterdir() if _FSDD_NAME.match(p.name))


def _fsdd_help(url, home, filename):
    return (
        "To get FSDD without this download: (1) download the archive by hand "
        f"from {url} and save it as {home / filename}, then call fetch_fsdd "
        "again; or (2) copy an existing fsdd/ folder (holding recordings/*.wav) "
        f"into {home}; or (3) set the MMFEAT_DATA_HOME environment variable to "
        "a folder that already holds fsdd/recordings."
    )


def fetch_fsdd(
    *,
    data_home=None,
    url=DEFAULT_URL,
    sha256=None,
    content_sha256=FSDD_CONTENT_SHA256,
    download_if_missing=True,
    timeout=60,
    deadline=DEFAULT_DEADLINE,
    max_download_bytes=FSDD_MAX_DOWNLOAD_BYTES,
    max_member_bytes=FSDD_MAX_MEMBER_BYTES,
    max_total_bytes=FSDD_MAX_TOTAL_BYTES,
):
    """Download the Free Spoken Digit Dataset into the data home.

    If ``<data_home>/fsdd/recordings`` already holds the 3,000 recordings,
    nothing is downloaded. Otherwise the archive at ``url`` is streamed to a
    temporary file in the data home, checked, renamed, extracted safely, and
    its ``recordings/*.wav`` (at the top or under one top-level folder, as in
    GitHub's ``free-spoken-digit-dataset-<sha>/recordings/``) are checked
    against ``content_sha256`` and moved to ``<data_home>/fsdd/recordings``.
    An archive already saved as ``<data_home>/fsdd-<archive name>`` is used
    instead of downloading.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Where to put ``fsdd/``. ``None`` means the ``MMFEAT_DATA_HOME``
        environment variable, else ``~/mmfeat_data``.
    url : str, default=DEFAULT_URL
        Archive to download (tar or zip, detected from the content). The
        default is GitHub's archive of commit ``26eb9aa`` of
        ``Jakobovski/free-spoken-digit-dataset``.
    sha256 : str or None, default=None
        Expected SHA-256 of the archive file. GitHub's generated archives are
        not guaranteed byte-stable, so the default checks the content
        instead (``content_sha256``).
    content_sha256 : str or None, default=FSDD_CONTENT_SHA256
        Expected digest of the extracted recordings (names and bytes; see
        ``_content_digest``). The default pins the 3,000 recordings of the
        staged commit; pass None (or the subset's own digest) for an archive
        with other content.
    download_if_missing : bool, default=True
        If False and the data is not there, raise instead of downloading.
    timeout : float, default=60
        Socket timeout of the download, in seconds: how long the connection
        and each read may wait.
    deadline : float or None, default=DEFAULT_DEADLINE
        Seconds the whole download may take (900, i.e. 15 minutes), however
        the server paces it. ``None`` means no limit.
    max_download_bytes : int or None, default=FSDD_MAX_DOWNLOAD_BYTES
        Largest archive accepted, in bytes (64 MiB; the staged commit's
        recordings are 21.1 MB). A larger ``Content-Length`` is refused
        before the body is read, a longer body as soon as it passes the
        limit. ``None`` means no limit.
    max_member_bytes : int or None, default=FSDD_MAX_MEMBER_BYTES
        Largest uncompressed size of one extracted file (4 MiB; the largest
        recording is 36,568 bytes). ``None`` means no limit.
    max_total_bytes : int or None, default=FSDD_MAX_TOTAL_BYTES
        Largest uncompressed size of the whole archive: what its members
        declare, a tar's decompressed stream, and the bytes written (64 MiB).
        ``None`` means no limit.

    Returns
    -------
    folder : pathlib.Path
        ``<data_home>/fsdd``, ready for :func:`load_fsdd`.

    Raises
    ------
    DataNotFoundError
        If the download fails (offline, refused, timed out, HTTP error) or
        ``download_if_missing`` is False and the data is missing. The message
        says how to get the data by hand.
    MmfeatError
        If a checksum does not match (the download is deleted), the download
        or the archive is over a size limit (the message names the limit),
        or the archive is unsafe (absolute paths, ``..``, links pointing
        outside, device files) or holds no ``recordings/*.wav``. Nothing is
        left in the data home then.
    ParameterError
        If ``sha256``, ``content_sha256``, ``timeout``, ``deadline`` or a
        size limit is malformed.

    See Also
    --------
    load_fsdd : Load the recordings as a frame.

    Examples
    --------
    >>> from mmfeat.datasets import fetch_fsdd, load_fsdd
    >>> folder = fetch_fsdd(data_home="~/mmfeat_data")  # doctest: +SKIP
    >>> len(load_fsdd(data_home="~/mmfeat_data").frame)  # doctest: +SKIP
    3000
    """
    if not isinstance(url, str) or not url:
        raise ParameterError(f"url must be a non-empty str; got {url!r}")
    _check_positive(timeout, "timeout")
    _check_positive(deadline, "deadline", allow_none=True)
    for name, value in [
        ("max_download_bytes", max_download_bytes),
        ("max_member_bytes", max_member_bytes),
        ("max_total_bytes", max_total_bytes),
    ]:
        _check_positive(value, name, integer=True, allow_none=True)
    sha256 = _check_sha256(sha256, "sha256")
    content_sha256 = _check_sha256(content_sha256, "content_sha256")
    home = get_data_home(data_home)
    folder = home / "fsdd"
    recordings = folder / "recordings"
    if _count_fsdd_recordings(recordings) >= _FSDD_N_RECORDINGS:
        return folder
    name = os.path.basename(urllib.parse.urlparse(url).path) or "archive"
    filename = f"fsdd-{name}"
    help_text = _fsdd_help(url, home, filename)
    if not download_if_missing and not (home / filename).is_file():
        raise DataNotFoundError(
            f"dataset 'fsdd' not found: {recordings} does not hold the "
            f"{_FSDD_N_RECORDINGS} recordings and download_if_missing=False. "
            + help_text
        )
    staging = _fetch_archive(
        url,
        home,
        sha256=sha256,
        expected_members=_FSDD_MEMBERS,
        filename=filename,
        timeout=timeout,
        download=download_if_missing,
        offline_help=help_text,
        deadline=deadline,
        max_download_bytes=max_download_bytes,
        max_member_bytes=max_member_bytes,
        max_total_bytes=max_total_bytes,
    )
    try:
        collected = Path(tempfile.mkdtemp(dir=staging, prefix=".collected-"))
        for path in sorted(staging.glob("recordings/*.wav")) + sorted(
            staging.glob("*/recordings/*.wav")
        ):
            if (collected / path.name).exists():
                raise MmfeatError(
                    f"archive {url} holds {path.name!r} more than once "
                    "(several recordings/ folders)"
                )
            os.replace(path, collected / path.name)
        n_found = sum(1 for _ in collected.iterdir())
        if n_found == 0:
            raise MmfeatError(
                f"archive {url} holds no recordings/*.wav (looked at the top "
                "level and under one top-level folder)"
            )
        if content_sha256 is not None:
            got = _content_digest(collected)
            if got != content_sha256:
                raise MmfeatError(
                    f"content checksum mismatch for the {n_found} recordings of "
                    f"{url}: expected {content_sha256}, got {got}. Nothing was "
                    "installed. For an archive with other content pass "
                    "content_sha256=None."
                )
        folder.mkdir(parents=True, exist_ok=True)
        if not recordings.exists():
            os.replace(collected, recordings)
        else:
            for path in collected.iterdir():
                os.replace(path, recordings / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
