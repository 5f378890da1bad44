"""Scale: index and query a database of 100k to 10M items on one machine.

Synthetic features (a low-rank mixture with two class attributes, so the heads
have something to learn) are written in chunks to a ``np.memmap`` file under
``--workdir`` and deleted afterwards. A ``BackwardSearchRetriever`` is fitted
on the first 20,000 rows, then indexes the whole memmap with the exact index,
with faiss indexes and with faiss's per-class lists (``per_class=True``). Per
database size it prints:

- index time and peak memory growth of ``index()`` (anonymous memory, sampled
  from /proc/self/status: the memmap's file pages are the page cache's, not
  the process's), the stored vectors and the pickle size;
- the exact top-k part (1024 queries, k=10) against faiss ``IndexFlatIP`` on
  the same unit vectors and the bare matmul (no top-k), in the same run;
- plain and conditional ``kneighbors`` q/s (conditional: Backward Search plus
  the predicted_first ranking) and recall@10 against the exact index;
- the conditional ranking alone ("cond. index q/s": ``vector_index_.search``
  of the searched embeddings with the condition as preference, what
  ``kneighbors`` does after the Backward Search) and its recall@10; for the
  per-class indexes also the exact index's, measured in the same process,
  interleaved, and the ratio.

At sizes where the exact index is skipped (``--exact-max``), recall is
measured against an exact top-10 streamed over the memmap chunk by chunk.
Everything goes through the public API (``transform``, ``index``,
``vector_index_.search`` / ``embeddings`` / ``predicted``).

``--baseline`` measures only what the installed skbackward of before the
index layer offered (fit, index, conditional kneighbors, pickle), to compare
with (run it with that version on the path).

Run (about 25 minutes at 1 thread; check ``free -g`` first)::

    PYTHONPATH=. python benchmarks/bench_scale.py --sizes 100000 1000000 10000000
"""

import argparse
import gc
import mmap
import multiprocessing
import os
import pickle
import re
import resource
from functools import partial

import numpy as np
import torch

import _synthetic as synthetic
import skbackward
from _measure import PeakMemory, WhileInside, gb, recall, timed
from skbackward import BackwardSearchRetriever
from skbackward.indexes import ExactIndex

N_FIT = 20_000


# ---- measuring ------------------------------------------------------------------


# ---- the exact top-k part against its anchors ----------------------------------


def _unit(Z):
    return (Z / np.linalg.norm(Z, axis=1, keepdims=True)).astype(np.float32)


def topk_anchors(index, queries, k, repeat):
    """Seconds of the exact index's search, faiss IndexFlatIP and the bare
    matmul on the same unit vectors, interleaved, best of ``repeat``."""
    import faiss

    q = _unit(queries)
    flat = faiss.IndexFlatIP(q.shape[1])
    for s in range(0, index.n_items_, synthetic.CHUNK):  # the index's own vectors
        flat.add(_unit(index.embeddings(s, s + synthetic.CHUNK)))
    # faiss's copy, viewed: the matmul reads the same memory
    items = torch.from_numpy(faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d)
                             .reshape(flat.ntotal, flat.d))
    tq = torch.from_numpy(q)

    def bare_matmul():
        for s in range(0, items.shape[0], 4096):
            torch.mm(tq, items[s:s + 4096].T)

    times = {"exact": np.inf, "faiss_flat": np.inf, "matmul": np.inf}
    for _ in range(repeat):
        (_, ind), t = timed(lambda: index.search(q, k))
        times["exact"] = min(times["exact"], t)
        (_, ind_f), t = timed(lambda: flat.search(q, k))
        times["faiss_flat"] = min(times["faiss_flat"], t)
        _, t = timed(bare_matmul)
        times["matmul"] = min(times["matmul"], t)
    times["agree"] = float((ind == ind_f).mean())
    flat.reset()  # its copy of the vectors goes now (items is not read again)
    return times


def merge_top(best, sims, ids, k):
    """The ``k`` best of two (similarities, ids) results, row by row."""
    ss = np.concatenate([best[0], sims], 1)
    ii = np.concatenate([best[1], ids], 1)
    o = np.argsort(-ss, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ss, o, 1), np.take_along_axis(ii, o, 1)


