"""Robust audio decoding: ``read_audio`` and the ``AudioReader`` transformer.

Decoding is libsndfile's (through ``soundfile``: WAV, FLAC, OGG/Vorbis and
more); resampling is ``scipy.signal.resample_poly``. Integer and float PCM of
any width come out as float32 in [-1, 1].

A file's header is hostile until checked: its size is bounded before it is
read (``max_file_bytes``), its sample rate and channel count must be sane
(``SAMPLE_RATE_RANGE``, ``MAX_CHANNELS``) and its length within
``max_duration``, all before a sample is decoded; decoding then runs in blocks
and stops as soon as the clip passes ``max_duration``, whatever the header
said. Resampling uses a polyphase ratio of at most ``MAX_RESAMPLE_FACTOR``
terms, so its filter and its cost are bounded for any pair of rates.
"""

import io
import math
import os
import re
from fractions import Fraction
from numbers import Real

import numpy as np
import soundfile as sf
from sklearn.base import BaseEstimator, TransformerMixin

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.utils._audio_arrays import array_samples
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._items import as_item_list, item_source, read_source_bytes
from mmfeat.utils._parallel import map_items
from mmfeat.utils._sklearn_compat import Integral, Interval, StrOptions, _fit_context
from mmfeat.utils._state import CheckedStateMixin
from mmfeat.utils._tags import with_item_tags

__all__ = [
    "read_audio",
    "AudioReader",
    "DEFAULT_MAX_DURATION",
    "DEFAULT_MAX_AUDIO_FILE_BYTES",
    "SAMPLE_RATE_RANGE",
    "MAX_CHANNELS",
    "MAX_RESAMPLE_FACTOR",
]

#: Default longest clip read, in seconds (10 minutes: a whole song, or a long
#: recording that a feature pipeline should see cut into clips).
DEFAULT_MAX_DURATION = 600.0

#: Default cap on the size of one audio file (512 MiB: 10 minutes of 96 kHz
#: stereo 32-bit float PCM fits).
DEFAULT_MAX_AUDIO_FILE_BYTES = 512 * 2**20

#: Sample rates accepted in a file's header, in Hz: from low-rate sensors up to
#: studio 192 kHz. A rate outside is a corrupt or
#: hostile header (a 1 Hz WAV turns 40 KB into 320M samples at 16 kHz).
SAMPLE_RATE_RANGE = (1_000, 192_000)

#: Most channels a file may have (7.1 surround is 8, third-order ambisonics 16).
MAX_CHANNELS = 16

#: Largest up or down factor of the polyphase resampler. Rates whose exact
#: ratio needs larger terms (coprime rates, e.g. 191,999 Hz to 16 kHz) are
#: resampled at the nearest ratio with terms this small: the output rate is
#: then off by under 2e-5 relative (under 3e-7 for ratios near 1/3), far below
#: the clock error of sound cards (~5e-5), and the filter has at most
#: 20 * MAX_RESAMPLE_FACTOR + 1 taps.
MAX_RESAMPLE_FACTOR = 4096

_BLOCK_FRAMES = 1 << 16
_UNKNOWN_FRAMES = 1 << 62  # libsndfile gives SF_COUNT_MAX when it does not know


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


