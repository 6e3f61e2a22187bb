"""`CandleSpool`: a run's validated candles on local disk, chunk by chunk, until the write.

A market-scale backfill has more rows than a process should hold (50 M bars is 20+ GB as
frames). The asset validates each fetched chunk on its own and appends it here as a Parquet file
(polars, zstd: ~40 bytes a bar); the IO manager then streams the files into one Postgres
transaction, one chunk in memory at a time. The write stays all-or-nothing, and the process's
memory follows the chunk size, not the run's size.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl


def _prefix(pid: int) -> str:
    """Name prefix of a spool directory: this host and the owning process."""
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
    return f"marketdata-spool-{host}-{pid}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def sweep_orphans(parent: str | Path) -> list[Path]:
    """Remove spool directories under `parent` whose process (on this host) is gone: a run
    killed before its cleanup leaves its chunks behind. Return what was removed.

    Only this host's directories are considered (the name carries the host), so a spool
    directory shared with another machine never loses a live run's chunks.
    """
    removed: list[Path] = []
    host_prefix = _prefix(0).removesuffix("0-")
    pattern = re.compile(re.escape(host_prefix) + r"(\d+)-")
    for path in Path(parent).glob("marketdata-spool-*"):
        match = pattern.match(path.name)
        if match and path.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class CandleSpool:
    """Parquet chunks of validated candles in a private temporary directory."""

    def __init__(self, parent: str | Path | None = None) -> None:
        """A new private directory under `parent` (created if missing; None: the system's
        temporary directory). Directories left there by killed runs of this host are removed
        first (`sweep_orphans`)."""
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
            sweep_orphans(parent)
        self.directory = Path(tempfile.mkdtemp(prefix=_prefix(os.getpid()), dir=parent))
        self._files: list[Path] = []
        self.rows = 0
        self.rows_per_day: Counter[dt.date] = Counter()
        self.rows_per_symbol: Counter[str] = Counter()

    def add(self, candles: pl.DataFrame) -> None:
        """Append one validated chunk (an empty chunk adds nothing)."""
        if candles.height == 0:
            return
        file = self.directory / f"chunk-{len(self._files):06d}.parquet"
        candles.write_parquet(file, compression="zstd", compression_level=1)
        self._files.append(file)
        self.rows += candles.height
        self.rows_per_day.update(dict(candles.group_by("day").len().iter_rows()))
        self.rows_per_symbol.update(dict(candles.group_by("symbol").len().iter_rows()))

    @property
    def chunks(self) -> int:
        """Chunks spooled so far."""
        return len(self._files)

    def frames(self) -> Iterator[pl.DataFrame]:
        """The chunks in the order they were added, one in memory at a time."""
        for file in self._files:
            yield pl.read_parquet(file)

    def symbols(self) -> set[str]:
        """Symbols with at least one spooled row."""
        return set(self.rows_per_symbol)

    def clear(self) -> None:
        """Drop every chunk (the run will write none of them)."""
        for file in self._files:
            file.unlink(missing_ok=True)
        self._files.clear()
        self.rows = 0
        self.rows_per_day.clear()
        self.rows_per_symbol.clear()

    def close(self) -> None:
        """Remove the directory and its files."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self._files.clear()

    def __enter__(self) -> CandleSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
