"""
=================================================================
On a cluster: tuning with Dask, the database in Milvus
=================================================================

When tuning, queries or the item database outgrow one machine, skbackward
hands the work to existing engines rather than its own:

- **Dask** runs scikit-learn's ``GridSearchCV`` on a cluster through joblib's
  dask backend, and a retriever's ``transform`` and ``kneighbors`` accept a
  dask array of queries: each block is answered on a worker, the fitted model
  shipped once per worker.
- **Milvus** holds the items (``vector_index=MilvusIndex(uri, collection)``):
  their unit embeddings and the heads' predicted classes, so a conditional
  ranking runs inside Milvus as a filtered search, and every worker queries
  the same shared database.

This example tunes ``alpha`` on a dask cluster, indexes the digits into
Milvus and answers a batch of conditional queries ("this digit, but an 8")
from a dask array. By default everything runs on this machine: a
``LocalCluster`` of two worker processes and a Milvus Lite server on a
temporary directory. To use real ones, pass a scheduler address and a Milvus
URI::

    python examples/plot_cluster.py --scheduler tcp://scheduler:8786 \\
        --milvus-uri http://milvus:19530

(or set ``SKBACKWARD_SCHEDULER`` and ``SKBACKWARD_MILVUS_URI``). Needs
``pip install "skbackward[dask,milvus,examples]"``.
"""

# %%
# Setup: a dask cluster and a Milvus server
# ------------------------------------------
# Milvus Lite keeps a database in a local file and serves the one process that
# opened it; worker processes need a server. The default here starts Milvus
# Lite's own server (``milvus-lite server``, milvus-lite 3) on a temporary
# directory, which speaks the same protocol as a Milvus standalone or cluster.
import argparse
import atexit
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import matplotlib

matplotlib.use("Agg")
import dask
import dask.array as da
import joblib
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from skbackward import BackwardSearchRetriever
from skbackward.indexes import MilvusIndex
from skbackward.metrics import make_average_precision_scorer, precision_at_k

parser = argparse.ArgumentParser(
    description="On a cluster: tuning with Dask, the database in Milvus"
)
parser.add_argument("--scheduler", default=os.environ.get("SKBACKWARD_SCHEDULER"),
                    help="dask scheduler address (default: start a LocalCluster)")
parser.add_argument("--milvus-uri", default=os.environ.get("SKBACKWARD_MILVUS_URI"),
                    help="Milvus server URI (default: serve Milvus Lite from a "
                         "temporary directory)")
parser.add_argument("--out", default="cluster.png", help="where to save the figure")
args, _ = parser.parse_known_args()  # tolerate extra args (e.g. sphinx-gallery)


def stop(process):
    if process.poll() is None:
        process.terminate()
        process.wait()


