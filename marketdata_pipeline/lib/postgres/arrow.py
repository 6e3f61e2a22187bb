"""Queries into Arrow, then polars: the store's fast read path (the ADBC Postgres driver).

The driver reads a result with `COPY ... TO STDOUT (FORMAT binary)` and decodes it in C++
straight into Arrow arrays, so a result reaches polars without a Python object per value and
with the column types Postgres declared (double precision -> Float64, date -> Date,
timestamptz -> Datetime(us, UTC), bigint -> Int64). docs/benchmarks.md compares it with
ConnectorX and with a bare `psql COPY TO` CSV.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import polars as pl

from marketdata_pipeline.lib.candles.schema import CANDLE_ASSET_NAMES, CANDLE_COLUMNS, CANDLE_SCHEMA
from marketdata_pipeline.lib.errors import ConfigError
from marketdata_pipeline.lib.settings import redact_url


@contextmanager
def adbc_connection(url: str) -> Iterator[Any]:
    """An ADBC (DB-API) connection to `url`; a failure to connect names the server, redacted."""
    # Imported here: the driver (and pyarrow) cost a noticeable import time that commands which
    # never read candles should not pay.
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc

    try:
        conn = adbc.connect(url)
    except adbc_driver_manager.Error as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"cannot connect to Postgres at {redact_url(url)}: {reason}") from None
    try:
        yield conn
    finally:
        conn.close()


def _cast(frame: pl.DataFrame, schema: Mapping[str, pl.DataType] | None) -> pl.DataFrame:
    if schema is None:
        return frame
    # An empty result, or a computed column Postgres types loosely, still gets the documented
    # types; for the stored columns this is a no-op (the driver already gave these types).
    return frame.cast({name: dtype for name, dtype in schema.items() if name in frame.columns})


def query_frame(
    url: str,
    statement: str,
    parameters: Sequence[Any] = (),
    *,
    schema: Mapping[str, pl.DataType] | None = None,
) -> pl.DataFrame:
    """The rows of `statement` (with `$1`-style `parameters`) as one polars frame."""
    with adbc_connection(url) as conn, conn.cursor() as cur:
        cur.execute(statement, parameters=tuple(parameters) or None)
        table = cur.fetch_arrow_table()
    return _cast(cast(pl.DataFrame, pl.from_arrow(table)), schema)


def query_batches(
    url: str,
    statement: str,
    parameters: Sequence[Any] = (),
    *,
    rows: int,
    schema: Mapping[str, pl.DataType] | None = None,
) -> Iterator[pl.DataFrame]:
    """The rows of `statement` as polars frames of about `rows` rows each, streamed.

    The driver hands over record batches as the server sends them; only the batches of one
    yielded frame are held at once, so a result larger than memory can be read through.
    """
    with adbc_connection(url) as conn, conn.cursor() as cur:
        cur.execute(statement, parameters=tuple(parameters) or None)
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
    first = start or dt.date.min
    end = end_exclusive or dt.date.max
    return query_frame(
        url,
        f"SELECT {', '.join(CANDLE_COLUMNS)} FROM marketdata.{table}"
        " WHERE day >= $1 AND day < $2 ORDER BY symbol, day",
        (first, end),
        schema=CANDLE_SCHEMA,
    )
