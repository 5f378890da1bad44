"""Reference sets: the items a user would pick by hand for a conditional query.

Public through :mod:`skbackward.metrics`; :func:`neighbor_overlap_at_k`
scores a retriever's results against them.
"""

import numpy as np
from sklearn.utils._param_validation import validate_params
from sklearn.utils.validation import check_array

from .._utils._labels import check_same_kind
from .._utils._validation import count
from ._ranking import _as_array


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
