"""The one candle schema shared by stocks and crypto, in polars and in Postgres.

Both asset classes land in the same shape, so checks, the IO manager and downstream users never
branch on the market. `day` is the trading date (New York for stocks, UTC for crypto) and `ts`
the start of that day in the market's time zone. `vendor_t` is the bar's own `t` exactly as the
API sent it (Unix ms; its convention varies by endpoint, market and era), kept as provenance;
it is null for rows stored before the column existed.
"""

from __future__ import annotations

import polars as pl

from marketdata_pipeline.lib.symbols import AssetClass

UTC_DATETIME = pl.Datetime("us", "UTC")

#: Columns of `marketdata.stock_daily_candles` / `crypto_daily_candles`, in table order.
CANDLE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "day": pl.Date(),
    "ts": UTC_DATETIME,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "vwap": pl.Float64(),
    "transactions": pl.Int64(),
    "adjusted": pl.Boolean(),
    "provisional": pl.Boolean(),
    "source": pl.String(),
    "fetched_at": UTC_DATETIME,
    "vendor_t": pl.Int64(),
}

CANDLE_COLUMNS: tuple[str, ...] = tuple(CANDLE_SCHEMA)
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
#: Columns that may be null (the vendor omits `vw` and `n` on some bars; `vendor_t` is null on
#: rows stored before it was recorded).
NULLABLE_COLUMNS: frozenset[str] = frozenset({"vwap", "transactions", "vendor_t"})
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in CANDLE_COLUMNS if c not in NULLABLE_COLUMNS)

#: Quarantined vendor rows: the candle columns plus why they were refused.
REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "asset": pl.String(),
    **CANDLE_SCHEMA,
    "reason": pl.String(),
}

#: Postgres column types for the candle tables (the storage contract in docs/architecture.md).
CANDLE_SQL_TYPES: dict[str, str] = {
    "symbol": "text NOT NULL",
    "day": "date NOT NULL",
    "ts": "timestamptz NOT NULL",
    "open": "double precision NOT NULL",
    "high": "double precision NOT NULL",
    "low": "double precision NOT NULL",
    "close": "double precision NOT NULL",
    "volume": "double precision NOT NULL",
    "vwap": "double precision",
    "transactions": "bigint",
    "adjusted": "boolean NOT NULL",
    "provisional": "boolean NOT NULL DEFAULT false",
    "source": "text NOT NULL",
    "fetched_at": "timestamptz NOT NULL",
    "vendor_t": "bigint",
}


def empty_rejected() -> pl.DataFrame:
    """An empty frame with the rejected-candle schema."""
    return pl.DataFrame(schema=REJECTED_SCHEMA)


#: The candle asset (and table) of each market: the one place these names are spelled.
CANDLE_ASSET_BY_CLASS: dict[AssetClass, str] = {
    AssetClass.STOCK: "stock_daily_candles",
    AssetClass.CRYPTO: "crypto_daily_candles",
}
CANDLE_ASSET_NAMES: tuple[str, ...] = tuple(CANDLE_ASSET_BY_CLASS.values())
ASSET_CLASS_BY_NAME: dict[str, AssetClass] = {v: k for k, v in CANDLE_ASSET_BY_CLASS.items()}


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
