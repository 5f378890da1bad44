"""Choosing ``feature_weight="auto"`` from the training data alone (no pairs).

How much a conditioned query's ranking should look at the input features
depends on the data: where a condition changes an item little in the input
space (tones, renderings of one item), the input space tells *which* item the
query was; where it changes it much (a rotation in pixels), it misleads. The
hit@k scorer measures this only where pairs exist. Without them, two things
the training data tells are combined, and the larger weight is taken:

- *by the labels*: on an internal split of the training data (a copy of the
  retriever fitted on one part, the other part indexed), the largest
  candidate weight that, for a condition on every attribute in turn, keeps
  precision@k within ``PRECISION_TOLERANCE`` and kept@k (the share of
  results keeping the query's unasked attributes) within ``KEPT_TOLERANCE``
  of the weight 0's: looking at the input space is then free by both label
  measures, and it brings the results nearer to the query;
- *by the counterparts*: kept@k counts labels, so it holds the weight down
  even where the input space finds the query's very item (another item of
  its class counts as much). The counterpart rate of an attribute (the share
  of training items whose nearest item differing in that attribute only is
  nearer than any item with all their labels) says whether the items' other
  forms are there, and nearest, in the input space; the largest candidate up
  to the highest rate that keeps precision@k within the same tolerance.

With a single attribute there is nothing unasked to check: the labels give
0, and the counterparts decide (a digit redrawn as another digit is another
image: its rate is near 0, and so is the weight; the internal fit is then
skipped).
"""

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state

from ..exceptions import ConditionNotReachedWarning
from ..model_selection import sample_queries

CANDIDATES = (0.0, 0.25, 0.5, 0.75, 1.0)
PRECISION_TOLERANCE = 0.02  # the internal copy, fitted on less data, loses more
KEPT_TOLERANCE = 0.005
HELD_OUT = 0.3  # share of the training items indexed by the internal copy
# at most this many training items go to the internal split (copied into
# memory, fitted on again): enough to measure precision and kept@10 to a few
# thousandths, and a bounded cost on large data
MAX_INTERNAL_ITEMS = 30_000
N_QUERIES = 300  # (query, condition) pairs per attribute
K = 10
N_SAMPLE = 1000  # training items whose counterparts are looked for
BLOCK = 2048  # training items compared with them at a time


def fit_feature_weight(retriever, X, codes):
    """Set ``feature_weight_`` and ``feature_weight_report_`` of a
    ``retriever`` whose network is trained, from its training features ``X``
    and label ``codes``: the choice of :func:`choose_feature_weight` for
    "auto", else the parameter as given (and an empty report)."""
    if retriever.feature_weight == "auto":
        retriever.feature_weight_, retriever.feature_weight_report_ = (
            choose_feature_weight(retriever, X, codes))
    else:
        retriever.feature_weight_ = float(retriever.feature_weight)
        retriever.feature_weight_report_ = {}


def choose_feature_weight(retriever, X, codes):
    """``(weight, report)``: the ``feature_weight`` the rule of this module
    picks for a fitted ``retriever`` from its training features ``X`` and
    label ``codes`` (n, A), and what it measured: ``"counterparts"``, the
    counterpart rate of each attribute, and ``"scores"``, ``{attribute:
    {weight: (precision, kept)}}`` on the internal split (empty, and the
    weight 0, when the split could not hold k items of two classes)."""
    rng = check_random_state(retriever.random_state)
    seed = rng.randint(np.iinfo(np.int32).max)
    rates = counterpart_rates(X, codes, seed)
    report = {"counterparts": rates, "scores": {}}
    if codes.shape[1] < 2 and rates[0] < CANDIDATES[1]:
        return 0.0, report  # nothing the internal split could change
    split = _internal_split(codes, seed)
    if split is None:
        return 0.0, report
    fit_rows, db_rows = split
    report["internal_items"] = len(fit_rows) + len(db_rows)
    inner = clone(retriever).set_params(
        feature_weight=CANDIDATES[1], vector_index=None, verbose=0,
        random_state=seed,
    )
    inner.fit(X[fit_rows], codes[fit_rows])
    X_db, y_db = X[db_rows], codes[db_rows]
    inner.index(X_db, y_db)
    scores = report["scores"]
    for a in range(codes.shape[1]):
        with warnings.catch_warnings():  # fewer pairs on small data is fine
            warnings.simplefilter("ignore", UserWarning)
            qi, condition = sample_queries(
                y_db, y_db, condition_on=a, n_queries=N_QUERIES, k=K,
                exclude_own_class=True, random_state=seed,
            )
        known = np.isin(condition[a], inner.attribute_classes_[a])
        if not known.any():
            return 0.0, report
        qi, wanted = qi[known], condition[a][known]
        scores[a] = {w: _label_scores(inner, w, X_db, y_db, qi, a, wanted)
                     for w in CANDIDATES}
    by_labels = _largest_free_weight(scores, kept=codes.shape[1] > 1)
    by_pairs = _largest_free_weight(scores, kept=False, most=max(rates.values()))
    return max(by_labels, by_pairs), report