def serve_milvus_lite(directory):
    """Start a Milvus Lite server on a free local port; ``(uri, process)``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir",
         os.path.join(directory, "items.db"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    atexit.register(stop, process)  # even when the example fails
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"http://127.0.0.1:{port}", process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the Milvus Lite server did not start (milvus-lite >= 3 "
                       "has the `milvus-lite server` command)")


if globals().get("__spec__") is None:
    # Run as a script, this file would be run again by each worker process
    # the LocalCluster spawns (multiprocessing re-imports the main script);
    # naming it "__main__" tells multiprocessing not to (as under
    # sphinx-gallery or ``python -c``).
    from importlib.machinery import ModuleSpec

    __spec__ = ModuleSpec("__main__", None)

tic = time.perf_counter()
workdir = tempfile.mkdtemp(prefix="skbackward-cluster-")
atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # runs last
server = None
if args.milvus_uri:
    milvus_uri = args.milvus_uri
else:
    milvus_uri, server = serve_milvus_lite(workdir)
if args.scheduler:
    cluster, client = None, Client(args.scheduler)
else:
    # two worker processes of one thread each; torch follows the one thread
    cluster = LocalCluster(n_workers=2, threads_per_worker=1,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
print(f"dask: {len(client.scheduler_info()['workers'])} workers at "
      f"{client.scheduler.address}; Milvus at {milvus_uri}")

# %%
# Tune ``alpha`` on the cluster
# -----------------------------
# Inside ``joblib.parallel_config(backend="dask")`` scikit-learn's own
# ``GridSearchCV`` sends every (candidate, fold) fit to the workers; the
# result is the same as with ``n_jobs=1`` (the tests check it). The training
# fold is the database and the test fold gives 200 conditional queries; the
# score is their mean average precision@10. (AP alone rewards small ``alpha``,
# which reaches the condition but forgets the query: see the example on
# tuning ``alpha`` for a score that also asks to keep the query's context.)
X, y = load_digits(return_X_y=True)
X_db, X_q, y_db, y_q = train_test_split(X, y, test_size=0.3, stratify=y,
                                        random_state=0)
alphas = [0.03, 0.1, 0.3, 1.0]
search = GridSearchCV(
    BackwardSearchRetriever(embedding_dim=64, epochs=5, random_state=0),
    {"alpha": alphas}, scoring=make_average_precision_scorer(k=10, n_queries=200), cv=2,
    n_jobs=-1,
)
with joblib.parallel_config(backend="dask"):
    search.fit(X_db, y_db)
print(f"best alpha {search.best_params_['alpha']:g}, "
      f"mean AP@10 {search.best_score_:.3f}")

# %%
# A batch of conditional queries from a dask array
# ------------------------------------------------
# The queries and their conditions ("this digit, but another one") are dask
# arrays of 100 rows a block. ``kneighbors`` returns dask arrays too;
# computing them runs every block on a worker, the fitted retriever shipped
# once per worker. First with the exact in-memory index the retriever was
# fitted with: each worker receives a copy of it.
retriever = search.best_estimator_
rng = np.random.RandomState(0)
condition = (y_q + 1 + rng.randint(9, size=y_q.shape[0])) % 10  # never the own digit
Xq = da.from_array(X_q, chunks=(100, -1))
cond = da.from_array(condition, chunks=100)
exact_ind = retriever.kneighbors(Xq, condition=cond, return_distance=False).compute()

# %%
# Index the database into Milvus
# ------------------------------
# ``set_params(vector_index=...)`` then ``index`` writes the items into the
# collection: their unit embeddings, the predicted class of each item and its
# label, in batches. ``overwrite=True`` lets the example replace its own
# collection from an earlier run; without it an existing collection is an
# error, never silently dropped.
retriever.set_params(vector_index=MilvusIndex(milvus_uri, "digits", overwrite=True))
retriever.index(X_db, y_db)
print(f"{retriever.n_index_samples_} items in the Milvus collection 'digits'")

# %%
# The same queries, answered from Milvus
# --------------------------------------
# Now the retriever carries only the connection settings: every worker
# searches by Backward Search and asks the shared Milvus database, filtered
# by the predicted class of the condition, for the nearest items.
dist, ind = retriever.kneighbors(Xq, condition=cond)
dist, ind = dask.compute(dist, ind)
precision = precision_at_k(condition, y_db[ind], k=10)
agree = (ind == exact_ind).mean()
print(f"{X_q.shape[0]} queries in {len(Xq.chunks[0])} blocks: precision@10 "
      f"{precision:.3f}; {100 * agree:.1f}% of the neighbours equal the exact "
      "in-memory index's")

# %%
# The figure
# ----------
# Left: the cross-validated score of each ``alpha``. Right: a few queries and
# their first neighbours from Milvus, each row conditioned on another digit.
fig = plt.figure(figsize=(10, 4.2))
ax = fig.add_axes([0.06, 0.14, 0.3, 0.72])
mean = search.cv_results_["mean_test_score"]
std = search.cv_results_["std_test_score"]
ax.errorbar(alphas, mean, yerr=std, fmt="o-", capsize=3)
ax.set_xscale("log")
ax.set_xlabel("alpha")
ax.set_ylabel("mean AP@10 (2-fold CV)")
ax.set_title("GridSearchCV on the dask cluster", fontsize=10)
rows, shown = 4, 6
for r in range(rows):
    for c in range(shown + 1):
        sub = fig.add_axes([0.42 + c * 0.08, 0.72 - r * 0.2, 0.075, 0.18])
        image = X_q[r] if c == 0 else X_db[ind[r, c - 1]]
        sub.imshow(image.reshape(8, 8), cmap="gray_r")
        sub.set_xticks([])
        sub.set_yticks([])
        if c == 0:
            sub.set_ylabel(f"but {condition[r]}", fontsize=9)
        if r == 0:
            sub.set_title("query" if c == 0 else f"#{c}", fontsize=9)
fig.suptitle("Queries answered on the dask workers from the Milvus database",
             fontsize=11, x=0.7, y=0.99)
fig.savefig(args.out, dpi=100)
print(f"wrote {args.out}")

# %%
# Clean up
# --------
client.close()
if cluster is not None:
    cluster.close()
if server is not None:
    stop(server)
shutil.rmtree(workdir, ignore_errors=True)
print(f"done in {time.perf_counter() - tic:.0f} s")
