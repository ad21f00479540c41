"""AudioAugmenter: random time shift, gain and white noise, at fit time."""

import numpy as np

from mmfeat.io import read_audio
from mmfeat.preprocessing._augment import _BaseAugmenter, _check_range, _fill_doc
from mmfeat.utils._sklearn_compat import Integral, Interval, Real
from mmfeat.utils._tags import with_item_tags

__all__ = ["AudioAugmenter"]


@_fill_doc
class AudioAugmenter(_BaseAugmenter):
    """Add randomly shifted, rescaled and noisy copies of audio clips.

    A sampler in the sense of imbalanced-learn: ``fit_resample(X, y)``
    returns ``X`` and ``y`` with new rows appended, each an augmented copy of
    a source row with its source's label. Put it first in an
    :class:`imblearn.pipeline.Pipeline`: the copies are then made while the
    pipeline is fitted (on the training folds only, inside cross-validation)
    and never at ``predict`` or ``score`` time. A scikit-learn ``Pipeline``
    refuses it, since it has no ``transform``.

    Each clip is read as mono float32 at ``sr``
    (:func:`~mmfeat.io.read_audio`), then each copy goes through these
    stages, each with its own random draw:

    1. circular time shift (``np.roll``) by a whole number of samples drawn
       uniformly in ``[-max_shift, max_shift]`` times the clip length: what
       leaves one end comes back at the other, so the length and the energy
       are kept and no silence or click is added;
    2. gain: multiplied by ``10 ** (g / 20)``, ``g`` drawn uniformly in
       ``gain_db`` (decibels);
    3. white noise: Gaussian noise whose power is the (shifted, scaled)
       clip's mean power divided by ``10 ** (s / 10)``, ``s`` drawn
       uniformly in ``snr_db``, is added, so the copy's signal-to-noise ratio
       is ``s`` dB. A silent clip gets no noise.

    Parameters
    ----------
    %(column)s
    %(n_copies)s
    %(sampling_strategy)s
    sr : int, default=16000
        Sample rate (Hz) at which clips are read and copies are made. Files
        are resampled to it; array items are taken to be at this rate
        already. The copies are bare arrays at ``sr``, so the feature
        extractor downstream must use the same rate, e.g.
        ``MFCCExtractor(sr=sr)`` (its default is 22050).
    snr_db : (float, float), float or None, default=(10, 30)
        Range of the signal-to-noise ratio of the added white noise, in dB;
        one number fixes it; ``None`` disables the noise.
    max_shift : float, default=0.1
        Largest circular shift, as a fraction of the clip's length (0 to
        below 1); 0 disables it.
    gain_db : (float, float), float or None, default=(-6, 6)
        Range of the gain in dB; one number fixes it; ``None`` or 0 disables
        it. Samples are not clipped: a gain above 0 dB can take them past
        [-1, 1], which the feature extractors accept.
    %(random_state)s

    Attributes
    ----------
    %(attributes)s

    See Also
    --------
    ImageAugmenter : The same for images.
    imblearn.over_sampling.RandomOverSampler : Duplicates rows without
        changing them.

    Notes
    -----
    Copies are 1-D float32 arrays at ``sr``; the original items (paths,
    bytes, arrays) are returned unchanged beside them. A numeric stack
    ``(n, n_samples)`` of float clips gives a stack back; an integer stack
    gives a 1-D object array, since its copies are float32 in [-1, 1].

    A row whose item is missing (``None``/NaN) can be drawn as a source; its
    copy is missing too, while the other columns of a DataFrame (another
    modality) are still copied. An item that cannot be read raises
    :class:`~mmfeat.exceptions.InputError` naming its row and source.

    References
    ----------
    .. [1] T. Ko, V. Peddinti, D. Povey and S. Khudanpur, "Audio augmentation
       for speech recognition", Interspeech 2015.
    .. [2] J. Salamon and J. P. Bello, "Deep convolutional neural networks and
       data augmentation for environmental sound classification", IEEE Signal
       Processing Letters 24(3):279-283, 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from mmfeat.preprocessing import AudioAugmenter
    >>> t = np.arange(8000) / 8000
    >>> clips = [np.sin(2 * np.pi * 440 * t)] * 3
    >>> aug = AudioAugmenter(sr=8000, random_state=0)
    >>> X_res, y_res = aug.fit_resample(clips, [0, 0, 1])
    >>> len(X_res), X_res[3].dtype, X_res[3].shape, y_res.tolist()
    (4, dtype('float32'), (8000,), [0, 0, 1, 1])
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        return with_item_tags(tags, modality="audio", reads_files=True)

    _stack_ndim = 2

    _parameter_constraints = {
        **_BaseAugmenter._sampler_constraints,
        "sr": [Interval(Integral, 1, None, closed="left")],
        "snr_db": [tuple, list, Real, None],
        "max_shift": [Interval(Real, 0, 1, closed="left")],
        "gain_db": [tuple, list, Real, None],
    }

    def __init__(
        self,
        *,
        column=None,
        n_copies=None,
        sampling_strategy="auto",
        sr=16000,
        snr_db=(10, 30),
        max_shift=0.1,
        gain_db=(-6, 6),
        random_state=None,
    ):
        self.column = column
        self.n_copies = n_copies
        self.sampling_strategy = sampling_strategy
        self.sr = sr
        self.snr_db = snr_db
        self.max_shift = max_shift
        self.gain_db = gain_db
        self.random_state = random_state

    def _check_params(self):
        _check_range(self.snr_db, "snr_db")
        _check_range(self.gain_db, "gain_db")

    def _draw_params(self, rng, n):
        # Fixed draws whatever is enabled: switching a transform off does not
        # change the draws of the others.
        u = rng.uniform(0.0, 1.0, size=(n, 3))
        seeds = rng.randint(0, 2**31 - 1, size=n)
        gain = _check_range(self.gain_db, "gain_db")
        snr = _check_range(self.snr_db, "snr_db")
        return {
            "shift": (2.0 * u[:, 0] - 1.0) * float(self.max_shift),
            "gain_db": (
                np.zeros(n) if gain is None else gain[0] + (gain[1] - gain[0]) * u[:, 1]
            ),
            "snr_db": (
                np.full(n, np.nan)
                if snr is None
                else snr[0] + (snr[1] - snr[0]) * u[:, 2]
            ),
            "noise_seed": seeds,
        }

    def _read(self, item):
        return read_audio(item, sr=int(self.sr))[0]

    def _augment(self, clip, item, p):
        y = clip.astype(np.float64)
        k = int(np.rint(p["shift"] * len(y)))
        if k != 0:
            y = np.roll(y, k)
        gain = float(p["gain_db"])
        if gain != 0.0:
            y = y * 10.0 ** (gain / 20.0)
        snr = float(p["snr_db"])
        if not np.isnan(snr):
            power = float(np.mean(y**2))
            if power > 0.0:
                noise_rng = np.random.default_rng(int(p["noise_seed"]))
                scale = np.sqrt(power / 10.0 ** (snr / 10.0))
                y = y + scale * noise_rng.standard_normal(len(y))
        return np.ascontiguousarray(y, dtype=np.float32)

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [
            {"sr": 8000, "random_state": 0},
            {"sr": 8000, "n_copies": 1, "snr_db": None, "random_state": 0},
        ]
