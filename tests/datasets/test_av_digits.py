import os
import re

import numpy as np
import pytest

from mmfeat.datasets import load_av_digits, load_fsdd, load_usps
from mmfeat.exceptions import DataNotFoundError


@pytest.fixture(scope="module")
def av(data_home):
    return load_av_digits(data_home=data_home, random_state=0)


@pytest.fixture(scope="module")
def fsdd(data_home):
    return load_fsdd(data_home=data_home).frame.set_index("path")


def test_load_av_digits_counts(av):
    frame = av.frame
    assert frame.shape == (9298, 6)
    assert list(frame.columns) == [
        "image", "audio", "digit", "split", "usps_index", "speaker",
    ]  # fmt: skip
    assert frame["split"].value_counts().to_dict() == {"train": 7291, "test": 2007}
    assert av.images.shape == (9298, 16, 16)
    assert (av.target == frame["digit"]).all()


def test_load_av_digits_pairs_same_digit_and_split(av, fsdd):
    frame = av.frame
    recs = fsdd.loc[frame["audio"]]
    assert (recs["digit"].to_numpy() == frame["digit"].to_numpy()).all()
    assert (recs["split"].to_numpy() == frame["split"].to_numpy()).all()
    assert (recs["speaker"].to_numpy() == frame["speaker"].to_numpy()).all()
    # no recording crosses the split; test recordings are repetitions 0-4
    train = set(frame.loc[frame["split"] == "train", "audio"])
    test = set(frame.loc[frame["split"] == "test", "audio"])
    assert not train & test
    assert (fsdd.loc[sorted(test), "repetition"] < 5).all()
    assert (fsdd.loc[sorted(train), "repetition"] >= 5).all()


def test_load_av_digits_images_follow_usps(av, data_home):
    usps = load_usps(data_home=data_home)
    frame = av.frame
    assert frame["usps_index"].tolist() == list(range(9298))
    assert (frame["digit"] == usps.target[frame["usps_index"]].to_numpy()).all()
    for i in (0, 4000, 9297):
        np.testing.assert_array_equal(frame.loc[i, "image"], usps.images[i])


def test_load_av_digits_reuses_recordings_evenly(av, fsdd):
    frame = av.frame
    for (split, digit), group in frame.groupby(["split", "digit"]):
        uses = group["audio"].value_counts()
        pool = fsdd[(fsdd["split"] == split) & (fsdd["digit"] == digit)]
        # every recording of the (split, digit) pool is used (more images than
        # recordings everywhere), and use counts differ by at most 1
        assert set(uses.index) == set(pool.index)
        assert uses.max() - uses.min() <= 1
    assert all(os.path.isabs(p) for p in frame["audio"])


def test_load_av_digits_deterministic(av, data_home):
    again = load_av_digits(data_home=data_home, random_state=0)
    assert again.frame["audio"].tolist() == av.frame["audio"].tolist()
    other = load_av_digits(data_home=data_home, random_state=1)
    changed = (other.frame["audio"] != av.frame["audio"]).mean()
    assert changed > 0.5
    rs = np.random.RandomState(1)
    assert (
        load_av_digits(data_home=data_home, random_state=rs).frame["audio"].tolist()
        == other.frame["audio"].tolist()
    )


def test_load_av_digits_descr_cites_both(av):
    assert "Hull" in av.DESCR and "CC BY-SA 4.0" in av.DESCR
    assert "AV-MNIST" in av.DESCR


def test_load_av_digits_missing_data_home(tmp_path):
    with pytest.raises(DataNotFoundError, match=re.escape(str(tmp_path / "usps"))):
        load_av_digits(data_home=tmp_path)


def test_load_av_digits_missing_fsdd(tmp_path, data_home):
    (tmp_path / "usps").symlink_to(data_home / "usps", target_is_directory=True)
    with pytest.raises(DataNotFoundError, match=re.escape(str(tmp_path / "fsdd"))):
        load_av_digits(data_home=tmp_path)


def test_load_av_digits_incomplete_fsdd(tmp_path, data_home):
    (tmp_path / "usps").symlink_to(data_home / "usps", target_is_directory=True)
    recordings = tmp_path / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    source = data_home / "fsdd" / "recordings"
    for name in ["0_theo_1.wav", "0_theo_20.wav"]:
        (recordings / name).symlink_to(source / name)
    with pytest.raises(
        DataNotFoundError, match="no train recording of digit 1 to pair with 1005"
    ):
        load_av_digits(data_home=tmp_path)
