"""Data for the benchmarks: the PACS features when present, else digits."""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

PACS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pacs_effnet_lite0.npz"


def load(name="auto", test_size=0.3, random_state=0):
    """``(name, X_train, X_test, y_train, y_test)``; y has one column per attribute.

    "pacs": PACS EfficientNet-Lite0 features, attributes ``domain`` and
    ``label`` (a DataFrame-free object array; attribute names in ``names``).
    "digits": scikit-learn's digits, one attribute. "auto": PACS if present.
    """
    if name == "auto":
        name = "pacs" if PACS.exists() else "digits"
    if name == "pacs":
        d = np.load(PACS)
        X = d["X"].astype(np.float32)
        y = np.column_stack([d["domain"], d["label"]]).astype(object)
        names = ["domain", "label"]
        strat = d["domain"] + "/" + d["label"]
    else:
        X, y = load_digits(return_X_y=True)
        X = X.astype(np.float32)
        y, names, strat = y[:, None], ["digit"], y
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_size, stratify=strat, random_state=random_state
    )
    return name, names, X_tr, X_te, y_tr, y_te
