"""Peer strategies in the same API: what a user would try before a search.

All three train the same embedding and heads as
:class:`~skbackward.BackwardSearchRetriever` (same parameters, same
``random_state`` -> the same network) and differ only in how a condition is
answered.
"""

import numpy as np

from .._network._model import predict_labels
from .._utils._docstrings import (
    INDEX_PARAMETERS,
    N_THREADS_PARAMETER,
    TRAINING_PARAMETERS,
    VERBOSE_PARAMETER,
    fill_doc,
    random_state_parameter,
)
from .._utils._validation import PRESERVE_CONSTRAINT
from ._base import TrainedRetriever

_TRAINING_PARAMETERS = (
    "Parameters\n----------\n" + TRAINING_PARAMETERS + INDEX_PARAMETERS
) + """
device : str, default="cpu"
    Torch device for training ("cpu", "cuda", "auto"); fitted modules are
    kept on the CPU.
""" + N_THREADS_PARAMETER + random_state_parameter(
    "Seeds initialisation, shuffling and dropout.") + VERBOSE_PARAMETER

_FITTED_ATTRIBUTES = """
    Attributes
    ----------
    model_ : torch.nn.Module
        The trained network (``model_.embed``, ``model_.heads``), on CPU.
    attributes_ : list
        Attribute names.
    classes_ : ndarray or list of ndarray
        Labels of each attribute (a list when ``y`` was 2-D).
    attribute_classes_ : list of ndarray
        Labels of each attribute, always a list (one array per attribute).
    loss_curve_ : list of float
        Mean training loss of each epoch.
    n_iter_ : int
        Number of training epochs run.
    vector_index_ : VectorIndex
        The fitted index of the searched items (a copy of ``vector_index``).
    index_labels_ : ndarray or None
        Labels of the indexed items.
    index_groups_ : ndarray or None
        Groups of the indexed items (``groups`` of ``fit`` or ``index``), for
        hit@k; None when not given.
    n_index_samples_ : int
        Number of indexed items.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""

_peer_doc = fill_doc(
    training_parameters=_TRAINING_PARAMETERS, fitted_attributes=_FITTED_ATTRIBUTES
)


class _PeerRetriever(TrainedRetriever):
    """Shared constructor of the peers (training parameters only); by default
    a peer does not move the query."""

    def __init__(
        self,
        *,
        embedding_dim=256,
        epochs=30,
        batch_size=64,
        learning_rate=0.01,
        weight_decay=1e-6,
        lr_decay=0.1,
        memory=None,
        n_neighbors=10,
        vector_index=None,
        device="cpu",
        n_threads=None,
        random_state=None,
        verbose=0,
    ):
        self.embedding_dim = embedding_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_decay = lr_decay
        self.memory = memory
        self.n_neighbors = n_neighbors
        self.vector_index = vector_index
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def _condition_embeddings(self, Z, targets, weights, keep):
        return Z.copy(), np.zeros(Z.shape[0], dtype=np.int64)


@_peer_doc
class NearestNeighborRetriever(_PeerRetriever):
    """Plain nearest neighbours in the learned embedding; ignores conditions.

    The baseline: what the database holds nearest to the query, whatever its
    label. ``condition`` is accepted (and validated) but does not change the
    results. Right when the condition does not matter, and as the reference
    for how much context the other strategies keep.

    {training_parameters}

    {fitted_attributes}

    See Also
    --------
    LabelFilterRetriever : Keeps the items predicted to carry the condition.
    CentroidShiftRetriever : Moves the query by a difference of class centroids.
    BackwardSearchRetriever : Moves the query by gradient descent on the heads.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbackward import NearestNeighborRetriever
    >>> X, y = load_digits(return_X_y=True)
    >>> ret = NearestNeighborRetriever(epochs=3, random_state=0).fit(X, y)
    >>> ret.kneighbors(X[:2], n_neighbors=3, return_distance=False).shape
    (2, 3)
    """


@_peer_doc
class LabelFilterRetriever(_PeerRetriever):
    """Filter the database by the heads' predicted labels, rank by similarity.

    A conditional query returns the indexed items whose *predicted* labels
    (from the classifier heads) match every condition, nearest to the original
    query first; when fewer than ``n_neighbors`` items are predicted to match,
    the items matching most of the conditions fill up the rest. The query's
    embedding is not moved (:meth:`transform` with a condition returns it as
    is). Right when reaching the condition matters most and the heads are
    accurate on the database: its precision is the heads' precision; it keeps
    the query's context only as far as plain similarity does.

    {training_parameters}
    preserve : {"none", "predicted"} or list of attributes, default="none"
        Keep the attributes a query does not ask about: among the items
        predicted to carry the condition, those also predicted to carry the
        query's own class of every preserved attribute come first ("predicted":
        every attribute left out of the condition; a list names them). A
        preference below the condition, not a filter. As in
        :class:`BackwardSearchRetriever`, for a fair comparison.

    {fitted_attributes}

    See Also
    --------
    BackwardSearchRetriever : ``predicted_first=True`` searches, then ranks the
        same candidates by the searched embedding.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbackward import LabelFilterRetriever
    >>> X, y = load_digits(return_X_y=True)
    >>> ret = LabelFilterRetriever(epochs=3, random_state=0).fit(X, y)
    >>> ret.kneighbors(X[:2], n_neighbors=3, condition=8)[1].shape
    (2, 3)
    """

    def __init__(
        self,
        *,
        embedding_dim=256,
        epochs=30,
        batch_size=64,
        learning_rate=0.01,
        weight_decay=1e-6,
        lr_decay=0.1,
        memory=None,
        n_neighbors=10,
        vector_index=None,
        device="cpu",
        n_threads=None,
        random_state=None,
        verbose=0,
        preserve="none",
    ):
        super().__init__(
            embedding_dim=embedding_dim, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, weight_decay=weight_decay,
            lr_decay=lr_decay, memory=memory, n_neighbors=n_neighbors,
            vector_index=vector_index, device=device, n_threads=n_threads,
            random_state=random_state, verbose=verbose,
        )
        self.preserve = preserve

    _parameter_constraints: dict = {
        **_PeerRetriever._parameter_constraints,
        "preserve": PRESERVE_CONSTRAINT,
    }
    _query_params = _PeerRetriever._query_params + ("preserve",)
    _prefers_predicted = True


@_peer_doc
class CentroidShiftRetriever(_PeerRetriever):
    """Shift the query by the difference of class centroids, then search.

    For every conditioned attribute ``a`` the query embedding moves by
    ``centroid_a(c) - centroid_a(predicted class of the query)``, the
    centroids being the mean training embeddings of each class: "this item,
    minus what makes it a photo, plus what makes things sketches". Cheap (one
    addition per query) and often strong when classes form compact, similarly
    shaped clusters; it cannot adapt the move to the individual query.

    {training_parameters}

    {fitted_attributes}
    centroids_ : list of ndarray
        Per attribute, the (n_classes, embedding_dim) mean training embeddings.

    See Also
    --------
    BackwardSearchRetriever : Moves each query by its own gradient search.
    LabelFilterRetriever : Keeps the items predicted to carry the condition.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbackward import CentroidShiftRetriever
    >>> X, y = load_digits(return_X_y=True)
    >>> ret = CentroidShiftRetriever(epochs=3, random_state=0).fit(X, y)
    >>> ret.kneighbors(X[:2], n_neighbors=3, condition=8)[1].shape
    (2, 3)
    """

    def _fit_extra(self, X, codes):
        # embedded again rather than read back from the index: a compressed
        # (PQ) or remote index gives the vectors back approximately
        dim = self.model_.embed.embedding_dim
        sums = [np.zeros((len(cls), dim)) for cls in self.attribute_classes_]
        step = self._chunk_rows(X)
        for start in range(0, X.shape[0], step):
            Z = self._embed(X[start:start + step]).astype(np.float64)
            for a, total in enumerate(sums):
                np.add.at(total, codes[start:start + step, a], Z)
        self.centroids_ = [
            total / np.bincount(codes[:, a], minlength=len(total))[:, None]
            for a, total in enumerate(sums)
        ]

    def _condition_embeddings(self, Z, targets, weights, keep):
        # the preserved attributes need no move: a query already has its own
        predicted = predict_labels(self.model_, Z, self.device)
        out = Z.copy()
        for a, centroids in enumerate(self.centroids_):
            on = targets[:, a] >= 0
            C = centroids.astype(Z.dtype, copy=False)
            out[on] += C[targets[on, a]] - C[predicted[on, a]]
        return out, np.zeros(Z.shape[0], dtype=np.int64)
