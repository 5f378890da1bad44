"""Labels stored in Milvus: INT64 for integers that fit, else VARCHAR of a
text that maps back to one class; the checks that they fit."""

import numbers

import numpy as np

VARCHAR_BYTES = 65535  # Milvus's largest VARCHAR (UTF-8 bytes; Lite counts characters)


def column_kind(values):
    """How a column of labels is stored: "int" (INT64) for integers that fit
    and booleans, else "str" (VARCHAR of :func:`label_text`)."""
    dtype = np.asarray(values).dtype
    fits = dtype.kind in "bi" or (dtype.kind == "u" and dtype.itemsize < 8)
    return "int" if fits else "str"


def label_text(value):
    """The VARCHAR text of a label: equal labels get equal texts (``1``,
    ``1.0`` and ``True`` are one class, as in ``np.unique``), so labels of
    parts given with other dtypes still map back to one class."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _storable_text(value, what):
    """The text of the label ``value``, or a ValueError saying why Milvus
    cannot store it."""
    text = label_text(value)
    if "\x00" in text:
        raise ValueError(
            f"{what} has a label with a NUL character ({text[:40]!r}); Milvus "
            "cannot store it in a VARCHAR: remove it, or encode the labels as "
            "integers."
        )
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > VARCHAR_BYTES:
        raise ValueError(
            f"{what} has a label of {size:,} bytes ({text[:20]!r}...); Milvus "
            f"stores labels as VARCHAR of at most {VARCHAR_BYTES:,} bytes "
            "(UTF-8): shorten the labels, or encode them as integers."
        )
    return text


def check_storable(labels, kinds, values):
    """Check, before anything is written, that Milvus can store ``labels``.

    Parameters
    ----------
    labels : ndarray of shape (n, n_columns)
    kinds : list of str or None
        The kind ("int" or "str") each column is stored as (an append), or
        None (a new build: the kinds of ``labels``).
    values : list of list or None
        The distinct labels of each "str" column seen so far (None: none).

    Returns
    -------
    kinds, values : the kinds and the distinct labels with those of ``labels``.
    """
    new_kinds = [column_kind(col) for col in labels.T]
    for a, (new, old) in enumerate(zip(new_kinds, kinds or new_kinds)):
        if new != old:
            stored = "INT64" if old == "int" else "VARCHAR (text)"
            raise ValueError(
                f"y (attribute {a}) holds {labels[:, a].dtype} labels, but the "
                f"Milvus collection stores attribute {a} as {stored}, as the "
                "items indexed before were given: pass labels of that kind "
                + ("(integers)" if old == "int" else "(not integers)") + ", or "
                "rebuild the index (index(X, y) without append)."
            )
    values = [list(v) for v in values] if values else [[] for _ in new_kinds]
    for a, kind in enumerate(new_kinds):
        if kind == "str":
            values[a] = _text_table(labels[:, a], values[a], f"y (attribute {a})")
    return new_kinds, values


def _text_table(column, known, what):
    """``known`` distinct labels with those of ``column`` added; refuses
    labels Milvus cannot store and unequal labels written as one text."""
    texts = {label_text(v): v for v in known}
    out = list(known)
    for v in dict.fromkeys(column.tolist()):  # distinct, in order of appearance
        text = _storable_text(v, what)
        if text not in texts:
            texts[text] = v
            out.append(v)
        elif texts[text] != v:
            raise ValueError(
                f"{what} has the labels {texts[text]!r} and {v!r}, which differ but "
                f"are both written {text!r} in Milvus; make them distinct as text."
            )
    return out


def labels_from_text(texts, known):
    """The labels whose texts are ``texts`` (the distinct labels ``known``)."""
    table = {label_text(v): v for v in known}
    return [table[t] for t in texts]
