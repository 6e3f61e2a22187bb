"""What the UI shows about the candle store: columns, owners, tags, lineage, checks, rows."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg

from marketdata_pipeline.defs.candles.assets import CANDLE_ASSETS
from marketdata_pipeline.defs.candles.checks import candle_check_specs
from marketdata_pipeline.defs.candles.metadata import (
    CANDLE_DEPS,
    CANDLE_OWNERS,
    CANDLE_TAGS,
    EXTERNAL_ASSETS,
    FRESHNESS_CHECK_DESCRIPTION,
    candle_column_schema,
    describe_freshness_checks,
    table_row_count_metadata,
)
from marketdata_pipeline.lib.candles.schema import CANDLE_COLUMNS

NAMES = ("stock_daily_candles", "crypto_daily_candles")


def test_every_candle_column_is_described():
    schema = candle_column_schema()
    assert [c.name for c in schema.columns] == list(CANDLE_COLUMNS)
    assert all(c.description and len(c.description) > 20 for c in schema.columns)
    nullable = {c.name for c in schema.columns if c.constraints.nullable}
    assert nullable == {"vwap", "transactions"}


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


def test_every_check_has_its_own_description(resources):
    generic = "Evaluates freshness for targeted asset."
    for name in NAMES:
        for spec in candle_check_specs(name):
            assert spec.description and spec.description != generic, spec.name
    checks = dg.build_time_partition_freshness_checks(
        assets=list(CANDLE_ASSETS), deadline_cron="0 9 * * *", timezone="UTC"
    )
    described = describe_freshness_checks(list(checks))
    specs = [s for c in described for s in c.check_specs]
    assert {s.key for s in specs} == {s.key for c in checks for s in c.check_specs}
    assert {s.description for s in specs} == {FRESHNESS_CHECK_DESCRIPTION}

    # Still Dagster's check: its sensor accepts it, and it evaluates in a run.
    dg.build_sensor_for_freshness_checks(freshness_checks=described)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*CANDLE_ASSETS, *described],
            selection=dg.AssetSelection.checks(*(s.key for s in specs)),
            resources=resources,
            instance=instance,
        )
        evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {"freshness_check"}
    assert len(evaluations) == 2 and not any(e.passed for e in evaluations)  # never materialised


def test_row_count_is_the_table_total_beside_the_runs_slice(database_url):
    def insert(conn: psycopg.Connection, symbol: str, days: int) -> None:
        for i in range(days):
            day = dt.date(2024, 7, 1) + dt.timedelta(days=i)
            conn.execute(
                "INSERT INTO marketdata.crypto_daily_candles (symbol, day, ts, open, high, low,"
                " close, volume, adjusted, source, fetched_at) VALUES"
                " (%s, %s, %s, 1, 2, 0.5, 1.5, 10, true, 'test', now())",
                (symbol, day, dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)),
            )

    with psycopg.connect(database_url) as conn:
        insert(conn, "BTCUSD", 10)

    @dg.asset(name="crypto_daily_candles")
    def slice_writer() -> dg.MaterializeResult:
        """Writes 3 rows of one symbol, as a run's slice would."""
        with psycopg.connect(database_url) as conn:
            insert(conn, "ETHUSD", 3)
        with psycopg.connect(database_url) as conn:
            return dg.MaterializeResult(
                metadata=table_row_count_metadata(conn, "crypto_daily_candles", 3)
            )

    with dg.instance_for_test() as instance:
        result = dg.materialize([slice_writer], instance=instance)
        (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["dagster/row_count"].value == 13
    assert metadata["rows_in_run"].value == 3
