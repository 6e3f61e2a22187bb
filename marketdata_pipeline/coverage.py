"""Coverage of the store: symbols x sessions, each cell stored, missing, quarantined or failed.

A cell is one trading session of one symbol (stocks: NYSE sessions; crypto: every UTC day):

- stored: the candle table has its row;
- quarantined: no row, but the vendor's bar sits in `marketdata.rejected_candles` (bad values);
- failed: no row, and the symbol's latest run failed (`status = 'error'` in `tracked_symbols`)
  for a day after its last successful one;
- missing: none of the above (never fetched, or the vendor had no bar).

This module builds the report from the store (its SQL is in `lib/postgres/coverage.py`) and
prints nothing: `coverage_render.py` turns a report into summary lines (`format_summary`) and
a PNG picture (`draw_png`, which `coverage_report` calls when given `out`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from marketdata_pipeline.lib.calendar import last_complete_day, trading_days
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.postgres import coverage as store
from marketdata_pipeline.lib.postgres.connection import connect
from marketdata_pipeline.lib.symbols import AssetClass

if TYPE_CHECKING:
    from marketdata_pipeline.coverage_render import PictureLayout

#: Width of the symbol column in labels (`marketdata symbols list` uses the same).
SYMBOL_WIDTH = 10
#: Without --start: this many days before the end when nothing is stored yet.
DEFAULT_DAYS = 30


class Cell(StrEnum):
    """The state of one (symbol, day) cell."""

    STORED = "stored"
    MISSING = "missing"
    QUARANTINED = "quarantined"
    FAILED = "failed"
    NO_SESSION = "no session"  # drawn only: the market was closed that day


#: Counted statuses, in summary order.
STATUSES = (Cell.STORED, Cell.MISSING, Cell.QUARANTINED, Cell.FAILED)


@dataclass(frozen=True)
class SymbolCoverage:
    """One symbol's row: its state on each day of the report (None: no session that day)."""

    symbol: str
    asset_class: AssetClass
    cells: tuple[Cell, ...]
    last_error: str | None = None

    def counts(self) -> Counter[Cell]:
        """How many sessions are in each state."""
        return Counter(c for c in self.cells if c is not Cell.NO_SESSION)

    @property
    def label(self) -> str:
        """The symbol and its class, as `marketdata symbols list` shows them."""
        return f"{self.symbol:<{SYMBOL_WIDTH}} {self.asset_class.value}"


@dataclass(frozen=True)
class CoverageReport:
    """Coverage of `rows` over the calendar days `days` (start..end inclusive)."""

    start: dt.date
    end: dt.date
    days: tuple[dt.date, ...]
    rows: tuple[SymbolCoverage, ...]
    out: Path | None = None
    layout: PictureLayout | None = field(default=None, compare=False)

    def counts(self) -> Counter[Cell]:
        """Sessions per state over every symbol."""
        total: Counter[Cell] = Counter()
        for row in self.rows:
            total.update(row.counts())
        return total


def _pick_symbols(statuses: list[store.SymbolStatus], wanted: list[str] | None):
    if not wanted:
        return [s for s in statuses if s.active]
    chosen, unknown = [], []
    for raw in wanted:
        text = raw.strip().upper()
        crypto_only = text.startswith("X:")
        text = text.removeprefix("X:")
        matches = [
            s
            for s in statuses
            if s.symbol == text and (not crypto_only or s.asset_class == AssetClass.CRYPTO.value)
        ]
        if not matches:
            unknown.append(raw)
        chosen.extend(m for m in matches if m not in chosen)
    if unknown:
        raise InputError(
            f"not tracked: {', '.join(unknown)} (coverage covers the symbols of "
            "`marketdata symbols list`; X:BTCUSD names a crypto pair)"
        )
    return chosen


