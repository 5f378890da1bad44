"""The paper's query protocol: which (query, condition) pairs to evaluate.

Lee & Kim evaluate conditional retrieval on (query item, condition class)
pairs: query items sampled class-balanced, the condition drawn uniformly from
the classes that have at least ``k`` database items, 1000 distinct pairs, the
database being the test split (:ref:`query_protocol` in the user guide).
:func:`sample_queries` draws such pairs from labels; the scorers in
:mod:`skbackward.metrics` use the same sampler on each cross-validation fold.
"""

import warnings

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import validate_params

from ._utils._labels import (
    align_columns,
    as_columns,
    attribute_columns,
    attribute_names,
    check_labels,
    check_same_kind,
    find_rows,
)
from ._utils._validation import count

__all__ = ["sample_queries", "sample_query_pairs"]

_MAX_ROUNDS = 50  # rounds of drawing before deciding the pairs are exhausted


def _conditions_for(own, n_eligible, exclude_own_class, rng):
    """Draw one eligible condition per query, skipping ``own`` if asked.

    ``own[i]`` is the index of query i's own class among the eligible ones
    (-1 if not eligible). Returns indices into the eligible classes, -1 where
    a query has no other eligible class.
    """
    skip = exclude_own_class & (own >= 0)
    n_choices = n_eligible - skip
    draw = np.floor(rng.random_sample(own.shape[0]) * np.maximum(n_choices, 1))
    draw = draw.astype(np.int64)
    draw += skip & (draw >= own)  # step over the query's own class
    return np.where(n_choices > 0, draw, -1)


def _all_pairs(own, n_eligible, exclude_own_class):
    """Every distinct (query item, eligible condition) pair, as two arrays."""
    skip = exclude_own_class & (own >= 0)
    n_choices = n_eligible - skip
    items = np.repeat(np.arange(own.shape[0]), n_choices)
    first = np.concatenate([[0], np.cumsum(n_choices)[:-1]])
    j = np.arange(items.shape[0]) - first[items]
    return items, j + (skip[items] & (j >= own[items]))


def _pairs_in_draw_order(item_weight, own, n_eligible, exclude_own_class, n, rng):
    """``n`` distinct pairs drawn without replacement, enumerating them all.

    Drawing pairs one at a time with probability ``item_weight[i] / (number
    of conditions of i)`` and skipping repeats is sampling without
    replacement; exponential races (Efraimidis & Spirakis, 2006) give that
    order directly: pair ``j`` arrives at time ``E_j / w_j``, ``E_j ~ Exp(1)``.
    """
    items, cond = _all_pairs(own, n_eligible, exclude_own_class)
    n_choices = np.bincount(items, minlength=own.shape[0])
    weight = item_weight[items] / n_choices[items]
    arrival = rng.standard_exponential(items.shape[0]) / weight
    order = np.argsort(arrival, kind="stable")[:n]
    return np.stack([items[order], cond[order]], axis=1)


