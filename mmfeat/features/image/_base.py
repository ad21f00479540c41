"""Shared machinery of the image extractors: reading a column into batches."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm.auto import tqdm

from mmfeat.exceptions import InputError
from mmfeat.io._images import read_image
from mmfeat.utils._items import as_item_list, item_source
from mmfeat.utils._parallel import map_items

__all__ = ["BaseImageExtractor", "iter_image_batches"]


def _is_numeric_stack(X):
    return (
        isinstance(X, np.ndarray)
        and X.dtype != object
        and X.dtype.kind in "uifb"
        and X.ndim in (3, 4)
    )


def iter_image_batches(
    X,
    *,
    mode,
    size,
    resize="exact",
    min_size=None,
    on_error,
    n_jobs,
    verbose,
    batch_size=256,
    desc="reading images",
):
    """Yield ``(n_items, rows, images, errors)`` batches of decoded images.

    ``rows`` are the input rows of the images in the batch; missing and bad
    items are left out of ``rows`` (their output rows stay missing), and bad
    ones are recorded in ``errors`` (with ``on_error="missing"``) or raise.
    A numeric stack ``(n, H, W[, C])`` that needs no resizing is passed on
    without per-item decoding.
    """
    if _is_numeric_stack(X) and (size is None or tuple(size) == X.shape[1:3]):
        stack = X if X.ndim == 4 else X[..., None]
        if (
            mode == "gray"
            and stack.shape[3] != 1
            or mode == "rgb"
            and stack.shape[3] != 3
        ):
            items = list(X)  # needs colour conversion: go the per-item way
        else:
            if min_size is not None and (
                stack.shape[1] < min_size[0] or stack.shape[2] < min_size[1]
            ):
                read_image(stack[0], min_size=min_size)  # raises the clear error
            if stack.dtype.kind == "f":
                flat = stack.reshape(len(stack), -1)
                ok = np.isfinite(flat).all(1) & (flat.min(1) >= 0) & (flat.max(1) <= 1)
                if not ok.all():
                    bad = int(np.flatnonzero(~ok)[0])
                    read_image(stack[bad])  # raises the precise reason
            for start in range(0, len(stack), batch_size):
                rows = np.arange(start, min(start + batch_size, len(stack)))
                yield len(rows), rows, stack[rows], []
            return
    else:
        items = as_item_list(X, stack_ndim=3)
    opts = dict(mode=mode, size=size, resize=resize, min_size=min_size)
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        decoded, errors = map_items(
            lambda it: read_image(it, **opts),
            chunk,
            n_jobs=n_jobs,
            verbose=0,
            on_error=on_error,
            row_offset=start,
        )
        rows = [start + i for i, im in enumerate(decoded) if im is not None]
        if not rows:
            yield len(chunk), np.array([], dtype=int), None, errors
            continue
        shapes = {decoded[r - start].shape for r in rows}
        if len(shapes) > 1:
            first = decoded[rows[0] - start].shape
            odd = next(r for r in rows if decoded[r - start].shape != first)
            raise InputError(
                f"image has shape {decoded[odd - start].shape} but row {rows[0]} has "
                f"{first}; this extractor needs images of one size: set "
                "image_size=(height, width) to resize them",
                row=odd,
                source=item_source(chunk[odd - start]),
            )
        stack = np.stack([decoded[r - start] for r in rows])
        if stack.ndim == 3:
            stack = stack[..., None]
        yield len(chunk), np.asarray(rows), stack, errors


def _n_rows(X):
    if _is_numeric_stack(X):
        return X.shape[0]
    return len(as_item_list(X, stack_ndim=3))


class BaseImageExtractor(TransformerMixin, BaseEstimator):
    """Base of extractors whose ``X`` is a column of images."""

    _mmfeat_input = "image"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return tags

    def _transform_batches(self, X, n_features, encode, *, mode, size, min_size=None):
        """Run ``encode(stack) -> (n, n_features)`` over batches of ``X``.

        Returns the (n_samples, n_features) output with NaN rows for missing
        (and, with ``on_error="missing"``, bad) items; records ``errors_``.
        """
        n = _n_rows(X)
        out = np.full((n, n_features), np.nan, dtype=np.float64)
        self.errors_ = []
        verbose = getattr(self, "verbose", 0)
        bar = tqdm(total=n, desc=type(self).__name__, disable=not verbose, unit="image")
        for n_items, rows, stack, errors in iter_image_batches(
            X,
            mode=mode,
            size=size,
            resize=getattr(self, "resize", "exact"),
            min_size=min_size,
            on_error=getattr(self, "on_error", "raise"),
            n_jobs=getattr(self, "n_jobs", None),
            verbose=verbose,
        ):
            self.errors_.extend(errors)
            if len(rows):
                out[rows] = encode(stack)
            bar.update(n_items)
        bar.close()
        return out
