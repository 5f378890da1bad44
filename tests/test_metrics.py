"""Tests of the retrieval metrics and scorers (skbackward.metrics)."""

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skbackward import BackwardSearchRetriever
from skbackward.exceptions import ScoringSetupError
from skbackward.metrics import (
    attribute_preservation_at_k,
    average_precision_at_k,
    conditional_neighbors,
    hit_at_k,
    make_average_precision_scorer,
    make_precision_scorer,
    make_retrieval_scorer,
    neighbor_overlap_at_k,
    precision_at_k,
    retrieval_scores,
    tag_similarity_at_k,
)
from skbackward.model_selection import sample_queries

TINY = dict(epochs=3, embedding_dim=16, max_steps=20, random_state=0)

# ---- precision_at_k ----------------------------------------------------------


@pytest.mark.parametrize("k, expected", [(1, 0.5), (2, 0.25), (3, 0.5), (None, 0.5)])
def test_precision_at_k_by_hand(k, expected):
    y_true = ["a", "b"]
    y_retrieved = [["a", "b", "a"], ["a", "a", "b"]]
    # query 0: a b a -> hits 1 0 1 ; query 1: a a b -> hits 0 0 1
    assert precision_at_k(y_true, y_retrieved, k=k) == pytest.approx(expected)


def test_precision_at_k_returns_python_float():
    score = precision_at_k([1], [[1, 2]], k=2)
    assert type(score) is float and score == 0.5


def test_precision_at_k_int_labels_and_arrays():
    y_true = np.array([3, 7, 7])
    y_retrieved = np.array([[3, 3, 3, 1], [7, 1, 1, 1], [1, 1, 1, 1]])
    assert precision_at_k(y_true, y_retrieved, k=4) == pytest.approx((3 + 1 + 0) / 12)


def test_precision_at_k_all_attributes_must_match():
    y_true = [["sketch", "dog"], ["photo", "cat"]]
    y_retrieved = [
        [["sketch", "dog"], ["sketch", "cat"], ["photo", "dog"]],
        [["photo", "cat"], ["photo", "cat"], ["sketch", "cat"]],
    ]
    expected = (1 / 3 + 2 / 3) / 2
    assert precision_at_k(y_true, y_retrieved, k=3) == pytest.approx(expected)
    assert precision_at_k(y_true, y_retrieved, k=1) == pytest.approx(1.0)


def test_precision_docstring_example():
    assert precision_at_k(["a", "b"], [["a", "b"], ["a", "a"]], k=2) == 0.25


# ---- average_precision_at_k -------------------------------------------------------


@pytest.mark.parametrize(
    "k, n_relevant, expected",
    [
        # ranks: b a a b -> rel 0 1 1 0; P@2 = 1/2, P@3 = 2/3; sum = 7/6
        (4, None, 7 / 6 / 2),  # R = hits in the top k = 2
        (4, [5], 7 / 6 / 4),  # min(k=4, R=5) = 4
        (4, [3], 7 / 6 / 3),  # min(k=4, R=3) = 3
        (4, [2], 7 / 6 / 2),
        (2, None, 1 / 2 / 1),  # top 2: b a -> one hit at rank 2
        (2, [5], 1 / 2 / 2),  # min(2, 5) = 2
        (1, None, 0.0),  # no hit in the top 1
        (1, [5], 0.0),
    ],
)
def test_average_precision_by_hand(k, n_relevant, expected):
    score = average_precision_at_k(["a"], [["b", "a", "a", "b"]], k=k,
                                   n_relevant=n_relevant)
    assert score == pytest.approx(expected)


def test_average_precision_perfect_and_empty():
    assert average_precision_at_k(["a"], [["a", "a", "a"]], k=3) == pytest.approx(1.0)
    assert average_precision_at_k(["a"], [["a", "a", "a"]], k=3,
                                  n_relevant=[10]) == pytest.approx(1.0)
    assert average_precision_at_k(["a"], [["b", "b", "b"]], k=3) == 0.0
    assert average_precision_at_k(["a"], [["b", "b", "b"]], k=3, n_relevant=[0]) == 0.0


