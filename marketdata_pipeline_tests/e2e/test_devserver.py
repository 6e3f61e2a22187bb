"""The dev server (`devserver.run_dev`) behaves like a server, as real processes.

- A taken port is refused at once, with a message naming it and exit code 3, before any Dagster
  process starts.
- SIGTERM (sent to the server process only, as `timeout` and docker do) while the tracked-symbols
  sensor's history run is in flight: the server exits 0 without a traceback in its output, the
  run is FAILURE in the instance, and after a restart the daemon's `history_recovery_sensor`
  requests the symbols' history again: the tracked-symbols sensor sees them as new, under a new
  run key. (The server itself requests nothing: the recovery is the code location's.)
- The same through `marketdata dev` itself, then a restart: a symbol added while it runs gets
  its history requested, the SIGTERM fails that run, and after the next start the history run
  succeeds and its rows are exactly the simulator's sessions of the window.

The server runs as `python -c` around `run_dev`, the way the command line calls it, with the
environment the test builds (its own Postgres databases, Dagster home and simulator).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols, changes_since
from marketdata_pipeline.lib.symbols import AssetClass, Symbol
from marketdata_pipeline_tests.conftest import TEST_API_KEY
from marketdata_pipeline_tests.e2e.conftest import (
    BIN,
    REPO,
    descendants,
    free_port,
    fresh_database,
    live_processes,
)
from polygon_simulator import market
from polygon_simulator.corporate_actions import NO_CORPORATE_ACTIONS
from polygon_simulator.server import SimulatorServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

#: What the command line does with `run_dev` (its error handling included).
SERVER_SCRIPT = """
import os, sys
from marketdata_pipeline.devserver import run_dev
from marketdata_pipeline.lib.errors import MarketdataError
try:
    sys.exit(run_dev("127.0.0.1", int(sys.argv[1]), dict(os.environ)))
except MarketdataError as exc:
    print(f"marketdata: error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
"""
TIMEOUT = 90.0
#: The history run after a restart: the code location loads, the sensor ticks, the run's
#: worker starts and fetches (one range request), all on a busy machine.
RESTART_TIMEOUT = 180.0
#: A short history keeps the test quick; the symbol the acceptance test adds while serving.
HISTORY_DAYS = 90
SYMBOL = "MSFT"


def _start(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, str(port)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(what: str, probe, process: subprocess.Popen, log_path: Path, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert process.poll() is None, f"server exited:\n{log_path.read_text()[-4000:]}"
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}:\n{log_path.read_text()[-4000:]}"
        )
        time.sleep(0.5)


def _kill_group(process: subprocess.Popen) -> None:
    """Kill `process`'s group and the groups below it (`dagster dev` runs in its own session, so
    a test that fails mid-way must not leave it, its daemon and code server running)."""
    live = live_processes()
    groups = {process.pid} | {live[p][1] for p in descendants(process.pid) if p in live}
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def test_taken_port_fails_fast_with_a_message_and_exit_code_3(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", SERVER_SCRIPT, str(port)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - began
    assert done.returncode == 3, done
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "--port" in done.stderr and "PORT=" in done.stderr
    assert "Dagster UI:" not in done.stdout  # nothing was started
    assert "Traceback" not in done.stderr
    assert took < 10, f"took {took:.1f} s"


@pytest.fixture
def dev_env(pg_server, tmp_path) -> Iterator[tuple[dict[str, str], str, str, SimulatorServer]]:
    """Environment of a dev server on fresh databases, AAPL tracked, the simulator as the API."""
    with _dev_environment(pg_server, tmp_path, ["AAPL"], history_days=10) as env:
        yield env


@contextlib.contextmanager
def _dev_environment(
    pg_server, tmp_path: Path, symbols: list[str], history_days: int
) -> Iterator[tuple[dict[str, str], str, str, SimulatorServer]]:
    """Environment of a dev server on fresh databases with `symbols` tracked and a history of
    `history_days`, the simulator as the API; with the candle and Dagster database URLs."""
    candles = fresh_database(pg_server, "devserver_candles")
    dagster = fresh_database(pg_server, "devserver_dagster")
    with psycopg.connect(candles) as conn:
        migrate(conn)
        add_symbols(conn, [Symbol(s, AssetClass.STOCK) for s in symbols])
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    with SimulatorServer(api_key=TEST_API_KEY, **NO_CORPORATE_ACTIONS) as sim:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("POLYGON_", "MASSIVE_", "MARKETDATA_", "DAGSTER_"))
        }
        env.update(
            DAGSTER_HOME=str(home),
            MARKETDATA_HOME=str(tmp_path / "home"),
            MARKETDATA_DATABASE_URL=candles,
            MARKETDATA_DAGSTER_STORAGE_URL=sqlalchemy_url(dagster),
            MARKETDATA_START_DATE=(dt.date.today() - dt.timedelta(days=history_days)).isoformat(),
            POLYGON_API_KEY=sim.api_key,
            POLYGON_BASE_URL=sim.base_url,
            POLYGON_REQUESTS_PER_MINUTE="6000",
            PYTHONWARNINGS="ignore",
        )
        yield env, candles, dagster, sim


def _history_runs(dagster_url: str) -> list[tuple[str, str]]:
    """(run_id, status) of the tracked-symbols sensor's history runs, oldest first."""
    with psycopg.connect(dagster_url) as conn:
        if conn.execute("SELECT to_regclass('run_tags')").fetchone()[0] is None:
            return []  # the instance has not created its tables yet
        return conn.execute(
            "SELECT r.run_id, r.status FROM runs r JOIN run_tags t ON t.run_id = r.run_id"
            " WHERE t.key = 'marketdata/trigger' AND t.value = 'new-symbols'"
            " ORDER BY r.create_timestamp"
        ).fetchall()


