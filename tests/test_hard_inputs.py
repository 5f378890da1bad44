"""Hard inputs (issue 8): a clear error naming the argument, or a correct answer.

One test (or parametrised group) per problem found by trying the estimators
and the metrics as a demanding user would; each failed before the fix, with
a silent wrong result or an error from deep inside numpy, torch or pandas.
"""

import copy

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
    NearestNeighborRetriever,
)
from skbackward.metrics import (
    average_precision_at_k,
    make_average_precision_scorer,
    precision_at_k,
    retrieval_scores,
    tag_similarity_at_k,
)
from skbackward.model_selection import sample_queries

from .conftest import two_attribute_data

pytestmark = pytest.mark.filterwarnings(
    "ignore::skbackward.exceptions.ConditionNotReachedWarning"
)

TRAIN = dict(epochs=2, embedding_dim=16, random_state=0)
SEARCH = dict(max_steps=10, predicted_first=False)
STUDENT = dict(epochs=2, targets_per_sample=1, random_state=0)
CLASSES = [BackwardSearchRetriever, DistilledRetriever, NearestNeighborRetriever,
           LabelFilterRetriever, CentroidShiftRetriever]


def make(cls, **params):
    """A small, fast retriever of class ``cls``."""
    if cls is DistilledRetriever:
        return cls(BackwardSearchRetriever(**TRAIN, **SEARCH), **{**STUDENT, **params})
    if cls is BackwardSearchRetriever:
        return cls(**{**TRAIN, **SEARCH, **params})
    return cls(**{**TRAIN, **params})


@pytest.fixture(scope="module")
def data(digits):
    X_train, X_test, y_train, y_test = digits
    return X_train[:300], y_train[:300], X_test[:40], y_test[:40]


@pytest.fixture(scope="module")
def fitted(data):
    """One fitted retriever per class; tests copy before changing one."""
    X, y = data[:2]
    return {cls: make(cls).fit(X, y) for cls in CLASSES}


@pytest.fixture(scope="module")
def backward(fitted):
    return fitted[BackwardSearchRetriever]


@pytest.fixture(scope="module")
def two_attributes():
    """A retriever fitted on a DataFrame: int shapes and colour names."""
    X, shape, colour = two_attribute_data(n=240)
    y = pd.DataFrame({"shape": shape, "colour": colour})
    return make(BackwardSearchRetriever).fit(X, y), X, y


# ---- 2. NaN and inf parameters ---------------------------------------------------


@pytest.mark.parametrize(
    "cls, param",
    [(BackwardSearchRetriever, "alpha"), (BackwardSearchRetriever, "search_lr"),
     (BackwardSearchRetriever, "learning_rate"),
     (BackwardSearchRetriever, "weight_decay"),
     (DistilledRetriever, "l1_weight"), (DistilledRetriever, "learning_rate"),
     (DistilledRetriever, "weight_decay"), (CentroidShiftRetriever, "learning_rate")],
)
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf_parameters_are_refused_at_fit(cls, param, value, data):
    match = f"'{param}' parameter .* Got {value}"
    with pytest.raises(InvalidParameterError, match=match):
        make(cls, **{param: value}).fit(*data[:2])


@pytest.mark.parametrize(
    "params, param",
    [({"alpha": np.nan}, "alpha"), ({"alpha": np.inf}, "alpha"),
     ({"search_lr": np.inf}, "search_lr"), ({"search_lr": 0.0}, "search_lr"),
     ({"max_steps": 0}, "max_steps"), ({"patience": -1}, "patience"),
     ({"select": "nope"}, "select"), ({"predicted_first": "yes"}, "predicted_first"),
     ({"n_neighbors": True}, "n_neighbors"), ({"device": "meta"}, "device")],
)
def test_query_time_parameters_are_checked_at_query_time(backward, data, params, param):
    # set after fit (as GridSearchCV-free tuning of alpha does): the queries
    # read them, so the queries check them
    ret = copy.deepcopy(backward).set_params(**params)
    X = data[2][:3]
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        ret.kneighbors(X, condition=1)
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter"):
        ret.transform(X, condition=1)


