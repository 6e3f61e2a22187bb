"""Cross-sections at index speed: one day across the market reads that day's rows only.

The plans are taken on tables of a realistic shape (thousands of symbols, a year of days,
written symbol by symbol like a backfill, then ANALYZEd), with the planner's defaults: no
`enable_seqscan = off`, so a sequential scan would be chosen if it were cheaper.
"""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest

from marketdata_pipeline import read
from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.symbols import AssetClass
from marketdata_pipeline_tests.helpers import query

SYMBOLS = 2_000
DAY = dt.date(2024, 6, 3)


def fill(conn: psycopg.Connection, table: str, symbols: int, days: int) -> None:
    """`symbols` x `days` bars, symbol-major (the physical order of a range backfill)."""
    conn.execute(
        f"INSERT INTO marketdata.{table}"
        " (symbol, day, ts, open, high, low, close, volume, adjusted, source, fetched_at)"
        " SELECT 'S' || s, d::date, d, 10, 11, 9, 10.5, 1000, true, 'simulator:range', now()"
        " FROM generate_series(1, %s) s,"
        " generate_series('2024-01-01'::timestamptz, '2024-01-01'::timestamptz"
        "   + make_interval(days => %s - 1), '1 day') d"
        " ORDER BY 1, 2",
        (symbols, days),
    )
    conn.execute(f"ANALYZE marketdata.{table}")


def plan(conn: psycopg.Connection, statement: str, *, analyze: bool = False) -> dict:
    """The JSON plan of `statement`, as the server runs it."""
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    (raw,) = conn.execute(f"EXPLAIN ({options}) {statement}").fetchone()
    return (raw if isinstance(raw, list) else json.loads(raw))[0]


def nodes(node: dict) -> list[dict]:
    return [node, *(n for child in node.get("Plans", []) for n in nodes(child))]


@pytest.mark.parametrize(
    ("asset_class", "table", "days"),
    [
        (AssetClass.STOCK, "stock_daily_candles", 250),
        (AssetClass.CRYPTO, "crypto_daily_candles", 365),
    ],
)
def test_a_cross_section_reads_one_days_rows_through_the_day_index(
    database_url, asset_class, table, days
):
    with psycopg.connect(database_url) as conn:
        fill(conn, table, SYMBOLS, days)
        # The statement `read.cross_section` sends.
        statement = read.candle_query(DAY, DAY, asset_class=asset_class)
        found = plan(conn, statement, analyze=True)
    kinds = {
        (n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes(found["Plan"])
    }
    assert not [k for k in kinds if k[0] == "Seq Scan"], kinds
    assert any(k[2] == f"{table}_day" for k in kinds), kinds
    # Pages read per row returned (the measure): each row costs about one heap page.
    root = found["Plan"]
    pages = root["Shared Hit Blocks"] + root["Shared Read Blocks"]
    assert root["Actual Rows"] == SYMBOLS
    assert pages / root["Actual Rows"] <= 1.5
    assert read.cross_section(DAY, asset_class=asset_class, url=database_url).height == SYMBOLS


def test_one_symbols_history_still_uses_the_primary_key(database_url):
    with psycopg.connect(database_url) as conn:
        fill(conn, "stock_daily_candles", SYMBOLS, 250)
        statement = read.candle_query(dt.date(2024, 1, 1), dt.date(2024, 12, 31), ["S7"])
        found = plan(conn, statement)
    kinds = {(n["Node Type"], n.get("Index Name")) for n in nodes(found["Plan"])}
    assert ("Index Scan", "stock_daily_candles_pkey") in kinds, kinds


def test_migration_5_adds_the_index_to_an_existing_store(database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute("DROP INDEX marketdata.stock_daily_candles_day")
        conn.execute("DELETE FROM marketdata.schema_migrations WHERE version = 5")
        conn.commit()
        assert 5 in migrate(conn)
    (found,) = query(
        database_url,
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'stock_daily_candles_day'",
    )
    assert found[0].endswith("USING btree (day)")
