"""Session partitions: a stock partition per NYSE session only, a crypto one per UTC day."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from marketdata_pipeline.defs.candles.partitions import crypto_partitions, stock_partitions
from marketdata_pipeline.lib.calendar import crypto_days, stock_sessions, weekday_closures
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.symbols import AssetClass
from marketdata_pipeline_tests.helpers import (
    START_DATE,
    crypto_daily_candles,
    materialise,
    read_table,
    stock_daily_candles,
)

#: Independence Day 2024 (Thursday), its Friday session, its Saturday; hurricane Sandy.
JULY_4, JULY_5, JULY_6 = dt.date(2024, 7, 4), dt.date(2024, 7, 5), dt.date(2024, 7, 6)
SANDY = (dt.date(2012, 10, 29), dt.date(2012, 10, 30))


def test_the_stock_asset_has_no_weekend_or_holiday_partition():
    partitions = stock_daily_candles.partitions_def
    assert partitions.has_partition_key(JULY_5.isoformat())
    for day in (JULY_4, JULY_6, dt.date(2024, 7, 7), dt.date(2024, 12, 25)):
        assert not partitions.has_partition_key(day.isoformat()), day
    keys = partitions.get_partition_keys_in_range(dg.PartitionKeyRange("2024-07-01", "2024-07-08"))
    assert keys == ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08"]
    # START_DATE (2024-01-01) is New Year's Day: the first stock partition is the first session.
    assert partitions.get_first_partition_key() == "2024-01-02"
    # Keys stay the New York session date on UTC day windows, as before.
    window = partitions.time_window_for_partition_key(JULY_5.isoformat())
    assert (window.start, window.end) == (
        dt.datetime(2024, 7, 5, tzinfo=dt.UTC),
        dt.datetime(2024, 7, 6, tzinfo=dt.UTC),
    )


def test_the_crypto_asset_has_every_utc_day():
    partitions = crypto_daily_candles.partitions_def
    assert partitions.get_first_partition_key() == START_DATE.isoformat()
    keys = partitions.get_partition_keys_in_range(dg.PartitionKeyRange("2024-07-01", "2024-07-08"))
    assert keys == [d.isoformat() for d in crypto_days(dt.date(2024, 7, 1), dt.date(2024, 7, 8))]


def test_session_partitions_are_the_nyse_calendar_since_2000():
    """Every key is an XNYS session and every session a key (ad-hoc closures too: Sandy,
    2001-09-11). (Building and listing 27 years takes milliseconds: measured, not asserted.)"""
    partitions = stock_partitions(dt.date(2000, 1, 1))
    keys = partitions.get_partition_keys(current_time=dt.datetime(2026, 12, 31, 12, tzinfo=dt.UTC))
    sessions = stock_sessions(dt.date(2000, 1, 1), dt.date(2026, 12, 30))
    assert keys == [d.isoformat() for d in sessions]
    assert not {d.isoformat() for d in (*SANDY, dt.date(2001, 9, 11))} & set(keys)
    every_day = crypto_partitions(dt.date(2000, 1, 1)).get_partition_keys(
        current_time=dt.datetime(2026, 12, 31, 12, tzinfo=dt.UTC)
    )
    assert len(every_day) == (dt.date(2026, 12, 30) - dt.date(2000, 1, 1)).days + 1


def test_weekday_closures_are_the_holidays_a_weekend_rule_misses():
    assert weekday_closures(dt.date(2024, 7, 1), dt.date(2024, 7, 31)) == [JULY_4]
    assert weekday_closures(*SANDY) == list(SANDY)
    with pytest.raises(ValueError, match="calendar covers"):
        weekday_closures(dt.date(1980, 1, 1), dt.date(1980, 12, 31))


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("2024-07-01", "2024-07-05", CandleWindow(dt.date(2024, 7, 1), JULY_5)),
        # A range ends at its last key's window end, past the excluded days before it.
        ("2024-07-03", "2024-07-08", CandleWindow(dt.date(2024, 7, 3), dt.date(2024, 7, 8))),
        ("2024-07-05", "2024-07-05", CandleWindow(JULY_5, JULY_5)),
    ],
)
def test_a_session_range_converts_to_its_first_and_last_key(first, last, expected):
    partitions = stock_daily_candles.partitions_def
    window = dg.TimeWindow(
        partitions.time_window_for_partition_key(first).start,
        partitions.time_window_for_partition_key(last).end,
    )
    assert CandleWindow.from_time_window(window) == expected


def test_trading_window_snaps_a_stock_range_to_the_sessions_inside_it():
    window = CandleWindow(JULY_4, dt.date(2024, 7, 7))
    assert window.trading_window(AssetClass.STOCK) == CandleWindow(JULY_5, JULY_5)
    assert window.trading_window(AssetClass.CRYPTO) == window
    assert CandleWindow(JULY_6, dt.date(2024, 7, 7)).trading_window(AssetClass.STOCK) is None


def test_a_stock_range_over_a_holiday_week_materialises_exactly_its_sessions(
    sim, resources, database_url
):
    """Monday 2024-07-01 to Sunday 07-07: four sessions (Independence Day off), one run."""
    result = materialise(
        dt.date(2024, 7, 1),
        dt.date(2024, 7, 7),
        resources,
        assets=[stock_daily_candles],
        symbols={"stock_daily_candles": ["AAPL"]},
    )
    assert result.success
    assert result.dagster_run.tags["dagster/asset_partition_range_end"] == "2024-07-05"
    materialised = sorted(m.partition for m in result.get_asset_materialization_events())
    assert materialised == ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05"]
    stored = read_table(database_url, "stock_daily_candles")
    assert stored.get_column("day").to_list() == [dt.date.fromisoformat(k) for k in materialised]
    assert stored.filter(pl.col("day") == JULY_4).is_empty()
