"""Benchmark 1, ingest: the IO manager's write path against Postgres's own bulk load.

- **Anchor**: a bare `COPY ... FROM STDIN (FORMAT csv)` of the same rows, already rendered to
  CSV, into an identically keyed empty table on the same server, in one transaction. This is
  what the server itself can ingest; nothing on the client side is counted.
- **Measured**: `PostgresCandleIOManager.handle_output` with a `CandleBatch` of the same rows into
  the empty `marketdata.stock_daily_candles`: connection, advisory lock, slice delete, CSV
  rendering, COPY, per-symbol success records and commit, all timed.
- **Also**: row-by-row INSERTs through `executemany` on a sample, scaled up linearly: psycopg 3
  (which pipelines executemany) and psycopg 2 (one round trip per row, the classic pattern).

Runs alternate anchor and IO manager and keep each one's best, so a burst of load from something
else on the machine does not land on one side only. Target: IO manager <= 1.25x bare COPY.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io

import dagster as dg
import polars as pl
import psycopg
from psycopg import sql

from bench.common import BenchPostgres, Figure, Timer, emit, module_main, postgres
from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.schema import CANDLE_COLUMNS, CANDLE_SCHEMA
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.symbols import AssetClass
from polygon_simulator import market

FULL = {"rows": 1_000_000, "executemany_rows": 50_000, "psycopg2_rows": 50_000, "repeats": 3}
SMOKE = {"rows": 3_000, "executemany_rows": 300, "psycopg2_rows": 300, "repeats": 1}
TARGET_RATIO = 1.25
EXECUTEMANY_TARGET = 20.0
_FIRST_DAY = dt.date(2000, 1, 3)


def candle_frame(rows: int, bars_per_symbol: int = 2_500) -> pl.DataFrame:
    """`rows` realistic normalised candles: the simulator's prices for consecutive sessions."""
    n_symbols = -(-rows // bars_per_symbol)
    fetched_at = dt.datetime.now(dt.UTC)
    last_day = _FIRST_DAY + dt.timedelta(days=bars_per_symbol * 2)
    frames = []
    for ticker in market.stock_universe(n_symbols):
        bars = market.bars(ticker, _FIRST_DAY, last_day)
        n = min(bars_per_symbol, rows - bars_per_symbol * len(frames))
        frames.append(
            pl.DataFrame(
                {
                    "symbol": [ticker] * n,
                    "day": bars["day"][:n],
                    "t": bars["t"][:n],
                    "open": bars["o"][:n],
                    "high": bars["h"][:n],
                    "low": bars["l"][:n],
                    "close": bars["c"][:n],
                    "volume": bars["v"][:n],
                    "vwap": bars["vw"][:n],
                    "transactions": bars["n"][:n],
                }
            )
        )
    return (
        pl.concat(frames)
        .with_columns(
            day=pl.col("day").cast(pl.Date),
            ts=pl.from_epoch("t", time_unit="ms").dt.replace_time_zone("UTC"),
            adjusted=pl.lit(True),
            provisional=pl.lit(False),
            source=pl.lit("polygon:range"),
            fetched_at=pl.lit(fetched_at),
            vendor_t=pl.col("t"),
        )
        .select(CANDLE_COLUMNS)
        .cast(CANDLE_SCHEMA)
        .rechunk()
    )


def _copy_sql(table: sql.Composable) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        table, sql.SQL(", ").join(sql.Identifier(c) for c in CANDLE_COLUMNS)
    )


def _reset(url: str, *tables: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(table)))
        conn.execute("DELETE FROM marketdata.tracked_symbols")
        # Start each timed write from the same state: no pending dirty pages to flush.
        conn.execute("CHECKPOINT")


def bare_copy(url: str, csv_bytes: bytes, table: str) -> float:
    """Seconds for COPY of pre-rendered CSV into `table`, committed."""
    statement = _copy_sql(sql.SQL(table))
    view = memoryview(csv_bytes)
    with (
        psycopg.connect(url, autocommit=True) as conn,
        Timer() as timer,
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(statement) as copy,
    ):
        for offset in range(0, len(view), 1 << 20):
            copy.write(view[offset : offset + (1 << 20)])
    return timer.seconds