def streamed_top(ret, X, sets, k):
    """Exact top-k of each ``(Z, prefer)`` of ``sets`` (``prefer`` None: plain)
    streamed over ``X`` in chunks, each chunk indexed exactly on its own
    (``ret`` is re-indexed: a throwaway copy, or one indexed again after):
    the ground truth where the exact index of everything is too large.
    Every class holds far more than k items per chunk, so a conditional
    top-k lies in the first level."""
    ret.set_params(vector_index=ExactIndex())
    n_q = len(sets[0][0])
    best = [(np.full((n_q, k), -np.inf, np.float32), np.full((n_q, k), -1))
            for _ in sets]
    for s in range(0, len(X), synthetic.CHUNK):
        index = ret.index(X[s:s + synthetic.CHUNK]).vector_index_
        for j, (Z, pref) in enumerate(sets):
            dist, ids = index.search(Z, k, prefer=pref)
            if pref is not None:
                wanted = pref[0][:, 0]
                assert (index.predicted()[ids, 0] == wanted[:, None]).all()
            best[j] = merge_top(best[j], 1 - dist, ids + s, k)
    return [b[1] for b in best]


class DropPages(WhileInside):
    """Unmap the memmap's pages from this process every second while inside.

    The file's pages stay in the page cache (re-reading them costs a minor
    fault); the process's RSS then holds at most about a second's worth of
    them instead of the whole file."""

    interval = 1.0

    def __init__(self, X_map):
        self._mmap = getattr(X_map, "_mmap", None)

    def _tick(self):
        if self._mmap is not None:
            self._mmap.madvise(mmap.MADV_DONTNEED)


# ---- one database size, each index in a fresh process --------------------------
#
# Each measurement runs in its own process (spawned): the peak memory growth
# of index() is then not hidden by memory an earlier index left to the
# allocator, and a finished index gives all its memory back.


def _worker_init(threads):
    torch.set_num_threads(threads)
    import faiss

    faiss.omp_set_num_threads(threads)


def _load(model_path):
    with open(model_path, "rb") as f:
        return pickle.load(f)


def _queries(args, params):
    return synthetic.queries(args.queries, args.dim, params)


def searched(ret, Xq, cond):
    """What ``kneighbors(Xq, condition={0: cond})`` hands to the index: the
    searched embeddings and the preference (the condition's class codes on
    attribute 0, no wish on attribute 1)."""
    Zc = ret.transform(Xq, condition={0: cond})
    codes = ret.encode_labels(np.stack([cond, np.zeros_like(cond)], 1))[:, 0]
    return Zc, [np.stack([codes, np.full_like(codes, -1)], 1)]


def exact_task(model_path, data_path, args, params):
    """Index exactly; figures, the top-k anchors, and the ground truth."""
    ret = _load(model_path)
    X_map = np.load(data_path, mmap_mode="r")
    Xq, cond = _queries(args, params)
    with DropPages(X_map):
        row, truth = measure_index(ret, X_map, args, Xq, cond, "exact")
    row["recall"] = row["cond_recall"] = row["cond_index_recall"] = 1.0
    anchors = topk_anchors(ret.vector_index_, ret.transform(Xq), args.k, args.repeat)
    row.update({f"topk_{key}": v for key, v in anchors.items()})
    return [row], truth


def truth_task(model_path, data_path, args, params):
    """The exact top-k streamed over the memmap (no index of everything)."""
    ret = _load(model_path)
    X_map = np.load(data_path, mmap_mode="r")
    Xq, cond = _queries(args, params)
    Zc, prefer = searched(ret, Xq, cond)
    with DropPages(X_map):
        truth, t = timed(partial(streamed_top, ret, X_map,
                                 [(ret.transform(Xq), None), (Zc, prefer)], args.k))
    print(f"  streamed exact top-{args.k}: {t:.0f} s", flush=True)
    return truth


