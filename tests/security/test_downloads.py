"""Downloads and archive extraction (``fetch_fsdd``) are bounded.

Promises, one test each (the test names say them):

- an archive member that declares more than ``max_member_bytes`` (a tar.gz or
  zip bomb: 50 MiB of zeros in ~50 KB) is refused from its header, before a
  byte is written;
- members that add up to more than ``max_total_bytes`` are refused from
  their headers, before a byte is written;
- extraction counts the bytes it really writes, never trusting headers
  alone: a member that inflates past a budget is cut one block in;
- a tar's decompressed stream is bounded too: a flood of headers, or a huge
  pax header that tarfile would read whole, is refused within the budget;
- a zip symlink entry with a huge "target" is refused without reading it;
- the archive's checksum, when given, is checked before anything is
  extracted;
- traversal members (``..``, absolute names, links out) are still refused;
- an endless HTTP body is cut at ``max_download_bytes``, a ``Content-Length``
  over it is refused before the body is read, and a body dripped one byte at
  a time fails at the overall ``deadline`` although no single read times out;
- whatever is refused, nothing is left in the data home.

Every attack is built here, in ``tmp_path``. So that a regressed defence fails
instead of filling the disk, memory or the clock: the extraction tests run
under ``RLIMIT_FSIZE`` (no file may grow past the budget plus one block), the
memory attacks in a child under ``RLIMIT_AS`` (:func:`run_limited`), and the
hostile HTTP server gives up after 64 MiB or 10 s.
"""

import io
import json
import resource
import signal
import stat
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mmfeat.datasets import fetch_fsdd
from mmfeat.datasets._fetch import _CHUNK_SIZE, _copy_bounded, _safe_extract
from mmfeat.exceptions import DataNotFoundError, MmfeatError
from tests.security._limits import run_limited

MiB = 1 << 20
BOMB = 50 * MiB  # what one hostile member inflates to
BUDGET = 1 * MiB  # the small budget the tests pass
WAV = "top/recordings/0_george_0.wav"


def _leftovers(folder):
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


class _Zeros(io.RawIOBase):
    """``n`` zero bytes as a stream (``n=None``: endless)."""

    def __init__(self, n=None):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        k = len(b) if self.left is None else min(len(b), self.left)
        b[:k] = bytes(k)
        if self.left is not None:
            self.left -= k
        return k


