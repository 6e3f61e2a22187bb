"""The candle assets: daily OHLCV bars of the tracked stocks and crypto pairs."""
# No `from __future__ import annotations`: Dagster reads the real annotation objects
# (config class, resources) from the signatures.

import datetime as dt
from collections.abc import Iterator
from typing import NamedTuple

import dagster as dg

from marketdata_pipeline.defs.candles.checks import candle_check_specs
from marketdata_pipeline.defs.candles.ingest import CandleConfig, materialise_candles
from marketdata_pipeline.defs.candles.metadata import (
    CANDLE_DEPS,
    CANDLE_OWNERS,
    CANDLE_TAGS,
    candle_column_schema,
)
from marketdata_pipeline.lib.candles.schema import CANDLE_ASSET_BY_CLASS
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.symbols import AssetClass

#: Yesterday's candles land by the 06:00 UTC revision run; more than 30 hours without a
#: materialisation means a day was missed.
FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=30), warn_window=dt.timedelta(hours=26)
)


class CandleAssets(NamedTuple):
    """The two candle assets (stock partitions are NYSE sessions, crypto ones UTC days)."""

    stock: dg.AssetsDefinition
    crypto: dg.AssetsDefinition


def build_candle_assets(
    stock_partitions: dg.PartitionsDefinition, crypto_partitions: dg.PartitionsDefinition
) -> CandleAssets:
    """The stock candles on `stock_partitions` and the crypto candles on `crypto_partitions`
    (built at the edge from the start-date setting)."""
    common = dict(
        # A ten-year backfill is one run making one range request per symbol, not 2,500 runs.
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="candle_io_manager",
        group_name="candles",
        kinds={"polygon", "polars", "postgres"},
        freshness_policy=FRESHNESS,
        owners=CANDLE_OWNERS,
        tags=CANDLE_TAGS,
        # Lineage: the symbol table decides what a run fetches.
        deps=CANDLE_DEPS,
    )
    stock_name = CANDLE_ASSET_BY_CLASS[AssetClass.STOCK]
    crypto_name = CANDLE_ASSET_BY_CLASS[AssetClass.CRYPTO]

    @dg.asset(
        name=stock_name,
        check_specs=candle_check_specs(stock_name),
        metadata={"partition_expr": "day", "dagster/column_schema": candle_column_schema()},
        partitions_def=stock_partitions,
        **common,
    )
    def stock_daily_candles(
        context: dg.AssetExecutionContext,
        config: CandleConfig,
        polygon: PolygonResource,
        database: PostgresDatabase,
    ) -> Iterator[dg.AssetCheckResult | dg.Output]:
        """Daily OHLCV candles of the active tracked stocks, one row per (symbol, NYSE session).

        Stored in `marketdata.stock_daily_candles`; `day` is the New York trading date and `ts`
        New York midnight. A partition per NYSE session: weekends and holidays have none.
        """
        yield from materialise_candles(context, config, AssetClass.STOCK, polygon, database)

    @dg.asset(
        name=crypto_name,
        check_specs=candle_check_specs(crypto_name),
        metadata={"partition_expr": "day", "dagster/column_schema": candle_column_schema()},
        partitions_def=crypto_partitions,
        **common,
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

    return CandleAssets(stock_daily_candles, crypto_daily_candles)