def _change_seq(candles_url: str) -> int:
    with psycopg.connect(candles_url) as conn:
        return conn.execute(
            "SELECT change_seq FROM marketdata.tracked_symbols WHERE symbol = 'AAPL'"
        ).fetchone()[0]


@pytest.mark.timeout(420)
def test_sigterm_fails_the_run_in_flight_and_the_history_is_requested_again(dev_env, tmp_path):
    env, candles, dagster, sim = dev_env
    # Every API answer hangs: the sensor's history run stays in flight until the stop.
    sim.add_fault(kind="delay", seconds=40)
    seq_before = _change_seq(candles)
    log_path = tmp_path / "dev.log"
    began = time.monotonic()
    server = _start(env, free_port(), log_path)
    try:
        # The sensor ticks when the daemon starts; its history run then waits on the API.
        def in_flight() -> bool:
            runs = _history_runs(dagster)
            return len(runs) == 1 and runs[0][1] == "STARTED" and sim.state.faults()[0]["fired"] > 0

        _wait("the history run waiting on the API", in_flight, server, log_path)
        ((run_id, _),) = _history_runs(dagster)
        in_flight_after = time.monotonic() - began

        os.kill(server.pid, signal.SIGTERM)  # the server process only, as `timeout` sends it
        code = server.wait(timeout=TIMEOUT)
        output = log_path.read_text()
        assert code == 0, output[-4000:]
        assert "Traceback" not in output, output
        assert _history_runs(dagster) == [(run_id, "FAILURE")]
        assert f"run {run_id[:8]}" in output and "requested again" in output, output
        assert _change_seq(candles) == seq_before  # not by the server: by the sensor, below
        stopped_after = time.monotonic() - began

        # The restart: the recovery sensor's first tick reads the failure recorded while its
        # daemon was down, and makes AAPL "new" again (a new change_seq, hence a new run key).
        server = _start(env, free_port(), log_path)
        _wait(
            "the recovery sensor requesting the history again",
            lambda: _change_seq(candles) > seq_before,
            server,
            log_path,
            RESTART_TIMEOUT,
        )
        with psycopg.connect(candles) as conn:
            changes, newest = changes_since(conn, seq_before)
        assert changes == [("AAPL", "stock")] and newest > seq_before
        requested_after = time.monotonic() - began
        os.kill(server.pid, signal.SIGTERM)
        assert server.wait(timeout=TIMEOUT) == 0, log_path.read_text()[-4000:]
        print(
            f"run in flight after {in_flight_after:.1f} s, stopped by {stopped_after:.1f} s, "
            f"requested again after the restart by {requested_after:.1f} s"
        )
    finally:
        _kill_group(server)


