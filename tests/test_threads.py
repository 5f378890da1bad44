"""``n_threads``: torch threads scoped to each call, the caller's setting kept."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from skbackward import BackwardSearchRetriever, DistilledRetriever
from skbackward._network import _model
from skbackward._utils._threads import torch_threads

FAST = dict(epochs=3, embedding_dim=16, max_steps=20, random_state=0)


@pytest.fixture
def caller_threads():
    """The caller runs with 2 torch threads (the tests' default is 1);
    restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


@pytest.fixture
def seen(monkeypatch):
    """Torch's thread count inside training and inside query embedding."""
    counts = {"fit": set(), "query": set()}
    loss, embed = _model.heads_loss, _model.predict_embedding

    def counting_loss(*args):
        counts["fit"].add(torch.get_num_threads())
        return loss(*args)

    def counting_embed(*args, **kwargs):
        counts["query"].add(torch.get_num_threads())
        return embed(*args, **kwargs)

    monkeypatch.setattr(_model, "heads_loss", counting_loss)
    monkeypatch.setattr(_model, "predict_embedding", counting_embed)
    return counts


@pytest.mark.parametrize("n_threads, inside", [(None, 1), (1, 1), (3, 3), (-1, 2)])
def test_calls_run_with_n_threads_and_restore_the_callers_setting(
        digits, caller_threads, seen, n_threads, inside):
    X_train, X_test, y_train, _ = digits
    # small: several threads on a busy machine are slow (the point of the default)
    ret = BackwardSearchRetriever(**{**FAST, "epochs": 1}, n_threads=n_threads)
    ret.fit(X_train[:200], y_train[:200])
    assert torch.get_num_threads() == caller_threads
    ret.transform(X_test[:5], condition=1)
    ret.kneighbors(X_test[:5], condition=1)
    ret.condition_report(X_test[:5], condition=1)
    ret.index(X_test[:50])
    assert torch.get_num_threads() == caller_threads
    assert seen == {"fit": {inside}, "query": {inside}}


def test_the_setting_is_restored_when_a_call_raises(digits, caller_threads):
    X_train, X_test, y_train, _ = digits
    ret = BackwardSearchRetriever(**FAST).fit(X_train, y_train)
    with pytest.raises(ValueError, match="unknown condition label"):
        ret.kneighbors(X_test[:3], condition=11)
    with pytest.raises(ValueError, match="one class"):
        BackwardSearchRetriever(**FAST).fit(X_train, np.zeros(len(X_train)))
    assert torch.get_num_threads() == caller_threads


def test_default_results_do_not_depend_on_the_callers_threads(digits, caller_threads):
    X_train, X_test, y_train, _ = digits
    busy = BackwardSearchRetriever(**FAST).fit(X_train, y_train)
    Z_busy = busy.transform(X_test, condition=4)
    torch.set_num_threads(1)
    one = BackwardSearchRetriever(**FAST).fit(X_train, y_train)
    assert busy.loss_curve_ == one.loss_curve_
    np.testing.assert_array_equal(Z_busy, one.transform(X_test, condition=4))


def test_concurrent_fits_in_threads_are_reproducible(digits, caller_threads):
    """Each thread keeps its own count: fits running side by side in threads
    (whose own setting is the caller's 2) give the serial fit's results, and
    the caller's setting survives them."""
    X_train, X_test, y_train, _ = digits
    serial = BackwardSearchRetriever(**FAST).fit(X_train, y_train)

    def fit(n_threads):
        ret = BackwardSearchRetriever(**FAST, n_threads=n_threads)
        return ret.fit(X_train, y_train).transform(X_test, condition=2)

    with ThreadPoolExecutor(4) as pool:
        # other calls with other counts run beside them
        results = list(pool.map(fit, [None, 2, None, 2, None, 2]))
    expected = serial.transform(X_test, condition=2)
    for Z in results[::2]:
        np.testing.assert_array_equal(Z, expected)
    for Z in results[1::2]:
        np.testing.assert_array_equal(Z, results[1])
    assert torch.get_num_threads() == caller_threads


@pytest.mark.filterwarnings("ignore::skbackward.exceptions.ConditionNotReachedWarning")
def test_distilled_teacher_and_student_threads(digits, caller_threads, seen):
    X_train, X_test, y_train, _ = digits
    teacher = BackwardSearchRetriever(**FAST, n_threads=3)
    ret = DistilledRetriever(teacher, epochs=2, random_state=0).fit(X_train, y_train)
    assert seen["fit"] == {3}  # the teacher's network trained with its own
    assert seen["query"] == {1}  # the index and the student's targets: None is 1
    ret.kneighbors(X_test[:4], condition=3)
    assert torch.get_num_threads() == caller_threads


def test_torch_threads_nests_and_restores():
    before = torch.get_num_threads()
    with torch_threads(3):
        assert torch.get_num_threads() == 3
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
        with pytest.raises(RuntimeError), torch_threads(2):
            raise RuntimeError
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_bad_n_threads_is_refused(digits, bad):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'n_threads' parameter"):
        BackwardSearchRetriever(**FAST, n_threads=bad).fit(*digits[0::2])
