"""FaissIndex: the items in faiss indexes, one per segment of appended items,
conditional rankings through ID selectors or per-class inverted lists."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils._validation import C_INT_MAX, StrOptions, check_all_params, count
from . import _faiss, _faiss_cells, _int8_lists
from ._base import check_built
from ._in_memory import InMemoryIndex
from ._preference import place, query_groups


class FaissIndex(InMemoryIndex):
    """A faiss index for cosine search: approximate, fast, compressed.

    Needs faiss (``pip install "skbackward[faiss]"``). Any faiss factory
    string works: "IVF1024,Flat" (inverted lists), "HNSW32" (a graph),
    "IVF4096,PQ32" (compressed codes, for databases larger than memory holds
    as float32), "Flat" (exact), ... The items' unit vectors are indexed with
    inner-product metric, which on unit vectors is cosine similarity. Indexes
    that need training (IVF, PQ) train on ``n_train`` items evenly spaced over
    the indexed ones (PQ codes without faiss's polysemous training, which
    only polysemous search uses).

    Conditional rankings (``predicted_first``, the label filter) run inside
    faiss: the items whose predicted classes meet the condition are passed to
    the search as an ID selector (a bitmap), the next preference level only
    when fewer than ``n_neighbors`` items were found. When an approximate
    search finds fewer items than the selection holds (e.g. a rare class and
    few probed lists), it is repeated for those queries with ``nprobe`` or
    ``ef_search`` doubled, up to an exhaustive search.

    With ``per_class=True`` each list of an IVF holds the items of one
    combination of predicted classes (a *cell*: one class per attribute), so
    a conditional search visits only the lists of the cells that meet the
    condition and never scans other classes' items (see the Notes).

    ``nprobe`` and ``ef_search`` are read at each search, so they can be
    changed on a fitted retriever without rebuilding:
    ``ret.vector_index_.set_params(nprobe=64)``. Pickling a fitted index
    serialises it with ``faiss.serialize_index``. faiss's thread count is
    left as it is (``faiss.omp_set_num_threads``).

    Parameters
    ----------
    factory : str, default="IVF1024,Flat"
        The faiss index factory string. IVF needs at least as many items as
        lists (1024 here).
    nprobe : int, default=None
        Inverted lists visited per query (IVF indexes); None keeps faiss's
        default (1). More is slower and closer to exact.
    ef_search : int, default=None
        Size of the candidate list of an HNSW search (faiss's ``efSearch``);
        None keeps faiss's default (16).
    n_train : int, default=None
        Items to train on (IVF, PQ); None means ``max(100_000, 40 * nlist)``
        (at most all items).
    per_class : bool, default=False
        Whether to keep per-class inverted lists: the factory's ``nlist``
        lists are shared out among the cells (combinations of predicted
        classes) in proportion to their items, each cell's trained on its
        own items, and ``nprobe`` counts the lists visited among those of
        the cells a search asks for. Needs an IVF factory with a flat coarse
        quantizer ("IVF4096,Flat", "IVF4096,SQ8", ...), not 4-bit fast-scan
        codes ("IVF4096,PQ32x4fs").
    scan : {"faiss", "batched"}, default="faiss"
        How a per-class search scans the lists it probes. "faiss": faiss's
        ``search_preassigned``, each query scanning its lists on its own.
        "batched" (``per_class=True`` and an "IVF<n>,SQ8" factory): the
        lists' 8-bit codes move out of faiss into one int8 array, and each
        list is scored against all the queries of a search that probe it by
        one integer matrix product; each query's best groups of items are
        then scored again in float, so the results are faiss's up to
        rounding, and a query's result does not depend on the other queries
        searched with it. Faster the more queries share a list: choose it
        for millions of items, searched thousands of queries at a time
        (``kneighbors`` searches 4096 at a time), with lists of a few
        thousand items. At 10 million items ("IVF4096,SQ8", ``nprobe=40``,
        4096 queries, one thread) it ranked 5.8x faster than faiss's scan of
        the same lists, at the same recall (0.951).

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
    faiss_indexes_ : list
        The faiss indexes: one, plus one per ``index(X, append=True)``.
        With ``scan="batched"`` their lists are empty (the codes are kept
        by skbackward); they hold the trained quantizers.

    See Also
    --------
    ExactIndex : Exact search, the default.

    Notes
    -----
    A conditional search on the exact index already scans only the items
    predicted in the condition's class, with BLAS; an ID selector on a
    single IVF still scans every item of the probed lists. With
    ``per_class=True`` the search of a preference level (e.g. "predicted in
    class c of attribute 0") ranks the centroids of the level's cells
    (exactly), scans the ``nprobe`` nearest of their lists with faiss's
    ``search_preassigned``, and so touches only items of those cells: a
    condition on one attribute visits the cells of its class, a condition
    on every attribute one cell. The items are stored once. A cell absent
    from the training sample has no lists; its items are kept aside as
    float32 vectors and searched exactly. Plain queries rank every cell's
    centroids (``nlist`` of them, plus one per cell that got fewer than its
    share).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbackward import LabelFilterRetriever
    >>> from skbackward.indexes import FaissIndex
    >>> X, y = load_digits(return_X_y=True)
    >>> ret = LabelFilterRetriever(epochs=2, random_state=0,
    ...                            vector_index=FaissIndex("IVF16,Flat", nprobe=4))
    >>> ret.fit(X, y).kneighbors(X[:2], n_neighbors=3, condition=8)[1].shape
    (2, 3)
    >>> per_class = FaissIndex("IVF64,Flat", nprobe=4, per_class=True)
    >>> ret.set_params(vector_index=per_class).fit(X, y)
    LabelFilterRetriever(...)
    >>> ind = ret.kneighbors(X[:2], n_neighbors=3, condition=8)[1]
    >>> (ret.vector_index_.predicted()[ind, 0] == 8).all()
    np.True_
    """

    _parameter_constraints = {
        "factory": [str],
        "nprobe": [count(1, C_INT_MAX), None],
        "ef_search": [count(1, C_INT_MAX), None],
        "n_train": [count(1), None],
        "per_class": ["boolean"],
        "scan": [StrOptions({"faiss", "batched"})],
    }
    _search_params = ("nprobe", "ef_search")

    def __init__(self, factory="IVF1024,Flat", *, nprobe=None, ef_search=None,
                 n_train=None, per_class=False, scan="faiss"):
        self.factory = factory
        self.nprobe = nprobe
        self.ef_search = ef_search
        self.n_train = n_train
        self.per_class = per_class
        self.scan = scan

    # ---- building -----------------------------------------------------------------

    def _start_build(self, n_items, dim, n_attributes):
        check_all_params(self)
        self._segments = []
        self._template = None  # the trained, empty index, serialised
        self._tables = []  # per_class: each segment's cells and lists
        super()._start_build(n_items, dim, n_attributes)

    def _new_segment(self, n_items, dim):
        if self._template is None:
            self._segments.append(_faiss.new_index(self.factory, dim))
            if self.scan == "batched" and not self.per_class:
                raise ValueError("scan='batched' scans per-class lists: it needs "
                                 "per_class=True.")
            if self.per_class:  # refused before anything is embedded
                _faiss_cells.check_factory(self._segments[-1], self.factory)
            if self.scan == "batched":
                _int8_lists.check_sq8(self._segments[-1], self.factory)
        else:  # appending: a copy of the trained, empty index
            self._segments.append(_faiss.deserialize(self._template))
            if self.per_class:  # a new list: the earlier index keeps its own
                self._tables = self._tables + [self._tables[0].fresh(n_items)]

    def _n_training_items(self, n_items):
        index = self._segments[-1]
        if index.is_trained:
            return 0
        if self.n_train is not None:
            return min(n_items, self.n_train)
        ivf = _faiss.ivf_of(index)
        nlist = ivf.nlist if ivf is not None else 0
        return min(n_items, max(100_000, 40 * nlist))

    def _train(self, unit, predicted=None):
        if self.per_class:
            if predicted is None:
                raise ValueError("per_class=True trains on the items' predicted "
                                 "classes; none were given.")
            nlist = _faiss.ivf_of(self._segments[-1]).nlist
            table = _faiss_cells.CellTable.train(unit, predicted, nlist)
            self._segments[-1] = table.new_index(self.factory, self.dim_)
            self._tables = [table.fresh(len(self.norms_))]
        _faiss.skip_polysemous_training(self._segments[-1])
        try:
            self._segments[-1].train(np.ascontiguousarray(unit))
        except RuntimeError as exc:
            raise ValueError(
                f"faiss could not train factory={self.factory!r} on "
                f"{unit.shape[0]} items: {exc}"
            ) from None

    def _add_vectors(self, unit):
        index = self._segments[-1]
        if self._template is None:
            if not index.is_trained:
                raise ValueError(
                    f"factory={self.factory!r} needs training, but no items "
                    "were given to train on."
                )
            if self.per_class:
                _faiss_cells.check_searchable(index, self.factory, unit)
            else:
                _faiss.check_searchable(index, self.factory, unit)
            self._template = _faiss.serialize(index)
        if self.per_class:
            start = self.n_items_  # this chunk's first item; its classes are in
            self._tables[-1].add(index, unit, self.predicted_[start:start + len(unit)],
                                 start - self._segment_starts[-1])
        else:
            index.add(np.ascontiguousarray(unit))

    def _end_build(self):
        if self.per_class:
            self._tables[-1].finish()
        super()._end_build()
        if self.scan == "batched":  # this segment's codes move to one array
            self._tables[-1].lists = _int8_lists.Int8Lists.take(self._segments[-1])
            return
        for index in self._segments:
            ivf = _faiss.ivf_of(index)
            if ivf is not None:  # lets embeddings() reconstruct IVF items
                ivf.make_direct_map()

    @property
    def faiss_indexes_(self) -> list[Any]:
        check_built(self)
        return list(self._segments)

    def __getstate__(self):
        state = super().__getstate__()
        if "_segments" in state:
            state["_segments"] = [_faiss.serialize(i) for i in state["_segments"]]
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.setdefault("scan", "faiss")  # pickled before scan existed (0.1.0)
        if "_segments" in state:
            state["_segments"] = [_faiss.deserialize(b) for b in state["_segments"]]
        super().__setstate__(state)

    # ---- queries ----------------------------------------------------------------

    def _vectors(self, start, stop):
        offsets = self._segment_starts + [self.n_items_]
        parts = []
        for seg, (index, o, e) in enumerate(zip(self._segments, offsets, offsets[1:])):
            lo, hi = max(start, o), min(stop, e)
            if lo < hi and self.per_class:
                parts.append(self._tables[seg].reconstruct(index, lo - o, hi - o))
            elif lo < hi:
                parts.append(index.reconstruct_n(lo - o, hi - lo))
        if not parts:
            return np.empty((0, self.dim_), dtype=np.float32)
        return np.concatenate(parts)

    def _search_rows(self, q, k, exclude, rows):
        """Top ``k`` of the items ``rows`` (None: all), widening an
        approximate search for queries that found fewer than it could."""
        n_q = q.shape[0]
        sims, ids = self._search_once(q, k, exclude, rows, self.nprobe, self.ef_search)
        available = self.n_items_ if rows is None else len(rows)
        wanted = np.full(n_q, available, dtype=np.int64)
        if exclude is not None:
            wanted -= (exclude >= 0) if rows is None else np.isin(exclude, rows)
        wanted = np.minimum(wanted, k)
        nprobe, ef = self.nprobe, self.ef_search
        index = self._segments[0]
        ivf, hnsw = _faiss.ivf_of(index), _faiss.hnsw_of(index)
        while True:
            short = np.flatnonzero((ids >= 0).sum(1) < wanted)
            if short.size == 0:
                break
            if ivf is not None and (nprobe or ivf.nprobe) < ivf.nlist:
                nprobe = min(2 * (nprobe or ivf.nprobe), ivf.nlist)
            elif hnsw is not None and (ef or hnsw.hnsw.efSearch) < self.n_items_:
                ef = min(2 * (ef or hnsw.hnsw.efSearch), self.n_items_, C_INT_MAX)
            else:
                break  # exhaustive already: fewer items exist
            ex = None if exclude is None else exclude[short]
            sims[short], ids[short] = self._search_once(
                q[short], k, ex, rows, nprobe, ef
            )
        return sims, ids

    def _search_once(self, q, k, exclude, rows, nprobe, ef_search):
        n_q = q.shape[0]
        want = k + (exclude is not None)  # the excluded item may be among them
        all_s, all_i = [], []
        offsets = self._segment_starts + [self.n_items_]
        for index, o, e in zip(self._segments, offsets, offsets[1:]):
            selector = bits = None
            if rows is not None:
                local = rows[(rows >= o) & (rows < e)] - o
                if local.size == 0:
                    continue
                selector, bits = _faiss.bitmap_selector(local, e - o)
            params, keep = _faiss.search_parameters(index, selector, nprobe, ef_search)
            try:
                s, i = index.search(q, min(want, e - o), params=params)
            except RuntimeError as exc:
                raise ValueError(
                    f"faiss factory={self.factory!r} cannot search with these "
                    f"parameters or an ID selector: {exc}"
                ) from None
            del keep, bits
            all_s.append(s)
            all_i.append(np.where(i >= 0, i + o, -1))
        return _merge(all_s, all_i, exclude, k, n_q)

    # ---- per_class: a preference level is a set of cells -------------------------

    def _search(self, q, k, exclude, prefer):
        if not self.per_class:
            return super()._search(q, k, exclude, prefer)
        n = q.shape[0]
        sims = np.full((n, k), -np.inf, dtype=np.float32)
        ids = np.full((n, k), -1, dtype=np.int64)
        filled = np.zeros(n, dtype=np.int64)
        for wish, todo in query_groups(prefer, n, self._n_attributes):
            for cells in self._cell_levels(wish):
                ex = None if exclude is None else exclude[todo]
                s, i = self._search_cells(q[todo], k, ex, cells)
                place(sims, ids, filled, todo, s, i)
                todo = todo[filled[todo] < k]
                if todo.size == 0:
                    break
        return sims, ids

    def _cell_levels(self, wish):
        """The preference levels of ``wish``, best first: per level, each
        segment's cells in it (sorted cell numbers)."""
        codes = [table.levels(wish) for table in self._tables]
        for code in np.unique(np.concatenate(codes))[::-1]:
            yield [np.flatnonzero(c == code) for c in codes]

    def _search_cells(self, q, k, exclude, cells):
        """Top ``k`` of the items of ``cells`` (per segment), ``nprobe``
        doubled for the queries that found fewer items than the cells hold,
        up to every list of the cells."""
        offsets = self._segment_starts + [self.n_items_]
        available = sum(int(t.counts[c].sum()) for t, c in zip(self._tables, cells))
        wanted = np.full(q.shape[0], available, dtype=np.int64)
        if exclude is not None:  # an excluded item of the cells leaves one fewer
            segment = np.searchsorted(offsets, exclude, side="right") - 1
            for s, (table, c) in enumerate(zip(self._tables, cells)):
                on = np.flatnonzero((exclude >= 0) & (segment == s))
                wanted[on] -= np.isin(table.item_cell[exclude[on] - offsets[s]], c)
        wanted = np.minimum(wanted, k)
        most = max(int(sum(t.list_start[x + 1] - t.list_start[x] for x in c))
                   for t, c in zip(self._tables, cells))
        nprobe = 1 if self.nprobe is None else self.nprobe
        sims, ids = self._search_cells_once(q, k, exclude, cells, nprobe)
        while nprobe < most:
            short = np.flatnonzero((ids >= 0).sum(1) < wanted)
            if short.size == 0:
                break
            nprobe = min(2 * nprobe, most)
            ex = None if exclude is None else exclude[short]
            sims[short], ids[short] = self._search_cells_once(q[short], k, ex, cells,
                                                              nprobe)
        return sims, ids

    def _search_cells_once(self, q, k, exclude, cells, nprobe):
        want = k + (exclude is not None)  # the excluded item may be among them
        all_s, all_i = [], []
        offsets = self._segment_starts + [self.n_items_]
        for index, table, c, o in zip(self._segments, self._tables, cells, offsets):
            if len(c):
                s, i = table.search(index, q, want, c, nprobe)
                all_s.append(s)
                all_i.append(np.where(i >= 0, i + o, -1))
        return _merge(all_s, all_i, exclude, k, q.shape[0])


def _merge(all_s, all_i, exclude, k, n_q):
    """The top ``k`` of several searches' results (similarities, item
    numbers), the excluded items and the missing ones (-1) left out."""
    if not all_s:
        return (np.full((n_q, k), -np.inf, np.float32),
                np.full((n_q, k), -1, np.int64))
    s, i = np.concatenate(all_s, 1), np.concatenate(all_i, 1)
    bad = i < 0
    if exclude is not None:
        bad |= i == exclude[:, None]
    s = np.where(bad, -np.inf, s)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    s, i = np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)
    i = np.where(np.isfinite(s), i, -1)
    if s.shape[1] < k:
        pad = k - s.shape[1]
        s = np.pad(s, ((0, 0), (0, pad)), constant_values=-np.inf)
        i = np.pad(i, ((0, 0), (0, pad)), constant_values=-1)
    return s.astype(np.float32), i