def io_manager_write(url: str, frame: pl.DataFrame) -> float:
    """Seconds for `PostgresCandleIOManager.handle_output` of the rows, committed."""
    symbols = tuple(frame.get_column("symbol").unique(maintain_order=True).to_list())
    days = frame.get_column("day")
    batch = CandleBatch(
        asset_class=AssetClass.STOCK,
        window=CandleWindow(days.min(), days.max()),
        symbols=symbols,
        source_family="polygon",
        candles=frame,
    )
    manager = PostgresCandleIOManager(database=PostgresDatabase(url=url))
    # The context's console logger would print the IO manager's summary line on every pass.
    with contextlib.redirect_stderr(io.StringIO()):
        context = dg.build_output_context(asset_key=dg.AssetKey("stock_daily_candles"))
        with Timer() as timer:
            manager.handle_output(context, batch)
    return timer.seconds


def executemany_psycopg3(url: str, frame: pl.DataFrame, table: str) -> float:
    """Seconds for psycopg 3 `executemany` INSERT of the rows (pipelined by psycopg)."""
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.SQL(table),
        sql.SQL(", ").join(sql.Identifier(c) for c in CANDLE_COLUMNS),
        sql.SQL(", ").join(sql.Placeholder() * len(CANDLE_COLUMNS)),
    )
    with psycopg.connect(url) as conn, Timer() as timer:
        with conn.cursor() as cur:
            cur.executemany(statement, frame.iter_rows())
        conn.commit()
    return timer.seconds


def executemany_psycopg2(url: str, frame: pl.DataFrame, table: str) -> float:
    """Seconds for psycopg 2 `executemany` INSERT of the rows (a round trip per row)."""
    import psycopg2

    columns = ", ".join(CANDLE_COLUMNS)
    placeholders = ", ".join(["%s"] * len(CANDLE_COLUMNS))
    conn = psycopg2.connect(url)
    try:
        with Timer() as timer:
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", frame.iter_rows()
                )
            conn.commit()
    finally:
        conn.close()
    return timer.seconds


def run(
    *,
    pg: BenchPostgres | None = None,
    rows: int = FULL["rows"],
    executemany_rows: int = FULL["executemany_rows"],
    psycopg2_rows: int = FULL["psycopg2_rows"],
    repeats: int = FULL["repeats"],
) -> list[Figure]:
    """Measure and print the ingest figures; return them."""
    figures: list[Figure] = []
    frame = candle_frame(rows)
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False)
    csv_bytes = buffer.getvalue()
    anchor_table = "public.copy_anchor"
    target = "marketdata.stock_daily_candles"
    with postgres(pg) as server, server.temporary_database("ingest") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {anchor_table} (LIKE {target} INCLUDING ALL)")
        copy_times, io_times = [], []
        for _ in range(repeats):
            _reset(url, anchor_table, target)
            copy_times.append(bare_copy(url, csv_bytes, anchor_table))
            _reset(url, anchor_table, target)
            io_times.append(io_manager_write(url, frame))
        with psycopg.connect(url) as conn:
            stored = conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
        if stored != frame.height:
            raise RuntimeError(f"IO manager stored {stored} rows, expected {frame.height}")
        copy_s, io_s = min(copy_times), min(io_times)
        size = f"{len(csv_bytes) / 1e6:.0f} MB as CSV"
        emit(Figure("ingest.rows", frame.height, "rows", note=size), figures)
        speed = f"{frame.height / copy_s:,.0f} rows/s, best of {repeats}"
        emit(Figure("ingest.bare_copy", copy_s, "s", note=speed), figures)
        ratio = io_s / copy_s
        emit(
            Figure(
                "ingest.io_manager",
                io_s,
                "s",
                ratio=ratio,
                anchor="bare COPY",
                target=f"<= {TARGET_RATIO}x",
                met=ratio <= TARGET_RATIO,
                note=f"{frame.height / io_s:,.0f} rows/s, best of {repeats}",
            ),
            figures,
        )
        for name, fn, n in (
            ("executemany_psycopg3", executemany_psycopg3, executemany_rows),
            ("executemany_psycopg2", executemany_psycopg2, psycopg2_rows),
        ):
            _reset(url, anchor_table, target)
            seconds = fn(url, frame.head(n), anchor_table)
            scaled = seconds * frame.height / n
            speedup = scaled / io_s
            emit(
                Figure(
                    f"ingest.{name}",
                    scaled,
                    "s",
                    ratio=speedup,
                    anchor="IO manager",
                    phrase="IO manager {ratio:.1f}x faster",
                    target=f">= {EXECUTEMANY_TARGET:.0f}x",
                    met=speedup >= EXECUTEMANY_TARGET,
                    note=f"{n:,} rows took {seconds:.2f} s, scaled x{frame.height / n:.0f}",
                ),
                figures,
            )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.ingest [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv)


if __name__ == "__main__":
    main()