def _check_stream(sr, channels, frames, *, max_duration, source):
    """Refuse a header whose rate, channels or length is out of bounds."""
    lo, hi = SAMPLE_RATE_RANGE
    if not lo <= sr <= hi:
        raise InputError(
            f"sample rate {sr:,} Hz is outside the supported range {lo:,}-{hi:,} Hz "
            "(a corrupt or hostile header); the file is not decoded",
            source=source,
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise InputError(
            f"{channels:,} channels, outside the supported 1-{MAX_CHANNELS} "
            "(a corrupt or hostile header); the file is not decoded",
            source=source,
        )
    if frames >= _UNKNOWN_FRAMES:
        raise InputError(
            "the header gives no length (a stream of unknown duration), so it "
            "cannot be checked against max_duration; the file is not decoded",
            source=source,
        )
    if max_duration is not None and frames > max_duration * sr:
        raise InputError(
            f"audio is {frames / sr:,.1f} s long ({frames:,} frames at {sr:,} Hz) "
            f"by its header, over max_duration={max_duration:g} s; raise "
            "max_duration (None: no limit) if such clips are expected",
            source=source,
        )


def _read_blocks(f, *, mono, max_duration, source):
    """Decode ``f`` in blocks into (n_frames, n_out) float32, mixing to mono.

    Memory is the output plus one block, whatever the channel count; the read
    stops one frame past ``max_duration``, so a header that under-states the
    length cannot make it unbounded. Each block is checked for NaN/inf.
    """
    n_out = 1 if mono else f.channels
    sr = f.samplerate
    max_frames = None if max_duration is None else int(max_duration * sr)
    capacity = max(1, min(f.frames, _BLOCK_FRAMES * 16))
    if max_frames is not None:
        capacity = min(capacity, max_frames + 1)
    out = np.empty((capacity, n_out), dtype=np.float32)
    n = 0
    while True:
        want = _BLOCK_FRAMES
        if max_frames is not None:
            want = min(want, max_frames + 1 - n)
        block = f.read(want, dtype="float32", always_2d=True)
        k = block.shape[0]
        if k == 0:
            break
        if not np.isfinite(block).all():
            bad = n + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise InputError(
                f"audio contains NaN or infinite samples (first at sample {bad})",
                source=source,
            )
        if mono and block.shape[1] > 1:
            block = block.mean(axis=1, keepdims=True)
        if n + k > out.shape[0]:
            grow = max(n + k, 2 * out.shape[0])
            if max_frames is not None:
                grow = min(grow, max_frames + 1)
            bigger = np.empty((grow, n_out), dtype=np.float32)
            bigger[:n] = out[:n]
            out = bigger
        out[n : n + k] = block
        n += k
        if max_frames is not None and n > max_frames:
            raise InputError(
                f"audio decodes to more than max_duration={max_duration:g} s "
                f"although its header says {f.frames / sr:,.1f} s ({f.frames:,} "
                f"frames at {sr:,} Hz); decoding was stopped there",
                source=source,
            )
    return out[:n]


def _decode(buf, *, source, mono=False, max_duration=None):
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
            _check_stream(
                sr, f.channels, f.frames, max_duration=max_duration, source=source
            )
            data = _read_blocks(f, mono=mono, max_duration=max_duration, source=source)
    except InputError:
        raise
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


def _poly_factors(target, source):
    """Up/down factors of the resampler, both at most ``MAX_RESAMPLE_FACTOR``.

    The exact reduced ratio when its terms are small enough (every common
    pair of rates: 44,100 to 16,000 is 160/441), else the nearest ratio with
    small terms (best rational approximation), so the filter never grows with
    awkward rates (a prime rate made scipy design a 200M-tap filter). Ratios
    beyond ``MAX_RESAMPLE_FACTOR`` either way, reachable only with a target
    ``sr`` outside ``SAMPLE_RATE_RANGE``, become an integer factor.
    """
    g = math.gcd(target, source)
    up, down = target // g, source // g
    limit = MAX_RESAMPLE_FACTOR
    if max(up, down) <= limit:
        return up, down
    if target * limit < source:  # below 1/limit: an integer decimation
        return 1, round(source / target)
    if source * limit < target:  # above limit: an integer interpolation
        return round(target / source), 1
    if up < down:
        f = Fraction(target, source).limit_denominator(limit)
        return f.numerator, f.denominator
    f = Fraction(source, target).limit_denominator(limit)
    return f.denominator, f.numerator


def _check_max_duration(max_duration):
    ok = isinstance(max_duration, Real) and not isinstance(max_duration, bool)
    if max_duration is not None and not (ok and max_duration > 0):
        raise ParameterError(
            "max_duration must be None or a positive number of seconds; "
            f"got {max_duration!r}"
        )


def read_audio(
    item,
    *,
    sr=None,
    mono=True,
    max_duration=DEFAULT_MAX_DURATION,
    max_file_bytes=DEFAULT_MAX_AUDIO_FILE_BYTES,
):
    """Read one audio clip from a path, raw bytes or an array.

    Parameters
    ----------
    item : str, path-like, bytes or ndarray
        A file path, the encoded file's bytes, or samples: a 1-D array or a
        2-D array of shape (n_channels, n_samples) (librosa's layout). Arrays
        are taken to be at ``sr`` already (or at 22,050 Hz when ``sr`` is None,
        as librosa assumes); integer arrays are scaled to [-1, 1].
    sr : int, default=None
        Target sample rate; ``None`` keeps the file's own rate. Coprime rate
        pairs are resampled at the nearest ratio of factors up to
        ``MAX_RESAMPLE_FACTOR`` (output rate off by under 2e-5 relative).
    mono : bool, default=True
        Average the channels into one (block by block while decoding).
    max_duration : float or None, default=DEFAULT_MAX_DURATION
        Longest clip accepted, in seconds (600 by default): checked on the
        file's header before decoding and again while decoding, which stops
        past the limit. ``None`` accepts any length. Arrays are not limited.
    max_file_bytes : int or None, default=DEFAULT_MAX_AUDIO_FILE_BYTES
        Largest file read, in bytes (512 MiB by default), refused from its size
        before it is read. ``None`` disables.

    Returns
    -------
    y : ndarray of float32, shape (n_samples,) or (n_channels, n_samples)
        The samples in [-1, 1] (float files may exceed it; they are not clipped).
    sr : int
        The sample rate of ``y``.

    Raises
    ------
    InputError
        Missing/empty/truncated/too large file, not an audio file, a sample
        rate outside ``SAMPLE_RATE_RANGE``, more than ``MAX_CHANNELS`` channels,
        longer than ``max_duration``, no samples, or NaN or infinite samples.
        The message names the source, the reason and the limit.
    ParameterError
        ``max_duration`` is not a positive number or None.

    Examples
    --------
    >>> import numpy as np
    >>> y, sr = read_audio(np.zeros(800, dtype=np.int16), sr=8000)
    >>> y.dtype, y.shape, sr
    (dtype('float32'), (800,), 8000)
    """
    _check_max_duration(max_duration)
    if max_duration is not None and math.isinf(max_duration):
        max_duration = None
    source = item_source(item)
    if isinstance(item, np.ndarray):
        # arrays are at ``sr`` already: nothing to resample
        return array_samples(item, mono=mono), int(sr if sr is not None else 22050)
    if isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)):
        buf = read_source_bytes(item, kind="audio file", max_file_bytes=max_file_bytes)
        data, orig_sr = _decode(
            buf, source=source, mono=mono, max_duration=max_duration
        )
        del buf
    else:
        raise InputError(
            f"unsupported item type {type(item).__name__}; expected a path, bytes "
            "or an ndarray",
            source=source,
        )
    if data.shape[0] == 0:
        raise InputError("audio contains no samples", source=source)
    # (decoded files were checked for NaN and infinity block by block)
    if mono:
        y = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
    else:
        y = data.T
    if sr is not None and sr != orig_sr:
        up, down = _poly_factors(int(sr), int(orig_sr))
        # imported here: scipy.signal costs ~40 ms of every process's start
        from scipy.signal import resample_poly

        y = resample_poly(y, up, down, axis=-1)
        orig_sr = sr
    return np.ascontiguousarray(y, dtype=np.float32), int(orig_sr)


