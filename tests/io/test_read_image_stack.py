import numpy as np
import pytest

from mmfeat.exceptions import InputError
from mmfeat.io import read_image, read_image_stack


@pytest.mark.parametrize(
    "dtype, shape, size, resize",
    [
        (np.uint8, (50, 16, 16, 1), (32, 32), "exact"),  # enlarge: bilinear
        (np.float64, (40, 16, 16, 1), (32, 32), "exact"),
        (np.uint8, (30, 40, 30, 3), (13, 11), "exact"),  # shrink: area
        (np.uint8, (30, 40, 30, 3), (64, 64), "pad"),
        (np.float32, (10, 64, 64, 1), (16, 16), "pad"),
        (np.uint16, (10, 20, 20, 1), (7, 9), "exact"),
        (np.bool_, (10, 20, 20, 1), (10, 10), "exact"),
    ],
)
def test_equals_read_image_item_by_item(dtype, shape, size, resize):
    rng = np.random.default_rng(0)
    if dtype in (np.uint8, np.uint16):
        stack = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    elif dtype is np.bool_:
        stack = rng.random(shape) > 0.5
    else:
        stack = rng.random(shape).astype(dtype)
    out = read_image_stack(stack, size=size, resize=resize, pad_value=0.3)
    mode = "gray" if shape[3] == 1 else "rgb"
    ref = np.stack(
        [
            read_image(
                x[..., 0] if shape[3] == 1 else x,
                mode=mode,
                size=size,
                resize=resize,
                pad_value=0.3,
            )
            for x in stack
        ]
    ).reshape(out.shape)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref)


def test_refuses_values_read_image_refuses():
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        read_image_stack(np.full((2, 4, 4, 1), 2.0), size=(8, 8))
    with pytest.raises(InputError, match="stack of shape"):
        read_image_stack(np.zeros((4, 4)), size=(8, 8))
