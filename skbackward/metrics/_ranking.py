"""Rank metrics: how the top k of each query compare to what was wanted.

Precision, AP, hit@k and attribute preservation compare retrieved labels to
wanted ones; tag similarity compares tag sets; neighbour overlap compares the
retrieved rows to a reference set (:mod:`skbackward.metrics._reference`). Public
through :mod:`skbackward.metrics`.
"""

import numpy as np
from sklearn.utils._param_validation import validate_params

from .._utils._docstrings import fill_doc
from .._utils._labels import check_same_kind
from .._utils._validation import count

# the parameters of the metrics that compare retrieved labels to wanted ones
_relevance_doc = fill_doc(relevance_parameters="""
    y_true : array-like of shape (n_queries,) or (n_queries, n_attributes)
        The wanted label of each query (with several attributes, an item is
        relevant only when every attribute matches).
    y_retrieved : array-like of shape (n_queries, n_retrieved[, n_attributes])
        Labels of the retrieved items, best first.
    k : int or None, default=10
        Rank cut-off; ``None`` uses all retrieved items.
""")

_K = [count(1), None]


def _as_array(value, name):
    """``np.asarray(value)``; ragged nested lists raise a ValueError naming it."""
    try:
        return np.asarray(value)
    except ValueError:
        raise ValueError(
            f"{name} must be a rectangular array (every query with as many "
            "entries); got ragged nested sequences."
        ) from None


def _relevance(y_true, y_retrieved, k):
    """Boolean (n_queries, k): retrieved item matches the wanted label(s).

    ``y_true`` is (n,) or (n, A); ``y_retrieved`` is (n, m) or (n, m, A) with
    m >= k. With several attributes an item is relevant when all match.
    Labels of another kind (strings against numbers) never match: refused.
    """
    y_true = _as_array(y_true, "y_true")
    y_retrieved = _as_array(y_retrieved, "y_retrieved")
    if y_true.ndim == 1:
        y_true, y_retrieved = y_true[:, None], y_retrieved[..., None]
    if (
        y_true.ndim != 2
        or y_retrieved.ndim != 3
        or y_retrieved.shape[0] != y_true.shape[0]
        or y_retrieved.shape[2] != y_true.shape[1]
    ):
        raise ValueError(
            "y_retrieved must have shape (n_queries, n_retrieved) for 1-D y_true "
            "or (n_queries, n_retrieved, n_attributes) for 2-D y_true; got "
            f"y_true {y_true.shape} and y_retrieved {y_retrieved.shape}."
        )
    if y_true.shape[0] == 0:
        raise ValueError("Found no queries: y_true is empty.")
    k = y_retrieved.shape[1] if k is None else k
    if not 1 <= k <= y_retrieved.shape[1]:
        raise ValueError(
            f"k must be in [1, n_retrieved={y_retrieved.shape[1]}]; got {k}."
        )
    for a in range(y_true.shape[1]):
        check_same_kind(y_true[:, a], y_retrieved[:, :k, a].ravel(), "y_true",
                        "y_retrieved", a)
    return (y_retrieved[:, :k] == y_true[:, None, :]).all(axis=2)


@validate_params(
    {"y_true": ["array-like"], "y_retrieved": ["array-like"], "k": _K},
    prefer_skip_nested_validation=True,
)
@_relevance_doc
def precision_at_k(y_true, y_retrieved, k=10):
    """Mean precision at k: share of the top k carrying the wanted label.

    This is the figure Lee & Kim (2024) report as "mAP@k".

    Parameters
    ----------
    {relevance_parameters}

    Returns
    -------
    score : float
        Mean over the queries of the share of relevant items in the top k.

    Examples
    --------
    >>> from skbackward.metrics import precision_at_k
    >>> precision_at_k(["a", "b"], [["a", "b"], ["a", "a"]], k=2)
    0.25
    """
    return float(_relevance(y_true, y_retrieved, k).mean())


@validate_params(
    {"y_true": ["array-like"], "y_retrieved": ["array-like"], "k": _K},
    prefer_skip_nested_validation=True,
)
@_relevance_doc
def hit_at_k(y_true, y_retrieved, k=10):
    """Share of queries whose one wanted item is among the top k (hit@k).

    Exact-target retrieval: each query wants one particular item, e.g. the
    same item in the asked class (its counterpart). Pass an identity per
    query and per retrieved item, such as ``(group, label)`` rows: with a
    ``groups`` array (equal values: the same item in other forms), the
    counterpart of query ``q`` asked for class ``c`` is the item with
    ``groups == groups[q]`` and label ``c``. :func:`retrieval_scores` does
    this for a retriever that was given ``groups``.

    Parameters
    ----------
    {relevance_parameters}

    Returns
    -------
    score : float
        Mean over the queries of whether any of the top k matches.

    Examples
    --------
    Query 0 (group 7) asked for "sketch" finds item (7, "sketch") second;
    query 1's counterpart is not in its top 2:

    >>> from skbackward.metrics import hit_at_k
    >>> wanted = [[7, "sketch"], [8, "photo"]]
    >>> retrieved = [[[3, "sketch"], [7, "sketch"]], [[8, "sketch"], [2, "photo"]]]
    >>> hit_at_k(wanted, retrieved, k=2)
    0.5
    """
    return float(_relevance(y_true, y_retrieved, k).any(axis=1).mean())


