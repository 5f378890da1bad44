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
  ``a``, INT64 when the labels are an integer array, else VARCHAR
  (``str(label)``, mapped back to the labels through their distinct values).

Preference levels are answered inside Milvus, by filter expressions on the
``pred_<a>`` fields: the queries are grouped by their distinct wish rows, and
each group searches its best level first and the next level only for the
queries that found fewer than k (the levels are disjoint, so nothing is
fetched twice).
"""

import copy
import itertools
import numbers
import os

import numpy as np

from ._preference import cosine_distances, place, query_groups
from .indexes import VectorIndex, _check_built, _check_search

MAX_TOPK = 16384  # Milvus's limit on neighbours per query
# queries per search call: Milvus Lite holds a (queries x items) similarity
# block per call (1 GiB for 256 queries against a million items)
_MAX_NQ = 256
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
    token = os.environ.get("MILVUS_TOKEN") if token is None else token
    if token:
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


def label_kind(labels):
    """How labels are stored: "int" (INT64) for an integer array, else "str"
    (VARCHAR of ``str(label)``, mapped back through the distinct labels)."""
    return "int" if np.asarray(labels).dtype.kind in "iu" else "str"


def refuse_overwrite(client, name, uri, overwrite):
    """Drop an existing collection only when told to (``overwrite``)."""
    if client.has_collection(name):
        if not overwrite:
            raise ValueError(
                f"the Milvus collection {name!r} already exists at {uri!r}; "
                "pass overwrite=True to replace it (its data will be dropped) "
                "or choose another collection name."
            )
        client.drop_collection(name)


def create_collection(client, name, *, dim, n_attributes, n_labels, kind,
                      index_type, index_params):
    """Create the collection of an index (see the module docstring)."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False,
                                  description="skbackward item index")
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field(NORM, DataType.FLOAT)
    for a in range(n_attributes):
        schema.add_field(f"pred_{a}", DataType.INT64)
    for a in range(n_labels):
        if kind == "int":
            schema.add_field(f"label_{a}", DataType.INT64)
        else:
            schema.add_field(f"label_{a}", DataType.VARCHAR, max_length=65535)
    params = client.prepare_index_params()
    params.add_index(field_name=VECTOR, index_type=index_type, metric_type="IP",
                     params=dict(index_params or {}))
    client.create_collection(name, schema=schema, index_params=params,
                             consistency_level="Strong")


def insert(client, name, start, unit, norms, predicted, labels, *, batch_size,
           progress=None):
    """Insert items as rows ``start, start+1, ...`` in batches.

    ``labels`` is None or (m, n_labels); ``progress(n_done)`` is called
    after each batch.
    """
    n = unit.shape[0]
    for s in range(0, n, batch_size):
        e = min(s + batch_size, n)
        columns = {"id": np.arange(start + s, start + e).tolist(),
                   NORM: norms[s:e].tolist()}
        for a in range(predicted.shape[1]):
            columns[f"pred_{a}"] = predicted[s:e, a].tolist()
        if labels is not None:
            int_labels = labels.dtype.kind in "iu"
            for a in range(labels.shape[1]):
                values = labels[s:e, a]
                columns[f"label_{a}"] = (values.tolist() if int_labels
                                         else [str(v) for v in values])
        keys = list(columns)
        # pymilvus's client takes rows; the vectors go as float32 arrays
        rows = [dict(zip(keys, values), vector=vector)
                for *values, vector in zip(*columns.values(), unit[s:e])]
        client.insert(name, rows)
        if progress is not None:
            progress(e)


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


