"""Scale: index and query a database of 100k to 10M items on one machine.

Synthetic features (a low-rank mixture with two class attributes, so the heads
have something to learn) are written in chunks to a ``np.memmap`` file under
``--workdir`` and deleted afterwards. A ``BackwardSearchRetriever`` is fitted
on the first 20,000 rows, then indexes the whole memmap with the exact index
and with faiss indexes. Per database size it prints:

- index time and peak memory growth of ``index()`` (anonymous memory, sampled
  from /proc/self/status: the memmap's file pages are the page cache's, not
  the process's), the stored vectors and the pickle size;
- the exact top-k part (1024 queries, k=10) against faiss ``IndexFlatIP`` on
  the same unit vectors and the bare matmul (no top-k), in the same run;
- plain and conditional ``kneighbors`` q/s (conditional: Backward Search plus
  the filter_predicted ranking) and recall@10 against the exact index.

At sizes where the exact index is skipped (``--exact-max``), recall is
measured against an exact top-10 streamed over the memmap chunk by chunk.

``--baseline`` measures only what the installed skbackward of before the
index layer offered (fit, index, conditional kneighbors, pickle), to compare
with (run it with that version on the path).

Run (about 25 minutes at 1 thread; check ``free -g`` first)::

    PYTHONPATH=. python benchmarks/bench_scale.py --sizes 100000 1000000 10000000
"""

import argparse
import gc
import os
import pickle
import re
import resource
import threading
import time

import numpy as np
import torch

import skbackward
from skbackward import BackwardSearchRetriever

N_CLASSES = (10, 4)  # two attributes: "class" and "domain"
N_FIT = 20_000
CHUNK = 100_000


# ---- data -----------------------------------------------------------------------


def _generator(dim, seed=0):
    """Class means of both attributes and a low-rank mixing matrix."""
    rng = np.random.RandomState(seed)
    means = [rng.randn(c, dim).astype(np.float32) * 1.5 for c in N_CLASSES]
    mixing = (rng.randn(32, dim) / np.sqrt(32)).astype(np.float32)
    return means, mixing


def _rows(start, stop, dim, params, seed):
    """Rows ``start:stop`` of the synthetic database (the same for every size)."""
    means, mixing = params
    rng = np.random.RandomState([seed, start // CHUNK])
    n = stop - start
    y = np.stack([rng.randint(c, size=n) for c in N_CLASSES], axis=1)
    X = means[0][y[:, 0]] + means[1][y[:, 1]]
    X += rng.randn(n, mixing.shape[0]).astype(np.float32) @ mixing * 2.0
    X += rng.randn(n, dim).astype(np.float32) * 0.5
    return X.astype(np.float32), y


def make_memmap(path, n, dim, params, seed=0):
    """Write ``n`` rows in chunks to a float32 memmap; returns it and the labels."""
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    y = np.empty((n, len(N_CLASSES)), dtype=np.int64)
    for s in range(0, n, CHUNK):
        e = min(s + CHUNK, n)
        X[s:e], y[s:e] = _rows(s, e, dim, params, seed)
    X.flush()
    del X
    return np.load(path, mmap_mode="r"), y


# ---- measuring ------------------------------------------------------------------


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class PeakMemory:
    """Peak growth of the process's anonymous memory (RssAnon) while inside."""

    def __enter__(self):
        gc.collect()
        self.base = self.peak = _status("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _status("RssAnon"))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status("RssAnon"))
        self.growth = self.peak - self.base


def timed(fn, repeat=1):
    """``(best seconds, result)`` over ``repeat`` runs."""
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def recall(found, truth):
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth)]))


def gb(n_bytes):
    return n_bytes / 2**30


# ---- the exact top-k part against its anchors --------------------------------------------


