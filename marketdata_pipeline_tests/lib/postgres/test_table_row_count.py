"""The candle tables' row counts (`marketdata.candle_table_rows`, migration 23): kept by the
store's one write without scanning the table, exact after any change made by other means."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.postgres.store import table_row_count
from marketdata_pipeline_tests.helpers import query
from marketdata_pipeline_tests.lib.postgres.test_io_manager import TABLE, candles, write

START = dt.date(2024, 1, 1)


def _exact(url: str) -> int:
    return query(url, f"SELECT count(*) FROM marketdata.{TABLE}")[0][0]


def _kept(url: str) -> int | None:
    """The stored count itself (NULL while unknown), without reading it through the store."""
    rows = query(
        url, "SELECT row_count FROM marketdata.candle_table_rows WHERE table_name = %s", (TABLE,)
    )
    return rows[0][0]


def _counted(url: str) -> int:
    with psycopg.connect(url) as conn:
        return table_row_count(conn, TABLE)


def test_every_write_keeps_the_count_of_the_whole_table(database_url):
    symbols = ["BTCUSD", "ETHUSD", "SOLUSD"]
    first = write(database_url, candles(symbols, START, 30), START, dt.date(2024, 1, 31), symbols)
    assert first["table_rows"] == _kept(database_url) == _exact(database_url) == 90
    # A replacement with fewer rows, one symbol only.
    fewer = candles(["ETHUSD"], dt.date(2024, 1, 5), 3, seed=7.0)
    counts = write(database_url, fewer, dt.date(2024, 1, 5), dt.date(2024, 1, 15), ["ETHUSD"])
    assert counts["table_rows"] == _kept(database_url) == _exact(database_url) == 83
    # A slice with no rows left (the vendor has none any more).
    empty = candles(["SOLUSD"], START, 0)
    counts = write(database_url, empty, START, dt.date(2024, 1, 31), ["SOLUSD"])
    assert counts["table_rows"] == _kept(database_url) == _exact(database_url) == 53
    assert _counted(database_url) == 53
    # The other candle table has its own count.
    with psycopg.connect(database_url) as conn:
        assert table_row_count(conn, "stock_daily_candles") == 0


@pytest.mark.parametrize(
    "edit",
    [
        "DELETE FROM marketdata.{t} WHERE symbol = 'ETHUSD'",
        "TRUNCATE marketdata.{t}",
        "INSERT INTO marketdata.{t} SELECT symbol || 'X', day, ts, open, high, low, close,"
        " volume, vwap, transactions, adjusted, provisional, source, fetched_at, vendor_t"
        " FROM marketdata.{t}",
    ],
    ids=["delete", "truncate", "insert"],
)
def test_a_change_by_hand_is_counted_again_once(database_url, edit: str):
    symbols = ["BTCUSD", "ETHUSD"]
    write(database_url, candles(symbols, START, 20), START, dt.date(2024, 1, 21), symbols)
    with psycopg.connect(database_url) as conn:
        conn.execute(edit.format(t=TABLE))
    assert _kept(database_url) is None  # unknown, not wrong
    assert _counted(database_url) == _exact(database_url) == _kept(database_url)
    # The next write moves the exact count on.
    more = candles(["ADAUSD"], START, 20)
    counts = write(database_url, more, START, dt.date(2024, 1, 21), ["ADAUSD"])
    assert counts["table_rows"] == _exact(database_url) == _kept(database_url)


def test_the_migration_counts_an_existing_store(database_url):
    symbols = ["BTCUSD", "ETHUSD"]
    write(database_url, candles(symbols, START, 10), START, dt.date(2024, 1, 11), symbols)
    with psycopg.connect(database_url) as conn:
        # As before migration 23: no count table, no trigger.
        conn.execute("DROP TABLE marketdata.candle_table_rows")
        conn.execute("DROP FUNCTION marketdata.candle_rows_changed() CASCADE")
        conn.execute("DELETE FROM marketdata.schema_migrations WHERE version = 23")
        conn.commit()
        assert migrate(conn) == [23]
    assert _kept(database_url) == 20
