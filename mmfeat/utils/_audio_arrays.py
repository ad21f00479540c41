"""Checked samples of an in-memory audio array (shared by readers and MFCC)."""

import numpy as np

from mmfeat.exceptions import InputError

__all__ = ["array_samples"]


def _samples_by_channel(y, *, source):
    """``y`` as a (n_samples, n_channels) view: 1-D, or librosa's 2-D layout."""
    if y.ndim == 2:
        return y.T
    if y.ndim == 1:
        return y[:, None]
    raise InputError(
        f"audio array must be 1-D (samples) or 2-D (channels, samples); got "
        f"shape {y.shape}",
        source=source,
    )


def _to_float(y, *, source, dtype):
    kind = y.dtype.kind
    if kind == "f":
        return y.astype(dtype, copy=False)
    if kind == "i":
        return (y / float(-np.iinfo(y.dtype).min)).astype(dtype)
    if kind == "u":
        info = np.iinfo(y.dtype)
        mid = (info.max + 1) / 2
        return ((y - mid) / mid).astype(dtype)
    if kind == "b":
        return y.astype(dtype)
    raise InputError(f"unsupported audio dtype {y.dtype}", source=source)


#: the largest sample magnitude accepted from an array: float32's, so a
#: float64 clip is refused where its float32 copy would have overflowed
_MAX_SAMPLE = float(np.finfo(np.float32).max)


def _check_samples(data, *, source):
    # min and max propagate NaN and show infinities and out-of-range values:
    # two passes without a mask for the common clean clip; the mask only
    # when they fail
    lo, hi = float(data.min()), float(data.max())
    if -_MAX_SAMPLE <= lo and hi <= _MAX_SAMPLE:
        return
    finite = np.isfinite(data).reshape(data.shape[0], -1).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InputError(
            f"audio contains NaN or infinite samples (first at sample {bad})",
            source=source,
        )
    big = (np.abs(data) > _MAX_SAMPLE).reshape(data.shape[0], -1).any(axis=1)
    raise InputError(
        f"audio samples exceed float32's range, {_MAX_SAMPLE:.4g} (first at "
        f"sample {int(np.flatnonzero(big)[0])})",
        source=source,
    )


def array_samples(item, *, mono=True, dtype=np.float32):
    """The checked samples of an audio array, as :func:`read_audio` takes them.

    ``item`` is a 1-D array or a 2-D (n_channels, n_samples) one; integer
    arrays are scaled to [-1, 1]. Returns a C-contiguous array of ``dtype``
    (1-D, or (n_channels, n_samples) with ``mono=False``), the input itself
    when it already is one (never written by mmfeat). ``dtype=np.float64``
    keeps a float64 clip's precision, which MFCC's float64 kernels use.

    Raises
    ------
    InputError
        Not 1-D or 2-D, no samples, a non-numeric dtype, or NaN or infinite
        samples (the first is named).
    """
    source = "array"
    data = _samples_by_channel(item, source=source)
    if data.size == 0:  # no samples, or no channels
        raise InputError("audio contains no samples", source=source)
    if data.dtype.kind == "f":
        _check_samples(data, source=source)  # before any cast
    data = _to_float(data, source=source, dtype=dtype)
    if mono:
        y = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=dtype)
    else:
        y = data.T
    return np.ascontiguousarray(y, dtype=dtype)
