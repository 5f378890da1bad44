"""Warnings that point at the user's line, past this package's frames."""

import os
import sys
import warnings

import sklearn

# frames a warning skips to reach the user's line: this package's, scikit-learn's
_LIBRARY_DIRS = (
    # skbackward/, two levels above this file (skbackward/_utils/_warnings.py)
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
    os.path.dirname(sklearn.__file__) + os.sep,
)


def warn_caller(message, category):
    """``warnings.warn`` pointing at the caller's line, past this package's
    frames and scikit-learn's (set_output wraps transform; scorers call
    kneighbors; GridSearchCV calls fit)."""
    frame, stacklevel = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(
        _LIBRARY_DIRS
    ):
        frame, stacklevel = frame.f_back, stacklevel + 1
    warnings.warn(message, category, stacklevel=stacklevel)