def test_average_precision_mean_over_queries():
    y_true = [0, 1, 2]
    y_retrieved = [[0, 9, 0], [9, 1, 9], [9, 9, 9]]
    # q0: (1 + 2/3) / 2 ; q1: (1/2) / 1 ; q2: 0
    expected = ((1 + 2 / 3) / 2 + 0.5 + 0) / 3
    assert average_precision_at_k(y_true, y_retrieved, k=3) == pytest.approx(expected)
    # with R: q0 R=4 -> /3, q1 R=1 -> /1, q2 R=7 -> 0
    expected_r = ((1 + 2 / 3) / 3 + 0.5 + 0) / 3
    assert average_precision_at_k(y_true, y_retrieved, k=3,
                                  n_relevant=[4, 1, 7]) == pytest.approx(expected_r)


def test_average_precision_multi_attribute():
    y_true = [["x", 1]]
    y_retrieved = [[["x", 2], ["x", 1], ["y", 1]]]
    assert average_precision_at_k(y_true, y_retrieved, k=3) == pytest.approx(0.5)


@pytest.mark.parametrize("n_relevant", [[1], [1, 2, 3], [[1, 2]]],
                         ids=["too-short", "too-long", "2-D"])
def test_average_precision_n_relevant_wrong_shape(n_relevant):
    with pytest.raises(ValueError, match="n_relevant"):
        average_precision_at_k(["a", "b"], [["a"], ["a"]], k=1, n_relevant=n_relevant)


@pytest.mark.parametrize("n_relevant", [[1], [-1]])
def test_average_precision_n_relevant_below_hits_in_top_k(n_relevant):
    # two relevant items in the top 2 cannot come from R = 1 relevant item:
    # otherwise AP@k = (1 + 1) / min(2, 1) = 2.0, outside [0, 1]
    with pytest.raises(ValueError, match="n_relevant"):
        average_precision_at_k(["a"], [["a", "a"]], k=2, n_relevant=n_relevant)


def test_average_precision_docstring_example():
    assert average_precision_at_k(["a"], [["b", "a"]], k=2) == 0.5


# ---- attribute_preservation_at_k -------------------------------------------------


def test_attribute_preservation_by_hand():
    query = ["cat", "dog"]
    retrieved = [["cat", "dog", "cat"], ["dog", "dog", "cat"]]
    assert attribute_preservation_at_k(query, retrieved, k=3) == pytest.approx(2 / 3)
    assert attribute_preservation_at_k(query, retrieved, k=1) == pytest.approx(1.0)


def test_attribute_preservation_several_kept_attributes():
    query = [["cat", "big"]]
    retrieved = [[["cat", "big"], ["cat", "small"], ["dog", "big"], ["cat", "big"]]]
    assert attribute_preservation_at_k(query, retrieved, k=4) == pytest.approx(0.5)


# ---- tag_similarity_at_k ---------------------------------------------------------


def test_tag_similarity_jaccard_by_hand():
    query = [[1, 1, 0, 0]]
    retrieved = [[[1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]]]
    # |{0}| / |{0,1}| = 1/2 ; |{0,1}| / |{0,1,2}| = 2/3 ; 0 / 3 = 0
    expected = (1 / 2 + 2 / 3 + 0) / 3
    assert tag_similarity_at_k(query, retrieved, k=3) == pytest.approx(expected)
    assert tag_similarity_at_k(query, retrieved, k=1) == pytest.approx(1 / 2)
    assert tag_similarity_at_k(query, retrieved, k=None) == pytest.approx(7 / 18)


def test_tag_similarity_bool_and_several_queries():
    query = np.array([[True, False], [False, True]])
    retrieved = np.array(
        [[[True, False], [True, True]], [[False, True], [False, True]]]
    )
    expected = (1 + 0.5 + 1 + 1) / 4
    assert tag_similarity_at_k(query, retrieved, k=2) == pytest.approx(expected)


def test_tag_similarity_empty_sets():
    query = [[0, 0, 0], [0, 0, 0]]
    retrieved = [[[0, 0, 0], [1, 0, 0]], [[0, 0, 0], [0, 0, 0]]]
    # both empty: 0 ; query empty, item not: 0/1 = 0
    assert tag_similarity_at_k(query, retrieved, k=2) == 0.0
    assert tag_similarity_at_k([[1, 0]], [[[0, 0]]], k=1) == 0.0


def test_tag_similarity_identical_sets():
    assert tag_similarity_at_k([[1, 0, 1]], [[[1, 0, 1], [1, 0, 1]]], k=2) == 1.0


# ---- input errors -----------------------------------------------------------------

