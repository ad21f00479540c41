"""Loader for the Free Spoken Digit Dataset (FSDD)."""

import os
import re

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from mmfeat.datasets._base import _dataset_dir
from mmfeat.exceptions import DataNotFoundError, MmfeatError

__all__ = ["load_fsdd"]

FSDD_DESCR = """\
Free Spoken Digit Dataset (FSDD)
================================

Spoken digits 0-9 recorded by 6 English-speaking men (george, jackson, lucas,
nicolas, theo, yweweler): 10 digits x 6 speakers x 50 repetitions = 3,000
recordings, 300 per digit. WAV, PCM 16-bit, mono, 8,000 Hz, 0.14-2.28 s
(mean 0.44 s), trimmed to near-minimal leading and trailing silence.

File names are ``{digit}_{speaker}_{repetition}.wav``. Official split (upstream
README): repetitions 0-4 are test, 5-49 train, i.e. 2,700 train / 300 test
(270 / 30 per digit). The split is not speaker-independent: every speaker is in
both parts; hold out speakers for a speaker-independent protocol.

Source: github.com/Jakobovski/free-spoken-digit-dataset, commit
26eb9aaf76e81b692f806f9140c2d2777410d7a1 (2024-05-02, v1.0.10-27-g26eb9aa).

Citation: Z. Jackson, C. Souza, J. Flaks, Y. Pan, H. Nicolas, A. Thite,
"Jakobovski/free-spoken-digit-dataset", Zenodo (v1.0.8 is commonly cited as
doi:10.5281/zenodo.1342401).

License: Creative Commons Attribution-ShareAlike 4.0 International
(CC BY-SA 4.0).
"""

_FSDD_NAME = re.compile(r"^(\d)_(.+)_(\d+)\.wav$")

#: Repetitions below this number form the official test split.
_FSDD_N_TEST_REPETITIONS = 5


def _parse_fsdd_name(name):
    """Return ``(digit, speaker, repetition)`` from an FSDD file name."""
    match = _FSDD_NAME.match(name)
    if match is None:
        raise MmfeatError(
            f"unexpected file name {name!r} in the FSDD recordings folder: "
            "expected '{digit}_{speaker}_{repetition}.wav', e.g. '7_jackson_32.wav'"
        )
    digit, speaker, repetition = match.groups()
    return int(digit), speaker, int(repetition)


def _fsdd_records(recordings):
    """List the FSDD recordings in a folder, sorted by digit, speaker, repetition.

    Returns a list of ``(digit, speaker, repetition, absolute_path)`` tuples.
    """
    recordings = os.path.abspath(recordings)
    records = []
    with os.scandir(recordings) as entries:
        for entry in entries:
            if not entry.name.lower().endswith(".wav"):
                continue
            digit, speaker, repetition = _parse_fsdd_name(entry.name)
            path = os.path.join(recordings, entry.name)
            records.append((digit, speaker, repetition, path))
    records.sort()
    return records


def load_fsdd(*, data_home=None):
    """Load the Free Spoken Digit Dataset (spoken digits 0-9, 8 kHz WAV).

    Reads ``<data_home>/fsdd/recordings/*.wav``; the labels, speaker and
    repetition come from the file names. Audio is not decoded: the frame holds
    the paths, ready for an audio reader.

    =================  ===========================
    Recordings         3,000 (2,700 train, 300 test)
    Classes            10 digits, 300 recordings each
    Speakers           6, 500 recordings each
    Format             WAV, PCM 16-bit, mono, 8 kHz
    =================  ===========================

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that holds ``fsdd/``. ``None`` means the ``MMFEAT_DATA_HOME``
        environment variable, else ``~/mmfeat_data``. Use
        :func:`~mmfeat.datasets.fetch_fsdd` to download the data there.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        frame : pandas.DataFrame of shape (n_recordings, 5)
            Columns ``path`` (absolute path of the WAV file, str), ``digit``
            (int), ``speaker`` (str), ``repetition`` (int) and ``split``
            (``"train"`` or ``"test"``, the official split: repetitions 0-4
            are test). Rows are sorted by digit, speaker, repetition.
        target : pandas.Series of shape (n_recordings,)
            The digit, aligned with ``frame``.
        target_names : ndarray of shape (10,)
            The digits 0 to 9.
        DESCR : str
            Description: source, citation and license.

    Raises
    ------
    DataNotFoundError
        If ``<data_home>/fsdd/recordings`` does not exist or holds no WAV file.

    See Also
    --------
    fetch_fsdd : Download FSDD into the data home.
    load_av_digits : FSDD recordings paired with USPS images of the same digit.

    Notes
    -----
    The official split is not speaker-independent: every speaker appears in
    both parts. For a speaker-independent protocol, group by ``speaker``
    (e.g. with :class:`~sklearn.model_selection.LeaveOneGroupOut`).

    References
    ----------
    .. [1] Z. Jackson et al., "Jakobovski/free-spoken-digit-dataset", Zenodo,
       doi:10.5281/zenodo.1342401.

    Examples
    --------
    >>> from mmfeat.datasets import load_fsdd
    >>> fsdd = load_fsdd()  # doctest: +SKIP
    >>> fsdd.frame["split"].value_counts().to_dict()  # doctest: +SKIP
    {'train': 2700, 'test': 300}
    >>> fsdd.frame.loc[0, ["digit", "speaker", "repetition"]].tolist()  # doctest: +SKIP
    [0, 'george', 0]
    """
    folder = _dataset_dir("fsdd", data_home, required=("recordings",))
    recordings = folder / "recordings"
    records = _fsdd_records(recordings)
    if not records:
        raise DataNotFoundError(
            f"dataset 'fsdd' not found: {recordings} holds no .wav file. Run "
            "mmfeat.datasets.fetch_fsdd(), copy an existing fsdd/ folder into "
            f"{folder.parent}, or set MMFEAT_DATA_HOME to the folder that holds fsdd/."
        )
    digit, speaker, repetition, path = (list(col) for col in zip(*records, strict=True))
    repetition = np.asarray(repetition, dtype=np.int64)
    frame = pd.DataFrame(
        {
            "path": path,
            "digit": np.asarray(digit, dtype=np.int64),
            "speaker": speaker,
            "repetition": repetition,
            "split": np.where(repetition < _FSDD_N_TEST_REPETITIONS, "test", "train"),
        }
    )
    return Bunch(
        frame=frame,
        target=frame["digit"].copy(),
        target_names=np.arange(10),
        DESCR=FSDD_DESCR,
    )