def faiss_task(model_path, data_path, args, params, factory, per_class, truth):
    """Index with faiss once, then query at each nprobe (no rebuild); for
    per-class lists, also the exact index's conditional ranking in the same
    process, interleaved (up to ``--same-process-max`` items)."""
    from skbackward.indexes import FaissIndex

    factory, _, scan = factory.partition("@")  # "IVF16384,SQ8@batched"
    ret = _load(model_path).set_params(vector_index=FaissIndex(
        factory, per_class=per_class, scan=scan or "faiss"))
    X_map = np.load(data_path, mmap_mode="r")
    Xq, cond = _queries(args, params)
    name = (f"faiss {factory}" + (" per class" if per_class else "")
            + (f", {scan} scan" if scan else ""))
    rows = []
    build = None
    for nprobe in (args.nprobe_per_class if per_class else args.nprobe):
        label = f"{name} nprobe={nprobe}"
        if build is None:
            ret.vector_index.set_params(nprobe=nprobe)
            with DropPages(X_map):
                row, _ = measure_index(ret, X_map, args, Xq, cond, label, truth)
            build = {key: row[key] for key in ("index_s", "index_peak_gb",
                                                "stored_gb", "pickle_gb")}
        else:
            ret.vector_index_.set_params(nprobe=nprobe)
            row = measure_queries(ret, args, Xq, cond, label, truth)[0]
            row.update(build)
        rows.append(row)
    if per_class and X_map.shape[0] <= args.same_process_max:
        same_process(ret, X_map, Xq, cond, rows, args, model_path)
    return rows


def same_process(ret, X_map, Xq, cond, rows, args, model_path):
    """The exact index's conditional ranking beside the per-class index's,
    in this process, interleaved, best of ``repeat``: a ratio that the load
    of a shared machine does not skew."""
    exact = _load(model_path)
    with DropPages(X_map):
        exact.index(X_map)
    Zc, prefer = searched(ret, Xq, cond)
    index, reference = ret.vector_index_, exact.vector_index_
    for row in rows:
        index.set_params(nprobe=int(row["index"].rsplit("=", 1)[1]))
        best = {"exact": np.inf, "approx": np.inf}
        for _ in range(args.repeat + 1):
            for key, idx in (("exact", reference), ("approx", index)):
                _, t = timed(lambda idx=idx: idx.search(Zc, args.k, prefer=prefer))
                best[key] = min(best[key], t)
        row["same_exact_qps"] = len(Xq) / best["exact"]
        row["same_index_qps"] = len(Xq) / best["approx"]
        print(f"    same process, interleaved: {row['index']}: "
              f"{row['same_index_qps']:.0f} q/s, exact {row['same_exact_qps']:.0f} "
              f"q/s: {best['exact'] / best['approx']:.1f}x", flush=True)


def measure_index(ret, X_map, args, Xq, cond, label, truth=None):
    """Index (time, peak memory), pickle size, then the queries' figures."""
    gc.collect()
    with PeakMemory() as mem:
        _, t = timed(lambda: ret.index(X_map))
    index = ret.vector_index_
    # the float32 unit vectors of the exact index (the others: see the pickle)
    stored = (index.n_items_ * index.dim_ * 4 if type(index) is ExactIndex
              else np.nan)
    path = os.path.join(args.workdir, f"retriever_{os.getpid()}.pkl")
    with open(path, "wb") as f:
        pickle.dump(ret, f, protocol=5)
    pickle_bytes = os.path.getsize(path)
    os.remove(path)
    row, found = measure_queries(ret, args, Xq, cond, label, truth)
    row.update(index_s=t, index_peak_gb=gb(mem.growth), stored_gb=gb(stored),
               pickle_gb=gb(pickle_bytes))
    return row, found


def measure_queries(ret, args, Xq, cond, label, truth=None):
    row = {"index": label}
    k, repeat = args.k, args.repeat
    # warm-up: the first conditional call of a process pays torch's start-up
    ret.kneighbors(Xq[:32], k, condition={0: cond[:32]})
    (_, ind), t = timed(lambda: ret.kneighbors(Xq, k), repeat=repeat)
    row["plain_qps"] = len(Xq) / t
    (_, ind_c), t = timed(lambda: ret.kneighbors(Xq, k, condition={0: cond}),
                          repeat=repeat)
    row["cond_qps"] = len(Xq) / t
    # the conditional ranking alone: what kneighbors does after the search
    index = ret.vector_index_
    (Zc, prefer), t_search = timed(lambda: searched(ret, Xq, cond))
    row["search_qps"] = len(Xq) / t_search
    (_, ind_i), t = timed(lambda: index.search(Zc, k, prefer=prefer), repeat=repeat)
    row["cond_index_qps"] = len(Xq) / t
    assert (ind_i == ind_c).all()  # the same ranking kneighbors made
    row["cond_match"] = float((index.predicted()[ind_c, 0] == prefer[0][:, :1]).mean())
    if truth is not None:
        row["recall"] = recall(ind, truth[0])
        row["cond_recall"] = row["cond_index_recall"] = recall(ind_c, truth[1])
    return row, (ind, ind_c)


