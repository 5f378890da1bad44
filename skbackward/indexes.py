"""Vector indexes: where a retriever keeps its items and how it searches them.

Every retriever takes a parameter ``vector_index``: ``None`` (an exact index,
the default) or one of these objects. They are scikit-learn style parameter
objects: ``get_params``/``set_params`` work, so ``GridSearchCV`` can tune e.g.
``vector_index__nprobe``, and ``clone`` gives an unfitted copy. A retriever
never changes the object it is given: ``fit`` and
:meth:`skbackward.BackwardSearchRetriever.index` build a fitted copy, the
retriever's ``vector_index_``.

- :class:`ExactIndex`: exact cosine top-k, tiled over queries and items, its
  temporary memory bounded by ``working_memory``. Right up to about a million
  items.
- :class:`FaissIndex`: an approximate (or exact) index of faiss
  (``pip install "skbackward[faiss]"``), any factory string: "IVF1024,Flat",
  "HNSW32", "IVF4096,PQ32", ... Conditional rankings run inside faiss through
  its ID selectors.
- :class:`MilvusIndex`: the items in a Milvus collection
  (``pip install "skbackward[milvus]"``): a Milvus Lite file, or a Milvus
  server shared by processes and machines. Conditional rankings run inside
  Milvus as filter expressions on the predicted classes.

Writing another backend: subclass :class:`VectorIndex` and implement the
building hooks (``_start_build``, ``_add``, optionally ``_n_training_items``,
``_train``, ``_end_build``, ``_grown``), :meth:`VectorIndex.search`,
:meth:`VectorIndex.embeddings` and :meth:`VectorIndex.predicted`.
"""

import copy
from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from . import _faiss
from ._index import exact_topk, unit_float32
from ._preference import cosine_distances, level_codes, place, query_groups, top_code
from ._validation import C_INT_MAX, check_arguments, check_params, count, finite

__all__ = ["ExactIndex", "FaissIndex", "MilvusIndex", "VectorIndex"]


class VectorIndex(BaseEstimator, metaclass=ABCMeta):
    """Base class of the index objects of the ``vector_index`` parameter.

    An unfitted instance holds parameters only. A retriever builds a fitted
    copy (``clone`` of it, then the building hooks below, in this order) and
    keeps it as its ``vector_index_``; a fitted index is never modified
    afterwards (appending builds a new object by ``_grown``), so a search
    running in another thread sees either the old index or the new one.

    Building hooks, called by the retriever:

    1. ``_will_replace(previous)``: the retriever's current fitted index (or
       None), which this build will replace.
    2. ``_start_build(n_items, dim, n_attributes)``: a new, empty index for
       ``n_items`` items of dimension ``dim``.
    3. ``_check_labels(labels)``: all the items' labels (or None), to refuse
       what the index cannot store before anything is written.
    4. ``_n_training_items(n_items)`` -> int: how many items to train on
       (0: no training); then ``_train(unit)`` with that many unit vectors,
       evenly spaced over the items.
    5. ``_add(unit, norms, predicted, labels)`` once per chunk of items, in
       order: float32 unit vectors (m, dim), float32 norms (m,), the heads'
       predicted classes (m, n_attributes) int, the items' labels (m,) or
       (m, n_attributes), or None.
    6. ``_end_build()``.

    ``_grown(n_items)`` returns a new fitted index holding this one's items,
    ready for ``_check_labels``, ``_add`` of ``n_items`` more and
    ``_end_build`` (``index(X, append=True)``). When a step after
    ``_start_build`` or ``_grown`` fails, the retriever calls
    ``_abort_build()`` on the new index (and keeps its old one).

    Attributes of a fitted index: ``n_items_`` (int), ``dim_`` (int) and
    ``labels_`` (ndarray or None). A subclass names the parameters a search
    reads in ``_search_params``: they are checked at every search, since
    ``set_params`` may change them on a fitted index.

    See Also
    --------
    ExactIndex : Exact search, the default.
    FaissIndex : Approximate search with faiss.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbackward import NearestNeighborRetriever
    >>> from skbackward.indexes import ExactIndex, VectorIndex
    >>> isinstance(ExactIndex(), VectorIndex)
    True
    >>> X, y = load_digits(return_X_y=True)
    >>> ret = NearestNeighborRetriever(epochs=1, random_state=0).fit(X, y)
    >>> index = ret.vector_index_  # the fitted copy
    >>> index.n_items_, index.embeddings(0, 5).shape
    (1797, (5, 256))
    >>> dist, ind = index.search(ret.transform(X[:2]), 3)
    >>> ind.shape
    (2, 3)
    """

    _search_params = ()

    # ---- building (see the class docstring) ------------------------------------

    def _n_training_items(self, n_items):
        return 0

    def _train(self, unit):
        """Train on float32 unit vectors (an evenly spaced sample of the items)."""

    @abstractmethod
    def _start_build(self, n_items, dim, n_attributes):
        """Start an empty index for ``n_items`` items."""

    @abstractmethod
    def _add(self, unit, norms, predicted, labels):
        """Add the next chunk of items."""

    def _end_build(self):
        """Called once all items are added."""

    def _will_replace(self, previous):
        """Told, before ``_start_build``, the fitted index this build will
        replace (None: none)."""

    def _check_labels(self, labels):
        """Refuse, before anything is written, labels the index cannot store."""

    def _abort_build(self):
        """Undo what a build or an append that failed half-way wrote."""

    def _grown(self, n_items):
        raise TypeError(f"{type(self).__name__} cannot grow by appending items.")

    # ---- queries ----------------------------------------------------------------

    @abstractmethod
    def search(self, queries, k, *, exclude=None, prefer=None):
        """Find the ``k`` items most similar to each query (cosine similarity).

        Parameters
        ----------
        queries : ndarray of shape (n_queries, embedding_dim)
            Query vectors (normalised here).
        k : int
            Number of neighbours.
        exclude : ndarray of shape (n_queries,), default=None
            An item number to leave out of each query's results, -1 for none.
        prefer : list of ndarray of shape (n_queries, n_attributes), default=None
            Tiers of wanted classes (-1: no wish). An item's rank key is
            lexicographic: (tier-0 wishes its predicted classes meet, tier-1
            wishes met, ..., cosine similarity), so items meeting every wish
            come first and the others fill up when fewer than ``k`` do.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            The ``k`` cosine distances ``1 - cos`` of each query (float32),
            ascending within each preference level; ``inf`` where fewer than
            ``k`` items were found.
        indices : ndarray of shape (n_queries, n_neighbors)
            Item numbers (int64) in insertion order; -1 where none was found.
        """

    @abstractmethod
    def embeddings(self, start=0, stop=None):
        """Return the embeddings of the items ``start:stop``.

        Parameters
        ----------
        start : int, default=0
            First item.
        stop : int, default=None
            End (excluded); None for the last item.

        Returns
        -------
        Z : ndarray of shape (n_items, embedding_dim)
            The embeddings (float32) of the ``stop - start`` items: unit
            vector times norm (as an approximate index stores them).
        """

    @abstractmethod
    def predicted(self, start=0, stop=None):
        """Return the heads' predicted classes of the items ``start:stop``.

        Parameters
        ----------
        start : int, default=0
            First item.
        stop : int, default=None
            End (excluded); None for the last item.

        Returns
        -------
        classes : ndarray of shape (n_items, n_attributes)
            Per item of ``start:stop`` and attribute, the index of the
            predicted class.
        """