def _tar_gz(path, members):
    """``members``: ``(name, size)`` regular files of zeros, streamed."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BufferedReader(_Zeros(size)))
    return path


def _zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, size in members:
            with zf.open(name, "w", force_zip64=True) as f:
                for start in range(0, size, MiB):
                    f.write(bytes(min(MiB, size - start)))
    return path


def _archive(kind, path, members):
    return (_zip if kind == "zip" else _tar_gz)(path.with_suffix(f".{kind}"), members)


@pytest.fixture
def file_size_limit():
    """Cap the size of any file this process writes (``RLIMIT_FSIZE``).

    A write past it fails with EFBIG (SIGXFSZ is ignored meanwhile), so a
    regressed size check fails its test instead of filling the disk.
    """
    old_limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def set_limit(nbytes):
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, old_limits[1]))

    try:
        yield set_limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limits)
        signal.signal(signal.SIGXFSZ, old_handler)


# --------------------------------------------------------------------------
# Extraction budgets
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archive_bomb_is_refused_from_its_header_before_writing(
    tmp_path, file_size_limit, kind
):
    archive = _archive(kind, tmp_path / "bomb", [(WAV, BOMB)])
    assert archive.stat().st_size < 2 * MiB  # 50 MiB of zeros, compressed
    home = tmp_path / "home"
    file_size_limit(BUDGET + _CHUNK_SIZE)
    started = time.monotonic()
    with pytest.raises(
        MmfeatError,
        match=(
            rf"member '{WAV}' declares 52,428,800 bytes \(50 MiB\) uncompressed, "
            rf"over max_member_bytes={BUDGET:,} bytes \(1 MiB\)"
        ),
    ):
        fetch_fsdd(
            data_home=home,
            url=archive.as_uri(),
            content_sha256=None,
            max_member_bytes=BUDGET,
        )
    assert time.monotonic() - started < 5
    assert _leftovers(home) == []


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_members_adding_up_past_max_total_bytes_are_refused_before_writing(
    tmp_path, file_size_limit, kind
):
    # two members of 600 KiB, each under max_member_bytes, 1.2 MiB in all
    size = 600 * 1024
    members = [(f"top/recordings/0_george_{i}.wav", size) for i in range(2)]
    archive = _archive(kind, tmp_path / "two", members)
    dest = tmp_path / "dest"
    dest.mkdir()
    file_size_limit(BUDGET + _CHUNK_SIZE)
    with pytest.raises(
        MmfeatError,
        match=(
            rf"its members declare at least {2 * size:,} bytes .* in all, "
            rf"over max_total_bytes={BUDGET:,} bytes "
        ),
    ):
        _safe_extract(archive, dest, max_member_bytes=BUDGET, max_total_bytes=BUDGET)
    assert _leftovers(dest) == []


def test_extraction_counts_the_bytes_it_writes_not_the_headers(
    tmp_path, file_size_limit
):
    # a member stream that does not stop where its header said: 50 MiB where
    # the budget leaves room for 1 MiB (or for what is left of the total)
    file_size_limit(BUDGET + _CHUNK_SIZE)
    for name, done, match in [
        ("max_member_bytes", 0, f"member '{WAV}' inflates past the limit"),
        ("max_total_bytes", BUDGET // 4, "extracted members go on past the limit"),
    ]:
        limits = {"max_member_bytes": None, "max_total_bytes": None, name: BUDGET}
        out_path = tmp_path / f"{name}.wav"
        with (
            open(out_path, "wb") as out,
            pytest.raises(
                MmfeatError, match=rf"{match} .*, over {name}={BUDGET:,} bytes "
            ),
        ):
            _copy_bounded(
                io.BufferedReader(_Zeros(BOMB)),
                out,
                path="a.zip",
                name=WAV,
                done=done,
                **limits,
            )
        # not one byte past the budget reached the disk
        assert out_path.stat().st_size == BUDGET - done


def test_tar_header_flood_is_stopped_by_the_stream_budget(tmp_path):
    # 4,096 empty folders: 2 MiB of headers, no member data to declare
    archive = tmp_path / "flood.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i in range(4096):
            info = tarfile.TarInfo(f"top/d{i}")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(
        MmfeatError,
        match=(
            r"decompressed tar stream \(headers and all members\) goes on past "
            rf"the limit, over max_total_bytes={BUDGET:,} bytes "
        ),
    ):
        _safe_extract(archive, dest, max_total_bytes=BUDGET)
    assert _leftovers(dest) == []


def _pax_bomb(path, value_bytes):
    """A tar.gz whose first record is a pax header of ``value_bytes`` bytes."""
    prefix = b" comment="
    rest = len(prefix) + value_bytes + 1  # the record without its length field
    length = next(rest + d for d in range(1, 20) if len(str(rest + d)) == d)
    record_head = str(length).encode() + prefix
    assert len(record_head) + value_bytes + 1 == length
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = length
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        out = tar.fileobj
        out.write(pax.tobuf(format=tarfile.USTAR_FORMAT))
        out.write(record_head)
        for start in range(0, value_bytes, MiB):
            out.write(b"a" * min(MiB, value_bytes - start))
        out.write(b"\n" + bytes(-length % tarfile.BLOCKSIZE))
        tar.offset += tarfile.BLOCKSIZE + length + (-length % tarfile.BLOCKSIZE)
        member = tarfile.TarInfo(WAV)
        member.size = 4
        tar.addfile(member, io.BytesIO(b"RIFF"))
    return path


_CHILD = """
import json, resource, sys
from pathlib import Path
from mmfeat.datasets._fetch import _safe_extract
from mmfeat.exceptions import MmfeatError
dest = Path({dest!r})
dest.mkdir()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    _safe_extract({archive!r}, dest)
    outcome = "accepted"