def test_training_parameters_are_not_checked_again_at_query_time(backward, data):
    ret = copy.deepcopy(backward).set_params(epochs=0, learning_rate=np.nan)
    assert ret.transform(data[2][:3], condition=1).shape == (3, 16)


def test_diverging_training_is_an_error_not_a_nan_model(data):
    with pytest.raises(ValueError, match="training diverged.*learning_rate"):
        make(BackwardSearchRetriever, learning_rate=1e30).fit(*data[:2])
    # a finite but huge L1 weight overflows the student's float32 loss
    with pytest.raises(ValueError, match="student training diverged.*l1_weight"):
        make(DistilledRetriever, l1_weight=1e39).fit(*data[:2])


# ---- 3. features beyond float32 ------------------------------------------------------


def test_features_beyond_float32_range_are_refused(data):
    X = data[0].copy()
    X[0, 5] = 1e39  # finite in float64, inf in the float32 training
    with pytest.raises(ValueError, match=r"X has values beyond float32's range"):
        make(BackwardSearchRetriever).fit(X, data[1])


def test_features_that_overflow_the_float32_network_are_refused(data):
    # at this scale the BatchNorm running variance overflows float32: the
    # model then maps every query to the same embedding
    with pytest.raises(ValueError, match=r"training overflowed float32.*Scale X"):
        make(NearestNeighborRetriever).fit(data[0] * 1e19, data[1])


def test_large_but_representable_features_give_a_working_model(data):
    ret = make(NearestNeighborRetriever).fit(data[0] * 1e10, data[1])
    ind = ret.kneighbors(data[2] * 1e10, 3, return_distance=False)
    assert len({tuple(row) for row in ind}) > 1  # not one list for every query


# ---- 4. labels of index(X, y) --------------------------------------------------------


def test_index_pairs_dataframe_columns_by_name(two_attributes):
    ret, X, y = two_attributes
    ret = copy.deepcopy(ret)
    ret.index(X, y[["colour", "shape"]])  # the other column order
    np.testing.assert_array_equal(ret.index_labels_, y.to_numpy())
    expected = retrieval_scores(copy.deepcopy(ret).index(X, y), X[:60], y[:60],
                                n_queries=40)
    assert retrieval_scores(ret, X[:60], y[:60], n_queries=40) == expected


def test_index_refuses_renamed_columns(two_attributes):
    ret, X, y = two_attributes
    with pytest.raises(ValueError, match=r"y has columns \['form', 'colour'\].*"
                       r"fitted on attributes \['shape', 'colour'\]"):
        copy.deepcopy(ret).index(X, y.rename(columns={"shape": "form"}))


def test_index_refuses_labels_not_seen_in_fit(backward, data):
    y = data[3].copy()
    y[0] = 11
    with pytest.raises(ValueError,
                       match=r"y \(attribute 0\) has labels not seen in fit: \[11\]"):
        copy.deepcopy(backward).index(data[2], y)
    with pytest.raises(ValueError,
                       match=r"y \(attribute 0\) holds strings.*fitted on numbers"):
        copy.deepcopy(backward).index(data[2], data[3].astype(str))


def test_scorer_refuses_query_labels_of_another_kind(two_attributes):
    ret, X, y = two_attributes
    y_bad = y.assign(colour=np.arange(len(y)) % 4)  # ints for colour names
    with pytest.raises(ValueError,
                       match=r"'colour'\) holds numbers.*fitted on strings"):
        retrieval_scores(ret, X[:60], y_bad[:60], condition_on="shape", n_queries=20)


def test_scorer_counts_query_labels_unseen_in_fit_as_not_kept(two_attributes):
    ret, X, y = two_attributes
    kept = retrieval_scores(ret, X[:60], y[:60], condition_on="shape", n_queries=30,
                            random_state=0)["preservation"]
    y_new = y.assign(colour="purple")  # no indexed item is purple
    scores = retrieval_scores(ret, X[:60], y_new[:60], condition_on="shape",
                              n_queries=30, random_state=0)
    assert kept > 0 and scores["preservation"] == 0.0


# ---- 5, 6. DistilledRetriever and its teacher's labels -------------------------------


def test_prefit_teacher_refuses_labels_of_another_kind(backward, data):
    with pytest.raises(ValueError, match=r"y \(attribute 0\) holds strings.*numbers"):
        DistilledRetriever(backward, prefit=True, **STUDENT).fit(
            data[0], data[1].astype(str))


