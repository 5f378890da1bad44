"""feature_weight="auto": the pair-free choice of how much the ranking looks at
the input features (skbackward/_retrievers/_context.py)."""

import copy

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skbackward import BackwardSearchRetriever, DistilledRetriever
from skbackward._retrievers import _context
from skbackward._retrievers._context import (
    CANDIDATES,
    _largest_free_weight,
    counterpart_rates,
)

from .conftest import two_attribute_data

FAST = dict(epochs=3, embedding_dim=8, max_steps=20, random_state=0)


def items_in_forms(change, n_items=60, seed=0):
    """``X, codes``: ``n_items`` random items (two kinds), each in two forms
    made by ``change``; codes = (kind, form)."""
    rng = np.random.RandomState(seed)
    kind = np.arange(n_items) % 2
    base = rng.normal(size=(n_items, 12)) + 3 * np.eye(12)[kind]
    X = np.vstack([base, change(base)])
    codes = np.column_stack([np.tile(kind, 2), np.repeat([0, 1], n_items)])
    return X, codes


def test_counterpart_rate_is_high_where_a_form_is_a_small_change():
    # a form that scales an item keeps it nearest to its own other form; one
    # that moves it far (a mirror in pixels) does not
    rng = np.random.RandomState(1)
    X, codes = items_in_forms(lambda b: 0.5 * b + rng.normal(scale=0.05, size=b.shape))
    assert counterpart_rates(X, codes, seed=0)[1] > 0.9
    X, codes = items_in_forms(lambda b: b[:, ::-1] + 2.0)
    assert counterpart_rates(X, codes, seed=0)[1] < 0.2


def test_largest_free_weight_stops_at_the_first_that_costs():
    free = {w: (0.9, 0.8) for w in CANDIDATES}
    scores = {0: dict(free), 1: dict(free)}
    assert _largest_free_weight(scores, kept=True) == 1.0
    scores[1][0.5] = (0.9, 0.7)  # kept drops at 0.5
    assert _largest_free_weight(scores, kept=True) == 0.25
    assert _largest_free_weight(scores, kept=False) == 1.0
    assert _largest_free_weight(scores, kept=False, most=0.6) == 0.5
    scores[0][0.25] = (0.5, 0.8)  # precision drops at 0.25
    assert _largest_free_weight(scores, kept=False) == 0.0


@pytest.fixture(scope="module")
def auto_fitted():
    X, shape, colour = two_attribute_data(n=300)
    y = np.empty((len(X), 2), dtype=object)  # int shapes, str colours
    y[:, 0], y[:, 1] = shape, colour
    ret = BackwardSearchRetriever(feature_weight="auto", **FAST).fit(X, y)
    return ret, X, y


def test_auto_chooses_a_candidate_and_ranks_with_it(auto_fitted):
    ret, X, y = auto_fitted
    assert ret.feature_weight_ in CANDIDATES
    report = ret.feature_weight_report_
    assert set(report["counterparts"]) == set(report["scores"]) == {0, 1}
    # the ranking is the fixed weight's it chose
    fixed = BackwardSearchRetriever(feature_weight=max(ret.feature_weight_, 0.25),
                                    **FAST).fit(X, y)
    fixed.set_params(feature_weight=ret.feature_weight_)
    np.testing.assert_array_equal(
        ret.kneighbors(X[:20], condition={0: 2})[1],
        fixed.kneighbors(X[:20], condition={0: 2})[1])
    # a number set after fit applies as given
    other = copy.deepcopy(ret).set_params(feature_weight=0.0)
    np.testing.assert_array_equal(
        other.kneighbors(X[:20], condition={0: 2})[1],
        copy.deepcopy(fixed).set_params(feature_weight=0.0).kneighbors(
            X[:20], condition={0: 2})[1])


def test_auto_bounds_the_internal_split(monkeypatch):
    # on large data the internal copy sees a random subset, not 70% of all
    monkeypatch.setattr(_context, "MAX_INTERNAL_ITEMS", 150)
    X, shape, colour = two_attribute_data(n=300)
    y = np.column_stack([shape, np.unique(colour, return_inverse=True)[1]])
    ret = BackwardSearchRetriever(feature_weight="auto", **FAST).fit(X, y)
    assert ret.feature_weight_report_["internal_items"] == 150


def test_auto_is_deterministic(auto_fitted):
    ret, X, y = auto_fitted
    again = BackwardSearchRetriever(feature_weight="auto", **FAST).fit(X, y)
    assert again.feature_weight_ == ret.feature_weight_
    assert again.feature_weight_report_ == ret.feature_weight_report_


def test_auto_picks_the_input_space_where_the_items_other_forms_are_nearest():
    rng = np.random.RandomState(0)
    X, codes = items_in_forms(lambda b: 0.5 * b + rng.normal(scale=0.05, size=b.shape),
                              n_items=150)
    ret = BackwardSearchRetriever(feature_weight="auto", **{**FAST, "epochs": 10})
    ret.fit(X, codes)
    assert ret.feature_weight_report_["counterparts"][1] > 0.9
    assert ret.feature_weight_ > 0


def test_auto_with_one_attribute_and_too_few_items():
    X, shape, _ = two_attribute_data(n=200)
    ret = BackwardSearchRetriever(feature_weight="auto", **FAST).fit(X, shape)
    assert set(ret.feature_weight_report_["counterparts"]) == {0}
    assert ret.kneighbors(X[:3], condition=1)[1].shape == (3, 10)
    tiny = BackwardSearchRetriever(feature_weight="auto", **FAST)
    tiny.fit(X[:12], shape[:12])
    assert tiny.feature_weight_ == 0.0 and tiny.feature_weight_report_["scores"] == {}


def test_fixed_weight_is_kept_as_the_fitted_one():
    X, shape, _ = two_attribute_data(n=60)
    ret = BackwardSearchRetriever(feature_weight=0.3, **FAST).fit(X, shape)
    assert ret.feature_weight_ == 0.3 and ret.feature_weight_report_ == {}


def test_student_of_an_auto_teacher_ranks_with_its_choice(auto_fitted):
    ret, X, y = auto_fitted
    student = DistilledRetriever(ret, prefit=True, epochs=2, random_state=0).fit(X, y)
    assert student._feature_weight() == ret.feature_weight_


def test_auto_is_the_default():
    assert BackwardSearchRetriever().feature_weight == "auto"


def test_student_of_an_unfitted_auto_teacher_ranks_with_its_choice(auto_fitted):
    # the student fits the teacher itself: the teacher chooses as it would alone
    ret, X, y = auto_fitted
    student = DistilledRetriever(BackwardSearchRetriever(feature_weight="auto", **FAST),
                                 epochs=2, random_state=0).fit(X, y)
    assert student.teacher_.feature_weight_ == ret.feature_weight_
    assert (student.teacher_.feature_weight_report_["counterparts"]
            == ret.feature_weight_report_["counterparts"])
    assert student._feature_weight() == ret.feature_weight_


def test_other_strings_are_rejected():
    X, shape, _ = two_attribute_data(n=60)
    with pytest.raises(InvalidParameterError, match="feature_weight"):
        BackwardSearchRetriever(feature_weight="best", **FAST).fit(X, shape)
