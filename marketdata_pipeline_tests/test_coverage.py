"""`marketdata coverage` on a small known store in real Postgres: exact counts and pixels.

The week 2024-07-01 (Monday) .. 2024-07-07 has four NYSE sessions (July 4 is a holiday, then the
weekend) and seven crypto days. AAPL is stored Mon-Wed and its Friday bar was quarantined; MSFT
is stored Mon-Tue and its latest run failed (404) after that; BTCUSD is stored Mon-Sat.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from PIL import Image

from marketdata_pipeline.coverage import (
    Cell,
    CoverageReport,
    SymbolCoverage,
    coverage_report,
    symbol_coverage,
)
from marketdata_pipeline.coverage_render import COLOURS, format_summary
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.symbols import AssetClass

START, END = dt.date(2024, 7, 1), dt.date(2024, 7, 7)


def _day(n: int) -> dt.date:
    return dt.date(2024, 7, n)


def _insert_candles(conn: psycopg.Connection, table: str, symbol: str, days: list[int]) -> None:
    for n in days:
        conn.execute(
            f"INSERT INTO marketdata.{table} (symbol, day, ts, open, high, low, close, volume,"
            " adjusted, source, fetched_at) VALUES (%s, %s, %s, 1, 2, 0.5, 1.5, 100, true,"
            " 'test', now())",
            (symbol, _day(n), dt.datetime.combine(_day(n), dt.time(), tzinfo=dt.UTC)),
        )


@pytest.fixture
def known_store(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO marketdata.tracked_symbols (symbol, asset_class) VALUES"
            " ('AAPL', 'stock'), ('MSFT', 'stock'), ('BTCUSD', 'crypto')"
        )
        _insert_candles(conn, "stock_daily_candles", "AAPL", [1, 2, 3])
        _insert_candles(conn, "stock_daily_candles", "MSFT", [1, 2])
        _insert_candles(conn, "crypto_daily_candles", "BTCUSD", [1, 2, 3, 4, 5, 6])
        conn.execute(
            "INSERT INTO marketdata.rejected_candles (asset, symbol, day, reason)"
            " VALUES ('stock_daily_candles', 'AAPL', %s, 'high < low')",
            (_day(5),),
        )
        conn.execute(
            "UPDATE marketdata.tracked_symbols SET status = 'error', last_success_day = %s,"
            " last_error = '404: Ticker not found.' WHERE symbol = 'MSFT'",
            (_day(2),),
        )
    return database_url


def test_picture_pixels_and_summary_match_the_known_store(known_store, tmp_path):
    out = tmp_path / "pictures" / "coverage.png"
    report = coverage_report(known_store, symbols=None, start=START, end=END, out=out)

    assert format_summary(report) == [
        "coverage 2024-07-01..2024-07-07: 3 symbols, 15 sessions "
        "(stocks: NYSE sessions; crypto: every UTC day)",
        "  stored 11, missing 1, quarantined 1, failed 2",
        # Labelled as `marketdata symbols list` shows them: the symbol, then its class.
        "  AAPL       stock   stored 3, quarantined 1",
        "  MSFT       stock   stored 2, failed 2  (404: Ticker not found.)",
        "  BTCUSD     crypto  stored 6, missing 1",
        f"picture: {out}",
    ]

    image = Image.open(out)
    image.verify()  # a well-formed PNG
    image = Image.open(out).convert("RGB")
    assert image.format is None or image.format == "PNG"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    expected = {
        # (row, day of July): stocks first, then crypto; columns are calendar days.
        (0, 1): Cell.STORED,
        (0, 3): Cell.STORED,
        (0, 4): Cell.NO_SESSION,  # Independence Day
        (0, 5): Cell.QUARANTINED,
        (0, 6): Cell.NO_SESSION,  # Saturday
        (1, 2): Cell.STORED,
        (1, 3): Cell.FAILED,
        (1, 5): Cell.FAILED,
        (2, 4): Cell.STORED,  # crypto trades on the holiday
        (2, 6): Cell.STORED,
        (2, 7): Cell.MISSING,
    }
    layout = report.layout
    assert layout is not None
    for (row, day), cell in expected.items():
        x, y = layout.cell_centre(row, day - 1)
        assert image.getpixel((x, y)) == COLOURS[cell], (row, day, cell)
        x0, y0, x1, y1 = layout.cell_box(row, day - 1)
        assert image.getpixel((x0, y0)) == image.getpixel((x1, y1)) == COLOURS[cell]


def test_symbols_filter_and_untracked_symbols(known_store):
    report = coverage_report(known_store, symbols=["x:btcusd"], start=START, end=END, out=None)
    assert [(r.symbol, r.asset_class) for r in report.rows] == [("BTCUSD", AssetClass.CRYPTO)]
    assert report.out is None and report.layout is None
    with pytest.raises(InputError, match="not tracked: NOPE"):
        coverage_report(known_store, symbols=["NOPE"], start=START, end=END, out=None)
    with pytest.raises(InputError, match="reversed"):
        coverage_report(known_store, symbols=None, start=END, end=START, out=None)


def test_default_start_is_the_first_stored_day(known_store):
    report = coverage_report(known_store, symbols=["AAPL"], start=None, end=END, out=None)
    assert report.start == START


def test_symbol_coverage_for_asset_metadata(known_store):
    with psycopg.connect(known_store) as conn:
        stocks = symbol_coverage(conn, AssetClass.STOCK, ["MSFT", "AAPL", "GONE"], START, END)
    assert stocks == {
        "AAPL": {"stored": 3, "missing": 0, "quarantined": 1, "failed": 0},
        "GONE": {"stored": 0, "missing": 4, "quarantined": 0, "failed": 0},
        "MSFT": {"stored": 2, "missing": 0, "quarantined": 0, "failed": 2},
    }


def test_summary_of_many_symbols_lists_only_those_with_gaps():
    days = tuple(START + dt.timedelta(days=i) for i in range(2))
    full = (Cell.STORED, Cell.STORED)
    rows = [SymbolCoverage(f"S{i:02d}", AssetClass.CRYPTO, full) for i in range(23)]
    rows.append(SymbolCoverage("GAP", AssetClass.STOCK, (Cell.STORED, Cell.MISSING)))
    rows.append(SymbolCoverage("BAD", AssetClass.STOCK, (Cell.FAILED, Cell.FAILED), "401: no"))
    report = CoverageReport(START, days[-1], days, tuple(rows))
    assert format_summary(report) == [
        "coverage 2024-07-01..2024-07-02: 25 symbols, 50 sessions "
        "(stocks: NYSE sessions; crypto: every UTC day)",
        "  stored 47, missing 1, quarantined 0, failed 2",
        "  23 symbols complete, 2 with gaps:",
        "  GAP        stock  stored 1, missing 1",
        "  BAD        stock  failed 2  (401: no)",
    ]
