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


def cosine_kneighbors(queries, database, n_neighbors, *, exclude_self=False):
    """Top-``n_neighbors`` database rows by cosine similarity to each query.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, D)
    database : ndarray of shape (n_database, D)
        Rows already normalised to unit length (:func:`normalize_rows`).
    n_neighbors : int
    exclude_self : bool, default=False
        Query ``i`` is database row ``i`` and must not be its own neighbour.

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors)
        Cosine distances ``1 - cos``, ascending along each row.
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
    for start in range(0, n_q, chunk):
        stop = min(start + chunk, n_q)
        sim = q[start:stop] @ db.T
        if exclude_self:
            rows = torch.arange(stop - start)
            sim[rows, rows + start] = -float("inf")
        top, idx = torch.topk(sim, n_neighbors, dim=1, largest=True, sorted=True)
        dist[start:stop] = (1.0 - top).clamp(0.0, 2.0).numpy()
        ind[start:stop] = idx.numpy()
    return dist, ind
