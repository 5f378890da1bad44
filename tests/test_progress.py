"""``verbose``: a progress bar with the time left on stderr, per stage."""

import re

import numpy as np
import pytest

from skbackward import (
    BackwardSearchRetriever,
    DistilledRetriever,
    LabelFilterRetriever,
)
from skbackward._utils import _progress
from skbackward._utils._progress import ProgressBar, clock

pytestmark = pytest.mark.filterwarnings(
    "ignore::skbackward.exceptions.ConditionNotReachedWarning"
)

FAST = dict(epochs=3, embedding_dim=16, random_state=0)
# "desc:  33%|######              | 1/3 [00:00<00:00, 12.34 epoch/s]"
BAR = r"{}: +\d+%\|[# ]{{20}}\| (\d+)/{} \[\d\d:\d\d<(\d\d:\d\d|\?), [\d.]+ {}/s\]"


def bars(err, desc, total, unit):
    """The counts drawn by the bars named ``desc`` over ``total`` units."""
    pattern = BAR.format(re.escape(desc), total, unit)
    return [int(m.group(1)) for m in re.finditer(pattern, err)]


def test_verbose_1_draws_a_bar_per_stage_with_time_left(digits, capsys):
    X_train, X_test, y_train, _ = digits
    ret = BackwardSearchRetriever(**FAST, max_steps=5, verbose=1)
    ret.fit(X_train, y_train)
    out, err = capsys.readouterr()
    assert out == ""
    assert bars(err, "training", 3, "epoch")[-1] == 3
    assert bars(err, "indexing", len(X_train), "item")[-1] == len(X_train)
    assert "loss=" not in err  # the per-epoch lines are verbose=2's
    # the time left, once a unit is done, is a clock, not "?"
    assert re.search(r"training: +100%.*<00:00,", err)
    ret.index(X_test)
    ret.kneighbors(X_test[:7], condition=3)
    ret.transform(X_test[:5], condition=3)
    err = capsys.readouterr().err
    assert bars(err, "indexing", len(X_test), "item")[-1] == len(X_test)
    assert bars(err, "kneighbors", 7, "query")[-1] == 7
    assert bars(err, "transform", 5, "query")[-1] == 5
    assert err.endswith("\n")


@pytest.mark.parametrize("make", [
    lambda v: BackwardSearchRetriever(**FAST, max_steps=5, verbose=v),
    lambda v: LabelFilterRetriever(**FAST, verbose=v),
    lambda v: DistilledRetriever(BackwardSearchRetriever(**FAST, max_steps=5),
                                 epochs=2, targets_per_sample=1, random_state=0,
                                 verbose=v),
])
def test_verbose_0_is_silent_and_2_adds_the_losses(make, digits, capsys):
    X_train, X_test, y_train, _ = digits
    ret = make(0).fit(X_train, y_train)
    ret.index(X_test)
    ret.kneighbors(X_test[:5], condition=3)
    ret.transform(X_test[:5])
    assert capsys.readouterr() == ("", "")
    make(2).fit(X_train, y_train)
    out, err = capsys.readouterr()
    assert out == ""
    epochs = make(2).epochs
    prefix = "student " if isinstance(ret, DistilledRetriever) else ""
    assert len(re.findall(rf"{prefix}epoch \d+/{epochs} loss=[\d.]+", err)) == epochs
    assert bars(err, f"{prefix}training", epochs, "epoch")[-1] == epochs


def test_transform_in_batches_equals_one_batch(digits, monkeypatch):
    """transform runs in batches of QUERY_BATCH queries, like kneighbors:
    the same embeddings as one batch, up to float64 rounding (Adam's steps
    on a batch's mean loss are scaled by the batch size)."""
    from skbackward._retrievers import _querying

    X_train, X_test, y_train, _ = digits
    ret = BackwardSearchRetriever(**FAST, max_steps=5).fit(X_train, y_train)
    whole = ret.transform(X_test, condition=3)
    monkeypatch.setattr(_querying, "QUERY_BATCH", 7)
    np.testing.assert_allclose(ret.transform(X_test, condition=3), whole,
                               rtol=0, atol=1e-12)


def test_the_bar_estimates_the_time_left(monkeypatch, capsys):
    now = [100.0]
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: now[0])
    with ProgressBar(10, "work", unit="step") as bar:
        now[0] += 4.0
        bar.update(2)  # 2 steps in 4 s: 8 left at 0.5 step/s, 16 s
        assert bar.line(now[0]) == (
            "work:  20%|####                | 2/10 [00:04<00:16, 0.50 step/s]")
        bar.write("a line above")
    err = capsys.readouterr().err
    assert "\ra line above" in err and err.endswith("\n")
    assert clock(3725) == "1:02:05"
