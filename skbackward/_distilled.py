"""DistilledRetriever: a student network answers conditional queries in one pass."""

import copy
import numbers

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, check_scalar

from ._backward import BackwardSearchRetriever
from ._base import BaseRetriever
from ._model import (
    as_tensor,
    frozen,
    padded_forward,
    resolve_device,
    seeded,
    torch_dtype,
    train_network,
)
from ._search import search_embeddings
from ._student import StudentNetwork, amortized_loss, distill_loss, draw_conditions

_OBJECTIVES = ("distill", "amortized")


class DistilledRetriever(BaseRetriever):
    """Conditional retrieval by a student network distilled from Backward Search.

    A meta-estimator in the manner of scikit-learn's ``SelectFromModel``: it
    fits its ``teacher`` (a :class:`BackwardSearchRetriever`), unless told the
    teacher is prefit, then trains a small student MLP that maps a query
    embedding and the one-hot conditions straight to the searched embedding.
    A conditional query then costs one forward pass instead of up to
    ``max_iter`` gradient steps (Lee & Kim, PLoS ONE 2024).
    The embedding is the teacher's, and so is the ranking option
    ``teacher.filter_predicted``; the index is built by this retriever's
    ``vector_index`` and shared with ``teacher_``. The student is tied to the
    teacher's ``alpha`` at fit time, and answers without a search loss, so
    ``condition_weight`` does not change its output.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    teacher : BackwardSearchRetriever, default=None
        The retriever to distil; ``None`` means ``BackwardSearchRetriever()``.
        Its parameters tune as ``teacher__alpha`` etc.
    prefit : bool, default=False
        Whether ``teacher`` is already fitted: then it is used as is (a copy)
        and only the student is trained. As with ``SelectFromModel``, a clone
        (as in ``GridSearchCV``) holds an unfitted teacher: leave ``prefit``
        False there.
    objective : {"distill", "amortized"}, default="distill"
        "distill" (the paper): the student regresses, by MSE, the teacher's
        searched ``z*`` for random conditions. The targets are computed once,
        ``targets_per_sample`` random conditions per training item, by one
        batched search, and reused every epoch (the paper searches fresh
        conditions each epoch, which costs a full search per epoch).
        "amortized": no targets; the student minimises the Backward Search
        loss ``mean CE(head(s), c) + alpha * mean|s - z0|`` itself, with the
        teacher's frozen heads and ``teacher.alpha``, on fresh random
        conditions in every batch.
    targets_per_sample : int, default=2
        Random conditions (and teacher searches) per training item for
        ``objective="distill"``.
    l1_weight : float, default=0.0
        Weight of an extra L1 pull of the student's output to ``z0`` in the
        "distill" objective (0 in the paper).
    hidden_dim : int, default=128
        Width of the student's two hidden layers.
    epochs : int, default=50
        Training epochs of the student.
    batch_size : int, default=256
        Minibatch size of the student's training.
    learning_rate : float, default=1e-3
        Adam's initial learning rate (halved every third of the epochs).
    weight_decay : float, default=0.0
        Adam's weight decay.
    n_neighbors : int, default=10
        Default number of neighbours of :meth:`kneighbors`.
    vector_index : VectorIndex, default=None
        Where the indexed items are kept and how they are searched: None
        (an :class:`~skbackward.indexes.ExactIndex`) for exact search,
        :class:`~skbackward.indexes.FaissIndex` for approximate search of
        large databases. Not modified: the fitted copy is ``vector_index_``.
    device : str, default="cpu"
        Torch device for the student's training and queries; the teacher uses
        its own ``device``.
    random_state : int, RandomState instance or None, default=None
        Seeds the student's training and the random conditions; also seeds the
        teacher when the teacher's own ``random_state`` is None.
    verbose : int, default=0
        Print training progress when > 0.

    Attributes
    ----------
    teacher_ : BackwardSearchRetriever
        The fitted teacher.
    student_ : torch.nn.Module
        The trained student, on CPU.
    model_ : torch.nn.Module
        The teacher's network (embedding and classifier heads).
    vector_index_ : VectorIndex
        The fitted index of the searched items (a copy of ``vector_index``),
        shared with ``teacher_``: the retriever keeps one index.
    attributes_, classes_, index_labels_, n_index_samples_
        As in :class:`BackwardSearchRetriever`.
    loss_curve_ : list of float
        Mean training loss of the student in each epoch.
    n_iter_ : int
        Number of student training epochs run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    BackwardSearchRetriever : The teacher: the search itself.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbackward import BackwardSearchRetriever, DistilledRetriever
    >>> X, y = load_digits(return_X_y=True)
    >>> teacher = BackwardSearchRetriever(epochs=5, random_state=0)
    >>> ret = DistilledRetriever(teacher, epochs=5, random_state=0).fit(X, y)
    >>> dist, ind = ret.kneighbors(X[:2], n_neighbors=3, condition=8)
    >>> ind.shape
    (2, 3)
    """

    def __init__(
        self,
        teacher=None,
        *,
        prefit=False,
        objective="distill",
        targets_per_sample=2,
        l1_weight=0.0,
        hidden_dim=128,
        epochs=50,
        batch_size=256,
        learning_rate=1e-3,
        weight_decay=0.0,
        n_neighbors=10,
        vector_index=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.teacher = teacher
        self.prefit = prefit
        self.objective = objective
        self.targets_per_sample = targets_per_sample
        self.l1_weight = l1_weight
        self.hidden_dim = hidden_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.n_neighbors = n_neighbors
        self.vector_index = vector_index
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        super()._check_params()
        if self.objective not in _OBJECTIVES:
            raise ValueError(
                f"objective must be one of {_OBJECTIVES}; got {self.objective!r}."
            )
        for name in ("targets_per_sample", "hidden_dim", "epochs", "batch_size"):
            check_scalar(getattr(self, name), name, numbers.Integral, min_val=1)
        check_scalar(self.learning_rate, "learning_rate", numbers.Real, min_val=0,
                     include_boundaries="neither")
        for name in ("weight_decay", "l1_weight"):
            check_scalar(getattr(self, name), name, numbers.Real, min_val=0)

    def _fit_teacher(self, X, y, rng):
        teacher = BackwardSearchRetriever() if self.teacher is None else self.teacher
        if not isinstance(teacher, BackwardSearchRetriever):
            raise ValueError(
                "teacher must be a BackwardSearchRetriever; got "
                f"{type(teacher).__name__}."
            )
        if self.prefit:
            check_is_fitted(teacher)
            # without its index: this retriever builds the one both use
            index = teacher.__dict__.get("vector_index_")
            return copy.deepcopy(teacher, memo={id(index): None})
        teacher = clone(teacher)
        if teacher.random_state is None:
            teacher.set_params(random_state=rng.randint(np.iinfo(np.int32).max))
        return teacher.fit(X, y)

    def _fit_network(self, X, y, codes, seed):
        rng = check_random_state(seed)
        self.teacher_ = self._fit_teacher(X, y, rng)
        if self.teacher_.n_features_in_ != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, but the prefit teacher was fitted "
                f"on {self.teacher_.n_features_in_}."
            )
        if len(self.teacher_.attributes_) != codes.shape[1]:
            raise ValueError(
                f"y has {codes.shape[1]} attribute(s), but the prefit teacher was "
                f"fitted on {len(self.teacher_.attributes_)}: "
                f"{self.teacher_.attributes_}."
            )
        # the student speaks the teacher's labels (a prefit teacher may know more)
        self.attributes_ = self.teacher_.attributes_
        self.classes_ = self.teacher_.classes_
        self._classes = self.teacher_._classes
        self.student_, self.loss_curve_ = self._train_student(X, seed)
        self.n_iter_ = self.epochs
        return self.teacher_.model_

    def _train_student(self, X, seed):
        teacher = self.teacher_
        n_classes = [len(c) for c in self._classes]
        Z0 = teacher.transform(X.astype(np.float32, copy=False))
        with seeded(seed, torch.device("cpu")):
            student = StudentNetwork(Z0.shape[1], n_classes, self.hidden_dim)
        dev = resolve_device(self.device)
        if self.objective == "distill":
            arrays = self._distill_targets(Z0, n_classes, seed)
            loss = distill_loss(self.l1_weight)
        else:
            heads = [frozen(h, torch.float32, dev) for h in teacher.model_.heads]
            arrays = (Z0,)
            loss = amortized_loss(heads, teacher.alpha, n_classes)
        curve = train_network(
            student, loss, arrays, epochs=self.epochs, batch_size=self.batch_size,
            learning_rate=self.learning_rate, weight_decay=self.weight_decay,
            seed=seed, device=self.device, verbose=self.verbose,
            log_prefix="student ",
        )
        return student, curve

    def _distill_targets(self, Z0, n_classes, seed):
        """``targets_per_sample`` random conditions per item and the teacher's
        z* for each, from one batched search."""
        Z0 = np.repeat(Z0, self.targets_per_sample, axis=0)
        with seeded(seed, torch.device("cpu")):
            targets = draw_conditions(Z0.shape[0], n_classes, "cpu").numpy()
        teacher = self.teacher_
        if self.verbose:
            print(f"searching the teacher's z* for {Z0.shape[0]} (item, condition) pairs")
        Z_star = search_embeddings(
            teacher.model_, Z0, targets, (targets >= 0).astype(np.float32),
            device=teacher.device, alpha=teacher.alpha, lr=teacher.search_lr,
            max_iter=teacher.max_iter, patience=teacher.patience,
            select=teacher.select,
        )
        return Z0, targets, Z_star

    def _set_index(self, X, y, append=False):
        super()._set_index(X, y, append=append)
        self.teacher_.vector_index_ = self.vector_index_  # one index for both

    def set_params(self, **params):
        # nested teacher__* parameters need a teacher to set them on: the
        # default one, made explicit (GridSearchCV(DistilledRetriever(),
        # {"teacher__alpha": ...}) then tunes the default teacher)
        if self.teacher is None and any(k.startswith("teacher__") for k in params):
            self.teacher = BackwardSearchRetriever()
        return super().set_params(**params)

    @property
    def _prefers_predicted(self):
        # the teacher's ranking option carries over to its student; read from
        # the parameter, so set_params(teacher__filter_predicted=...) acts at
        # query time as it does on the teacher itself
        teacher = self.teacher if self.teacher is not None else self.teacher_
        return teacher.filter_predicted

    def _condition_embeddings(self, Z, targets, weights):
        dev = resolve_device(self.device)
        student = frozen(self.student_, torch_dtype(Z.dtype), dev)
        with torch.no_grad():
            out = padded_forward(student, as_tensor(Z, dev),
                                 as_tensor(targets, dev, torch.int64))
        return out.cpu().numpy()
