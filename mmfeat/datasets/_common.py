"""Small helpers shared by the dataset loaders."""

import numpy as np

__all__ = ["_object_column"]


def _object_column(items):
    """Return a 1-D object ndarray whose elements are ``items``, unchanged.

    ``np.array(list_of_arrays, dtype=object)`` would build a 3-D array when
    the items share a shape; a frame column needs one cell per item.
    """
    column = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        column[i] = item
    return column
