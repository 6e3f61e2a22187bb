"""Coverage of the store: symbols x sessions, each cell stored, missing, quarantined or failed.

A cell is one trading session of one symbol (stocks: NYSE sessions; crypto: every UTC day):

- stored: the candle table has its row;
- quarantined: no row, but the vendor's bar sits in `marketdata.rejected_candles` (bad values);
- failed: no row, and the symbol's latest run failed (`status = 'error'` in `tracked_symbols`)
  for a day after its last successful one;
- missing: none of the above (never fetched, or the vendor had no bar).

`coverage_report` prints nothing: `format_summary` gives the lines, and `out` a PNG picture
(rows are symbols, columns are days; weekends and holidays of a stock row are drawn as "no
session"). Pillow draws it: a small, long-maintained imaging library with wheels everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import psycopg

from marketdata_pipeline.lib.calendar import last_complete_day, trading_days
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.postgres import coverage as store
from marketdata_pipeline.lib.postgres.connection import connect
from marketdata_pipeline.lib.symbols import AssetClass

#: Width of the symbol column in labels (`marketdata symbols list` uses the same).
SYMBOL_WIDTH = 10
#: Without --start: this many days before the end when nothing is stored yet.
DEFAULT_DAYS = 30
#: The summary lists every symbol up to this many; beyond, only the incomplete ones (this many).
MAX_SYMBOL_LINES = 20


class Cell(StrEnum):
    """The state of one (symbol, day) cell."""

    STORED = "stored"
    MISSING = "missing"
    QUARANTINED = "quarantined"
    FAILED = "failed"
    NO_SESSION = "no session"  # drawn only: the market was closed that day


#: Counted statuses, in summary order.
STATUSES = (Cell.STORED, Cell.MISSING, Cell.QUARANTINED, Cell.FAILED)
#: Picture colours (RGB): distinct for colour-blind readers too (blue/orange rather than
#: green/red for the two main states).
COLOURS: dict[Cell, tuple[int, int, int]] = {
    Cell.STORED: (44, 123, 182),
    Cell.MISSING: (253, 174, 97),
    Cell.QUARANTINED: (171, 94, 203),
    Cell.FAILED: (215, 25, 28),
    Cell.NO_SESSION: (235, 235, 235),
}
BACKGROUND = (255, 255, 255)
TEXT = (30, 30, 30)


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
        layout = draw_png(report, out)
        report = CoverageReport(report.start, report.end, report.days, report.rows, out, layout)
    return report


def format_summary(report: CoverageReport) -> list[str]:
    """Summary lines: totals per state, then per-symbol lines (all when few, else the gaps)."""
    counts = report.counts()
    total = sum(counts.values())
    lines = [
        f"coverage {report.start}..{report.end}: {len(report.rows)} symbols, "
        f"{total} sessions (stocks: NYSE sessions; crypto: every UTC day)",
        "  " + ", ".join(f"{status.value} {counts.get(status, 0)}" for status in STATUSES),
    ]
    if not report.rows:
        lines.append("  no tracked symbols: add some with `marketdata symbols add`")
    incomplete = [r for r in report.rows if set(r.counts()) - {Cell.STORED}]
    shown = report.rows if len(report.rows) <= MAX_SYMBOL_LINES else incomplete
    if len(report.rows) > MAX_SYMBOL_LINES:
        lines.append(
            f"  {len(report.rows) - len(incomplete)} symbols complete, "
            f"{len(incomplete)} with gaps" + (":" if incomplete else "")
        )
    width = max((len(r.label) for r in shown), default=0)
    for row in shown[:MAX_SYMBOL_LINES]:
        c = row.counts()
        parts = [f"{s.value} {c[s]}" for s in STATUSES if c.get(s)]
        error = f"  ({row.last_error[:80]})" if c.get(Cell.FAILED) and row.last_error else ""
        lines.append(f"  {row.label:<{width}}  {', '.join(parts) or 'no sessions'}{error}")
    if len(shown) > MAX_SYMBOL_LINES:
        lines.append(f"  ... and {len(shown) - MAX_SYMBOL_LINES} more")
    if report.out is not None:
        lines.append(f"picture: {report.out}")
    return lines


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


# -- the picture -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PictureLayout:
    """Where the grid is in the PNG: cell (row, column) covers `cell_box(row, column)`."""

    left: int
    top: int
    cell_width: int
    cell_height: int

    def cell_box(self, row: int, column: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a cell, inclusive."""
        x0 = self.left + column * self.cell_width
        y0 = self.top + row * self.cell_height
        return x0, y0, x0 + self.cell_width - 1, y0 + self.cell_height - 1

    def cell_centre(self, row: int, column: int) -> tuple[int, int]:
        """A pixel inside the cell."""
        x0, y0, x1, y1 = self.cell_box(row, column)
        return (x0 + x1) // 2, (y0 + y1) // 2