def test_distilled_keeps_dataframe_attribute_names(two_attributes):
    _, X, y = two_attributes
    ret = make(DistilledRetriever).fit(X, y)
    assert ret.attributes_ == ret.teacher_.attributes_ == ["shape", "colour"]
    ind = ret.kneighbors(X[:5], 3, return_distance=False, condition={"colour": "red"})
    assert ind.shape == (5, 3)


def test_prefit_teacher_pairs_dataframe_columns_by_name(two_attributes):
    teacher, X, y = two_attributes
    ret = DistilledRetriever(teacher, prefit=True, **STUDENT)
    ret.fit(X, y[["colour", "shape"]])
    assert ret.attributes_ == ["shape", "colour"]
    np.testing.assert_array_equal(ret.index_labels_, y.to_numpy())


def test_failed_set_params_leaves_the_estimator_unchanged():
    ret = DistilledRetriever()
    with pytest.raises(ValueError, match=r"Invalid parameter\(s\) \['teacher__nope'\]"):
        ret.set_params(teacher__nope=1)
    assert ret.teacher is None
    with pytest.raises(ValueError, match=r"\['nope'\]"):
        ret.set_params(teacher__alpha=0.3, nope=1)
    assert ret.teacher is None
    assert ret.set_params(teacher__alpha=0.3).teacher.alpha == 0.3
    # teacher=None with a nested parameter: the default teacher, tuned
    ret = DistilledRetriever(BackwardSearchRetriever(alpha=2.0))
    assert ret.set_params(teacher=None, teacher__alpha=0.3).teacher.alpha == 0.3
    assert ret.teacher.get_params() == BackwardSearchRetriever(alpha=0.3).get_params()


# ---- 8. metrics that returned numbers where they should refuse -----------------------


def test_metrics_refuse_labels_of_another_kind():
    with pytest.raises(ValueError,
                       match="y_true holds numbers and y_retrieved strings"):
        precision_at_k([1, 2], [["1", "2"], ["2", "2"]], k=2)


def test_scorer_refuses_y_of_another_length(backward, data):
    with pytest.raises(ValueError, match="y has 39 labels but X has 40 queries"):
        make_average_precision_scorer(k=5)(backward, data[2], data[3][:-1])


@pytest.mark.parametrize("n_relevant", [[np.nan], [-1], [1.5], ["3"]])
def test_n_relevant_must_be_counts(n_relevant):
    with pytest.raises(ValueError, match="n_relevant must hold counts"):
        average_precision_at_k(["a"], [["a", "b"]], k=2, n_relevant=n_relevant)


# ---- errors that did not say what was wrong ------------------------------------------


@pytest.mark.parametrize(
    "y, error, match",
    [([1, None, 2, 1] * 10, ValueError, r"y \(attribute 0\) has missing labels"),
     (pd.Series([1, pd.NA, 2, 1] * 10, dtype="Int64"), ValueError, "has missing"),
     (np.array([1, "a", 2, 1] * 10, dtype=object), ValueError,
      r"y \(attribute 0\) mixes strings and numbers"),
     (sp.csr_matrix(np.eye(40, 2, dtype=int)), TypeError, "y must be dense labels"),
     (np.array([[1, 2]] * 40, dtype=object).reshape(40, 1, 2), ValueError,
      r"y must be 1-D .* or 2-D"),
     ([1.0, np.inf] * 20, ValueError, "missing or infinite labels"),
     ([[1], [2]] * 20 + [[1, 2]], ValueError,
      "y must be a 1-D or 2-D array of labels")],
    ids=["None", "pd.NA", "mixed", "sparse", "3-D", "inf", "ragged"],
)
def test_bad_labels_name_y(data, y, error, match):
    n = y.shape[0] if hasattr(y, "shape") else len(y)
    with pytest.raises(error, match=match):
        make(NearestNeighborRetriever).fit(data[0][:n], y)


@pytest.mark.parametrize("cls", [BackwardSearchRetriever, DistilledRetriever])
def test_batch_size_one_is_refused(cls, data):
    with pytest.raises(InvalidParameterError,
                       match=r"'batch_size' parameter .* \[2, inf\)"):
        make(cls, batch_size=1).fit(*data[:2])