def topk_anchors(index, queries, k, repeat):
    """Seconds of the exact index's search, faiss IndexFlatIP and the bare
    matmul on the same unit vectors, interleaved, best of ``repeat``."""
    import faiss

    from skbackward._index import ITEM_TILE, unit_float32

    q = unit_float32(queries)[0]
    flat = faiss.IndexFlatIP(q.shape[1])
    for seg in index._segments:
        flat.add(seg)
    tq = torch.from_numpy(q)

    def bare_matmul():
        for seg in index._segments:
            db = torch.from_numpy(seg)
            for s in range(0, db.shape[0], ITEM_TILE):
                torch.mm(tq, db[s:s + ITEM_TILE].T)

    times = {"exact": np.inf, "faiss_flat": np.inf, "matmul": np.inf}
    for _ in range(repeat):
        t, (_, ind) = timed(lambda: index.search(q, k))
        times["exact"] = min(times["exact"], t)
        t, (_, ind_f) = timed(lambda: flat.search(q, k))
        times["faiss_flat"] = min(times["faiss_flat"], t)
        t, _ = timed(bare_matmul)
        times["matmul"] = min(times["matmul"], t)
    times["agree"] = float((ind == ind_f).mean())
    del flat
    return times


def streamed_truth(ret, X_map, Zq, k, conditions):
    """Exact top-k (plain and conditional) streamed over the memmap in chunks,
    without storing the database: the ground truth where the exact index is
    too large."""
    from skbackward._index import exact_topk, unit_float32

    n = X_map.shape[0]
    q = unit_float32(Zq)[0]
    Zc = ret._moved(Zq, conditions, (conditions >= 0).astype(np.float64))
    qc = unit_float32(Zc)[0]
    best = [(np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1)),
            (np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1))]
    big = np.float32(4.0)  # a match outranks any cosine (range 2)
    for s in range(0, n, CHUNK):
        e = min(s + CHUNK, n)
        chunk = [c[1:] for c in ret._index_chunks(X_map[s:e])]
        unit = np.concatenate([c[0] for c in chunk])
        pred = np.concatenate([c[2] for c in chunk])
        for j, (qq, filt) in enumerate([(q, False), (qc, True)]):
            if filt:  # conditional: matching items first, one search per class
                s_new = np.full((len(q), k), -np.inf, np.float32)
                i_new = np.full((len(q), k), -1)
                for c in np.unique(conditions[:, 0]):
                    on = conditions[:, 0] == c
                    rows = np.flatnonzero(pred[:, 0] == c)
                    sm, im = exact_topk(qq[on], [unit], k, rows=rows)
                    so, io = exact_topk(qq[on], [unit], k,
                                        rows=np.flatnonzero(pred[:, 0] != c))
                    ss = np.concatenate([sm + big, so], 1)
                    ii = np.concatenate([im, io], 1)
                    o = np.argsort(-ss, axis=1, kind="stable")[:, :k]
                    s_new[on] = np.take_along_axis(ss, o, 1)
                    i_new[on] = np.take_along_axis(ii, o, 1)
            else:
                s_new, i_new = exact_topk(qq, [unit], k)
            i_new = np.where(i_new >= 0, i_new + s, -1)
            ss = np.concatenate([best[j][0], s_new], 1)
            ii = np.concatenate([best[j][1], i_new], 1)
            o = np.argsort(-ss, axis=1, kind="stable")[:, :k]
            best[j] = (np.take_along_axis(ss, o, 1), np.take_along_axis(ii, o, 1))
    return best[0][1], best[1][1]


# ---- one database size --------------------------------------------------------------------


def measure_index(ret, X_map, k, Xq, cond, workdir, label, truth=None, repeat=1):
    """Index, pickle and query through the retriever; a dict of figures."""
    row = {"index": label}
    gc.collect()
    with PeakMemory() as mem:
        t, _ = timed(lambda: ret.index(X_map))
    index = ret.vector_index_
    row["index_s"] = t
    row["index_peak_gb"] = gb(mem.growth)
    stored = sum(getattr(s, "nbytes", 0) for s in index._segments)
    row["stored_gb"] = gb(stored) if stored else np.nan
    path = os.path.join(workdir, "retriever.pkl")
    with open(path, "wb") as f:
        pickle.dump(ret, f, protocol=5)
    row["pickle_gb"] = gb(os.path.getsize(path))
    os.remove(path)
    t, (_, ind) = timed(lambda: ret.kneighbors(Xq, k), repeat)
    row["plain_qps"] = len(Xq) / t
    t, (_, ind_c) = timed(lambda: ret.kneighbors(Xq, k, condition={0: cond}), repeat)
    row["cond_qps"] = len(Xq) / t
    # the labels of attribute 0 are 0..9: class codes equal labels
    row["cond_match"] = float((index.predicted_[ind_c, 0] == cond[:, None]).mean())
    if truth is not None:
        row["recall"] = recall(ind, truth[0])
        row["cond_recall"] = recall(ind_c, truth[1])
    return row, (ind, ind_c)


