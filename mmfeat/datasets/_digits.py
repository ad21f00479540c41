"""scikit-learn's bundled 8x8 digits as images: the data that needs no download."""

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.utils import Bunch

from mmfeat.datasets._common import _object_column

__all__ = ["load_digits_images"]

_DIGITS_DESCR_HEAD = """\
scikit-learn's bundled 8x8 digits, as mmfeat images
===================================================

1,797 handwritten digits 0-9 (about 180 per class), 8x8 grey images rescaled
here from the integer range 0-16 to float32 in [0, 1] (divided by 16). They
ship with scikit-learn, so this loader works on any fresh install without a
data home. The original description from scikit-learn follows.

"""


def load_digits_images(*, return_X_y=False):
    """Load scikit-learn's bundled 8x8 digits as float32 images in [0, 1].

    The embedded default dataset: it ships with scikit-learn
    (:func:`sklearn.datasets.load_digits`), so it needs no data home and no
    network. Pixel values 0-16 are divided by 16.

    =================  ===========================
    Images             1,797
    Classes            10 digits (about 180 each)
    Size               8x8, grey, float32 in [0, 1]
    =================  ===========================

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(X, y)``: the ``image`` column (a pandas Series
        whose cells are 8x8 arrays, ready for an image extractor) and the
        target, instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        images : ndarray of shape (1797, 8, 8), dtype float32
            The images, values in [0, 1].
        data : ndarray of shape (1797, 64), dtype float32
            The images flattened row-major (a view of ``images``).
        frame : pandas.DataFrame of shape (1797, 2)
            Columns ``image`` (object column: each cell is one 8x8 float32
            array, a view of ``images``) and ``digit`` (int).
        target : pandas.Series of shape (1797,)
            The digit, aligned with ``frame``.
        target_names : ndarray of shape (10,)
            The digits 0 to 9.
        DESCR : str
            Description, followed by scikit-learn's own.
    (X, y) : tuple of two pandas.Series
        If ``return_X_y`` is True: ``frame["image"]`` and ``target``.

    See Also
    --------
    load_usps : 9,298 16x16 USPS digits (needs the data home).

    Examples
    --------
    >>> from mmfeat.datasets import load_digits_images
    >>> digits = load_digits_images()
    >>> digits.images.shape, digits.images.dtype
    ((1797, 8, 8), dtype('float32'))
    >>> float(digits.images.max())
    1.0
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X[0].shape, int(y[0])
    ((8, 8), 0)
    """
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    target = digits.target.astype(np.int64)
    frame = pd.DataFrame({"image": _object_column(images), "digit": target})
    if return_X_y:
        return frame["image"], frame["digit"].copy()
    return Bunch(
        images=images,
        data=images.reshape(len(images), -1),
        frame=frame,
        target=frame["digit"].copy(),
        target_names=np.arange(10),
        DESCR=_DIGITS_DESCR_HEAD + digits.DESCR,
    )
