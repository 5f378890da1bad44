"""A graph per predicted class (faiss HNSW) for conditional rankings, measured.

The alternative to ``FaissIndex(per_class=True)`` that was tried and not kept:
one ``IndexHNSWFlat`` per class of attribute 0 (``--per cell``: per
combination of both attributes' classes, so that the items are stored once).
The data (``_synthetic.py``), model and queries are those of
``bench_scale.py``; the items' embeddings and predicted classes are read
through the public API (``index``, ``vector_index_.embeddings``,
``vector_index_.predicted``). For each ``efSearch``, the conditional ranking
of the searched embeddings (the top 10 of the condition's class) against the
exact index's, interleaved in one process, best of ``--repeat``: q/s, the
ratio, recall@10.

    PYTHONPATH=. python benchmarks/bench_class_graphs.py --n 1000000 \\
        --ef 32 64 128 [--per cell] [--ef-construction 40]
"""

import argparse
import time

import numpy as np

import _synthetic as synthetic
import bench_scale as bs
from _measure import timed
from skbackward.indexes import ExactIndex


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--ef", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--M", type=int, default=32)
    p.add_argument("--ef-construction", type=int, default=40)
    p.add_argument("--per", choices=["class", "cell"], default="class")
    p.add_argument("--queries", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    import faiss

    params, ret = bs.one_thread_setup(args)
    Xq, cond = bs._queries(args, params)
    Zc, prefer = bs.searched(ret, Xq, cond)
    q = bs._unit(Zc)

    # the exact index of the items, built chunk by chunk (appending), and
    # their unit embeddings and predicted classes read back from it
    ret.set_params(vector_index=ExactIndex())
    for s in range(0, args.n, synthetic.CHUNK):
        X = synthetic.rows(s, min(s + synthetic.CHUNK, args.n), args.dim, params, 0)[0]
        ret.index(X, append=s > 0)
    reference = ret.vector_index_
    unit = np.concatenate([bs._unit(reference.embeddings(s, s + synthetic.CHUNK))
                           for s in range(0, args.n, synthetic.CHUNK)])
    predicted = reference.predicted()

    keys = predicted[:, 0] if args.per == "class" else predicted @ [100, 1]
    tic = time.perf_counter()
    graphs = {}
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        graph = faiss.IndexHNSWFlat(args.dim, args.M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = args.ef_construction
        graph.add(unit[rows])
        graphs[key] = (rows, graph)
    print(f"{len(graphs)} graphs (one per {args.per}) built in "
          f"{time.perf_counter() - tic:.0f} s", flush=True)
    groups = [(c, np.flatnonzero(prefer[0][:, 0] == c))
              for c in np.unique(prefer[0][:, 0])]

    def graph_search(ef):
        out = np.empty((len(q), args.k), np.int64)
        search = faiss.SearchParametersHNSW()
        search.efSearch = ef
        for c, on in groups:
            sims, ids = [], []
            for key, (rows, graph) in graphs.items():
                if (key if args.per == "class" else key // 100) == c:
                    s, i = graph.search(q[on], args.k, params=search)
                    sims.append(s)
                    ids.append(np.where(i >= 0, rows[i], -1))
            s, i = np.concatenate(sims, 1), np.concatenate(ids, 1)
            out[on] = np.take_along_axis(i, np.argsort(-s, 1)[:, :args.k], 1)
        return out

    truth = reference.search(Zc, args.k, prefer=prefer)[1]
    for ef in args.ef:
        best = {"exact": np.inf, "graph": np.inf}
        for _ in range(args.repeat):
            _, t = timed(lambda: reference.search(Zc, args.k, prefer=prefer))
            best["exact"] = min(best["exact"], t)
            found, t = timed(lambda ef=ef: graph_search(ef))
            best["graph"] = min(best["graph"], t)
        print(f"HNSW{args.M} per {args.per}, efConstruction {args.ef_construction}, "
              f"efSearch {ef}: {len(q) / best['graph']:.0f} q/s, exact "
              f"{len(q) / best['exact']:.0f} q/s: "
              f"{best['exact'] / best['graph']:.1f}x; conditional recall@10 "
              f"{bs.recall(found, truth):.3f}", flush=True)


if __name__ == "__main__":
    main()
