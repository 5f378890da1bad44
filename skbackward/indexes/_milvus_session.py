"""The connection a :class:`~skbackward.indexes.MilvusIndex` holds: opened on
first use (the build's collection checked and loaded), never pickled,
opened anew after the server restarted, and errors that say what happened
to the data and what to do."""

import contextlib

from . import _milvus_connect as connection
from . import _milvus_store as store


class MilvusSession:
    """Mixin of :class:`~skbackward.indexes.MilvusIndex`: its connection (the
    index's ``uri_``, ``token``, ``timeout``, ``collection`` and its build's
    ``_collection``/``_build`` are read from the index)."""

    def _client(self):
        """The connection, opened on first use: the build's collection must
        still be there, with this build's identity, and loaded (a process
        that opens a database finds its collections released)."""
        client = self.__dict__.get("_connection")
        if client is None:
            client = connection.connect(self.uri_, self.token, self.timeout)
            self._connection = client
            try:
                if not client.has_collection(self._collection):
                    raise self._gone(client)
                properties = client.describe_collection(self._collection).get(
                    "properties") or {}
                if properties.get(store.BUILD_PROPERTY) != self._build:
                    raise self._gone(client)
            except Exception as exc:
                self._disconnect()
                if connection.is_unreachable(exc):
                    raise self._unreachable(exc) from exc
                raise
            self._load(client)
        return client

    def _reading(self, call):
        """``call(client)`` for a read. A read that cannot reach the server
        tries once more on a new connection (one opened before the server
        restarted is not reused), one that finds the collection not loaded
        (a restarted server loads it again only in time) once more after
        loading it; a read that fails because the build's collection was
        dropped meanwhile (another retriever rebuilt it) raises the error of
        :meth:`_gone`."""
        for retry in (True, False):
            client = self._client()
            try:
                return call(client)
            except Exception as exc:
                if connection.is_unreachable(exc):
                    self._disconnect()
                    if retry:
                        continue
                    raise self._unreachable(exc) from exc
                if retry and connection.is_not_loaded(exc):
                    self._load(client)
                    continue
                if not client.has_collection(self._collection):
                    raise self._gone(client) from None
                raise

    def _load(self, client):
        try:
            connection.load(client, self._collection)
        except Exception as exc:
            if connection.is_unreachable(exc):
                self._disconnect()
                raise self._unreachable(exc) from exc
            raise

    def _disconnect(self):
        """Forget the connection: the next use opens a new one. (Not closed:
        an append's index shares it with the index it grew from.)"""
        self.__dict__.pop("_connection", None)

    def _unreachable(self, exc):
        """The error of a read that could not reach the server."""
        return ConnectionError(
            f"cannot reach Milvus at uri={self.uri_!r} (tried twice, the second "
            f"time on a new connection): {exc}. Is the server running? Start it "
            "again (its data folder keeps the collection) and repeat the call: "
            "the retriever reconnects by itself; nothing of its index was lost."
        )

    @contextlib.contextmanager
    def _writing(self):
        """Turn a lost connection while building or appending into an error
        that says what became of the data and what to do."""
        try:
            yield
        except Exception as exc:
            if not connection.is_unreachable(exc) or isinstance(exc, ConnectionError):
                raise
            if self._appending:
                kept = (
                    "The retriever keeps its index as it was before this append "
                    "and answers from it as before. The items this append wrote "
                    "cannot be taken back while the server is down: they may "
                    "stay in the collection, where no index searches them, and "
                    "then a later append is refused until the index is rebuilt. "
                    "Once the server is back, append again, or rebuild "
                    "(index(X, y) without append) with all the items."
                )
            else:
                kept = (
                    f"The name {self.collection!r} still serves the build it "
                    "served before, which answers as before; this build's "
                    f"unfinished collection {self._collection!r} may stay "
                    "behind, serving no one (drop it with pymilvus). Once the "
                    "server is back, build again."
                )
            raise ConnectionError(
                f"lost the connection to Milvus at uri={self.uri_!r} while "
                + ("appending to" if self._appending else "building")
                + f" the collection {self.collection!r} (the server stopped or "
                f"restarted): {exc}. {kept}"
            ) from exc

    def _gone(self, client):
        """The error of an index whose build's collection is gone."""
        target, build = store.current_target(client, self.collection)
        now = (f"it now serves build {build}" if build
               else "it now names a collection this package did not build"
               if target else "it no longer exists")
        return ValueError(
            f"the Milvus collection {self.collection!r} at {self.uri_!r} was "
            "rebuilt by another retriever (or dropped) since this one built it: "
            f"this index's items (build {self._build}) are gone, and {now}. "
            "Answering from it would pair another build's items with this "
            "retriever's labels. Load the retriever that rebuilt it, or rebuild "
            "this one (index(X, y) with vector_index__overwrite=True: the "
            "collection is no longer this retriever's)."
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_connection", None)
        state.pop("_labels", None)  # read back from Milvus when needed
        return state
