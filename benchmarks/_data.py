"""Data sets of the benchmarks: PACS features when present, and digits."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from skbackward.datasets import load_digit_styles

PACS = (Path(__file__).resolve().parents[1].parent / "shared" / "data"
        / "pacs_effnet_lite0.npz")
NAMES = ("auto", "pacs", "digits", "digits_style", "digits_tones")


@dataclass
class Dataset:
    """A train / test split; ``y_*`` are DataFrames, one column per attribute;
    ``groups_test``: which test items are one item in other forms (None when
    the data has no such pairs)."""

    name: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: pd.DataFrame
    y_test: pd.DataFrame
    groups_test: np.ndarray = None

    @property
    def attributes(self):
        return list(self.y_train.columns)


def load(name="auto", test_size=0.3, random_state=0):
    """A :class:`Dataset` by name.

    "pacs": PACS EfficientNet-Lite0 features, attributes ``domain`` and
    ``label``. "digits": scikit-learn's digits, one attribute ``digit``.
    "digits_style": every digit as written, mirrored and rotated, attributes
    ``digit`` and ``style``; the three styles of one image stay on the same
    side of the split. "digits_tones": every digit in six renderings that
    change an image only a little (as written, faint, bold, blurred,
    shifted one pixel, thickened), attributes ``digit`` and ``rendering``;
    the renderings of one image stay on the same side of the split.
    "auto": PACS when the file is there, else digits.
    """
    if name == "auto":
        name = "pacs" if PACS.exists() else "digits"
    if name == "digits_style":
        return _digits_style(test_size, random_state)
    if name == "digits_tones":
        return _digits_tones(test_size, random_state)
    if name == "pacs":
        d = np.load(PACS)
        X = d["X"].astype(np.float32)
        y = pd.DataFrame({"domain": d["domain"], "label": d["label"]}, dtype=object)
        strata = d["domain"] + "/" + d["label"]
    elif name == "digits":
        X, target = load_digits(return_X_y=True)
        X = X.astype(np.float32)
        y, strata = pd.DataFrame({"digit": target}), target
    else:
        raise ValueError(f"unknown data set {name!r}; known: {NAMES}")
    train, test = train_test_split(
        np.arange(len(X)), test_size=test_size, stratify=strata,
        random_state=random_state,
    )
    return _split(name, X, y, train, test)


def _digits_style(test_size, random_state):
    d = load_digit_styles(as_frame=True)
    X, y, source = d.data.astype(np.float32), d.target, d.groups
    split = GroupShuffleSplit(n_splits=1, test_size=test_size,
                              random_state=random_state)
    train, test = next(split.split(X, groups=source))
    return _split("digits_style", X, y, train, test, groups=source)


def _digits_tones(test_size, random_state):
    X, y, source = digit_tones()
    split = GroupShuffleSplit(n_splits=1, test_size=test_size,
                              random_state=random_state)
    train, test = next(split.split(X, groups=source))
    return _split("digits_tones", X, y, train, test, groups=source)


TONES = ("as written", "faint", "bold", "blurred", "shifted", "thickened")


def digit_tones():
    """``(X, y, groups)``: scikit-learn's digits in the six renderings of
    ``TONES``, each a small change of the image (the held-out kind of data
    where a condition changes an item only a little): ``y`` a DataFrame with
    ``digit`` and ``rendering``, ``groups`` the index of the original image."""
    digits = load_digits()
    base = digits.images / 16.0
    padded = np.pad(base, ((0, 0), (1, 1), (1, 1)))
    blurred = sum(padded[:, 1 + i:9 + i, 1 + j:9 + j] * w
                  for i, j, w in [(0, 0, 0.4), (-1, 0, 0.15), (1, 0, 0.15),
                                  (0, -1, 0.15), (0, 1, 0.15)])
    images = np.concatenate([
        base,
        0.5 * base,  # faint
        np.sqrt(base),  # bold: the same strokes, brighter
        blurred,
        np.roll(base, 1, axis=2),  # shifted one pixel right
        np.maximum(base, padded[:, 1:9, 2:10]),  # thickened leftwards
    ])
    n = len(base)
    y = pd.DataFrame({"digit": np.tile(digits.target, len(TONES)),
                      "rendering": np.repeat(TONES, n)})
    X = images.reshape(len(images), -1).astype(np.float32)
    return X, y, np.tile(np.arange(n), len(TONES))


def _split(name, X, y, train, test, groups=None):
    return Dataset(
        name, X[train], X[test],
        y.iloc[train].reset_index(drop=True), y.iloc[test].reset_index(drop=True),
        None if groups is None else np.asarray(groups)[test],
    )
