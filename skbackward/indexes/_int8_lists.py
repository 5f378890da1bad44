"""The batched scan of per-class SQ8 lists (``FaissIndex(scan="batched")``).

faiss scans a list once for every query that probes it, decoding each 8-bit
code to floats: at 10M items a conditional query reads some 39,000 codes, and
the scan is bound by memory bandwidth. Here the lists' codes are moved out of
faiss into one int8 array, list after list, and a batch of queries is scanned
list by list: each list is scored against all the batch's queries that probe
it with one integer matrix product (VNNI ``int8 x int8 -> int32`` kernels,
some 40 times faster per code than the decode-and-dot scan).

Scores. faiss's SQ8 (``QT_8bit``) decodes code ``c`` of dimension ``j`` to
``vmin[j] + (c + 0.5) / 255 * vdiff[j]``, plus the list's centroid when it
encodes residuals. With ``w = q * vdiff / 255`` and ``s = c - 128`` (int8)
the similarity of query ``q`` to an item of list ``l`` is::

    q . centroid[l] + q . vmin + sum_j w[j] * (s[j] + 128.5)

The scan rounds ``w`` to int8 per query (``w ~ scale * wi``) and ranks by
``scale * (wi . s) + q . centroid[l]``: integer products, exact, with an
error only through ``wi``. The scan keeps every item's score and the best
of each group of ``GROUP`` consecutive items of a list; each query then
takes its ``REFINE * k`` best groups, their ``REFINE * k`` best items, and
scores those again with the formula above in float32: the results are
faiss's, up to rounding. A query's result does not depend on the other
queries of its batch (integer products; per-row selections of a width fixed
by the index).

Lists are padded to whole groups with copies of their last row (a group's
best stays a real item's); the padding rows have id -1 and are never
returned.
"""

import threading

import numpy as np
import torch

from . import _faiss
from ._topk import QUERY_ALIGN, chunk_rows

GROUP = 32  # items per group whose best approximate score is kept
REFINE = 2  # groups re-scored exactly per wanted item
_INT_MIN = torch.iinfo(torch.int32).min


def check_sq8(index, factory):
    """Refuse, at build, an IVF whose codes the batched scan cannot read:
    it reads faiss's 8-bit scalar quantizer codes ("SQ8") only."""
    faiss = _faiss.import_faiss()
    inner = faiss.downcast_index(index)
    ok = (isinstance(inner, faiss.IndexIVFScalarQuantizer)
          and inner.sq.qtype == faiss.ScalarQuantizer.QT_8bit)
    if not ok:
        raise ValueError(
            f"scan='batched' reads 8-bit scalar quantizer codes: it needs "
            f"per_class=True and an 'IVF<n>,SQ8' factory; got factory={factory!r}."
        )


def int8_matmul(a, b):
    """``a @ b.T`` of int8 matrices, exactly, as int32."""
    global _INT_MM
    if _INT_MM:
        try:
            return torch._int_mm(a, b.T)
        except (AttributeError, RuntimeError, NotImplementedError):
            _INT_MM = False  # torch without a CPU int8 kernel (before 2.3)
    # exact in float32 while every sum stays below 2 ** 24
    dtype = torch.float32 if a.shape[1] * 128 * 128 < 2**24 else torch.float64
    return (a.to(dtype) @ b.to(dtype).T).to(torch.int32)


_INT_MM = True


