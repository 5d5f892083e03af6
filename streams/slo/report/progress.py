"""Progress of a long read, on standard error, at most once a second."""

from __future__ import annotations

import sys
import time
from typing import IO, Callable

__all__ = ["Progress"]


class Progress:
    """Counts records as they are read and, when enabled, shows the count and the rate.

    On a terminal the line is redrawn in place; elsewhere (``--progress`` into a log) each
    update is its own line. ``clock`` is injectable so tests need not sleep.
    """

    def __init__(self, what: str, *, enabled: bool, out: IO[str] | None = None,
                 every_s: float = 1.0, clock: Callable[[], float] | None = None) -> None:
        self.what = what
        self.enabled = enabled
        self.out = sys.stderr if out is None else out
        self.every_s = every_s
        self.clock = time.monotonic if clock is None else clock
        self.count = 0
        self._started_s = self.clock()
        self._shown_s = self._started_s
        self._shown_any = False
        self._in_place = enabled and self.out.isatty()

    def tick(self, n: int = 1) -> None:
        """Add ``n`` records; show the progress line when a second has passed since the last."""
        self.count += n
        if self.enabled:
            now_s = self.clock()
            if now_s - self._shown_s >= self.every_s:
                self._shown_s = now_s
                self._show(now_s)

    def done(self) -> None:
        """Show the final count (only when a progress line was shown before)."""
        if self.enabled and self._shown_any:
            self._show(self.clock())
            if self._in_place:
                print(file=self.out, flush=True)

    def _show(self, now_s: float) -> None:
        elapsed_s = max(now_s - self._started_s, 1e-9)
        line = f"{self.what}: {self.count} records read ({self.count / elapsed_s:.0f}/s)"
        if self._in_place:
            print("\r" + line, end="", file=self.out, flush=True)
        else:
            print(line, file=self.out, flush=True)
        self._shown_any = True
