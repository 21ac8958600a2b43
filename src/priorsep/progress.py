"""Progress of long work: a bar on a terminal, a line every few seconds elsewhere.

A bar (tqdm) is drawn when stderr is a terminal; when it is not (a log file, CI, a pipe),
:class:`Progress` writes one plain line every ``every`` seconds instead of silence (or of
a bar's carriage returns), with what is done, the elapsed time and an estimate of what is
left.

>>> import io
>>> out = io.StringIO()
>>> with Progress(4, "search", "window", stream=out, every=0.0) as p:
...     p.update(2)
>>> out.getvalue().splitlines()[0].startswith("search: 2/4 window")
True
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "duration"]


def duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 20 s"``, ``"1 h 05 min"``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class Progress:
    """Progress over ``total`` units of work.

    Args:
        total: units in all.
        desc: what is being done, e.g. ``"latent search"``.
        unit: the unit's name, e.g. ``"window"``.
        enabled: ``False`` for no output at all.
        stream: where to write (default: stderr); a bar only if it is a terminal.
        every: seconds between plain lines when there is no terminal.
    """

    def __init__(self, total: float, desc: str, unit: str, *, enabled: bool = True, stream: TextIO | None = None,
                 every: float = 5.0):
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.every, self.done = every, 0.0
        self.start = self.last = time.perf_counter()
        self.bar = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=False,
                            bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} {unit}s [{elapsed}<{remaining}]")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float) -> None:
        """``n`` more units done (fractions allowed)."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if self.enabled and now - self.last >= self.every:
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = now - self.start
        left = elapsed / self.done * (self.total - self.done) if self.done > 0 else float("nan")
        eta = f", about {duration(left)} left" if self.done > 0 else ""
        print(f"{self.desc}: {self.done:.0f}/{self.total:.0f} {self.unit}s ({100 * self.done / self.total:.0f}%), "
              f"{duration(elapsed)}{eta}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """One line of text beside the progress (above a bar)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
