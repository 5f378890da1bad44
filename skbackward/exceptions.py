"""Warnings and errors raised by skbackward."""

__all__ = ["ConditionNotReachedWarning", "ScoringSetupError"]


class ConditionNotReachedWarning(UserWarning):
    """Some conditioned queries did not reach their condition.

    Raised by ``transform`` and ``kneighbors`` of the retrievers that move a
    query until the classifier heads predict the condition
    (:class:`~skbackward.BackwardSearchRetriever` and
    :class:`~skbackward.DistilledRetriever`) when a notable share of the
    conditioned queries of a call still gets another class from the heads at
    the moved embedding: ``alpha`` may be too large for these queries, or the
    search too short. The results are still returned;
    ``condition_report(X, condition=...)`` shows which queries, how many steps
    they took and how far they moved.

    Examples
    --------
    To turn it into an error for one block of code:

    >>> import warnings
    >>> from skbackward.exceptions import ConditionNotReachedWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", ConditionNotReachedWarning)
    ...     issubclass(ConditionNotReachedWarning, UserWarning)
    True
    """


class ScoringSetupError(BaseException):
    """A retrieval scorer cannot measure its metric in this set-up.

    Raised by the scorers of :func:`~skbackward.metrics.make_retrieval_scorer`
    when the metric cannot be measured for any candidate, whatever its
    parameters: "hit" without the queries' groups, or with folds that put
    every query's counterpart outside the database (grouped folds such as
    ``GroupKFold``); "preservation" with no attribute left unconditioned.

    It derives from ``BaseException``, not ``Exception``, as pytest's test
    outcomes do: ``GridSearchCV`` and ``cross_validate`` catch every
    ``Exception`` a scorer raises and record ``error_score`` (NaN) with a
    warning for each candidate and fold, so a set-up error would end as a
    search of NaN scores. This error stops the search at the first fold
    instead. Catch it by name (``except Exception`` does not).

    Examples
    --------
    >>> from skbackward.exceptions import ScoringSetupError
    >>> issubclass(ScoringSetupError, Exception)
    False
    """
