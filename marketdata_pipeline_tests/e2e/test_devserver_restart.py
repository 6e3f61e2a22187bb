"""`marketdata dev` as a server, then a restart, as real processes.

A symbol added while it runs gets its history requested, the SIGTERM fails that run, and after
the next start the history run succeeds and its rows are exactly the simulator's sessions of
the window. (A file of its own, apart from test_devserver.py, so that the two long tests of the
dev server can run on two workers at once.)
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline_tests.e2e.conftest import BIN, REPO, free_port
from marketdata_pipeline_tests.e2e.devserver_support import (
    RESTART_TIMEOUT,
    TIMEOUT,
    dev_environment,
    history_runs,
    kill_group,
    wait_until,
)
from polygon_simulator import market

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

#: A short history keeps the test quick; the symbol the acceptance test adds while serving.
HISTORY_DAYS = 90
SYMBOL = "MSFT"


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
    with dev_environment(pg_server, tmp_path, [], history_days=HISTORY_DAYS) as dev:
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
            wait_until("the UI", lambda: "Dagster UI ready" in out.read_text(), server, out)

            def in_flight() -> bool:
                runs = history_runs(dagster)
                return (
                    len(runs) == 1
                    and runs[0][1] == "STARTED"
                    and sim.state.faults()[0]["fired"] > 0
                )

            wait_until("the history run waiting on the API", in_flight, server, out)
            ((failed_id, _),) = history_runs(dagster)
            in_flight_after = time.monotonic() - began

            os.kill(server.pid, signal.SIGTERM)  # the server process only, as `timeout` sends
            assert server.wait(timeout=TIMEOUT) == 0, out.read_text()[-4000:]
            assert "Traceback" not in err.read_text(), err.read_text()[-6000:]
            assert history_runs(dagster) == [(failed_id, "FAILURE")]
            assert f"run {failed_id[:8]}" in out.read_text()
            assert _stored_days(candles, SYMBOL) == []
            stopped_after = time.monotonic() - began

            # The API answers again; the next start requests the history again and it lands.
            sim.clear_faults()
            server = _start_marketdata_dev(env, free_port(), out, err)

            def history_landed() -> bool:
                runs = history_runs(dagster)
                return len(runs) == 2 and runs[1][1] in ("SUCCESS", "FAILURE", "CANCELED")

            wait_until(
                "the history run after the restart", history_landed, server, out, RESTART_TIMEOUT
            )
            (_, first), (second_id, second) = history_runs(dagster)
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
            kill_group(server)
