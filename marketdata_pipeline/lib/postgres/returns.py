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

A row is computed from the candles like the view computes it: each (symbol, first..last) target
takes its bars plus the bar just before `first` (one primary-key probe), so no query reads a
symbol's whole history to know one day's previous close.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from marketdata_pipeline.lib.postgres.store import table_lock_key

TABLE = "stock_daily_returns_stored"
#: Events (splits, dividends) are looked at again from this long before the newest one seen: a
#: transaction that stamped its rows earlier but committed later (a concurrent run's split
#: refresh) is still picked up. The price: the newest hour of events is redone by every refresh
#: until newer events arrive (the few symbols of the latest split batch: milliseconds).
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

# The view's arithmetic, restricted to the targets (see the module docstring).
_COMPUTE = """
WITH bars AS (
    SELECT t.id, c.symbol, c.day, c.close, c.adjusted, c.fetched_at
    FROM returns_targets t
    JOIN marketdata.stock_daily_candles c
      ON c.symbol = t.symbol AND c.day BETWEEN t.first AND t.last
    UNION ALL
    SELECT t.id, t.symbol, p.day, p.close, p.adjusted, p.fetched_at
    FROM returns_targets t
    CROSS JOIN LATERAL (
        SELECT c.day, c.close, c.adjusted, c.fetched_at
        FROM marketdata.stock_daily_candles c
        WHERE c.symbol = t.symbol AND c.day < t.first
        ORDER BY c.day DESC LIMIT 1
    ) p
), dividends AS (
    SELECT symbol, ex_dividend_date AS day, sum(cash_amount) AS cash_amount
    FROM marketdata.stock_dividends
    GROUP BY symbol, ex_dividend_date
), series AS (
    SELECT b.id, b.symbol, b.day, b.close, b.adjusted, b.fetched_at,
           lag(b.day) OVER w AS prev_day,
           lag(b.close) OVER w AS prev_close,
           d.cash_amount
    FROM bars b
    LEFT JOIN dividends d ON d.symbol = b.symbol AND d.day = b.day
    WINDOW w AS (PARTITION BY b.id ORDER BY b.day)
)
SELECT DISTINCT ON (s.symbol, s.day)
       s.symbol, s.day, s.prev_day, s.prev_close, s.close,
       coalesce(s.cash_amount, 0) AS dividend,
       coalesce(s.cash_amount * f.factor, 0) AS dividend_adjusted,
       s.close / s.prev_close - 1 AS simple_return,
       (s.close + coalesce(s.cash_amount * f.factor, 0)) / s.prev_close - 1 AS total_return
FROM series s
CROSS JOIN LATERAL (
    SELECT marketdata.product(sp.split_from / sp.split_to) AS factor
    FROM marketdata.stock_splits sp
    WHERE s.cash_amount IS NOT NULL
      AND s.adjusted
      AND sp.symbol = s.symbol
      AND sp.execution_date > s.day
      AND s.fetched_at >= marketdata.split_effective_at(sp.execution_date, sp.learned_at)
) f
WHERE s.prev_close IS NOT NULL
ORDER BY s.symbol, s.day
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
        (newest,) = conn.execute(
            "SELECT greatest("
            " (SELECT max(greatest(learned_at, applied_at)) FROM marketdata.stock_splits),"
            " (SELECT max(fetched_at) FROM marketdata.stock_dividends))"
        ).fetchone()
        conn.execute(
            "CREATE TEMP TABLE returns_targets ("
            " id bigint GENERATED ALWAYS AS IDENTITY, symbol text, first date, last date)"
            " ON COMMIT DROP"
        )
        window = conn.execute(
            """
            INSERT INTO returns_targets (symbol, first, last)
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
            "INSERT INTO returns_targets (symbol, first, last)"
            " SELECT DISTINCT symbol, '-infinity'::date, 'infinity'::date"
            " FROM marketdata.stock_splits"
            " WHERE greatest(learned_at, applied_at) > coalesce(%s::timestamptz, '-infinity')",
            (since,),
        ).rowcount
        dividends = conn.execute(
            "INSERT INTO returns_targets (symbol, first, last)"
            " SELECT DISTINCT symbol, ex_dividend_date, ex_dividend_date"
            " FROM marketdata.stock_dividends"
            " WHERE fetched_at > coalesce(%s::timestamptz, '-infinity')",
            (since,),
        ).rowcount
        conn.execute("ANALYZE returns_targets")
        # Rows of the window whose bars are gone go too, not only the targets' rows.
        deleted = conn.execute(
            "DELETE FROM marketdata.stock_daily_returns_stored WHERE day BETWEEN %s AND %s",
            (first, last),
        ).rowcount
        deleted += conn.execute(
            "DELETE FROM marketdata.stock_daily_returns_stored r USING returns_targets t"
            " WHERE r.symbol = t.symbol AND r.day BETWEEN t.first AND t.last"
        ).rowcount
        columns = ", ".join(RETURN_COLUMNS)
        written = conn.execute(
            f"INSERT INTO marketdata.stock_daily_returns_stored ({columns}) {_COMPUTE}"
        ).rowcount
        if newest is not None:
            conn.execute(
                "INSERT INTO marketdata.stock_daily_returns_state (events_through) VALUES (%s)"
                " ON CONFLICT (singleton) DO UPDATE SET events_through ="
                " greatest(excluded.events_through, stock_daily_returns_state.events_through)",
                (newest,),
            )
    return ReturnsRefresh(window, history, dividends, deleted, written)
