"""Quarantine of bad vendor bars and the non-blocking quality checks, end to end."""

from __future__ import annotations

import datetime as dt

import polars as pl

from marketdata_pipeline.lib.calendar import stock_sessions
from marketdata_pipeline.lib.candles.quality import missing_sessions, price_jumps
from marketdata_pipeline.lib.candles.validation import TIMESTAMP_REASON
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.polygon.payload import HELPER_COLUMNS
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol
from marketdata_pipeline_tests.helpers import (
    check_evaluations,
    crypto_daily_candles,
    materialise,
    query,
    read_table,
    stock_daily_candles,
)
from marketdata_pipeline_tests.resources import fetch_candles

START, END = dt.date(2024, 9, 3), dt.date(2024, 9, 27)
STOCKS = {"stock_daily_candles": ["AAPL", "MSFT"]}


def test_bad_vendor_bars_are_quarantined_and_good_rows_written(sim, resources, database_url):
    corrupt = ["high_below_low", "negative_volume", "zero_price", "misaligned_t"]
    sim.add_fault(kind="bad_bars", ticker="MSFT", corrupt=corrupt)
    result = materialise(START, END, resources, assets=[stock_daily_candles], symbols=STOCKS)
    assert result.success, "quarantine is not a failure"
    checks = check_evaluations(result)
    assert checks["stock_daily_candles:ohlcv_schema"].passed
    quarantined = checks["stock_daily_candles:rows_quarantined"]
    assert not quarantined.passed
    assert quarantined.severity.value == "WARN"
    assert quarantined.metadata["quarantined"].value == 4
    sessions = stock_sessions(START, END)
    stored = read_table(database_url, "stock_daily_candles")
    assert stored.filter(pl.col("symbol") == "AAPL").height == len(sessions)
    msft_days = stored.filter(pl.col("symbol") == "MSFT").get_column("day").to_list()
    assert msft_days == sessions[4:]
    rejected = query(
        database_url,
        "SELECT symbol, day, reason FROM marketdata.rejected_candles ORDER BY day",
    )
    assert [(s, d) for s, d, _ in rejected] == [("MSFT", d) for d in sessions[:4]]
    reasons = [r for _, _, r in rejected]
    assert "high below low" in reasons[0]
    assert reasons[1] == "negative or non-finite volume"
    assert "non-positive price" in reasons[2]
    assert reasons[3] == TIMESTAMP_REASON
    # The gap left by the quarantined bars is reported by the completeness check.
    completeness = checks["stock_daily_candles:completeness"]
    assert not completeness.passed
    assert completeness.metadata["missing"].value == {"MSFT": [d.isoformat() for d in sessions[:4]]}
    # A clean rerun replaces the quarantine for the slice instead of accumulating it.
    sim.clear_faults()
    assert materialise(START, END, resources, assets=[stock_daily_candles], symbols=STOCKS).success
    assert query(database_url, "SELECT count(*) FROM marketdata.rejected_candles") == [(0,)]


def test_structural_problems_still_block_the_write(sim, resources, database_url):
    sim.add_fault(kind="bad_bars", ticker="AAPL", corrupt=["high_below_low", "duplicate_day"])
    result = materialise(START, END, resources, assets=[stock_daily_candles], symbols=STOCKS)
    assert not result.success
    assert not check_evaluations(result)["stock_daily_candles:ohlcv_schema"].passed
    assert read_table(database_url, "stock_daily_candles").height == 0
    assert query(database_url, "SELECT count(*) FROM marketdata.rejected_candles") == [(0,)]


def test_completeness_reports_none_across_exchange_closures(sim, polygon):
    """NYSE closed 2001-09-11..14 and 2012-10-29..30: no bar is expected, none is missing."""
    aapl = [parse_symbol("AAPL")]
    for start, end in [
        (dt.date(2001, 9, 1), dt.date(2001, 9, 30)),
        (dt.date(2012, 10, 15), dt.date(2012, 11, 9)),
    ]:
        result = fetch_candles(polygon, AssetClass.STOCK, aapl, CandleWindow(start, end))
        frame = result.frame.drop(HELPER_COLUMNS)
        assert dt.date(2001, 9, 11) not in frame.get_column("day").to_list()
        assert missing_sessions(frame, AssetClass.STOCK, start, end, ["AAPL"]) == {}


def test_completeness_names_a_missing_session(sim, polygon):
    start, end = dt.date(2012, 10, 22), dt.date(2012, 11, 2)
    frame = fetch_candles(
        polygon, AssetClass.STOCK, [parse_symbol("AAPL")], CandleWindow(start, end)
    ).frame
    gap = frame.filter(pl.col("day") != dt.date(2012, 10, 31))
    assert missing_sessions(gap, AssetClass.STOCK, start, end, ["AAPL", "MSFT"]) == {
        "AAPL": [dt.date(2012, 10, 31)],
        "MSFT": stock_sessions(start, end),
    }


def test_delayed_bars_are_flagged_provisional(sim, resources, database_url):
    sim.add_fault(kind="delayed_status", ticker="X:BTCUSD")
    result = materialise(
        START,
        END,
        resources,
        assets=[crypto_daily_candles],
        symbols={"crypto_daily_candles": ["BTCUSD"]},
    )
    assert result.success
    provisional = check_evaluations(result)["crypto_daily_candles:provisional_bars"]
    assert not provisional.passed and provisional.metadata["bars"].value == 25
    assert read_table(database_url, "crypto_daily_candles").get_column("provisional").all()


def test_price_jumps_flag_a_probable_split():
    frame = pl.DataFrame(
        {
            "symbol": ["AAPL"] * 3 + ["MSFT"] * 2,
            "day": [dt.date(2020, 8, d) for d in (27, 28, 31, 27, 28)],
            "close": [500.0, 499.0, 124.8, 230.0, 231.0],
        }
    )
    jumps = price_jumps(frame, threshold=0.5)
    assert jumps.select("symbol", "day").rows() == [("AAPL", dt.date(2020, 8, 31))]
