"""`refresh_returns` on generated stores: the table equals the view `stock_daily_returns` after
each kind of refresh (into an empty table, where the indexes are built after the insert, and
into a full one), with overlapping targets (a window, a split's whole history, late dividends)
and symbols with holes; and the bulk path leaves the table's indexes exactly as defined."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from marketdata_pipeline.lib.postgres.returns import RETURN_COLUMNS, refresh_returns

COLUMNS = ", ".join(RETURN_COLUMNS)
FIRST, LAST = dt.date(2024, 1, 1), dt.date(2024, 6, 28)


def fill(conn: psycopg.Connection) -> None:
    """12 symbols of weekday bars written day by day, every third symbol missing some days."""
    conn.execute(
        """
        INSERT INTO marketdata.stock_daily_candles (symbol, day, ts, open, high, low, close,
            volume, adjusted, source, fetched_at)
        SELECT 'S' || s, t::date, t, p, p * 1.01, p * 0.99, p * (1 + 0.01 * sin(s + n)),
               1000 + s, true, 'simulator:grouped', now()
        FROM (SELECT s, t, extract(doy FROM t) AS n, 10 + s + sin(extract(doy FROM t)) AS p
              FROM generate_series(1, 12) s,
                   generate_series(%s::timestamptz, %s::timestamptz, '1 day') t) x
        WHERE extract(isodow FROM t) < 6 AND NOT (s %% 3 = 0 AND n::int %% 7 = 2)
        ORDER BY x.t, x.s
        """,
        (FIRST, LAST),
    )
    conn.execute(
        """
        INSERT INTO marketdata.stock_dividends (symbol, ex_dividend_date, dividend_id,
            cash_amount, source, fetched_at)
        SELECT symbol, day, 'd-' || symbol || day, 0.1 + length(symbol) * 0.05, 'simulator',
               now() - interval '1 day'
        FROM marketdata.stock_daily_candles
        WHERE symbol IN ('S2', 'S4', 'S10') AND extract(day FROM day) = 15
        """
    )


def add_split(conn: psycopg.Connection, symbol: str, day: str, ratio: float) -> None:
    conn.execute(
        "INSERT INTO marketdata.stock_splits (symbol, execution_date, split_from, split_to,"
        " source, fetched_at, learned_at, applied_at)"
        " VALUES (%s, %s, 1, %s, 'simulator', now() - interval '2 days',"
        " now() - interval '2 days', now())",
        (symbol, day, ratio),
    )


def assert_table_equals_view(conn: psycopg.Connection) -> int:
    stored = conn.execute(
        f"SELECT {COLUMNS} FROM marketdata.stock_daily_returns_stored ORDER BY symbol, day"
    ).fetchall()
    view = conn.execute(
        f"SELECT {COLUMNS} FROM marketdata.stock_daily_returns ORDER BY symbol, day"
    ).fetchall()
    assert [r[:3] for r in stored] == [r[:3] for r in view]
    for got, want in zip(stored, view, strict=True):
        assert got[3:] == pytest.approx(want[3:], rel=1e-14), got[:2]
    return len(stored)


def indexes(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = 'marketdata' AND tablename = 'stock_daily_returns_stored'"
        " ORDER BY indexname"
    ).fetchall()


def test_every_refresh_leaves_the_table_equal_to_the_view(database_url):
    with psycopg.connect(database_url) as conn:
        fill(conn)
        add_split(conn, "S4", "2024-04-01", 2)
        conn.commit()
        defined = indexes(conn)
        # Empty table, a window of part of the history: rows after the window are not written
        # yet, those before are (the dividends and the split's history are new events).
        done = refresh_returns(conn, dt.date(2024, 3, 1), dt.date(2024, 3, 29))
        assert done.deleted == 0 and done.history_symbols == 1 and done.dividend_days > 0
        assert indexes(conn) == defined
        (s1,) = conn.execute(
            "SELECT count(*) FROM marketdata.stock_daily_returns_stored"
            " WHERE symbol = 'S1' AND day > '2024-04-01'"
        ).fetchone()
        assert s1 == 0
        # The whole history, table not empty: every row rewritten, indexes maintained.
        refresh_returns(conn, FIRST, LAST)
        rows = assert_table_equals_view(conn)
        (expected,) = conn.execute(
            "SELECT count(*) - count(DISTINCT symbol) FROM marketdata.stock_daily_candles"
        ).fetchone()
        assert rows == expected  # every bar but each symbol's first
        # A later split of a dividend payer, a changed close and a late dividend inside one
        # window: overlapping targets of one symbol, each row written once.
        add_split(conn, "S10", "2024-05-01", 3)
        conn.execute(
            "UPDATE marketdata.stock_daily_candles SET close = close * 1.5"
            " WHERE symbol = 'S10' AND day = '2024-02-06'"
        )
        conn.execute(
            "INSERT INTO marketdata.stock_dividends (symbol, ex_dividend_date, dividend_id,"
            " cash_amount, source, fetched_at) VALUES ('S10', '2024-02-07', 'late', 0.3,"
            " 'simulator', now())"
        )
        conn.commit()
        done = refresh_returns(conn, dt.date(2024, 2, 1), dt.date(2024, 2, 9))
        # S10's new split, and S4's again (applied within EVENT_OVERLAP before the last refresh).
        assert done.history_symbols == 2
        assert_table_equals_view(conn)
        assert indexes(conn) == defined
        # Bars gone from the window take their returns with them.
        conn.execute(
            "DELETE FROM marketdata.stock_daily_candles WHERE symbol = 'S5' AND day > '2024-06-20'"
        )
        conn.commit()
        refresh_returns(conn, dt.date(2024, 6, 21), LAST)
        assert_table_equals_view(conn)


def test_a_first_refresh_of_the_whole_history_builds_the_same_table(database_url):
    with psycopg.connect(database_url) as conn:
        fill(conn)
        add_split(conn, "S2", "2024-03-01", 4)
        conn.commit()
        defined = indexes(conn)
        done = refresh_returns(conn, FIRST, LAST)
        assert done.written == assert_table_equals_view(conn)
        assert indexes(conn) == defined
        # The constraint is a primary key again, not just a unique index.
        (kind,) = conn.execute(
            "SELECT contype FROM pg_constraint"
            " WHERE conrelid = 'marketdata.stock_daily_returns_stored'::regclass"
        ).fetchone()
        assert kind == "p"


def test_events_a_refresh_saw_are_redone_once_at_most(database_url):
    """A refresh after the overlap has passed redoes none of the events the last one saw, even
    when no newer event came since (the store's first dividend load, then quiet days)."""
    with psycopg.connect(database_url) as conn:
        fill(conn)  # dividends read a day ago
        conn.commit()
        first = refresh_returns(conn, FIRST, LAST)
        assert first.dividend_days > 0
        # Two hours later, nothing new read: the day's refresh is its window only.
        conn.execute(
            "UPDATE marketdata.stock_daily_returns_state"
            " SET events_through = events_through - interval '2 hours'"
        )
        conn.commit()
        later = refresh_returns(conn, LAST, LAST)
        assert later.dividend_days == 0 and later.history_symbols == 0
        assert later.window_symbols == 12
        assert_table_equals_view(conn)
