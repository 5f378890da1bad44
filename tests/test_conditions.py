"""Tests of condition parsing (skbackward._retrievers._conditions) and labels
(skbackward._utils._labels)."""

import numpy as np
import pandas as pd
import pytest

from skbackward import NearestNeighborRetriever
from skbackward._retrievers._conditions import parse_condition
from skbackward._utils._labels import (
    as_columns,
    attribute_columns,
    count_rows,
    encode_columns,
    find_rows,
    lookup,
)

ONE_ATTR = ([0], [np.array(["cat", "dog", "owl"])])
TWO_ATTRS = (
    ["domain", "label"],
    [np.array(["photo", "sketch"]), np.array(["cat", "dog"])],
)
INT_ATTRS = ([0, 1], [np.array([0, 1, 2]), np.array([1, 2, 3, 4])])


def parse(condition, attrs=ONE_ATTR, n_queries=3, condition_weight=None):
    attributes, classes = attrs
    return parse_condition(condition, attributes, classes, n_queries, condition_weight)


# ---- accepted forms ----------------------------------------------------------


def test_scalar_applies_to_every_query():
    targets, weights = parse("dog")
    assert targets.dtype == np.int64 and weights.dtype == np.float64
    np.testing.assert_array_equal(targets, [[1], [1], [1]])
    np.testing.assert_array_equal(weights, np.ones((3, 1)))


@pytest.mark.parametrize(
    "condition",
    [["owl", "cat", "dog"], ("owl", "cat", "dog"), np.array(["owl", "cat", "dog"]),
     pd.Series(["owl", "cat", "dog"], index=[7, 8, 9])],
    ids=["list", "tuple", "ndarray", "series"],
)
def test_one_label_per_query(condition):
    targets, weights = parse(condition)
    np.testing.assert_array_equal(targets[:, 0], [2, 0, 1])
    np.testing.assert_array_equal(weights[:, 0], [1, 1, 1])


def test_none_entries_leave_query_unconstrained():
    targets, weights = parse(["owl", None, "cat"])
    np.testing.assert_array_equal(targets[:, 0], [2, -1, 0])
    np.testing.assert_array_equal(weights[:, 0], [1, 0, 1])


def test_nan_entries_leave_query_unconstrained():
    targets, weights = parse(np.array(["owl", np.nan, "cat"], dtype=object))
    np.testing.assert_array_equal(targets[:, 0], [2, -1, 0])
    np.testing.assert_array_equal(weights[:, 0], [1, 0, 1])


def test_pandas_missing_entries_leave_query_unconstrained():
    # A pandas column of the nullable "string" dtype marks missing as pd.NA.
    condition = pd.Series(["owl", None, "cat"], dtype="string")
    targets, weights = parse(condition)
    np.testing.assert_array_equal(targets[:, 0], [2, -1, 0])
    np.testing.assert_array_equal(weights[:, 0], [1, 0, 1])


def test_dict_with_several_attributes():
    targets, weights = parse(
        {"label": "dog", "domain": ["sketch", None]}, TWO_ATTRS, n_queries=2
    )
    np.testing.assert_array_equal(targets, [[1, 1], [-1, 1]])
    np.testing.assert_array_equal(weights, [[1, 1], [0, 1]])


def test_dict_leaves_unnamed_attributes_unconstrained():
    targets, weights = parse({"label": "cat"}, TWO_ATTRS, n_queries=2)
    np.testing.assert_array_equal(targets, [[-1, 0], [-1, 0]])
    np.testing.assert_array_equal(weights, [[0, 1], [0, 1]])


def test_int_labels_and_numpy_scalars():
    attrs = ([0], [np.array([3, 5, 8])])
    for condition in (5, np.int64(5), np.int32(5), np.uint8(5), 5.0, np.float64(5.0)):
        targets, _ = parse(condition, attrs, n_queries=2)
        np.testing.assert_array_equal(targets[:, 0], [1, 1])
    targets, _ = parse(np.array([8, 3], dtype=np.int16), attrs, n_queries=2)
    np.testing.assert_array_equal(targets[:, 0], [2, 0])


def test_numpy_string_scalar():
    targets, _ = parse(np.str_("owl"))
    np.testing.assert_array_equal(targets[:, 0], [2, 2, 2])
    targets, _ = parse(np.array(["cat", "owl", "cat"])[1])
    np.testing.assert_array_equal(targets[:, 0], [2, 2, 2])


def test_integer_attribute_names_in_dict():
    targets, _ = parse({1: 4}, INT_ATTRS, n_queries=1)
    np.testing.assert_array_equal(targets, [[-1, 3]])


def test_zero_queries():
    targets, weights = parse("dog", n_queries=0)
    assert targets.shape == (0, 1) and weights.shape == (0, 1)


# ---- bare labels with several attributes --------------------------------------