def _check_built(index):
    if not hasattr(index, "n_items_"):
        raise NotFittedError(
            f"This {type(index).__name__} holds no items yet: a retriever builds "
            "its fitted copy (the retriever's vector_index_) in fit and index."
        )


def _check_search(index, queries, k, exclude):
    """The arguments of ``search`` checked: ``(unit queries, exclude)``; and
    the index's parameters that a search reads (they may have been changed by
    ``set_params`` since the build)."""
    _check_built(index)
    check_params(index, index._search_params)
    check_arguments({"k": [count(1)]}, f"{type(index).__name__}.search", k=k)
    queries = np.asarray(queries)
    if queries.ndim != 2 or queries.shape[1] != index.dim_:
        raise ValueError(
            f"queries must have shape (n_queries, {index.dim_}); got {queries.shape}."
        )
    if queries.dtype.kind not in "biuf":
        raise ValueError(f"queries must be numbers; got dtype {queries.dtype}.")
    finite = np.isfinite(queries).all(axis=1)
    if not finite.all():
        # a NaN similarity ranks nowhere: the search would answer -1 and inf
        raise ValueError(
            f"queries must be finite; rows {np.flatnonzero(~finite)[:10].tolist()} "
            "hold NaN or inf."
        )
    n_queries = queries.shape[0]
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=np.int64)
        if exclude.shape != (n_queries,):
            raise ValueError(
                f"exclude must have shape ({n_queries},); got {exclude.shape}."
            )
    return unit_float32(queries)[0], exclude


class _InMemoryIndex(VectorIndex):
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

    def predicted(self, start=0, stop=None):
        _check_built(self)
        return self.predicted_[start:stop]

    def embeddings(self, start=0, stop=None):
        _check_built(self)
        start, stop, _ = slice(start, stop).indices(self.n_items_)
        return self._vectors(start, stop) * self.norms_[start:stop, None]

    def search(self, queries, k, *, exclude=None, prefer=None):
        q, exclude = _check_search(self, queries, k, exclude)
        n = q.shape[0]
        if prefer is None:
            sims, ids = self._search_rows(q, k, exclude, None)
        else:
            sims = np.full((n, k), -np.inf, dtype=np.float32)
            ids = np.full((n, k), -1, dtype=np.int64)
            filled = np.zeros(n, dtype=np.int64)
            for wish, members in query_groups(prefer, n, self.predicted_.shape[1]):
                self._search_levels(q, members, wish, k, exclude, sims, ids, filled)
        return cosine_distances(sims, ids), ids

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


for _name in ("search", "embeddings", "predicted"):
    getattr(_InMemoryIndex, _name).__doc__ = getattr(VectorIndex, _name).__doc__


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