@validate_params(
    {"query_attributes": ["array-like"], "retrieved_attributes": ["array-like"],
     "k": _K},
    prefer_skip_nested_validation=True,
)
def attribute_preservation_at_k(query_attributes, retrieved_attributes, k=10):
    """Share of the top k that keep the query's unconditioned attribute(s).

    Measures context preservation when items have several attributes: e.g.
    condition on the style and check that the object class is kept.

    Parameters
    ----------
    query_attributes : array-like of shape (n_queries,) or (n_queries, n_kept)
        The query's own value(s) of the attribute(s) that should be kept.
    retrieved_attributes : array-like of shape (n_queries, n_retrieved[, n_kept])
        The same attribute(s) of the retrieved items, best first.
    k : int or None, default=10
        Rank cut-off; ``None`` uses all retrieved items.

    Returns
    -------
    score : float
        Mean over the queries of the share of the top k whose attribute(s)
        all equal the query's.

    Examples
    --------
    Condition on the style; was the object class kept?

    >>> from skbackward.metrics import attribute_preservation_at_k
    >>> query_objects = ["dog", "cat"]
    >>> retrieved_objects = [["dog", "dog", "cat"], ["dog", "cat", "cat"]]
    >>> round(attribute_preservation_at_k(query_objects, retrieved_objects, k=3), 4)
    0.6667
    """
    return float(_relevance(query_attributes, retrieved_attributes, k).mean())


