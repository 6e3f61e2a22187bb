"""The Postgres IO manager on a real server: exact round trips, slice replacement, concurrency."""

import datetime as dt
import threading

import dagster as dg
import polars as pl
import psycopg
import pytest

from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.schema import CANDLE_SCHEMA
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.postgres.io_manager import (
    PostgresCandleIOManager,
    read_slice,
)
from marketdata_pipeline.lib.symbols import AssetClass
from marketdata_pipeline_tests.helpers import (
    crypto_daily_candles,
    query,
    range_tags,
    read_table,
    store_rows,
)

TABLE = "crypto_daily_candles"


def candles(symbols: list[str], start: dt.date, days: int, *, seed: float = 0.0) -> pl.DataFrame:
    """Synthetic candles in the candle schema (fractional volume, some null vwap/n)."""
    rows = []
    fetched = dt.datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    for s_index, symbol in enumerate(symbols):
        for d in range(days):
            day = start + dt.timedelta(days=d)
            base = 100.0 + s_index * 10 + d * 0.1 + seed
            rows.append(
                {
                    "symbol": symbol,
                    "day": day,
                    "ts": dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC),
                    "open": base,
                    "high": base + 1.123456789012,
                    "low": base - 0.987654321098,
                    "close": base + 0.1 / 3,
                    "volume": 1234.5678901234 + d / 7,
                    "vwap": None if d % 5 == 0 else base + 0.01,
                    "transactions": None if d % 4 == 0 else 10_000_000_000 + d,
                    "adjusted": True,
                    "provisional": d == days - 1,
                    "source": "polygon:range",
                    "fetched_at": fetched,
                }
            )
    return pl.DataFrame(rows, schema=CANDLE_SCHEMA)


def write(url: str, frame: pl.DataFrame, start: dt.date, end_exclusive: dt.date, symbols) -> dict:
    with psycopg.connect(url) as conn:
        return store_rows(
            conn,
            TABLE,
            frame,
            start=start,
            end_exclusive=end_exclusive,
            symbols=symbols,
        )


def test_round_trip_is_exact_including_fractional_volume_and_nulls(database_url):
    frame = candles(["BTCUSD", "ETHUSD"], dt.date(2024, 1, 1), 20)
    write(database_url, frame, dt.date(2024, 1, 1), dt.date(2024, 1, 21), ["BTCUSD", "ETHUSD"])
    assert read_table(database_url, TABLE).equals(frame)


def test_a_write_replaces_only_its_window_and_symbols(database_url):
    start = dt.date(2024, 1, 1)
    write(
        database_url,
        candles(["BTCUSD", "ETHUSD"], start, 30),
        start,
        dt.date(2024, 1, 31),
        ["BTCUSD", "ETHUSD"],
    )
    # Replace BTCUSD for Jan 10..19 with new values and one day fewer.
    window = candles(["BTCUSD"], dt.date(2024, 1, 10), 9, seed=50.0)
    counts = write(database_url, window, dt.date(2024, 1, 10), dt.date(2024, 1, 20), ["BTCUSD"])
    assert counts == {"deleted": 10, "inserted": 9, "quarantined": 0, "table_rows": 59}
    stored = read_table(database_url, TABLE)
    eth = stored.filter(pl.col("symbol") == "ETHUSD")
    assert eth.equals(candles(["ETHUSD"], start, 30, seed=10.0))  # untouched
    btc = stored.filter(pl.col("symbol") == "BTCUSD")
    assert btc.height == 29
    assert btc.filter(pl.col("day").is_between(dt.date(2024, 1, 10), dt.date(2024, 1, 18))).equals(
        window
    )
    assert dt.date(2024, 1, 19) not in btc.get_column("day").to_list()


def test_rows_outside_the_replaced_slice_are_refused_and_nothing_changes(database_url):
    start = dt.date(2024, 1, 1)
    write(database_url, candles(["BTCUSD"], start, 5), start, dt.date(2024, 1, 6), ["BTCUSD"])
    before = read_table(database_url, TABLE)
    with pytest.raises(ValueError, match="outside the slice"):
        write(database_url, candles(["BTCUSD"], start, 10), start, dt.date(2024, 1, 6), ["BTCUSD"])
    assert read_table(database_url, TABLE).equals(before)


def test_concurrent_overlapping_writers_end_with_one_clean_copy(database_url):
    start, end = dt.date(2024, 1, 1), dt.date(2024, 3, 1)
    symbols = [f"C{i}USD" for i in range(20)]
    frame = candles(symbols, start, (end - start).days)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer() -> None:
        try:
            barrier.wait()
            for _ in range(3):
                write(database_url, frame, start, end, symbols)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = read_table(database_url, TABLE)
    assert stored.equals(frame.sort("symbol", "day"))
    assert query(database_url, f"SELECT count(*) FROM marketdata.{TABLE}")[0][0] == frame.height


def test_io_manager_loads_the_downstream_window_back_as_polars(database, database_url):
    """A downstream asset receives the upstream window (all symbols) as a polars frame."""
    frame = candles(["BTCUSD", "ETHUSD"], dt.date(2024, 1, 1), 10)

    @dg.asset(
        name=TABLE,
        partitions_def=crypto_daily_candles.partitions_def,
        io_manager_key="candle_io_manager",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def upstream() -> CandleBatch:
        return CandleBatch(
            AssetClass.CRYPTO,
            CandleWindow(dt.date(2024, 1, 1), dt.date(2024, 1, 10)),
            ("BTCUSD", "ETHUSD"),
            "polygon",
            frame,
        )

    seen: dict[str, pl.DataFrame] = {}

    @dg.asset(
        partitions_def=crypto_daily_candles.partitions_def,
        ins={"candles": dg.AssetIn(key=dg.AssetKey(TABLE), input_manager_key="candle_io_manager")},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def downstream(candles: pl.DataFrame) -> None:
        seen["frame"] = candles

    result = dg.materialize(
        [upstream, downstream],
        resources={"candle_io_manager": PostgresCandleIOManager(database=database)},
        tags=range_tags(dt.date(2024, 1, 1), dt.date(2024, 1, 10), AssetClass.CRYPTO),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    assert seen["frame"].equals(frame)
    with psycopg.connect(database_url) as conn:
        part = read_slice(
            conn, table=TABLE, start=dt.date(2024, 1, 3), end_exclusive=dt.date(2024, 1, 5)
        )
    assert part.get_column("day").unique().sort().to_list() == [
        dt.date(2024, 1, 3),
        dt.date(2024, 1, 4),
    ]


def test_migrating_again_never_waits_for_a_write_in_flight(database_url):
    """Every process migrates when it first connects; with the schema current that must take
    no table lock, or it would queue behind (and deadlock with) a run writing its slice."""
    from marketdata_pipeline.lib.postgres.ddl import migrate

    with psycopg.connect(database_url) as writer, psycopg.connect(database_url) as other:
        # A write in flight: row-exclusive locks on the tables a run writes, not committed.
        writer.execute("DELETE FROM marketdata.stock_daily_candles WHERE false")
        writer.execute("DELETE FROM marketdata.rejected_candles WHERE false")
        other.execute("SET lock_timeout = '2s'")
        assert migrate(other) == []  # no LockNotAvailable: nothing was altered or re-indexed
        writer.rollback()
