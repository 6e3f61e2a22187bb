"""Names of the reference assets, importable without building them."""

import dagster as dg

GROUP = "reference"
TICKER_REFERENCE = "ticker_reference"
TICKER_REFERENCE_KEY = dg.AssetKey(TICKER_REFERENCE)
TICKER_SWITCHES = "ticker_switches"
#: The reference assets a stock run includes.
REFERENCE_KEYS = (dg.AssetKey(TICKER_REFERENCE), dg.AssetKey(TICKER_SWITCHES))
