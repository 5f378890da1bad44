"""Milvus as the item database: collection layout, inserts, tiered searches.

The collection of an index holds one entity per item:

- ``id`` (INT64, primary key): the item's row number in insertion order;
- ``vector`` (FLOAT_VECTOR): its unit (L2-normalised, float32) embedding,
  searched by inner product (= cosine similarity on unit vectors);
- ``norm`` (FLOAT): the norm of the raw embedding (``X=None`` queries need
  the raw embeddings of the indexed items);
- ``pred_<a>`` (INT64): the heads' predicted class (0..C-1) of attribute
  number ``a``;
- ``label_<a>`` (only when labels are given): the item's label of attribute
  ``a``, INT64 when all of that attribute's labels are integers, else VARCHAR
  (``str(label)``).

Preference levels are answered inside Milvus, by filter expressions on the
``pred_<a>`` fields: the queries are grouped by their distinct wish rows, and
each group searches its best level first and the next level only for the
queries that found fewer than k (the levels are disjoint, so nothing is
fetched twice).
"""

import itertools
import os

import numpy as np

MAX_TOPK = 16384  # Milvus's limit on neighbours per query (and queries per call)
_MAX_NQ = 1024  # queries per search call: bounds the request and reply size
_QUERY_BATCH = 8192  # rows per query call when reading items back

VECTOR, NORM = "vector", "norm"


def import_pymilvus():
    """The pymilvus module, or an ImportError naming the extra."""
    try:
        import pymilvus
    except ImportError as exc:
        raise ImportError(
            'MilvusIndex needs pymilvus (and milvus-lite for local files): '
            'pip install "skbackward[milvus]"'
        ) from exc
    return pymilvus


def is_local(uri):
    """Whether ``uri`` names a Milvus Lite file rather than a server."""
    return not str(uri).startswith(("http://", "https://", "tcp://", "unix:"))


def check_uri(uri):
    """Milvus Lite paths must end in ``.db`` (pymilvus's rule); else a URL."""
    if not isinstance(uri, (str, os.PathLike)) or (
        is_local(uri) and not str(uri).endswith(".db")
    ):
        raise ValueError(
            "uri must be a Milvus Lite file path ending in '.db' or a server "
            f"URL such as 'http://localhost:19530'; got {uri!r}."
        )
    return os.path.abspath(os.fspath(uri)) if is_local(uri) else str(uri)


def connect(uri, token=None, timeout=None):
    """A ``MilvusClient`` for ``uri``, or a ConnectionError that names it."""
    pymilvus = import_pymilvus()
    kwargs = {"uri": uri, "timeout": timeout}
    if token is not None:
        kwargs["token"] = token
    if is_local(uri):
        os.makedirs(os.path.dirname(uri) or ".", exist_ok=True)
    try:
        return pymilvus.MilvusClient(**kwargs)
    except Exception as exc:  # pymilvus raises several kinds here
        hint = (
            " Milvus Lite serves one process at a time: if another process "
            "(e.g. the one that built the index, when this runs on a dask "
            "worker) holds the file, serve it instead (milvus-lite 3: "
            "`milvus-lite server --data-dir FILE.db --port 19530`) and pass "
            "uri='http://HOST:19530'."
            if is_local(uri) else ""
        )
        raise ConnectionError(
            f"cannot connect to Milvus at uri={uri!r}: {exc}.{hint}"
        ) from exc


def label_kinds(labels):
    """Per attribute: "int" when every label is an integer, else "str"."""
    kinds = []
    for column in labels.T:
        ints = column.dtype.kind in "iub" or (
            column.dtype.kind == "O"
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                    for v in column)
        )
        kinds.append("int" if ints else "str")
    return kinds


def create_collection(client, name, *, dim, n_attributes, label_kinds, labels,
                      index_type, index_params, overwrite, uri):
    """Create the collection (refusing to replace one unless ``overwrite``)."""
    from pymilvus import DataType

    if client.has_collection(name):
        if not overwrite:
            raise ValueError(
                f"the Milvus collection {name!r} already exists at {uri!r}; "
                "pass overwrite=True to replace it (its data will be dropped) "
                "or choose another collection name."
            )
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False,
                                  description="skbackward item index")
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field(NORM, DataType.FLOAT)
    for a in range(n_attributes):
        schema.add_field(f"pred_{a}", DataType.INT64)
    for a, kind in enumerate(label_kinds or ()):
        if kind == "int":
            schema.add_field(f"label_{a}", DataType.INT64)
        else:
            longest = max((len(str(v).encode()) for v in labels[:, a]), default=1)
            schema.add_field(f"label_{a}", DataType.VARCHAR,
                             max_length=min(max(longest, 1), 65535))
    params = client.prepare_index_params()
    params.add_index(field_name=VECTOR, index_type=index_type, metric_type="IP",
                     params=dict(index_params or {}))
    client.create_collection(name, schema=schema, index_params=params,
                             consistency_level="Strong")


def insert(client, name, start, unit, norms, predicted, labels, kinds, *,
           batch_size, verbose):
    """Insert items as rows ``start, start+1, ...`` in batches."""
    n = unit.shape[0]
    for s in range(0, n, batch_size):
        e = min(s + batch_size, n)
        columns = {"id": np.arange(start + s, start + e).tolist(),
                   NORM: norms[s:e].tolist()}
        for a in range(predicted.shape[1]):
            columns[f"pred_{a}"] = predicted[s:e, a].tolist()
        for a, kind in enumerate(kinds or ()):
            values = labels[s:e, a]
            columns[f"label_{a}"] = (
                values.astype(np.int64).tolist() if kind == "int"
                else [str(v) for v in values]
            )
        keys = list(columns)
        rows = [dict(zip(keys, values), vector=vector)
                for *values, vector in zip(*columns.values(), unit[s:e])]
        client.insert(name, rows)
        if verbose:
            print(f"Milvus: {e}/{n} items inserted into {name!r}")
    client.flush(name)