def test_bare_label_resolved_to_the_unique_attribute():
    targets, weights = parse("sketch", TWO_ATTRS, n_queries=2)
    np.testing.assert_array_equal(targets, [[1, -1], [1, -1]])
    np.testing.assert_array_equal(weights, [[1, 0], [1, 0]])
    targets, _ = parse(["dog", "cat"], TWO_ATTRS, n_queries=2)
    np.testing.assert_array_equal(targets, [[-1, 1], [-1, 0]])


def test_bare_label_with_none_entries_resolved():
    targets, _ = parse(["dog", None], TWO_ATTRS, n_queries=2)
    np.testing.assert_array_equal(targets, [[-1, 1], [-1, -1]])


def test_bare_int_label_in_only_one_attribute():
    targets, _ = parse(4, INT_ATTRS, n_queries=1)
    np.testing.assert_array_equal(targets, [[-1, 3]])
    targets, _ = parse(0, INT_ATTRS, n_queries=1)
    np.testing.assert_array_equal(targets, [[0, -1]])


def test_ambiguous_bare_label():
    # 2 is a class of both attributes
    with pytest.raises(ValueError, match="ambiguous.*pass a dict"):
        parse(2, INT_ATTRS, n_queries=1)


def test_bare_label_in_no_attribute():
    msg = r"matches no attribute.*\['domain', 'label'\]"
    with pytest.raises(ValueError, match=msg):
        parse("horse", TWO_ATTRS, n_queries=1)


def test_bare_numpy_label_in_no_attribute_message_is_plain():
    with pytest.raises(ValueError, match="condition 'horse' matches no attribute"):
        parse(np.str_("horse"), TWO_ATTRS, n_queries=1)


def test_bare_labels_spread_over_attributes():
    with pytest.raises(ValueError, match="matches no attribute"):
        parse(["photo", "dog"], TWO_ATTRS, n_queries=2)


# ---- errors ---------------------------------------------------------------------


def test_unknown_label_names_known_labels():
    with pytest.raises(ValueError, match=r"unknown condition label.*'horse'.*"
                       r"known labels: \['cat', 'dog', 'owl'\]"):
        parse(["cat", "horse", "dog"])


def test_unknown_label_in_dict_names_attribute_and_known_labels():
    with pytest.raises(ValueError, match=r"\['horse'\].*'label'.*\['cat', 'dog'\]"):
        parse({"label": "horse"}, TWO_ATTRS, n_queries=1)


def test_string_label_for_int_classes_is_unknown():
    with pytest.raises(ValueError, match=r"known labels: \[3, 5\]"):
        parse("3", ([0], [np.array([3, 5])]), n_queries=1)


def test_mixed_type_labels_report_the_unknown_one():
    with pytest.raises(ValueError, match=r"unknown condition label\(s\) \['x'\]"):
        parse([1, "x"], ([0], [np.array([0, 1])]), n_queries=2)


def test_unknown_attribute():
    with pytest.raises(ValueError, match=r"\['colour'\].*not fitted on.*"
                       r"\['domain', 'label'\]"):
        parse({"colour": "red"}, TWO_ATTRS, n_queries=1)


@pytest.mark.parametrize(
    "condition", [["cat", "dog"], ["cat"] * 4, np.array([["cat"], ["dog"], ["owl"]])],
    ids=["too-short", "too-long", "2-D"],
)
def test_wrong_length(condition):
    with pytest.raises(ValueError, match=r"one entry per query: expected shape \(3,\)"):
        parse(condition)


def test_wrong_length_in_dict():
    msg = r"condition for 'label'.*expected shape \(2,\)"
    with pytest.raises(ValueError, match=msg):
        parse({"label": ["cat", "dog", "cat"]}, TWO_ATTRS, n_queries=2)


# ---- condition_weight --------------------------------------------------------------


def test_weight_none_is_one():
    _, weights = parse({"label": "cat", "domain": "photo"}, TWO_ATTRS, 2)
    np.testing.assert_array_equal(weights, np.ones((2, 2)))


@pytest.mark.parametrize("w", [2, 2.0, np.float32(2.0), np.int64(2)])
def test_weight_number_applies_to_every_conditioned_attribute(w):
    _, weights = parse({"label": "cat"}, TWO_ATTRS, 2, condition_weight=w)
    np.testing.assert_array_equal(weights, [[0, 2], [0, 2]])


def test_weight_dict_scalar_and_per_query():
    _, weights = parse(
        {"label": "cat", "domain": ["photo", None]}, TWO_ATTRS, 2,
        condition_weight={"label": [0.5, 3.0], "domain": 4},
    )
    np.testing.assert_array_equal(weights, [[4, 0.5], [0, 3.0]])


def test_weight_for_unconditioned_attribute_is_zero():
    _, weights = parse({"label": "cat"}, TWO_ATTRS, 1,
                       condition_weight={"domain": 5.0})
    np.testing.assert_array_equal(weights, [[0, 1]])


@pytest.mark.parametrize(
    "w", [0, -1.0, float("nan"), float("inf"), {"label": 0}, {"label": [1.0, -2.0]},
          {"label": [1.0, np.nan]}],
)
def test_weight_must_be_finite_and_positive(w):
    with pytest.raises(ValueError, match="must be finite and > 0"):
        parse({"label": "cat"}, TWO_ATTRS, 2, condition_weight=w)


