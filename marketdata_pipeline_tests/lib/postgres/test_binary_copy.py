"""Binary COPY: what Postgres stores from it equals what it stores from CSV, value for value."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
from psycopg import sql

from marketdata_pipeline.lib.candles.schema import CANDLE_COLUMNS, CANDLE_SCHEMA
from marketdata_pipeline.lib.postgres import store
from marketdata_pipeline.lib.postgres.binary_copy import encodable
from marketdata_pipeline.lib.postgres.store import column_types, copy_frame

UTC = dt.UTC


def candles() -> pl.DataFrame:
    """Rows of every layout: text of several byte lengths (non-ASCII, empty), nulls in the
    nullable columns, dates and instants on both sides of 2000-01-01, extreme floats."""
    return pl.DataFrame(
        {
            "symbol": ["A", "BRK.B", "ÄÖÜ", "ZZ", "X", "MSFT"],
            "day": [dt.date(1999, 12, 31), dt.date(2000, 1, 1), dt.date(2024, 2, 29),
                    dt.date(1970, 1, 1), dt.date(2038, 1, 19), dt.date(2024, 7, 3)],
            "ts": [dt.datetime(1999, 12, 31, 5, tzinfo=UTC), dt.datetime(2000, 1, 1, tzinfo=UTC),
                   dt.datetime(2024, 2, 29, 5, tzinfo=UTC), dt.datetime(1970, 1, 1, tzinfo=UTC),
                   dt.datetime(2038, 1, 19, 5, tzinfo=UTC),
                   dt.datetime(2024, 7, 3, 4, 0, 0, 123456, tzinfo=UTC)],
            "open": [1.5, 0.0001, 1e300, 2.0, 3.0, 400.25],
            "high": [2.0, 0.0002, 1e300, 2.0, 3.0, 401.0],
            "low": [1.0, 0.0001, 1e-300, 2.0, 3.0, 399.0],
            "close": [1.75, 0.00015, 5e299, 2.0, 3.0, 400.0],
            "volume": [100.0, 0.5, 1e12, 0.0, 7.0, 123456789.0],
            "vwap": [1.6, None, None, 2.0, None, 400.1],
            "transactions": [10, None, 2**62, None, 0, -1],
            "adjusted": [True, False, True, True, False, True],
            "provisional": [False, True, False, False, False, True],
            "source": ["polygon:range", "polygon:grouped", "", "simulator:grouped",
                       "polygon:range", "polygon:range"],
            "fetched_at": [dt.datetime(2026, 12, 1, 2, 3, 4, 567890, tzinfo=UTC)] * 6,
            "vendor_t": [946_616_400_000, None, 1_709_182_800_000, 0, None, -5],
        },
        schema=CANDLE_SCHEMA,
    )  # fmt: skip


def test_binary_copy_stores_what_csv_copy_stores(database_url: str, monkeypatch):
    frame = candles()
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in CANDLE_COLUMNS)
    with psycopg.connect(database_url) as conn:
        for name in ("via_binary", "via_csv"):
            conn.execute(
                f"CREATE TABLE {name} (LIKE marketdata.stock_daily_candles INCLUDING DEFAULTS)"
            )
        assert encodable(frame, column_types(conn, sql.Identifier("via_binary")))
        # Two rows per COPY chunk: the header and trailer wrap every chunk, once.
        monkeypatch.setattr(store, "COPY_CHUNK_ROWS", 2)
        assert copy_frame(conn, sql.Identifier("via_binary"), frame, CANDLE_COLUMNS) == 6
        monkeypatch.setattr(store, "encodable", lambda _frame, _types: False)
        assert copy_frame(conn, sql.Identifier("via_csv"), frame, CANDLE_COLUMNS) == 6
        rows = {
            name: conn.execute(
                sql.SQL("SELECT {} FROM {} ORDER BY symbol").format(columns, sql.Identifier(name))
            ).fetchall()
            for name in ("via_binary", "via_csv")
        }
    assert rows["via_binary"] == rows["via_csv"]
    by_symbol = {row[0]: row for row in rows["via_binary"]}
    assert by_symbol["ÄÖÜ"][12] == "" and by_symbol["ÄÖÜ"][8] is None
    assert by_symbol["A"][1] == dt.date(1999, 12, 31)
    assert by_symbol["MSFT"][2] == dt.datetime(2024, 7, 3, 4, 0, 0, 123456, tzinfo=UTC)
    assert by_symbol["ÄÖÜ"][9] == 2**62 and by_symbol["MSFT"][14] == -5


def test_types_without_a_binary_encoding_fall_back_to_csv():
    text_and_int = {"s": "text", "i": "integer", "t": "timestamp with time zone"}
    assert not encodable(pl.DataFrame({"t": [dt.datetime(2024, 1, 1)]}), text_and_int)  # naive
    assert not encodable(pl.DataFrame({"d": [dt.timedelta(1)]}), {"d": "interval"})
    assert encodable(pl.DataFrame({"s": ["x"], "i": pl.Series([1], dtype=pl.Int32)}), text_and_int)
    # A binary field is read at the column's own width: Int64 into `integer` is CSV's job.
    assert not encodable(pl.DataFrame({"i": [1]}), text_and_int)
    assert not encodable(pl.DataFrame({"x": [1.0]}), {"x": "real"})
    assert not encodable(pl.DataFrame({"s": ["x"]}), {})  # a column the table does not have


def test_a_frame_whose_types_differ_from_the_tables_is_copied_as_csv(database_url: str):
    """The corporate-action frames carry Int64 for `integer` columns (e.g. a dividend's
    frequency): the copy must not send them as 8-byte binary fields."""
    frame = pl.DataFrame({"symbol": ["AAPL", "MSFT"], "frequency": [4, None]})
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TEMPORARY TABLE freq (symbol text, frequency integer)")
        assert copy_frame(conn, sql.Identifier("freq"), frame, ["symbol", "frequency"]) == 2
        rows = conn.execute("SELECT symbol, frequency FROM freq ORDER BY symbol").fetchall()
    assert rows == [("AAPL", 4), ("MSFT", None)]
