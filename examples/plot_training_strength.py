"""
======================================================================
Training strength: reaching the condition against keeping the item
======================================================================

The network Backward Search moves through is trained by the recipe of the
paper's public code by default: Adam with learning rate 0.01, minibatches of
64, 30 epochs, the learning rate x0.1 after every third of them. Training
harder (more epochs, a larger learning rate) shapes the heads so that the
search reaches the asked class more often, but the searched embedding then
keeps less of *which* item the query was. The training is a second knob on the
same frontier as ``alpha``.

To see it we need a ground truth for "the same item": every digit of
scikit-learn's ``load_digits`` appears in three *styles* (as written,
mirrored, rotated; :func:`~skbackward.datasets.load_digit_styles`), and
``groups`` says which items are one image. A query "this digit, but rotated"
has one right answer, its own image rotated: **hit@10** asks whether it is in
the top 10, beside **precision@10** (are the results rotated at all).

Run it with ``python examples/plot_training_strength.py [--out FIGURE.png]``.
"""

# %%
# Data: the digits in three styles, split by image
# ------------------------------------------------
# The three styles of an image stay on one side of the split, so a query's
# counterpart is in the database (the test split) and never in training.
import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from sklearn.model_selection import GroupShuffleSplit

from skbackward import BackwardSearchRetriever
from skbackward.datasets import load_digit_styles
from skbackward.metrics import retrieval_scores

# Small networks on small data: one torch thread is faster than two on a
# shared machine.
torch.set_num_threads(1)

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="training_strength.png")
args, _ = parser.parse_known_args()

tic = time.perf_counter()
d = load_digit_styles(as_frame=True)
X, y, groups = d.data, d.target, d.groups
train, test = next(GroupShuffleSplit(1, test_size=0.3, random_state=0)
                   .split(X, groups=groups))
print(f"train: {len(train)} items, database: {len(test)} items, attributes "
      f"{list(y.columns)}")

# %%
# One network per training strength
# ---------------------------------
# ``fit`` takes ``groups`` and keeps them with the index (``index_groups_``);
# :func:`~skbackward.metrics.retrieval_scores` with the queries' ``groups``
# then measures hit@10. Each network is searched with the published ranking
# (``predicted_first=False``) and with the default one, at the default
# ``alpha``; the queries are the database items themselves
# (``X_is_index=True``), each asked for a style other than its own.
strengths = [(3, 1e-3), (10, 1e-3), (30, 1e-3), (3, 1e-2), (10, 1e-2), (30, 1e-2)]
scores = {}
for epochs, lr in strengths:
    ret = BackwardSearchRetriever(epochs=epochs, learning_rate=lr, random_state=0)
    ret.fit(X[train], y.iloc[train], groups=groups[train])
    ret.index(X[test], y.iloc[test], groups=groups[test])
    for ranking in (False, True):
        ret.set_params(predicted_first=ranking)
        scores[epochs, lr, ranking] = retrieval_scores(
            ret, X[test], y.iloc[test], groups=groups[test], condition_on="style",
            exclude_own_class=True, n_queries=600, X_is_index=True,
        )
print(f"{'epochs':>6} {'lr':>6}  {'ranking':<10} {'precision@10':>12} "
      f"{'digit kept@10':>13} {'hit@10':>7}")
for (epochs, lr, ranking), s in scores.items():
    name = "default" if ranking else "published"
    print(f"{epochs:>6} {lr:>6g}  {name:<10} {s['precision']:>12.3f} "
          f"{s['preservation']:>13.3f} {s['hit']:>7.3f}")

# %%
# The frontier
# ------------
# Each line joins the training strengths of one learning rate, from 3 to 30
# epochs. Read it as with ``alpha``: points up and to the right are better on
# both counts. In the run shown here (the site's build: another CPU trains
# networks that differ in their last bits, and moves these points by a few
# hundredths) the larger learning rate found the same image more often, yet
# the longest training was not the best for hit@10: past a point, more
# training buys precision (or nothing) with identity. On
# data whose conditions change an item only a little, we measured the
# published recipe lowering hit@10 for every ranking; on these digits, where a
# rotation moves every pixel, it raised it.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
names = ("published ranking", "default ranking (predicted_first)")
for ax, ranking, name in zip(axes, (False, True), names):
    for colour, lr in zip(("C0", "C1"), (1e-3, 1e-2)):
        pts = [scores[e, lr, ranking] for e in (3, 10, 30)]
        ax.plot([p["hit"] for p in pts], [p["precision"] for p in pts], "-o",
                color=colour, label=f"learning_rate={lr:g}")
        for e, p in zip((3, 10, 30), pts):
            ax.annotate(f"{e} epochs", (p["hit"], p["precision"]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
    ax.set_title(name)
    ax.set_ylabel("precision@10 (results in the asked style)")
    ax.set_xlabel("hit@10 (the same image, rotated or mirrored, found)")
    ax.grid(alpha=0.3)
axes[1].legend()
fig.suptitle("Training strength on the digits in three styles (alpha 0.5)")
fig.tight_layout()
fig.savefig(args.out, dpi=100)
print(f"figure saved to {args.out}; {time.perf_counter() - tic:.0f}s")

# %%
# Choosing on your own data
# -------------------------
# Which strength wins depends on how far a condition moves an item in the
# feature space. Tune it like ``alpha``, with a hit@k scorer when your data has
# counterparts (``make_retrieval_scorer(["precision", "hit"])``, ``groups``
# routed to ``fit`` and to the scorer by scikit-learn's metadata routing; see
# the user guide's page on the training), or with precision and kept@k when it
# has not.
