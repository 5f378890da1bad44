"""Dask: dask-array queries block by block, and model selection on a cluster.

One small ``distributed.LocalCluster`` (2 worker processes, 1 thread each)
serves the whole module; data and networks are tiny so that the module runs
in a few tens of seconds.
"""

import logging
import socket
import subprocess
import sys
import time

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
    NearestNeighborRetriever,
)
from skbackward.metrics import make_average_precision_scorer

from .conftest import require

da = require("dask.array")
dask = require("dask")
distributed = require("distributed")

# tiny networks and short searches: many queries stop short of their
# condition, which is not what these tests are about
pytestmark = pytest.mark.filterwarnings(
    "ignore::skbackward.exceptions.ConditionNotReachedWarning"
)

TRAIN = dict(epochs=3, embedding_dim=16, random_state=0)
SEARCH = dict(TRAIN, max_steps=15)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True,
        dashboard_address=":0", silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster) as client:
        client.run(__import__, "skbackward")  # warm the workers (torch import)
        yield client


@pytest.fixture(scope="module")
def data(digits):
    X_train, X_test, y_train, y_test = digits
    return X_train[:400], y_train[:400], X_test[:90], y_test[:90]


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return BackwardSearchRetriever(**SEARCH).fit(X, y)


def _assert_close(actual, desired):
    np.testing.assert_allclose(actual, desired, rtol=1e-9, atol=1e-12)


def _queries(data, chunks=25):
    X_q = data[2]
    rng = np.random.RandomState(0)
    cond = rng.randint(10, size=X_q.shape[0])
    return X_q, da.from_array(X_q, chunks=(chunks, 16)), cond


# ---- dask arrays in transform and kneighbors ---------------------------------


def test_no_dask_import_without_dask_input():
    code = (
        "import sys, numpy as np\n"
        "from skbackward import BackwardSearchRetriever\n"
        "X = np.random.RandomState(0).normal(size=(40, 4)); y = np.arange(40) % 2\n"
        "r = BackwardSearchRetriever(epochs=1, embedding_dim=4, max_steps=2)\n"
        "r.fit(X, y)\n"
        "r.transform(X, condition=1); r.kneighbors(X, 3, condition=0)\n"
        "assert 'dask' not in sys.modules, 'dask imported'\n"
        "assert 'pymilvus' not in sys.modules, 'pymilvus imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_transform_equals_in_memory(client, fitted, data):
    X_q, X_d, cond = _queries(data)
    Z = fitted.transform(X_d)
    assert isinstance(Z, da.Array) and Z.chunks[0] == X_d.chunks[0]
    # float64 matmuls may differ in the last bit with the batch size
    _assert_close(Z.compute(), fitted.transform(X_q))
    # a per-query condition as numpy, as a dask array chunked differently,
    # and in a dict
    expected = fitted.transform(X_q, condition=cond)
    for condition in (cond, da.from_array(cond, chunks=40), {0: cond}):
        Z = fitted.transform(X_d, condition=condition)
        assert Z.shape == expected.shape and Z.dtype == expected.dtype
        _assert_close(Z.compute(), expected)


def test_kneighbors_equals_in_memory(client, fitted, data):
    X_q, X_d, cond = _queries(data)
    weight = np.linspace(0.5, 2, X_q.shape[0])
    exclude = np.arange(X_q.shape[0])
    kwargs = dict(condition={0: cond}, condition_weight={0: weight},
                  exclude=exclude)
    d0, i0 = fitted.kneighbors(X_q, 7, **kwargs)
    kwargs_dask = dict(condition={0: da.from_array(cond, chunks=30)},
                       condition_weight={0: weight},
                       exclude=da.from_array(exclude, chunks=50))
    dist, ind = fitted.kneighbors(X_d, 7, **kwargs_dask)
    assert isinstance(dist, da.Array) and isinstance(ind, da.Array)
    assert (dist.dtype, ind.dtype) == (d0.dtype, i0.dtype)
    dist, ind = dask.compute(dist, ind)
    np.testing.assert_array_equal(ind, i0)
    _assert_close(dist, d0)
    only = fitted.kneighbors(X_d, 7, return_distance=False, **kwargs_dask)
    np.testing.assert_array_equal(only.compute(), i0)
    # float32 queries, no condition
    d0, i0 = fitted.kneighbors(X_q.astype(np.float32), 4)
    dist, ind = dask.compute(*fitted.kneighbors(X_d.astype(np.float32), 4))
    np.testing.assert_array_equal(ind, i0)
    np.testing.assert_allclose(dist, d0, rtol=1e-5, atol=1e-6)


def test_blocks_run_on_the_workers_with_one_model_key(client, fitted, data):
    _, X_d, cond = _queries(data)
    dist, ind = fitted.kneighbors(X_d, 5, condition=cond)
    graph = dict(ind.__dask_graph__())
    name = type(fitted).__name__
    model_keys = [k for k in graph if str(k).startswith(name)]
    assert len(model_keys) == 1  # the model is one key, not one per block
    with distributed.get_task_stream(client) as stream:
        dask.compute(dist, ind)
    workers = {t["worker"] for t in stream.data}
    assert workers <= set(client.scheduler_info()["workers"]) and workers


def test_other_retrievers_on_dask(client, data):
    X, y, X_q, _ = data
    X_d = da.from_array(X_q, chunks=30)
    for est in (DistilledRetriever(BackwardSearchRetriever(**SEARCH),
                                   epochs=2, random_state=0),
                LabelFilterRetriever(**TRAIN), CentroidShiftRetriever(**TRAIN)):
        est.fit(X, y)
        i0 = est.kneighbors(X_q, 5, return_distance=False, condition=3)
        ind = est.kneighbors(X_d, 5, return_distance=False, condition=3)
        np.testing.assert_array_equal(ind.compute(), i0)


def test_dask_input_errors(fitted, data):
    X_q, X_d, cond = _queries(data)
    with pytest.raises(ValueError, match="expecting 64 features"):
        fitted.transform(X_d[:, :10])
    with pytest.raises(ValueError, match=r"condition for 0 .*expected shape \(90,\)"):
        fitted.kneighbors(X_d, 3, condition={0: cond[:-1]})
    with pytest.raises(ValueError, match=r"expected shape \(90,\)"):
        fitted.transform(X_d, condition=da.from_array(cond[:50]))
    with pytest.raises(ValueError, match="n_neighbors <= n_samples_fit"):
        fitted.kneighbors(X_d, 401)
    with pytest.raises(ValueError, match="exclude"):
        fitted.kneighbors(X_d, 3, exclude=np.arange(5))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        fitted.transform(X_d[X_d[:, 0] >= 0])
    with pytest.raises(ValueError, match="2-D dask array"):
        fitted.transform(X_d[:, 0])
    with pytest.raises(ValueError, match="unknown condition label"):
        fitted.transform(X_d, condition=np.full(90, 11)).compute()


# ---- the workers query a shared Milvus database ------------------------------


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """A Milvus Lite server (milvus-lite 3's ``milvus-lite server``) on a free
    port: the workers are other processes, and a Milvus Lite file serves one."""
    require("pymilvus")
    require("milvus_lite")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data_dir = tmp_path_factory.mktemp("milvus_server") / "items.db"
    server = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "the Milvus Lite server exited"
                assert time.monotonic() < deadline, "the Milvus Lite server is late"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)


