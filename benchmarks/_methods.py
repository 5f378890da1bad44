"""The methods a benchmark compares, all fitted retrievers over one network.

Every method shares the teacher's network (same training parameters and
``random_state``, so the peers train the very same network) and differs only
in how a condition is answered. Search variants are fitted copies of the
teacher with other query-time parameters, so no network is trained twice.
"""

import copy

from _measure import timed
from skbackward import (
    BackwardSearchRetriever,
    CentroidShiftRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
    NearestNeighborRetriever,
)

PEERS = {
    "plain kNN": NearestNeighborRetriever,
    "label filter": LabelFilterRetriever,
    "centroid shift": CentroidShiftRetriever,
}
# curves over alpha: label -> the search's query-time parameters; the
# ranking by z* alone (feature_weight 0, the 0.1.0 default) unless named
# the selection rules and rankings (the published algorithm is the first)
RULES = {
    "search, published": dict(select="published", predicted_first=False,
                              feature_weight=0.0),
    "search, published + filter": dict(select="published", predicted_first=True,
                                       feature_weight=0.0),
    "search, last iterate": dict(select="last", predicted_first=False,
                                 feature_weight=0.0),
    "search, last iterate + filter": dict(select="last", predicted_first=True,
                                          feature_weight=0.0),
}
# keeping the context: the unasked attributes (preserve), the query's own
# direction in the ranking (query_weight); on the published rule
CONTEXT = {
    "search + filter, preserve": dict(predicted_first=True, preserve="predicted",
                                      feature_weight=0.0),
    "search + filter, preserve in ranking only": dict(
        predicted_first=True, preserve="predicted", preserve_weight=0.0,
        feature_weight=0.0),
    "search + filter, query_weight 0.5": dict(predicted_first=True, query_weight=0.5,
                                              feature_weight=0.0),
    "search + filter, query_weight 0.8": dict(predicted_first=True, query_weight=0.8,
                                              feature_weight=0.0),
    "search + filter, preserve, query_weight 0.5": dict(
        predicted_first=True, preserve="predicted", query_weight=0.5,
        feature_weight=0.0),
    "search, published, preserve": dict(predicted_first=False, preserve="predicted",
                                        feature_weight=0.0),
    # keeping the item: the input features in the ranking (feature_weight)
    "search + filter, feature_weight 0.25": dict(predicted_first=True,
                                                 feature_weight=0.25),
    "search + filter, feature_weight 0.75": dict(predicted_first=True,
                                                 feature_weight=0.75),
    "search + filter, feature_weight 1": dict(predicted_first=True,
                                              feature_weight=1.0),
}


def fit_teacher(data, **params):
    """A BackwardSearchRetriever fitted on the training split, indexing the
    test split (with its labels and its items' features, so that variants
    may set ``feature_weight``); and its fit time. Its ranking is by ``z*``
    alone (``feature_weight=0``) unless ``params`` say otherwise: the
    variants and the students read it."""
    teacher, seconds = timed(
        BackwardSearchRetriever(**{"random_state": 0, "feature_weight": 0.0,
                                   **params}).fit, data.X_train, data.y_train,
    )
    weight = teacher.feature_weight
    teacher.set_params(feature_weight=0.5).index(data.X_test, data.y_test)
    teacher.set_params(feature_weight=weight)
    return teacher, seconds


def fit_default(data):
    """The default BackwardSearchRetriever (``feature_weight="auto"``, chosen
    at ``fit`` at the default ``alpha``), fitted on the training split with
    the teacher's ``random_state`` (so the same network) and indexing the
    test split; and its fit time, the internal fit of "auto" included."""
    default, seconds = timed(
        BackwardSearchRetriever(random_state=0).fit, data.X_train, data.y_train)
    default.index(data.X_test, data.y_test)
    return default, seconds


def variant(retriever, **params):
    """A fitted copy of ``retriever`` with other query-time parameters."""
    return copy.deepcopy(retriever).set_params(**params)


def search_variants(teacher, alphas, curves):
    """``{(label, alpha): retriever}`` for every curve and alpha."""
    return {
        (label, alpha): variant(teacher, alpha=alpha, **params)
        for label, params in curves.items()
        for alpha in alphas
    }


def fit_peers(teacher, data):
    """The peer strategies with the teacher's network; and their fit times."""
    training = {
        p: v for p, v in teacher.get_params().items()
        if p in NearestNeighborRetriever().get_params()
    }
    peers, seconds = {}, {}
    for name, cls in PEERS.items():
        peers[name], seconds[name] = timed(
            cls(**training).fit, data.X_train, data.y_train
        )
        peers[name].index(data.X_test, data.y_test)
    return peers, seconds


def fit_students(teacher, data, epochs, objectives=("distill", "amortized")):
    """Students of the prefit teacher, one per objective; and their fit times."""
    students, seconds = {}, {}
    for objective in objectives:
        students[objective], seconds[f"student {objective}"] = timed(
            DistilledRetriever(
                teacher, prefit=True, objective=objective, epochs=epochs,
                random_state=0,
            ).fit, data.X_train, data.y_train,
        )
        students[objective].index(data.X_test, data.y_test)
    return students, seconds


def with_ranking(student, predicted_first):
    """A fitted copy of a student whose teacher ranks with ``predicted_first``."""
    out = copy.deepcopy(student)
    out.teacher_.set_params(predicted_first=predicted_first)
    return out
