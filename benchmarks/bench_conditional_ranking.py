"""The conditional ranking per thread: per-class lists, faiss's scan and the
batched scan, against the exact index.

The data, model and queries of ``bench_scale.py`` (``_synthetic.py``) and a
``DistilledRetriever`` (the fitted Backward Search as its prefit teacher,
``--student-epochs``) that shares the index. Up to ``--exact-max`` items
the features are held in memory and the exact index is built and timed too;
above, they are written to a memmap under ``--workdir`` and the exact top
10 is streamed over them. For each per-class faiss index (``--per-class
FACTORY:NPROBE,...``), built once in this process:

- the conditional ranking alone, ``vector_index_.search(Z, 10, prefer=...)``,
  of the Backward Search's embeddings and of the student's, timed
  interleaved (best of ``--repeat``) with the exact index's and, with
  ``--batched``, with a copy of an SQ8 index whose lists are moved for
  ``scan="batched"``; recall@10 against the exact ranking of the same
  embeddings; with ``--tile N``, also one search of the embeddings N times
  over (a larger call, the same results);
- faiss alone on the same index (the anchor): one ``IndexIVF.search`` per
  condition class, the class's lists passed to the coarse quantizer as an ID
  selector, no Python around it;
- the whole conditional ``kneighbors`` with the student and with the
  Backward Search, for each scan;
- with ``--profile``, where the first per-class ranking spends its time;
- how flat the ranking is: the median similarity of the 1st, 10th, 100th
  and 1000th item of the condition's class to the embeddings (with the
  exact index).

``--plot`` draws recall@10 against ranking q/s. One torch and one faiss
thread. Run::

    cd benchmarks && PYTHONPATH=.. python bench_conditional_ranking.py \\
        --n 10000000 --per-class IVF2048,SQ8:16,20,24 IVF4096,SQ8:32,40 \\
        --batched --queries 4096 --tile 4 --repeat 2 \\
        --plot ../docs/_static/bench_batched_scan_10m.png
"""

import argparse
import os
import pickle

import faiss
import numpy as np

import _synthetic as synthetic
import bench_scale as bs
from _measure import recall, timed
from skbackward import DistilledRetriever
from skbackward.indexes import ExactIndex, FaissIndex


def faiss_alone(index, q, classes, k):
    """The top ``k`` per query of its class's lists, by one faiss search per
    class: the class's lists as an ID selector of the coarse quantizer."""
    ivf, table = faiss.extract_index_ivf(index.faiss_indexes_[0]), index._tables[0]
    out = np.empty((len(q), k), dtype=np.int64)
    for c in np.unique(classes):
        on = np.flatnonzero(classes == c)
        mask = np.zeros(ivf.nlist, dtype=bool)
        for cell in np.flatnonzero(table.keys[:, 0] == c):
            mask[table.list_start[cell]:table.list_start[cell + 1]] = True
        bits = np.packbits(mask, bitorder="little")
        coarse = faiss.SearchParameters()
        coarse.sel = faiss.IDSelectorBitmap(ivf.nlist, faiss.swig_ptr(bits))
        params = faiss.SearchParametersIVF()
        params.nprobe, params.quantizer_params = index.nprobe, coarse
        out[on] = table._items(ivf.search(q[on], k, params=params)[1])
    return out


