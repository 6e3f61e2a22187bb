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

from marketdata_pipeline.lib import asset_names
from marketdata_pipeline.lib.asset_names import CANDLE_ASSET_NAMES
from marketdata_pipeline.lib.candles.columns import CANDLE_COLUMN_SPECS
from marketdata_pipeline.lib.postgres.ddl import SCHEMA

#: Who answers for the candle assets (Dagster owners are e-mail addresses or `team:` names).
CANDLE_OWNERS = ["team:marketdata"]
#: Tags for filtering the catalogue (Dagster tag values: letters, digits, `-`, `_`, `.`).
CANDLE_TAGS = {"domain": "market-data", "vendor": "polygon", "frequency": "daily"}

TRACKED_SYMBOLS_KEY = dg.AssetKey(asset_names.TRACKED_SYMBOLS)
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
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.bare_sql_type,
                description=c.description,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in CANDLE_COLUMN_SPECS
        ],
        constraints=dg.TableConstraints(other=["PRIMARY KEY (symbol, day)"]),
    )
