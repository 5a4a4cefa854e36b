"""Progress where users look: a tqdm bar on a terminal, periodic lines in a log file.

tqdm hides itself when its output is not a terminal, so a run under ``nohup``, SLURM or
``> log 2>&1`` was silent for minutes. Off a terminal, :func:`progress` prints one line
every :data:`EVERY_SECONDS` (``DFDETECT_PROGRESS_SECONDS`` overrides it) with the count,
the rate and the time left, and a last line when the work ends.
"""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TextIO

#: Seconds between two progress lines off a terminal.
EVERY_SECONDS = 30.0


def every_seconds() -> float:
    """Seconds between two progress lines: ``DFDETECT_PROGRESS_SECONDS``, else
    :data:`EVERY_SECONDS`.

    Raises:
        DataError: the variable is set to something that is not a number >= 0 (it was
            silently ignored once; the CLI checks it before any command).
    """
    from dfdetect.io import env_number  # deferred: io imports NumPy

    return env_number("DFDETECT_PROGRESS_SECONDS", EVERY_SECONDS)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class LineProgress:
    """tqdm's ``update``/``close``/iteration, printed as a line every ``every`` seconds.

    Args:
        iterable: what to iterate (optional: :meth:`update` counts by hand).
        total: items expected (default ``len(iterable)`` when it has one).
        desc: what is counted, e.g. ``"crop"``.
        unit: the item's name, e.g. ``"file"``.
        every: seconds between lines.
        stream: where lines go (default stdout, which a log file receives).
        final: print a last line when the work ends (False: the caller prints its own,
            e.g. an epoch's metrics).
    """

    def __init__(self, iterable: Iterable | None = None, total: int | None = None,
                 desc: str = "", unit: str = "it", every: float | None = None,
                 stream: TextIO | None = None, final: bool = True):
        self.iterable = iterable
        self.total = total if total is not None else (
            len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit = desc or "progress", unit
        self.every = every_seconds() if every is None else every
        self.stream = stream
        self.final = final
        self.n = 0
        self.started = self.last = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def line(self, final: bool = False) -> str:
        """``crop: 120/400 files (30%), 2.1 files/s, 2m13s left`` (or ``... in 3m10s``)."""
        elapsed = time.monotonic() - self.started
        rate = self.n / elapsed if elapsed > 0 else 0.0
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        text = f"{self.desc}: {count} {self.unit}s"
        if self.total:
            text += f" ({100 * self.n / self.total:.0f}%)"
        if final:
            return f"{text} in {_duration(elapsed)}"
        speed = f"{rate:.2f} {self.unit}s/s" if rate >= 0.1 else (
            f"{elapsed / self.n:.0f} s/{self.unit}" if self.n else "starting")
        text += f", {speed}"
        if self.total and self.n and rate > 0:
            text += f", {_duration((self.total - self.n) / rate)} left"
        return text

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def update(self, n: int = 1) -> None:
        """Counts ``n`` more items; prints a line when ``every`` seconds have passed."""
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every and (not self.total or self.n < self.total):
            self.last = now
            self._print(self.line())

    def close(self) -> None:
        """Prints the last line (once), when anything was counted."""
        if not self.closed:
            self.closed = True
            if self.n and self.final:
                self._print(self.line(final=True))


class _Silent:
    """tqdm's interface doing nothing (progress switched off)."""

    def __init__(self, iterable=None):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "",
             unit: str = "it", enabled: bool | None = None, final: bool = True):
    """A progress reporter with tqdm's interface (iterate it, or ``update``/``close``).

    Args:
        iterable, total, desc, unit: as tqdm's.
        enabled: False: silent; True or None: a tqdm bar when stdout is a terminal,
            else :class:`LineProgress` lines (a log file gets them every 30 s).
        final: False: no closing line (off a terminal) and the bar is cleared when done
            (on one): the caller prints its own summary of the work.
    """
    if enabled is False:
        return _Silent(iterable)
    if sys.stdout.isatty():
        from tqdm.auto import tqdm  # deferred: a bar only on a terminal

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=final)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, final=final)
