"""The candle store: every SQL statement that reads or writes the candle tables.

Every candle write goes through `write_batch`, whoever writes (the IO manager for the candle
assets, the split repair). It replaces exactly one slice, (window x symbols), in one
transaction: check the store's source claim (a store never mixes simulated and real rows), take
a per-table advisory lock (so concurrent runs on overlapping slices serialise instead of both
inserting), delete the slice, bulk-load the new rows with `COPY ... FROM STDIN` (binary, encoded
column-wise by `binary_copy`; never row-by-row INSERTs), quarantine rejects, record each
symbol's status, commit. A crash anywhere before the commit leaves the previous rows intact; a
rerun is idempotent; other symbols' rows on the same days are never touched.

The symbol table has its own module (`tracked_symbols.py`); the schema its own (`ddl.py`); the
store's source claim its own (`source_claim.py`).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl
import psycopg
from psycopg import sql

from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.schema import (
    CANDLE_COLUMNS,
    CANDLE_SCHEMA,
    REJECTED_SCHEMA,
)
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.postgres.binary_copy import binary_chunks, encodable
from marketdata_pipeline.lib.postgres.ddl import CANDLE_TABLES, SCHEMA
from marketdata_pipeline.lib.postgres.source_claim import (
    MixedSourcesError,
    claim_source,
    mixed_sources_message,
)
from marketdata_pipeline.lib.postgres.tracked_symbols import record_failures, record_success

# Re-exported: the command line and tests name the refusal through the store.
__all__ = ["MixedSourcesError", "mixed_sources_message"]

#: Rows rendered to CSV per COPY chunk: bounds the extra memory of a large write.
COPY_CHUNK_ROWS = 100_000


def _csv_chunks(frame: pl.DataFrame, columns: Sequence[str]) -> Iterator[bytes]:
    selected = frame.select(columns)
    for offset in range(0, selected.height, COPY_CHUNK_ROWS):
        buffer = io.BytesIO()
        selected.slice(offset, COPY_CHUNK_ROWS).write_csv(buffer, include_header=False)
        yield buffer.getvalue()


def column_types(conn: psycopg.Connection, table: sql.Composable) -> dict[str, str]:
    """Each column of `table` with its type as Postgres names it (`double precision`, ...)."""
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (table.as_string(conn),),
    ).fetchall()
    return dict(rows)


def copy_frame(
    conn: psycopg.Connection, table: sql.Composable, frame: pl.DataFrame, columns: Sequence[str]
) -> int:
    """Bulk-load `frame[columns]` into `table` with COPY; return the rows sent.

    Binary COPY when every column's type has a binary encoding here and matches the target
    column's type exactly (`binary_copy`: the server parses no text, about 1.3-1.7x faster for
    the candle table), CSV otherwise.
    """
    if frame.height == 0:
        return 0
    selected = frame.select(columns)
    binary = encodable(selected, column_types(conn, table))
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
        table,
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.SQL("binary" if binary else "csv"),
    )
    # Render chunk n+1 (polars and numpy, mostly without the GIL) on another core while
    # Postgres loads chunk n: the rendering then hides behind the server's own work instead of
    # adding to it. At most two chunks exist at once, so memory stays bounded.
    chunks = binary_chunks(selected, COPY_CHUNK_ROWS) if binary else _csv_chunks(selected, columns)
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy-render") as render,
        conn.cursor() as cur,
        cur.copy(statement) as copy,
    ):
        pending = render.submit(next, chunks, None)
        while (chunk := pending.result()) is not None:
            pending = render.submit(next, chunks, None)
            copy.write(chunk)
    return frame.height


def table_lock_key(table: str) -> sql.Composed:
    """SQL for a stable advisory-lock key per table (hashtext is the same in every process)."""
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(sql.Literal(table))


def _outside_slice(
    candles: pl.DataFrame, start: dt.date, end_exclusive: dt.date, symbols: Sequence[str]
) -> None:
    """Raise ValueError when `candles` has rows outside (start..end_exclusive x symbols)."""
    outside = candles.filter(
        (pl.col("day") < start)
        | (pl.col("day") >= end_exclusive)
        | ~pl.col("symbol").is_in(symbols)
    )
    if outside.height:
        example = outside.select("symbol", "day").row(0)
        raise ValueError(
            f"refusing to write {outside.height} rows outside the slice being replaced "
            f"({start}..{end_exclusive} exclusive, {len(symbols)} symbols), e.g. {example}"
        )


def read_slice(
    conn: psycopg.Connection,
    *,
    table: str,
    start: dt.date | None = None,
    end_exclusive: dt.date | None = None,
    symbols: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Read rows of `table` as a polars frame (COPY TO STDOUT, parsed by polars)."""
    # COPY takes no bind parameters: values are composed as literals, quoted by psycopg.
    conditions: list[sql.Composable] = [sql.SQL("true")]
    if start is not None:
        conditions.append(sql.SQL("day >= {}").format(sql.Literal(start)))
    if end_exclusive is not None:
        conditions.append(sql.SQL("day < {}").format(sql.Literal(end_exclusive)))
    if symbols is not None:
        conditions.append(sql.SQL("symbol = ANY({})").format(sql.Literal(list(symbols))))
    query = sql.SQL(
        "COPY (SELECT {cols} FROM {table} WHERE {where} ORDER BY symbol, day) TO STDOUT "
        "(FORMAT csv)"
    ).format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in CANDLE_COLUMNS),
        table=sql.Identifier(SCHEMA, table),
        where=sql.SQL(" AND ").join(conditions),
    )
    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            buffer.write(block)
    if buffer.tell() == 0:
        return pl.DataFrame(schema=CANDLE_SCHEMA)
    buffer.seek(0)
    # Postgres renders timestamptz in the session zone with an offset; polars reads the
    # offset and converts to UTC.
    raw = pl.read_csv(
        buffer,
        has_header=False,
        new_columns=list(CANDLE_COLUMNS),
        schema_overrides={
            **{
                k: v
                for k, v in CANDLE_SCHEMA.items()
                if k not in ("ts", "fetched_at", "adjusted", "provisional")
            },
            "ts": pl.String,
            "fetched_at": pl.String,
            "adjusted": pl.String,
            "provisional": pl.String,
        },
        infer_schema=False,
    )
    return (
        raw.with_columns(
            pl.col("ts", "fetched_at").str.to_datetime(
                "%Y-%m-%d %H:%M:%S%.f%#z", time_unit="us", time_zone="UTC"
            ),
            pl.col("adjusted", "provisional") == "t",
        )
        .select(list(CANDLE_COLUMNS))
        .cast(CANDLE_SCHEMA)
    )


