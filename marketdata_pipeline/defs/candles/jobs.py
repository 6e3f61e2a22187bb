"""The candle jobs: one per asset class (CLI backfills, the schedules, the symbol sensor).

Stock candles are partitioned by NYSE session and crypto candles by UTC day (`partitions.py`),
and a Dagster asset job holds assets of one partitions definition only, so each asset class has
its own job. The stock job carries the corporate-action companions (the split and dividend
refresh and the split repair), so every stock run keeps history true.
"""

from __future__ import annotations

from typing import NamedTuple

import dagster as dg

from marketdata_pipeline.defs.candles.assets import CandleAssets
from marketdata_pipeline.lib.dagster_private import UnresolvedAssetJobDefinition
from marketdata_pipeline.lib.symbols import AssetClass

STOCK_CANDLES_JOB = "stock_candles_job"
CRYPTO_CANDLES_JOB = "crypto_candles_job"
CANDLE_JOB_BY_CLASS = {AssetClass.STOCK: STOCK_CANDLES_JOB, AssetClass.CRYPTO: CRYPTO_CANDLES_JOB}


class CandleJobs(NamedTuple):
    """The two candle jobs."""

    stock: UnresolvedAssetJobDefinition
    crypto: UnresolvedAssetJobDefinition

    def for_class(self, asset_class: AssetClass) -> UnresolvedAssetJobDefinition:
        """The job that materialises `asset_class`'s candles."""
        return self.stock if asset_class is AssetClass.STOCK else self.crypto


def build_candle_jobs(
    assets: CandleAssets, companions: tuple[dg.AssetsDefinition, ...] = ()
) -> CandleJobs:
    """`stock_candles_job` (the stock candles with their `companions`) and
    `crypto_candles_job`, each running a partition range as one run."""
    stock = dg.define_asset_job(
        STOCK_CANDLES_JOB,
        selection=dg.AssetSelection.assets(assets.stock, *companions),
        description="Stock daily candles for a range of NYSE sessions, as one run, with the "
        "split and dividend refresh and the split repair of stored history.",
    )
    crypto = dg.define_asset_job(
        CRYPTO_CANDLES_JOB,
        selection=dg.AssetSelection.assets(assets.crypto),
        description="Crypto daily candles for a range of UTC days, as one run.",
    )
    return CandleJobs(stock, crypto)