class ExactIndex(_InMemoryIndex):
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
        check_params(self, self._parameter_constraints)
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



class FaissIndex(_InMemoryIndex):
    """A faiss index for cosine search: approximate, fast, compressed.

    Needs faiss (``pip install "skbackward[faiss]"``). Any faiss factory
    string works: "IVF1024,Flat" (inverted lists), "HNSW32" (a graph),
    "IVF4096,PQ32" (compressed codes, for databases larger than memory holds
    as float32), "Flat" (exact), ... The items' unit vectors are indexed with
    inner-product metric, which on unit vectors is cosine similarity. Indexes
    that need training (IVF, PQ) train on ``n_train`` items evenly spaced over
    the indexed ones (PQ codes without faiss's polysemous training, which
    only polysemous search uses).

    Conditional rankings (``filter_predicted``, the label filter) run inside
    faiss: the items whose predicted classes meet the condition are passed to
    the search as an ID selector (a bitmap), the next preference level only
    when fewer than ``n_neighbors`` items were found. When an approximate
    search finds fewer items than the selection holds (e.g. a rare class and
    few probed lists), it is repeated for those queries with ``nprobe`` or
    ``efSearch`` doubled, up to an exhaustive search.

    ``nprobe`` and ``efSearch`` are read at each search, so they can be
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
    efSearch : int, default=None
        Size of the candidate list of an HNSW search; None keeps faiss's
        default (16).
    n_train : int, default=None
        Items to train on (IVF, PQ); None means ``max(100_000, 40 * nlist)``
        (at most all items).

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

    See Also
    --------
    ExactIndex : Exact search, the default.

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
    """

    _parameter_constraints = {
        "factory": [str],
        "nprobe": [count(1, C_INT_MAX), None],
        "efSearch": [count(1, C_INT_MAX), None],
        "n_train": [count(1), None],
    }
    _search_params = ("nprobe", "efSearch")

    def __init__(self, factory="IVF1024,Flat", *, nprobe=None, efSearch=None,
                 n_train=None):
        self.factory = factory
        self.nprobe = nprobe
        self.efSearch = efSearch
        self.n_train = n_train

    # ---- building -----------------------------------------------------------------

    def _start_build(self, n_items, dim, n_attributes):
        check_params(self, self._parameter_constraints)
        self._segments = []
        self._template = None  # the trained, empty index, serialised
        super()._start_build(n_items, dim, n_attributes)

    def _new_segment(self, n_items, dim):
        if self._template is None:
            self._segments.append(_faiss.new_index(self.factory, dim))
        else:  # appending: a copy of the trained, empty index
            self._segments.append(_faiss.deserialize(self._template))

    def _n_training_items(self, n_items):
        index = self._segments[-1]
        if index.is_trained:
            return 0
        if self.n_train is not None:
            return min(n_items, self.n_train)
        ivf = _faiss.ivf_of(index)
        nlist = ivf.nlist if ivf is not None else 0
        return min(n_items, max(100_000, 40 * nlist))

    def _train(self, unit):
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
            _faiss.check_searchable(index, self.factory, unit)
            self._template = _faiss.serialize(index)
        index.add(np.ascontiguousarray(unit))

    def _end_build(self):
        super()._end_build()
        for index in self._segments:
            ivf = _faiss.ivf_of(index)
            if ivf is not None:  # lets embeddings() reconstruct IVF items
                ivf.make_direct_map()

    @property
    def faiss_indexes_(self):
        _check_built(self)
        return list(self._segments)

    def __getstate__(self):
        state = super().__getstate__()
        if "_segments" in state:
            state["_segments"] = [_faiss.serialize(i) for i in state["_segments"]]
        return state

    def __setstate__(self, state):
        if "_segments" in state:
            state = dict(state)
            state["_segments"] = [_faiss.deserialize(b) for b in state["_segments"]]
        super().__setstate__(state)

    # ---- queries ----------------------------------------------------------------

    def _vectors(self, start, stop):
        offsets = self._segment_starts + [self.n_items_]
        parts = []
        for index, o, e in zip(self._segments, offsets, offsets[1:]):
            lo, hi = max(start, o), min(stop, e)
            if lo < hi:
                parts.append(index.reconstruct_n(lo - o, hi - lo))
        if not parts:
            return np.empty((0, self.dim_), dtype=np.float32)
        return np.concatenate(parts)

    def _search_rows(self, q, k, exclude, rows):
        """Top ``k`` of the items ``rows`` (None: all), widening an
        approximate search for queries that found fewer than it could."""
        n_q = q.shape[0]
        sims, ids = self._search_once(q, k, exclude, rows, self.nprobe, self.efSearch)
        available = self.n_items_ if rows is None else len(rows)
        wanted = np.full(n_q, available, dtype=np.int64)
        if exclude is not None:
            wanted -= (exclude >= 0) if rows is None else np.isin(exclude, rows)
        wanted = np.minimum(wanted, k)
        nprobe, ef = self.nprobe, self.efSearch
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


from ._milvus import MilvusIndex  # noqa: E402  (it subclasses VectorIndex)
