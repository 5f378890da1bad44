"""Shared docstring text, filled into several estimators' docstrings.

A docstring built as ``"..." + TEXT + "..."`` is an expression, not a
docstring: Python leaves ``__doc__`` empty. :func:`fill_doc` fills named
``{markers}`` in a real docstring instead.
"""

import textwrap


def fill_doc(**blocks):
    """Class or function decorator: replace each ``{name}`` line of the docstring.

    Each ``{name}`` must stand alone on its line; the block (dedented text)
    is indented like the marker.
    """

    def decorate(obj):
        lines = []
        found = set()
        for line in obj.__doc__.splitlines():
            name = line.strip()[1:-1]
            if line.strip() == "{" + name + "}" and name in blocks:
                indent = line[: len(line) - len(line.lstrip())]
                block = textwrap.dedent(blocks[name]).strip("\n")
                lines.append(textwrap.indent(block, indent))
                found.add(name)
            else:
                lines.append(line)
        missing = set(blocks) - found
        if missing:
            raise ValueError(f"{obj.__name__}'s docstring has no {sorted(missing)}.")
        obj.__doc__ = "\n".join(lines)
        return obj

    return decorate


# The training of the embedding and classifier heads, shared by every retriever
# that trains them (BackwardSearchRetriever and the peers): the recipe of the
# paper's public model-building script.
TRAINING_PARAMETERS = """\
embedding_dim : int, default=256
    Dimension ``D`` of the retrieval embedding.
epochs : int, default=30
    Training epochs of the embedding and classifier heads (the published 30).
    More epochs (or a larger ``learning_rate``) make the search reach the
    condition more often and keep *which* item the query was less: a second
    knob beside ``alpha`` (see the user guide's page on the training).
batch_size : int, default=64
    Minibatch size in training, reshuffled every epoch, the last partial
    minibatch kept (a last minibatch of one row is skipped: BatchNorm cannot
    train on one sample). At least 2.
learning_rate : float, default=0.01
    Adam's initial learning rate in training.
weight_decay : float, default=1e-6
    Adam's weight decay in training.
lr_decay : float, default=0.1
    Factor applied to the learning rate after every third of the epochs
    (the published ``StepLR``: x0.1 every 10 of 30 epochs); 1 keeps it
    constant.
"""


# Where the retrievers search: shared by every retriever.
INDEX_PARAMETERS = """\
n_neighbors : int, default=10
    Default number of neighbours of :meth:`kneighbors`.
vector_index : VectorIndex, default=None
    Where the indexed items are kept and how they are searched: None
    (an :class:`~skbackward.indexes.ExactIndex`) for exact search,
    :class:`~skbackward.indexes.FaissIndex` for approximate search of
    large databases. Not modified: the fitted copy is ``vector_index_``.
"""
