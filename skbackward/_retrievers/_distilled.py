"""DistilledRetriever: a student network answers conditional queries in one pass."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from .._network._model import (
    as_tensor,
    check_finite_network,
    embed,
    frozen,
    initialized,
    make_generator,
    padded_forward,
    resolve_device,
    torch_dtype,
    train_network,
)
from .._network._search import search_embeddings
from .._network._student import (
    StudentNetwork,
    amortized_loss,
    distill_loss,
    draw_conditions,
)
from .._utils._docstrings import (
    INDEX_PARAMETERS,
    N_THREADS_PARAMETER,
    VERBOSE_PARAMETER,
    fill_doc,
    random_state_parameter,
)
from .._utils._labels import fitted_label_codes
from .._utils._threads import with_threads
from .._utils._typing import ArrayLike
from .._utils._validation import (
    TRAINING_CONSTRAINTS,
    check_groups,
    check_params,
    count,
    finite,
)
from ._backward import BackwardSearchRetriever
from ._base import BaseRetriever
from ._conditioning import blend_directions, kept_classes, preserved_attributes
from ._teacher import check_teacher_labels, fit_teacher
from ._training import validate_fit_data

if TYPE_CHECKING:
    from typing_extensions import Self

_OBJECTIVES = ("distill", "amortized")


@fill_doc(index_parameters=INDEX_PARAMETERS, n_threads=N_THREADS_PARAMETER,
          verbose=VERBOSE_PARAMETER,
          random_state=random_state_parameter(
              "Seeds the student's training and the random conditions; also "
              "seeds the teacher when the teacher's own ``random_state`` is None."))
class DistilledRetriever(BaseRetriever):
    """Conditional retrieval by a student network distilled from Backward Search.

    A meta-estimator in the manner of scikit-learn's ``SelectFromModel``: it
    fits its ``teacher`` (a :class:`BackwardSearchRetriever`), unless told the
    teacher is prefit, then trains a small student MLP that maps a query
    embedding and the one-hot conditions straight to the searched embedding.
    A conditional query then costs one forward pass instead of up to
    ``max_steps`` gradient steps (Lee & Kim, PLoS ONE 2024).
    The embedding is the teacher's; the index is built by this retriever's
    ``vector_index`` and shared with ``teacher_``.

    Which parameter is whose: ``teacher__<name>`` parameters are the
    teacher's; the others (``epochs``, ``batch_size``, ``learning_rate``,
    ``weight_decay``, ``lr_decay``, ``device``, ...) are the student's, with
    the student's defaults. The teacher's ranking options
    ``predicted_first``, ``query_weight`` and ``feature_weight`` are read
    from the ``teacher`` parameter at query time, as a search reads its own:
    ``set_params(teacher__predicted_first=False)`` on a fitted student
    changes its next ranking, and a grid search over them needs no new
    student. The student is tied to the teacher's ``alpha``, ``preserve``
    and ``preserve_weight`` at fit time (it learns where the teacher's
    search lands; the fitted ``teacher_`` holds them), and answers without
    a search loss, so ``condition_weight`` does not change its output.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    teacher : BackwardSearchRetriever, default=None
        The retriever to distil; ``None`` means ``BackwardSearchRetriever()``.
        Its parameters tune as ``teacher__alpha`` etc. With
        ``teacher__memory`` the teacher's network is cached: a grid over the
        teacher's query-time parameters (``teacher__alpha``, ...) trains it
        once per fold (the student is trained for every candidate; the
        teacher's seed comes from ``random_state`` when its own is None, so
        one of them must be an int).
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
    epochs : int, default=49
        The student's training epochs (the paper's distillation script runs
        ``for epoch in range(1, 50)``: 49); the teacher's are
        ``teacher__epochs``.
    batch_size : int, default=512
        The student's minibatch size (at least 2; the published 512).
    learning_rate : float, default=1e-3
        The student's initial Adam learning rate.
    weight_decay : float, default=0.0
        The student's Adam weight decay.
    lr_decay : float, default=1.0
        The student's learning-rate factor after every third of its epochs;
        1 (the published recipe) keeps it constant.
    {index_parameters}
    device : str, default="cpu"
        Torch device for the student's training and queries; the teacher uses
        its own ``device``.
    {n_threads}
        The teacher trains with its own ``n_threads``; the search for the
        student's targets and the student's training use this one.
    {random_state}
    {verbose}
        Here ``fit`` trains the student (with a line when the search for
        its targets starts); the teacher shows its own progress by its own
        ``verbose`` (``teacher__verbose``).

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
    attributes_ : list
        Attribute names (the teacher's).
    classes_ : ndarray or list of ndarray
        Labels of each attribute (the teacher's; a list when ``y`` was 2-D).
    attribute_classes_ : list of ndarray
        Labels of each attribute, always a list (the teacher's).
    index_labels_ : ndarray or None
        Labels of the indexed items (the training labels after ``fit``).
    index_groups_ : ndarray or None
        Groups of the indexed items (``groups`` of ``fit`` or ``index``), for
        hit@k; None when not given.
    n_index_samples_ : int
        Number of indexed items.
    loss_curve_ : list of float
        Mean training loss of the student in each epoch.
    n_iter_ : int
        Number of student training epochs run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
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
        epochs=49,
        batch_size=512,
        learning_rate=1e-3,
        weight_decay=0.0,
        lr_decay=1.0,
        n_neighbors=10,
        vector_index=None,
        device="cpu",
        n_threads=None,
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
        self.lr_decay = lr_decay
        self.n_neighbors = n_neighbors
        self.vector_index = vector_index
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints: dict = {
        **BaseRetriever._parameter_constraints,
        "teacher": [None, BackwardSearchRetriever],
        "prefit": ["boolean"],
        "objective": [StrOptions(set(_OBJECTIVES))],
        "targets_per_sample": [count(1)],
        "l1_weight": [finite(0.0)],
        "hidden_dim": [count(1)],
        **TRAINING_CONSTRAINTS,
    }

    # nested: the teacher's own fit validates its parameters
    @_fit_context(prefer_skip_nested_validation=False)
    @with_threads
    def fit(self, X: ArrayLike, y: ArrayLike,
            groups: ArrayLike | None = None) -> Self:
        """Fit (or adopt) the teacher, then train the student.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Precomputed features.
        y : array-like of shape (n_samples,) or (n_samples, n_attributes)
            Labels, as in :meth:`BackwardSearchRetriever.fit`. With a prefit
            teacher they must be among the teacher's labels, and a
            DataFrame's columns are matched to the teacher's attributes by
            name.
        groups : array-like of shape (n_samples,), default=None
            Which items are the same item in other forms, kept as
            ``index_groups_`` for hit@k, as in
            :meth:`BackwardSearchRetriever.fit`.

        Returns
        -------
        self : object
            The fitted retriever.
        """
        X_checked, _, _ = validate_fit_data(self, X, y)
        groups = check_groups(groups, X_checked.shape[0])
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        # the raw X and y: a DataFrame's names reach the teacher
        teacher = fit_teacher(self.teacher, X, y, check_random_state(seed),
                              prefit=self.prefit,
                              random_state=self.random_state)
        if teacher.n_features_in_ != X_checked.shape[1]:
            raise ValueError(
                f"X has {X_checked.shape[1]} features, but the prefit teacher was "
                f"fitted on {teacher.n_features_in_}."
            )
        # a prefit teacher may know more labels than y has, never fewer
        Y, codes = fitted_label_codes(
            y, teacher.attributes_, teacher.attribute_classes_,
            n_samples=X_checked.shape[0], who="prefit teacher",
        )
        if self.prefit:
            check_teacher_labels(self.teacher, teacher, X_checked, codes)
        self.teacher_ = teacher
        # the student speaks the teacher's labels
        self.attributes_ = list(teacher.attributes_)
        self.classes_ = teacher.classes_
        self.attribute_classes_ = list(teacher.attribute_classes_)
        self.model_ = teacher.model_
        self.student_, self.loss_curve_ = self._train_student(X_checked, seed)
        self.n_iter_ = self.epochs
        self._set_index(X_checked, Y, groups=groups)
        return self

    def _train_student(self, X, seed):
        teacher = self.teacher_
        n_classes = [len(c) for c in self.attribute_classes_]
        Z0 = embed(teacher.model_, X.astype(np.float32, copy=False), teacher.device)
        student = initialized(
            StudentNetwork, Z0.shape[1], n_classes, self.hidden_dim, seed=seed
        )
        dev = resolve_device(self.device)
        if self.objective == "distill":
            arrays = self._distill_targets(Z0, n_classes, seed)
            loss = distill_loss(self.l1_weight)
        else:
            heads = [frozen(h, torch.float32, dev) for h in teacher.model_.heads]
            arrays = (Z0,)
            # its own stream: conditions drawn per batch, beside the shuffling;
            # on the CPU, so that a GPU draws the same ones
            draws = make_generator(seed + 2, torch.device("cpu"))
            loss = amortized_loss(
                heads, teacher.alpha, n_classes, draws,
                preserved=_preserved(teacher),
                keep_weight=teacher.preserve_weight,
            )
        curve = train_network(
            student, loss, arrays, epochs=self.epochs, batch_size=self.batch_size,
            learning_rate=self.learning_rate, weight_decay=self.weight_decay,
            lr_decay=self.lr_decay, seed=seed, device=self.device,
            verbose=self.verbose, log_prefix="student ",
            diverged_hint="lower learning_rate, weight_decay or l1_weight, or "
            "the teacher's alpha",
        )
        check_finite_network(student)
        return student, curve

    def _distill_targets(self, Z0, n_classes, seed):
        """``targets_per_sample`` random conditions per item and the teacher's
        z* for each, from one batched search."""
        Z0 = np.repeat(Z0, self.targets_per_sample, axis=0)
        draws = make_generator(seed + 2, torch.device("cpu"))
        targets = draw_conditions(Z0.shape[0], n_classes, draws).numpy()
        teacher = self.teacher_
        if self.verbose:
            print(f"searching the teacher's z* for {Z0.shape[0]} "
                  "(item, condition) pairs", file=sys.stderr)
        Z_star, _ = search_embeddings(
            teacher.model_, Z0, targets, (targets >= 0).astype(np.float32),
            device=teacher.device, alpha=teacher.alpha, lr=teacher.search_lr,
            max_steps=teacher.max_steps, patience=teacher.patience,
            select=teacher.select,
            keep=kept_classes(teacher.model_, Z0, targets,
                              _preserved(teacher), teacher.device),
            keep_weight=teacher.preserve_weight,
        )
        return Z0, targets, Z_star

    def _set_index(self, X, y, grow=None, groups=None):
        super()._set_index(X, y, grow=grow, groups=groups)
        # one index for both
        self.teacher_.index_groups_ = self.index_groups_
        self.teacher_.feature_index_ = self.feature_index_
        self.teacher_.vector_index_ = self.vector_index_

    def set_params(self, **params: Any) -> Self:
        """Set the parameters of this estimator and of its teacher.

        Nested parameters of the teacher are set as ``teacher__<name>``, as
        in a :class:`~sklearn.pipeline.Pipeline`; they change the ``teacher``
        object that was passed in. With ``teacher=None``, a nested parameter
        first makes the default teacher explicit
        (``teacher=BackwardSearchRetriever()``), so that
        ``GridSearchCV(DistilledRetriever(), {"teacher__alpha": [...]})``
        tunes the default teacher. Every name is checked before anything
        changes: a call that raises leaves the estimator as it was.

        Parameters
        ----------
        **params : dict
            Estimator parameters, and teacher parameters as
            ``teacher__<name>``.

        Returns
        -------
        self : DistilledRetriever
            This estimator.

        Examples
        --------
        >>> from skbackward import DistilledRetriever
        >>> ret = DistilledRetriever().set_params(teacher__alpha=0.3, epochs=20)
        >>> ret.teacher.alpha, ret.epochs
        (0.3, 20)
        """
        own = self.get_params(deep=False)
        nested = {k.split("__", 1)[1] for k in params if k.startswith("teacher__")}
        teacher = params.get("teacher", self.teacher)
        if nested and teacher is None:
            teacher = BackwardSearchRetriever()
        known = set(teacher.get_params(deep=True)) if hasattr(
            teacher, "get_params") else set()
        invalid = [k for k in params if k.split("__", 1)[0] not in own
                   or ("__" in k and k.split("__", 1)[0] != "teacher")]
        invalid += [f"teacher__{k}" for k in sorted(nested - known)]
        if invalid:
            raise ValueError(
                f"Invalid parameter(s) {invalid} for estimator {self}. Valid "
                f"parameters are: {sorted(own)}, and the teacher's as "
                "teacher__<name>."
            )
        if nested and params.get("teacher", self.teacher) is None:
            params = {**params, "teacher": teacher}  # also over an explicit None
        return super().set_params(**params)

    def _teacher_option(self, name):
        """The teacher's ranking option ``name``, read from the ``teacher``
        parameter at query time (``set_params(teacher__<name>=...)`` after
        fit applies, as a search's own query-time parameters do)."""
        teacher = BackwardSearchRetriever() if self.teacher is None else self.teacher
        check_params(teacher, (name,))
        return getattr(teacher, name)

    @property
    def _prefers_predicted(self):
        return self._teacher_option("predicted_first")

    def _preserve_setting(self):
        # trained in: the student learned where the fitted teacher's search,
        # with its preserve, lands
        return self.teacher_.preserve

    def _ranking_embeddings(self, Z, Z0):
        return blend_directions(Z, Z0, self._teacher_option("query_weight"))

    def _feature_weight(self):
        weight = self._teacher_option("feature_weight")
        # "auto" is the fitted teacher's choice
        return self.teacher_.feature_weight_ if weight == "auto" else weight

    _aims_at_condition = True

    def _condition_embeddings(self, Z, targets, weights, keep):
        # the student was trained to land where the teacher's search, keeping
        # what the teacher preserves, lands: it needs only the asked condition
        dev = resolve_device(self.device)
        student = frozen(self.student_, torch_dtype(Z.dtype), dev)
        with torch.no_grad():
            out = padded_forward(student, as_tensor(Z, dev),
                                 as_tensor(targets, dev, torch.int64))
        return out.cpu().numpy(), np.zeros(Z.shape[0], dtype=np.int64)


def _preserved(teacher):
    """The attributes the fitted teacher's ``preserve`` keeps."""
    return preserved_attributes(teacher.preserve, teacher.attributes_)
