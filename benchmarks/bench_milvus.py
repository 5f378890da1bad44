"""Milvus (Lite, or a server) next to the exact and faiss indexes: insert rate
and queries/s.

For each database size, one retriever (``LabelFilterRetriever``: a
conditional query is a pure index query, no search) indexes the same
synthetic items with each index, and answers the same queries with and
without a condition (one attribute of 10 classes, so a condition selects
about a tenth of the items). Printed per index: items indexed per second
(``index()``, the embedding network included; the embedding alone is the
anchor row), conditional and plain queries per second at k=10, recall@10 of
the conditional results against the exact index, and the process's resident
memory after building (the index in memory, or Milvus Lite running in this
process). Everything runs on one thread (torch, faiss, BLAS), all figures in
one run.

    python benchmarks/bench_milvus.py [--sizes 100000 1000000] [--queries 1000]
        [--milvus-index FLAT HNSW] [--partition-key] [--per-class IVF4096,Flat]
        [--uri http://127.0.0.1:19530] [--no-faiss]

``--partition-key`` measures each Milvus index type also with
``partition_key=True`` (the items' cell as the collection's partition key;
the table then says how many cells the items fall in and how many of the
collection's partitions hold them: the key is hashed, so several cells can
share a partition); ``--per-class`` adds a faiss index with per-class lists.
``--uri`` measures a Milvus server instead of Milvus Lite (collections
``bench_<type>[_key]``, dropped after each is measured; the Milvus index
runs in the server's process, so the RSS column is this process's only).

Synthetic data: class-structured features generated chunk by chunk into a
memory-mapped file in a temporary directory (deleted at the end, with the
Milvus Lite database).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one thread everywhere, before numpy/faiss load

import argparse  # noqa: E402
import copy  # noqa: E402
import gc  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _measure import recall, rss_gib, timed  # noqa: E402
from skbackward import LabelFilterRetriever  # noqa: E402
from skbackward.indexes import ExactIndex, FaissIndex, MilvusIndex  # noqa: E402

N_FEATURES = 64
N_CLASSES = (10, 4)  # two attributes
CHUNK = 50_000


def make_items(path, n, seed):
    """``n`` class-structured feature rows in a float32 memmap at ``path``,
    written chunk by chunk, and their labels (n, 2)."""
    rng = np.random.RandomState(seed)
    centers = [rng.normal(scale=2.0, size=(c, N_FEATURES)) for c in N_CLASSES]
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                  shape=(n, N_FEATURES))
    y = np.stack([rng.randint(c, size=n) for c in N_CLASSES], axis=1)
    for s in range(0, n, CHUNK):
        e = min(s + CHUNK, n)
        X[s:e] = (centers[0][y[s:e, 0]] + centers[1][y[s:e, 1]]
                  + rng.normal(size=(e - s, N_FEATURES)))
    X.flush()
    return X, y


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--faiss", default="IVF1024,Flat", help="faiss factory string")
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--milvus-index", nargs="+", default=["FLAT"],
                        help="Milvus index types to measure (FLAT, IVF_FLAT, HNSW)")
    parser.add_argument("--partition-key", action="store_true",
                        help="each Milvus index type also with partition_key=True")
    parser.add_argument("--per-class", default=None,
                        help="also this faiss factory with per_class=True")
    parser.add_argument("--per-class-nprobe", type=int, default=16)
    parser.add_argument("--tmp", default=None, help="directory for temporary files")
    parser.add_argument("--uri", default=None,
                        help="a Milvus server's URI (default: Milvus Lite files)")
    parser.add_argument("--no-faiss", action="store_true", help="leave faiss out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:
        pass

    tmp = tempfile.mkdtemp(prefix="bench_milvus_", dir=args.tmp)
    rows = []
    try:
        for n in args.sizes:
            rows += bench_size(n, args, tmp)
            for f in os.listdir(tmp):  # one size's files at a time
                p = os.path.join(tmp, f)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"torch {torch.__version__}, one thread; embedding_dim="
          f"{args.embedding_dim}; {args.queries} queries, k=10; condition on an "
          f"attribute of {N_CLASSES[0]} classes")
    print()
    print("| items | index | items/s indexed | conditional q/s | plain q/s "
          "| recall@10 (conditional) | RSS after build (GiB) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| {:,} | {} | {} | {} | {} | {} | {} |".format(*r))


def bench_size(n, args, tmp):
    print(f"== {n:,} items", flush=True)
    X, y = make_items(os.path.join(tmp, "X.npy"), n, seed=0)
    rng = np.random.RandomState(1)
    q_rows = rng.choice(n, args.queries, replace=False)
    X_q = np.asarray(X[q_rows])
    condition = {0: rng.randint(N_CLASSES[0], size=args.queries)}
    fit_rows = rng.choice(n, min(n, 20_000), replace=False)
    base = LabelFilterRetriever(embedding_dim=args.embedding_dim, epochs=2,
                                random_state=0)
    base.fit(np.asarray(X[np.sort(fit_rows)]), y[np.sort(fit_rows)])
    out = []

    # the anchor: the embedding network alone over the same items
    tic = time.perf_counter()
    for s in range(0, n, CHUNK):
        base.transform(X[s:s + CHUNK])
    t_embed = time.perf_counter() - tic
    out.append((n, "embedding only (anchor)", f"{n / t_embed:,.0f}", "", "", "", ""))
    print(f"  embedding: {n / t_embed:,.0f} items/s", flush=True)

    indexes = [("exact", ExactIndex())]
    if not args.no_faiss:
        indexes.append((f"faiss {args.faiss}, nprobe={args.nprobe}",
                        FaissIndex(args.faiss, nprobe=args.nprobe)))
    if args.per_class:
        indexes.append((f"faiss {args.per_class} per class, "
                        f"nprobe={args.per_class_nprobe}",
                        FaissIndex(args.per_class, nprobe=args.per_class_nprobe,
                                   per_class=True)))
    for kind in args.milvus_index:
        # a Milvus 2.3 server has no defaults for these; Lite's are the same
        params, search = {
            "IVF_FLAT": ({"nlist": 1024}, {"nprobe": args.nprobe}),
            "HNSW": ({"M": 16, "efConstruction": 200}, {"ef": 64}),
        }.get(kind, (None, None))
        for key in [False, True] if args.partition_key else [False]:
            uri = args.uri or os.path.join(tmp, f"milvus_{kind}_{key}.db")
            name = f"bench_{kind.lower()}" + ("_key" if key else "")
            indexes.append((("Milvus server " if args.uri else "Milvus Lite ") + kind
                            + (f", {search}" if search else "")
                            + (", partition key" if key else ""),
                            MilvusIndex(uri, name if args.uri else "items",
                                        index_type=kind, index_params=params,
                                        search_params=search, partition_key=key,
                                        overwrite=True)))
    exact_ind = None
    for name, index in indexes:
        ret = copy.deepcopy(base).set_params(vector_index=index)
        gc.collect()
        _, t_build = timed(ret.index, X, y)
        mem = rss_gib()
        (_, ind), t_cond = timed(ret.kneighbors, X_q, 10, condition=condition)
        _, t_plain = timed(ret.kneighbors, X_q, 10)
        if exact_ind is None:
            exact_ind = ind
        found = recall(ind, exact_ind)
        if isinstance(index, MilvusIndex) and index.partition_key:
            name += " ({} cells in {} of {} partitions)".format(
                *partitions_held(ret.vector_index_))
        out.append((n, name, f"{n / t_build:,.0f}", f"{args.queries / t_cond:,.1f}",
                    f"{args.queries / t_plain:,.1f}", f"{found:.3f}", f"{mem:.1f}"))
        print(f"  {name}: {n / t_build:,.0f} items/s, {args.queries / t_cond:,.1f} "
              f"cond q/s, {args.queries / t_plain:,.1f} plain q/s, recall "
              f"{found:.3f}, RSS {mem:.1f} GiB", flush=True)
        if isinstance(index, MilvusIndex):
            if args.uri:  # free the server's memory for the next one
                client = ret.vector_index_._client()
                client.drop_alias(index.collection)
                client.drop_collection(ret.vector_index_._collection)
            else:
                release_milvus_lite(index.uri)
        del ret
        gc.collect()
    return out


def partitions_held(index):
    """How many cells a partition-keyed MilvusIndex's items fall in, how many
    of its collection's partitions hold items, and how many it has."""
    client, name = index._client(), index._collection
    held = 0
    names = client.list_partitions(name)
    for partition in names:  # (a partition key forbids querying one by name)
        held += int(client.get_partition_stats(name, partition)["row_count"]) > 0
    return len(index._cells), held, len(names)


def release_milvus_lite(path):
    """Stop this process's Milvus Lite server of ``path`` (milvus-lite 3), so
    its memory is freed and it writes nothing after the files are deleted."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_server(path)


if __name__ == "__main__":
    main()
