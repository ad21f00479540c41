"""Loader for the UIUC Pascal Sentences captions (20 classes x 50 items)."""

import json
import os

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from mmfeat.datasets._base import _dataset_dir
from mmfeat.datasets._common import _object_column
from mmfeat.exceptions import MmfeatError

__all__ = ["load_pascal_sentences"]

PASCAL_SENTENCES_DESCR = """\
UIUC Pascal Sentences (captions for all 1,000 items; 47 aeroplane images)
=========================================================================

1,000 PASCAL VOC 2008 images, 50 from each of 20 classes (aeroplane, bicycle,
bird, boat, bottle, bus, car, cat, chair, cow, diningtable, dog, horse,
motorbike, person, pottedplant, sheep, sofa, train, tvmonitor), each with
crowd-sourced English captions: 5 for 996 items, 4 for 3 items, 6 for 1 item.
The label is the index of the class in that alphabetical list (0-19).

Only 47 of the 1,000 images (all aeroplane) are available, in
images_aeroplane_partial/: this set supports text classification of the 20
classes and a tiny single-class image+caption smoke test, not image
classification.

Source: github.com/michelecafagna26/Pascal_Sentence_Dataset-downloader,
commit ab773ace9287c1b04c3e5f821ac5cca6cc82274d (pascal_sentences.json,
unchanged, and 47 of its downloaded images; 2 empty download failures,
2008_001971.jpg and 2008_008501.jpg, were dropped). Original dataset:
http://vision.cs.uiuc.edu/pascal-sentences/

Citation: C. Rashtchian, P. Young, M. Hodosh, J. Hockenmaier, "Collecting
Image Annotations Using Amazon's Mechanical Turk", NAACL-HLT 2010 Workshop on
Creating Speech and Language Data with Amazon's Mechanical Turk. Images:
PASCAL VOC 2008 (Everingham et al.).

License: none stated by the source repository. Captions were collected by UIUC
for research; images are Flickr photos under the PASCAL VOC terms.
"""

#: The 20 classes in alphabetical order: ``label`` is the index in this tuple.
PASCAL_CATEGORIES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
_PASCAL_IMAGES = "images_aeroplane_partial"


def load_pascal_sentences(*, data_home=None):
    """Load the UIUC Pascal Sentences captions and class labels.

    Reads ``<data_home>/pascal_sentences_text/pascal_sentences.json`` (the
    authoritative file; ``labels.csv`` beside it is derived from it). Of the
    1,000 images only 47 aeroplane images are present, in
    ``images_aeroplane_partial/``; the others have no ``image_path``.

    =================  ===========================
    Items              1,000 (captions for all, 47 images)
    Classes            20, 50 items each
    Captions           5 per item (4 for 3 items, 6 for 1)
    =================  ===========================

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that holds ``pascal_sentences_text/``. ``None`` means the
        ``MMFEAT_DATA_HOME`` environment variable, else ``~/mmfeat_data``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        frame : pandas.DataFrame of shape (1000, 6)
            Columns ``image_file`` (VOC file name, e.g. ``"2008_000716.jpg"``),
            ``category`` (class name, str), ``label`` (int, index of the
            class in alphabetical order), ``captions`` (list of str),
            ``text`` (the captions joined with a space) and ``image_path``
            (absolute path of the JPEG when it is among the 47 staged
            images, else None). Rows keep the JSON file's order (grouped by
            class, classes in alphabetical order).
        target : pandas.Series of shape (1000,)
            ``label``, aligned with ``frame``.
        target_names : ndarray of shape (20,)
            Class names; ``target_names[label]`` is the category.
        DESCR : str
            Description: source, citation and license.

    Raises
    ------
    DataNotFoundError
        If ``<data_home>/pascal_sentences_text/pascal_sentences.json`` does
        not exist.

    See Also
    --------
    load_fashion_products : Product photos with titles.

    References
    ----------
    .. [1] C. Rashtchian, P. Young, M. Hodosh, J. Hockenmaier, "Collecting
       Image Annotations Using Amazon's Mechanical Turk", NAACL-HLT 2010
       Workshop on Creating Speech and Language Data with Amazon's
       Mechanical Turk.

    Examples
    --------
    >>> from mmfeat.datasets import load_pascal_sentences
    >>> pascal = load_pascal_sentences()  # doctest: +SKIP
    >>> pascal.frame["label"].value_counts().unique().tolist()  # doctest: +SKIP
    [50]
    >>> int(pascal.frame["image_path"].notna().sum())  # doctest: +SKIP
    47
    """
    folder = _dataset_dir(
        "pascal_sentences_text", data_home, required=("pascal_sentences.json",)
    )
    path = folder / "pascal_sentences.json"
    with open(path, encoding="utf-8") as f:
        items = json.load(f)
    image_dir = folder / _PASCAL_IMAGES
    staged = set(os.listdir(image_dir)) if image_dir.is_dir() else set()
    image_root = os.path.abspath(image_dir)
    label_of = {name: i for i, name in enumerate(PASCAL_CATEGORIES)}
    rows = []
    for image_file, item in items.items():
        category = item.get("category")
        if category not in label_of:
            raise MmfeatError(
                f"{path}: item {image_file!r} has category {category!r}; "
                f"expected one of {list(PASCAL_CATEGORIES)}"
            )
        captions = [str(c) for c in item.get("captions", [])]
        image_path = (
            os.path.join(image_root, image_file) if image_file in staged else None
        )
        rows.append(
            (
                image_file,
                category,
                label_of[category],
                captions,
                " ".join(captions),
                image_path,
            )
        )
    columns = ["image_file", "category", "label", "captions", "text", "image_path"]
    values = (
        dict(zip(columns, zip(*rows, strict=True), strict=True))
        if rows
        else dict.fromkeys(columns, ())
    )
    frame = pd.DataFrame(
        {
            "image_file": pd.Series(values["image_file"], dtype=str),
            "category": pd.Series(values["category"], dtype=str),
            "label": np.asarray(values["label"], dtype=np.int64),
            "captions": _object_column(values["captions"]),
            "text": pd.Series(values["text"], dtype=str),
            # object dtype keeps None (not NaN) for the items without an image
            "image_path": pd.Series(values["image_path"], dtype=object),
        }
    )
    return Bunch(
        frame=frame,
        target=frame["label"].copy(),
        target_names=np.asarray(PASCAL_CATEGORIES),
        DESCR=PASCAL_SENTENCES_DESCR,
    )