def test_weight_unknown_attribute():
    with pytest.raises(ValueError, match=r"condition_weight names attribute 'colour'"):
        parse({"label": "cat"}, TWO_ATTRS, 2, condition_weight={"colour": 1.0})


def test_weight_wrong_type():
    with pytest.raises(ValueError, match="None, a number or a dict"):
        parse({"label": "cat"}, TWO_ATTRS, 2, condition_weight=[1.0, 2.0])


def test_weight_wrong_length():
    with pytest.raises(ValueError, match=r"condition_weight for 'label'.*shape \(2,\)"):
        parse({"label": "cat"}, TWO_ATTRS, 2, condition_weight={"label": [1, 2, 3]})


# ---- _labels ----------------------------------------------------------------------


def test_as_columns():
    assert as_columns([1, 2, 3]).shape == (3, 1)
    Y = np.arange(6).reshape(3, 2)
    assert as_columns(Y).shape == (3, 2)
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert as_columns(df).shape == (2, 2)


def test_encode_columns():
    Y = np.array([["b", 3], ["a", 1], ["b", 1]], dtype=object)
    classes, codes = encode_columns(Y, ["s", "t"], "Retriever")
    assert [c.tolist() for c in classes] == [["a", "b"], [1, 3]]
    np.testing.assert_array_equal(codes, [[1, 1], [0, 0], [1, 0]])
    assert codes.dtype == np.int64


def test_encode_columns_single_class_names_attribute():
    Y = np.array([["a", "x"], ["b", "x"]])
    with pytest.raises(ValueError, match=r"Retriever needs at least two classes.*"
                       r"attribute 'style' has one class \('x'\)"):
        encode_columns(Y, ["obj", "style"], "Retriever")


def test_find_rows_and_count_rows():
    table = np.array([[0, 1], [2, 3], [0, 1], [4, 4]])
    rows = np.array([[2, 3], [9, 9], [0, 1]])
    np.testing.assert_array_equal(find_rows(rows, table[1:]), [0, -1, 1])
    np.testing.assert_array_equal(count_rows(table, rows), [1, 0, 2])


def test_attribute_columns():
    names = ["domain", "label"]
    assert attribute_columns(None, names) == [0, 1]
    assert attribute_columns("label", names) == [1]
    assert attribute_columns(["label", "domain"], names) == [1, 0]
    with pytest.raises(ValueError, match=r"unknown attribute\(s\) \['style'\]"):
        attribute_columns("style", names)


def test_retriever_encode_labels_and_attribute_classes():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 5))
    y = pd.DataFrame({"obj": np.repeat(["cat", "dog"], 20),
                      "size": np.tile([3, 1, 2, 1], 10)})
    ret = NearestNeighborRetriever(epochs=1, embedding_dim=4, random_state=0)
    ret.fit(X, y)
    assert [c.tolist() for c in ret.attribute_classes_] == [["cat", "dog"], [1, 2, 3]]
    codes = ret.encode_labels(pd.DataFrame({"obj": ["dog", "owl"], "size": [3, 1]}))
    np.testing.assert_array_equal(codes, [[1, 2], [-1, 0]])
    # the inverse, per attribute
    assert ret.attribute_classes_[0][codes[0, 0]] == "dog"
    with pytest.raises(ValueError, match=r"y must have shape .*\(n_samples, 2\)"):
        ret.encode_labels(["dog", "cat"])
    one = NearestNeighborRetriever(epochs=1, embedding_dim=4, random_state=0)
    one.fit(X, y["obj"])
    assert isinstance(one.classes_, np.ndarray) and len(one.attribute_classes_) == 1
    np.testing.assert_array_equal(one.encode_labels(["dog", "cat"]), [[1], [0]])


def test_lookup_codes_and_unknown():
    classes = np.array(["a", "b", "c"])
    codes, unknown = lookup(classes, np.array(["c", "z", "a", "z"]))
    np.testing.assert_array_equal(codes, [2, -1, 0, -1])
    assert unknown == ["z"]


def test_lookup_missing():
    classes = np.array(["a", "b"])
    values = np.array(["b", None, np.nan], dtype=object)
    codes, unknown = lookup(classes, values, missing_ok=True)
    np.testing.assert_array_equal(codes, [1, -1, -1])
    assert unknown == []
    codes, unknown = lookup(classes, np.array(["a", None], dtype=object))
    np.testing.assert_array_equal(codes, [0, -1])
    assert unknown == [None]


def test_lookup_numpy_scalars_are_plain():
    codes, unknown = lookup(np.array([1, 2]), np.array([2, 7], dtype=np.int64))
    np.testing.assert_array_equal(codes, [1, -1])
    assert unknown == [7] and type(unknown[0]) is int


def test_lookup_keeps_3_and_string_3_apart():
    codes, unknown = lookup(np.array([1, 3]), np.array([3, "3"], dtype=object))
    np.testing.assert_array_equal(codes, [1, -1])
    assert unknown == ["3"]