@validate_params(
    {"query_codes": ["array-like"], "database_codes": ["array-like"],
     "n_queries": [count(1), None], "k": [count(1)],
     "exclude_own_class": ["boolean"], "balanced": ["boolean"],
     "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def sample_query_pairs(
    query_codes, database_codes, *, n_queries=None, k=10, exclude_own_class=False,
    balanced=True, random_state=0,
):
    """(query, condition) pairs on integer-coded labels.

    Parameters
    ----------
    query_codes : ndarray of shape (n_query_items, n_conditioned)
        Class index of each query item per conditioned attribute.
    database_codes : ndarray of shape (n_database, n_conditioned)
        The same for the database items; negative entries (unlabelled) never
        make a condition.
    n_queries : int or None, default=None
        Number of distinct pairs. ``None``: every query item once, each with
        one random condition.
    k : int, default=10
        Only conditions (joint class combinations) with at least ``k``
        database items are drawn.
    exclude_own_class : bool, default=False
        Never condition a query on its own class (the paper allows it).
    balanced : bool, default=True
        Draw the query's class uniformly, then an item of that class (the
        paper); otherwise query items uniformly.
    random_state : int, RandomState instance or None, default=0
        Seeds the draw; fixed by default, as in the scorers, so that every
        evaluation of the same labels draws the same pairs (None: a new draw
        each call).

    Returns
    -------
    query_index : ndarray of shape (n_pairs,)
        Row of ``query_codes`` of each query.
    condition_codes : ndarray of shape (n_pairs, n_conditioned)
        The condition of each query, as class indices per attribute.

    Examples
    --------
    >>> import numpy as np
    >>> from skbackward.model_selection import sample_query_pairs
    >>> codes = np.repeat([[0], [1], [2]], 20, axis=0)  # 3 classes, 20 items each
    >>> qi, cond = sample_query_pairs(codes, codes, n_queries=4, k=10,
    ...                               exclude_own_class=True, random_state=0)
    >>> qi.shape, cond.shape
    ((4,), (4, 1))
    >>> bool((cond[:, 0] != codes[qi, 0]).all())
    True
    """
    query_codes = _codes(query_codes, "query_codes")
    database_codes = _codes(database_codes, "database_codes")
    if query_codes.shape[1] != database_codes.shape[1]:
        raise ValueError(
            f"query_codes has {query_codes.shape[1]} column(s), database_codes "
            f"{database_codes.shape[1]}; one per conditioned attribute in both."
        )
    if query_codes.shape[0] == 0:
        raise ValueError("no query items: y_query is empty.")
    rng = check_random_state(random_state)
    database_codes = database_codes[(database_codes >= 0).all(1)]
    classes, counts = np.unique(database_codes, axis=0, return_counts=True)
    eligible = classes[counts >= k]
    if eligible.shape[0] == 0:
        raise ValueError(
            f"no condition class has at least k={k} database items; "
            "lower k or use a larger database."
        )
    own = find_rows(query_codes, eligible)
    if n_queries is None:
        query_index = np.arange(query_codes.shape[0])
        cond = _conditions_for(own, eligible.shape[0], exclude_own_class, rng)
        ok = cond >= 0
        return query_index[ok], eligible[cond[ok]]

    # Group query items by their class so a class can be drawn first.
    groups, group_of = np.unique(query_codes, axis=0, return_inverse=True)
    group_of = group_of.ravel()
    order = np.argsort(group_of, kind="stable")
    sizes = np.bincount(group_of, minlength=groups.shape[0])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    n_pairs = int((eligible.shape[0] - (exclude_own_class & (own >= 0))).sum())
    if n_pairs <= 2 * n_queries:
        # Asked for most (or more) of the pairs there are: drawing with
        # repeats would take ever longer rounds to find the last ones.
        if balanced:
            item_weight = 1.0 / (groups.shape[0] * sizes[group_of])
        else:
            item_weight = np.ones(query_codes.shape[0])
        pairs = _pairs_in_draw_order(
            item_weight, own, eligible.shape[0], exclude_own_class, n_queries, rng
        )
        return _checked_count(pairs, n_queries, eligible)
    pairs = np.empty((0, 2), dtype=np.int64)
    for _ in range(_MAX_ROUNDS):
        n_draw = 2 * n_queries
        if balanced:
            g = rng.randint(groups.shape[0], size=n_draw)
            offset = (rng.random_sample(n_draw) * sizes[g]).astype(np.int64)
            items = order[starts[g] + offset]
        else:
            items = rng.randint(query_codes.shape[0], size=n_draw)
        cond = _conditions_for(own[items], eligible.shape[0], exclude_own_class, rng)
        new = np.stack([items, cond], axis=1)[cond >= 0]
        pairs = np.concatenate([pairs, new])
        _, first = np.unique(pairs, axis=0, return_index=True)
        pairs = pairs[np.sort(first)]  # distinct pairs, in the order drawn
        if pairs.shape[0] >= n_queries:
            break
    return _checked_count(pairs[:n_queries], n_queries, eligible)


def _checked_count(pairs, n_queries, eligible):
    """The pairs as (query_index, condition_codes); warn when too few."""
    if pairs.shape[0] < n_queries:
        warnings.warn(
            f"only {pairs.shape[0]} distinct (query, condition) pairs could be "
            f"drawn; asked for {n_queries}.",
            stacklevel=2,
        )
    return pairs[:, 0], eligible[pairs[:, 1]]


def _codes(codes, name):
    """Integer label codes as a 2-D array (one column per attribute)."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be a 2-D array of integer codes; got dtype "
            f"{codes.dtype} and shape {codes.shape}."
        )
    return codes


@validate_params(
    {"y_query": ["array-like"], "y_database": ["array-like"],
     "condition_on": "no_validation", "n_queries": [count(1), None],
     "k": [count(1)], "exclude_own_class": ["boolean"], "balanced": ["boolean"],
     "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def sample_queries(
    y_query, y_database, *, condition_on=None, n_queries=None, k=10,
    exclude_own_class=False, balanced=True, random_state=0,
):
    """Draw the paper's (query, condition) pairs from labels.

    Parameters
    ----------
    y_query : array-like of shape (n_query_items,) or (n_query_items, n_attributes)
        Labels of the candidate query items (1-D, 2-D or a DataFrame).
    y_database : array-like of the same layout
        Labels of the database items. When both are DataFrames, their
        columns are paired by name; otherwise by position.
    condition_on : attribute name or list of names, default=None
        The attribute(s) to condition on; ``None``: all of them jointly.
    n_queries : int or None, default=None
        Number of distinct (query, condition) pairs; ``None``: every query
        item once, each with a random condition.
    k : int, default=10
        Conditions need at least ``k`` database items (all conditioned
        attributes matching).
    exclude_own_class : bool, default=False
        Never condition a query on the class it already has (the paper does
        not exclude it).
    balanced : bool, default=True
        Class-balanced sampling of the query items, as in the paper.
    random_state : int, RandomState instance or None, default=0
        Seeds the draw; fixed by default, as in the scorers, so that every
        evaluation of the same labels draws the same pairs (None: a new draw
        each call).

    Returns
    -------
    query_index : ndarray of shape (n_pairs,)
        Row of ``y_query`` of each query.
    condition : dict
        ``{attribute: labels of shape (n_pairs,)}``, ready to pass as the
        ``condition`` of ``transform`` / ``kneighbors``.

    Examples
    --------
    >>> import numpy as np
    >>> from skbackward.model_selection import sample_queries
    >>> y = np.repeat([0, 1, 2], 20)
    >>> qi, cond = sample_queries(y, y, n_queries=5, k=10, random_state=0)
    >>> qi.shape, cond[0].shape
    ((5,), (5,))
    """
    if hasattr(y_query, "columns"):  # two DataFrames: columns paired by name
        y_database = align_columns(
            y_database, list(y_query.columns), input_name="y_database",
            reference="y_query has columns", remedy="name them alike",
        )
    Q = as_columns(check_labels(y_query, input_name="y_query"))
    D = as_columns(check_labels(y_database, input_name="y_database"))
    names = attribute_names(np.asarray(y_query), getattr(y_query, "columns", None))
    if Q.shape[1] != D.shape[1]:
        raise ValueError(
            f"y_query has {Q.shape[1]} attribute(s), y_database {D.shape[1]}."
        )
    cols = attribute_columns(condition_on, names)
    q_codes, d_codes, classes = [], [], []
    for c in cols:
        check_same_kind(Q[:, c], D[:, c], "y_query", "y_database", names[c])
        cls, inv = np.unique(np.concatenate([Q[:, c], D[:, c]]), return_inverse=True)
        q_codes.append(inv[: Q.shape[0]])
        d_codes.append(inv[Q.shape[0]:])
        classes.append(cls)
    query_index, cond = sample_query_pairs(
        np.stack(q_codes, 1), np.stack(d_codes, 1), n_queries=n_queries, k=k,
        exclude_own_class=exclude_own_class, balanced=balanced,
        random_state=random_state,
    )
    return query_index, {
        names[c]: classes[j][cond[:, j]] for j, c in enumerate(cols)
    }

