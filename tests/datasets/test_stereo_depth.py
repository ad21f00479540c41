import numpy as np
import pytest
from skimage import data

from mmfeat.datasets import load_stereo_depth
from mmfeat.exceptions import ParameterError


@pytest.fixture(scope="module")
def stereo():
    return load_stereo_depth()


def test_load_stereo_depth_rows_aligned(stereo):
    frame = stereo.frame
    assert list(frame.columns) == ["image", "depth", "mask", "split", "y", "x"]
    assert len(frame) == 15  # 3 x 5 tiles of 128 in 500 x 741
    for i, row in frame.iterrows():
        assert row["image"].shape == (128, 128, 3) and row["image"].dtype == np.uint8
        assert row["depth"].shape == (128, 128) and row["depth"].dtype == np.float32
        assert row["mask"].shape == (128, 128) and row["mask"].dtype == np.uint8
        assert np.isfinite(row["depth"]).all() and row["depth"].min() >= 0
        y, x = row["y"], row["x"]
        np.testing.assert_array_equal(
            row["image"], stereo.scene.image[y : y + 128, x : x + 128]
        )
        np.testing.assert_array_equal(
            row["mask"], stereo.scene.mask[y : y + 128, x : x + 128]
        )
        assert stereo.images[i] is row["image"] and stereo.depths[i] is row["depth"]


def test_load_stereo_depth_scene_and_layers(stereo):
    scene = stereo.scene
    left, right, _ = data.stereo_motorcycle()
    np.testing.assert_array_equal(scene.image, left)
    np.testing.assert_array_equal(scene.image_right, right)
    assert scene.depth.shape == scene.mask.shape == scene.disparity_truth.shape
    assert np.isfinite(scene.depth).all()
    holes = scene.depth == 0
    assert 0 < holes.mean() < 0.3  # the matcher has holes, filled with 0
    known = np.isfinite(scene.disparity_truth)
    assert np.array_equal(scene.mask == 0, ~known)
    assert set(np.unique(scene.mask)) == {0, 1, 2, 3}
    q1, q2 = stereo.layer_thresholds
    truth = scene.disparity_truth[known]
    labels = scene.mask[known]
    assert (truth[labels == 1] < q1).all() and (truth[labels == 3] >= q2).all()
    shares = np.bincount(labels, minlength=4)[1:] / labels.size
    np.testing.assert_allclose(shares, 1 / 3, atol=0.02)
    # The estimate is sensor-like: close to the truth where both are known.
    both = known & ~holes
    err = np.abs(scene.depth[both] - scene.disparity_truth[both])
    assert np.median(err) < 1.5
    assert stereo.target_names.tolist() == ["far", "middle", "near"]


def test_load_stereo_depth_splits_disjoint(stereo):
    frame = stereo.frame
    assert set(frame["split"]) == {"train", "test"}
    covered = np.zeros(stereo.scene.mask.shape, dtype=int)
    for _, row in frame.iterrows():
        covered[row["y"] : row["y"] + 128, row["x"] : row["x"] + 128] += 1
        centre = row["x"] + 64
        assert (row["split"] == "train") == (centre < 741 / 2)
    assert covered.max() == 1
    for split in ("train", "test"):
        part = frame[frame["split"] == split]
        labels = np.concatenate([m.ravel() for m in part["mask"]])
        for layer in (1, 2, 3):
            assert np.mean(labels == layer) > 0.05, (split, layer)


def test_load_stereo_depth_deterministic_and_tile(stereo):
    again = load_stereo_depth(random_state=3)
    np.testing.assert_array_equal(again.scene.depth, stereo.scene.depth)
    small = load_stereo_depth(tile=(100, 247))
    assert len(small.frame) == 5 * 3
    assert all(m.shape == (100, 247) for m in small.masks)


@pytest.mark.parametrize("tile", [(128,), (4, 128), (128, 371), (128.0, 64)])
def test_load_stereo_depth_bad_tile(tile):
    with pytest.raises(ParameterError, match="tile"):
        load_stereo_depth(tile=tile)
