"""skbackward.datasets: the digits in three styles."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from skbackward.datasets import load_digit_styles


def test_three_styles_of_every_digit():
    d = load_digit_styles()
    digits = load_digits()
    n = len(digits.images)
    assert d.data.shape == (3 * n, 64) and d.images.shape == (3 * n, 8, 8)
    np.testing.assert_array_equal(d.data, d.images.reshape(3 * n, -1))
    base = digits.images / 16.0
    np.testing.assert_array_equal(d.images[:n], base)
    np.testing.assert_array_equal(d.images[n:2 * n], base[:, :, ::-1])
    np.testing.assert_array_equal(d.images[2 * n:], np.rot90(base, 1, axes=(1, 2)))
    assert d.target.shape == (3 * n, 2) and d.attribute_names == ["digit", "style"]
    assert d.target[:, 0].tolist() == digits.target.tolist() * 3
    styles = ["original"] * n + ["mirrored"] * n + ["rotated"] * n
    assert d.target[:, 1].tolist() == styles
    np.testing.assert_array_equal(d.groups, np.tile(np.arange(n), 3))
    assert 0 <= d.data.min() and d.data.max() <= 1


def test_frame_and_return_X_y():
    X, y = load_digit_styles(return_X_y=True, as_frame=True)
    assert isinstance(y, pd.DataFrame) and list(y.columns) == ["digit", "style"]
    bunch = load_digit_styles()
    np.testing.assert_array_equal(X, bunch.data)
    assert y.to_numpy().tolist() == bunch.target.tolist()


@pytest.mark.parametrize("kwargs", [dict(return_X_y="no"), dict(as_frame="yes"),
                                    dict(return_X_y=1)])
def test_flags_must_be_booleans(kwargs):
    # "no" is truthy: it must not return a tuple
    with pytest.raises(ValueError, match=f"'{next(iter(kwargs))}' parameter"):
        load_digit_styles(**kwargs)
