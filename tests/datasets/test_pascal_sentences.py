import os
import re
from collections import Counter

import pandas as pd
import pytest

from mmfeat.datasets import load_pascal_sentences
from mmfeat.exceptions import DataNotFoundError

CATEGORIES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip


@pytest.fixture(scope="module")
def pascal(data_home):
    return load_pascal_sentences(data_home=data_home)


def test_load_pascal_sentences_counts_match_source(pascal):
    frame = pascal.frame
    assert frame.shape == (1000, 6)
    assert list(frame.columns) == [
        "image_file", "category", "label", "captions", "text", "image_path",
    ]  # fmt: skip
    assert frame["category"].value_counts().to_dict() == dict.fromkeys(CATEGORIES, 50)
    assert frame["image_file"].is_unique
    n_captions = Counter(len(c) for c in frame["captions"])
    assert n_captions == {5: 996, 4: 3, 6: 1}


def test_load_pascal_sentences_labels_alphabetical(pascal):
    frame = pascal.frame
    assert pascal.target_names.tolist() == CATEGORIES == sorted(CATEGORIES)
    assert (pascal.target_names[frame["label"]] == frame["category"]).all()
    assert frame["label"].value_counts().sort_index().tolist() == [50] * 20
    assert (pascal.target == frame["label"]).all()


def test_load_pascal_sentences_agrees_with_labels_csv(pascal, data_home):
    csv = pd.read_csv(data_home / "pascal_sentences_text" / "labels.csv")
    frame = pascal.frame
    assert frame["image_file"].tolist() == csv["image_file"].tolist()
    assert frame["label"].tolist() == csv["label_0to19"].tolist()
    joined = [" ||| ".join(c) for c in frame["captions"]]
    assert joined == csv["captions_joined"].tolist()


def test_load_pascal_sentences_text_joins_captions(pascal):
    for captions, text in zip(
        pascal.frame["captions"], pascal.frame["text"], strict=True
    ):
        assert isinstance(captions, list) and all(isinstance(c, str) for c in captions)
        assert text == " ".join(captions)


def test_load_pascal_sentences_image_paths(pascal, data_home):
    frame = pascal.frame
    with_image = frame[frame["image_path"].notna()]
    assert len(with_image) == 47
    assert set(with_image["category"]) == {"aeroplane"}
    folder = os.path.abspath(data_home / "pascal_sentences_text")
    for row in with_image.itertuples():
        assert row.image_path == os.path.join(
            folder, "images_aeroplane_partial", row.image_file
        )
        assert os.path.isfile(row.image_path)
    others = frame.loc[frame["image_path"].isna(), "image_path"]
    assert all(p is None for p in others)
    # the two empty download failures are not listed as images
    missing = frame.set_index("image_file").loc[["2008_001971.jpg", "2008_008501.jpg"]]
    assert missing["image_path"].isna().all()


def test_load_pascal_sentences_descr(pascal):
    assert "Rashtchian" in pascal.DESCR and "47" in pascal.DESCR


def test_load_pascal_sentences_missing_data_home(tmp_path):
    folder = re.escape(str(tmp_path / "pascal_sentences_text"))
    with pytest.raises(DataNotFoundError, match=folder):
        load_pascal_sentences(data_home=tmp_path)
