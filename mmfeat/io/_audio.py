"""Robust audio decoding: ``read_audio`` and the ``AudioReader`` transformer.

Decoding is libsndfile's (through ``soundfile``: WAV, FLAC, OGG/Vorbis and
more); resampling is ``scipy.signal.resample_poly``. Integer and float PCM of
any width come out as float32 in [-1, 1].
"""

import io
import math
import os
import re

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from sklearn.base import BaseEstimator, TransformerMixin

from mmfeat.exceptions import InputError
from mmfeat.utils._items import as_item_list, item_source, read_source_bytes
from mmfeat.utils._parallel import map_items
from mmfeat.utils._sklearn_compat import Integral, Interval, StrOptions, _fit_context

__all__ = ["read_audio", "AudioReader"]


def _riff_data_shortfall(buf):
    """Bytes missing from a RIFF/WAVE ``data`` chunk (0 when complete)."""
    if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        return 0
    pos = 12
    while pos + 8 <= len(buf):
        cid = buf[pos : pos + 4]
        size = int.from_bytes(buf[pos + 4 : pos + 8], "little")
        if cid == b"data":
            if size == 0xFFFFFFFF:  # streamed WAV with unknown length
                return 0
            return max(0, pos + 8 + size - len(buf))
        pos += 8 + size + (size & 1)
    return 0


def _decode(buf, *, source):
    shortfall = _riff_data_shortfall(buf)
    if shortfall:
        raise InputError(
            f"truncated WAV: the data chunk is {shortfall:,} bytes shorter than "
            "its header says",
            source=source,
        )
    try:
        with sf.SoundFile(io.BytesIO(buf)) as f:
            sr = f.samplerate
            data = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        # libsndfile names the in-memory buffer ("<_io.BytesIO object at
        # 0x...>"): drop it, so a report does not change from run to run
        detail = re.sub(r"Error opening <[^>]*>: ", "", str(exc))
        raise InputError(
            f"cannot decode audio: {detail} (supported: WAV, FLAC, OGG and the other "
            "formats of libsndfile)",
            source=source,
        ) from None
    return data, sr


def _array_to_float(y, *, source):
    if y.ndim == 2:
        # librosa's layout: (n_channels, n_samples)
        y = y.T
    elif y.ndim == 1:
        y = y[:, None]
    else:
        raise InputError(
            f"audio array must be 1-D (samples) or 2-D (channels, samples); got "
            f"shape {y.shape}",
            source=source,
        )
    kind = y.dtype.kind
    if kind == "f":
        return y.astype(np.float32, copy=False)
    if kind == "i":
        return (y / float(-np.iinfo(y.dtype).min)).astype(np.float32)
    if kind == "u":
        info = np.iinfo(y.dtype)
        mid = (info.max + 1) / 2
        return ((y - mid) / mid).astype(np.float32)
    if kind == "b":
        return y.astype(np.float32)
    raise InputError(f"unsupported audio dtype {y.dtype}", source=source)


