"""The vector indexes (skbackward.indexes) and the retrievers' index layer:
parameters, preference levels, exclusion, appending, memmaps, batches,
pickling, threads."""

import pickle
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import normalize as normalize_rows

import skbackward._retrievers._indexing as indexing_module
import skbackward._retrievers._querying as querying_module
from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
    NearestNeighborRetriever,
)
from skbackward.indexes import ExactIndex, FaissIndex, VectorIndex
from skbackward.indexes._topk import unit_float32
from skbackward.metrics import make_precision_scorer

from .conftest import require

TRAIN = dict(epochs=3, embedding_dim=16, random_state=0)


def _faiss():
    return require("faiss")


def _build(index, Z, predicted, labels=None, chunk=7):
    """A fitted copy of ``index`` over embeddings ``Z``, by its public
    ``build`` (as a retriever builds it), in chunks of ``chunk`` items."""
    unit, norms = unit_float32(Z)
    n = Z.shape[0]

    def sample(n_train):
        rows = np.linspace(0, n - 1, n_train).astype(int)
        return unit[rows], predicted[rows]

    chunks = [(unit[s:s + chunk], norms[s:s + chunk], predicted[s:s + chunk],
               None if labels is None else labels[s:s + chunk])
              for s in range(0, n, chunk)]
    return clone(index).build(chunks, n_items=n, dim=Z.shape[1],
                              n_attributes=predicted.shape[1], labels=labels,
                              training_sample=sample)


def _reference(queries, Z, predicted, k, tiers=(), exclude=None):
    """Brute force: sort by (tier-0 matches, tier-1 matches, ..., cosine)."""
    keys = [normalize_rows(queries) @ normalize_rows(Z).T]
    for tier in tiers:
        wish = tier[:, None, :]
        keys.append(((wish >= 0) & (wish == predicted[None])).sum(2).astype(float))
    if exclude is not None:
        on = np.flatnonzero(exclude >= 0)
        for key in keys:
            key[on, exclude[on]] = -np.inf
    # np.lexsort sorts by its last key first
    return np.stack([
        np.lexsort([-key[i] for key in [keys[0]] + keys[:0:-1]])
        for i in range(len(queries))
    ])[:, :k]


def _data(n=400, n_q=40, dim=12, n_classes=(5, 3), seed=0):
    rng = np.random.RandomState(seed)
    Z = rng.randn(n, dim)
    predicted = np.stack([rng.randint(c, size=n) for c in n_classes], axis=1)
    return rng.randn(n_q, dim), Z, predicted


INDEXES = [ExactIndex(), ExactIndex(working_memory=0.01)]
FAISS_EXACT = ["Flat", "IVF1,Flat"]


# ---- parameter objects ------------------------------------------------------------


def test_index_objects_are_parameters(digits):
    X_train, _, y_train, _ = digits
    index = ExactIndex(working_memory=8)
    ret = LabelFilterRetriever(**TRAIN, vector_index=index)
    assert ret.get_params()["vector_index__working_memory"] == 8
    ret.set_params(vector_index__working_memory=16)
    assert index.working_memory == 16
    ret.fit(X_train, y_train)
    # the parameter is not touched; the fitted copy is vector_index_
    assert not hasattr(index, "n_items_") and ret.vector_index is index
    assert ret.vector_index_ is not index
    assert ret.vector_index_.n_items_ == ret.n_index_samples_ == len(X_train)
    c = clone(ret)
    assert c.vector_index is not index
    assert c.vector_index.get_params() == index.get_params()


def test_default_is_an_exact_index(digits):
    ret = NearestNeighborRetriever(**TRAIN).fit(*digits[0::2])
    assert ret.vector_index is None and type(ret.vector_index_) is ExactIndex


@pytest.mark.parametrize("bad", ["exact", ExactIndex, object()])
def test_bad_vector_index_is_a_clear_error(bad, digits):
    with pytest.raises(ValueError, match="'vector_index' parameter .* must be an "
                       "instance of 'skbackward.indexes.VectorIndex' or None"):
        NearestNeighborRetriever(**TRAIN, vector_index=bad).fit(*digits[0::2])


@pytest.mark.parametrize("wm", [0, -1.0, "1", float("inf"), True])
def test_bad_working_memory(wm, digits):
    ret = NearestNeighborRetriever(**TRAIN, vector_index=ExactIndex(wm))
    with pytest.raises(ValueError, match="'working_memory' parameter of ExactIndex"):
        ret.fit(*digits[0::2])


