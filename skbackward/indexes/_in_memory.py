"""In-memory indexes: per-item data in numpy arrays, preference levels by postings.

:class:`InMemoryIndex` is the shared base of :class:`~skbackward.indexes.ExactIndex`
and :class:`~skbackward.indexes.FaissIndex`: the items' norms, predicted
classes and labels are numpy arrays; the vectors live in segments (one per
build or append) that a subclass stores and searches.
"""

import copy

import numpy as np

from ._base import VectorIndex
from ._preference import level_codes, place, query_groups, top_code


class InMemoryIndex(VectorIndex):
    """An index whose per-item data (norms, predicted classes, labels) lives
    in numpy arrays; subclasses store and search the vectors
    (``_search_rows``, ``_vectors``) in segments, one per build or append."""

    def _start_build(self, n_items, dim, n_attributes):
        self.n_items_ = 0
        self.dim_ = dim
        self.norms_ = np.empty(n_items, dtype=np.float32)
        self.predicted_ = np.empty((n_items, n_attributes), dtype=np.int32)
        self._labels = []
        self.labels_ = None
        self._segment_starts = [0]
        self._new_segment(n_items, dim)

    def _add(self, unit, norms, predicted, labels):
        start, stop = self.n_items_, self.n_items_ + unit.shape[0]
        self.norms_[start:stop] = norms
        self.predicted_[start:stop] = predicted
        self._labels.append(labels)
        self._add_vectors(unit)
        self.n_items_ = stop

    def _end_build(self):
        parts = self._labels
        del self._labels
        if any(p is None for p in parts) and not all(p is None for p in parts):
            raise ValueError("y must be given for every part of the index or none.")
        if parts and parts[0] is not None:
            self.labels_ = np.concatenate(parts)
        if self.n_items_ != len(self.norms_):
            raise RuntimeError(
                f"expected {len(self.norms_)} items, got {self.n_items_}."
            )
        self._postings = _postings(self.predicted_)

    def _grown(self, n_items):
        new = copy.copy(self)
        n_old = self.n_items_
        new.norms_ = np.concatenate([self.norms_, np.empty(n_items, np.float32)])
        new.predicted_ = np.concatenate(
            [self.predicted_, np.empty((n_items, self.predicted_.shape[1]), np.int32)]
        )
        new._labels = [self.labels_]
        new._segment_starts = self._segment_starts + [n_old]
        new._segments = list(self._segments)
        new._new_segment(n_items, self.dim_)
        return new

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_postings", None)  # recomputed on loading
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "predicted_" in state and "_labels" not in state:
            self._postings = _postings(self.predicted_)

    # ---- queries ----------------------------------------------------------------

    @property
    def _n_attributes(self):
        return self.predicted_.shape[1]

    def _predicted(self, start, stop):
        return self.predicted_[start:stop]

    def _embeddings(self, start, stop):
        return self._vectors(start, stop) * self.norms_[start:stop, None]

    def _search(self, q, k, exclude, prefer):
        n = q.shape[0]
        if prefer is None:
            return self._search_rows(q, k, exclude, None)
        sims = np.full((n, k), -np.inf, dtype=np.float32)
        ids = np.full((n, k), -1, dtype=np.int64)
        filled = np.zeros(n, dtype=np.int64)
        for wish, members in query_groups(prefer, n, self._n_attributes):
            self._search_levels(q, members, wish, k, exclude, sims, ids, filled)
        return sims, ids

    def _search_levels(self, q, members, wish, k, exclude, sims, ids, filled):
        """One group's levels, best first, until each member has k items."""

        def run(queries, rows):
            ex = None if exclude is None else exclude[queries]
            s, i = self._search_rows(q[queries], k, ex, rows)
            place(sims, ids, filled, queries, s, i)
            return queries[filled[queries] < k]

        if (wish < 0).all():
            run(members, None)
            return
        todo = run(members, self._matching(wish))
        if todo.size == 0:
            return
        codes = level_codes(self.predicted_, wish)
        top = top_code(wish)
        for code in np.unique(codes)[::-1]:
            if code != top:
                todo = run(todo, np.flatnonzero(codes == code))
                if todo.size == 0:
                    return

    def _matching(self, wish):
        """Sorted item numbers whose predicted classes meet every wish."""
        pairs = [(a, c) for tier in wish for a, c in enumerate(tier) if c >= 0]
        order, bounds = self._postings
        lists = []
        for a, c in pairs:
            known = c + 1 < len(bounds[a])  # else no item is predicted in c
            lo, hi = (bounds[a][c], bounds[a][c + 1]) if known else (0, 0)
            lists.append(order[a][lo:hi])
        shortest = min(range(len(lists)), key=lambda i: len(lists[i]))
        rows = lists[shortest]
        for a, c in pairs:
            rows = rows[self.predicted_[rows, a] == c]
        return rows


def _postings(predicted):
    """Per attribute: the item numbers sorted by class (ascending within a
    class) and where each class starts: ``(orders, bounds)``."""
    orders, bounds = [], []
    for col in predicted.T:
        order = np.argsort(col, kind="stable")
        orders.append(order)
        n_classes = int(col.max()) + 1 if col.size else 0
        bounds.append(np.searchsorted(col[order], np.arange(n_classes + 1)))
    return orders, bounds

