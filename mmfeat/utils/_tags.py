"""mmfeat's estimator tags: what kind of items an estimator reads.

scikit-learn describes an estimator's input with tags (``__sklearn_tags__``);
mmfeat adds one field, as imbalanced-learn adds ``sampler_tags``: an
estimator whose ``X`` is a column of raw items (image paths or arrays, audio
clips, texts) says which modality they are and whether it opens files. The
common checks pick mmfeat's own checks for those, and batch scoring knows
which columns hold paths to resolve against a root, without guessing from
class or module names.

An estimator declares it in its ``__sklearn_tags__``::

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        return with_item_tags(tags, modality="image", reads_files=True)
"""

from dataclasses import dataclass, field, fields

from sklearn.utils import Tags as _SklearnTags
from sklearn.utils import get_tags

__all__ = ["ItemTags", "Tags", "get_item_tags", "with_item_tags"]

_MODALITIES = ("image", "audio", "text")


@dataclass(slots=True)
class ItemTags:
    """What a raw-input estimator reads.

    Attributes
    ----------
    modality : {"image", "audio", "text"} or None
        The modality of the items in ``X``; ``None`` for an estimator over a
        numeric matrix or a table.
    reads_files : bool
        Whether items may be paths to files it opens (images, audio clips),
        which batch scoring resolves against a root folder.
    segmenter : bool
        Whether ``fit`` takes one mask per row as ``y`` and ``predict`` gives
        one label image per row (mmfeat's segmenters); the common checks
        give such estimators masks and check their label images.
    target : {"text", "attributes", "tags"} or None
        For a captioner (mmfeat's :mod:`~mmfeat.generation` estimators),
        what ``fit`` takes as ``y``: one text (or a list of reference texts)
        per row, a table of attribute columns, or one list of tags per row.
        The common checks give such estimators targets of that kind and
        check one output per row.
    """

    modality: str | None = None
    reads_files: bool = False
    segmenter: bool = False
    target: str | None = None


@dataclass(slots=True)
class Tags(_SklearnTags):
    """scikit-learn's ``Tags`` with mmfeat's :class:`ItemTags`."""

    item_tags: ItemTags = field(default_factory=ItemTags)


_TARGETS = (None, "text", "attributes", "tags")


def with_item_tags(tags, *, modality, reads_files, segmenter=False, target=None):
    """``tags`` (scikit-learn's) as mmfeat :class:`Tags` with these item tags.

    ``modality`` may be ``None`` only for a captioner (``target`` given)
    over a numeric matrix or a table.
    """
    if modality not in _MODALITIES and not (modality is None and target):
        raise ValueError(f"modality must be one of {_MODALITIES}; got {modality!r}")
    if target not in _TARGETS:
        raise ValueError(f"target must be one of {_TARGETS}; got {target!r}")
    values = {f.name: getattr(tags, f.name) for f in fields(_SklearnTags)}
    return Tags(
        **values,
        item_tags=ItemTags(modality, bool(reads_files), bool(segmenter), target),
    )


def get_item_tags(estimator):
    """The :class:`ItemTags` of an estimator (defaults for any other estimator)."""
    if not hasattr(estimator, "__sklearn_tags__"):
        return ItemTags()  # not an estimator ("passthrough", a function)
    return getattr(get_tags(estimator), "item_tags", None) or ItemTags()
