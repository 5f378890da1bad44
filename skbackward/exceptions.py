"""Warnings raised by skbackward."""

__all__ = ["ConditionNotReachedWarning"]


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
