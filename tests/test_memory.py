"""``memory``: the trained network cached by its training parameters and data."""

import pickle

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold

from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
)
from skbackward._network import _model
from skbackward._utils._threads import torch_threads
from skbackward.metrics import make_average_precision_scorer

FAST = dict(epochs=3, embedding_dim=16, max_steps=20, random_state=0)


@pytest.fixture
def trainings(monkeypatch):
    """Counts the networks trained (calls of the training loop on a
    retrieval network, not a student)."""
    calls = []
    real = _model.train_network

    def counting(network, *args, **kwargs):
        if isinstance(network, _model.RetrievalNetwork):
            calls.append(1)
        return real(network, *args, **kwargs)

    monkeypatch.setattr(_model, "train_network", counting)
    return calls


def _grid(memory, X, y):
    grid = GridSearchCV(
        BackwardSearchRetriever(**FAST, memory=memory),
        {"alpha": [0.05, 0.5, 2.0]},
        scoring=make_average_precision_scorer(k=5, exclude_own_class=True,
                                              n_queries=60),
        cv=KFold(3),
    )
    return grid.fit(X, y)


def test_grid_over_alpha_trains_once_per_fold(digits, tmp_path, trainings):
    X, _, y, _ = digits
    X, y = X[:450], y[:450]
    plain = _grid(None, X, y)
    assert len(trainings) == 3 * 3 + 1  # every candidate of every fold, the refit
    trainings.clear()
    cached = _grid(str(tmp_path), X, y)
    assert len(trainings) == 3 + 1  # one per fold, and the refit on all of X
    for key in ("mean_test_score", "split0_test_score", "split2_test_score"):
        np.testing.assert_array_equal(cached.cv_results_[key], plain.cv_results_[key])
    assert cached.best_params_ == plain.best_params_
    # a second search over the same folds trains nothing
    trainings.clear()
    _grid(joblib.Memory(str(tmp_path), verbose=0), X, y)
    assert trainings == []


def test_a_cache_hit_is_bit_identical_and_pickles(digits, tmp_path, trainings):
    X_train, X_test, y_train, _ = digits
    plain = BackwardSearchRetriever(**FAST).fit(X_train, y_train)
    miss = BackwardSearchRetriever(**FAST, memory=str(tmp_path)).fit(X_train, y_train)
    hit = BackwardSearchRetriever(**FAST, memory=str(tmp_path)).fit(X_train, y_train)
    assert len(trainings) == 2
    for ret in (miss, hit):
        assert ret.loss_curve_ == plain.loss_curve_
        for name, value in plain.model_.state_dict().items():
            assert np.array_equal(ret.model_.state_dict()[name], value), name
        np.testing.assert_array_equal(ret.transform(X_test, condition=3),
                                      plain.transform(X_test, condition=3))
        for a, b in zip(ret.kneighbors(X_test, condition=3),
                        plain.kneighbors(X_test, condition=3)):
            np.testing.assert_array_equal(a, b)
    # the cached network comes back as a fitted one: frozen, on the CPU
    assert not any(p.requires_grad for p in hit.model_.parameters())
    restored = pickle.loads(pickle.dumps(hit))
    np.testing.assert_array_equal(restored.transform(X_test, condition=3),
                                  plain.transform(X_test, condition=3))


@pytest.mark.parametrize("change", [
    {"epochs": 2}, {"learning_rate": 0.02}, {"embedding_dim": 8}, {"random_state": 1},
    {"lr_decay": 0.5}, {"batch_size": 32},
])
def test_training_parameters_and_data_are_the_key(digits, tmp_path, trainings, change):
    X, _, y, _ = digits
    X, y = X[:400], y[:400]
    BackwardSearchRetriever(**FAST, memory=str(tmp_path)).fit(X, y)
    BackwardSearchRetriever(**{**FAST, **change}, memory=str(tmp_path)).fit(X, y)
    assert len(trainings) == 2
    # other data, same parameters: trained again
    BackwardSearchRetriever(**FAST, memory=str(tmp_path)).fit(X[:-1], y[:-1])
    y_other = np.where(y == 0, 1, np.where(y == 1, 0, y))
    BackwardSearchRetriever(**FAST, memory=str(tmp_path)).fit(X, y_other)
    assert len(trainings) == 4
    # query-time parameters are not part of it; nor is verbose
    BackwardSearchRetriever(**{**FAST, "max_steps": 5}, memory=str(tmp_path),
                            alpha=3.0, select="last", n_neighbors=3,
                            verbose=1).fit(X, y)
    assert len(trainings) == 4


