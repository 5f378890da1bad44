"""Per-attribute label handling: validation, attribute names, encoding, lookup.

Labels of one attribute are all strings or all numbers (as scikit-learn's
classifiers require): a mix cannot be sorted into classes, and labels of the
other kind never equal the fitted ones, so comparing them would silently
count every item as not matching.
"""

import numbers

import numpy as np
import scipy.sparse as sp


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


def is_missing(values):
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
    present = ~is_missing(values) if missing_ok else np.ones(values.shape, bool)
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


# ---- validation -------------------------------------------------------------


def check_labels(y, *, input_name="y", n_samples=None, attributes=None):
    """Validated labels as a 1-D or 2-D array (one column per attribute).

    Refuses, with a ValueError or TypeError naming ``input_name``: sparse or
    ragged input, more than two dimensions, a number of rows other than
    ``n_samples``, no column at all, missing labels (None, NaN, ``pd.NA``),
    infinite labels, and columns that mix strings and numbers or hold other
    objects. Messages name a column by its attribute name (``attributes``) or
    its position.
    """
    if sp.issparse(y):
        raise TypeError(
            f"{input_name} must be dense labels (an array, list or DataFrame); "
            "got a sparse matrix."
        )
    try:
        Y = np.asarray(y)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(
            f"{input_name} must be a 1-D or 2-D array of labels; {exc}"
        ) from None
    if Y.ndim not in (1, 2):
        raise ValueError(
            f"{input_name} must be 1-D (one attribute) or 2-D (one column per "
            f"attribute); got an array of shape {Y.shape}."
        )
    if n_samples is not None and Y.shape[0] != n_samples:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: "
            f"X has {n_samples}, {input_name} has {Y.shape[0]}."
        )
    n_attributes = 1 if Y.ndim == 1 else Y.shape[1]
    if n_attributes == 0:
        raise ValueError(
            f"{input_name} has no columns (shape {Y.shape}): give at least one "
            "attribute, as a 1-D array or one column per attribute."
        )
    names = attributes if attributes is not None else range(n_attributes)
    for a, name in zip(range(n_attributes), names):
        label_kind(Y if Y.ndim == 1 else Y[:, a], f"{input_name} (attribute {name!r})")
    return Y


def check_same_kind(a, b, what_a, what_b, attribute):
    """A ValueError when the 1-D labels ``a`` and ``b`` are of another kind
    (strings and numbers), which never compare equal."""
    kinds = label_kind(a, what_a), label_kind(b, what_b)
    if kinds[0] != kinds[1] and len(a) and len(b):
        raise ValueError(
            f"{what_a} holds {kinds[0]}s and {what_b} {kinds[1]}s (attribute "
            f"{attribute!r}): labels of another kind never match; encode both alike."
        )


def label_kind(values, what):
    """"number" or "string": the kind of the 1-D labels ``values``.

    Raises a ValueError naming ``what`` for missing or infinite labels, a mix
    of strings and numbers, or labels that are neither.
    """
    values = np.asarray(values)
    if values.dtype.kind in "biu":
        return "number"
    if values.dtype.kind in "US":
        return "string"
    if values.dtype.kind == "f":
        _check_finite(values.astype(np.float64), what)
        return "number"
    if values.dtype.kind != "O":
        raise TypeError(
            f"{what} must hold strings or numbers; got dtype {values.dtype}."
        )
    if is_missing(values).any():
        raise ValueError(
            f"{what} has missing labels (None, NaN or pd.NA); every item needs "
            "a label (drop the unlabelled ones)."
        )
    kinds = {_kind_of_type(t) for t in set(map(type, values.tolist()))}
    if None in kinds:
        bad = next(v for v in values.tolist() if _kind_of_type(type(v)) is None)
        raise TypeError(
            f"{what} must hold strings or numbers; got a {type(bad).__name__} "
            f"({bad!r})."
        )
    if len(kinds) > 1:
        raise ValueError(
            f"{what} mixes strings and numbers; the labels of an attribute must "
            "all be strings or all numbers."
        )
    if kinds == {"number"}:
        _check_finite(np.asarray(values.tolist(), dtype=np.float64), what)
    return kinds.pop() if kinds else "number"


def _kind_of_type(t):
    if issubclass(t, str):
        return "string"
    if issubclass(t, numbers.Real):  # bools and numpy numbers included
        return "number"
    return None