except MmfeatError as exc:
    outcome = str(exc)
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
left = len(list(dest.iterdir()))
print(json.dumps({{"outcome": outcome, "grew_kb": grew, "left": left}}))
"""


def _extract_in_child(archive, dest):
    out = run_limited(
        _CHILD.format(archive=str(archive), dest=str(dest)), memory_mb=48, timeout=60
    )
    assert not out.crashed and not out.timed_out and out.returncode == 0, out.stderr
    return out.result


def test_tar_pax_header_bomb_is_refused_without_reading_it(tmp_path):
    # the builder writes real pax records: tarfile parses a small one
    with tarfile.open(_pax_bomb(tmp_path / "small.tar.gz", 1000)) as tar:
        assert tar.getmember(WAV).pax_headers["comment"] == "a" * 1000
    archive = _pax_bomb(tmp_path / "pax.tar.gz", 64 * MiB)
    assert archive.stat().st_size < 2 * MiB
    result = _extract_in_child(archive, tmp_path / "dest")
    assert "a tar header record (pax header or GNU long name) of " in result["outcome"]
    assert "bytes, over 1,048,576" in result["outcome"]
    assert result["grew_kb"] < 16 * 1024  # the 64 MiB record was never held
    assert result["left"] == 0


def test_zip_symlink_with_a_huge_target_is_refused_without_reading_it(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(WAV, b"RIFF")
        info = zipfile.ZipInfo("top/recordings/link.wav")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as f:  # a 64 MiB "target"
            for _ in range(64):
                f.write(b"a" * MiB)
    assert archive.stat().st_size < 2 * MiB
    result = _extract_in_child(archive, tmp_path / "dest")
    assert result["outcome"] == (
        "unsafe archive member 'top/recordings/link.wav': symlink whose target is "
        "longer than 4,096 bytes (PATH_MAX); refused without reading it"
    )
    assert result["grew_kb"] < 16 * 1024
    assert result["left"] == 0


def test_archive_checksum_is_verified_before_anything_is_extracted(
    tmp_path, file_size_limit
):
    archive = _tar_gz(tmp_path / "bomb.tar.gz", [(WAV, BOMB)])
    home = tmp_path / "home"
    file_size_limit(2 * MiB)  # the archive fits, its member could not
    with pytest.raises(
        MmfeatError, match=r"checksum mismatch .* expected SHA-256 0{64}"
    ):
        fetch_fsdd(
            data_home=home,
            url=archive.as_uri(),
            sha256="0" * 64,
            content_sha256=None,
            max_member_bytes=None,
            max_total_bytes=None,  # only the checksum stands in the way
        )
    assert _leftovers(home) == []


@pytest.mark.parametrize(
    ("kind", "name", "link"),
    [
        ("tar", "../evil.wav", None),
        ("tar", "ABSOLUTE", None),
        ("tar", "top/recordings/1_theo_1.wav", "../../../evil.wav"),
        ("zip", "../evil.wav", None),
        ("zip", "ABSOLUTE", None),
        ("zip", "top/recordings/1_theo_1.wav", "/etc/passwd"),
    ],
)
def test_traversal_members_are_still_refused(tmp_path, kind, name, link):
    if name == "ABSOLUTE":
        name = str(tmp_path / "absolute-evil.wav")
    archive = tmp_path / f"evil.{kind}"
    if kind == "tar":
        with tarfile.open(archive, "w") as tar:
            tar.addfile(tarfile.TarInfo(WAV))
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info, None if link else io.BytesIO(b""))
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr(WAV, b"RIFF")
            info = zipfile.ZipInfo(name)
            if link is not None:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, link or "evil")
    home = tmp_path / "home"
    with pytest.raises(MmfeatError, match=f"unsafe archive member '{name}'"):
        fetch_fsdd(data_home=home, url=archive.as_uri(), content_sha256=None)
    assert _leftovers(home) == []
    assert not list(tmp_path.rglob("*evil.wav"))
    assert not (tmp_path / "absolute-evil.wav").exists()


# --------------------------------------------------------------------------
# Download limits
# --------------------------------------------------------------------------

_GIVE_UP_BYTES = 64 * MiB
_GIVE_UP_SECONDS = 10


class _HostileHandler(BaseHTTPRequestHandler):
    """``/endless``, ``/liar`` (Content-Length 10 GiB) and ``/drip``."""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        if self.path.startswith("/liar"):
            self.send_header("Content-Length", str(10 << 30))
        self.end_headers()
        started = time.monotonic()
        sent = 0
        try:
            while (
                sent < _GIVE_UP_BYTES and time.monotonic() - started < _GIVE_UP_SECONDS
            ):
                if self.path.startswith("/drip"):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(0.2)
                    sent += 1
                else:
                    self.wfile.write(bytes(_CHUNK_SIZE))
                    sent += _CHUNK_SIZE
        except OSError:
            pass  # the client hung up: what the defences are for
        self.server.sent[self.path] = sent


@pytest.fixture(scope="module")
def hostile():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    server.daemon_threads = True
    server.sent = {}
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_endless_http_body_is_cut_at_max_download_bytes(
    hostile, tmp_path, file_size_limit
):
    _, base = hostile
    home = tmp_path / "home"
    file_size_limit(BUDGET + _CHUNK_SIZE)
    started = time.monotonic()
    with pytest.raises(
        MmfeatError,
        match=rf"body is longer than max_download_bytes={BUDGET:,} bytes "
        r"\(1 MiB\); the partial download was deleted",
    ):
        fetch_fsdd(
            data_home=home, url=f"{base}/endless.tar.gz", max_download_bytes=BUDGET
        )
    assert time.monotonic() - started < 5
    assert _leftovers(home) == []


def test_http_content_length_over_the_cap_is_refused_before_the_body(
    hostile, tmp_path, file_size_limit
):
    _, base = hostile
    home = tmp_path / "home"
    file_size_limit(_CHUNK_SIZE)  # not one block of the body may be written
    with pytest.raises(
        MmfeatError,
        match=r"declares Content-Length 10,737,418,240 bytes \(10 GiB\), over "
        rf"max_download_bytes={BUDGET:,} bytes ",
    ):
        fetch_fsdd(data_home=home, url=f"{base}/liar.tar.gz", max_download_bytes=BUDGET)
    assert _leftovers(home) == []


def test_dripped_download_fails_at_the_deadline_though_no_read_times_out(
    hostile, tmp_path
):
    server, base = hostile
    home = tmp_path / "home"
    started = time.monotonic()
    # one byte every 0.2 s: each read returns well within timeout=2
    with pytest.raises(
        DataNotFoundError, match=r"not finished within deadline=1.5 s \(\d+ bytes"
    ) as info:
        fetch_fsdd(data_home=home, url=f"{base}/drip.tar.gz", timeout=2, deadline=1.5)
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 4, elapsed
    assert "partial download was deleted" in str(info.value)
    assert _leftovers(home) == []
    # the client hung up: the server, which would drip for 10 s, sees it
    for _ in range(60):
        if "/drip.tar.gz" in server.sent:
            break
        time.sleep(0.05)
    assert server.sent["/drip.tar.gz"] < 20, json.dumps(server.sent)