@fill_doc
class AudioReader(CheckedStateMixin, TransformerMixin, BaseEstimator):
    """Decode a column of audio clips into 1-D float32 arrays, row-aligned.

    Parameters
    ----------
    sr : int, default=None
        Resample every clip to this rate (``resample_poly``); ``None`` keeps
        each file's rate. Set it whenever files may differ in rate, since the
        features downstream assume one rate.
    mono : bool, default=True
        Average channels into one.
    max_duration : float or None, default=DEFAULT_MAX_DURATION
        Longest clip accepted, in seconds (600 by default), checked on the
        header before decoding and while decoding; ``None`` accepts any length.
        Files with a sample rate outside 1,000-192,000 Hz or more than 16
        channels are refused as well (see :func:`read_audio`).
    max_file_bytes : int or None, default=DEFAULT_MAX_AUDIO_FILE_BYTES
        Largest file read, in bytes (512 MiB by default); ``None`` disables.
    %(on_error_items)s
    n_jobs : int, default=None
        Threads decoding in parallel.
    verbose : int, default=0
        Show a progress bar when > 0.

    Attributes
    ----------
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

    _parameter_constraints = {
        "sr": [Interval(Integral, 1, None, closed="left"), None],
        "mono": ["boolean"],
        # (0, inf]: inf, as read_audio takes it, is no limit
        "max_duration": [Interval(Real, 0, None, closed="right"), None],
        "max_file_bytes": [Interval(Integral, 1, None, closed="left"), None],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        sr=None,
        mono=True,
        max_duration=DEFAULT_MAX_DURATION,
        max_file_bytes=DEFAULT_MAX_AUDIO_FILE_BYTES,
        on_error="raise",
        n_jobs=None,
        verbose=0,
    ):
        self.sr = sr
        self.mono = mono
        self.max_duration = max_duration
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
        self : AudioReader
            This reader.
        """
        self.n_features_in_ = 1
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
        opts = dict(
            sr=self.sr,
            mono=self.mono,
            max_duration=self.max_duration,
            max_file_bytes=self.max_file_bytes,
        )
        results, _ = map_items(
            lambda it: read_audio(it, **opts)[0],
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
        return with_item_tags(tags, modality="audio", reads_files=True)
