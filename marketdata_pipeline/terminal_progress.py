"""A drawn progress bar for `marketdata backfill` when stderr is a terminal.

The fetch reports its progress through `Progress`, which logs at most 40 lines with an ETA to the
run's log: that is what the Dagster UI shows, and what a command line whose stderr is a file or
a pipe prints (a CI log keeps readable lines). In a terminal those lines are replaced by one
updating bar (tqdm: the ETA, rate and redrawing around other output are its job, and it is
already installed with Dagster), while every other log line still prints above the bar.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from tqdm import tqdm

from marketdata_pipeline.lib.polygon.progress import ProgressUpdate, observe


class _AroundTheBar(io.TextIOBase):
    """stderr while a bar is drawn: whole lines go out through `tqdm.write` (which clears the
    bar and redraws it below them); lines carrying a progress text the bar already shows are
    dropped."""

    def __init__(self, real: TextIO, shown_by_bar: set[str]) -> None:
        self._real = real
        self._shown = shown_by_bar
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._real.isatty()

    def fileno(self) -> int:
        return self._real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._real, "encoding", "utf-8")

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                if not any(shown in line for shown in self._shown):
                    tqdm.write(line, file=self._real)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                tqdm.write(self._pending, file=self._real)
                self._pending = ""
        self._real.flush()


@contextmanager
def terminal_progress(stream: TextIO | None = None) -> Iterator[None]:
    """Draw the fetch's progress as a bar on `stream` (stderr) while inside, if it is a
    terminal; otherwise change nothing (the run's log lines are the progress)."""
    stream = stream if stream is not None else sys.stderr
    if not stream.isatty():
        yield
        return
    shown: set[str] = set()
    bars: dict[str, Any] = {}
    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        width = 0
    # A terminal that reports no size (a bare pty) gets a fixed width instead of no bar.
    size: dict[str, Any] = {"dynamic_ncols": True} if width > 0 else {"ncols": 100}

    def on_update(update: ProgressUpdate) -> None:
        bar = bars.get("current")
        if bar is None or bar.desc != update.what or bar.total != update.total:
            if bar is not None:
                bar.close()
            # One bar per fetch (each asset of the run has its own), kept on screen when done.
            bar = bars["current"] = tqdm(
                total=update.total, desc=update.what, file=stream, unit="", smoothing=0.1,
                **size,
            )  # fmt: skip
        bar.update(update.done - bar.n)
        if update.line is not None:
            shown.add(update.line)

    real = sys.stderr
    sys.stderr = _AroundTheBar(stream, shown)
    try:
        with observe(on_update):
            yield
    finally:
        sys.stderr.flush()
        sys.stderr = real
        if bars.get("current") is not None:
            bars["current"].close()
