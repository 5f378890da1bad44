"""Retrieval metrics at rank k and scorers for model selection.

Naming is truthful: :func:`precision_at_k` is what the paper (Lee & Kim, 2024)
reports as "mAP@k"; :func:`average_precision_at_k` is the standard
information-retrieval AP@k. :func:`attribute_preservation_at_k` and
:func:`tag_similarity_at_k` measure whether the results keep the query's
context (the paper's mTS@k is the latter).
"""

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, StrOptions, validate_params
from sklearn.utils.metadata_routing import MetadataRequest
from sklearn.utils.validation import _num_samples, check_array

from ._docstrings import fill_doc
from ._labels import attribute_columns, check_same_kind, count_rows
from ._validation import check_groups, count
from .model_selection import sample_query_pairs

__all__ = [
    "attribute_preservation_at_k",
    "average_precision_at_k",
    "conditional_neighbors",
    "hit_at_k",
    "make_map_scorer",
    "make_precision_scorer",
    "make_retrieval_scorer",
    "neighbor_overlap_at_k",
    "precision_at_k",
    "retrieval_scores",
    "tag_similarity_at_k",
]


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
    {"X_query": ["array-like"], "X_database": ["array-like"],
     "y_database": ["array-like"], "wanted": ["array-like"],
     "n_neighbors": [count(1)], "exclude": ["array-like", None],
     "metric": "no_validation"},  # NearestNeighbors checks it
    prefer_skip_nested_validation=True,
)
def conditional_neighbors(
    X_query, X_database, y_database, wanted, n_neighbors=10, *, exclude=None,
    metric="cosine",
):
    """The items a user would pick by hand for "this item, but with label c".

    For each query, the ``n_neighbors`` database items nearest to it in the
    *input feature space* among those that carry the wanted label(s): the
    same thing, with the other label. Together with
    :func:`neighbor_overlap_at_k` this measures context preservation at a
    finer grain than :func:`attribute_preservation_at_k`, which only asks
    whether a coarse attribute is kept.

    Parameters
    ----------
    X_query : array-like of shape (n_queries, n_features)
        The queries' input features.
    X_database : array-like of shape (n_database, n_features)
        The database items' input features.
    y_database : array-like of shape (n_database,) or (n_database, n_attributes)
        The database items' labels of the conditioned attribute(s).
    wanted : array-like of shape (n_queries,) or (n_queries, n_attributes)
        Each query's wanted label(s); an item qualifies when all match.
    n_neighbors : int, default=10
        Reference items per query.
    exclude : array-like of shape (n_queries,), default=None
        A database row never to count for each query (e.g. the query itself
        when the queries are database items), -1 for none.
    metric : str, default="cosine"
        Distance in the input space, any metric of
        :class:`~sklearn.neighbors.NearestNeighbors`.

    Returns
    -------
    reference : ndarray of shape (n_queries, n_neighbors)
        Database rows, nearest first; -1 pads where fewer items qualify.

    Examples
    --------
    >>> import numpy as np
    >>> from skbackward.metrics import conditional_neighbors
    >>> X_db = np.array([[0.0, 1.0], [1.0, 0.1], [1.0, 1.0], [0.1, 1.0]])
    >>> y_db = np.array(["a", "b", "b", "b"])
    >>> conditional_neighbors([[0.0, 1.0]], X_db, y_db, ["b"], n_neighbors=2)
    array([[3, 2]])
    """
    from sklearn.neighbors import NearestNeighbors

    X_query = check_array(X_query, input_name="X_query")
    X_database = check_array(X_database, input_name="X_database")
    if X_query.shape[1] != X_database.shape[1]:
        raise ValueError(
            f"X_query has {X_query.shape[1]} features and X_database "
            f"{X_database.shape[1]}; both must be in the same input space."
        )
    codes_db, codes_q = _joint_codes(y_database, wanted)
    if X_database.shape[0] != codes_db.shape[0]:
        raise ValueError(
            f"y_database has {codes_db.shape[0]} rows but X_database has "
            f"{X_database.shape[0]}."
        )
    if X_query.shape[0] != codes_q.shape[0]:
        raise ValueError(
            f"wanted has {codes_q.shape[0]} rows but X_query has {X_query.shape[0]}."
        )
    n_q = X_query.shape[0]
    exclude = np.full(n_q, -1) if exclude is None else _as_array(exclude, "exclude")
    if exclude.shape != (n_q,) or exclude.dtype.kind not in "iu":
        raise ValueError(
            f"exclude must be integers of shape ({n_q},), one database row (or "
            f"-1) per query; got {exclude.dtype} {exclude.shape}."
        )
    reference = np.full((n_q, n_neighbors), -1, dtype=np.int64)
    # one neighbour search per distinct wanted class, over that class's items
    for code in np.unique(codes_q):
        queries = np.flatnonzero(codes_q == code)
        items = np.flatnonzero(codes_db == code)
        if items.size == 0:
            continue
        nn = NearestNeighbors(n_neighbors=min(n_neighbors + 1, items.size),
                              metric=metric).fit(X_database[items])
        found = items[nn.kneighbors(X_query[queries], return_distance=False)]
        found[found == exclude[queries, None]] = -1
        # drop the excluded row, keep the order, pad with -1
        order = np.argsort(found < 0, axis=1, kind="stable")[:, :n_neighbors]
        kept = np.take_along_axis(found, order, axis=1)
        reference[queries, : kept.shape[1]] = kept
    return reference