def test_search_checks_its_arguments_and_the_parameters_it_reads(digits):
    ret = NearestNeighborRetriever(**TRAIN).fit(*digits[0::2])
    index, Z = ret.vector_index_, ret.transform(digits[1][:3])
    bad = [
        (dict(queries=Z[0]), "queries must have shape \\(n_queries, 16\\)"),
        (dict(queries=Z[:, :5]), "queries must have shape"),
        (dict(k=0), "'k' parameter of ExactIndex.search"),
        (dict(k=2.5), "'k' parameter of ExactIndex.search"),
        (dict(exclude=[1, 2]), "exclude must have shape \\(3,\\)"),
        (dict(prefer=[np.zeros((3, 2))]), "prefer must hold arrays of shape \\(3, 1"),
        (dict(prefer=[]), "prefer must hold arrays"),
    ]
    for change, match in bad:
        args = {"queries": Z, "k": 3, **change}
        with pytest.raises(ValueError, match=match):
            index.search(args.pop("queries"), args.pop("k"), **args)
    # a parameter changed on the fitted index is checked when a search reads it
    index.set_params(working_memory=float("inf"))
    with pytest.raises(ValueError, match="'working_memory' parameter of ExactIndex"):
        ret.kneighbors(digits[1][:3], 3)


@pytest.mark.parametrize("backend", ["exact", "faiss"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_search_refuses_queries_that_are_not_finite(backend, bad):
    # a NaN similarity ranks nowhere: the search answered -1 and inf silently
    if backend == "faiss":
        _faiss()
    queries, Z, predicted = _data(n=50, n_q=4)
    index = _build(ExactIndex() if backend == "exact" else FaissIndex("Flat"),
                   Z, predicted)
    queries[2, 3] = bad
    with pytest.raises(ValueError, match=r"queries must be finite; rows \[2\]"):
        index.search(queries, 3)
    with pytest.raises(ValueError, match="queries must be numbers"):
        index.search(np.full((1, Z.shape[1]), "a"), 3)


def test_embeddings_and_predicted_read_slices_of_the_items():
    # their bounds are checked once, in VectorIndex, for every backend
    queries, Z, predicted = _data(n=50)
    index = _build(ExactIndex(), Z, predicted)
    np.testing.assert_allclose(index.embeddings(-3), Z[-3:], rtol=1e-5)
    np.testing.assert_array_equal(index.predicted(5, 2), predicted[5:2])
    np.testing.assert_array_equal(index.predicted(40, 99), predicted[40:])
    assert index.embeddings(7, 3).shape == (0, Z.shape[1])
    for method in ("embeddings", "predicted"):
        for bad in (1.5, "2", True):
            with pytest.raises(ValueError, match=f"'start' parameter of "
                                                 f"ExactIndex.{method}"):
                getattr(index, method)(bad)
        with pytest.raises(TypeError, match=f"'stop' parameter of ExactIndex.{method}"):
            getattr(index, method)(0, 2.0)


def test_unbuilt_index_cannot_search():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="holds no items"):
        ExactIndex().search(np.ones((1, 3)), 1)


def test_vector_index_is_abstract():
    with pytest.raises(TypeError):
        VectorIndex()


# ---- exact search: results, levels, exclusion ----------------------------------------


@pytest.mark.parametrize("index", INDEXES)
def test_plain_search_agrees_with_brute_force(index):
    queries, Z, predicted = _data()
    fitted = _build(index, Z, predicted)
    dist, ind = fitted.search(queries, 9)
    np.testing.assert_array_equal(ind, _reference(queries, Z, predicted, 9))
    cos = (normalize_rows(queries) @ normalize_rows(Z).T)
    np.testing.assert_allclose(dist, 1 - np.take_along_axis(cos, ind, 1), atol=1e-6)
    assert dist.dtype == np.float32 and ind.dtype == np.int64


@pytest.mark.parametrize("index", INDEXES)
@pytest.mark.parametrize("k", [1, 12, 150, 399])
def test_preference_levels_agree_with_brute_force(index, k):
    queries, Z, predicted = _data()
    rng = np.random.RandomState(1)
    tier0 = np.stack([rng.randint(-1, 5, 40), rng.randint(-1, 3, 40)], axis=1)
    tier1 = np.stack([rng.randint(-1, 5, 40), rng.randint(-1, 3, 40)], axis=1)
    exclude = rng.randint(-1, 400, 40)
    fitted = _build(index, Z, predicted)
    for tiers in ([tier0], [tier0, tier1]):
        dist, ind = fitted.search(queries, k, exclude=exclude, prefer=tiers)
        ref = _reference(queries, Z, predicted, k, tiers, exclude)
        np.testing.assert_array_equal(ind, ref)
        # ascending within a level
        level = ((tiers[0][:, None, :] >= 0)
                 & (tiers[0][:, None, :] == predicted[ind])).sum(2)
        same = level[:, 1:] == level[:, :-1]
        if len(tiers) == 1:
            assert (np.diff(dist, axis=1)[same] >= 0).all()


@pytest.mark.parametrize("index", INDEXES)
def test_exclude_is_honoured_when_k_is_every_other_item(index):
    queries, Z, predicted = _data(n=30, n_q=30)
    fitted = _build(index, Z, predicted)
    exclude = np.arange(30)
    for prefer in (None, [np.full((30, 2), -1)], [predicted[::-1]]):
        _, ind = fitted.search(Z, 29, exclude=exclude, prefer=prefer)
        assert not (ind == exclude[:, None]).any()
        assert (np.sort(ind, axis=1) == np.array(
            [np.delete(np.arange(30), i) for i in range(30)])).all()


def test_retriever_exclude_with_as_many_neighbours_as_items(digits):
    # issue 8: exclude was ignored when n_neighbors == number of items
    X = digits[1]
    ret = LabelFilterRetriever(**TRAIN).fit(digits[0], digits[2])
    ret.index(X[:10])
    with pytest.raises(ValueError, match="9 items are left after excluding one"):
        ret.kneighbors(X[:10], 10, exclude=np.arange(10))
    ind = ret.kneighbors(X[:10], 9, return_distance=False, exclude=np.arange(10))
    assert not (ind == np.arange(10)[:, None]).any()
    ind = ret.kneighbors(X[:10], 9, return_distance=False, exclude=np.arange(10),
                         condition=3)
    assert not (ind == np.arange(10)[:, None]).any()
    # no exclusion (-1 everywhere): all 10 may be asked for
    assert ret.kneighbors(X[:10], 10, exclude=np.full(10, -1))[1].shape == (10, 10)


# ---- the retrievers' index layer ---------------------------------------------------


def test_working_memory_does_not_change_results(two_attribute_items):
    X, y = two_attribute_items
    a = LabelFilterRetriever(**TRAIN).fit(X, y)
    b = LabelFilterRetriever(**TRAIN, vector_index=ExactIndex(0.01)).fit(X, y)
    for cond in (None, {0: 1}, {0: 2, 1: "red"}):
        for u, v in zip(a.kneighbors(X[:50], 20, condition=cond),
                        b.kneighbors(X[:50], 20, condition=cond)):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("cls, dtype", [
    (LabelFilterRetriever, np.float32), (CentroidShiftRetriever, np.float32),
    (DistilledRetriever, np.float32), (LabelFilterRetriever, np.float64),
    # the gradient search is row-exact in float64 only (rows drop out of
    # its batch as they converge)
    (BackwardSearchRetriever, np.float64),
])
def test_kneighbors_of_a_subset_are_rows_of_the_full_call(
    cls, dtype, two_attribute_items
):
    X, y = two_attribute_items
    X = X.astype(dtype)
    params = {"epochs": 2, "random_state": 0} if cls is DistilledRetriever else TRAIN
    ret = cls(**params).fit(X, y)
    cond = np.where(np.arange(60) % 3 == 0, None, np.arange(60) % 3).astype(object)
    full = ret.kneighbors(X[:60], 8, condition={0: cond})
    for part in (np.array([5]), np.array([7, 2]), np.arange(0, 60, 7)):
        sub = ret.kneighbors(X[:60][part], 8, condition={0: cond[part]})
        for u, v in zip(sub, full):
            np.testing.assert_array_equal(u, v[part])


@pytest.mark.parametrize("cls", [LabelFilterRetriever, BackwardSearchRetriever])
def test_queries_go_in_bounded_batches(monkeypatch, cls, two_attribute_items):
    X, y = two_attribute_items
    params = {"max_steps": 10} if cls is BackwardSearchRetriever else {}
    ret = cls(**TRAIN, **params, n_neighbors=5).fit(X, y)
    expected = [ret.kneighbors(None), ret.kneighbors(None, condition={1: "red"}),
                ret.kneighbors(X[:50], condition=2)]
    monkeypatch.setattr(querying_module, "QUERY_BATCH", 7)
    got = [ret.kneighbors(None), ret.kneighbors(None, condition={1: "red"}),
           ret.kneighbors(X[:50], condition=2)]
    for g, e in zip(got, expected):
        for u, v in zip(g, e):
            np.testing.assert_array_equal(u, v)


def test_x_none_excludes_each_item_and_uses_the_stored_embeddings(two_attribute_items):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(**TRAIN).fit(X, y)
    d, i = ret.kneighbors(None, 6)
    assert not (i == np.arange(len(X))[:, None]).any()
    d_x, i_x = ret.kneighbors(X, 7)
    # the query itself first (distance 0) unless a duplicate ties with it
    np.testing.assert_allclose(d, d_x[:, 1:], atol=1e-6)


def test_index_in_chunks_equals_index_at_once(monkeypatch, two_attribute_items):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(**TRAIN).fit(X, y)
    expected = ret.kneighbors(X[:30], 10, condition={1: "blue"})
    predicted = ret.vector_index_.predicted_.copy()
    monkeypatch.setattr(indexing_module, "chunk_rows", lambda row_bytes, n, mib=None: 7)
    ret.index(X, y)
    np.testing.assert_array_equal(ret.vector_index_.predicted_, predicted)
    for u, v in zip(ret.kneighbors(X[:30], 10, condition={1: "blue"}), expected):
        np.testing.assert_array_equal(u, v)


def test_fit_and_index_read_memmaps(tmp_path, two_attribute_items):
    X, y = two_attribute_items
    path = tmp_path / "X.npy"
    np.save(path, X.astype(np.float32))
    X_map = np.load(path, mmap_mode="r")
    a = LabelFilterRetriever(**TRAIN).fit(X.astype(np.float32), y)
    b = LabelFilterRetriever(**TRAIN).fit(X_map, y)
    np.testing.assert_array_equal(a.transform(X_map), b.transform(X_map))
    b.index(X_map[100:])
    a.index(X[100:].astype(np.float32))
    for u, v in zip(a.kneighbors(X_map[:20], condition=1),
                    b.kneighbors(X_map[:20], condition=1)):
        np.testing.assert_array_equal(u, v)


def test_large_training_arrays_are_read_per_minibatch(
    monkeypatch, tmp_path, two_attribute_items
):
    import skbackward._network._model as model_module

    X, y = two_attribute_items
    expected = BackwardSearchRetriever(**TRAIN).fit(X, y)
    monkeypatch.setattr(model_module, "PRELOAD_BYTES", 0)
    np.save(tmp_path / "X.npy", X)
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")
    got = BackwardSearchRetriever(**TRAIN).fit(X_map, y)
    assert got.loss_curve_ == expected.loss_curve_
    np.testing.assert_array_equal(got.transform(X[:20], condition={0: 1}),
                                  expected.transform(X[:20], condition={0: 1}))


@pytest.mark.parametrize("factory", [None, "Flat", "IVF4,Flat", "per class"])
def test_append_grows_the_index(factory, two_attribute_items):
    X, y = two_attribute_items
    vi = None if factory is None else FaissIndex(factory, nprobe=4)
    if factory == "per class":  # every list of the wanted cells probed: exact
        vi = FaissIndex("IVF8,Flat", nprobe=10**6, per_class=True)
    if factory is not None:
        _faiss()
    whole = LabelFilterRetriever(**TRAIN, vector_index=vi).fit(X, y)
    parts = clone(whole).fit(X, y)
    parts.index(X[:120], y[:120])
    first = parts.vector_index_
    parts.index(X[120:250], y[120:250], append=True)
    parts.index(X[250:], y[250:], append=True)
    assert first.n_items_ == 120  # the earlier index is untouched
    assert parts.n_index_samples_ == len(X)
    np.testing.assert_array_equal(parts.index_labels_, y)
    np.testing.assert_array_equal(parts.vector_index_.predicted_,
                                  whole.vector_index_.predicted_)
    np.testing.assert_allclose(parts.vector_index_.embeddings(100, 130),
                               whole.vector_index_.embeddings(100, 130), atol=1e-6)
    for cond in (None, {0: 1}):
        d_w, i_w = whole.kneighbors(X[:40], 10, condition=cond)
        d_p, i_p = parts.kneighbors(X[:40], 10, condition=cond)
        np.testing.assert_array_equal(i_p, i_w)
        np.testing.assert_allclose(d_p, d_w, atol=1e-6)
    d, i = parts.kneighbors(None, 5)
    assert not (i == np.arange(len(X))[:, None]).any()


def test_append_needs_labels_everywhere_or_nowhere(two_attribute_items):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(**TRAIN).fit(X, y)
    with pytest.raises(ValueError, match="y must be given for every part"):
        ret.index(X[:10], append=True)
    ret.index(X[:10])
    with pytest.raises(ValueError, match="y must be given for every part"):
        ret.index(X[:10], y[:10], append=True)
    ret.index(X[10:20], append=True)
    assert ret.n_index_samples_ == 20 and ret.index_labels_ is None


def test_centroids_in_chunks(monkeypatch, two_attribute_items):
    X, y = two_attribute_items
    expected = CentroidShiftRetriever(**TRAIN).fit(X, y).centroids_
    monkeypatch.setattr(CentroidShiftRetriever, "_chunk_rows", lambda self, X: 7)
    got = CentroidShiftRetriever(**TRAIN).fit(X, y).centroids_
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-12)