def write_batch(
    conn: psycopg.Connection,
    table: str,
    batch: CandleBatch,
    *,
    on_commit_ready: Callable[[psycopg.Connection], None] | None = None,
) -> dict[str, int]:
    """The one write of candle rows: replace `batch.window` x `batch.symbols` of `table` with
    the batch's rows, atomically, and return counts of rows deleted, inserted, quarantined.

    In one transaction: check (and, on a store's first write, make) the store's source claim
    (`claim_source`: a batch of the other kind is refused with `MixedSourcesError` and nothing
    is written; a batch that replaces no slice is not checked), take the table's advisory
    lock, delete the slice, COPY the rows chunk by chunk (a spool's chunks are loaded one at a
    time), replace the slice's quarantined rows, and record every symbol's status (ok through
    the window's last day, or its failure). A bad chunk anywhere, or a crash, leaves the slice
    as it was. `on_commit_ready(conn)` runs last inside the transaction (the reliability tests
    hold a write open with it).
    """
    if table not in CANDLE_TABLES:
        raise ValueError(f"{table!r} is not a candle table ({', '.join(CANDLE_TABLES)})")
    target = sql.Identifier(SCHEMA, table)
    symbols = sorted(set(batch.symbols))
    start, end_exclusive = batch.window.first, batch.window.end_exclusive
    if isinstance(batch.candles, pl.DataFrame):
        _outside_slice(batch.candles, start, end_exclusive, symbols)  # before taking any lock
    with conn.transaction():
        # A batch that replaces no slice (every symbol failed, or none was asked for) writes
        # only statuses: no rows of any source, so there is nothing to claim or refuse. Such a
        # run's failures (a refused key, ...) are then reported as they are.
        if symbols and batch.source_family is not None:
            claim_source(conn, batch.source_family)
        conn.execute(table_lock_key(f"{SCHEMA}.{table}"))
        # This write counts its own rows (`_count_write`): the table's trigger leaves the
        # count alone for this transaction.
        conn.execute("SELECT set_config('marketdata.counted_write', 'on', true)")
        deleted = conn.execute(
            sql.SQL("DELETE FROM {} WHERE day >= %s AND day < %s AND symbol = ANY(%s)").format(
                target
            ),
            (start, end_exclusive, symbols),
        ).rowcount
        inserted = 0
        for chunk in batch.candle_frames():
            _outside_slice(chunk, start, end_exclusive, symbols)
            inserted += copy_frame(conn, target, chunk, CANDLE_COLUMNS)
        conn.execute(
            "DELETE FROM marketdata.rejected_candles WHERE asset = %s AND symbol = ANY(%s)"
            " AND day >= %s AND day < %s",
            (table, symbols, start, end_exclusive),
        )
        quarantined = copy_frame(
            conn,
            sql.Identifier(SCHEMA, "rejected_candles"),
            batch.rejected.filter(pl.col("symbol").is_in(symbols)),
            tuple(REJECTED_SCHEMA),
        )
        if symbols:
            record_success(conn, batch.asset_class, symbols, batch.window.last)
        if batch.failures:
            record_failures(conn, batch.asset_class, batch.failures)
        table_rows = _count_write(conn, table, inserted, deleted)
        if on_commit_ready is not None:
            on_commit_ready(conn)
    return {
        "deleted": deleted,
        "inserted": inserted,
        "quarantined": quarantined,
        "table_rows": table_rows,
    }


