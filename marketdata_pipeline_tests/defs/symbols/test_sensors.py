"""The symbol-table sensor with a real Postgres and a real Dagster instance."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import psycopg

from marketdata_pipeline.defs.symbols.sensors import read_cursor
from marketdata_pipeline.lib.calendar import last_complete_day, stock_sessions
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols, remove_symbols
from marketdata_pipeline.lib.symbols import parse_symbol
from marketdata_pipeline_tests.helpers import (
    START_DATE,
    query,
    range_tags,
    read_table,
    stock_daily_candles,
    tracked_symbols_sensor,
)

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def evaluate(instance: dg.DagsterInstance, database, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"database": database}
    )
    return tracked_symbols_sensor(context)


def track(url: str, *symbols: str, asset_class: str | None = None) -> None:
    with psycopg.connect(url) as conn:
        add_symbols(conn, [parse_symbol(s, asset_class) for s in symbols])


def test_no_change_skips_with_a_reason(database):
    with dg.instance_for_test() as instance:
        result = evaluate(instance, database, None)
    assert isinstance(result, dg.SkipReason)
    assert "no symbols added" in result.skip_message


def test_new_symbols_become_one_history_run_per_asset_class(database, database_url):
    track(database_url, "AAPL", "MSFT")
    track(database_url, "X:BTCUSD")
    with dg.instance_for_test() as instance:
        result = evaluate(instance, database, None)
        assert isinstance(result, dg.SensorResult)
        requests = {r.job_name: r for r in result.run_requests}
        assert set(requests) == {"stock_candles_job", "crypto_candles_job"}
        stock = requests["stock_candles_job"]
        # Each asset class runs in its own job, over its partition keys: NYSE sessions for
        # stocks (the first and last session of the history), every UTC day for crypto.
        sessions = stock_sessions(START_DATE, last_complete_day())
        assert stock.job_name == "stock_candles_job"
        assert stock.tags[RANGE_START] == sessions[0].isoformat()
        assert stock.tags[RANGE_END] == sessions[-1].isoformat()
        assert stock.run_config == {
            "ops": {"stock_daily_candles": {"config": {"symbols": ["AAPL", "MSFT"]}}}
        }
        # The job alone selects the run's assets: a stock history run learns splits and
        # repairs older history in the same run (the job's assets: test_definitions.py).
        assert stock.asset_selection is None
        crypto = requests["crypto_candles_job"]
        assert crypto.job_name == "crypto_candles_job"
        assert crypto.tags[RANGE_START] == START_DATE.isoformat()
        assert crypto.tags[RANGE_END] == last_complete_day().isoformat()
        assert crypto.asset_selection is None
        assert crypto.run_config["ops"]["crypto_daily_candles"]["config"]["symbols"] == ["BTCUSD"]
        # The cursor advanced: the same table state asks for nothing more.
        again = evaluate(instance, database, result.cursor)
        assert isinstance(again, dg.SkipReason)
        # A symbol added later is requested alone.
        track(database_url, "NVDA")
        later = evaluate(instance, database, result.cursor)
        assert [
            r.run_config["ops"]["stock_daily_candles"]["config"]["symbols"]
            for r in later.run_requests
        ] == [["NVDA"]]
        assert read_cursor(later.cursor)[0] > read_cursor(result.cursor)[0]


def test_symbols_added_with_plain_sql_and_reactivated_ones_are_seen(database, database_url):
    track(database_url, "AAPL")
    with dg.instance_for_test() as instance:
        cursor = evaluate(instance, database, None).cursor
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "INSERT INTO marketdata.tracked_symbols (symbol, asset_class)"
                " VALUES ('IBM', 'stock')"
            )
            remove_symbols(conn, [parse_symbol("AAPL")])
        result = evaluate(instance, database, cursor)
        assert [
            r.run_config["ops"]["stock_daily_candles"]["config"]["symbols"]
            for r in result.run_requests
        ] == [["IBM"]]
        track(database_url, "AAPL")  # re-activated
        result = evaluate(instance, database, result.cursor)
        assert [
            r.run_config["ops"]["stock_daily_candles"]["config"]["symbols"]
            for r in result.run_requests
        ] == [["AAPL"]]


def test_the_requested_run_fetches_history_for_the_new_symbol_only(
    sim, resources, database, database_url
):
    """Run what the sensor asks for: only the new symbol's history appears; others untouched."""
    track(database_url, "AAPL")
    end = last_complete_day()
    recent = end - dt.timedelta(days=20)
    with dg.instance_for_test() as instance:
        cursor = evaluate(instance, database, None).cursor
        # AAPL is already stored for recent days when MSFT gets added.
        seeded = dg.materialize(
            [stock_daily_candles],
            resources=resources,
            instance=instance,
            tags=range_tags(recent, end),
        )
        assert seeded.success
        aapl_before = read_table(database_url, "stock_daily_candles")
        track(database_url, "MSFT")
        result = evaluate(instance, database, cursor)
        (request,) = result.run_requests
        sim.reset()
        run = dg.materialize(
            [stock_daily_candles],
            resources=resources,
            # In-memory event log: ~1,000 partitions of history make ~8,000 events.
            instance=dg.DagsterInstance.ephemeral(),
            tags=request.tags,
            run_config=request.run_config,
        )
        assert run.success
    stored = read_table(database_url, "stock_daily_candles")
    assert stored.filter(pl.col("symbol") == "AAPL").equals(aapl_before)
    msft = stored.filter(pl.col("symbol") == "MSFT")
    assert msft.get_column("day").min() == stock_sessions(START_DATE, end)[0]
    assert msft.get_column("day").max() <= end
    log = sim.stats()["log"]
    assert {e["ticker"] for e in log if e["kind"] in ("range", "grouped")} == {"MSFT"}
    # The history run chose its tickers through MSFT's security, identified once (details,
    # then events by its FIGI).
    assert [e["kind"] for e in log if e["kind"].startswith("ticker_")] == [
        "ticker_details",
        "ticker_events",
    ]
    assert ("MSFT",) in query(database_url, "SELECT ticker FROM marketdata.ticker_history")
    assert query(
        database_url,
        "SELECT status, last_success_day FROM marketdata.tracked_symbols WHERE symbol='MSFT'",
    ) == [("ok", stock_sessions(START_DATE, end)[-1])]