# ---- persistence and threads ---------------------------------------------------------


def test_pickle_keeps_one_float32_copy():
    queries, Z, predicted = _data(n=3000, dim=256)
    fitted = _build(ExactIndex(), Z, predicted, chunk=1000)
    size = len(pickle.dumps(fitted))
    assert size <= 1.1 * Z.shape[0] * Z.shape[1] * 4
    restored = pickle.loads(pickle.dumps(fitted))
    prefer = [predicted[:40]]
    for u, v in zip(restored.search(queries, 5, prefer=prefer),
                    fitted.search(queries, 5, prefer=prefer)):
        np.testing.assert_array_equal(u, v)


def test_distilled_retriever_keeps_one_index(digits):
    X_train, X_test, y_train, _ = digits
    teacher = BackwardSearchRetriever(**TRAIN, max_steps=5)
    ret = DistilledRetriever(teacher, epochs=2, random_state=0).fit(X_train, y_train)
    assert ret.teacher_.vector_index_ is ret.vector_index_
    ret.index(X_test)
    assert ret.teacher_.vector_index_ is ret.vector_index_
    restored = pickle.loads(pickle.dumps(ret))
    assert restored.teacher_.vector_index_ is restored.vector_index_
    # a prefit teacher's own index is not copied
    prefit = DistilledRetriever(ret.teacher_, prefit=True, epochs=2,
                                random_state=0).fit(X_train, y_train)
    assert prefit.teacher_.vector_index_ is prefit.vector_index_
    assert prefit.n_index_samples_ == len(X_train)


