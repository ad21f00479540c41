import re
from pathlib import Path

import pytest

from mmfeat.datasets import get_data_home
from mmfeat.datasets._base import _dataset_dir
from mmfeat.exceptions import DataNotFoundError


def test_get_data_home_argument_beats_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MMFEAT_DATA_HOME", str(tmp_path / "env"))
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert get_data_home() == tmp_path / "env"


def test_get_data_home_defaults_to_home_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("MMFEAT_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_data_home() == Path(tmp_path) / "mmfeat_data"


def test_dataset_dir_missing_names_folder(tmp_path):
    with pytest.raises(DataNotFoundError, match=re.escape(str(tmp_path / "usps"))):
        _dataset_dir("usps", tmp_path, required=("usps.npz",))
