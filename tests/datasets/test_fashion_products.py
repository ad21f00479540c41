import os
import re

import numpy as np
import pytest

from mmfeat.datasets import load_fashion_products
from mmfeat.exceptions import DataNotFoundError, ParameterError

ARTICLE_TYPES_50 = {
    "Tshirts": 412,
    "Shirts": 201,
    "Watches": 196,
    "Casual Shoes": 174,
    "Sports Shoes": 150,
    "Tops": 128,
    "Handbags": 118,
    "Kurtas": 113,
    "Heels": 87,
    "Sunglasses": 72,
    "Sandals": 70,
    "Flip Flops": 69,
    "Belts": 60,
    "Wallets": 58,
}
MASTER = {
    "Apparel": 1372,
    "Accessories": 790,
    "Footwear": 617,
    "Personal Care": 154,
    "Free Items": 10,
    "Sporting Goods": 3,
}
COLUMNS = [
    "path",
    "title",
    "id",
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "year",
    "usage",
]


@pytest.fixture(scope="module")
def fashion(data_home):
    return load_fashion_products(data_home=data_home)


def test_load_fashion_products_counts_match_source(fashion):
    frame = fashion.frame
    assert frame.shape == (2946, 11)
    assert list(frame.columns) == COLUMNS
    assert frame["masterCategory"].value_counts().to_dict() == MASTER
    assert frame["articleType"].nunique() == 105
    assert len(fashion.target_names) == 105
    sub = frame["subCategory"].value_counts()
    assert sub["Topwear"] == 951 and sub["Shoes"] == 473 and sub["Belts"] == 60
    assert frame["id"].is_unique


def test_load_fashion_products_titles_complete(fashion):
    # Checked against labels.csv: every item has a title; no row is dropped.
    titles = fashion.frame["title"]
    assert titles.isna().sum() == 0
    assert (titles.str.strip().str.len() > 0).all()
    assert fashion.frame.loc[0, "title"] == "Quechua Men Sweat Proof Blue T-shirt"


def test_load_fashion_products_missing_labels_are_nan(fashion):
    frame = fashion.frame
    # season is empty once and usage is "NA" 24 times in labels.csv
    assert frame.isna().sum()[lambda s: s > 0].to_dict() == {"season": 1, "usage": 24}
    assert "NA" not in set(frame["usage"].dropna())


def test_load_fashion_products_paths_exist(fashion, data_home):
    paths = fashion.frame["path"]
    assert all(os.path.isabs(p) for p in paths)
    assert all(os.path.isfile(p) for p in paths)
    first = os.path.join(
        os.path.abspath(data_home), "fashion_products_sample", "images", "1563.jpg"
    )
    assert paths[0] == first


def test_load_fashion_products_min_count_50(data_home):
    data = load_fashion_products(data_home=data_home, min_count=50)
    assert data.frame.shape == (1908, 11)
    assert len(data.target_names) == 14
    assert data.target.value_counts().to_dict() == ARTICLE_TYPES_50
    assert data.frame.index.tolist() == list(range(1908))
    assert (data.target == data.frame["articleType"]).all()


def test_load_fashion_products_other_target(data_home):
    data = load_fashion_products(data_home=data_home, target="masterCategory")
    assert data.target.name == "masterCategory"
    assert sorted(MASTER) == data.target_names.tolist()
    usage = load_fashion_products(data_home=data_home, target="usage", min_count=1)
    # rows whose target is missing are dropped by min_count
    assert len(usage.frame) == 2946 - 24
    assert usage.target.notna().all()
    assert (
        load_fashion_products(data_home=data_home, target="usage").target.isna().sum()
        == 24
    )


def test_load_fashion_products_bad_target(data_home):
    with pytest.raises(
        ParameterError,
        match=r"target must be one of .*'articleType'.*"
        r"got 'colour'",
    ):
        load_fashion_products(data_home=data_home, target="colour")
    with pytest.raises(ParameterError, match="got 'title'"):
        load_fashion_products(data_home=data_home, target="title")


@pytest.mark.parametrize("min_count", [0, -3, 2.5, True, "50"])
def test_load_fashion_products_bad_min_count(data_home, min_count):
    with pytest.raises(ParameterError, match="min_count must be a positive int"):
        load_fashion_products(data_home=data_home, min_count=min_count)


def test_load_fashion_products_min_count_accepts_numpy_int(data_home):
    data = load_fashion_products(data_home=data_home, min_count=np.int64(400))
    assert data.target_names.tolist() == ["Tshirts"]


def test_load_fashion_products_descr(fashion):
    assert "Aggarwal" in fashion.DESCR and "License" in fashion.DESCR


def test_load_fashion_products_missing_data_home(tmp_path):
    folder = re.escape(str(tmp_path / "fashion_products_sample"))
    with pytest.raises(DataNotFoundError, match=folder):
        load_fashion_products(data_home=tmp_path)