def test_n_neighbors_true_is_refused(backward, data):
    match = "'n_neighbors' parameter .* Got True"
    with pytest.raises(InvalidParameterError, match=match):
        backward.kneighbors(data[2][:3], True)
    with pytest.raises(InvalidParameterError, match=match):
        make(NearestNeighborRetriever, n_neighbors=True).fit(*data[:2])
    with pytest.raises(InvalidParameterError, match="'return_distance' parameter"):
        backward.kneighbors(data[2][:3], 2, return_distance="yes")


@pytest.mark.parametrize("device", ["meta", "mps", "xpu", "cuda:x", "cpu:0", "CPU"])
def test_unsupported_devices_name_device(device, data):
    with pytest.raises(InvalidParameterError,
                       match=r"'device' parameter .* 'cpu', 'cuda'"):
        make(NearestNeighborRetriever, device=device).fit(*data[:2])


@pytest.mark.parametrize(
    "condition, error, match",
    [({8}, TypeError, r"condition must be a label .* got a set"),
     ([[1, 2], [3], [4]], TypeError, r"condition must hold labels .* got a list"),
     ([[1, 2], [3, 4], [5, 6]], ValueError, r"condition must be a scalar or have "
      r"one entry per query: expected shape \(3,\), got \(3, 2\)"),
     ([[1, 2], 3, 4], TypeError, r"condition must hold labels .* got a list inside"),
     ({0: {8}}, TypeError, r"condition for 0 must be a label .* got a set"),
     ({0: [[1], 2, 3]}, TypeError, r"condition for 0 must hold labels")],
    ids=["set", "ragged", "2-D", "list-inside", "set-in-dict", "list-in-dict"],
)
def test_unhashable_conditions_name_condition(backward, data, condition, error, match):
    with pytest.raises(error, match=match):
        backward.kneighbors(data[2][:3], 2, condition=condition)


def test_metric_arguments_are_checked_when_given():
    with pytest.raises(InvalidParameterError,
                       match="'k' parameter of make_average_precision_scorer"):
        make_average_precision_scorer(k=0)
    with pytest.raises(InvalidParameterError, match="'k' parameter of precision_at_k"):
        precision_at_k(["a"], [["a", "b", "c"]], k=2.5)
    with pytest.raises(ValueError, match="y_retrieved must be a rectangular array"):
        precision_at_k(["a", "b"], [["a", "b"], ["a"]], k=1)
    with pytest.raises(ValueError, match="retrieved_tags must be a binary indicator"):
        tag_similarity_at_k([[1, 0]], [[["a", "b"]]], k=1)


# ---- arrays with negative strides ----------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_negative_strides_simply_work(cls, fitted, data):
    X, y, X_q, _ = data
    reversed_rows, flipped = X_q[::-1], np.flip(X_q, axis=1)
    ret = fitted[cls]
    for Q in (reversed_rows, flipped):
        np.testing.assert_array_equal(
            ret.transform(Q, condition=3),
            ret.transform(np.ascontiguousarray(Q), condition=3))
        for u, v in zip(ret.kneighbors(Q, 4, condition=3),
                        ret.kneighbors(np.ascontiguousarray(Q), 4, condition=3)):
            np.testing.assert_array_equal(u, v)
    indexed = copy.deepcopy(ret).index(reversed_rows, data[3][::-1])
    contiguous = copy.deepcopy(ret).index(np.ascontiguousarray(reversed_rows),
                                          data[3][::-1].copy())
    for u, v in zip(indexed.kneighbors(X_q[:5], 3, condition=3),
                    contiguous.kneighbors(X_q[:5], 3, condition=3)):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(indexed.index_labels_, contiguous.index_labels_)
    refit = clone(ret).fit(X[::-1], y[::-1])
    np.testing.assert_array_equal(
        refit.transform(X_q),
        clone(ret).fit(X[::-1].copy(), y[::-1].copy()).transform(X_q))
    assert clone(ret).fit_transform(X[:, ::-1], y).shape == (len(X), 16)


# ---- slow paths bounded --------------------------------------------------------------


