"""A distilled student's teacher: fitted (or a prefit one copied), and the
labels given with a prefit teacher checked against the ones it holds."""

import copy

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from .._network._model import embed
from .._utils._validation import check_all_params
from .._utils._warnings import warn_caller
from ._backward import BackwardSearchRetriever
from ._context import fit_feature_weight
from ._training import train_retriever

# rows of X compared with a prefit teacher's indexed items
SAME_ITEMS_SAMPLE = 16


def fit_teacher(teacher, X, y, rng, *, prefit, random_state):
    """The fitted teacher of a :class:`~skbackward.DistilledRetriever`: a copy
    of a prefit ``teacher`` (without its index: the student builds the one
    both use), or a clone of ``teacher`` (the default search when None)
    fitted on ``X, y``, seeded from ``rng`` when its own ``random_state`` is
    None."""
    teacher = BackwardSearchRetriever() if teacher is None else teacher
    if prefit:
        check_is_fitted(teacher)
        # the student reads its search parameters: they must be valid
        check_all_params(teacher)
        # without its index: this retriever builds the one both use
        index = teacher.__dict__.get("vector_index_")
        return copy.deepcopy(teacher, memo={id(index): None})
    teacher = clone(teacher)
    if teacher.random_state is None:
        if random_state is None and teacher.memory is not None:
            # the seed drawn below is new at every fit: nothing to reuse
            teacher.set_params(memory=None)
            warn_caller(
                "teacher__memory caches nothing with random_state=None "
                "here and on the teacher: every fit draws a new seed. "
                "Pass an int random_state to reuse the teacher's network.",
                UserWarning,
            )
        teacher.set_params(random_state=rng.randint(np.iinfo(np.int32).max))
    check_all_params(teacher)
    # without its index: this retriever builds the one both use; beyond
    # its network, a teacher learns its ranking's choices (the default
    # feature_weight="auto" is chosen here, from the same training data)
    X, _, codes, _ = train_retriever(teacher, X, y)
    fit_feature_weight(teacher, X, codes)
    return teacher


def check_teacher_labels(given, teacher, X, codes):
    """Refuse labels that contradict those of a prefit teacher's own items
    (``given``: the ``teacher`` parameter; ``teacher``: its fitted copy).

    The student learns from the teacher's network, not from ``y``: ``y``
    only labels the index the scores read. When ``X`` holds the items
    the prefit teacher indexed (as many, with the same embeddings at
    evenly spaced rows), its labels are known, and a ``y`` that differs
    (e.g. shifted by one class) would make every score silently wrong.
    """
    index = given.__dict__.get("vector_index_")
    n = X.shape[0]
    if index is None or index.n_items_ != n or index.labels_ is None:
        return
    rows = np.unique(np.linspace(0, n - 1, min(n, SAME_ITEMS_SAMPLE))
                     .round().astype(np.int64))
    stored = np.concatenate([index.embeddings(r, r + 1) for r in rows])
    Z = embed(teacher.model_, X[rows], teacher.device)
    if not np.allclose(Z, stored, rtol=1e-4, atol=1e-5):
        return  # other items: y is the only truth about them
    held = teacher.encode_labels(index.labels_)
    differ = np.flatnonzero((held != codes).any(axis=1))
    if differ.size:
        r = int(differ[0])
        raise ValueError(
            f"y differs from the labels the prefit teacher holds for these "
            f"items (its indexed items, the same X) at {differ.size} of {n} "
            f"rows: row {r} has y {_row(codes, r, teacher)} but the teacher "
            f"{_row(held, r, teacher)}. "
            "Pass the labels the teacher was fitted with, or fit a new "
            "teacher (prefit=False)."
        )


def _row(codes, r, retriever):
    """The labels of row ``r`` of ``codes``, as the user wrote them."""
    labels = [cls[c].item() if hasattr(cls[c], "item") else cls[c]
              for cls, c in zip(retriever.attribute_classes_, codes[r])]
    return labels[0] if len(labels) == 1 else labels
