"""BackwardSearchRetriever: API, semantics, persistence, model selection, errors."""

import copy
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler, normalize
from sklearn.utils._param_validation import InvalidParameterError

from skbackward import BackwardSearchRetriever
from skbackward.metrics import make_average_precision_scorer, retrieval_scores

from .conftest import assert_same_neighbours, two_attribute_data

# the published algorithm: every item ranked by similarity to z* (the input
# features left out of the ranking: feature_weight 0, not the default "auto")
FAST = dict(epochs=8, embedding_dim=32, max_steps=40, predicted_first=False,
            feature_weight=0.0, random_state=0)


@pytest.fixture(scope="module")
def fitted(digits):
    X_train, _, y_train, _ = digits
    return BackwardSearchRetriever(**FAST).fit(X_train, y_train)


# ---- fitting and labels -----------------------------------------------------


def test_fit_sets_attributes(fitted, digits):
    X_train, _, y_train, _ = digits
    assert fitted.attributes_ == [0]
    np.testing.assert_array_equal(fitted.classes_, np.arange(10))
    assert fitted.n_features_in_ == 64
    assert fitted.n_index_samples_ == X_train.shape[0]
    assert fitted.n_iter_ == FAST["epochs"] == len(fitted.loss_curve_)
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    assert next(fitted.model_.parameters()).device.type == "cpu"


def test_string_labels_and_dataframe_attributes():
    X, shape, colour = two_attribute_data()
    y = pd.DataFrame({"shape": shape, "colour": colour})
    ret = BackwardSearchRetriever(**FAST).fit(X, y)
    assert ret.attributes_ == ["shape", "colour"]
    assert ret.classes_[1].tolist() == ["black", "blue", "green", "red"]
    ind = ret.kneighbors(X[:5], 3, return_distance=False,
                         condition={"colour": "blue", "shape": 2})
    assert ind.shape == (5, 3)
    # a bare label that only one attribute has is resolved to it
    Z1 = ret.transform(X[:5], condition="blue")
    Z2 = ret.transform(X[:5], condition={"colour": "blue"})
    np.testing.assert_array_equal(Z1, Z2)


def test_two_dimensional_array_labels_are_attributes_0_and_1():
    X, shape, colour = two_attribute_data()
    ret = BackwardSearchRetriever(**FAST).fit(X, np.column_stack([shape, colour]))
    assert ret.attributes_ == [0, 1]
    assert isinstance(ret.classes_, list) and len(ret.classes_) == 2


def test_multi_attribute_condition_retrieves_both():
    X, shape, colour = two_attribute_data(n=400)
    y = np.array([shape, colour], dtype=object).T  # keeps ints and strings
    ret = BackwardSearchRetriever(**FAST, alpha=0.05).fit(X, y)
    ind = ret.kneighbors(X[:60], 10, return_distance=False,
                         condition={0: 1, 1: "green"})
    hit = (shape[ind] == 1) & (colour[ind] == "green")
    assert hit.mean() > 0.8


# ---- transform and kneighbors semantics ---------------------------------------


def test_transform_dtype_follows_input(fitted, digits):
    X = digits[1][:10]
    assert fitted.transform(X).dtype == np.float64
    Z32 = fitted.transform(X.astype(np.float32))
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, fitted.transform(X), atol=1e-4)
    assert fitted.transform(X, condition=3).shape == (10, FAST["embedding_dim"])


def test_kneighbors_matches_nearest_neighbors_cosine(fitted, digits):
    X_train, X_test = digits[0], digits[1][:50]
    nn = NearestNeighbors(metric="cosine", algorithm="brute")
    nn.fit(fitted.transform(X_train))
    d_ref, i_ref = nn.kneighbors(fitted.transform(X_test), 7)
    d, i = fitted.kneighbors(X_test, 7)
    np.testing.assert_array_equal(i, i_ref)
    # the index keeps float32 unit vectors
    np.testing.assert_allclose(d, d_ref, atol=1e-6)
    # X=None: the indexed items themselves, each excluded from its neighbours
    d_ref, i_ref = nn.kneighbors(n_neighbors=5)
    d, i = fitted.kneighbors(n_neighbors=5)
    np.testing.assert_array_equal(i, i_ref)
    np.testing.assert_allclose(d, d_ref, atol=1e-6)


