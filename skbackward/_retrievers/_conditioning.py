"""Conditioning: the strategy's hooks and the one path every query takes.

A strategy (Backward Search, a distilled student, a centroid shift, ...)
moves query embeddings towards a parsed condition
(``_condition_embeddings``). :meth:`ConditioningMixin._condition` is the
one place that does so: ``transform``, ``condition_report`` and
``kneighbors`` (per batch, and through it the dask blocks) all call it, so
the queries with a condition, the classes ``preserve`` keeps, whether the
heads reached the condition and the vectors the index ranks by are worked
out once, the same way. The helpers that need no estimator are module
functions, shared with the distilled student (which reads its teacher's).
"""

from abc import ABCMeta, abstractmethod
from typing import NamedTuple

import numpy as np
from sklearn.preprocessing import normalize

from .._network._model import predict_labels
from ._conditions import parse_condition


class Conditioned(NamedTuple):
    """What :meth:`ConditioningMixin._condition` gives for a batch of queries."""

    embedding: np.ndarray  # (n, D) the moved embeddings (the queries' own without)
    n_steps: np.ndarray  # (n,) int64 gradient steps each took
    keep: np.ndarray | None  # (n, A) preserved classes, -1 elsewhere; or None
    reached: np.ndarray | None  # (n,) bool, for strategies aiming at the condition
    asked: int  # conditioned queries (0 for strategies not aiming at it)
    missed: int  # of those, the ones whose condition the heads do not predict
    queries: np.ndarray | None  # what the index ranks by (with ``rank=True``)
    prefer: list | None  # preference tiers of the ranking (with ``rank=True``)


def blend_directions(Z, Z0, weight):
    """``(1 - weight) * Z/|Z| + weight * Z0/|Z0|`` row by row (``Z`` itself
    when ``weight`` is 0): a query direction between the moved embedding and
    the query's own."""
    if weight == 0:
        return Z
    return (1 - weight) * normalize(Z) + weight * normalize(Z0)


def preserved_attributes(preserve, attributes):
    """Indices of the ``attributes`` that ``preserve`` ("none", "predicted"
    or attribute names) keeps when a query does not ask for them."""
    if isinstance(preserve, str):
        return list(range(len(attributes))) if preserve == "predicted" else []
    unknown = [a for a in preserve if a not in attributes]
    if unknown:
        raise ValueError(
            f"preserve names attribute(s) {unknown} the model was not fitted "
            f"on; known attributes: {attributes}."
        )
    return [attributes.index(a) for a in preserve]


def kept_classes(network, Z0, targets, preserved, device):
    """(n, A): the query's own predicted class of every ``preserved``
    attribute it does not condition on, -1 elsewhere; None when nothing is
    preserved. Queries without any condition keep nothing."""
    if not preserved:
        return None
    predicted = predict_labels(network, Z0, device)
    keep = np.full(targets.shape, -1, dtype=np.int64)
    asked = (targets >= 0).any(axis=1, keepdims=True)
    keep[:, preserved] = np.where(asked & (targets[:, preserved] < 0),
                                  predicted[:, preserved], -1)
    return keep


def reached_conditions(network, Z, targets, device):
    """Whether the heads predict every wanted class at ``Z``: (n,) bool."""
    predicted = predict_labels(network, Z, device)
    return ((targets < 0) | (predicted == targets)).all(axis=1)


class ConditioningMixin(metaclass=ABCMeta):
    """The strategy's hooks, and :meth:`_condition`, the path that uses them."""

    @abstractmethod
    def _condition_embeddings(self, Z, targets, weights, keep):
        """Move query embeddings ``Z`` towards the parsed condition.

        Called only with queries that have a condition. ``keep`` (n, A) holds
        the query's own predicted class of each attribute to preserve (-1
        elsewhere), or is None. Returns the moved embeddings and the gradient
        steps each took (zeros for strategies that do not search).
        """

    # The ``preserve`` setting that applies: the parameter for the strategies
    # that have one, "none" for the others.
    def _preserve_setting(self):
        return getattr(self, "preserve", "none")

    # How much a conditioned query's ranking looks at the input features
    # (``feature_weight``): 0 for the strategies without the option.
    def _feature_weight(self):
        return getattr(self, "feature_weight", 0.0)

    def _ranking_embeddings(self, Z, Z0):
        """The query vectors the index ranks by: the moved ``Z`` (``Z0``: the
        queries' own embeddings, for strategies that blend the two)."""
        return Z

    # Whether the strategy moves the query until the heads predict the
    # condition (a search, or a student of one): those warn when a notable
    # share of a batch did not get there (``condition_report``).
    _aims_at_condition = False

    # Whether kneighbors ranks the items the heads predict to carry the
    # condition before the others (the label filter and its relatives).
    _prefers_predicted = False

    def _parse_condition(self, condition, n_queries, condition_weight):
        """``(targets, weights)``: (n, A) class indices (-1: unconstrained)
        and their weights."""
        return parse_condition(
            condition, self.attributes_, self.attribute_classes_, n_queries,
            condition_weight,
        )

    def _preserved_attributes(self):
        return preserved_attributes(self._preserve_setting(), self.attributes_)

    def _kept_classes(self, Z0, targets):
        return kept_classes(self.model_, Z0, targets, self._preserved_attributes(),
                            self.device)

    def _reached(self, Z, targets):
        return reached_conditions(self.model_, Z, targets, self.device)

    def _condition(self, Z0, targets, weights, *, rank=False):
        """The one conditioning path: queries ``Z0`` moved towards parsed
        ``targets`` (None: no condition) with their ``weights``.

        Only the queries with a condition go to the strategy; the others
        keep their embedding and take no step. ``rank``: also the vectors
        the index ranks by and the preference tiers (the asked condition,
        then the preserved classes) for strategies that rank predicted
        matches first. Returns a :class:`Conditioned`.
        """
        n_steps = np.zeros(Z0.shape[0], dtype=np.int64)
        if targets is None:
            return Conditioned(Z0, n_steps, None, None, 0, 0,
                               Z0 if rank else None, None)
        keep = self._kept_classes(Z0, targets)
        Z = Z0.copy()
        rows = np.flatnonzero((targets >= 0).any(axis=1))
        if rows.size:
            Z[rows], n_steps[rows] = self._condition_embeddings(
                Z0[rows], targets[rows], weights[rows],
                None if keep is None else keep[rows],
            )
        reached, asked, missed = None, 0, 0
        if self._aims_at_condition:
            reached = self._reached(Z, targets)
            wanted = (targets >= 0).any(axis=1)
            asked, missed = int(wanted.sum()), int((wanted & ~reached).sum())
        queries = prefer = None
        if rank:
            queries = self._ranking_embeddings(Z, Z0)
            if self._prefers_predicted:
                prefer = [targets] + ([] if keep is None else [keep])
        return Conditioned(Z, n_steps, keep, reached, asked, missed, queries, prefer)
