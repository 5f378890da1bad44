"""Vector indexes: where a retriever keeps its items and how it searches them.

Every retriever takes a parameter ``vector_index``: ``None`` (an exact index,
the default) or one of these objects. They are scikit-learn style parameter
objects: ``get_params``/``set_params`` work, so ``GridSearchCV`` can tune e.g.
``vector_index__nprobe``, and ``clone`` gives an unfitted copy. A retriever
never changes the object it is given: ``fit`` and
:meth:`skbackward.BackwardSearchRetriever.index` build a fitted copy, the
retriever's ``vector_index_``.

- :class:`ExactIndex`: exact cosine top-k, tiled over queries and items, its
  temporary memory bounded by ``working_memory``. Right up to about a million
  items.
- :class:`FaissIndex`: an approximate (or exact) index of faiss
  (``pip install "skbackward[faiss]"``), any factory string: "IVF1024,Flat",
  "HNSW32", "IVF4096,PQ32", ... Conditional rankings run inside faiss through
  its ID selectors.
- :class:`MilvusIndex`: the items in a Milvus collection
  (``pip install "skbackward[milvus]"``): a Milvus Lite file, or a Milvus
  server shared by processes and machines. Conditional rankings run inside
  Milvus as filter expressions on the predicted classes.

Writing another backend: subclass :class:`VectorIndex` and implement the
building hooks (``_start_build``, ``_add``, optionally ``_n_training_items``,
``_train``, ``_end_build``, ``_grown``) and the query hooks (``_search``,
``_embeddings``, ``_predicted``); the public :meth:`VectorIndex.build`,
:meth:`VectorIndex.extend`, :meth:`VectorIndex.search`,
:meth:`VectorIndex.embeddings` and :meth:`VectorIndex.predicted` call them
(a retriever calls only these).
"""

from ._base import VectorIndex
from ._exact import ExactIndex
from ._faiss_index import FaissIndex
from ._milvus import MilvusIndex

__all__ = ["ExactIndex", "FaissIndex", "MilvusIndex", "VectorIndex"]

# shown and pickled by their public path (see skbackward/__init__.py)
for _cls in (ExactIndex, FaissIndex, MilvusIndex, VectorIndex):
    _cls.__module__ = __name__
del _cls