def test_index_swaps_atomically_under_concurrent_queries(two_attribute_items):
    X, y = two_attribute_items
    ret = LabelFilterRetriever(**TRAIN).fit(X, y)
    dbs = [X[:150], X[100:]]
    expected = []
    for db in dbs:
        ret.index(db)
        expected.append(ret.kneighbors(X[:20], 8, condition={0: 1}))
    stop = threading.Event()
    errors = []

    def reindex():
        i = 0
        while not stop.is_set():
            ret.index(dbs[i % 2])
            i += 1

    thread = threading.Thread(target=reindex)
    thread.start()
    try:
        for _ in range(150):
            d, i = ret.kneighbors(X[:20], 8, condition={0: 1})
            if not any(np.array_equal(i, e[1]) and np.array_equal(d, e[0])
                       for e in expected):
                errors.append(i)
    finally:
        stop.set()
        thread.join()
    assert not errors


# ---- faiss ------------------------------------------------------------------------


@pytest.mark.parametrize("factory", FAISS_EXACT)
def test_faiss_flat_agrees_with_exact(factory):
    _faiss()
    queries, Z, predicted = _data()
    rng = np.random.RandomState(1)
    tiers = [np.stack([rng.randint(-1, 5, 40), rng.randint(-1, 3, 40)], axis=1)]
    exclude = rng.randint(-1, 400, 40)
    flat = _build(FaissIndex(factory), Z, predicted)
    exact = _build(ExactIndex(), Z, predicted)
    for prefer in (None, tiers):
        for k in (1, 10, 200):
            d_f, i_f = flat.search(queries, k, exclude=exclude, prefer=prefer)
            d_e, i_e = exact.search(queries, k, exclude=exclude, prefer=prefer)
            np.testing.assert_array_equal(i_f, i_e)
            np.testing.assert_allclose(d_f, d_e, atol=1e-6)


