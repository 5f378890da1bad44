"""Tests of the exact tiled cosine top-k (skbackward.indexes._topk)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize as normalize_rows

import skbackward.indexes._topk as index_module
from skbackward.indexes._topk import exact_topk, unit_float32


def _data(n_db=300, n_q=37, dim=8, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n_q, dim), rng.randn(n_db, dim)


def _unit(X):
    return unit_float32(X)[0]


def _reference(queries, database, k, rows=None, exclude=None):
    """Brute-force float64 top-k by cosine (item numbers, similarities)."""
    cos = normalize_rows(queries) @ normalize_rows(database).T
    if rows is not None:
        keep = np.zeros(database.shape[0], bool)
        keep[rows] = True
        cos[:, ~keep] = -np.inf
    if exclude is not None:
        on = exclude >= 0
        cos[np.flatnonzero(on), exclude[on]] = -np.inf
    ids = np.argsort(-cos, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(cos, ids, 1), ids


def _small_tiles(monkeypatch, tile=16, group=4, q_tile=16):
    monkeypatch.setattr(index_module, "ITEM_TILE", tile)
    monkeypatch.setattr(index_module, "GROUP", group)
    monkeypatch.setattr(index_module, "MAX_QUERY_TILE", q_tile)


def test_unit_float32():
    unit, norms = unit_float32(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert unit.dtype == norms.dtype == np.float32
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0, 0]], rtol=1e-7)
    np.testing.assert_array_equal(norms, [5, 0])


@pytest.mark.parametrize("k", [1, 5, 40, 300])
def test_agrees_with_brute_force(k):
    queries, database = _data()
    sims, ids = exact_topk(_unit(queries), [_unit(database)], k)
    ref_sims, ref_ids = _reference(queries, database, k)
    assert sims.shape == ids.shape == (37, k)
    assert sims.dtype == np.float32 and ids.dtype == np.int64
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(sims, ref_sims, atol=1e-6)


def test_agrees_with_nearest_neighbors_cosine():
    queries, database = _data()
    _, ids = exact_topk(_unit(queries), [_unit(database)], 7)
    nn = NearestNeighbors(n_neighbors=7, metric="cosine", algorithm="brute")
    np.testing.assert_array_equal(ids, nn.fit(database).kneighbors(queries)[1])


@pytest.mark.parametrize("tile, group, q_tile", [(16, 4, 16), (8, 8, 32), (32, 1, 16)])
def test_tiling_gives_identical_results(monkeypatch, tile, group, q_tile):
    queries, database = _data()
    q, db = _unit(queries), _unit(database)
    exclude = np.arange(37) * 3
    expected = exact_topk(q, [db], 6, exclude=exclude)
    _small_tiles(monkeypatch, tile, group, q_tile)
    for got, want in zip(exact_topk(q, [db], 6, exclude=exclude), expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("working_memory", [0.01, 0.1, 1])
def test_working_memory_bounds_the_blocks_not_the_result(working_memory):
    # 0.01 MiB: one query tile of 16 rows, a block of one item tile
    queries, database = _data(n_db=5000, n_q=40, dim=16)
    q, db = _unit(queries), _unit(database)
    expected = exact_topk(q, [db], 10)
    got = exact_topk(q, [db], 10, working_memory=working_memory)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


PEAK_MEMORY_SCRIPT = """
import sys
import numpy as np, torch
from skbackward.indexes._topk import exact_topk
torch.set_num_threads(1)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

items = np.random.default_rng(0).standard_normal((200_000, 32), dtype=np.float32)
items /= np.linalg.norm(items, axis=1, keepdims=True)
queries = items[:128].copy()
k, wm = int(sys.argv[1]), float(sys.argv[2])
exact_topk(queries, [items], 10, working_memory=wm)  # torch's own start-up
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM)
before = status("VmRSS")
sims, ids = exact_topk(queries, [items], k, working_memory=wm)
print((status("VmHWM") - before) / 2**20, (sims.nbytes + ids.nbytes) / 2**20)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(),
                    reason="measures peak memory through Linux's /proc")
@pytest.mark.parametrize("k, working_memory", [(500, 8), (3000, 4)])
def test_working_memory_bounds_the_peak_for_a_large_k(k, working_memory):
    # pass 2 holds every query's candidates: with a large k, the query tile
    # must shrink to fit them (the peak was 37-51 MiB here before it did;
    # 8-10 MiB after, alone, up to 16 on a busy machine: the allocator's slack)
    out = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY_SCRIPT, str(k), str(working_memory)],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    peak, results = float(out[0]), float(out[1])
    assert peak <= 2 * working_memory + results + 8, (peak, results)


