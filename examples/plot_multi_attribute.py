"""
=============================================
Conditions on several attributes at once
=============================================

Items often carry several labels: an image has an object class *and* a
domain, a painting a style *and* a genre. Fitted on one column per
attribute, a retriever answers conditions on any of them, or on several
jointly: "this 3, but mirrored", "this item, but an 8", "this 3, but a
mirrored 8".

The data is scikit-learn's ``load_digits`` (embedded, no download) in three
*styles*: as written, mirrored left-right and rotated by 90 degrees, so every
item has two attributes, ``digit`` and ``style``. This example shows

* the dict form of ``condition``, ``{attribute: label or labels}``, on one
  attribute and on both;
* per-query conditions, where ``None`` leaves an attribute unconstrained for
  some queries;
* ``condition_weight``, which weighs the attributes in the search loss.

Run it with ``python examples/plot_multi_attribute.py [--out FIGURE.png]``.
"""

# %%
# Data and a fitted retriever
# ---------------------------
# ``y`` is a DataFrame: its column names become the attribute names that
# conditions use. The three styles of one image stay in the same split, so
# the database never holds a transformed copy of a query.
import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from skbackward import BackwardSearchRetriever
from skbackward.datasets import load_digit_styles
from skbackward.model_selection import sample_queries

# Small networks on small data: one torch thread is faster than two on a
# shared machine (a run with two threads can differ in the third decimal).
torch.set_num_threads(1)

parser = argparse.ArgumentParser(description='Conditions on several attributes at once')
parser.add_argument("--out", default="multi_attribute.png",
                    help="where to save the figure (PNG)")
args, _ = parser.parse_known_args()  # tolerate extra args (e.g. sphinx-gallery)

tic = time.perf_counter()
digit_styles = load_digit_styles(as_frame=True)
X, y = digit_styles.data, digit_styles.target  # y: columns digit and style
source = digit_styles.groups  # the image each row comes from
n_images = source.max() + 1
# 70% of the source images train the network; the rest is the database,
# which also supplies the queries
in_train = np.random.RandomState(0).rand(n_images) < 0.7
train, db = np.flatnonzero(in_train[source]), np.flatnonzero(~in_train[source])
y_db = y.iloc[db].reset_index(drop=True)

ret = BackwardSearchRetriever(embedding_dim=64, epochs=5, alpha=0.3, random_state=0)
ret.fit(X[train], y.iloc[train])
ret.index(X[db], y_db)
print("attributes:", ret.attributes_)
print("classes:", {a: c.tolist() for a, c in zip(ret.attributes_,
                                                 ret.attribute_classes_)})

# %%
# One attribute, the other, or both
# ---------------------------------
# :func:`~skbackward.model_selection.sample_queries` draws query items from
# the database with a joint condition (a digit and a style), ready to pass as
# ``condition``; we keep the 300 first pairs whose digit *and* style both
# differ from the query's own. Each query's own row is left out of its
# results with ``exclude``. A dict names the attributes to condition on;
# attributes left out are unconstrained.
qi, cond = sample_queries(y_db, y_db, condition_on=["digit", "style"],
                          n_queries=600, exclude_own_class=True, random_state=0)
other = ((cond["digit"] != y_db["digit"].to_numpy()[qi])
         & (cond["style"] != y_db["style"].to_numpy()[qi]))
keep = np.flatnonzero(other)[:300]
qi, cond = qi[keep], {a: labels[keep] for a, labels in cond.items()}
Xq, own = X[db][qi], y_db.iloc[qi]
digit_db, style_db = y_db["digit"].to_numpy(), y_db["style"].to_numpy()


def shares(ind, rows=slice(None), digit=None, style=None):
    """Share of the top 10 with the wanted / the query's own labels.

    ``ind`` holds the results of the queries ``rows``.
    """
    got_digit, got_style = digit_db[ind], style_db[ind]
    own_digit = own["digit"].to_numpy()[rows, None]
    own_style = own["style"].to_numpy()[rows, None]
    return {
        "wanted digit": (got_digit == digit[:, None]).mean() if digit is not None
        else np.nan,
        "wanted style": (got_style == style[:, None]).mean() if style is not None
        else np.nan,
        "query's digit": (got_digit == own_digit).mean(),
        "query's style": (got_style == own_style).mean(),
    }


forms = {
    "style only": {"style": cond["style"]},
    "digit only": {"digit": cond["digit"]},
    "digit and style": cond,
}
results, table = {}, {}
for name, condition in forms.items():
    results[name] = ret.kneighbors(Xq, 10, return_distance=False,
                                   condition=condition, exclude=qi)
    table[name] = shares(results[name], digit=condition.get("digit"),
                         style=condition.get("style"))