def test_kneighbors_defaults_and_return_distance(fitted, digits):
    X = digits[1][:4]
    d, i = fitted.kneighbors(X)
    assert d.shape == i.shape == (4, fitted.n_neighbors)
    assert np.all(np.diff(d, axis=1) >= 0)
    np.testing.assert_array_equal(fitted.kneighbors(X, return_distance=False), i)


def test_conditional_kneighbors_reaches_the_condition(fitted, digits):
    _, X_test, _, y_test = digits
    # alpha is read at query time: a copy of the fitted retriever, no refit
    ret = copy.deepcopy(fitted).set_params(alpha=0.05)
    ind_plain = ret.kneighbors(X_test[:100], 10, return_distance=False)
    ind = ret.kneighbors(X_test[:100], 10, return_distance=False, condition=8)
    y_train = fitted.index_labels_
    assert (y_train[ind] == 8).mean() > 0.7
    assert (y_train[ind_plain] == 8).mean() < 0.3


def test_per_query_conditions_and_none_entries(fitted, digits):
    X = digits[1][:4]
    cond = np.array([1, None, 3, None], dtype=object)
    Z = fitted.transform(X, condition=cond)
    Z0 = fitted.transform(X)
    np.testing.assert_array_equal(Z[[1, 3]], Z0[[1, 3]])
    assert not np.allclose(Z[[0, 2]], Z0[[0, 2]])
    # each row's search does not depend on the others
    np.testing.assert_allclose(Z[2:3], fitted.transform(X[2:3], condition=3),
                               atol=1e-10)


def test_alpha_trades_condition_for_closeness(digits):
    X_train, X_test, y_train, y_test = digits
    ret = BackwardSearchRetriever(**FAST).fit(X_train, y_train)
    precision, moved = [], []
    for alpha in (0.02, 10.0):  # the published recipe reaches far at 2
        ret.set_params(alpha=alpha)
        scores = retrieval_scores(ret, X_test, y_test, exclude_own_class=True)
        precision.append(scores["precision"])
        Z0 = ret.transform(X_test[:100])
        moved.append(np.abs(ret.transform(X_test[:100], condition=0) - Z0).mean())
    assert precision[0] > precision[1] + 0.2
    assert moved[0] > moved[1]


def test_index_replaces_the_database(digits):
    X_train, X_test, y_train, y_test = digits
    ret = BackwardSearchRetriever(**FAST).fit(X_train, y_train)
    assert ret.index(X_test) is ret
    assert ret.n_index_samples_ == X_test.shape[0] and ret.index_labels_ is None
    ind = ret.kneighbors(X_test[:5], 3, return_distance=False)
    assert ind.max() < X_test.shape[0]
    ret.index(X_test, y_test)
    np.testing.assert_array_equal(ret.index_labels_, y_test)
    with pytest.raises(ValueError, match="y must have shape"):
        ret.index(X_test, y_test[:-1])
    with pytest.raises(ValueError, match="64 features"):
        ret.index(X_test[:, :10])


# ---- persistence, cloning, determinism, output -----------------------------------


def test_pickle_and_joblib_roundtrip(fitted, digits, tmp_path):
    X = digits[1][:20]
    expected = fitted.kneighbors(X, condition=5)
    restored = pickle.loads(pickle.dumps(fitted))
    for a, b in zip(restored.kneighbors(X, condition=5), expected):
        np.testing.assert_array_equal(a, b)
    joblib.dump(fitted, tmp_path / "ret.joblib")
    restored = joblib.load(tmp_path / "ret.joblib")
    for a, b in zip(restored.kneighbors(X, condition=5), expected):
        np.testing.assert_array_equal(a, b)


def test_clone_is_unfitted_with_same_params(fitted):
    c = clone(fitted)
    assert c.get_params() == fitted.get_params()
    assert not hasattr(c, "model_")


def test_same_random_state_is_bit_identical(digits):
    X_train, X_test, y_train, _ = digits
    a = BackwardSearchRetriever(**FAST).fit(X_train, y_train)
    b = BackwardSearchRetriever(**FAST).fit(X_train, y_train)
    np.testing.assert_array_equal(a.transform(X_test), b.transform(X_test))
    np.testing.assert_array_equal(a.transform(X_test, condition=2),
                                  b.transform(X_test, condition=2))
    for u, v in zip(a.kneighbors(X_test, condition=2),
                    b.kneighbors(X_test, condition=2)):
        np.testing.assert_array_equal(u, v)
    c = BackwardSearchRetriever(**{**FAST, "random_state": 1}).fit(X_train, y_train)
    assert not np.array_equal(a.transform(X_test), c.transform(X_test))


