"""VectorIndex: what every index backend answers, its checks and docs written once.

The public query methods (:meth:`VectorIndex.search`,
:meth:`VectorIndex.embeddings`, :meth:`VectorIndex.predicted`) check their
arguments here and call the private hooks a backend implements (``_search``,
``_embeddings``, ``_predicted``), as imbalanced-learn's ``fit_resample`` calls
``_fit_resample``. The backends live in :mod:`skbackward.indexes` (in memory)
and ``skbackward.indexes._milvus`` (a Milvus collection); this module imports neither.
"""

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from .._utils._validation import check_arguments, check_params, count, position
from ._preference import check_prefer, cosine_distances
from ._topk import unit_float32


class VectorIndex(BaseEstimator, metaclass=ABCMeta):
    """Base class of the index objects of the ``vector_index`` parameter.

    An unfitted instance holds parameters only. A retriever fills a fitted
    copy (``clone`` of it, then :meth:`build`) and keeps it as its
    ``vector_index_``; a fitted index is never modified afterwards
    (:meth:`extend` builds a new object), so a search running in another
    thread sees either the old index or the new one.

    Building hooks, called by :meth:`build` and :meth:`extend` (the template
    methods) in this order:

    1. ``_will_replace(previous)``: the fitted index (or None) this build
       will replace.
    2. ``_start_build(n_items, dim, n_attributes)``: a new, empty index for
       ``n_items`` items of dimension ``dim``.
    3. ``_check_labels(labels)``: all the items' labels (or None), to refuse
       what the index cannot store before anything is written.
    4. ``_n_training_items(n_items)`` -> int: how many items to train on
       (0: no training); then ``_train(unit, predicted)`` with that many
       unit vectors, evenly spaced over the items, and their predicted
       classes.
    5. ``_add(unit, norms, predicted, labels)`` once per chunk of items, in
       order: float32 unit vectors (m, dim), float32 norms (m,), the heads'
       predicted classes (m, n_attributes) int, the items' labels (m,) or
       (m, n_attributes), or None.
    6. ``_end_build()``.

    ``_grown(n_items)`` returns a new fitted index holding this one's items
    (a copy of this one), ready for ``_check_labels``, ``_add`` of
    ``n_items`` more and ``_end_build`` (:meth:`extend`). When a step after
    ``_start_build`` or ``_grown`` fails, ``_abort_build()`` is called on
    the new index (and the old one stays).

    Query hooks, called by the public methods once they have checked their
    arguments: ``_search(unit, k, exclude, prefer)`` -> ``(similarities,
    indices)``, ``_embeddings(start, stop)`` and ``_predicted(start, stop)``
    (bounds already resolved against ``n_items_``); optionally
    ``_check_search(k)`` for what a backend checks beyond the common checks.

    Attributes of a fitted index: ``n_items_`` (int), ``dim_`` (int),
    ``labels_`` (ndarray or None) and ``_n_attributes`` (int). A subclass
    names the parameters a search reads in ``_search_params``: they are
    checked at every search, since ``set_params`` may change them on a
    fitted index.

    See Also
    --------
    ExactIndex : Exact search, the default.
    FaissIndex : Approximate search with faiss.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbackward import NearestNeighborRetriever
    >>> from skbackward.indexes import ExactIndex, VectorIndex
    >>> isinstance(ExactIndex(), VectorIndex)
    True
    >>> X, y = load_digits(return_X_y=True)
    >>> ret = NearestNeighborRetriever(epochs=1, random_state=0).fit(X, y)
    >>> index = ret.vector_index_  # the fitted copy
    >>> index.n_items_, index.embeddings(0, 5).shape
    (1797, (5, 256))
    >>> dist, ind = index.search(ret.transform(X[:2]), 3)
    >>> ind.shape
    (2, 3)
    """

    # public under skbackward.indexes: error messages and the docs name it so
    __module__ = "skbackward.indexes"

    _search_params = ()

    # ---- building (see the class docstring) ------------------------------------

    def build(self, chunks, *, n_items, dim, n_attributes, labels=None,
              training_sample=None, replaces=None):
        """Fill this unfitted index with items, chunk by chunk.

        The template of every backend's build: its hooks are called in the
        order the class docstring gives; when one fails, what the build
        wrote is taken back and the error is raised.

        Parameters
        ----------
        chunks : iterable of tuple
            ``(unit, norms, predicted, labels)`` per chunk of items, in
            order: float32 unit vectors of shape (m, dim), their float32
            norms (m,), the predicted classes (m, n_attributes) and the
            chunk's labels (or None). Read once, after ``labels`` is checked
            and the index trained.
        n_items : int
            Number of items ``chunks`` yields in all.
        dim : int
            Dimension of the vectors.
        n_attributes : int
            Number of attributes (columns of the predicted classes).
        labels : ndarray of shape (n_items,) or (n_items, n_attributes), default=None
            All the items' labels, checked before anything is written.
        training_sample : callable, default=None
            ``training_sample(n)`` -> ``(unit, predicted)`` of ``n`` items
            evenly spaced over them, called when the backend trains (e.g. an
            IVF index's quantizer).
        replaces : VectorIndex, default=None
            The fitted index this one will replace (a database backend may
            take over the collection it serves).

        Returns
        -------
        self : VectorIndex
            This index, fitted.
        """
        self._will_replace(replaces)
        self._start_build(n_items, dim, n_attributes)
        return self._filled(chunks, labels, n_items, training_sample)

    def extend(self, chunks, *, n_items, labels=None):
        """Return a new fitted index: this one's items, then ``n_items`` more.

        This index is not modified (a search running meanwhile reads it
        whole); when the new one fails half-way, what it wrote is taken
        back.

        Parameters
        ----------
        chunks : iterable of tuple
            ``(unit, norms, predicted, labels)`` per chunk of the new items,
            as in :meth:`build`.
        n_items : int
            Number of new items ``chunks`` yields in all.
        labels : ndarray of shape (n_items,) or (n_items, n_attributes), default=None
            The new items' labels: given when this index has labels, else
            None.

        Returns
        -------
        index : VectorIndex
            The new index, numbering the new items from ``n_items_`` on.
        """
        new = self._grown(n_items)
        return new._filled(chunks, labels, n_items, None)

    def _filled(self, chunks, labels, n_items, training_sample):
        """The started build, filled and ended: steps 3 to 6, or
        ``_abort_build`` when one fails."""
        try:
            self._check_labels(labels)
            n_train = 0 if training_sample is None else self._n_training_items(n_items)
            if n_train:
                self._train(*training_sample(n_train))
            for unit, norms, predicted, part in chunks:
                self._add(unit, norms, predicted, part)
            self._end_build()
        except BaseException:
            # a database index takes back what it wrote; the old one stays
            self._abort_build()
            raise
        return self


    def _n_training_items(self, n_items):
        return 0

    def _train(self, unit, predicted=None):
        """Train on float32 unit vectors (an evenly spaced sample of the
        items) and their predicted classes (n, n_attributes)."""

    @abstractmethod
    def _start_build(self, n_items, dim, n_attributes):
        """Start an empty index for ``n_items`` items."""

    @abstractmethod
    def _add(self, unit, norms, predicted, labels):
        """Add the next chunk of items."""

    def _end_build(self):
        """Called once all items are added."""

    def _will_replace(self, previous):
        """Told, before ``_start_build``, the fitted index this build will
        replace (None: none)."""

    def _check_labels(self, labels):
        """Refuse, before anything is written, labels the index cannot store."""

    def _abort_build(self):
        """Undo what a build or an append that failed half-way wrote."""

    def _grown(self, n_items):
        raise TypeError(f"{type(self).__name__} cannot grow by appending items.")

    # ---- queries ----------------------------------------------------------------

    def search(self, queries, k, *, exclude=None, prefer=None):
        """Find the ``k`` items most similar to each query (cosine similarity).

        Parameters
        ----------
        queries : ndarray of shape (n_queries, embedding_dim)
            Query vectors (normalised here).
        k : int
            Number of neighbours. A backend may cap it (``MilvusIndex``: at
            most 16383, Milvus's limit less one).
        exclude : ndarray of shape (n_queries,), default=None
            An item number to leave out of each query's results, -1 for none.
        prefer : list of ndarray of shape (n_queries, n_attributes), default=None
            Tiers of wanted classes (-1: no wish). An item's rank key is
            lexicographic: (tier-0 wishes its predicted classes meet, tier-1
            wishes met, ..., cosine similarity), so items meeting every wish
            come first and the others fill up when fewer than ``k`` do.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            The ``k`` cosine distances ``1 - cos`` of each query (float32),
            ascending within each preference level; ``inf`` where fewer than
            ``k`` items were found.
        indices : ndarray of shape (n_queries, n_neighbors)
            Item numbers (int64) in insertion order; -1 where none was found.
        """
        check_built(self)
        # parameters set_params may have changed since the build
        check_params(self, self._search_params)
        check_arguments({"k": [count(1)]}, f"{type(self).__name__}.search", k=k)
        queries = np.asarray(queries)
        if queries.ndim != 2 or queries.shape[1] != self.dim_:
            raise ValueError(
                f"queries must have shape (n_queries, {self.dim_}); got "
                f"{queries.shape}."
            )
        if queries.dtype.kind not in "biuf":
            raise ValueError(f"queries must be numbers; got dtype {queries.dtype}.")
        finite = np.isfinite(queries).all(axis=1)
        if not finite.all():
            # a NaN similarity ranks nowhere: the search would answer -1 and inf
            raise ValueError(
                f"queries must be finite; rows {np.flatnonzero(~finite)[:10].tolist()} "
                "hold NaN or inf."
            )
        n_queries = queries.shape[0]
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=np.int64)
            if exclude.shape != (n_queries,):
                raise ValueError(
                    f"exclude must have shape ({n_queries},); got {exclude.shape}."
                )
        if prefer is not None:
            prefer = check_prefer(prefer, n_queries, self._n_attributes)
        self._check_search(k)
        sims, ids = self._search(unit_float32(queries)[0], k, exclude, prefer)
        return cosine_distances(sims, ids), ids

    def embeddings(self, start=0, stop=None):
        """Return the embeddings of the items ``start:stop``.

        Parameters
        ----------
        start : int, default=0
            First item (negative: counted from the end, as in a slice).
        stop : int, default=None
            End (excluded); None for the last item.

        Returns
        -------
        Z : ndarray of shape (n_items, embedding_dim)
            The embeddings (float32) of the ``stop - start`` items: unit
            vector times norm (as an approximate index stores them).
        """
        return self._embeddings(*self._check_range("embeddings", start, stop))

    def predicted(self, start=0, stop=None):
        """Return the heads' predicted classes of the items ``start:stop``.

        Parameters
        ----------
        start : int, default=0
            First item (negative: counted from the end, as in a slice).
        stop : int, default=None
            End (excluded); None for the last item.

        Returns
        -------
        classes : ndarray of shape (n_items, n_attributes)
            Per item of ``start:stop`` and attribute, the index of the
            predicted class.
        """
        return self._predicted(*self._check_range("predicted", start, stop))

    def _check_range(self, method, start, stop):
        """``start:stop`` resolved as a slice of the items is: ``0 <= start <=
        stop <= n_items_``."""
        check_built(self)
        check_arguments({"start": [position(), None], "stop": [position(), None]},
                        f"{type(self).__name__}.{method}", start=start, stop=stop)
        start, stop, _ = slice(start, stop).indices(self.n_items_)
        return start, max(stop, start)

    def _check_search(self, k):
        """What a backend checks before a search beyond the common checks
        (settings read at search time, a cap on ``k``)."""

    @abstractmethod
    def _search(self, unit, k, exclude, prefer):
        """The search of :meth:`search`, its arguments checked: float32 unit
        queries, ``exclude`` an int64 array or None, ``prefer`` a list of
        int64 arrays or None. Returns ``(similarities, indices)``: float32
        cosine similarities, -inf where fewer than ``k`` items were found,
        and int64 item numbers, -1 there."""

    @abstractmethod
    def _embeddings(self, start, stop):
        """Float32 embeddings of the items ``start:stop`` (``0 <= start <=
        stop <= n_items_``)."""

    @abstractmethod
    def _predicted(self, start, stop):
        """Predicted classes of the items ``start:stop`` (``0 <= start <=
        stop <= n_items_``)."""


def check_built(index):
    """A NotFittedError unless ``index`` is a fitted copy holding items."""
    if not hasattr(index, "n_items_"):
        raise NotFittedError(
            f"This {type(index).__name__} holds no items yet: a retriever builds "
            "its fitted copy (the retriever's vector_index_) in fit and index."
        )