LABEL_METRICS = [precision_at_k, average_precision_at_k, attribute_preservation_at_k]


@pytest.mark.parametrize("metric", LABEL_METRICS)
@pytest.mark.parametrize(
    "y_true, y_retrieved",
    [
        (["a", "b"], [["a", "b"], ["a", "b"], ["a", "b"]]),  # 2 vs 3 queries
        (["a", "b"], ["a", "b"]),  # retrieved is 1-D
        (["a"], [[["a"], ["b"]]]),  # 1-D y_true, 3-D retrieved
        ([["a", 1]], [["a", "b"]]),  # 2-D y_true, 2-D retrieved
        ([["a", 1]], [[["a", 1, 0]]]),  # attribute counts differ
    ],
    ids=["n-queries", "1d-retrieved", "3d-for-1d", "2d-for-2d", "n-attributes"],
)
def test_shape_mismatch(metric, y_true, y_retrieved):
    with pytest.raises(ValueError, match="y_retrieved must have shape"):
        metric(y_true, y_retrieved, k=1)


@pytest.mark.parametrize("metric", LABEL_METRICS)
@pytest.mark.parametrize(
    "k, match",
    [(0, r"'k' parameter .* \[1, inf\) or None. Got 0"),
     (-1, r"'k' parameter .* Got -1"),
     (4, r"k must be in \[1, n_retrieved=3\]; got")],
)
def test_k_out_of_range(metric, k, match):
    with pytest.raises(ValueError, match=match):
        metric(["a"], [["a", "b", "c"]], k=k)


@pytest.mark.parametrize("metric", LABEL_METRICS)
def test_empty_queries(metric):
    with pytest.raises(ValueError, match="no queries"):
        metric(np.empty(0), np.empty((0, 3)), k=2)


def test_tag_similarity_shape_mismatch():
    with pytest.raises(ValueError, match="query_tags must be"):
        tag_similarity_at_k([[1, 0]], [[[1, 0, 0]]], k=1)
    with pytest.raises(ValueError, match="query_tags must be"):
        tag_similarity_at_k([[1, 0], [0, 1]], [[[1, 0]]], k=1)
    with pytest.raises(ValueError, match="query_tags must be"):
        tag_similarity_at_k([1, 0], [[1, 0]], k=1)


@pytest.mark.parametrize("k, match", [(0, r"'k' parameter"), (3, r"k in \[1, 2\]")])
def test_tag_similarity_k_out_of_range(k, match):
    with pytest.raises(ValueError, match=match):
        tag_similarity_at_k([[1, 0]], [[[1, 0], [0, 1]]], k=k)


def test_tag_similarity_empty():
    with pytest.raises(ValueError, match="need queries"):
        tag_similarity_at_k(np.empty((0, 3)), np.empty((0, 2, 3)), k=1)


# ---- scorers: data and fitted retrievers -------------------------------------------


@pytest.fixture(scope="module")
def small_digits():
    """Digits 0-3: 140 database (training) items and 60 query items."""
    X, y = load_digits(return_X_y=True)
    mask = y < 4
    X, y = X[mask][:200], y[mask][:200]
    return X[:140], y[:140], X[140:], y[140:]


@pytest.fixture(scope="module")
def digits_retriever(small_digits):
    X_train, y_train, _, _ = small_digits
    return BackwardSearchRetriever(**TINY).fit(X_train, y_train)


@pytest.fixture(scope="module")
def two_attribute_blobs():
    """Blobs with two independent attributes: obj (3 classes), style (2)."""
    rng = np.random.RandomState(0)
    n = 160
    obj, style = rng.randint(3, size=n), rng.randint(2, size=n)
    X = 3 * rng.randn(3, 10)[obj] + 3 * rng.randn(2, 10)[style] + rng.randn(n, 10)
    y = pd.DataFrame({
        "obj": np.array(["cat", "dog", "owl"])[obj],
        "style": np.array(["photo", "sketch"])[style],
    })
    return X[:110], y.iloc[:110], X[110:], y.iloc[110:]


@pytest.fixture(scope="module")
def two_attribute_retriever(two_attribute_blobs):
    X_train, y_train, _, _ = two_attribute_blobs
    return BackwardSearchRetriever(**TINY).fit(X_train, y_train)


# ---- scorers ----------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["map", "mAP", "recall", "", None])
def test_bad_metric_name(metric):
    match = "'metric' parameter of make_retrieval_scorer must be"
    with pytest.raises(ValueError, match=match):
        make_retrieval_scorer(metric)