def test_fit_leaves_torch_global_rng_alone(digits):
    X_train, _, y_train, _ = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    BackwardSearchRetriever(**{**FAST, "epochs": 1}).fit(X_train, y_train)
    assert torch.equal(torch.rand(3), expected)


def test_fits_in_parallel_threads_are_reproducible(digits, fitted):
    """Each fit draws from generators of its own: threads cannot interleave
    their random draws (dropout, shuffling, initialisation)."""
    from concurrent.futures import ThreadPoolExecutor

    X_train, X_test, y_train, _ = digits
    with ThreadPoolExecutor(4) as pool:
        fits = list(pool.map(
            lambda _: BackwardSearchRetriever(**FAST).fit(X_train, y_train), range(4)
        ))
    for ret in fits:
        assert ret.loss_curve_ == fitted.loss_curve_
        np.testing.assert_array_equal(ret.transform(X_test), fitted.transform(X_test))


def test_set_output_pandas(fitted, digits):
    ret = clone(fitted).set_output(transform="pandas")
    ret.fit(*digits[0::2])
    Z = ret.transform(digits[1][:3], condition=1)
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == [f"backwardsearchretriever{i}" for i in range(32)]


# ---- model selection --------------------------------------------------------------


def test_grid_search_pipeline_picks_an_alpha(digits):
    X_train, _, y_train, _ = digits
    pipe = Pipeline([
        ("scale", StandardScaler()),
        ("pca", PCA(n_components=20, random_state=0)),
        ("backwardsearchretriever", BackwardSearchRetriever(**FAST)),
    ])
    grid = GridSearchCV(
        pipe, {"backwardsearchretriever__alpha": [0.02, 3.0]},
        scoring=make_average_precision_scorer(k=10, exclude_own_class=True),
        cv=2, n_jobs=2,
    )
    grid.fit(X_train, y_train)
    assert grid.best_params_ == {"backwardsearchretriever__alpha": 0.02}
    scores = grid.cv_results_["mean_test_score"]
    assert scores[0] > scores[1]
    assert np.all((scores >= 0) & (scores <= 1))


def test_cross_val_score_with_the_scorer(digits):
    X_train, _, y_train, _ = digits
    scores = cross_val_score(
        BackwardSearchRetriever(**FAST), X_train, y_train, cv=2,
        scoring=make_average_precision_scorer(k=5),
    )
    assert scores.shape == (2,) and np.all((scores > 0) & (scores <= 1))


# ---- errors -------------------------------------------------------------------------