def level_filters(wish):
    """Filter expressions of the preference levels of one wish, best first.

    ``wish`` (n_tiers, A) holds the wanted classes (-1: no wish). An item's
    level is its tuple of wishes met per tier, ranked lexicographically; each
    level's expression selects exactly its items, so the levels partition
    the collection. ``""`` means no filter.
    """
    wished = {}
    for a in range(wish.shape[1]):
        classes = sorted({int(c) for c in wish[:, a] if c >= 0})
        if classes:
            wished[a] = classes
    if not wished:
        return [""]
    levels = {}
    attributes = list(wished)
    for choice in itertools.product(*([None] + wished[a] for a in attributes)):
        chosen = dict(zip(attributes, choice))
        key = tuple(
            sum(chosen.get(a) == tier[a] for a in attributes if tier[a] >= 0)
            for tier in wish
        )
        levels.setdefault(key, []).append(_pattern_filter(wished, chosen))
    return [
        " or ".join(f"({p})" for p in levels[key]) if len(levels[key]) > 1
        else levels[key][0]
        for key in sorted(levels, reverse=True)
    ]


def search(client, name, unit, k, exclude, prefer, n_attributes, search_params,
           n_items):
    """Top-k items per query with the preference levels as Milvus filters.

    Only items ``id < n_items`` are searched: an index object keeps its own
    items even after an append grew the collection.

    Returns (similarity, indices): (n, k) float32 and int64 arrays, -inf and
    -1 where fewer than k were found (an approximate index may miss some).
    """
    n = unit.shape[0]
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    ids = np.full((n, k), -1, dtype=np.int64)
    filled = np.zeros(n, dtype=np.int64)
    for wish, members in query_groups(prefer, n, n_attributes):
        for level in level_filters(wish):
            todo = members[filled[members] < k]
            if not todo.size:
                break
            expr = f"({level}) and id < {n_items}" if level else f"id < {n_items}"
            for s in range(0, todo.size, _MAX_NQ):
                rows = todo[s:s + _MAX_NQ]
                ex = None if exclude is None else exclude[rows]
                s_, i_ = _search_level(client, name, unit[rows], k - filled[rows],
                                       ex, expr, search_params)
                place(sims, ids, filled, rows, s_, i_)
    return sims, ids


def _search_level(client, name, unit, need, exclude, expr, search_params):
    """One filtered search: each query's ``need`` best items (one more when
    it excludes an item, which is then dropped); -1 pads missing hits."""
    extra = exclude is not None and bool((exclude >= 0).any())
    limit = int(need.max()) + extra
    hits = client.search(
        name, data=unit, limit=limit, filter=expr, anns_field=VECTOR,
        search_params=search_params, output_fields=[],
    )
    ids = np.full((unit.shape[0], limit), -1, dtype=np.int64)
    sims = np.full((unit.shape[0], limit), -np.inf, dtype=np.float32)
    for i, h in enumerate(hits):  # pymilvus answers one object per query
        ids[i, :len(h.ids)] = h.ids
        sims[i, :len(h.distances)] = h.distances
    if extra:
        ids[ids == exclude[:, None]] = -1
    return sims, ids


def read_range(client, name, start, stop, fields):
    """Columns ``fields`` of items ``start:stop``, in id order (lists)."""
    out = {f: [] for f in fields}
    for s in range(start, stop, _QUERY_BATCH):
        e = min(s + _QUERY_BATCH, stop)
        got = client.query(name, filter=f"id >= {s} and id < {e}",
                           output_fields=["id", *fields], limit=e - s)
        if len(got) != e - s:
            raise ValueError(
                f"the Milvus collection {name!r} holds {len(got)} of the items "
                f"{s}..{e - 1}: was it changed by someone else?"
            )
        order = np.argsort([r["id"] for r in got], kind="stable")
        for f in fields:
            out[f].extend(got[i][f] for i in order)
    return out