@pytest.mark.parametrize("factory, params", [
    ("IVF8,Flat", {"nprobe": 1}), ("HNSW8", {"ef_search": 4}),
    ("IVF8,PQ4x4", {"nprobe": 1}),
])
def test_faiss_filtered_search_finds_k_matching_items(factory, params):
    # a rare wanted class: one probed list or a short candidate list holds too
    # few of its items; the search widens until k are found, never returning
    # other items while matching ones are left
    _faiss()
    rng = np.random.RandomState(0)
    queries, Z, _ = _data(n=2000, dim=16)
    predicted = (rng.rand(2000, 1) < 0.02).astype(int)  # class 1: ~40 items
    n_rare = int(predicted.sum())
    fitted = _build(FaissIndex(factory, **params), Z, predicted, chunk=500)
    for k in (10, n_rare):
        dist, ind = fitted.search(queries, k, prefer=[np.ones((40, 1), int)])
        assert (ind >= 0).all() and (predicted[ind, 0] == 1).all()
    dist, ind = fitted.search(queries, n_rare + 5, prefer=[np.ones((40, 1), int)])
    assert (predicted[ind[:, :n_rare], 0] == 1).all()
    assert (predicted[ind[:, n_rare:], 0] == 0).all()


def test_faiss_ivf_recall_and_retriever_round_trip(tmp_path, digits):
    _faiss()
    import joblib

    X_train, X_test, y_train, y_test = digits
    vi = FaissIndex("IVF16,Flat", nprobe=8)
    ret = LabelFilterRetriever(**TRAIN, vector_index=vi).fit(X_train, y_train)
    exact = LabelFilterRetriever(**TRAIN).fit(X_train, y_train)
    _, i_f = ret.kneighbors(X_test[:100], 10)
    _, i_e = exact.kneighbors(X_test[:100], 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i_f, i_e)])
    assert recall > 0.8
    _, i_c = ret.kneighbors(X_test[:100], 10, condition=4)
    assert (ret.vector_index_.predicted_[i_c, 0] == 4).all()
    expected = ret.kneighbors(X_test[:30], 10, condition=4)
    for restored in (pickle.loads(pickle.dumps(ret)),
                     joblib.load(joblib.dump(ret, tmp_path / "r.joblib")[0])):
        for u, v in zip(restored.kneighbors(X_test[:30], 10, condition=4), expected):
            np.testing.assert_array_equal(u, v)
    # search-time parameters act on the fitted index without rebuilding
    ret.vector_index_.set_params(nprobe=16)
    _, i_all = ret.kneighbors(X_test[:100], 10)
    np.testing.assert_array_equal(i_all, i_e)  # every list probed: exact


def test_faiss_x_none_and_reconstruction(digits):
    _faiss()
    X_train, _, y_train, _ = digits
    ret = LabelFilterRetriever(**TRAIN, vector_index=FaissIndex("IVF4,Flat", nprobe=4))
    ret.fit(X_train, y_train)
    exact = LabelFilterRetriever(**TRAIN).fit(X_train, y_train)
    np.testing.assert_allclose(ret.vector_index_.embeddings(5, 50),
                               exact.vector_index_.embeddings(5, 50), atol=1e-6)
    for u, v in zip(ret.kneighbors(None, 5), exact.kneighbors(None, 5)):
        np.testing.assert_allclose(u, v, atol=1e-6)


