"""The checks must catch broken estimators, not just pass good ones."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from mmfeat.io import ImageReader
from mmfeat.utils import with_item_tags
from mmfeat.utils._state import CheckedStateMixin, state_error
from mmfeat.utils.estimator_checks import (
    check_extractor_bad_item,
    check_extractor_feature_names,
    check_extractor_init_stores_params,
    check_extractor_input_containers,
    check_extractor_missing_item,
    check_extractor_pickle,
    check_extractor_random_state,
    check_extractor_state_checked_on_load,
    check_extractor_transform_changes_nothing,
    check_mmfeat_estimator,
    make_test_items,
)


class _MeanPixel(CheckedStateMixin, TransformerMixin, BaseEstimator):
    """A correct tiny image extractor: the mean of each image."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        return with_item_tags(tags, modality="image", reads_files=True)

    def __init__(self, scale=1.0):
        self.scale = scale

    def fit(self, X, y=None):
        self.n_features_in_ = 1
        self.n_features_out_ = 1
        return self

    def _check_fitted_state(self):
        if self.n_features_out_ != 1:
            raise state_error(self, f"n_features_out_={self.n_features_out_}")

    def _one(self, item):
        from mmfeat.io import read_image

        return read_image(item).mean() * self.scale

    def transform(self, X):
        from mmfeat.utils import as_item_list, is_missing

        items = as_item_list(X, stack_ndim=3)
        return np.array(
            [[np.nan] if is_missing(it) else [self._one(it)] for it in items]
        )

    def get_feature_names_out(self, input_features=None):
        return np.array(["mean"], dtype=object)


class _DropsMissing(_MeanPixel):
    def transform(self, X):
        from mmfeat.utils import as_item_list, is_missing

        items = [it for it in as_item_list(X, stack_ndim=3) if not is_missing(it)]
        return np.array([[self._one(it)] for it in items])


class _ChangesParam(_MeanPixel):
    def __init__(self, scale=1.0):
        self.scale = float(scale) * 2


class _ForgetsAfterPickle(_MeanPixel):
    def __getstate__(self):
        state = dict(self.__dict__)
        state["scale"] = 0.0
        return state


class _TooManyNames(_MeanPixel):
    def get_feature_names_out(self, input_features=None):
        return np.array(["a", "b"], dtype=object)


class _Unseeded(_MeanPixel):
    scale = 1.0

    def __init__(self, random_state=None):
        self.random_state = random_state

    def transform(self, X):
        return super().transform(X) + np.random.default_rng().random()


class _ListOnly(_MeanPixel):
    def transform(self, X):
        if not isinstance(X, list):
            X = list(X)[::-1]  # silently misaligns non-list input
        return super().transform(X)


class _CrashesOnBadItem(_MeanPixel):
    def __init__(self, on_error="raise"):
        self.on_error = on_error

    def transform(self, X):
        return np.zeros((len(X), 1))  # ignores bad items entirely


class _UncheckedState(TransformerMixin, BaseEstimator):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        return with_item_tags(tags, modality="image", reads_files=True)


class _TrustsItsSize(_MeanPixel):
    def _check_fitted_state(self):
        pass  # an edited n_features_out_ would reach the kernel


class _RemembersLastCall(_MeanPixel):
    def transform(self, X):
        out = super().transform(X)
        self.last_missing_ = np.isnan(out[:, 0])  # what missing_rows_ did
        return out


class _GrowsACache(_MeanPixel):
    def fit(self, X, y=None):
        self.cache_ = {}
        return super().fit(X, y)

    def transform(self, X):
        self.cache_[len(X)] = True  # same attribute, new content
        return super().transform(X)


def test_checks_pass_a_correct_extractor():
    check_mmfeat_estimator(_MeanPixel())


@pytest.mark.parametrize(
    "check,estimator,match",
    [
        (check_extractor_missing_item, _DropsMissing(), "rows"),
        (check_extractor_init_stores_params, _ChangesParam(), "changed parameter"),
        (check_extractor_pickle, _ForgetsAfterPickle(scale=2.0), "pickle"),
        (check_extractor_feature_names, _TooManyNames(), "2 names for 1 columns"),
        (check_extractor_random_state, _Unseeded(), "same random_state"),
        (check_extractor_input_containers, _ListOnly(), "transform"),
        (check_extractor_bad_item, _CrashesOnBadItem(), "did not raise InputError"),
        (check_extractor_state_checked_on_load, _UncheckedState(), "CheckedState"),
        (check_extractor_state_checked_on_load, _TrustsItsSize(), "accepted"),
        (
            check_extractor_transform_changes_nothing,
            _RemembersLastCall(),
            r"new attributes \['last_missing_'\]",
        ),
        (check_extractor_transform_changes_nothing, _GrowsACache(), "content"),
    ],
)
def test_checks_catch_broken_extractors(check, estimator, match):
    with pytest.raises(AssertionError, match=match):
        check(estimator)


def test_make_test_items_mixes_encodings(tmp_path):
    items, y = make_test_items("image", folder=tmp_path)
    kinds = {type(it).__name__ for it in items}
    assert kinds == {"ndarray", "bytes", "str"}
    assert list(y) == [0, 1] * 4
    out = ImageReader().fit_transform(items)
    assert all(o is not None for o in out)
