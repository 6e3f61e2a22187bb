"""Per-symbol outcomes: tracked symbols drive runs; one failing symbol never blocks the others."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import psycopg

from marketdata_pipeline.defs.candles.assets import CandleAssets
from marketdata_pipeline.defs.candles.jobs import CANDLE_JOB_BY_CLASS, build_candle_jobs
from marketdata_pipeline.lib.calendar import stock_sessions
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols, remove_symbols
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol
from marketdata_pipeline_tests.helpers import (
    CANDLE_ASSETS,
    Runs,
    check_evaluations,
    materialise,
    query,
    range_tags,
    read_table,
)

START, END = dt.date(2024, 6, 3), dt.date(2024, 6, 28)


def track(url: str, *symbols: str, asset_class: str | None = None) -> None:
    with psycopg.connect(url) as conn:
        add_symbols(conn, [parse_symbol(s, asset_class) for s in symbols])


def status(url: str) -> dict[str, tuple]:
    rows = query(
        url,
        "SELECT symbol, status, last_success_day, last_error, last_attempt_at IS NOT NULL"
        " FROM marketdata.tracked_symbols",
    )
    return {r[0]: r[1:] for r in rows}


def run_jobs(resources: dict, start: dt.date = START, end: dt.date = END) -> Runs:
    """Both candle jobs over start..end, each on its own partitions."""
    defs = dg.Definitions(
        assets=list(CANDLE_ASSETS),
        jobs=list(build_candle_jobs(CandleAssets(*CANDLE_ASSETS))),
        resources=resources,
    )
    return Runs(
        tuple(
            defs.resolve_job_def(CANDLE_JOB_BY_CLASS[cls]).execute_in_process(
                instance=dg.DagsterInstance.ephemeral(),
                tags=range_tags(start, end, cls),
                raise_on_error=False,
            )
            for cls in AssetClass
        )
    )


def test_mixed_stocks_and_crypto_in_their_jobs_from_the_tracked_table(sim, resources, database_url):
    track(database_url, "AAPL", "MSFT")
    track(database_url, "BTCUSD", "ETHUSD", asset_class="crypto")
    result = run_jobs(resources)
    assert result.success
    stocks = read_table(database_url, "stock_daily_candles")
    crypto = read_table(database_url, "crypto_daily_candles")
    assert sorted(stocks.get_column("symbol").unique()) == ["AAPL", "MSFT"]
    assert sorted(crypto.get_column("symbol").unique()) == ["BTCUSD", "ETHUSD"]
    assert crypto.height == 2 * ((END - START).days + 1)
    assert all(
        v[0] == "ok" and v[1] == END and v[2] is None and v[3]
        for v in status(database_url).values()
    )


def test_removed_symbols_are_not_fetched_by_later_runs(sim, resources, database_url):
    track(database_url, "AAPL", "MSFT")
    with psycopg.connect(database_url) as conn:
        remove_symbols(conn, [parse_symbol("MSFT")])
    assert materialise(START, END, resources).success
    candles = [e for e in sim.stats()["log"] if e["kind"] in ("range", "grouped")]
    assert {e["ticker"] for e in candles} == {"AAPL"}
    assert read_table(database_url, "stock_daily_candles").get_column(
        "symbol"
    ).unique().to_list() == ["AAPL"]


def test_one_failing_symbol_is_recorded_while_the_others_are_stored(sim, resources, database_url):
    track(database_url, "AAPL", "MSFT", "NVDA")
    # The vendor refuses MSFT for good (a plan entitlement error is never retried).
    sim.add_fault(kind="status", status_code=403, ticker="MSFT")
    result = materialise(START, END, resources)
    assert not result.success, "the run must show the failure"
    check = check_evaluations(result)["stock_daily_candles:symbols_fetched"]
    assert not check.passed and "MSFT" in check.description
    stored = read_table(database_url, "stock_daily_candles")
    assert sorted(stored.get_column("symbol").unique()) == ["AAPL", "NVDA"]
    states = status(database_url)
    assert states["AAPL"][0] == "ok" and states["NVDA"][0] == "ok"
    msft = states["MSFT"]
    assert msft[0] == "error" and msft[1] is None
    assert "HTTP 403" in msft[2] and "MSFT" in msft[2] and "plan" in msft[2]
    # A rerun after the vendor recovers fills the hole and clears the error.
    sim.clear_faults()
    assert materialise(START, END, resources).success
    assert read_table(database_url, "stock_daily_candles").filter(
        pl.col("symbol") == "MSFT"
    ).height == len(stock_sessions(START, END))
    assert status(database_url)["MSFT"][:3] == ("ok", END, None)


def test_a_failing_symbol_keeps_its_previously_stored_rows(sim, resources, database_url):
    track(database_url, "AAPL")
    assert materialise(START, END, resources).success
    before = read_table(database_url, "stock_daily_candles")
    sim.add_fault(kind="status", status_code=500, body="html", ticker="AAPL")
    result = materialise(START, END, resources)
    assert not result.success
    assert read_table(database_url, "stock_daily_candles").equals(before)
    assert status(database_url)["AAPL"][0] == "error"
    assert status(database_url)["AAPL"][1] == END  # last success is kept
