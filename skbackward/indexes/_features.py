"""The indexed items' input features beside their embeddings, for a ranking
that blends the two (``feature_weight``).

Ranking item ``i`` by ``(1 - w) cos(z*, z_i) + w cos(x_q, x_i)`` is one cosine
ranking in the concatenated space: the item ``[z_i/|z_i|, x_i/|x_i|] / sqrt 2``
(a unit vector) and the query ``[(1 - w) z*/|z*|, w x_q/|x_q|]`` give, by one
dot product, the blend divided by ``sqrt 2 |query|``, a positive number per
query. So an :class:`~skbackward.indexes.ExactIndex` over the concatenated
vectors ranks by the blend exactly, with its preference tiers and exclusions.
"""

import numpy as np
from sklearn.preprocessing import normalize

from ._exact import ExactIndex
from ._topk import unit_float32

SQRT2 = np.sqrt(2.0)


class FeatureIndex(ExactIndex):
    """An exact index of ``[unit embedding, unit features] / sqrt 2`` per item.

    Built beside the retriever's ``vector_index_`` from the same chunks
    (same items, same predicted classes), kept in process whatever
    ``vector_index`` is. An :class:`~skbackward.indexes.ExactIndex` fed
    chunk by chunk (:meth:`start`, :meth:`add`, :meth:`end_build`) rather
    than from one iterable, since the retriever's chunks feed both indexes
    in one pass over the items.
    """

    def start(self, n_items, dim, n_features, n_attributes):
        """Start an empty index of ``n_items`` items: embeddings of ``dim``
        and ``n_features`` input features. Returns self."""
        self._start_build(n_items, dim + n_features, n_attributes)
        return self

    def add(self, unit, X, predicted):
        """Add items: their unit embeddings, input features and predicted classes."""
        both = np.hstack([unit, unit_float32(X)[0]]) / np.float32(SQRT2)
        self._add(both, np.ones(len(both), np.float32), predicted, None)

    def end_build(self):
        """Called once all the items are added."""
        self._end_build()

    def grown(self, n_items):
        """A copy ready to take ``n_items`` more items (``add``, ``end_build``)."""
        return self._grown(n_items)

    def blended_queries(self, Z, X, weight):
        """Query vectors that rank by ``(1 - weight) cos(Z, z_i) + weight
        cos(X, x_i)``."""
        Z = np.asarray(Z, dtype=np.float64)
        X = np.asarray(X, dtype=np.float64)
        return np.hstack([(1 - weight) * normalize(Z), weight * normalize(X)])

    @staticmethod
    def blended_distances(distances, queries):
        """``1 - blend`` from the index's cosine distances to ``queries``."""
        scale = SQRT2 * np.linalg.norm(queries, axis=1, keepdims=True)
        return (1 - (1 - distances.astype(np.float64)) * scale).astype(np.float32)
