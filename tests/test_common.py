"""scikit-learn's estimator checks on every public estimator, no exceptions."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
    NearestNeighborRetriever,
)

# Default parameters: the checks fit on tiny data, so the defaults are fast.
ESTIMATORS = [
    BackwardSearchRetriever(),
    DistilledRetriever(),
    NearestNeighborRetriever(),
    LabelFilterRetriever(),
    CentroidShiftRetriever(),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
