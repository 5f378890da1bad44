"""The training-strength frontier: reaching the condition against keeping the item.

The network is trained by the published recipe by default (Adam, learning
rate 0.01, batch 64, 30 epochs, x0.1 every third of them). Training harder
(more epochs, a larger learning rate) makes the search reach the condition
more often and keep *which* item the query was less: a second knob beside
``alpha``. This script fits one network per (epochs, learning rate) on the
training split and measures, on the paper's protocol (``_protocol.py``),
precision@10, kept@10, near@10 and hit@10 (digit styles: the same image in the
asked style) of three rankings: the published algorithm (α 0.3), the default
(``predicted_first``, α 0.5), and the default ranking with
``feature_weight=0.25``. A row "package 0.0" is the recipe skbackward used
before (10 epochs, batch 256, lr 1e-3, x0.5 every third).

``--part cost``: the fit's cost against the bare arithmetic of its training
(forward + backward + Adam step on minibatches cut beforehand), for the old
and the published recipe.

    python benchmarks/bench_training.py [--data pacs digits_style]
        [--part frontier|cost|all] [--queries 1000] [--threads 1] [--out DIR]
"""

import copy
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from _data import load
from _measure import doc_parser, log
from _methods import fit_teacher, variant
from _protocol import evaluate, settings_for
from skbackward import BackwardSearchRetriever

# (label, training parameters); batch 64 and x0.1 unless said
RECIPES = [
    ("3 ep, lr 1e-3", dict(epochs=3, learning_rate=1e-3)),
    ("10 ep, lr 1e-3", dict(epochs=10, learning_rate=1e-3)),
    ("30 ep, lr 1e-3", dict(epochs=30, learning_rate=1e-3)),
    ("3 ep, lr 1e-2", dict(epochs=3, learning_rate=1e-2)),
    ("10 ep, lr 1e-2", dict(epochs=10, learning_rate=1e-2)),
    ("30 ep, lr 1e-2 (published, default)", dict(epochs=30, learning_rate=1e-2)),
    ("package 0.0 (10 ep, batch 256, lr 1e-3, x0.5)",
     dict(epochs=10, batch_size=256, learning_rate=1e-3, lr_decay=0.5)),
]
RANKINGS = {
    "published (α 0.3)": dict(alpha=0.3, predicted_first=False),
    "default (filter, α 0.5)": dict(alpha=0.5, predicted_first=True),
    "default + feature_weight 0.25": dict(alpha=0.5, predicted_first=True,
                                          feature_weight=0.25),
}
MEASURES = ("precision", "kept", "near", "hit")
def frontier(data, n_queries, out):
    """One network per recipe, every ranking on every setting."""
    settings = settings_for(data.X_test, data.y_test, n_queries,
                            groups=data.groups_test)
    results, accuracy = {}, {}
    for label, params in RECIPES:
        teacher, seconds = fit_teacher(data, **params)
        # the heads' accuracy on the database (the test split)
        codes = teacher.encode_labels(data.y_test)
        accuracy[label] = (teacher.vector_index_.predicted_ == codes).mean(axis=0)
        log(f"{data.name}: {label} fitted in {seconds:.1f}s, heads' accuracy "
            + ", ".join(f"{a} {v:.3f}" for a, v in zip(data.attributes,
                                                       accuracy[label])))
        for name, query in RANKINGS.items():
            method = variant(teacher, **query)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results[label, name] = {
                    s.name: evaluate(method, data.X_test, data.y_test, s)
                    for s in settings}
    measures = [m for m in MEASURES
                if any(not np.isnan(r[s.name][m]) for r in results.values()
                       for s in settings)]
    head = ["recipe", "ranking"] + [f"{s.name}: {m}@10" for s in settings
                                    for m in measures]
    lines = [f"## Training strength: {data.name}", "",
             f"Database: the test split ({len(data.X_test)} items), {n_queries} "
             "(query, condition) pairs per setting; one network per recipe "
             "(random_state 0).", "",
             "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for (label, name), res in results.items():
        cells = [label, name] + [
            "n/a" if np.isnan(res[s.name][m]) else f"{res[s.name][m]:.3f}"
            for s in settings for m in measures]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Heads' accuracy on the database: " + "; ".join(
        f"{label}: " + ", ".join(f"{a} {v:.3f}" for a, v in zip(data.attributes, acc))
        for label, acc in accuracy.items()) + "."]
    plot(results, settings, measures, out / f"training_{data.name}.png", data.name)
    return lines + [""]


