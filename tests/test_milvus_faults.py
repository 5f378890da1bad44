"""Fault drills on a Milvus server: the server killed (SIGKILL) in the middle
of an append and of a rebuild, then started again on the same data folder;
the server down at query time; restarted between two queries; two processes
appending at once. Nothing may be lost or duplicated, and every failure must
say what happened and what to do.

The drills run on a server of their own (this module's), not the session's,
since they kill it; each takes seconds (a restart about ten).
"""

import os
import subprocess
import sys
import time

import joblib
import numpy as np
import pytest
from sklearn.base import clone

from skbackward import LabelFilterRetriever
from skbackward.indexes import MilvusIndex

from .conftest import assert_same_neighbours, require
from .test_milvus import ROOT, n_rows

pymilvus = require("pymilvus")

pytestmark = [
    pytest.mark.milvus_server,
    pytest.mark.filterwarnings(
        "ignore::skbackward.exceptions.ConditionNotReachedWarning"),
]

TRAIN = dict(epochs=3, embedding_dim=16, random_state=0)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server for the drills, which kill it and start it again."""
    require("milvus")
    from .milvus_server import Server

    server = Server(tmp_path_factory.mktemp("milvus_drills")).start()
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def running(server):
    """The drills' server, started again if a drill left it down."""
    if not server.pids:
        server.start()
    return server


def fitted(server, name, X, y, **index):
    """A retriever on the server, its answers, and the exact index's."""
    ret = LabelFilterRetriever(vector_index=MilvusIndex(
        server.uri, name, timeout=5, **index), **TRAIN).fit(X, y)
    return ret, ret.kneighbors(X[:20], 6, condition="blue")


def same_as_before(ret, before, X):
    dist, ind = ret.kneighbors(X[:20], 6, condition="blue")
    np.testing.assert_array_equal(ind, before[1])
    np.testing.assert_allclose(dist, before[0], rtol=0, atol=1e-6)


# what the other processes run: load the retriever saved in ret.joblib and
# index ret.index(X repeated sys.argv[2] times, append=sys.argv[1] == "append")
WRITER = """
import sys, joblib, numpy as np, torch
torch.set_num_threads(1)
ret = joblib.load("ret.joblib")
X, y = np.load("X.npy"), np.load("y.npy", allow_pickle=True)
times = int(sys.argv[2])
print("writing", flush=True)
ret.index(np.repeat(X, times, axis=0), np.repeat(y, times, axis=0),
          append=sys.argv[1] == "append")
joblib.dump(ret, sys.argv[3])
print("written", flush=True)
"""


