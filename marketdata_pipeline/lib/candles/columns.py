"""The candle column registry: each column's name, types and meaning, spelled once.

The polars schema (`schema.py`), the Postgres DDL (`lib/postgres/ddl.py`), the quarantine table
and the Dagster UI's table schema (`defs/candles/metadata.py`) are all generated from
`CANDLE_COLUMN_SPECS`, so a new column is one entry here plus the migration that adds it.
This module imports nothing heavy: the command line and the migrations read it without polars.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CandleColumn:
    """One column of `marketdata.stock_daily_candles` / `crypto_daily_candles`.

    `polars_type` names a polars data type (`"Datetime_utc"` is microseconds in UTC); `sql_type`
    is the Postgres type with its constraints, as the DDL writes it.
    """

    name: str
    polars_type: str
    sql_type: str
    description: str

    @property
    def nullable(self) -> bool:
        """True when the column may hold nulls."""
        return "NOT NULL" not in self.sql_type

    @property
    def bare_sql_type(self) -> str:
        """The Postgres type without constraints or default (`double precision`)."""
        return self.sql_type.split(" NOT NULL")[0].split(" DEFAULT")[0]


#: The candle columns, in table order.
CANDLE_COLUMN_SPECS: tuple[CandleColumn, ...] = (
    CandleColumn(
        "symbol",
        "String",
        "text NOT NULL",
        "Canonical symbol: the vendor's stock ticker (case kept: KIMpL), crypto pairs "
        "upper case without Polygon's X: prefix (BTCUSD).",
    ),
    CandleColumn(
        "day",
        "Date",
        "date NOT NULL",
        "Trading date: the New York session date for stocks, the UTC date for crypto. "
        "With symbol, the primary key; the table's partition column in Dagster.",
    ),
    CandleColumn(
        "ts",
        "Datetime_utc",
        "timestamptz NOT NULL",
        "Start of the day in the market's time zone (New York midnight for stocks, UTC "
        "midnight for crypto), as a UTC timestamp.",
    ),
    CandleColumn(
        "open",
        "Float64",
        "double precision NOT NULL",
        "First trade price of the day (split-adjusted when adjusted is true).",
    ),
    CandleColumn("high", "Float64", "double precision NOT NULL", "Highest trade price of the day."),
    CandleColumn("low", "Float64", "double precision NOT NULL", "Lowest trade price of the day."),
    CandleColumn("close", "Float64", "double precision NOT NULL", "Last trade price of the day."),
    CandleColumn(
        "volume",
        "Float64",
        "double precision NOT NULL",
        "Traded volume: shares for stocks, units of the base currency for crypto (fractional).",
    ),
    CandleColumn(
        "vwap",
        "Float64",
        "double precision",
        "Volume-weighted average price of the day; null when the vendor omits it.",
    ),
    CandleColumn(
        "transactions",
        "Int64",
        "bigint",
        "Number of trades in the day; null when the vendor omits it.",
    ),
    CandleColumn(
        "adjusted",
        "Boolean",
        "boolean NOT NULL",
        "True when the prices are split-adjusted (the pipeline requests adjusted bars).",
    ),
    CandleColumn(
        "provisional",
        "Boolean",
        "boolean NOT NULL DEFAULT false",
        "True when the API marked the bar DELAYED (not final yet); the daily revision run "
        "replaces it.",
    ),
    CandleColumn(
        "source",
        "String",
        "text NOT NULL",
        "Where the row came from and how it was fetched, e.g. polygon:range or "
        "polygon:grouped; simulated rows say so.",
    ),
    CandleColumn(
        "fetched_at",
        "Datetime_utc",
        "timestamptz NOT NULL",
        "When the pipeline fetched the row (UTC).",
    ),
    CandleColumn(
        "vendor_t",
        "Int64",
        "bigint",
        "The vendor's own bar timestamp (Unix ms) as received, kept as provenance: it tells "
        "which stamping convention the bar came with (null on older rows).",
    ),
)

CANDLE_COLUMNS: tuple[str, ...] = tuple(c.name for c in CANDLE_COLUMN_SPECS)
#: Postgres column types for the candle tables (the storage contract in docs/architecture.md).
CANDLE_SQL_TYPES: dict[str, str] = {c.name: c.sql_type for c in CANDLE_COLUMN_SPECS}
#: Columns that may be null (the vendor omits `vw` and `n` on some bars; `vendor_t` is null on
#: rows stored before it was recorded).
NULLABLE_COLUMNS: frozenset[str] = frozenset(c.name for c in CANDLE_COLUMN_SPECS if c.nullable)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in CANDLE_COLUMNS if c not in NULLABLE_COLUMNS)
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
