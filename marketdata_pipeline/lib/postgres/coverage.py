"""What the store holds per symbol and day: the queries behind `marketdata coverage`.

Three sources decide a (symbol, day) cell: a row in the candle table (stored), a row in
`marketdata.rejected_candles` (quarantined), and the symbol's status in `tracked_symbols` (failed).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import psycopg
from psycopg import sql

from marketdata_pipeline.lib.postgres.ddl import SCHEMA

TABLE_BY_CLASS = {"stock": "stock_daily_candles", "crypto": "crypto_daily_candles"}


@dataclass(frozen=True)
class SymbolStatus:
    """A tracked symbol with the outcome of its latest run."""

    symbol: str
    asset_class: str
    active: bool
    status: str
    last_success_day: dt.date | None
    last_error: str | None


def tracked_symbol_statuses(conn: psycopg.Connection) -> list[SymbolStatus]:
    """Every tracked symbol (active or not) with its status, stocks first, then by symbol."""
    rows = conn.execute(
        "SELECT symbol, asset_class, active, status, last_success_day, last_error"
        f" FROM {SCHEMA}.tracked_symbols ORDER BY asset_class DESC, symbol"
    ).fetchall()
    return [SymbolStatus(*row) for row in rows]


def _days_by_symbol(
    conn: psycopg.Connection, query: sql.Composable | str, params: tuple
) -> dict[str, set[dt.date]]:
    found: dict[str, set[dt.date]] = defaultdict(set)
    for symbol, day in conn.execute(query, params):
        found[symbol].add(day)
    return found


def stored_days(
    conn: psycopg.Connection,
    asset_class: str,
    symbols: list[str],
    start: dt.date,
    end: dt.date,
) -> dict[str, set[dt.date]]:
    """Days with a stored candle, per symbol, from `start` to `end` inclusive."""
    query = sql.SQL(
        "SELECT symbol, day FROM {} WHERE symbol = ANY(%s) AND day BETWEEN %s AND %s"
    ).format(sql.Identifier(SCHEMA, TABLE_BY_CLASS[asset_class]))
    return _days_by_symbol(conn, query, (symbols, start, end))


def quarantined_days(
    conn: psycopg.Connection,
    asset_class: str,
    symbols: list[str],
    start: dt.date,
    end: dt.date,
) -> dict[str, set[dt.date]]:
    """Days with a quarantined vendor row in `rejected_candles`, per symbol (inclusive range)."""
    query = (
        f"SELECT DISTINCT symbol, day FROM {SCHEMA}.rejected_candles"
        " WHERE asset = %s AND symbol = ANY(%s) AND day BETWEEN %s AND %s"
    )
    return _days_by_symbol(conn, query, (TABLE_BY_CLASS[asset_class], symbols, start, end))


def first_stored_day(
    conn: psycopg.Connection, asset_class: str, symbols: list[str]
) -> dt.date | None:
    """The earliest stored day of any of `symbols`, or None when none has a row."""
    query = sql.SQL("SELECT min(day) FROM {} WHERE symbol = ANY(%s)").format(
        sql.Identifier(SCHEMA, TABLE_BY_CLASS[asset_class])
    )
    row = conn.execute(query, (symbols,)).fetchone()
    return row[0] if row else None
