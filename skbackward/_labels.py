"""Per-attribute label handling: attribute names, encoding, lookup of labels."""

import numpy as np


def attribute_names(y, columns=None):
    """Names of the attributes of the array ``y``: ``columns``, else 0..n-1."""
    if columns is not None:
        return list(columns)
    return [0] if y.ndim == 1 else list(range(y.shape[1]))


def as_columns(y):
    """``y`` as a 2-D array, one column per attribute (a view when possible)."""
    y = np.asarray(y)
    return y.reshape(-1, 1) if y.ndim == 1 else y


def attribute_columns(condition_on, names):
    """Column indices of the attributes named by ``condition_on`` (None: all).

    Raises a ValueError naming the unknown attributes.
    """
    if condition_on is None:
        return list(range(len(names)))
    wanted = condition_on if isinstance(condition_on, (list, tuple)) else [condition_on]
    missing = [a for a in wanted if a not in names]
    if missing:
        raise ValueError(f"condition_on names unknown attribute(s) {missing}; "
                         f"attributes: {names}.")
    return [names.index(a) for a in wanted]


def find_rows(rows, table):
    """Index of each row of ``rows`` among the rows of ``table`` (-1 if absent).

    Both are 2-D integer arrays; when ``table`` repeats a row, the index of its
    last occurrence is returned.
    """
    both = np.concatenate([table, rows])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    index = np.full(inverse.max() + 1, -1, dtype=np.int64)
    index[inverse[: table.shape[0]]] = np.arange(table.shape[0])
    return index[inverse[table.shape[0]:]]


def count_rows(table, rows):
    """How many rows of ``table`` equal each row of ``rows``."""
    uniq, counts = np.unique(table, axis=0, return_counts=True)
    where = find_rows(rows, uniq)
    return np.where(where >= 0, counts[where], 0)


def encode_columns(Y, attributes, name):
    """Encode each column of the 2-D ``Y`` as integers 0..C-1.

    Returns the list of class arrays and the (n_samples, n_attributes) codes.
    Raises a ValueError naming the attribute that has a single class.
    """
    classes, codes = [], np.empty(Y.shape, dtype=np.int64)
    for a, attribute in enumerate(attributes):
        cls, codes[:, a] = np.unique(Y[:, a], return_inverse=True)
        if cls.shape[0] < 2:
            raise ValueError(
                f"{name} needs at least two classes per attribute; attribute "
                f"{attribute!r} has one class ({cls.tolist()[0]!r})."
            )
        classes.append(cls)
    return classes, codes


def _is_missing(values):
    """Elementwise: is the entry None (or a float NaN), i.e. no label given."""
    values = np.asarray(values)
    if values.dtype.kind == "O":
        try:  # pandas also knows pd.NA, which ``!=`` cannot compare
            import pandas as pd

            return np.asarray(pd.isna(values), dtype=bool)
        except ImportError:
            # Elementwise in C: ``== None`` finds None, ``!=`` itself finds NaN.
            return np.asarray(values == None) | np.asarray(values != values)  # noqa: E711
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.zeros(values.shape, dtype=bool)


def lookup(classes, values, *, missing_ok=False):
    """Codes of ``values`` (1-D) in ``classes``; -1 for labels not among them.

    Only the distinct values are looked up, so this costs a dict lookup per
    distinct label, not per query. With ``missing_ok``, None/NaN give -1 too.
    Returns ``(codes, unknown)`` where ``unknown`` lists the labels not found.
    """
    values = np.asarray(values, dtype=object).ravel()
    codes = np.full(values.shape[0], -1, dtype=np.int64)
    present = ~_is_missing(values) if missing_ok else np.ones(values.shape, bool)
    table = {label: i for i, label in enumerate(classes.tolist())}
    unknown = []
    if present.any():
        uniq_values, inverse = _unique(values[present])
        uniq_codes = np.array(
            [table.get(plain_scalar(v), -1) for v in uniq_values], dtype=np.int64
        )
        codes[present] = uniq_codes[inverse]
        unknown = [plain_scalar(v) for v, c in zip(uniq_values, uniq_codes) if c < 0]
    return codes, unknown


def _unique(values):
    """Distinct values and the inverse map; mixed types are grouped by repr."""
    try:
        uniq, inverse = np.unique(values, return_inverse=True)
    except TypeError:  # mixed types (e.g. 3 and "3") cannot be sorted together
        keys = np.array([repr(v) for v in values])
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        uniq = values[first]
    return uniq, inverse


def plain_scalar(value):
    """numpy scalars as Python scalars so they hash like the stored classes."""
    return value.item() if isinstance(value, np.generic) else value
