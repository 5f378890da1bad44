"""The base shared by every retriever: validation, labels, index, queries.

A retriever embeds features with a trained network, optionally moves the query
embeddings towards a condition (the strategy: Backward Search, a distilled
student, ...), and ranks an index of embeddings by cosine similarity.
Subclasses implement ``fit`` (training, with the helpers here) and
``_condition_embeddings`` (the strategy); everything else is here.
"""

import functools
import os
import sys
import warnings
from abc import ABCMeta, abstractmethod

import numpy as np
import sklearn
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.preprocessing import normalize
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory, validate_data

from ._conditions import parse_condition
from ._dask import is_dask_collection
from ._features import FeatureIndex
from ._index import chunk_rows, unit_float32
from ._labels import (
    align_columns,
    as_columns,
    attribute_names,
    check_column_names,
    check_labels,
    encode_columns,
    label_codes,
)
from ._model import (
    check_finite_network,
    effective_threads,
    fit_network,
    predict_embedding,
    predict_labels,
    resolve_device,
    torch_threads,
)
from ._validation import (
    THREADS_CONSTRAINT,
    TRAINING_CONSTRAINTS,
    DeviceOptions,
    check_arguments,
    check_groups,
    check_params,
    count,
)
from .exceptions import ConditionNotReachedWarning
from .indexes import ExactIndex, VectorIndex

FLOAT_DTYPES = (np.float64, np.float32)
FLOAT32_MAX = float(np.finfo(np.float32).max)

# transform / kneighbors warn when at least this share of the conditioned
# queries of a call did not reach their condition
UNREACHED_WARNING_SHARE = 0.1
# frames a warning skips to reach the user's line: this package's, scikit-learn's
_LIBRARY_DIRS = tuple(
    os.path.dirname(module.__file__) + os.sep for module in (sys.modules[__package__],
                                                             sklearn)
)
# the ``preserve`` parameter: "none", "predicted" or a list of attribute names
PRESERVE_CONSTRAINT = [StrOptions({"none", "predicted"}), list, tuple]


def warn_caller(message, category):
    """``warnings.warn`` pointing at the caller's line, past this package's
    frames and scikit-learn's (set_output wraps transform; scorers call
    kneighbors; GridSearchCV calls fit)."""
    frame, stacklevel = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(
        _LIBRARY_DIRS
    ):
        frame, stacklevel = frame.f_back, stacklevel + 1
    warnings.warn(message, category, stacklevel=stacklevel)


def blend_directions(Z, Z0, weight):
    """``(1 - weight) * Z/|Z| + weight * Z0/|Z0|`` row by row (``Z`` itself
    when ``weight`` is 0): a query direction between the moved embedding and
    the query's own."""
    if weight == 0:
        return Z
    return (1 - weight) * normalize(Z) + weight * normalize(Z0)


