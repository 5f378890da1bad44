"""MilvusIndex: the items in a Milvus collection, each build made aside and
switched in by an alias (the Milvus calls are in ``_milvus_store``, the
connection in ``_milvus_session``)."""

from __future__ import annotations

import contextlib
import copy
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.utils._param_validation import StrOptions

from .._utils._validation import check_all_params, count, finite
from . import _milvus_connect as connection
from . import _milvus_labels as labels_store
from . import _milvus_store as store
from ._base import VectorIndex, check_built
from ._milvus_session import MilvusSession


class MilvusIndex(MilvusSession, VectorIndex):
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
        A Milvus Lite file path ending in ``.db`` (created if missing; ``~``
        is the home directory), or a server URL ``http(s)://host:port``.
    collection : str
        The name the items are found under: letters, digits and ``_``. Each
        build writes a collection of its own and then points the Milvus
        alias ``collection`` at it (see the ``Notes``). A retriever replaces
        the collection it built itself; any other only when
        ``overwrite=True``.
    token : str, default=None
        Credentials of a server (``"user:password"`` or an API key); None
        reads the environment variable ``MILVUS_TOKEN`` when set, which keeps
        the secret out of pickles and reprs (a token given here is pickled
        with the retriever like the other connection settings).
    index_type : str, default="FLAT"
        Milvus index of the vectors: "FLAT" (exact), "IVF_FLAT", "IVF_SQ8",
        "IVF_PQ", "HNSW", "HNSW_SQ", "DISKANN", "SCANN" or "AUTOINDEX"
        (Milvus Lite 3 supports FLAT, IVF_FLAT, IVF_SQ8, HNSW, HNSW_SQ and
        AUTOINDEX). The metric is always the inner product of unit vectors,
        i.e. cosine similarity.
    index_params : dict, default=None
        Build parameters of the index, e.g. ``{"nlist": 1024}`` for IVF_FLAT
        or ``{"M": 16, "efConstruction": 200}`` for HNSW. A key the index
        type does not read, or a value out of Milvus's range, is a
        ValueError at fit (Milvus would ignore the one and refuse the other
        only later).
    search_params : dict, default=None
        Search parameters, e.g. ``{"nprobe": 16}`` (IVF) or ``{"ef": 64}``
        (HNSW); checked like ``index_params``, at fit and at each search
        (tunable as ``vector_index__search_params``).
    batch_size : int, default=10000
        Items per insert request.
    overwrite : bool, default=False
        Whether building may replace a collection named ``collection`` that
        this retriever did not build (another retriever's, or someone
        else's); its data is dropped once the new build is complete. When
        False, that raises a ValueError naming it.
    timeout : float, default=None
        Seconds to wait for a connection (None: pymilvus's 10 s). A query
        on a server that cannot be reached tries once more on a new
        connection (so a retriever reconnects after the server restarted),
        then raises a ConnectionError naming ``uri``.
    verbose : int, default=0
        Print the insert progress when > 0.
    partition_key : bool, default=False
        Whether to store each item's combination of predicted classes (its
        *cell*: one class per attribute) in a field ``cell`` that is the
        collection's partition key, and to filter the preference levels on
        it: a Milvus server then searches a conditional query only in the
        partitions holding its class's cells, each with its own index
        segments. Measured on a Milvus 2.3 server (see the scaling guide):
        with HNSW, conditional queries faster and with a far higher recall,
        plain ones slower; with FLAT, no gain at a million items. Milvus
        Lite accepts the partition key but searched no faster with it.

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
    Each build (``fit``, or ``index`` without ``append``) writes a new
    collection, ``<collection>__<build>`` with ``<build>`` 16 random hex
    digits (also recorded as its property ``skbackward.build``), checks
    first what Milvus cannot store (a label over 65,535 bytes, a NUL
    character), and only when every item is in points the alias
    ``collection`` at it and drops the collection it served before. A build
    that fails or is killed half-way leaves the earlier one answering as
    before (a killed one leaves its partial ``<collection>__<build>``
    behind, which serves no one; drop it with pymilvus). A fitted index
    searches its own build: once another retriever rebuilt the collection,
    it raises a ValueError naming the collection instead of answering from
    the other's items (so does a query still running on a build when the
    next one, of the same retriever, replaces it).

    The collection holds, per item: ``id`` (INT64 primary key, ``(part <<
    32) + item number``, ``part`` a random number per build or append),
    ``vector`` (FLOAT_VECTOR, the unit embedding), ``norm`` (FLOAT, the
    embedding's norm), ``pred_0``, ``pred_1``, ... (INT64, the predicted
    class index of each attribute, in the order of the retriever's
    ``attributes_`` and ``classes_``) and, when labels are given,
    ``label_0``, ... (INT64 for integer and boolean labels, otherwise
    VARCHAR of the label's text). A conditional ranking groups the queries
    by their wishes and, per group, searches the best preference level
    first (for a condition on attributes 0 and 1, ``pred_0 == 2 and pred_1
    == 5``), then the next level only for the queries that found fewer than
    ``k`` items.

    Appending (``index(X, append=True)``) adds items to the build's
    collection; each fitted index searches only its own items. Before
    writing, an append checks that the collection holds exactly this index's
    items, and after, that it holds them plus its own: another copy of the
    same fitted retriever (e.g. one unpickled twice) that appended meanwhile
    makes it refuse with a ValueError (taking its own items back out), so
    no item is overwritten or lost.

    Pickling a fitted index (or a retriever holding one) keeps the
    connection settings, the collection name and the build identity, not
    the vectors; the connection opens (and loads the collection) again on
    first use, in any process. Milvus Lite serves one process at a time: to
    share a Milvus Lite database with other processes (e.g. the workers of a
    dask cluster), serve it (milvus-lite 3: ``milvus-lite server --data-dir
    items.db --port 19530``) and pass its ``http://`` URI.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbackward import LabelFilterRetriever
    >>> from skbackward.indexes import MilvusIndex
    >>> X, y = load_digits(return_X_y=True)
    >>> index = MilvusIndex("digits.db", "digits")  # doctest: +SKIP
    >>> ret = LabelFilterRetriever(vector_index=index).fit(X, y)  # doctest: +SKIP
    >>> ret.kneighbors(X[:2], n_neighbors=3, condition=8)[1].shape  # doctest: +SKIP
    (2, 3)
    """

    _parameter_constraints = {
        "uri": [str, os.PathLike],
        "collection": [str],
        "token": [str, None],
        "index_type": [StrOptions(set(store.INDEX_SETTINGS))],
        "index_params": [dict, None],
        "search_params": [dict, None],
        "batch_size": [count(1)],
        "overwrite": ["boolean"],
        "timeout": [finite(0.0, positive=True), None],
        "verbose": ["verbose"],
        "partition_key": ["boolean"],
    }
    _search_params = ("search_params",)

    def __init__(self, uri, collection, *, token=None, index_type="FLAT",
                 index_params=None, search_params=None, batch_size=10000,
                 overwrite=False, timeout=None, verbose=0, partition_key=False):
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
        self.partition_key = partition_key

    # ---- building ---------------------------------------------------------------

    def _will_replace(self, previous):
        # a retriever may always replace the build it made itself
        if isinstance(previous, MilvusIndex) and "_build" in previous.__dict__:
            self._previous = (previous.uri_, previous.collection, previous._build)

    def _check_params(self, dim=None):
        """Validate the parameters and settings; return the resolved URI."""
        check_all_params(self)
        store.check_collection_name(self.collection)
        store.check_settings("index_params", self.index_params, self.index_type, dim)
        store.check_settings("search_params", self.search_params, self.index_type)
        return connection.check_uri(self.uri)

    def _start_build(self, n_items, dim, n_attributes):
        previous = self.__dict__.pop("_previous", None)
        self.uri_ = self._check_params(dim)
        if n_items > store.MAX_ITEMS:
            raise ValueError(f"MilvusIndex holds at most {store.MAX_ITEMS} items; "
                             f"got {n_items}.")
        client = connection.connect(self.uri_, self.token, self.timeout)
        self._replaced = self._replaceable(client, previous)
        self._connection = client
        self._build = store.new_build()
        self._collection = f"{self.collection}__{self._build}"
        self._parts = [(store.new_part([]) << store.ITEM_BITS, 0, n_items)]
        self._index_type = self.index_type
        self._appending = self._created = self._switched = False
        self.n_items_ = 0
        self.dim_ = dim
        self._n_attributes = n_attributes
        # with a partition key: the cells seen, numbered in order of appearance
        self._cells = {} if self.partition_key else None
        self._n_expected = n_items
        self._labels = []
        self._label_kinds = self._label_values = None

    def _replaceable(self, client, previous):
        """The collection the name serves now (None: none), which this build
        may replace: the retriever's own last build, or any with
        ``overwrite``. Checked before anything is written."""
        target, build = store.current_target(client, self.collection)
        own = build is not None and previous == (self.uri_, self.collection, build)
        if target is not None and not own and not self.overwrite:
            raise ValueError(
                f"the Milvus collection {self.collection!r} already exists at "
                f"{self.uri_!r} and was not built by this retriever (or not by "
                "its latest build); pass overwrite=True to replace it (its data "
                "is dropped once the new build is complete) or choose another "
                "collection name."
            )
        return target

    def _check_labels(self, labels):
        if labels is not None:
            self._label_kinds, self._label_values = labels_store.check_storable(
                _as_2d(np.asarray(labels)), self._label_kinds, self._label_values)

    def _add(self, unit, norms, predicted, labels):
        client = self._connection
        if labels is not None:
            labels = np.asarray(labels)
            if self._label_kinds is None:
                self._check_labels(labels)
        with self._writing():
            self._write(client, unit, norms, predicted, labels)
        self._labels.append(labels)
        self.n_items_ += unit.shape[0]

    def _write(self, client, unit, norms, predicted, labels):
        if not (self._created or self._appending):
            store.create_collection(
                client, self._collection, self._build, dim=self.dim_,
                n_attributes=self._n_attributes,
                kinds=None if labels is None else self._label_kinds,
                index_type=self._index_type, index_params=self.index_params,
                partition_key=self.__dict__.get("_cells") is not None,
            )
            self._created = True
        start, total = self.n_items_, self._n_expected

        def progress(done):
            if self.verbose:
                print(f"Milvus: {start + done}/{total} items inserted into "
                      f"{self.collection!r} at {self.uri_!r}")

        store.insert(client, self._collection, self._parts[-1][0], start, unit,
                     norms, predicted, None if labels is None else _as_2d(labels),
                     self._label_kinds, batch_size=self.batch_size,
                     cells=self._cell_numbers(predicted), progress=progress)

    def _cell_numbers(self, predicted):
        """The cells of ``predicted`` rows (None without a partition key),
        new combinations numbered on."""
        if self.__dict__.get("_cells") is None:  # (none before partition keys)
            return None
        rows, inverse = np.unique(predicted, axis=0, return_inverse=True)
        numbers = [self._cells.setdefault(key, len(self._cells))
                   for key in map(tuple, rows.tolist())]
        return np.asarray(numbers, dtype=np.int64)[inverse.reshape(-1)]

    def _end_build(self):
        parts = self.__dict__.pop("_labels")
        if any(p is None for p in parts) and not all(p is None for p in parts):
            raise ValueError("y must be given for every part of the index or none.")
        if self.n_items_ != self._n_expected:
            raise RuntimeError(f"expected {self._n_expected} items, got "
                               f"{self.n_items_}.")
        client = self._connection
        with self._writing():
            client.flush(self._collection)
            held = store.count_items(client, self._collection)
            if self._appending and held != self.n_items_:
                # another copy appended meanwhile; _abort_build takes ours back
                raise self._moved_on(held, "this append's items are taken out "
                                           "again")
            if not self._appending:
                connection.load(client, self._collection)
                self._switch(client)
        if parts and parts[0] is not None:
            self._labels = np.concatenate(parts)
            self._label_dtype = self._labels.dtype
            self._label_shape = self._labels.shape[1:]
        self._has_labels = bool(parts) and parts[0] is not None
        for name in ("_replaced", "_created", "_switched", "_appending",
                     "_n_expected"):
            self.__dict__.pop(name, None)

    def _switch(self, client):
        """Point the name at this build, unless another build took it since
        this one started (that one is not this build's to replace)."""
        target, _ = store.current_target(client, self.collection)
        if target != self._replaced:
            raise ValueError(
                f"the Milvus collection {self.collection!r} at {self.uri_!r} was "
                "rebuilt by another retriever while this one was building; this "
                "build is dropped. Build again (with overwrite=True to replace "
                "the other's)."
            )
        store.switch_alias(client, self.collection, self._collection, target)
        self._switched = True

    def _abort_build(self):
        """Undo a build or an append that failed half-way. Readers never saw
        it (a build aside serves no name; an appended part lies outside
        every other index's parts); its space is given back."""
        client = self.__dict__.get("_connection")
        if client is None or self.__dict__.get("_switched", True):
            return
        # the failure that brought us here is what the caller must see
        with contextlib.suppress(Exception):
            if self._appending:
                base = self._parts[-1][0]
                client.delete(self._collection,
                              filter=store.part_range(base, 0, store.MAX_ITEMS))
                client.flush(self._collection)
            elif self._created:
                client.drop_collection(self._collection)

    def _moved_on(self, held, done):
        """The error of an append to a collection another copy appended to."""
        return ValueError(
            f"the Milvus collection {self.collection!r} at {self.uri_!r} holds "
            f"{held} items, but this retriever's index {self.n_items_}: another "
            "copy of this retriever (e.g. one unpickled twice) appended to it "
            "since this one was saved or built, or an append was cut off. This "
            f"copy's items would be numbered as the other's; {done}. Load the "
            "retriever that appended last, or rebuild the index (index(X, y) "
            "without append)."
        )

    def _grown(self, n_items):
        check_built(self)
        held = self._reading(lambda c: store.count_items(c, self._collection))
        client = self._client()
        if held != self.n_items_:
            raise self._moved_on(held, "nothing was written")
        if self.n_items_ + n_items > store.MAX_ITEMS:
            raise ValueError(f"MilvusIndex holds at most {store.MAX_ITEMS} items.")
        new = copy.copy(self)  # through __getstate__: without the connection
        new._connection = client
        base = store.new_part(self._parts) << store.ITEM_BITS
        new._parts = self._parts + [(base, self.n_items_, self.n_items_ + n_items)]
        new._appending, new._created, new._switched = True, False, False
        new._n_expected = self.n_items_ + n_items
        new._labels = [self.labels_]
        if self.__dict__.get("_cells") is not None:  # the earlier keeps its own
            new._cells = dict(self._cells)
        if self._label_values is not None:
            new._label_values = [list(v) for v in self._label_values]
        return new

    # ---- queries ----------------------------------------------------------------

    def _check_search(self, k):
        store.check_settings("search_params", self.search_params, self._index_type)
        if k + 1 > store.MAX_TOPK:
            raise ValueError(f"MilvusIndex answers at most {store.MAX_TOPK - 1} "
                             f"neighbours per query; got n_neighbors={k}.")

    def _search(self, unit, k, exclude, prefer):
        # the preference levels are filter expressions on the pred_<a> fields
        params = {"metric_type": "IP", "params": dict(self.search_params or {})}
        cells = None
        if self.__dict__.get("_cells") is not None:  # each cell's classes
            cells = np.zeros((len(self._cells), self._n_attributes), np.int64)
            for key, number in self._cells.items():
                cells[number] = key
        return self._reading(lambda client: store.search(
            client, self._collection, unit, k, exclude, prefer,
            self._n_attributes, params, self._parts, cells))

    def _read(self, start, stop, fields):
        """Columns ``fields`` of the items ``start:stop`` (resolved bounds)."""
        return stop - start, self._reading(lambda client: store.read_range(
            client, self._collection, self._parts, start, stop, fields))

    def _embeddings(self, start, stop):
        _, cols = self._read(start, stop, [store.VECTOR, store.NORM])
        unit = np.array(cols[store.VECTOR], dtype=np.float32).reshape(-1, self.dim_)
        return unit * np.array(cols[store.NORM], dtype=np.float32)[:, None]

    def _predicted(self, start, stop):
        fields = [f"pred_{a}" for a in range(self._n_attributes)]
        n, cols = self._read(start, stop, fields)
        return np.array([cols[f] for f in fields], dtype=np.int64).T.reshape(
            n, len(fields))

    @property
    def labels_(self) -> NDArray[Any] | None:
        """The items' labels (read back from Milvus once after unpickling)."""
        check_built(self)
        if not self.__dict__.get("_has_labels"):
            return None
        labels = self.__dict__.get("_labels")
        if labels is None:
            labels = self._read_labels()
            self._labels = labels
        return labels

    def _read_labels(self):
        fields = [f"label_{a}" for a in range(len(self._label_kinds))]
        n, cols = self._read(0, self.n_items_, fields)
        out = np.empty((n, len(fields)), dtype=self._label_dtype)
        for a, (f, kind) in enumerate(zip(fields, self._label_kinds)):
            out[:, a] = (cols[f] if kind == "int" else labels_store.labels_from_text(
                cols[f], self._label_values[a]))
        return out.reshape((n,) + self._label_shape)


def _as_2d(labels):
    return labels.reshape(labels.shape[0], -1)

