"""Exact cosine top-k, tiled over queries and database, in bounded memory.

The searched items are a list of float32 unit-vector arrays ("segments": one
per ``index`` or ``append`` call), or a sorted subset of their rows. Queries go
in tiles of at most ``MAX_QUERY_TILE`` rows; for each tile the items are
streamed in tiles of ``ITEM_TILE`` rows, one matmul each.

Selecting the top k of every similarity tile directly (``torch.topk``) costs a
third of the matmul itself. Instead, the columns of a tile fall into groups of
``GROUP`` (columns ``j, j + s, j + 2s, ...``, ``s = ITEM_TILE / GROUP``): pass 1
keeps only each group's maximum, pass 2 takes the k groups with the largest
maxima, which hold the k most similar items (each of those items lies in a
group whose maximum is at least its own similarity), recomputes the
similarities of their items and keeps the top k. The group maxima of many
tiles ("a block") are kept together so ``topk`` runs over long rows.

Determinism: a row's result must not depend on the other rows of its batch.
The matmul of a query tile is padded to a multiple of ``QUERY_ALIGN`` rows
(BLAS kernels take other paths for 1-3 rows, or odd rows per thread), and the
tiling of the items does not depend on the number of queries.
"""

import numpy as np
import torch
from sklearn import get_config

ITEM_TILE = 4096  # item rows per matmul tile (a multiple of GROUP)
GROUP = 32  # columns per group in pass 1
QUERY_ALIGN = 16  # query tiles are padded to a multiple of this many rows
MAX_QUERY_TILE = 1024  # larger query tiles gain nothing in matmul speed
REFINE_BYTES = 4 * 2**20  # candidate vectors gathered at once in pass 2


def unit_float32(Z):
    """``(unit, norms)``: rows of ``Z`` as float32 unit vectors, and their norms.

    The division happens in ``Z``'s dtype, row by row, so each row's result
    does not depend on the others.
    """
    norms = np.linalg.norm(Z, axis=1)
    unit = Z / np.where(norms > 0, norms, 1)[:, None]
    return unit.astype(np.float32, copy=False), norms.astype(np.float32)


def working_memory_bytes(working_memory):
    """Bytes of working memory: ``working_memory`` MiB, or scikit-learn's
    ``working_memory`` setting when None."""
    if working_memory is None:
        working_memory = get_config()["working_memory"]
    return int(working_memory * 2**20)