def run_size(n, args, params, model_path, pool):
    path = os.path.join(args.workdir, f"bench_scale_{n}_{os.getpid()}.npy")
    print(f"\n== {n:,} items x {args.dim}: writing {path}", flush=True)
    synthetic.make_memmap(path, n, args.dim, params)
    rows = []
    try:
        if n <= args.exact_max:
            new, truth = pool.apply(exact_task, (model_path, path, args, params))
        else:
            print("  exact index skipped (--exact-max)", flush=True)
            new, truth = [], pool.apply(truth_task, (model_path, path, args, params))
        for row in new:
            print_row(row)
        rows += new
        small = n <= args.faiss_max_flat
        factories = [(f, False) for f in (args.faiss if small else args.faiss_large)]
        factories += [(f, True) for f in (args.per_class if small
                                          else args.per_class_large)]
        for factory, per_class in factories:
            nlist = re.match(r"(?:.*,)?IVF(\d+)", factory)
            if nlist and n < 40 * int(nlist.group(1)):
                continue  # too few items to train that many lists
            new = pool.apply(faiss_task, (model_path, path, args, params, factory,
                                          per_class, truth))
            for row in new:
                print_row(row)
            rows += new
    finally:
        os.remove(path)
    for row in rows:
        row["n"] = n
    return rows


def print_row(row):
    parts = [f"  {row['index']:<38}", f"index {row['index_s']:7.1f} s",
             f"peak +{row['index_peak_gb']:.2f} GB",
             f"stored {row['stored_gb']:.2f} GB", f"pickle {row['pickle_gb']:.2f} GB",
             f"plain {row['plain_qps']:8.1f} q/s", f"cond {row['cond_qps']:7.1f} q/s",
             f"cond. index {row['cond_index_qps']:7.1f} q/s",
             f"recall {row.get('recall', np.nan):.3f}/"
             f"{row.get('cond_recall', np.nan):.3f}",
             f"match {row['cond_match']:.3f}"]
    print(" | ".join(parts), flush=True)
    if "topk_exact" in row:
        print(f"    top-k part: exact {row['topk_exact']:.2f} s, faiss IndexFlatIP "
              f"{row['topk_faiss_flat']:.2f} s (ratio "
              f"{row['topk_exact'] / row['topk_faiss_flat']:.2f}), bare matmul "
              f"{row['topk_matmul']:.2f} s (ratio "
              f"{row['topk_exact'] / row['topk_matmul']:.2f}); same top-k "
              f"{row['topk_agree']:.4f}", flush=True)


def print_table(rows, args):
    """The summary as a reStructuredText table, and the plot."""
    head = ["items", "index", "index (s)", "peak (GB)", "stored (GB)", "pickle (GB)",
            "plain q/s", "cond. q/s", "cond. index q/s", "recall@10",
            "cond. recall@10"]
    body = []
    for r in rows:
        body.append([f"{r['n']:,}", r["index"], f"{r['index_s']:.1f}",
                     f"{r['index_peak_gb']:.2f}",
                     "" if np.isnan(r["stored_gb"]) else f"{r['stored_gb']:.2f}",
                     f"{r['pickle_gb']:.2f}", f"{r['plain_qps']:.0f}",
                     f"{r['cond_qps']:.0f}", f"{r['cond_index_qps']:.0f}",
                     f"{r['recall']:.3f}", f"{r['cond_recall']:.3f}"])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    rule = "  ".join("=" * w for w in widths)
    print(f"\nthreads: torch {args.threads}, faiss {args.threads}; "
          f"{args.queries} queries, k={args.k}, dimension {args.dim}")
    print(rule)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print(rule)
    for b in body:
        print("  ".join(x.ljust(w) for x, w in zip(b, widths)))
    print(rule)
    print("\nexact top-k part (same unit vectors, same run):")
    for r in rows:
        if "topk_exact" in r:
            print(f"  {r['n']:,}: exact {r['topk_exact']:.2f} s, faiss IndexFlatIP "
                  f"{r['topk_faiss_flat']:.2f} s, bare matmul "
                  f"{r['topk_matmul']:.2f} s: "
                  f"{r['topk_exact'] / r['topk_faiss_flat']:.2f}x IndexFlatIP, "
                  f"{r['topk_exact'] / r['topk_matmul']:.2f}x matmul")
    same = [r for r in rows if "same_exact_qps" in r]
    if same:
        print("\nconditional ranking alone, per-class lists against the exact "
              "index, same process, interleaved:")
        for r in same:
            print(f"  {r['n']:,}: {r['index']}: {r['same_index_qps']:.0f} q/s, "
                  f"exact {r['same_exact_qps']:.0f} q/s: "
                  f"{r['same_index_qps'] / r['same_exact_qps']:.1f}x; cond. recall@10 "
                  f"{r['cond_recall']:.3f}")
    searches = [r["search_qps"] for r in rows]
    print(f"Backward Search alone (transform with the condition): "
          f"{np.median(searches):.0f} q/s (median over the rows)")
    peak = gb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
    print("largest peak RSS of a measuring process (memmap pages included): "
          f"{peak:.1f} GB")
    if args.plot:
        plot(rows, args.plot)


