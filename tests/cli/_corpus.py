"""A corpus of bad records for the reliability tests of ``mmfeat score``.

:func:`make_corpus` writes, under one folder, a ``records.csv`` whose rows
are good records interleaved with one row per way a record can go wrong
(a truncated JPEG, a symlink loop, a decompression bomb, a blank title, a
WAV cut in half, ...), and returns it with the table of what a scorer run
with ``--on-error missing`` must do with each row: which columns it reports
as bad, and whether the row still gets a prediction.

The expectations assume the scorer reads ``records.csv`` with
``pandas.read_csv`` defaults: an empty cell (and a cell ``NA``, ``None``,
...) is a *missing* value, every other cell of the text columns a ``str``.
Which cells are bad is not guessed here: ``tests/cli/test_corpus.py`` runs
the real readers (``HOGExtractor``, ``TfidfExtractor``, ``AudioReader``)
over the corpus and checks that they refuse exactly the cells marked bad.

Table-level cases (an empty file, a header without rows, a missing
column) are separate helpers: :func:`write_empty_csv`,
:func:`write_header_only_csv`, :func:`drop_column`.
"""

import gzip
import io
import os
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

__all__ = [
    "MODALITIES",
    "drop_column",
    "make_corpus",
    "png_claiming",
    "restrict_expected",
    "write_empty_csv",
    "write_header_only_csv",
]

#: Record columns holding one modality each, in table order.
MODALITIES = ("image", "title", "audio")

# Cells pandas.read_csv reads as NaN by default (its STR_NA_VALUES, the ones
# a title could plausibly be).
_CSV_NA_STRINGS = {"NA", "N/A", "n/a", "NaN", "nan", "None", "null", "NULL", "#N/A"}

_GOOD = object()  # placeholder: "the next good file of this modality"


# -- bytes of bad and odd files ------------------------------------------------


