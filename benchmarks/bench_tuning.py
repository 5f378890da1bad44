"""Tuning costs: refits saved by ``memory``, and torch threads on a busy machine.

``--part memory``: ``GridSearchCV`` over 5 alphas x 3 folds with ``memory``
(an empty cache at the start) against the same grid without it, and against
1 alpha x 3 folds (the floor: one network per fold, and one scoring). The
data: a class-balanced subsample of PACS (domain, label) when
``../shared/data/pacs_effnet_lite0.npz`` exists, else scikit-learn's digits.
The published training recipe (30 epochs, batch 64); ``refit=False``, so a
grid's time is its cross-validation alone.

``--part threads``: a fit, a batch search (``kneighbors`` of 1000
conditional queries) and a small ``GridSearchCV`` (2 alphas x 2 folds), with
torch's default threads (``n_threads=-1``: the machine's cores) and with the
default ``n_threads=None`` (one thread), on the machine as it is ("quiet")
and with ``--busy`` spinning processes beside it ("busy", default 2: a load
of 2 on a 2-core machine). The spinners are started and killed by this
script. The fits train ``--epochs`` epochs (default 3, a tenth of the
recipe: a thread's cost is per minibatch step).

Only ratios measured in one run are meaningful on a shared machine.

    python benchmarks/bench_tuning.py [--part memory|threads|all]
        [--data auto|pacs|digits] [--busy N] [--states quiet,busy] [--epochs E]
"""

import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold

import skbackward
from _data import load
from _measure import doc_parser, log, timed
from skbackward import BackwardSearchRetriever
from skbackward.exceptions import ConditionNotReachedWarning
from skbackward.metrics import make_average_precision_scorer


def parse_args():
    parser = doc_parser(__doc__)
    parser.add_argument("--part", default="all", choices=["memory", "threads", "all"])
    parser.add_argument("--data", default="auto", choices=["auto", "pacs", "digits"])
    parser.add_argument("--busy", type=int, default=2,
                        help="spinning processes for the busy measurements")
    parser.add_argument("--states", default="quiet,busy",
                        help="machine states of the thread measurements: quiet "
                        "(as it is), busy (with the spinners), or both")
    parser.add_argument("--epochs", type=int, default=3,
                        help="training epochs of the thread measurements")
    return parser.parse_args()


def subsample(data, n, seed=0):
    """``n`` training items (the split is stratified and shuffled) as
    ``X, y`` and 1000 query items of the test split."""
    n = min(n, data.X_train.shape[0])
    return (data.X_train[:n], data.y_train.iloc[:n].reset_index(drop=True),
            data.X_test[:1000], data.y_test.iloc[:1000].reset_index(drop=True))


def scorer(attribute):
    return make_average_precision_scorer(k=10, condition_on=attribute,
                                         exclude_own_class=True, n_queries=200,
                                         random_state=0)


def grid_search(estimator, alphas, X, y, attribute, cv):
    """``GridSearchCV`` over ``alphas``, folds stratified by ``attribute``."""
    folds = list(StratifiedKFold(cv, shuffle=True, random_state=0)
                 .split(X, y[attribute]))
    grid = GridSearchCV(estimator, {"alpha": alphas}, scoring=scorer(attribute),
                        cv=folds, refit=False)
    return grid.fit(X, y)


# ---- memory -------------------------------------------------------------------


def memory_part(data):
    X, y, _, _ = subsample(data, 3000)
    attribute = data.attributes[0]
    alphas = [0.1, 0.3, 0.5, 1.0, 3.0]
    log(f"memory: {data.name}, {X.shape[0]} items, attribute {attribute!r}, "
        f"alphas {alphas}, 3 folds, torch threads (n_threads=None): 1")
    # feature_weight=0: these time the network's training and its cache, as
    # the documented figures did; "auto" adds a second, smaller fit per fit
    base = BackwardSearchRetriever(random_state=0, feature_weight=0)
    rows = []
    _, floor = timed(lambda: grid_search(base, [0.5], X, y, attribute, 3))
    log(f"floor (1 alpha x 3 folds): {floor:.1f}s")
    rows.append(("1 alpha x 3 folds (floor)", 3, floor))
    grids = {}
    grids["plain"], plain = timed(lambda: grid_search(base, alphas, X, y, attribute, 3))
    log(f"5 alphas x 3 folds, no memory: {plain:.1f}s")
    rows.append(("5 alphas x 3 folds, no memory", 15, plain))
    with tempfile.TemporaryDirectory() as cache:
        cached_est = BackwardSearchRetriever(random_state=0, feature_weight=0,
                                             memory=cache)
        grids["memory"], cached = timed(
            lambda: grid_search(cached_est, alphas, X, y, attribute, 3))
    log(f"5 alphas x 3 folds, memory (empty cache at the start): {cached:.1f}s")
    rows.append(("5 alphas x 3 folds, memory", 3, cached))
    same = np.array_equal(grids["plain"].cv_results_["mean_test_score"],
                          grids["memory"].cv_results_["mean_test_score"])
    lines = [
        f"## memory: GridSearchCV on {data.name} ({X.shape[0]} items, "
        f"{X.shape[1]} features; published recipe; scorer AP@10 of 200 queries "
        f"conditioned on {attribute!r})",
        "",
        "| grid | networks trained | time (s) | / floor |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {n} | {sec:.1f} | {sec / floor:.2f}x |"
              for name, n, sec in rows]
    lines += ["", f"memory / no memory: {cached / plain:.2f}x; scores equal to "
              f"the grid without memory: {same}"]
    return lines


