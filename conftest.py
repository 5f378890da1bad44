"""Pytest set-up shared by tests/ and the doctests of skbackward/."""

import os

# scikit-learn's check_array_api_input runs only when scipy was imported with
# this set; without it the check is skipped, and we want every check to run.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import torch  # noqa: E402

# The tests and the docstring examples train tiny networks on tiny data:
# there, a second OpenMP thread costs more in synchronisation than it gains,
# and on a loaded 2-core machine it can slow each step tenfold. Users keep
# torch's default.
torch.set_num_threads(1)


def pytest_report_header(config):
    # CI tests the installed wheel, not the checkout: say which one this is
    import skbackward

    return f"skbackward {skbackward.__version__} from {skbackward.__file__}"