def test_scorer_names():
    assert make_average_precision_scorer(k=5).__name__ == "average_precision_at_5"
    assert make_precision_scorer(k=3).__name__ == "precision_at_3"
    assert make_retrieval_scorer("harmonic", k=10).__name__ == "harmonic_at_10"


@pytest.mark.parametrize(
    "scorer",
    [make_average_precision_scorer(k=5), make_precision_scorer(k=5),
     make_retrieval_scorer("precision", k=5, n_queries=40),
     make_retrieval_scorer("average_precision", k=5, exclude_own_class=True)],
    ids=["map", "precision", "n_queries", "exclude_own_class"],
)
def test_scorer_returns_deterministic_float_in_unit_interval(
    scorer, small_digits, digits_retriever
):
    _, _, X_q, y_q = small_digits
    first = scorer(digits_retriever, X_q, y_q)
    second = scorer(digits_retriever, X_q, y_q)
    assert isinstance(first, float)
    assert 0.0 <= first <= 1.0
    assert first == second


def test_scorer_matches_retrieval_scores(small_digits, digits_retriever):
    _, _, X_q, y_q = small_digits
    scores = retrieval_scores(digits_retriever, X_q, y_q, k=5)
    ap = make_average_precision_scorer(k=5)(digits_retriever, X_q, y_q)
    precision = make_precision_scorer(k=5)(digits_retriever, X_q, y_q)
    assert ap == scores["average_precision"]
    assert precision == scores["precision"]
    assert np.isnan(scores["preservation"]) and np.isnan(scores["harmonic"])


def test_scorer_precision_by_hand(small_digits, digits_retriever):
    # Same draw as the scorer: every query once, conditions with >= k db items.
    _, y_db, X_q, y_q = small_digits
    qi, cond = sample_queries(y_q, y_db, n_queries=None, k=5, random_state=0)
    ind = digits_retriever.kneighbors(X_q[qi], 5, return_distance=False,
                                      condition=cond[0])
    expected = np.mean(y_db[ind] == cond[0][:, None])
    score = make_precision_scorer(k=5)(digits_retriever, X_q, y_q)
    assert score == pytest.approx(expected)


def test_scorer_reproducible_across_refits(small_digits):
    X_train, y_train, X_q, y_q = small_digits
    scorer = make_average_precision_scorer(k=5)
    first = scorer(BackwardSearchRetriever(**TINY).fit(X_train, y_train), X_q, y_q)
    second = scorer(BackwardSearchRetriever(**TINY).fit(X_train, y_train), X_q, y_q)
    assert first == second


def test_scorer_on_pipeline(small_digits):
    X_train, y_train, X_q, y_q = small_digits
    pipe = Pipeline([("scale", StandardScaler()),
                     ("ret", BackwardSearchRetriever(**TINY))]).fit(X_train, y_train)
    scorer = make_average_precision_scorer(k=5)
    score = scorer(pipe, X_q, y_q)
    assert isinstance(score, float) and 0.0 <= score <= 1.0
    assert score == scorer(pipe, X_q, y_q)
    # the pipeline transforms the queries before the retriever sees them
    assert score == scorer(pipe[-1], pipe[0].transform(X_q), y_q)


def test_scorer_in_cross_val_score(small_digits):
    X_train, y_train, _, _ = small_digits
    scores = cross_val_score(
        BackwardSearchRetriever(**TINY), X_train, y_train,
        scoring=make_average_precision_scorer(k=5),
        cv=KFold(2, shuffle=True, random_state=0),
    )
    assert scores.shape == (2,)
    assert np.all((scores >= 0) & (scores <= 1))


def test_scorer_with_query_class_unseen_in_training(small_digits):
    X_train, y_train, X_q, y_q = small_digits
    keep = y_train < 3
    ret = BackwardSearchRetriever(**TINY).fit(X_train[keep], y_train[keep])
    assert 3 in y_q  # queries of class 3 cannot be conditioned on it
    score = make_precision_scorer(k=5)(ret, X_q, y_q)
    assert 0.0 <= score <= 1.0


@pytest.mark.parametrize("metric", ["preservation", "harmonic", "precision",
                                    "average_precision"])