class CountingRandomState(np.random.RandomState):
    """Counts the random numbers drawn (a measure of work, not of time)."""

    drawn = 0

    def _count(self, size):
        CountingRandomState.drawn += int(np.prod(size if size is not None else 1))

    def random_sample(self, size=None):
        self._count(size)
        return super().random_sample(size)

    def randint(self, *args, size=None, **kwargs):
        self._count(size)
        return super().randint(*args, size=size, **kwargs)

    def standard_exponential(self, size=None, *args, **kwargs):
        self._count(size)
        return super().standard_exponential(size, *args, **kwargs)


@pytest.mark.parametrize("exclude_own_class", [False, True])
def test_sample_queries_asked_for_more_pairs_than_exist_returns_at_once(
    exclude_own_class,
):
    y = np.repeat(np.arange(10), 30)  # 300 items x (10 or 9) conditions
    n_pairs = 300 * (9 if exclude_own_class else 10)
    CountingRandomState.drawn = 0
    with pytest.warns(UserWarning, match=f"only {n_pairs} distinct"):
        qi, cond = sample_queries(y, y, n_queries=10**5, k=5,
                                  exclude_own_class=exclude_own_class,
                                  random_state=CountingRandomState(0))
    # every pair, once; work in proportion to the pairs, not to the 10**5 asked
    assert len(set(zip(qi.tolist(), cond[0].tolist()))) == len(qi) == n_pairs
    assert CountingRandomState.drawn <= 2 * n_pairs
    if exclude_own_class:
        assert (cond[0] != y[qi]).all()


def test_sample_queries_for_most_pairs_is_class_balanced():
    # 2 classes of 10 and 90 items, 2 conditions each: 200 pairs, 150 asked.
    # Drawn class first, item second, the small class's 20 pairs come first.
    y = np.repeat([0, 1], [10, 90])
    counts = []
    for seed in range(20):
        qi, _ = sample_queries(y, y, n_queries=150, k=5, random_state=seed)
        counts.append((y[qi] == 0).sum())
    assert np.mean(counts) > 19  # uniform over items would give 15


# ---- issue 17: hard inputs, round two -----------------------------------------


@pytest.mark.parametrize("names", [[1, 1.0], [True, 1], [0, False]],
                         ids=["1-1.0", "True-1", "0-False"])
def test_attribute_names_that_compare_equal_are_refused(data, names):
    # a condition on one would land on the other (1 == 1.0, True == 1)
    X, y = data[:2]
    frame = pd.DataFrame({"a": y, "b": y % 2})
    frame.columns = pd.Index(names, dtype=object)
    with pytest.raises(ValueError, match="equal but different column names"):
        make(LabelFilterRetriever).fit(X, frame)


@pytest.mark.parametrize("missing", [np.nan, None, pd.NA])
def test_missing_attribute_name_is_refused(data, missing):
    # a NaN attribute equals nothing: no condition could ever name it
    X, y = data[:2]
    frame = pd.DataFrame({"a": y, "b": y % 2})
    frame.columns = pd.Index(["a", missing], dtype=object)
    with pytest.raises(ValueError, match="missing column name"):
        make(LabelFilterRetriever).fit(X, frame)


@pytest.mark.parametrize("y", [np.zeros((300, 0)), pd.DataFrame(index=range(300))],
                         ids=["array", "frame"])
def test_y_without_columns_is_a_clear_error(data, y):
    with pytest.raises(ValueError, match="y has no columns"):
        make(LabelFilterRetriever).fit(data[0], y)


@pytest.mark.parametrize("append", ["no", 0, None, "False"])
def test_index_append_must_be_a_boolean(backward, data, append):
    ret = copy.deepcopy(backward)
    with pytest.raises(ValueError, match="'append' parameter"):
        ret.index(data[0][:5], append=append)
    assert ret.n_index_samples_ == 300  # nothing was appended


def test_bytes_condition_is_a_label_not_a_shape(two_attributes):
    ret, X, _ = two_attributes
    with pytest.raises(ValueError, match=r"unknown condition label\(s\) \[b'red'\] "
                                         "for attribute 'colour'"):
        ret.kneighbors(X[:2], 3, condition={"colour": b"red"})


# Issue 26: the last hard inputs of a fuzz (each failed before its fix).