def png_claiming(width, height):
    """A small, well-formed PNG whose header claims ``width`` x ``height``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    idat_full = (
        struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    )
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + body + idat_full + iend


def _jpeg_claiming(jpeg, height, width):
    buf = bytearray(jpeg)
    i = buf.find(b"\xff\xc0")
    if i < 0:  # progressive JPEG
        i = buf.find(b"\xff\xc2")
    buf[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(buf)


def _bmp_claiming(width, height):
    buf = bytearray(_pil_bytes(Image.new("RGB", (4, 4), (90, 90, 90)), "BMP"))
    buf[18:26] = struct.pack("<ii", width, height)
    return bytes(buf)


def _pil_bytes(img, fmt, **kw):
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def _cv_bytes(ext, arr):
    ok, enc = cv2.imencode(ext, arr)
    if not ok:  # pragma: no cover - the codecs are part of opencv's wheels
        raise RuntimeError(f"OpenCV cannot encode {ext}")
    return enc.tobytes()


def _wav(samples, *, sr=8000, bits=16, fmt_code=1):
    data = np.asarray(samples).tobytes()
    fmt = struct.pack("<HHIIHH", fmt_code, 1, sr, sr * bits // 8, bits // 8, bits)
    body = (
        b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


_HTML_404 = (
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n"
    b"<body><h1>Not Found</h1><p>The requested URL /img/1563.jpg was not found "
    b"on this server.</p><hr><address>nginx</address></body></html>\n"
)


# -- the corpus ------------------------------------------------------------------


def make_corpus(root, *, good_images, good_titles, good_audio=None):
    """Write the bad-record corpus under ``root``; return records and expectations.

    Parameters
    ----------
    root : pathlib.Path
        An existing folder; files go under ``root/img``, ``root/audio`` and
        the table to ``root/records.csv``.
    good_images : list of path-like
        Real JPEG files (copied; bad files are derived from the first).
    good_titles : list of str
        Real titles, cycled over the rows.
    good_audio : list of path-like, default=None
        Real WAV files; when given the table gets an ``audio`` column and
        the audio cases.

    Returns
    -------
    records : pandas.DataFrame
        ``records.csv`` as ``pandas.read_csv`` reads it back (so the frame
        and the file hold the same values): columns ``id``, ``image``,
        ``title`` and, with ``good_audio``, ``audio``. Image and audio paths
        are relative to ``root`` except in the ``absolute_path`` row.
    expected : pandas.DataFrame
        One row per id: ``id``, ``kind`` (slug of the case), ``bad_columns``
        (tuple of the columns an ``--on-error missing`` run must report for
        the row), ``missing_columns`` (tuple of the modality columns that are
        absent, which must *not* be reported), ``reasons`` (tuple parallel to
        ``bad_columns``: a substring of the reader's reason), and ``scorable``
        (bool: some modality is neither bad nor missing, so the row must get
        a prediction).
    """
    root = Path(root)
    img_dir, aud_dir = root / "img", root / "audio"
    img_dir.mkdir(parents=True, exist_ok=True)
    with_audio = good_audio is not None
    if with_audio:
        aud_dir.mkdir(exist_ok=True)
    if not good_images or not good_titles or (with_audio and not good_audio):
        raise ValueError("make_corpus needs at least one good image, title and clip")

    # good files, copied so that relative paths resolve against root
    good_img = []
    for i, src in enumerate(good_images):
        dst = img_dir / f"good_{i:02d}.jpg"
        shutil.copyfile(src, dst)
        good_img.append(f"img/{dst.name}")
    good_wav = []
    for i, src in enumerate(good_audio or []):
        dst = aud_dir / f"good_{i:02d}.wav"
        shutil.copyfile(src, dst)
        good_wav.append(f"audio/{dst.name}")
    jpeg = Path(good_images[0]).read_bytes()
    photo = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    png = _cv_bytes(".png", photo)
    photo_rgb = Image.fromarray(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB))

    def img(name, data):
        (img_dir / name).write_bytes(data)
        return f"img/{name}"

    def aud(name, data):
        (aud_dir / name).write_bytes(data)
        return f"audio/{name}"

    # Each case: (kind, image, title, audio, {bad column: reason substring}).
    # _GOOD takes the next good file/title; None is an empty cell.
    cases = []

    def case(kind, image=_GOOD, title=_GOOD, audio=_GOOD, bad=None):
        cases.append((kind, image, title, audio, dict(bad or {})))

    # -- images the reader must refuse (the title keeps the row scorable)
    case("image_zero_byte", img("zero_byte.jpg", b""), bad={"image": "empty file"})
    case(
        "image_truncated_jpeg",
        img("truncated.jpg", jpeg[: len(jpeg) // 2]),
        bad={"image": "truncated JPEG"},
    )
    case(
        "image_truncated_png",
        img("truncated.png", png[: len(png) // 2]),
        bad={"image": "truncated PNG"},
    )
    case(
        "image_text_as_jpg",
        img("notes.jpg", b"product photo to follow, see the catalogue\n" * 8),
        bad={"image": "holds text"},
    )
    case(
        "image_random_bytes_png",
        img("random.png", np.random.default_rng(0).bytes(4096)),
        bad={"image": "cannot decode"},
    )
    case(
        "image_html_error_page",
        img("error_page.jpg", _HTML_404),
        bad={"image": "holds text"},
    )
    (img_dir / "a_directory.jpg").mkdir(exist_ok=True)
    case("image_directory", "img/a_directory.jpg", bad={"image": "is a directory"})
    case("image_nonexistent", "img/does_not_exist.jpg", bad={"image": "not found"})
    case(
        "image_png_bomb",
        img("bomb.png", png_claiming(100_000, 100_000)),
        bad={"image": "decompression-bomb"},
    )
    case(
        "image_jpeg_header_bomb",
        img("bomb.jpg", _jpeg_claiming(jpeg, 60_000, 60_000)),
        bad={"image": "decompression-bomb"},
    )
    case(
        "image_bmp_header_bomb",
        img("bomb.bmp", _bmp_claiming(100_000, 100_000)),
        bad={"image": "decompression-bomb"},
    )
    for name, target in (("loop_a.jpg", "loop_b.jpg"), ("loop_b.jpg", "loop_a.jpg")):
        _symlink(target, img_dir / name)
    case("image_symlink_loop", "img/loop_a.jpg", bad={"image": "symbolic link"})
    _symlink("gone.jpg", img_dir / "dangling.jpg")
    case("image_symlink_dangling", "img/dangling.jpg", bad={"image": "symbolic link"})
    if hasattr(os, "mkfifo"):  # reading a named pipe would block forever
        fifo = img_dir / "pipe.jpg"
        if not fifo.exists():
            os.mkfifo(fifo)
        case("image_named_pipe", "img/pipe.jpg", bad={"image": "not a regular file"})
    case("image_number_cell", "12345", bad={"image": "not found"})
    case("image_whitespace_cell", "   ", bad={"image": "not found"})
    case(
        "image_gzip",
        img("archive.jpg.gz", gzip.compress(jpeg, mtime=0)),
        bad={"image": "cannot decode"},
    )
    clip = _wav((np.sin(np.arange(800) / 5) * 9000).astype("<i2"))
    case("image_is_wav", img("sound.wav", clip), bad={"image": "cannot decode"})
    case(
        "image_ico_unsupported",
        img("icon.ico", _pil_bytes(photo_rgb.resize((32, 32)), "ICO")),
        bad={"image": "cannot decode"},
    )
    case(
        "image_tga_unsupported",
        img("photo.tga", _pil_bytes(photo_rgb.resize((32, 32)), "TGA")),
        bad={"image": "cannot decode"},
    )
    gif = _pil_bytes(photo_rgb.resize((48, 64)), "GIF")
    case(
        "image_truncated_gif",
        img("truncated.gif", gif[: len(gif) // 2]),
        bad={"image": "cannot decode"},
    )
    webp = _pil_bytes(photo_rgb.resize((48, 64)), "WEBP")
    case(
        "image_truncated_webp",
        img("truncated.webp", webp[: len(webp) // 2]),
        bad={"image": "cannot decode"},
    )
    tiff = _pil_bytes(photo_rgb.resize((48, 64)), "TIFF")
    case(
        "image_truncated_tiff",
        img("truncated.tiff", tiff[: len(tiff) // 2]),
        bad={"image": "cannot decode"},
    )
    case(
        "image_float_tiff_0_255",
        img("float255.tiff", _cv_bytes(".tiff", np.full((16, 16), 200.0, "f4"))),
        bad={"image": "must lie in [0, 1]"},
    )
    case(
        "image_float_tiff_nan",
        img("float_nan.tiff", _cv_bytes(".tiff", np.full((16, 16), np.nan, "f4"))),
        bad={"image": "NaN"},
    )
    case(
        "image_int32_tiff_negative",
        img("negative.tiff", _cv_bytes(".tiff", np.full((16, 16), -5, "i4"))),
        bad={"image": "negative values"},
    )
    corrupt = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4 + b"IEND"
    case(
        "image_png_corrupt", img("corrupt.png", corrupt), bad={"image": "cannot decode"}
    )
    case(
        "image_png_zero_dims",
        img("zero_dims.png", png_claiming(0, 0)),
        bad={"image": "cannot decode"},
    )
    case(
        "image_jpeg_magic_only",
        img("magic_only.jpg", jpeg[:3]),
        bad={"image": "cannot decode"},
    )
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>\n'
    case("image_svg", img("vector.svg", svg), bad={"image": "holds text"})
    case(
        "image_utf16_text",
        img("notes16.png", "not a picture, just notes\n".encode("utf-16") * 10),
        bad={"image": "cannot decode"},
    )
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 2 + b"\n%%EOF\n"
    case("image_pdf", img("brochure.jpg", pdf), bad={"image": "cannot decode"})
    case(
        "image_backslash_path",
        good_img[0].replace("/", "\\"),
        bad={"image": "not found"},
    )
    case("image_trailing_space", good_img[0] + " ", bad={"image": "not found"})
    case(
        "image_http_url",
        "https://example.com/images/1563.jpg",
        bad={"image": "not found"},
    )
    case(
        "image_file_url",
        "file://" + str((root / good_img[0]).resolve()),
        bad={"image": "not found"},
    )
    case("image_is_records_csv", "records.csv", bad={"image": "holds text"})
    if _permissions_apply():
        locked = img_dir / "locked.jpg"
        locked.write_bytes(jpeg)
        locked.chmod(0)
        case(
            "image_permission_denied",
            "img/locked.jpg",
            bad={"image": "Permission denied"},
        )

    # -- odd images the reader accepts (good rows)
    case(
        "image_cmyk_jpeg",
        img("cmyk.jpg", _pil_bytes(photo_rgb.convert("CMYK"), "JPEG")),
    )
    deep = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    case("image_png_16bit", img("deep16.png", _cv_bytes(".png", deep)))
    case("image_gif", img("photo.gif", gif))
    case("image_webp", img("photo.webp", webp))
    case("image_tiff", img("photo.tiff", tiff))
    case(
        "image_cmyk_tiff",
        img("cmyk.tiff", _pil_bytes(photo_rgb.convert("CMYK"), "TIFF")),
    )
    case("image_one_pixel", img("dot.png", _cv_bytes(".png", photo[:1, :1])))
    strip = (np.arange(4000) % 256).astype(np.uint8)[None, :]  # 4000x1 pixels
    case("image_extreme_aspect", img("strip.png", _cv_bytes(".png", strip)))
    rgba = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    rgba[::2, :, 3] = 0
    case("image_rgba_png", img("alpha.png", _cv_bytes(".png", rgba)))
    case(
        "image_palette_png",
        img("palette.png", _pil_bytes(photo_rgb.quantize(16), "PNG")),
    )
    case(
        "image_float_tiff_unit",
        img("unit.tiff", _cv_bytes(".tiff", np.full((16, 16), 0.5, "f4"))),
    )
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    case(
        "image_exif_rotated",
        img("rotated.jpg", _pil_bytes(photo_rgb, "JPEG", exif=exif)),
    )
    unicode_name = "Ünïcødé 图像 with spaces.jpg"
    case("unicode_spaces_path", img(unicode_name, jpeg))
    case("duplicate_reference", good_img[0])
    case("duplicate_reference", good_img[0])
    case("absolute_path", str(Path(good_images[0]).resolve()))
    case("image_missing", None)

    # -- titles: TF-IDF refuses no string; blank ones are missing values
    long_words = " ".join(good_titles).split() or ["word"]
    reps = 2_000_000 // (len(" ".join(long_words)) + 1) + 1
    case("title_empty", title="")
    case("title_whitespace", title=" \t  ")
    case("title_long_2mb", title=" ".join(long_words * reps))
    case(
        "title_control_chars",
        title="Red\x01 Kurta\x07 \x1b[31mSale\x1b[0m\r\nLine two\ttab",
    )
    case("title_nul", title="Blue\x00Jeans Men")
    case("title_mojibake", title="CafÃ© RÃ©sumÃ© Ã¢â‚¬â€œ T-shirt \ufffd\ufffd")
    case("title_number", title="42")
    case("title_emoji_rtl", title="👗🔥 فستان أحمر שמלה אדומה \u202edress\u202c")
    case("title_na_string", title="None")
    case("title_punctuation_only", title="!!! --- ???")
    case("title_single_letters", title="a b c d e")

    # -- rows where no modality is usable: reported and never predicted
    na = None if with_audio else _GOOD  # the audio cell, when there is one
    case(
        "image_bad_title_missing",
        "img/zero_byte.jpg",
        title="",
        audio=na,
        bad={"image": "empty file"},
    )
    case(
        "image_bad_title_whitespace",
        "img/does_not_exist.jpg",
        title="   ",
        audio=na,
        bad={"image": "not found"},
    )
    case("all_missing", None, title="", audio=na)

    # -- audio
    if with_audio:
        good_clip = Path(good_audio[0]).read_bytes()
        case(
            "audio_zero_byte",
            audio=aud("zero_byte.wav", b""),
            bad={"audio": "empty file"},
        )
        case(
            "audio_truncated",
            audio=aud("truncated.wav", good_clip[: len(good_clip) // 2]),
            bad={"audio": "truncated WAV"},
        )
        case(
            "audio_text_as_wav",
            audio=aud("notes.wav", b"this recording was lost\n" * 20),
            bad={"audio": "cannot decode audio"},
        )
        case("audio_nonexistent", audio="audio/gone.wav", bad={"audio": "not found"})
        case("audio_is_image", audio=good_img[0], bad={"audio": "cannot decode audio"})
        (aud_dir / "a_directory.wav").mkdir(exist_ok=True)
        case(
            "audio_directory",
            audio="audio/a_directory.wav",
            bad={"audio": "is a directory"},
        )
        nan = np.full(400, np.nan, "<f4")
        case(
            "audio_nan_samples",
            audio=aud("nan.wav", _wav(nan, bits=32, fmt_code=3)),
            bad={"audio": "NaN"},
        )
        case(
            "audio_no_samples",
            audio=aud("empty_data.wav", _wav(np.zeros(0, "<i2"))),
            bad={"audio": "no samples"},
        )
        case(
            "audio_riff_header_only",
            audio=aud("riff_only.wav", b"RIFF\x00\x00\x00\x00WAVE"),
            bad={"audio": "cannot decode audio"},
        )
        case("audio_missing", audio=None)
        case("audio_only", None, title="", audio=_GOOD)
        case(
            "all_bad",
            "img/truncated.jpg",
            title=" ",
            audio="audio/truncated.wav",
            bad={"image": "truncated JPEG", "audio": "truncated WAV"},
        )

    # ~10 plain good rows, spread evenly through the cases
    n_good = 10
    step = len(cases) / n_good
    for k in reversed(range(n_good)):
        cases.insert(int(k * step), ("good", _GOOD, _GOOD, _GOOD, {}))

    columns = ["image", "title"] + (["audio"] if with_audio else [])
    counters = {"image": 0, "title": 0, "audio": 0}
    pools = {"image": good_img, "title": list(good_titles), "audio": good_wav}
    rows, expected = [], []
    for i, (kind, image, title, audio, bad) in enumerate(cases):
        rid = f"r{i:03d}_{kind}"
        cells = {}
        for col, value in zip(("image", "title", "audio"), (image, title, audio)):
            if col not in columns:
                continue
            if value is _GOOD:
                pool = pools[col]
                value = pool[counters[col] % len(pool)]
                counters[col] += 1
            cells[col] = value
        missing = tuple(c for c in columns if _is_missing_cell(c, cells[c]))
        bad_cols = tuple(c for c in columns if c in bad)
        rows.append({"id": rid, **cells})
        expected.append(
            {
                "id": rid,
                "kind": kind,
                "bad_columns": bad_cols,
                "missing_columns": missing,
                "reasons": tuple(bad[c] for c in bad_cols),
                "scorable": any(c not in bad_cols + missing for c in columns),
            }
        )
    path = root / "records.csv"
    pd.DataFrame(rows, columns=["id", *columns]).to_csv(path, index=False)
    records = pd.read_csv(path)
    return records, pd.DataFrame(expected)


def _is_missing_cell(column, value):
    if value is None or value == "":
        return True
    if column == "title":
        return not value.strip() or value in _CSV_NA_STRINGS
    return value in _CSV_NA_STRINGS


def _symlink(target, link):
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(target, link)


def _permissions_apply():
    """False as root (or without POSIX permissions), where chmod 000 reads fine."""
    return hasattr(os, "geteuid") and os.geteuid() != 0


def restrict_expected(expected, modalities):
    """``expected`` for a model that reads only ``modalities`` of the columns.

    A column the model does not read is neither reported nor usable, so
    ``bad_columns``, ``missing_columns`` and ``reasons`` drop it and
    ``scorable`` is recomputed. ``modalities`` must be columns of the records.
    """
    out = expected.copy()
    keep = set(modalities)
    pairs = [
        tuple((c, r) for c, r in zip(b, rs) if c in keep)
        for b, rs in zip(expected["bad_columns"], expected["reasons"])
    ]
    out["bad_columns"] = [tuple(c for c, _ in p) for p in pairs]
    out["reasons"] = [tuple(r for _, r in p) for p in pairs]
    out["missing_columns"] = [
        tuple(c for c in m if c in keep) for m in expected["missing_columns"]
    ]
    out["scorable"] = [
        any(c not in b + m for c in modalities)
        for b, m in zip(out["bad_columns"], out["missing_columns"])
    ]
    return out


# -- table-level cases -----------------------------------------------------------


def write_empty_csv(path):
    """Write a 0-byte file at ``path`` and return the path."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_header_only_csv(path, columns):
    """Write a CSV with the header ``columns`` and no rows; return the path."""
    path = Path(path)
    pd.DataFrame(columns=list(columns)).to_csv(path, index=False)
    return path


def drop_column(records, column):
    """Return a copy of ``records`` without ``column`` (which must exist)."""
    if column not in records.columns:
        raise KeyError(f"no column {column!r} in {list(records.columns)}")
    return records.drop(columns=[column])
