"""Progress of a long fetch, and its estimate before it starts.

`estimate` says what a plan will cost before anything is spent (the command line's dry run
prints it); `Progress` logs how far a running fetch is, with an ETA, in a bounded number of lines
so a 5,000-request backfill does not flood the run's event log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from marketdata_pipeline.lib.polygon.planner import RequestPlan

#: At most this many progress lines per fetch.
MAX_PROGRESS_LINES = 40


def duration_text(seconds: float) -> str:
    """A human duration: "about 16 h 48 min", "about 3 min", "about 12 s", "under a second"."""
    if seconds < 1:
        return "under a second"
    if seconds < 60:
        return f"about {round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"
    days, hours = divmod(hours, 24)
    return f"about {days} d {hours} h"


@dataclass(frozen=True)
class Estimate:
    """What a plan will cost: requests, bars at most, and wall time at the request budget."""

    strategy: str
    requests: int
    bars: int
    requests_per_minute: int
    seconds: float

    @property
    def text(self) -> str:
        """E.g. "5,040 grouped requests at 5/min = about 16 h 48 min, up to 50,400,000 bars"."""
        if self.requests == 0:
            return "nothing to request (no trading day or no symbol in the window)"
        return (
            f"{self.requests:,} {self.strategy} request{'' if self.requests == 1 else 's'} at "
            f"{self.requests_per_minute:,}/min = "
            f"{duration_text(self.seconds)}, up to {self.bars:,} bars"
        )


def estimate(plan: RequestPlan, requests_per_minute: int) -> Estimate:
    """The cost of `plan` at `requests_per_minute` (no retries; the budget is the limit).

    Bars are an upper bound: one per symbol per trading day (a symbol listed mid-window has
    fewer).
    """
    if requests_per_minute < 1:
        raise ValueError(f"requests_per_minute must be positive, got {requests_per_minute}")
    return Estimate(
        strategy=plan.strategy,
        requests=plan.cost,
        bars=len(plan.symbols) * len(plan.days),
        requests_per_minute=requests_per_minute,
        seconds=plan.cost * 60.0 / requests_per_minute,
    )


@dataclass(frozen=True)
class ProgressUpdate:
    """One step of a `Progress`, as its observers see it (`observe`)."""

    what: str
    done: int
    total: int
    # The text logged at this step, when this step logged a line (else None).
    line: str | None = None


_observers: list[Callable[[ProgressUpdate], None]] = []
_observers_lock = threading.Lock()


@contextmanager
def observe(callback: Callable[[ProgressUpdate], None]) -> Iterator[None]:
    """Call `callback` with every step of every `Progress` in this process while inside.

    The command line draws its terminal bar with this; the run's log lines are unchanged.
    """
    with _observers_lock:
        _observers.append(callback)
    try:
        yield
    finally:
        with _observers_lock:
            _observers.remove(callback)


def _notify(update: ProgressUpdate) -> None:
    with _observers_lock:
        observers = list(_observers)
    for callback in observers:
        callback(update)


class Progress:
    """Counts finished requests and logs "n/total (p%), elapsed, ETA" at most `max_lines` times.

    Observers (`observe`) see every step, also those that log nothing.
    """

    def __init__(
        self,
        total: int,
        log: Any,
        *,
        what: str = "requests",
        max_lines: int = MAX_PROGRESS_LINES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self.what = what
        self._log = log
        self._every = max(1, total // max(1, max_lines))
        self._clock = clock
        self._began = clock()
        _notify(ProgressUpdate(what, 0, total))

    def advance(self, count: int = 1, detail: str = "") -> None:
        """Record `count` finished units; log a line when a step boundary is crossed."""
        before = self.done
        self.done += count
        if self.done // self._every == before // self._every and self.done != self.total:
            _notify(ProgressUpdate(self.what, self.done, self.total))
            return
        line = self.line(detail)
        # Observers first: a terminal bar learns the line before the console logger prints it.
        _notify(ProgressUpdate(self.what, self.done, self.total, line))
        self._log.info(line)

    def line(self, detail: str = "") -> str:
        """The current progress line."""
        elapsed = self._clock() - self._began
        share = self.done / self.total if self.total else 1.0
        text = f"{self.what} {self.done:,}/{self.total:,} ({share:.0%})"
        if detail:
            text += f" {detail}"
        text += f"; elapsed {duration_text(elapsed)}"
        if 0 < self.done < self.total:
            remaining = elapsed / self.done * (self.total - self.done)
            text += f", ETA {duration_text(remaining)}"
        return text
