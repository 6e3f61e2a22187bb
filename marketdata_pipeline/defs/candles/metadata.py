"""What the Dagster UI shows about the candle store: columns, owners, tags, lineage, row counts.

- `candle_column_schema()`: every column of the candle tables with its type, nullability and a
  description (the asset's Overview > Columns).
- `CANDLE_OWNERS`, `CANDLE_TAGS`, `CANDLE_DEPS`: for the candle asset decorators; the deps make
  the lineage read tracked_symbols -> candles -> rejected_candles.
- `TRACKED_SYMBOLS`, `REJECTED_CANDLES`: the two Postgres tables the pipeline reads and writes
  besides the candle tables, as external assets (nothing materialises them in Dagster).
The table's total rows are added by the IO manager (`dagster/row_count`, on a run's newest
partition: the asset's overview shows it) beside each partition's own
`dagster/partition_row_count`.
"""

from __future__ import annotations

import dagster as dg

from marketdata_pipeline.lib.candles.schema import CANDLE_ASSET_NAMES, CANDLE_SQL_TYPES
from marketdata_pipeline.lib.postgres.ddl import SCHEMA

#: One description per column of `marketdata.stock_daily_candles` / `crypto_daily_candles`.
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "symbol": "Canonical symbol: the vendor's stock ticker (case kept: KIMpL), crypto pairs "
    "upper case without Polygon's X: prefix (BTCUSD).",
    "day": "Trading date: the New York session date for stocks, the UTC date for crypto. "
    "With symbol, the primary key; the table's partition column in Dagster.",
    "ts": "Start of the day in the market's time zone (New York midnight for stocks, UTC "
    "midnight for crypto), as a UTC timestamp.",
    "open": "First trade price of the day (split-adjusted when adjusted is true).",
    "high": "Highest trade price of the day.",
    "low": "Lowest trade price of the day.",
    "close": "Last trade price of the day.",
    "volume": "Traded volume: shares for stocks, units of the base currency for crypto "
    "(fractional).",
    "vwap": "Volume-weighted average price of the day; null when the vendor omits it.",
    "transactions": "Number of trades in the day; null when the vendor omits it.",
    "adjusted": "True when the prices are split-adjusted (the pipeline requests adjusted bars).",
    "provisional": "True when the API marked the bar DELAYED (not final yet); the daily "
    "revision run replaces it.",
    "source": "Where the row came from and how it was fetched, e.g. polygon:range or "
    "polygon:grouped; simulated rows say so.",
    "fetched_at": "When the pipeline fetched the row (UTC).",
    "vendor_t": "The vendor's own bar timestamp (Unix ms) as received, kept as provenance: "
    "it tells which stamping convention the bar came with (null on older rows).",
}

#: Who answers for the candle assets (Dagster owners are e-mail addresses or `team:` names).
CANDLE_OWNERS = ["team:marketdata"]
#: Tags for filtering the catalogue (Dagster tag values: letters, digits, `-`, `_`, `.`).
CANDLE_TAGS = {"domain": "market-data", "vendor": "polygon", "frequency": "daily"}

TRACKED_SYMBOLS_KEY = dg.AssetKey("tracked_symbols")
REJECTED_CANDLES_KEY = dg.AssetKey("rejected_candles")
#: Upstream of both candle assets: the symbol table decides which symbols they fetch.
CANDLE_DEPS = [TRACKED_SYMBOLS_KEY]

TRACKED_SYMBOLS = dg.AssetSpec(
    TRACKED_SYMBOLS_KEY,
    description="The tracked universe, `marketdata.tracked_symbols`: one row per symbol and "
    "asset class, with its active flag and the outcome of its latest run (status, "
    "last_success_day, last_error). Changed by `marketdata symbols add/remove` or plain SQL; "
    "tracked_symbols_sensor requests the history of symbols added or re-activated.",
    kinds={"postgres"},
    group_name="candles",
    owners=CANDLE_OWNERS,
    tags=CANDLE_TAGS,
    metadata={"dagster/table_name": f"{SCHEMA}.tracked_symbols"},
)
REJECTED_CANDLES = dg.AssetSpec(
    REJECTED_CANDLES_KEY,
    description="Vendor bars the candle runs quarantined, `marketdata.rejected_candles`: the "
    "bar as received plus the reason (high below low, negative volume, ...). Written in the "
    "same transaction as the candles; a rerun of a slice replaces its rejects.",
    kinds={"postgres"},
    group_name="candles",
    owners=CANDLE_OWNERS,
    tags=CANDLE_TAGS,
    deps=[dg.AssetKey(name) for name in CANDLE_ASSET_NAMES],
    metadata={"dagster/table_name": f"{SCHEMA}.rejected_candles"},
)
#: The external assets for `dg.Definitions(assets=[...])`.
EXTERNAL_ASSETS = [TRACKED_SYMBOLS, REJECTED_CANDLES]


def candle_column_schema() -> dg.TableSchema:
    """The candle tables' columns for the UI (`dagster/column_schema`), each described."""
    missing = set(CANDLE_SQL_TYPES) ^ set(COLUMN_DESCRIPTIONS)
    if missing:  # a column added to the schema must get a description here too
        raise ValueError(f"candle columns without a description (or unknown): {sorted(missing)}")
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name,
                sqltype.split(" NOT NULL")[0].split(" DEFAULT")[0],
                description=COLUMN_DESCRIPTIONS[name],
                constraints=dg.TableColumnConstraints(nullable="NOT NULL" not in sqltype),
            )
            for name, sqltype in CANDLE_SQL_TYPES.items()
        ],
        constraints=dg.TableConstraints(other=["PRIMARY KEY (symbol, day)"]),
    )