def test_faiss_grid_search_tunes_nprobe(digits):
    _faiss()
    X_train, _, y_train, _ = digits
    ret = LabelFilterRetriever(**TRAIN, vector_index=FaissIndex("IVF8,Flat"))
    search = GridSearchCV(ret, {"vector_index__nprobe": [1, 8]}, cv=2,
                          scoring=make_precision_scorer(k=5, n_queries=30))
    search.fit(X_train, y_train)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # each candidate's fitted index searches with the candidate's nprobe
    search = GridSearchCV(ret, {"vector_index__nprobe": [1, 8]}, cv=2,
                          scoring=lambda est, X, y: est.vector_index_.nprobe)
    search.fit(X_train, y_train)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"], [1, 8])
    assert search.best_estimator_.vector_index_.nprobe == 8
    assert len(search.cv_results_["mean_test_score"]) == 2


def test_faiss_errors(digits):
    _faiss()
    X_train, _, y_train, _ = digits
    with pytest.raises(ValueError, match="faiss cannot build factory='Nonsense12'"):
        NearestNeighborRetriever(**TRAIN, vector_index=FaissIndex("Nonsense12")).fit(
            X_train, y_train)
    with pytest.raises(ValueError, match="could not train factory='IVF4096,Flat'"):
        NearestNeighborRetriever(**TRAIN, vector_index=FaissIndex("IVF4096,Flat")).fit(
            X_train, y_train)
    with pytest.raises(ValueError, match="'nprobe' parameter of FaissIndex"):
        NearestNeighborRetriever(
            **TRAIN, vector_index=FaissIndex("Flat", nprobe=0)).fit(X_train, y_train)
    # set on the fitted index: checked by the search that reads it
    ret = NearestNeighborRetriever(
        **TRAIN, vector_index=FaissIndex("IVF4,Flat")).fit(X_train, y_train)
    for nprobe in (-3, "4", True):
        ret.vector_index_.set_params(nprobe=nprobe)
        with pytest.raises(ValueError, match="'nprobe' parameter of FaissIndex"):
            ret.kneighbors(X_train[:2], 3)


@pytest.mark.parametrize("param", ["nprobe", "ef_search"])
@pytest.mark.parametrize("value", [2**31, 2**40])
def test_faiss_search_parameters_must_fit_a_c_int(digits, param, value):
    # faiss takes them as a C int: past its range SWIG failed inside a search
    _faiss()
    with pytest.raises(ValueError, match=f"'{param}' parameter of FaissIndex must "
                                         r"be an int in the range \[1, 2147483647\]"):
        NearestNeighborRetriever(**TRAIN, vector_index=FaissIndex(
            "HNSW8", **{param: value})).fit(*digits[0::2])
    FaissIndex("HNSW8", **{param: 2**31 - 1})._start_build(3, 2, 1)  # the largest


@pytest.mark.parametrize("factory", ["PQ8", "RQ4x8", "NSG16,Flat", "IDMap,Flat",
                                     "IDMap2,Flat", "Flat,RFlat", "LSQ2x4",
                                     "PQ4x4fs", "IVF4,RQ2x4"])
def test_factories_that_can_never_answer_are_refused_at_fit(digits, factory):
    # they built (some after training) and then failed at every query
    _faiss()
    ret = LabelFilterRetriever(**TRAIN, vector_index=FaissIndex(factory))
    with pytest.raises(ValueError, match=f"faiss factory={re.escape(repr(factory))} "
                                         "cannot add and search items"):
        ret.fit(*digits[0::2])
    assert not hasattr(ret, "vector_index_")


def test_missing_faiss_names_the_extra(monkeypatch, digits):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss raises
    with pytest.raises(ImportError, match=r"pip install \"skbackward\[faiss\]\""):
        NearestNeighborRetriever(**TRAIN, vector_index=FaissIndex("Flat")).fit(
            *digits[0::2])


# ---- faiss, per-class lists ---------------------------------------------------------


def _ivf_stats():
    faiss = _faiss()
    stats = faiss.cvar.indexIVF_stats
    stats.reset()
    return stats


def test_per_class_exhaustive_agrees_with_exact():
    _faiss()
    queries, Z, predicted = _data()
    rng = np.random.RandomState(1)
    tiers = [np.stack([rng.randint(-1, 5, 40), rng.randint(-1, 3, 40)], axis=1)]
    exclude = rng.randint(-1, 400, 40)
    cells = _build(FaissIndex("IVF8,Flat", nprobe=10**6, per_class=True), Z, predicted)
    exact = _build(ExactIndex(), Z, predicted)
    for prefer in (None, tiers, tiers + [predicted[:40, ::-1]]):
        for k in (1, 10, 200, 399):
            d_c, i_c = cells.search(queries, k, exclude=exclude, prefer=prefer)
            d_e, i_e = exact.search(queries, k, exclude=exclude, prefer=prefer)
            np.testing.assert_array_equal(i_c, i_e)
            np.testing.assert_allclose(d_c, d_e, atol=1e-6)
    np.testing.assert_allclose(cells.embeddings(), exact.embeddings(), atol=1e-6)
    np.testing.assert_allclose(cells.embeddings(13, 250), exact.embeddings(13, 250),
                               atol=1e-6)