def _joint_codes(y_database, wanted):
    """Integer codes of the label rows of the database and of the wishes,
    one shared code per distinct combination of labels."""
    db = np.asarray(y_database, dtype=object)
    q = np.asarray(wanted, dtype=object)
    db, q = (a.reshape(-1, 1) if a.ndim == 1 else a for a in (db, q))
    if db.ndim != 2 or q.ndim != 2 or db.shape[1] != q.shape[1]:
        raise ValueError(
            "y_database and wanted must have the same number of attributes; got "
            f"shapes {np.shape(y_database)} and {np.shape(wanted)}."
        )
    for a in range(db.shape[1]):
        check_same_kind(db[:, a], q[:, a], "y_database", "wanted", a)
    keys = [tuple(row) for row in np.concatenate([db, q])]
    table = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    codes = np.array([table[key] for key in keys], dtype=np.int64)
    return codes[: db.shape[0]], codes[db.shape[0]:]


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


# ---- scorers --------------------------------------------------------------

_METRICS = ("precision", "average_precision", "preservation", "harmonic", "hit")


def _last_step(estimator, X):
    """The retriever and ``X`` in its input space (through a Pipeline).

    A Pipeline must end in a retriever (something with ``kneighbors`` and
    ``index_labels_``): a classifier at the end has no index to score.
    """
    if isinstance(estimator, Pipeline):
        last = estimator[-1]
        if not hasattr(last, "kneighbors"):
            raise TypeError(
                "estimator is a Pipeline whose last step is a "
                f"{type(last).__name__}, not a retriever: retrieval scores need "
                "a Pipeline ending in a retriever (e.g. BackwardSearchRetriever)."
            )
        return last, estimator[:-1].transform(X)
    return estimator, X


