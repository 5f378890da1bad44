"""Scorers: conditional-retrieval figures of a fitted retriever, for model selection.

:func:`retrieval_scores` draws (query, condition) pairs and measures them;
:func:`make_retrieval_scorer` wraps it as a ``scorer(estimator, X, y)`` for
``GridSearchCV``. Public through :mod:`skbackward.metrics`.
"""

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, StrOptions, validate_params
from sklearn.utils.metadata_routing import MetadataRequest
from sklearn.utils.validation import _num_samples

from .._utils._docstrings import fill_doc
from .._utils._labels import attribute_columns, check_same_kind, count_rows
from .._utils._validation import check_groups, count
from ..model_selection import sample_query_pairs
from ._ranking import (
    attribute_preservation_at_k,
    average_precision_at_k,
    hit_at_k,
    precision_at_k,
)

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


# make_average_precision_scorer and make_precision_scorer are one factory,
# bound to a metric, with one docstring template: they differ in the metric
# and the example only
_SHORTHAND_DOC = """{summary}

    {shorthand}

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
    {examples}
    """


def _shorthand_scorer(metric, name, summary, examples):
    """``name(k=10, **kwargs)``: :func:`make_retrieval_scorer` of ``metric``."""

    def shorthand(k=10, **kwargs):
        return make_retrieval_scorer(metric, k=k, **kwargs)

    shorthand.__name__ = shorthand.__qualname__ = name
    shorthand.__doc__ = _SHORTHAND_DOC
    fill_doc(
        summary=summary,
        shorthand=f'Shorthand for ``make_retrieval_scorer("{metric}", k=k, ...)``.',
        examples=examples,
    )(shorthand)
    return validate_params({"k": [count(1)]}, prefer_skip_nested_validation=True)(
        shorthand
    )


make_average_precision_scorer = _shorthand_scorer(
    "average_precision", "make_average_precision_scorer",
    summary="Scorer of the standard mean AP@k of conditional queries.",
    examples="""
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skbackward import BackwardSearchRetriever
    >>> from skbackward.metrics import make_average_precision_scorer
    >>> search = GridSearchCV(BackwardSearchRetriever(), {"alpha": [0.1, 1.0]},
    ...                       scoring=make_average_precision_scorer(k=10))
    """,
)

make_precision_scorer = _shorthand_scorer(
    "precision", "make_precision_scorer",
    summary='Scorer of precision@k of conditional queries (the paper\'s "mAP@k").',
    examples="""
    >>> from skbackward.metrics import make_precision_scorer
    >>> scorer = make_precision_scorer(k=5, n_queries=100)
    >>> scorer.__name__
    'precision_at_5'
    """,
)
