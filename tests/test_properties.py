"""Property-based tests (hypothesis) over every public method.

Random valid inputs: finite distances in [0, 2], ascending (within the
preference levels of the strategies that rank predicted matches first),
unique in-range indices, ``exclude`` honoured, and each query's result
independent of the batch it sits in. Random invalid inputs: only ValueError,
TypeError or NotFittedError, with a message naming the argument.

The retrievers are fitted once per module on small two-attribute data and
never changed (a test that needs another state works on a copy).
"""

import copy
import pickle
import re
import uuid
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import NotFittedError

from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
    NearestNeighborRetriever,
)
from skbackward._retrievers._conditions import parse_condition
from skbackward.indexes import ExactIndex, FaissIndex, MilvusIndex
from skbackward.indexes._topk import unit_float32
from skbackward.metrics import (
    attribute_preservation_at_k,
    average_precision_at_k,
    conditional_neighbors,
    make_retrieval_scorer,
    neighbor_overlap_at_k,
    precision_at_k,
    tag_similarity_at_k,
)
from skbackward.model_selection import sample_queries

from .conftest import assert_same_neighbours, require, two_attribute_data

pytestmark = pytest.mark.filterwarnings(
    "ignore::skbackward.exceptions.ConditionNotReachedWarning"
)

# example counts scale with the profile's (tests/conftest.py): 100 by default
SCALE = settings.default.max_examples / 100