def test_workers_query_shared_milvus(client, data, milvus_server):
    from skbackward.indexes import MilvusIndex

    X, y, X_q, _ = data
    exact = BackwardSearchRetriever(**SEARCH).fit(X, y)
    ret = clone(exact).set_params(
        vector_index=MilvusIndex(milvus_server, "shared")).fit(X, y)
    cond = np.random.RandomState(0).randint(10, size=X_q.shape[0])
    d0, i0 = ret.kneighbors(X_q, 6, condition=cond)
    X_d = da.from_array(X_q, chunks=30)
    with distributed.get_task_stream(client) as stream:
        dist, ind = dask.compute(*ret.kneighbors(X_d, 6, condition=cond))
    assert {t["worker"] for t in stream.data}  # ran on the workers
    np.testing.assert_array_equal(ind, i0)
    # Milvus's float32 similarities may differ in the last bit with the batch
    np.testing.assert_allclose(dist, d0, atol=1e-6)
    # and the database answers as the exact in-memory index does
    np.testing.assert_array_equal(ind, exact.kneighbors(X_q, 6, condition=cond)[1])


# ---- model selection through joblib's dask backend ---------------------------

RETRIEVERS = [
    (BackwardSearchRetriever(**SEARCH), {"alpha": [0.05, 2.0]}),
    (DistilledRetriever(BackwardSearchRetriever(**SEARCH), epochs=2,
                        random_state=0), {"teacher__alpha": [0.05, 2.0]}),
    (NearestNeighborRetriever(**TRAIN), {"embedding_dim": [8, 16]}),
    (LabelFilterRetriever(**TRAIN), {"epochs": [1, 3]}),
    (CentroidShiftRetriever(**TRAIN), {"embedding_dim": [8, 16]}),
]


@pytest.mark.parametrize("est, grid", RETRIEVERS,
                         ids=[type(e).__name__ for e, _ in RETRIEVERS])
def test_model_selection_on_cluster_equals_serial(client, data, est, grid):
    X, y = data[0][:240], data[1][:240]
    cv = KFold(2, shuffle=True, random_state=0)
    scorer = make_average_precision_scorer(k=5)
    serial = GridSearchCV(est, grid, scoring=scorer, cv=cv, n_jobs=1).fit(X, y)
    cv_serial = cross_val_score(est, X, y, scoring=scorer, cv=cv, n_jobs=1)
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config(backend="dask"):
            on_cluster = GridSearchCV(est, grid, scoring=scorer, cv=cv,
                                      n_jobs=-1).fit(X, y)
            cv_cluster = cross_val_score(est, X, y, scoring=scorer, cv=cv,
                                         n_jobs=-1)
    assert stream.data, "nothing ran on the cluster"
    assert on_cluster.best_params_ == serial.best_params_
    np.testing.assert_array_equal(on_cluster.cv_results_["mean_test_score"],
                                  serial.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(cv_cluster, cv_serial)