#: The grid's size in pixels is kept near these (cells shrink to 1 pixel for long ranges).
MAX_GRID_WIDTH = 1800
MAX_GRID_HEIGHT = 2400


#: Pixels between words: the default font's space is too narrow to read ("nosession").
WORD_GAP = 5


def _words(draw, xy: tuple[float, float], text: str, font) -> float:
    """Draw `text` word by word with a readable gap; return the x after it."""
    x, y = xy
    for word in text.split(" "):
        draw.text((x, y), word, fill=TEXT, font=font)
        x += font.getlength(word) + WORD_GAP
    return x - WORD_GAP


def draw_png(report: CoverageReport, out: Path) -> PictureLayout:
    """Draw the report as a PNG at `out` and return where its cells are.

    Rows are labelled with the symbol and its class (as `marketdata symbols list` shows them),
    columns get date ticks below the grid, and a legend names each colour.
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=11)
    n_days, n_rows = max(len(report.days), 1), max(len(report.rows), 1)
    cell_w = max(1, min(14, MAX_GRID_WIDTH // n_days))
    cell_h = max(1, min(14, MAX_GRID_HEIGHT // n_rows))
    labels = cell_h >= 10
    symbol_w = max((font.getlength(r.symbol) for r in report.rows), default=30) + 8
    class_w = max((font.getlength(r.asset_class.value) for r in report.rows), default=30)
    label_w = int(4 + symbol_w + class_w + 10) if labels else 10
    header, ticks_h, legend_h = 24, 18, 24
    layout = PictureLayout(left=label_w, top=header, cell_width=cell_w, cell_height=cell_h)
    tick_w = int(font.getlength("2024-01-01")) + 12
    width = max(label_w + n_days * cell_w + tick_w, 600)
    grid_bottom = header + n_rows * cell_h
    height = grid_bottom + ticks_h + legend_h + 8
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    _words(
        draw,
        (4, 4),
        f"{report.start} .. {report.end}   {len(report.rows)} symbols x {len(report.days)} days",
        font,
    )
    for r, row in enumerate(report.rows):
        if labels:
            _, y0, _, _ = layout.cell_box(r, 0)
            draw.text((4, y0), row.symbol, fill=TEXT, font=font)
            draw.text((4 + symbol_w, y0), row.asset_class.value, fill=TEXT, font=font)
        for c, cell in enumerate(row.cells):
            draw.rectangle(layout.cell_box(r, c), fill=COLOURS[cell])
    # A date tick every so many columns, as far apart as a date is wide.
    step = max(1, -(-tick_w // cell_w))
    for c in range(0, len(report.days), step):
        x0, _, _, _ = layout.cell_box(0, c)
        draw.line((x0, grid_bottom, x0, grid_bottom + 3), fill=TEXT)
        draw.text((x0, grid_bottom + 4), report.days[c].isoformat(), fill=TEXT, font=font)
    x, y = 4.0, grid_bottom + ticks_h + 6
    for cell in (*STATUSES, Cell.NO_SESSION):
        draw.rectangle((x, y, x + 11, y + 11), fill=COLOURS[cell], outline=TEXT)
        x = _words(draw, (x + 16, y), cell.value, font) + 18
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return layout
