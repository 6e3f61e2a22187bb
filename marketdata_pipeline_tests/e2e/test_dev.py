"""`make dev` (`marketdata dev`): the UI comes up, and Ctrl-C stops everything it started.

The command runs as in a terminal: its own process group, which a Ctrl-C signals as a whole.
No Polygon key is set, so it starts the simulator; the databases are fresh ones on the session
Postgres (the embedded server would outlive the test by design). After the SIGINT, no process
that `marketdata dev` started may be left: not `dagster dev`, its webserver, daemon or code
server, nor a code server `dagster dev` restarted while shutting down (the bug this guards).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url
from marketdata_pipeline_tests.e2e.conftest import (
    BIN,
    REPO,
    descendants,
    free_port,
    fresh_database,
    live_processes,
    without_project_variables,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

READY_TIMEOUT = 120
STOP_TIMEOUT = 120


def test_make_dev_serves_the_ui_and_ctrl_c_leaves_nothing_running(pg_server, tmp_path):
    port = free_port()
    env = without_project_variables()
    env.update(
        MARKETDATA_HOME=str(tmp_path / "home"),
        MARKETDATA_DATABASE_URL=fresh_database(pg_server, "dev_candles"),
        MARKETDATA_DAGSTER_STORAGE_URL=sqlalchemy_url(fresh_database(pg_server, "dev_dagster")),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        MARKETDATA_START_DATE=(dt.date.today() - dt.timedelta(days=30)).isoformat(),
        PYTHONWARNINGS="ignore",
    )
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        dev = subprocess.Popen(
            [str(BIN / "marketdata"), "dev", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal's foreground job
        )
    started: set[int] = set()
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while "Dagster UI ready" not in log_path.read_text(errors="replace"):
            assert dev.poll() is None, f"marketdata dev exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, (
                f"no UI after {READY_TIMEOUT} s:\n" + (log_path.read_text()[-4000:])
            )
            time.sleep(0.5)
        text = log_path.read_text()
        assert "using the local SIMULATOR" in text
        assert f"Dagster UI: http://127.0.0.1:{port}" in text
        # No warning about the repository's dagster.yaml: the instance is DAGSTER_HOME's copy.
        assert "will not be used" not in text, text
        page = httpx.get(f"http://127.0.0.1:{port}/assets/stock_daily_candles", timeout=30)
        assert page.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=30).json()[
            "dagster_webserver_version"
        ]

        started = descendants(dev.pid)
        names = {(Path("/proc") / str(p) / "cmdline").read_bytes() for p in started}
        assert any(b"dagster_webserver" in n for n in names), names
        assert any(b"dagster._daemon" in n for n in names), names
        assert any(b"code-server" in n for n in names), names

        began = time.monotonic()
        os.killpg(dev.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        code = dev.wait(timeout=STOP_TIMEOUT)
        stopped_in = time.monotonic() - began
        assert code == 130, log_path.read_text()[-4000:]
        time.sleep(1)
        left = started & set(live_processes())
        assert not left, {p: live_processes().get(p) for p in left}
        print(f"marketdata dev stopped everything in {stopped_in:.1f} s")
    finally:
        # A test that failed before listing the children still must not leave `dagster dev`
        # (its own process group) running: list them now.
        if dev.poll() is None:
            started |= descendants(dev.pid)
        # Only groups that still hold a process we started (pids may be reused later).
        live = live_processes()
        groups = {live[p][1] for p in started | {dev.pid} if p in live}
        for pgid in groups & {dev.pid, *started}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        dev.wait(timeout=10)
