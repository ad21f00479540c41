"""Utilities: estimator discovery, estimator checks, column-of-items helpers."""

from mmfeat.utils._items import as_item_list, is_missing
from mmfeat.utils._parallel import ItemError

__all__ = ["ItemError", "as_item_list", "is_missing"]
