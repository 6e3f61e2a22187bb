"""The daily revision schedules: last complete day plus trailing sessions, one run per asset
class (stock ranges snapped to NYSE sessions)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import psycopg

from marketdata_pipeline.defs.candles.assets import CandleAssets
from marketdata_pipeline.defs.candles.jobs import build_candle_jobs
from marketdata_pipeline.defs.candles.schedules import build_revision_schedules, revision_window
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol
from marketdata_pipeline_tests.helpers import CANDLE_ASSETS, START_DATE, materialise, read_table

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
TUESDAY_MORNING = dt.datetime(2024, 7, 9, 6, 0, tzinfo=dt.UTC)


def test_window_is_the_last_complete_day_and_five_sessions_before_it():
    # Monday 2024-07-08 is the last complete day; the five sessions before it are
    # Jun 28, Jul 1, 2, 3 and 5 (Jul 4 is a holiday).
    first = START_DATE
    assert revision_window(TUESDAY_MORNING, 5, first) == CandleWindow(
        dt.date(2024, 6, 28), dt.date(2024, 7, 8)
    )
    assert revision_window(TUESDAY_MORNING, 1, first) == CandleWindow(
        dt.date(2024, 7, 5), dt.date(2024, 7, 8)
    )
    assert revision_window(TUESDAY_MORNING, 0, first) == CandleWindow(
        dt.date(2024, 7, 8), dt.date(2024, 7, 8)
    )


def revision_schedules(trailing_sessions: int) -> dict[AssetClass, dg.ScheduleDefinition]:
    stock, crypto = build_revision_schedules(
        build_candle_jobs(CandleAssets(*CANDLE_ASSETS)), START_DATE, trailing_sessions
    )
    return {AssetClass.STOCK: stock, AssetClass.CRYPTO: crypto}


def tick(schedule: dg.ScheduleDefinition, when: dt.datetime) -> dg.RunRequest | dg.SkipReason:
    """The schedule's one request (or skip reason) at `when`."""
    # The context is closed inside the instance's scope: it enters the instance, and closing
    # them out of order would leave Dagster's definitions-state variable pointing at it.
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context,
    ):
        data = schedule.evaluate_tick(context)
    if data.run_requests:
        (request,) = data.run_requests
        return request
    return dg.SkipReason(data.skip_message)


def test_each_asset_class_has_its_schedule_and_job():
    schedules = revision_schedules(5)
    assert schedules[AssetClass.STOCK].name == "stock_candle_revisions_schedule"
    assert schedules[AssetClass.STOCK].job_name == "stock_candles_job"
    assert schedules[AssetClass.CRYPTO].name == "crypto_candle_revisions_schedule"
    assert schedules[AssetClass.CRYPTO].job_name == "crypto_candles_job"
    for cls, schedule in schedules.items():
        request = tick(schedule, TUESDAY_MORNING)
        # Monday 2024-07-08 and the five sessions before it: a session at either end.
        assert request.tags[RANGE_START] == "2024-06-28", cls
        assert request.tags[RANGE_END] == "2024-07-08", cls


def test_the_stock_request_is_snapped_to_sessions_the_crypto_one_is_not():
    # Sunday 2024-07-07 06:00: the last complete day is Saturday, not a stock partition.
    sunday = dt.datetime(2024, 7, 7, 6, 0, tzinfo=dt.UTC)
    stock = tick(revision_schedules(0)[AssetClass.STOCK], sunday)
    crypto = tick(revision_schedules(0)[AssetClass.CRYPTO], sunday)
    assert (crypto.tags[RANGE_START], crypto.tags[RANGE_END]) == ("2024-07-06", "2024-07-06")
    assert isinstance(stock, dg.SkipReason) and "no stock trading day" in stock.skip_message
    # One trailing session reaches back to Friday 2024-07-05: the stock run is that session.
    stock = tick(revision_schedules(1)[AssetClass.STOCK], sunday)
    assert (stock.tags[RANGE_START], stock.tags[RANGE_END]) == ("2024-07-05", "2024-07-05")
    crypto = tick(revision_schedules(1)[AssetClass.CRYPTO], sunday)
    assert (crypto.tags[RANGE_START], crypto.tags[RANGE_END]) == ("2024-07-05", "2024-07-06")


def test_the_schedules_run_replaces_revised_and_provisional_bars_only_in_its_window(
    sim, resources, database_url
):
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, [parse_symbol("AAPL"), parse_symbol("BTCUSD", "crypto")])
    # History, where the latest bars were still provisional when fetched.
    assert materialise(dt.date(2024, 6, 3), dt.date(2024, 6, 27), resources).success
    sim.add_fault(kind="delayed_status")
    assert materialise(dt.date(2024, 6, 28), dt.date(2024, 7, 8), resources).success
    before = read_table(database_url, "stock_daily_candles")
    assert before.filter(pl.col("day") >= dt.date(2024, 6, 28)).get_column("provisional").all()
    # Overnight the vendor finalises and revises its recent bars.
    sim.clear_faults()
    sim.configure(revision=1, revision_from="2024-07-01")
    request = tick(revision_schedules(5)[AssetClass.STOCK], TUESDAY_MORNING)
    start = dt.date.fromisoformat(request.tags[RANGE_START])
    end = dt.date.fromisoformat(request.tags[RANGE_END])
    assert materialise(start, end, resources, assets=CANDLE_ASSETS).success
    after = read_table(database_url, "stock_daily_candles")
    old = pl.col("day") < start
    assert after.filter(old).equals(before.filter(old)), "history outside the window untouched"
    window = after.filter(~old)
    assert not window.get_column("provisional").any()
    revised = window.filter(pl.col("day") >= dt.date(2024, 7, 1)).get_column("close")
    previous = before.filter(pl.col("day") >= dt.date(2024, 7, 1)).get_column("close")
    assert (revised != previous).all()
    crypto = read_table(database_url, "crypto_daily_candles")
    assert not crypto.filter(pl.col("day") >= start).get_column("provisional").any()
