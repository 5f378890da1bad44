"""scikit-learn's estimator checks on every public estimator, no exceptions."""

import pytest
from sklearn.utils.estimator_checks import (
    check_param_validation,
    parametrize_with_checks,
)

from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
    NearestNeighborRetriever,
)

# Default parameters: the checks fit on tiny data, so the defaults are fast.
ESTIMATORS = [
    # the default, feature_weight="auto": the pair-free choice at fit (a
    # second fit on part of the data), and its checks on tiny data
    BackwardSearchRetriever(),
    # the ranking by z* alone (the 0.1.0 default): the items' features unkept
    BackwardSearchRetriever(feature_weight=0),
    DistilledRetriever(),
    NearestNeighborRetriever(),
    LabelFilterRetriever(),
    CentroidShiftRetriever(),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# parametrize_with_checks leaves this check out (scikit-learn runs it on its
# own estimators only): every parameter has a constraint, and a bad type or
# value raises InvalidParameterError naming it.
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)