def read_audio(item, *, sr=None, mono=True):
    """Read one audio clip from a path, raw bytes or an array.

    Parameters
    ----------
    item : str, path-like, bytes or ndarray
        A file path, the encoded file's bytes, or samples: a 1-D array or a
        2-D array of shape (n_channels, n_samples) (librosa's layout). Arrays
        are taken to be at ``sr`` already (or at 22,050 Hz when ``sr`` is None,
        as librosa assumes); integer arrays are scaled to [-1, 1].
    sr : int, default=None
        Target sample rate; ``None`` keeps the file's own rate.
    mono : bool, default=True
        Average the channels into one.

    Returns
    -------
    y : ndarray of float32, shape (n_samples,) or (n_channels, n_samples)
        The samples in [-1, 1] (float files may exceed it; they are not clipped).
    sr : int
        The sample rate of ``y``.

    Raises
    ------
    InputError
        Missing/empty/truncated file, not an audio file, no samples, or NaN or
        infinite samples. The message names the source and the reason.

    Examples
    --------
    >>> import numpy as np
    >>> y, sr = read_audio(np.zeros(800, dtype=np.int16), sr=8000)
    >>> y.dtype, y.shape, sr
    (dtype('float32'), (800,), 8000)
    """
    source = item_source(item)
    if isinstance(item, np.ndarray):
        data = _array_to_float(item, source=source)
        orig_sr = sr if sr is not None else 22050
    elif isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)):
        buf = read_source_bytes(item, kind="audio file")
        data, orig_sr = _decode(buf, source=source)
    else:
        raise InputError(
            f"unsupported item type {type(item).__name__}; expected a path, bytes "
            "or an ndarray",
            source=source,
        )
    if data.shape[0] == 0:
        raise InputError("audio contains no samples", source=source)
    if not np.isfinite(data).all():
        bad = int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0])
        raise InputError(
            f"audio contains NaN or infinite samples (first at sample {bad})",
            source=source,
        )
    y = data.mean(axis=1) if mono else data.T
    if sr is not None and sr != orig_sr:
        g = math.gcd(int(sr), int(orig_sr))
        y = resample_poly(y, int(sr) // g, int(orig_sr) // g, axis=-1)
        orig_sr = sr
    return np.ascontiguousarray(y, dtype=np.float32), int(orig_sr)


class AudioReader(TransformerMixin, BaseEstimator):
    """Decode a column of audio clips into 1-D float32 arrays, row-aligned.

    Parameters
    ----------
    sr : int, default=None
        Resample every clip to this rate (``resample_poly``); ``None`` keeps
        each file's rate. Set it whenever files may differ in rate, since the
        features downstream assume one rate.
    mono : bool, default=True
        Average channels into one.
    on_error : {"raise", "missing"}, default="raise"
        ``"raise"``: the first bad item raises :class:`~mmfeat.exceptions.InputError`
        naming its row, source and reason. ``"missing"``: a bad item becomes
        ``None`` and is recorded in ``errors_``.
    n_jobs : int, default=None
        Threads decoding in parallel.
    verbose : int, default=0
        Show a progress bar when > 0.

    Attributes
    ----------
    errors_ : list of ItemError
        ``(row, source, reason)`` of every item the last ``transform`` turned
        into a missing value.
    n_features_in_ : int
        Always 1: one column of items.

    See Also
    --------
    read_audio : Read a single clip.
    ImageReader : The same for images.

    Examples
    --------
    >>> import numpy as np
    >>> clips = AudioReader(sr=8000).fit_transform([np.zeros(400), None])
    >>> clips[0].shape, clips[1] is None
    ((400,), True)
    """

    _mmfeat_input = "audio"

    _parameter_constraints = {
        "sr": [Interval(Integral, 1, None, closed="left"), None],
        "mono": ["boolean"],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(self, *, sr=None, mono=True, on_error="raise", n_jobs=None, verbose=0):
        self.sr = sr
        self.mono = mono
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
        self : AudioReader
            This reader.
        """
        self.n_features_in_ = 1
        self.errors_ = []
        return self

    def transform(self, X):
        """Decode each item.

        Parameters
        ----------
        X : list, 1-D array, Series or one-column DataFrame
            Paths, bytes, arrays or missing values; a 2-D numeric array is read
            as a stack of equal-length clips (one per row).

        Returns
        -------
        clips : ndarray of object, shape (n_samples,)
            One 1-D float32 array per row (2-D when ``mono=False``); ``None``
            where the item was missing (or bad, with ``on_error="missing"``).
        """
        if not hasattr(self, "n_features_in_"):
            self.fit()
        items = as_item_list(X, stack_ndim=2)
        sr, mono = self.sr, self.mono
        results, self.errors_ = map_items(
            lambda it: read_audio(it, sr=sr, mono=mono)[0],
            items,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            desc="reading audio",
            on_error=self.on_error,
        )
        out = np.empty(len(results), dtype=object)
        out[:] = results
        return out

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [{"sr": 8000}, {"sr": 4000, "n_jobs": 2}]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = False
        return tags
