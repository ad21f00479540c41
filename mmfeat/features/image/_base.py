"""Shared machinery of the image extractors: columns of images into batches."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from mmfeat.exceptions import InputError
from mmfeat.io import read_image
from mmfeat.utils._batches import transform_in_batches
from mmfeat.utils._items import as_item_list
from mmfeat.utils._state import CheckedStateMixin
from mmfeat.utils._tags import with_item_tags
from mmfeat.utils._validation import check_pair

__all__ = ["MAX_IMAGE_SIDE", "BaseImageExtractor", "numeric_stack"]

#: The largest ``image_size`` side an extractor resizes to (a model file
#: cannot ask for more).
MAX_IMAGE_SIDE = 1 << 15


def numeric_stack(X, *, mode, size, min_size=None):
    """``X`` as an (n, H, W, C) stack when it can skip per-item decoding, else None.

    That is a numeric ndarray of 3 or 4 dimensions, of the right channel
    count for ``mode`` and already of ``size``; it is checked as
    :func:`~mmfeat.io.read_image` would check each image.
    """
    if not (isinstance(X, np.ndarray) and X.dtype.kind in "uifb" and X.ndim in (3, 4)):
        return None
    stack = X if X.ndim == 4 else X[..., None]
    if stack.shape[3] != (1 if mode == "gray" else 3):
        return None  # needs a colour conversion: go the per-item way
    if size is not None and tuple(size) != stack.shape[1:3]:
        return None
    if min_size is not None and (
        stack.shape[1] < min_size[0] or stack.shape[2] < min_size[1]
    ):
        read_image(stack[0], min_size=min_size)  # raises the clear error
    if stack.dtype.kind == "f":
        flat = stack.reshape(len(stack), -1)
        ok = np.isfinite(flat).all(1) & (flat.min(1) >= 0) & (flat.max(1) <= 1)
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            try:
                read_image(stack[bad])  # raises the precise reason
            except InputError as exc:
                raise exc.with_row(bad) from None
    return stack


class BaseImageExtractor(CheckedStateMixin, TransformerMixin, BaseEstimator):
    """Base of extractors whose ``X`` is a column of images."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return with_item_tags(tags, modality="image", reads_files=True)

    def _image_size(self):
        """``image_size`` checked: None, or a (height, width) pair of ints."""
        return check_pair(
            getattr(self, "image_size", None),
            "image_size",
            high=MAX_IMAGE_SIDE,
            allow_none=True,
        )

    def _read_options(self, mode, **extra):
        return dict(
            mode=mode,
            size=self._image_size(),
            resize=getattr(self, "resize", "exact"),
            **extra,
        )

    def _transform_items(
        self, X, read, encode, n_features, *, batch_size=256, threads_for_arrays=False
    ):
        """Run ``encode(list of read(item))`` over ``X`` in batches."""
        out, _ = transform_in_batches(
            as_item_list(X, stack_ndim=3),
            read,
            encode,
            n_features=n_features,
            n_jobs=getattr(self, "n_jobs", None),
            on_error=getattr(self, "on_error", "raise"),
            verbose=getattr(self, "verbose", 0),
            desc=type(self).__name__,
            batch_size=batch_size,
            threads_for_arrays=threads_for_arrays,
        )
        return out
