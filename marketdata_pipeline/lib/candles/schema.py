"""The one candle schema shared by stocks and crypto, in polars (from the column registry).

Both asset classes land in the same shape, so checks, the IO manager and downstream users never
branch on the market. `day` is the trading date (New York for stocks, UTC for crypto) and `ts`
the start of that day in the market's time zone. `vendor_t` is the bar's own `t` exactly as the
API sent it (Unix ms; its convention varies by endpoint, market and era), kept as provenance;
it is null for rows stored before the column existed.
"""

from __future__ import annotations

import polars as pl

from marketdata_pipeline.lib.asset_names import (
    ASSET_CLASS_BY_NAME,
    CANDLE_ASSET_BY_CLASS,
    CANDLE_ASSET_NAMES,
)
from marketdata_pipeline.lib.candles.columns import (
    CANDLE_COLUMN_SPECS,
    CANDLE_COLUMNS,
    CANDLE_SQL_TYPES,
    NULLABLE_COLUMNS,
    PRICE_COLUMNS,
    REQUIRED_COLUMNS,
)

UTC_DATETIME = pl.Datetime("us", "UTC")


def _polars_type(name: str) -> pl.DataType:
    """The polars type a registry entry names (`Datetime_utc`: microseconds, UTC)."""
    return UTC_DATETIME if name == "Datetime_utc" else getattr(pl, name)()


#: Columns of `marketdata.stock_daily_candles` / `crypto_daily_candles`, in table order.
CANDLE_SCHEMA: dict[str, pl.DataType] = {
    c.name: _polars_type(c.polars_type) for c in CANDLE_COLUMN_SPECS
}

#: Quarantined vendor rows: the candle columns plus why they were refused.
REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "asset": pl.String(),
    **CANDLE_SCHEMA,
    "reason": pl.String(),
}

__all__ = [
    "ASSET_CLASS_BY_NAME",
    "CANDLE_ASSET_BY_CLASS",
    "CANDLE_ASSET_NAMES",
    "CANDLE_COLUMNS",
    "CANDLE_SCHEMA",
    "CANDLE_SQL_TYPES",
    "NULLABLE_COLUMNS",
    "PRICE_COLUMNS",
    "REJECTED_SCHEMA",
    "REQUIRED_COLUMNS",
    "UTC_DATETIME",
    "candle_run_config",
    "empty_rejected",
]


def empty_rejected() -> pl.DataFrame:
    """An empty frame with the rejected-candle schema."""
    return pl.DataFrame(schema=REJECTED_SCHEMA)


def candle_run_config(
    symbols_by_asset: dict[str, list[str]] | None = None,
    *,
    extra: dict[str, dict] | None = None,
    log_level: str | None = None,
) -> dict:
    """Dagster run config for the candle assets: explicit symbols per asset, extra asset
    config (e.g. `strategy`), and the console log level. The one builder the command line,
    the sensor, the tests and the benchmarks share."""
    ops: dict[str, dict] = {}
    for asset, symbols in (symbols_by_asset or {}).items():
        ops.setdefault(asset, {"config": {}})["config"]["symbols"] = list(symbols)
    for asset, values in (extra or {}).items():
        ops.setdefault(asset, {"config": {}})["config"].update(values)
    config: dict = {"ops": ops} if ops else {}
    if log_level:
        config["loggers"] = {"console": {"config": {"log_level": log_level}}}
    return config
