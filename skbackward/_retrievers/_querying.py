"""The query API: transform, kneighbors, condition_report.

Each embeds its queries and takes them through the one conditioning path
(:meth:`~skbackward._retrievers._conditioning.ConditioningMixin._condition`); kneighbors
does so in batches of ``QUERY_BATCH`` queries, so its memory is bounded
whatever the number of queries. A dask array goes to :mod:`._dask`, whose
blocks call these methods again on numpy blocks.
"""

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from .._utils._threads import with_threads
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


# A TransformerMixin: scikit-learn's set_output wraps the ``transform`` a
# class defines itself, so the class that defines it must be one.
class QueryMixin(TransformerMixin):
    """``transform``, ``kneighbors`` and ``condition_report`` of a retriever."""

    @with_threads
    def condition_report(self, X, *, condition, condition_weight=None):
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
        report : :class:`~sklearn.utils.Bunch`
            With the arrays

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
        return Bunch(
            embedding=Z,
            n_steps=moved.n_steps,
            reached=reached,
            distance=np.abs(Z - Z0).mean(axis=1),
        )

    @with_threads
    def transform(self, X, *, condition=None, condition_weight=None):
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
        Z0 = self._embed(X)
        targets, weights = self._targets(condition, Z0.shape[0], condition_weight)
        moved = self._condition(Z0, targets, weights)
        if targets is not None:
            self._warn_unreached(moved.asked, moved.missed)
        return moved.embedding

    @with_threads
    def kneighbors(
        self, X=None, n_neighbors=None, return_distance=True, *, condition=None,
        condition_weight=None, exclude=None,
    ):
        """Find the indexed items nearest to each (conditioned) query.

        Queries are embedded, moved and searched in batches of bounded size,
        ``X=None`` included.

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
        if X is None:
            if exclude is not None:
                raise ValueError("exclude cannot be used with X=None, which "
                                 "already excludes each item itself.")
            n_q = n_db
            exclude = np.arange(n_db)
        else:
            X = validate_X(self, X)
            n_q = X.shape[0]
            exclude = check_exclude(exclude, n_q, n_db)
        check_n_neighbors(k, n_db, n_q, exclude, x_is_none=X is None)
        targets, weights = self._targets(condition, n_q, condition_weight)
        w_features = self._feature_weight() if targets is not None else 0.0
        features = self._feature_index(index) if w_features else None
        dist = np.empty((n_q, k), dtype=np.float32)
        ind = np.empty((n_q, k), dtype=np.int64)
        asked = missed = 0
        for s in range(0, n_q, QUERY_BATCH):
            e = min(s + QUERY_BATCH, n_q)
            # the items' stored embeddings are float32; a search from them
            # runs in float64, where a row's result does not depend on its batch
            Z0 = (index.embeddings(s, e).astype(np.float64) if X is None
                  else self._embed(X[s:e]))
            moved = self._condition(
                Z0, None if targets is None else targets[s:e],
                None if weights is None else weights[s:e], rank=True,
            )
            asked, missed = asked + moved.asked, missed + moved.missed
            Z, searched = moved.queries, index
            if w_features:
                Xq = (features.embeddings(s, e)[:, Z.shape[1]:] if X is None
                      else X[s:e])
                Z, searched = features.blended_queries(Z, Xq, w_features), features
            ex = None if exclude is None else exclude[s:e]
            dist[s:e], ind[s:e] = searched.search(Z, k, exclude=ex,
                                                  prefer=moved.prefer)
            if searched is not index:
                dist[s:e] = features.blended_distances(dist[s:e], Z)
        self._warn_unreached(asked, missed)
        return (dist, ind) if return_distance else ind

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
