"""Security promises of the image and audio readers about hostile input files.

Each test builds the hostile file itself (a few KB in ``tmp_path``, or a
sparse file that takes no disk), and the attacks that would cost gigabytes if
the defence regressed run in a child process under an address-space limit and
a timeout (``_limits.run_limited``): a regression is a failed test, not an
exhausted machine.

The promises:

1. A decompression bomb is refused from its header, before any decoding, in
   every format OpenCV decodes: TIFF (classic and BigTIFF, both byte orders,
   every page), Radiance HDR (read the way OpenCV's reader reads it), PNG,
   GIF, BMP, WebP, JPEG, PNM, PAM, PFM, Sun raster, JPEG 2000 and AVIF. The
   error names the claimed size and ``max_pixels``.
2. A known format whose header states no readable size, and a file of no
   known format, are refused without being handed to a decoder.
3. Header scans are bounded: looping TIFF directories, floods of boxes,
   endless text headers and megabytes of JPEG filler end quickly.
4. An OS/2 bitmap (12-byte core header) is read with its real 16-bit size
   and decodes to exactly what OpenCV's ``imread`` gives.
5. An item file is read only up to ``max_file_bytes``: a huge (sparse) file
   is refused from its size without being read, and a file larger than its
   size says (``/proc``) is cut at the limit.
6. Audio headers are checked before decoding: a sample rate outside 1-192
   kHz (1 Hz, a prime 9,999,991 Hz), more than 16 channels, a stream of
   unknown length, or a length over ``max_duration`` (a 3-hour FLAC of
   silence) is refused in bounded memory and time.
7. Decoding stops at ``max_duration`` even when the decoder delivers more
   than the header said, and a WAV whose sizes lie stays bounded.
8. Resampling costs a bounded filter for any pair of rates (a coprime
   191,999 Hz -> 16 kHz), with the output rate right to 2e-5.
9. Every refusal above is reported as that row's error by the readers:
   ``on_error="raise"`` names the row, the file, the reason and the limit,
   and ``on_error="missing"`` reports the same to ``collect_item_errors``.
"""

import io
import os
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

import mmfeat.io._audio as audio_mod
import mmfeat.io._images as images_mod
from mmfeat import collect_item_errors
from mmfeat.exceptions import InputError
from mmfeat.io import AudioReader, ImageReader, read_audio, read_image
from mmfeat.utils._items import read_source_bytes

sys.path.insert(0, str(Path(__file__).parent))
from _limits import run_limited  # noqa: E402

# The child prints how long the attack took and how much its peak RSS grew.
_CHILD_PRELUDE = """
import json, resource, time
import cv2
from mmfeat.exceptions import InputError
from mmfeat.io import read_audio, read_image

decodes = []
_real_imdecode = cv2.imdecode


def _spy(*args, **kwargs):
    decodes.append(1)
    return _real_imdecode(*args, **kwargs)


cv2.imdecode = _spy


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def attack(read, *args, **kwargs):
    before, t0, n_decodes = peak_mb(), time.perf_counter(), len(decodes)
    try:
        read(*args, **kwargs)
        reason = None
    except InputError as exc:
        reason = exc.reason
    return {
        "reason": reason,
        "seconds": time.perf_counter() - t0,
        "rss_growth_mb": peak_mb() - before,
        "decodes": len(decodes) - n_decodes,
    }
"""


def _run_attacks(code, *, memory_mb=256, timeout=60):
    out = run_limited(_CHILD_PRELUDE + code, memory_mb=memory_mb, timeout=timeout)
    assert not out.timed_out, "the attack ran past its timeout"
    assert not out.crashed, out.stderr[-2000:]
    assert out.returncode == 0, out.stderr[-2000:]
    assert isinstance(out.result, dict), out.stdout[-2000:]
    return out.result


def _assert_cheap(res, *, seconds=5.0, rss_mb=64.0):
    assert res["seconds"] < seconds, res
    assert res["rss_growth_mb"] < rss_mb, res


# ---------------------------------------------------------------- builders


