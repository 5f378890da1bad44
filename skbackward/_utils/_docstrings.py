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
memory : str, joblib.Memory or None, default=None
    Where to cache the trained network, as in scikit-learn's ``Pipeline``:
    a folder (str) or a ``joblib.Memory``; None caches nothing. A fit looks
    the network up by the training data (``X`` and the labels) and the
    parameters that change it (the ones above, the seed drawn from
    ``random_state``, ``device``, ``n_threads``), so fits that differ only
    in parameters read at query time (``n_neighbors``, ``vector_index`` and
    the search, ranking and context parameters: ``alpha``, ``select``,
    ``predicted_first``, ``preserve``, ...) train one network: a
    ``GridSearchCV`` over them trains one per fold. A cached network gives
    bit-identical results. Needs an int (or RandomState) ``random_state``:
    with None every fit draws a new seed, and the cache is skipped with a
    warning. A lookup hashes ``X`` (one pass over it). The key also holds
    the skbackward and torch versions and a hash of the training code: an
    upgrade trains again. See the user guide's section on tuning without refitting.
"""

# Progress on stderr: shared by every retriever.
VERBOSE_PARAMETER = """\
verbose : int, default=0
    Progress on stderr. 0: nothing. 1: a progress bar, with the time spent
    and the time left, for each stage of long work: the epochs of the
    training in ``fit``, the items indexed by ``fit`` and :meth:`index`, the
    queries of :meth:`kneighbors` and :meth:`transform` (batch by batch).
    2: also a line per training epoch with its mean loss.
"""

# The torch threads of one call, shared by every retriever.
N_THREADS_PARAMETER = """\
n_threads : int, default=None
    Torch intra-op threads used by each call of ``fit``, ``index``,
    ``transform``, ``kneighbors`` and ``condition_report``, set for the
    duration of the call and restored after it (the caller's setting is
    never changed for good; concurrent calls in threads each keep their
    own). None: one thread. For these small networks more threads gained
    little on an idle machine (training nothing, a large batch of queries
    up to twice as fast on 2 cores) and cost several times the time on a
    busy one (the user guide's section on threads). -1: torch's
    current setting (its default is the machine's cores, or
    ``OMP_NUM_THREADS``), -2 one less, and so on; at most 1024. The thread
    count changes the last bits of the results: an int ``random_state`` gives
    bit-identical results for the same ``n_threads``. Unlike
    ``GridSearchCV(n_jobs=...)``, which runs fits side by side, this is the
    threads inside one call.
"""


# What an int random_state reproduces, and where: shared by every retriever.
# The figures: docs/run_user_guide.py under ATEN_CPU_CAPABILITY=avx512 and
# avx2 (tuning.rst's single networks; the other pages' averaged scores).
def random_state_parameter(seeds):
    """The ``random_state`` entry of a parameter list; ``seeds`` says what it
    seeds (one sentence)."""
    text = seeds + (
        " An int gives bit-identical results on the same machine with the same"
        " torch build, the same CPU kernels and the same ``n_threads``. A CPU"
        " with other vector kernels (torch picks AVX-512, AVX2 or plain code at"
        " start; ``ATEN_CPU_CAPABILITY`` forces one) rounds training's sums"
        " differently in the last bit, and training amplifies that into another"
        " network, as another seed would: on the user guide's digits, one"
        " network's precision@10 over 100 queries moved by 0.13 between AVX-512"
        " and AVX2, and scores averaged over 300 to 400 queries by up to 0.04."
        " The search and the queries add no randomness of their own."
    )
    return (
        "random_state : int, RandomState instance or None, default=None\n"
        + textwrap.fill(text, 76, initial_indent="    ", subsequent_indent="    ",
                        break_on_hyphens=False)
        + "\n"
    )


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
