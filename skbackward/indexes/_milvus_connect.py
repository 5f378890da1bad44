"""Reaching Milvus: the pymilvus import with a clear error, the uri's
checks, a connection of one's own, and telling a lost connection (or a
collection not loaded) from other errors."""

import os

# pymilvus's status codes: the server could not be reached; a collection
# not loaded; and the gRPC codes of a connection that is down
_CONNECT_FAILED, _NOT_LOADED = 2, 101
_GRPC_UNREACHABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}


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
    """The resolved URI: a Milvus Lite path (ending in ``.db``, pymilvus's
    rule) made absolute, ``~`` expanded; else a server URL as given."""
    if is_local(uri) and not str(uri).endswith(".db"):
        raise ValueError(
            "uri must be a Milvus Lite file path ending in '.db' or a server "
            f"URL such as 'http://localhost:19530'; got {uri!r}."
        )
    if not is_local(uri):
        return str(uri)
    # "~/x.db" is the user's home, as in a shell, not a folder named "~"
    return os.path.abspath(os.path.expanduser(os.fspath(uri)))


def connect(uri, token=None, timeout=None):
    """A ``MilvusClient`` for ``uri``, or a ConnectionError that names it.

    A server's client gets a connection of its own (pymilvus shares one per
    address otherwise): a MilvusIndex whose connection broke when the server
    went down drops it and opens a new one, rather than being handed the
    broken one again.
    """
    pymilvus = import_pymilvus()
    kwargs = {"uri": uri, "timeout": timeout}
    token = os.environ.get("MILVUS_TOKEN") if token is None else token
    if token:
        kwargs["token"] = token
    if not is_local(uri):
        kwargs["dedicated"] = True
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


def is_unreachable(exc):
    """Whether ``exc`` says that the server could not be reached (stopped,
    restarting, or a connection that broke), rather than refused a request."""
    if isinstance(exc, ConnectionError):
        return True
    pymilvus = import_pymilvus()
    if isinstance(exc, (pymilvus.exceptions.MilvusUnavailableException,
                        pymilvus.exceptions.ConnectError)):
        return True
    if isinstance(exc, pymilvus.MilvusException):
        return exc.code == _CONNECT_FAILED
    code = getattr(exc, "code", None)  # a raw grpc.RpcError
    return callable(code) and getattr(code(), "name", "") in _GRPC_UNREACHABLE


def is_not_loaded(exc):
    """Whether ``exc`` says that the collection is not loaded (a restarted
    server loads its collections again only in time)."""
    pymilvus = import_pymilvus()
    return (isinstance(exc, pymilvus.MilvusException)
            and (exc.code == _NOT_LOADED or "not loaded" in str(exc.message)))


def load(client, name):
    """Load the collection ``name`` for searching unless it is: a process that
    opens a database finds its collections released."""
    state = client.get_load_state(name).get("state")
    if getattr(state, "name", str(state)) != "Loaded":
        client.load_collection(name)