def test_unfitted_raises_not_fitted():
    ret = BackwardSearchRetriever()
    with pytest.raises(NotFittedError):
        ret.transform(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        ret.kneighbors(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        ret.index(np.zeros((2, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_rejected(fitted, digits, bad):
    X = digits[1][:5].copy()
    X[1, 3] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        fitted.transform(X)
    with pytest.raises(ValueError, match="NaN|infinity"):
        fitted.kneighbors(X, condition=1)
    with pytest.raises(ValueError, match="NaN|infinity"):
        BackwardSearchRetriever(**FAST).fit(X, [0, 1, 0, 1, 0])


def test_bad_shapes_and_empty_input(fitted, digits):
    X = digits[1]
    with pytest.raises(ValueError, match="64 features"):
        fitted.transform(X[:, :5])
    with pytest.raises(ValueError, match="2D array"):
        fitted.transform(X[0])
    with pytest.raises(ValueError, match="0 sample"):
        fitted.transform(X[:0])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        BackwardSearchRetriever(**FAST).fit(X, np.arange(3))


def test_unknown_condition_label_names_known_ones(fitted, digits):
    with pytest.raises(ValueError, match=r"unknown condition label\(s\) \[11\].*"
                       r"known labels: \[0, 1, 2"):
        fitted.kneighbors(digits[1][:3], condition=11)
    with pytest.raises(ValueError, match="unknown condition label"):
        fitted.transform(digits[1][:3], condition="eight")


def test_condition_for_unknown_attribute(fitted, digits):
    with pytest.raises(ValueError, match=r"attribute\(s\) \['style'\].*known "
                       r"attributes: \[0\]"):
        fitted.transform(digits[1][:3], condition={"style": 1})


def test_condition_of_wrong_length(fitted, digits):
    with pytest.raises(ValueError, match=r"one entry per query: expected shape \(3,\)"):
        fitted.transform(digits[1][:3], condition=[1, 2])


def test_one_class_target_rejected():
    with pytest.raises(ValueError, match="one class"):
        BackwardSearchRetriever(**FAST).fit(np.random.rand(10, 3), np.zeros(10))
    X, shape, _ = two_attribute_data(n=30)
    with pytest.raises(ValueError, match="attribute 1 has one class"):
        BackwardSearchRetriever(**FAST).fit(X, np.column_stack([shape, np.ones(30)]))


def test_too_many_neighbors(fitted, digits):
    n = fitted.n_index_samples_
    with pytest.raises(ValueError, match="Expected n_neighbors <= n_samples_fit"):
        fitted.kneighbors(digits[1][:2], n + 1)
    with pytest.raises(ValueError, match="excludes each item itself"):
        fitted.kneighbors(None, n)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": -1.0}, r"'alpha' parameter .* a float in the range \[0.0, inf\)"),
        ({"epochs": 0}, r"'epochs' parameter .* an int in the range \[1, inf\)"),
        ({"max_steps": 2.5}, r"'max_steps' parameter .* an int in the range"),
        ({"n_neighbors": 0}, r"'n_neighbors' parameter .* in the range \[1, inf\)"),
        ({"device": "nonsense"}, r"'device' parameter .* 'cpu', 'cuda'"),
        ({"predicted_first": "yes"}, r"'predicted_first' parameter .* 'bool'"),
    ],
)
def test_bad_parameters(params, match, digits):
    with pytest.raises(InvalidParameterError, match=match):
        BackwardSearchRetriever(**{**FAST, **params}).fit(*digits[0::2])


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_unavailable_is_a_clear_error(digits):
    with pytest.raises(ValueError, match="CUDA is not available"):
        BackwardSearchRetriever(device="cuda").fit(*digits[0::2])


def test_select_rules_at_query_time(fitted, digits):
    X = digits[1][:60]
    # the fitted network, other (query-time) search parameters
    last = copy.deepcopy(fitted).set_params(alpha=0.3, select="last")
    published = copy.deepcopy(fitted).set_params(alpha=0.3)
    assert (last.condition_report(X, condition=8).n_steps == FAST["max_steps"]).all()
    steps = published.condition_report(X, condition=8).n_steps
    assert (steps >= 1).all() and (steps < FAST["max_steps"]).any()
    with pytest.raises(InvalidParameterError, match="'select' parameter .* among"):
        published.set_params(select="best").transform(X, condition=8)


# ---- what the search did: condition_report and the warning --------------------------


def test_condition_report_without_a_condition(fitted, digits):
    """condition=None: the queries' own embeddings, no step, all reached."""
    X = digits[1][:5]
    report = fitted.condition_report(X, condition=None)
    np.testing.assert_array_equal(report.embedding, fitted.transform(X))
    assert (report.n_steps == 0).all() and (report.distance == 0).all()
    assert report.reached.dtype == bool and report.reached.all()


def test_condition_report(fitted, digits):
    X = digits[1][:40]
    condition = np.where(np.arange(40) < 30, 8, None).astype(object)
    report = fitted.condition_report(X, condition=condition)
    Z0 = fitted.transform(X)
    np.testing.assert_array_equal(report.embedding,
                                  fitted.transform(X, condition=condition))
    # unconditioned queries: no step, no move, nothing to reach
    assert (report.n_steps[30:] == 0).all() and (report.distance[30:] == 0).all()
    assert report.reached[30:].all()
    np.testing.assert_array_equal(report.embedding[30:], Z0[30:])
    # searched ones: at least one step (z0 is never the published result)
    assert (report.n_steps[:30] >= 1).all() and (report.distance[:30] > 0).all()
    np.testing.assert_allclose(report.distance, np.abs(report.embedding - Z0).mean(1))
    predicted = fitted.classes_[
        copy.deepcopy(fitted.model_.heads[0]).double()(torch.as_tensor(report.embedding))
        .argmax(1).numpy()
    ]
    np.testing.assert_array_equal(report.reached[:30], predicted[:30] == 8)


def test_warns_when_many_queries_do_not_reach_the_condition(fitted, digits):
    from skbackward.exceptions import ConditionNotReachedWarning

    X = digits[1][:30]
    stuck = copy.deepcopy(fitted).set_params(alpha=1e4)  # the L1 pull wins
    report = stuck.condition_report(X, condition=8)
    assert (~report.reached).sum() >= 3
    match = "did not reach their condition"
    with pytest.warns(ConditionNotReachedWarning, match=match) as record:
        stuck.kneighbors(X, 3, condition=8)
    with pytest.warns(ConditionNotReachedWarning) as more:
        stuck.transform(X, condition=8)
    # the warnings point at the caller's line, not into the library
    assert {w.filename for w in [*record, *more]} == {__file__}
    # a search that gets there stays silent
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConditionNotReachedWarning)
        easy = copy.deepcopy(fitted).set_params(alpha=0.0)
        assert easy.condition_report(X, condition=8).reached.all()
        easy.kneighbors(X, 3, condition=8)


# ---- feature_weight: a ranking that keeps the item ----------------------------


@pytest.fixture(scope="module")
def feature_ranked():
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 2], 40)
    X = np.eye(3)[y] * 2 + rng.normal(scale=0.8, size=(120, 3))
    X = np.hstack([X, rng.normal(size=(120, 5))])
    ret = BackwardSearchRetriever(epochs=3, embedding_dim=8, feature_weight=0.5,
                                  random_state=0).fit(X, y)
    return ret, X, y


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("predicted_first", [False, True])
def test_feature_weight_ranks_by_the_blend(feature_ranked, weight, predicted_first):
    ret, X, y = feature_ranked
    ret = copy.deepcopy(ret).set_params(feature_weight=weight,
                                        predicted_first=predicted_first)
    Xq, cond = X[:15], (y[:15] + 1) % 3
    dist, ind = ret.kneighbors(Xq, 12, condition=cond)
    Z, Zdb = ret.transform(Xq, condition=cond), ret.transform(X)
    blend = ((1 - weight) * normalize(Z) @ normalize(Zdb).T
             + weight * normalize(Xq) @ normalize(X).T)
    if predicted_first:  # the predicted matches first, by the blend
        blend = blend + 10 * (ret.vector_index_.predicted_[:, 0] == cond[:, None])
    order = np.argsort(-blend, axis=1, kind="stable")[:, :12]
    # the same items up to the order of near-ties: the score of what came
    # back equals the best scores position by position
    assert_same_neighbours(
        (np.take_along_axis(blend, ind, 1), ind),
        (np.take_along_axis(blend, order, 1), order), atol=1e-5, max_differ=0.05)
    if not predicted_first:
        np.testing.assert_allclose(dist, 1 - np.take_along_axis(blend, ind, 1),
                                   atol=1e-5)