def examples(n):
    return settings(max_examples=max(1, round(n * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


FEW, SOME = examples(25), examples(50)

TRAIN = dict(epochs=3, embedding_dim=8, random_state=0)
N_DB = 40  # indexed items of the fitted retrievers
SHAPES, COLOURS = [0, 1, 2], ["black", "blue", "green", "red"]
ERRORS = (ValueError, TypeError, NotFittedError)


def assert_names(arg, error):
    """The error's message names ``arg`` as a word of its own ("k" inside
    "precision_at_k" or "y" inside "array-like" does not count)."""
    assert re.search(rf"(?<![\w-]){re.escape(arg)}(?![\w-])", str(error)), str(error)


def _retrievers():
    search = dict(max_steps=8)
    return {
        "backward": BackwardSearchRetriever(**TRAIN, **search, predicted_first=False),
        "backward+filter": BackwardSearchRetriever(**TRAIN, **search),
        "distilled": DistilledRetriever(
            BackwardSearchRetriever(**TRAIN, **search), epochs=3,
            targets_per_sample=1, random_state=0),
        "nearest": NearestNeighborRetriever(**TRAIN),
        "label_filter": LabelFilterRetriever(**TRAIN),
        "centroid": CentroidShiftRetriever(**TRAIN),
    }


NAMES = list(_retrievers())


@pytest.fixture(scope="module")
def world():
    """``(retrievers, X, y)``: fitted on 160 items, indexing the first N_DB."""
    X, shape, colour = two_attribute_data(n=160, seed=1)
    y = pd.DataFrame({"shape": shape, "colour": colour})
    fitted = {}
    for name, ret in _retrievers().items():
        fitted[name] = ret.fit(X, y).index(X[:N_DB], y[:N_DB])
    return fitted, X, y


# ---- strategies -----------------------------------------------------------------


def queries(n_min=1, n_max=6):
    """Feature arrays like the training ones, also extreme, float32 or 64,
    sometimes with negative strides."""
    return st.builds(
        lambda X, flip: X[::-1] if flip else X,
        st.one_of(
            hnp.arrays(np.float64, st.tuples(st.integers(n_min, n_max), st.just(7)),
                       elements=st.floats(-1e6, 1e6)),
            hnp.arrays(np.float32, st.tuples(st.integers(n_min, n_max), st.just(7)),
                       elements=st.floats(-30, 30, width=32)),
        ),
        st.booleans(),
    )


def label_per_query(labels, n):
    return st.lists(st.one_of(st.none(), st.sampled_from(labels)),
                    min_size=n, max_size=n)


@st.composite
def conditions(draw, n):
    """Every accepted form of a condition for ``n`` queries."""
    kind = draw(st.sampled_from(["none", "scalar", "array", "dict"]))
    if kind == "none":
        return None
    if kind == "scalar":
        return draw(st.sampled_from(SHAPES + COLOURS))
    if kind == "array":
        return draw(label_per_query(COLOURS, n))
    out = {}
    for name, labels in (("shape", SHAPES), ("colour", COLOURS)):
        if draw(st.booleans()):
            out[name] = draw(st.one_of(st.sampled_from(labels),
                                       label_per_query(labels, n)))
    return out or {"colour": "red"}


@st.composite
def condition_weights(draw, n):
    kind = draw(st.sampled_from(["none", "number", "dict"]))
    if kind == "none":
        return None
    weight = st.floats(1e-3, 1e3)
    if kind == "number":
        return draw(weight)
    return {"shape": draw(st.one_of(weight, st.lists(weight, min_size=n, max_size=n)))}


def _levels(ret, condition, ind, n):
    """Per result, how many of its query's wanted classes the heads predict
    for it (the preference level), or zeros for strategies without levels."""
    if condition is None or not ret._prefers_predicted:
        return np.zeros(ind.shape, dtype=np.int64)
    targets, _ = parse_condition(condition, ret.attributes_, ret.attribute_classes_, n)
    predicted = ret.vector_index_.predicted_[ind]  # (n, k, A)
    return ((targets[:, None, :] >= 0) & (predicted == targets[:, None, :])).sum(2)


def assert_valid_neighbours(ret, condition, dist, ind, n, k, exclude=None):
    assert dist.shape == ind.shape == (n, k)
    assert np.isfinite(dist).all() and (dist >= 0).all() and (dist <= 2).all()
    assert ((ind >= 0) & (ind < ret.n_index_samples_)).all()
    assert all(len(set(row)) == k for row in ind.tolist())
    if exclude is not None:
        assert not (ind == np.asarray(exclude)[:, None]).any()
    levels = _levels(ret, condition, ind, n)
    assert (np.diff(levels, axis=1) <= 0).all()  # better matches first
    same = np.diff(levels, axis=1) == 0
    # similarity + 4 * level is the sort key: its float32 rounding may swap
    # near-ties by a few ulps of 4
    assert (np.diff(dist, axis=1)[same] >= -1e-5).all()


def _subset(condition, rows):
    """The condition of the queries ``rows`` (per-query arrays sliced)."""
    def part(value):
        return [value[i] for i in rows] if isinstance(value, list) else value
    if isinstance(condition, dict):
        return {a: part(v) for a, v in condition.items()}
    return part(condition)


# ---- valid inputs --------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(data=st.data())
def test_kneighbors_valid_inputs(world, name, data):
    retrievers, _, _ = world
    ret = retrievers[name]
    X = data.draw(queries())
    n = X.shape[0]
    condition = data.draw(conditions(n))
    weight = data.draw(condition_weights(n))
    exclude = data.draw(st.one_of(st.none(), st.lists(
        st.integers(-1, N_DB - 1), min_size=n, max_size=n)))
    # n_neighbors == N_DB with exclude is the index layer's case (issue 9)
    k = data.draw(st.integers(1, N_DB - (exclude is not None)))
    dist, ind = ret.kneighbors(X, k, condition=condition, condition_weight=weight,
                               exclude=None if exclude is None else np.array(exclude))
    assert_valid_neighbours(ret, condition, dist, ind, n, k, exclude)
    assert dist.dtype == np.float32  # the index keeps float32 unit vectors
    np.testing.assert_array_equal(
        ret.kneighbors(X, k, False, condition=condition, condition_weight=weight,
                       exclude=None if exclude is None else np.array(exclude)), ind)
    if X.dtype == np.float64 and n > 1:  # float64 keeps every row exact
        split = data.draw(st.integers(1, n - 1))
        parts = [np.arange(split), np.arange(split, n)]
        got = [ret.kneighbors(
            X[rows], k, condition=_subset(condition, rows),
            condition_weight=_subset(weight, rows),
            exclude=None if exclude is None else np.array(exclude)[rows])
            for rows in parts]
        assert_same_neighbours(
            (dist, ind), [np.concatenate([g[i] for g in got]) for i in (0, 1)],
            atol=1e-9,
        )


@pytest.mark.parametrize("name", NAMES)
@examples(5)
@given(data=st.data())
def test_kneighbors_of_the_indexed_items(world, name, data):
    ret = world[0][name]
    k = data.draw(st.integers(1, N_DB - 1))
    condition = data.draw(st.one_of(st.none(), st.sampled_from(COLOURS)))
    dist, ind = ret.kneighbors(None, k, condition=condition)
    assert_valid_neighbours(ret, condition, dist, ind, N_DB, k,
                            exclude=np.arange(N_DB))


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(data=st.data())
def test_transform_and_condition_report_valid_inputs(world, name, data):
    ret = world[0][name]
    X = data.draw(queries())
    n = X.shape[0]
    condition = data.draw(conditions(n))
    weight = data.draw(condition_weights(n))
    Z = ret.transform(X, condition=condition, condition_weight=weight)
    assert Z.shape == (n, 8) and Z.dtype == X.dtype and np.isfinite(Z).all()
    if condition is not None:
        report = ret.condition_report(X, condition=condition, condition_weight=weight)
        np.testing.assert_array_equal(report.embedding, Z)
        assert (report.n_steps >= 0).all() and report.reached.dtype == bool
        assert np.isfinite(report.distance).all()
    if X.dtype == np.float64 and n > 1:
        rows = np.arange(1, n)
        np.testing.assert_allclose(
            ret.transform(X[rows], condition=_subset(condition, rows),
                          condition_weight=_subset(weight, rows)),
            Z[rows], rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
@examples(10)
@given(data=st.data())
def test_index_valid_inputs(world, name, data):
    retrievers, X_all, y_all = world
    rows = data.draw(st.lists(st.integers(0, len(X_all) - 1), min_size=2,
                              max_size=30, unique=True))
    labelled = data.draw(st.sampled_from(["none", "frame", "reordered", "array"]))
    y = {"none": None, "frame": y_all.iloc[rows],
         "reordered": y_all.iloc[rows][["colour", "shape"]],
         "array": y_all.iloc[rows].to_numpy()}[labelled]
    ret = copy.deepcopy(retrievers[name]).index(X_all[rows], y)
    assert ret.n_index_samples_ == len(rows)
    if y is not None:
        np.testing.assert_array_equal(ret.index_labels_, y_all.iloc[rows].to_numpy())
    k = data.draw(st.integers(1, len(rows)))
    dist, ind = ret.kneighbors(X_all[:5], k, condition="red")
    assert_valid_neighbours(ret, "red", dist, ind, 5, k)


@pytest.mark.parametrize("cls", [BackwardSearchRetriever, DistilledRetriever,
                                 NearestNeighborRetriever, LabelFilterRetriever,
                                 CentroidShiftRetriever])
@examples(4)
@given(data=st.data())
def test_fit_valid_inputs(cls, data):
    n = data.draw(st.integers(6, 30))
    X = data.draw(hnp.arrays(np.float64, (n, data.draw(st.integers(1, 5))),
                             elements=st.floats(-1e3, 1e3)))
    labels = data.draw(st.sampled_from([[0, 1, 2], ["a", "b"], [1.5, -2.0]]))
    y = np.array([labels[i % len(labels)] for i in range(n)], dtype=object)
    params = dict(epochs=1, embedding_dim=4, random_state=0)
    if cls is DistilledRetriever:
        ret = cls(BackwardSearchRetriever(**params, max_steps=3), epochs=1,
                  targets_per_sample=1, random_state=0)
    else:
        ret = cls(**params)
    if np.ptp(X, axis=0).max() == 0:  # identical rows: nothing to learn,
        X = X + np.arange(n)[:, None]  # still a valid fit below
    Z = ret.fit_transform(X, y)
    assert Z.shape == (n, 4) and np.isfinite(Z).all()
    assert np.isfinite(ret.loss_curve_).all()
    dist, ind = ret.kneighbors(None, 2, condition=labels[0])
    assert_valid_neighbours(ret, labels[0], dist, ind, n, 2, exclude=np.arange(n))


# ---- invalid inputs -------------------------------------------------------------


def _bad_X():
    """(invalid X, name the message must contain)."""
    good = np.zeros((3, 7))
    nan, inf = good.copy(), good.copy()
    nan[1, 2], inf[0, 0] = np.nan, np.inf
    return st.sampled_from([
        nan, inf, good[:, :5], np.zeros((3, 9)), good[0], good[:, :, None],
        good[:0], np.full((3, 7), "a"), good + 1j, np.full((3, 7), None),
        [[1.0] * 7, [1.0] * 6], "not an array",
    ])


@st.composite
def bad_kneighbors_call(draw):
    """Keyword arguments of one invalid kneighbors call, and the argument
    its error must name."""
    X = np.zeros((3, 7))
    arg = draw(st.sampled_from(["X", "n_neighbors", "condition", "exclude",
                                "condition_weight", "return_distance"]))
    call = dict(X=X, n_neighbors=2, condition="red")
    if arg == "X":
        call["X"] = draw(_bad_X())
    elif arg == "n_neighbors":
        call["n_neighbors"] = draw(st.one_of(
            st.integers(max_value=0), st.integers(N_DB + 1, 10**9),
            st.floats(allow_nan=True), st.booleans(), st.text(max_size=3)))
    elif arg == "condition":
        call["condition"] = draw(st.one_of(
            st.integers(3, 10**6),
            st.text(min_size=1).filter(lambda s: s not in COLOURS),
            st.just({8}), st.just([[1, 2], 3, 4]), st.just(["red", "blue"]),
            st.just({"size": 1}), st.just({"shape": 7}), st.just(object())))
    elif arg == "exclude":
        call["exclude"] = draw(st.one_of(
            st.lists(st.integers(-1, N_DB - 1), min_size=4, max_size=4),
            st.lists(st.integers(N_DB, 10**6), min_size=3, max_size=3),
            st.lists(st.integers(max_value=-2), min_size=3, max_size=3),
            st.just([0.5, 1.0, 2.0])))
        if draw(st.booleans()):  # exclude with X=None
            call["X"], call["exclude"] = None, np.arange(N_DB)
    elif arg == "condition_weight":
        call["condition_weight"] = draw(st.one_of(
            st.floats(max_value=0), st.just(np.nan), st.just(np.inf),
            st.just("heavy"), st.just({"size": 1.0}), st.just({"shape": [1.0, 2.0]}),
            st.just({"shape": -1.0}), st.just(True)))
    else:
        call["return_distance"] = draw(st.one_of(st.text(max_size=3), st.integers()))
    return call, arg


@pytest.mark.parametrize("name", NAMES)
@SOME
@given(bad=bad_kneighbors_call())
def test_kneighbors_invalid_inputs_name_the_argument(world, name, bad):
    call, arg = bad
    with pytest.raises(ERRORS) as info:
        world[0][name].kneighbors(**call)
    assert_names(arg, info.value)


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(X=_bad_X())
def test_transform_and_index_invalid_X_name_X(world, name, X):
    ret = world[0][name]
    for method in (ret.transform, ret.condition_report, copy.deepcopy(ret).index):
        kwargs = {"condition": "red"} if method == ret.condition_report else {}
        with pytest.raises(ERRORS) as info:
            method(X, **kwargs)
        assert_names("X", info.value)


INVALID_ANYWHERE = ["missing", "mixed", "length", "sparse"]
INVALID_FOR_INDEX = INVALID_ANYWHERE + ["unseen", "kind", "columns", "attributes",
                                        "renamed"]


@st.composite
def bad_labels(draw, n, kinds=INVALID_FOR_INDEX):
    """Invalid labels for ``n`` items of the two-attribute retrievers (for
    ``fit``, only ``INVALID_ANYWHERE``)."""
    shape = np.array([0, 1, 2] * n, dtype=object)[:n]
    colour = np.array(COLOURS * n, dtype=object)[:n]
    kind = draw(st.sampled_from(kinds))
    if kind == "unseen":
        colour[draw(st.integers(0, n - 1))] = "purple"
    elif kind == "kind":
        shape = shape.astype(str)
    elif kind == "missing":
        missing = draw(st.sampled_from([None, np.nan, pd.NA]))
        colour[draw(st.integers(0, n - 1))] = missing
    elif kind == "mixed":
        colour[0] = 3
    elif kind == "length":
        shape, colour = shape[:-1], colour[:-1]
    y = pd.DataFrame({"shape": shape, "colour": colour})
    if kind == "attributes":
        return y[["shape"]]
    if kind == "columns":
        return y.to_numpy()[:, :1]
    if kind == "renamed":
        name = draw(st.sampled_from(["color", 1, "shape2"]))
        return y.rename(columns={"colour": name})
    if kind == "sparse":
        import scipy.sparse as sp
        return sp.csr_matrix(np.ones((n, 2)))
    return y


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(data=st.data())
def test_index_invalid_labels_name_y(world, name, data):
    X = world[1][:6]
    y = data.draw(bad_labels(6))
    with pytest.raises(ERRORS) as info:
        copy.deepcopy(world[0][name]).index(X, y)
    assert_names("y", info.value)


@pytest.mark.parametrize("cls", [BackwardSearchRetriever, NearestNeighborRetriever,
                                 DistilledRetriever])
@examples(15)
@given(data=st.data())
def test_fit_invalid_inputs_name_the_argument(world, cls, data):
    X = world[1][:12]
    what = data.draw(st.sampled_from(["X", "y", "param"]))
    params = dict(epochs=1, embedding_dim=4, random_state=0)
    if cls is DistilledRetriever:
        ret = cls(BackwardSearchRetriever(**params), epochs=1)
    else:
        ret = cls(**params)
    y = pd.DataFrame({"shape": [0, 1, 2] * 4, "colour": ["red", "blue"] * 6})
    if what == "X":
        X = data.draw(_bad_X())  # all invalid (also: 3 rows for 12 labels)
        arg = "X"
    elif what == "y":
        y = data.draw(bad_labels(12, INVALID_ANYWHERE))
        arg = "y"
    else:
        arg = data.draw(st.sampled_from(["n_neighbors", "device", "epochs",
                                         "learning_rate", "weight_decay",
                                         "batch_size"]))
        # invalid for each of these parameters (weight_decay=0 is valid)
        value = data.draw(st.one_of(
            st.integers(max_value=-1), st.floats(max_value=-1e-300), st.just(np.nan),
            st.just(np.inf), st.just(True), st.none(),
            st.text(max_size=4).filter(lambda t: t not in ("cpu", "cuda", "auto"))))
        ret.set_params(**{arg: value})
    with pytest.raises(ERRORS) as info:
        ret.fit(X, y)
    assert_names(arg, info.value)


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_methods_raise_not_fitted(name):
    ret = _retrievers()[name]
    X = np.zeros((2, 7))
    for call in (lambda: ret.transform(X), lambda: ret.kneighbors(X),
                 lambda: ret.index(X),
                 lambda: ret.condition_report(X, condition="red")):
        with pytest.raises(NotFittedError):
            call()


# ---- metrics and the query protocol ----------------------------------------------


@st.composite
def label_lists(draw):
    """``(y_true, y_retrieved, k)`` of one kind of labels."""
    labels = draw(st.sampled_from([[0, 1, 2], ["a", "b", "c"], [0.5, 1.5]]))
    n = draw(st.integers(1, 8))
    m = draw(st.integers(1, 6))
    y_true = draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
    row = st.lists(st.sampled_from(labels), min_size=m, max_size=m)
    y_retrieved = draw(st.lists(row, min_size=n, max_size=n))
    return y_true, y_retrieved, draw(st.one_of(st.none(), st.integers(1, m)))


@SOME
@given(args=label_lists())
def test_label_metrics_valid_inputs(args):
    y_true, y_retrieved, k = args
    scores = [precision_at_k(y_true, y_retrieved, k),
              attribute_preservation_at_k(y_true, y_retrieved, k),
              average_precision_at_k(y_true, y_retrieved, k)]
    rel = (np.array(y_retrieved)[:, :k] == np.array(y_true)[:, None])
    scores.append(average_precision_at_k(y_true, y_retrieved, k,
                                         n_relevant=rel.sum(1) + 1))
    assert all(isinstance(s, float) and 0 <= s <= 1 for s in scores)
    assert scores[0] == pytest.approx(rel.mean())


@SOME
@given(data=st.data())
def test_tag_similarity_valid_inputs(data):
    n, m, t = (data.draw(st.integers(1, 5)) for _ in range(3))
    q = data.draw(hnp.arrays(np.bool_, (n, t)))
    r = data.draw(hnp.arrays(np.int64, (n, m, t), elements=st.integers(0, 1)))
    score = tag_similarity_at_k(q, r, data.draw(st.integers(1, m)))
    assert 0 <= score <= 1


@st.composite
def bad_metric_call(draw):
    y_true, y_retrieved = ["a", "b"], [["a", "b", "c"], ["b", "b", "a"]]
    arg = draw(st.sampled_from(["k", "y_retrieved", "y_true", "n_relevant"]))
    call = dict(y_true=y_true, y_retrieved=y_retrieved, k=2)
    if arg == "k":
        call["k"] = draw(st.one_of(st.integers(max_value=0), st.integers(4, 100),
                                   st.floats(allow_nan=True), st.just(True),
                                   st.text(max_size=2)))
    elif arg == "y_retrieved":
        call["y_retrieved"] = draw(st.sampled_from([
            [["a", "b"], ["a"]], [[1, 2, 3], [1, 2, 3]], [["a", "b", "c"]],
            [[["a"], ["b"]], [["a"], ["b"]]], [["a", None, "c"], ["b", "b", "a"]]]))
    elif arg == "y_true":
        call["y_true"] = draw(st.sampled_from([[1, 2], ["a"], ["a", None],
                                               [["a", "b"], ["c"]]]))
    else:
        call["n_relevant"] = draw(st.sampled_from([
            [np.nan, 1], [-1, 2], [1.5, 2], ["3", "1"], [3], [[1, 2]], [0, 0]]))
    return call, arg


@SOME
@given(bad=bad_metric_call())
def test_metrics_invalid_inputs_name_the_argument(bad):
    call, arg = bad
    metric = average_precision_at_k if arg == "n_relevant" else precision_at_k
    with pytest.raises(ERRORS) as info:
        metric(**call)
    assert_names(arg, info.value)


@SOME
@given(data=st.data())
def test_sample_queries_valid_inputs(data):
    n_classes = data.draw(st.integers(2, 5))
    y_db = data.draw(st.lists(st.integers(0, n_classes - 1), min_size=5, max_size=60))
    y_q = data.draw(st.lists(st.integers(0, n_classes - 1), min_size=1, max_size=30))
    k = data.draw(st.integers(1, 5))
    n_queries = data.draw(st.one_of(st.none(), st.integers(1, 300)))
    exclude_own = data.draw(st.booleans())
    eligible = {c for c in set(y_db) if y_db.count(c) >= k}
    if not eligible:
        with pytest.raises(ValueError, match="k="):
            sample_queries(y_q, y_db, n_queries=n_queries, k=k, random_state=0)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fewer pairs than asked
        qi, cond = sample_queries(y_q, y_db, n_queries=n_queries, k=k,
                                  exclude_own_class=exclude_own,
                                  random_state=data.draw(st.integers(0, 2**31)))
    pairs = list(zip(qi.tolist(), cond[0].tolist()))
    assert set(cond[0].tolist()) <= eligible
    if exclude_own:
        assert all(c != y_q[i] for i, c in pairs)
    if n_queries is not None:
        n_all = sum(len(eligible - ({y_q[i]} if exclude_own else set()))
                    for i in range(len(y_q)))
        assert len(set(pairs)) == len(pairs) == min(n_queries, n_all)


@SOME
@given(data=st.data())
def test_sample_queries_invalid_inputs_name_the_argument(data):
    y = [0, 1] * 10
    arg = data.draw(st.sampled_from(["n_queries", "k", "y_query", "y_database",
                                     "condition_on"]))
    call = dict(y_query=y, y_database=y, n_queries=5, k=2)
    if arg in ("n_queries", "k"):
        call[arg] = data.draw(st.one_of(st.integers(max_value=0), st.floats(),
                                        st.just(True), st.text(max_size=2)))
    elif arg == "condition_on":
        call[arg] = data.draw(st.sampled_from(["colour", 3, ["x"]]))
    else:
        call[arg] = data.draw(st.sampled_from([["a", "b"] * 10, [0, None] * 10,
                                               [[0, 1], [1]], [[0, 1]] * 10]))
    with pytest.raises(ERRORS) as info:
        sample_queries(**call)
    assert_names(arg, info.value)


@pytest.mark.parametrize("name", ["backward+filter", "distilled", "label_filter"])
@examples(8)
@given(data=st.data())
def test_scorers_valid_inputs(world, name, data):
    retrievers, X, y = world
    rows = data.draw(st.lists(st.integers(0, len(X) - 1), min_size=3, max_size=20,
                              unique=True))
    metric = data.draw(st.sampled_from(["precision", "average_precision",
                                        "preservation", "harmonic"]))
    scorer = make_retrieval_scorer(metric, k=data.draw(st.integers(1, 5)),
                                   condition_on="colour")
    score = scorer(retrievers[name], X[rows], y.iloc[rows])
    assert 0 <= score <= 1


@SOME
@given(data=st.data())
def test_conditional_neighbors_and_overlap_valid_inputs(data):
    m, n, d = data.draw(st.integers(1, 20)), data.draw(st.integers(1, 6)), 3
    X_db = data.draw(hnp.arrays(np.float64, (m, d), elements=st.floats(0.1, 10)))
    X_q = data.draw(hnp.arrays(np.float64, (n, d), elements=st.floats(0.1, 10)))
    labels = data.draw(st.sampled_from([["a", "b"], [0, 1, 2]]))
    y_db = data.draw(st.lists(st.sampled_from(labels), min_size=m, max_size=m))
    wanted = data.draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
    exclude = np.array(data.draw(st.lists(st.integers(-1, m - 1), min_size=n,
                                          max_size=n)))
    k = data.draw(st.integers(1, 5))
    ref = conditional_neighbors(X_q, X_db, y_db, wanted, k, exclude=exclude)
    assert ref.shape == (n, k) and ((ref >= -1) & (ref < m)).all()
    for i, row in enumerate(ref.tolist()):
        found = [r for r in row if r >= 0]
        assert row == found + [-1] * (k - len(found))  # padding last
        assert len(set(found)) == len(found) and exclude[i] not in found
        assert all(y_db[r] == wanted[i] for r in found)
        n_match = sum(y == wanted[i] for j, y in enumerate(y_db) if j != exclude[i])
        assert len(found) == min(k, n_match)
    retrieved = data.draw(hnp.arrays(np.int64, (n, k), elements=st.integers(0, m - 1)))
    assert 0 <= neighbor_overlap_at_k(retrieved, ref, k) <= 1


@st.composite
def bad_conditional_neighbors_call(draw):
    X = np.eye(4, 3)
    call = dict(X_query=X[:2], X_database=X, y_database=["a", "b", "a", "b"],
                wanted=["a", "b"], n_neighbors=2)
    arg = draw(st.sampled_from(["X_query", "X_database", "y_database", "wanted",
                                "n_neighbors", "exclude"]))
    if arg in ("X_query", "X_database"):
        bad = call[arg].copy()
        bad[0, 0] = draw(st.sampled_from([np.nan, np.inf]))
        call[arg] = draw(st.sampled_from([bad, call[arg][:, :2], "x"]))
    elif arg == "y_database":
        call[arg] = draw(st.sampled_from([[0, 1, 0, 1], ["a", None, "a", "b"],
                                          ["a", "b"]]))
    elif arg == "wanted":
        call[arg] = draw(st.sampled_from([[0, 1], ["a"], ["a", None]]))
    elif arg == "n_neighbors":
        call[arg] = draw(st.one_of(st.integers(max_value=0), st.floats(),
                                   st.just(True)))
    else:
        call[arg] = draw(st.sampled_from([[0], [0.5, 1.0], [[0, 1]]]))
    return call, arg


@SOME
@given(bad=bad_conditional_neighbors_call())
def test_conditional_neighbors_invalid_inputs_name_the_argument(bad):
    call, arg = bad
    with pytest.raises(ERRORS) as info:
        conditional_neighbors(**call)
    assert_names(arg, info.value)


# ---- the index layer: every backend against brute force (issue 17) ----------------


@st.composite
def index_cases(draw):
    """Items built in parts (a build, then appends), with predicted classes,
    labels (ints, strings or none), queries, k, ``exclude`` and ``prefer``.

    The arrays come from a drawn seed (hypothesis shrinks the sizes and the
    switches); duplicated items and queries equal to items make exact ties.
    """
    rng = np.random.RandomState(draw(st.integers(0, 2**31 - 1)))
    dim = draw(st.integers(2, 6))
    n_classes = draw(st.lists(st.integers(2, 3), min_size=1, max_size=2))
    parts = draw(st.lists(st.integers(1, 20), min_size=1, max_size=3))
    n, n_q = sum(parts), draw(st.integers(1, 5))
    Z = rng.randn(n, dim)
    if draw(st.booleans()):  # duplicates: ties
        Z[rng.randint(n, size=n // 3)] = Z[rng.randint(n, size=n // 3)]
    queries = rng.randn(n_q, dim)
    queries[: n_q // 2] = Z[rng.randint(n, size=n_q // 2)]  # items themselves
    predicted = np.stack([rng.randint(c, size=n) for c in n_classes], axis=1)
    labels = {"none": None, "int": rng.randint(-3, 3, size=n),
              "str": np.array(["a", "bb", "é"])[rng.randint(3, size=n)]}[
        draw(st.sampled_from(["none", "int", "str"]))]
    exclude = (np.where(rng.rand(n_q) < 0.5, rng.randint(n, size=n_q), -1)
               if draw(st.booleans()) else None)
    prefer = [np.where(rng.rand(n_q, len(n_classes)) < 0.6,
                       rng.randint(max(n_classes), size=(n_q, len(n_classes))), -1)
              for _ in range(draw(st.integers(0, 2)))] or None
    return dict(Z=Z, predicted=predicted, labels=labels, parts=parts,
                queries=queries, k=draw(st.integers(1, n)), exclude=exclude,
                prefer=prefer, chunk=draw(st.integers(1, 8)))


def build_in_parts(index, case):
    """``index`` built as a retriever builds it: its first part by ``build``,
    then each other part by ``extend``, in chunks of ``case["chunk"]``."""
    unit, norms = unit_float32(case["Z"])
    predicted, labels = case["predicted"], case["labels"]
    chunk, start = case["chunk"], 0
    for i, size in enumerate(case["parts"]):
        part = slice(start, start + size)
        bounds = [(s, min(s + chunk, start + size))
                  for s in range(start, start + size, chunk)]
        chunks = [(unit[s:e], norms[s:e], predicted[s:e],
                   None if labels is None else labels[s:e]) for s, e in bounds]
        part_labels = None if labels is None else labels[part]
        if i == 0:
            index = index.build(
                chunks, n_items=size, dim=unit.shape[1],
                n_attributes=predicted.shape[1], labels=part_labels,
                training_sample=lambda n, part=part: (unit[part], predicted[part]),
            )
        else:
            index = index.extend(chunks, n_items=size, labels=part_labels)
        start += size
    return index


def brute_force(case):
    """The reference: per query, the items by (tier-0 wishes met, tier-1
    wishes met, ..., cosine similarity), the excluded item left out.

    Returns the similarities (n_q, n), the items' levels (n_q, n, n_tiers)
    and the top k's distances (inf where fewer than k items are left) and
    levels.
    """
    Z, q, k = case["Z"], case["queries"], case["k"]
    sims = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (
        Z / np.linalg.norm(Z, axis=1, keepdims=True)).T
    tiers = case["prefer"] or []
    levels = np.stack([((t[:, None, :] >= 0) & (t[:, None, :] == case["predicted"]))
                       .sum(2) for t in tiers], axis=2) if tiers else \
        np.zeros(sims.shape + (0,), dtype=int)
    if case["exclude"] is not None:
        on = np.flatnonzero(case["exclude"] >= 0)
        sims[on, case["exclude"][on]] = -np.inf
    dist = np.full((len(q), k), np.inf)
    top_levels = np.zeros((len(q), k, levels.shape[2]), dtype=int)
    for i in range(len(q)):
        keys = [-sims[i]] + [-levels[i, :, t] for t in range(levels.shape[2])][::-1]
        order = [j for j in np.lexsort(keys) if np.isfinite(sims[i, j])][:k]
        dist[i, :len(order)] = np.clip(1 - sims[i, order], 0, 2)
        top_levels[i, :len(order)] = levels[i, order]
    return sims, levels, dist, top_levels


def assert_agrees_with_brute_force(index, case):
    """Same neighbours as :func:`brute_force`, up to the order of ties: the
    same distances and levels position by position, each returned item at
    its own distance, no item twice, the excluded one never; and the
    stored items, classes and labels read back as given."""
    dist, ind = index.search(case["queries"], case["k"], exclude=case["exclude"],
                             prefer=case["prefer"])
    sims, levels, ref_dist, ref_levels = brute_force(case)
    found = ind >= 0
    np.testing.assert_array_equal(found, np.isfinite(ref_dist))
    assert np.isinf(dist[~found]).all()
    np.testing.assert_allclose(dist[found], ref_dist[found], rtol=0, atol=1e-5)
    rows = np.nonzero(found)[0]
    np.testing.assert_allclose(1 - sims[rows, ind[found]], dist[found], rtol=0,
                               atol=1e-5)
    np.testing.assert_array_equal(levels[rows, ind[found]], ref_levels[found])
    for row in ind:
        assert len(set(row[row >= 0])) == (row >= 0).sum()
    if case["exclude"] is not None:
        assert not (ind == case["exclude"][:, None])[case["exclude"] >= 0].any()
    assert index.n_items_ == len(case["Z"])
    np.testing.assert_allclose(index.embeddings(), case["Z"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(index.predicted(), case["predicted"])
    loaded = pickle.loads(pickle.dumps(index))  # a database reads labels back
    for labels in (index.labels_, loaded.labels_):
        if case["labels"] is None:
            assert labels is None
        else:
            np.testing.assert_array_equal(labels, case["labels"])


IN_MEMORY = {"exact": lambda: ExactIndex(),
             "exact, small tiles": lambda: ExactIndex(working_memory=0.01),
             "faiss Flat": lambda: FaissIndex("Flat"),
             # every list of the wanted cells probed: exact
             "faiss per class, every list": lambda: FaissIndex(
                 "IVF4,Flat", nprobe=10**6, per_class=True)}


@pytest.mark.parametrize("backend", list(IN_MEMORY))
@examples(40)
@given(case=index_cases())
def test_in_memory_indexes_agree_with_brute_force(backend, case):
    if backend.startswith("faiss"):
        require("faiss")
    assert_agrees_with_brute_force(build_in_parts(IN_MEMORY[backend](), case), case)


def assert_levels_agree_with_brute_force(index, case):
    """What an approximate search still owes: as many items as brute force
    finds, each position's preference level the same (a level is exhausted
    before the next one fills up), ascending within a level, each item at
    its own distance, none twice, the excluded one never."""
    dist, ind = index.search(case["queries"], case["k"], exclude=case["exclude"],
                             prefer=case["prefer"])
    sims, levels, ref_dist, ref_levels = brute_force(case)
    found = ind >= 0
    np.testing.assert_array_equal(found, np.isfinite(ref_dist))
    rows = np.nonzero(found)[0]
    np.testing.assert_array_equal(levels[rows, ind[found]], ref_levels[found])
    np.testing.assert_allclose(1 - sims[rows, ind[found]], dist[found], rtol=0,
                               atol=1e-5)
    got_levels = levels[np.arange(len(ind))[:, None], ind.clip(0)]
    same = (got_levels[:, 1:] == got_levels[:, :-1]).all(-1) & found[:, 1:]
    assert (np.diff(dist, axis=1)[same] >= -1e-6).all()
    for row in ind:
        assert len(set(row[row >= 0])) == (row >= 0).sum()
    if case["exclude"] is not None:
        assert not (ind == case["exclude"][:, None])[case["exclude"] >= 0].any()


@pytest.mark.parametrize("nprobe", [1, 2])
@examples(40)
@given(case=index_cases())
def test_per_class_faiss_keeps_the_levels(nprobe, case):
    # one or two of the wanted cells' lists probed: approximate within a
    # level, but every level exhausted before the next
    require("faiss")
    index = build_in_parts(FaissIndex("IVF4,Flat", nprobe=nprobe, per_class=True),
                           case)
    assert_levels_agree_with_brute_force(index, case)


@pytest.mark.parametrize("nprobe", [1, 10**6])
@examples(40)
@given(case=index_cases())
def test_batched_scan_agrees_with_faiss_scan(nprobe, case):
    # the same SQ8 lists scanned by batch (int8 products, the best groups
    # re-scored) and by faiss: the same items at the same similarities
    require("faiss")
    plain, batched = [build_in_parts(FaissIndex("IVF4,SQ8", nprobe=nprobe,
                                                per_class=True, scan=scan), case)
                      for scan in ("faiss", "batched")]
    args = (case["queries"], case["k"])
    kwargs = dict(exclude=case["exclude"], prefer=case["prefer"])
    d_f, i_f = plain.search(*args, **kwargs)
    d_b, i_b = batched.search(*args, **kwargs)
    np.testing.assert_allclose(d_b, d_f, rtol=2e-6, atol=2e-6)
    np.testing.assert_array_equal(i_b >= 0, i_f >= 0)
    # each item at its own distance (another item at the same distance may
    # stand in for faiss's), none twice
    decoded = batched.embeddings() / batched.norms_[:, None]
    q = case["queries"] / np.linalg.norm(case["queries"], axis=1, keepdims=True)
    rows, cols = np.nonzero(i_b >= 0)
    sims = (q[rows] * decoded[i_b[rows, cols]]).sum(1)
    np.testing.assert_allclose(np.clip(1 - sims, 0, 2), d_b[rows, cols], atol=1e-5)
    for row in i_b:
        assert len(set(row[row >= 0])) == (row >= 0).sum()


@pytest.fixture(scope="module")
def milvus_db(tmp_path_factory):
    require("pymilvus")
    require("milvus_lite")
    return str(tmp_path_factory.mktemp("properties") / "items.db")


@pytest.mark.parametrize("partition_key", [False, True])
@examples(10)  # a Milvus Lite collection per example: slower
@given(case=index_cases())
def test_milvus_flat_agrees_with_brute_force(milvus_db, partition_key, case):
    name = f"p{uuid.uuid4().hex}"
    index = build_in_parts(MilvusIndex(milvus_db, name, batch_size=7,
                                       partition_key=partition_key), case)
    try:
        assert_agrees_with_brute_force(index, case)
    finally:  # keep the file small: the next examples start faster
        client = index._client()
        client.drop_alias(name)
        client.drop_collection(index._collection)
