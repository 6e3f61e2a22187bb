"""What the dev-server tests share: `run_dev` as a server process, its databases and runs.

The server runs as `python -c` around `run_dev`, the way the command line calls it, with the
environment a test builds (its own Postgres databases, Dagster home and simulator).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.symbols import AssetClass, Symbol
from marketdata_pipeline_tests.conftest import TEST_API_KEY
from marketdata_pipeline_tests.e2e.conftest import (
    REPO,
    descendants,
    fresh_database,
    live_processes,
    without_project_variables,
)
from polygon_simulator.corporate_actions import NO_CORPORATE_ACTIONS
from polygon_simulator.server import SimulatorServer

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


def start_run_dev(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    """Start the server on `port` in its own session, its output appended to `log_path`."""
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


def wait_until(what: str, probe, process: subprocess.Popen, log_path: Path, timeout=TIMEOUT):
    """Poll `probe` until it returns something truthy; fail with the log if `process` exits or
    `timeout` passes."""
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


def kill_group(process: subprocess.Popen) -> None:
    """Kill `process`'s group and the groups below it (`dagster dev` runs in its own session, so
    a test that fails mid-way must not leave it, its daemon and code server running)."""
    live = live_processes()
    groups = {process.pid} | {live[p][1] for p in descendants(process.pid) if p in live}
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@contextlib.contextmanager
def dev_environment(
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
        env = without_project_variables()
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


def history_runs(dagster_url: str) -> list[tuple[str, str]]:
    """(run_id, status) of the tracked-symbols sensor's history runs, oldest first."""
    with psycopg.connect(dagster_url) as conn:
        if conn.execute("SELECT to_regclass('run_tags')").fetchone()[0] is None:
            return []  # the instance has not created its tables yet
        return conn.execute(
            "SELECT r.run_id, r.status FROM runs r JOIN run_tags t ON t.run_id = r.run_id"
            " WHERE t.key = 'marketdata/trigger' AND t.value = 'new-symbols'"
            " ORDER BY r.create_timestamp"
        ).fetchall()
