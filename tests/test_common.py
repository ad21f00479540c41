"""Every public estimator is checked, found automatically from the public API."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from mmfeat.utils.discovery import all_estimators
from mmfeat.utils.estimator_checks import (
    estimator_test_instances,
    parametrize_with_mmfeat_checks,
)

RAW = [est for _, cls in all_estimators("raw") for est in estimator_test_instances(cls)]
MATRIX = [
    est for _, cls in all_estimators("matrix") for est in estimator_test_instances(cls)
]


def test_all_estimators_finds_the_readers():
    names = {name for name, _ in all_estimators()}
    assert {"ImageReader", "AudioReader"} <= names


@parametrize_with_mmfeat_checks(RAW)
def test_raw_input_estimators_pass_mmfeat_checks(estimator, check):
    check(estimator)


if MATRIX:

    @parametrize_with_checks(
        MATRIX,
        expected_failed_checks=lambda est: getattr(est, "_xfail_checks", dict)(),
    )
    def test_matrix_estimators_pass_sklearn_checks(estimator, check):
        check(estimator)

else:

    def test_matrix_estimators_pass_sklearn_checks():
        pytest.skip("no public estimator takes a 2-D numeric matrix yet")
