"""Retrieval metrics at rank k, reference sets, and scorers for model selection.

Naming is truthful: :func:`precision_at_k` is what the paper (Lee & Kim, 2024)
reports as "mAP@k"; :func:`average_precision_at_k` is the standard
information-retrieval AP@k. :func:`attribute_preservation_at_k` and
:func:`tag_similarity_at_k` measure whether the results keep the query's
context (the paper's mTS@k is the latter).

The public names live in private modules, one concern each:
``_ranking`` (the metrics at rank k), ``_reference`` (the reference sets of
:func:`conditional_neighbors`) and ``_scorer`` (:func:`retrieval_scores` and
the scorer factories).
"""

from ._ranking import (
    attribute_preservation_at_k,
    average_precision_at_k,
    hit_at_k,
    neighbor_overlap_at_k,
    precision_at_k,
    tag_similarity_at_k,
)
from ._reference import conditional_neighbors
from ._scorer import (
    make_average_precision_scorer,
    make_precision_scorer,
    make_retrieval_scorer,
    retrieval_scores,
)

__all__ = [
    "attribute_preservation_at_k",
    "average_precision_at_k",
    "conditional_neighbors",
    "hit_at_k",
    "make_average_precision_scorer",
    "make_precision_scorer",
    "make_retrieval_scorer",
    "neighbor_overlap_at_k",
    "precision_at_k",
    "retrieval_scores",
    "tag_similarity_at_k",
]