class MilvusIndex(VectorIndex):
    """The items in a Milvus collection: a database shared by processes.

    For databases beyond one machine's memory, or shared by several services
    or by the workers of a dask cluster. ``uri`` names either a Milvus Lite
    file (``"items.db"``: an embedded Milvus that runs in this process, no
    server; the default of the ``milvus`` extra) or a Milvus server
    (``"http://host:19530"``, standalone or cluster); the same code talks to
    both. Each item is written with its unit embedding, the heads' predicted
    class per attribute and its labels if given, in batches; a conditional
    query sends the searched embedding with a filter expression on the
    predicted classes, so the ranking runs inside Milvus (see the ``Notes``).

    Requires ``pip install "skbackward[milvus]"``.

    Parameters
    ----------
    uri : str or path-like
        A Milvus Lite file path ending in ``.db`` (created if missing), or a
        server URL ``http(s)://host:port``.
    collection : str
        Name of the collection to write. An existing collection of that name
        is replaced only when ``overwrite=True``.
    token : str, default=None
        Credentials of a server (``"user:password"`` or an API key); None
        reads the environment variable ``MILVUS_TOKEN`` when set, which keeps
        the secret out of pickles and reprs (a token given here is pickled
        with the retriever like the other connection settings).
    index_type : str, default="FLAT"
        Milvus index of the vectors: "FLAT" (exact), "IVF_FLAT", "HNSW",
        "AUTOINDEX", ... (Milvus Lite 3 supports FLAT, IVF_FLAT, IVF_SQ8,
        HNSW, HNSW_SQ and AUTOINDEX). The metric is always the inner
        product of unit vectors, i.e. cosine similarity.
    index_params : dict, default=None
        Build parameters of the index, e.g. ``{"nlist": 1024}`` for IVF_FLAT
        or ``{"M": 16, "efConstruction": 200}`` for HNSW.
    search_params : dict, default=None
        Search parameters, e.g. ``{"nprobe": 16}`` (IVF) or ``{"ef": 64}``
        (HNSW); tunable as ``vector_index__search_params``.
    batch_size : int, default=10000
        Items per insert request.
    overwrite : bool, default=False
        Whether building may drop an existing collection named
        ``collection`` (and all its data). When False, building into an
        existing collection raises a ValueError naming it.
    timeout : float, default=None
        Seconds to wait for the connection.
    verbose : int, default=0
        Print the insert progress when > 0.

    Attributes
    ----------
    uri_ : str
        The resolved URI (an absolute path for Milvus Lite).
    n_items_ : int
        Number of indexed items.
    dim_ : int
        Dimension of the vectors.
    labels_ : ndarray or None
        The items' labels when given to ``index``, read back from Milvus on
        first use after unpickling.

    See Also
    --------
    ExactIndex : Exact search in memory, right up to about a million items.
    FaissIndex : Approximate search in memory, for one machine.

    Notes
    -----
    The collection holds, per item: ``id`` (INT64 primary key, the item's
    row number), ``vector`` (FLOAT_VECTOR, the unit embedding), ``norm``
    (FLOAT, the embedding's norm), ``pred_0``, ``pred_1``, ... (INT64, the
    predicted class index of each attribute, in the order of the
    retriever's ``attributes_`` and ``classes_``) and, when labels are given,
    ``label_0``, ... (INT64 for integer labels, otherwise VARCHAR of
    ``str(label)``).

    A conditional ranking groups the queries by their wishes and, per group,
    searches the best preference level first (for a condition on attributes
    0 and 1, ``pred_0 == 2 and pred_1 == 5``), then the next level only for
    the queries that found fewer than ``k`` items.

    Pickling a fitted index (or a retriever holding one) keeps the
    connection settings and the collection name, not the vectors; the
    connection opens again on first use. Milvus Lite serves one process at a
    time: to share a Milvus Lite database with other processes (e.g. the
    workers of a dask cluster), serve it (milvus-lite 3:
    ``milvus-lite server --data-dir items.db --port 19530``) and pass its
    ``http://`` URI.

    Rebuilding (``fit``, or ``index`` without ``append``) with
    ``overwrite=True`` drops and refills the same collection, which the
    earlier fitted index (and every process using it) also searches: queries
    running meanwhile see a missing or partly filled collection. To swap a
    live database without that gap, build into a new collection name and
    then switch the callers to it. Appending is safe: each fitted index
    searches only its own items (``id < n_items_``).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbackward import LabelFilterRetriever
    >>> from skbackward.indexes import MilvusIndex
    >>> X, y = load_digits(return_X_y=True)
    >>> index = MilvusIndex("digits.db", "digits", overwrite=True)  # doctest: +SKIP
    >>> ret = LabelFilterRetriever(vector_index=index).fit(X, y)  # doctest: +SKIP
    >>> ret.kneighbors(X[:2], n_neighbors=3, condition=8)[1].shape  # doctest: +SKIP
    (2, 3)
    """

    def __init__(self, uri, collection, *, token=None, index_type="FLAT",
                 index_params=None, search_params=None, batch_size=10000,
                 overwrite=False, timeout=None, verbose=0):
        self.uri = uri
        self.collection = collection
        self.token = token
        self.index_type = index_type
        self.index_params = index_params
        self.search_params = search_params
        self.batch_size = batch_size
        self.overwrite = overwrite
        self.timeout = timeout
        self.verbose = verbose

    # ---- the connection (never pickled) ---------------------------------------

    def _client(self):
        client = self.__dict__.get("_connection")
        if client is None:
            client = connect(self.uri_, self.token, self.timeout)
            if not client.has_collection(self.collection):
                raise ValueError(
                    f"the Milvus collection {self.collection!r} does not exist "
                    f"at {self.uri_!r}: was it dropped?"
                )
            self._connection = client
        return client

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_connection", None)
        state.pop("_labels", None)  # read back from Milvus when needed
        return state

    # ---- building ---------------------------------------------------------------

    def _check_params(self):
        """Validate the parameters; return the resolved URI."""
        def bad(name, expected):
            return ValueError(f"{name} must be {expected}; got "
                              f"{getattr(self, name)!r}.")

        if not isinstance(self.collection, str) or not self.collection:
            raise bad("collection", "a non-empty string")
        if (not isinstance(self.batch_size, numbers.Integral)
                or isinstance(self.batch_size, bool) or self.batch_size < 1):
            raise bad("batch_size", "an integer >= 1")
        for name in ("index_params", "search_params"):
            if not isinstance(getattr(self, name), (dict, type(None))):
                raise bad(name, "a dict or None")
        if not isinstance(self.index_type, str):
            raise bad("index_type", "a string")
        if not isinstance(self.overwrite, (bool, np.bool_)):
            raise bad("overwrite", "True or False")
        if self.timeout is not None and not (
            isinstance(self.timeout, numbers.Real)
            and not isinstance(self.timeout, bool) and 0 < self.timeout < np.inf
        ):
            raise bad("timeout", "a positive number or None")
        if not isinstance(self.token, (str, type(None))):
            raise ValueError("token must be a string or None.")
        return check_uri(self.uri)

    def _start_build(self, n_items, dim, n_attributes):
        self.uri_ = self._check_params()
        client = connect(self.uri_, self.token, self.timeout)
        refuse_overwrite(client, self.collection, self.uri_, self.overwrite)
        self._connection = client
        self.n_items_ = 0
        self.dim_ = dim
        self._n_attributes = n_attributes
        self._n_expected = n_items
        self._labels = []

    def _add(self, unit, norms, predicted, labels):
        client = self._client()
        if labels is not None:
            labels = np.asarray(labels)
        if self.n_items_ == 0 and not client.has_collection(self.collection):
            create_collection(
                client, self.collection, dim=self.dim_,
                n_attributes=self._n_attributes,
                n_labels=0 if labels is None else _as_2d(labels).shape[1],
                kind=None if labels is None else label_kind(labels),
                index_type=self.index_type, index_params=self.index_params,
            )
        start, total = self.n_items_, self._n_expected

        def progress(done):
            if self.verbose:
                print(f"Milvus: {start + done}/{total} items inserted into "
                      f"{self.collection!r} at {self.uri_!r}")

        insert(client, self.collection, start, unit, norms, predicted,
               None if labels is None else _as_2d(labels),
               batch_size=self.batch_size, progress=progress)
        self._labels.append(labels)
        self.n_items_ += unit.shape[0]

    def _end_build(self):
        parts = self.__dict__.pop("_labels")
        if any(p is None for p in parts) and not all(p is None for p in parts):
            raise ValueError("y must be given for every part of the index or none.")
        client = self._client()
        client.flush(self.collection)
        client.load_collection(self.collection)
        if parts and parts[0] is not None:
            self._labels = np.concatenate(parts)
            # the distinct labels map VARCHAR values back to the originals; the
            # joined parts' dtype holds the longest string of every part
            self._label_values = [np.unique(c) for c in _as_2d(self._labels).T]
            self._label_dtype = self._labels.dtype
            self._label_shape = self._labels.shape[1:]
        self._has_labels = bool(parts) and parts[0] is not None

    def _grown(self, n_items):
        new = copy.copy(self)
        new._n_expected = self.n_items_ + n_items
        new._labels = [self.labels_]
        return new

    # ---- queries ----------------------------------------------------------------

    def search(self, queries, k, *, exclude=None, prefer=None):
        """The ``k`` items most similar to each query, searched in Milvus.

        Parameters
        ----------
        queries : ndarray of shape (n_queries, dim)
            Query vectors (normalised here).
        k : int
            Number of neighbours (at most 16383, Milvus's limit less one).
        exclude : ndarray of shape (n_queries,), default=None
            An item number to leave out of each query's results, -1 for none.
        prefer : list of ndarray of shape (n_queries, n_attributes), default=None
            Tiers of wanted classes (-1: no wish), answered by filter
            expressions on the ``pred_<a>`` fields, best level first.

        Returns
        -------
        distances : ndarray of shape (n_queries, k), float32
            Cosine distances ``1 - cos``, ascending within each preference
            level; ``inf`` where fewer than ``k`` items were found.
        indices : ndarray of shape (n_queries, k), int64
            Item numbers; -1 where none was found.
        """
        unit, exclude = _check_search(self, queries, k, exclude)
        if k + 1 > MAX_TOPK:
            raise ValueError(f"MilvusIndex answers at most {MAX_TOPK - 1} "
                             f"neighbours per query; got n_neighbors={k}.")
        params = {"metric_type": "IP", "params": dict(self.search_params or {})}
        sims, ids = search(self._client(), self.collection, unit, k, exclude,
                           prefer, self._n_attributes, params, self.n_items_)
        return cosine_distances(sims, ids), ids

    def _range(self, start, stop):
        _check_built(self)
        start, stop, _ = slice(start, stop).indices(self.n_items_)
        return start, max(stop, start)

    def embeddings(self, start=0, stop=None):
        start, stop = self._range(start, stop)
        cols = read_range(self._client(), self.collection, start, stop,
                          [VECTOR, NORM])
        unit = np.array(cols[VECTOR], dtype=np.float32).reshape(-1, self.dim_)
        return unit * np.array(cols[NORM], dtype=np.float32)[:, None]

    def predicted(self, start=0, stop=None):
        start, stop = self._range(start, stop)
        fields = [f"pred_{a}" for a in range(self._n_attributes)]
        cols = read_range(self._client(), self.collection, start, stop, fields)
        return np.array([cols[f] for f in fields], dtype=np.int64).T.reshape(
            stop - start, len(fields))

    @property
    def labels_(self):
        """The items' labels (read back from Milvus once after unpickling)."""
        _check_built(self)
        if not self.__dict__.get("_has_labels"):
            return None
        labels = self.__dict__.get("_labels")
        if labels is None:
            labels = self._read_labels()
            self._labels = labels
        return labels

    def _read_labels(self):
        n_cols = len(self._label_values)
        fields = [f"label_{a}" for a in range(n_cols)]
        cols = read_range(self._client(), self.collection, 0, self.n_items_, fields)
        out = np.empty((self.n_items_, n_cols), dtype=self._label_dtype)
        for a, (f, values) in enumerate(zip(fields, self._label_values)):
            got = np.asarray(cols[f])
            if self._label_dtype.kind not in "iu":  # VARCHAR: back to the labels
                names = np.array([str(v) for v in values])
                order = np.argsort(names)
                got = values[order[np.searchsorted(names, got, sorter=order)]]
            out[:, a] = got
        return out.reshape((self.n_items_,) + self._label_shape)


def _as_2d(labels):
    return labels.reshape(labels.shape[0], -1)


for _name in ("embeddings", "predicted"):  # read back from Milvus
    getattr(MilvusIndex, _name).__doc__ = getattr(VectorIndex, _name).__doc__
