"""Reading masks and channel maps (depth, disparity, feature maps), checked.

Both are hostile until checked, as every item mmfeat reads: the file size is
bounded before it is read, an image header's size before it is decoded, a
``.npy`` header's shape and dtype before any data is read, and the values
(finite, integer labels) before anything reaches a kernel.
"""

import ast
import os

import cv2
import numpy as np

from mmfeat.exceptions import InputError
from mmfeat.io import DEFAULT_MAX_PIXELS, check_image_header, sniff_image_format
from mmfeat.utils._items import DEFAULT_MAX_FILE_BYTES, item_source, read_source_bytes

__all__ = [
    "MAX_CHANNELS",
    "MAX_LABEL",
    "encode_png",
    "read_channel_map",
    "read_mask",
]

#: The most channels one channel map may have.
MAX_CHANNELS = 1024
#: The largest label value a mask may hold (uint16 PNGs hold up to 65535).
MAX_LABEL = 65535

_NPY_MAGIC = b"\x93NUMPY"


def _npy_header(buf, *, source):
    """``(shape, dtype, fortran, offset)`` of a .npy buffer, checked, no data read."""
    if len(buf) < 10:
        raise InputError("truncated .npy file (no header)", source=source)
    major = buf[6]
    if major == 1:
        hlen, start = int.from_bytes(buf[8:10], "little"), 10
    elif major in (2, 3):
        hlen, start = int.from_bytes(buf[8:12], "little"), 12
    else:
        raise InputError(f"unsupported .npy format version {major}", source=source)
    if hlen > 65536 or start + hlen > len(buf):
        raise InputError(".npy header is truncated or too long", source=source)
    try:
        header = ast.literal_eval(buf[start : start + hlen].decode("latin1"))
        shape = tuple(int(s) for s in header["shape"])
        dtype = np.dtype(header["descr"])
        fortran = bool(header["fortran_order"])
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError):
        raise InputError("unreadable .npy header", source=source) from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise InputError(
            f".npy dtype {dtype} is not a plain numeric type (object or structured "
            "arrays are refused: they would need pickle)",
            source=source,
        )
    offset = start + hlen
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if any(s < 0 for s in shape) or len(buf) - offset != expected:
        raise InputError(
            f".npy header states shape {shape} of {dtype} ({expected} bytes) but "
            f"the file holds {len(buf) - offset} data bytes",
            source=source,
        )
    return shape, dtype, fortran, offset


def _check_map_shape(shape, *, source, max_pixels, what):
    if len(shape) not in (2, 3):
        raise InputError(
            f"{what} must have shape (H, W) or (H, W, C); got {tuple(shape)}",
            source=source,
        )
    h, w = int(shape[0]), int(shape[1])
    if h == 0 or w == 0:
        raise InputError(f"empty {what} of shape {tuple(shape)}", source=source)
    if max_pixels is not None and h * w > max_pixels:
        raise InputError(
            f"{what} of {h}x{w} pixels is over max_pixels={max_pixels:,}",
            source=source,
        )
    if len(shape) == 3 and not 1 <= shape[2] <= MAX_CHANNELS:
        raise InputError(
            f"{what} has {shape[2]} channels; between 1 and {MAX_CHANNELS} are "
            "accepted",
            source=source,
        )