def test_two_attribute_scorers(metric, two_attribute_blobs, two_attribute_retriever):
    _, _, X_q, y_q = two_attribute_blobs
    scorer = make_retrieval_scorer(metric, k=5, condition_on="style")
    score = scorer(two_attribute_retriever, X_q, y_q)
    assert isinstance(score, float) and 0.0 <= score <= 1.0
    assert score == scorer(two_attribute_retriever, X_q, y_q)


def test_harmonic_is_harmonic_mean(two_attribute_blobs, two_attribute_retriever):
    _, _, X_q, y_q = two_attribute_blobs
    scores = retrieval_scores(two_attribute_retriever, X_q, y_q, k=5,
                              condition_on="obj")
    p, q = scores["precision"], scores["preservation"]
    assert scores["harmonic"] == pytest.approx(2 * p * q / (p + q))


def test_preservation_by_hand(two_attribute_blobs, two_attribute_retriever):
    _, y_db, X_q, y_q = two_attribute_blobs
    qi, cond = sample_queries(y_q, y_db, condition_on="style", n_queries=None, k=5,
                              random_state=0)
    ind = two_attribute_retriever.kneighbors(
        X_q[qi], 5, return_distance=False, condition={"style": cond["style"]}
    )
    obj_db = y_db["obj"].to_numpy()
    expected = np.mean(obj_db[ind] == y_q["obj"].to_numpy()[qi][:, None])
    scorer = make_retrieval_scorer("preservation", k=5, condition_on="style")
    assert scorer(two_attribute_retriever, X_q, y_q) == pytest.approx(expected)


def test_two_attribute_scorer_with_2d_array_y(two_attribute_blobs):
    X_train, y_train, X_q, y_q = two_attribute_blobs
    ret = BackwardSearchRetriever(**TINY).fit(X_train, y_train.to_numpy())
    assert ret.attributes_ == [0, 1]
    scorer = make_retrieval_scorer("harmonic", k=5, condition_on=1)
    score = scorer(ret, X_q, y_q.to_numpy())
    assert 0.0 <= score <= 1.0


def test_joint_conditions_scorer(two_attribute_blobs, two_attribute_retriever):
    _, _, X_q, y_q = two_attribute_blobs
    score = make_average_precision_scorer(k=5)(two_attribute_retriever, X_q, y_q)
    assert 0.0 <= score <= 1.0


@pytest.mark.parametrize("metric", ["preservation", "harmonic"])
def test_preservation_needs_an_unconditioned_attribute_1d(metric, small_digits,
                                                         digits_retriever):
    _, _, X_q, y_q = small_digits
    scorer = make_retrieval_scorer(metric, k=5)
    with pytest.raises(ScoringSetupError, match=f"metric='{metric}' needs an "
                       "attribute left unconditioned"):
        scorer(digits_retriever, X_q, y_q)


@pytest.mark.parametrize("metric", ["preservation", "harmonic"])
def test_preservation_needs_an_unconditioned_attribute_joint(
    metric, two_attribute_blobs, two_attribute_retriever
):
    _, _, X_q, y_q = two_attribute_blobs
    for condition_on in (None, ["obj", "style"]):
        scorer = make_retrieval_scorer(metric, k=5, condition_on=condition_on)
        with pytest.raises(ScoringSetupError, match="left unconditioned"):
            scorer(two_attribute_retriever, X_q, y_q)


def test_scorer_unknown_condition_on(two_attribute_blobs, two_attribute_retriever):
    _, _, X_q, y_q = two_attribute_blobs
    scorer = make_retrieval_scorer("precision", k=5, condition_on="colour")
    with pytest.raises(ValueError, match="unknown attribute"):
        scorer(two_attribute_retriever, X_q, y_q)


def test_scorer_on_unlabelled_index(small_digits, digits_retriever):
    X_train, y_train, X_q, y_q = small_digits
    ret = copy.deepcopy(digits_retriever)
    ret.index(X_q)  # an unlabelled database
    with pytest.raises(ValueError, match="index has no labels"):
        make_average_precision_scorer(k=5)(ret, X_q, y_q)
    ret.index(X_train, y_train)  # labelled again
    assert 0.0 <= make_average_precision_scorer(k=5)(ret, X_q, y_q) <= 1.0