def writer(tmp_path, X, y, how, times, out="after.joblib"):
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.Popen(
        [sys.executable, "-u", "-c", WRITER, how, str(times), out], cwd=tmp_path,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_while_writing(server, proc):
    """SIGKILL the server once ``proc`` has inserted its first batches; the
    error ``proc`` ended with."""
    lines = iter(proc.stdout.readline, "")
    assert "writing\n" in lines, proc.stderr.read()
    for _ in range(3):  # a few batches in
        assert "items inserted into" in next(lines)
    server.kill()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("how", ["append", "rebuild"])
def test_server_killed_while_writing(running, two_attribute_items, tmp_path, how):
    X, y = two_attribute_items
    name = f"killed_{how}"
    ret, before = fitted(running, name, X, y, batch_size=25, verbose=1)
    joblib.dump(ret, tmp_path / "ret.joblib")
    error = kill_while_writing(running, writer(tmp_path, X, y, how, 40))
    # the writer's error names the URI, what became of the data, what to do
    doing = "appending to" if how == "append" else "building"
    assert error.startswith(f"ConnectionError: lost the connection to Milvus at "
                            f"uri='{running.uri}' while {doing} the collection "
                            f"'{name}'"), error
    assert ("keeps its index as it was before this append" if how == "append"
            else f"'{name}' still serves the build it served before") in error
    running.start()  # on the same data folder and port
    # the retriever saved before answers exactly as before, in this process
    # (its connection is from before the crash) and loaded anew
    for saved in (ret, joblib.load(tmp_path / "ret.joblib")):
        same_as_before(saved, before, X)
        np.testing.assert_array_equal(saved.index_labels_, y)
    # nothing duplicated or silently missing: the name serves the 300 items
    # (a rebuild's unfinished collection stays aside); an append's items that
    # reached the server are outside every index's parts, and make a later
    # append refuse, saying so
    client = pymilvus.MilvusClient(running.uri)
    held = n_rows(client, name)
    if how == "rebuild":
        assert held == 300
    else:
        assert 300 <= held < 300 + 300 * 40
    saved = joblib.load(tmp_path / "ret.joblib")
    if held > 300:
        with pytest.raises(ValueError, match=rf"holds {held} items, but this "
                                             "retriever's index 300.*an append "
                                             "was cut off.*rebuild the index"):
            saved.index(X[:10], y[:10], append=True)
    else:
        saved.index(X[:10], y[:10], append=True)
    # a later rebuild works and answers like the exact index
    saved.index(X, y)
    exact = clone(saved).set_params(vector_index=None).fit(X, y)
    assert_same_neighbours(exact.kneighbors(X[:20], 6, condition="blue"),
                           saved.kneighbors(X[:20], 6, condition="blue"),
                           atol=2e-6, max_differ=0.01)
    assert n_rows(client, name) == 300


def test_server_down_at_query_time(running, two_attribute_items, tmp_path):
    X, y = two_attribute_items
    ret, _ = fitted(running, "down", X, y)
    joblib.dump(ret, tmp_path / "ret.joblib")
    running.kill()
    # connected before, and loaded anew: a ConnectionError naming the URI,
    # within the timeout (5 s) of the one new connection it tries
    for saved in (ret, joblib.load(tmp_path / "ret.joblib")):
        start = time.monotonic()
        with pytest.raises(ConnectionError, match=rf"Milvus at uri='{running.uri}'"):
            saved.kneighbors(X[:5], 3, condition="blue")
        assert time.monotonic() - start < 5 * 2


def test_server_restarted_between_two_queries(running, two_attribute_items):
    X, y = two_attribute_items
    ret, before = fitted(running, "restarted", X, y)
    running.kill()
    running.start()
    same_as_before(ret, before, X)  # reconnects: no connection of before reused


def test_two_processes_appending_at_once(running, two_attribute_items, tmp_path):
    # two processes load the same saved retriever and append at the same
    # time through the server: each either succeeds or is refused (taking
    # its items back); never both succeed; no item is lost or duplicated
    X, y = two_attribute_items
    ret, before = fitted(running, "race", X, y, batch_size=50)
    joblib.dump(ret, tmp_path / "ret.joblib")
    procs = [writer(tmp_path, X, y, "append", 10, out=f"after{i}.joblib")
             for i in range(2)]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        outcomes.append("written" if proc.returncode == 0
                        else err.strip().splitlines()[-1])
    won = [i for i, o in enumerate(outcomes) if o == "written"]
    assert len(won) <= 1, outcomes
    for o in outcomes:  # refused before writing, or took its items back
        if o != "written":
            assert "another copy of this retriever" in o, o
            assert ("nothing was written" in o
                    or "this append's items are taken out again" in o), o
    client = pymilvus.MilvusClient(running.uri)
    assert n_rows(client, "race") == 300 + 3000 * len(won)
    same_as_before(ret, before, X)
    if won:
        winner = joblib.load(tmp_path / f"after{won[0]}.joblib")
        assert winner.n_index_samples_ == 3300
        # each appended item finds itself: none lost, none duplicated
        Xa = np.repeat(X, 10, axis=0)
        ind = winner.kneighbors(Xa[::97], 1, return_distance=False)
        np.testing.assert_array_equal(
            winner.vector_index_.embeddings()[ind[:, 0]],
            winner.vector_index_.embeddings()[300 + np.arange(0, 3000, 97)])
