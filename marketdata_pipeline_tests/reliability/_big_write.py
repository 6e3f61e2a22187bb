"""A large candle slice written through the real IO manager (in process or as a subprocess).

`python -m marketdata_pipeline_tests.reliability._big_write URL SYMBOLS CLOSE` writes
SYMBOLS x every day of `WINDOW` (366 days) into `marketdata.crypto_daily_candles` through
`PostgresCandleIOManager.handle_output`, exactly as a Dagster run over those partitions would.
The database tests kill it with SIGKILL, or stop Postgres under it, in the middle of the COPY.
"""

from __future__ import annotations

import datetime as dt
import sys

import dagster as dg
import polars as pl

from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.schema import CANDLE_SCHEMA, UTC_DATETIME
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.symbols import AssetClass
from marketdata_pipeline_tests.helpers import START_DATE, stock_daily_candles

TABLE = "crypto_daily_candles"
#: A year of daily partitions from the first one (the suite sets MARKETDATA_START_DATE).
WINDOW = (START_DATE, START_DATE + dt.timedelta(days=365))


def symbols(n: int) -> list[str]:
    """`n` distinct, valid crypto symbols."""
    return [f"C{i:04d}USD" for i in range(n)]


def big_frame(n_symbols: int, close: float, window: tuple[dt.date, dt.date] = WINDOW):
    """n_symbols x every day of `window`, in the candle schema; `close` tags the write."""
    start, end = window
    days = pl.DataFrame({"day": pl.date_range(start, end, eager=True)})
    frame = (
        pl.DataFrame({"symbol": symbols(n_symbols)})
        .join(days, how="cross")
        .with_columns(
            ts=pl.col("day").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            open=pl.lit(1.0),
            high=pl.lit(close + 1.0),
            low=pl.lit(0.5),
            close=pl.lit(close),
            volume=pl.int_range(pl.len()).cast(pl.Float64) / 7.0,
            vwap=pl.lit(None, pl.Float64),
            transactions=pl.int_range(pl.len()),
            adjusted=pl.lit(True),
            provisional=pl.lit(False),
            source=pl.lit(f"reliability-test:{close}"),
            fetched_at=pl.lit(dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dtype=UTC_DATETIME),
            vendor_t=pl.lit(None, pl.Int64),
        )
    )
    return frame.select(list(CANDLE_SCHEMA)).cast(CANDLE_SCHEMA)


def write_through_io_manager(
    database_url: str, frame: pl.DataFrame, window: tuple[dt.date, dt.date] = WINDOW
) -> None:
    """Hand `frame` to the IO manager as the output of the partitions `window`."""
    start, end = window
    batch = CandleBatch(
        asset_class=AssetClass.CRYPTO,
        window=CandleWindow(start, end),
        symbols=tuple(frame.get_column("symbol").unique().sort()),
        source_family="polygon",
        candles=frame,
    )
    io_manager = PostgresCandleIOManager(database=PostgresDatabase(url=database_url))
    # As a context manager, the context's own resources are torn down here and not by the
    # garbage collector at some later point.
    with dg.build_output_context(
        asset_key=TABLE,
        asset_partitions_def=stock_daily_candles.partitions_def,
        asset_partition_key_range=dg.PartitionKeyRange(start.isoformat(), end.isoformat()),
    ) as context:
        io_manager.handle_output(context, batch)


if __name__ == "__main__":
    url, n, close = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    frame = big_frame(n, close)
    print(f"writing {frame.height} rows", flush=True)
    write_through_io_manager(url, frame)
    print("committed", flush=True)