# ---- threads ----------------------------------------------------------------------


class Spinners:
    """``n`` processes spinning on the CPU while the block runs."""

    def __init__(self, n):
        self.n, self.procs = n, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(self.n)]
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


def thread_cells(X, y, X_q, y_q, attribute, n_threads, epochs):
    """Seconds of a fit, a batch search and a small grid with ``n_threads``."""
    # feature_weight=0: the documented figures time the training and the search
    params = dict(epochs=epochs, random_state=0, n_threads=n_threads, feature_weight=0)
    ret, fit = timed(lambda: BackwardSearchRetriever(**params).fit(X, y))
    classes = np.unique(y[attribute])
    wanted = np.random.RandomState(0).choice(classes, X_q.shape[0])
    search = min(timed(lambda: ret.kneighbors(X_q, condition={attribute: wanted}))[1]
                 for _ in range(2))
    _, grid = timed(lambda: grid_search(BackwardSearchRetriever(**params), [0.3, 1.0],
                                        X, y, attribute, 2))
    return {"fit": fit, "search": search, "grid": grid}


def threads_part(data, busy, epochs, states):
    X, y, X_q, y_q = subsample(data, 2100)
    attribute = data.attributes[0]
    default = torch.get_num_threads()
    settings = {f"torch default (n_threads=-1: {default})": -1,
                "n_threads=None (1)": None}
    log(f"threads: {data.name}, {X.shape[0]} items, {X_q.shape[0]} queries, "
        f"{epochs} epochs; torch's default here: {default} threads")
    cells, load = {}, {}
    machines = [m for m in ("quiet", f"busy ({busy} spinners)")
                if m.split()[0] in states]
    for machine in machines:
        spin = Spinners(busy if machine != "quiet" else 0)
        # the other processes' load when this part starts (1-minute average)
        load[machine] = os.getloadavg()[0]
        with spin:
            for name, n in settings.items():
                cells[machine, name] = thread_cells(X, y, X_q, y_q, attribute, n,
                                                    epochs)
                log(f"{machine}, {name}: " + ", ".join(
                    f"{k} {v:.2f}s" for k, v in cells[machine, name].items()))
    what = {"fit": f"fit ({X.shape[0]} items, {epochs} epochs)",
            "search": f"kneighbors, {X_q.shape[0]} conditional queries",
            "grid": "GridSearchCV 2 alphas x 2 folds"}
    names = list(settings)
    lines = [
        f"## threads: {data.name} (torch's default here: {default} threads; "
        f"{torch.__version__})",
        "",
        f"{os.cpu_count()} CPUs; 'load': the 1-minute load average when the "
        "machine's rows started (other users' processes; the spinners come on top).",
        "",
        "| machine | call | " + " | ".join(f"{n} (s)" for n in names)
        + " | default / one thread |",
        "|---|---|" + "---:|" * (len(names) + 1),
    ]
    for machine in machines:
        for key, label in what.items():
            secs = [cells[machine, n][key] for n in names]
            lines.append(f"| {machine}, load {load[machine]:.1f} before | {label} | "
                         + " | ".join(f"{s:.2f}" for s in secs)
                         + f" | {secs[0] / secs[1]:.2f}x |")
    return lines


def main():
    args = parse_args()
    data = load(args.data)
    log(f"skbackward {skbackward.__file__}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads by default")
    report = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConditionNotReachedWarning)
        if args.part in ("memory", "all"):
            report += memory_part(data) + [""]
        if args.part in ("threads", "all"):
            report += threads_part(data, args.busy, args.epochs,
                                   args.states.split(",")) + [""]
    print()
    print("\n".join(report))


if __name__ == "__main__":
    main()