class Int8Lists:
    """The codes of an SQ8 IVF's lists, moved out of faiss into one array.

    Attributes: ``codes`` (n_rows, dim) int8, the codes minus 128, list
    after list, each list padded to a multiple of ``GROUP`` rows with copies
    of its last row (they leave each group's best score as it is);
    ``offsets`` (n_lists + 1,) list ``l`` is ``codes[offsets[l]:offsets[l +
    1]]``; ``ids`` (n_rows,) the faiss id of each row (-1: a padding row);
    ``vmin``, ``step`` (dim,) float32, the quantizer's ``vmin`` and ``vdiff
    / 255``; ``residual``: whether the codes encode the items' residuals
    to their list's centroid (faiss's ``by_residual``).
    """

    @classmethod
    def take(cls, index):
        """Move the lists of the SQ8 IVF ``index`` out of faiss (whose lists
        are left empty: the codes are stored once)."""
        faiss = _faiss.import_faiss()
        ivf = faiss.downcast_index(index)
        lists, dim = ivf.invlists, ivf.d
        sizes = np.array([lists.list_size(i) for i in range(ivf.nlist)], np.int64)
        padded = -(-sizes // GROUP) * GROUP
        self = cls()
        self.offsets = np.concatenate([[0], np.cumsum(padded)]).astype(np.int64)
        self.codes = np.empty((int(padded.sum()), dim), dtype=np.int8)
        self.ids = np.full(int(padded.sum()), -1, dtype=np.int64)
        for i in np.flatnonzero(sizes):
            lo, n = self.offsets[i], int(sizes[i])
            codes = faiss.rev_swig_ptr(lists.get_codes(int(i)), n * dim)
            np.bitwise_xor(codes.reshape(-1, dim), 128,
                           out=self.codes[lo:lo + n].view(np.uint8))
            self.codes[lo + n:self.offsets[i + 1]] = self.codes[lo + n - 1]
            self.ids[lo:lo + n] = faiss.rev_swig_ptr(lists.get_ids(int(i)), n)
        trained = faiss.vector_to_array(ivf.sq.trained).astype(np.float32)
        self.vmin, self.step = trained[:dim], trained[dim:] / 255
        self.residual = bool(ivf.by_residual)
        empty = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
        empty.this.disown()  # the index owns and frees it (and the lists it replaces)
        ivf.replace_invlists(empty, True)
        self._rows = None
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_rows"] = None  # rebuilt when needed
        state.pop("_local", None)  # working buffers
        return state

    def _buffer(self, name, size):
        """A flat int32 buffer of ``size`` entries, kept for the next search
        of this thread: a search's score buffers take hundreds of MB, and
        fresh pages for each (faulted in and zeroed by the system) cost as
        much as the scan. At most the working memory is kept."""
        local = self.__dict__.setdefault("_local", threading.local())
        buf = getattr(local, name, None)
        if buf is None or buf.numel() < size:
            setattr(local, name, None)
            buf = torch.empty(size, dtype=torch.int32)
            setattr(local, name, buf)
        return buf[:size]

    @property
    def width(self):
        """Rows of the longest (padded) list: the width of a pair's scores."""
        return int(np.diff(self.offsets).max()) if len(self.offsets) > 1 else 0

    # ---- reading items back ------------------------------------------------------

    def reconstruct(self, ids, centroids):
        """Decoded unit vectors (float32) of the items with faiss ids ``ids``
        (``centroids``: the lists' centroids, added back to residual codes)."""
        if self._rows is None:
            real = np.flatnonzero(self.ids >= 0)
            self._rows = np.empty(len(real), dtype=np.int64)
            self._rows[self.ids[real]] = real
        rows = self._rows[ids]
        out = (self.codes[rows].astype(np.float32) + 128.5) * self.step + self.vmin
        if self.residual:
            out += centroids[np.searchsorted(self.offsets, rows, side="right") - 1]
        return out

    # ---- searching ---------------------------------------------------------------

    def search(self, q, k, coarse, coarse_sims):
        """Top ``k`` of the lists ``coarse`` (m, nprobe) of each query of
        ``q`` (m, dim) float32, whose centroid similarities are
        ``coarse_sims``. Returns similarities (m, k) float32 (-inf: none)
        and faiss ids (-1: none)."""
        m, nprobe = coarse.shape
        sims = np.full((m, k), -np.inf, dtype=np.float32)
        ids = np.full((m, k), -1, dtype=np.int64)
        if m == 0 or nprobe == 0 or len(self.codes) == 0:
            return sims, ids
        # a query's integer scores take 4 * nprobe * width bytes: bound a batch
        per_query = 4 * nprobe * self.width * (GROUP + 1) // GROUP
        batch = chunk_rows(per_query, m)
        for s in range(0, m, batch):
            e = min(s + batch, m)
            sims[s:e], ids[s:e] = self._search(q[s:e], k, coarse[s:e], coarse_sims[s:e])
        return sims, ids

    def _search(self, q, k, coarse, coarse_sims):
        m, nprobe = coarse.shape
        qt = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32))
        w = qt * torch.from_numpy(self.step)
        scale = w.abs().amax(1).clamp_min(torch.finfo(torch.float32).tiny) / 127
        wi = torch.round(w / scale[:, None]).to(torch.int8)
        scores, best, where = self._scan(wi, coarse)
        # 1. each query's REFINE * k best groups, by their best approximate score
        shift = torch.from_numpy(coarse_sims if self.residual
                                 else np.zeros_like(coarse_sims))
        best = best[where].view(m, nprobe, -1)
        approx = best.to(torch.float32) * scale[:, None, None]
        approx += shift[:, :, None]
        approx[best == _INT_MIN] = -np.inf
        n_groups = approx.shape[2]
        top = approx.view(m, -1).topk(min(REFINE * k, nprobe * n_groups), dim=1)
        probe = top.indices // n_groups
        group = top.indices % n_groups
        # 2. their items' approximate scores: each query's REFINE * k best items
        pair = where[torch.arange(m)[:, None] * nprobe + probe]
        cols = (group * GROUP)[:, :, None] + torch.arange(GROUP)
        item = scores[pair[:, :, None], cols].to(torch.float32) * scale[:, None, None]
        item += torch.gather(shift, 1, probe)[:, :, None]
        rows = (torch.from_numpy(self.offsets)[torch.gather(
            torch.from_numpy(coarse), 1, probe)][:, :, None] + cols).view(m, -1)
        item = item.view(m, -1)
        rows = torch.where(torch.isfinite(top.values).repeat_interleave(GROUP, 1),
                           rows, -1)
        valid = torch.from_numpy(self.ids)[rows.clamp(min=0)] >= 0  # not padding
        item[(rows < 0) | ~valid] = -np.inf
        chosen = item.topk(min(REFINE * k, item.shape[1]), dim=1)
        rows = torch.gather(rows, 1, chosen.indices)
        rows[~torch.isfinite(chosen.values)] = -1
        which = torch.gather(probe.repeat_interleave(GROUP, 1), 1, chosen.indices)
        # 3. those items scored again in float: faiss's similarities
        exact = self._exact(qt, w, rows, torch.gather(shift, 1, which))
        found = exact.topk(min(k, rows.shape[1]), dim=1)
        rows = torch.gather(rows, 1, found.indices).numpy()
        sims = np.full((m, k), -np.inf, dtype=np.float32)
        ids = np.full((m, k), -1, dtype=np.int64)
        n = rows.shape[1]
        sims[:, :n] = found.values.numpy()
        ids[:, :n] = np.where(rows >= 0, self.ids[rows.clip(0)], -1)
        ids[~np.isfinite(sims)] = -1
        return sims, ids

    def _scan(self, wi, coarse):
        """Integer scores of each (query, probed list) pair: every item's,
        (m * nprobe, width), and each group's best, (m * nprobe, width /
        GROUP), ``_INT_MIN`` past a list's end, and where each pair's row
        is. The pairs are taken list by list, so that a list is read once
        and scored against all its queries by one product; their rows are
        in that order (contiguous writes)."""
        m, nprobe = coarse.shape
        width = self.width
        scores = self._buffer("scores", m * nprobe * width).view(m * nprobe, width)
        best = self._buffer("best", m * nprobe * (width // GROUP)).view(
            m * nprobe, width // GROUP).fill_(_INT_MIN)
        flat = coarse.reshape(-1)
        order = np.argsort(flat, kind="stable")
        sorted_lists = flat[order]
        starts = np.flatnonzero(np.r_[True, sorted_lists[1:] != sorted_lists[:-1]])
        ends = np.r_[starts[1:], len(order)]
        weights = wi[torch.from_numpy(order // nprobe)]  # each pair's query
        codes = torch.from_numpy(self.codes)
        for a, b in zip(starts.tolist(), ends.tolist()):
            lst = int(sorted_lists[a])
            lo, hi = int(self.offsets[lst]), int(self.offsets[lst + 1])
            if lo == hi:
                continue
            r = int8_matmul(weights[a:b], codes[lo:hi])
            scores[a:b, :hi - lo] = r
            best[a:b, :(hi - lo) // GROUP] = r.view(b - a, -1, GROUP).amax(2)
        where = np.empty_like(order)
        where[order] = np.arange(len(order))
        return scores, best, torch.from_numpy(where)

    def _exact(self, qt, w, rows, shift):
        """float32 similarities of each query to its candidate ``rows``
        (-1: none, -inf there), ``shift`` (its list's centroid similarity)
        included."""
        m, n_cand = rows.shape
        # q . vmin + 128.5 * sum_j w[j], row by row (not a batch-sized kernel)
        base = (qt * torch.from_numpy(self.vmin)).sum(1) + 128.5 * w.sum(1)
        x = torch.from_numpy(self.codes)[rows.clip(0)].to(torch.float32)
        # padded to whole tiles: bmm takes another kernel for a batch of one
        pad = -m % QUERY_ALIGN
        x = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, pad))
        wq = torch.nn.functional.pad(w, (0, 0, 0, pad))
        sim = torch.bmm(x, wq[:, :, None])[:m, :, 0] + base[:, None] + shift
        return torch.where(rows >= 0, sim, -np.inf)
