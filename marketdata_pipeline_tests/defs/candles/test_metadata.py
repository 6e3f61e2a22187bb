"""What the UI shows about the candle store: columns, owners, tags, lineage, checks, rows."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg

from marketdata_pipeline.definitions import defs
from marketdata_pipeline.defs.candles.checks import candle_check_specs
from marketdata_pipeline.defs.candles.metadata import (
    CANDLE_DEPS,
    CANDLE_OWNERS,
    CANDLE_TAGS,
    EXTERNAL_ASSETS,
    candle_column_schema,
)
from marketdata_pipeline.lib.candles.schema import CANDLE_COLUMNS
from marketdata_pipeline_tests.helpers import CANDLE_ASSETS, crypto_daily_candles, materialise

NAMES = ("stock_daily_candles", "crypto_daily_candles")


def test_every_candle_column_is_described():
    schema = candle_column_schema()
    assert [c.name for c in schema.columns] == list(CANDLE_COLUMNS)
    assert all(c.description and len(c.description) > 20 for c in schema.columns)
    nullable = {c.name for c in schema.columns if c.constraints.nullable}
    assert nullable == {"vwap", "transactions", "vendor_t"}


def test_lineage_runs_from_tracked_symbols_through_candles_to_rejected_candles():
    # A stand-in for a candle asset declared with the attributes the real ones get.
    @dg.asset(
        key="stock_daily_candles",
        deps=CANDLE_DEPS,
        owners=CANDLE_OWNERS,
        tags=CANDLE_TAGS,
        metadata={"dagster/column_schema": candle_column_schema()},
        kinds={"postgres"},
    )
    def candles() -> None:
        """Stand-in."""

    @dg.asset(key="crypto_daily_candles", deps=CANDLE_DEPS)
    def crypto() -> None:
        """Stand-in."""

    defs = dg.Definitions(assets=[*EXTERNAL_ASSETS, candles, crypto])
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey
    assert graph.get(key("stock_daily_candles")).parent_keys == {key("tracked_symbols")}
    assert graph.get(key("rejected_candles")).parent_keys == {key(n) for n in NAMES}
    assert graph.get(key("tracked_symbols")).is_external
    spec = graph.get(key("stock_daily_candles"))
    assert spec.owners == ["team:marketdata"]
    assert spec.tags["domain"] == "market-data"
    columns = spec.metadata["dagster/column_schema"].columns
    assert columns[0].description.startswith("Canonical symbol")


def test_the_real_candle_assets_and_the_external_assets_load_together(resources):
    defs = dg.Definitions(assets=[*EXTERNAL_ASSETS, *CANDLE_ASSETS], resources=resources)
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("rejected_candles")).parent_keys == {dg.AssetKey(n) for n in NAMES}


def test_every_check_has_its_own_description():
    for name in NAMES:
        for spec in candle_check_specs(name):
            assert spec.description and len(spec.description) > 30, spec.name


def test_the_code_location_carries_owners_tags_lineage_and_freshness():
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey
    for name in NAMES:
        node = graph.get(key(name))
        assert node.owners == CANDLE_OWNERS and node.tags["vendor"] == "polygon"
        assert key("tracked_symbols") in node.parent_keys
        assert node.freshness_policy is not None
    assert graph.get(key("rejected_candles")).parent_keys == {key(n) for n in NAMES}


def test_the_table_total_is_recorded_beside_the_runs_slice(sim, resources, database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO marketdata.tracked_symbols (symbol, asset_class)"
            " VALUES ('BTCUSD', 'crypto'), ('ETHUSD', 'crypto')"
        )
    assert materialise(dt.date(2024, 7, 1), dt.date(2024, 7, 10), resources,
                       assets=[crypto_daily_candles]).success  # fmt: skip
    result = materialise(
        dt.date(2024, 7, 11), dt.date(2024, 7, 11), resources, assets=[crypto_daily_candles]
    )
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["dagster/row_count"].value == 22  # 2 pairs x 11 days in the whole table
    assert metadata["dagster/partition_row_count"].value == 2  # this partition's own rows
