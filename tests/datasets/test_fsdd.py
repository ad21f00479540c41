import os
import re

import numpy as np
import pytest
import soundfile as sf

from mmfeat.datasets import load_fsdd
from mmfeat.exceptions import DataNotFoundError, MmfeatError

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


@pytest.fixture(scope="module")
def fsdd(data_home):
    return load_fsdd(data_home=data_home)


def test_load_fsdd_counts_match_source(fsdd):
    frame = fsdd.frame
    assert frame.shape == (3000, 5)
    assert list(frame.columns) == ["path", "digit", "speaker", "repetition", "split"]
    assert frame["digit"].value_counts().sort_index().tolist() == [300] * 10
    assert frame["split"].value_counts().to_dict() == {"train": 2700, "test": 300}
    per_split = frame.groupby(["split", "digit"]).size()
    assert per_split.loc["test"].tolist() == [30] * 10
    assert per_split.loc["train"].tolist() == [270] * 10
    assert frame["speaker"].value_counts().to_dict() == dict.fromkeys(SPEAKERS, 500)
    assert sorted(frame["repetition"].unique()) == list(range(50))


def test_load_fsdd_split_is_official(fsdd):
    frame = fsdd.frame
    expected = np.where(frame["repetition"] < 5, "test", "train")
    assert (frame["split"].to_numpy() == expected).all()
    # every speaker is in both parts (the split is not speaker-independent)
    assert set(frame.loc[frame["split"] == "test", "speaker"]) == set(SPEAKERS)


def test_load_fsdd_sorted_and_paths_match_names(fsdd):
    frame = fsdd.frame
    keys = list(zip(frame["digit"], frame["speaker"], frame["repetition"], strict=True))
    assert keys == sorted(keys)
    assert frame.loc[0, ["digit", "speaker", "repetition"]].tolist() == [0, "george", 0]
    for row in frame.itertuples():
        assert os.path.isabs(row.path)
        name = f"{row.digit}_{row.speaker}_{row.repetition}.wav"
        assert os.path.basename(row.path) == name
    assert all(os.path.isfile(p) for p in frame["path"])


def test_load_fsdd_target_aligned(fsdd):
    assert (fsdd.target.to_numpy() == fsdd.frame["digit"].to_numpy()).all()
    assert fsdd.target_names.tolist() == list(range(10))
    assert "CC BY-SA 4.0" in fsdd.DESCR
    assert "26eb9aaf76e81b692f806f9140c2d2777410d7a1" in fsdd.DESCR


def test_load_fsdd_paths_are_readable_audio(fsdd):
    audio, sr = sf.read(fsdd.frame.loc[0, "path"])
    assert sr == 8000
    assert audio.ndim == 1 and audio.size > 0


def test_load_fsdd_missing_data_home(tmp_path):
    with pytest.raises(DataNotFoundError, match=re.escape(str(tmp_path / "fsdd"))):
        load_fsdd(data_home=tmp_path)


def test_load_fsdd_empty_recordings_folder(tmp_path):
    (tmp_path / "fsdd" / "recordings").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="holds no .wav file"):
        load_fsdd(data_home=tmp_path)


def test_load_fsdd_rejects_unexpected_file_name(tmp_path):
    recordings = tmp_path / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    (recordings / "0_george_0.wav").write_bytes(b"")
    (recordings / "hello.wav").write_bytes(b"")
    with pytest.raises(MmfeatError, match="unexpected file name 'hello.wav'"):
        load_fsdd(data_home=tmp_path)


def test_load_fsdd_reads_partial_folder(tmp_path):
    recordings = tmp_path / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    for name in ["3_theo_7.wav", "3_theo_2.wav", "1_lucas_10.wav"]:
        (recordings / name).write_bytes(b"")
    frame = load_fsdd(data_home=tmp_path).frame
    assert frame["repetition"].tolist() == [10, 2, 7]
    assert frame["split"].tolist() == ["train", "test", "train"]