def chunk_rows(row_bytes, n_rows, working_memory=None):
    """Rows per chunk so that a chunk takes at most the working memory
    (at least one row, at most ``n_rows``)."""
    return int(min(max(working_memory_bytes(working_memory) // row_bytes, 1),
                   max(n_rows, 1)))


def gather_rows(segments, offsets, ids):
    """Rows ``ids`` (global item numbers) of the concatenated ``segments``."""
    if len(segments) == 1:
        return segments[0][ids]
    out = np.empty((len(ids), segments[0].shape[1]), dtype=segments[0].dtype)
    which = np.searchsorted(offsets, ids, side="right") - 1
    for s in np.unique(which):  # a loop over segments, not rows
        on = which == s
        out[on] = segments[s][ids[on] - offsets[s]]
    return out


class _Columns:
    """The searched items: all rows of the segments, or a sorted subset."""

    def __init__(self, segments, rows):
        self.segments = segments
        self.offsets = np.cumsum([0] + [len(s) for s in segments])
        self.rows = rows
        self.n = int(self.offsets[-1]) if rows is None else len(rows)

    def ids(self, cols):
        """Global item numbers of column positions (an array)."""
        return cols if self.rows is None else self.rows[cols]

    def position(self, items):
        """Column position of each item number (-1 when not searched)."""
        items = np.asarray(items, dtype=np.int64)
        if self.rows is None:
            return np.where((items >= 0) & (items < self.n), items, -1)
        pos = np.searchsorted(self.rows, items)
        found = pos < self.n
        found[found] = self.rows[pos[found]] == items[found]
        return np.where(found & (items >= 0), pos, -1)

    def tile(self, start, stop):
        """Vectors of columns [start, stop) as a tensor (a view when possible)."""
        if self.rows is None:  # a view when the tile lies in one segment
            s = int(np.searchsorted(self.offsets, start, side="right")) - 1
            if stop <= self.offsets[s + 1]:
                o = int(self.offsets[s])
                return torch.from_numpy(self.segments[s][start - o:stop - o])
        cols = np.arange(start, stop)
        return torch.from_numpy(self.vectors(cols))

    def vectors(self, cols):
        return gather_rows(self.segments, self.offsets, self.ids(cols))


def _refine_bytes(k, group, n_cols):
    """Per query, pass 2's candidates (int64 column, mask, float32 similarity:
    13 bytes each) and the running top k with its merge (36 bytes per k)."""
    return 13 * min(k, -(-n_cols // group)) * group + 36 * k


def _plan(n_cols, k, working_memory):
    """Tile sizes from the working memory; none depends on the number of queries."""
    budget = working_memory_bytes(working_memory)
    # a third of the budget each: the similarity tile, the group maxima, pass 2
    share = max(budget // 3, 1)
    # grouping pays when the k best groups hold few of the columns, and when
    # their candidates fit the budget for a minimal query tile
    group = GROUP if (k * GROUP * 4 <= n_cols and QUERY_ALIGN
                      * _refine_bytes(k, GROUP, n_cols) <= share) else 1
    tile = min(ITEM_TILE, -(-n_cols // group) * group)
    q_tile = min(share // (4 * tile), share // _refine_bytes(k, group, n_cols))
    q_tile = q_tile // QUERY_ALIGN * QUERY_ALIGN
    q_tile = int(min(max(q_tile, QUERY_ALIGN), MAX_QUERY_TILE))
    groups_per_tile = tile // group
    tiles_per_block = max(1, share // (4 * q_tile * groups_per_tile))
    return group, tile, q_tile, tiles_per_block, share


def exact_topk(queries, segments, k, *, rows=None, exclude=None, working_memory=None):
    """The ``k`` items with the largest inner product with each query.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, D), float32
        Unit query vectors.
    segments : list of ndarray of shape (n_s, D), float32
        The items' unit vectors; item numbers run through the segments in order.
    k : int
    rows : ndarray of int64, default=None
        Sorted item numbers to search; None searches every item.
    exclude : ndarray of shape (n_queries,), default=None
        An item number to leave out per query, -1 for none.
    working_memory : float, default=None
        MiB of temporary memory; None uses scikit-learn's ``working_memory``.

    Returns
    -------
    sims : ndarray of shape (n_queries, k), float32
        Inner products, descending; -inf where fewer than ``k`` items are left.
    ids : ndarray of shape (n_queries, k), int64
        Item numbers; -1 where fewer than ``k`` items are left.
    """
    n_q = queries.shape[0]
    sims = np.full((n_q, k), -np.inf, dtype=np.float32)
    ids = np.full((n_q, k), -1, dtype=np.int64)
    columns = _Columns(segments, rows)
    if n_q == 0 or columns.n == 0:
        return sims, ids
    excluded = None if exclude is None else columns.position(exclude)
    plan = _plan(columns.n, k, working_memory)
    q_all = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    for start in range(0, n_q, plan[2]):
        stop = min(start + plan[2], n_q)
        ex = None if excluded is None else excluded[start:stop]
        s, i = _query_tile(q_all[start:stop], columns, k, ex, plan)
        sims[start:stop], ids[start:stop] = s, i
    return sims, ids


def _query_tile(q, columns, k, excluded, plan):
    group, tile, _, tiles_per_block, share = plan
    n, dim = q.shape
    padded = -(-n // QUERY_ALIGN) * QUERY_ALIGN
    if padded != n:  # zero rows: their results are dropped
        q = torch.cat([q, q.new_zeros(padded - n, dim)])
    best_s = torch.full((n, k), -float("inf"))
    best_c = torch.full((n, k), -1, dtype=torch.int64)
    ex = None if excluded is None else torch.from_numpy(excluded)
    stride = tile // group  # groups per tile
    block_cols = tile * tiles_per_block
    buf = torch.empty((padded, tile))  # reused: no page faults per tile
    for b0 in range(0, columns.n, block_cols):
        b1 = min(b0 + block_cols, columns.n)
        n_tiles = -(-(b1 - b0) // tile)
        maxima = torch.empty((n_tiles, padded, stride))
        for t in range(n_tiles):
            c0 = b0 + t * tile
            c1 = min(c0 + tile, b1)
            if c1 - c0 == tile:
                sim = torch.mm(q, columns.tile(c0, c1).T, out=buf)
            else:  # the last tile, padded to a whole tile
                sim = torch.nn.functional.pad(q @ columns.tile(c0, c1).T,
                                              (0, tile - (c1 - c0)),
                                              value=-float("inf"))
            if ex is not None:
                on = torch.nonzero((ex >= c0) & (ex < c1)).flatten()
                sim[on, ex[on] - c0] = -float("inf")
            torch.amax(sim.view(padded, group, stride), 1, out=maxima[t])
        maxima = maxima[:, :n].permute(1, 0, 2).reshape(n, n_tiles * stride)
        s, c = _refine(q[:n], maxima, columns, k, b0, b1, ex, plan)
        merged = torch.cat([best_s, s], 1)
        best_s, j = torch.topk(merged, k, dim=1)
        best_c = torch.cat([best_c, c], 1).gather(1, j)
    ids = columns.ids(best_c.numpy().clip(0))
    return best_s.numpy(), np.where(best_c.numpy() >= 0, ids, -1)


def _dot(a, b):
    """Row-wise dot products summed in a fixed order (a halving tree), so a
    value never depends on the shape of the batch it is computed in (bmm's
    does)."""
    x = a * b
    width = 1 << (x.shape[-1] - 1).bit_length()
    if width != x.shape[-1]:
        x = torch.nn.functional.pad(x, (0, width - x.shape[-1]))
    while width > 1:
        width //= 2
        x = x[..., :width] + x[..., width:]
    return x[..., 0]


def _refine(q, maxima, columns, k, b0, b1, ex, plan):
    """Pass 2: exact similarities of the items of each row's k best groups."""
    group, tile, _, _, share = plan
    n, dim = q.shape
    stride = tile // group
    kk = min(k, maxima.shape[1])
    _, g = torch.topk(maxima, kk, dim=1)  # (n, kk) group numbers in the block
    # the g-th group of the block is column b0 + (g // stride) * tile + g % stride
    # + r * stride of tile g // stride, r < group
    base = b0 + (g // stride) * tile + g % stride
    cols = (base.unsqueeze(2) + torch.arange(group) * stride).reshape(n, -1)
    valid = cols < b1
    if ex is not None:
        valid &= cols != ex[:n].unsqueeze(1)
    cols = torch.where(valid, cols, 0)
    n_cand = cols.shape[1]
    out = torch.empty((n, n_cand))
    # small chunks: the gathered vectors and the sums stay in cache
    chunk = max(1, min(share, REFINE_BYTES) // (4 * n_cand * dim))
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        vec = torch.from_numpy(columns.vectors(cols[s:e].reshape(-1).numpy()))
        out[s:e] = _dot(vec.view(e - s, n_cand, dim), q[s:e].unsqueeze(1))
    out = torch.where(valid, out, -float("inf"))
    s, j = torch.topk(out, min(k, n_cand), dim=1)
    c = torch.where(torch.isfinite(s), cols.gather(1, j), -1)
    if s.shape[1] < k:
        fill = k - s.shape[1]
        s = torch.cat([s, torch.full((n, fill), -float("inf"))], 1)
        c = torch.cat([c, torch.full((n, fill), -1, dtype=torch.int64)], 1)
    return s, c