def with_threads(method):
    """Run a retriever's method with the estimator's ``n_threads`` torch
    threads, restoring the caller's setting afterwards (:func:`torch_threads`)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        check_params(self, ("n_threads",))
        with torch_threads(effective_threads(self.n_threads)):
            return method(self, *args, **kwargs)

    return wrapper


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

    _parameter_constraints: dict = {
        "n_neighbors": [count(1)],
        "device": [DeviceOptions()],
        "n_threads": THREADS_CONSTRAINT,
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "vector_index": [VectorIndex, None],
    }

    # The parameters the query methods (transform, kneighbors, index) read:
    # checked there, as set_params may change them after fit.
    _query_params = ("n_neighbors", "device", "n_threads", "vector_index")

    # ---- to implement -------------------------------------------------------

    @abstractmethod
    def _condition_embeddings(self, Z, targets, weights, keep):
        """Move query embeddings ``Z`` towards the parsed condition.

        Called only with queries that have a condition. ``keep`` (n, A) holds
        the query's own predicted class of each attribute to preserve (-1
        elsewhere), or is None. Returns the moved embeddings and the gradient
        steps each took (zeros for strategies that do not search).
        """

    # The ``preserve`` setting that applies: the parameter for the strategies
    # that have one, "none" for the others.
    def _preserve_setting(self):
        return getattr(self, "preserve", "none")

    # How much a conditioned query's ranking looks at the input features
    # (``feature_weight``): 0 for the strategies without the option.
    def _feature_weight(self):
        return getattr(self, "feature_weight", 0.0)

    def _ranking_embeddings(self, Z, Z0):
        """The query vectors the index ranks by: the moved ``Z`` (``Z0``: the
        queries' own embeddings, for strategies that blend the two)."""
        return Z

    # Whether the strategy moves the query until the heads predict the
    # condition (a search, or a student of one): those warn when a notable
    # share of a batch did not get there (:meth:`condition_report`).
    _aims_at_condition = False

    # ---- fitting helpers ------------------------------------------------------

    def _validate_fit_data(self, X, y):
        """Validated ``X`` (features seen in fit are recorded) and labels ``y``.

        Returns ``X, Y, columns``: ``Y`` the 1-D or 2-D label array and
        ``columns`` a DataFrame's column names (None otherwise).
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        resolve_device(self.device)  # CUDA asked for but absent: say so first
        columns = getattr(y, "columns", None)
        if columns is not None:
            columns = check_column_names(columns)
        X = self._validate_X(X, reset=True, ensure_min_samples=2)
        return X, check_labels(y, n_samples=X.shape[0], attributes=columns), columns

    def _validate_X(self, X, **kwargs):
        """``validate_data`` for ``X``; an error that does not name X says so.

        ``order="C"`` copies arrays with negative strides (``X[::-1]``),
        which torch cannot read.
        """
        kwargs.setdefault("reset", False)
        try:
            return validate_data(self, X, dtype=FLOAT_DTYPES, order="C", **kwargs)
        except ValueError as exc:
            if "X" in str(exc).split(" ") or "Input X" in str(exc):
                raise
            raise ValueError(f"Invalid X: {exc}") from None

    def _set_labels(self, attributes, classes, ndim):
        self.attributes_ = list(attributes)
        self.classes_ = classes[0] if ndim == 1 else classes
        self.attribute_classes_ = list(classes)  # a list, one array per attribute

    def _validate_query_params(self, names=None):
        check_params(self, self._query_params if names is None else names)

    @property
    def _n_features_out(self):
        return self.model_.embed.embedding_dim

    # ---- the index ------------------------------------------------------------

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
        X = self._validate_X(X)
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
        if grow is not None:  # the index checked by the caller, not a newer one
            new = grow._grown(n)
        else:
            param = self.vector_index
            new = clone(ExactIndex() if param is None else param)
            new._will_replace(self.__dict__.get("vector_index_"))
            new._start_build(n, self.model_.embed.embedding_dim,
                             len(self.attribute_classes_))
        features = self._new_feature_index(X, grow)
        try:
            new._check_labels(y)
            if grow is None:
                self._train_index(new, X)
            for start, unit, norms, predicted in self._index_chunks(X):
                labels = None if y is None else y[start:start + unit.shape[0]]
                new._add(unit, norms, predicted, labels)
                if features is not None:
                    features.add(unit, X[start:start + unit.shape[0]], predicted)
            new._end_build()
            if features is not None:
                features.end_build()
        except BaseException:
            # a database index takes back what it wrote; the old one stays
            new._abort_build()
            raise
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
            return FeatureIndex(X.shape[0], dim, X.shape[1],
                                len(self.attribute_classes_))
        old = self.__dict__.get("feature_index_")
        if old is None or old.n_items != grow.n_items_:
            raise ValueError(
                "feature_weight > 0, but the index was built without the items' "
                "features (feature_weight was 0): index all the items again "
                "with index(X) instead of appending."
            )
        return old.grown(X.shape[0])

    def _feature_index(self, index):
        """The fitted :class:`FeatureIndex` that matches ``index``."""
        features = self.__dict__.get("feature_index_")
        if features is None or features.n_items != index.n_items_:
            raise ValueError(
                f"feature_weight={self._feature_weight()} ranks by the items' "
                "input features, which this index does not hold (feature_weight "
                "was 0 when it was built): set feature_weight before fit or "
                "index()."
            )
        return features

    def _train_index(self, new, X):
        """Train a new index on its share of the items' unit embeddings."""
        n = X.shape[0]
        n_train = new._n_training_items(n)
        if n_train:
            rows = np.linspace(0, n - 1, n_train).round().astype(np.int64)
            rows = np.unique(rows)
            # the sample's rows read chunk by chunk, as for the items
            step = self._chunk_rows(X)
            units, predicted = [], []
            for s in range(0, len(rows), step):
                Z = self._embed(X[rows[s:s + step]])
                units.append(unit_float32(Z)[0])
                predicted.append(predict_labels(self.model_, Z, self.device))
            new._train(np.concatenate(units), np.concatenate(predicted))

    def _chunk_rows(self, X):
        # a chunk's features, embedding and hidden layers, in X's dtype; larger
        # chunks than INDEX_CHUNK_MIB gain no speed
        dim = self.model_.embed.embedding_dim
        row_bytes = X.dtype.itemsize * (X.shape[1] + 4 * dim)
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

    def encode_labels(self, y):
        """Class indices of labels, one column per attribute.

        The inverse is ``attribute_classes_[a][codes[:, a]]``: the metrics use
        this pair to draw conditions from labelled queries.

        Parameters
        ----------
        y : array-like of shape (n_samples,) or (n_samples, n_attributes)
            Labels in the layout of the ``y`` given to :meth:`fit` (a
            DataFrame's columns are matched to the attributes by name).

        Returns
        -------
        codes : ndarray of shape (n_samples, n_attributes), dtype int64
            Index of each label in ``attribute_classes_[a]``; -1 for a label
            not seen in :meth:`fit` (it equals no fitted class). Labels of
            another kind than the fitted ones (strings for numbers, or the
            reverse), or missing ones, raise a ValueError.

        Examples
        --------
        >>> import numpy as np
        >>> from skbackward import NearestNeighborRetriever
        >>> X = np.random.RandomState(0).normal(size=(20, 4))
        >>> y = np.repeat(["cat", "dog"], 10)
        >>> ret = NearestNeighborRetriever(epochs=1, random_state=0).fit(X, y)
        >>> ret.encode_labels(["dog", "cat", "owl"]).ravel().tolist()
        [1, 0, -1]
        """
        check_is_fitted(self)
        return self._label_codes(y, allow_unknown=True)[1]

    def _label_codes(self, y, n_samples=None, allow_unknown=False, who="retriever"):
        """``(y, codes)``: labels checked against the fitted attributes (a
        DataFrame's columns matched by name), and their class indices."""
        y = check_labels(align_columns(y, self.attributes_),
                         attributes=self.attributes_)
        n_attr, n_fit = 1 if y.ndim == 1 else y.shape[1], len(self.attributes_)
        wrong_rows = n_samples is not None and y.shape[0] != n_samples
        if n_attr != n_fit or wrong_rows:
            n = "n_samples" if n_samples is None else n_samples
            raise ValueError(
                f"y must have shape ({n},) or ({n}, {n_fit}); got {y.shape} (y has "
                f"{n_attr} attribute(s); the {who} was fitted on {n_fit}: "
                f"{self.attributes_})."
            )
        return y, label_codes(y, self.attribute_classes_, self.attributes_,
                              allow_unknown=allow_unknown)

    # ---- queries --------------------------------------------------------------

    def _embed(self, X):
        Z = predict_embedding(self.model_.embed, X, self.device)
        if not np.isfinite(Z).all():
            raise ValueError(
                f"X has values too large for the model (max |X| = "
                f"{np.abs(X).max():.3g}): its embedding overflowed in {X.dtype}. "
                "Scale X as in fit."
            )
        return Z

    def _conditioned(self, Z, condition, condition_weight):
        """Query embeddings ``Z`` moved towards the condition: ``(Z_moved,
        targets, n_steps)``; ``targets`` is None without a condition.

        Only the queries with a condition go to the strategy; the others keep
        their embedding and take no step.
        """
        if condition is None:
            return Z, None, np.zeros(Z.shape[0], dtype=np.int64)
        targets, weights = self._parse_condition(
            condition, Z.shape[0], condition_weight
        )
        out, n_steps, _ = self._move(Z, targets, weights)
        return out, targets, n_steps

    def _parse_condition(self, condition, n_queries, condition_weight):
        return parse_condition(
            condition, self.attributes_, self.attribute_classes_, n_queries,
            condition_weight,
        )

    def _move(self, Z, targets, weights):
        """``(Z_moved, n_steps, keep)`` for parsed targets and weights;
        ``keep`` as in :meth:`_kept_classes`."""
        n_steps = np.zeros(Z.shape[0], dtype=np.int64)
        keep = self._kept_classes(Z, targets)
        out = Z.copy()
        rows = np.flatnonzero((targets >= 0).any(axis=1))
        if rows.size:
            out[rows], n_steps[rows] = self._condition_embeddings(
                Z[rows], targets[rows], weights[rows],
                None if keep is None else keep[rows],
            )
        return out, n_steps, keep

    def _preserved_attributes(self):
        """Indices of the attributes that ``preserve`` keeps when a query does
        not ask for them."""
        preserve = self._preserve_setting()
        if isinstance(preserve, str):
            return list(range(len(self.attributes_))) if preserve == "predicted" else []
        unknown = [a for a in preserve if a not in self.attributes_]
        if unknown:
            raise ValueError(
                f"preserve names attribute(s) {unknown} the model was not fitted "
                f"on; known attributes: {self.attributes_}."
            )
        return [self.attributes_.index(a) for a in preserve]

    def _kept_classes(self, Z0, targets):
        """(n, A): the query's own predicted class of every preserved
        attribute it does not condition on, -1 elsewhere; None when nothing
        is preserved. Queries without any condition keep nothing."""
        kept = self._preserved_attributes()
        if not kept:
            return None
        predicted = predict_labels(self.model_, Z0, self.device)
        keep = np.full(targets.shape, -1, dtype=np.int64)
        asked = (targets >= 0).any(axis=1, keepdims=True)
        keep[:, kept] = np.where(asked & (targets[:, kept] < 0), predicted[:, kept], -1)
        return keep

    def _reached(self, Z, targets):
        """Whether the heads predict every wanted class at ``Z``: (n,) bool."""
        predicted = predict_labels(self.model_, Z, self.device)
        return ((targets < 0) | (predicted == targets)).all(axis=1)

    def _queries(self, Z, condition, condition_weight):
        """:meth:`_conditioned` for transform, which warns when a notable
        share of the conditioned queries did not reach their condition."""
        out, targets, _ = self._conditioned(Z, condition, condition_weight)
        if targets is not None:
            self._warn_unreached(*self._unreached(out, targets))
        return out, targets

    def _unreached(self, Z, targets):
        """``(asked, missed)``: conditioned queries, and those whose condition
        the heads do not predict at ``Z`` (0, 0 for strategies that do not
        aim at the condition)."""
        if not self._aims_at_condition:
            return 0, 0
        asked = (targets >= 0).any(axis=1)
        return int(asked.sum()), int((asked & ~self._reached(Z, targets)).sum())

    def _warn_unreached(self, asked, missed):
        if missed and missed >= UNREACHED_WARNING_SHARE * asked:
            warn_caller(
                f"{missed} of {asked} conditioned queries did not reach "
                "their condition: at the searched embedding the classifier heads "
                "still predict another class. A smaller alpha moves queries "
                "further; condition_report(X, condition=...) shows, per query, the "
                "steps taken, whether the condition was reached and how far the "
                "embedding moved.",
                ConditionNotReachedWarning,
            )

    @with_threads
    def condition_report(self, X, *, condition, condition_weight=None):
        """Per query: where the condition took its embedding, and whether it got there.

        A search that does not reach its condition is not an error: a large
        ``alpha`` keeps a query near its own embedding on purpose, and a query
        far from the wanted class may need more steps than ``max_steps``. This
        report shows, per query, what happened, so that such queries can be
        found (``transform`` and ``kneighbors`` warn with a
        :class:`~skbackward.exceptions.ConditionNotReachedWarning` when a
        notable share of a batch did not reach its condition).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries.
        condition : scalar, array-like of shape (n_queries,) or dict
            As in :meth:`transform`.
        condition_weight : float or dict, default=None
            As in :meth:`transform`.

        Returns
        -------
        report : :class:`~sklearn.utils.Bunch`
            With the arrays

            - ``embedding`` (n_queries, embedding_dim): the conditioned
              embedding (what ``transform(X, condition=...)`` returns);
            - ``n_steps`` (n_queries,) int: gradient steps from the query's
              own embedding to ``embedding`` (0 for a query without a
              condition, and for strategies that do not search);
            - ``reached`` (n_queries,) bool: whether the classifier heads
              predict every wanted class at ``embedding`` (True without a
              condition);
            - ``distance`` (n_queries,) float: how far the embedding moved,
              ``mean_d |embedding - z0|`` (the quantity ``alpha`` weighs).
        """
        check_is_fitted(self)
        self._validate_query_params()
        X = self._validate_X(X)
        Z0 = self._embed(X)
        Z, targets, n_steps = self._conditioned(Z0, condition, condition_weight)
        return Bunch(
            embedding=Z,
            n_steps=n_steps,
            reached=self._reached(Z, targets),
            distance=np.abs(Z - Z0).mean(axis=1),
        )

    # Whether kneighbors ranks the items the heads predict to carry the
    # condition before the others (the label filter and its relatives).
    _prefers_predicted = False

    @with_threads
    def transform(self, X, *, condition=None, condition_weight=None):
        """Embed queries; with a condition, the embeddings moved towards it.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries, in the feature space the model was fitted on. A dask
            array is transformed lazily, block by block (on the workers of
            a distributed scheduler), and gives a dask array; per-query
            conditions may then be numpy or dask arrays.
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
        Z : ndarray of shape (n_queries, embedding_dim)
            In the dtype of ``X`` (float32 or float64); a dask array when
            ``X`` is one.
        """
        check_is_fitted(self)
        self._validate_query_params()
        if is_dask_collection(X):
            from . import _dask

            return _dask.transform(self, X, condition, condition_weight)
        X = self._validate_X(X)
        return self._queries(self._embed(X), condition, condition_weight)[0]

    @with_threads
    def kneighbors(
        self, X=None, n_neighbors=None, return_distance=True, *, condition=None,
        condition_weight=None, exclude=None,
    ):
        """Find the indexed items nearest to each (conditioned) query.

        Queries are embedded, moved and searched in batches of bounded size,
        ``X=None`` included.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features), default=None
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
        condition : scalar, array-like of shape (n_queries,) or dict, default=None
            The wanted label(s), as in :meth:`transform`; ``None`` is plain
            nearest-neighbour search in the embedding space.
        condition_weight : float or dict, default=None
            Relative weight of each attribute's condition, as in
            :meth:`transform`.
        exclude : array-like of shape (n_queries,), default=None
            An indexed item to leave out of each query's results, e.g. the
            query's own row when the queries are indexed items; -1 for none.
            Not with ``X=None``, which already excludes each item itself.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Cosine distances (1 - cosine similarity), float32, ascending (for a
            strategy that ranks predicted matches first, ascending within the
            matches and within the rest). Only when ``return_distance=True``.
        indices : ndarray of shape (n_queries, n_neighbors)
            Row indices of the neighbours in the indexed items. Both are dask
            arrays when ``X`` is one.
        """
        index = self._fitted_index()  # one read: a concurrent index() swaps it
        self._validate_query_params()
        check_arguments(
            {"n_neighbors": [count(1), None], "return_distance": ["boolean"]},
            f"{type(self).__name__}.kneighbors",
            n_neighbors=n_neighbors, return_distance=return_distance,
        )
        k = self.n_neighbors if n_neighbors is None else n_neighbors
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
            X = self._validate_X(X)
            n_q = X.shape[0]
            exclude = self._check_exclude(exclude, n_q, n_db)
        self._check_n_neighbors(k, n_db, n_q, exclude, x_is_none=X is None)
        targets = weights = None
        if condition is not None:
            targets, weights = self._parse_condition(condition, n_q, condition_weight)
        w_features = self._feature_weight() if targets is not None else 0.0
        features = self._feature_index(index) if w_features else None
        dist = np.empty((n_q, k), dtype=np.float32)
        ind = np.empty((n_q, k), dtype=np.int64)
        asked = missed = 0
        for s in range(0, n_q, QUERY_BATCH):
            e = min(s + QUERY_BATCH, n_q)
            # the items' stored embeddings are float32; a search from them
            # runs in float64, where a row's result does not depend on its batch
            Z = (index.embeddings(s, e).astype(np.float64) if X is None
                 else self._embed(X[s:e]))
            prefer = None
            searched = index
            if targets is not None:
                Z0, (Z, _, keep) = Z, self._move(Z, targets[s:e], weights[s:e])
                a, m = self._unreached(Z, targets[s:e])
                asked, missed = asked + a, missed + m
                Z = self._ranking_embeddings(Z, Z0)
                if self._prefers_predicted:
                    # the asked condition first, then the preserved classes
                    prefer = [targets[s:e]] + ([] if keep is None else [keep])
                if w_features:
                    Xq = (features.embeddings(s, e)[:, Z.shape[1]:] if X is None
                          else X[s:e])
                    Z, searched = features.blended_queries(Z, Xq, w_features), features
            ex = None if exclude is None else exclude[s:e]
            dist[s:e], ind[s:e] = searched.search(Z, k, exclude=ex, prefer=prefer)
            if searched is not index:
                dist[s:e] = features.blended_distances(dist[s:e], Z)
        self._warn_unreached(asked, missed)
        return (dist, ind) if return_distance else ind

    @staticmethod
    def _check_n_neighbors(k, n_db, n_q, exclude, x_is_none=False):
        """Checked before paying for a search: ``k`` items must be left once
        each query's excluded item is left out."""
        left = n_db - (exclude is not None and bool((exclude >= 0).any()))
        if k > left:
            raise ValueError(
                f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {k}, "
                f"n_samples_fit = {n_db}, n_samples = {n_q}"
                + ("" if left == n_db else
                   f" ({left} items are left after excluding one per query"
                   + ("; X=None excludes each item itself)" if x_is_none else ")"))
            )

    def _check_exclude(self, exclude, n_queries, n_items):
        if exclude is None:
            return None
        try:
            exclude = np.asarray(exclude)
        except ValueError:  # ragged
            exclude = np.empty(0, dtype=object)
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
    ``learning_rate``, ``weight_decay``, ``lr_decay``, ``memory``, ``device``,
    ``n_threads``, ``random_state`` and ``verbose`` parameters and share this
    training.

    Warning: This class should not be used directly. Use derived classes instead.
    """

    _parameter_constraints: dict = {
        **BaseRetriever._parameter_constraints,
        **TRAINING_CONSTRAINTS,
        "embedding_dim": [count(1)],
        "memory": [None, str, HasMethods(["cache"])],
    }

    @_fit_context(prefer_skip_nested_validation=True)
    @with_threads
    def fit(self, X, y, groups=None):
        """Fit the embedding and classifier heads, then index ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Precomputed features (embeddings from any backbone).
        y : array-like of shape (n_samples,) or (n_samples, n_attributes)
            Labels: 1-D for one attribute, or 2-D / a DataFrame with one column
            per attribute (the DataFrame's column names become the attribute
            names, otherwise attributes are named 0, 1, ...). The labels of an
            attribute are all strings or all numbers, none missing.
        groups : array-like of shape (n_samples,), default=None
            Which training items are the same item in other forms, kept as
            ``index_groups_`` for hit@k (see :meth:`index`); not used in
            training. In ``GridSearchCV``, route it here with
            ``set_fit_request(groups=True)`` (scikit-learn's metadata
            routing).

        Returns
        -------
        self : object
            The fitted retriever.
        """
        return self._fit(X, y, groups=groups)

    def _fit(self, X, y, build_index=True, groups=None):
        """:meth:`fit`, the parameters already validated; without the index
        when ``build_index`` is False (a student builds the one it shares
        with its teacher)."""
        X, y, columns = self._validate_fit_data(X, y)
        groups = check_groups(groups, X.shape[0])
        # max and min, not abs: no copy of a large (memory-mapped) X
        largest = max(X.max(), -X.min()) if X.dtype == np.float64 else 0.0
        if largest > FLOAT32_MAX:
            raise ValueError(
                f"X has values beyond float32's range (max |X| = {largest:.3g}); "
                "the network trains in float32. Scale X (e.g. with StandardScaler)."
            )
        names = attribute_names(y, columns)
        classes, codes = encode_columns(as_columns(y), names, type(self).__name__)
        self._set_labels(names, classes, y.ndim)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        network, self.loss_curve_ = self._training()(
            X, codes, classes, embedding_dim=self.embedding_dim,
            epochs=self.epochs, batch_size=self.batch_size,
            learning_rate=self.learning_rate, weight_decay=self.weight_decay,
            lr_decay=self.lr_decay, seed=seed,
            device=str(resolve_device(self.device)),
            n_threads=effective_threads(self.n_threads), verbose=self.verbose,
        )
        check_finite_network(network, X)
        self.model_ = network
        self.n_iter_ = self.epochs
        if build_index:
            self._set_index(X, y, groups=groups)
        self._fit_extra(X, codes)
        return self

    def _training(self):
        """:func:`fit_network`, cached in ``memory`` when there is one.

        The seed is drawn before the call and is part of the key: with an
        int (or a RandomState, cloned as in GridSearchCV) ``random_state``
        equal fits share one entry. ``random_state=None`` draws a new seed
        at every fit, so an entry would never be read again: the cache is
        not used, with a warning.
        """
        if self.memory is None:
            return fit_network
        if self.random_state is None:
            warn_caller(
                f"{type(self).__name__}(memory=...) caches nothing with "
                "random_state=None: every fit draws a new seed, so no two fits "
                "train the same network. Pass an int random_state to reuse "
                "trained networks.",
                UserWarning,
            )
            return fit_network
        return check_memory(self.memory).cache(fit_network, ignore=["verbose"])

    def _fit_extra(self, X, codes):
        """What a strategy learns beyond the network from the training
        features ``X`` and their label ``codes``, after fit indexed X."""
