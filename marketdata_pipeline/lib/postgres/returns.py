"""Daily stock returns kept in a table (`marketdata.stock_daily_returns_stored`), not recomputed.

The view `marketdata.stock_daily_returns` defines the numbers (and stays as the reference): it
windows the whole candle table for every query, 12.7 s for one day at 13 M bars. The table holds
the same rows, keyed (symbol, day) with an index on day, and `refresh_returns` rewrites exactly
what may have changed since it last ran, in one transaction:

- the run's window: every symbol with bars in it, through each symbol's next bar after it (that
  bar's previous close may have changed);
- the whole history of a symbol whose split is new, changed or was just applied (the split
  repair re-fetched its bars, and the restated dividends depend on the split);
- the ex-dates of dividends (re)read since the last refresh.

A row is computed from the candles like the view computes it: the targets of a symbol are merged
into disjoint ranges, and each (symbol, first..last) range takes its bars plus the bar just
before `first` (one primary-key probe), so no query reads a symbol's whole history to know one
day's previous close, and no row is computed twice. Into an empty table (a store's first
history backfill) the rows go into the bare heap and the indexes are built afterwards, in the
same transaction (`_insert_then_index`). docs/benchmarks.md 19 has the figures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
from psycopg import sql

from marketdata_pipeline.lib.postgres.ddl import SCHEMA
from marketdata_pipeline.lib.postgres.store import table_lock_key

TABLE = "stock_daily_returns_stored"
#: Events (splits, dividends) are looked at again from this long before the last refresh: a
#: transaction that stamped its rows earlier but committed later (a concurrent run's split
#: refresh) is still picked up. The price: the events of the hour before a refresh are redone
#: by the next one, once. (The watermark was the newest event seen, so the newest hour of
#: events was redone by every refresh until newer ones arrived: after a store's first dividend
#: history load, all of it, every day.)
EVENT_OVERLAP = dt.timedelta(hours=1)

#: The columns of the table (and of the view), in order.
RETURN_COLUMNS = (
    "symbol",
    "day",
    "prev_day",
    "prev_close",
    "close",
    "dividend",
    "dividend_adjusted",
    "simple_return",
    "total_return",
)

# Overlapping targets of one symbol (its window, its whole history after a split, a dividend's
# ex-date) merged into disjoint ranges, so each row is computed once and no DISTINCT ON (a sort
# of every row) is needed; `prev` is the day of the symbol's bar just before the range (one
# primary-key probe). In symbol order: the candles are then read symbol after symbol, and a
# heap written day by day (a backfill's layout) is read a few thousand pages at a time instead
# of jumping across the whole table for each symbol in hash order (11.8 M page reads against
# 0.28 M at 12.6 M bars).
_MERGE = """
INSERT INTO returns_targets (symbol, first, last, prev)
SELECT m.symbol, m.first, m.last, p.day
FROM (
    SELECT symbol, min(first) AS first, max(last) AS last
    FROM (
        SELECT symbol, first, last,
               count(*) FILTER (WHERE reach IS NULL OR reach < first)
                   OVER (PARTITION BY symbol ORDER BY first, last) AS island
        FROM (
            SELECT symbol, first, last,
                   max(last) OVER (PARTITION BY symbol ORDER BY first, last
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
            FROM returns_raw_targets
        ) ordered
    ) islands
    GROUP BY symbol, island
) m
LEFT JOIN LATERAL (
    SELECT c.day FROM marketdata.stock_daily_candles c
    WHERE c.symbol = m.symbol AND c.day < m.first
    ORDER BY c.day DESC LIMIT 1
) p ON true
ORDER BY m.symbol, m.first
"""

# The view's arithmetic, restricted to the targets (see the module docstring). Each target's
# bars come from one primary-key range scan in day order, so `lag` needs no sort; the
# dividends join on the unique (symbol, day) key, so joining after the window changes nothing.
_COMPUTE = """
WITH dividends AS (
    SELECT symbol, ex_dividend_date AS day, sum(cash_amount) AS cash_amount
    FROM marketdata.stock_dividends
    GROUP BY symbol, ex_dividend_date
)
SELECT t.symbol, s.day, s.prev_day, s.prev_close, s.close,
       coalesce(d.cash_amount, 0) AS dividend,
       coalesce(d.cash_amount * f.factor, 0) AS dividend_adjusted,
       s.close / s.prev_close - 1 AS simple_return,
       (s.close + coalesce(d.cash_amount * f.factor, 0)) / s.prev_close - 1 AS total_return
FROM returns_targets t
CROSS JOIN LATERAL (
    SELECT b.day, b.close, b.adjusted, b.fetched_at,
           lag(b.day) OVER w AS prev_day,
           lag(b.close) OVER w AS prev_close
    FROM marketdata.stock_daily_candles b
    WHERE b.symbol = t.symbol AND b.day BETWEEN coalesce(t.prev, t.first) AND t.last
    WINDOW w AS (ORDER BY b.day)
) s
LEFT JOIN dividends d ON d.symbol = t.symbol AND d.day = s.day
CROSS JOIN LATERAL (
    SELECT marketdata.product(sp.split_from / sp.split_to) AS factor
    FROM marketdata.stock_splits sp
    WHERE d.cash_amount IS NOT NULL
      AND s.adjusted
      AND sp.symbol = t.symbol
      AND sp.execution_date > s.day
      AND s.fetched_at >= marketdata.split_effective_at(sp.execution_date, sp.learned_at)
) f
WHERE s.prev_close IS NOT NULL AND s.day >= t.first
"""


@dataclass(frozen=True)
class ReturnsRefresh:
    """What one refresh rewrote."""

    window_symbols: int
    history_symbols: int
    dividend_days: int
    deleted: int
    written: int


def refresh_returns(conn: psycopg.Connection, first: dt.date, last: dt.date) -> ReturnsRefresh:
    """Rewrite the returns of `first..last` (inclusive) and of the events since the last
    refresh, in one transaction on `conn` (see the module docstring)."""
    with conn.transaction():
        conn.execute(table_lock_key(f"marketdata.{TABLE}"))
        (seen,) = conn.execute(
            "SELECT events_through FROM marketdata.stock_daily_returns_state"
        ).fetchone() or (None,)
        # None: never refreshed, every event counts.
        since = seen - EVENT_OVERLAP if seen is not None else None
        window, history, dividends = _targets(conn, first, last, since)
        (empty,) = conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM marketdata.{TABLE})").fetchone()
        deleted = 0 if empty else _delete(conn, first, last)
        columns = ", ".join(RETURN_COLUMNS)
        insert = f"INSERT INTO marketdata.{TABLE} ({columns}) {_COMPUTE}"
        written = _insert_then_index(conn, insert) if empty else conn.execute(insert).rowcount
        # Every event this transaction could see is handled: the next refresh looks from
        # this refresh's start (less the overlap), not from the newest event's stamp.
        conn.execute(
            "INSERT INTO marketdata.stock_daily_returns_state (events_through) VALUES (now())"
            " ON CONFLICT (singleton) DO UPDATE SET events_through ="
            " greatest(excluded.events_through, stock_daily_returns_state.events_through)"
        )
    return ReturnsRefresh(window, history, dividends, deleted, written)


def _targets(
    conn: psycopg.Connection, first: dt.date, last: dt.date, since: dt.datetime | None
) -> tuple[int, int, int]:
    """Fill the temporary `returns_targets` (merged, see `_MERGE`); return how many window
    symbols, whole histories and dividend ex-dates asked for a rewrite."""
    for name, extra in (("returns_raw_targets", ""), ("returns_targets", ", prev date")):
        # Inside a caller's open transaction `conn.transaction()` is a savepoint, which does not
        # drop ON COMMIT DROP tables: a second refresh before that commit finds them.
        conn.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")
        conn.execute(
            f"CREATE TEMP TABLE {name} (symbol text, first date, last date{extra}) ON COMMIT DROP"
        )
    window = conn.execute(
        """
        INSERT INTO returns_raw_targets (symbol, first, last)
        SELECT w.symbol, %(first)s, coalesce(n.day, %(last)s)
        FROM (SELECT DISTINCT symbol FROM marketdata.stock_daily_candles
              WHERE day BETWEEN %(first)s AND %(last)s) w
        LEFT JOIN LATERAL (
            SELECT c.day FROM marketdata.stock_daily_candles c
            WHERE c.symbol = w.symbol AND c.day > %(last)s ORDER BY c.day LIMIT 1
        ) n ON true
        """,
        {"first": first, "last": last},
    ).rowcount
    history = conn.execute(
        "INSERT INTO returns_raw_targets (symbol, first, last)"
        " SELECT DISTINCT symbol, '-infinity'::date, 'infinity'::date"
        " FROM marketdata.stock_splits"
        " WHERE greatest(learned_at, applied_at) > coalesce(%s::timestamptz, '-infinity')",
        (since,),
    ).rowcount
    dividends = conn.execute(
        "INSERT INTO returns_raw_targets (symbol, first, last)"
        " SELECT DISTINCT symbol, ex_dividend_date, ex_dividend_date"
        " FROM marketdata.stock_dividends"
        " WHERE fetched_at > coalesce(%s::timestamptz, '-infinity')",
        (since,),
    ).rowcount
    conn.execute(_MERGE)
    conn.execute("ANALYZE returns_targets")
    return window, history, dividends


def _delete(conn: psycopg.Connection, first: dt.date, last: dt.date) -> int:
    """Delete the rows the refresh rewrites; return how many."""
    # Rows of the window whose bars are gone go too, not only the targets' rows.
    deleted = conn.execute(
        f"DELETE FROM marketdata.{TABLE} WHERE day BETWEEN %s AND %s", (first, last)
    ).rowcount
    return (
        deleted
        + conn.execute(
            f"DELETE FROM marketdata.{TABLE} r USING returns_targets t"
            " WHERE r.symbol = t.symbol AND r.day BETWEEN t.first AND t.last"
        ).rowcount
    )


def _insert_then_index(conn: psycopg.Connection, insert: str) -> int:
    """Run `insert` into the empty table with its indexes dropped, then build them again
    (as the catalogue defined them), in the caller's transaction; return the rows written.

    Inserting 12.6 M rows while maintaining the primary key and the day index (rows arrive
    by symbol, so every row lands on another page of the day index) took 2.2x as long as
    inserting into the bare heap and building both indexes from it (docs/benchmarks.md 19).
    The price: dropping an index locks the table, so a reader of the (empty) table waits for
    this transaction to commit instead of reading nothing.
    """
    table = f"marketdata.{TABLE}"
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND conindid <> 0 ORDER BY conname",
        (table,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        " ORDER BY c.relname",
        (table,),
    ).fetchall()
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(SCHEMA, name)))
    for name, _ in constraints:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(SCHEMA, TABLE), sql.Identifier(name)
            )
        )
    written = conn.execute(insert).rowcount
    for name, definition in constraints:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                sql.Identifier(SCHEMA, TABLE), sql.Identifier(name)
            )
            + sql.SQL(definition)
        )
    for _, definition in indexes:
        conn.execute(definition)
    return written