def test_exclude_self_with_every_other_item():
    queries, database = _data(n_db=30, n_q=30)
    exclude = np.arange(30)
    sims, ids = exact_topk(_unit(database), [_unit(database)], 29, exclude=exclude)
    ref_sims, ref_ids = _reference(database, database, 29, exclude=exclude)
    np.testing.assert_array_equal(ids, ref_ids)
    assert not (ids == exclude[:, None]).any()
    # asking for all 30: the last one is missing, not the excluded item
    sims, ids = exact_topk(_unit(database), [_unit(database)], 30, exclude=exclude)
    np.testing.assert_array_equal(ids[:, :29], ref_ids)
    assert (ids[:, 29] == -1).all() and np.isneginf(sims[:, 29]).all()


def test_exclude_minus_one_is_none():
    queries, database = _data()
    q, db = _unit(queries), _unit(database)
    got = exact_topk(q, [db], 5, exclude=np.full(37, -1))
    for a, b in zip(got, exact_topk(q, [db], 5)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("small", [False, True])
def test_rows_restrict_the_search(monkeypatch, small):
    if small:
        _small_tiles(monkeypatch)
    queries, database = _data()
    rows = np.flatnonzero(np.random.RandomState(1).rand(300) < 0.3)
    exclude = rows[np.arange(37) % len(rows)]
    exclude[::2] = 5  # an item that may not be among the rows
    sims, ids = exact_topk(_unit(queries), [_unit(database)], 8, rows=rows,
                           exclude=exclude)
    ref_sims, ref_ids = _reference(queries, database, 8, rows=rows, exclude=exclude)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(sims, ref_sims, atol=1e-6)


def test_fewer_rows_than_k():
    queries, database = _data()
    sims, ids = exact_topk(_unit(queries), [_unit(database)], 5, rows=np.array([3, 9]))
    assert set(ids[:, :2].ravel()) <= {3, 9} and (ids[:, 2:] == -1).all()
    assert np.isfinite(sims[:, :2]).all() and np.isneginf(sims[:, 2:]).all()
    sims, ids = exact_topk(_unit(queries), [_unit(database)], 5, rows=np.array([], int))
    assert (ids == -1).all()


@pytest.mark.parametrize("small", [False, True])
def test_segments_are_one_database(monkeypatch, small):
    if small:
        _small_tiles(monkeypatch)
    queries, database = _data()
    q, db = _unit(queries), _unit(database)
    segments = [db[:100], db[100:107], db[107:]]
    rows = np.arange(0, 300, 7)
    for kw in ({}, {"rows": rows}, {"exclude": np.arange(37) + 90}):
        got = exact_topk(q, segments, 9, **kw)
        for a, b in zip(got, exact_topk(q, [db], 9, **kw)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("small", [False, True])
def test_a_query_does_not_depend_on_its_batch(monkeypatch, small):
    # scikit-learn's subset invariance, bit for bit (float32 matmuls of 1-3
    # rows take other BLAS paths: query tiles are padded)
    if small:
        _small_tiles(monkeypatch)
    rng = np.random.RandomState(0)
    q = _unit(rng.randn(300, 64))
    db = _unit(rng.randn(2000, 64))
    sims, ids = exact_topk(q, [db], 10)
    for n in (1, 2, 3, 5, 17, 100):
        part = rng.choice(300, n, replace=False)
        s, i = exact_topk(q[part], [db], 10)
        np.testing.assert_array_equal(i, ids[part])
        np.testing.assert_array_equal(s, sims[part])


def test_zero_query_and_scale_free():
    queries, database = _data()
    db = _unit(database)
    sims, ids = exact_topk(_unit(np.zeros((1, 8))), [db], 3)
    assert (sims == 0).all() and (ids >= 0).all()
    a = exact_topk(_unit(queries), [db], 5)
    b = exact_topk(_unit(queries * 37.5), [db], 5)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], atol=1e-7)


def test_does_not_modify_inputs():
    queries, database = _data()
    q, db = _unit(queries), _unit(database)
    q_copy, db_copy = q.copy(), db.copy()
    exact_topk(q, [db], 3, exclude=np.arange(37))
    np.testing.assert_array_equal(q, q_copy)
    np.testing.assert_array_equal(db, db_copy)
