"""Per-class inverted lists of :class:`~skbackward.indexes.FaissIndex`
(``per_class=True``): one faiss IVF whose every list holds items of one cell.

A *cell* is a combination of predicted classes, one per attribute; every item
lies in exactly one. Training splits the IVF's lists among the cells of the
training sample in proportion to their items and runs k-means per cell, so
each list holds items of its own cell only. A search for a set of cells (a
preference level: the cells whose classes meet a condition) ranks only those
cells' lists against the query (``nprobe`` of them, exact top-k over their
centroids) and scans them with faiss's ``search_preassigned``: the items of
other classes are never touched. A multi-attribute condition selects one cell,
a one-attribute condition the cells of its class.

Cells absent from the training sample (rare: the sample is spread over all
items) get no lists; their items are kept aside as float32 vectors and
searched exactly ("overflow").
"""

import re

import numpy as np

from . import _faiss
from ._preference import level_codes
from ._topk import exact_topk

KMEANS_ITERATIONS = 20
MAX_POINTS_PER_CENTROID = 256  # faiss's own default for k-means samples


def check_factory(index, factory):
    """Refuse a factory whose index is not an IVF with a flat coarse quantizer
    at its top (per-class lists need the lists and their centroids)."""
    faiss = _faiss.import_faiss()
    inner = faiss.downcast_index(index)
    ok = isinstance(inner, faiss.IndexIVF) and isinstance(
        faiss.downcast_index(inner.quantizer), faiss.IndexFlat)
    if not ok or re.search(r"IVF\d+", factory) is None:
        raise ValueError(
            f"per_class=True needs an IVF factory with a flat coarse quantizer "
            f"and no pre-transform, such as 'IVF4096,Flat' or 'IVF4096,SQ8'; "
            f"got factory={factory!r}."
        )
    if isinstance(inner, faiss.IndexIVFFastScan):
        # its lists hold codes packed in blocks of 32, which add_core with
        # preassigned lists overwrites as unpacked codes: the results are
        # garbage (recall@10 0.004 at 1M items) or the heap is corrupted
        raise ValueError(
            f"per_class=True cannot fill the lists of a fast-scan IVF "
            f"(4-bit codes, 'x4fs'); got factory={factory!r}. Choose e.g. "
            "'IVF4096,SQ8' or 'IVF4096,PQ32'."
        )
    return inner.nlist


def check_searchable(index, factory, sample):
    """Refuse, at fit, an IVF whose encoder cannot be searched with
    preassigned lists: a copy of the trained, empty ``index`` takes the first
    items of ``sample`` into list 0 and is searched as a cell search does."""
    faiss = _faiss.import_faiss()
    owner = _faiss.deserialize(_faiss.serialize(index))  # owns what probe views
    probe = faiss.downcast_index(owner)
    items = np.ascontiguousarray(sample[:_faiss.PROBE_ITEMS], dtype=np.float32)
    n = items.shape[0]
    ids, lists = np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    coarse, coarse_sims = np.zeros((1, 1), np.int64), np.zeros((1, 1), np.float32)
    s, i = np.empty((1, 1), np.float32), np.empty((1, 1), np.int64)
    params = faiss.SearchParametersIVF()
    params.nprobe = 1
    try:
        probe.add_core(n, _ptr(items), _ptr(ids), _ptr(lists))
        probe.search_preassigned_c(1, _ptr(items), 1, _ptr(coarse),
                                   _ptr(coarse_sims), _ptr(s), _ptr(i), False, params)
    except RuntimeError as exc:
        raise ValueError(
            f"faiss factory={factory!r} cannot add and search items with "
            f"preassigned lists, as per_class=True does: {exc}. Choose another "
            "factory, e.g. 'IVF4096,Flat' or 'IVF4096,SQ8'."
        ) from None
    del owner


def _scan(index, q, k, coarse, coarse_sims):
    """faiss's scan of the lists ``coarse`` (m, nprobe) of each query ``q``."""
    faiss = _faiss.import_faiss()
    m, nprobe = coarse.shape
    params = faiss.SearchParametersIVF()
    params.nprobe = nprobe
    s = np.empty((m, k), dtype=np.float32)
    i = np.empty((m, k), dtype=np.int64)
    x = np.ascontiguousarray(q, dtype=np.float32)
    faiss.downcast_index(index).search_preassigned_c(
        m, _ptr(x), k, _ptr(coarse), _ptr(coarse_sims), _ptr(s), _ptr(i), False, params)
    return s, i


