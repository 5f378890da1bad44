"""FaissIndex(scan="batched"): per-class SQ8 lists scanned by batch with int8
matrix products, against faiss's own scan of the same lists."""

import pickle

import numpy as np
import pytest
import sklearn
import torch

from skbackward import LabelFilterRetriever
from skbackward.indexes import FaissIndex, _int8_lists

from .test_indexes import TRAIN, _build, _data, _faiss


def _pair(factory="IVF16,SQ8", nprobe=4, n=3000, dim=24, seed=0, **data):
    """The same items in two per-class indexes, one per scan."""
    _faiss()
    queries, Z, predicted = _data(n=n, n_q=60, dim=dim, seed=seed, **data)
    Z[:, 0] += 3 * predicted[:, 0]  # classes apart, items within a class mixed
    built = [_build(FaissIndex(factory, nprobe=nprobe, per_class=True, scan=scan),
                    Z, predicted, chunk=500) for scan in ("faiss", "batched")]
    return queries, Z, predicted, built


def _assert_same(got, want):
    """The same items with the same similarities, up to float rounding (two
    items whose similarities differ by less may swap places)."""
    (d_g, i_g), (d_w, i_w) = got, want
    np.testing.assert_allclose(d_g, d_w, rtol=2e-6, atol=2e-6)
    close = np.isclose(d_w[:, 1:], d_w[:, :-1], rtol=2e-6, atol=2e-6)
    ties = np.zeros_like(i_w, dtype=bool)
    ties[:, 1:] |= close
    ties[:, :-1] |= close
    np.testing.assert_array_equal(i_g[~ties], i_w[~ties])


