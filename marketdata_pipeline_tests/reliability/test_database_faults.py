"""Database faults: Postgres stopped before and during a run, the writer killed mid-COPY, and
concurrent runs on overlapping slices.

The promise under test (DESIGN.md section 2, Persistence): a write replaces (window x symbols)
in one transaction, so a crash anywhere before the commit leaves the previous rows intact, a
rerun is idempotent, and concurrent writers serialise instead of duplicating or losing rows.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dagster as dg
import pgserver
import polars as pl
import psycopg
import pytest
from pgserver import _commands as pg_commands

from marketdata_pipeline.lib.candles.schema import CANDLE_COLUMNS
from marketdata_pipeline.lib.errors import MarketdataError
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.symbols import parse_symbol
from marketdata_pipeline_tests.helpers import (
    materialise,
    read_table,
    stock_daily_candles,
    store_rows,
)
from marketdata_pipeline_tests.reliability import _big_write
from marketdata_pipeline_tests.reliability.conftest import REPO, symbol_status, track
from marketdata_pipeline_tests.resources import make_polygon

SYMBOLS = ["AAPL", "MSFT"]
WEEK1 = (dt.date(2024, 3, 4), dt.date(2024, 3, 8))
WEEK2 = (dt.date(2024, 3, 11), dt.date(2024, 3, 15))


# -- a Postgres server of our own, so it can be stopped without hurting the other tests --------


class OwnPostgres:
    """A dedicated pgserver instance that a test may stop (immediate: like a crash) and restart."""

    def __init__(self, pgdata: Path) -> None:
        self.server = pgserver.get_server(pgdata, cleanup_mode="stop")
        with psycopg.connect(self.server.get_uri("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE candles")
        with psycopg.connect(self.url) as conn:
            migrate(conn)

    @property
    def url(self) -> str:
        return self.server.get_uri("candles")

    def stop(self) -> None:
        """`pg_ctl stop -m immediate`: every backend dies at once, nothing is flushed politely."""
        pg_commands.pg_ctl(
            ["-m", "immediate", "-w", "stop"],
            pgdata=self.server.pgdata,
            user=self.server.system_user,
        )

    def start(self) -> None:
        """Start it again on the same data directory (crash recovery replays the WAL)."""
        with self.server._lock:
            self.server.ensure_postgres_running()

    def is_running(self) -> bool:
        try:
            psycopg.connect(self.url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True


@pytest.fixture(scope="module")
def own_pg():
    # Not under pytest's basetemp: a concurrent pytest session may prune that directory.
    root = Path(tempfile.mkdtemp(prefix="md-rel-pg-"))
    pg = OwnPostgres(root / "data")
    yield pg
    if not pg.is_running():
        pg.start()
    pg.server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_db(own_pg: OwnPostgres):
    """The dedicated server, running, with empty candle and symbol tables and no source claim
    (an earlier test's simulated rows claimed it)."""
    if not own_pg.is_running():
        own_pg.start()
    with psycopg.connect(own_pg.url) as conn:
        conn.execute(
            "TRUNCATE marketdata.stock_daily_candles, marketdata.crypto_daily_candles,"
            " marketdata.tracked_symbols, marketdata.rejected_candles, marketdata.store_info"
        )
    return own_pg


def _resources(polygon, url: str) -> dict:
    database = PostgresDatabase(url=url)
    return {
        "polygon": polygon,
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }


def _failure_messages(result: dg.ExecuteInProcessResult) -> str:
    parts = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error is not None:
                parts.append(error.message)
                error = error.cause
    return "\n".join(parts)


def _reference(sim, start: dt.date, end: dt.date, symbols=tuple(SYMBOLS)) -> pl.DataFrame:
    """What a clean, fault-free fetch of (start..end x symbols) returns (fetched_at dropped)."""
    client = make_polygon(sim).get_client()
    frames = [client.fetch_range(parse_symbol(s), start, end) for s in symbols]
    return pl.concat(frames).select(CANDLE_COLUMNS).drop("fetched_at").sort("symbol", "day")


def _copy_in_progress(url: str, table: str) -> int:
    """Rows a running `COPY ... FROM STDIN` into `table` has taken so far (0: none running)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT p.tuples_processed FROM pg_stat_progress_copy p"
            " WHERE p.relid = %s::regclass AND p.command = 'COPY FROM'",
            (f"marketdata.{table}",),
        ).fetchone()
    return row[0] if row else 0


def _wait_for_copy(url: str, table: str, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (rows := _copy_in_progress(url, table)) > 0:
            return rows
        time.sleep(0.01)
    raise AssertionError(f"no COPY into {table} seen within {timeout} s")


# -- Postgres stopped before the run ----------------------------------------------------------


def test_postgres_down_before_the_run_fails_clearly_and_a_rerun_fills_the_slice(sim, own_db):
    track(own_db.url, SYMBOLS)
    resources = _resources(make_polygon(sim), own_db.url)
    assert materialise(*WEEK1, resources, assets=[stock_daily_candles]).success
    before = read_table(own_db.url, "stock_daily_candles")
    sim.reset()

    own_db.stop()
    result = materialise(*WEEK2, resources, assets=[stock_daily_candles])
    assert not result.success
    message = _failure_messages(result)
    assert "cannot connect to Postgres at postgresql://" in message
    # Nothing was fetched for a run that could not have stored it.
    assert sim.stats()["requests"] == 0

    own_db.start()
    assert read_table(own_db.url, "stock_daily_candles").equals(before)
    assert materialise(*WEEK2, resources, assets=[stock_daily_candles]).success
    stored = read_table(own_db.url, "stock_daily_candles").drop("fetched_at")
    expected = _reference(sim, WEEK1[0], WEEK2[1])
    assert stored.equals(expected)  # both weeks, each row once
    assert {s for s, _ in symbol_status(own_db.url).values()} == {"ok"}


# -- Postgres stopped in the middle of the bulk write -----------------------------------------


def test_postgres_stopped_mid_copy_keeps_the_previous_rows_and_a_rerun_is_exact(own_db):
    n_symbols = 800  # ~290k rows: the COPY lasts long enough to be interrupted
    earlier = _big_write.big_frame(150, close=1.0)
    _big_write.write_through_io_manager(own_db.url, earlier)
    new = _big_write.big_frame(n_symbols, close=2.0)

    # The stopper watches from a thread; the write runs here (Dagster objects are not
    # thread safe).
    copied: list[int] = []

    def stop_mid_copy() -> None:
        copied.append(_wait_for_copy(own_db.url, _big_write.TABLE))
        own_db.stop()

    stopper = threading.Thread(target=stop_mid_copy)
    stopper.start()
    with pytest.raises(MarketdataError) as raised:
        _big_write.write_through_io_manager(own_db.url, new)
    stopper.join(60)
    error = raised.value

    assert 0 < copied[0] < new.height, "the stop must land during the COPY"
    assert "the database connection was lost" in str(error)
    first, last = _big_write.WINDOW
    window = f"{first}..{last} for {n_symbols} symbols"
    assert f"marketdata.crypto_daily_candles {window}" in str(error)
    assert "previous rows" in str(error)

    own_db.start()
    # Crash recovery: exactly the earlier rows, not one row of the interrupted slice.
    assert read_table(own_db.url, _big_write.TABLE).equals(earlier)
    _big_write.write_through_io_manager(own_db.url, new)
    assert read_table(own_db.url, _big_write.TABLE).equals(new)


# -- the writing process killed with SIGKILL mid-COPY -----------------------------------------


def test_writer_killed_with_sigkill_mid_copy_leaves_no_partial_slice(database_url):
    earlier = _big_write.big_frame(150, close=1.0)
    _big_write.write_through_io_manager(database_url, earlier)

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marketdata_pipeline_tests.reliability._big_write",
            database_url,
            "200",
            "3.0",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_copy(database_url, _big_write.TABLE)
        process.send_signal(signal.SIGKILL)
        stdout, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert "committed" not in stdout

    # The server notices the dead client, rolls back and releases the advisory lock.
    deadline = time.monotonic() + 30
    while _copy_in_progress(database_url, _big_write.TABLE) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read_table(database_url, _big_write.TABLE).equals(earlier)
    with psycopg.connect(database_url) as conn:
        locks = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
    assert locks == (0,)

    rerun = _big_write.big_frame(800, close=3.0)
    _big_write.write_through_io_manager(database_url, rerun)
    assert read_table(database_url, _big_write.TABLE).equals(rerun)


# -- two writers on overlapping slices at once -------------------------------------------------


def test_overlapping_writes_at_once_serialise_to_one_clean_result(sim, database_url):
    """Writer A holds its transaction open (after its COPY, before its commit) while writer B
    replaces an overlapping slice. B must wait for A and then replace A's rows; without the
    per-table advisory lock B's DELETE cannot see A's uncommitted rows and its COPY dies on the
    primary key (or, without the key, leaves duplicates)."""
    start, end = dt.date(2024, 3, 1), dt.date(2024, 3, 29)
    reference = (
        _reference(sim, start, end)
        .with_columns(
            fetched_at=pl.lit(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)).dt.cast_time_unit("us")
        )
        .select(CANDLE_COLUMNS)
    )
    a_window = (dt.date(2024, 3, 1), dt.date(2024, 3, 21))
    b_window = (dt.date(2024, 3, 11), dt.date(2024, 3, 30))

    def part(window, symbols):
        return reference.filter(
            pl.col("day").is_between(window[0], window[1] - dt.timedelta(days=1))
            & pl.col("symbol").is_in(symbols)
        )

    a_holding = threading.Event()
    outcomes: dict[str, object] = {}

    def hold_open(conn) -> None:
        a_holding.set()
        time.sleep(0.6)

    def writer(name, window, symbols, hook=None) -> None:
        try:
            with psycopg.connect(database_url) as conn:
                outcomes[name] = store_rows(
                    conn,
                    "stock_daily_candles",
                    part(window, symbols),
                    start=window[0],
                    end_exclusive=window[1],
                    symbols=symbols,
                    on_commit_ready=hook,
                )
        except Exception as exc:
            outcomes[name] = exc

    a = threading.Thread(target=writer, args=("A", a_window, ["AAPL", "MSFT"], hold_open))
    b = threading.Thread(target=writer, args=("B", b_window, ["MSFT", "AAPL"]))
    a.start()
    assert a_holding.wait(30)
    b.start()
    a.join(30)
    b.join(30)

    assert isinstance(outcomes["A"], dict), outcomes["A"]
    assert isinstance(outcomes["B"], dict), outcomes["B"]
    # B ran after A committed, so it saw and replaced A's rows in the overlap.
    assert outcomes["B"]["deleted"] == part((b_window[0], a_window[1]), SYMBOLS).height
    assert read_table(database_url, "stock_daily_candles").equals(reference)


def test_two_runs_on_overlapping_windows_at_once_equal_one_clean_run(sim, database_url):
    # Two processes (real concurrent runs are separate processes), started together; slow
    # API replies make them fetch, then write, at about the same time.
    sim.configure(latency_seconds=0.3)
    symbols = ["AAPL", "MSFT", "NVDA"]
    windows = [("2024-03-01", "2024-03-20"), ("2024-03-11", "2024-03-29")]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "marketdata_pipeline_tests.reliability._run_window",
                database_url,
                sim.base_url,
                sim.api_key,
                start,
                end,
                *symbols,
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for start, end in windows
    ]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "READY"
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=120)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert [p.returncode for p in processes] == [0, 0], outputs

    stored = read_table(database_url, "stock_daily_candles")
    sim.configure(latency_seconds=0.0)
    clean = _reference(sim, dt.date(2024, 3, 1), dt.date(2024, 3, 29), symbols)
    assert stored.drop("fetched_at").equals(clean)
    assert stored.select("symbol", "day").is_duplicated().sum() == 0
