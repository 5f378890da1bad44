"""A progress bar for long work, written to stderr in tqdm's layout.

``verbose=1`` shows one bar per stage of a call (training, indexing, the
batches of ``kneighbors`` and ``transform``); ``verbose=2`` adds a line per
training epoch with its loss. Written here rather than taken from tqdm, which
is not a dependency: the bar needs a dozen lines.
"""

import sys
import time

# the bar is redrawn at most this often (seconds), and at the end
REDRAW_INTERVAL = 0.2
BAR_WIDTH = 20


def clock(seconds):
    """``mm:ss`` (``h:mm:ss`` from an hour on) of a duration."""
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}:{minutes:02d}:{seconds:02d}" if hours
            else f"{minutes:02d}:{seconds:02d}")


class ProgressBar:
    """``desc:  40%|########            | 12/30 [00:03<00:05, 3.75 epoch/s]``.

    Drawn on ``sys.stderr`` (read at each draw, so a redirected stderr is
    followed), one line redrawn in place with a carriage return, and ended
    with a newline by :meth:`close` (or the ``with`` block). The time before
    the ``<`` is the time spent, the one after it the estimated time left at
    the mean rate so far. Draws nothing when ``enabled`` is False.
    """

    def __init__(self, total, desc, *, unit="it", enabled=True):
        self.total, self.desc, self.unit = total, desc, unit
        self.enabled = enabled
        self.n = 0
        self.start = self.last_draw = time.perf_counter()
        self.width = 0  # of the line drawn, to blank it when redrawn shorter
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n=1):
        """Count ``n`` more units done; redraw when due."""
        self.n += n
        now = time.perf_counter()
        if self.n >= self.total or now - self.last_draw >= REDRAW_INTERVAL:
            self._draw(now)

    def write(self, line):
        """Print ``line`` above the bar (the bar is drawn again below it)."""
        if self.enabled:
            self._out("\r" + line.ljust(self.width) + "\n")
            self.width = 0
            self._draw(time.perf_counter())

    def close(self):
        """Draw the bar a last time and end its line."""
        if self.enabled and not self.closed:
            self._draw(time.perf_counter())
            self._out("\n")
        self.closed = True

    def line(self, now):
        """The bar's text at time ``now``."""
        elapsed = now - self.start
        done = min(self.n / self.total, 1.0) if self.total else 1.0
        filled = int(done * BAR_WIDTH)
        rate = self.n / elapsed if elapsed > 0 else 0.0
        eta = clock((self.total - self.n) / rate) if rate > 0 else "?"
        return (f"{self.desc}: {done:4.0%}|{'#' * filled:<{BAR_WIDTH}}| "
                f"{self.n}/{self.total} [{clock(elapsed)}<{eta}, "
                f"{rate:.2f} {self.unit}/s]")

    def _draw(self, now):
        if not self.enabled:
            return
        text = self.line(now)
        self._out("\r" + text.ljust(self.width))
        self.width, self.last_draw = len(text), now

    @staticmethod
    def _out(text):
        sys.stderr.write(text)
        sys.stderr.flush()