@pytest.mark.parametrize("nprobe", [1, 3, 10**6])
def test_batched_scan_finds_what_faiss_scan_finds(nprobe):
    queries, _, predicted, (plain, batched) = _pair(nprobe=nprobe)
    rng = np.random.RandomState(1)
    tiers = [np.stack([rng.randint(-1, 5, 60), rng.randint(-1, 3, 60)], axis=1)]
    exclude = rng.randint(-1, 3000, 60)
    for prefer in (None, tiers, tiers + [predicted[:60, ::-1]]):
        for k in (1, 10, 200):
            for ex in (None, exclude):
                _assert_same(batched.search(queries, k, exclude=ex, prefer=prefer),
                             plain.search(queries, k, exclude=ex, prefer=prefer))
    np.testing.assert_allclose(batched.embeddings(), plain.embeddings(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(batched.embeddings(17, 900),
                               plain.embeddings(17, 900), rtol=1e-5, atol=1e-6)


def test_batched_scan_codes_are_stored_once():
    faiss = _faiss()
    *_, (plain, batched) = _pair()
    ivf = faiss.extract_index_ivf(batched.faiss_indexes_[0])
    assert ivf.invlists.compute_ntotal() == 0  # moved out of faiss
    lists = batched._tables[0].lists
    assert lists.codes.dtype == np.int8 and (lists.ids >= 0).sum() == plain.n_items_
    n_lists = len(lists.offsets) - 1  # each padded by fewer than GROUP rows
    assert len(lists.codes) < plain.n_items_ + n_lists * _int8_lists.GROUP
    assert len(pickle.dumps(batched)) < 1.1 * len(pickle.dumps(plain))


def test_a_query_finds_the_same_alone_and_in_any_batch():
    queries, _, predicted, (_, batched) = _pair(nprobe=3)
    prefer = [np.stack([np.arange(60) % 5, np.full(60, -1)], axis=1)]
    d, i = batched.search(queries, 10, prefer=prefer)
    for rows in (np.array([7]), np.arange(3, 9), np.arange(60)[::-1]):
        d_r, i_r = batched.search(queries[rows], 10,
                                  prefer=[prefer[0][rows]])
        np.testing.assert_array_equal(i_r, i[rows])
        np.testing.assert_array_equal(d_r, d[rows])


def test_batched_scan_in_bounded_memory_and_without_an_int8_kernel(monkeypatch):
    queries, _, _, (_, batched) = _pair(nprobe=4)
    prefer = [np.stack([np.arange(60) % 5, np.arange(60) % 3], axis=1)]
    want = batched.search(queries, 10, prefer=prefer)
    with sklearn.config_context(working_memory=0.001):  # one query at a time
        got = batched.search(queries, 10, prefer=prefer)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    monkeypatch.setattr(_int8_lists, "_INT_MM", False)  # torch before 2.3
    got = batched.search(queries, 10, prefer=prefer)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("dim", [3, 256, 1100])
def test_int8_products_are_exact(monkeypatch, dim):
    rng = np.random.RandomState(dim)
    a = rng.randint(-128, 128, (19, dim)).astype(np.int8)
    b = rng.randint(-128, 128, (33, dim)).astype(np.int8)
    a[0], b[0] = -128, -128  # the largest product
    want = a.astype(np.int64) @ b.astype(np.int64).T
    for kernel in (True, False):
        monkeypatch.setattr(_int8_lists, "_INT_MM", kernel)
        got = _int8_lists.int8_matmul(torch.from_numpy(a), torch.from_numpy(b))
        np.testing.assert_array_equal(got.numpy(), want)


def test_batched_scan_with_empty_lists():
    # a cell of identical items: k-means leaves all its lists but one empty
    _faiss()
    queries, Z, predicted = _data(n=600, n_q=60, dim=8)
    Z[(predicted == [0, 0]).all(1)] = Z[0]
    predicted[0] = [0, 0]
    plain, batched = [_build(FaissIndex("IVF64,SQ8", nprobe=3, per_class=True,
                                        scan=scan), Z, predicted, chunk=100)
                      for scan in ("faiss", "batched")]
    sizes = np.diff(batched._tables[0].lists.offsets)
    assert (sizes == 0).any()
    prefer = [np.zeros((60, 2), dtype=int)]  # the cell of identical items
    d, i = batched.search(queries, 5, prefer=prefer)
    assert (predicted[i] == 0).all()
    _assert_same((d, i), plain.search(queries, 5, prefer=prefer))


@pytest.mark.parametrize("by_residual", [True, False])
def test_int8_lists_score_as_faiss_decodes(by_residual):
    # the scan's formula against faiss's own search of an SQ8 IVF, either
    # encoding (codes of the vectors, or of their residuals to the centroid)
    faiss = _faiss()
    rng = np.random.RandomState(0)
    x = rng.randn(2000, 16).astype(np.float32)
    q = rng.randn(50, 16).astype(np.float32)
    ivf = faiss.index_factory(16, "IVF8,SQ8", faiss.METRIC_INNER_PRODUCT)
    ivf.by_residual = by_residual
    ivf.train(x)
    ivf.add(x)
    ivf.nprobe = 3
    want_d, want_i = ivf.search(q, 10)
    coarse_sims, coarse = ivf.quantizer.search(q, 3)
    ivf.make_direct_map()
    decoded = np.stack([ivf.reconstruct(i) for i in range(2000)])
    lists = _int8_lists.Int8Lists.take(ivf)
    got_d, got_i = lists.search(q, 10, coarse, coarse_sims)
    _assert_same((got_d, got_i), (want_d, want_i))
    centroids = ivf.quantizer.reconstruct_n(0, 8)
    np.testing.assert_allclose(lists.reconstruct(np.arange(2000), centroids), decoded,
                               atol=1e-6)


def test_batched_scan_retriever_save_append_and_clone(two_attribute_items, tmp_path):
    import joblib

    _faiss()
    X, y = two_attribute_items
    index = FaissIndex("IVF8,SQ8", nprobe=3, per_class=True, scan="batched")
    ret = LabelFilterRetriever(**TRAIN, vector_index=index).fit(X[:250], y[:250])
    plain = LabelFilterRetriever(**TRAIN, vector_index=FaissIndex(
        "IVF8,SQ8", nprobe=3, per_class=True)).fit(X[:250], y[:250])
    for r in (ret, plain):
        r.index(X[250:], y[250:], append=True)
    cond = {0: 1, 1: "blue"}
    _assert_same(ret.kneighbors(X[:40], 6, condition=cond),
                 plain.kneighbors(X[:40], 6, condition=cond))
    loaded = joblib.load(joblib.dump(ret, tmp_path / "r.joblib")[0])
    for a, b in zip(loaded.kneighbors(X[:40], 6, condition=cond),
                    ret.kneighbors(X[:40], 6, condition=cond)):
        np.testing.assert_array_equal(a, b)
    assert loaded.vector_index_.scan == "batched"


def test_batched_scan_needs_per_class_sq8_lists(two_attribute_items):
    _faiss()
    X, y = two_attribute_items
    for index, message in [
        (FaissIndex("IVF8,SQ8", scan="batched"), "needs per_class=True"),
        (FaissIndex("IVF8,Flat", per_class=True, scan="batched"),
         "factory='IVF8,Flat'"),
        (FaissIndex("IVF8,SQ4", per_class=True, scan="batched"), "'IVF<n>,SQ8'"),
        (FaissIndex("IVF8,SQ8", per_class=True, scan="int8"),
         "'scan' parameter of FaissIndex"),
    ]:
        ret = LabelFilterRetriever(**TRAIN, vector_index=index)
        with pytest.raises(ValueError, match=message):
            ret.fit(X, y)
        assert not hasattr(ret, "vector_index_")


def test_an_index_pickled_before_scan_existed_loads_with_faiss_scan():
    *_, (plain, _) = _pair()
    state = plain.__getstate__()
    del state["scan"]  # as 0.1.0 pickled it
    old = FaissIndex.__new__(FaissIndex)
    old.__setstate__(state)
    assert old.get_params()["scan"] == "faiss"
    np.testing.assert_array_equal(old.search(np.ones((1, 24)), 3)[1],
                                  plain.search(np.ones((1, 24)), 3)[1])


@pytest.mark.parametrize("where", ["adding", "moving the codes"])
@pytest.mark.parametrize("append", [False, True])
def test_an_interrupted_rebuild_leaves_the_fitted_index(
        monkeypatch, two_attribute_items, where, append):
    # stopped half-way (Ctrl-C) while a new index fills up or while its codes
    # move out of faiss: the retriever keeps answering from its old index
    from skbackward.indexes import _faiss_cells

    _faiss()
    X, y = two_attribute_items
    ret = LabelFilterRetriever(**TRAIN, vector_index=FaissIndex(
        "IVF8,SQ8", nprobe=3, per_class=True, scan="batched")).fit(X[:250], y[:250])
    old = ret.vector_index_
    cond = {0: 1, 1: "blue"}
    before = ret.kneighbors(X[:40], 6, condition=cond)
    calls = []

    def interrupt(*args, **kwargs):  # after training, with the lists filling
        calls.append(1)
        raise KeyboardInterrupt

    if where == "adding":
        monkeypatch.setattr(_faiss_cells.CellTable, "add", interrupt)
    else:
        monkeypatch.setattr(_int8_lists.Int8Lists, "take", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ret.index(X[250:], y[250:], append=append)
    monkeypatch.undo()
    assert ret.vector_index_ is old and calls
    for a, b in zip(ret.kneighbors(X[:40], 6, condition=cond), before):
        np.testing.assert_array_equal(a, b)
    ret.index(X[250:], y[250:], append=append)  # and the next one succeeds
    assert ret.vector_index_.n_items_ == (300 if append else 50)
