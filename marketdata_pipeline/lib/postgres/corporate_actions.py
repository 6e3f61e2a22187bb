"""The store of corporate actions: every SQL statement on `stock_splits` and `stock_dividends`.

Events are upserted, never deleted: the vendor's reference endpoints have returned partial
answers, and a plan may serve less history than the table holds, so an event missing from one
answer is not evidence that it never happened. A split whose ratio changes (the vendor corrects
it) gets a new `learned_at` and is pending again, so stored history is brought in line with the
corrected ratio.

Staleness is derived from the data, not from bookkeeping: a stored adjusted bar reflects a split
when it was fetched at or after `marketdata.split_effective_at(execution_date, learned_at)`
(the start of the execution date in New York, never before we knew of the split). A bar dated
before the execution date and fetched earlier is stale. Replacing it with a fresh vendor bar
makes it current, so a rerun finds nothing to do.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
import psycopg
from psycopg import sql

from marketdata_pipeline.lib.candles.corporate_actions import DIVIDEND_SCHEMA, SPLIT_SCHEMA
from marketdata_pipeline.lib.postgres.ddl import SCHEMA
from marketdata_pipeline.lib.postgres.store import copy_frame, table_lock_key

SPLITS_TABLE = "stock_splits"
DIVIDENDS_TABLE = "stock_dividends"


@dataclass(frozen=True)
class UpsertCounts:
    """What an upsert of events changed."""

    received: int
    new: int
    changed: int
    learned: list[tuple[str, dt.date]]  # new or re-ratioed splits (empty for dividends)


@dataclass(frozen=True)
class StaleHistory:
    """Stored bars of one symbol that do not reflect a split yet, and the splits concerned."""

    symbol: str
    first_day: dt.date
    last_day: dt.date
    rows: int
    splits: list[tuple[dt.date, float, float]]  # (execution_date, split_from, split_to)


def _load_staging(
    conn: psycopg.Connection, table: str, frame: pl.DataFrame, schema: dict[str, pl.DataType]
) -> sql.Identifier:
    staging = sql.Identifier(f"_incoming_{table}")
    conn.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
        ).format(
            staging,
            sql.SQL(", ").join(sql.Identifier(c) for c in schema),
            sql.Identifier(SCHEMA, table),
        )
    )
    copy_frame(conn, staging, frame.select(list(schema)), tuple(schema))
    return staging


def upsert_splits(conn: psycopg.Connection, frame: pl.DataFrame) -> UpsertCounts:
    """Insert new splits and refresh known ones, in one transaction on `conn`.

    A known split keeps its `learned_at` (and `applied_at`) unless its ratio changed.
    """
    with conn.transaction():
        conn.execute(table_lock_key(f"{SCHEMA}.{SPLITS_TABLE}"))
        staging = _load_staging(conn, SPLITS_TABLE, frame, SPLIT_SCHEMA)
        learned = conn.execute(
            sql.SQL(
                "SELECT i.symbol, i.execution_date, s.symbol IS NULL FROM {} i"
                " LEFT JOIN marketdata.stock_splits s USING (symbol, execution_date)"
                " WHERE s.symbol IS NULL"
                "    OR (s.split_from, s.split_to) IS DISTINCT FROM (i.split_from, i.split_to)"
                " ORDER BY i.execution_date, i.symbol"
            ).format(staging)
        ).fetchall()
        conn.execute(
            sql.SQL(
                """
                INSERT INTO marketdata.stock_splits AS s ({columns}) SELECT {columns} FROM {staging}
                ON CONFLICT (symbol, execution_date) DO UPDATE SET
                    learned_at = CASE
                        WHEN (s.split_from, s.split_to)
                             IS DISTINCT FROM (excluded.split_from, excluded.split_to)
                        THEN now() ELSE s.learned_at END,
                    applied_at = CASE
                        WHEN (s.split_from, s.split_to)
                             IS DISTINCT FROM (excluded.split_from, excluded.split_to)
                        THEN NULL ELSE s.applied_at END,
                    split_from = excluded.split_from,
                    split_to = excluded.split_to,
                    adjustment_type = excluded.adjustment_type,
                    vendor_id = excluded.vendor_id,
                    historical_adjustment_factor = excluded.historical_adjustment_factor,
                    source = excluded.source,
                    fetched_at = excluded.fetched_at
                """
            ).format(
                columns=sql.SQL(", ").join(sql.Identifier(c) for c in SPLIT_SCHEMA),
                staging=staging,
            )
        )
    new = sum(1 for *_, is_new in learned if is_new)
    return UpsertCounts(
        received=frame.height,
        new=new,
        changed=len(learned) - new,
        learned=[(symbol, day) for symbol, day, _ in learned],
    )


#: Dividend columns that say when and from whom a record was read, not what it says.
_DIVIDEND_READ_COLUMNS = ("source", "fetched_at")


def upsert_dividends(conn: psycopg.Connection, frame: pl.DataFrame) -> UpsertCounts:
    """Insert new dividends and update known ones whose record changed, in one transaction on
    `conn`. A record read again unchanged keeps its row, `fetched_at` included: the daily
    re-read of the market's last 45 days returns thousands of them, and the stored returns
    rewrite the ex-dates of dividends fetched since their last refresh (`lib/postgres/
    returns.py`), so a fresh `fetched_at` on each would rewrite all of them every day."""
    key = ("symbol", "ex_dividend_date", "dividend_id")
    content = [c for c in DIVIDEND_SCHEMA if c not in key and c not in _DIVIDEND_READ_COLUMNS]
    with conn.transaction():
        conn.execute(table_lock_key(f"{SCHEMA}.{DIVIDENDS_TABLE}"))
        staging = _load_staging(conn, DIVIDENDS_TABLE, frame, DIVIDEND_SCHEMA)
        (new,) = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {} i LEFT JOIN marketdata.stock_dividends d"
                " USING (symbol, ex_dividend_date, dividend_id) WHERE d.symbol IS NULL"
            ).format(staging)
        ).fetchone()
        changed = conn.execute(
            sql.SQL(
                "INSERT INTO marketdata.stock_dividends ({columns}) SELECT {columns} FROM {staging}"
                " ON CONFLICT ({key}) DO UPDATE SET {updates}"
                " WHERE ({stored}) IS DISTINCT FROM ({read})"
            ).format(
                columns=sql.SQL(", ").join(sql.Identifier(c) for c in DIVIDEND_SCHEMA),
                staging=staging,
                key=sql.SQL(", ").join(sql.Identifier(c) for c in key),
                updates=sql.SQL(", ").join(
                    sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
                    for c in DIVIDEND_SCHEMA
                    if c not in key
                ),
                stored=sql.SQL(", ").join(
                    sql.SQL("stock_dividends.{}").format(sql.Identifier(c)) for c in content
                ),
                read=sql.SQL(", ").join(
                    sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in content
                ),
            )
        ).rowcount
    return UpsertCounts(received=frame.height, new=new, changed=changed - new, learned=[])


def symbols_without_dividend_history(
    conn: psycopg.Connection, symbols: Sequence[str], start: dt.date
) -> list[str]:
    """Those of `symbols` whose dividends since `start` have not been loaded yet."""
    rows = conn.execute(
        "SELECT s FROM unnest(%s::text[]) AS s WHERE NOT EXISTS ("
        " SELECT 1 FROM marketdata.stock_dividend_history h"
        " WHERE h.symbol = s AND h.start_date <= %s) ORDER BY s",
        (list(symbols), start),
    ).fetchall()
    return [r[0] for r in rows]


def record_dividend_history(
    conn: psycopg.Connection, symbols: Sequence[str], start: dt.date
) -> None:
    """Remember that the dividends of `symbols` since `start` are loaded."""
    conn.execute(
        "INSERT INTO marketdata.stock_dividend_history (symbol, start_date)"
        " SELECT unnest(%s::text[]), %s ON CONFLICT (symbol) DO UPDATE"
        " SET start_date = least(excluded.start_date, stock_dividend_history.start_date),"
        " loaded_at = now()",
        (list(symbols), start),
    )


def stale_split_history(
    conn: psycopg.Connection, symbols: Sequence[str] | None = None
) -> list[StaleHistory]:
    """Per symbol (all, or only `symbols`): stored adjusted bars that miss an executed split."""
    rows = conn.execute(
        """
        SELECT c.symbol, min(c.day), max(c.day), count(DISTINCT c.day),
               array_agg(DISTINCT ARRAY[
                   extract(epoch FROM s.execution_date)::float8, s.split_from, s.split_to])
        FROM marketdata.stock_splits s
        JOIN marketdata.stock_daily_candles c
          ON c.symbol = s.symbol AND c.day < s.execution_date
        WHERE c.adjusted
          AND marketdata.split_effective_at(s.execution_date, s.learned_at) <= now()
          AND c.fetched_at < marketdata.split_effective_at(s.execution_date, s.learned_at)
          AND (%(symbols)s::text[] IS NULL OR s.symbol = ANY(%(symbols)s::text[]))
        GROUP BY c.symbol
        ORDER BY c.symbol
        """,
        {"symbols": list(symbols) if symbols is not None else None},
    ).fetchall()
    epoch = dt.date(1970, 1, 1)
    return [
        StaleHistory(
            symbol=symbol,
            first_day=first,
            last_day=last,
            rows=count,
            splits=sorted(
                (epoch + dt.timedelta(days=int(secs // 86_400)), split_from, split_to)
                for secs, split_from, split_to in splits
            ),
        )
        for symbol, first, last, count, splits in rows
    ]


def mark_splits_applied(conn: psycopg.Connection, symbols: Sequence[str]) -> int:
    """Set `applied_at` on executed splits of `symbols` that no stored bar misses any more."""
    return conn.execute(
        """
        UPDATE marketdata.stock_splits s SET applied_at = now()
        WHERE s.applied_at IS NULL
          AND s.symbol = ANY(%s)
          AND marketdata.split_effective_at(s.execution_date, s.learned_at) <= now()
          AND NOT EXISTS (
              SELECT 1 FROM marketdata.stock_daily_candles c
              WHERE c.symbol = s.symbol AND c.day < s.execution_date AND c.adjusted
                AND c.fetched_at < marketdata.split_effective_at(s.execution_date, s.learned_at))
        """,
        (list(symbols),),
    ).rowcount


def split_events(
    conn: psycopg.Connection, symbols: Sequence[str], start: dt.date, end: dt.date
) -> pl.DataFrame:
    """Splits of `symbols` executing in `start`..`end`, as (symbol, execution_date, ratio)."""
    rows = conn.execute(
        "SELECT symbol, execution_date, split_from, split_to FROM marketdata.stock_splits"
        " WHERE symbol = ANY(%s) AND execution_date BETWEEN %s AND %s"
        " ORDER BY symbol, execution_date",
        (list(symbols), start, end),
    ).fetchall()
    return pl.DataFrame(
        rows,
        schema={
            "symbol": pl.String,
            "execution_date": pl.Date,
            "split_from": pl.Float64,
            "split_to": pl.Float64,
        },
        orient="row",
    )


#: The columns of a step (`lib.candles.corporate_actions.STEP_COLUMNS`), as read by
#: `split_candidate_steps`.
STEP_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "day": pl.Date(),
    "open": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "prev_close": pl.Float64(),
    "prev_volume": pl.Float64(),
}
#: How much looser (in |ln(close / previous close)|) the database's pre-filter is than the
#: threshold it is asked for: rounding in the database never drops a step polars would keep.
_PREFILTER_SLACK = 0.01


def split_candidate_steps(
    conn: psycopg.Connection,
    symbols: Sequence[str],
    start: dt.date,
    end: dt.date,
    min_log_ratio: float,
) -> pl.DataFrame:
    """The steps between consecutive stored bars of `symbols` in `start`..`end` whose close
    moved by at least about `min_log_ratio` (|ln(close / previous close)|), each with the
    previous bar's close and volume (`STEP_SCHEMA`), ordered by symbol and day.

    The pairing (`lag` over each symbol's bars) and a slightly looser filter run in Postgres,
    so only the few candidate steps leave it: reading every bar of a ten-year market into
    polars cost 50 s at 12.6 M bars, psycopg's COPY handing over one row per call
    (docs/benchmarks.md 19). Non-positive prices are always passed on, for the caller to judge.
    """
    bound = math.exp(max(min_log_ratio - _PREFILTER_SLACK, 0.0))
    query = sql.SQL(
        "COPY (SELECT symbol, day, open, close, volume, prev_close, prev_volume FROM ("
        "  SELECT symbol, day, open, close, volume,"
        "         lag(close) OVER w AS prev_close, lag(volume) OVER w AS prev_volume"
        "  FROM {table} WHERE symbol = ANY({symbols}) AND day BETWEEN {start} AND {end}"
        "  WINDOW w AS (PARTITION BY symbol ORDER BY day)) steps"
        " WHERE prev_close IS NOT NULL AND (prev_close <= 0 OR close <= 0"
        "  OR close >= prev_close * {bound} OR close * {bound} <= prev_close)"
        " ORDER BY symbol, day) TO STDOUT (FORMAT csv)"
    ).format(
        table=sql.Identifier(SCHEMA, "stock_daily_candles"),
        symbols=sql.Literal(list(symbols)),
        start=sql.Literal(start),
        end=sql.Literal(end),
        bound=sql.Literal(bound),
    )
    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            buffer.write(block)
    if buffer.tell() == 0:
        return pl.DataFrame(schema=STEP_SCHEMA)
    buffer.seek(0)
    return pl.read_csv(buffer, has_header=False, schema=STEP_SCHEMA)