def stored_counts(
    conn: psycopg.Connection, table: str, window: CandleWindow, symbols: Sequence[str]
) -> dict[str, int]:
    """Rows stored per symbol of `symbols` in `window` (symbols with none are absent)."""
    if not symbols:
        return {}
    rows = conn.execute(
        sql.SQL(
            "SELECT symbol, count(*) FROM {} WHERE day BETWEEN %s AND %s"
            " AND symbol = ANY(%s) GROUP BY symbol"
        ).format(sql.Identifier(SCHEMA, table)),
        (window.first, window.last, list(symbols)),
    ).fetchall()
    return {symbol: count for symbol, count in rows}


def _count_write(conn: psycopg.Connection, table: str, inserted: int, deleted: int) -> int:
    """Move the table's row count by what a write changed (the table's lock serialises the
    writers) and return it; count the table only when its count is unknown (a change made
    outside `write_batch`, see migration 23)."""
    (rows,) = conn.execute(
        "UPDATE marketdata.candle_table_rows SET row_count = row_count + %s - %s"
        " WHERE table_name = %s RETURNING row_count",
        (inserted, deleted, table),
    ).fetchone()
    return _recounted(conn, table) if rows is None else int(rows)


def _recounted(conn: psycopg.Connection, table: str) -> int:
    (rows,) = conn.execute(
        sql.SQL(
            "UPDATE marketdata.candle_table_rows SET row_count = (SELECT count(*) FROM {})"
            " WHERE table_name = %s RETURNING row_count"
        ).format(sql.Identifier(SCHEMA, table)),
        (table,),
    ).fetchone()
    return int(rows)


def table_row_count(conn: psycopg.Connection, table: str) -> int:
    """Rows in the whole table (what the UI shows beside a run's slice): the count every
    `write_batch` keeps in `marketdata.candle_table_rows`, so no scan of the table, unless a
    change by other means left it unknown (then counted once, and kept)."""
    if table not in CANDLE_TABLES:
        raise ValueError(f"{table!r} is not a candle table ({', '.join(CANDLE_TABLES)})")
    (rows,) = conn.execute(
        "SELECT row_count FROM marketdata.candle_table_rows WHERE table_name = %s", (table,)
    ).fetchone()
    return _recounted(conn, table) if rows is None else int(rows)


@dataclass(frozen=True)
class SymbolSummary:
    """What one symbol has stored in a window."""

    symbol: str
    rows: int
    first: dt.date
    last: dt.date


def window_summary(
    conn: psycopg.Connection, table: str, window: CandleWindow
) -> list[SymbolSummary]:
    """Rows per symbol stored in `window`, with their first and last day."""
    if table not in CANDLE_TABLES:
        raise ValueError(f"{table!r} is not a candle table ({', '.join(CANDLE_TABLES)})")
    rows = conn.execute(
        sql.SQL(
            "SELECT symbol, count(*), min(day), max(day) FROM {} WHERE day BETWEEN %s AND %s"
            " GROUP BY symbol ORDER BY symbol"
        ).format(sql.Identifier(SCHEMA, table)),
        (window.first, window.last),
    ).fetchall()
    return [SymbolSummary(*row) for row in rows]
