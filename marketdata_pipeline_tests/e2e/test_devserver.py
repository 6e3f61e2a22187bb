"""The dev server (`devserver.run_dev`) behaves like a server, as real processes.

- A taken port is refused at once, with a message naming it and exit code 3, before any Dagster
  process starts.
- SIGTERM (sent to the server process only, as `timeout` and docker do) while the tracked-symbols
  sensor's history run is in flight: the server exits 0 without a traceback in its output, the
  run is FAILURE in the instance, and after a restart the daemon's `history_recovery_sensor`
  requests the symbols' history again: the tracked-symbols sensor sees them as new, under a new
  run key. (The server itself requests nothing: the recovery is the code location's.)

The same through `marketdata dev` itself, with the history landing after the restart, is
test_devserver_restart.py (a file of its own, so the two long tests can run on two workers).
The server runs as `python -c` around `run_dev`, the way the command line calls it, with the
environment the test builds (its own Postgres databases, Dagster home and simulator).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from marketdata_pipeline.lib.postgres.tracked_symbols import changes_since
from marketdata_pipeline_tests.e2e.conftest import REPO, free_port
from marketdata_pipeline_tests.e2e.devserver_support import (
    RESTART_TIMEOUT,
    SERVER_SCRIPT,
    TIMEOUT,
    dev_environment,
    history_runs,
    kill_group,
    start_run_dev,
    wait_until,
)
from polygon_simulator.server import SimulatorServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


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
    with dev_environment(pg_server, tmp_path, ["AAPL"], history_days=10) as env:
        yield env


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
    server = start_run_dev(env, free_port(), log_path)
    try:
        # The sensor ticks when the daemon starts; its history run then waits on the API.
        def in_flight() -> bool:
            runs = history_runs(dagster)
            return len(runs) == 1 and runs[0][1] == "STARTED" and sim.state.faults()[0]["fired"] > 0

        wait_until("the history run waiting on the API", in_flight, server, log_path)
        ((run_id, _),) = history_runs(dagster)
        in_flight_after = time.monotonic() - began

        os.kill(server.pid, signal.SIGTERM)  # the server process only, as `timeout` sends it
        code = server.wait(timeout=TIMEOUT)
        output = log_path.read_text()
        assert code == 0, output[-4000:]
        assert "Traceback" not in output, output
        assert history_runs(dagster) == [(run_id, "FAILURE")]
        assert f"run {run_id[:8]}" in output and "requested again" in output, output
        assert _change_seq(candles) == seq_before  # not by the server: by the sensor, below
        stopped_after = time.monotonic() - began

        # The restart: the recovery sensor's first tick reads the failure recorded while its
        # daemon was down, and makes AAPL "new" again (a new change_seq, hence a new run key).
        server = start_run_dev(env, free_port(), log_path)
        wait_until(
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
        kill_group(server)