def run_size(n, args, params, fitted):
    from skbackward.indexes import FaissIndex

    path = os.path.join(args.workdir, f"bench_scale_{n}.npy")
    print(f"\n== {n:,} items x {args.dim}: writing {path}", flush=True)
    X_map, _ = make_memmap(path, n, args.dim, params)
    rng = np.random.RandomState(1)
    Xq, _ = _rows(10**9, 10**9 + args.queries, args.dim, params, seed=7)
    cond = rng.randint(N_CLASSES[0], size=args.queries)
    rows = []
    try:
        ret = fitted
        truth = None
        if n <= args.exact_max:
            row, truth = measure_index(ret, X_map, args.k, Xq, cond, args.workdir,
                                       "exact", repeat=args.repeat)
            row["recall"] = row["cond_recall"] = 1.0
            Zq = ret.transform(Xq)
            anchors = topk_anchors(ret.vector_index_, Zq, args.k, args.repeat)
            row.update({f"topk_{key}": v for key, v in anchors.items()})
            rows.append(row)
            print_row(row)
            ret.vector_index_ = None  # free the exact index before the next
            gc.collect()
        else:
            print("  exact index skipped (--exact-max); streaming the exact top-10",
                  flush=True)
            Zq = ret.transform(Xq)
            targets = ret._encode(np.stack([cond, np.zeros_like(cond)], 1))
            targets[:, 1] = -1
            t, truth = timed(lambda: streamed_truth(ret, X_map, Zq, args.k, targets))
            print(f"  streamed exact top-{args.k}: {t:.0f} s", flush=True)
        for factory, nprobe in args.faiss:
            nlist = re.match(r"(?:.*,)?IVF(\d+)", factory)
            if nlist and n < 40 * int(nlist.group(1)):
                continue  # too few items to train that many lists
            ret_f = ret.set_params(vector_index=FaissIndex(factory, nprobe=nprobe))
            row, _ = measure_index(ret_f, X_map, args.k, Xq, cond, args.workdir,
                                   f"faiss {factory} nprobe={nprobe}", truth,
                                   repeat=args.repeat)
            rows.append(row)
            print_row(row)
            ret.vector_index_ = None
            ret.set_params(vector_index=None)
            gc.collect()
    finally:
        del X_map
        os.remove(path)
    for row in rows:
        row["n"] = n
    return rows


def print_row(row):
    parts = [f"  {row['index']:<28}", f"index {row['index_s']:7.1f} s",
             f"peak +{row['index_peak_gb']:.2f} GB",
             f"stored {row['stored_gb']:.2f} GB", f"pickle {row['pickle_gb']:.2f} GB",
             f"plain {row['plain_qps']:8.1f} q/s", f"cond {row['cond_qps']:7.1f} q/s",
             f"recall {row.get('recall', np.nan):.3f}/{row.get('cond_recall', np.nan):.3f}",
             f"match {row['cond_match']:.3f}"]
    print(" | ".join(parts), flush=True)
    if "topk_exact" in row:
        print(f"    top-k part: exact {row['topk_exact']:.2f} s, faiss IndexFlatIP "
              f"{row['topk_faiss_flat']:.2f} s (ratio "
              f"{row['topk_exact'] / row['topk_faiss_flat']:.2f}), bare matmul "
              f"{row['topk_matmul']:.2f} s (ratio "
              f"{row['topk_exact'] / row['topk_matmul']:.2f}); same top-k "
              f"{row['topk_agree']:.4f}", flush=True)