def test_per_class_search_visits_only_the_wanted_class():
    # the point of per_class: each list holds one cell's items, and a
    # conditional search scans lists of its class only (an ID selector on
    # one IVF walks every item of the lists it probes)
    faiss = _faiss()
    queries, Z, predicted = _data(n=4000, dim=16, n_classes=(10, 2))
    fitted = _build(FaissIndex("IVF64,Flat", nprobe=64, per_class=True), Z,
                    predicted, chunk=1000)
    ivf, table = faiss.extract_index_ivf(fitted.faiss_indexes_[0]), fitted._tables[0]
    for cell, key in enumerate(table.keys):
        for lst in range(table.list_start[cell], table.list_start[cell + 1]):
            size = ivf.invlists.list_size(lst)
            ids = faiss.rev_swig_ptr(ivf.invlists.get_ids(lst), size).copy()
            assert (predicted[table._items(ids)] == key).all()
    wish = [np.stack([np.full(40, 3), np.full(40, -1)], axis=1)]
    in_class = int((predicted[:, 0] == 3).sum())
    stats = _ivf_stats()
    _, ind = fitted.search(queries, 10, prefer=wish)
    assert (predicted[ind, 0] == 3).all()
    assert stats.ndis == 40 * in_class  # every list of the class, nothing else
    fitted.set_params(nprobe=1)  # of the class's 6 or so lists
    stats = _ivf_stats()
    fitted.search(queries, 10, prefer=wish)
    assert stats.ndis < 40 * in_class / 2


def test_per_class_fills_up_from_the_next_level():
    # a class with fewer items than k: its items first (all of them, the
    # search widening until it found them), then the others by similarity
    _faiss()
    rng = np.random.RandomState(0)
    queries, Z, _ = _data(n=2000, dim=16)
    predicted = (rng.rand(2000, 1) < 0.01).astype(int)  # class 1: ~20 items
    n_rare = int(predicted.sum())
    fitted = _build(FaissIndex("IVF16,Flat", nprobe=1, per_class=True), Z,
                    predicted, chunk=500)
    exact = _build(ExactIndex(), Z, predicted, chunk=500)
    wish = [np.ones((40, 1), int)]
    dist, ind = fitted.search(queries, n_rare + 5, prefer=wish)
    assert (ind >= 0).all()
    assert (predicted[ind[:, :n_rare], 0] == 1).all()
    assert (predicted[ind[:, n_rare:], 0] == 0).all()
    # the rare class is searched in full: its part equals the exact ranking
    np.testing.assert_array_equal(ind[:, :n_rare],
                                  exact.search(queries, n_rare, prefer=wish)[1])


def test_per_class_recall_on_clustered_items(digits):
    _faiss()
    X_train, X_test, y_train, _ = digits
    exact = LabelFilterRetriever(**TRAIN).fit(X_train, y_train)
    ret = clone(exact).set_params(vector_index=FaissIndex(
        "IVF40,Flat", nprobe=2, per_class=True)).fit(X_train, y_train)
    cond = np.arange(len(X_test)) % 10
    _, i_c = ret.kneighbors(X_test, 10, condition=cond)
    _, i_e = exact.kneighbors(X_test, 10, condition=cond)
    assert (ret.vector_index_.predicted_[i_c, 0] == cond[:, None]).all()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i_c, i_e)])
    assert recall > 0.9


def test_per_class_with_the_retrievers_ranking_options(two_attribute_items):
    # multi-attribute conditions and preserve (a second preference tier)
    _faiss()
    X, y = two_attribute_items
    exact = BackwardSearchRetriever(**TRAIN, max_steps=10, preserve="predicted")
    exact.fit(X, y)
    ret = clone(exact).set_params(vector_index=FaissIndex(
        "IVF8,Flat", nprobe=10**6, per_class=True)).fit(X, y)
    for cond in ({0: 1}, {1: "red"}, {0: 2, 1: "blue"}):
        for u, v in zip(ret.kneighbors(X[:40], 15, condition=cond),
                        exact.kneighbors(X[:40], 15, condition=cond)):
            np.testing.assert_allclose(u, v, atol=1e-6)
    for u, v in zip(ret.kneighbors(None, 5), exact.kneighbors(None, 5)):
        np.testing.assert_allclose(u, v, atol=1e-6)


