"""Request planning: the cheapest plan, verified against the simulator's request counters."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from marketdata_pipeline.lib.calendar import stock_sessions
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.polygon.planner import plan_requests
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol
from marketdata_pipeline_tests.helpers import materialise, read_table, stock_daily_candles
from marketdata_pipeline_tests.resources import fetch_candles
from polygon_simulator.market import stock_universe

STOCK = AssetClass.STOCK


def syms(*names: str):
    return [parse_symbol(n) for n in names]


def test_few_symbols_over_a_long_window_use_range_requests():
    plan = plan_requests(STOCK, syms("AAPL", "MSFT"), dt.date(2020, 1, 1), dt.date(2024, 12, 31))
    assert plan.strategy == "range"
    assert plan.cost == 2
    assert plan.grouped_cost == len(stock_sessions(dt.date(2020, 1, 1), dt.date(2024, 12, 31)))
    assert plan.range_window == (dt.date(2020, 1, 2), dt.date(2024, 12, 31))


def test_many_symbols_over_a_short_window_use_grouped_requests():
    symbols = [parse_symbol(t) for t in stock_universe()[:40]]
    plan = plan_requests(STOCK, symbols, dt.date(2024, 7, 1), dt.date(2024, 7, 7))
    assert plan.strategy == "grouped"
    assert plan.cost == 4  # July 1, 2, 3, 5: the 4th is a holiday, the 6th-7th a weekend
    assert plan.naive_cost == 40 * 4


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2024, 7, 4), dt.date(2024, 7, 4)),  # Independence Day
        (dt.date(2012, 10, 27), dt.date(2012, 10, 30)),  # weekend + hurricane Sandy closures
        (dt.date(2001, 9, 11), dt.date(2001, 9, 16)),  # closed after 9/11, then a weekend
    ],
)
def test_non_trading_days_cost_no_request(sim, polygon, start, end):
    result = fetch_candles(polygon, STOCK, syms("AAPL", "MSFT"), CandleWindow(start, end))
    assert result.plan.strategy == "none" and result.plan.cost == 0
    assert result.frame.height == 0
    assert result.fetched == ["AAPL", "MSFT"]
    assert sim.stats()["requests"] == 0


def test_crypto_trades_on_stock_holidays(sim, polygon):
    btc = [parse_symbol("BTCUSD", AssetClass.CRYPTO)]
    result = fetch_candles(
        polygon, AssetClass.CRYPTO, btc, CandleWindow(dt.date(2024, 7, 4), dt.date(2024, 7, 4))
    )
    assert result.frame.height == 1
    assert sim.stats()["requests"] == 1


@pytest.mark.parametrize(
    ("n_symbols", "start", "end", "strategy"),
    [
        (3, dt.date(2024, 1, 2), dt.date(2024, 12, 31), "range"),  # small universe, long window
        (50, dt.date(2024, 3, 4), dt.date(2024, 3, 8), "grouped"),  # large universe, short window
    ],
)
def test_a_backfill_makes_exactly_the_cheapest_plans_requests(
    sim, resources, database_url, n_symbols, start, end, strategy
):
    symbols = list(stock_universe()[:n_symbols])
    result = materialise(
        start,
        end,
        resources,
        assets=[stock_daily_candles],
        symbols={"stock_daily_candles": symbols},
    )
    assert result.success
    plan = plan_requests(STOCK, syms(*symbols), start, end)
    assert plan.strategy == strategy
    assert sim.stats()["requests"] == plan.cost == min(plan.range_cost, plan.grouped_cost)
    stored = read_table(database_url, "stock_daily_candles")
    assert stored.height == n_symbols * len(stock_sessions(start, end))
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.partition == end.isoformat()
    ]
    metadata = event.materialization.metadata
    assert metadata["plan"].value["strategy"] == strategy
    assert metadata["requests_made"].value == plan.cost


def test_grouped_and_range_plans_store_identical_rows(sim, resources, database_url):
    symbols = {"stock_daily_candles": ["AAPL", "MSFT", "NVDA"]}
    start, end = dt.date(2024, 5, 20), dt.date(2024, 6, 7)
    provenance = ["source", "fetched_at", "vendor_t"]  # vendor_t: each endpoint's own stamp

    def run(strategy: str) -> pl.DataFrame:
        config = {"stock_daily_candles": {"strategy": strategy}}
        result = materialise(
            start, end, resources, assets=[stock_daily_candles], symbols=symbols, config=config
        )
        assert result.success
        return read_table(database_url, "stock_daily_candles")

    by_range = run("range")
    by_grouped = run("grouped")
    # The simulator says what it is in its answers: its rows are labelled as simulated.
    assert by_range.get_column("source").unique().to_list() == ["simulator:range"]
    assert by_grouped.get_column("source").unique().to_list() == ["simulator:grouped"]
    assert by_range.height == 3 * len(stock_sessions(start, end))
    assert by_grouped.drop(provenance).equals(by_range.drop(provenance))
