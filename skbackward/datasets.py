"""Data with several attributes, built from scikit-learn's embedded digits.

Conditional retrieval needs items with more than one label ("this 3, but
mirrored"). :func:`load_digit_styles` makes such data from
:func:`sklearn.datasets.load_digits` alone, so examples, tests and
benchmarks run anywhere without a download.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_params

__all__ = ["load_digit_styles"]

STYLES = ("original", "mirrored", "rotated")


@validate_params({"return_X_y": ["boolean"], "as_frame": ["boolean"]},
                 prefer_skip_nested_validation=True)
def load_digit_styles(
    *, return_X_y: bool = False, as_frame: bool = False,
) -> Bunch | tuple[Any, Any]:
    """Load the digits in three styles: two attributes, digit and style.

    Every 8x8 image of scikit-learn's digits (1797) appears three times: as
    written, mirrored left-right, and rotated by 90 degrees anticlockwise.
    Each row has two attributes, its ``digit`` (0-9) and its ``style``, so a
    query can ask for "this 3, but mirrored" and a result can be checked for
    keeping the digit. The three styles of one image are one *group*: keep a
    group on one side of a split (``GroupKFold``, ``GroupShuffleSplit``), or
    the database holds a restyled copy of the query itself.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        Return ``target`` as a pandas DataFrame with columns ``digit`` and
        ``style`` (the attribute names a retriever then uses); needs pandas.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With ``data``, ndarray of shape (5391, 64): pixels in [0, 1], rows
        ordered by style, then by image; ``target``, ndarray of shape
        (5391, 2) of objects (digit as an int, style as a str), or a
        DataFrame with ``as_frame=True``; ``groups``, ndarray of shape
        (5391,): the index of each row's original image; ``images``,
        ndarray of shape (5391, 8, 8); ``attribute_names``, ``["digit",
        "style"]``; ``DESCR``, a description. With ``return_X_y=True``, the
        tuple ``(data, target)`` instead.

    Examples
    --------
    >>> from skbackward.datasets import load_digit_styles
    >>> d = load_digit_styles()
    >>> d.data.shape, d.target[1797 + 5].tolist()
    ((5391, 64), [5, 'mirrored'])
    """
    digits = load_digits()
    base = digits.images / 16.0
    images = np.concatenate([
        base,
        base[:, :, ::-1],  # mirrored left-right
        np.rot90(base, k=1, axes=(1, 2)),  # rotated 90 degrees anticlockwise
    ])
    n = len(base)
    names = ["digit", "style"]
    columns = [np.tile(digits.target, len(STYLES)), np.repeat(STYLES, n)]
    if as_frame:
        import pandas as pd

        target = pd.DataFrame(dict(zip(names, columns)))
    else:  # int digits and str styles side by side
        target = np.empty((len(STYLES) * n, 2), dtype=object)
        target[:, 0], target[:, 1] = columns[0].tolist(), columns[1]
    data = images.reshape(len(images), -1)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        groups=np.tile(np.arange(n), len(STYLES)),
        images=images,
        attribute_names=names,
        DESCR=(
            "scikit-learn's digits (1797 images of 8x8 pixels in [0, 1]), "
            "each as written, mirrored left-right and rotated by 90 degrees: "
            "5391 rows with the attributes digit (0-9) and style "
            f"{list(STYLES)}; groups gives each row's original image."
        ),
    )
