"""Batched Backward Search vs the published per-query loop, same heads.

Prints a markdown table: queries/second of each and the largest difference
between their z*. Uses the PACS features (../shared/data) when present, else
digits.

    python benchmarks/bench_search.py [--quick] [--data pacs|digits]
"""

import argparse
import time

import numpy as np
import torch

from skbackward import BackwardSearchRetriever
from skbackward._conditions import parse_condition
from skbackward._search import search_embeddings

from _data import load


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer queries and epochs")
    parser.add_argument("--data", default="auto", choices=["auto", "pacs", "digits"])
    parser.add_argument("--alpha", type=float, default=0.3)
    args = parser.parse_args()

    name, names, X_tr, X_te, y_tr, y_te = load(args.data)
    epochs = 5 if args.quick else 10
    print(f"data={name} train={X_tr.shape} epochs={epochs} alpha={args.alpha} "
          f"torch threads={torch.get_num_threads()}")
    ret = BackwardSearchRetriever(epochs=epochs, alpha=args.alpha, random_state=0)
    ret.fit(X_tr, y_tr)
    rng = np.random.RandomState(0)
    batches = (1, 64, 256) if args.quick else (1, 64, 1024)
    rows = []
    for n in batches:
        idx = rng.choice(X_te.shape[0], n, replace=False)
        Z0 = ret.transform(X_te[idx])
        cond = {ret.attributes_[0]: rng.choice(ret._classes[0], n)}
        targets, weights = parse_condition(cond, ret.attributes_, ret._classes, n)
        params = dict(alpha=ret.alpha, lr=ret.search_lr, max_iter=ret.max_iter,
                      patience=ret.patience)
        timings, outs = {}, {}
        for ref in (False, True):
            tic = time.perf_counter()
            outs[ref] = search_embeddings(ret.model_, Z0, targets, weights,
                                          device="cpu", reference=ref, **params)
            timings[ref] = time.perf_counter() - tic
        rows.append((n, n / timings[False], n / timings[True],
                     timings[True] / timings[False],
                     float(np.abs(outs[False] - outs[True]).max())))
        print(f"  batch {n}: done", flush=True)
    print()
    print("| queries | batched (q/s) | per-query loop (q/s) | speed-up | max abs diff of z* |")
    print("|---:|---:|---:|---:|---:|")
    for n, batched, loop, speedup, diff in rows:
        print(f"| {n} | {batched:,.0f} | {loop:,.1f} | {speedup:.1f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
