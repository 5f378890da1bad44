"""The peer strategies: plain kNN, label filter, centroid shift; and the
search restricted to the predicted candidates (predicted_first)."""

import copy

import numpy as np
import pytest

from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
    NearestNeighborRetriever,
)
from skbackward._network._model import predict_labels

from .conftest import require, two_attribute_data

TRAIN = dict(epochs=6, embedding_dim=32, random_state=0)
PEERS = [NearestNeighborRetriever, LabelFilterRetriever, CentroidShiftRetriever]


@pytest.fixture(scope="module")
def fitted(digits):
    X_train, X_test, y_train, y_test = digits
    return {
        cls: cls(**TRAIN).fit(X_train, y_train).index(X_test, y_test)
        for cls in PEERS + [BackwardSearchRetriever]
    }


def test_same_training_gives_the_same_network(fitted):
    weights = [
        next(fitted[cls].model_.parameters()).detach().numpy()
        for cls in PEERS + [BackwardSearchRetriever]
    ]
    for w in weights[1:]:
        np.testing.assert_array_equal(w, weights[0])


def test_nearest_neighbors_ignores_the_condition(fitted, digits):
    ret = fitted[NearestNeighborRetriever]
    X = digits[1][:20]
    for a, b in zip(ret.kneighbors(X, condition=3), ret.kneighbors(X)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="unknown condition label"):
        ret.kneighbors(X, condition=12)


def test_label_filter_returns_predicted_matches_nearest_first(fitted, digits):
    ret = fitted[LabelFilterRetriever]
    X = digits[1][:30]
    dist, ind = ret.kneighbors(X, 8, condition=4)
    assert (ret.vector_index_.predicted_[ind, 0] == 4).all()
    assert np.all(np.diff(dist, axis=1) >= 0)
    # the same order as plain similarity restricted to those items
    Zq, Zdb = ret.transform(X), ret.transform(digits[1])
    cos = (Zq / np.linalg.norm(Zq, axis=1, keepdims=True)) @ (
        Zdb / np.linalg.norm(Zdb, axis=1, keepdims=True)).T
    cos[:, ret.vector_index_.predicted_[:, 0] != 4] = -np.inf
    np.testing.assert_array_equal(ind, np.argsort(-cos, axis=1, kind="stable")[:, :8])
    # transform does not move the query
    np.testing.assert_array_equal(ret.transform(X, condition=4), Zq)


def test_label_filter_falls_back_when_too_few_match():
    X, shape, colour = two_attribute_data(n=120)
    y = np.array([shape, colour], dtype=object).T
    ret = LabelFilterRetriever(**TRAIN).fit(X, y)
    pred = ret.vector_index_.predicted_
    red = ret.attribute_classes_[1].tolist().index("red")
    wanted = (pred[:, 0] == 1) & (pred[:, 1] == red)
    k = int(wanted.sum()) + 5
    ind = ret.kneighbors(X[:10], k, return_distance=False,
                         condition={0: 1, 1: "red"})
    n_match = int(wanted.sum())
    assert wanted[ind[:, :n_match]].all()  # every predicted match first
    assert not wanted[ind[:, n_match:]].any()  # then the rest
    # among the rest, items matching one of the two conditions come first
    partial = (pred[ind[:, n_match:], 0] == 1) | (
        ret.attribute_classes_[1][pred[ind[:, n_match:], 1]] == "red")
    first_miss = np.argmin(partial, axis=1)
    assert all(partial[i, : first_miss[i]].all() for i in range(10))


def test_centroid_shift_moves_by_centroid_difference(fitted, digits):
    ret = fitted[CentroidShiftRetriever]
    X = digits[1][:15]
    Z0 = ret.transform(X)
    pred = predict_labels(ret.model_, Z0, "cpu")[:, 0]
    C = ret.centroids_[0]
    assert C.shape == (10, TRAIN["embedding_dim"])
    np.testing.assert_allclose(ret.transform(X, condition=7), Z0 + C[7] - C[pred],
                               atol=1e-12)
    # centroids are the mean training embeddings of each class
    X_train, _, y_train, _ = digits
    np.testing.assert_allclose(C[2], ret.transform(X_train[y_train == 2]).mean(0),
                               atol=1e-5)


def test_centroids_do_not_depend_on_the_index(fitted, digits):
    # a compressed index gives its vectors back approximately; the centroids
    # are the training embeddings' means all the same
    from skbackward.indexes import FaissIndex

    require("faiss")

    X_train, _, y_train, _ = digits
    ret = CentroidShiftRetriever(
        **TRAIN, vector_index=FaissIndex("IVF4,PQ4", n_train=256)
    ).fit(X_train, y_train)
    for C, C_exact in zip(ret.centroids_, fitted[CentroidShiftRetriever].centroids_):
        np.testing.assert_allclose(C, C_exact, atol=1e-6)