def one_thread_setup(args):
    """What the per-class benchmarks share: one torch and one faiss thread,
    256-d synthetic data (``args.dim``, ``args.k`` set), and the retriever
    fitted on its first rows. Returns the generator's parameters and it."""
    import faiss

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    args.dim, args.k = 256, 10
    params = synthetic.generator(args.dim)
    return params, fit(args, params)


def fit(args, params):
    X_fit, y_fit = synthetic.rows(0, N_FIT, args.dim, params, seed=0)
    # feature_weight=0: the ranking the documented figures measured (the exact
    # and faiss rankings by z*, without the input features beside them)
    ret, t = timed(lambda: BackwardSearchRetriever(random_state=0, feature_weight=0)
                   .fit(X_fit, y_fit))
    print(f"fit on {N_FIT:,} items: {t:.1f} s", flush=True)
    return ret


def baseline(args, params):
    """The figures of the code before the index layer (run with it on the path)."""
    ret = fit(args, params)
    Xq, cond = _queries(args, params)
    for n in args.sizes:
        path = os.path.join(args.workdir, f"bench_scale_{n}_{os.getpid()}.npy")
        synthetic.make_memmap(path, n, args.dim, params)
        X_map = np.load(path, mmap_mode="r")
        try:
            with PeakMemory() as mem:
                _, t_index = timed(partial(ret.index, X_map))
            pkl = os.path.join(args.workdir, "retriever.pkl")
            with open(pkl, "wb") as f:
                pickle.dump(ret, f, protocol=5)
            size = os.path.getsize(pkl)
            os.remove(pkl)
            _, t = timed(partial(ret.kneighbors, Xq, args.k, condition={0: cond}))
            print(f"baseline {n:,}: index {t_index:.1f} s, peak "
                  f"+{gb(mem.growth):.2f} GB, pickle {gb(size):.2f} GB, "
                  f"conditional {len(Xq) / t:.1f} q/s ({t:.1f} s)", flush=True)
        finally:
            X_map = None  # unmapped before the file goes
            os.remove(path)


