"""One condition class's items alone: compressed codes and graphs, measured.

The data, model and queries of ``bench_scale.py``; the items predicted in
class ``--cls`` of attribute 0 (about a tenth of ``--n``) and the queries
whose condition is that class, searched from their Backward Search
embeddings. On those items alone, with faiss and one thread (best of
``--repeat``, recall@10 against the exact top 10):

- faiss ``IVF{nlist},SQ8`` (the per-class lists of one class) at several
  ``nprobe``;
- faiss 4-bit fast-scan codes ``IVF{nlist},PQ{m}x4fs``: how many of the
  true top 10 their top 100 holds (what a re-rank of 100 candidates could
  recover at best), and q/s of that top 100;
- usearch's HNSW (when ``usearch`` is installed) at several
  ``expansion_search``.

    cd benchmarks && PYTHONPATH=.. python bench_one_class.py --n 1000000
"""

import argparse
import time
from functools import partial

import faiss
import numpy as np

import _synthetic as synthetic
import bench_scale as bs
from _measure import recall, timed
from skbackward.indexes import ExactIndex


def qps(fn, n_q, repeat):
    out, t = timed(fn, repeat=repeat)
    return n_q / t, out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--cls", type=int, default=0)
    p.add_argument("--nprobe", type=int, nargs="+", default=[24, 32, 48])
    p.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--connectivity", type=int, default=16)
    p.add_argument("--queries", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    params, ret = bs.one_thread_setup(args)
    ret.set_params(vector_index=ExactIndex())
    for s in range(0, args.n, synthetic.CHUNK):
        X = synthetic.rows(s, min(s + synthetic.CHUNK, args.n), args.dim, params, 0)[0]
        ret.index(X, append=s > 0)
    index = ret.vector_index_
    rows = np.flatnonzero(index.predicted()[:, 0] == args.cls)
    unit = bs._unit(np.concatenate([index.embeddings(s, s + synthetic.CHUNK)
                                    for s in range(0, args.n, synthetic.CHUNK)])[rows])
    Xq, cond = bs._queries(args, params)
    q = np.ascontiguousarray(bs._unit(bs.searched(ret, Xq, cond)[0])[cond == args.cls])
    n_q, rep = len(q), args.repeat
    truth = np.argsort(-(q @ unit.T), axis=1)[:, :args.k]
    nlist = max(1, round(len(unit) / 122))  # lists as long as IVF8192's per class at 1M
    print(f"{len(unit):,} items of class {args.cls}, {n_q} queries, IVF{nlist}",
          flush=True)
    rate, _ = qps(lambda: np.argpartition(-(q @ unit.T), args.k, axis=1), n_q, rep)
    print(f"exact (one matmul, argpartition): {rate:.0f} q/s", flush=True)
    params_ivf = faiss.SearchParametersIVF()
    for factory in (f"IVF{nlist},SQ8", f"IVF{nlist},PQ32x4fs", f"IVF{nlist},PQ64x4fs"):
        ivf = faiss.index_factory(args.dim, factory, faiss.METRIC_INNER_PRODUCT)
        ivf.train(unit)
        ivf.add(unit)
        fast = "fs" in factory
        for nprobe in args.nprobe:
            params_ivf.nprobe = nprobe
            kk = 100 if fast else args.k
            rate, (_, found) = qps(partial(ivf.search, q, kk, params=params_ivf),
                                   n_q, rep)
            held = np.mean([len(set(a) & set(b)) / args.k
                            for a, b in zip(found, truth)])
            what = (f"true top 10 in its top 100 {held:.3f}" if fast
                    else f"recall@10 {recall(found, truth):.3f}")
            print(f"faiss {factory} nprobe={nprobe}: {rate:.0f} q/s, {what}",
                  flush=True)
    try:
        from usearch.index import Index
    except ImportError:
        print("usearch not installed: skipped")
        return
    graph = Index(ndim=args.dim, metric="ip", dtype="f32",
                  connectivity=args.connectivity, expansion_add=128)
    tic = time.perf_counter()
    graph.add(np.arange(len(unit)), unit, threads=1)
    print(f"usearch HNSW (connectivity {args.connectivity}) built in "
          f"{time.perf_counter() - tic:.0f} s", flush=True)
    for ef in args.ef:
        graph.expansion_search = ef
        rate, found = qps(lambda: graph.search(q, args.k, threads=1), n_q, rep)
        print(f"usearch expansion_search={ef}: {rate:.0f} q/s, recall@10 "
              f"{recall(found.keys, truth):.3f}", flush=True)


if __name__ == "__main__":
    main()