def fit(args, params):
    X_fit, y_fit = _rows(0, N_FIT, args.dim, params, seed=0)
    t, ret = timed(lambda: BackwardSearchRetriever(random_state=0).fit(X_fit, y_fit))
    print(f"fit on {N_FIT:,} items: {t:.1f} s", flush=True)
    return ret


def baseline(args, params):
    """The figures of the code before the index layer (run with it on the path)."""
    for n in args.sizes:
        path = os.path.join(args.workdir, f"bench_scale_{n}.npy")
        X_map, _ = make_memmap(path, n, args.dim, params)
        try:
            ret = fit(args, params)
            Xq, _ = _rows(10**9, 10**9 + args.queries, args.dim, params, seed=7)
            cond = np.random.RandomState(1).randint(N_CLASSES[0], size=args.queries)
            with PeakMemory() as mem:
                t_index, _ = timed(lambda: ret.index(X_map))
            pkl = os.path.join(args.workdir, "retriever.pkl")
            with open(pkl, "wb") as f:
                pickle.dump(ret, f, protocol=5)
            size = os.path.getsize(pkl)
            os.remove(pkl)
            t, _ = timed(lambda: ret.kneighbors(Xq, args.k, condition={0: cond}))
            print(f"baseline {n:,}: index {t_index:.1f} s, peak +{gb(mem.growth):.2f} GB, "
                  f"pickle {gb(size):.2f} GB, conditional {len(Xq) / t:.1f} q/s "
                  f"({t:.1f} s)", flush=True)
        finally:
            del X_map
            os.remove(path)


def plot(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label in dict.fromkeys(r["index"] for r in rows):
        rs = [r for r in rows if r["index"] == label]
        n = [r["n"] for r in rs]
        axes[0].plot(n, [r["plain_qps"] for r in rs], "o-", label=f"{label}, plain")
        axes[0].plot(n, [r["cond_qps"] for r in rs], "s--", label=f"{label}, conditional")
        axes[1].plot(n, [r["index_peak_gb"] for r in rs], "o-", label=f"{label}, index peak")
        axes[1].plot(n, [r["pickle_gb"] for r in rs], "s--", label=f"{label}, pickle")
    axes[0].set(xscale="log", yscale="log", xlabel="items", ylabel="queries / s",
                title="kneighbors, 1024 queries, k=10")
    axes[1].set(xscale="log", yscale="log", xlabel="items", ylabel="GB",
                title="index() peak memory growth, pickle size")
    for ax in axes:
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"plot saved to {out}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--queries", type=int, default=1024)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=1,
                   help="torch and faiss threads (default 1)")
    p.add_argument("--repeat", type=int, default=2,
                   help="timings are the best of this many runs")
    p.add_argument("--exact-max", type=int, default=2_000_000,
                   help="largest size indexed exactly (larger: faiss only)")
    p.add_argument("--faiss", nargs="+", default=["IVF1024,Flat:32", "IVF1024,PQ64:32"],
                   help="faiss factory:nprobe pairs")
    p.add_argument("--faiss-max-flat", type=int, default=2_000_000,
                   help="largest size for uncompressed (Flat) faiss indexes")
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--plot", default=None, help="save the plot here")
    p.add_argument("--baseline", action="store_true")
    args = p.parse_args()
    args.faiss = [(f.rsplit(":", 1)[0], int(f.rsplit(":", 1)[1])) for f in args.faiss]
    torch.set_num_threads(args.threads)
    params = _generator(args.dim)
    print(f"skbackward {skbackward.__file__}; torch threads {torch.get_num_threads()}",
          flush=True)
    if args.baseline:
        baseline(args, params)
        return
    import faiss

    faiss.omp_set_num_threads(args.threads)
    print(f"faiss {faiss.__version__} threads {args.threads}", flush=True)
    ret = fit(args, params)
    rows = []
    all_faiss = args.faiss
    for n in args.sizes:
        args.faiss = [(f, p_) for f, p_ in all_faiss
                      if n <= args.faiss_max_flat or "Flat" not in f]
        rows += run_size(n, args, params, ret)
    print(f"\npeak RSS of the run: {gb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024):.1f} GB")
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
