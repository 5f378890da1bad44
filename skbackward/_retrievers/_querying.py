"""The query API: transform, kneighbors, condition_report.

Each embeds its queries and takes them through the one conditioning path
(:meth:`~skbackward._retrievers._conditioning.ConditioningMixin._condition`); kneighbors
and transform do so in batches of ``QUERY_BATCH`` queries, so their working
memory is bounded whatever the number of queries (and ``verbose`` shows a
bar over the batches). A dask array goes to :mod:`._dask`, whose
blocks call these methods again on numpy blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.utils import Bunch
from sklearn.utils._set_output import _get_output_config
from sklearn.utils.validation import check_is_fitted

from .._utils._progress import ProgressBar
from .._utils._threads import with_threads
from .._utils._typing import ArrayLike, Condition, ConditionWeight, FloatArray, IntArray
from .._utils._validation import (
    check_arguments,
    check_exclude,
    check_n_neighbors,
    count,
    validate_X,
)
from .._utils._warnings import warn_caller
from ..exceptions import ConditionNotReachedWarning
from ._dask import is_dask_collection

# queries embedded, moved and searched at once by kneighbors (bounds its memory)
QUERY_BATCH = 4096
# transform / kneighbors warn when at least this share of the conditioned
# queries of a call did not reach their condition
UNREACHED_WARNING_SHARE = 0.1


def query_batches(n_queries):
    """``(start, stop)`` of the consecutive batches of at most ``QUERY_BATCH``
    queries."""
    for start in range(0, n_queries, QUERY_BATCH):
        yield start, min(start + QUERY_BATCH, n_queries)


# A TransformerMixin: scikit-learn's set_output wraps the ``transform`` a
# class defines itself, so the class that defines it must be one.
class QueryMixin(TransformerMixin):
    """``transform``, ``kneighbors`` and ``condition_report`` of a retriever."""

    @with_threads
    def condition_report(
        self, X: ArrayLike, *, condition: Condition,
        condition_weight: ConditionWeight = None,
    ) -> Bunch | Any:
        """Per query: where the condition took its embedding, and whether it got there.

        A search that does not reach its condition is not an error: a large
        ``alpha`` keeps a query near its own embedding on purpose, and a query
        far from the wanted class may need more steps than ``max_steps``. This
        report shows, per query, what happened, so that such queries can be
        found (``transform`` and ``kneighbors`` warn with a
        :class:`~skbackward.exceptions.ConditionNotReachedWarning` when a
        notable share of a batch did not reach its condition).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries.
        condition : scalar, array-like of shape (n_queries,) or dict
            As in :meth:`transform`.
        condition_weight : float or dict, default=None
            As in :meth:`transform`.

        Returns
        -------
        report : :class:`~sklearn.utils.Bunch` or DataFrame
            A Bunch of arrays; after ``set_output(transform="pandas")`` (or
            "polars") a DataFrame of one row per query (indexed as ``X``
            when ``X`` is a pandas DataFrame) with the columns ``n_steps``,
            ``reached`` and ``distance``, then the embedding's columns,
            named by :meth:`get_feature_names_out`. The arrays:

            - ``embedding`` (n_queries, embedding_dim): the conditioned
              embedding (what ``transform(X, condition=...)`` returns);
            - ``n_steps`` (n_queries,) int: gradient steps from the query's
              own embedding to ``embedding`` (0 for a query without a
              condition, and for strategies that do not search);
            - ``reached`` (n_queries,) bool: whether the classifier heads
              predict every wanted class at ``embedding`` (True without a
              condition);
            - ``distance`` (n_queries,) float: how far the embedding moved,
              ``mean_d |embedding - z0|`` (the quantity ``alpha`` weighs).
        """
        check_is_fitted(self)
        self._validate_query_params()
        index = getattr(X, "index", None) if hasattr(X, "iloc") else None
        X = validate_X(self, X)
        Z0 = self._embed(X)
        targets, weights = self._targets(condition, Z0.shape[0], condition_weight)
        moved = self._condition(Z0, targets, weights)
        Z = moved.embedding
        # computed by the path for the strategies that aim at the condition;
        # without a condition there is nothing to reach
        if targets is None:
            reached = np.ones(Z.shape[0], dtype=bool)
        elif moved.reached is not None:
            reached = moved.reached
        else:
            reached = self._reached(Z, targets)
        report = Bunch(
            embedding=Z,
            n_steps=moved.n_steps,
            reached=reached,
            distance=np.abs(Z - Z0).mean(axis=1),
        )
        return self._report_container(report, index)

    def _report_container(self, report, index):
        """``report`` as the container ``set_output(transform=...)`` asks
        for: the Bunch itself by default, else a DataFrame of one row per
        query (``index``: the query DataFrame's index, or None)."""
        dense = _get_output_config("transform", self)["dense"]
        if dense == "default":
            return report
        columns = {"n_steps": report.n_steps, "reached": report.reached,
                   "distance": report.distance}
        columns.update(zip(self.get_feature_names_out(), report.embedding.T))
        if dense == "pandas":
            import pandas as pd

            return pd.DataFrame(columns, index=index)
        import polars as pl

        return pl.DataFrame(columns)

    @with_threads
    def transform(self, X: ArrayLike, *, condition: Condition = None,
                  condition_weight: ConditionWeight = None) -> FloatArray:
        """Embed queries; with a condition, the embeddings moved towards it.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries, in the feature space the model was fitted on. A dask
            array is transformed lazily, block by block (on the workers of
            a distributed scheduler), and gives a dask array; per-query
            conditions may then be numpy or dask arrays.
        condition : scalar, array-like of shape (n_queries,) or dict, default=None
            The wanted label(s). A scalar applies to every query, a 1-D array
            gives one label per query, and ``{attribute: label or labels}``
            conditions on several attributes at once (attributes left out are
            unconstrained; ``None`` inside an array leaves that query
            unconstrained). With several attributes a bare label is accepted
            when exactly one attribute has it. ``None``: no condition.
        condition_weight : float or dict, default=None
            Relative weight of each attribute's condition in the search loss,
            ``{attribute: weight}`` (a number or one per query). Default 1.
            Only the ratios between attributes matter, and only strategies
            with a search loss (Backward Search) use it.

        Returns
        -------
        Z : ndarray of shape (n_queries, embedding_dim)
            In the dtype of ``X`` (float32 or float64); a dask array when
            ``X`` is one.
        """
        check_is_fitted(self)
        self._validate_query_params()
        if is_dask_collection(X):
            from . import _dask

            return _dask.transform(self, X, condition, condition_weight)
        X = validate_X(self, X)
        n_q = X.shape[0]
        targets, weights = self._targets(condition, n_q, condition_weight)
        Z = None
        asked = missed = 0
        with self._progress_bar(n_q, "transform") as bar:
            for s, e in query_batches(n_q):
                moved = self._condition(
                    self._embed(X[s:e]), None if targets is None else targets[s:e],
                    None if weights is None else weights[s:e],
                )
                if Z is None:
                    Z = np.empty((n_q, moved.embedding.shape[1]),
                                 dtype=moved.embedding.dtype)
                Z[s:e] = moved.embedding
                asked, missed = asked + moved.asked, missed + moved.missed
                bar.update(e - s)
        if targets is not None:
            self._warn_unreached(asked, missed)
        assert Z is not None  # validate_X refuses an empty X: one batch at least
        return Z

    def fit_transform(
        self, X: ArrayLike, y: ArrayLike, groups: ArrayLike | None = None, *,
        condition: Condition = None, condition_weight: ConditionWeight = None,
    ) -> FloatArray:
        """Fit on ``X, y``, then embed ``X`` (moved towards ``condition``).

        The same as ``fit(X, y, groups=groups).transform(X,
        condition=condition, condition_weight=condition_weight)``: each
        argument goes to the method that takes it, so a Pipeline routes a
        ``condition`` requested with ``set_transform_request`` to
        :meth:`transform` (scikit-learn's ``fit_transform`` would hand it
        to ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features, then the queries.
        y : array-like of shape (n_samples,) or (n_samples, n_attributes)
            Labels, as in ``fit``.
        groups : array-like of shape (n_samples,), default=None
            As in ``fit``.
        condition : scalar, array-like of shape (n_samples,) or dict, default=None
            As in :meth:`transform`.
        condition_weight : float or dict, default=None
            As in :meth:`transform`.

        Returns
        -------
        Z : ndarray of shape (n_samples, embedding_dim)
            ``transform(X, condition=condition)`` of the fitted retriever.
        """
        return self.fit(X, y, groups=groups).transform(
            X, condition=condition, condition_weight=condition_weight
        )

    @with_threads
    def kneighbors(
        self, X: ArrayLike | None = None, n_neighbors: int | None = None,
        return_distance: bool = True, *, condition: Condition = None,
        condition_weight: ConditionWeight = None, exclude: ArrayLike | None = None,
    ) -> tuple[FloatArray, IntArray] | IntArray:
        """Find the indexed items nearest to each (conditioned) query.

        Queries are embedded, moved and searched in batches of bounded size,
        ``X=None`` included.

        The searched items are the last ones indexed: after ``fit`` the
        training items, until :meth:`index` replaces them. To query another
        database, call ``index(X_db)`` first; otherwise the results are
        training items and nothing warns (``n_index_samples_`` says how many
        items are searched).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
            Queries. ``None`` queries the indexed items themselves, each
            excluded from its own neighbours. A dask array is answered
            lazily, block by block (on the workers of a distributed
            scheduler, the fitted retriever shipped once per worker), and
            the results are dask arrays; ``condition``, ``condition_weight``
            and ``exclude`` may then be numpy or dask arrays of one entry
            per query.
        n_neighbors : int, default=None
            Number of neighbours; defaults to the ``n_neighbors`` parameter.
        return_distance : bool, default=True
            Whether to return the distances.
        condition : scalar, array-like of shape (n_queries,) or dict, default=None
            The wanted label(s), as in :meth:`transform`; ``None`` is plain
            nearest-neighbour search in the embedding space.
        condition_weight : float or dict, default=None
            Relative weight of each attribute's condition, as in
            :meth:`transform`.
        exclude : array-like of shape (n_queries,), default=None
            An indexed item to leave out of each query's results, e.g. the
            query's own row when the queries are indexed items; -1 for none.
            Not with ``X=None``, which already excludes each item itself.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Cosine distances (1 - cosine similarity), float32, ascending (for a
            strategy that ranks predicted matches first, ascending within the
            matches and within the rest). Only when ``return_distance=True``.
        indices : ndarray of shape (n_queries, n_neighbors)
            Row indices of the neighbours in the indexed items. Both are dask
            arrays when ``X`` is one.
        """
        index = self._fitted_index()  # one read: a concurrent index() swaps it
        self._validate_query_params()
        check_arguments(
            {"n_neighbors": [count(1), None], "return_distance": ["boolean"]},
            f"{type(self).__name__}.kneighbors",
            n_neighbors=n_neighbors, return_distance=return_distance,
        )
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if is_dask_collection(X):
            from . import _dask

            return _dask.kneighbors(self, X, k, return_distance, condition,
                                    condition_weight, exclude)
        n_db = index.n_items_
        queries = None if X is None else validate_X(self, X)
        if queries is None:
            if exclude is not None:
                raise ValueError("exclude cannot be used with X=None, which "
                                 "already excludes each item itself.")
            n_q = n_db
            excluded = np.arange(n_db)
        else:
            n_q = queries.shape[0]
            excluded = check_exclude(exclude, n_q, n_db)
        check_n_neighbors(k, n_db, n_q, excluded, x_is_none=X is None)
        targets, weights = self._targets(condition, n_q, condition_weight)
        w_features = self._feature_weight() if targets is not None else 0.0
        features = self._feature_index(index) if w_features else None
        dist = np.empty((n_q, k), dtype=np.float32)
        ind = np.empty((n_q, k), dtype=np.int64)
        asked = missed = 0
        with self._progress_bar(n_q, "kneighbors") as bar:
            for s, e in query_batches(n_q):
                # the items' stored embeddings are float32; a search from them
                # runs in float64, where a row's result does not depend on its batch
                Z0 = (index.embeddings(s, e).astype(np.float64) if queries is None
                      else self._embed(queries[s:e]))
                moved = self._condition(
                    Z0, None if targets is None else targets[s:e],
                    None if weights is None else weights[s:e], rank=True,
                )
                asked, missed = asked + moved.asked, missed + moved.missed
                Z, searched = moved.queries, index
                if features is not None:
                    Xq = (features.embeddings(s, e)[:, Z.shape[1]:] if queries is None
                          else queries[s:e])
                    Z, searched = features.blended_queries(Z, Xq, w_features), features
                ex = None if excluded is None else excluded[s:e]
                dist[s:e], ind[s:e] = searched.search(Z, k, exclude=ex,
                                                      prefer=moved.prefer)
                if features is not None:
                    dist[s:e] = features.blended_distances(dist[s:e], Z)
                bar.update(e - s)
        self._warn_unreached(asked, missed)
        return (dist, ind) if return_distance else ind

    def _progress_bar(self, total, desc):
        """A :class:`~skbackward._utils._progress.ProgressBar` over ``total``
        queries, drawn when ``verbose >= 1``."""
        return ProgressBar(total, desc, unit="query", enabled=self.verbose >= 1)

    def _targets(self, condition, n_queries, condition_weight):
        """Parsed ``(targets, weights)``, or ``(None, None)`` without a
        condition."""
        if condition is None:
            return None, None
        return self._parse_condition(condition, n_queries, condition_weight)

    def _warn_unreached(self, asked, missed):
        if missed and missed >= UNREACHED_WARNING_SHARE * asked:
            warn_caller(
                f"{missed} of {asked} conditioned queries did not reach "
                "their condition: at the searched embedding the classifier heads "
                "still predict another class. A smaller alpha moves queries "
                "further; condition_report(X, condition=...) shows, per query, the "
                "steps taken, whether the condition was reached and how far the "
                "embedding moved.",
                ConditionNotReachedWarning,
            )
