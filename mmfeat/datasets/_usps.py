"""Loader for the USPS handwritten digits (16x16 grey images)."""

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from mmfeat.datasets._base import _dataset_dir
from mmfeat.datasets._common import _object_column
from mmfeat.exceptions import MmfeatError

__all__ = ["load_usps"]

USPS_DESCR = """\
USPS handwritten digits
=======================

Handwritten digits 0-9 scanned from envelopes of the U.S. Postal Service:
16x16 grey images, float32 values in [0, 1] (1 = ink), the standard split of
7,291 train and 2,007 test images (9,298 in all).

Train per digit 0..9: 1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644.
Test per digit 0..9: 359, 264, 198, 166, 200, 160, 170, 147, 166, 177.

Source: github.com/niuers/Learning-From-Data-A-Short-Course, commit
879a698b960e5867f7c2b11f8938fa89c3d21839, file data/usps.h5 (the widely
redistributed Kaggle "USPS dataset" packaging); read here from usps.npz, a
lossless NumPy conversion of the same arrays.

Citation: J. J. Hull, "A database for handwritten text recognition research",
IEEE Transactions on Pattern Analysis and Machine Intelligence 16(5):550-554,
1994.

License: none stated by the source; USPS is traditionally redistributed for
research use. Treat as research-only.
"""

_USPS_SHAPE = (16, 16)


def load_usps(*, data_home=None):
    """Load the USPS handwritten digits (16x16 grey images, standard split).

    Reads ``<data_home>/usps/usps.npz`` (keys ``X_train``, ``y_train``,
    ``X_test``, ``y_test``) with NumPy alone. Train images come first, then
    test images, each in the file's order.

    =================  ===========================
    Images             9,298 (7,291 train, 2,007 test)
    Classes            10 digits
    Size               16x16, grey, float32 in [0, 1]
    =================  ===========================

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that holds ``usps/``. ``None`` means the ``MMFEAT_DATA_HOME``
        environment variable, else ``~/mmfeat_data``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        images : ndarray of shape (9298, 16, 16), dtype float32
            The images, values in [0, 1] (1 = ink).
        data : ndarray of shape (9298, 256), dtype float32
            The images flattened row-major (a view of ``images``).
        frame : pandas.DataFrame of shape (9298, 3)
            Columns ``image`` (object column: each cell is one 16x16 float32
            array, a view of ``images``), ``digit`` (int) and ``split``
            (``"train"`` or ``"test"``).
        target : pandas.Series of shape (9298,)
            The digit, aligned with ``frame``.
        target_names : ndarray of shape (10,)
            The digits 0 to 9.
        DESCR : str
            Description: source, citation and license.

    Raises
    ------
    DataNotFoundError
        If ``<data_home>/usps/usps.npz`` does not exist.

    See Also
    --------
    load_digits_images : scikit-learn's bundled 8x8 digits, no data home needed.
    load_av_digits : USPS images paired with FSDD recordings of the same digit.

    References
    ----------
    .. [1] J. J. Hull, "A database for handwritten text recognition research",
       IEEE TPAMI 16(5):550-554, 1994.

    Examples
    --------
    >>> from mmfeat.datasets import load_usps
    >>> usps = load_usps()  # doctest: +SKIP
    >>> usps.images.shape, usps.images.dtype  # doctest: +SKIP
    ((9298, 16, 16), dtype('float32'))
    >>> usps.frame["split"].value_counts().to_dict()  # doctest: +SKIP
    {'train': 7291, 'test': 2007}
    """
    folder = _dataset_dir("usps", data_home, required=("usps.npz",))
    path = folder / "usps.npz"
    with np.load(path, allow_pickle=False) as npz:
        missing = [
            k for k in ("X_train", "y_train", "X_test", "y_test") if k not in npz
        ]
        if missing:
            raise MmfeatError(
                f"{path} lacks the arrays {missing}: expected keys X_train, "
                f"y_train, X_test, y_test; got {sorted(npz.files)}"
            )
        parts = [
            (npz["X_train"], npz["y_train"], "train"),
            (npz["X_test"], npz["y_test"], "test"),
        ]
    for X, y, split in parts:
        if X.ndim != 2 or X.shape[1] != 256 or len(X) != len(y):
            raise MmfeatError(
                f"{path}: X_{split} must have shape (n, 256) matching y_{split}; "
                f"got {X.shape} and {y.shape}"
            )
    data = np.concatenate([X for X, _, _ in parts]).astype(np.float32, copy=False)
    target = np.concatenate([y for _, y, _ in parts]).astype(np.int64, copy=False)
    split = np.concatenate([np.full(len(y), s) for _, y, s in parts])
    images = data.reshape(-1, *_USPS_SHAPE)
    frame = pd.DataFrame(
        {"image": _object_column(images), "digit": target, "split": split}
    )
    return Bunch(
        images=images,
        data=data,
        frame=frame,
        target=frame["digit"].copy(),
        target_names=np.arange(10),
        DESCR=USPS_DESCR,
    )
