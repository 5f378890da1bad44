"""The index life-cycle: building the searched database, swapping it in,
appending to it.

Items are embedded chunk by chunk (``X`` may be a memory-mapped array larger
than memory) and handed to the ``vector_index`` backend's public
:meth:`~skbackward.indexes.VectorIndex.build` or
:meth:`~skbackward.indexes.VectorIndex.extend`; the input features go to a
:class:`FeatureIndex` in the same pass when the ranking blends them. The new
index replaces the old one by one assignment, so a query running in another
thread reads either the old index or the new one.
"""

import numpy as np
from sklearn import get_config
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from .._network._model import predict_labels
from .._utils._threads import with_threads
from .._utils._validation import check_arguments, check_groups, validate_X
from ..indexes import ExactIndex
from ..indexes._features import FeatureIndex
from ..indexes._topk import chunk_rows, unit_float32

# working memory of one chunk of items embedded by index()
INDEX_CHUNK_MIB = 64


class IndexingMixin:
    """``index()`` and the fitted index's attributes, for a retriever."""

    @with_threads
    def index(self, X, y=None, *, groups=None, append=False):
        """Replace the searched database by the items ``X``, or add them to it.

        Embeddings and predicted labels are computed in chunks of rows, so
        ``X`` may be a ``np.memmap`` (or ``np.load(..., mmap_mode="r")``) larger
        than memory. The new index replaces the old one at once: a
        :meth:`kneighbors` running in another thread uses either the old or
        the new one (a :class:`~skbackward.indexes.MilvusIndex` builds a new
        collection aside and switches its name to it; a query still running
        on the old build when it is dropped raises a ValueError: see its
        Notes). When indexing fails half-way, the old index stays.

        Parameters
        ----------
        X : array-like of shape (n_items, n_features)
            Features of the database items, in the space the model was fitted on.
        y : array-like of shape (n_items,) or (n_items, n_attributes), default=None
            Labels of the items, kept as ``index_labels_`` for scoring; the
            database may be unlabelled. Labels must be among those seen in
            ``fit`` (a ValueError names the others). A DataFrame's columns are
            matched to the attributes by name; an array's by position.
        groups : array-like of shape (n_items,), default=None
            Which items are the same item in other forms (scikit-learn's
            convention for grouped samples: equal values, one group), kept as
            ``index_groups_``: with it,
            :func:`~skbackward.metrics.retrieval_scores` measures hit@k,
            whether a query's counterpart in the asked class (the indexed
            item of its group carrying the condition) is among its results.
            Give it for every appended piece or for none.
        append : bool, default=False
            Add the items after the indexed ones (numbered from
            ``n_index_samples_`` on) instead of replacing them, for databases
            that arrive in pieces; the earlier items keep their numbers. Give
            ``y`` for every piece or for none.

        Returns
        -------
        self : object
            The retriever, now searching ``X``.
        """
        check_is_fitted(self)
        self._validate_query_params()
        # a string such as "no" is truthy: it must not append
        check_arguments({"append": ["boolean"]}, f"{type(self).__name__}.index",
                        append=append)
        X = validate_X(self, X)
        if y is not None:
            y, _ = self._label_codes(y, n_samples=X.shape[0])  # known labels only
        old = self._fitted_index() if append else None  # read once, then grown
        if append and (old.labels_ is None) != (y is None):
            raise ValueError(
                "y must be given for every part of an appended index or for "
                f"none; the index {'has' if y is None else 'has no'} labels."
            )
        groups = check_groups(groups, X.shape[0])
        old_groups = getattr(self, "index_groups_", None) if append else None
        if append and (old_groups is None) != (groups is None):
            raise ValueError(
                "groups must be given for every part of an appended index or "
                f"for none; the index {'has' if groups is None else 'has no'} "
                "groups."
            )
        if append and groups is not None:
            groups = np.concatenate([old_groups, groups])
        self._set_index(X, y, grow=old, groups=groups)
        return self

    def _set_index(self, X, y, grow=None, groups=None):
        """Build the index of ``X`` chunk by chunk and swap it in at the end;
        ``grow``: a fitted index to add ``X`` to instead of a new one;
        ``groups``: the groups of every indexed item (checked), kept as
        ``index_groups_``."""
        n = X.shape[0]
        features = self._new_feature_index(X, grow)
        chunks = self._index_chunks(X, y, features)
        if grow is not None:  # the index checked by the caller, not a newer one
            new = grow.extend(chunks, n_items=n, labels=y)
        else:
            param = self.vector_index
            new = clone(ExactIndex() if param is None else param).build(
                chunks, n_items=n, dim=self.model_.embed.embedding_dim,
                n_attributes=len(self.attribute_classes_), labels=y,
                training_sample=lambda n_train: self._training_sample(X, n_train),
                replaces=self.__dict__.get("vector_index_"),
            )
        # the groups and features go with the index: set just before it
        # (queries read the index first and check that these match it)
        self.index_groups_ = groups
        self.feature_index_ = features
        self.vector_index_ = new  # one assignment: the swap is atomic

    def _new_feature_index(self, X, grow):
        """A :class:`FeatureIndex` for the items ``X`` when the ranking looks
        at the input features (``feature_weight > 0``), else None."""
        if not self._feature_weight():
            return None
        dim = self.model_.embed.embedding_dim
        if grow is None:
            return FeatureIndex().start(X.shape[0], dim, X.shape[1],
                                        len(self.attribute_classes_))
        old = self.__dict__.get("feature_index_")
        if old is None or old.n_items_ != grow.n_items_:
            raise ValueError(
                "feature_weight > 0, but the index was built without the items' "
                "features (feature_weight was 0): index all the items again "
                "with index(X) instead of appending."
            )
        return old.grown(X.shape[0])

    def _feature_index(self, index):
        """The fitted :class:`FeatureIndex` that matches ``index``."""
        features = self.__dict__.get("feature_index_")
        if features is None or features.n_items_ != index.n_items_:
            raise ValueError(
                f"feature_weight={self._feature_weight()} ranks by the items' "
                "input features, which this index does not hold (feature_weight "
                "was 0 when it was built): set feature_weight before fit or "
                "index()."
            )
        return features

    def _training_sample(self, X, n_train):
        """``(unit, predicted)`` of ``n_train`` items evenly spaced over
        ``X``, for a backend that trains (read chunk by chunk, as the items)."""
        n = X.shape[0]
        rows = np.linspace(0, n - 1, n_train).round().astype(np.int64)
        rows = np.unique(rows)
        step = self._chunk_rows(X)
        units, predicted = [], []
        for s in range(0, len(rows), step):
            unit, _, pred = self._embedded(X[rows[s:s + step]])
            units.append(unit)
            predicted.append(pred)
        return np.concatenate(units), np.concatenate(predicted)

    def _embedded(self, X_part):
        """``(unit, norms, predicted)`` of rows of features: float32 unit
        embeddings, their norms and the heads' predicted classes."""
        Z = self._embed(X_part)
        unit, norms = unit_float32(Z)
        return unit, norms, predict_labels(self.model_, Z, self.device)

    def _chunk_rows(self, X):
        # a chunk's features, embedding and hidden layers, in X's dtype; larger
        # chunks than INDEX_CHUNK_MIB gain no speed
        dim = self.model_.embed.embedding_dim
        row_bytes = X.dtype.itemsize * (X.shape[1] + 4 * dim)
        mib = min(get_config()["working_memory"], INDEX_CHUNK_MIB)
        return chunk_rows(row_bytes, X.shape[0], mib)

    def _index_chunks(self, X, y, features):
        """``(unit, norms, predicted, labels)`` of consecutive chunks of rows
        of ``X``: float32 unit embeddings, their norms, predicted classes and
        the chunk's labels ``y`` (or None). ``features``: a
        :class:`FeatureIndex` fed the same chunks (and ended after the last),
        or None."""
        step = self._chunk_rows(X)
        for start in range(0, X.shape[0], step):
            stop = start + step
            unit, norms, predicted = self._embedded(X[start:stop])
            yield unit, norms, predicted, None if y is None else y[start:stop]
            if features is not None:
                features.add(unit, X[start:stop], predicted)
        if features is not None:
            features.end_build()

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
