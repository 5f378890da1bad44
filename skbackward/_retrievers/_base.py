"""The base shared by every retriever: parameters, labels, and the parts.

A retriever embeds features with a trained network, optionally moves the query
embeddings towards a condition (the strategy: Backward Search, a distilled
student, ...), and ranks an index of embeddings by cosine similarity. As
scikit-learn's ``NeighborsBase`` and ``KNeighborsMixin`` split parameters and
queries, :class:`BaseRetriever` is assembled from one mixin per concern:

- :class:`~skbackward._retrievers._indexing.IndexingMixin`
  (``_indexing.py``): ``index()``, the fitted index and its life-cycle;
- :class:`~skbackward._retrievers._querying.QueryMixin` (``_querying.py``):
  ``transform``, ``kneighbors``, ``condition_report``;
- :class:`~skbackward._retrievers._conditioning.ConditioningMixin`
  (``_conditioning.py``): the strategy's hooks and the one conditioning path
  the queries share.

Subclasses implement ``fit`` (training: :mod:`._training`) and
``_condition_embeddings`` (the strategy).
"""

from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    _fit_context,
)
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from .._network._model import embed
from .._utils._labels import fitted_label_codes
from .._utils._threads import with_threads
from .._utils._validation import (
    THREADS_CONSTRAINT,
    TRAINING_CONSTRAINTS,
    DeviceOptions,
    check_params,
    count,
)
from ..indexes import VectorIndex
from ._conditioning import ConditioningMixin
from ._indexing import IndexingMixin
from ._querying import QueryMixin
from ._training import train_retriever


class BaseRetriever(
    IndexingMixin, QueryMixin, ConditioningMixin, ClassNamePrefixFeaturesOutMixin,
    BaseEstimator,
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

    def _validate_query_params(self, names=None):
        check_params(self, self._query_params if names is None else names)

    @property
    def _n_features_out(self):
        return self.model_.embed.embedding_dim

    def _embed(self, X):
        return embed(self.model_, X, self.device)

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
        return fitted_label_codes(y, self.attributes_, self.attribute_classes_,
                                  n_samples=n_samples, allow_unknown=allow_unknown,
                                  who=who)

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
        X, y, codes, groups = train_retriever(self, X, y, groups)
        self._set_index(X, y, groups=groups)
        self._fit_extra(X, codes)
        return self

    def _fit_extra(self, X, codes):
        """What a strategy learns beyond the network from the training
        features ``X`` and their label ``codes``, after fit indexed X."""
