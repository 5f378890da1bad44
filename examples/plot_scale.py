"""
=====================================================
A large database on one machine: exact or faiss
=====================================================

A retriever keeps the items it searches in a *vector index*, its
``vector_index`` parameter. The default, :class:`~skbackward.indexes.ExactIndex`,
ranks every item exactly; :class:`~skbackward.indexes.FaissIndex` hands the
items to faiss, whose approximate indexes trade recall for speed. This example
indexes the same 200,000 synthetic items with both and asks the question that
decides between them: how much faster is the approximate index, and how many
of the exact top 10 does it still find?

The items carry two attributes (10 and 4 classes). An IVF index
(``"IVF256,Flat"``: 256 inverted lists) visits ``nprobe`` lists per query;
``nprobe`` is read at each search, so one index answers at every setting. Two
kinds of query are measured: plain ones (the query's own embedding, no
condition) and conditional ones (Backward Search's ``z*`` for "this item, but
with class c of attribute 0", ranked among the items predicted to carry c,
which faiss does through an ID selector). Only the index's own work is timed:
the search for ``z*`` runs once and is the same for both indexes.

Run it with ``python examples/plot_scale.py [--n-items N] [--out FIGURE.png]``;
it needs ``pip install "skbackward[faiss]"``.
"""

# %%
# Synthetic items with two attributes
# -----------------------------------
# Each item is the sum of a class mean per attribute, low-rank correlated
# noise and white noise, 64 features. The retriever is fitted on 5,000 items;
# the database holds the others.
import argparse
import time

import matplotlib

matplotlib.use("Agg")
import faiss
import matplotlib.pyplot as plt
import numpy as np
import torch

from skbackward import BackwardSearchRetriever
from skbackward.indexes import ExactIndex, FaissIndex

# One thread for torch and faiss: the figures are ratios measured in one run,
# and on a shared machine extra threads add noise, not speed.
torch.set_num_threads(1)
faiss.omp_set_num_threads(1)

parser = argparse.ArgumentParser(
    description="A large database on one machine: exact or faiss"
)
parser.add_argument("--n-items", type=int, default=200_000,
                    help="items in the database (default 200,000)")
parser.add_argument("--out", default="scale.png", help="where to save the figure")
args, _ = parser.parse_known_args()  # tolerate extra args (e.g. sphinx-gallery)

N_CLASSES = (10, 4)
rng = np.random.default_rng(0)
means = [rng.normal(scale=1.5, size=(c, 64)) for c in N_CLASSES]
mixing = rng.normal(size=(16, 64)) / 4.0


def make_items(n):
    y = np.stack([rng.integers(c, size=n) for c in N_CLASSES], axis=1)
    X = means[0][y[:, 0]] + means[1][y[:, 1]]
    X += rng.normal(size=(n, 16)) @ mixing * 2.0 + rng.normal(size=(n, 64)) * 0.5
    return X.astype(np.float32), y


X_train, Y_train = make_items(5_000)
X_db, Y_db = make_items(args.n_items)
X_query, Y_query = make_items(1_000)
# the condition: a class of attribute 0 the query does not carry
wanted = (Y_query[:, 0] + rng.integers(1, N_CLASSES[0], size=len(Y_query))) % 10
print(f"database: {X_db.shape[0]:,} items x {X_db.shape[1]} features")

# %%
# Fit once, index with the exact index
# ------------------------------------
# ``index`` embeds the database and builds the retriever's fitted index,
# ``vector_index_``, from its ``vector_index`` parameter (None: exact).
ret = BackwardSearchRetriever(embedding_dim=128, epochs=5, random_state=0)
ret.fit(X_train, Y_train)

tic = time.perf_counter()
ret.index(X_db)
print(f"exact index built in {time.perf_counter() - tic:.1f} s")

# The query embeddings: plain (the query itself) and conditional (z*).
z_plain = ret.transform(X_query)
z_cond = ret.transform(X_query, condition={0: wanted})
# The ranking wish of a conditional query: attribute 0 must be the wanted
# class (its class codes are the labels 0..9 here), attribute 1 is free (-1).
wish = np.stack([wanted, np.full_like(wanted, -1)], axis=1)
assert np.array_equal(ret.attribute_classes_[0], np.arange(10))


