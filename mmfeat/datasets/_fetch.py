"""Fetch FSDD into the data home: checksums, safe extraction, clear offline errors.

The generic part, :func:`_fetch_archive`, streams an archive to a temporary
file in the destination folder, checks its SHA-256, renames it atomically and
extracts it member by member into a fresh staging folder, refusing archives
that try to write outside it. :func:`fetch_fsdd` then checks the extracted
recordings against a pinned content digest (GitHub's generated archives are
not byte-stable, their content is) and moves them into
``<data_home>/fsdd/recordings``.
"""

import hashlib
import http.client
import numbers
import os
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from fnmatch import fnmatchcase
from pathlib import Path

from mmfeat.datasets._base import get_data_home
from mmfeat.datasets._fsdd import _FSDD_NAME
from mmfeat.exceptions import DataNotFoundError, MmfeatError, ParameterError

__all__ = ["fetch_fsdd", "DEFAULT_URL", "FSDD_CONTENT_SHA256"]

#: The FSDD commit staged for mmfeat, as GitHub's generated ``.tar.gz``.
DEFAULT_URL = (
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/"
    "26eb9aaf76e81b692f806f9140c2d2777410d7a1.tar.gz"
)

#: :func:`_content_digest` of the 3,000 recordings of that commit.
FSDD_CONTENT_SHA256 = "99aa5e3a7c822ab55b2a3b47e0b05aeb9f011c54837a12e3831ad24108330829"

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
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


# --------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------


def _download(url, dest_dir, *, timeout, offline_help=""):
    """Stream ``url`` into a temporary file in ``dest_dir``.

    Returns ``(temporary_path, sha256_hex)``. The temporary file is removed
    when anything goes wrong; network failures become
    :class:`~mmfeat.exceptions.DataNotFoundError`.
    """
    tmp_path = None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            dest_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_path = tempfile.mkstemp(
                dir=dest_dir, prefix=".mmfeat-download-", suffix=".part"
            )
            digest = hashlib.sha256()
            n_bytes = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in iter(lambda: response.read(_CHUNK_SIZE), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    n_bytes += len(chunk)
            if expected is not None and expected.isdigit() and int(expected) != n_bytes:
                raise http.client.IncompleteRead(b"", int(expected) - n_bytes)
    except _NETWORK_ERRORS as exc:
        _remove(tmp_path)
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()  # an HTTPError holds the open error response
            reason = f"HTTP {exc.code} {exc.reason}"
        else:
            reason = getattr(exc, "reason", None) or exc
        raise DataNotFoundError(
            f"could not download {url}: {reason}. {offline_help}".rstrip()
        ) from exc
    except BaseException:
        _remove(tmp_path)
        raise
    return Path(tmp_path), digest.hexdigest()


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


def _tar_plan(archive):
    """Check every tar member; return ``[(parts, member)]`` for regular files."""
    plan = []
    for member in archive.getmembers():
        parts = _member_parts(member.name)
        if member.isreg():
            if parts:
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


def _zip_plan(archive):
    """Check every zip member; return ``[(parts, info)]`` for regular files."""
    plan = []
    for info in archive.infolist():
        parts = _member_parts(info.filename)
        mode = info.external_attr >> 16
        if info.is_dir():
            continue
        if stat.S_ISLNK(mode):
            target = archive.read(info).decode("utf-8", "replace")
            _check_link(info.filename, parts, target, relative_to_member=True)
        elif mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise MmfeatError(
                f"unsafe archive member {info.filename!r}: device, FIFO or other "
                "special file"
            )
        elif parts:
            plan.append((parts, info))
    return plan


def _archive_kind(path):
    """Return ``"zip"`` or ``"tar"`` from the file's content, or raise."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise MmfeatError(f"{path} is neither a tar nor a zip archive")


def _safe_extract(path, root, *, expected_members=None):
    """Extract the regular files of a tar or zip archive into ``root``.

    Every member is checked before anything is written: absolute names,
    ``..`` components, links pointing outside the archive and device or FIFO
    entries make the whole archive refused with a
    :class:`~mmfeat.exceptions.MmfeatError` naming the member. Links inside
    the archive are skipped, never created. Only members accepted by
    ``expected_members`` are written.

    Returns the list of extracted member parts (tuples of path components).
    """
    root = Path(root)
    real_root = os.path.realpath(root)
    kind = _archive_kind(path)
    try:
        opened = zipfile.ZipFile(path) if kind == "zip" else tarfile.open(path, "r:*")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise MmfeatError(f"cannot read archive {path}: {exc}") from exc
    with opened as archive:
        try:
            plan = _zip_plan(archive) if kind == "zip" else _tar_plan(archive)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
            raise MmfeatError(f"cannot read archive {path}: {exc}") from exc
        if expected_members is not None:
            keep = (
                expected_members
                if callable(expected_members)
                else lambda parts: _matches(parts, expected_members)
            )
            plan = [(parts, m) for parts, m in plan if keep(parts)]
        extracted = []
        for parts, member in plan:
            target = root.joinpath(*parts)
            real_target = os.path.realpath(target)
            if os.path.commonpath([real_root, real_target]) != real_root:
                raise MmfeatError(
                    f"unsafe archive member {'/'.join(parts)!r}: resolves outside "
                    f"{root}"
                )
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                source = (
                    archive.open(member)
                    if kind == "zip"
                    else archive.extractfile(member)
                )
                with source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK_SIZE)
            except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
                raise MmfeatError(
                    f"cannot extract archive member {'/'.join(parts)!r} of "
                    f"{path}: {exc}"
                ) from exc
            extracted.append(parts)
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
        Socket timeout in seconds.
    download : bool, default=True
        If False and the archive is not in ``dest_dir``, raise
        :class:`~mmfeat.exceptions.DataNotFoundError` instead of downloading.
    keep_archive : bool, default=False
        Keep a downloaded archive after extraction.
    offline_help : str, default=""
        Appended to the message of the error raised when the download fails.

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
            url, dest_dir, timeout=timeout, offline_help=offline_help
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
        _safe_extract(archive, staging, expected_members=expected_members)
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
        Socket timeout of the download, in seconds.

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
        If a checksum does not match (the download is deleted), or the
        archive is unsafe (absolute paths, ``..``, links pointing outside,
        device files) or holds no ``recordings/*.wav``. Nothing is left in the
        data home then.
    ParameterError
        If ``sha256``, ``content_sha256`` or ``timeout`` is malformed.

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
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, numbers.Real)
        or not timeout > 0
    ):
        raise ParameterError(f"timeout must be a positive number; got {timeout!r}")
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
