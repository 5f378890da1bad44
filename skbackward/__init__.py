"""skbackward: conditional retrieval over precomputed embeddings.

"Items like this query, but with label c", by Backward Search (Lee & Kim,
PLoS ONE 2024), with a scikit-learn API.
"""

from ._backward import BackwardSearchRetriever
from ._distilled import DistilledRetriever
from ._peers import (
    CentroidShiftRetriever,
    LabelFilterRetriever,
    NearestNeighborRetriever,
)

__version__ = "0.1.0"

__all__ = [
    "BackwardSearchRetriever",
    "CentroidShiftRetriever",
    "DistilledRetriever",
    "LabelFilterRetriever",
    "NearestNeighborRetriever",
    "__version__",
]
