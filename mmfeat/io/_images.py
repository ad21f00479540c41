"""Robust image decoding: ``read_image`` and the ``ImageReader`` transformer.

Decoding is OpenCV's (``cv2.imdecode`` on the file's bytes, so unicode paths
and in-memory bytes work the same). A file is read only up to
``max_file_bytes``; before anything is decoded its signature must be one of
OpenCV's formats and its header must state a size within ``max_pixels``
(decompression bombs), and JPEG/PNG streams are checked for truncation, which
libjpeg would otherwise pad with grey silently.
"""

import os
import re
import struct

import cv2
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from mmfeat.exceptions import InputError
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._items import (
    DEFAULT_MAX_FILE_BYTES,
    as_item_list,
    item_source,
    read_source_bytes,
)
from mmfeat.utils._parallel import map_items
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
)
from mmfeat.utils._state import CheckedStateMixin
from mmfeat.utils._tags import with_item_tags
from mmfeat.utils._validation import check_pair

__all__ = [
    "read_image",
    "read_image_stack",
    "ImageReader",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_FILE_BYTES",
    "SUPPORTED_FORMATS",
]

#: Default limit on width x height (about 179 megapixels, Pillow's own bomb limit).
DEFAULT_MAX_PIXELS = 178_956_970

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
_JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K = b"\xff\x4f\xff\x51"
_SUN_RASTER = b"\x59\xa6\x6a\x95"
_AVIF_BRANDS = (b"avif", b"avis", b"avio")

#: Every format OpenCV's ``imdecode`` can read in this build, by the name
#: :func:`sniff_image_format` gives it. Each has its image size read from the
#: header before decoding; anything else is refused undecoded.
SUPPORTED_FORMATS = (
    "JPEG",
    "PNG",
    "GIF",
    "BMP",
    "WEBP",
    "TIFF",
    "PNM",
    "PAM",
    "PFM",
    "HDR",
    "SUNRASTER",
    "JPEG2000",
    "AVIF",
)

# how messages name them (the codes above are what the sniffer returns)
_FORMAT_NAMES = {
    "WEBP": "WebP",
    "HDR": "Radiance HDR",
    "SUNRASTER": "Sun raster",
    "JPEG2000": "JPEG 2000",
}
_READABLE_FORMATS = ", ".join(_FORMAT_NAMES.get(f, f) for f in SUPPORTED_FORMATS)