def _ptr(array):
    return _faiss.import_faiss().swig_ptr(array)


class CellTable:
    """The cells of one segment (a build or an append) and their lists.

    Attributes: ``keys`` (n_cells, A) the cells' classes; ``list_start``
    (n_cells + 1,) cell ``c``'s lists are ``list_start[c]:list_start[c + 1]``
    (none for a cell unseen in training); ``centroids`` (n_lists, dim) float32;
    ``counts`` (n_cells,) items per cell; ``item_cell`` (n_items,) each
    item's cell; ``overflow``: local item numbers, vectors and cells of the
    items of cells without lists; ``lists``: the lists' codes once moved
    out of faiss (``scan="batched"``, an :class:`Int8Lists`), else None.
    """

    lists = None

    def __init__(self, keys, list_start, centroids):
        self.keys = keys
        self.list_start = list_start
        self.centroids = centroids
        self.lookup = {tuple(k): c for c, k in enumerate(keys.tolist())}

    @classmethod
    def train(cls, unit, predicted, n_lists):
        """Cells of the training sample, ``n_lists`` lists shared out among
        them by their items (at least one each, at most one per item), each
        cell's centroids by spherical k-means on its own items."""
        faiss = _faiss.import_faiss()
        keys, inverse, counts = np.unique(predicted, axis=0, return_inverse=True,
                                          return_counts=True)
        inverse = inverse.reshape(-1)
        alloc = np.floor(n_lists * counts / counts.sum() + 0.5).astype(np.int64)
        alloc = np.minimum(np.maximum(alloc, 1), counts)
        centroids = []
        for c, n_c in enumerate(alloc):
            x = np.ascontiguousarray(unit[inverse == c])
            if n_c == len(x):  # as many lists as items: each item its centroid
                centroids.append(x)
                continue
            kmeans = faiss.Kmeans(
                x.shape[1], int(n_c), niter=KMEANS_ITERATIONS, spherical=True,
                seed=c + 1, min_points_per_centroid=1,
                max_points_per_centroid=MAX_POINTS_PER_CENTROID)
            kmeans.train(x)
            centroids.append(kmeans.centroids)
        list_start = np.concatenate([[0], np.cumsum(alloc)]).astype(np.int64)
        return cls(keys.astype(np.int64), list_start,
                   np.ascontiguousarray(np.concatenate(centroids), dtype=np.float32))

    def new_index(self, factory, dim):
        """The factory's IVF with this table's lists as its coarse quantizer
        (trained no further: the encoder is trained by the caller)."""
        n_lists = len(self.centroids)
        index = _faiss.new_index(re.sub(r"IVF\d+", f"IVF{n_lists}", factory, count=1),
                                 dim)
        ivf = _faiss.import_faiss().downcast_index(index)
        ivf.quantizer.add(self.centroids)
        return index

    def fresh(self, n_items):
        """An empty copy for a new segment of ``n_items`` items, with the
        trained cells and lists."""
        new = CellTable(self.keys, self.list_start, self.centroids)
        new.counts = np.zeros(len(self.keys), dtype=np.int64)
        new.item_cell = np.full(n_items, -1, dtype=np.int32)
        new._overflow = []
        return new

    # ---- building -----------------------------------------------------------------

    def _cell_numbers(self, predicted):
        """Each row's cell, new cells (no lists) added for unseen combinations."""
        rows, inverse = np.unique(predicted, axis=0, return_inverse=True)
        cells = np.empty(len(rows), dtype=np.int64)
        for i, key in enumerate(map(tuple, rows.tolist())):
            cell = self.lookup.get(key)
            if cell is None:
                cell = len(self.keys)
                self.lookup[key] = cell
                self.keys = np.concatenate([self.keys, np.asarray([key], np.int64)])
                self.list_start = np.append(self.list_start, self.list_start[-1])
                self.counts = np.append(self.counts, 0)
            cells[i] = cell
        return cells[inverse.reshape(-1)]

    def add(self, index, unit, predicted, local_start):
        """Add a chunk of items (local numbers from ``local_start``): each to
        the nearest list of its cell, or aside when its cell has none.

        The IVF numbers its items 0, 1, ... in item order, skipping those
        kept aside (so faiss's direct map, for reconstruction, applies):
        :meth:`_items` maps its numbers back to the items'.
        """
        ivf = _faiss.import_faiss().downcast_index(index)
        cells = self._cell_numbers(predicted)
        items = np.arange(local_start, local_start + len(unit), dtype=np.int64)
        self.item_cell[items] = cells
        np.add.at(self.counts, cells, 1)
        listed = self.list_start[cells + 1] > self.list_start[cells]
        positions = ivf.ntotal + np.cumsum(listed) - 1
        for cell in np.unique(cells):
            on = np.flatnonzero(cells == cell)
            x = np.ascontiguousarray(unit[on], dtype=np.float32)
            lo, hi = self.list_start[cell], self.list_start[cell + 1]
            if lo == hi:
                self._overflow.append((items[on], x))
                continue
            # deterministic per row: the same list whatever the chunk size
            lists = exact_topk(x, [self.centroids[lo:hi]], 1)[1][:, 0] + lo
            ids = np.ascontiguousarray(positions[on])
            ivf.add_core(len(x), _ptr(x), _ptr(ids), _ptr(lists))

    def finish(self):
        """Gather the items kept aside; called once all items are added."""
        parts = self.__dict__.pop("_overflow")
        dim = self.centroids.shape[1]
        if parts:
            order = np.argsort(np.concatenate([i for i, _ in parts]), kind="stable")
            self.overflow_ids = np.concatenate([i for i, _ in parts])[order]
            self.overflow_vectors = np.concatenate([x for _, x in parts])[order]
        else:
            self.overflow_ids = np.empty(0, dtype=np.int64)
            self.overflow_vectors = np.empty((0, dim), dtype=np.float32)
        self.overflow_cells = self.item_cell[self.overflow_ids]
        # the IVF number an item kept aside would have had: items from the
        # i-th such on are numbered i + 1 below their own number
        self._skips = self.overflow_ids - np.arange(len(self.overflow_ids))

    def _items(self, positions):
        """Item numbers of the IVF's numbers ``positions`` (-1 stays -1)."""
        items = positions + np.searchsorted(self._skips, positions, side="right")
        return np.where(positions >= 0, items, -1)

    # ---- queries ----------------------------------------------------------------

    def reconstruct(self, index, lo, hi):
        """Unit vectors of the local items ``lo:hi`` (through faiss's direct
        map: the cost of the items asked for, not of the index)."""
        out = np.empty((hi - lo, self.centroids.shape[1]), dtype=np.float32)
        aside = np.flatnonzero((self.overflow_ids >= lo) & (self.overflow_ids < hi))
        listed = np.ones(hi - lo, dtype=bool)
        listed[self.overflow_ids[aside] - lo] = False
        first = lo - np.searchsorted(self.overflow_ids, lo)  # lo's IVF number
        if listed.any():
            numbers = np.arange(first, first + int(listed.sum()), dtype=np.int64)
            out[listed] = (index.reconstruct_batch(numbers) if self.lists is None
                           else self.lists.reconstruct(numbers, self.centroids))
        out[self.overflow_ids[aside] - lo] = self.overflow_vectors[aside]
        return out

    def search(self, index, q, k, cells, nprobe):
        """Top ``k`` of the items of ``cells`` (sorted cell numbers) for unit
        queries ``q``: the ``nprobe`` lists of those cells nearest to each
        query, and the cells' items kept aside. Returns local item numbers
        (-1: none) and similarities (-inf there)."""
        m = q.shape[0]
        sims, ids = [], []
        lists = np.concatenate([np.arange(self.list_start[c], self.list_start[c + 1])
                                for c in cells]) if len(cells) else np.empty(0, int)
        if lists.size and m:
            probe = int(min(nprobe, lists.size))
            coarse_sims, coarse = exact_topk(q, [self.centroids], probe, rows=lists)
            if self.lists is not None:  # scan="batched"
                s, i = self.lists.search(q, k, coarse, coarse_sims)
            else:
                s, i = _scan(index, q, k, coarse, coarse_sims)
            sims.append(s)
            ids.append(self._items(i))
        aside = np.flatnonzero(np.isin(self.overflow_cells, cells))
        if aside.size and m:
            s, i = exact_topk(q, [self.overflow_vectors], k, rows=aside)
            sims.append(s)
            ids.append(np.where(i >= 0, self.overflow_ids[i.clip(0)], -1))
        if not sims:
            return (np.full((m, k), -np.inf, np.float32), np.full((m, k), -1, np.int64))
        s, i = np.concatenate(sims, 1), np.concatenate(ids, 1)
        s = np.where(i >= 0, s, -np.inf).astype(np.float32)
        return s, i

    def levels(self, wish):
        """The preference levels of ``wish`` over this table's cells: each
        cell's level code (larger is preferred)."""
        return level_codes(self.keys, wish)