def counterpart_rates(X, codes, seed):
    """``{attribute: rate}``: the share of (at most ``N_SAMPLE``) training
    items whose nearest item in the input space (cosine) among those that
    differ from it in that attribute only is nearer than its nearest item
    with all its labels. A high rate says the items' other forms are there,
    and nearest, in the input space: it tells which item a query was."""
    rng = np.random.RandomState(seed)
    sample = np.sort(rng.choice(len(X), min(N_SAMPLE, len(X)), replace=False))
    Xs = normalize(np.asarray(X[sample], dtype=np.float64))
    n_attr = codes.shape[1]
    same_best = np.full(len(sample), -np.inf)
    other_best = np.full((n_attr, len(sample)), -np.inf)
    for start in range(0, len(X), BLOCK):
        block = slice(start, start + BLOCK)
        S = Xs @ normalize(np.asarray(X[block], dtype=np.float64)).T
        rows = np.arange(start, min(start + BLOCK, len(X)))
        S[sample[:, None] == rows[None, :]] = -np.inf  # never the item itself
        equal = codes[sample][:, None, :] == codes[block][None, :, :]  # (s, b, A)
        n_equal = equal.sum(axis=2)
        same_best = np.maximum(same_best,
                               np.where(n_equal == n_attr, S, -np.inf).max(axis=1))
        for a in range(n_attr):
            only_a = ~equal[:, :, a] & (n_equal == n_attr - 1)
            other_best[a] = np.maximum(other_best[a],
                                       np.where(only_a, S, -np.inf).max(axis=1))
    found = np.isfinite(same_best)
    return {a: float(np.mean((other_best[a] > same_best)[found]))
            if found.any() else 0.0 for a in range(n_attr)}


def _internal_split(codes, seed):
    """Training and indexed rows of the internal split (of at most
    ``MAX_INTERNAL_ITEMS`` rows drawn at random), stratified by the joint
    labels where every combination has two items; None when the indexed part
    could not hold k items of two classes of each attribute."""
    rows = np.arange(len(codes))
    if len(rows) > MAX_INTERNAL_ITEMS:
        rng = np.random.RandomState(seed)
        rows = np.sort(rng.choice(len(rows), MAX_INTERNAL_ITEMS, replace=False))
    joint = np.unique(codes[rows], axis=0, return_inverse=True)[1].ravel()
    stratify = joint if np.bincount(joint).min() >= 2 else None
    try:
        fit_rows, db_rows = train_test_split(
            rows, test_size=HELD_OUT, stratify=stratify, random_state=seed)
    except ValueError:
        return None
    for a in range(codes.shape[1]):
        counts = np.bincount(codes[db_rows, a][codes[db_rows, a] >= 0])
        if (counts >= K).sum() < 2 or len(np.unique(codes[fit_rows, a])) < 2:
            return None
    return fit_rows, db_rows


def _label_scores(inner, weight, X_db, y_db, qi, attribute, wanted):
    """precision@k and kept@k of the internal copy ranking with ``weight``,
    conditioned on ``attribute`` (the query's own row excluded)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConditionNotReachedWarning)
        ind = inner.set_params(feature_weight=weight).kneighbors(
            X_db[qi], K, return_distance=False, condition={attribute: wanted},
            exclude=qi,
        )
    retrieved = y_db[ind]  # (n, K, A)
    precision = float(np.mean(retrieved[..., attribute] == wanted[:, None]))
    others = [b for b in range(y_db.shape[1]) if b != attribute]
    kept = (float(np.mean(retrieved[..., others] == y_db[qi][:, None, others]))
            if others else np.nan)
    return precision, kept


def _largest_free_weight(scores, kept, most=1.0):
    """The largest candidate up to ``most`` whose precision (and, with
    ``kept``, kept) stays within tolerance of the weight 0's for every
    attribute (candidates past the first that fails are not considered)."""
    chosen = 0.0
    for w in CANDIDATES[1:]:
        free = w <= most and all(
            s[w][0] >= s[0.0][0] - PRECISION_TOLERANCE
            and (not kept or s[w][1] >= s[0.0][1] - KEPT_TOLERANCE)
            for s in scores.values()
        )
        if not free:
            break
        chosen = w
    return chosen