def test_feature_weight_needs_the_features_at_index_time(feature_ranked):
    ret, X, y = feature_ranked
    plain = BackwardSearchRetriever(epochs=1, embedding_dim=8, feature_weight=0,
                                    random_state=0)
    plain.fit(X, y).set_params(feature_weight=0.5)
    with pytest.raises(ValueError, match="set feature_weight before fit or index"):
        plain.kneighbors(X[:3], condition=1)
    plain.kneighbors(X[:3])  # plain queries do not blend
    with pytest.raises(ValueError, match="instead of appending"):
        plain.index(X[:5], y[:5], append=True)
    plain.index(X)  # rebuilt with the features, it answers
    assert plain.kneighbors(X[:3], condition=1)[1].shape == (3, 10)


def test_feature_weight_survives_appends_and_x_none(feature_ranked):
    ret, X, y = feature_ranked
    grown = copy.deepcopy(ret)
    grown.index(X[:70])
    grown.index(X[70:], append=True)
    np.testing.assert_array_equal(
        grown.kneighbors(X[:10], condition=2)[1],
        ret.kneighbors(X[:10], condition=2)[1])
    # X=None: the items' own features are read back from the index
    np.testing.assert_array_equal(
        ret.kneighbors(None, 5, condition=2, return_distance=False)[:10],
        ret.kneighbors(X[:10], 5, condition=2, exclude=np.arange(10),
                       return_distance=False))
