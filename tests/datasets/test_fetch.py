"""fetch_fsdd through a real HTTP download from a server on 127.0.0.1."""

import functools
import hashlib
import io
import re
import shutil
import socket
import stat
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mmfeat.datasets import fetch_fsdd, load_fsdd
from mmfeat.datasets._fetch import (
    DEFAULT_URL,
    FSDD_CONTENT_SHA256,
    _content_digest,
    _fetch_archive,
    _safe_extract,
)
from mmfeat.exceptions import DataNotFoundError, MmfeatError, ParameterError

TOP = "free-spoken-digit-dataset-26eb9aaf76e81b692f806f9140c2d2777410d7a1"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Folder served over HTTP on 127.0.0.1, and the server's base URL."""
    root = tmp_path_factory.mktemp("served")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def subset(data_home, tmp_path_factory):
    """30 real recordings (3 per digit) in a folder, and their content digest."""
    source = data_home / "fsdd" / "recordings"
    folder = tmp_path_factory.mktemp("subset") / "recordings"
    folder.mkdir()
    for digit in range(10):
        for speaker, rep in [("george", 0), ("theo", 7), ("yweweler", 49)]:
            name = f"{digit}_{speaker}_{rep}.wav"
            shutil.copyfile(source / name, folder / name)
    return folder, _content_digest(folder)


def _add_bytes(tar, name, data=b"", **attrs):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data))


def _subset_tar(subset_folder, path, *, mode="w:gz", extra=()):
    """GitHub-like archive: TOP/README.md and TOP/recordings/*.wav (+ extra)."""
    with tarfile.open(path, mode) as tar:
        _add_bytes(tar, f"{TOP}/README.md", b"# FSDD\n")
        tar.add(subset_folder, arcname=f"{TOP}/recordings")
        for name, data, attrs in extra:
            _add_bytes(tar, name, data, **attrs)
    return path


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _leftovers(home):
    return sorted(p.relative_to(home).as_posix() for p in home.rglob("*"))


def test_fetch_fsdd_downloads_and_extracts(served, subset, tmp_path):
    root, base = served
    folder, digest = subset
    archive = _subset_tar(folder, root / "good.tar.gz")
    home = tmp_path / "home"
    out = fetch_fsdd(
        data_home=home,
        url=f"{base}/good.tar.gz",
        sha256=_sha256(archive),
        content_sha256=digest,
    )
    assert out == home / "fsdd"
    names = sorted(p.name for p in (out / "recordings").iterdir())
    assert names == sorted(p.name for p in folder.iterdir())
    for name in names:
        assert (out / "recordings" / name).read_bytes() == (folder / name).read_bytes()
    # only the recordings are installed: no archive, no README, no staging folder
    assert _leftovers(home) == ["fsdd", "fsdd/recordings"] + [
        f"fsdd/recordings/{n}" for n in names
    ]
    frame = load_fsdd(data_home=home).frame
    assert len(frame) == 30
    assert frame["split"].value_counts().to_dict() == {"train": 20, "test": 10}


def test_fetch_fsdd_zip_archive(served, subset, tmp_path):
    root, base = served
    folder, digest = subset
    with zipfile.ZipFile(root / "good.zip", "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{TOP}/recordings/{path.name}")
    home = tmp_path / "home"
    fetch_fsdd(data_home=home, url=f"{base}/good.zip", content_sha256=digest)
    assert len(load_fsdd(data_home=home).frame) == 30


def test_fetch_fsdd_bad_checksum_leaves_nothing(served, subset, tmp_path):
    root, base = served
    folder, digest = subset
    _subset_tar(folder, root / "checksum.tar.gz")
    home = tmp_path / "home"
    with pytest.raises(MmfeatError, match=r"expected SHA-256 0{64}, got [0-9a-f]{64}"):
        fetch_fsdd(
            data_home=home,
            url=f"{base}/checksum.tar.gz",
            sha256="0" * 64,
            content_sha256=digest,
        )
    assert _leftovers(home) == []


def test_fetch_fsdd_content_digest_mismatch_leaves_nothing(served, subset, tmp_path):
    root, base = served
    _subset_tar(subset[0], root / "content.tar.gz")
    home = tmp_path / "home"
    # the default content_sha256 pins the full 3,000 recordings: 30 do not match
    with pytest.raises(
        MmfeatError, match=f"content checksum mismatch.*expected {FSDD_CONTENT_SHA256}"
    ):
        fetch_fsdd(data_home=home, url=f"{base}/content.tar.gz")
    assert _leftovers(home) == []


