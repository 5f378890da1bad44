"""Every accepted form of ``condition`` -> per-query target and weight arrays.

A parsed condition is two arrays of shape (n_queries, n_attributes):
``targets`` holds the class index wanted for each attribute, or -1 where the
attribute is unconstrained; ``weights`` holds that condition's weight (0 where
unconstrained). The search minimises ``sum_a w_a CE_a / sum_a w_a``, which is
the paper's mean over the K conditioned attributes when all weights are 1.
"""

import numbers

import numpy as np

from .._utils._labels import is_missing, lookup, plain_scalar


def _is_label_type(t):
    """Labels are str, bytes or real numbers (numpy scalars included), or None.

    bytes are one label, not a sequence of numbers: ``b"big"`` is looked up
    among the classes like ``"big"`` (and named in the error when unknown).
    """
    return t is type(None) or (
        issubclass(t, (str, bytes, numbers.Real, np.generic))
        and not issubclass(t, (np.void, np.complexfloating))
    )


def _is_missing_scalar(value):
    one = np.empty(1, dtype=object)
    one[0] = value
    return bool(is_missing(one)[0])


def _per_query(value, n_queries, what):
    """Broadcast a label to ``n_queries`` entries, or check a 1-D array of them.

    Entries must be labels (str or number) or None: a set, or lists inside
    the array, raise a TypeError naming ``what``.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if _is_label_type(type(value)) or _is_missing_scalar(value):
        return np.full(n_queries, value, dtype=object)
    if isinstance(value, (set, frozenset, dict)) or not (
        hasattr(value, "__len__") or hasattr(value, "__array__")
    ):
        raise TypeError(
            f"{what} must be a label (str or number), None, or a 1-D array-like "
            f"with one per query; got a {type(value).__name__}."
        )
    try:
        value = np.asarray(value, dtype=object)
    except ValueError:  # ragged nested sequences
        value = np.empty((0, 0), dtype=object)
    if value.ndim != 1 or value.shape[0] != n_queries:
        raise ValueError(
            f"{what} must be a scalar or have one entry per query: expected "
            f"shape ({n_queries},), got {value.shape}."
        )
    present = value[~is_missing(value)].tolist()  # pd.NA, NaT: unconstrained too
    bad = [t for t in set(map(type, present)) if not _is_label_type(t)]
    if bad:
        raise TypeError(
            f"{what} must hold labels (str or number) or None, one per query; "
            f"got a {bad[0].__name__} inside."
        )
    return value


def _resolve_attribute(condition, values, attributes, classes):
    """The single attribute whose classes contain every label in ``values``
    (``condition`` as the user gave it, for the message)."""
    if len(attributes) == 1 or is_missing(values).all():
        return attributes[0]  # (no label at all: every query unconstrained)
    matches = [
        attribute
        for attribute, cls in zip(attributes, classes)
        if not lookup(cls, values, missing_ok=True)[1]
    ]
    if len(matches) != 1:
        why = "is ambiguous" if matches else "matches no attribute"
        raise ValueError(
            f"condition {plain_scalar(condition)!r} {why}: the model was fitted "
            f"on attributes {attributes}; pass a dict such as "
            f"{{{attributes[0]!r}: label}}."
        )
    return matches[0]


def parse_condition(condition, attributes, classes, n_queries, condition_weight=None):
    """Turn a user condition into ``(targets, weights)`` arrays.

    Parameters
    ----------
    condition : scalar, 1-D array-like or dict
        A label for every query, one label per query, or
        ``{attribute: scalar or 1-D array-like}``. Inside arrays, ``None`` leaves
        that query unconstrained on that attribute.
    attributes : list
        Attribute names the model was fitted on.
    classes : list of ndarray
        Known labels of each attribute.
    n_queries : int
    condition_weight : None, float or dict, default=None
        Weight of each attribute's condition: one number for all attributes, or
        ``{attribute: float or 1-D array-like}``. ``None`` means 1.

    Returns
    -------
    targets : ndarray of shape (n_queries, n_attributes), int64
    weights : ndarray of shape (n_queries, n_attributes), float64
    """
    if not isinstance(condition, dict):
        values = _per_query(condition, n_queries, "condition")
        condition = {_resolve_attribute(condition, values, attributes, classes): values}
    unknown_attributes = [a for a in condition if a not in attributes]
    if unknown_attributes:
        raise ValueError(
            f"condition names attribute(s) {unknown_attributes} the model was not "
            f"fitted on; known attributes: {attributes}."
        )
    targets = np.full((n_queries, len(attributes)), -1, dtype=np.int64)
    for attribute, value in condition.items():
        a = attributes.index(attribute)
        values = _per_query(value, n_queries, f"condition for {attribute!r}")
        targets[:, a], unknown = lookup(classes[a], values, missing_ok=True)
        if unknown:
            raise ValueError(
                f"unknown condition label(s) {unknown} for attribute {attribute!r}; "
                f"known labels: {classes[a].tolist()}."
            )
    weights = (targets >= 0) * _parse_weights(
        condition_weight, attributes, n_queries
    )
    return targets, weights


def _parse_weights(condition_weight, attributes, n_queries):
    weights = np.ones((n_queries, len(attributes)))
    if condition_weight is None:
        return weights
    if isinstance(condition_weight, numbers.Real) and not isinstance(
        condition_weight, (bool, np.bool_)
    ):
        condition_weight = {a: condition_weight for a in attributes}
    if not isinstance(condition_weight, dict):
        raise ValueError(
            "condition_weight must be None, a number or a dict "
            f"{{attribute: weight}}; got {type(condition_weight).__name__}."
        )
    for attribute, value in condition_weight.items():
        if attribute not in attributes:
            raise ValueError(
                f"condition_weight names attribute {attribute!r} the model was not "
                f"fitted on; known attributes: {attributes}."
            )
        what = f"condition_weight for {attribute!r}"
        values = _per_query(value, n_queries, what)
        if any(isinstance(v, (str, bool, np.bool_, type(None))) for v in values):
            raise TypeError(f"{what} must be numbers; got {values[:3].tolist()}...")
        values = values.astype(np.float64)
        if not (np.isfinite(values).all() and (values > 0).all()):
            raise ValueError(f"{what} must be finite and > 0.")
        weights[:, attributes.index(attribute)] = values
    return weights
