"""On real two-attribute features (PACS), when the data is present.

Research-use data read from ../shared/data; skipped elsewhere.
"""

from pathlib import Path

import numpy as np
import pytest

from skbackward import BackwardSearchRetriever, LabelFilterRetriever
from skbackward.metrics import retrieval_scores

PACS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pacs_effnet_lite0.npz"


@pytest.fixture(scope="module")
def pacs():
    if not PACS.exists():
        pytest.skip(f"PACS features not found at {PACS}")
    d = np.load(PACS)
    rng = np.random.RandomState(0)
    idx = rng.permutation(len(d["X"]))[:3000]  # a subset keeps the test fast
    X = d["X"][idx].astype(np.float32)
    y = np.column_stack([d["domain"][idx], d["label"][idx]]).astype(object)
    return X[:2000], X[2000:], y[:2000], y[2000:]


def test_filtered_search_beats_the_label_filter_on_pacs(pacs):
    X_train, X_test, y_train, y_test = pacs
    params = dict(epochs=5, random_state=0)
    search = BackwardSearchRetriever(**params).fit(X_train, y_train)
    label_filter = LabelFilterRetriever(**params).fit(X_train, y_train)
    for ret in (search, label_filter):
        ret.index(X_test, y_test)
    figures = {
        name: retrieval_scores(ret, X_test, y_test, condition_on=0, n_queries=300,
                               exclude_own_class=True, X_is_index=True)
        for name, ret in (("search", search), ("filter", label_filter))
    }
    assert figures["search"]["precision"] > 0.85
    assert figures["search"]["precision"] >= figures["filter"]["precision"]
    assert figures["search"]["preservation"] >= figures["filter"]["preservation"]