@pytest.mark.parametrize(
    "kind", ["dotdot", "absolute", "symlink", "hardlink", "device", "zip-dotdot"]
)
def test_fetch_fsdd_refuses_malicious_archive(served, subset, tmp_path, kind):
    root, base = served
    folder, _ = subset
    outside = tmp_path / "outside"
    outside.mkdir()
    good = f"{TOP}/recordings/0_george_0.wav"
    if kind == "zip-dotdot":
        name = "evil-zip.zip"
        bad = "../evil.wav"
        with zipfile.ZipFile(root / name, "w") as zf:
            zf.writestr(good, b"RIFF")
            zf.writestr(bad, b"evil")
    else:
        name = f"evil-{kind}.tar"
        bad, data, attrs = {
            "dotdot": ("../evil.wav", b"evil", {}),
            "absolute": (str(outside / "abs_evil.wav"), b"evil", {}),
            "symlink": (
                f"{TOP}/recordings/9_theo_9.wav",
                b"",
                {"type": tarfile.SYMTYPE, "linkname": "../../../outside/x.wav"},
            ),
            "hardlink": (
                f"{TOP}/recordings/9_theo_9.wav",
                b"",
                {"type": tarfile.LNKTYPE, "linkname": "../etc/passwd"},
            ),
            "device": (f"{TOP}/recordings/null", b"", {"type": tarfile.CHRTYPE}),
        }[kind]
        _subset_tar(folder, root / name, mode="w", extra=[(bad, data, attrs)])
        with tarfile.open(root / name) as tar:
            assert bad in tar.getnames()  # the archive really holds the member
    home = tmp_path / "home"
    with pytest.raises(
        MmfeatError, match=f"unsafe archive member {re.escape(repr(bad))}"
    ):
        fetch_fsdd(data_home=home, url=f"{base}/{name}", content_sha256=None)
    assert _leftovers(home) == []
    assert list(outside.iterdir()) == []
    assert not list(tmp_path.rglob("*evil*"))


def test_fetch_fsdd_unreachable_server(tmp_path):
    home = tmp_path / "home"
    url = f"http://127.0.0.1:{_closed_port()}/fsdd.tar.gz"
    with pytest.raises(DataNotFoundError, match="could not download") as info:
        fetch_fsdd(data_home=home, url=url, timeout=5)
    message = str(info.value)
    assert url in message
    assert "download the archive by hand" in message
    assert str(home / "fsdd-fsdd.tar.gz") in message
    assert "copy an existing fsdd/ folder" in message
    assert "MMFEAT_DATA_HOME" in message
    assert not home.exists() or _leftovers(home) == []


def test_fetch_fsdd_http_error_is_data_not_found(served, tmp_path):
    _, base = served
    home = tmp_path / "home"
    with pytest.raises(DataNotFoundError, match="could not download .*: HTTP 404 "):
        fetch_fsdd(data_home=home, url=f"{base}/missing.tar.gz")
    assert _leftovers(home) == []


def test_fetch_fsdd_not_an_archive(served, tmp_path):
    root, base = served
    (root / "page.html").write_text("<html>rate limited</html>")
    home = tmp_path / "home"
    with pytest.raises(MmfeatError, match="neither a tar nor a zip"):
        fetch_fsdd(data_home=home, url=f"{base}/page.html", content_sha256=None)
    assert _leftovers(home) == []


def test_fetch_fsdd_download_if_missing_false(tmp_path):
    with pytest.raises(DataNotFoundError, match="download_if_missing=False"):
        fetch_fsdd(data_home=tmp_path, download_if_missing=False)
    assert _leftovers(tmp_path) == []


def test_fetch_fsdd_uses_archive_saved_by_hand(subset, tmp_path):
    folder, digest = subset
    home = tmp_path / "home"
    home.mkdir()
    # as the offline message says: save the archive as <home>/fsdd-<name>
    saved = _subset_tar(folder, home / "fsdd-by-hand.tar.gz")
    url = f"http://127.0.0.1:{_closed_port()}/by-hand.tar.gz"
    fetch_fsdd(
        data_home=home, url=url, content_sha256=digest, download_if_missing=False
    )
    assert len(load_fsdd(data_home=home).frame) == 30
    assert saved.exists()  # a file the user put there is not deleted


