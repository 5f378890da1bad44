"""Torch threads scoped to a call: the estimators' ``n_threads``.

torch's thread count is process state (per thread, with a process-wide copy
in MKL): each retriever method sets its own for the call and gives the
caller's back, so results do not depend on the machine's cores.
"""

import functools
import threading
from contextlib import contextmanager

import torch

from ._validation import check_params

# Serialises reading and setting the thread count (torch also sets MKL's
# process-wide count, and the count new threads start with).
_THREADS_LOCK = threading.Lock()


def effective_threads(n_threads):
    """The intra-op thread count a ``n_threads`` parameter asks for.

    None: 1 (the networks are small: a second thread gained little on a quiet
    machine and cost several times the time on a busy one; see the user
    guide's page on practical matters). A positive int: that many. -1: the
    calling thread's current torch setting (torch's default: the machine's
    cores or ``OMP_NUM_THREADS``; or what ``torch.set_num_threads`` set); -2
    one less, and so on, at least 1 (scikit-learn's convention for
    negative counts).
    """
    if n_threads is None:
        return 1
    if n_threads < 0:
        return max(1, torch.get_num_threads() + 1 + n_threads)
    return n_threads


@contextmanager
def torch_threads(n):
    """Run the block with ``n`` torch intra-op threads, then restore the
    caller's setting.

    torch's count lives in the calling thread's OpenMP settings (other
    threads keep theirs; new threads start with the last value set, and MKL
    reads a process-wide copy): the block reads the calling thread's count,
    sets ``n`` and sets the old count back on the way out, exceptions
    included. Each thread restores its own count, so scopes nest and run in
    concurrent threads; the lock keeps each read-and-set whole. The thread
    count changes the last bits of float results (reductions split
    differently), so a fixed ``n`` keeps results reproducible whatever the
    machine's cores.
    """
    with _THREADS_LOCK:
        before = torch.get_num_threads()
        if n != before:
            torch.set_num_threads(n)
    try:
        yield
    finally:
        with _THREADS_LOCK:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)


def with_threads(method):
    """Run a retriever's method with the estimator's ``n_threads`` torch
    threads, restoring the caller's setting afterwards (:func:`torch_threads`)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        check_params(self, ("n_threads",))
        with torch_threads(effective_threads(self.n_threads)):
            return method(self, *args, **kwargs)

    return wrapper
