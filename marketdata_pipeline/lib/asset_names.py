"""The names of the project's assets (and of the tables they own): the one place they are spelled.

A plain module with no imports beyond the symbol types, so the command line, the store's
helpers and the definitions all read it without paying for polars or Dagster.
"""

from __future__ import annotations

from marketdata_pipeline.lib.symbols import AssetClass

#: The candle asset (and table) of each market.
CANDLE_ASSET_BY_CLASS: dict[AssetClass, str] = {
    AssetClass.STOCK: "stock_daily_candles",
    AssetClass.CRYPTO: "crypto_daily_candles",
}
CANDLE_ASSET_NAMES: tuple[str, ...] = tuple(CANDLE_ASSET_BY_CLASS.values())
ASSET_CLASS_BY_NAME: dict[str, AssetClass] = {v: k for k, v in CANDLE_ASSET_BY_CLASS.items()}

STOCK_CANDLES = CANDLE_ASSET_BY_CLASS[AssetClass.STOCK]
CRYPTO_CANDLES = CANDLE_ASSET_BY_CLASS[AssetClass.CRYPTO]
STOCK_SPLITS = "stock_splits"
STOCK_DIVIDENDS = "stock_dividends"
STOCK_SPLIT_ADJUSTMENTS = "stock_split_adjustments"
TRACKED_SYMBOLS = "tracked_symbols"
TICKER_REFERENCE = "ticker_reference"
TICKER_SWITCHES = "ticker_switches"
#: The corporate-action assets that run beside the stock candles.
CORPORATE_ACTION_NAMES: tuple[str, ...] = (STOCK_SPLITS, STOCK_DIVIDENDS, STOCK_SPLIT_ADJUSTMENTS)
