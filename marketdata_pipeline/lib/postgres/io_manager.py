"""`PostgresCandleIOManager`: polars frames in and out of Postgres, one slice at a time.

A write replaces exactly the slice the run fetched, (partition window x symbols), in one
transaction: take a per-table advisory lock (so concurrent runs on overlapping slices serialise
instead of both inserting), delete the slice, bulk-load the new rows with `COPY ... FROM STDIN`
(CSV rendered by polars in Rust, never row-by-row INSERTs), quarantine rejects, record each
symbol's success, commit. A crash anywhere before the commit leaves the previous rows intact;
a rerun is idempotent; other symbols' rows on the same days are never touched.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import polars as pl
import psycopg
from psycopg import sql

from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.schema import (
    CANDLE_COLUMNS,
    CANDLE_SCHEMA,
    REJECTED_SCHEMA,
)
from marketdata_pipeline.lib.errors import MarketdataError
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.ddl import SCHEMA, candle_table_ddl
from marketdata_pipeline.lib.postgres.tracked_symbols import record_success

#: Rows rendered to CSV per COPY chunk: bounds the extra memory of a large write.
COPY_CHUNK_ROWS = 100_000


def _csv_chunks(frame: pl.DataFrame, columns: Sequence[str]) -> Iterator[bytes]:
    selected = frame.select(columns)
    for offset in range(0, selected.height, COPY_CHUNK_ROWS):
        buffer = io.BytesIO()
        selected.slice(offset, COPY_CHUNK_ROWS).write_csv(buffer, include_header=False)
        yield buffer.getvalue()


def copy_frame(
    conn: psycopg.Connection, table: sql.Composable, frame: pl.DataFrame, columns: Sequence[str]
) -> int:
    """Bulk-load `frame[columns]` into `table` with COPY (CSV); return the rows sent."""
    if frame.height == 0:
        return 0
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        table, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    # Render chunk n+1 (polars, in Rust, without the GIL) on another core while Postgres parses
    # chunk n: the rendering then hides behind the server's own work instead of adding to it.
    # At most two chunks exist at once, so memory stays bounded (docs/benchmarks.md).
    chunks = _csv_chunks(frame, columns)
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


def write_slice(
    conn: psycopg.Connection,
    *,
    table: str,
    candles: pl.DataFrame,
    start: dt.date,
    end_exclusive: dt.date,
    symbols: Sequence[str],
    rejected: pl.DataFrame | None = None,
    on_commit_ready: Callable[[psycopg.Connection], None] | None = None,
) -> dict[str, int]:
    """Replace (start <= day < end_exclusive) x symbols of `table` with `candles`, atomically.

    Runs in one transaction on `conn`; returns counts of rows deleted and inserted.
    """
    target = sql.Identifier(SCHEMA, table)
    symbols = sorted(set(symbols))
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
    with conn.transaction():
        conn.execute(candle_table_ddl(table))
        conn.execute(table_lock_key(f"{SCHEMA}.{table}"))
        deleted = conn.execute(
            sql.SQL("DELETE FROM {} WHERE day >= %s AND day < %s AND symbol = ANY(%s)").format(
                target
            ),
            (start, end_exclusive, symbols),
        ).rowcount
        inserted = copy_frame(conn, target, candles, CANDLE_COLUMNS)
        quarantined = 0
        if rejected is not None:
            conn.execute(
                "DELETE FROM marketdata.rejected_candles WHERE asset = %s AND symbol = ANY(%s)"
                " AND day >= %s AND day < %s",
                (table, symbols, start, end_exclusive),
            )
            quarantined = copy_frame(
                conn,
                sql.Identifier(SCHEMA, "rejected_candles"),
                rejected.filter(pl.col("symbol").is_in(symbols)),
                tuple(REJECTED_SCHEMA),
            )
        if on_commit_ready is not None:
            on_commit_ready(conn)
    return {"deleted": deleted, "inserted": inserted, "quarantined": quarantined}


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


class PostgresCandleIOManager(dg.ConfigurableIOManager):
    """Stores candle assets in `marketdata.<asset name>` and loads them back as polars frames.

    Accepts a `CandleBatch` (replaces partition window x the batch's symbols, quarantines its
    rejects and records per-symbol success in the same transaction) or a plain `pl.DataFrame`
    in the candle schema (replaces window x the symbols present in the frame).
    """

    database: PostgresDatabase

    def _window(
        self, context: dg.OutputContext | dg.InputContext
    ) -> tuple[dt.date | None, dt.date | None]:
        if not context.has_asset_partitions:
            return None, None
        window = context.asset_partitions_time_window
        return window.start.date(), window.end.date()

    def handle_output(self, context: dg.OutputContext, obj: CandleBatch | pl.DataFrame) -> None:
        """Replace the run's slice of the asset's table with `obj`, in one transaction."""
        table = context.asset_key.path[-1]
        start, end_exclusive = self._window(context)
        if isinstance(obj, CandleBatch):
            candles, rejected, symbols = obj.candles, obj.rejected, list(obj.symbols)
            if start is not None and (obj.start, obj.end) != (
                start,
                end_exclusive - dt.timedelta(days=1),
            ):
                raise ValueError(
                    f"batch window {obj.start}..{obj.end} differs from the partition window "
                    f"{start}..{end_exclusive} (exclusive)"
                )
            start, end_exclusive = obj.start, obj.end + dt.timedelta(days=1)
        elif isinstance(obj, pl.DataFrame):
            candles, rejected = obj, None
            symbols = obj.get_column("symbol").unique().to_list()
        else:
            raise TypeError(f"{table}: expected a CandleBatch or polars DataFrame, got {type(obj)}")
        if start is None:
            start, end_exclusive = dt.date.min, dt.date.max

        def _record(conn: psycopg.Connection) -> None:
            if isinstance(obj, CandleBatch) and obj.symbols:
                record_success(conn, obj.asset_class, list(obj.symbols), obj.end)

        began = time.perf_counter()
        try:
            with self.database.connect() as conn:
                counts = write_slice(
                    conn,
                    table=table,
                    candles=candles,
                    start=start,
                    end_exclusive=end_exclusive,
                    symbols=symbols,
                    rejected=rejected,
                    on_commit_ready=_record,
                )
        except psycopg.OperationalError as exc:
            # Postgres went away mid-write (stopped, crashed, network). Say what that means
            # for the data instead of surfacing a bare driver message.
            reason = " ".join(str(exc).split())
            raise MarketdataError(
                f"writing {SCHEMA}.{table} {start}..{end_exclusive} (exclusive) for "
                f"{len(symbols)} symbols failed: the database connection was lost ({reason}). "
                "The write is one transaction: the slice keeps its previous rows (or, only if "
                "the commit itself got through, all of the new ones); rerun to fill it."
            ) from exc
        seconds = time.perf_counter() - began
        context.log.info(
            f"{SCHEMA}.{table}: replaced {counts['deleted']} rows with {counts['inserted']} "
            f"for {len(symbols)} symbols, {start}..{end_exclusive} (exclusive), "
            f"{counts['quarantined']} quarantined, in {seconds:.2f}s"
        )
        context.add_output_metadata(
            {
                "dagster/table_name": f"{SCHEMA}.{table}",
                "rows_inserted": counts["inserted"],
                "rows_replaced": counts["deleted"],
                "rows_quarantined": counts["quarantined"],
                "write_seconds": round(seconds, 3),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        """The upstream asset's rows for the downstream partition window, all symbols."""
        table = context.asset_key.path[-1]
        start, end_exclusive = self._window(context)
        with self.database.connect() as conn:
            return read_slice(conn, table=table, start=start, end_exclusive=end_exclusive)
