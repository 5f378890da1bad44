"""Dask arrays in ``transform`` and ``kneighbors``: block by block, lazily.

Imported only when a query batch is a dask collection, recognised by duck
typing (:func:`is_dask_collection`), so skbackward never imports dask
otherwise. In the spirit of dask-ml's ``ParallelPostFit``: every row block of
``X`` runs the in-memory method. The fitted retriever is a single key of the
graph (``dask.delayed``), so a distributed scheduler ships it once to each
worker that runs blocks, not once per block; with a Milvus index it carries
only connection settings and the workers query the shared database.
"""

import numpy as np

from .._utils._validation import check_exclude, check_n_neighbors


def is_dask_collection(x):
    """Whether ``x`` is a dask collection (without importing dask)."""
    return not isinstance(x, type) and callable(getattr(x, "__dask_graph__", None))


def _require_dask():
    try:
        import dask  # noqa: F401
        import dask.array  # noqa: F401
    except ImportError as exc:  # pragma: no cover - dask arrays imply dask
        raise ImportError(
            'dask arrays need dask[array]: pip install "skbackward[dask]"'
        ) from exc


def _check_X(estimator, X):
    """``X`` as a 2-D dask array of known row chunks, one column chunk."""
    if not hasattr(X, "chunks") or getattr(X, "ndim", None) != 2:
        raise ValueError(
            "X must be a 2-D dask array (n_queries, n_features); got "
            f"{type(X).__name__} with ndim={getattr(X, 'ndim', None)}. A dask "
            "DataFrame converts with df.to_dask_array(lengths=True)."
        )
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "X has unknown chunk sizes; call X.compute_chunk_sizes() first."
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must hold numbers; got dtype {X.dtype}.")
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is "
            f"expecting {estimator.n_features_in_} features as input."
        )
    if X.shape[0] == 0:
        raise ValueError("Found array with 0 sample(s) (shape=(0, "
                         f"{X.shape[1]})) while a minimum of 1 is required.")
    return X.rechunk({1: -1}) if len(X.chunks[1]) > 1 else X


def _per_block(value, what, chunks):
    """Split a per-query argument along X's row ``chunks``: one entry per block.

    Scalars (and None) go to every block as they are; a 1-D numpy or dask
    array of one entry per query is cut (or rechunked) at the block
    boundaries; a dict is split value by value.
    """
    n_blocks, n = len(chunks), sum(chunks)
    if isinstance(value, dict):
        split = {key: _per_block(v, f"{what} for {key!r}", chunks)
                 for key, v in value.items()}
        return [{key: parts[b] for key, parts in split.items()}
                for b in range(n_blocks)]
    if not is_dask_collection(value) and np.ndim(value) == 0:
        return [value] * n_blocks
    shape = getattr(value, "shape", None)
    if not is_dask_collection(value):
        value = np.asarray(value, dtype=object if shape is None else None)
        shape = value.shape
    if len(shape) != 1 or shape[0] != n:
        raise ValueError(
            f"{what} must be a scalar or have one entry per query: expected "
            f"shape ({n},), got {shape}."
        )
    if is_dask_collection(value):
        return list(value.rechunk((chunks,)).to_delayed().ravel())
    bounds = np.cumsum((0,) + chunks)
    return [value[bounds[b]:bounds[b + 1]] for b in range(n_blocks)]


def _transform_block(estimator, X, condition, condition_weight):
    return estimator.transform(X, condition=condition,
                               condition_weight=condition_weight)


def _kneighbors_block(estimator, X, k, condition, condition_weight, exclude):
    return estimator.kneighbors(X, k, condition=condition,
                                condition_weight=condition_weight,
                                exclude=exclude)


def _blocks(estimator, X, func, per_query, *args):
    """Lazy ``func(estimator, block, *args, *per_query_parts)`` per row block;
    yields ``(n_rows, delayed result)``."""
    import dask

    X = _check_X(estimator, X)
    chunks = X.chunks[0]
    parts = [_per_block(value, what, chunks) for what, value in per_query.items()]
    # one graph key for the model: shipped once per worker, not per block
    model = dask.delayed(estimator, pure=False, traverse=False)
    call = dask.delayed(func, pure=True)
    for b, block in enumerate(X.to_delayed().ravel()):
        if chunks[b]:
            yield chunks[b], call(model, block, *args, *(p[b] for p in parts))


def _float_dtype(dtype):
    """The dtype the in-memory methods compute in for input of ``dtype``."""
    return np.dtype(np.float32 if dtype == np.float32 else np.float64)


def transform(estimator, X, condition, condition_weight):
    """:meth:`BaseRetriever.transform` of a dask array: a dask array."""
    _require_dask()
    import dask.array as da

    per_query = {"condition": condition, "condition_weight": condition_weight}
    dim = estimator._n_features_out
    dtype = _float_dtype(X.dtype)
    return da.concatenate([
        da.from_delayed(out, (n, dim), dtype=dtype)
        for n, out in _blocks(estimator, X, _transform_block, per_query)
    ])


def kneighbors(estimator, X, k, return_distance, condition, condition_weight,
               exclude):
    """:meth:`BaseRetriever.kneighbors` of a dask array: dask arrays."""
    _require_dask()
    import dask.array as da

    n_db = estimator.n_index_samples_
    if exclude is not None and not is_dask_collection(exclude):
        exclude = check_exclude(exclude, X.shape[0], n_db)
    # before building the graph (the blocks check again, with dask exclude)
    check_n_neighbors(
        k, n_db, X.shape[0], None if is_dask_collection(exclude) else exclude
    )
    per_query = {"condition": condition, "condition_weight": condition_weight,
                 "exclude": exclude}
    dist, ind = [], []
    for n, out in _blocks(estimator, X, _kneighbors_block, per_query, k):
        d, i = out[0], out[1]
        dist.append(da.from_delayed(d, (n, k), dtype=np.float32))
        ind.append(da.from_delayed(i, (n, k), dtype=np.int64))
    ind = da.concatenate(ind)
    if not return_distance:
        return ind
    # both halves come from the same block tasks: computing them together
    # (dask.compute(dist, ind)) runs each block once
    return da.concatenate(dist), ind

