"""Utilities: estimator discovery, estimator checks, column-of-items helpers.

:class:`Tags` and :class:`ItemTags` are mmfeat's estimator tags (the item
modality a raw-input estimator reads, and whether it opens files);
:func:`get_item_tags` reads them.
"""

from mmfeat.utils._items import as_item_list, is_missing
from mmfeat.utils._parallel import ItemError
from mmfeat.utils._tags import ItemTags, Tags, get_item_tags, with_item_tags

__all__ = [
    "ItemError",
    "ItemTags",
    "Tags",
    "as_item_list",
    "get_item_tags",
    "is_missing",
    "with_item_tags",
]
