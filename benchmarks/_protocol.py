"""The query protocol and the figures of one method on it.

The paper's protocol (DESIGN.md §4): the test split is the database;
class-balanced (query, condition) pairs are drawn from it, the condition a
class other than the query's own with at least K database items; every method
answers the same pairs; a query's own database row is never among its results.
"""

import time
import warnings

import numpy as np
import pandas as pd

from skbackward.exceptions import ConditionNotReachedWarning
from skbackward.metrics import (
    attribute_preservation_at_k,
    average_precision_at_k,
    conditional_neighbors,
    hit_at_k,
    neighbor_overlap_at_k,
    precision_at_k,
)
from skbackward.model_selection import sample_queries

K = 10


class Setting:
    """Which attributes are conditioned on, which are checked for preservation,
    and the (query, condition) pairs, drawn once and shared by every method."""

    def __init__(self, condition_on, kept, X_db, y_db, n_queries, seed=0,
                 groups=None):
        self.name = "+".join(condition_on)
        self.condition_on = list(condition_on)
        self.kept = list(kept)
        self.qi, self.condition = sample_queries(
            y_db, y_db, condition_on=self.condition_on, n_queries=n_queries, k=K,
            exclude_own_class=True, random_state=seed,
        )
        self.wanted = np.column_stack([self.condition[a] for a in self.condition_on])
        # R for AP@k: database items matching every conditioned attribute, less
        # the query itself when it matches (it is never a result)
        sizes = y_db.value_counts(subset=self.condition_on)
        wanted = pd.MultiIndex.from_arrays(list(self.wanted.T))
        db = y_db[self.condition_on].to_numpy()
        self.n_relevant = (sizes.reindex(wanted, fill_value=0).to_numpy()
                           - (db[self.qi] == self.wanted).all(axis=1))
        # what a user would pick by hand: the query's nearest items of the
        # wanted class in the input feature space (fine-grained context)
        self.reference = conditional_neighbors(
            X_db[self.qi], X_db, db, self.wanted, K, exclude=self.qi
        )
        # exact-target retrieval: the query's counterpart, the database item
        # of its group carrying the wanted labels (-1: none, or no groups)
        self.target = np.full(len(self.qi), -1)
        if groups is not None:
            same = groups[self.qi][:, None] == groups[None, :]
            same &= (db[None, :, :] == self.wanted[:, None, :]).all(axis=2)
            same[np.arange(len(self.qi)), self.qi] = False
            found = same.any(axis=1)
            self.target[found] = same[found].argmax(axis=1)


def settings_for(X_db, y_db, n_queries, joint=True, groups=None):
    """Each attribute alone (the others checked for preservation), and all
    attributes jointly when there are several (and ``joint``); ``groups`` of
    the database items give each query its counterpart (hit@K)."""
    attributes = list(y_db.columns)
    settings = [
        Setting([a], [b for b in attributes if b != a], X_db, y_db, n_queries,
                groups=groups)
        for a in attributes
    ]
    if joint and len(attributes) > 1:
        settings.append(Setting(attributes, [], X_db, y_db, n_queries,
                                groups=groups))
    return settings


def neighbours(retriever, X_db, setting):
    """Indices (n, K) of a fitted retriever's results on the setting's pairs,
    each query's own row excluded; and the seconds the call took."""
    tic = time.perf_counter()
    with warnings.catch_warnings():  # reported per method by the benchmark instead
        warnings.simplefilter("ignore", ConditionNotReachedWarning)
        ind = retriever.kneighbors(
            X_db[setting.qi], K, return_distance=False, condition=setting.condition,
            exclude=setting.qi,
        )
    return ind, time.perf_counter() - tic


def evaluate(retriever, X_db, y_db, setting):
    """precision@K, AP@K, kept@K (share of the top K keeping the query's
    unconditioned attributes), near@K (share of the top K among the query's K
    nearest items of the wanted class in the input space), hit@K (share of
    the queries whose counterpart, the same item with the wanted labels, is
    in the top K; NaN without groups) and queries/s of one method on one
    setting."""
    ind, seconds = neighbours(retriever, X_db, setting)
    labels = y_db.to_numpy()
    cols = [y_db.columns.get_loc(a) for a in setting.condition_on]
    retrieved = labels[ind]  # (n, K, n_attributes)
    scores = {
        "precision": precision_at_k(setting.wanted, retrieved[..., cols], K),
        "ap": average_precision_at_k(setting.wanted, retrieved[..., cols], K,
                                     n_relevant=setting.n_relevant),
        "kept": np.nan,
        "near": neighbor_overlap_at_k(ind, setting.reference, K),
        "hit": np.nan,
        "qps": len(setting.qi) / seconds,
    }
    has = setting.target >= 0
    if has.any():
        scores["hit"] = hit_at_k(setting.target[has], ind[has], K)
    if setting.kept:
        kept = [y_db.columns.get_loc(a) for a in setting.kept]
        scores["kept"] = attribute_preservation_at_k(
            labels[setting.qi][:, kept], retrieved[..., kept], K
        )
    return scores