def rankings(index, exact, Zc, Zs, prefer, truth, k, repeat, others=(), tile=1):
    """q/s of each ranking, interleaved, best of ``repeat``, and recall@10
    (``exact`` None: no exact ranking; ``others``: more indexes ranked in
    the same loop, keyed by name; ``tile`` > 1: also the q/s of one search
    of the searched embeddings ``tile`` times over, whose results are those
    of the embeddings searched once)."""
    n_q, unit, classes = len(Zc), bs._unit(Zc), prefer[0][:, 0]
    runs = {
        "index": lambda: index.search(Zc, k, prefer=prefer)[1],
        "index_s": lambda: index.search(Zs, k, prefer=prefer)[1],
    }
    if index.scan == "faiss":
        runs["alone"] = lambda: faiss_alone(index, unit, classes, k)
    if exact is not None:
        runs["exact"] = lambda: exact.search(Zc, k, prefer=prefer)[1]
        runs["exact_s"] = lambda: exact.search(Zs, k, prefer=prefer)[1]
    for name, other in others:
        runs[name] = lambda other=other: other.search(Zc, k, prefer=prefer)[1]
        runs[name + "_s"] = lambda other=other: other.search(Zs, k, prefer=prefer)[1]
    best, found = {}, {}
    for _ in range(repeat):
        for key, fn in runs.items():
            found[key], t = timed(fn)
            best[key] = min(best.get(key, np.inf), t)
    row = {key: n_q / t for key, t in best.items()}
    if tile > 1:  # the same queries, tile times over, in one search call
        Zt, pt = np.tile(Zc, (tile, 1)), [np.tile(prefer[0], (tile, 1))]
        for key, idx in [("index", index)] + [(name, o) for name, o in others]:
            _, t = timed(lambda idx=idx: idx.search(Zt, k, prefer=pt), repeat=repeat)
            row[f"{key}_x{tile}"] = tile * n_q / t
    for key in found:
        row["recall_" + key] = recall(found[key], truth["student" if key.endswith("_s")
                                                       else "search"])
    return row


def batched_copy(index):
    """A copy of a per-class SQ8 index that scans by batch: its lists moved
    out of faiss as ``FaissIndex(scan="batched")`` moves them at the end of a
    build, so both scans are timed on the same lists."""
    from skbackward.indexes._int8_lists import Int8Lists

    new = pickle.loads(pickle.dumps(index, protocol=5))
    new.scan = "batched"
    for table, segment in zip(new._tables, new._segments):
        table.lists = Int8Lists.take(segment)
    return new


def profile(index, Z, prefer, k):
    """The functions that take most of one conditional ranking's time."""
    import cProfile
    import pstats

    index.search(Z, k, prefer=prefer)  # warm
    prof = cProfile.Profile()
    prof.runcall(index.search, Z, k, prefer=prefer)
    pstats.Stats(prof).sort_stats("tottime").print_stats(8)


def flatness(exact, Z, prefer):
    """Median similarity of the condition's 1st, 10th, 100th, 1000th item."""
    dist, _ = exact.search(Z, 1000, prefer=prefer)
    return np.median(1 - dist[:, [0, 9, 99, 999]], axis=0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--per-class", nargs="+",
                   default=["IVF8192,Flat:16,24,32", "IVF8192,SQ8:24,32,48"])
    p.add_argument("--batched", action="store_true",
                   help="also rank each SQ8 index's lists with the batched scan "
                        "(a copy, scan='batched'), interleaved with faiss's scan")
    p.add_argument("--student-epochs", type=int, default=5)
    p.add_argument("--queries", type=int, default=4096)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--tile", type=int, default=1,
                   help="also time one search of the searched embeddings this "
                        "many times over (a larger batch, the same results)")
    p.add_argument("--exact-max", type=int, default=2_000_000,
                   help="largest size ranked by the exact index too (larger: "
                        "the data in a memmap under --workdir, the truth streamed)")
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--plot", default=None)
    p.add_argument("--profile", action="store_true",
                   help="print where the first per-class ranking spends its time "
                        "(cProfile)")
    args = p.parse_args()
    params, ret = bs.one_thread_setup(args)
    X_fit, y_fit = synthetic.rows(0, bs.N_FIT, args.dim, params, seed=0)
    dis, t = timed(lambda: DistilledRetriever(
        ret, prefit=True, epochs=args.student_epochs, random_state=0).fit(X_fit, y_fit))
    print(f"student ({args.student_epochs} epochs) fitted in {t:.0f} s", flush=True)
    path = None
    if args.n <= args.exact_max:
        X = np.concatenate([synthetic.rows(s, min(s + synthetic.CHUNK, args.n),
                                           args.dim, params, 0)[0]
                            for s in range(0, args.n, synthetic.CHUNK)])
    else:
        path = os.path.join(args.workdir, f"bench_ranking_{args.n}_{os.getpid()}.npy")
        synthetic.make_memmap(path, args.n, args.dim, params)
        X = np.load(path, mmap_mode="r")
    try:
        run(args, dis, X, params)
    finally:
        if path is not None:
            os.remove(path)