def test_per_class_cells_unseen_in_training_are_searched_exactly(tmp_path):
    # trained on a sample without some cells: their items are kept aside and
    # searched exactly, also after pickling and in appended parts
    _faiss()
    import joblib

    queries, Z, predicted = _data(n=600, dim=8, n_classes=(4, 3))
    predicted[::2] = [0, 0]  # the sample (about every other row) sees few cells
    index = FaissIndex("IVF4,Flat", nprobe=10**6, n_train=300, per_class=True)
    fitted = _build(index, Z, predicted, chunk=50)
    seen = {tuple(p) for p in predicted[np.linspace(0, 599, 300).astype(int)]}
    unseen = [tuple(p) not in seen for p in predicted]
    assert 0 < sum(unseen) == len(fitted._tables[0].overflow_ids)
    exact = _build(ExactIndex(), Z, predicted)
    wish = [predicted[1:41]]
    for got in (fitted, pickle.loads(pickle.dumps(fitted)),
                joblib.load(joblib.dump(fitted, tmp_path / "i.joblib")[0])):
        np.testing.assert_array_equal(got.search(queries, 7, prefer=wish)[1],
                                      exact.search(queries, 7, prefer=wish)[1])
        np.testing.assert_allclose(got.embeddings(), Z.astype(np.float32),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("factory", ["HNSW8", "Flat", "PCA4,IVF4,Flat",
                                     "IVF4_HNSW8,Flat"])
def test_per_class_needs_an_ivf_with_a_flat_quantizer(factory, digits):
    _faiss()
    ret = LabelFilterRetriever(**TRAIN, vector_index=FaissIndex(factory,
                                                                per_class=True))
    with pytest.raises(ValueError, match="per_class=True needs an IVF factory"):
        ret.fit(*digits[0::2])
    with pytest.raises(ValueError, match="'per_class' parameter of FaissIndex"):
        LabelFilterRetriever(**TRAIN, vector_index=FaissIndex(
            "IVF4,Flat", per_class="yes")).fit(*digits[0::2])


@pytest.mark.parametrize("factory", ["IVF8,PQ4x4fs", "IVF8,PQ4x4fsr"])
def test_per_class_refuses_fast_scan_codes(factory, two_attribute_items):
    # their lists are packed in blocks that per-class adds would overwrite
    _faiss()
    ret = LabelFilterRetriever(**TRAIN, vector_index=FaissIndex(factory,
                                                                per_class=True))
    with pytest.raises(ValueError, match="cannot fill the lists of a fast-scan"):
        ret.fit(*two_attribute_items)
    assert not hasattr(ret, "vector_index_")


@pytest.mark.parametrize("factory", ["IVF8,SQ8", "IVF8,PQ4x4", "IVF8,SQfp16"])
def test_per_class_compressed_codes(factory, two_attribute_items):
    # by-residual encoders read the list's centroid: the cells' own
    _faiss()
    X, y = two_attribute_items
    exact = LabelFilterRetriever(**TRAIN).fit(X, y)
    ret = clone(exact).set_params(vector_index=FaissIndex(
        factory, nprobe=10**6, per_class=True)).fit(X, y)
    _, i_c = ret.kneighbors(X[:50], 10, condition={0: 1, 1: "red"})
    _, i_e = exact.kneighbors(X[:50], 10, condition={0: 1, 1: "red"})
    predicted = ret.vector_index_.predicted_
    np.testing.assert_array_equal(predicted[i_c], predicted[i_e])
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i_c, i_e)])
    assert recall > 0.7


LOAD_AND_QUERY = """
import sys
import joblib
import numpy as np
folder = sys.argv[1]
ret, X, y = joblib.load(folder + "/saved.joblib")
dist, ind = ret.kneighbors(X, 6, condition={0: 1, 1: "blue"})
own_dist, own_ind = ret.kneighbors(n_neighbors=4)
ret.index(X, y, append=True)
np.savez(folder + "/found.npz", dist=dist, ind=ind, own_dist=own_dist,
         own_ind=own_ind, n=ret.n_index_samples_)
"""


@pytest.mark.parametrize("vector_index", [
    None, ("IVF8,Flat", False, "faiss"), ("IVF8,Flat", True, "faiss"),
    ("IVF8,SQ8", True, "batched")],
    ids=["exact", "faiss", "faiss per class", "faiss per class, batched scan"])
def test_saved_retriever_answers_the_same_in_a_new_process(
        vector_index, two_attribute_items, tmp_path):
    """Saved with joblib here, loaded by a fresh interpreter that never saw
    the index built: conditional and X=None queries answer as before, and an
    append works there."""
    import joblib

    X, y = two_attribute_items
    if vector_index is not None:
        _faiss()
        factory, per_class, scan = vector_index
        vector_index = FaissIndex(factory, nprobe=4, per_class=per_class, scan=scan)
    ret = BackwardSearchRetriever(**TRAIN, max_steps=10, preserve="predicted",
                                  vector_index=vector_index).fit(X[:250], y[:250])
    expected = ret.kneighbors(X[250:], 6, condition={0: 1, 1: "blue"})
    own = ret.kneighbors(n_neighbors=4)
    joblib.dump((ret, X[250:], y[250:]), tmp_path / "saved.joblib")
    done = subprocess.run([sys.executable, "-c", LOAD_AND_QUERY, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = np.load(tmp_path / "found.npz")
    np.testing.assert_array_equal(found["ind"], expected[1])
    np.testing.assert_array_equal(found["dist"], expected[0])
    np.testing.assert_array_equal(found["own_ind"], own[1])
    np.testing.assert_array_equal(found["own_dist"], own[0])
    assert found["n"] == 300
