"""Tests of the exact chunked cosine index (skbackward._index)."""

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

import skbackward._index as index_module
from skbackward._index import cosine_kneighbors, normalize_rows


def _data(dtype=np.float64, n_db=40, n_q=13, dim=6, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n_q, dim).astype(dtype), rng.randn(n_db, dim).astype(dtype)


def _reference(queries, database, k):
    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute")
    nn.fit(database.astype(np.float64))
    if queries is None:
        return nn.kneighbors()
    return nn.kneighbors(queries.astype(np.float64))


def test_normalize_rows():
    Z = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]])
    np.testing.assert_allclose(normalize_rows(Z), [[0.6, 0.8], [0, 0], [0, -1]])


@pytest.mark.parametrize("k", [1, 5, 40])
def test_agrees_with_nearest_neighbors(k):
    queries, database = _data()
    dist, ind = cosine_kneighbors(queries, normalize_rows(database), k)
    ref_dist, ref_ind = _reference(queries, database, k)
    assert dist.shape == ind.shape == (13, k)
    assert ind.dtype == np.int64
    np.testing.assert_allclose(dist, ref_dist, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ind, ref_ind)


@pytest.mark.parametrize("k", [1, 5, 39])
def test_exclude_self_agrees_with_nearest_neighbors_x_none(k):
    _, database = _data()
    unit = normalize_rows(database)
    dist, ind = cosine_kneighbors(database, unit, k, exclude=np.arange(len(database)))
    ref_dist, ref_ind = _reference(None, database, k)
    np.testing.assert_allclose(dist, ref_dist, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ind, ref_ind)
    assert not np.any(ind == np.arange(len(database))[:, None])


def test_queries_are_normalised_but_scale_free():
    queries, database = _data()
    unit = normalize_rows(database)
    dist, ind = cosine_kneighbors(queries, unit, 5)
    dist2, ind2 = cosine_kneighbors(queries * 37.5, unit, 5)
    np.testing.assert_allclose(dist, dist2, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ind, ind2)


def _self(queries, exclude_self):
    """Each query's own row to exclude, or None."""
    return np.arange(len(queries)) if exclude_self else None


@pytest.mark.parametrize("max_block", [1, 7, 41, 100])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_chunking_gives_identical_results(monkeypatch, max_block, exclude_self):
    queries, database = _data()
    if exclude_self:
        queries = database
    unit = normalize_rows(database)
    exclude = _self(queries, exclude_self)
    dist, ind = cosine_kneighbors(queries, unit, 6, exclude=exclude)
    monkeypatch.setattr(index_module, "MAX_BLOCK", max_block)
    dist_c, ind_c = cosine_kneighbors(queries, unit, 6, exclude=exclude)
    np.testing.assert_array_equal(ind_c, ind)
    # BLAS may round a 1-row matmul differently from a many-row one (1 ulp)
    np.testing.assert_allclose(dist_c, dist, rtol=0, atol=1e-12)


def test_chunking_small_database(monkeypatch):
    # MAX_BLOCK // n_db > 1: several queries per chunk, last chunk partial
    queries, database = _data(n_db=3, n_q=11)
    unit = normalize_rows(database)
    dist, ind = cosine_kneighbors(queries, unit, 2)
    monkeypatch.setattr(index_module, "MAX_BLOCK", 7)  # chunks of 2 queries
    dist_c, ind_c = cosine_kneighbors(queries, unit, 2)
    np.testing.assert_array_equal(ind_c, ind)
    np.testing.assert_allclose(dist_c, dist, rtol=0, atol=1e-12)
    ref_dist, ref_ind = _reference(queries, database, 2)
    np.testing.assert_array_equal(ind_c, ref_ind)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_distances_ascending_and_in_range(exclude_self):
    queries, database = _data(n_db=60, n_q=60, dim=4, seed=3)
    if exclude_self:
        queries = database
    dist, _ = cosine_kneighbors(queries, normalize_rows(database), 20,
                                exclude=_self(queries, exclude_self))
    assert np.all(np.diff(dist, axis=1) >= 0)
    assert np.all((dist >= 0) & (dist <= 2))


def test_float32():
    queries, database = _data(np.float32)
    dist, ind = cosine_kneighbors(queries, normalize_rows(database), 5)
    assert dist.dtype == np.float32
    assert ind.dtype == np.int64
    ref_dist, ref_ind = _reference(queries, database, 5)
    np.testing.assert_allclose(dist, ref_dist, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ind, ref_ind)


def test_float32_exclude_self():
    _, database = _data(np.float32)
    dist, ind = cosine_kneighbors(database, normalize_rows(database), 4,
                                  exclude=np.arange(len(database)))
    ref_dist, ref_ind = _reference(None, database, 4)
    np.testing.assert_allclose(dist, ref_dist, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ind, ref_ind)


def test_float64_queries_on_float32_database():
    queries, database = _data()
    unit32 = normalize_rows(database).astype(np.float32)
    dist, ind = cosine_kneighbors(queries, unit32, 5)
    assert dist.dtype == np.float32
    _, ref_ind = _reference(queries, database, 5)
    np.testing.assert_array_equal(ind, ref_ind)


def test_identical_direction_has_zero_distance():
    database = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    dist, ind = cosine_kneighbors(np.array([[2.0, 0.0]]), normalize_rows(database), 3)
    np.testing.assert_array_equal(ind, [[0, 1, 2]])
    np.testing.assert_allclose(dist, [[0.0, 1.0, 2.0]], atol=1e-12)


def test_non_contiguous_inputs():
    queries, database = _data()
    unit = np.asfortranarray(normalize_rows(database))
    dist, ind = cosine_kneighbors(np.asfortranarray(queries), unit, 5)
    ref_dist, ref_ind = _reference(queries, database, 5)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_allclose(dist, ref_dist, rtol=0, atol=1e-12)


def test_does_not_modify_inputs():
    queries, database = _data()
    unit = normalize_rows(database)
    q_copy, u_copy = queries.copy(), unit.copy()
    cosine_kneighbors(database, unit, 3, exclude=np.arange(len(database)))
    cosine_kneighbors(queries, unit, 3)
    np.testing.assert_array_equal(queries, q_copy)
    np.testing.assert_array_equal(unit, u_copy)