def test_scorer_on_pipeline_with_unlabelled_index(small_digits):
    X_train, y_train, X_q, y_q = small_digits
    pipe = Pipeline([("scale", StandardScaler()),
                     ("ret", BackwardSearchRetriever(**TINY))]).fit(X_train, y_train)
    pipe[-1].index(pipe[0].transform(X_q))
    with pytest.raises(ValueError, match="index has no labels"):
        make_precision_scorer(k=5)(pipe, X_q, y_q)


def test_multi_metric_scorer_returns_a_dict_from_one_search(
    digits_retriever, small_digits
):
    _, _, X_q, y_q = small_digits
    single = {m: make_retrieval_scorer(m, k=5)(digits_retriever, X_q, y_q)
              for m in ("precision", "average_precision")}
    both = make_retrieval_scorer(["precision", "average_precision"], k=5)
    assert both(digits_retriever, X_q, y_q) == single
    assert both.__name__ == "precision_average_precision_at_5"


# ---- fine-grained context: conditional neighbours in the input space ---------------


def test_conditional_neighbors_against_brute_force():
    rng = np.random.RandomState(0)
    X_db, X_q = rng.normal(size=(60, 5)), rng.normal(size=(12, 5))
    y_db = np.array([["a", "x"], ["b", "y"], ["a", "y"]] * 20, dtype=object)
    wanted = y_db[rng.randint(60, size=12)]
    exclude = rng.randint(-1, 60, size=12)
    ref = conditional_neighbors(X_q, X_db, y_db, wanted, n_neighbors=4,
                                exclude=exclude)
    cos = (X_q / np.linalg.norm(X_q, axis=1, keepdims=True)) @ (
        X_db / np.linalg.norm(X_db, axis=1, keepdims=True)).T
    for i in range(12):
        ok = (y_db == wanted[i]).all(1)
        ok[exclude[i]] = ok[exclude[i]] and exclude[i] < 0
        expected = np.flatnonzero(ok)[np.argsort(-cos[i, ok], kind="stable")][:4]
        np.testing.assert_array_equal(ref[i], expected)


def test_conditional_neighbors_pads_small_classes():
    X_db = np.eye(4)
    ref = conditional_neighbors(np.eye(4)[:1], X_db, ["a", "b", "b", "a"], ["b"],
                                n_neighbors=3)
    assert ref.tolist() == [[1, 2, -1]] or ref.tolist() == [[2, 1, -1]]


def test_neighbor_overlap_at_k():
    assert neighbor_overlap_at_k([[1, 2, 3]], [[3, 9, -1]], k=3) == pytest.approx(1 / 3)
    assert neighbor_overlap_at_k([[1, 2, 3]], [[3, 9, -1]], k=2) == 0.0
    assert neighbor_overlap_at_k([[-1, 2]], [[-1, 2]], k=2) == 0.5  # padding never hits
    with pytest.raises(ValueError, match="one row per query"):
        neighbor_overlap_at_k([[1, 2]], [[1], [2]], k=1)
    with pytest.raises(ValueError, match="k in"):
        neighbor_overlap_at_k([[1, 2]], [[1, 2]], k=3)
    with pytest.raises(ValueError, match="reference must be a rectangular"):
        neighbor_overlap_at_k([[1, 2], [3, 4]], [[1], [2, 3]], k=1)


def test_retrieval_scores_x_is_index_does_not_count_the_query_in_r():
    # Three well-separated classes of five items, a label filter that ranks
    # perfectly, k=5: a query drawn on its own class can retrieve only the four
    # other items of its class, so R is 4 and every AP@5 is 1 (0.933 when the
    # query itself was counted in R).
    from skbackward import LabelFilterRetriever

    y = np.repeat([0, 1, 2], 5)
    X = np.eye(3)[y] * 5 + np.random.RandomState(0).normal(scale=0.1, size=(15, 3))
    ret = LabelFilterRetriever(epochs=30, random_state=0).fit(X, y)
    assert (ret.vector_index_.predicted_[:, 0] == y).all()
    scores = retrieval_scores(ret, X, y, k=5, X_is_index=True)
    assert scores["precision"] < 1  # own-class queries fill one slot elsewhere
    assert scores["average_precision"] == pytest.approx(1.0)


@pytest.mark.parametrize("retrieved, reference", [
    ([["a", "b"]], [["a", "c"]]),
    ([[1, 2]], [["1", "2"]]),
    ([[0.5, 1.0]], [[1, 2]]),
])
def test_neighbor_overlap_refuses_what_is_not_row_numbers(retrieved, reference):
    with pytest.raises(ValueError, match="must hold database row numbers"):
        neighbor_overlap_at_k(retrieved, reference, k=2)
    # whole numbers stored as floats are row numbers
    assert neighbor_overlap_at_k([[1.0, 2.0]], [[2, -1]], k=2) == 0.5


