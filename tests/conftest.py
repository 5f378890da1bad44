import os

# scikit-learn's check_array_api_input runs only when scipy was imported with
# this set; without it the check is skipped, and we want every check to run.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

# The tests train tiny networks on tiny data: there, a second OpenMP thread
# costs more in synchronisation than it gains, and on a loaded 2-core machine
# it can slow each step tenfold. Users keep torch's default.
torch.set_num_threads(1)

# Property-based tests (hypothesis): the same examples on every run by
# default, so the suite is reproducible; HYPOTHESIS_PROFILE=explore draws
# ten times as many, at random, to look for new failures.
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def two_attribute_data(n=240, seed=0):
    """Features that encode two attributes (3 shapes x 4 colours) plus noise.

    Returns ``X, shape, colour``: int shapes 0..2 and colour names.
    """
    rng = np.random.RandomState(seed)
    shape = rng.randint(3, size=n)
    colour = rng.randint(4, size=n)
    X = np.hstack([np.eye(3)[shape] * 3, np.eye(4)[colour] * 3])
    X = X + rng.normal(scale=0.3, size=X.shape)
    names = np.array(["red", "green", "blue", "black"])
    return X, shape, names[colour]


@pytest.fixture(scope="session")
def digits():
    """``X_train, X_test, y_train, y_test``: a stratified 70/30 split of digits."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
