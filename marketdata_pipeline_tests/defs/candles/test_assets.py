"""The candle assets end to end: the simulator over HTTP, Dagster, a real Postgres."""

from __future__ import annotations

import datetime as dt

import polars as pl

from marketdata_pipeline.lib.calendar import stock_sessions
from marketdata_pipeline_tests.helpers import (
    check_evaluations,
    crypto_daily_candles,
    materialise,
    query,
    read_table,
    stock_daily_candles,
)

STOCKS = ["AAPL", "MSFT"]


def test_single_partition_writes_each_symbol_once(sim, resources, database_url):
    day = dt.date(2024, 7, 3)
    result = materialise(
        day,
        day,
        resources,
        symbols={"stock_daily_candles": STOCKS, "crypto_daily_candles": ["BTCUSD"]},
    )
    assert result.success
    stocks = read_table(database_url, "stock_daily_candles")
    assert stocks.select("symbol", "day").rows() == [("AAPL", day), ("MSFT", day)]
    crypto = read_table(database_url, "crypto_daily_candles")
    assert crypto.select("symbol", "day").rows() == [("BTCUSD", day)]
    checks = check_evaluations(result)
    assert checks["stock_daily_candles:ohlcv_schema"].passed
    assert checks["stock_daily_candles:symbols_fetched"].passed


def test_sixty_day_range_is_one_run_with_a_bar_per_session(sim, resources, database_url):
    start, end = dt.date(2024, 5, 1), dt.date(2024, 6, 29)
    result = materialise(
        start, end, resources, assets=[stock_daily_candles], symbols={"stock_daily_candles": STOCKS}
    )
    assert result.success
    stored = read_table(database_url, "stock_daily_candles")
    sessions = stock_sessions(start, end)
    for symbol in STOCKS:
        assert stored.filter(pl.col("symbol") == symbol).get_column("day").to_list() == sessions
    # One range request per symbol for the whole window (the planner's cheaper plan).
    assert sim.stats(include_log=False)["requests"] == len(STOCKS)
    # Each partition carries its own row count (its day's rows), not the run's total; the
    # newest one the table's rows too (what the asset's overview shows).
    per_day = dict(stored.group_by("day").len().iter_rows())
    events = {
        m.partition: m.materialization.metadata for m in result.get_asset_materialization_events()
    }
    assert len(events) == len(sessions)  # a partition per session, none on weekends
    for key, metadata in events.items():
        expected = per_day.get(dt.date.fromisoformat(key), 0)
        assert metadata["dagster/partition_row_count"].value == expected
    assert events["2024-06-28"]["dagster/partition_row_count"].value == len(STOCKS)
    assert events["2024-06-28"]["dagster/row_count"].value == stored.height
    assert "2024-06-29" not in events  # a Saturday: no stock partition
    # The run's own figures are on its newest partition only, not copied onto all of them.
    last = events.pop("2024-06-28")
    assert last["run_rows"].value == stored.height
    assert last["run_rows_inserted"].value == stored.height and "requests" in last
    assert all(set(metadata) == {"dagster/partition_row_count"} for metadata in events.values())


def test_rematerialising_a_range_is_idempotent(sim, resources, database_url):
    start, end = dt.date(2024, 3, 1), dt.date(2024, 3, 31)
    symbols = {"stock_daily_candles": STOCKS, "crypto_daily_candles": ["BTCUSD"]}
    assert materialise(start, end, resources, symbols=symbols).success
    first = read_table(database_url, "stock_daily_candles").drop("fetched_at")
    first_crypto = read_table(database_url, "crypto_daily_candles").drop("fetched_at")
    assert materialise(start, end, resources, symbols=symbols).success
    assert read_table(database_url, "stock_daily_candles").drop("fetched_at").equals(first)
    assert read_table(database_url, "crypto_daily_candles").drop("fetched_at").equals(first_crypto)
    assert first_crypto.height == 31  # crypto trades every day


def test_a_run_for_some_symbols_leaves_other_symbols_rows_untouched(sim, resources, database_url):
    start, end = dt.date(2024, 2, 1), dt.date(2024, 2, 29)
    assets = [stock_daily_candles]
    assert materialise(
        start, end, resources, assets=assets, symbols={"stock_daily_candles": ["AAPL", "MSFT"]}
    ).success
    msft_before = read_table(database_url, "stock_daily_candles").filter(pl.col("symbol") == "MSFT")
    # The vendor revises AAPL's bars; a run for AAPL alone must not touch MSFT's rows.
    sim.configure(revision=1, revision_from="2024-02-01")
    assert materialise(
        start, end, resources, assets=assets, symbols={"stock_daily_candles": ["AAPL"]}
    ).success
    after = read_table(database_url, "stock_daily_candles")
    assert after.filter(pl.col("symbol") == "MSFT").equals(msft_before)
    assert after.filter(pl.col("symbol") == "AAPL").height == msft_before.height


def test_structurally_bad_payload_writes_nothing_and_records_the_failed_check(
    sim, resources, database_url
):
    start, end = dt.date(2024, 4, 1), dt.date(2024, 4, 30)
    symbols = {"stock_daily_candles": STOCKS}
    assets = [stock_daily_candles]
    assert materialise(start, end, resources, assets=assets, symbols=symbols).success
    before = read_table(database_url, "stock_daily_candles")
    sim.configure(revision=2, revision_from="2024-04-01")
    sim.add_fault(kind="bad_bars", ticker="MSFT", corrupt=["duplicate_day"])
    result = materialise(start, end, resources, assets=assets, symbols=symbols)
    assert not result.success
    check = check_evaluations(result)["stock_daily_candles:ohlcv_schema"]
    assert not check.passed
    assert "share a (symbol, day)" in check.description
    # Nothing was written: not even AAPL's revised (and valid) rows.
    assert read_table(database_url, "stock_daily_candles").equals(before)
    status = dict(query(database_url, "SELECT symbol, status FROM marketdata.tracked_symbols"))
    assert status == {}  # untracked symbols: nothing to record


def test_null_fields_are_structural_and_block_the_write(sim, resources, database_url):
    day = dt.date(2024, 4, 2)
    sim.add_fault(kind="bad_bars", ticker="AAPL", corrupt=["null_field"])
    result = materialise(
        day, day, resources, assets=[stock_daily_candles], symbols={"stock_daily_candles": ["AAPL"]}
    )
    assert not result.success
    assert (
        "nulls in required fields"
        in check_evaluations(result)["stock_daily_candles:ohlcv_schema"].description
    )
    assert read_table(database_url, "stock_daily_candles").height == 0


def test_crypto_accepts_btcusd_and_x_prefixed_symbols_and_keeps_fractional_volume(
    sim, resources, database_url
):
    start, end = dt.date(2024, 1, 1), dt.date(2024, 1, 7)  # the first partitions
    result = materialise(
        start,
        end,
        resources,
        assets=[crypto_daily_candles],
        symbols={"crypto_daily_candles": ["BTCUSD", "X:ETHUSD"]},
    )
    assert result.success
    stored = read_table(database_url, "crypto_daily_candles")
    assert sorted(stored.get_column("symbol").unique().to_list()) == ["BTCUSD", "ETHUSD"]
    assert stored.height == 14
    volumes = stored.get_column("volume")
    assert (volumes != volumes.floor()).any(), "crypto volume must stay fractional"
    # Exactly what the API sent, through Postgres and back.
    log = sim.stats()["log"]
    assert {entry["ticker"] for entry in log} == {"X:BTCUSD", "X:ETHUSD"}
    # UTC days: every bar starts at 00:00Z.
    assert (stored.get_column("ts").dt.hour() == 0).all()
