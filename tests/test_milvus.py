"""MilvusIndex against Milvus Lite in a temporary directory and against a
Milvus server (the session's ``milvus_server``): every test that takes
``uri`` runs on both.

The same retriever answers the same queries with the exact index and with
Milvus (FLAT: exact search inside Milvus), so the results must agree, ties
aside (distances are compared to float32 precision).
"""

import os
import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.base import clone

from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
)
from skbackward.indexes import MilvusIndex
from skbackward.indexes._milvus_connect import connect
from skbackward.indexes._milvus_store import level_filters
from skbackward.indexes._topk import unit_float32

from .conftest import assert_same_neighbours, require

# the checkout's root: a new Python process imports this skbackward
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pymilvus = require("pymilvus")
require("milvus_lite")  # the tests' databases are Milvus Lite files and servers

# tiny networks and short searches: many queries stop short of their
# condition, which is not what these tests are about
pytestmark = pytest.mark.filterwarnings(
    "ignore::skbackward.exceptions.ConditionNotReachedWarning"
)

TRAIN = dict(epochs=3, embedding_dim=16, random_state=0)


@pytest.fixture(scope="module", params=["lite", "server"])
def uri(request, tmp_path_factory):
    """One Milvus Lite file for the module (each file starts a server thread),
    or the session's Milvus server; tests use their own collections."""
    if request.param == "server":
        return request.getfixturevalue("milvus_server").uri
    return str(tmp_path_factory.mktemp("milvus") / "items.db")


@pytest.fixture
def process_uri(uri, tmp_path):
    """The URI for tests that run other processes in ``tmp_path``: a Lite
    file of their own there (a Lite file serves one process), or the server."""
    return "items.db" if uri.endswith(".db") else uri


# for the tests of the package's own logic, the same on any Milvus (label
# storage, strategies, progress, the append race by hand): Lite only, as a
# build on the server costs seconds (a create and a flush)
LITE_ONLY = pytest.mark.parametrize("uri", ["lite"], indirect=True)


def client_of(uri, tmp_path):
    """A client of ``uri`` as ``process_uri`` gives it, from this process."""
    return pymilvus.MilvusClient(str(tmp_path / uri) if uri.endswith(".db") else uri)


@pytest.fixture(scope="module")
def pair(two_attribute_items, uri):
    """The same fitted LabelFilterRetriever with the exact index and with Milvus."""
    X, y = two_attribute_items
    exact = LabelFilterRetriever(**TRAIN).fit(X, y)
    milvus = clone(exact).set_params(
        vector_index=MilvusIndex(uri, "pair", batch_size=128)).fit(X, y)
    return exact, milvus


def _field_types(client, collection):
    fields = client.describe_collection(collection)["fields"]
    return {f["name"]: f["type"] for f in fields}


def assert_same_results(a, b):
    assert_same_neighbours(a, b, atol=2e-6, max_differ=0.01)


def n_rows(client, name):
    """Entities in the collection (or alias) ``name``."""
    return client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]


def python(code, cwd, *args, **kwargs):
    """``code`` in a new Python process, in ``cwd``, importing this checkout
    (``args``: its ``sys.argv[1:]``)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.Popen([sys.executable, "-u", "-c", code, *args], cwd=cwd,
                            env=env, **kwargs)


# the top of the scripts run in new processes: two_attribute_items from
# X.npy and y.npy, and a retriever as TRAIN makes it on the URI sys.argv[1]
SCRIPT = """
import sys, joblib, numpy as np, torch
torch.set_num_threads(1)
from skbackward import LabelFilterRetriever
from skbackward.indexes import MilvusIndex
X, y = np.load("X.npy"), np.load("y.npy", allow_pickle=True)
def retriever(**index):
    return LabelFilterRetriever(epochs=3, embedding_dim=16, random_state=0,
                                vector_index=MilvusIndex(sys.argv[1], **index))
