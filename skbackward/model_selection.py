"""The paper's query protocol: which (query, condition) pairs to evaluate.

Lee & Kim evaluate conditional retrieval on (query item, condition class)
pairs: query items sampled class-balanced, the condition drawn uniformly from
the classes that have at least ``k`` database items, 1000 distinct pairs, the
database being the test split (:ref:`query_protocol` in the user guide).
:func:`sample_queries` draws such pairs from labels; the scorers in
:mod:`skbackward.metrics` use the same sampler on each cross-validation fold.
"""

import numbers
import warnings

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_scalar

from ._labels import as_columns, attribute_columns, attribute_names, find_rows

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


def sample_query_pairs(
    query_codes, database_codes, *, n_queries=1000, k=10, exclude_own_class=False,
    balanced=True, random_state=None,
):
    """(query, condition) pairs on integer-coded labels.

    Parameters
    ----------
    query_codes : ndarray of shape (n_query_items, n_conditioned)
        Class index of each query item per conditioned attribute.
    database_codes : ndarray of shape (n_database, n_conditioned)
        The same for the database items; negative entries (unlabelled) never
        make a condition.
    n_queries : int or None, default=1000
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
    random_state : int, RandomState instance or None, default=None
        Seeds the draw; an int gives the same pairs every time.

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
    if n_queries is not None:
        check_scalar(n_queries, "n_queries", numbers.Integral, min_val=1)
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
    if pairs.shape[0] < n_queries:
        warnings.warn(
            f"only {pairs.shape[0]} distinct (query, condition) pairs could be "
            f"drawn; asked for {n_queries}.",
            stacklevel=2,
        )
    pairs = pairs[:n_queries]
    return pairs[:, 0], eligible[pairs[:, 1]]


def sample_queries(
    y_query, y_database, *, condition_on=None, n_queries=1000, k=10,
    exclude_own_class=False, balanced=True, random_state=None,
):
    """Draw the paper's (query, condition) pairs from labels.

    Parameters
    ----------
    y_query : array-like of shape (n_query_items,) or (n_query_items, n_attributes)
        Labels of the candidate query items (1-D, 2-D or a DataFrame).
    y_database : array-like of the same layout
        Labels of the database items.
    condition_on : attribute name or list of names, default=None
        The attribute(s) to condition on; ``None``: all of them jointly.
    n_queries : int or None, default=1000
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
    random_state : int, RandomState instance or None, default=None
        Seeds the draw; an int gives the same pairs every time.

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
    Q, D = as_columns(y_query), as_columns(y_database)
    names = attribute_names(np.asarray(y_query), getattr(y_query, "columns", None))
    if Q.shape[1] != D.shape[1]:
        raise ValueError(
            f"y_query has {Q.shape[1]} attribute(s), y_database {D.shape[1]}."
        )
    cols = attribute_columns(condition_on, names)
    q_codes, d_codes, classes = [], [], []
    for c in cols:
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

