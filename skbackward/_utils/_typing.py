"""Type aliases of the public API's annotations (for type checkers; the
annotations are not evaluated at run time)."""

from typing import Any, Dict, Union  # noqa: UP035 (evaluated on Python 3.9)

import numpy as np
from numpy.typing import ArrayLike, NDArray

# a label of one attribute: a string or a number
Label = Union[str, int, float, np.generic]
# ``condition=``: a label for every query, one per query, or
# ``{attribute: label or labels}``
Condition = Union[Label, ArrayLike, Dict[Any, Any], None]  # noqa: UP006
# ``condition_weight=``: one weight, or ``{attribute: weight or weights}``
ConditionWeight = Union[float, Dict[Any, Any], None]  # noqa: UP006
# a ``random_state`` parameter, as scikit-learn takes it
RandomState = Union[int, np.random.RandomState, None]
FloatArray = NDArray[np.floating[Any]]
IntArray = NDArray[np.int64]

__all__ = ["ArrayLike", "Condition", "ConditionWeight", "FloatArray", "IntArray",
           "Label", "NDArray", "RandomState"]