def _check_finite(values, what):
    if not np.isfinite(values).all():
        raise ValueError(
            f"{what} has missing or infinite labels (NaN or inf); every item "
            "needs a finite label."
        )


def align_columns(y, attributes, *, input_name="y",
                  reference="the retriever was fitted on attributes",
                  remedy="name the columns as in fit"):
    """``y`` with its columns in the order of ``attributes``.

    A DataFrame's columns are matched by name (and reordered); renamed or
    missing columns raise a ValueError, which says where ``attributes`` come
    from (``reference``) and what to do (``remedy``). Arrays are taken by
    position.
    """
    columns = getattr(y, "columns", None)
    if columns is None:
        return y
    columns = list(columns)
    if sorted(map(repr, columns)) != sorted(map(repr, attributes)):
        raise ValueError(
            f"{input_name} has columns {columns}, but {reference} "
            f"{list(attributes)}; {remedy} (they are matched by name), or pass an "
            "array to pair them by position."
        )
    return y[list(attributes)]


def check_column_names(columns, input_name="y"):
    """The column names of a DataFrame ``y`` as a list.

    Each must be present (not NaN, None or ``pd.NA``: a condition could never
    name it, as NaN equals nothing) and distinct from the others both by
    ``repr`` and by ``==``: names that compare equal but differ (``1`` and
    ``1.0``, ``True`` and ``1``) would send a condition for one to the other.
    """
    columns = list(columns)
    missing = [c for c, m in zip(columns, is_missing(_object_array(columns))) if m]
    if missing:
        raise ValueError(
            f"{input_name} has a missing column name ({missing[0]!r}) among "
            f"{columns}; name every attribute (a condition names it)."
        )
    clashes = [
        (a, b) for i, a in enumerate(columns) for b in columns[i + 1:]
        if repr(a) == repr(b) or _equal(a, b)
    ]
    if clashes:
        a, b = clashes[0]
        which = "duplicate" if repr(a) == repr(b) else "equal but different"
        raise ValueError(
            f"{input_name} has {which} column names {a!r} and {b!r} (columns "
            f"{columns}); each attribute needs its own name, distinct by value "
            "(a condition on one would otherwise reach the other)."
        )
    return columns


def _object_array(values):
    """A 1-D object array of ``values`` (tuples stay whole, as names)."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _equal(a, b):
    """``a == b`` as one bool; False where the comparison itself fails."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def label_codes(y, classes, attributes, *, input_name="y", allow_unknown=False):
    """(n, n_attributes) codes of the labels ``y`` among the fitted ``classes``.

    Labels of another kind than the fitted ones (strings for numbers, or the
    reverse) raise a ValueError; so do labels not seen in fit, unless
    ``allow_unknown``, where they get the code -1 (they equal no fitted class).
    """
    Y = as_columns(y)
    codes = np.empty(Y.shape, dtype=np.int64)
    for a, (attribute, cls) in enumerate(zip(attributes, classes)):
        what = f"{input_name} (attribute {attribute!r})"
        kind, fitted = label_kind(Y[:, a], what), label_kind(cls, "classes")
        if kind != fitted:
            raise ValueError(
                f"{what} holds {kind}s, but the retriever was fitted on {fitted}s "
                f"({cls.tolist()[:5]}...); labels of another kind never match."
            )
        codes[:, a], unknown = lookup(cls, Y[:, a])
        if unknown and not allow_unknown:
            raise ValueError(
                f"{what} has labels not seen in fit: {unknown[:10]}; known "
                f"labels: {cls.tolist()}."
            )
    return codes


def fitted_label_codes(y, attributes, attribute_classes, *, n_samples=None,
                       allow_unknown=False, who="retriever"):
    """``(y, codes)``: labels checked against a fitted retriever's
    ``attributes`` (a DataFrame's columns matched by name), and their class
    indices in ``attribute_classes``."""
    y = check_labels(align_columns(y, attributes), attributes=attributes)
    n_attr, n_fit = 1 if y.ndim == 1 else y.shape[1], len(attributes)
    wrong_rows = n_samples is not None and y.shape[0] != n_samples
    if n_attr != n_fit or wrong_rows:
        n = "n_samples" if n_samples is None else n_samples
        raise ValueError(
            f"y must have shape ({n},) or ({n}, {n_fit}); got {y.shape} (y has "
            f"{n_attr} attribute(s); the {who} was fitted on {n_fit}: "
            f"{attributes})."
        )
    return y, label_codes(y, attribute_classes, attributes,
                          allow_unknown=allow_unknown)