@pytest.mark.parametrize("bad, match", [
    (lambda n: [1, "1"] * (n // 2), "groups mixes numbers and strings"),
    (lambda n: [None] + list(range(n - 1)), "groups holds missing values"),
    (lambda n: np.array([np.nan] + list(range(n - 1)), dtype=object),
     "groups holds missing values"),
    (lambda n: [pd.NA] + list(range(n - 1)), "groups holds missing values"),
])
def test_bad_groups_are_refused_at_fit_and_index(backward, data, bad, match):
    """[1, "1"] became one group ("1"); None and an object NaN were taken at
    fit and refused only at scoring, in a message about labels."""
    X, y = data[:2]
    with pytest.raises(ValueError, match=match):
        make(BackwardSearchRetriever).fit(X, y, groups=bad(len(X)))
    with pytest.raises(ValueError, match=match):
        make(DistilledRetriever).fit(X, y, groups=bad(len(X)))
    with pytest.raises(ValueError, match=match):
        copy.deepcopy(backward).index(X, y, groups=bad(len(X)))


def test_appending_groups_of_another_kind_is_refused(backward, data):
    """Appending str groups to an int-grouped index rewrote the old ints as
    strings."""
    X, y = data[:2]
    ret = copy.deepcopy(backward).index(X[:100], y[:100], groups=np.arange(100))
    with pytest.raises(ValueError, match="groups holds strings, but the index's "
                       "groups .* are numbers"):
        ret.index(X[100:120], y[100:120], groups=[str(i) for i in range(20)],
                  append=True)
    np.testing.assert_array_equal(ret.index_groups_, np.arange(100))
    ret.index(X[100:120], y[100:120], groups=np.arange(100, 120), append=True)
    assert ret.index_groups_.dtype.kind == "i"


def test_condition_of_another_type_says_so(backward, data):
    X_q = data[2][:3]
    with pytest.raises(ValueError, match=r"the label's type differs \(str given, "
                       "the labels of this attribute are numbers\\)"):
        backward.kneighbors(X_q, condition="3")
    with pytest.raises(ValueError, match="unknown condition") as info:
        backward.kneighbors(X_q, condition=11)  # same kind, just unknown
    assert "type differs" not in str(info.value)


def test_scores_of_a_pipeline_ending_in_a_classifier_name_the_step(data):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, X_q, y_q = data
    pipe = make_pipeline(StandardScaler(), KNeighborsClassifier()).fit(X, y)
    with pytest.raises(TypeError, match="last step is a KNeighborsClassifier, "
                       "not a retriever"):
        retrieval_scores(pipe, X_q, y_q)
    with pytest.raises(TypeError, match="estimator is a KNeighborsClassifier, "
                       "not a retriever"):
        retrieval_scores(pipe[-1], X_q, y_q)


@pytest.mark.parametrize("cls", [BackwardSearchRetriever, DistilledRetriever])
def test_pipeline_fit_transform_routes_the_condition_to_transform(cls, data):
    """fit_transform handed the condition to fit: "fit() got an unexpected
    keyword argument 'condition'"."""
    from sklearn import config_context
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data[:2]
    with config_context(enable_metadata_routing=True):
        ret = make(cls).set_transform_request(condition=True)
        pipe = make_pipeline(StandardScaler(), ret)
        Z = pipe.fit_transform(X, y, condition=3)
        np.testing.assert_array_equal(Z, pipe.transform(X, condition=3))
        assert not np.array_equal(Z, pipe.transform(X))


def test_condition_report_follows_set_output(backward, data):
    X_q = data[2][:5]
    report = backward.condition_report(X_q, condition=3)
    ret = copy.deepcopy(backward).set_output(transform="pandas")
    frame = ret.condition_report(pd.DataFrame(X_q, index=list("abcde")),
                                 condition=3)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == list("abcde")
    names = list(ret.get_feature_names_out())
    assert list(frame.columns) == ["n_steps", "reached", "distance", *names]
    np.testing.assert_array_equal(frame["n_steps"], report.n_steps)
    np.testing.assert_array_equal(frame["reached"], report.reached)
    np.testing.assert_array_equal(frame[names].to_numpy(), report.embedding)