def test_retrieval_scores_x_is_index_needs_the_indexed_items(small_digits,
                                                             digits_retriever):
    # with fewer queries than items, row i of X is not item i: the query would
    # exclude an unrelated item from its results
    X_db, y_db, _, _ = small_digits
    with pytest.raises(ValueError, match="X_is_index=True says row i of X is "
                                         "indexed item i, but X has 50 rows"):
        retrieval_scores(digits_retriever, X_db[:50], y_db[:50], k=5,
                         X_is_index=True)


def test_retrieval_scores_on_a_pipeline_ending_in_a_classifier(small_digits):
    from sklearn.linear_model import LogisticRegression

    X_train, y_train, X_q, y_q = small_digits
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clf", LogisticRegression(max_iter=50))]).fit(X_train, y_train)
    with pytest.raises(TypeError, match="last step is a LogisticRegression, not a "
                                        "retriever"):
        retrieval_scores(pipe, X_q, y_q, k=5)


# ---- hit@k: exact-target retrieval with groups -------------------------------


def test_hit_at_k_by_hand():
    wanted = [[7, "sketch"], [8, "photo"], [9, "photo"]]
    retrieved = [[[3, "sketch"], [7, "sketch"], [7, "photo"]],
                 [[8, "sketch"], [2, "photo"], [8, "photo"]],
                 [[9, "sketch"], [9, "art"], [1, "photo"]]]
    assert hit_at_k(wanted, retrieved, k=1) == 0.0
    assert hit_at_k(wanted, retrieved, k=2) == pytest.approx(1 / 3)
    assert hit_at_k(wanted, retrieved, k=3) == pytest.approx(2 / 3)
    # one identity column: the wanted item id itself
    assert hit_at_k([4, 5], [[1, 4], [5, 5]], k=1) == 0.5


def grouped_items(n=120, seed=0):
    """Each of ``n`` items in two forms ("a", "b"): the form shifts the
    features; the item's own features stay (so its counterpart is near)."""
    rng = np.random.RandomState(seed)
    base = rng.normal(size=(n, 8))
    X = np.vstack([base, base + [4, 0, 0, 0, 0, 0, 0, 0]])
    X += rng.normal(scale=0.05, size=X.shape)
    y = np.repeat(["a", "b"], n)
    return X, y, np.tile(np.arange(n), 2)


@pytest.fixture(scope="module")
def grouped_retriever():
    X, y, groups = grouped_items()
    ret = BackwardSearchRetriever(epochs=5, embedding_dim=16, random_state=0)
    return ret.fit(X, y, groups=groups), X, y, groups


def test_retrieval_scores_hit_counts_the_counterpart(grouped_retriever):
    ret, X, y, groups = grouped_retriever
    np.testing.assert_array_equal(ret.index_groups_, groups)
    scores = retrieval_scores(ret, X, y, groups=groups, X_is_index=True,
                              exclude_own_class=True, k=10)
    # by hand: the counterpart of item i asked for the other form is item
    # i +- n; hit when it is among the top 10
    n = len(X) // 2
    other = np.where(y == "a", "b", "a")
    ind = ret.kneighbors(X, 10, return_distance=False, condition=other,
                         exclude=np.arange(len(X)))
    counterpart = (np.arange(len(X)) + n) % len(X)
    expected = (ind == counterpart[:, None]).any(axis=1).mean()
    assert scores["hit"] == pytest.approx(expected)
    assert 0 < scores["hit"] <= 1
    # without groups: no hit
    assert np.isnan(retrieval_scores(ret, X, y, X_is_index=True)["hit"])


def test_hit_only_over_queries_whose_counterpart_is_indexed(grouped_retriever):
    ret, X, y, groups = grouped_retriever
    # queries of groups the index does not hold never count
    scores = retrieval_scores(ret, X[:10], y[:10], groups=groups[:10] + 1000,
                              exclude_own_class=True)
    assert np.isnan(scores["hit"])