def run(args, dis, X, params):
    Xq, cond = bs._queries(args, params)
    Zc, prefer = bs.searched(dis.teacher_, Xq, cond)
    Zs = dis.transform(Xq, condition={0: cond})
    k, rep = args.k, args.repeat

    def whole():
        """q/s of the whole conditional kneighbors: student, Backward Search."""
        dis.kneighbors(Xq[:32], k, condition={0: cond[:32]})  # warm-up
        _, t_s = timed(lambda: dis.kneighbors(Xq, k, condition={0: cond}), repeat=rep)
        _, t_b = timed(lambda: dis.teacher_.kneighbors(Xq, k, condition={0: cond}),
                       repeat=rep)
        return len(Xq) / t_s, len(Xq) / t_b

    exact = exact_whole = None
    if args.n <= args.exact_max:
        dis.set_params(vector_index=ExactIndex()).index(X)
        exact = dis.vector_index_
        truth = {"search": exact.search(Zc, k, prefer=prefer)[1],
                 "student": exact.search(Zs, k, prefer=prefer)[1]}
        exact_whole = whole()
        print(f"exact index: whole conditional query {exact_whole[0]:.0f} q/s with "
              f"the student, {exact_whole[1]:.0f} q/s with the Backward Search",
              flush=True)
        for name, Z in (("search", Zc), ("student", Zs)):
            print(f"similarity of the condition's 1st/10th/100th/1000th item to the "
                  f"{name}'s embeddings (median): "
                  f"{np.round(flatness(exact, Z, prefer), 4).tolist()}", flush=True)
    else:
        (t_search, t_student), t = timed(
            lambda: bs.streamed_top(dis, X, [(Zc, prefer), (Zs, prefer)], k))
        truth = {"search": t_search, "student": t_student}
        print(f"exact top-{k} streamed over the items in {t:.0f} s", flush=True)
    rows = []
    for spec in args.per_class:
        factory, probes = spec.split(":")
        dis.set_params(vector_index=FaissIndex(factory, per_class=True))
        _, t = timed(lambda: dis.index(X))
        index = dis.vector_index_
        print(f"{factory} per class built in {t:.0f} s", flush=True)
        batched = None
        if args.batched and "SQ8" in factory:
            batched = batched_copy(index)
        for nprobe in map(int, probes.split(",")):
            index.set_params(nprobe=nprobe)
            others = ()
            if batched is not None:
                batched.set_params(nprobe=nprobe)
                others = (("batched", batched),)
            if args.profile and not rows:
                profile(batched if batched is not None else index, Zc, prefer, k)
            row = {"name": f"{factory} nprobe={nprobe}"}
            row.update(rankings(index, exact, Zc, Zs, prefer, truth, k, rep, others,
                                args.tile))
            row["whole_s"], row["whole_b"] = whole()
            if batched is not None:  # the same items, scanned by batch
                dis.vector_index_ = dis.teacher_.vector_index_ = batched
                row["batched_whole_s"], row["batched_whole_b"] = whole()
                dis.vector_index_ = dis.teacher_.vector_index_ = index
            rows.append(row)
            print(row_line(row), flush=True)
    print_table(rows, exact_whole, args)
    if args.plot:
        plot(rows, args.plot, args.n)