@pytest.mark.parametrize("cls", [LabelFilterRetriever, CentroidShiftRetriever])
def test_peers_reach_the_condition(fitted, digits, cls):
    ind = fitted[cls].kneighbors(digits[1][:100], 10, return_distance=False,
                                 condition=0)
    assert (digits[3][ind] == 0).mean() > 0.8


def test_predicted_first_is_the_default():
    assert BackwardSearchRetriever().predicted_first is True


def test_predicted_first_ranks_candidates_by_the_searched_embedding(fitted, digits):
    # a copy: the module's fitted retrievers stay as they are
    ret = copy.deepcopy(fitted[BackwardSearchRetriever])
    X = digits[1][:25]
    ret.set_params(predicted_first=True, alpha=0.3)
    dist, ind = ret.kneighbors(X, 6, condition=9)
    assert (ret.vector_index_.predicted_[ind, 0] == 9).all()
    Zs = ret.transform(X, condition=9)
    Zdb = ret.transform(digits[1])
    cos = (Zs / np.linalg.norm(Zs, axis=1, keepdims=True)) @ (
        Zdb / np.linalg.norm(Zdb, axis=1, keepdims=True)).T
    cos[:, ret.vector_index_.predicted_[:, 0] != 9] = -np.inf
    np.testing.assert_array_equal(ind, np.argsort(-cos, axis=1)[:, :6])
    # the search itself does not change
    ret.set_params(predicted_first=False)
    np.testing.assert_array_equal(ret.transform(X, condition=9), Zs)


def test_student_inherits_predicted_first(digits):
    X_train, X_test, y_train, _ = digits
    teacher = BackwardSearchRetriever(**TRAIN, max_steps=30, predicted_first=True)
    ret = DistilledRetriever(teacher, epochs=3, random_state=0).fit(X_train, y_train)
    ind = ret.kneighbors(X_test[:20], 5, return_distance=False, condition=2)
    assert (ret.vector_index_.predicted_[ind, 0] == 2).all()


def test_exclude_leaves_rows_out(fitted, digits):
    ret = fitted[LabelFilterRetriever]
    X = digits[1][:10]
    own = np.arange(10)
    ind = ret.kneighbors(X, 5, return_distance=False, exclude=own)
    assert not (ind == own[:, None]).any()
    plain = ret.kneighbors(X, 5, return_distance=False)
    np.testing.assert_array_equal(plain[:, 0], own)  # the item itself, otherwise
    with pytest.raises(ValueError, match="exclude must be integers of shape"):
        ret.kneighbors(X, 5, exclude=own[:3])
    with pytest.raises(ValueError, match="exclude cannot be used with X=None"):
        ret.kneighbors(None, 5, exclude=own)


def test_retrieval_scores_can_leave_the_query_item_out(fitted, digits):
    from skbackward.metrics import retrieval_scores

    ret = fitted[NearestNeighborRetriever]  # indexed: the test split
    _, X_test, _, y_test = digits
    # with the query item kept, plain kNN returns it first: its own class
    kept = retrieval_scores(ret, X_test, y_test, k=1, n_queries=None)
    left_out = retrieval_scores(ret, X_test, y_test, k=1, n_queries=None,
                                X_is_index=True)
    assert kept["precision"] != left_out["precision"]
    ind = ret.kneighbors(X_test, 1, return_distance=False,
                         exclude=np.arange(len(X_test)))
    assert (ind[:, 0] != np.arange(len(X_test))).all()


# ---- keeping the unasked attributes (preserve) and the ranking blend ---------------


@pytest.fixture(scope="module")
def two_attributes():
    """Noisy two-attribute features (the heads err), fitted search and label
    filter with the same network; the search ranks by z* alone
    (feature_weight 0, not the default "auto"), which these tests compare
    with the label filter's ranking by the query's embedding."""
    X, shape, colour = two_attribute_data(n=600, seed=1)
    X = X + np.random.RandomState(1).normal(scale=1.0, size=X.shape)
    y = np.array([shape, colour], dtype=object).T
    fits = {BackwardSearchRetriever: BackwardSearchRetriever(
                **TRAIN, feature_weight=0.0).fit(X, y),
            LabelFilterRetriever: LabelFilterRetriever(**TRAIN).fit(X, y)}
    return X, y, fits


def _levels(ret, ind, asked, kept):
    """Per result: (asked classes matched, kept classes matched), predicted."""
    predicted = ret.vector_index_.predicted_[ind]  # (n, k, A)

    def hit(wish):
        return ((wish[:, None, :] < 0) | (predicted == wish[:, None, :])).all(2)

    return hit(asked), hit(kept)