def test_the_thread_count_in_the_key_is_the_one_used(digits, tmp_path, trainings):
    # with the caller at one thread, None, 1 and -1 (the caller's setting)
    # all train with one thread: they share the network
    X, _, y, _ = digits
    with torch_threads(1):
        for n_threads in (None, 1, -1):
            BackwardSearchRetriever(**FAST, n_threads=n_threads,
                                    memory=str(tmp_path)).fit(X[:400], y[:400])
    assert len(trainings) == 1


def test_random_state_none_is_not_cached(digits, tmp_path, trainings):
    X, _, y, _ = digits
    ret = BackwardSearchRetriever(**{**FAST, "random_state": None},
                                  memory=str(tmp_path))
    with pytest.warns(UserWarning, match="caches nothing with random_state=None") as w:
        a = ret.fit(X, y).transform(X[:5])
    assert w[0].filename == __file__
    with pytest.warns(UserWarning, match="random_state=None"):
        b = ret.fit(X, y).transform(X[:5])
    assert len(trainings) == 2 and not np.array_equal(a, b)
    assert not any(tmp_path.rglob("output.pkl"))  # nothing stored


def test_random_state_instance_is_the_seed_it_draws(digits, tmp_path, trainings):
    X, _, y, _ = digits
    from sklearn.base import clone

    ret = BackwardSearchRetriever(**{**FAST, "random_state": np.random.RandomState(0)},
                                  memory=str(tmp_path))
    first = clone(ret).fit(X, y)
    second = clone(ret).fit(X, y)  # a clone draws the same seed: a hit
    assert len(trainings) == 1
    np.testing.assert_array_equal(first.transform(X[:5]), second.transform(X[:5]))
    ret.fit(X, y)
    ret.fit(X, y)  # the instance moved on: another seed, another network
    assert len(trainings) == 2


def test_peers_share_the_cached_network(digits, tmp_path, trainings):
    X, _, y, _ = digits
    search = BackwardSearchRetriever(**FAST, memory=str(tmp_path)).fit(X, y)
    shift = CentroidShiftRetriever(epochs=3, embedding_dim=16, random_state=0,
                                   memory=str(tmp_path)).fit(X, y)
    assert len(trainings) == 1
    np.testing.assert_array_equal(search.transform(X[:5]), shift.transform(X[:5]))


def test_distilled_teacher_memory(digits, tmp_path, trainings):
    X, _, y, _ = digits
    fits = [
        DistilledRetriever(BackwardSearchRetriever(**FAST), epochs=2,
                           random_state=0).set_params(teacher__memory=str(tmp_path),
                                                      teacher__alpha=alpha).fit(X, y)
        for alpha in (0.1, 1.0)
    ]
    assert len(trainings) == 1
    np.testing.assert_array_equal(fits[0].transform(X[:5]), fits[1].transform(X[:5]))
    # neither seed fixed: a warning, and no cache
    teacher = BackwardSearchRetriever(**{**FAST, "random_state": None},
                                      memory=str(tmp_path))
    with pytest.warns(UserWarning, match="teacher__memory caches nothing"):
        DistilledRetriever(teacher, epochs=2).fit(X, y)
    assert len(trainings) == 2


def test_bad_memory_is_refused(digits):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'memory' parameter"):
        BackwardSearchRetriever(**FAST, memory=3).fit(*digits[0::2])


def test_grid_in_worker_processes_shares_the_cache(digits, tmp_path):
    """GridSearchCV(n_jobs=2) fits in loky worker processes: they read and
    write the same cache, one entry per fold and one for the refit."""
    X, _, y, _ = digits
    X, y = X[:300], y[:300]
    grid = GridSearchCV(
        BackwardSearchRetriever(**FAST, memory=str(tmp_path)),
        {"alpha": [0.05, 0.5, 2.0]},
        scoring=make_average_precision_scorer(k=5, n_queries=40), cv=KFold(3), n_jobs=2,
    ).fit(X, y)
    entries = list(tmp_path.rglob("output.pkl"))
    assert len(entries) == 3 + 1
    serial = _grid_scores(X, y)
    np.testing.assert_array_equal(grid.cv_results_["mean_test_score"], serial)


def _grid_scores(X, y):
    return GridSearchCV(
        BackwardSearchRetriever(**FAST), {"alpha": [0.05, 0.5, 2.0]},
        scoring=make_average_precision_scorer(k=5, n_queries=40), cv=KFold(3),
    ).fit(X, y).cv_results_["mean_test_score"]
