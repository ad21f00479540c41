"""One exception family: every bad parameter raises mmfeat.ParameterError.

The estimators' ``_parameter_constraints`` are checked by scikit-learn's
machinery, wrapped by mmfeat's ``_fit_context`` so that what it finds is a
:class:`mmfeat.ParameterError` (which is also scikit-learn's
``InvalidParameterError``). The test below goes through every public estimator
that declares constraints and every constrained parameter, with a value of a
wrong type and with a value that each constraint refuses (as scikit-learn's
``check_param_validation`` does; that check runs on the matrix estimators only,
so here it also covers the raw-input ones).
"""

import os

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone

import mmfeat
from mmfeat import MmfeatError, ParameterError
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    InvalidParameterError,
    StrOptions,
    _fit_context,
    generate_invalid_param_val,
    make_constraint,
    validate_params,
)
from mmfeat.utils.discovery import all_estimators, item_modality
from mmfeat.utils.estimator_checks import estimator_test_instances

#: Public estimators that do not declare ``_parameter_constraints`` yet: their
#: parameters are still checked by hand (raising ParameterError) or not at
#: all. Remove a name once its class declares constraints and wraps ``fit`` in
#: ``mmfeat.utils._sklearn_compat._fit_context``; the test below then covers it.
#: Empty since the fusion estimators (MultimodalFuser, LateFusionClassifier,
#: ModalityStackingClassifier) declared theirs; keep it empty: a new public
#: estimator without constraints fails ``test_estimators_without_constraints``.
_NOT_YET_CONSTRAINED = set()

_FIT_METHODS = ("fit", "fit_transform", "fit_resample")


def _constrained():
    return [
        (name, cls)
        for name, cls in all_estimators()
        if hasattr(cls, "_parameter_constraints")
    ]


def _fit_data(cls):
    """Small valid data of the estimator's kind (parameters are checked first)."""
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 4)
    kind = item_modality(cls)
    if kind == "image":
        return [rng.random((32, 32)) for _ in y], y
    if kind == "audio":
        return [rng.standard_normal(2048) for _ in y], y
    if kind == "text":
        return ["red shirt", "blue jeans"] * 4, y
    return rng.random((len(y), 4)), y


def _bad_values(constraints):
    """(label, value) pairs that no constraint of a parameter accepts."""
    if constraints == "no_validation":
        return []
    made = [make_constraint(c) for c in constraints]
    found = [("wrong type", type("BadType", (), {})())]
    for constraint in made:
        try:
            value = generate_invalid_param_val(constraint)
        except NotImplementedError:
            continue
        if not any(c.is_satisfied_by(value) for c in made):
            found.append((f"outside {constraint}", value))
    return found


def _no_instances(name):
    """What to say of a class with no test instances (torch is not installed).

    In CI, where torch is installed, that is a failure; elsewhere it is a
    skip with the reason.
    """
    msg = f"{name} has no test instances here: it needs torch, not installed"
    if os.environ.get("CI"):
        pytest.fail(msg)
    return msg


def _cases():
    cases = []
    for name, cls in _constrained():
        instances = estimator_test_instances(cls)
        if not instances:
            mark = pytest.mark.skip(reason=_no_instances(name))
            cases.append(pytest.param(None, None, None, id=name, marks=mark))
            continue
        base = instances[0]
        for param, constraints in cls._parameter_constraints.items():
            for label, value in _bad_values(constraints):
                cases.append(
                    pytest.param(base, param, value, id=f"{name}-{param}-{label}")
                )
    return cases


def test_parameter_error_is_one_catchable_type():
    assert issubclass(ParameterError, MmfeatError)
    assert issubclass(ParameterError, InvalidParameterError)
    assert issubclass(ParameterError, ValueError)
    assert issubclass(ParameterError, TypeError)
    assert mmfeat.ParameterError is ParameterError


@pytest.mark.parametrize(
    "name, cls", _constrained(), ids=[n for n, _ in _constrained()]
)
def test_constraints_name_every_parameter(name, cls):
    instances = estimator_test_instances(cls)
    if not instances:
        pytest.skip(_no_instances(name))
    params = set(instances[0].get_params(deep=False))
    assert set(cls._parameter_constraints) == params, name


@pytest.mark.parametrize("estimator, param, value", _cases())
def test_every_bad_parameter_raises_parameter_error(estimator, param, value):
    name = type(estimator).__name__
    X, y = _fit_data(type(estimator))
    est = clone(estimator).set_params(**{param: value})
    for method in _FIT_METHODS:
        if not hasattr(est, method):
            continue
        with pytest.raises(ParameterError, match=rf"The '{param}' parameter of {name}"):
            getattr(est, method)(X, y)


def test_estimators_without_constraints_are_the_known_ones():
    without = {
        name
        for name, cls in all_estimators()
        if not hasattr(cls, "_parameter_constraints")
    }
    assert without == _NOT_YET_CONSTRAINED


# -- the machinery ----------------------------------------------------------
class _Toy(BaseEstimator):
    """An estimator whose ``fit`` raises ``inner`` once its parameters pass."""

    _parameter_constraints = {
        "k": [Interval(Integral, 1, None, closed="left")],
        "inner": "no_validation",
    }

    def __init__(self, k=1, inner=None):
        self.k = k
        self.inner = inner

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X=None, y=None):
        if self.inner is not None:
            raise self.inner
        return self


def test_fit_context_raises_parameter_error_with_sklearn_message():
    with pytest.raises(ParameterError) as info:
        _Toy(k=0).fit()
    assert str(info.value) == (
        "The 'k' parameter of _Toy must be an int in the range [1, inf). Got 0 instead."
    )
    assert _Toy(k=2).fit().k == 2


def test_fit_context_converts_nested_sklearn_errors_and_keeps_ours():
    nested = InvalidParameterError("The 'x' parameter of Inner must be > 0.")
    with pytest.raises(ParameterError, match="'x' parameter of Inner"):
        _Toy(inner=nested).fit()
    ours = ParameterError("image_size must be a (height, width) pair")
    with pytest.raises(ParameterError) as info:
        _Toy(inner=ours).fit()
    assert info.value is ours
    with pytest.raises(KeyError):  # other errors pass through untouched
        _Toy(inner=KeyError("k")).fit()


@validate_params(
    {
        "mode": [StrOptions({"gray", "rgb"})],
        "n": [Interval(Integral, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def _toy_function(mode, *, n=0):
    """Docstring kept."""
    return mode, n


def test_validate_params_raises_parameter_error():
    assert _toy_function("rgb", n=2) == ("rgb", 2)
    with pytest.raises(ParameterError, match=r"The 'mode' parameter of _toy_function"):
        _toy_function("cmyk")
    with pytest.raises(ParameterError, match="'n' parameter"):
        _toy_function("gray", n=-1)
    assert _toy_function.__doc__ == "Docstring kept."