def plot(rows, out):
    """Per database size, the conditional ranking's recall@10 against its
    q/s (one line per index build, over its ``nprobe`` values), the same for
    plain queries, and the memory of each build against the size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["n"] for r in rows})
    # two rows: the recall panels above, memory and one shared legend below
    # (readable at page width)
    fig, grid = plt.subplots(2, 2, figsize=(12, 9))
    axes = [grid[0, 0], grid[0, 1], grid[1, 0]]
    builds = {}
    for r in rows:  # one build per index, whatever nprobe it was queried with
        builds.setdefault(r["index"].split(" nprobe")[0], []).append(r)
    colours = dict(zip(builds, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    styles = dict(zip(sizes[::-1], ["o-", "s--", "^:"]))
    for label, rs in builds.items():
        for n in sizes:
            at = [r for r in rs if r["n"] == n]
            if not at:
                continue
            kw = dict(color=colours[label], label=f"{label}, {n:,}")
            # in q/s order: rows of several runs of one build interleave
            by_cond = sorted(at, key=lambda r: r["cond_index_qps"])
            axes[0].plot([r["cond_index_qps"] for r in by_cond],
                         [r["cond_recall"] for r in by_cond], styles[n], **kw)
            by_plain = sorted(at, key=lambda r: r["plain_qps"])
            axes[1].plot([r["plain_qps"] for r in by_plain],
                         [r["recall"] for r in by_plain], styles[n], **kw)
        by_n = {r["n"]: r for r in rs}
        n = sorted(by_n)
        axes[2].plot(n, [by_n[x]["index_peak_gb"] for x in n], "o-",
                     color=colours[label], label=label)
        axes[2].plot(n, [by_n[x]["pickle_gb"] for x in n], "s--", color=colours[label])
    axes[0].set(xscale="log", xlabel="queries / s", ylabel="recall@10",
                title="conditional ranking (after the search)")
    axes[1].set(xscale="log", xlabel="queries / s", ylabel="recall@10",
                title="plain kneighbors")
    axes[2].set(xscale="log", yscale="log", xlabel="indexed items", ylabel="GB",
                title="index() peak growth (solid), pickle (dashed)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=8)
    grid[1, 1].axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    grid[1, 1].legend(handles, labels, loc="center", fontsize=8,
                      title="index, items (both recall panels)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"plot saved to {out}")


def rows_from_logs(paths):
    """The rows of the summary tables printed by earlier runs (``--replot``)."""
    keys = ["n", "index", "index_s", "index_peak_gb", "stored_gb", "pickle_gb",
            "plain_qps", "cond_qps", "cond_index_qps", "recall", "cond_recall"]
    rows = []
    for path in paths:
        with open(path) as f:
            lines = f.read().splitlines()
        rules = [i for i, line in enumerate(lines) if line.startswith("=========")]
        head = lines[rules[0] + 1]
        starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", head)]
        for line in lines[rules[1] + 1:rules[2]]:
            cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
            row = dict(zip(keys, cells))
            row["n"] = int(row["n"].replace(",", ""))
            for key in keys[2:]:
                row[key] = float(row[key]) if row[key] else np.nan
            rows.append(row)
    return rows


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
    p.add_argument("--same-process-max", type=int, default=None,
                   help="largest size at which the exact index also ranks beside "
                        "each per-class index, in the same process (default: "
                        "--exact-max; it holds the float32 vectors in memory)")
    p.add_argument("--faiss", nargs="*", default=["IVF1024,Flat", "IVF1024,SQ8"],
                   help="faiss factory strings (up to --faiss-max-flat items)")
    p.add_argument("--faiss-large", nargs="*", default=["IVF4096,SQ8"],
                   help="faiss factory strings for larger sizes (compressed)")
    p.add_argument("--per-class", nargs="*", default=["IVF8192,Flat"],
                   help="faiss factories with per_class=True (up to "
                        "--faiss-max-flat items); none: --per-class with no value")
    p.add_argument("--per-class-large", nargs="*", default=["IVF16384,SQ8"],
                   help="per-class factories for larger sizes; FACTORY@batched "
                        "for FaissIndex(scan='batched')")
    p.add_argument("--nprobe-per-class", type=int, nargs="+", default=[16, 24, 32, 48],
                   help="nprobe values queried on each per-class index")
    p.add_argument("--faiss-max-flat", type=int, default=2_000_000)
    p.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32],
                   help="nprobe values queried on each IVF index")
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--plot", default=None, help="save the plot here")
    p.add_argument("--baseline", action="store_true")
    p.add_argument("--replot", nargs="+", default=None, metavar="LOG",
                   help="only draw --plot from the tables these runs printed")
    args = p.parse_args()
    if args.same_process_max is None:
        args.same_process_max = args.exact_max
    torch.set_num_threads(args.threads)
    params = synthetic.generator(args.dim)
    print(f"skbackward {skbackward.__file__}; torch threads {torch.get_num_threads()}",
          flush=True)
    if args.replot:
        plot(rows_from_logs(args.replot), args.plot)
        return
    if args.baseline:
        baseline(args, params)
        return
    import faiss

    print(f"faiss {faiss.__version__} threads {args.threads}", flush=True)
    ret = fit(args, params)
    # named by this process: another run sharing --workdir keeps its own files
    model_path = os.path.join(args.workdir, f"bench_scale_model_{os.getpid()}.pkl")
    with open(model_path, "wb") as f:
        pickle.dump(ret, f)
    rows = []
    ctx = multiprocessing.get_context("spawn")
    try:
        for n in args.sizes:
            # a fresh process per size and index (maxtasksperchild=1)
            with ctx.Pool(1, _worker_init, (args.threads,), maxtasksperchild=1) as pool:
                rows += run_size(n, args, params, model_path, pool)
    finally:
        os.remove(model_path)
    print_table(rows, args)


if __name__ == "__main__":
    main()