def plot(results, settings, measures, path, name):
    """Precision@10 against each context measure, one point per recipe,
    joined per ranking and learning rate from 3 to 30 epochs (dotted: 1e-3,
    solid: 1e-2); a cross: the package's earlier recipe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    context = [m for m in measures if m != "precision"]
    panels = [(s, m) for s in settings for m in context
              if any(not np.isnan(r[s.name][m]) for r in results.values())]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.4 * rows),
                             squeeze=False)
    for ax, (s, m) in zip(axes.ravel(), panels):
        for i, ranking in enumerate(RANKINGS):
            pts = [results[label, ranking][s.name] for label, _ in RECIPES]
            # one line per learning rate, from the fewest epochs to the most
            for j, style in ((slice(0, 3), ":o"), (slice(3, 6), "-o")):
                lr = RECIPES[j.start][1]["learning_rate"]
                ax.plot([p[m] for p in pts[j]], [p["precision"] for p in pts[j]],
                        style, color=f"C{i}", markersize=4,
                        label=f"{ranking}, lr {lr:g}")
            ax.plot(pts[-1][m], pts[-1]["precision"], "x", color=f"C{i}",
                    markersize=9, label=f"{ranking}, package 0.0")
            for (label, _), p in zip(RECIPES[:-1], pts):
                ax.annotate(label.split(" (")[0], (p[m], p["precision"]),
                            fontsize=6, xytext=(3, 3), textcoords="offset points",
                            color=f"C{i}")
        ax.set_xlabel(f"{m}@10")
        ax.set_ylabel("precision@10")
        ax.set_title(f"condition on {s.name}")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle(f"{name}: precision against context over training strength")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log(f"plot saved to {path}")


def bare_loop(network, X, codes, batch_size, epochs, learning_rate):
    """Forward + backward + Adam step on minibatches cut beforehand: the
    arithmetic the training loop cannot avoid."""
    rng = np.random.RandomState(0)
    batches = []
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for s in range(0, len(X) - 1, batch_size):
            idx = order[s:s + batch_size]
            if len(idx) > 1:
                batches.append((torch.from_numpy(X[idx]), torch.from_numpy(codes[idx])))
    network = copy.deepcopy(network).requires_grad_(True).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate,
                                 weight_decay=1e-6)
    tic = time.perf_counter()
    for xb, cb in batches:
        z = network.embed(xb)
        loss = sum(F.cross_entropy(head(z), cb[:, a])
                   for a, head in enumerate(network.heads)) / len(network.heads)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - tic


def cost(data, repeat=3):
    """Fit time against the bare arithmetic of its training, per recipe."""
    X = data.X_train.astype(np.float32)
    lines = ["## Fit cost: " + data.name, "",
             f"{len(X)} training items, torch threads={torch.get_num_threads()}; "
             f"best of {repeat} runs each. The fit includes validation and "
             "indexing the training items.", "",
             "| recipe | optimiser steps | fit (s) | bare arithmetic (s) "
             "| fit / bare |", "|---|---:|---:|---:|---:|"]
    for label, params in (RECIPES[-1], RECIPES[-2]):
        epochs, batch = params["epochs"], params.get("batch_size", 64)
        fit, bare = [], []
        for _ in range(repeat):
            ret = BackwardSearchRetriever(random_state=0, **params)
            tic = time.perf_counter()
            ret.fit(X, data.y_train)
            fit.append(time.perf_counter() - tic)
            codes = ret.encode_labels(data.y_train)
            bare.append(bare_loop(ret.model_, X, codes, batch, epochs,
                                  params["learning_rate"]))
        steps = epochs * (len(X) // batch + (len(X) % batch > 1))
        lines.append(f"| {label} | {steps:,} | {min(fit):.2f} | {min(bare):.2f} | "
                     f"{min(fit) / min(bare):.2f} |")
        log(lines[-1])
    return lines + [""]


def main():
    parser = doc_parser(__doc__)
    parser.add_argument("--data", nargs="+", default=["pacs", "digits_style"])
    parser.add_argument("--part", default="all", choices=["frontier", "cost", "all"])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = []
    for name in args.data:
        data = load(name)
        if args.part in ("cost", "all"):
            report += cost(data)
        if args.part in ("frontier", "all"):
            report += frontier(data, args.queries, out)
    text = "\n".join(report)
    print()
    print(text)
    (out / "training.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