def test_hit_needs_groups_in_the_index(grouped_retriever):
    _, X, y, groups = grouped_retriever
    plain = BackwardSearchRetriever(epochs=1, embedding_dim=8,
                                    random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="index has none"):
        retrieval_scores(plain, X, y, groups=groups)
    with pytest.raises(ValueError, match="groups must have shape"):
        retrieval_scores(grouped_retriever[0], X, y, groups=groups[:5])
    with pytest.raises(ValueError, match="groups must have shape"):
        plain.fit(X, y, groups=groups[:-1])


def test_index_and_append_keep_groups(grouped_retriever):
    ret, X, y, groups = grouped_retriever
    ret = copy.deepcopy(ret)
    ret.index(X[:50], y[:50], groups=groups[:50])
    ret.index(X[50:80], y[50:80], groups=groups[50:80], append=True)
    np.testing.assert_array_equal(ret.index_groups_, groups[:80])
    with pytest.raises(ValueError, match="groups must be given for every part"):
        ret.index(X[80:], y[80:], append=True)
    ret.index(X[:50], y[:50])
    assert ret.index_groups_ is None


def test_hit_scorer_in_grid_search_by_metadata_routing():
    from sklearn import config_context
    from sklearn.model_selection import GridSearchCV

    X, y, groups = grouped_items(n=60)
    scorer = make_retrieval_scorer(["hit", "precision"], k=10,
                                   exclude_own_class=True)
    with config_context(enable_metadata_routing=True):
        retriever = BackwardSearchRetriever(
            epochs=3, embedding_dim=16, random_state=0).set_fit_request(groups=True)
        search = GridSearchCV(retriever, {"alpha": [0.1, 3.0]}, scoring=scorer,
                              refit="hit", cv=KFold(3, shuffle=True,
                                                    random_state=0))
        search.fit(X, y, groups=groups)
    hits = search.cv_results_["mean_test_hit"]
    assert np.isfinite(hits).all() and (hits > 0).any()
    # the first fold by hand: the training fold indexed with its groups, the
    # test fold's queries scored with theirs
    train, test = next(KFold(3, shuffle=True, random_state=0).split(X))
    fold = BackwardSearchRetriever(epochs=3, embedding_dim=16, alpha=0.1,
                                   random_state=0)
    fold.fit(X[train], y[train], groups=groups[train])
    expected = scorer(fold, X[test], y[test], groups=groups[test])["hit"]
    assert search.cv_results_["split0_test_hit"][0] == pytest.approx(expected)
    # without routing, the scorer says what it needs
    with pytest.raises(ScoringSetupError,
                       match="metric 'hit' needs the queries' groups"):
        scorer(fold, X[test], y[test])


@pytest.mark.parametrize("metric", ["hit", ["hit", "precision"]])
def test_hit_scorer_with_grouped_folds_stops_at_the_first_fold(metric):
    """GroupKFold puts every counterpart of a test query in the test fold:
    the search stops at once with the cause, instead of NaN for every
    candidate and fold with warnings."""
    import warnings

    from sklearn import config_context
    from sklearn.model_selection import GridSearchCV, GroupKFold

    X, y, groups = grouped_items(n=30)
    fitted = []

    class Counting(BackwardSearchRetriever):
        def fit(self, X, y, groups=None):
            fitted.append(len(X))
            return super().fit(X, y, groups=groups)

    scorer = make_retrieval_scorer(metric, k=5, exclude_own_class=True)
    with config_context(enable_metadata_routing=True):
        retriever = Counting(epochs=1, embedding_dim=8,
                             random_state=0).set_fit_request(groups=True)
        search = GridSearchCV(retriever, {"alpha": [0.1, 3.0]}, scoring=scorer,
                              refit=False, cv=GroupKFold(3))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ScoringSetupError, match=(
                    "no query's counterpart is indexed.*Grouped folds.*put every "
                    "counterpart.*KFold")):
                search.fit(X, y, groups=groups)
    assert len(fitted) == 1  # the first fold
    # the queries' groups indexed, but not in the asked form: another message
    ret = BackwardSearchRetriever(epochs=1, embedding_dim=8, random_state=0)
    ret.fit(X, y, groups=groups)
    a_first = (y == "a") & (groups < 15)
    db = a_first | ((y == "b") & (groups >= 15))
    ret.index(X[db], y[db], groups=groups[db])
    with pytest.raises(ScoringSetupError, match="none carrying the condition"):
        scorer(ret, X[a_first], y[a_first], groups=groups[a_first])