@validate_params(
    {"estimator": [HasMethods(["kneighbors"]), Pipeline], "X": ["array-like"],
     "y": ["array-like"], "k": [count(1)], "condition_on": "no_validation",
     "exclude_own_class": ["boolean"], "n_queries": [count(1), None],
     "random_state": ["random_state"], "X_is_index": ["boolean"],
     "groups": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def retrieval_scores(
    estimator, X, y, *, k=10, condition_on=None, exclude_own_class=False,
    n_queries=None, random_state=0, X_is_index=False, groups=None,
):
    """Conditional-retrieval figures of a fitted retriever on labelled queries.

    The retriever's index (after ``fit``, the training data) is the database;
    ``X, y`` give the query items. Conditions are drawn with
    :func:`~skbackward.model_selection.sample_query_pairs` from the classes
    with at least ``k`` database items.

    Parameters
    ----------
    estimator : retriever or Pipeline ending in one
        Fitted; its index must be labelled (``fit`` or ``index(X, y)``).
    X : array-like of shape (n_items, n_features)
        Features of the query items.
    y : array-like of shape (n_items,) or (n_items, n_attributes)
        Labels of the query items, in the layout of the fitted ``y``.
    k : int, default=10
        Rank cut-off, and the number of database items a condition class
        needs to be drawn.
    condition_on : attribute or list of attributes, default=None
        Attributes to condition on; ``None``: all of them jointly. The other
        attributes are the ones whose preservation is measured.
    exclude_own_class : bool, default=False
        Never condition a query on the class it already has (the paper does
        not exclude it).
    n_queries : int or None, default=None
        ``None``: every item of ``X`` is a query once; an int: that many
        class-balanced pairs (the paper's protocol).
    random_state : int, RandomState instance or None, default=0
        Fixed by default so every candidate of a grid search sees the same
        queries.
    X_is_index : bool, default=False
        Whether ``X`` holds the indexed items themselves (row i of ``X`` is
        indexed item i, as when the test split is both the database and the
        source of queries): each query's own item is then left out of its
        results.
    groups : array-like of shape (n_items,), default=None
        The group of each query item (equal values: the same item in other
        forms). With it, and with the index's ``index_groups_`` (``groups``
        given to ``fit`` or ``index``), ``hit`` is measured: whether the
        query's counterpart, the indexed item of its group carrying the
        asked condition, is among its top ``k`` (:func:`hit_at_k`).

    Returns
    -------
    scores : dict
        ``precision``, ``average_precision`` (R = matching database items,
        the query's own item not counted when ``X_is_index``),
        ``preservation`` (NaN when no attribute is left unconditioned),
        ``harmonic`` (harmonic mean of precision and preservation) and
        ``hit`` (hit@k over the queries whose counterpart is indexed; NaN
        without ``groups``, or when no query has one).

    Examples
    --------
    >>> import numpy as np
    >>> from skbackward import LabelFilterRetriever
    >>> from skbackward.metrics import retrieval_scores
    >>> rng = np.random.RandomState(0)
    >>> y = np.repeat([0, 1, 2], 40)
    >>> X = np.eye(3)[y] * 3 + rng.normal(scale=0.5, size=(120, 3))
    >>> ret = LabelFilterRetriever(epochs=5, random_state=0).fit(X[::2], y[::2])
    >>> scores = retrieval_scores(ret, X[1::2], y[1::2], k=5)
    >>> sorted(scores)
    ['average_precision', 'harmonic', 'hit', 'precision', 'preservation']
    >>> bool(scores["precision"] > 0.9)
    True
    """
    if _num_samples(y) != _num_samples(X):
        raise ValueError(
            f"y has {_num_samples(y)} labels but X has {_num_samples(X)} "
            "queries; one label (row) per query."
        )
    retriever, X = _last_step(estimator, X)
    if getattr(retriever, "index_labels_", None) is None:
        raise ValueError(
            "the retriever's index has no labels: fit it, or call index(X, y) "
            "with labels, before scoring."
        )
    if X_is_index and _num_samples(X) != retriever.n_index_samples_:
        raise ValueError(
            f"X_is_index=True says row i of X is indexed item i, but X has "
            f"{_num_samples(X)} rows and the index {retriever.n_index_samples_} "
            "items: pass the indexed items themselves as X, or X_is_index=False "
            "for queries from elsewhere."
        )
    if groups is not None:
        groups = check_groups(groups, _num_samples(X))
        if getattr(retriever, "index_groups_", None) is None:
            raise ValueError(
                "groups were given for the queries, but the retriever's index "
                "has none: pass groups to fit (in GridSearchCV, with "
                "set_fit_request(groups=True)) or to index(X, y, groups=...)."
            )
        check_same_kind(retriever.index_groups_, groups, "index_groups_",
                        "groups", "groups")
    attributes = retriever.attributes_
    cols = attribute_columns(condition_on, attributes)
    kept = [a for a in range(len(attributes)) if a not in cols]
    db = retriever.encode_labels(retriever.index_labels_)
    queries = retriever.encode_labels(y)  # labels not seen in fit: -1, match no item
    qi, cond = sample_query_pairs(
        queries[:, cols], db[:, cols], n_queries=n_queries, k=k,
        exclude_own_class=exclude_own_class, random_state=random_state,
    )
    condition = {
        attributes[c]: retriever.attribute_classes_[c][cond[:, j]]
        for j, c in enumerate(cols)
    }
    ind = retriever.kneighbors(
        _safe_indexing(X, qi), k, return_distance=False, condition=condition,
        exclude=qi if X_is_index else None,
    )
    retrieved = db[ind]  # (n_pairs, k, n_attributes)
    n_relevant = count_rows(db[:, cols], cond)
    if X_is_index:  # a query's own item matches its condition but is never a result
        n_relevant -= (db[qi][:, cols] == cond).all(axis=1)
    precision = precision_at_k(cond, retrieved[..., cols], k)
    scores = {
        "precision": precision,
        "average_precision": average_precision_at_k(
            cond, retrieved[..., cols], k, n_relevant=n_relevant
        ),
        "preservation": np.nan,
        "harmonic": np.nan,
        "hit": np.nan,
    }
    if groups is not None:
        scores["hit"] = _counterpart_hits(
            retriever.index_groups_, db[:, cols], groups[qi], cond, ind, k,
            own=qi if X_is_index else None,
        )
    if kept:
        kept_score = attribute_preservation_at_k(
            queries[qi][:, kept], retrieved[..., kept], k
        )
        scores["preservation"] = kept_score
        total = precision + kept_score
        scores["harmonic"] = 2 * precision * kept_score / total if total else 0.0
    return scores


def _counterpart_hits(db_groups, db_labels, groups, wanted, ind, k, own=None):
    """hit@k of the queries whose counterpart (the indexed item of their
    group with the wanted labels; never their own item ``own``) is indexed;
    NaN when none is."""
    # the groups as integers shared by the index and the queries
    _, codes = np.unique(np.concatenate([db_groups, groups]), return_inverse=True)
    db_key = np.column_stack([codes[:len(db_groups)], db_labels])
    key = np.column_stack([codes[len(db_groups):], wanted])
    present = count_rows(db_key, key)
    if own is not None:  # the query's own item is never its counterpart
        present -= (db_key[own] == key).all(axis=1)
    has = present > 0
    if not has.any():
        return np.nan
    return hit_at_k(key[has], db_key[ind[has]], k)


@validate_params(
    {"metric": [StrOptions(set(_METRICS)), list, tuple], "k": [count(1)],
     "condition_on": "no_validation", "exclude_own_class": ["boolean"],
     "n_queries": [count(1), None], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def make_retrieval_scorer(
    metric="average_precision", *, k=10, condition_on=None, exclude_own_class=False,
    n_queries=None, random_state=0,
):
    """A ``scorer(estimator, X, y)`` for conditional retrieval.

    Usable as ``scoring=`` in ``GridSearchCV`` or ``cross_val_score``: the
    training fold is the database, the test fold gives the queries.

    Parameters
    ----------
    metric : str or list of str, default="average_precision"
        Figure(s) to return, among "average_precision", "precision",
        "preservation", "harmonic" and "hit" (see :func:`retrieval_scores`).
        "hit" (exact-target retrieval: did the query's counterpart come
        back) needs ``groups``: the scorer asks for them through
        scikit-learn's metadata routing (see the example).
        "harmonic" balances reaching the condition against keeping the
        unconditioned attributes. A list gives a multi-metric scorer that
        returns a dict from one search, for ``GridSearchCV(scoring=scorer,
        refit="harmonic")``.
    k : int, default=10
        Rank cut-off, as in :func:`retrieval_scores`.
    condition_on : attribute or list of attributes, default=None
        Attributes to condition on, as in :func:`retrieval_scores`.
    exclude_own_class : bool, default=False
        Never condition a query on its own class.
    n_queries : int or None, default=None
        ``None``: every item of the test fold is a query once; an int: that
        many class-balanced (query, condition) pairs.
    random_state : int, RandomState instance or None, default=0
        Seeds the draw of the queries; fixed by default so that every
        candidate of a grid search sees the same queries.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, groups=None) -> float`` (or a dict of
        floats for a list of metrics), greater is better.

    Examples
    --------
    One search per candidate and fold gives all three figures; the grid
    search refits on the harmonic mean:

    >>> from sklearn.model_selection import GridSearchCV
    >>> from skbackward import BackwardSearchRetriever
    >>> from skbackward.metrics import make_retrieval_scorer
    >>> scoring = make_retrieval_scorer(
    ...     ["precision", "preservation", "harmonic"], k=10, condition_on="style"
    ... )
    >>> search = GridSearchCV(BackwardSearchRetriever(), {"alpha": [0.1, 1.0]},
    ...                       scoring=scoring, refit="harmonic")

    Exact-target retrieval: with ``groups`` (the same item in other forms
    shares a group), "hit" asks whether the query's counterpart in the asked
    class came back. The groups reach the retriever's ``fit`` (the
    database's) and the scorer (the queries') by metadata routing:

    >>> import sklearn
    >>> sklearn.set_config(enable_metadata_routing=True)
    >>> retriever = BackwardSearchRetriever().set_fit_request(groups=True)
    >>> search = GridSearchCV(retriever, {"alpha": [0.1, 1.0]},
    ...                       scoring=make_retrieval_scorer("hit", k=10))
    >>> # search.fit(X, y, groups=groups)
    >>> sklearn.set_config(enable_metadata_routing=False)
    """
    metrics = list(metric) if isinstance(metric, (list, tuple)) else [metric]
    unknown = [m for m in metrics if m not in _METRICS]
    if unknown or not metrics:
        raise ValueError(f"metric must be one of {_METRICS} or a list of them; "
                         f"got {metric!r}.")

    return _RetrievalScorer(
        metric, k=k, condition_on=condition_on,
        exclude_own_class=exclude_own_class, n_queries=n_queries,
        random_state=random_state,
    )


class _RetrievalScorer:
    """The scorer :func:`make_retrieval_scorer` returns: a callable with
    scikit-learn's metadata-routing request for ``groups`` (hit@k needs the
    query's groups; ``GridSearchCV`` passes the test fold's to a scorer that
    asks for them when routing is enabled)."""

    def __init__(self, metric, **options):
        self.metric = metric
        self.metrics = list(metric) if isinstance(metric, (list, tuple)) else [metric]
        self.options = options
        self.__name__ = f"{'_'.join(self.metrics)}_at_{options['k']}"

    def __call__(self, estimator, X, y, groups=None):
        scores = retrieval_scores(estimator, X, y, groups=groups, **self.options)
        missing = [m for m in self.metrics if np.isnan(scores[m])]
        if "hit" in missing:
            raise ValueError(
                "metric 'hit' needs the queries' groups and the index's: fit "
                "with groups, and pass groups to the scorer (in GridSearchCV: "
                "sklearn.set_config(enable_metadata_routing=True), "
                "estimator.set_fit_request(groups=True) and fit(X, y, "
                "groups=groups)); or no query's counterpart is indexed."
            )
        if missing:
            which = f"{missing[0]!r}" if len(missing) == 1 else f"{missing}"
            raise ValueError(
                f"metric={which} needs an attribute left unconditioned: "
                "fit on several attributes and set condition_on to a subset."
            )
        if isinstance(self.metric, (list, tuple)):
            return {m: scores[m] for m in self.metrics}
        return scores[self.metric]

    def get_metadata_routing(self):
        """The metadata this scorer asks for: ``groups`` when it measures hit.

        Returns
        -------
        request : sklearn.utils.metadata_routing.MetadataRequest
            ``groups`` requested for ``score`` when "hit" is among the metrics.
        """
        request = MetadataRequest(owner=self.__name__)
        if "hit" in self.metrics:
            request.score.add_request(param="groups", alias=True)
        return request

    def __repr__(self):
        return f"make_retrieval_scorer({self.metric!r}, **{self.options!r})"


@validate_params({"k": [count(1)]}, prefer_skip_nested_validation=True)
def make_map_scorer(k=10, **kwargs):
    """Scorer of the standard mean AP@k of conditional queries.

    Shorthand for ``make_retrieval_scorer("average_precision", k=k, ...)``.

    Parameters
    ----------
    k : int, default=10
        Rank cut-off.
    **kwargs
        ``condition_on``, ``exclude_own_class``, ``n_queries``,
        ``random_state``: see :func:`make_retrieval_scorer`.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``, greater is better.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skbackward import BackwardSearchRetriever
    >>> from skbackward.metrics import make_map_scorer
    >>> search = GridSearchCV(BackwardSearchRetriever(), {"alpha": [0.1, 1.0]},
    ...                       scoring=make_map_scorer(k=10))
    """
    return make_retrieval_scorer("average_precision", k=k, **kwargs)


@validate_params({"k": [count(1)]}, prefer_skip_nested_validation=True)
def make_precision_scorer(k=10, **kwargs):
    """Scorer of precision@k of conditional queries (the paper's "mAP@k").

    Shorthand for ``make_retrieval_scorer("precision", k=k, ...)``.

    Parameters
    ----------
    k : int, default=10
        Rank cut-off.
    **kwargs
        ``condition_on``, ``exclude_own_class``, ``n_queries``,
        ``random_state``: see :func:`make_retrieval_scorer`.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``, greater is better.

    Examples
    --------
    >>> from skbackward.metrics import make_precision_scorer
    >>> scorer = make_precision_scorer(k=5, n_queries=100)
    >>> scorer.__name__
    'precision_at_5'
    """
    return make_retrieval_scorer("precision", k=k, **kwargs)
