"""MilvusIndex against Milvus Lite in a temporary directory.

The same retriever answers the same queries with the exact index and with
Milvus (FLAT: exact search inside Milvus), so the results must agree, ties
aside (distances are compared to float32 precision).
"""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
)
from skbackward._milvus import connect, level_filters
from skbackward.indexes import MilvusIndex

from .conftest import assert_same_neighbours, require

pymilvus = require("pymilvus")
require("milvus_lite")  # the tests' databases are Milvus Lite files and servers

# tiny networks and short searches: many queries stop short of their
# condition, which is not what these tests are about
pytestmark = pytest.mark.filterwarnings(
    "ignore::skbackward.exceptions.ConditionNotReachedWarning"
)

TRAIN = dict(epochs=3, embedding_dim=16, random_state=0)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    """One Milvus Lite file for the module (each file starts a server thread);
    tests use their own collections."""
    return str(tmp_path_factory.mktemp("milvus") / "items.db")


@pytest.fixture(scope="module")
def pair(two_attribute_items, db_path):
    """The same fitted LabelFilterRetriever with the exact index and with Milvus."""
    X, y = two_attribute_items
    exact = LabelFilterRetriever(**TRAIN).fit(X, y)
    milvus = clone(exact).set_params(
        vector_index=MilvusIndex(db_path, "pair", batch_size=128)).fit(X, y)
    return exact, milvus


def _field_types(client, collection):
    fields = client.describe_collection(collection)["fields"]
    return {f["name"]: f["type"] for f in fields}


def assert_same_results(a, b):
    assert_same_neighbours(a, b, atol=2e-6, max_differ=0.01)


# ---- agreement with the exact index -----------------------------------------


def test_collection_layout(pair, db_path):
    _, ret = pair
    index = ret.vector_index_
    assert index.n_items_ == ret.n_index_samples_ == 300
    client = pymilvus.MilvusClient(db_path)
    fields = _field_types(client, "pair")
    D = pymilvus.DataType
    assert fields == {"id": D.INT64, "vector": D.FLOAT_VECTOR, "norm": D.FLOAT,
                      "pred_0": D.INT64, "pred_1": D.INT64,
                      "label_0": D.VARCHAR, "label_1": D.VARCHAR}
    rows = client.query("pair", filter="id < 3", output_fields=["*"])
    rows = sorted(rows, key=lambda r: r["id"])
    predicted = index.predicted(0, 3)
    for i, row in enumerate(rows):
        assert row["id"] == i
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


def test_search_strategies_with_milvus(two_attribute_items, db_path):
    X, y = two_attribute_items
    X_q = X[:25]
    for name, est in [
        ("bs_filter", BackwardSearchRetriever(max_iter=10, **TRAIN)),
        ("bs_plain", BackwardSearchRetriever(max_iter=10, filter_predicted=False,
                                             **TRAIN)),
        ("centroid", CentroidShiftRetriever(**TRAIN)),
        ("student", DistilledRetriever(BackwardSearchRetriever(max_iter=10, **TRAIN),
                                       epochs=2, random_state=0)),
    ]:
        exact = est.fit(X, y)
        milvus = clone(est).set_params(
            vector_index=MilvusIndex(db_path, name)).fit(X, y)
        assert_same_results(exact.kneighbors(X_q, 8, condition="green"),
                            milvus.kneighbors(X_q, 8, condition="green"))


@pytest.mark.parametrize("index_type, search", [("IVF_FLAT", {"nprobe": 16}),
                                                 ("HNSW", {"ef": 64}),
                                                 ("AUTOINDEX", None)])
def test_approximate_index_types(two_attribute_items, db_path, index_type, search):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(vector_index=MilvusIndex(
        db_path, index_type.lower(), index_type=index_type, search_params=search),
        **TRAIN).fit(X, y)
    client = pymilvus.MilvusClient(db_path)
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


def test_labels_round_trip(two_attribute_items, db_path):
    X, _ = two_attribute_items
    ret = LabelFilterRetriever(vector_index=MilvusIndex(db_path, "ints"), **TRAIN)
    y_int = (np.arange(300) % 3)
    ret.fit(X, y_int)
    client = pymilvus.MilvusClient(db_path)
    fields = _field_types(client, "ints")
    assert fields["label_0"] == pymilvus.DataType.INT64
    loaded = pickle.loads(pickle.dumps(ret))
    np.testing.assert_array_equal(loaded.index_labels_, y_int)
    # an unlabelled database stores no label field
    ret.set_params(vector_index=MilvusIndex(db_path, "ints", overwrite=True))
    ret.index(X[:50])
    assert pickle.loads(pickle.dumps(ret)).index_labels_ is None


def test_append_keeps_numbers_and_old_index(two_attribute_items, db_path):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(vector_index=MilvusIndex(db_path, "append"), **TRAIN)
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


def test_appended_longer_string_labels_survive_pickling(two_attribute_items, db_path):
    X, _ = two_attribute_items
    index = MilvusIndex(db_path, "words", overwrite=True)
    ret = LabelFilterRetriever(vector_index=index, **TRAIN)
    y = np.array(["cat", "mouse"] * 20)
    ret.fit(X[:40], y)
    ret.index(X[:20], np.array(["cat"] * 20))  # a <U3 array
    ret.index(X[20:40], y[20:], append=True)  # then <U5 labels
    y = np.r_[["cat"] * 20, y[20:]]
    loaded = pickle.loads(pickle.dumps(ret))
    np.testing.assert_array_equal(loaded.index_labels_, y)


def test_verbose_prints_progress(two_attribute_items, db_path, capsys):
    X, y = two_attribute_items
    LabelFilterRetriever(vector_index=MilvusIndex(db_path, "verbose", batch_size=100,
                                                  verbose=1), **TRAIN).fit(X, y)
    out = capsys.readouterr().out
    assert "100/300 items inserted into 'verbose'" in out
    assert "300/300" in out


# ---- safety and errors ----------------------------------------------------------


def test_overwrite_is_explicit(two_attribute_items, db_path):
    X, y = two_attribute_items
    first = LabelFilterRetriever(vector_index=MilvusIndex(db_path, "mine"), **TRAIN)
    first.fit(X, y)
    before = first.kneighbors(X[:5], 3)
    second = LabelFilterRetriever(vector_index=MilvusIndex(db_path, "mine"), **TRAIN)
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
    (dict(collection=""), "collection must be a non-empty string"),
    (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(index_params=[1]), "index_params must be a dict"),
    (dict(overwrite="yes"), "overwrite must be True or False"),
    (dict(timeout=-1), "timeout must be a positive number"),
])
def test_bad_parameters(two_attribute_items, db_path, params, match):
    X, y = two_attribute_items
    kwargs = dict(uri=db_path, collection="bad") | params
    ret = LabelFilterRetriever(vector_index=MilvusIndex(**kwargs), **TRAIN)
    with pytest.raises(ValueError, match=match):
        ret.fit(X, y)


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
