"""The candle assets: daily OHLCV bars of the tracked stocks and crypto pairs."""
# No `from __future__ import annotations`: Dagster reads the real annotation objects
# (config class, resources) from the signatures.

from collections.abc import Iterator

import dagster as dg

from marketdata_pipeline.defs.candles.checks import candle_check_specs
from marketdata_pipeline.defs.candles.ingest import CandleConfig, column_schema, materialise_candles
from marketdata_pipeline.defs.candles.partitions import daily_candle_partitions
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.symbols import AssetClass

_COMMON = dict(
    partitions_def=daily_candle_partitions,
    # A ten-year backfill is one run making one range request per symbol, not 2,500 runs.
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="candle_io_manager",
    group_name="candles",
    kinds={"polygon", "polars", "postgres"},
)


@dg.asset(
    check_specs=candle_check_specs("stock_daily_candles"),
    metadata={"partition_expr": "day", "dagster/column_schema": column_schema()},
    **_COMMON,
)
def stock_daily_candles(
    context: dg.AssetExecutionContext,
    config: CandleConfig,
    polygon: PolygonResource,
    database: PostgresDatabase,
) -> Iterator[dg.AssetCheckResult | dg.Output]:
    """Daily OHLCV candles of the active tracked stocks, one row per (symbol, NYSE session).

    Stored in `marketdata.stock_daily_candles`; `day` is the New York trading date and `ts`
    New York midnight. Weekends and NYSE holidays have no rows and cost no request.
    """
    yield from materialise_candles(context, config, AssetClass.STOCK, polygon, database)


@dg.asset(
    check_specs=candle_check_specs("crypto_daily_candles"),
    metadata={"partition_expr": "day", "dagster/column_schema": column_schema()},
    **_COMMON,
)
def crypto_daily_candles(
    context: dg.AssetExecutionContext,
    config: CandleConfig,
    polygon: PolygonResource,
    database: PostgresDatabase,
) -> Iterator[dg.AssetCheckResult | dg.Output]:
    """Daily OHLCV candles of the active tracked crypto pairs, one row per (symbol, UTC day).

    Stored in `marketdata.crypto_daily_candles` under canonical symbols (`BTCUSD`, fetched as
    `X:BTCUSD`); volume is fractional.
    """
    yield from materialise_candles(context, config, AssetClass.CRYPTO, polygon, database)


CANDLE_ASSETS = (stock_daily_candles, crypto_daily_candles)
