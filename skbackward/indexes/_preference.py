"""Preference levels of a conditional ranking, shared by every index backend.

A query's wishes come in tiers, each an (A,) row of wanted classes per
attribute (-1: no wish). An item's rank key is lexicographic: (its number of
tier-0 wishes met, tier-1 wishes met, ..., cosine similarity). Queries with the
same wishes form a group; a backend searches a group's best level first and
goes to the next level only for queries that found fewer than k items.
"""

import numpy as np


def check_prefer(prefer, n_queries, n_attributes):
    """The tiers of ``prefer`` as int64 arrays, or a ValueError unless there
    is at least one and each has shape (n_queries, n_attributes)."""
    tiers = [np.asarray(t, dtype=np.int64) for t in prefer]
    if not tiers or any(t.shape != (n_queries, n_attributes) for t in tiers):
        raise ValueError(
            f"prefer must hold arrays of shape ({n_queries}, {n_attributes}); "
            f"got {[x.shape for x in tiers]}."
        )
    return tiers


def wish_groups(prefer, n_queries, n_attributes):
    """Group queries by their wishes.

    Parameters
    ----------
    prefer : list of array-like of shape (n_queries, A)
        The tiers of wanted classes (-1: no wish).
    n_queries : int
    n_attributes : int

    Returns
    -------
    wishes : ndarray of shape (n_groups, n_tiers, A), int64
        The distinct wishes, -1 for none.
    group : ndarray of shape (n_queries,), int64
        Each query's row in ``wishes``.
    """
    W = np.stack(check_prefer(prefer, n_queries, n_attributes), axis=1)
    W = np.where(W < 0, -1, W)
    flat, group = np.unique(W.reshape(n_queries, -1), axis=0, return_inverse=True)
    return flat.reshape(-1, *W.shape[1:]), group.reshape(-1).astype(np.int64)


def query_groups(prefer, n_queries, n_attributes):
    """``(wish, members)`` per group of queries with the same wishes: the
    group's (n_tiers, A) wish and its query numbers. Without ``prefer``, one
    group of every query and no wish."""
    if prefer is None:
        yield np.full((1, n_attributes), -1, np.int64), np.arange(n_queries)
        return
    wishes, group = wish_groups(prefer, n_queries, n_attributes)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(len(wishes) + 1))
    for g, wish in enumerate(wishes):
        yield wish, order[bounds[g]:bounds[g + 1]]


def cosine_distances(sims, ids):
    """``1 - cos`` as float32 in [0, 2]; ``inf`` where no item was found."""
    dist = np.where(ids >= 0, np.clip(1.0 - sims, 0.0, 2.0), np.inf)
    return dist.astype(np.float32)


def level_codes(predicted, wish):
    """Each item's level for one group's wishes; larger is preferred.

    ``predicted`` (n_items, A) holds the items' classes and ``wish``
    (n_tiers, A) the wanted ones. The code orders items as the lexicographic
    key (tier-0 matches, tier-1 matches, ...) does.
    """
    base = wish.shape[1] + 1
    code = np.zeros(predicted.shape[0], dtype=np.int64)
    for tier in wish:
        on = np.flatnonzero(tier >= 0)
        matches = (predicted[:, on] == tier[on]).sum(1) if on.size else 0
        code = code * base + matches
    return code


def top_code(wish):
    """The level code of an item that meets every wish."""
    base = wish.shape[1] + 1
    code = 0
    for tier in wish:
        code = code * base + int((tier >= 0).sum())
    return code


def place(out_sims, out_ids, filled, queries, sims, ids):
    """Append each query's valid results (id >= 0) after the ones it has.

    ``queries`` are rows of the outputs; ``sims``/``ids`` their results of one
    level, best first. ``filled`` counts each row's results so far (updated).
    """
    k = out_ids.shape[1]
    valid = ids >= 0
    pos = filled[queries][:, None] + np.cumsum(valid, axis=1) - 1
    keep = valid & (pos < k)
    rows = np.broadcast_to(queries[:, None], ids.shape)[keep]
    out_ids[rows, pos[keep]] = ids[keep]
    out_sims[rows, pos[keep]] = sims[keep]
    filled[queries] += keep.sum(1)