def sniff_image_format(buf):
    """Return the container format named by the magic bytes, or None.

    The signatures are those OpenCV's decoders check, so a buffer this returns
    None for is one no OpenCV decoder would claim.
    """
    if buf.startswith(_JPEG):
        return "JPEG"
    if buf.startswith(_PNG):
        return "PNG"
    if buf[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if buf.startswith(b"BM"):
        return "BMP"
    if buf[:4] == b"RIFF" and buf[8:12] == b"WEBP":
        return "WEBP"
    if buf[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"  # classic and BigTIFF, either byte order
    if buf[:1] == b"P" and buf[2:3].isspace():
        if buf[1:2] in b"123456":
            return "PNM"
        if buf[1:2] == b"7":
            return "PAM"
        if buf[1:2] in (b"F", b"f"):
            return "PFM"
    if buf.startswith((b"#?RADIANCE", b"#?RGBE")):
        return "HDR"
    if buf.startswith(_SUN_RASTER):
        return "SUNRASTER"
    if buf.startswith((_JP2, _J2K)):
        return "JPEG2000"
    if buf[4:8] == b"ftyp":
        size = int.from_bytes(buf[:4], "big")
        brands = buf[8:12] + buf[16 : min(size, 4096)]
        if any(brands[i : i + 4] in _AVIF_BRANDS for i in range(0, len(brands), 4)):
            return "AVIF"
    return None


_FF_RUN = re.compile(rb"\xff+")

#: Text headers (PNM, PAM, Radiance) must end within this many bytes; a longer
#: one is refused, so no header scan ever walks a whole file.
_MAX_TEXT_HEADER = 65536

#: Boxes (JPEG 2000, AVIF) and TIFF directory entries read at most, so a file
#: of a million empty boxes costs a bounded scan.
_MAX_BOXES = 4096
_MAX_TIFF_ENTRIES = 65536


def _jpeg_size(buf):
    """(height, width) of the first frame header, found as libjpeg finds it.

    Bytes between segments are skipped to the next 0xFF, fill bytes and
    stuffed zeros are not markers; the scan stops at the first start of scan.
    """
    i, n = 2, len(buf)
    while True:
        m = _FF_RUN.search(buf, i)
        if m is None:
            return None
        j = m.end()  # the marker byte, after any 0xFF fill
        if j + 8 > n:
            return None
        marker = buf[j]
        if marker in (0x00, 0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i = j + 1
            continue
        (length,) = struct.unpack(">H", buf[j + 1 : j + 3])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", buf[j + 4 : j + 8])
            return h, w
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i = j + 1 + length


def _bmp_size(buf):
    """BMP size as OpenCV reads it: 16-bit for OS/2 core headers, else 32-bit."""
    (header,) = struct.unpack("<I", buf[14:18])
    if header == 12:  # BITMAPCOREHEADER (OS/2 1.x): unsigned 16-bit sizes
        w, h = struct.unpack("<HH", buf[18:22])
    elif header >= 36:  # BITMAPINFOHEADER and its successors
        w, h = struct.unpack("<ii", buf[18:26])
    else:
        return None  # OpenCV reads no other header size
    return abs(h), abs(w)


# TIFF field types libtiff accepts for an image dimension: size and format
_TIFF_INT_TYPES = {
    1: (1, "B"),
    3: (2, "H"),
    4: (4, "I"),
    6: (1, "b"),
    8: (2, "h"),
    9: (4, "i"),
    16: (8, "Q"),
    17: (8, "q"),
}
_TIFF_MAX_IFDS = 1024


def _tiff_size(buf):
    """Largest (height, width) over the TIFF's image directories, or None.

    Reads classic TIFF and BigTIFF in either byte order and walks the whole
    IFD chain (loops, and chains past ``_TIFF_MAX_IFDS`` directories or
    ``_MAX_TIFF_ENTRIES`` entries, are cut): OpenCV decodes the first
    directory, which must be complete; the largest one bounds any page.
    """
    order = "<" if buf[:2] == b"II" else ">"
    big = struct.unpack(order + "H", buf[2:4])[0] == 43
    if big:
        if struct.unpack(order + "HH", buf[4:8]) != (8, 0):
            return None
        (offset,) = struct.unpack(order + "Q", buf[8:16])
        count_fmt, entry_size, next_fmt, inline = "Q", 20, "Q", 8
    else:
        (offset,) = struct.unpack(order + "I", buf[4:8])
        count_fmt, entry_size, next_fmt, inline = "H", 12, "I", 4
    count_size = struct.calcsize(count_fmt)
    next_size = struct.calcsize(next_fmt)
    best, seen, budget = None, set(), _MAX_TIFF_ENTRIES
    while offset and offset not in seen and len(seen) < _TIFF_MAX_IFDS:
        seen.add(offset)
        if offset + count_size > len(buf):
            break
        (n,) = struct.unpack(order + count_fmt, buf[offset : offset + count_size])
        start = offset + count_size
        # libtiff refuses a directory of over 4096 entries ("sanity check")
        if n > 4096 or n > budget or start + n * entry_size + next_size > len(buf):
            break
        budget -= n
        dims = {256: 0, 257: 0}
        for k in range(n):
            e = start + k * entry_size
            (tag,) = struct.unpack(order + "H", buf[e : e + 2])
            if tag not in dims:
                continue
            ftype = struct.unpack(order + "H", buf[e + 2 : e + 4])[0]
            if ftype not in _TIFF_INT_TYPES:
                return None  # libtiff refuses it too; never guess a size
            size, fmt = _TIFF_INT_TYPES[ftype]
            count_at = e + 4
            vfmt = "Q" if big else "I"
            (count,) = struct.unpack(order + vfmt, buf[count_at : count_at + inline])
            at = count_at + inline
            if count * size > inline:  # stored elsewhere: first value counts
                (at,) = struct.unpack(order + vfmt, buf[at : at + inline])
            (value,) = struct.unpack(order + fmt, buf[at : at + size])
            dims[tag] = max(dims[tag], abs(value))  # a repeated tag: the larger
        if best is None and not (dims[256] and dims[257]):
            return None  # the first directory, the one decoded, has no size
        if best is None or dims[256] * dims[257] > best[0] * best[1]:
            best = (dims[257], dims[256])
        e = start + n * entry_size
        (offset,) = struct.unpack(order + next_fmt, buf[e : e + next_size])
    return best


_SPACES = re.compile(rb"\s*")
_DIGITS = re.compile(rb"\d+")


def _pnm_size(buf, *, comments):
    """(height, width) of a PNM/PFM header: two numbers after the magic.

    Whitespace and (PNM only) ``#`` comments are skipped; the header must end
    within ``_MAX_TEXT_HEADER`` bytes.
    """
    head = buf[:_MAX_TEXT_HEADER]
    pos, out = 2, []
    while len(out) < 2:
        pos = _SPACES.match(head, pos).end()
        if comments and head[pos : pos + 1] == b"#":
            end = head.find(b"\n", pos)
            if end < 0:
                return None
            pos = end + 1
            continue
        m = _DIGITS.match(head, pos)
        if m is None or m.end() == len(head):
            return None  # not a number, or one that runs off the window
        digits = m.group()
        out.append(int(digits) if len(digits) <= 18 else 10**18)
        pos = m.end()
    return out[1], out[0]


def _pam_size(buf):
    head = buf[:_MAX_TEXT_HEADER]
    end = head.find(b"ENDHDR")
    if end < 0:
        return None
    fields = {}
    for line in head[3:end].splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in (b"WIDTH", b"HEIGHT") and words[1].isdigit():
            key, digits = words[0], words[1]
            value = int(digits) if len(digits) <= 18 else 10**18
            fields[key] = max(fields.get(key, 0), value)  # a repeated key: the larger
    if b"WIDTH" not in fields or b"HEIGHT" not in fields:
        return None
    return fields[b"HEIGHT"], fields[b"WIDTH"]


_HDR_SIZE_LINE = re.compile(rb"-Y\s*([+-]?\d+)\s*\+X\s*([+-]?\d+)")


def _hdr_size(buf):
    """Radiance size as OpenCV's reader finds it (``fgets`` of 128 bytes).

    OpenCV reads the header in chunks of at most 127 bytes, ends it at the
    first chunk that starts with a newline, and takes the next chunk as
    ``-Y <height> +X <width>``; reading the same way is what makes the check
    see the size the decoder will allocate. The larger of that and any
    resolution line of the header read whole is kept.
    """
    buf = buf[:_MAX_TEXT_HEADER]
    pos, n, first = 0, len(buf), True
    opencv = None
    while pos < n:
        nl = buf.find(b"\n", pos, pos + 127)
        end = nl + 1 if nl >= 0 else min(pos + 127, n)
        chunk, pos = buf[pos:end], end
        if first:
            first = False
            continue
        if chunk.startswith(b"\n"):
            nl = buf.find(b"\n", pos, pos + 127)
            line = buf[pos : nl + 1 if nl >= 0 else min(pos + 127, n)]
            m = _HDR_SIZE_LINE.match(line.split(b"\0")[0])
            if m:
                h, w = (min(abs(int(g)), 10**18) for g in m.groups())
                opencv = h, w
            break
    whole = None
    blank = buf.find(b"\n\n")
    if blank >= 0:
        line = buf[blank + 2 : buf.find(b"\n", blank + 2)]
        m = re.match(rb"[-+]([XY])\s+(\d+)\s+[-+]([XY])\s+(\d+)", line)
        if m and {m.group(1), m.group(3)} == {b"X", b"Y"}:
            a, b = (min(int(g), 10**18) for g in (m.group(2), m.group(4)))
            whole = (a, b) if m.group(1) == b"Y" else (b, a)
    if opencv is None:
        return None  # OpenCV would find no size either: it cannot decode it
    if whole is not None and whole[0] * whole[1] > opencv[0] * opencv[1]:
        return whole
    return opencv


def _iso_boxes(buf, start, end, budget):
    """Yield (type, payload start, payload end) of the ISO-BMFF boxes in a range.

    ``budget`` is a one-element list counting the boxes left for the whole
    scan; the walk stops when it is spent.
    """
    pos = start
    while pos + 8 <= end and budget[0] > 0:
        budget[0] -= 1
        size = int.from_bytes(buf[pos : pos + 4], "big")
        kind = bytes(buf[pos + 4 : pos + 8])
        head = 8
        if size == 1:
            if pos + 16 > end:
                return
            size, head = int.from_bytes(buf[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return
        yield kind, pos + head, pos + size
        pos += size


def _avif_size(buf):
    """Largest size over the AVIF's ``ispe`` properties and track headers."""
    sizes, budget = [], [_MAX_BOXES]

    def walk(start, end, depth):
        if depth > 8:
            return
        for kind, a, b in _iso_boxes(buf, start, end, budget):
            if kind == b"meta":
                walk(a + 4, b, depth + 1)  # a full box: skip version and flags
            elif kind in (b"iprp", b"ipco", b"moov", b"trak"):
                walk(a, b, depth + 1)
            elif kind == b"ispe" and b - a >= 12:
                w, h = struct.unpack(">II", buf[a + 4 : a + 12])
                sizes.append((h, w))
            elif kind == b"tkhd" and b - a >= 84:
                at = a + (88 if buf[a] == 1 else 76)  # 16.16 fixed point
                if at + 8 <= b:
                    w, h = struct.unpack(">II", buf[at : at + 8])
                    sizes.append((h >> 16, w >> 16))

    walk(0, len(buf), 0)
    return max(sizes, key=lambda hw: hw[0] * hw[1]) if sizes else None


def _jpeg2000_size(buf):
    """Size from the codestream's SIZ segment (and a JP2 ``ihdr``), the larger."""
    sizes, budget = [], [_MAX_BOXES]

    def siz(at):
        if buf[at : at + 4] == _J2K and at + 24 <= len(buf):
            x1, y1, x0, y0 = struct.unpack(">IIII", buf[at + 8 : at + 24])
            sizes.append((max(0, y1 - y0), max(0, x1 - x0)))

    if buf.startswith(_J2K):
        siz(0)
    else:
        for kind, a, b in _iso_boxes(buf, 0, len(buf), budget):
            if kind == b"jp2c":
                siz(a)
            elif kind == b"jp2h":
                for sub, c, d in _iso_boxes(buf, a, b, budget):
                    if sub == b"ihdr" and d - c >= 8:
                        sizes.append(struct.unpack(">II", buf[c : c + 8]))
    return max(sizes, key=lambda hw: hw[0] * hw[1]) if sizes else None


def _header_size(buf, fmt):
    """Return (height, width) read from the header without decoding, or None."""
    try:
        if fmt == "PNG" and buf[12:16] == b"IHDR":
            w, h = struct.unpack(">II", buf[16:24])
            return h, w
        if fmt == "GIF":
            w, h = struct.unpack("<HH", buf[6:10])
            return h, w
        if fmt == "BMP":
            return _bmp_size(buf)
        if fmt == "WEBP":
            chunk = buf[12:16]
            if chunk == b"VP8X":
                w = int.from_bytes(buf[24:27], "little") + 1
                h = int.from_bytes(buf[27:30], "little") + 1
                return h, w
            if chunk == b"VP8L":
                bits = int.from_bytes(buf[21:25], "little")
                return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", buf[26:30])
                return h & 0x3FFF, w & 0x3FFF
        if fmt == "JPEG":
            return _jpeg_size(buf)
        if fmt == "TIFF":
            return _tiff_size(buf)
        if fmt in ("PNM", "PFM"):
            return _pnm_size(buf, comments=fmt == "PNM")
        if fmt == "PAM":
            return _pam_size(buf)
        if fmt == "HDR":
            return _hdr_size(buf)
        if fmt == "SUNRASTER":
            w, h = struct.unpack(">ii", buf[4:12])
            return abs(h), abs(w)
        if fmt == "JPEG2000":
            return _jpeg2000_size(buf)
        if fmt == "AVIF":
            return _avif_size(buf)
    except (struct.error, ValueError, IndexError):
        return None
    return None


def check_image_header(buf, fmt, *, max_pixels, source):
    """Refuse, before any decoding, what the decompression-bomb guard cannot pass.

    An unknown signature is refused (no decoder would take it); a known one
    must state a size in its header, within ``max_pixels``, and JPEG/PNG
    streams must not be visibly truncated. With ``max_pixels=None`` the size
    is not read.
    """
    if fmt is None:
        if _looks_like_text(buf):
            raise InputError(
                "not an image: the file holds text, no image signature "
                f"({_READABLE_FORMATS}) found",
                source=source,
            )
        raise InputError(
            "cannot decode image (unknown format): corrupt data or not an image "
            f"file; no signature of {_READABLE_FORMATS} found",
            source=source,
        )
    hw = None if max_pixels is None else _header_size(buf, fmt)
    if hw is not None:
        _check_pixels(
            *hw, max_pixels=max_pixels, min_size=None, source=source, claimed=True
        )
    reason = _check_complete(buf, fmt)
    if reason:
        raise InputError(reason, source=source)
    if hw is None and max_pixels is not None:
        raise InputError(
            f"cannot decode image ({fmt}): its header states no readable image "
            "size (truncated, corrupt or an unsupported variant), so the "
            f"decompression-bomb guard (max_pixels={max_pixels:,}) cannot check "
            "it; it is not decoded",
            source=source,
        )


def _check_complete(buf, fmt):
    """Return a reason string when a JPEG/PNG stream is visibly truncated."""
    if fmt == "JPEG":
        # Entropy-coded data escapes 0xFF, so an end-of-image marker after the
        # last start-of-scan means the final scan is complete.
        if buf.rfind(b"\xff\xd9") < buf.rfind(b"\xff\xda"):
            return "truncated JPEG: no end-of-image marker after the last scan"
    elif fmt == "PNG" and buf.rfind(b"IEND") < 0:
        return "truncated PNG: no IEND chunk"
    return None


def _decode(buf, *, fmt, mode, source):
    """Decode bytes with OpenCV into an RGB(A)/gray ndarray, channels last."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    if fmt == "JPEG" or (fmt == "BMP" and buf[14:18] == b"\x0c\x00\x00\x00"):
        # JPEG has no alpha and is 8-bit: let libjpeg convert (CMYK, YCCK) and
        # apply the EXIF orientation, which IMREAD_UNCHANGED would ignore.
        # OS/2 bitmaps (12-byte core header) have no alpha either, and OpenCV
        # reads their colours only when asked for colour: IMREAD_UNCHANGED
        # gives them as gray.
        flags = cv2.IMREAD_GRAYSCALE if mode == "gray" else cv2.IMREAD_COLOR
    else:
        flags = cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(arr, flags)
    except cv2.error as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "decoder error"
        raise InputError(f"cannot decode image: {msg}", source=source) from None
    if img is None or img.size == 0:
        what = fmt or "unknown format"
        raise InputError(
            f"cannot decode image ({what}): corrupt data or not an image file",
            source=source,
        )
    if img.ndim == 3:
        c = img.shape[2]
        if c == 1:
            img = img[:, :, 0]
        elif c == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        elif c == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
        else:
            raise InputError(f"unsupported number of channels: {c}", source=source)
    return img


def _to_unit_float(img, *, source):
    """Scale an integer or float image to float32 in [0, 1]."""
    kind = img.dtype.kind
    if img.dtype == np.uint8:
        return img.astype(np.float32) * np.float32(1 / 255)
    if img.dtype == np.uint16:
        return img.astype(np.float32) * np.float32(1 / 65535)
    if kind == "b":
        return img.astype(np.float32)
    if kind == "f":
        out = img.astype(np.float32, copy=False)
        if not np.isfinite(out).all():
            raise InputError("image contains NaN or infinite values", source=source)
        lo, hi = float(out.min()), float(out.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise InputError(
                f"float image values must lie in [0, 1]; got [{lo:.4g}, {hi:.4g}]. "
                "Divide by the maximum value (e.g. 255) first",
                source=source,
            )
        return np.clip(out, 0, 1)
    if kind in "iu":
        info = np.iinfo(img.dtype)
        if img.min() < 0:
            raise InputError(
                f"integer image of dtype {img.dtype} has negative values", source=source
            )
        return (img.astype(np.float64) / info.max).astype(np.float32)
    raise InputError(f"unsupported image dtype {img.dtype}", source=source)


def validate_image_array(img, *, source):
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise InputError(
            f"image array must have shape (H, W) or (H, W, C) with C in 1, 3, 4; "
            f"got {img.shape}",
            source=source,
        )
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"empty image of shape {img.shape}", source=source)
    return img


def _composite_and_convert(img, *, mode):
    """Composite alpha on white and convert float [0, 1] data to ``mode``."""
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[:, :, 3:4]
        img = img[:, :, :3] * alpha + (1.0 - alpha)
    if mode == "gray" and img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    elif mode == "rgb" and img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img, dtype=np.float32)


def _resize(img, size, *, resize, pad_value):
    out_h, out_w = size
    h, w = img.shape[:2]
    if (h, w) == (out_h, out_w):
        return img
    if resize == "exact":
        th, tw = out_h, out_w
    else:
        scale = min(out_h / h, out_w / w)
        th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    # area averaging where shrinking aliases (by 2x or more in both
    # directions); below that, bilinear samples every pixel anyway and
    # OpenCV's area path for fractional ratios costs several times more
    interp = cv2.INTER_AREA if th * 2 <= h and tw * 2 <= w else cv2.INTER_LINEAR
    res = cv2.resize(img, (tw, th), interpolation=interp)
    if img.ndim == 3 and res.ndim == 2:
        res = res[:, :, None]
    if resize == "exact":
        return res
    canvas = np.full((out_h, out_w) + img.shape[2:], pad_value, dtype=img.dtype)
    top, left = (out_h - th) // 2, (out_w - tw) // 2
    canvas[top : top + th, left : left + tw] = res
    return canvas


def read_image_stack(stack, *, size, resize="exact", pad_value=0.0):
    """A decoded stack resized at once, equal to :func:`read_image` item by item.

    ``read_image(stack[i], mode=..., size=size, resize=resize)`` for every
    ``i`` (float32 in [0, 1], the stack's own channels kept), bit for bit:
    the stack is checked and scaled in one vectorised pass and each image
    goes straight to the same ``cv2.resize`` call, without ``read_image``'s
    per-item checks and conversions (most of its cost on small images).
    Packing images into the channels of one ``cv2.resize`` call was tried:
    OpenCV's SIMD paths then round differently (1 ulp) and its area
    interpolation takes at most 4 channels.

    Parameters
    ----------
    stack : ndarray of shape (n, H, W, C)
        uint8 or uint16 (scaled by their maximum), bool, or float in [0, 1].
    size : tuple of int (height, width)
        Output size.
    resize : {"exact", "pad"}, default="exact"
        As in :func:`read_image`.
    pad_value : float, default=0.0
        Fill value in [0, 1] for ``resize="pad"``.

    Returns
    -------
    images : ndarray of float32, shape (n, height, width, C)

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
    >>> out = read_image_stack(stack, size=(8, 8))
    >>> out.shape, bool(np.array_equal(out[1, :, :, 0], read_image(stack[1, :, :, 0],
    ...                                                   size=(8, 8))))
    ((2, 8, 8, 1), True)
    """
    stack = np.asarray(stack)
    if stack.ndim != 4:
        raise InputError(f"expected a stack of shape (n, H, W, C); got {stack.shape}")
    unit = _to_unit_float(stack, source="image stack")  # one vectorised pass
    out_h, out_w = check_pair(size, "size", high=1 << 15)
    out = np.empty((len(stack), out_h, out_w, stack.shape[3]), dtype=np.float32)
    flat = out[..., 0] if stack.shape[3] == 1 else out
    for i, image in enumerate(unit[..., 0] if stack.shape[3] == 1 else unit):
        flat[i] = _resize(image, (out_h, out_w), resize=resize, pad_value=pad_value)
    return out


def _check_pixels(h, w, *, max_pixels, min_size, source, claimed=False):
    if max_pixels is not None and h * w > max_pixels:
        verb = "header claims" if claimed else "image has"
        raise InputError(
            f"{verb} {w}x{h} pixels ({h * w:,}), over max_pixels={max_pixels:,} "
            "(decompression-bomb guard); raise max_pixels if this image is expected",
            source=source,
        )
    if min_size is not None and (h < min_size[0] or w < min_size[1]):
        raise InputError(
            f"image is {w}x{h} pixels, smaller than the minimum "
            f"{min_size[1]}x{min_size[0]} (width x height); resize it (size= in "
            "readers, image_size= in extractors)",
            source=source,
        )


def read_image(
    item,
    *,
    mode="gray",
    size=None,
    resize="exact",
    dtype="float32",
    max_pixels=DEFAULT_MAX_PIXELS,
    min_size=None,
    pad_value=0.0,
    max_file_bytes=DEFAULT_MAX_FILE_BYTES,
):
    """Read one image from a path, raw bytes or an array.

    Parameters
    ----------
    item : str, path-like, bytes or ndarray
        A file path (any Unicode name), the encoded file's bytes, or a decoded
        array of shape (H, W) or (H, W, C), C in {1, 3, 4}, in RGB(A) order.
        Integer arrays are scaled by their dtype's maximum; float arrays must
        already lie in [0, 1].
    mode : {"gray", "rgb"}, default="gray"
        Output colour mode. Gray uses ITU-R BT.601 luma, as OpenCV and Pillow.
    size : tuple of int (height, width), default=None
        Output size; ``None`` keeps the decoded size.
    resize : {"exact", "pad"}, default="exact"
        ``"exact"`` stretches to ``size``; ``"pad"`` fits the image inside
        ``size`` keeping its aspect ratio and pads the rest with ``pad_value``.
    dtype : {"float32", "uint8"}, default="float32"
        float32 in [0, 1], or uint8 in [0, 255].
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Refuse images whose width x height exceeds this, read from the header
        before any pixel is decoded (decompression bombs): every format OpenCV
        decodes (JPEG, PNG, GIF, BMP incl. OS/2, WebP, TIFF/BigTIFF, PNM, PAM,
        PFM, Radiance HDR, Sun raster, JPEG 2000, AVIF) has its size read
        first, a header without a readable size is refused undecoded, and a
        file of no known format is never handed to a decoder. ``None``
        disables the size check (the format must still be known).
    min_size : tuple of int (height, width), default=None
        Refuse images smaller than this (checked before resizing).
    pad_value : float, default=0.0
        Fill value in [0, 1] for ``resize="pad"``.
    max_file_bytes : int or None, default=DEFAULT_MAX_FILE_BYTES
        Refuse files larger than this (256 MiB by default), from their size
        before reading and by never reading more than this; ``None`` reads
        files of any size.

    Returns
    -------
    image : ndarray of shape (H, W) or (H, W, 3)
        The decoded image. Alpha is composited on white; EXIF orientation of
        JPEG files is applied; 16-bit data is scaled to [0, 1].

    Raises
    ------
    InputError
        The item cannot be used (missing file, directory, empty or truncated
        file, not an image, too many pixels, NaN values, ...). The message names
        the source and the reason; a refusal by a limit names the limit.

    Examples
    --------
    >>> import numpy as np
    >>> img = read_image(np.zeros((4, 6, 3), dtype=np.uint8), size=(2, 3))
    >>> img.shape, img.dtype
    ((2, 3), dtype('float32'))
    """
    source = item_source(item)
    options = dict(
        mode=mode,
        size=size,
        resize=resize,
        dtype=dtype,
        max_pixels=max_pixels,
        min_size=min_size,
        pad_value=pad_value,
    )
    if isinstance(item, np.ndarray):
        img = validate_image_array(item, source=source)
        return _finish(img, source=source, **options)
    if isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)):
        buf = read_source_bytes(item, kind="image file", max_file_bytes=max_file_bytes)
        return decode_image_bytes(buf, source=source, **options)
    raise InputError(
        f"unsupported item type {type(item).__name__}; expected a path, bytes "
        "or an ndarray",
        source=source,
    )


def decode_image_bytes(
    buf,
    *,
    source,
    mode="gray",
    size=None,
    resize="exact",
    dtype="float32",
    max_pixels=DEFAULT_MAX_PIXELS,
    min_size=None,
    pad_value=0.0,
):
    """:func:`read_image` of bytes already read from ``source``.

    The same checks (signature, header size within ``max_pixels``,
    truncation) and the same result, with errors naming ``source``: for a
    reader that reads a file's bytes itself (the GPU decoder) and must not
    read the file twice.
    """
    fmt = sniff_image_format(buf)
    check_image_header(buf, fmt, max_pixels=max_pixels, source=source)
    img = _decode(buf, fmt=fmt, mode=mode, source=source)
    return _finish(
        img,
        source=source,
        mode=mode,
        size=size,
        resize=resize,
        dtype=dtype,
        max_pixels=max_pixels,
        min_size=min_size,
        pad_value=pad_value,
    )


def _finish(img, *, source, mode, size, resize, dtype, max_pixels, min_size, pad_value):
    """A decoded (or given) image checked, converted to ``mode``/``dtype``, resized."""
    _check_pixels(
        *img.shape[:2], max_pixels=max_pixels, min_size=min_size, source=source
    )
    uint8_in = img.dtype == np.uint8
    if uint8_in and dtype == "uint8" and (img.ndim == 2 or img.shape[2] == 3):
        # Fast path: no float round trip for the common 8-bit case.
        if mode == "gray" and img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        elif mode == "rgb" and img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        if size is not None:
            img = _resize(img, size, resize=resize, pad_value=round(pad_value * 255))
        return np.ascontiguousarray(img)

    img = _composite_and_convert(_to_unit_float(img, source=source), mode=mode)
    if size is not None:
        img = _resize(img, size, resize=resize, pad_value=pad_value)
    if dtype == "uint8":
        return np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)
    return img


def _looks_like_text(buf):
    head = buf[:512]
    if not head:
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable / len(head) > 0.95


@fill_doc
class ImageReader(CheckedStateMixin, TransformerMixin, BaseEstimator):
    """Decode a column of images into arrays, in parallel, row-aligned.

    Parameters
    ----------
    mode : {"gray", "rgb"}, default="gray"
        Output colour mode.
    size : tuple of int (height, width), default=None
        Resize every image to this size (``None`` keeps decoded sizes).
    resize : {"exact", "pad"}, default="exact"
        Stretch to ``size``, or fit inside it keeping the aspect ratio and pad.
    dtype : {"float32", "uint8"}, default="float32"
        Output dtype: float32 in [0, 1] or uint8.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Decompression-bomb guard, checked on the header before decoding (see
        :func:`read_image`).
    min_size : tuple of int (height, width), default=None
        Refuse images smaller than this.
    pad_value : float, default=0.0
        Fill value in [0, 1] used by ``resize="pad"``.
    max_file_bytes : int or None, default=DEFAULT_MAX_FILE_BYTES
        Largest file read, in bytes (256 MiB by default): a larger file is
        refused from its size, without being read. ``None`` disables.
    %(on_error_items)s
    n_jobs : int, default=None
        Number of threads decoding in parallel (OpenCV releases the GIL).
    verbose : int, default=0
        Show a progress bar when > 0.

    Attributes
    ----------
    n_features_in_ : int
        Always 1: one column of items.

    See Also
    --------
    read_image : Read a single image.
    AudioReader : The same for audio clips.

    Examples
    --------
    >>> import numpy as np
    >>> reader = ImageReader(size=(8, 8))
    >>> out = reader.fit_transform([np.ones((16, 16)), None])
    >>> out[0].shape, out[1] is None
    ((8, 8), True)
    """

    _parameter_constraints = {
        "mode": [StrOptions({"gray", "rgb"})],
        "size": [tuple, list, None],
        "resize": [StrOptions({"exact", "pad"})],
        "dtype": [StrOptions({"float32", "uint8"})],
        "max_pixels": [Interval(Integral, 1, None, closed="left"), None],
        "min_size": [tuple, list, None],
        "pad_value": [Interval(Real, 0, 1, closed="both")],
        "max_file_bytes": [Interval(Integral, 1, None, closed="left"), None],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        mode="gray",
        size=None,
        resize="exact",
        dtype="float32",
        max_pixels=DEFAULT_MAX_PIXELS,
        min_size=None,
        pad_value=0.0,
        max_file_bytes=DEFAULT_MAX_FILE_BYTES,
        on_error="raise",
        n_jobs=None,
        verbose=0,
    ):
        self.mode = mode
        self.size = size
        self.resize = resize
        self.dtype = dtype
        self.max_pixels = max_pixels
        self.min_size = min_size
        self.pad_value = pad_value
        self.max_file_bytes = max_file_bytes
        self.on_error = on_error
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Validate the parameters; readers learn nothing from data.

        Parameters
        ----------
        X : column of items, default=None
            Ignored.
        y : None
            Ignored.

        Returns
        -------
        self : ImageReader
            This reader.
        """
        # the pairs' values, which _parameter_constraints cannot check
        check_pair(self.size, "size", allow_none=True)
        check_pair(self.min_size, "min_size", allow_none=True)
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        """Decode each item.

        Parameters
        ----------
        X : list, 1-D array, Series or one-column DataFrame
            Paths, bytes, arrays or missing values (``None``/NaN); a numeric
            ndarray of 3 or more dimensions is read as a stack of images.

        Returns
        -------
        images : ndarray of object, shape (n_samples,)
            One decoded image per row; ``None`` where the item was missing
            (or bad, with ``on_error="missing"``).
        """
        if not hasattr(self, "n_features_in_"):
            self.fit()
        items = as_item_list(X, stack_ndim=3)
        opts = dict(
            mode=self.mode,
            size=None if self.size is None else tuple(self.size),
            resize=self.resize,
            dtype=self.dtype,
            max_pixels=self.max_pixels,
            min_size=None if self.min_size is None else tuple(self.min_size),
            pad_value=self.pad_value,
            max_file_bytes=self.max_file_bytes,
        )
        results, _ = map_items(
            lambda it: read_image(it, **opts),
            items,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            desc="reading images",
            on_error=self.on_error,
        )
        out = np.empty(len(results), dtype=object)
        out[:] = results
        return out

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [
            {"size": (16, 16)},
            {"mode": "rgb", "size": (12, 20), "resize": "pad", "dtype": "uint8"},
        ]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = False
        return with_item_tags(tags, modality="image", reads_files=True)