"""


def save_items(tmp_path, X, y):
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)


# ---- agreement with the exact index -----------------------------------------


def test_collection_layout(pair, uri):
    _, ret = pair
    index = ret.vector_index_
    assert index.n_items_ == ret.n_index_samples_ == 300
    client = pymilvus.MilvusClient(uri)
    # "pair" is an alias of the build's own collection, which records the build
    build = client.describe_alias("pair")["collection_name"]
    assert build.startswith("pair__") and len(build) == len("pair__") + 16
    properties = client.describe_collection(build)["properties"]
    assert properties == {"skbackward.build": build[len("pair__"):]}
    fields = _field_types(client, "pair")
    D = pymilvus.DataType
    assert fields == {"id": D.INT64, "vector": D.FLOAT_VECTOR, "norm": D.FLOAT,
                      "pred_0": D.INT64, "pred_1": D.INT64,
                      "label_0": D.VARCHAR, "label_1": D.VARCHAR}
    rows = client.query("pair", filter="", output_fields=["*"], limit=300)
    assert len(rows) == 300
    assert len({r["id"] >> 32 for r in rows}) == 1  # one part: the build's
    rows = sorted(rows, key=lambda r: r["id"])[:3]
    predicted = index.predicted(0, 3)
    for i, row in enumerate(rows):
        assert row["id"] & 0xFFFFFFFF == i  # the item number
        assert [row["pred_0"], row["pred_1"]] == predicted[i].tolist()
        labels = [str(v) for v in ret.index_labels_[i]]
        assert [row["label_0"], row["label_1"]] == labels
        np.testing.assert_allclose(np.linalg.norm(row["vector"]), 1, rtol=1e-5)


@pytest.mark.parametrize("condition", [
    None, 2, "blue", {0: 1, 1: "red"}, {1: ["red", "blue", None] * 20},
])
def test_agrees_with_exact_index(pair, two_attribute_items, condition):
    exact, milvus = pair
    X_q = two_attribute_items[0][:60] + 0.05
    assert_same_results(exact.kneighbors(X_q, 12, condition=condition),
                        milvus.kneighbors(X_q, 12, condition=condition))


def test_distances_are_full_float32(pair, two_attribute_items):
    # the similarities Milvus computes, not rounded (to 4 decimals, say):
    # the exact index's float32 distances up to an ulp or two
    exact, milvus = pair
    X_q = two_attribute_items[0][:30] + 0.05
    d_exact, i_exact = exact.kneighbors(X_q, 5)
    d_milvus, i_milvus = milvus.kneighbors(X_q, 5)
    same = i_exact == i_milvus
    assert same.mean() > 0.9
    np.testing.assert_allclose(d_milvus[same], d_exact[same], rtol=0, atol=3e-7)
    assert (np.round(d_milvus, 4) != d_milvus).mean() > 0.9


def test_levels_fill_up_when_few_items_match(pair, two_attribute_items):
    # more neighbours than items predicted to match both attributes: the next
    # levels (one attribute matched, then none) fill up, inside Milvus
    exact, milvus = pair
    X_q = two_attribute_items[0][:20]
    predicted = milvus.vector_index_.predicted()
    n_match = int(((predicted[:, 0] == 1) & (predicted[:, 1] == 3)).sum())
    k = n_match + 40
    ind = milvus.kneighbors(X_q, k, condition={0: 1, 1: "red"},
                            return_distance=False)
    level = (predicted[ind, 0] == 1).astype(int) + (predicted[ind, 1] == 3)
    assert (level[:, :n_match] == 2).all()
    assert (np.diff(level, axis=1) <= 0).all()  # best level first
    assert_same_results(exact.kneighbors(X_q, k, condition={0: 1, 1: "red"}),
                        milvus.kneighbors(X_q, k, condition={0: 1, 1: "red"}))


def test_exclude_and_X_none(pair, two_attribute_items):
    exact, milvus = pair
    X_q = two_attribute_items[0][:30]
    exclude = np.r_[np.arange(15), -np.ones(15, int)]
    assert_same_results(exact.kneighbors(X_q, 5, exclude=exclude, condition=2),
                        milvus.kneighbors(X_q, 5, exclude=exclude, condition=2))
    assert not (milvus.kneighbors(X_q, 5, exclude=exclude,
                                  return_distance=False)[:15]
                == np.arange(15)[:, None]).any()
    # X=None: the indexed items, each left out, even when k = all the others
    assert_same_results(exact.kneighbors(n_neighbors=6),
                        milvus.kneighbors(n_neighbors=6))
    # k = all the other items: the excluded one is still left out
    ind = milvus.kneighbors(X_q[:8], 299, exclude=np.arange(8),
                            return_distance=False)
    assert not (ind == np.arange(8)[:, None]).any()
    assert all(len(set(row)) == 299 for row in ind)


@LITE_ONLY
def test_search_strategies_with_milvus(two_attribute_items, uri):
    X, y = two_attribute_items
    X_q = X[:25]
    for name, est in [
        ("bs_filter", BackwardSearchRetriever(max_steps=10, **TRAIN)),
        ("bs_plain", BackwardSearchRetriever(max_steps=10, predicted_first=False,
                                             **TRAIN)),
        ("centroid", CentroidShiftRetriever(**TRAIN)),
        ("student", DistilledRetriever(BackwardSearchRetriever(max_steps=10, **TRAIN),
                                       epochs=2, random_state=0)),
    ]:
        exact = est.fit(X, y)
        milvus = clone(est).set_params(
            vector_index=MilvusIndex(uri, name)).fit(X, y)
        assert_same_results(exact.kneighbors(X_q, 8, condition="green"),
                            milvus.kneighbors(X_q, 8, condition="green"))


@pytest.mark.parametrize("index_type, build, search", [
    # a Milvus 2.3 server has no defaults for these settings; Lite has
    ("IVF_FLAT", {"nlist": 16}, {"nprobe": 16}),
    ("HNSW", {"M": 8, "efConstruction": 64}, {"ef": 64}),
    ("AUTOINDEX", None, None),
])
def test_approximate_index_types(two_attribute_items, uri, index_type, build,
                                 search):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(vector_index=MilvusIndex(
        uri, index_type.lower(), index_type=index_type, index_params=build,
        search_params=search), **TRAIN).fit(X, y)
    client = pymilvus.MilvusClient(uri)
    described = client.describe_index(index_type.lower(), "vector")
    assert described["index_type"] == index_type
    dist, ind = ret.kneighbors(X[:20], 5, condition=1)
    # approximate: valid, distinct items, each level's distances ascending
    assert ((ind >= 0) & (ind < 300)).all()
    assert all(len(set(row)) == 5 for row in ind)
    match = ret.vector_index_.predicted()[ind, 0] == 1
    assert (np.diff(match.astype(int), axis=1) <= 0).all()
    assert (np.diff(np.where(match, dist, dist + 4), axis=1) >= -1e-6).all()


def test_level_filters():
    wish = np.array([[2, -1]])
    assert level_filters(wish) == ["pred_0 == 2", "pred_0 != 2"]
    assert level_filters(np.array([[-1, -1]])) == [""]
    both = level_filters(np.array([[2, 5]]))
    assert both[0] == "pred_0 == 2 and pred_1 == 5"
    assert both[-1] == "pred_0 != 2 and pred_1 != 5"
    assert len(both) == 3
    # tier 0 before tier 1: (1, 1), (1, 0), (0, 1), (0, 0)
    tiers = level_filters(np.array([[2, -1], [-1, 3]]))
    assert tiers == ["pred_0 == 2 and pred_1 == 3", "pred_0 == 2 and pred_1 != 3",
                     "pred_0 != 2 and pred_1 == 3", "pred_0 != 2 and pred_1 != 3"]


# ---- persistence, append, labels ---------------------------------------------


def test_pickle_keeps_connection_settings_only(pair, two_attribute_items):
    exact, milvus = pair
    blob = pickle.dumps(milvus.vector_index_)
    assert len(blob) < 2000  # no vectors: settings and a few counters
    assert len(pickle.dumps(exact.vector_index_)) > 300 * 16 * 4
    loaded = pickle.loads(pickle.dumps(milvus))
    assert "_connection" not in loaded.vector_index_.__dict__
    X_q = two_attribute_items[0][:10]
    assert_same_results(milvus.kneighbors(X_q, 4, condition=0),
                        loaded.kneighbors(X_q, 4, condition=0))
    np.testing.assert_array_equal(loaded.index_labels_, milvus.index_labels_)
    assert loaded.index_labels_.dtype == milvus.index_labels_.dtype


@LITE_ONLY
def test_labels_round_trip(two_attribute_items, uri):
    X, _ = two_attribute_items
    ret = LabelFilterRetriever(vector_index=MilvusIndex(uri, "ints"), **TRAIN)
    y_int = (np.arange(300) % 3)
    ret.fit(X, y_int)
    client = pymilvus.MilvusClient(uri)
    fields = _field_types(client, "ints")
    assert fields["label_0"] == pymilvus.DataType.INT64
    loaded = pickle.loads(pickle.dumps(ret))
    np.testing.assert_array_equal(loaded.index_labels_, y_int)
    # an unlabelled database stores no label field
    ret.set_params(vector_index=MilvusIndex(uri, "ints", overwrite=True))
    ret.index(X[:50])
    assert pickle.loads(pickle.dumps(ret)).index_labels_ is None


def test_append_keeps_numbers_and_old_index(two_attribute_items, uri):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(vector_index=MilvusIndex(uri, "append"), **TRAIN)
    ret.fit(X[:200], y[:200])
    old = ret.vector_index_
    ret.index(X[200:], y[200:], append=True)
    assert ret.n_index_samples_ == 300 and old.n_items_ == 200
    exact = LabelFilterRetriever(**TRAIN).fit(X[:200], y[:200])
    exact.index(X, y)
    assert_same_results(exact.kneighbors(X[:20], 6, condition=2),
                        ret.kneighbors(X[:20], 6, condition=2))
    np.testing.assert_array_equal(ret.index_labels_, y)
    # the earlier fitted index still searches only its own 200 items
    _, ind = old.search(ret.transform(X[:20]), 50)
    assert ind.max() < 200


@LITE_ONLY
def test_appended_longer_string_labels_survive_pickling(two_attribute_items, uri):
    X, _ = two_attribute_items
    index = MilvusIndex(uri, "words", overwrite=True)
    ret = LabelFilterRetriever(vector_index=index, **TRAIN)
    y = np.array(["cat", "mouse"] * 20)
    ret.fit(X[:40], y)
    ret.index(X[:20], np.array(["cat"] * 20))  # a <U3 array
    ret.index(X[20:40], y[20:], append=True)  # then <U5 labels
    y = np.r_[["cat"] * 20, y[20:]]
    loaded = pickle.loads(pickle.dumps(ret))
    np.testing.assert_array_equal(loaded.index_labels_, y)


@LITE_ONLY
def test_verbose_prints_progress(two_attribute_items, uri, capsys):
    X, y = two_attribute_items
    LabelFilterRetriever(vector_index=MilvusIndex(uri, "verbose", batch_size=100,
                                                  verbose=1), **TRAIN).fit(X, y)
    out = capsys.readouterr().out
    assert "100/300 items inserted into 'verbose'" in out
    assert "300/300" in out


# ---- safety and errors ----------------------------------------------------------


def test_overwrite_is_explicit(two_attribute_items, uri):
    X, y = two_attribute_items
    first = LabelFilterRetriever(vector_index=MilvusIndex(uri, "mine"), **TRAIN)
    first.fit(X, y)
    before = first.kneighbors(X[:5], 3)
    second = LabelFilterRetriever(vector_index=MilvusIndex(uri, "mine"), **TRAIN)
    with pytest.raises(ValueError,
                       match="collection 'mine' already exists.*overwrite=True"):
        second.fit(X[:100], y[:100])
    # the refused build left the data alone
    assert_same_results(before, first.kneighbors(X[:5], 3))
    second.set_params(vector_index__overwrite=True).fit(X[:100], y[:100])
    assert second.n_index_samples_ == 100


def test_unreachable_server_names_the_uri(two_attribute_items):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(
        vector_index=MilvusIndex("http://127.0.0.1:1", "x", timeout=2), **TRAIN)
    with pytest.raises(ConnectionError, match=r"http://127\.0\.0\.1:1"):
        ret.fit(X, y)


@pytest.mark.parametrize("params, match", [
    (dict(uri="items.sqlite"), "uri must be a Milvus Lite file path ending in '.db'"),
    (dict(uri=3), "'uri' parameter of MilvusIndex must be"),
    (dict(collection=""), "collection must be a Milvus collection name"),
    (dict(collection="my-items"), "collection must be a Milvus collection name"),
    (dict(collection=5), "'collection' parameter of MilvusIndex must be"),
    (dict(batch_size=0), "'batch_size' parameter of MilvusIndex must be an int"),
    (dict(index_params=[1]), "'index_params' parameter of MilvusIndex must be"),
    (dict(overwrite="yes"), "'overwrite' parameter of MilvusIndex must be"),
    (dict(timeout=-1), "'timeout' parameter of MilvusIndex must be"),
    (dict(token=1), "'token' parameter of MilvusIndex must be"),
    # settings Milvus would ignore, or refuse only at query time (issue 17)
    (dict(index_type="NOPE"), "'index_type' parameter of MilvusIndex must be a str "
                              "among"),
    (dict(index_type="IVF_FLAT", index_params={"nlist": -1}),
     r"index_params\['nlist'\] must be an integer in \[1, 65536\] for "
     "index_type='IVF_FLAT'; got -1"),
    (dict(index_type="HNSW", index_params={"M": 0}),
     r"index_params\['M'\] must be an integer in \[2, 2048\]"),
    (dict(index_type="HNSW", index_params={"m": 16}),
     r"index_params has 'm', which index_type='HNSW' does not read; its "
     r"settings: \['M', 'efConstruction'\]"),
    (dict(index_type="IVF_FLAT", search_params={"nprobe": "abc"}),
     r"search_params\['nprobe'\] must be an integer in \[1, 65536\].*got 'abc'"),
    (dict(index_type="IVF_FLAT", search_params={"nprobe": 0}),
     r"search_params\['nprobe'\] must be an integer"),
    (dict(index_type="IVF_FLAT", search_params={"nprobe": True}),
     r"search_params\['nprobe'\] must be an integer"),
    (dict(search_params={"nprobe": 8}),
     r"search_params has 'nprobe', which index_type='FLAT' does not read; its "
     r"settings: none"),
    (dict(index_type="IVF_PQ", index_params={"m": 5}),
     r"index_params\['m'\] must divide the embedding dimension 16"),
])
def test_bad_parameters(two_attribute_items, uri, params, match):
    X, y = two_attribute_items
    kwargs = dict(uri=uri, collection="bad") | params
    ret = LabelFilterRetriever(vector_index=MilvusIndex(**kwargs), **TRAIN)
    with pytest.raises(ValueError, match=match):
        ret.fit(X, y)
    assert not _others(pymilvus.MilvusClient(uri), "bad")


def test_search_params_set_after_fit_are_checked_by_the_search(pair):
    _, ret = pair
    ret = pickle.loads(pickle.dumps(ret))
    ret.vector_index_.set_params(search_params={"ef": 0})
    with pytest.raises(ValueError, match=r"search_params has 'ef', which "
                                         "index_type='FLAT' does not read"):
        ret.kneighbors(np.ones((1, 7)), 3)


def test_uri_expands_the_home_directory(two_attribute_items, tmp_path, monkeypatch):
    X, y = two_attribute_items
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    ret = LabelFilterRetriever(vector_index=MilvusIndex("~/home.db", "home"), **TRAIN)
    assert ret.fit(X, y).vector_index_.uri_ == str(tmp_path / "home.db")
    assert not (tmp_path / "~").exists()


def test_unfitted_index_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MilvusIndex("a.db", "c").search(np.ones((1, 3)), 1)


def test_file_held_by_another_process_gets_a_clear_error(tmp_path):
    # another process serves the Milvus Lite file; this one cannot open it
    path = str(tmp_path / "held.db")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pymilvus import MilvusClient; "
         f"MilvusClient({path!r}); print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(ConnectionError, match="serves one process"):
            connect(path)
    finally:
        holder.communicate("")


# ---- persistence across processes (issue 17) --------------------------------------


SAVE = SCRIPT + """
ret = retriever(collection="saved").fit(X[:200], y[:200])
ret.index(X[:250], y[:250])
dist, ind = ret.kneighbors(X[:20], 6, condition="blue")
joblib.dump(ret, "ret.joblib")
np.savez("expected.npz", dist=dist, ind=ind)
"""


def test_saved_retriever_works_in_a_new_process(two_attribute_items, tmp_path,
                                               process_uri):
    # another process builds and saves; this one, which never opened the file,
    # loads, queries and appends (Milvus answers "released" until load())
    X, y = two_attribute_items
    save_items(tmp_path, X, y)
    saver = python(SAVE, tmp_path, process_uri, stderr=subprocess.PIPE, text=True)
    assert saver.wait(timeout=300) == 0, saver.stderr.read()
    ret = joblib.load(tmp_path / "ret.joblib")
    expected = np.load(tmp_path / "expected.npz")
    dist, ind = ret.kneighbors(X[:20], 6, condition="blue")
    np.testing.assert_array_equal(ind, expected["ind"])
    np.testing.assert_allclose(dist, expected["dist"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ret.index_labels_, y[:250])
    ret.index(X[250:], y[250:], append=True)
    assert ret.n_index_samples_ == 300
    np.testing.assert_array_equal(ret.index_labels_, y)
    exact = pickle.loads(pickle.dumps(ret)).set_params(vector_index=None).index(X, y)
    assert_same_results(exact.kneighbors(X[:20], 6, condition="blue"),
                        ret.kneighbors(X[:20], 6, condition="blue"))
    assert_same_results(exact.kneighbors(n_neighbors=4), ret.kneighbors(n_neighbors=4))


# ---- appends from copies (issue 17) ------------------------------------------------


def test_appends_from_two_copies_never_overwrite_each_other(two_attribute_items,
                                                            uri):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(vector_index=MilvusIndex(uri, "copies"), **TRAIN)
    blob = pickle.dumps(ret.fit(X[:200], y[:200]))
    first, second = pickle.loads(blob), pickle.loads(blob)
    first.index(X[200:250], y[200:250], append=True)
    with pytest.raises(ValueError, match=r"collection 'copies' .*holds 250 items, "
                                         r"but this retriever's index 200.*another "
                                         r"copy"):
        second.index(X[250:], y[250:], append=True)
    client = pymilvus.MilvusClient(uri)
    assert n_rows(client, "copies") == 250
    # the first copy still finds each of its items, and all of its labels
    ind = first.kneighbors(X[200:250], 1, return_distance=False)
    np.testing.assert_array_equal(ind[:, 0], np.arange(200, 250))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(first)).index_labels_,
                                  y[:250])
    # the refused copy answers from its 200 items as before
    assert second.n_index_samples_ == 200
    assert second.kneighbors(X[:20], 10, return_distance=False).max() < 200


@LITE_ONLY
def test_concurrent_appends_never_lose_an_item(two_attribute_items, uri):
    # copies that both checked the collection before either wrote (the hooks
    # of index(X, append=True), interleaved by hand as threads or processes
    # might): whatever the order, each item is kept or refused, none is lost
    X, y = two_attribute_items
    ret = LabelFilterRetriever(vector_index=MilvusIndex(uri, "race"), **TRAIN)
    ret.fit(X[:200], y[:200])
    client = pymilvus.MilvusClient(uri)

    def copies(index):
        """Two copies of ``index``, both checked, ready to append 40 items."""
        blob = pickle.dumps(index)
        return [pickle.loads(blob)._grown(40) for _ in range(2)]

    def write(rows, *indexes):
        unit, norms = unit_float32(ret.transform(X[rows]))
        for index in indexes:
            index._check_labels(y[rows])
            index._add(unit, norms, ret.vector_index_.predicted(0, 40), y[rows])

    def refused(index):
        with pytest.raises(ValueError, match="another copy.*taken out again"):
            index._end_build()

    def finds_its_items(index, rows):
        _, ind = index.search(unit_float32(ret.transform(X[rows]))[0], 1)
        np.testing.assert_array_equal(ind[:, 0], np.arange(index.n_items_ - 40,
                                                           index.n_items_))

    a, b = copies(ret.vector_index_)  # both check before either takes back
    write(slice(200, 240), a, b)
    refused(a)
    refused(b)
    a._abort_build()  # as the retriever does when _end_build raises
    b._abort_build()
    assert n_rows(client, "race") == 200
    a, b = copies(ret.vector_index_)  # one takes back before the other checks
    write(slice(200, 240), a, b)
    refused(a)
    a._abort_build()
    b._end_build()
    assert n_rows(client, "race") == 240
    finds_its_items(b, slice(200, 240))
    c, d = copies(b)  # one finishes before the other writes
    write(slice(240, 280), c)
    c._end_build()
    write(slice(260, 300), d)
    refused(d)
    d._abort_build()
    assert n_rows(client, "race") == 280
    finds_its_items(c, slice(240, 280))
    finds_its_items(b, slice(200, 240))  # the earlier copy keeps its own items


# ---- rebuilds: atomic, checked first, identified (issue 17) -------------------------


def _others(client, name):
    """The collections of builds of ``name`` (its aside builds included)."""
    return sorted(c for c in client.list_collections() if c.startswith(name + "__"))


@pytest.mark.parametrize("name, bad, match", [
    ("long", "x" * 65536, "65,536 bytes"), ("utf8", "é" * 40000, "80,000 bytes"),
    ("nul", "nul\x00inside", "NUL character"),
])
@LITE_ONLY
def test_labels_milvus_cannot_store_are_refused_before_writing(
        two_attribute_items, uri, name, bad, match):
    X, _ = two_attribute_items
    y = np.array(["cat", "dog"] * 150, dtype=object)
    live = LabelFilterRetriever(vector_index=MilvusIndex(uri, name), **TRAIN)
    live.fit(X, y)
    saved = pickle.loads(pickle.dumps(live))
    before = saved.kneighbors(X[:10], 5, condition="dog")
    builds = _others(pymilvus.MilvusClient(uri), name)
    y_bad = y.copy()
    y_bad[::2] = bad
    with pytest.raises(ValueError, match=f"y .*attribute 0.*{match}"):
        clone(live).set_params(vector_index__overwrite=True).fit(X, y_bad)
    assert _others(pymilvus.MilvusClient(uri), name) == builds
    assert_same_results(before, saved.kneighbors(X[:10], 5, condition="dog"))
    np.testing.assert_array_equal(saved.index_labels_, y)


@LITE_ONLY
def test_a_column_changing_kind_between_appends_is_refused(two_attribute_items,
                                                           uri):
    X, _ = two_attribute_items
    y = np.arange(300) % 3
    ret = LabelFilterRetriever(vector_index=MilvusIndex(uri, "kinds"), **TRAIN)
    ret.fit(X, y)
    with pytest.raises(ValueError, match="stores attribute 0 as INT64"):
        ret.index(X[:10], y[:10].astype(float), append=True)
    assert n_rows(pymilvus.MilvusClient(uri), "kinds") == 300
    ret.index(X[:10], y[:10].astype(np.int32), append=True)  # integers still fit
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ret)).index_labels_,
                                  np.r_[y, y[:10]])


@LITE_ONLY
def test_integers_beyond_int64_round_trip(two_attribute_items, uri):
    X, _ = two_attribute_items
    y = np.array([2**63, 2**64 - 1, 7], dtype=np.uint64)[np.arange(300) % 3]
    ret = LabelFilterRetriever(vector_index=MilvusIndex(uri, "huge"), **TRAIN)
    loaded = pickle.loads(pickle.dumps(ret.fit(X, y)))
    np.testing.assert_array_equal(loaded.index_labels_, y)
    assert loaded.index_labels_.dtype == np.uint64


def test_a_rebuild_that_fails_half_way_leaves_the_collection_as_it_was(
        two_attribute_items, uri, monkeypatch):
    X, y = two_attribute_items
    live = LabelFilterRetriever(vector_index=MilvusIndex(
        uri, "halfway", batch_size=50, overwrite=True), **TRAIN).fit(X, y)
    saved = pickle.loads(pickle.dumps(live))
    before = saved.kneighbors(X[:10], 5, condition="red")
    builds = _others(pymilvus.MilvusClient(uri), "halfway")
    real, calls = pymilvus.MilvusClient.insert, []

    def insert(self, *args, **kwargs):  # the third batch fails: disk full
        calls.append(1)
        if len(calls) == 3:
            raise pymilvus.MilvusException(message="disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pymilvus.MilvusClient, "insert", insert)
    with pytest.raises(pymilvus.MilvusException, match="disk full"):
        live.index(X[::-1], y[::-1])
    monkeypatch.undo()
    for ret in (saved, live):  # readers saw nothing of it
        assert_same_results(before, ret.kneighbors(X[:10], 5, condition="red"))
    np.testing.assert_array_equal(saved.index_labels_, y)
    assert _others(pymilvus.MilvusClient(uri), "halfway") == builds  # undone


KILL = SCRIPT + """
ret = retriever(collection="live", batch_size=25, verbose=1, overwrite=True)
ret.fit(X, y)
joblib.dump(ret, "ret.joblib")
dist, ind = ret.kneighbors(X[:20], 6, condition="blue")
np.savez("expected.npz", dist=dist, ind=ind)
print("rebuilding")
ret.index(np.repeat(X, 20, axis=0), np.repeat(y, 20, axis=0))
print("rebuilt")
"""


def test_a_process_killed_while_rebuilding_leaves_the_collection_as_it_was(
        two_attribute_items, tmp_path, process_uri):
    X, y = two_attribute_items
    save_items(tmp_path, X, y)
    builder = python(KILL, tmp_path, process_uri, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, text=True)
    try:
        lines = iter(builder.stdout.readline, "")
        assert "rebuilding\n" in lines  # reads up to that line
        first = next(lines)  # the rebuild has written its first batch
        assert "25/6000 items inserted into 'live'" in first, first
    finally:
        builder.kill()
        builder.wait(timeout=60)
    ret = joblib.load(tmp_path / "ret.joblib")
    expected = np.load(tmp_path / "expected.npz")
    dist, ind = ret.kneighbors(X[:20], 6, condition="blue")
    np.testing.assert_array_equal(ind, expected["ind"])
    np.testing.assert_allclose(dist, expected["dist"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ret.index_labels_, y)
    assert n_rows(client_of(process_uri, tmp_path), "live") == 300
    ret.index(X[:50], y[:50])  # its own collection: replaced without overwrite
    assert ret.kneighbors(X[:5], 3, return_distance=False).max() < 50


def test_a_retriever_whose_collection_another_rebuilt_gets_a_clear_error(
        two_attribute_items, uri):
    X, y = two_attribute_items
    first = LabelFilterRetriever(vector_index=MilvusIndex(uri, "taken"), **TRAIN)
    first.fit(X, y)
    saved = pickle.dumps(first)
    second = LabelFilterRetriever(vector_index=MilvusIndex(
        uri, "taken", overwrite=True), **TRAIN).fit(X[100:], y[100:])
    stale = "Milvus collection 'taken' .*was rebuilt by another retriever"
    for ret in (first, pickle.loads(saved)):  # connected, and a new connection
        with pytest.raises(ValueError, match=stale):
            ret.kneighbors(X[:5], 3)
        with pytest.raises(ValueError, match=stale):
            ret.index(X[:5], y[:5], append=True)
    with pytest.raises(ValueError, match=stale):
        pickle.loads(saved).index_labels_  # noqa: B018  (read back from Milvus)
    assert second.kneighbors(X[:5], 3, return_distance=False).max() < 200
    # the stale retriever may not take the collection back without overwrite
    with pytest.raises(ValueError, match="'taken' already exists.*overwrite=True"):
        first.index(X, y)


def test_a_retriever_replaces_its_own_collection_without_overwrite(
        two_attribute_items, uri):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(vector_index=MilvusIndex(uri, "own"), **TRAIN)
    ret.fit(X, y)
    ret.index(X[:100], y[:100])  # the collection fit made: no overwrite=True
    assert ret.n_index_samples_ == 100
    ret.fit(X[:150], y[:150])
    assert ret.n_index_samples_ == 150
    assert len(_others(pymilvus.MilvusClient(uri), "own")) == 1  # the old dropped
    other = LabelFilterRetriever(vector_index=MilvusIndex(uri, "own"), **TRAIN)
    with pytest.raises(ValueError, match="'own' already exists.*overwrite=True"):
        other.fit(X, y)
    assert ret.kneighbors(X[:5], 3, return_distance=False).max() < 150


def test_search_refuses_queries_that_are_not_finite(pair):
    _, ret = pair
    queries = np.ones((3, 16))
    queries[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"queries must be finite; rows \[1\]"):
        ret.vector_index_.search(queries, 3)


# ---- partition key ------------------------------------------------------------------


def test_partition_key_keeps_the_results(pair, two_attribute_items, uri):
    # a cell field (the combination of predicted classes) as partition key,
    # the levels filtered on it: the same answers, appends and pickles too
    exact, _ = pair
    X, y = two_attribute_items
    keyed = clone(exact).set_params(vector_index=MilvusIndex(
        uri, "keyed", partition_key=True, batch_size=64)).fit(X, y)
    client = pymilvus.MilvusClient(uri)
    fields = client.describe_collection("keyed")["fields"]
    assert [f.get("is_partition_key") for f in fields if f["name"] == "cell"] == [True]
    X_q = X[:40] + 0.05
    for condition in (None, 1, {1: "red"}, {0: 2, 1: "blue"}):
        assert_same_results(exact.kneighbors(X_q, 12, condition=condition),
                            keyed.kneighbors(X_q, 12, condition=condition))
    assert_same_results(exact.kneighbors(None, 4), keyed.kneighbors(None, 4))
    rows = client.query("keyed", filter="", output_fields=["id", "cell", "pred_0",
                                                           "pred_1"], limit=300)
    cells = {}
    for r in rows:  # one cell number per combination of classes
        assert cells.setdefault((r["pred_0"], r["pred_1"]), r["cell"]) == r["cell"]
    assert len(set(cells.values())) == len(cells)
    first = keyed.vector_index_
    keyed.index(X[:100], y[:100])
    keyed.index(X[100:], y[100:], append=True)
    assert len(first._cells) <= len(keyed.vector_index_._cells)
    loaded = pickle.loads(pickle.dumps(keyed))
    assert_same_results(exact.kneighbors(X_q, 12, condition={0: 2, 1: "blue"}),
                        loaded.kneighbors(X_q, 12, condition={0: 2, 1: "blue"}))
