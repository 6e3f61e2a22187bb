"""Queries into Arrow, then polars: the store's fast read path (the ADBC Postgres driver).

The driver reads a result with `COPY ... TO STDOUT (FORMAT binary)` and decodes it in C++
straight into Arrow arrays, so a result reaches polars without a Python object per value and
with the column types Postgres declared (double precision -> Float64, date -> Date,
timestamptz -> Datetime(us, UTC), bigint -> Int64). docs/benchmarks.md compares it with
ConnectorX and with a bare `psql COPY TO` CSV.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import polars as pl
from psycopg import sql

from marketdata_pipeline.lib.candles.schema import CANDLE_ASSET_NAMES, CANDLE_COLUMNS, CANDLE_SCHEMA
from marketdata_pipeline.lib.errors import ConfigError
from marketdata_pipeline.lib.settings import redact_url

#: Idle connections kept per (process, URL): the driver reads the server's type catalogue when
#: it connects (100-300 ms), far more than a cross-section's query, so connections are reused.
_idle: dict[tuple[int, str], list[Any]] = {}
_idle_lock = threading.Lock()
_MAX_IDLE = 2


def close_idle_connections() -> None:
    """Close the kept connections (at exit: the driver's finaliser fails noisily once the
    interpreter is tearing its modules down)."""
    with _idle_lock:
        kept = [conn for conns in _idle.values() for conn in conns]
        _idle.clear()
    for conn in kept:
        with contextlib.suppress(Exception):
            conn.close()


atexit.register(close_idle_connections)


def _connect(url: str) -> Any:
    # Imported here: the driver (and pyarrow) cost a noticeable import time that commands which
    # never read candles should not pay.
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc

    try:
        # Autocommit: a kept connection never sits idle inside a transaction (holding a snapshot).
        return adbc.connect(url, autocommit=True)
    except adbc_driver_manager.Error as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"cannot connect to Postgres at {redact_url(url)}: {reason}") from None


def _reuse(key: tuple[int, str]) -> Any | None:
    """A kept connection that still answers, or None."""
    while True:
        with _idle_lock:
            conn = _idle.get(key, []).pop() if _idle.get(key) else None
        if conn is None:
            return None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
            return conn
        except Exception:
            # The server restarted or dropped it: forget it and try the next one.
            with contextlib.suppress(Exception):
                conn.close()


@contextmanager
def adbc_connection(url: str) -> Iterator[Any]:
    """An ADBC (DB-API, autocommit) connection to `url`, reused across calls in this process;
    a failure to connect names the server, redacted."""
    key = (os.getpid(), url)  # a connection never crosses a fork
    conn = _reuse(key) or _connect(url)
    healthy = False
    try:
        yield conn
        healthy = True
    finally:
        with _idle_lock:
            pool = _idle.setdefault(key, [])
            keep = healthy and len(pool) < _MAX_IDLE
            if keep:
                pool.append(conn)
        if not keep:
            conn.close()


def _cast(frame: pl.DataFrame, schema: Mapping[str, pl.DataType] | None) -> pl.DataFrame:
    if schema is None:
        return frame
    # An empty result, or a computed column Postgres types loosely, still gets the documented
    # types; for the stored columns this is a no-op (the driver already gave these types).
    return frame.cast({name: dtype for name, dtype in schema.items() if name in frame.columns})


def _text(statement: str | sql.Composable) -> str:
    return statement if isinstance(statement, str) else statement.as_string()


def query_frame(
    url: str,
    statement: str | sql.Composable,
    *,
    schema: Mapping[str, pl.DataType] | None = None,
) -> pl.DataFrame:
    """The rows of `statement` as one polars frame.

    The statement carries its values inline (compose them with `psycopg.sql.Literal`): the
    driver reads a statement without bound parameters through `COPY ... TO STDOUT (FORMAT
    binary)`, about 1.5x faster than the prepared-statement path it takes with parameters.
    """
    with adbc_connection(url) as conn, conn.cursor() as cur:
        cur.execute(_text(statement))
        table = cur.fetch_arrow_table()
    return _cast(cast(pl.DataFrame, pl.from_arrow(table)), schema)


def query_batches(
    url: str,
    statement: str | sql.Composable,
    *,
    rows: int,
    schema: Mapping[str, pl.DataType] | None = None,
) -> Iterator[pl.DataFrame]:
    """The rows of `statement` as polars frames of about `rows` rows each, streamed.

    The driver hands over record batches as the server sends them; only the batches of one
    yielded frame are held at once, so a result larger than memory can be read through.
    """
    with adbc_connection(url) as conn, conn.cursor() as cur:
        cur.execute(_text(statement))
        reader = cur.fetch_record_batch()
        pending: list[pl.DataFrame] = []
        held = 0
        for batch in reader:
            if batch.num_rows == 0:
                continue
            part = cast(pl.DataFrame, pl.from_arrow(batch))
            pending.append(part)
            held += part.height
            while held >= rows:
                whole = pl.concat(pending, rechunk=False)
                yield _cast(whole.slice(0, rows), schema)
                rest = whole.slice(rows)
                pending, held = ([rest], rest.height) if rest.height else ([], 0)
        if held:
            yield _cast(pl.concat(pending), schema)


def read_candle_window(
    url: str,
    table: str,
    *,
    start: dt.date | None = None,
    end_exclusive: dt.date | None = None,
) -> pl.DataFrame:
    """Every column of `marketdata.<table>` for start <= day < end_exclusive (all days when
    None), every symbol, ordered by symbol and day, in the candle schema."""
    if table not in CANDLE_ASSET_NAMES:
        raise ValueError(f"{table!r} is not a candle table ({', '.join(CANDLE_ASSET_NAMES)})")
    statement = sql.SQL(
        "SELECT {columns} FROM {table} WHERE day >= {first} AND day < {end} ORDER BY symbol, day"
    ).format(
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in CANDLE_COLUMNS),
        table=sql.Identifier("marketdata", table),
        first=sql.Literal(start or dt.date.min),
        end=sql.Literal(end_exclusive or dt.date.max),
    )
    return query_frame(url, statement, schema=CANDLE_SCHEMA)
