"""skbackward: conditional retrieval over precomputed embeddings.

"Items like this query, but with label c", by Backward Search (Lee & Kim,
PLoS ONE 2024), with a scikit-learn API.
"""

from ._retrievers._backward import BackwardSearchRetriever
from ._retrievers._distilled import DistilledRetriever
from ._retrievers._peers import (
    CentroidShiftRetriever,
    LabelFilterRetriever,
    NearestNeighborRetriever,
)

__version__ = "0.1.0"

# Defined in private modules, shown and pickled by their public path: a
# pickle then names skbackward.BackwardSearchRetriever, which survives any
# reorganisation of the modules behind it.
for _cls in (BackwardSearchRetriever, CentroidShiftRetriever, DistilledRetriever,
             LabelFilterRetriever, NearestNeighborRetriever):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "BackwardSearchRetriever",
    "CentroidShiftRetriever",
    "DistilledRetriever",
    "LabelFilterRetriever",
    "NearestNeighborRetriever",
    "__version__",
]
