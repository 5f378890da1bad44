"""ExactIndex: exact cosine top-k over the items held in memory."""

import numpy as np

from .._utils._validation import check_all_params, finite
from ._in_memory import InMemoryIndex
from ._topk import exact_topk


class ExactIndex(InMemoryIndex):
    """Exact cosine search, tiled over queries and items, in bounded memory.

    The default index of every retriever (``vector_index=None``). Keeps one
    float32 copy of the items' unit vectors, their norms and the heads'
    predicted classes. A search streams the items in tiles against tiles of
    queries; its temporary memory stays within ``working_memory``, whatever
    the number of queries and items. A query's result does not depend on the
    other queries searched with it.

    Parameters
    ----------
    working_memory : float, default=None
        MiB of temporary memory a search may use; None uses scikit-learn's
        ``working_memory`` setting (``sklearn.set_config``, 1024 by default).

    Attributes
    ----------
    n_items_ : int
        Number of indexed items.
    dim_ : int
        Dimension of the vectors.
    norms_ : ndarray of shape (n_items,)
        Norms of the items' embeddings.
    predicted_ : ndarray of shape (n_items, n_attributes)
        The heads' predicted class of each item per attribute.
    labels_ : ndarray or None
        The items' labels when given to ``index``.

    See Also
    --------
    FaissIndex : Approximate search for larger databases.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbackward import LabelFilterRetriever
    >>> from skbackward.indexes import ExactIndex
    >>> X, y = load_digits(return_X_y=True)
    >>> ret = LabelFilterRetriever(epochs=2, random_state=0,
    ...                            vector_index=ExactIndex(working_memory=64))
    >>> ret.fit(X, y).vector_index_.n_items_
    1797
    """

    _parameter_constraints = {"working_memory": [finite(0.0, positive=True), None]}
    _search_params = ("working_memory",)

    def __init__(self, working_memory=None):
        self.working_memory = working_memory

    def _start_build(self, n_items, dim, n_attributes):
        check_all_params(self)
        self._segments = []
        super()._start_build(n_items, dim, n_attributes)

    def _new_segment(self, n_items, dim):
        self._segments.append(np.empty((n_items, dim), dtype=np.float32))
        self._cursor = 0

    def _add_vectors(self, unit):
        self._segments[-1][self._cursor:self._cursor + unit.shape[0]] = unit
        self._cursor += unit.shape[0]

    def _vectors(self, start, stop):
        offsets = self._segment_starts + [self.n_items_]
        return np.concatenate([
            seg[max(start - o, 0):max(min(stop, e) - o, 0)]
            for seg, o, e in zip(self._segments, offsets, offsets[1:])
        ])

    def _search_rows(self, q, k, exclude, rows):
        return exact_topk(q, self._segments, k, rows=rows, exclude=exclude,
                          working_memory=self.working_memory)
