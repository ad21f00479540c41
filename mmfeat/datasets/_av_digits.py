"""Audio-visual digits: USPS images paired with FSDD recordings (AV-MNIST style)."""

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

from mmfeat.datasets._fsdd import FSDD_DESCR, load_fsdd
from mmfeat.datasets._usps import USPS_DESCR, load_usps
from mmfeat.exceptions import DataNotFoundError

__all__ = ["load_av_digits"]

AV_DIGITS_DESCR_HEAD = """\
Audio-visual digits (USPS images + FSDD recordings, in the manner of AV-MNIST)
=============================================================================

One record per USPS image (7,291 train + 2,007 test), each paired with a
Free Spoken Digit Dataset recording of the same digit from the same split
(train images get train recordings, test images get test recordings: FSDD's
official split, repetitions 0-4 test). Within a split and digit the
recordings are shuffled with the seeded random generator and assigned to the
images cyclically, so every recording is used about equally often (counts
differ by at most 1). The pairing is deterministic for a given random_state.

Unlike MultiBench / CentralNet "AV-MNIST", neither modality is degraded (no
PCA-truncated images, no noisy spectrograms): numbers obtained here are not
comparable to theirs. The pairing is not speaker-independent (FSDD's split is
not).

The two source datasets are described below.

"""


def _pair_cyclically(n_images, recordings, rng):
    """Assign ``n_images`` items to a shuffled cycle over ``recordings``.

    Returns an index array into ``recordings`` of length ``n_images``.
    """
    order = rng.permutation(len(recordings))
    return order[np.arange(n_images) % len(recordings)]


def load_av_digits(*, data_home=None, random_state=0):
    """Load audio-visual digits: each USPS image paired with an FSDD recording.

    Builds an AV-MNIST-style set from :func:`load_usps` and :func:`load_fsdd`:
    one record per USPS image, paired with a spoken recording of the same
    digit from the same split. Within each (split, digit) group the FSDD
    recordings are shuffled with ``random_state`` and handed out cyclically
    in USPS order, so each recording is reused evenly (use counts differ by
    at most 1) and no recording crosses the train/test boundary.

    =================  ===========================
    Records            9,298 (7,291 train, 2,007 test)
    Classes            10 digits
    Image              16x16 grey, float32 in [0, 1]
    Audio              WAV path, 8 kHz mono
    =================  ===========================

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that holds ``usps/`` and ``fsdd/``. ``None`` means the
        ``MMFEAT_DATA_HOME`` environment variable, else ``~/mmfeat_data``.
    random_state : int, RandomState instance or None, default=0
        Seeds the shuffling of the recordings. Pass an int for a
        reproducible pairing.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        images : ndarray of shape (9298, 16, 16), dtype float32
            The USPS images, in the frame's order.
        frame : pandas.DataFrame of shape (9298, 6)
            Columns ``image`` (object column, one 16x16 float32 array per
            cell), ``audio`` (absolute path of the paired WAV, str),
            ``digit`` (int), ``split`` (``"train"`` or ``"test"``),
            ``usps_index`` (row of the image in :func:`load_usps`'s frame,
            which lists train then test) and ``speaker`` (FSDD speaker of
            the recording). Rows follow USPS order.
        target : pandas.Series of shape (9298,)
            The digit, aligned with ``frame``.
        target_names : ndarray of shape (10,)
            The digits 0 to 9.
        DESCR : str
            Description of the pairing and of both sources (citations,
            licenses).

    Raises
    ------
    DataNotFoundError
        If USPS or FSDD is missing from the data home, or FSDD has no
        recording of some digit in some split.

    See Also
    --------
    load_usps : The image half.
    load_fsdd : The audio half.

    Notes
    -----
    With the complete data each train recording is used 2 to 5 times and
    each test recording 4 to 12 times (e.g. 1,194 train zeros share 270
    train recordings), so the audio modality carries less variety than the
    image one.

    References
    ----------
    .. [1] V. Vielzeuf, A. Lechervy, S. Pateux, F. Jurie, "CentralNet: a
       Multilayer Approach for Multimodal Fusion", ECCV Workshops, 2018
       (AV-MNIST).

    Examples
    --------
    >>> from mmfeat.datasets import load_av_digits
    >>> av = load_av_digits(random_state=0)  # doctest: +SKIP
    >>> av.frame.columns.tolist()  # doctest: +SKIP
    ['image', 'audio', 'digit', 'split', 'usps_index', 'speaker']
    >>> len(av.frame)  # doctest: +SKIP
    9298
    """
    rng = check_random_state(random_state)
    usps = load_usps(data_home=data_home)
    fsdd = load_fsdd(data_home=data_home).frame
    images = usps.frame
    audio = np.empty(len(images), dtype=object)
    speaker = np.empty(len(images), dtype=object)
    # Fixed group order (split, then digit) keeps the draws reproducible.
    for split in ("train", "test"):
        for digit in range(10):
            rows = np.flatnonzero(
                (images["split"].to_numpy() == split)
                & (images["digit"].to_numpy() == digit)
            )
            if len(rows) == 0:
                continue
            recs = fsdd[(fsdd["split"] == split) & (fsdd["digit"] == digit)]
            if len(recs) == 0:
                raise DataNotFoundError(
                    f"FSDD has no {split} recording of digit {digit} to pair with "
                    f"{len(rows)} USPS images: check the fsdd/recordings folder "
                    "(fetch_fsdd downloads the complete set)"
                )
            pick = _pair_cyclically(len(rows), recs, rng)
            audio[rows] = recs["path"].to_numpy()[pick]
            speaker[rows] = recs["speaker"].to_numpy()[pick]
    frame = pd.DataFrame(
        {
            "image": images["image"].to_numpy(),
            "audio": pd.Series(audio, dtype=str),
            "digit": images["digit"].to_numpy(),
            "split": images["split"].to_numpy(),
            "usps_index": np.arange(len(images), dtype=np.int64),
            "speaker": pd.Series(speaker, dtype=str),
        }
    )
    return Bunch(
        images=usps.images,
        frame=frame,
        target=frame["digit"].copy(),
        target_names=np.arange(10),
        DESCR=AV_DIGITS_DESCR_HEAD + USPS_DESCR + "\n" + FSDD_DESCR,
    )
