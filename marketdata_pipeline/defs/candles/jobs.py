"""The job that materialises both candle assets in one run (CLI backfills, the schedule)."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from marketdata_pipeline.defs.candles.assets import CandleAssets

CANDLES_JOB = "candles_job"


def build_candles_job(
    assets: CandleAssets, companions: tuple[dg.AssetsDefinition, ...] = ()
) -> UnresolvedAssetJobDefinition:
    """Stock and crypto candles for a partition range, as one run, with their `companions`
    (the split and dividend refresh and the split repair, so every run keeps history true)."""
    return dg.define_asset_job(
        CANDLES_JOB,
        selection=dg.AssetSelection.assets(*assets, *companions),
        description="Stock and crypto daily candles for a partition range, as one run, with the "
        "split and dividend refresh and the split repair of stored history.",
    )