def _tiff(pages, *, order="<", big=False, spp=3, bps=16):
    """A deflate TIFF with one IFD per ``(width, height, rows_per_strip)``.

    Every strip of a page points at the same compressed strip of zeros, so a
    30000 x 30000 x 3 x 16-bit page (5.4 GB decoded) takes about 20 KB and
    decodes for real.
    """
    L, isz = ("Q", 8) if big else ("I", 4)
    out = bytearray(b"II" if order == "<" else b"MM")
    out += struct.pack(order + "HHHQ", 43, 8, 0, 0) if big else b"\0" * 6
    if not big:
        out[2:4] = struct.pack(order + "H", 42)
    ifd_offsets, ifd_at = [], []
    for width, height, rps in pages:
        nstrips = -(-height // rps)
        strip = zlib.compress(b"\0" * (width * rps * spp * bps // 8), 9)
        off_strip = len(out)
        out += strip
        off_offsets = len(out)
        out += struct.pack(order + L * nstrips, *([off_strip] * nstrips))
        off_counts = len(out)
        out += struct.pack(order + L * nstrips, *([len(strip)] * nstrips))
        off_bps = len(out)
        out += struct.pack(order + "H" * spp, *([bps] * spp))
        if len(out) % 2:
            out += b"\0"
        one = nstrips == 1
        entries = [
            (256, 4, 1, width),
            (257, 4, 1, height),
            (258, 3, spp, None if spp * 2 <= isz else off_bps),
            (259, 3, 1, 8),
            (262, 3, 1, 2),
            (273, 4 if not big else 16, nstrips, off_strip if one else off_offsets),
            (277, 3, 1, spp),
            (278, 4, 1, rps),
            (279, 4 if not big else 16, nstrips, len(strip) if one else off_counts),
            (284, 3, 1, 1),
        ]
        ifd_offsets.append(len(out))
        out += struct.pack(order + ("Q" if big else "H"), len(entries))
        for tag, typ, count, val in entries:
            out += struct.pack(order + ("HHQ" if big else "HHI"), tag, typ, count)
            if val is None:
                value = struct.pack(order + "H" * spp, *([bps] * spp))
            elif typ == 3 and count == 1:
                value = struct.pack(order + "H", val)
            elif typ == 4 and count == 1:
                value = struct.pack(order + "I", val)
            else:
                value = struct.pack(order + L, val)
            out += value.ljust(isz, b"\0")
        ifd_at.append(len(out))
        out += b"\0" * isz  # next-IFD offset, patched below
    first_at = 8 if big else 4
    out[first_at : first_at + isz] = struct.pack(order + L, ifd_offsets[0])
    for at, nxt in zip(ifd_at, ifd_offsets[1:] + [0]):
        out[at : at + isz] = struct.pack(order + L, nxt)
    return bytes(out)


def _os2_bmp(rgb, bpp=24):
    """An OS/2 1.x bitmap: 12-byte BITMAPCOREHEADER, 16-bit width and height."""
    h, w = rgb.shape[:2]
    if bpp == 24:
        palette = b""
        rows = [rgb[y, :, ::-1].tobytes() for y in range(h - 1, -1, -1)]
    else:
        colours, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
        palette = b"".join(bytes(c[::-1]) for c in colours).ljust(3 << bpp, b"\0")
        index = index.reshape(h, w).astype(np.uint8)
        rows = [index[y].tobytes() for y in range(h - 1, -1, -1)]
    pitch = (len(rows[0]) + 3) & ~3
    pixels = b"".join(r.ljust(pitch, b"\0") for r in rows)
    offset = 14 + 12 + len(palette)
    core = struct.pack("<IHHHH", 12, w, h, 1, bpp)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return head + core + palette + pixels


def _encoded(ext, img):
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return bytearray(buf.tobytes())


def _boxes(buf, start, end):
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(buf[pos : pos + 4], "big")
        yield bytes(buf[pos + 4 : pos + 8]), pos + 8, pos + size
        pos += size


def _bombs(n):
    """One file per format, each a few KB, whose header claims n x n pixels."""
    small = np.full((32, 32, 3), 90, np.uint8)
    bombs = {}

    png = _encoded(".png", small)
    png[16:24] = struct.pack(">II", n, n)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    bombs["PNG"] = png
    gif = _encoded(".gif", small)
    gif[6:10] = struct.pack("<HH", n, n)
    bombs["GIF"] = gif
    bmp = _encoded(".bmp", small)
    bmp[18:26] = struct.pack("<ii", n, n)
    bombs["BMP"] = bmp
    bombs["BMP (OS/2)"] = bytearray(_os2_bmp(small))
    bombs["BMP (OS/2)"][18:22] = struct.pack("<HH", n, n)
    jpeg = _encoded(".jpg", small)
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", n, n)
    bombs["JPEG"] = jpeg
    webp = _encoded(".webp", small)  # lossless VP8L: 14-bit sizes
    assert webp[12:16] == b"VP8L"
    m = min(n, 16384) - 1
    bits = int.from_bytes(webp[21:25], "little") & ~((1 << 28) - 1)
    webp[21:25] = (bits | m | (m << 14)).to_bytes(4, "little")
    bombs["WebP"] = webp
    bombs["TIFF"] = _tiff([(n, n, 16)])
    pixels = b"\0" * 256
    bombs["PNM"] = f"P5\n# a comment\n{n} {n}\n255\n".encode() + pixels
    bombs["PAM"] = (
        f"P7\nWIDTH {n}\nHEIGHT {n}\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\n"
        "ENDHDR\n".encode()
        + pixels
    )
    bombs["PFM"] = f"Pf\n{n} {n}\n-1.0\n".encode() + pixels
    bombs["HDR"] = (
        f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {n} +X {n}\n".encode() + pixels
    )
    bombs["Sun raster"] = (
        struct.pack(">8I", 0x59A66A95, n, n, 8, n * n, 1, 0, 0) + pixels
    )
    jp2 = _encoded(".jp2", small)
    for kind, a, b in _boxes(jp2, 0, len(jp2)):
        if kind == b"jp2h":
            for sub, c, _ in _boxes(jp2, a, b):
                if sub == b"ihdr":
                    jp2[c : c + 8] = struct.pack(">II", n, n)
        if kind == b"jp2c":
            jp2[a + 8 : a + 16] = struct.pack(">II", n, n)
            codestream = bytes(jp2[a:b])
    bombs["JPEG 2000 (JP2)"] = jp2
    bombs["JPEG 2000 (J2K)"] = codestream
    avif = _encoded(".avif", small)
    at = avif.find(b"ispe")
    assert at > 0
    while at > 0:
        avif[at + 8 : at + 16] = struct.pack(">II", n, n)
        at = avif.find(b"ispe", at + 4)
    bombs["AVIF"] = avif
    return {k: bytes(v) for k, v in bombs.items()}


# ---------------------------------------------------------------- 1. bombs


def test_tiff_bomb_is_refused_from_its_header_before_decoding(tmp_path):
    # 30000 x 30000 RGB at 16 bits: 5.4 GB decoded (before the fix, 10.7 GB
    # of RSS and 44 s before the size was refused after decoding)
    paths = {}
    for order in "<>":
        for big in (False, True):
            path = tmp_path / f"bomb_{'le' if order == '<' else 'be'}_{big}.tif"
            path.write_bytes(_tiff([(30000, 30000, 15)], order=order, big=big))
            assert path.stat().st_size < 40_000  # 19 KB, BigTIFF 35 KB
            paths[path.name] = str(path)
    res = _run_attacks(
        f"""
paths = {paths!r}
print(json.dumps({{name: attack(read_image, p) for name, p in paths.items()}}))
"""
    )
    for name, r in res.items():
        assert "header claims 30000x30000 pixels" in r["reason"], (name, r)
        assert "max_pixels=178,956,970" in r["reason"]
        assert r["decodes"] == 0
        _assert_cheap(r)


def test_tiff_bomb_in_a_later_page_is_refused_from_its_header():
    # OpenCV decodes the first page only, but every directory is checked
    two_pages = _tiff([(16, 8, 8), (30000, 30000, 15)])
    with pytest.raises(InputError, match="header claims 30000x30000"):
        read_image(two_pages)
    assert read_image(_tiff([(16, 8, 8), (16, 16, 16)])).shape == (8, 16)


def test_radiance_hdr_bomb_is_refused_as_opencv_would_read_its_size(tmp_path):
    plain = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 20000 +X 20000\n"
    # OpenCV reads the header in fgets() chunks of 127 bytes: a 128-byte
    # comment line leaves a lone newline that ends its header early, so it
    # takes the next line as the size, where a line reader sees 4 x 4
    split = (
        b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n#"
        + b"x" * 126
        + b"\n-Y 20000 +X 20000\n\n-Y 4 +X 4\n"
    )
    paths = {}
    for name, head in (("plain.hdr", plain), ("split.hdr", split)):
        (tmp_path / name).write_bytes(head + b"\0" * 64)
        paths[name] = str(tmp_path / name)
    res = _run_attacks(
        f"""
paths = {paths!r}
print(json.dumps({{name: attack(read_image, p) for name, p in paths.items()}}))
"""
    )
    for name, r in res.items():
        assert "header claims 20000x20000 pixels" in r["reason"], (name, r)
        assert r["decodes"] == 0
        _assert_cheap(r)
    # the same trick at a decodable size: OpenCV really reads the second size
    small = (
        b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n#"
        + b"x" * 126
        + b"\n-Y 6 +X 8\n\n-Y 4 +X 4\n"
        + b"\0" * (6 * 8 * 4)
    )
    decoded = cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape[:2] == (6, 8)
    assert images_mod._header_size(small, "HDR") == (6, 8)
    assert read_image(small).shape == (6, 8)


def test_bomb_in_every_opencv_format_is_refused_from_its_header(tmp_path):
    # 20000 x 20000 is under OpenCV's own 2**30-pixel cap: without the guard
    # OpenCV would allocate it (1.2-4.8 GB)
    paths = {}
    for i, (name, data) in enumerate(_bombs(20000).items()):
        assert len(data) < 20_000, name
        path = tmp_path / f"bomb_{i}"
        path.write_bytes(data)
        paths[name] = str(path)
    res = _run_attacks(
        f"""
paths = {paths!r}
print(json.dumps({{name: attack(read_image, p) for name, p in paths.items()}}))
"""
    )
    assert set(res) == set(paths)
    for name, r in res.items():
        size = "16384x16384" if name == "WebP" else "20000x20000"
        assert r["reason"] and f"header claims {size} pixels" in r["reason"], (
            name,
            r,
        )
        assert r["decodes"] == 0, name
        _assert_cheap(r)


# ---------------------------------------------------------------- 2. undecoded


def _no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("cv2.imdecode was called")

    monkeypatch.setattr(images_mod.cv2, "imdecode", refuse)


def test_header_without_a_readable_size_is_refused_undecoded(monkeypatch):
    _no_decoding(monkeypatch)
    no_width = bytearray(_tiff([(16, 8, 8)]))
    at = no_width.find(struct.pack("<HHI", 256, 4, 1))
    no_width[at : at + 2] = struct.pack("<H", 999)  # ImageWidth tag renamed
    bmp = bytearray(_encoded(".bmp", np.zeros((4, 4, 3), np.uint8)))
    bmp[14:18] = struct.pack("<I", 20)  # a header size OpenCV does not read
    cases = {
        "TIFF": bytes(no_width),
        "JPEG": b"\xff\xd8\xff\xda\x00\x08" + b"\0" * 64 + b"\xff\xd9",
        "BMP": bytes(bmp),
        "PNM": b"P5\n12 # no height\n",
        "HDR": b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n+Y 4 -X 4\n" + b"\0" * 64,
        "PAM": b"P7\nWIDTH 4\nDEPTH 1\nENDHDR\n" + b"\0" * 16,
    }
    for fmt, data in cases.items():
        with pytest.raises(InputError, match="states no readable image size") as e:
            read_image(data)
        assert f"({fmt})" in e.value.reason and "max_pixels" in e.value.reason


def test_file_of_no_known_format_is_never_decoded(monkeypatch, rng):
    _no_decoding(monkeypatch)
    for data in (rng.bytes(4096), b"%PDF-1.4\n" + bytes(range(256)), b"\0" * 64):
        with pytest.raises(InputError, match="cannot decode image \\(unknown format"):
            read_image(data)
    with pytest.raises(InputError, match="holds text"):
        read_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>\n" * 4)


# ---------------------------------------------------------------- 3. scans


def test_header_scans_end_quickly_on_hostile_structure(tmp_path):
    loop = bytearray(_tiff([(16, 8, 8)]))
    first = struct.unpack("<I", loop[4:8])[0]
    n = struct.unpack("<H", loop[first : first + 2])[0]
    nxt = first + 2 + 12 * n
    loop[nxt : nxt + 4] = struct.pack("<I", first)  # the IFD points at itself
    files = {
        "tiff_ifd_loop": bytes(loop),
        # 8 MB of filler before the frame header, and of 0xFF fill bytes
        "jpeg_filler": b"\xff\xd8\xff\xe0\x00\x02" + b"\x00" * 8_000_000,
        "jpeg_fill_ff": b"\xff\xd8" + b"\xff" * 8_000_000,
        "pnm_endless_comment": b"P5\n" + b"#" * 8_000_000,
        "pnm_endless_spaces": b"P5\n" + b" " * 8_000_000,
        "pam_no_end": b"P7\n" + b"WIDTH 1\n" * 1_000_000,
        "hdr_endless_header": b"#?RADIANCE\n" + b"#\n" * 4_000_000,
        "jp2_box_flood": images_mod._JP2 + b"\0\0\0\x08free" * 1_000_000,
        "avif_box_flood": b"\0\0\0\x10ftypavif\0\0\0\0" + b"\0\0\0\x08free" * 1_000_000,
        "pnm_huge_digits": b"P5\n" + b"9" * 8_000_000,
    }
    paths = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths[name] = str(tmp_path / name)
    res = _run_attacks(
        f"""
paths = {paths!r}
print(json.dumps({{name: attack(read_image, p) for name, p in paths.items()}}))
"""
    )
    loop = res.pop("tiff_ifd_loop")
    # its first page is sound: it is checked, then decoded (or refused by
    # libtiff's own loop check), in no time
    assert loop["decodes"] <= 1 and loop["seconds"] < 3.0
    for name, r in res.items():
        assert "cannot decode image" in (r["reason"] or ""), (name, r)
        assert r["decodes"] == 0, name
        # the 8 MB file itself is read; the scan adds little to it
        _assert_cheap(r, seconds=3.0, rss_mb=64.0)


# ---------------------------------------------------------------- 4. OS/2 BMP


@pytest.mark.parametrize("bpp", [24, 8])
def test_os2_bitmap_decodes_as_opencv_imread_gives_it(tmp_path, rng, bpp):
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    if bpp == 8:
        rgb = rgb // 128 * 255  # at most 8 colours for the palette
    path = tmp_path / "os2.bmp"
    path.write_bytes(_os2_bmp(rgb, bpp))
    assert images_mod._header_size(path.read_bytes(), "BMP") == (5, 7)
    ours = read_image(path, mode="rgb", dtype="uint8")
    opencv = cv2.imread(str(path))[:, :, ::-1]  # imread's default: colour
    np.testing.assert_array_equal(ours, opencv)
    np.testing.assert_array_equal(ours, rgb)
    gray = read_image(path, mode="gray", dtype="uint8")
    np.testing.assert_array_equal(gray, cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))


# ---------------------------------------------------------------- 5. file size


def test_huge_sparse_file_is_refused_from_its_size_without_reading(tmp_path):
    path = tmp_path / "sparse.png"
    with open(path, "wb") as f:
        f.truncate(3 * 2**30)  # 3 GiB that take no disk
    res = _run_attacks(
        f"""
print(json.dumps({{
    "image": attack(read_image, {str(path)!r}),
    "audio": attack(read_audio, {str(path)!r}),
}}))
"""
    )
    for r in res.values():
        assert "3,221,225,472 bytes (3 GiB)" in r["reason"], r
        assert "over max_file_bytes=" in r["reason"]
        _assert_cheap(r, seconds=1.0, rss_mb=16.0)
    assert "268,435,456 bytes (256 MiB)" in res["image"]["reason"]
    assert "536,870,912 bytes (512 MiB)" in res["audio"]["reason"]


def test_file_larger_than_its_stat_size_is_cut_at_the_limit(tmp_path):
    # /proc files say 0 bytes and hold more: the read is bounded all the same
    maps = "/proc/self/maps"
    assert os.stat(maps).st_size == 0
    with pytest.raises(InputError, match="grew to at least 101 bytes") as e:
        read_source_bytes(maps, kind="image file", max_file_bytes=100)
    assert "max_file_bytes=100 bytes" in e.value.reason
    assert len(read_source_bytes(maps, max_file_bytes=10**6)) > 100
    with pytest.raises(InputError, match="over max_file_bytes=16 bytes"):
        read_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, max_file_bytes=16)


# ---------------------------------------------------------------- 6. audio headers


def test_wav_at_1_hz_is_refused_from_its_header(tmp_path):
    # 40 KB at 1 Hz: before the fix, 320M samples (1.4 GB RSS, 9 s) at 16 kHz
    path = tmp_path / "one_hz.wav"
    sf.write(path, np.zeros(20_000, np.int16), 1, subtype="PCM_16")
    assert path.stat().st_size < 41_000
    res = _run_attacks(
        f"print(json.dumps(attack(read_audio, {str(path)!r}, sr=16000)))"
    )
    assert (
        "sample rate 1 Hz is outside the supported range 1,000-192,000 Hz"
        in (res["reason"])
    )
    _assert_cheap(res, seconds=1.0, rss_mb=16.0)


def test_wav_at_a_prime_rate_is_refused_before_resampling(tmp_path):
    # 244 bytes at 9,999,991 Hz: before the fix, resample_poly designed a
    # ~200M-tap filter (9.6 GB RSS, 49 s, or a MemoryError)
    path = tmp_path / "prime.wav"
    sf.write(path, np.zeros(100, np.int16), 9_999_991, subtype="PCM_16")
    assert path.stat().st_size == 244
    res = _run_attacks(
        f"print(json.dumps(attack(read_audio, {str(path)!r}, sr=16000)))"
    )
    assert "sample rate 9,999,991 Hz is outside the supported range" in res["reason"]
    _assert_cheap(res, seconds=1.0, rss_mb=16.0)


def test_three_hour_flac_of_silence_is_refused_from_its_header(tmp_path):
    # ~0.5 MB of FLAC for 10,800 s: before the fix, 1.6 GB RSS and 6.5 s
    path = tmp_path / "silence.flac"
    block = np.zeros(8_000 * 60, np.int16)
    with sf.SoundFile(path, "w", 8_000, 1, "PCM_16", format="FLAC") as f:
        for _ in range(180):
            f.write(block)
    assert path.stat().st_size < 2_000_000
    res = _run_attacks(f"print(json.dumps(attack(read_audio, {str(path)!r}, sr=8000)))")
    assert "audio is 10,800.0 s long (86,400,000 frames at 8,000 Hz)" in res["reason"]
    assert "over max_duration=600 s" in res["reason"]
    _assert_cheap(res, seconds=1.0, rss_mb=16.0)


def _flac_with_total_frames(total, *, seconds=20, sr=8000):
    buf = io.BytesIO()
    sf.write(buf, np.zeros(sr * seconds, np.int16), sr, format="FLAC")
    data = bytearray(buf.getvalue())
    at = 4 + 4 + 10  # STREAMINFO: rate, channels, bits, 36-bit total frames
    field = int.from_bytes(data[at : at + 8], "big")
    field = (field & ~((1 << 36) - 1)) | total
    data[at : at + 8] = field.to_bytes(8, "big")
    return bytes(data)


def test_audio_header_of_unknown_length_or_too_many_channels_is_refused():
    with pytest.raises(InputError, match="gives no length"):
        read_audio(_flac_with_total_frames(0))  # "unknown" in FLAC
    many = io.BytesIO()
    sf.write(many, np.zeros((100, 17), np.int16), 8000, format="WAV")
    with pytest.raises(InputError, match="17 channels, outside the supported 1-16"):
        read_audio(many.getvalue())


# ---------------------------------------------------------------- 7. lying lengths


class _EndlessDecoder:
    """A decoder whose header says 1 s and whose data never ends."""

    samplerate, channels, frames = 8000, 2, 8000

    def __init__(self):
        self.delivered = 0

    def read(self, n, dtype, always_2d):
        self.delivered += n
        assert self.delivered < 10 * 8000 * 60, "read on far past max_duration"
        return np.zeros((n, self.channels), np.float32)


def test_decoding_stops_at_max_duration_whatever_the_header_says():
    dec = _EndlessDecoder()
    with pytest.raises(InputError, match="more than max_duration=30 s") as e:
        audio_mod._read_blocks(dec, mono=True, max_duration=30, source="x.ogg")
    assert "header says 1.0 s" in e.value.reason
    assert dec.delivered == 30 * 8000 + 1  # stopped one frame past the limit


def test_wav_whose_sizes_lie_stays_bounded():
    good = io.BytesIO()
    sf.write(good, np.zeros(8000 * 30, np.int16), 8000, format="WAV")
    data = bytearray(good.getvalue())
    at = data.find(b"data")
    # a streamed WAV: RIFF and data sizes unknown (0xFFFFFFFF); the length
    # then comes from the file size, and is checked against max_duration
    data[4:8] = data[at + 4 : at + 8] = b"\xff\xff\xff\xff"
    with pytest.raises(InputError, match="30.0 s long .* over max_duration=10 s"):
        read_audio(bytes(data), max_duration=10)
    assert read_audio(bytes(data))[0].shape == (8000 * 30,)
    # a data chunk claiming more than the file holds is truncation
    data[at + 4 : at + 8] = struct.pack("<I", 2**31)
    with pytest.raises(InputError, match="truncated WAV"):
        read_audio(bytes(data))
    # a FLAC claiming fewer frames than it holds is read to its claim only
    y, _ = read_audio(_flac_with_total_frames(8000))
    assert y.shape == (8000,)


# ---------------------------------------------------------------- 8. resampling


def test_coprime_rates_resample_with_a_bounded_filter(tmp_path):
    # 191,999 Hz is prime: the exact ratio 16000/191999 would need a
    # 3.8M-tap filter (1.4 s, +176 MB before the fix); 9,999,991 Hz, 200M taps
    path = tmp_path / "prime_rate.wav"
    sr = 191_999
    t = np.arange(sr) / sr
    sf.write(path, (np.sin(2 * np.pi * 1000 * t) * 10_000).astype(np.int16), sr)
    res = _run_attacks(
        f"""
import numpy as np
r = attack(read_audio, {str(path)!r}, sr=16000)
y, out_sr = read_audio({str(path)!r}, sr=16000)
r["n"], r["sr"] = len(y), out_sr
r["peak_hz"] = float(np.fft.rfftfreq(len(y), 1 / out_sr)[np.abs(np.fft.rfft(y)).argmax()])
print(json.dumps(r))
"""  # noqa: E501
    )
    assert res["reason"] is None and res["sr"] == 16000
    assert abs(res["n"] - 16000) <= 1
    assert res["peak_hz"] == pytest.approx(1000, abs=1)
    _assert_cheap(res, seconds=1.0, rss_mb=48.0)
    for target, source in [(16000, 191_999), (16000, 9_999_991), (44100, 1009)]:
        up, down = audio_mod._poly_factors(target, source)
        assert max(up, down) <= audio_mod.MAX_RESAMPLE_FACTOR
        assert abs(up / down / (target / source) - 1) < 2e-5
    assert audio_mod._poly_factors(16000, 44100) == (160, 441)  # exact if small


# ---------------------------------------------------------------- 9. reported


def test_readers_report_each_refusal_as_that_rows_error(tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(bytes(_encoded(".png", np.zeros((4, 4, 3), np.uint8))))
    bomb = tmp_path / "bomb.tif"
    bomb.write_bytes(_tiff([(30000, 30000, 15)]))
    big = tmp_path / "big.png"
    big.write_bytes(good.read_bytes() + b"\0" * 30_000)
    reader = ImageReader(on_error="missing", max_file_bytes=25_000)
    with collect_item_errors() as errors:
        out = reader.fit_transform([good, bomb, big])
    assert [o is None for o in out] == [False, True, True]
    rows = {e.row: e for e in errors}
    assert sorted(rows) == [1, 2]
    assert rows[1].source == str(bomb) and "max_pixels=178,956,970" in rows[1].reason
    assert (
        rows[2].source == str(big) and "max_file_bytes=25,000 bytes" in rows[2].reason
    )
    with pytest.raises(InputError, match=r"row 1 \(.*bomb\.tif\): header claims"):
        ImageReader().fit_transform([good, bomb])

    clip = tmp_path / "ok.wav"
    sf.write(clip, np.zeros(800), 8000)
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(8000 * 3), 8000)
    slow = tmp_path / "slow.wav"
    sf.write(slow, np.zeros(100), 500)
    areader = AudioReader(sr=8000, max_duration=2, on_error="missing")
    with collect_item_errors() as errors:
        out = areader.fit_transform([clip, long, slow])
    assert [o is None for o in out] == [False, True, True]
    rows = {e.row: e for e in errors}
    assert "over max_duration=2 s" in rows[1].reason
    assert "sample rate 500 Hz" in rows[2].reason and "1,000-192,000" in rows[2].reason
    with pytest.raises(InputError, match=r"row 1 \(.*long\.wav\): audio is 3\.0 s"):
        AudioReader(max_duration=2).fit_transform([clip, long])
