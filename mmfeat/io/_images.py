"""Robust image decoding: ``read_image`` and the ``ImageReader`` transformer.

Decoding is OpenCV's (``cv2.imdecode`` on the file's bytes, so unicode paths
and in-memory bytes work the same). Before anything is decoded the header is
read to refuse decompression bombs, and JPEG/PNG streams are checked for
truncation, which libjpeg would otherwise pad with grey silently.
"""

import os
import struct

import cv2
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.utils._items import as_item_list, item_source, read_source_bytes
from mmfeat.utils._parallel import map_items
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
)

__all__ = ["read_image", "ImageReader", "DEFAULT_MAX_PIXELS"]

#: Default limit on width x height (about 179 megapixels, Pillow's own bomb limit).
DEFAULT_MAX_PIXELS = 178_956_970

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"


def _sniff(buf):
    """Return the container format named by the magic bytes, or None."""
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
    if buf[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if buf[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"):
        return "PNM"
    return None


def _jpeg_size(buf):
    i, n = 2, len(buf)
    while i + 9 < n:
        if buf[i] != 0xFF:
            i += 1
            continue
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", buf[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", buf[i + 5 : i + 9])
            return h, w
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


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
            w, h = struct.unpack("<ii", buf[18:26])
            return abs(h), abs(w)
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
    except struct.error:
        return None
    return None


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
    if fmt == "JPEG":
        # JPEG has no alpha and is 8-bit: let libjpeg convert (CMYK, YCCK) and
        # apply the EXIF orientation, which IMREAD_UNCHANGED would ignore.
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


def _validate_array(img, *, source):
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
        before any pixel is decoded (decompression bombs). ``None`` disables.
    min_size : tuple of int (height, width), default=None
        Refuse images smaller than this (checked before resizing).
    pad_value : float, default=0.0
        Fill value in [0, 1] for ``resize="pad"``.

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
        the source and the reason.

    Examples
    --------
    >>> import numpy as np
    >>> img = read_image(np.zeros((4, 6, 3), dtype=np.uint8), size=(2, 3))
    >>> img.shape, img.dtype
    ((2, 3), dtype('float32'))
    """
    source = item_source(item)
    if isinstance(item, np.ndarray):
        img = _validate_array(item, source=source)
        _check_pixels(
            *img.shape[:2], max_pixels=max_pixels, min_size=min_size, source=source
        )
        uint8_in = img.dtype == np.uint8
    elif isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)):
        buf = read_source_bytes(item, kind="image file")
        fmt = _sniff(buf)
        hw = _header_size(buf, fmt)
        if hw is not None:
            _check_pixels(
                *hw, max_pixels=max_pixels, min_size=None, source=source, claimed=True
            )
        reason = _check_complete(buf, fmt)
        if reason:
            raise InputError(reason, source=source)
        if fmt is None and _looks_like_text(buf):
            raise InputError(
                "not an image: the file holds text, no image signature "
                "(JPEG, PNG, GIF, BMP, WebP, TIFF, PNM) found",
                source=source,
            )
        img = _decode(buf, fmt=fmt, mode=mode, source=source)
        _check_pixels(
            *img.shape[:2], max_pixels=max_pixels, min_size=min_size, source=source
        )
        uint8_in = img.dtype == np.uint8
    else:
        raise InputError(
            f"unsupported item type {type(item).__name__}; expected a path, bytes "
            "or an ndarray",
            source=source,
        )

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


class ImageReader(TransformerMixin, BaseEstimator):
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
        Decompression-bomb guard, checked on the header before decoding.
    min_size : tuple of int (height, width), default=None
        Refuse images smaller than this.
    pad_value : float, default=0.0
        Fill value in [0, 1] used by ``resize="pad"``.
    on_error : {"raise", "missing"}, default="raise"
        ``"raise"``: the first bad item raises :class:`~mmfeat.exceptions.InputError`
        naming its row, source and reason. ``"missing"``: a bad item becomes
        ``None`` (a missing value) and is recorded in ``errors_``.
    n_jobs : int, default=None
        Number of threads decoding in parallel (OpenCV releases the GIL).
    verbose : int, default=0
        Show a progress bar when > 0.

    Attributes
    ----------
    errors_ : list of ItemError
        ``(row, source, reason)`` of every item the last ``transform`` turned
        into a missing value; empty when all items were read.
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

    _mmfeat_input = "image"

    _parameter_constraints = {
        "mode": [StrOptions({"gray", "rgb"})],
        "size": [tuple, list, None],
        "resize": [StrOptions({"exact", "pad"})],
        "dtype": [StrOptions({"float32", "uint8"})],
        "max_pixels": [Interval(Integral, 1, None, closed="left"), None],
        "min_size": [tuple, list, None],
        "pad_value": [Interval(Real, 0, 1, closed="both")],
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
        _check_hw(self.size, "size")
        _check_hw(self.min_size, "min_size")
        self.n_features_in_ = 1
        self.errors_ = []
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
        )
        results, self.errors_ = map_items(
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
        return tags


def _check_hw(value, name):
    if value is None:
        return
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and v >= 1 for v in value)
    )
    if not ok:
        raise ParameterError(
            f"{name} must be None or a (height, width) pair of positive integers; "
            f"got {value!r}"
        )
