"""The job that materialises both candle assets in one run (CLI backfills, the schedule)."""

from __future__ import annotations

import dagster as dg

from marketdata_pipeline.defs.candles.assets import crypto_daily_candles, stock_daily_candles
from marketdata_pipeline.defs.candles.freshness import freshness_checks
from marketdata_pipeline.defs.candles.partitions import daily_candle_partitions
from marketdata_pipeline.defs.corporate_actions.assets import CORPORATE_ACTION_ASSETS

candles_job = dg.define_asset_job(
    "candles_job",
    # The in-asset checks run with their asset; the freshness checks run on their own sensor,
    # not inside a backfill.
    # Splits, dividends and the split repair ride along, so every run keeps history true.
    selection=dg.AssetSelection.assets(
        stock_daily_candles, crypto_daily_candles, *CORPORATE_ACTION_ASSETS
    )
    - dg.AssetSelection.checks(*freshness_checks),
    partitions_def=daily_candle_partitions,
    description="Stock and crypto daily candles for a partition range, as one run, with the "
    "split and dividend refresh and the split repair of stored history.",
)