def timed(fn, repeat=3):
    """Best of ``repeat`` runs: seconds and the last result."""
    best = np.inf
    for _ in range(repeat):
        tic = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - tic)
    return best, out


def measure(index):
    t_plain, (_, plain) = timed(lambda: index.search(z_plain, 10))
    t_cond, (_, cond) = timed(lambda: index.search(z_cond, 10, prefer=[wish]))
    return t_plain, plain, t_cond, cond


exact = ret.vector_index_
assert isinstance(exact, ExactIndex)
t_plain_exact, truth_plain, t_cond_exact, truth_cond = measure(exact)


def recall(found, truth):
    """Mean fraction of each query's exact top 10 that was found."""
    return np.mean([np.isin(f, t).mean() for f, t in zip(found, truth)])


# %%
# The same items in faiss, at every ``nprobe``
# --------------------------------------------
# Changing the parameter and calling ``index`` again builds a faiss index of
# the same items; ``vector_index_.set_params(nprobe=...)`` then changes the
# lists visited without rebuilding.
tic = time.perf_counter()
ret.set_params(vector_index=FaissIndex("IVF256,Flat")).index(X_db)
print(f"faiss index built (trained and filled) in {time.perf_counter() - tic:.1f} s")

rows = []
for nprobe in (1, 2, 4, 8, 16, 32):
    ret.vector_index_.set_params(nprobe=nprobe)
    t_plain, plain, t_cond, cond = measure(ret.vector_index_)
    rows.append((nprobe, recall(plain, truth_plain), t_plain / t_plain_exact,
                 recall(cond, truth_cond), t_cond / t_cond_exact,
                 (Y_db[cond, 0] == wanted[:, None]).mean()))

print(f"\n{'nprobe':>6} | {'plain recall@10':>15} {'time/exact':>10} | "
      f"{'cond. recall@10':>15} {'time/exact':>10} {'label ok':>8}")
for nprobe, r_p, s_p, r_c, s_c, ok in rows:
    print(f"{nprobe:>6} | {r_p:>15.3f} {s_p:>10.2f} | {r_c:>15.3f} {s_c:>10.2f} "
          f"{ok:>8.3f}")
print(f"exact: {len(X_query) / t_plain_exact:,.0f} plain and "
      f"{len(X_query) / t_cond_exact:,.0f} conditional rankings per second")

# %%
# Recall against time
# -------------------
# A point per ``nprobe``: up and to the left is better. Plain queries gain
# most from the inverted lists. The exact index already ranks a conditional
# query among the items of its condition class only (a tenth of the database
# here), which makes it several times faster than for a plain query, so the
# approximate index saves less against it.
rows = np.array(rows)
fig, ax = plt.subplots(figsize=(6, 4))
for (r, s), name in (((1, 2), "plain"), ((3, 4), "conditional")):
    ax.plot(rows[:, s], rows[:, r], "o-", label=name)
    for nprobe, x, y in zip(rows[:, 0], rows[:, s], rows[:, r]):
        ax.annotate(f"{int(nprobe)}", (x, y), textcoords="offset points",
                    xytext=(4, -10), fontsize=8)
ax.axvline(1.0, color="grey", ls=":", lw=1)
ax.set_xscale("log")
ax.set_xlabel("time of the ranking, relative to the exact index")
ax.set_ylabel("recall@10 of the exact top 10")
ax.set_title(f"IVF256,Flat on {args.n_items:,} items (labels: nprobe)")
ax.legend()
fig.tight_layout()
fig.savefig(args.out, dpi=120)
print(f"figure saved to {args.out}")

# %%
# Which index
# -----------
# Up to about a million items the exact index is simple and fast enough, and
# its answers are exact. Beyond that, or when many plain queries must be
# answered quickly, pick an approximate faiss index and choose ``nprobe`` from
# a table like this one, measured on your own items; :doc:`/scaling` and
# :doc:`/benchmarks_scale` give the figures for a million and ten million
# items.