def row_line(row):
    """One measured row, as the run goes."""
    line = f"  {row['name']}: ranking {row['index']:.0f} q/s"
    if "exact" in row:
        line += (f", exact {row['exact']:.0f} q/s "
                 f"({row['index'] / row['exact']:.1f}x)")
    if "alone" in row:
        line += f", faiss alone {row['alone']:.0f} q/s"
    line += (f", recall {row['recall_index']:.3f}; student's: "
             f"{row['index_s']:.0f} q/s, recall {row['recall_index_s']:.3f}; whole "
             f"query {row['whole_s']:.0f} q/s (student), {row['whole_b']:.0f} q/s "
             "(Backward Search)")
    tiled = [key for key in row if "_x" in key]
    if tiled:
        line += "; in one call of more queries: " + ", ".join(
            f"{key} {row[key]:.0f} q/s" for key in tiled)
    if "batched" in row:
        line += (f"\n    batched scan: ranking {row['batched']:.0f} q/s "
                 f"({row['batched'] / row['index']:.1f}x faiss's scan), recall "
                 f"{row['recall_batched']:.3f}; student's {row['batched_s']:.0f} q/s "
                 f"({row['batched_s'] / row['index_s']:.1f}x), recall "
                 f"{row['recall_batched_s']:.3f}; whole query "
                 f"{row['batched_whole_s']:.0f} q/s (student), "
                 f"{row['batched_whole_b']:.0f} q/s (Backward Search)")
    return line


def print_table(rows, exact_whole, args):
    head = ["index", "scan", "ranking q/s", "vs exact", "vs faiss scan", "recall@10",
            "student: q/s", "recall@10", "whole q/s (student)", "whole q/s (search)"]
    if args.tile > 1:
        head.insert(3, f"q/s, {args.tile * args.queries} in a call")
    body = []
    if exact_whole is not None:
        body.append(["exact", "", "", "", "", "1.000", "", "1.000",
                     f"{exact_whole[0]:.0f}", f"{exact_whole[1]:.0f}"])
        if args.tile > 1:
            body[-1].insert(3, "")
    for r in rows:
        for scan, key in (("faiss", "index"), ("batched", "batched")):
            if key not in r:
                continue
            whole = ("whole_s", "whole_b") if key == "index" else (
                "batched_whole_s", "batched_whole_b")
            body.append([
                r["name"], scan, f"{r[key]:.0f}",
                f"{r[key] / r['exact']:.1f}x" if "exact" in r else "",
                f"{r[key] / r['index']:.1f}x", f"{r['recall_' + key]:.3f}",
                f"{r[key + '_s']:.0f}", f"{r['recall_' + key + '_s']:.3f}",
                f"{r[whole[0]]:.0f}", f"{r[whole[1]]:.0f}"])
            if args.tile > 1:
                body[-1].insert(3, f"{r[f'{key}_x{args.tile}']:.0f}")
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    rule = "  ".join("=" * w for w in widths)
    print(f"\n{args.n:,} items, {args.queries} queries, k={args.k}, one thread")
    for line in [rule, head, rule, *body, rule]:
        print(line if isinstance(line, str) else
              "  ".join(x.ljust(w) for x, w in zip(line, widths)))


def plot(rows, out, n):
    """Recall@10 against ranking q/s (one thread), per index build and scan,
    for the Backward Search's embeddings and the student's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    builds = {}
    for r in rows:
        builds.setdefault(r["name"].split(" nprobe")[0], []).append(r)
    for label, rs in builds.items():
        for key, scan, style in (("index", "faiss scan", "o-"),
                                 ("batched", "batched scan", "s--")):
            if key not in rs[0]:
                continue
            for ax, suffix in zip(axes, ("", "_s")):
                ax.plot([r[key + suffix] for r in rs],
                        [r["recall_" + key + suffix] for r in rs], style,
                        label=f"{label}, {scan}")
    axes[0].set(title=f"{n:,} items: Backward Search's embeddings",
                xlabel="conditional ranking q/s (one thread)", ylabel="recall@10")
    axes[1].set(title=f"{n:,} items: distilled student's embeddings",
                xlabel="conditional ranking q/s (one thread)")
    for ax in axes:
        ax.set_xscale("log")
        ax.axhline(0.95, color="k", lw=0.5)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"plot saved to {out}")


if __name__ == "__main__":
    main()
