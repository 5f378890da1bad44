"""Measuring helpers shared by the benchmarks: time, memory, recall, logging.

``timed`` is the one timer (result first, then seconds); ``WhileInside`` runs
a periodic task while inside a ``with`` block; ``PeakMemory`` and
``rss_gib`` read the process's memory from /proc (Linux); ``recall`` compares
retrieved rows to exact ones; ``log`` prints a line with the seconds since the
script started; ``doc_parser`` is a script's argument parser from its
docstring.
"""

import argparse
import gc
import os
import threading
import time

import numpy as np

_T0 = time.perf_counter()


def log(msg):
    """Print ``msg`` after the seconds since the benchmark started."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", flush=True)


def doc_parser(doc):
    """An argument parser described by a script's docstring (first line: the
    description; the rest: the epilog, usage lines included)."""
    return argparse.ArgumentParser(
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(doc.splitlines()[2:]),
    )


def timed(fn, *args, repeat=1, **kwargs):
    """``(result, seconds)`` of ``fn(*args, **kwargs)``: the best of ``repeat``
    calls, and the last call's result."""
    best, out = np.inf, None
    for _ in range(repeat):
        tic = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - tic)
    return out, best


def gb(n_bytes):
    """Bytes in GiB."""
    return n_bytes / 2**30


def rss_gib():
    """Resident memory of this process now, GiB."""
    with open("/proc/self/statm") as f:
        return gb(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))


def _status(field):
    """A memory field of /proc/self/status (``RssAnon``, ...) in bytes; 0 if absent."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class WhileInside:
    """Calls ``self._tick()`` every ``interval`` seconds from a daemon thread
    while inside the ``with`` block; subclasses say what a tick does."""

    interval = 1.0

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._tick()

    def _tick(self):
        raise NotImplementedError

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class PeakMemory(WhileInside):
    """Peak growth of the process's anonymous memory (RssAnon) while inside:
    ``growth`` in bytes, sampled every 10 ms (a memmap's file pages are the
    page cache's, not the process's, so they do not count)."""

    interval = 0.01

    def __enter__(self):
        gc.collect()
        self.base = self.peak = _status("RssAnon")
        return super().__enter__()

    def _tick(self):
        self.peak = max(self.peak, _status("RssAnon"))

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self._tick()
        self.growth = self.peak - self.base


def recall(found, truth):
    """Mean share of each row of ``truth`` (n_queries, k) found in the same
    row of ``found``: recall@k against exact results."""
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth)]))
