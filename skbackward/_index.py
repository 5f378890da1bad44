"""Exact cosine top-k over a database, in chunks of bounded memory.

The similarity block of one chunk of queries against the whole database never
exceeds ``MAX_BLOCK`` entries, so memory stays bounded whatever the number of
queries. Room for other backends (approximate indexes) behind the same call.
"""

import numpy as np
import torch

MAX_BLOCK = 2**22  # similarity entries per chunk (16 MiB in float32)


def normalize_rows(Z):
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.where(norms > 0, norms, 1)


def cosine_kneighbors(queries, database, n_neighbors, *, exclude=None, prefer=None):
    """Top-``n_neighbors`` database rows by cosine similarity to each query.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, D)
    database : ndarray of shape (n_database, D)
        Rows already normalised to unit length (:func:`normalize_rows`).
    n_neighbors : int
    exclude : ndarray of shape (n_queries,), default=None
        A database row to leave out of each query's results (e.g. the query
        itself), -1 for none.
    prefer : tuple (query_targets, item_labels), default=None
        ``query_targets`` (n_queries, A) holds wanted classes (-1: any) and
        ``item_labels`` (n_database, A) the items' classes. Items matching more
        of the wanted classes rank first; similarity orders items that match
        equally many. So items matching the whole condition come first, and
        the rest fill up when there are fewer than ``n_neighbors`` of them.

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors)
        Cosine distances ``1 - cos`` (ascending within each preference level).
    indices : ndarray of shape (n_queries, n_neighbors), int64
    """
    # from_numpy shares memory: both arrays are ours (no read-only memmaps)
    db = torch.from_numpy(np.ascontiguousarray(database))
    q = torch.from_numpy(
        np.ascontiguousarray(normalize_rows(queries), dtype=database.dtype)
    )
    n_q, n_db = q.shape[0], db.shape[0]
    chunk = max(1, MAX_BLOCK // max(n_db, 1))
    dist = np.empty((n_q, n_neighbors), dtype=database.dtype)
    ind = np.empty((n_q, n_neighbors), dtype=np.int64)
    if prefer is not None:
        wanted, labels = (torch.from_numpy(np.asarray(a, np.int64)) for a in prefer)
    for start in range(0, n_q, chunk):
        stop = min(start + chunk, n_q)
        sim = q[start:stop] @ db.T
        key = sim
        if prefer is not None:
            t = wanted[start:stop].unsqueeze(1)  # (c, 1, A)
            matches = ((t >= 0) & (t == labels.unsqueeze(0))).sum(2)
            key = sim + 4.0 * matches  # similarity spans 2: levels never mix
        if exclude is not None:
            rows = torch.from_numpy(np.flatnonzero(exclude[start:stop] >= 0))
            key = key.clone() if key is sim else key
            key[rows, torch.from_numpy(exclude[start:stop])[rows]] = -float("inf")
        _, idx = torch.topk(key, n_neighbors, dim=1, largest=True, sorted=True)
        dist[start:stop] = (1.0 - sim.gather(1, idx)).clamp(0.0, 2.0).numpy()
        ind[start:stop] = idx.numpy()
    return dist, ind