def _pattern_filter(wished, chosen):
    """One conjunction: attribute ``a`` predicted ``chosen[a]``, or none of
    its wished classes when ``chosen[a]`` is None."""
    terms = []
    for a, classes in wished.items():
        if chosen[a] is not None:
            terms.append(f"pred_{a} == {chosen[a]}")
        elif len(classes) == 1:
            terms.append(f"pred_{a} != {classes[0]}")
        else:
            terms.append(f"pred_{a} not in [{', '.join(map(str, classes))}]")
    return " and ".join(terms)


def level_filters(wish_row, n_tiers):
    """Filter expressions of the preference levels of one wish row, best first.

    ``wish_row`` concatenates the tiers' wanted classes (-1: no wish), tier 0
    first. An item's level is its tuple of matches per tier, ranked
    lexicographically; each level's expression selects exactly its items, so
    the levels partition the collection. ``""`` means no filter.
    """
    tiers = np.asarray(wish_row).reshape(n_tiers, -1)
    wished = {}
    for a in range(tiers.shape[1]):
        classes = sorted({int(c) for c in tiers[:, a] if c >= 0})
        if classes:
            wished[a] = classes
    if not wished:
        return [""]
    levels = {}
    attributes = list(wished)
    for choice in itertools.product(*([None] + wished[a] for a in attributes)):
        chosen = dict(zip(attributes, choice))
        key = tuple(
            sum(chosen.get(a) == t[a] for a in attributes if t[a] >= 0)
            for t in tiers
        )
        levels.setdefault(key, []).append(_pattern_filter(wished, chosen))
    return [
        " or ".join(f"({p})" for p in levels[key]) if len(levels[key]) > 1
        else levels[key][0]
        for key in sorted(levels, reverse=True)
    ]


def search(client, name, unit, k, exclude, prefer, search_params):
    """Top-k items per query with the preference levels as Milvus filters.

    Returns (similarity, indices, found): (n, k) float32 and int64 arrays
    and the number of neighbours found per query (k unless an approximate
    index missed some).
    """
    n = unit.shape[0]
    sim = np.full((n, k), -np.inf, dtype=np.float32)
    ind = np.full((n, k), -1, dtype=np.int64)
    found = np.zeros(n, dtype=np.int64)
    exclude = np.full(n, -1, np.int64) if exclude is None else exclude
    if prefer is None or not len(prefer):
        wishes, n_tiers = np.full((n, 1), -1, np.int64), 1
    else:
        wishes, n_tiers = np.concatenate(prefer, axis=1), len(prefer)
    rows_of, inverse = np.unique(wishes, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    bounds = np.cumsum(np.bincount(inverse.ravel(), minlength=len(rows_of)))
    for g, group in enumerate(np.split(order, bounds[:-1])):
        for expr in level_filters(rows_of[g], n_tiers):
            todo = group[found[group] < k]
            if not todo.size:
                break
            for s in range(0, todo.size, _MAX_NQ):
                rows = todo[s:s + _MAX_NQ]
                _search_level(client, name, unit, k, rows, exclude, expr,
                              search_params, sim, ind, found)
    return sim, ind, found


def _search_level(client, name, unit, k, rows, exclude, expr, search_params,
                  sim, ind, found):
    """Search one level for ``rows`` and append the hits after what each
    query already found (in place)."""
    need = k - found[rows]
    excl = exclude[rows]
    limit = int(need.max() + (excl >= 0).any())
    hits = client.search(
        name, data=unit[rows], limit=limit, filter=expr, anns_field=VECTOR,
        search_params=search_params, output_fields=[],
    )
    ids = np.full((rows.size, limit), -1, dtype=np.int64)
    dist = np.zeros((rows.size, limit), dtype=np.float32)
    for i, h in enumerate(hits):  # pymilvus answers one object per query
        ids[i, :len(h.ids)] = h.ids
        dist[i, :len(h.distances)] = h.distances
    keep = (ids >= 0) & (ids != excl[:, None])
    rank = np.cumsum(keep, axis=1)
    keep &= rank <= need[:, None]
    q, j = np.nonzero(keep)
    slot = found[rows][q] + rank[q, j] - 1
    sim[rows[q], slot] = dist[q, j]
    ind[rows[q], slot] = ids[q, j]
    found[rows] += keep.sum(axis=1)


def fetch(client, name, rows):
    """Unit embeddings and norms of the items ``rows`` (int64), in order."""
    rows = np.asarray(rows, dtype=np.int64)
    unit, norms = None, np.empty(rows.size, dtype=np.float32)
    for s in range(0, rows.size, _QUERY_BATCH):
        chunk = rows[s:s + _QUERY_BATCH]
        got = client.query(name, ids=chunk.tolist(), output_fields=[VECTOR, NORM])
        ids = np.array([r["id"] for r in got], dtype=np.int64)
        if not np.isin(chunk, ids).all():
            missing = np.setdiff1d(chunk, ids)[:5].tolist()
            raise ValueError(f"the Milvus collection {name!r} lacks items "
                             f"{missing}: was it changed by someone else?")
        vectors = np.array([r[VECTOR] for r in got], dtype=np.float32)
        if unit is None:
            unit = np.empty((rows.size, vectors.shape[1]), dtype=np.float32)
        sorter = np.argsort(ids)
        pick = sorter[np.searchsorted(ids, chunk, sorter=sorter)]
        unit[s:s + chunk.size] = vectors[pick]
        norms[s:s + chunk.size] = np.array([r[NORM] for r in got], np.float32)[pick]
    return unit, norms
