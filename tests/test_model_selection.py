"""Tests of the paper's query protocol (skbackward.model_selection)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from skbackward.model_selection import sample_queries, sample_query_pairs


def _pairs(query_index, condition, names):
    """(query, condition...) tuples for checking distinctness."""
    return list(zip(query_index.tolist(), *(condition[a].tolist() for a in names)))


@pytest.fixture
def two_attributes():
    """A DataFrame of 60 items: style x/y (30 each), obj a/b/c (20 each)."""
    return pd.DataFrame(
        {"style": np.repeat(["x", "y"], 30), "obj": np.tile(["a", "b", "c"], 20)}
    )


# ---- one attribute -----------------------------------------------------------


@pytest.mark.parametrize("exclude_own_class", [False, True])
def test_pairs_are_distinct(exclude_own_class):
    y = np.repeat([0, 1, 2], 10)
    qi, cond = sample_queries(
        y, y, n_queries=50, k=5, exclude_own_class=exclude_own_class, random_state=0
    )
    assert qi.shape == (50,) and cond[0].shape == (50,)
    pairs = _pairs(qi, cond, [0])
    assert len(set(pairs)) == len(pairs)


@pytest.mark.parametrize("n_queries", [None, 40])
def test_conditions_only_classes_with_k_database_items(n_queries):
    y_db = np.repeat([0, 1, 2], [20, 5, 12])
    y_q = np.repeat([0, 1, 2], 10)
    qi, cond = sample_queries(y_q, y_db, n_queries=n_queries, k=10, random_state=0)
    assert set(np.unique(cond[0])) == {0, 2}


def test_class_with_exactly_k_items_is_eligible():
    y_db = np.repeat([0, 1], [10, 9])
    _, cond = sample_queries(np.arange(20) % 2, y_db, n_queries=None, k=10,
                             random_state=0)
    assert set(np.unique(cond[0])) == {0}


@pytest.mark.parametrize("n_queries", [None, 45])
def test_exclude_own_class_never_gives_own_class(n_queries):
    y = np.repeat(["cat", "dog", "owl"], 15)
    qi, cond = sample_queries(
        y, y, n_queries=n_queries, k=5, exclude_own_class=True, random_state=0
    )
    assert len(qi) > 0
    assert np.all(cond[0] != y[qi])


def test_own_class_allowed_by_default():
    # The paper allows the query's own class as the condition.
    y = np.repeat([0, 1], 20)
    qi, cond = sample_queries(y, y, n_queries=None, k=5, random_state=0)
    assert np.any(cond[0] == y[qi])


def test_exclude_own_class_drops_queries_with_no_other_condition():
    y_db = np.repeat([0, 1], [20, 2])  # only class 0 is eligible with k=10
    y_q = np.array([0, 0, 1, 1, 0])
    qi, cond = sample_queries(
        y_q, y_db, n_queries=None, k=10, exclude_own_class=True, random_state=0
    )
    np.testing.assert_array_equal(qi, [2, 3])
    np.testing.assert_array_equal(cond[0], [0, 0])


def test_balanced_sampling_balances_query_classes():
    y_q = np.repeat([0, 1, 2], [400, 100, 100])
    y_db = np.repeat([0, 1, 2], 20)
    for seed in range(3):
        qi, _ = sample_queries(y_q, y_db, n_queries=150, k=10, random_state=seed)
        share = np.bincount(y_q[qi], minlength=3) / len(qi)
        assert np.all((share > 0.2) & (share < 0.47)), share


def test_unbalanced_sampling_follows_item_frequencies():
    y_q = np.repeat([0, 1, 2], [400, 100, 100])
    y_db = np.repeat([0, 1, 2], 20)
    qi, _ = sample_queries(y_q, y_db, n_queries=150, k=10, balanced=False,
                           random_state=0)
    share = np.bincount(y_q[qi], minlength=3) / len(qi)
    assert share[0] > 0.55, share


def test_n_queries_none_gives_each_query_once():
    y_q = np.array([2, 0, 1, 1, 0, 2, 2])
    y_db = np.repeat([0, 1, 2], 6)
    qi, cond = sample_queries(y_q, y_db, n_queries=None, k=5, random_state=0)
    np.testing.assert_array_equal(qi, np.arange(len(y_q)))
    assert cond[0].shape == (len(y_q),)
    assert set(cond[0]) <= {0, 1, 2}


@pytest.mark.parametrize("n_queries", [None, 30])
def test_reproducible_with_random_state(n_queries):
    y = np.repeat(["a", "b", "c"], 12)
    first = sample_queries(y, y, n_queries=n_queries, k=5, random_state=42)
    second = sample_queries(y, y, n_queries=n_queries, k=5, random_state=42)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1][0], second[1][0])
    third = sample_queries(y, y, n_queries=n_queries, k=5,
                           random_state=np.random.RandomState(42))
    np.testing.assert_array_equal(first[0], third[0])
    np.testing.assert_array_equal(first[1][0], third[1][0])


def test_different_random_states_differ():
    y = np.repeat(["a", "b", "c"], 12)
    first = sample_queries(y, y, n_queries=30, k=5, random_state=0)
    second = sample_queries(y, y, n_queries=30, k=5, random_state=1)
    assert _pairs(first[0], first[1], [0]) != _pairs(second[0], second[1], [0])


def test_string_labels_come_back_as_labels():
    y = np.repeat(["sketch", "photo"], 10)
    _, cond = sample_queries(y, y, n_queries=5, k=5, random_state=0)
    assert set(cond[0]) <= {"sketch", "photo"}


def test_list_input_accepted():
    y = [0] * 8 + [1] * 8
    qi, cond = sample_queries(y, y, n_queries=10, k=4, random_state=0)
    assert qi.shape == (10,) and cond[0].shape == (10,)


# ---- several attributes ------------------------------------------------------


def test_joint_conditions_on_dataframe(two_attributes):
    y = two_attributes
    qi, cond = sample_queries(y, y, n_queries=40, k=8, random_state=0)
    assert list(cond) == ["style", "obj"]
    assert qi.shape == (40,)
    counts = y.value_counts(["style", "obj"])
    for s, o in zip(cond["style"], cond["obj"]):
        assert counts[(s, o)] >= 8
    pairs = _pairs(qi, cond, ["style", "obj"])
    assert len(set(pairs)) == len(pairs)


def test_joint_conditions_only_combinations_with_k_items():
    y_db = pd.DataFrame({"style": ["x"] * 12 + ["y"] * 12,
                         "obj": ["a"] * 10 + ["b"] * 2 + ["a"] * 3 + ["b"] * 9})
    # per attribute every class has >= 5 items; jointly only (x, a), (y, b) do
    _, cond = sample_queries(y_db, y_db, n_queries=None, k=5, random_state=0)
    combos = set(zip(cond["style"], cond["obj"]))
    assert combos <= {("x", "a"), ("y", "b")}
    assert len(combos) == 2


def test_joint_exclude_own_class(two_attributes):
    y = two_attributes
    qi, cond = sample_queries(y, y, n_queries=None, k=8, exclude_own_class=True,
                              random_state=0)
    own = y.iloc[qi]
    same = (cond["style"] == own["style"].to_numpy()) & (
        cond["obj"] == own["obj"].to_numpy()
    )
    assert not same.any()


def test_condition_on_one_attribute(two_attributes):
    y = two_attributes
    qi, cond = sample_queries(y, y, condition_on="obj", n_queries=30, k=15,
                              exclude_own_class=True, random_state=0)
    assert list(cond) == ["obj"]
    assert set(cond["obj"]) <= {"a", "b", "c"}
    assert np.all(cond["obj"] != y["obj"].to_numpy()[qi])


def test_condition_on_list_of_attributes(two_attributes):
    y = two_attributes
    _, cond = sample_queries(y, y, condition_on=["obj", "style"], n_queries=10,
                             k=5, random_state=0)
    assert list(cond) == ["obj", "style"]


def test_two_dimensional_array_uses_integer_attribute_names(two_attributes):
    y = two_attributes.to_numpy()
    qi, cond = sample_queries(y, y, n_queries=20, k=8, random_state=0)
    assert list(cond) == [0, 1]
    _, cond = sample_queries(y, y, condition_on=1, n_queries=20, k=8,
                             random_state=0)
    assert list(cond) == [1]
    assert set(cond[1]) <= {"a", "b", "c"}


def test_unknown_condition_on_attribute(two_attributes):
    with pytest.raises(ValueError, match="unknown attribute.*colour"):
        sample_queries(two_attributes, two_attributes, condition_on="colour", k=5)


def test_attribute_count_mismatch():
    y_q = np.zeros((6, 2), dtype=int)
    y_db = np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match="attribute"):
        sample_queries(y_q, y_db, k=5)


# ---- errors and warnings -----------------------------------------------------


@pytest.mark.parametrize("n_queries", [None, 10])
def test_error_when_no_class_has_k_items(n_queries):
    y = np.repeat([0, 1, 2], 4)
    with pytest.raises(ValueError, match="no condition class has at least k=5"):
        sample_queries(y, y, n_queries=n_queries, k=5, random_state=0)


def test_warning_when_fewer_distinct_pairs_than_asked():
    y_db = np.repeat([0, 1, 2], [20, 5, 12])  # 2 eligible conditions with k=10
    y_q = np.array([0, 1, 2])  # 3 items x 2 conditions = 6 distinct pairs
    with pytest.warns(UserWarning, match="only 6 distinct"):
        qi, cond = sample_queries(y_q, y_db, n_queries=10, k=10, random_state=0)
    assert len(set(_pairs(qi, cond, [0]))) == 6 == len(qi)


def test_no_warning_when_enough_pairs():
    y = np.repeat([0, 1], 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample_queries(y, y, n_queries=40, k=5, random_state=0)


def test_empty_queries_raise_clear_error():
    y_db = np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match="(?i)quer"):
        sample_queries(np.array([], dtype=int), y_db, n_queries=5, k=5,
                       random_state=0)


@pytest.mark.parametrize("n_queries", [0, -5, 2.5])
def test_invalid_n_queries(n_queries):
    y = np.repeat([0, 1], 10)
    with pytest.raises((TypeError, ValueError), match="n_queries"):
        sample_queries(y, y, n_queries=n_queries, k=5, random_state=0)


# ---- sample_query_pairs on codes --------------------------------------------


def test_sample_query_pairs_ignores_unlabelled_database_items():
    db = np.array([[0]] * 10 + [[-1]] * 30 + [[1]] * 3)
    q = np.array([[0], [1], [0]])
    qi, cond = sample_query_pairs(q, db, n_queries=None, k=5, random_state=0)
    assert cond.shape == (3, 1)
    np.testing.assert_array_equal(cond[:, 0], [0, 0, 0])


def test_sample_query_pairs_shapes_and_distinct():
    rng = np.random.RandomState(0)
    q = rng.randint(3, size=(50, 2))
    db = rng.randint(3, size=(300, 2))
    qi, cond = sample_query_pairs(q, db, n_queries=100, k=10, random_state=0)
    assert qi.shape == (100,) and cond.shape == (100, 2)
    rows = {(i, *c) for i, c in zip(qi.tolist(), cond.tolist())}
    assert len(rows) == 100
    assert qi.min() >= 0 and qi.max() < 50


def test_dataframe_columns_are_paired_by_name():
    yq = pd.DataFrame({"a": ["p", "q"] * 20, "b": ["x", "y", "z", "w"] * 10})
    kwargs = dict(condition_on="a", n_queries=5, k=5, random_state=0)
    qi, cond = sample_queries(yq, yq[["b", "a"]], **kwargs)
    expected = sample_queries(yq, yq, **kwargs)
    np.testing.assert_array_equal(qi, expected[0])
    assert set(cond["a"]) <= {"p", "q"}
    np.testing.assert_array_equal(cond["a"], expected[1]["a"])
    with pytest.raises(ValueError, match="y_database has columns.*y_query has columns"):
        sample_queries(yq, yq.rename(columns={"b": "c"}), **kwargs)
