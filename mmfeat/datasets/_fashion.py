"""Loader for the fashion-product sample (product photo + title + categories)."""

import numbers
import os

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from mmfeat.datasets._base import _dataset_dir
from mmfeat.exceptions import MmfeatError, ParameterError

__all__ = ["load_fashion_products"]

FASHION_PRODUCTS_DESCR = """\
Fashion product images + titles (2,946-item sample of "Fashion Product Images")
==============================================================================

Product photos (JPEG, RGB, white studio background; 2,935 at 225x300 (w x h),
10 at 150x200, 1 at 201x300), the product title (productDisplayName, e.g.
"Quechua Men Sweat Proof Blue T-shirt") and a category hierarchy: gender,
masterCategory, subCategory, articleType, baseColour, season, year, usage.
There is no standard split and no published classical-feature baseline.

masterCategory (6): Apparel 1,372, Accessories 790, Footwear 617, Personal
Care 154, Free Items 10, Sporting Goods 3. articleType: 105 values, 14 with at
least 50 items (1,908 items together): Tshirts 412, Shirts 201, Watches 196,
Casual Shoes 174, Sports Shoes 150, Tops 128, Handbags 118, Kurtas 113, Heels
87, Sunglasses 72, Sandals 70, Flip Flops 69, Belts 60, Wallets 58. Titles
usually name the article type, so text-only articleType classification is
easy; usage, baseColour, season and gender are harder targets.

Missing values: season is empty for 1 item, usage is "NA" for 24 items (both
read as NaN); every item has a title.

Sources: images from github.com/RuturajChitale/Fassion-Recommendation-System,
commit 8229bfd9dadcec71d6313bcf126b43b82a0c98ef, folder images/ (a sampled
subset of the Kaggle dataset, ids 1,563-59,981); metadata from
github.com/animmala3942/FashionProductRecommendationSystem, commit
91e8036739fe4f903aaa4a95009a13d4bc7cb542 (styles.csv + styles_text.csv, the
two column halves of Kaggle's styles.csv), joined row by row and filtered to
the staged image ids as labels.csv.

Citation: Param Aggarwal, "Fashion Product Images Dataset" (and "Fashion
Product Images (Small)"), Kaggle, 2019; product catalogue of Myntra.com.

License: not stated in either source repository. The Kaggle page is reported
to list the MIT license (not verified); the photos are Myntra catalogue
images. Treat as research/testing use.
"""

#: Columns that can serve as the target, in frame order.
_FASHION_LABELS = (
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "year",
    "usage",
)
_FASHION_CSV_COLUMNS = ("image_file", "id", *_FASHION_LABELS, "productDisplayName")


def load_fashion_products(*, data_home=None, target="articleType", min_count=None):
    """Load the fashion-product sample: photo, title and category labels.

    Reads ``<data_home>/fashion_products_sample/labels.csv`` and points at the
    JPEGs in ``images/`` beside it. Missing labels stay missing (NaN) and no
    row is dropped unless ``min_count`` asks for it.

    =================  ===========================
    Items              2,946 (image + title)
    articleType        105 classes (14 with >= 50 items, 1,908 items)
    masterCategory     6 classes
    Images             JPEG, RGB, mostly 225x300 (w x h)
    =================  ===========================

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that holds ``fashion_products_sample/``. ``None`` means the
        ``MMFEAT_DATA_HOME`` environment variable, else ``~/mmfeat_data``.
    target : str, default="articleType"
        Label column used as ``target``: one of ``"gender"``,
        ``"masterCategory"``, ``"subCategory"``, ``"articleType"``,
        ``"baseColour"``, ``"season"``, ``"year"``, ``"usage"``.
    min_count : int or None, default=None
        If given, keep only the rows whose ``target`` class has at least
        ``min_count`` items; rows whose target is missing are dropped too.
        ``min_count=50`` with ``target="articleType"`` leaves 1,908 rows in
        14 classes.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        frame : pandas.DataFrame of shape (n_items, 11)
            Columns ``path`` (absolute path of the JPEG, str), ``title``
            (the product title, ``productDisplayName``), ``id`` (int),
            ``gender``, ``masterCategory``, ``subCategory``, ``articleType``,
            ``baseColour``, ``season``, ``year`` (int), ``usage``. Missing
            values are NaN. Rows keep the file's order (ascending ``id``);
            the index is ``0..n_items-1``.
        target : pandas.Series of shape (n_items,)
            The ``target`` column, aligned with ``frame``.
        target_names : ndarray of shape (n_classes,)
            The sorted distinct non-missing values of ``target``.
        DESCR : str
            Description: sources, citation and license.

    Raises
    ------
    DataNotFoundError
        If ``<data_home>/fashion_products_sample/labels.csv`` does not exist.
    ParameterError
        If ``target`` is not a label column, or ``min_count`` is not a
        positive integer or None.

    See Also
    --------
    load_pascal_sentences : Captions of 20 object classes.

    Notes
    -----
    In ``labels.csv`` ``season`` is empty for 1 item and ``usage`` is ``NA``
    for 24 items; both are read as NaN. No title is missing. Two titles end
    with a space, kept as in the source.

    References
    ----------
    .. [1] P. Aggarwal, "Fashion Product Images Dataset", Kaggle, 2019.

    Examples
    --------
    >>> from mmfeat.datasets import load_fashion_products
    >>> fashion = load_fashion_products(min_count=50)  # doctest: +SKIP
    >>> len(fashion.frame), len(fashion.target_names)  # doctest: +SKIP
    (1908, 14)
    >>> fashion.frame.loc[0, "title"]  # doctest: +SKIP
    'Quechua Men Sweat Proof Blue T-shirt'
    """
    if not isinstance(target, str) or target not in _FASHION_LABELS:
        raise ParameterError(
            f"target must be one of {list(_FASHION_LABELS)}; got {target!r}"
        )
    if min_count is not None and (
        isinstance(min_count, bool)
        or not isinstance(min_count, numbers.Integral)
        or min_count < 1
    ):
        raise ParameterError(
            f"min_count must be a positive int or None; got {min_count!r}"
        )
    folder = _dataset_dir(
        "fashion_products_sample", data_home, required=("labels.csv",)
    )
    csv = folder / "labels.csv"
    # Only empty cells and the literal "NA" mean "missing": pandas' long list of
    # default NA markers ("null", "None", "N/A", ...) must not eat real values.
    raw = pd.read_csv(csv, keep_default_na=False, na_values=["", "NA"])
    missing = [c for c in _FASHION_CSV_COLUMNS if c not in raw.columns]
    if missing:
        raise MmfeatError(f"{csv} lacks the columns {missing}; got {list(raw.columns)}")
    root = os.path.abspath(folder)
    frame = pd.DataFrame(
        {
            "path": [os.path.join(root, f) for f in raw["image_file"]],
            "title": raw["productDisplayName"],
            "id": raw["id"],
            **{c: raw[c] for c in _FASHION_LABELS},
        }
    )
    if min_count is not None:
        counts = frame[target].value_counts()
        keep = counts.index[counts >= min_count]
        frame = frame[frame[target].isin(keep)].reset_index(drop=True)
    target_values = frame[target]
    return Bunch(
        frame=frame,
        target=target_values.copy(),
        target_names=np.asarray(sorted(target_values.dropna().unique())),
        DESCR=FASHION_PRODUCTS_DESCR,
    )
