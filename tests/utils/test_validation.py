import numpy as np
import pytest

from mmfeat import ParameterError
from mmfeat.utils._validation import check_pair


@pytest.mark.parametrize(
    "value, want",
    [((32, 48), (32, 48)), ([1, 1], (1, 1)), ((np.int64(8), np.uint8(4)), (8, 4))],
)
def test_check_pair_returns_python_ints(value, want):
    got = check_pair(value, "image_size")
    assert got == want and all(type(v) is int for v in got)


@pytest.mark.parametrize(
    "value",
    [
        (0, 8),
        (8, -1),
        (8,),
        (8, 8, 8),
        (8.0, 8),
        (True, 8),
        (np.bool_(True), 8),
        "88",
        np.array([8, 8]),
        None,
        {8, 4},
    ],
)
def test_check_pair_refuses_with_one_message(value):
    with pytest.raises(
        ParameterError,
        match=r"^image_size must be a \(height, width\) pair of integers, each >= 1; "
        r"got ",
    ):
        check_pair(value, "image_size")


def test_check_pair_none_bounds_and_labels():
    assert check_pair(None, "size", allow_none=True) is None
    with pytest.raises(ParameterError, match=r"^size must be None or a \(height"):
        check_pair((0, 1), "size", allow_none=True)
    assert check_pair((3, 5), "cells", low=3, high=5) == (3, 5)
    with pytest.raises(
        ParameterError,
        match=r"cells must be a \(rows, cols\) pair of integers, each from 1 to 4; got "
        r"\(5, 1\)",
    ):
        check_pair((5, 1), "cells", high=4, labels=("rows", "cols"))


def test_check_pair_error_is_a_value_error():
    # code written against the hand-made checks it replaced keeps working
    with pytest.raises(ValueError):
        check_pair((0, 0), "min_size")


def test_check_pair_square_takes_one_side():
    assert check_pair(np.int32(7), "image_size", square=True) == (7, 7)
    assert check_pair((7, 9), "image_size", square=True) == (7, 9)
    with pytest.raises(
        ParameterError,
        match=r"image_size must be an integer \(the side of a square\) or a "
        r"\(height, width\) pair of integers, each from 1 to 8192; got 0",
    ):
        check_pair(0, "image_size", square=True, high=8192)
    with pytest.raises(ParameterError, match="got 7"):
        check_pair(7, "image_size")  # not without square=True