print(pd.DataFrame(table).T.round(3).to_string(na_rep="-"))

# %%
# Each form reaches the labels it asks for. With the style alone, the results
# keep the query's digit far more often than when the digit is conditioned
# (the search moves the query only as far as the style requires); with the
# digit alone, most results keep the query's style. With both, nothing of the
# query's labels is left to keep. Every condition here differs from the
# query's own labels, so "keeping" a label is never the same as reaching it.
#
# Per-query conditions
# --------------------
# A condition can differ from query to query: give an array per attribute.
# ``None`` inside an array leaves that attribute unconstrained for that query.
# Here the first half of the queries condition on both attributes, the second
# half on the digit only.
half = len(qi) // 2
style_or_none = np.where(np.arange(len(qi)) < half, cond["style"], None)
ind = ret.kneighbors(Xq, 10, return_distance=False, exclude=qi,
                     condition={"digit": cond["digit"], "style": style_or_none})
first, second = slice(None, half), slice(half, None)
both = shares(ind[first], first, cond["digit"][first], cond["style"][first])
digit_only = shares(ind[second], second, cond["digit"][second])
print(f"first half (digit and style): wanted digit {both['wanted digit']:.3f}, "
      f"wanted style {both['wanted style']:.3f}")
kept_style = digit_only["query's style"]
print(f"second half (digit only): wanted digit {digit_only['wanted digit']:.3f}, "
      f"query's style kept {kept_style:.3f}")

# %%
# Weighing the attributes
# -----------------------
# With several conditioned attributes the search minimises the *mean* of
# their cross-entropies, plus ``alpha`` times the pull towards the query.
# ``condition_weight`` turns the mean into a weighted mean; only the ratios
# between attributes matter. The published ranking (``predicted_first=False``,
# by z* alone: ``feature_weight=0``) shows its effect best: the default
# ranking already keeps only the items predicted to carry every condition.
ret.set_params(predicted_first=False, feature_weight=0)
weights = [{"digit": 1.0, "style": 4.0}, {"digit": 1.0, "style": 1.0},
           {"digit": 4.0, "style": 1.0}]
for w in weights:
    ind = ret.kneighbors(Xq, 10, return_distance=False, condition=cond,
                         condition_weight=w, exclude=qi)
    s = shares(ind, digit=cond["digit"], style=cond["style"])
    print(f"weights digit {w['digit']:g} : style {w['style']:g}  ->  wanted digit "
          f"{s['wanted digit']:.3f}, wanted style {s['wanted style']:.3f}")
ret.set_params(predicted_first=True)

# %%
# What the neighbours look like
# -----------------------------
# Each row: a query, then its top 3 for the style alone, the digit alone, and
# both (the default ranking). Titles give each result's digit and style; green
# marks a result that carries every wanted label.
N_ROWS, N_SHOW = 5, 3
short = {"original": "orig", "mirrored": "mirr", "rotated": "rot"}
rows = np.random.RandomState(2).choice(len(qi), N_ROWS, replace=False)
fig, axes = plt.subplots(N_ROWS, 1 + 3 * N_SHOW, figsize=(13, 1.6 * N_ROWS))
for r, q in enumerate(rows):
    ax = axes[r, 0]
    ax.imshow(Xq[q].reshape(8, 8), cmap="gray_r")
    ax.set_title(f"query: {own['digit'].iloc[q]} {short[own['style'].iloc[q]]}",
                 fontsize=8)
    for f, (name, condition) in enumerate(forms.items()):
        for c in range(N_SHOW):
            item = results[name][q, c]
            ok = all(y_db[a].iloc[item] == np.asarray(v)[q]
                     for a, v in condition.items())
            ax = axes[r, 1 + f * N_SHOW + c]
            ax.imshow(X[db[item]].reshape(8, 8), cmap="gray_r")
            ax.set_title(f"{digit_db[item]} {short[style_db[item]]}", fontsize=8,
                         color="green" if ok else "red")
    want = f"{cond['digit'][q]} {short[cond['style'][q]]}"
    axes[r, 1].set_ylabel(f"wanted:\n{want}", fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
for f, name in enumerate(forms):
    axes[0, 1 + f * N_SHOW + 1].annotate(
        f"condition: {name}", (0.5, 1.45), xycoords="axes fraction",
        ha="center", fontsize=10)
fig.suptitle("Conditions on one attribute or on both (top 3 of each query)",
             fontsize=11, y=0.995)
fig.tight_layout()
fig.savefig(args.out, dpi=100)
print(f"saved {args.out}; total time {time.perf_counter() - tic:.1f}s")
