import re

import numpy as np
import pytest

from mmfeat.datasets import load_usps
from mmfeat.exceptions import DataNotFoundError

TRAIN_COUNTS = [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
TEST_COUNTS = [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]


@pytest.fixture(scope="module")
def usps(data_home):
    return load_usps(data_home=data_home)


def test_load_usps_counts_match_source(usps):
    frame = usps.frame
    assert frame.shape == (9298, 3)
    assert list(frame.columns) == ["image", "digit", "split"]
    assert frame["split"].tolist() == ["train"] * 7291 + ["test"] * 2007
    counts = frame.groupby(["split", "digit"]).size()
    assert counts.loc["train"].tolist() == TRAIN_COUNTS
    assert counts.loc["test"].tolist() == TEST_COUNTS


def test_load_usps_images_float32_unit_range(usps):
    assert usps.images.shape == (9298, 16, 16)
    assert usps.images.dtype == np.float32
    assert usps.images.min() == 0.0 and usps.images.max() == 1.0
    assert usps.data.shape == (9298, 256)
    np.testing.assert_array_equal(usps.data, usps.images.reshape(9298, 256))


def test_load_usps_matches_npz(usps, data_home):
    with np.load(data_home / "usps" / "usps.npz") as npz:
        np.testing.assert_array_equal(usps.data[:7291], npz["X_train"])
        np.testing.assert_array_equal(usps.data[7291:], npz["X_test"])
        expected = np.concatenate([npz["y_train"], npz["y_test"]])
    np.testing.assert_array_equal(usps.target.to_numpy(), expected)


def test_load_usps_frame_image_cells(usps):
    cells = usps.frame["image"]
    assert cells.dtype == object
    for i in (0, 7290, 7291, 9297):
        assert cells[i].shape == (16, 16) and cells[i].dtype == np.float32
        np.testing.assert_array_equal(cells[i], usps.images[i])
    assert (usps.frame["digit"] == usps.target).all()
    assert usps.target_names.tolist() == list(range(10))
    assert "Hull" in usps.DESCR and "research" in usps.DESCR


def test_load_usps_missing_data_home(tmp_path):
    with pytest.raises(DataNotFoundError, match=re.escape(str(tmp_path / "usps"))):
        load_usps(data_home=tmp_path)