def _decode_unchanged(buf, *, source, max_pixels):
    """Decode an image file keeping its stored values (no scaling, no colour)."""
    fmt = sniff_image_format(buf)
    check_image_header(buf, fmt, max_pixels=max_pixels, source=source)
    try:
        img = cv2.imdecode(np.frombuffer(buf, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise InputError(f"cannot decode image ({fmt})", source=source)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    return img, fmt


def _read_npy(buf, *, source, max_pixels, what):
    shape, dtype, fortran, offset = _npy_header(buf, source=source)
    _check_map_shape(shape, source=source, max_pixels=max_pixels, what=what)
    arr = np.frombuffer(buf, dtype=dtype, count=int(np.prod(shape)), offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C")


def _as_array(item, *, source, max_pixels, max_file_bytes, what):
    """The item's raw values as an ndarray, and the image format (or None)."""
    if isinstance(item, np.ndarray):
        return item, None
    if not isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)):
        raise InputError(
            f"unsupported {what} item type {type(item).__name__}; expected a path, "
            "bytes or an ndarray",
            source=source,
        )
    buf = read_source_bytes(item, kind=f"{what} file", max_file_bytes=max_file_bytes)
    if buf.startswith(_NPY_MAGIC):
        return _read_npy(buf, source=source, max_pixels=max_pixels, what=what), "NPY"
    return _decode_unchanged(buf, source=source, max_pixels=max_pixels)


def read_channel_map(
    item,
    *,
    source=None,
    max_pixels=DEFAULT_MAX_PIXELS,
    max_file_bytes=DEFAULT_MAX_FILE_BYTES,
):
    """Read one aligned channel map (depth, disparity, any feature map).

    Parameters
    ----------
    item : ndarray, str, path-like or bytes
        An array of shape (H, W) or (H, W, C) of any finite numbers, a
        ``.npy`` file (read without pickle; its header is checked before any
        data is read), or an image file (PNG, TIFF, ... decoded with its stored
        values: a 16-bit depth PNG keeps its units).
    source : str, default=None
        Where the item comes from, for messages; default: the path, or
        ``"array"`` / ``"bytes"``.
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Refuse maps with more pixels than this (read from the header).
    max_file_bytes : int or None, default=DEFAULT_MAX_FILE_BYTES
        Refuse larger files without reading them.

    Returns
    -------
    values : ndarray of shape (H, W, C), float32
        C-contiguous.

    Raises
    ------
    InputError
        Unreadable or oversized file, wrong number of dimensions, no pixels,
        too many channels, a non-numeric dtype, or NaN / infinite values (a
        depth sensor's "no reading" must be a value the user chose, not NaN).

    Examples
    --------
    >>> import numpy as np
    >>> read_channel_map(np.ones((4, 5))).shape
    (4, 5, 1)
    """
    source = item_source(item) if source is None else source
    arr, _ = _as_array(
        item,
        source=source,
        max_pixels=max_pixels,
        max_file_bytes=max_file_bytes,
        what="channel map",
    )
    if arr.dtype.kind not in "biuf":
        raise InputError(
            f"channel map of dtype {arr.dtype} is not numeric", source=source
        )
    _check_map_shape(
        arr.shape, source=source, max_pixels=max_pixels, what="channel map"
    )
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if out.ndim == 2:
        out = out[:, :, None]
    finite = np.isfinite(out)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        n_bad = int((~finite).sum())
        raise InputError(
            f"channel map has {n_bad:,} NaN or infinite values (first at row "
            f"{bad[0]}, column {bad[1]}, channel {bad[2]}); fill them with a value "
            "that means 'no reading' (e.g. 0) before segmenting",
            source=source,
        )
    if arr.dtype.kind == "f" and np.abs(out).max() > 1e30:
        raise InputError("channel map values exceed 1e30 in magnitude", source=source)
    return out


def read_mask(
    item,
    *,
    source=None,
    max_pixels=DEFAULT_MAX_PIXELS,
    max_file_bytes=DEFAULT_MAX_FILE_BYTES,
):
    """Read one label mask: integers, 0 = unlabelled, labels >= 1 are classes.

    Parameters
    ----------
    item : ndarray, str, path-like or bytes
        An integer (or boolean, or integer-valued float) array of shape
        (H, W), a lossless single-channel image file (8- or 16-bit PNG, BMP,
        TIFF, PNM) or a ``.npy`` file. A colour file whose three channels are
        equal is taken as grey.
    source : str, default=None
        Where the item comes from, for messages.
    max_pixels, max_file_bytes : int or None
        Limits, as :func:`read_channel_map`.

    Returns
    -------
    mask : ndarray of shape (H, W), int32

    Raises
    ------
    InputError
        Unreadable file, a JPEG (lossy: its labels are not exact; threshold it
        and pass arrays, as :func:`~mmfeat.datasets.load_weizmann_horses`
        does), a colour mask, negative or non-integer values, labels over
        ``MAX_LABEL``.

    Examples
    --------
    >>> import numpy as np
    >>> read_mask(np.array([[0, 1], [2, 2]], dtype=np.uint8)).dtype
    dtype('int32')
    """
    source = item_source(item) if source is None else source
    arr, fmt = _as_array(
        item,
        source=source,
        max_pixels=max_pixels,
        max_file_bytes=max_file_bytes,
        what="mask",
    )
    if arr.dtype == object and arr.ndim == 2:
        # a slice of an object stack (np.array(list_of_masks, dtype=object))
        try:
            values = np.array(arr.tolist())
        except (ValueError, TypeError):
            values = arr
        if values.dtype.kind in "biuf":
            arr = values
    if fmt == "JPEG":
        raise InputError(
            "mask is a JPEG: lossy compression changes label values at every "
            "edge; threshold it yourself (e.g. labels = 1 + (grey > 127)) and pass "
            "arrays, or store masks as PNG",
            source=source,
        )
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        if (arr[:, :, 0] == arr[:, :, 1]).all() and (
            arr[:, :, 0] == arr[:, :, 2]
        ).all():
            arr = arr[:, :, 0]
        else:
            raise InputError(
                f"mask has {arr.shape[2]} differing colour channels; a mask must be "
                "one channel of integer labels (convert colour-coded masks to "
                "label indices first)",
                source=source,
            )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise InputError(f"mask must have shape (H, W); got {arr.shape}", source=source)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"empty mask of shape {arr.shape}", source=source)
    if max_pixels is not None and arr.size > max_pixels:
        raise InputError(
            f"mask of {arr.shape[0]}x{arr.shape[1]} pixels is over "
            f"max_pixels={max_pixels:,}",
            source=source,
        )
    if arr.dtype.kind == "b":
        return arr.astype(np.int32)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise InputError(
                "mask holds non-integer or non-finite values; labels must be "
                "integers (0 = unlabelled)",
                source=source,
            )
    elif arr.dtype.kind not in "iu":
        raise InputError(f"mask of dtype {arr.dtype} is not integer", source=source)
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi > MAX_LABEL:
        raise InputError(
            f"mask labels must lie in [0, {MAX_LABEL}]; got [{lo}, {hi}]",
            source=source,
        )
    return np.ascontiguousarray(arr, dtype=np.int32)


def encode_png(labels):
    """Encode a label image as PNG bytes (8-bit when labels fit, else 16-bit).

    What :func:`read_mask` reads back unchanged, and what ``mmfeat segment``
    writes for each row.

    Parameters
    ----------
    labels : array-like of shape (H, W)
        Integer labels in [0, 65535].

    Returns
    -------
    png : bytes

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 2], [2, 300]])
    >>> read_mask(encode_png(labels)).tolist()
    [[1, 2], [2, 300]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0 or labels.dtype.kind not in "biu":
        raise ValueError(
            f"labels must be a non-empty 2-D integer array; got {labels.dtype} "
            f"of shape {labels.shape}"
        )
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi > MAX_LABEL:
        raise ValueError(f"labels must lie in [0, {MAX_LABEL}]; got [{lo}, {hi}]")
    dtype = np.uint8 if hi <= 255 else np.uint16
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(labels, dtype=dtype))
    if not ok:  # pragma: no cover - OpenCV always encodes PNG
        raise ValueError("OpenCV could not encode the labels as PNG")
    return buf.tobytes()
