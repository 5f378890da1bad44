"""Fixtures and data shared by the tests (the thread and SciPy set-up is in
the repository's root conftest.py, which also covers the doctests)."""

import importlib
import os
import sys

import numpy as np
import pytest
import torch
from hypothesis import settings
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.overrides import TorchFunctionMode

import skbackward

# Property-based tests (hypothesis): the same examples on every run by
# default, so the suite is reproducible; HYPOTHESIS_PROFILE=explore draws
# ten times as many, at random, to look for new failures.
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", max_examples=1000, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def require(module):
    """Import an optional extra's module, or skip the test without it.

    With ``SKBACKWARD_REQUIRE_EXTRAS=1`` (as ``.ci/run`` sets) a missing or
    broken extra fails instead: in CI the optional-extra tests must run.
    """
    if os.environ.get("SKBACKWARD_REQUIRE_EXTRAS") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A Milvus server (the ``milvus`` package's standalone Milvus 2.3) for
    the whole session, on a free port and a data folder of its own, stopped
    and removed at the end; the MilvusIndex tests run on it and on Milvus
    Lite. Skipped without the package, failed under
    ``SKBACKWARD_REQUIRE_EXTRAS=1``."""
    require("milvus")
    from .milvus_server import Server

    server = Server(tmp_path_factory.mktemp("milvus_server")).start()
    yield server
    server.stop()
    server.remove()


@pytest.fixture(scope="session")
def two_attribute_items():
    """300 items of :func:`two_attribute_data` and their labels, int shapes
    and str colours side by side in an object array."""
    X, shape, colour = two_attribute_data(n=300)
    return X, np.array([shape, colour], dtype=object).T


def assert_same_neighbours(a, b, atol, max_differ=1.0):
    """Two ``(distances, indices)`` results equal up to the order of near-ties.

    The distances agree position by position within ``atol``, so where the
    indices differ the two items are equally near; at most ``max_differ`` of
    the indices may differ.
    """
    (d1, i1), (d2, i2) = a, b
    np.testing.assert_allclose(d1, d2, rtol=0, atol=atol)
    assert np.mean(i1 != i2) <= max_differ


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


class HostReads(TorchFunctionMode):
    """Records every value skbackward's own code reads back from a tensor to
    the host: ``item``, ``bool``/``int``/``float``, ``tolist``, ``cpu``,
    ``numpy``, ``nonzero``, ``masked_select`` and boolean-mask indexing
    (which reads back how many rows it selects). On a GPU each of these waits
    for the device to finish its queue; on the CPU they are free, so only
    counting them shows what a GPU would pay. Reads made inside torch itself
    (e.g. Adam's step counter, a CPU tensor even on a GPU) are not counted.

    ``calls``: ``(name, file, line, function)`` of each read, in order.
    """

    READS = {"item", "tolist", "cpu", "numpy", "nonzero", "masked_select",
             "__bool__", "__int__", "__float__", "__index__"}
    # torch's Python wrappers that forward a call: the caller is outside them
    _WRAPPERS = tuple(os.path.join(os.path.dirname(torch.__file__), f)
                      for f in ("_tensor.py", "overrides.py", "functional.py"))
    _OURS = os.path.dirname(skbackward.__file__) + os.sep

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.READS or (
            name in ("__getitem__", "__setitem__") and _boolean_index(args[1])
        ):
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename in self._WRAPPERS:
                frame = frame.f_back
            if frame is not None and frame.f_code.co_filename.startswith(self._OURS):
                code = frame.f_code
                self.calls.append((name, code.co_filename, frame.f_lineno,
                                   code.co_name))
        return func(*args, **(kwargs or {}))


def _boolean_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts)
