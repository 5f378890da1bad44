"""
=============================================
Quickstart: "this 3, but as an 8" on digits
=============================================

Conditional retrieval asks for items *like this query, but with label c*.
Here the items are scikit-learn's 8x8 handwritten digits (embedded, no
download), the label is the digit, and a conditional query reads
"find digits written like this 3, but that are 8s".

We fit a :class:`~skbackward.BackwardSearchRetriever` on a training split,
search the test split as the database, and compare

* plain nearest-neighbour search, which ignores the condition,
* Backward Search at several values of ``alpha`` (the paper's lambda), and
* a peer: keep the database items the classifier head predicts to carry the
  condition, and rank them by similarity to the query.

Two figures are reported for every method: how often the results carry the
wanted label (precision@10, the figure the paper calls "mAP@10", and the
standard AP@10), and how close the results stay to the query in the
embedding space. ``alpha`` trades one against the other: a small ``alpha``
reaches the condition class but forgets the query, a large one stays near
the query. Finally we draw a few queries with their conditional neighbours.

Run it with ``python examples/plot_quickstart.py [--out FIGURE.png]``.
"""

# %%
# Data: a stratified split of the digits
# --------------------------------------
# The training split teaches the model what the labels look like; the test
# split is the database we search, and it also supplies the query items.
import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skbackward import BackwardSearchRetriever, LabelFilterRetriever
from skbackward.metrics import average_precision_at_k, precision_at_k
from skbackward.model_selection import sample_queries

# Small networks on small data: one torch thread is faster than two on a
# shared machine (a run with two threads can differ in the third decimal).
torch.set_num_threads(1)

parser = argparse.ArgumentParser(
    description='Quickstart: "this 3, but as an 8" on digits'
)
parser.add_argument("--out", default="quickstart_neighbours.png",
                    help="where to save the figure (PNG)")
args, _ = parser.parse_known_args()  # tolerate extra args (e.g. sphinx-gallery)

tic = time.perf_counter()
digits = load_digits()
X, y = digits.data / 16.0, digits.target  # pixels in [0, 1]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
print(f"train: {X_train.shape[0]} digits, database (test split): {X_test.shape[0]}")

# %%
# Fit the retriever and index the database
# ----------------------------------------
# ``fit`` trains an embedding head and a digit classifier on top of it, and
# indexes the training items; ``index`` replaces the database by the test
# split (labels are optional there; we keep them to score the results).
ret = BackwardSearchRetriever(random_state=0)
ret.fit(X_train, y_train)
ret.index(X_test, y_test)
Z_db = ret.transform(X_test)  # database embeddings, the retrieval space

# %%
# Conditional queries
# -------------------
# Query items are sampled class-balanced from the database, each with a
# random condition class other than its own digit and with at least 10
# database items (the paper's protocol, own class excluded).
K = 10
qi, cond = sample_queries(
    y_test, y_test, n_queries=400, k=K, exclude_own_class=True, random_state=0
)
Xq, cq = X_test[qi], cond[0]  # one attribute: cond == {0: wanted digits}
n_relevant = (y_test[None, :] == cq[:, None]).sum(1)  # database items of class c
Zq = ret.transform(Xq)  # the queries' own embeddings
print(f"{len(qi)} (query, condition) pairs drawn from the database labels")
print('"this 3, but as an 8" = database digits that are 8s yet written like this 3\n'
      "(Backward Search moves the 3's embedding until the classifier says 8)")


def unit(Z):
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def search(retriever=ret, **condition):
    """Top-K database rows per query, the query item itself left out.

    The query items come from the database, so each would find itself;
    ``exclude`` leaves each query's own row out of its results.
    """
    return retriever.kneighbors(Xq, K, return_distance=False, exclude=qi, **condition)


def evaluate(ind):
    """precision@K, AP@K and mean cosine(query, retrieved) for one ranking."""
    closeness = np.einsum("qd,qkd->qk", unit(Zq), unit(Z_db)[ind]).mean()
    return (
        precision_at_k(cq, y_test[ind], K),
        average_precision_at_k(cq, y_test[ind], K, n_relevant=n_relevant),
        closeness,
    )


