"""Parameter constraints in scikit-learn's vocabulary, and query-time checks.

The estimators declare ``_parameter_constraints`` with scikit-learn's
constraint objects; ``fit`` validates every parameter (``_fit_context``) and
the query methods validate, through :func:`check_params`, only the parameters
they read. Two constraints are added to scikit-learn's: numbers that refuse
booleans (``True`` is not a count), and the device strings torch is used with.
"""

from __future__ import annotations

import re
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import validate_data

from ._labels import is_missing, value_kinds

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
# n_jobs. Bounded: OpenMP crashed the process creating 100,000 threads and
# torch refuses 2**31 with a bare "Overflow"; beyond the cores more threads
# only cost, and 1,024 is more cores than one machine has
MAX_THREADS = 1024
THREADS_CONSTRAINT = [None, count(1, MAX_THREADS),
                      Range(Integral, None, -1, closed="right")]


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


def check_groups(groups: Any, n_samples: int) -> NDArray[Any] | None:
    """``groups`` as a 1-D array of ``n_samples`` numbers or strings (all of
    one kind, none missing), or None."""
    if groups is None:
        return None
    typed = getattr(groups, "dtype", None)
    try:
        # a list as given: np.asarray([1, "1"]) would make both the string "1"
        given = np.asarray(groups, dtype=None if typed is not None else object)
    except ValueError:  # ragged
        given = np.empty((0, 0), dtype=object)
    if given.shape != (n_samples,):
        raise ValueError(
            f"groups must have shape ({n_samples},), one group per item; got "
            f"shape {given.shape}."
        )
    if is_missing(given).any():
        raise ValueError(
            "groups holds missing values (None, NaN or pd.NA): every item needs "
            "a group (a missing group equals no other, so its item could never "
            "be a counterpart)."
        )
    if given.dtype.kind in "biufUS":  # a typed array: one kind
        return given
    if len(value_kinds(given, "groups")) > 1:
        raise ValueError(
            "groups mixes numbers and strings (e.g. 1 and '1'): give every group "
            "as a number or every group as a string."
        )
    return np.asarray(given.tolist()) if len(given) else given


def group_kind(groups):
    """"number" or "string": the kind of groups checked by :func:`check_groups`."""
    return "string" if groups.dtype.kind in "US" else "number"


def check_same_group_kind(indexed, groups):
    """A ValueError when the ``groups`` given are of another kind than the
    index's ``indexed`` ones (their values could never be equal)."""
    kinds = group_kind(indexed), group_kind(groups)
    if kinds[0] != kinds[1]:
        raise ValueError(
            f"groups holds {kinds[1]}s, but the index's groups (index_groups_) "
            f"are {kinds[0]}s: groups of another kind never match. Give the "
            "groups as the index holds them."
        )


def validate_X(estimator: Any, X: Any, **kwargs: Any) -> NDArray[Any]:
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
