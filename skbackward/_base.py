"""The base shared by every retriever: validation, labels, index, queries.

A retriever embeds features with a trained network, optionally moves the query
embeddings towards a condition (the strategy: Backward Search, a distilled
student, ...), and ranks an index of embeddings by cosine similarity.
Subclasses implement ``_fit_network`` (training) and ``_condition_embeddings``
(the strategy); everything else is here.
"""

from abc import ABCMeta, abstractmethod
import numbers

import numpy as np
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, check_scalar, validate_data

from ._conditions import parse_condition
from ._dask import is_dask_collection
from ._index import chunk_rows, unit_float32
from ._labels import as_columns, attribute_names, encode_columns, lookup
from ._model import (
    build_network,
    heads_loss,
    predict_embedding,
    predict_labels,
    resolve_device,
    train_network,
)
from .indexes import ExactIndex, VectorIndex

FLOAT_DTYPES = (np.float64, np.float32)
# queries embedded, moved and searched at once by kneighbors (bounds its memory)
QUERY_BATCH = 4096
# working memory of one chunk of items embedded by index()
INDEX_CHUNK_MIB = 64


class BaseRetriever(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator, metaclass=ABCMeta
):
    """Base class for conditional retrievers over precomputed features.

    Warning: This class should not be used directly. Use derived classes instead.
    """

    # ---- to implement -------------------------------------------------------

    @abstractmethod
    def _fit_network(self, X, y, codes, seed):
        """Train (or adopt) the network; return it (embed + heads, on CPU)."""

    @abstractmethod
    def _condition_embeddings(self, Z, targets, weights):
        """Move query embeddings ``Z`` towards the parsed condition."""

    # ---- fitting ------------------------------------------------------------

    def fit(self, X, y):
        """Fit the embedding and classifier heads, then index ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Precomputed features (embeddings from any backbone).
        y : array-like of shape (n_samples,) or (n_samples, n_attributes)
            Labels: 1-D for one attribute, or 2-D / a DataFrame with one column
            per attribute (the DataFrame's column names become the attribute
            names, otherwise attributes are named 0, 1, ...). Strings or ints.

        Returns
        -------
        self : object
            The fitted retriever.
        """
        self._check_params()
        columns = getattr(y, "columns", None)  # a DataFrame names the attributes
        X, y = validate_data(
            self, X, y, multi_output=True, dtype=FLOAT_DTYPES, ensure_min_samples=2
        )
        names = attribute_names(y, columns)
        self.attributes_ = names
        classes, codes = encode_columns(as_columns(y), names, type(self).__name__)
        self.classes_ = classes[0] if y.ndim == 1 else classes
        self._classes = classes  # always a list, one array per attribute
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        self.model_ = self._fit_network(X, y, codes, seed)
        self._set_index(X, y)
        return self

    def _check_params(self):
        check_scalar(self.n_neighbors, "n_neighbors", numbers.Integral, min_val=1)
        resolve_device(self.device)
        if self.vector_index is not None and not isinstance(self.vector_index, VectorIndex):
            raise ValueError(
                "vector_index must be None or an index of skbackward.indexes "
                f"(ExactIndex, FaissIndex, ...); got {self.vector_index!r}."
            )

    @property
    def _n_features_out(self):
        return self.model_.embed.embedding_dim

    # ---- the index ------------------------------------------------------------

    def index(self, X, y=None, *, append=False):
        """Replace the searched database by the items ``X``, or add them to it.

        Embeddings and predicted labels are computed in chunks of rows, so
        ``X`` may be a ``np.memmap`` (or ``np.load(..., mmap_mode="r")``) larger
        than memory. The new index replaces the old one at once: a
        :meth:`kneighbors` running in another thread uses either the old or
        the new one.

        Parameters
        ----------
        X : array-like of shape (n_items, n_features)
            Features of the database items, in the space the model was fitted on.
        y : array-like of shape (n_items,) or (n_items, n_attributes), default=None
            Labels of the items, kept as ``index_labels_`` for scoring; the
            database may be unlabelled.
        append : bool, default=False
            Add the items after the indexed ones (numbered from
            ``n_index_samples_`` on) instead of replacing them, for databases
            that arrive in pieces; the earlier items keep their numbers. Give
            ``y`` for every piece or for none.

        Returns
        -------
        self : object
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=FLOAT_DTYPES)
        if y is not None:
            y = np.asarray(y)
            n_attr = 1 if y.ndim == 1 else y.shape[1]
            if y.ndim > 2 or y.shape[0] != X.shape[0] or n_attr != len(self.attributes_):
                raise ValueError(
                    f"y must have shape ({X.shape[0]},) or ({X.shape[0]}, "
                    f"{len(self.attributes_)}) (attributes {self.attributes_}); "
                    f"got {y.shape}."
                )
        if append:
            old = self._fitted_index()
            if (old.labels_ is None) != (y is None):
                raise ValueError(
                    "y must be given for every part of an appended index or for "
                    f"none; the index {'has' if y is None else 'has no'} labels."
                )
        self._set_index(X, y, append=append)
        return self

    def _set_index(self, X, y, append=False):
        """Build the index of ``X`` chunk by chunk and swap it in at the end."""
        n = X.shape[0]
        dim = self.model_.embed.embedding_dim
        if append:
            new = self._fitted_index()._grown(n)
        else:
            new = clone(ExactIndex() if self.vector_index is None else self.vector_index)
            new._start_build(n, dim, len(self._classes))
            n_train = new._n_training_items(n)
            if n_train:
                rows = np.unique(np.linspace(0, n - 1, n_train).round().astype(np.int64))
                new._train(np.concatenate(
                    [chunk[1] for chunk in self._index_chunks(X[rows])]
                ))
        for start, unit, norms, predicted in self._index_chunks(X):
            labels = None if y is None else y[start:start + unit.shape[0]]
            new._add(unit, norms, predicted, labels)
        new._end_build()
        self.vector_index_ = new  # one assignment: the swap is atomic

    def _chunk_rows(self, X):
        # a chunk's features, embedding and hidden layers, in X's dtype; larger
        # chunks than INDEX_CHUNK_MIB gain no speed
        row_bytes = X.dtype.itemsize * (X.shape[1] + 4 * self.model_.embed.embedding_dim)
        mib = min(get_config()["working_memory"], INDEX_CHUNK_MIB)
        return chunk_rows(row_bytes, X.shape[0], mib)

    def _index_chunks(self, X):
        """``(start, unit, norms, predicted)`` of consecutive chunks of rows
        of ``X``: float32 unit embeddings, their norms, predicted classes."""
        step = self._chunk_rows(X)
        for start in range(0, X.shape[0], step):
            Z = self._embed(X[start:start + step])
            unit, norms = unit_float32(Z)
            yield start, unit, norms, predict_labels(self.model_, Z, self.device)

    def _fitted_index(self):
        """The fitted index (read once per call by the methods that search)."""
        check_is_fitted(self)
        return self.vector_index_

    @property
    def index_labels_(self):
        """Labels of the indexed items (None when not given)."""
        return self._fitted_index().labels_

    @property
    def n_index_samples_(self):
        """Number of indexed items."""
        return self._fitted_index().n_items_

    def _encode(self, y):
        """Labels -> (n, n_attributes) class indices (-1 for labels not in fit)."""
        Y = as_columns(np.asarray(y))
        return np.stack(
            [lookup(cls, Y[:, a])[0] for a, cls in enumerate(self._classes)], axis=1
        )

    # ---- queries --------------------------------------------------------------

    def _embed(self, X):
        return predict_embedding(self.model_.embed, X, self.device)

    def _queries(self, Z, condition, condition_weight):
        """Query embeddings ``Z`` moved towards the condition, and the parsed
        targets (None without a condition)."""
        if condition is None:
            return Z, None
        targets, weights = parse_condition(
            condition, self.attributes_, self._classes, Z.shape[0], condition_weight
        )
        return self._moved(Z, targets, weights), targets

    def _moved(self, Z, targets, weights):
        out = self._condition_embeddings(Z, targets, weights)
        free = (targets < 0).all(axis=1)  # no condition for these queries
        out[free] = Z[free]
        return out

    # Whether kneighbors ranks the items the heads predict to carry the
    # condition before the others (the label filter and its relatives).
    _prefers_predicted = False

    def transform(self, X, condition=None, condition_weight=None):
        """Embed queries; with a condition, the embeddings moved towards it.

        Parameters
        ----------
        X : array-like or dask array of shape (n_queries, n_features)
            A dask array is transformed lazily, block by block (on the
            workers of a distributed scheduler), and gives a dask array;
            per-query conditions may then be numpy or dask arrays.
        condition : scalar, array-like of shape (n_queries,) or dict, default=None
            The wanted label(s). A scalar applies to every query, a 1-D array
            gives one label per query, and ``{attribute: label or labels}``
            conditions on several attributes at once (attributes left out are
            unconstrained; ``None`` inside an array leaves that query
            unconstrained). With several attributes a bare label is accepted
            when exactly one attribute has it. ``None``: no condition.
        condition_weight : float or dict, default=None
            Relative weight of each attribute's condition in the search loss,
            ``{attribute: weight}`` (a number or one per query). Default 1.
            Only the ratios between attributes matter, and only strategies
            with a search loss (Backward Search) use it.

        Returns
        -------
        Z : ndarray or dask array of shape (n_queries, embedding_dim)
            In the dtype of ``X`` (float32 or float64); a dask array when
            ``X`` is one.
        """
        check_is_fitted(self)
        if is_dask_collection(X):
            from . import _dask

            return _dask.transform(self, X, condition, condition_weight)
        X = validate_data(self, X, reset=False, dtype=FLOAT_DTYPES)
        return self._queries(self._embed(X), condition, condition_weight)[0]

    def kneighbors(
        self, X=None, n_neighbors=None, return_distance=True, *, condition=None,
        condition_weight=None, exclude=None,
    ):
        """Find the indexed items nearest to each (conditioned) query.

        Queries are embedded, moved and searched in batches of bounded size,
        ``X=None`` included.

        Parameters
        ----------
        X : array-like or dask array of shape (n_queries, n_features), default=None
            Queries. ``None`` queries the indexed items themselves, each
            excluded from its own neighbours. A dask array is answered
            lazily, block by block (on the workers of a distributed
            scheduler, the fitted retriever shipped once per worker), and
            the results are dask arrays; ``condition``, ``condition_weight``
            and ``exclude`` may then be numpy or dask arrays of one entry
            per query.
        n_neighbors : int, default=None
            Number of neighbours; defaults to the ``n_neighbors`` parameter.
        return_distance : bool, default=True
            Whether to return the distances.
        condition, condition_weight
            As in :meth:`transform`; ``None`` is plain nearest-neighbour search
            in the embedding space.
        exclude : array-like of shape (n_queries,), default=None
            An indexed item to leave out of each query's results, e.g. the
            query's own row when the queries are indexed items; -1 for none.
            Not with ``X=None``, which already excludes each item itself.

        Returns
        -------
        distances : ndarray or dask array of shape (n_queries, n_neighbors), float32
            Cosine distances (1 - cosine similarity), ascending (for a
            strategy that ranks predicted matches first, ascending within the
            matches and within the rest). Only when ``return_distance=True``.
        indices : ndarray or dask array of shape (n_queries, n_neighbors)
            Row indices of the neighbours in the indexed items.
        """
        index = self._fitted_index()  # one read: a concurrent index() swaps it
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        check_scalar(k, "n_neighbors", numbers.Integral, min_val=1)
        if is_dask_collection(X):
            from . import _dask

            return _dask.kneighbors(self, X, k, return_distance, condition,
                                    condition_weight, exclude)
        n_db = index.n_items_
        if X is None:
            if exclude is not None:
                raise ValueError("exclude cannot be used with X=None, which "
                                 "already excludes each item itself.")
            n_q = n_db
            exclude = np.arange(n_db)
        else:
            X = validate_data(self, X, reset=False, dtype=FLOAT_DTYPES)
            n_q = X.shape[0]
            exclude = self._check_exclude(exclude, n_q, n_db)
        left = n_db - (exclude is not None and bool((exclude >= 0).any()))
        if k > left:  # checked before paying for a search
            raise ValueError(
                f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {k}, "
                f"n_samples_fit = {n_db}, n_samples = {n_q}"
                + ("" if left == n_db else
                   f" ({left} items are left after excluding one per query"
                   + ("; X=None excludes each item itself)" if X is None else ")"))
            )
        targets = weights = None
        if condition is not None:
            targets, weights = parse_condition(
                condition, self.attributes_, self._classes, n_q, condition_weight
            )
        dist = np.empty((n_q, k), dtype=np.float32)
        ind = np.empty((n_q, k), dtype=np.int64)
        for s in range(0, n_q, QUERY_BATCH):
            e = min(s + QUERY_BATCH, n_q)
            # the items' stored embeddings are float32; a search from them
            # runs in float64, where a row's result does not depend on its batch
            Z = (index.embeddings(s, e).astype(np.float64) if X is None
                 else self._embed(X[s:e]))
            prefer = None
            if targets is not None:
                Z = self._moved(Z, targets[s:e], weights[s:e])
                if self._prefers_predicted:
                    prefer = [targets[s:e]]
            ex = None if exclude is None else exclude[s:e]
            dist[s:e], ind[s:e] = index.search(Z, k, exclude=ex, prefer=prefer)
        return (dist, ind) if return_distance else ind

    def _check_exclude(self, exclude, n_queries, n_items):
        if exclude is None:
            return None
        exclude = np.asarray(exclude)
        if exclude.shape != (n_queries,) or exclude.dtype.kind not in "iu":
            raise ValueError(
                f"exclude must be integers of shape ({n_queries},), one indexed "
                f"row (or -1) per query; got {exclude.dtype} {exclude.shape}."
            )
        if (exclude >= n_items).any() or (exclude < -1).any():
            raise ValueError(f"exclude holds rows outside [-1, {n_items - 1}].")
        return exclude.astype(np.int64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class TrainedRetriever(BaseRetriever):
    """Base of the retrievers that train their own embedding and heads.

    Subclasses take ``embedding_dim``, ``epochs``, ``batch_size``,
    ``learning_rate``, ``weight_decay``, ``device``, ``random_state`` and
    ``verbose`` parameters and share this training.

    Warning: This class should not be used directly. Use derived classes instead.
    """

    def _check_params(self):
        super()._check_params()
        for name in ("embedding_dim", "epochs", "batch_size"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=1)
        check_scalar(self.learning_rate, "learning_rate", numbers.Real, min_val=0,
                     include_boundaries="neither")
        check_scalar(self.weight_decay, "weight_decay", numbers.Real, min_val=0)

    def _fit_network(self, X, y, codes, seed):
        network = build_network(
            X.shape[1], [len(c) for c in self._classes], self.embedding_dim, seed
        )
        self.loss_curve_ = train_network(
            network, heads_loss, (X, codes),
            epochs=self.epochs, batch_size=self.batch_size,
            learning_rate=self.learning_rate, weight_decay=self.weight_decay,
            seed=seed, device=self.device, verbose=self.verbose,
        )
        self.n_iter_ = self.epochs
        return network