@pytest.mark.parametrize("cls", [BackwardSearchRetriever, LabelFilterRetriever])
def test_preserve_ranks_the_query_s_other_classes_below_the_condition(
    two_attributes, cls
):
    X, _, fits = two_attributes
    ret = copy.deepcopy(fits[cls]).set_params(preserve="predicted")
    Xq = X[:40]
    ind = ret.kneighbors(Xq, 60, return_distance=False, condition={1: "red"},
                         exclude=np.arange(40))
    Z0 = fits[cls].transform(Xq)
    own_shape = predict_labels(ret.model_, Z0, "cpu")[:, 0]
    red = ret.attribute_classes_[1].tolist().index("red")
    asked = np.stack([np.full(40, -1), np.full(40, red)], 1)
    kept = np.stack([own_shape, np.full(40, -1)], 1)
    on_condition, keeping = _levels(ret, ind, asked, kept)
    level = 2 * on_condition + (on_condition & keeping)  # lexicographic
    assert (np.diff(level, axis=1) <= 0).all()  # levels never go up
    assert (level[:, 0] == 3).all()  # enough red items of the query's own shape
    plain = fits[cls].kneighbors(Xq, 60, return_distance=False, condition={1: "red"},
                                 exclude=np.arange(40))
    on_plain, keeping_plain = _levels(ret, plain, asked, kept)
    top = (on_condition & keeping)[:, :10].mean()
    assert top > (on_plain & keeping_plain)[:, :10].mean()


def test_preserve_keeps_the_other_head_in_the_search(two_attributes):
    X, _, fits = two_attributes
    ret = fits[BackwardSearchRetriever]
    Xq, condition = X[:100], {1: "red"}
    own = predict_labels(ret.model_, ret.transform(Xq), "cpu")[:, 0]
    free = ret.transform(Xq, condition=condition)
    kept = copy.deepcopy(ret).set_params(preserve=[0], alpha=0.0).transform(
        Xq, condition=condition)
    free0 = copy.deepcopy(ret).set_params(alpha=0.0).transform(Xq, condition=condition)
    held = (predict_labels(ret.model_, kept, "cpu")[:, 0] == own).mean()
    assert held > (predict_labels(ret.model_, free0, "cpu")[:, 0] == own).mean()
    # preserve_weight=0: the published loss, the same z* as without preserve
    zero = copy.deepcopy(ret).set_params(preserve="predicted", preserve_weight=0.0)
    np.testing.assert_array_equal(zero.transform(Xq, condition=condition), free)
    # condition_report judges the asked condition only
    report = copy.deepcopy(ret).set_params(preserve="predicted").condition_report(
        Xq, condition=condition)
    red = ret.attribute_classes_[1].tolist().index("red")
    at_z = predict_labels(ret.model_, report.embedding, "cpu")
    np.testing.assert_array_equal(report.reached, at_z[:, 1] == red)


def test_preserve_names_unknown_attributes(two_attributes):
    X, _, fits = two_attributes
    for ret in fits.values():
        bad = copy.deepcopy(ret).set_params(preserve=["size"])
        with pytest.raises(ValueError, match=r"preserve names attribute\(s\) \['s"):
            bad.kneighbors(X[:3], 2, condition={1: "red"})
        with pytest.raises(ValueError, match="preserve"):
            copy.deepcopy(ret).set_params(preserve="all").kneighbors(X[:3], 2)


def test_query_weight_one_is_the_label_filter(two_attributes):
    """Ranking the predicted candidates by the query's own embedding is what
    the label filter does: the same items, the same order."""
    X, _, fits = two_attributes
    search = copy.deepcopy(fits[BackwardSearchRetriever]).set_params(query_weight=1.0)
    for condition in ({1: "red"}, {0: 2}, {0: 1, 1: "blue"}):
        a = search.kneighbors(X[:50], 10, condition=condition)
        b = fits[LabelFilterRetriever].kneighbors(X[:50], 10, condition=condition)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_allclose(a[0], b[0], atol=1e-6)


def test_query_weight_blends_the_two_directions(two_attributes):
    X, _, fits = two_attributes
    ret = fits[BackwardSearchRetriever]
    half = copy.deepcopy(ret).set_params(query_weight=0.5, predicted_first=False)
    Xq = X[:20]
    Z0, Zs = ret.transform(Xq), ret.transform(Xq, condition={1: "red"})

    def unit(Z):
        return Z / np.linalg.norm(Z, axis=1, keepdims=True)

    direction = unit(0.5 * unit(Zs) + 0.5 * unit(Z0))
    items = unit(ret.vector_index_.embeddings().astype(np.float64))
    expected = np.argsort(-(direction @ items.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(
        half.kneighbors(Xq, 5, return_distance=False, condition={1: "red"}), expected)
    # transform is unchanged
    np.testing.assert_array_equal(half.transform(Xq, condition={1: "red"}), Zs)