# %%
# Plain kNN against Backward Search at several alphas
# ---------------------------------------------------
# ``alpha`` is read at query time, so ``set_params`` changes it without
# refitting. Plain kNN returns the query's own neighbours: the closest
# possible, but almost never of the wanted class. ``predicted_first=False``
# is the published algorithm: every database item is ranked by similarity to
# the searched embedding z*. The default, ``predicted_first=True``, ranks the
# items the classifier predicts to carry the condition first (by similarity
# to z*), which lifts precision at every alpha.
rows = [("plain kNN (no condition)", evaluate(search()))]
results = {}
for predicted_first in (False, True):
    kind = "+ filter" if predicted_first else "published"
    for alpha in (0.03, 0.1, 0.3, 1.0):
        ret.set_params(alpha=alpha, predicted_first=predicted_first)
        ind = search(condition=cq)
        results[predicted_first, alpha] = ind
        rows.append((f"Backward Search ({kind}), alpha={alpha}", evaluate(ind)))

# %%
# A peer in the same API: :class:`~skbackward.LabelFilterRetriever` keeps the
# database items its classifier head predicts as the condition and ranks them
# by similarity to the query itself. Fitted with the same training parameters
# and seed, its network is the one Backward Search uses.
label_filter = LabelFilterRetriever(random_state=0).fit(X_train, y_train)
label_filter.index(X_test, y_test)
rows.append(("LabelFilterRetriever", evaluate(search(label_filter, condition=cq))))

# %%
# Two references that *use the database labels* (Backward Search does not):
# the K items of the wanted class nearest to the query (the best closeness
# any ranking with precision 1 can reach) and K random items of that class.
cos_db = unit(Zq) @ unit(Z_db).T
cos_db[np.arange(len(qi)), qi] = -np.inf  # never the query itself
cos_db[y_test[None, :] != cq[:, None]] = -np.inf
oracle = np.argsort(-cos_db, axis=1, kind="stable")[:, :K]
rng = np.random.RandomState(0)
random_of_class = np.array([
    rng.choice(np.flatnonzero((y_test == c) & (np.arange(len(y_test)) != q)), K,
               replace=False)
    for q, c in zip(qi, cq)
])
references = [("ref: nearest K of class c", evaluate(oracle)),
              ("ref: random K of class c", evaluate(random_of_class))]

print()
print(f"| {'method':<39} | precision@10 | AP@10 | closeness |")
print(f"|{'-' * 41}|--------------|-------|-----------|")
for name, (p, ap, close) in rows + references:
    print(f"| {name:<39} | {p:12.3f} | {ap:5.3f} | {close:9.3f} |")
print()
print("precision@10 is what the paper calls 'mAP@10'; AP@10 is the standard\n"
      "average precision (R = database items of the wanted digit);\n"
      "closeness: mean cosine similarity between the query's own embedding and\n"
      "its results'; the query item itself is never counted; the ref rows use\n"
      "the database labels (an upper bound and a floor for closeness at\n"
      "precision 1).")

# %%
# What the neighbours look like
# -----------------------------
# Each row: a query digit, the condition, and its top 5 conditional
# neighbours in the database (Backward Search at one alpha). Green titles
# mark neighbours that carry the wanted label.
ALPHA_SHOWN, N_ROWS, N_SHOW = 0.3, 6, 5
ind = results[True, ALPHA_SHOWN]  # the default: predicted_first=True
rng = np.random.RandomState(1)
shown = rng.choice(len(qi), N_ROWS, replace=False)
fig, axes = plt.subplots(N_ROWS, N_SHOW + 2,
                         figsize=(1.3 * (N_SHOW + 2), 1.45 * N_ROWS))
for r, q in enumerate(shown):
    axes[r, 0].imshow(X_test[qi[q]].reshape(8, 8), cmap="gray_r")
    axes[r, 0].set_title("query", fontsize=9)
    axes[r, 1].text(0.5, 0.5, f"{y_test[qi[q]]} \u2192 {cq[q]}", ha="center",
                    va="center", fontsize=15)
    for c in range(N_SHOW):
        item = ind[q, c]
        ok = y_test[item] == cq[q]
        axes[r, c + 2].imshow(X_test[item].reshape(8, 8), cmap="gray_r")
        axes[r, c + 2].set_title(f"#{c + 1}: {y_test[item]}", fontsize=9,
                                 color="green" if ok else "red")
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 1].set_title("condition", fontsize=9)
for ax in axes[:, 1]:
    ax.axis("off")
fig.suptitle(f"Backward Search + filter on digits (alpha={ALPHA_SHOWN}): "
             "query \u2192 wanted digit, top 5", fontsize=11)
fig.tight_layout()
fig.savefig(args.out, dpi=100)
print(f"saved {args.out}; total time {time.perf_counter() - tic:.1f}s")
