"""The candle assets end to end: the simulator over HTTP, Dagster, a real Postgres."""

from __future__ import annotations

import datetime as dt

import polars as pl

from marketdata_pipeline.defs.candles.assets import crypto_daily_candles, stock_daily_candles
from marketdata_pipeline.lib.calendar import stock_sessions
from marketdata_pipeline_tests.helpers import check_evaluations, materialise, query, read_table

STOCKS = ["AAPL", "MSFT"]


def test_single_partition_writes_each_symbol_once(sim, resources, database_url):
    day = dt.date(2024, 7, 3)
    result = materialise(
        day, day, resources, symbols={"stock_daily_candles": STOCKS, "crypto_daily_candles": ["BTCUSD"]}
    )
    assert result.success
    stocks = read_table(database_url, "stock_daily_candles")
    assert stocks.select("symbol", "day").rows() == [("AAPL", day), ("MSFT", day)]
    crypto = read_table(database_url, "crypto_daily_candles")
    assert crypto.select("symbol", "day").rows() == [("BTCUSD", day)]
    checks = check_evaluations(result)
    assert checks["stock_daily_candles:ohlcv_schema"].passed
    assert checks["stock_daily_candles:symbols_fetched"].passed
