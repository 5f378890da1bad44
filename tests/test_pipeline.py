"""Conditional queries through a Pipeline: scikit-learn's metadata routing
carries ``condition`` (and ``condition_weight``) to the retriever's
``transform``; ``kneighbors`` goes through ``pipe[:-1].transform``."""

import numpy as np
import pytest
import sklearn
from sklearn.decomposition import PCA
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbackward import BackwardSearchRetriever, DistilledRetriever
from skbackward.metrics import retrieval_scores

from .conftest import two_attribute_data

FAST = dict(epochs=3, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, shape, colour = two_attribute_data(n=150)
    X = np.hstack([X, np.random.RandomState(1).normal(size=(150, 5))])
    return X, colour


def _pipeline(retriever):
    return make_pipeline(StandardScaler(), PCA(6, random_state=0), retriever)


RETRIEVERS = [
    pytest.param(lambda: BackwardSearchRetriever(**FAST), id="search"),
    pytest.param(lambda: DistilledRetriever(BackwardSearchRetriever(**FAST), **FAST),
                 id="distilled"),
]


# what is tested is the route, not how well a 3-epoch student reaches the class
@pytest.mark.filterwarnings(
    "ignore::skbackward.exceptions.ConditionNotReachedWarning")
@pytest.mark.parametrize("make", RETRIEVERS)
def test_pipeline_transform_routes_the_condition(data, make):
    X, colour = data
    Xq = X[:7]
    with sklearn.config_context(enable_metadata_routing=True):
        retriever = make().set_transform_request(condition=True,
                                                 condition_weight=True)
        pipe = _pipeline(retriever).fit(X, colour)
        by_hand = pipe[-1].transform(pipe[:-1].transform(Xq), condition="blue")
        np.testing.assert_allclose(pipe.transform(Xq, condition="blue"), by_hand)
        # one condition per query, and a condition_weight, route the same way
        wanted = colour[10:17]
        np.testing.assert_allclose(
            pipe.transform(Xq, condition=wanted, condition_weight=0.5),
            pipe[-1].transform(pipe[:-1].transform(Xq), condition=wanted,
                               condition_weight=0.5),
        )
        # the searched embeddings, not the plain ones
        assert not np.allclose(by_hand, pipe.transform(Xq))


def test_unrequested_condition_is_refused(data):
    X, colour = data
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = _pipeline(BackwardSearchRetriever(**FAST)).fit(X, colour)
        with pytest.raises(UnsetMetadataPassedError, match="set_transform_request"):
            pipe.transform(X[:3], condition="blue")
        # requested as not wanted: Pipeline refuses a parameter nobody consumes
        pipe[-1].set_transform_request(condition=False)
        with pytest.raises(TypeError, match="condition"):
            pipe.transform(X[:3], condition="blue")
    # without routing, Pipeline.transform takes no extra parameters at all
    with pytest.raises(ValueError, match="enable_metadata_routing"):
        pipe.transform(X[:3], condition="blue")


def test_kneighbors_and_scorers_through_the_pipeline(data):
    X, colour = data
    with sklearn.config_context(enable_metadata_routing=True):
        retriever = BackwardSearchRetriever(**FAST).set_transform_request(
            condition=True)
        pipe = _pipeline(retriever).fit(X, colour)
        # Pipeline has no kneighbors: transform the queries by the first steps
        dist, ind = pipe[-1].kneighbors(pipe[:-1].transform(X[:5]), 4,
                                        condition="blue")
        assert ind.shape == (5, 4)
        assert (colour[ind] == "blue").mean() > 0.5
        # the scorers take the same route, with or without the request set
        routed = retrieval_scores(pipe, X[:40], colour[:40], k=5)
    plain = retrieval_scores(pipe, X[:40], colour[:40], k=5)
    assert routed == plain