@validate_params(
    {"y_true": ["array-like"], "y_retrieved": ["array-like"], "k": _K,
     "n_relevant": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
@_relevance_doc
def average_precision_at_k(y_true, y_retrieved, k=10, *, n_relevant=None):
    """Mean of the standard IR average precision at k (AP@k).

    ``AP@k = sum_{i<=k} P@i * rel_i / min(k, R)`` where ``R`` is the number of
    relevant items in the database.

    Parameters
    ----------
    {relevance_parameters}
    n_relevant : array-like of shape (n_queries,), default=None
        ``R`` per query: relevant items in the database. ``None`` uses the
        number of relevant items found in the top k (AP of the ranked list).

    Returns
    -------
    score : float
        Mean over the queries of AP@k; a query with ``R = 0`` scores 0.

    Examples
    --------
    >>> from skbackward.metrics import average_precision_at_k
    >>> average_precision_at_k(["a"], [["b", "a"]], k=2)
    0.5
    """
    rel = _relevance(y_true, y_retrieved, k)
    ranks = np.arange(1, rel.shape[1] + 1)
    precision_at_i = np.cumsum(rel, axis=1) / ranks
    hits = (precision_at_i * rel).sum(axis=1)
    if n_relevant is None:
        denom = rel.sum(axis=1)
    else:
        n_relevant = _as_array(n_relevant, "n_relevant")
        if n_relevant.shape != (rel.shape[0],):
            raise ValueError(
                f"n_relevant must have shape ({rel.shape[0]},), one count per "
                f"query; got {n_relevant.shape}."
            )
        if n_relevant.dtype.kind not in "iuf" or not (
            np.isfinite(n_relevant).all() and (n_relevant == np.round(n_relevant)).all()
            and (n_relevant >= 0).all()
        ):
            raise ValueError(
                "n_relevant must hold counts (finite integers >= 0); got "
                f"{n_relevant[:5].tolist()}..."
            )
        if (n_relevant < rel.sum(axis=1)).any():
            raise ValueError(
                "n_relevant is smaller than the number of relevant items found "
                "in the top k for some queries."
            )
        denom = np.minimum(n_relevant, rel.shape[1])
    return float(np.mean(np.divide(hits, denom, out=np.zeros(len(hits)),
                                   where=denom > 0)))


@validate_params(
    {"query_tags": ["array-like"], "retrieved_tags": ["array-like"], "k": _K},
    prefer_skip_nested_validation=True,
)
def tag_similarity_at_k(query_tags, retrieved_tags, k=10):
    """Mean Jaccard similarity of tag sets between query and top k (mTS@k).

    Parameters
    ----------
    query_tags : array-like of shape (n_queries, n_tags)
        Binary indicator matrix of each query's tags.
    retrieved_tags : array-like of shape (n_queries, n_retrieved, n_tags)
        Indicators of the retrieved items' tags, best first.
    k : int or None, default=10
        Rank cut-off; ``None`` uses all retrieved items.

    Returns
    -------
    score : float
        Mean Jaccard similarity over the (query, retrieved item) pairs; pairs
        where both tag sets are empty count as 0.

    Examples
    --------
    >>> from skbackward.metrics import tag_similarity_at_k
    >>> query_tags = [[1, 1, 0]]
    >>> retrieved_tags = [[[1, 0, 0], [1, 1, 0]]]  # Jaccard 1/2 and 1
    >>> tag_similarity_at_k(query_tags, retrieved_tags, k=2)
    0.75
    """
    q = _indicators(query_tags, "query_tags")
    r = _indicators(retrieved_tags, "retrieved_tags")
    if (q.ndim != 2 or r.ndim != 3 or r.shape[0] != q.shape[0]
            or r.shape[2] != q.shape[1]):
        raise ValueError(
            "query_tags must be (n_queries, n_tags) and retrieved_tags "
            f"(n_queries, n_retrieved, n_tags); got {q.shape} and {r.shape}."
        )
    k = r.shape[1] if k is None else k
    if q.shape[0] == 0 or not 1 <= k <= r.shape[1]:
        raise ValueError(f"need queries and k in [1, {r.shape[1]}]; got "
                         f"{q.shape[0]} queries and k={k}.")
    r = r[:, :k]
    inter = (r & q[:, None]).sum(2)
    union = (r | q[:, None]).sum(2)
    return float(np.mean(np.divide(inter, union, out=np.zeros(inter.shape),
                                   where=union > 0)))


def _indicators(tags, name):
    """A binary indicator array (bools, or numbers 0/1) as bools."""
    tags = _as_array(tags, name)
    if tags.dtype.kind not in "biuf" or not np.isin(tags, (0, 1)).all():
        raise ValueError(
            f"{name} must be a binary indicator array (0/1 or bools); got "
            f"dtype {tags.dtype}" + ("" if tags.dtype.kind not in "biuf" else
                                      " with other values") + "."
        )
    return tags.astype(bool)


@validate_params(
    {"retrieved": ["array-like"], "reference": ["array-like"], "k": [count(1)]},
    prefer_skip_nested_validation=True,
)
def neighbor_overlap_at_k(retrieved, reference, k=10):
    """Share of the top k results that are among each query's reference items.

    With ``reference`` from :func:`conditional_neighbors`: how many of the
    results are items a user would have picked by hand as "this item, with
    the other label".

    Parameters
    ----------
    retrieved : array-like of shape (n_queries, n_retrieved)
        Database rows retrieved per query, best first.
    reference : array-like of shape (n_queries, n_reference)
        Database rows of each query's reference set; -1 entries are padding.
    k : int, default=10
        Rank cut-off.

    Returns
    -------
    score : float
        Mean over queries of ``|top k & reference| / k``.

    Examples
    --------
    >>> from skbackward.metrics import neighbor_overlap_at_k
    >>> neighbor_overlap_at_k([[3, 1], [0, 2]], [[3, 2], [1, -1]], k=2)
    0.25
    """
    retrieved = _row_numbers(retrieved, "retrieved")
    reference = _row_numbers(reference, "reference")
    if (retrieved.ndim != 2 or reference.ndim != 2
            or retrieved.shape[0] != reference.shape[0]):
        raise ValueError(
            "retrieved and reference must be 2-D with one row per query; got "
            f"{retrieved.shape} and {reference.shape}."
        )
    if retrieved.shape[0] == 0 or not 1 <= k <= retrieved.shape[1]:
        raise ValueError(f"need queries and k in [1, {retrieved.shape[1]}]; got "
                         f"{retrieved.shape[0]} queries and k={k}.")
    top = retrieved[:, :k, None]
    hits = ((top == reference[:, None, :]) & (reference[:, None, :] >= 0)).any(2)
    return float(hits.mean())


def _row_numbers(rows, name):
    """Database row numbers as an int64 array: integers, or floats that hold
    whole numbers (-1 pads); other values (strings, fractions) are refused."""
    rows = _as_array(rows, name)
    whole = rows.dtype.kind in "iu" or rows.size == 0 or (
        rows.dtype.kind == "f" and bool(np.isfinite(rows).all())
        and bool((rows == np.round(rows)).all())
    )
    if whole:
        return rows.astype(np.int64, copy=False)
    raise ValueError(
        f"{name} must hold database row numbers (integers, -1 for padding), as "
        f"kneighbors and conditional_neighbors return them; got dtype "
        f"{rows.dtype}" + (f" ({rows.ravel()[:3].tolist()}...)" if rows.size else "")
        + "."
    )
