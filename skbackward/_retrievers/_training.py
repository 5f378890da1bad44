"""Fitting a retriever's network: the training data checked, the labels
encoded, the network trained (cached in ``memory``).

Module functions taking the estimator they fit, shared by the retrievers'
``fit`` and by the distilled student, which fits its teacher without the
index (it builds the one both use).
"""

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_memory

from .._network._model import check_finite_network, fit_network, resolve_device
from .._utils._labels import (
    as_columns,
    attribute_names,
    check_column_names,
    check_labels,
    encode_columns,
)
from .._utils._threads import effective_threads
from .._utils._validation import check_groups, validate_X
from .._utils._warnings import warn_caller

FLOAT32_MAX = float(np.finfo(np.float32).max)


def validate_fit_data(estimator, X, y):
    """Validated ``X`` (features seen in fit are recorded on ``estimator``)
    and labels ``y``.

    Returns ``X, Y, columns``: ``Y`` the 1-D or 2-D label array and
    ``columns`` a DataFrame's column names (None otherwise).
    """
    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target "
            "y is None."
        )
    resolve_device(estimator.device)  # CUDA asked for but absent: say so first
    columns = getattr(y, "columns", None)
    if columns is not None:
        columns = check_column_names(columns)
    X = validate_X(estimator, X, reset=True, ensure_min_samples=2)
    return X, check_labels(y, n_samples=X.shape[0], attributes=columns), columns


def set_labels(estimator, attributes, classes, ndim):
    """The fitted label attributes: ``attributes_``, ``classes_`` (an array
    for 1-D ``y``) and ``attribute_classes_`` (always a list)."""
    estimator.attributes_ = list(attributes)
    estimator.classes_ = classes[0] if ndim == 1 else classes
    estimator.attribute_classes_ = list(classes)


def train_retriever(retriever, X, y, groups=None):
    """Fit ``retriever``'s network and labels on ``X``, ``y`` (its parameters
    already validated), without its index.

    Sets ``attributes_``, ``classes_``, ``attribute_classes_``, ``model_``,
    ``loss_curve_``, ``n_iter_`` (and ``n_features_in_``). Returns ``X, y,
    codes, groups``: the validated data, the labels' class indices and the
    checked ``groups``.
    """
    X, y, columns = validate_fit_data(retriever, X, y)
    groups = check_groups(groups, X.shape[0])
    # max and min, not abs: no copy of a large (memory-mapped) X
    largest = max(X.max(), -X.min()) if X.dtype == np.float64 else 0.0
    if largest > FLOAT32_MAX:
        raise ValueError(
            f"X has values beyond float32's range (max |X| = {largest:.3g}); "
            "the network trains in float32. Scale X (e.g. with StandardScaler)."
        )
    names = attribute_names(y, columns)
    classes, codes = encode_columns(as_columns(y), names, type(retriever).__name__)
    set_labels(retriever, names, classes, y.ndim)
    seed = check_random_state(retriever.random_state).randint(np.iinfo(np.int32).max)
    network, retriever.loss_curve_ = network_training(retriever)(
        X, codes, classes, embedding_dim=retriever.embedding_dim,
        epochs=retriever.epochs, batch_size=retriever.batch_size,
        learning_rate=retriever.learning_rate, weight_decay=retriever.weight_decay,
        lr_decay=retriever.lr_decay, seed=seed,
        device=str(resolve_device(retriever.device)),
        n_threads=effective_threads(retriever.n_threads), verbose=retriever.verbose,
    )
    check_finite_network(network, X)
    retriever.model_ = network
    retriever.n_iter_ = retriever.epochs
    return X, y, codes, groups


def network_training(retriever):
    """:func:`fit_network`, cached in the retriever's ``memory`` when it
    has one.

    The seed is drawn before the call and is part of the key: with an
    int (or a RandomState, cloned as in GridSearchCV) ``random_state``
    equal fits share one entry. ``random_state=None`` draws a new seed
    at every fit, so an entry would never be read again: the cache is
    not used, with a warning.
    """
    if retriever.memory is None:
        return fit_network
    if retriever.random_state is None:
        warn_caller(
            f"{type(retriever).__name__}(memory=...) caches nothing with "
            "random_state=None: every fit draws a new seed, so no two fits "
            "train the same network. Pass an int random_state to reuse "
            "trained networks.",
            UserWarning,
        )
        return fit_network
    return check_memory(retriever.memory).cache(fit_network, ignore=["verbose"])
