"""Parameter constraints in scikit-learn's vocabulary, and query-time checks.

The estimators declare ``_parameter_constraints`` with scikit-learn's
constraint objects; ``fit`` validates every parameter (``_fit_context``) and
the query methods validate, through :func:`check_params`, only the parameters
they read. Two constraints are added to scikit-learn's: numbers that refuse
booleans (``True`` is not a count), and the device strings torch is used with.
"""

import re
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import validate_data

# the dtypes the retrievers compute in: float32 stays float32, others float64
FLOAT_DTYPES = (np.float64, np.float32)


class Range(Interval):
    """scikit-learn's ``Interval`` that refuses booleans.

    ``Interval(Integral, 1, None)`` accepts ``True`` (a bool is an int);
    a count, a rate or a weight given as ``True`` is a mistake.
    """

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


def count(low=1, high=None):
    """Integers ``>= low`` (and ``<= high`` when given)."""
    return Range(Integral, low, high, closed="left" if high is None else "both")


def position():
    """Integers of any sign (a slice's bounds: negative counts from the end)."""
    return Range(Integral, None, None, closed="neither")


# the largest value a C ``int`` holds: parameters handed to C++ as an int
# (faiss's nprobe and efSearch: our nprobe and ef_search) must fit, or SWIG
# fails deep inside a search
C_INT_MAX = 2**31 - 1


def finite(low=0.0, *, positive=False):
    """Finite reals ``>= low`` (``> low`` when ``positive``): NaN and inf refused.

    ``Interval(Real, 0, None)`` would admit ``inf``; an explicit upper bound
    of ``inf``, open, refuses it.
    """
    return Range(Real, low, np.inf, closed="neither" if positive else "left")


# The minibatch Adam training's parameters (train_network), shared by the
# retrievers that train a network and by the distilled student.
TRAINING_CONSTRAINTS = {
    "epochs": [count(1)],
    "batch_size": [count(2)],  # BatchNorm cannot train on one sample
    "learning_rate": [finite(0.0, positive=True)],
    "weight_decay": [finite(0.0)],
    "lr_decay": [Range(Real, 0, 1, closed="right")],
}


# ``n_threads``: None, a positive count, or a negative one counted down from
# the current torch setting (-1: that setting itself), as scikit-learn counts
# n_jobs
THREADS_CONSTRAINT = [None, count(1), Range(Integral, None, -1, closed="right")]


# the ``preserve`` parameter: "none", "predicted" or a list of attribute names
PRESERVE_CONSTRAINT = [StrOptions({"none", "predicted"}), list, tuple]


class DeviceOptions(StrOptions):
    """The device strings supported: "cpu", "cuda", "cuda:<index>" and "auto"."""

    def __init__(self):
        super().__init__({"auto", "cpu", "cuda"})

    def is_satisfied_by(self, val):
        return isinstance(val, str) and (
            val in self.options or re.fullmatch(r"cuda:\d+", val) is not None
        )

    def __str__(self):
        return "a str among 'cpu', 'cuda', 'cuda:<index>' and 'auto'"


def check_params(estimator, names):
    """Validate the estimator parameters ``names`` against its constraints.

    For the query methods: they read some parameters (``alpha``,
    ``n_neighbors``, ...) that may have been changed by ``set_params`` after
    ``fit``; the training parameters are not checked again.
    """
    params = estimator.get_params(deep=False)
    validate_parameter_constraints(
        {name: estimator._parameter_constraints[name] for name in names},
        {name: params[name] for name in names},
        caller_name=type(estimator).__name__,
    )


def check_all_params(estimator):
    """Validate every parameter of ``estimator`` (what ``fit`` validates):
    for an index at the start of its build, and for a teacher fitted by its
    student."""
    check_params(estimator, estimator._parameter_constraints)


def check_arguments(constraints, caller_name, **arguments):
    """Validate method arguments against ``{name: constraints}``."""
    validate_parameter_constraints(constraints, arguments, caller_name=caller_name)


def check_groups(groups, n_samples):
    """``groups`` as a 1-D array of ``n_samples`` hashable values, or None."""
    if groups is None:
        return None
    try:
        groups = np.asarray(groups)
    except ValueError:  # ragged
        groups = np.empty((0, 0))
    if groups.shape != (n_samples,):
        raise ValueError(
            f"groups must have shape ({n_samples},), one group per item; got "
            f"shape {groups.shape}."
        )
    if groups.dtype.kind == "f" and np.isnan(groups).any():
        raise ValueError("groups holds NaN: every item needs a group (a NaN "
                         "equals no other, so it could never be a counterpart).")
    return groups


def validate_X(estimator, X, **kwargs):
    """``validate_data`` for ``X`` (``reset=False`` unless given); an error
    that does not name X says so.

    ``order="C"`` copies arrays with negative strides (``X[::-1]``),
    which torch cannot read.
    """
    kwargs.setdefault("reset", False)
    try:
        return validate_data(estimator, X, dtype=FLOAT_DTYPES, order="C", **kwargs)
    except ValueError as exc:
        if "X" in str(exc).split(" ") or "Input X" in str(exc):
            raise
        raise ValueError(f"Invalid X: {exc}") from None


def check_exclude(exclude, n_queries, n_items):
    """``exclude`` as int64, one indexed row (or -1) per query, or None."""
    if exclude is None:
        return None
    try:
        exclude = np.asarray(exclude)
    except ValueError:  # ragged
        exclude = np.empty(0, dtype=object)
    if exclude.shape != (n_queries,) or exclude.dtype.kind not in "iu":
        raise ValueError(
            f"exclude must be integers of shape ({n_queries},), one indexed "
            f"row (or -1) per query; got {exclude.dtype} {exclude.shape}."
        )
    if (exclude >= n_items).any() or (exclude < -1).any():
        raise ValueError(f"exclude holds rows outside [-1, {n_items - 1}].")
    return exclude.astype(np.int64)


def check_n_neighbors(k, n_db, n_q, exclude, x_is_none=False):
    """Checked before paying for a search: ``k`` items must be left once
    each query's excluded item is left out."""
    left = n_db - (exclude is not None and bool((exclude >= 0).any()))
    if k > left:
        raise ValueError(
            f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {k}, "
            f"n_samples_fit = {n_db}, n_samples = {n_q}"
            + ("" if left == n_db else
               f" ({left} items are left after excluding one per query"
               + ("; X=None excludes each item itself)" if x_is_none else ")"))
        )