def test_fetch_fsdd_present_data_needs_no_network(data_home, tmp_path):
    recordings = tmp_path / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    for path in (data_home / "fsdd" / "recordings").iterdir():
        (recordings / path.name).symlink_to(path)
    url = f"http://127.0.0.1:{_closed_port()}/never.tar.gz"
    assert fetch_fsdd(data_home=tmp_path, url=url) == tmp_path / "fsdd"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fsdd"]


def test_fsdd_content_sha256_pins_real_recordings(data_home):
    assert _content_digest(data_home / "fsdd" / "recordings") == FSDD_CONTENT_SHA256


def test_fetch_fsdd_full_archive_with_pinned_digest(data_home, tmp_path):
    # All 3,000 real recordings in a GitHub-like archive, fetched through
    # urllib (file:// URL) with the default, pinned content digest.
    archive = tmp_path / "full.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(data_home / "fsdd" / "recordings", arcname=f"{TOP}/recordings")
    home = tmp_path / "home"
    out = fetch_fsdd(data_home=home, url=archive.as_uri(), sha256=_sha256(archive))
    frame = load_fsdd(data_home=home).frame
    assert len(frame) == 3000
    assert frame["split"].value_counts().to_dict() == {"train": 2700, "test": 300}
    assert _content_digest(out / "recordings") == FSDD_CONTENT_SHA256
    assert sorted(p.name for p in home.iterdir()) == ["fsdd"]


def test_content_digest_depends_on_names_and_bytes(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"1")
    (tmp_path / "b.wav").write_bytes(b"2")
    (tmp_path / "notes.txt").write_bytes(b"ignored")
    first = _content_digest(tmp_path)
    (tmp_path / "notes.txt").write_bytes(b"changed")
    assert _content_digest(tmp_path) == first
    (tmp_path / "b.wav").write_bytes(b"3")
    assert _content_digest(tmp_path) != first
    (tmp_path / "b.wav").write_bytes(b"2")
    assert _content_digest(tmp_path) == first
    (tmp_path / "b.wav").rename(tmp_path / "c.wav")
    assert _content_digest(tmp_path) != first


def test_safe_extract_skips_internal_links(tmp_path):
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tar:
        _add_bytes(tar, "top/a.wav", b"data")
        _add_bytes(tar, "top/b.wav", type=tarfile.SYMTYPE, linkname="a.wav")
    dest = tmp_path / "dest"
    dest.mkdir()
    assert _safe_extract(archive, dest) == [("top", "a.wav")]
    assert (dest / "top" / "a.wav").read_bytes() == b"data"
    assert not (dest / "top" / "b.wav").exists()


def test_safe_extract_refuses_zip_symlink_outside(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("top/recordings/link.wav")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(
        MmfeatError, match="'top/recordings/link.wav': link to absolute"
    ):
        _safe_extract(archive, dest)
    assert list(dest.iterdir()) == []


def test_fetch_archive_filters_members(served, subset, tmp_path):
    root, base = served
    archive = _subset_tar(subset[0], root / "filter.tar.gz")
    dest = tmp_path / "dest"
    staging = _fetch_archive(
        f"{base}/filter.tar.gz",
        dest,
        sha256=_sha256(archive),
        expected_members=("*/README.md",),
        keep_archive=True,
    )
    assert _leftovers(staging) == [TOP, f"{TOP}/README.md"]
    assert (dest / "filter.tar.gz").read_bytes() == archive.read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sha256": "abc"}, "sha256 must be None or a SHA-256"),
        ({"content_sha256": "xyz"}, "content_sha256 must be None or a SHA-256"),
        ({"timeout": 0}, "timeout must be a positive number; got 0"),
        ({"timeout": None}, "timeout must be a positive number; got None"),
        ({"url": ""}, "url must be a non-empty str"),
        (
            {"deadline": -1},
            r"deadline must be a positive number or None \(no limit\); got -1",
        ),
        ({"deadline": "15m"}, "deadline must be a positive number or None"),
        ({"max_download_bytes": 0}, "max_download_bytes must be a positive int"),
        ({"max_member_bytes": 1.5}, "max_member_bytes must be a positive int"),
        ({"max_total_bytes": True}, "max_total_bytes must be a positive int"),
    ],
)
def test_fetch_fsdd_bad_parameters(tmp_path, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        fetch_fsdd(data_home=tmp_path, **kwargs)


def test_fetch_fsdd_default_url_is_pinned_commit():
    assert DEFAULT_URL.startswith("https://github.com/Jakobovski/")
    assert DEFAULT_URL.endswith("26eb9aaf76e81b692f806f9140c2d2777410d7a1.tar.gz")