def build_coverage(
    conn: psycopg.Connection,
    *,
    symbols: list[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> CoverageReport:
    """The coverage of tracked symbols (default: the active ones) from `start` to `end`.

    `end` defaults to the last complete day; `start` to the first stored day of the chosen
    symbols (or `DEFAULT_DAYS` before `end` when none is stored).
    """
    chosen = _pick_symbols(store.tracked_symbol_statuses(conn), symbols)
    end = end or last_complete_day()
    by_class: dict[AssetClass, list[store.SymbolStatus]] = {}
    for s in chosen:
        by_class.setdefault(AssetClass(s.asset_class), []).append(s)
    if start is None:
        firsts = [
            store.first_stored_day(conn, cls.value, [s.symbol for s in group])
            for cls, group in by_class.items()
        ]
        known = [d for d in firsts if d is not None]
        start = min(known) if known else end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise InputError(f"coverage range is reversed: start {start} is after end {end}")
    days = tuple(start + dt.timedelta(days=i) for i in range((end - start).days + 1))
    rows = [row for cls, group in by_class.items() for row in _rows(conn, cls, group, days)]
    return CoverageReport(start, end, days, tuple(rows))


def _rows(
    conn: psycopg.Connection,
    cls: AssetClass,
    group: list[store.SymbolStatus],
    days: tuple[dt.date, ...],
) -> list[SymbolCoverage]:
    """The coverage rows of one asset class's symbols over `days`."""
    start, end = days[0], days[-1]
    names = [s.symbol for s in group]
    sessions = set(trading_days(cls, start, end))
    stored = store.stored_days(conn, cls.value, names, start, end)
    rejected = store.quarantined_days(conn, cls.value, names, start, end)
    rows = []
    for s in group:
        cells = []
        for day in days:
            if day not in sessions:
                cells.append(Cell.NO_SESSION)
            elif day in stored.get(s.symbol, ()):
                cells.append(Cell.STORED)
            elif day in rejected.get(s.symbol, ()):
                cells.append(Cell.QUARANTINED)
            elif s.status == "error" and (s.last_success_day is None or day > s.last_success_day):
                cells.append(Cell.FAILED)
            else:
                cells.append(Cell.MISSING)
        rows.append(SymbolCoverage(s.symbol, cls, tuple(cells), s.last_error))
    return rows


def coverage_report(
    database_url: str,
    *,
    symbols: list[str] | None,
    start: dt.date | None,
    end: dt.date | None,
    out: Path | None,
) -> CoverageReport:
    """Build the coverage of the store at `database_url` and, with `out`, draw it as a PNG.

    Raises `InputError` for untracked symbols or a reversed range.
    """
    with connect(database_url) as conn:
        report = build_coverage(conn, symbols=symbols, start=start, end=end)
    if out is not None:
        # Imported here: the rendering module imports this one (the report's types).
        from marketdata_pipeline.coverage_render import draw_png

        layout = draw_png(report, out)
        report = CoverageReport(report.start, report.end, report.days, report.rows, out, layout)
    return report


def symbol_coverage(
    conn: psycopg.Connection,
    asset_class: AssetClass,
    symbols: list[str],
    start: dt.date,
    end: dt.date,
) -> dict[str, dict[str, int]]:
    """Per-symbol session counts by state, for an asset's output metadata (JSON-ready).

    `symbols` are canonical (as stored); one no longer tracked counts as never failed.
    """
    statuses = {
        s.symbol: s
        for s in store.tracked_symbol_statuses(conn)
        if s.asset_class == asset_class.value
    }
    group = [
        statuses.get(name) or store.SymbolStatus(name, asset_class.value, False, "ok", None, None)
        for name in sorted(set(symbols))
    ]
    days = tuple(start + dt.timedelta(days=i) for i in range((end - start).days + 1))
    if not group or not days:
        return {}
    return {
        row.symbol: {status.value: row.counts().get(status, 0) for status in STATUSES}
        for row in _rows(conn, asset_class, group, days)
    }
