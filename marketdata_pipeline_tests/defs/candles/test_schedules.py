"""The daily revision schedule: last complete day plus trailing sessions, as one run."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import psycopg

from marketdata_pipeline.defs.candles.assets import CandleAssets
from marketdata_pipeline.defs.candles.jobs import build_candles_job
from marketdata_pipeline.defs.candles.schedules import build_revision_schedule, revision_window
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.symbols import parse_symbol
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


def revision_schedule(trailing_sessions: int) -> dg.ScheduleDefinition:
    return build_revision_schedule(
        build_candles_job(CandleAssets(*CANDLE_ASSETS)), START_DATE, trailing_sessions
    )


def test_schedule_requests_one_run_over_the_window_for_both_assets():
    schedule = revision_schedule(5)
    # The context is closed inside the instance's scope: it enters the instance, and closing
    # them out of order would leave Dagster's definitions-state variable pointing at it.
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance, scheduled_execution_time=TUESDAY_MORNING
        ) as context,
    ):
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.tags[RANGE_START] == "2024-06-28"
    assert request.tags[RANGE_END] == "2024-07-08"
    assert schedule.job_name == "candles_job"


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
    request = (
        revision_schedule(5)
        .evaluate_tick(dg.build_schedule_context(scheduled_execution_time=TUESDAY_MORNING))
        .run_requests[0]
    )
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