def _start_marketdata_dev(env: dict[str, str], port: int, out: Path, err: Path) -> subprocess.Popen:
    """`marketdata dev --port N` as a user starts it, stdout and stderr in separate files."""
    with out.open("ab") as stdout, err.open("ab") as stderr:
        return subprocess.Popen(
            [str(BIN / "marketdata"), "dev", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )


def _stored_days(candles_url: str, symbol: str) -> list[dt.date]:
    with psycopg.connect(candles_url) as conn:
        return [
            day
            for (day,) in conn.execute(
                "SELECT day FROM marketdata.stock_daily_candles WHERE symbol = %s ORDER BY day",
                (symbol,),
            )
        ]


@pytest.mark.timeout(420)
def test_sigterm_with_the_history_in_flight_then_a_restart_lands_the_history(pg_server, tmp_path):
    """The acceptance of `marketdata dev` as a server: a symbol added while it runs gets its
    history requested; SIGTERM while that run waits on the API stops everything cleanly and
    fails the run; the next start requests the history again and it lands, exactly."""
    with _dev_environment(pg_server, tmp_path, [], history_days=HISTORY_DAYS) as dev:
        env, candles, dagster, sim = dev
        first_day = dt.date.fromisoformat(env["MARKETDATA_START_DATE"])
        sim.add_fault(kind="delay", seconds=60)  # the history run waits on the API
        out, err = tmp_path / "dev.out", tmp_path / "dev.err"
        began = time.monotonic()
        server = _start_marketdata_dev(env, free_port(), out, err)
        try:
            # Added while the server starts: the sensor's first tick (when the daemon is up)
            # sees it, instead of the tick 30 s later.
            added = subprocess.run(
                [str(BIN / "marketdata"), "symbols", "add", SYMBOL],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert added.returncode == 0, added.stderr
            _wait("the UI", lambda: "Dagster UI ready" in out.read_text(), server, out)

            def in_flight() -> bool:
                runs = _history_runs(dagster)
                return (
                    len(runs) == 1
                    and runs[0][1] == "STARTED"
                    and sim.state.faults()[0]["fired"] > 0
                )

            _wait("the history run waiting on the API", in_flight, server, out)
            ((failed_id, _),) = _history_runs(dagster)
            in_flight_after = time.monotonic() - began

            os.kill(server.pid, signal.SIGTERM)  # the server process only, as `timeout` sends
            assert server.wait(timeout=TIMEOUT) == 0, out.read_text()[-4000:]
            assert "Traceback" not in err.read_text(), err.read_text()[-6000:]
            assert _history_runs(dagster) == [(failed_id, "FAILURE")]
            assert f"run {failed_id[:8]}" in out.read_text()
            assert _stored_days(candles, SYMBOL) == []
            stopped_after = time.monotonic() - began

            # The API answers again; the next start requests the history again and it lands.
            sim.clear_faults()
            server = _start_marketdata_dev(env, free_port(), out, err)

            def history_landed() -> bool:
                runs = _history_runs(dagster)
                return len(runs) == 2 and runs[1][1] in ("SUCCESS", "FAILURE", "CANCELED")

            _wait("the history run after the restart", history_landed, server, out, RESTART_TIMEOUT)
            (_, first), (second_id, second) = _history_runs(dagster)
            assert (first, second) == ("FAILURE", "SUCCESS"), out.read_text()[-4000:]
            assert second_id != failed_id
            expected = [
                market.day_from_number(int(n))
                for n in market.bar_days(SYMBOL, first_day, last_complete_day())
            ]
            assert len(expected) > HISTORY_DAYS // 2
            assert _stored_days(candles, SYMBOL) == expected
            landed_after = time.monotonic() - began

            os.kill(server.pid, signal.SIGTERM)
            assert server.wait(timeout=TIMEOUT) == 0, out.read_text()[-4000:]
            assert "Traceback" not in err.read_text(), err.read_text()[-6000:]
            print(
                f"history run in flight after {in_flight_after:.1f} s, stopped by "
                f"{stopped_after:.1f} s, landed after the restart by {landed_after:.1f} s"
            )
        finally:
            _kill_group(server)
