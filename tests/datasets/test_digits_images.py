import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from mmfeat.datasets import load_digits_images


def test_load_digits_images_float32_unit_range():
    digits = load_digits_images()
    assert digits.images.shape == (1797, 8, 8)
    assert digits.images.dtype == np.float32
    assert digits.images.min() == 0.0 and digits.images.max() == 1.0
    np.testing.assert_allclose(digits.images, load_digits().images / 16)
    assert digits.data.shape == (1797, 64)


def test_load_digits_images_frame_and_target():
    digits = load_digits_images()
    assert list(digits.frame.columns) == ["image", "digit"]
    assert digits.frame["image"].dtype == object
    np.testing.assert_array_equal(digits.frame.loc[5, "image"], digits.images[5])
    np.testing.assert_array_equal(digits.target.to_numpy(), load_digits().target)
    assert digits.target.value_counts().sort_index().tolist() == [
        178, 182, 177, 183, 181, 182, 181, 179, 174, 180,
    ]  # fmt: skip
    assert digits.target_names.tolist() == list(range(10))
    assert "scikit-learn" in digits.DESCR


def test_load_digits_images_return_X_y():
    X, y = load_digits_images(return_X_y=True)
    assert isinstance(X, pd.Series) and len(X) == len(y) == 1797
    assert X[0].shape == (8, 8) and X[0].dtype == np.float32
    assert y.tolist() == load_digits().target.tolist()


def test_load_digits_images_needs_no_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MMFEAT_DATA_HOME", str(tmp_path / "nowhere"))
    assert len(load_digits_images().frame) == 1797
