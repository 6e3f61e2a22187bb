"""Names of the reference assets, importable without building them."""

import dagster as dg

from marketdata_pipeline.lib.asset_names import TICKER_REFERENCE, TICKER_SWITCHES

__all__ = ["GROUP", "REFERENCE_KEYS", "TICKER_REFERENCE", "TICKER_REFERENCE_KEY", "TICKER_SWITCHES"]

GROUP = "reference"
TICKER_REFERENCE_KEY = dg.AssetKey(TICKER_REFERENCE)
#: The reference assets a stock run includes.
REFERENCE_KEYS = (dg.AssetKey(TICKER_REFERENCE), dg.AssetKey(TICKER_SWITCHES))
