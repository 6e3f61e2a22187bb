"""The guides in docs/ only show commands that work: this file runs or checks every one of them.

- `dagster ...` process commands and the workspace file of deployment.md must be exactly what the
  e2e deployment (conftest.py) starts, with the guide's default ports.
- `marketdata ...` commands run, in the order of each guide, as the console script against a fresh
  candle database, a fresh Dagster instance on Postgres and the simulator; each must succeed.
  `marketdata simulator` is started, asked for a bar and stopped.
- `make TARGET` must be a target of the Makefile; the setup lines (`export`, `mkdir`, `cp`,
  `cd`, `source`) are what the e2e fixture does in Python.
- Every SQL block runs against the real schema; the partitioned table of deployment.md is
  created on an empty database, migrated, and written to by the IO manager.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import time

import httpx
import psycopg
import pytest

from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline_tests.e2e.conftest import (
    BIN,
    CODE_SERVER_COMMAND,
    DAEMON_COMMAND,
    DEFAULT_PORTS,
    HEALTH_CHECK_COMMAND,
    REPO,
    WEBSERVER_COMMAND,
    WORKSPACE_YAML,
    free_port,
    fresh_database,
)
from marketdata_pipeline_tests.helpers import materialise, query, stock_daily_candles
from marketdata_pipeline_tests.resources import make_polygon

DOCS = REPO / "docs"
GUIDES = ("architecture.md", "api-keys.md", "crypto-symbols.md", "deployment.md", "operations.md")
SETUP_COMMANDS = ("export ", "mkdir ", "cp ", "cd ", "source ")
PARTITIONED_MARKER = "test_guides.py::test_partitioned_candle_table_from_the_guide"


def _blocks(guide: str, language: str) -> list[tuple[str, str]]:
    """(preceding line, body) of every ```language block in a guide."""
    text = (DOCS / guide).read_text()
    pattern = re.compile(rf"^([^\n]*)\n\s*```{language}\n(.*?)\n\s*```", re.S | re.M)
    return [(m.group(1).strip(), m.group(2)) for m in pattern.finditer(text)]


def _commands(guide: str) -> list[str]:
    """Every command line of the guide's bash blocks, without comments."""
    lines = []
    for _, body in _blocks(guide, "bash"):
        for raw in body.splitlines():
            line = raw.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.M))


def test_the_deployment_guide_shows_the_e2e_commands_word_for_word():
    commands = _commands("deployment.md")
    for template in (CODE_SERVER_COMMAND, HEALTH_CHECK_COMMAND, WEBSERVER_COMMAND, DAEMON_COMMAND):
        assert template.format(**DEFAULT_PORTS) in commands
    workspaces = [body for _, body in _blocks("deployment.md", "yaml") if "grpc_server" in body]
    assert [w.strip() for w in workspaces] == [WORKSPACE_YAML.format(**DEFAULT_PORTS).strip()]


@pytest.mark.parametrize("guide", GUIDES)
def test_every_command_in_the_guides_is_known(guide):
    targets = _makefile_targets()
    processes = {
        t.format(**DEFAULT_PORTS)
        for t in (CODE_SERVER_COMMAND, HEALTH_CHECK_COMMAND, WEBSERVER_COMMAND, DAEMON_COMMAND)
    }
    for line in _commands(guide):
        if line.startswith("make "):
            assert line.split()[1] in targets, line
        elif line.startswith("dagster"):
            assert line in processes, f"{guide}: {line!r} is not a command the e2e test runs"
        else:
            assert line.startswith(("marketdata ", *SETUP_COMMANDS)), (
                f"{guide}: {line!r} is neither run by test_guides nor by the e2e test"
            )


def _run_simulator_command(line: str, env: dict[str, str]) -> None:
    port = free_port()  # the guide's port may be taken on this machine
    argv = [str(BIN / "marketdata"), *re.sub(r"--port \d+", f"--port {port}", line).split()[1:]]
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                bars = httpx.get(
                    f"http://127.0.0.1:{port}/v2/aggs/ticker/AAPL/range/1/day/2024-01-02/2024-01-05",
                    headers={"Authorization": "Bearer simulator-key"},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the simulator did not answer"
                time.sleep(0.2)
        assert bars.status_code == 200 and bars.json()["resultsCount"] == 4
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert "ALL DATA IS SIMULATED" in output


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_every_marketdata_command_and_sql_block_of_the_guides_runs(
    pg_server, database_url, simulator_server, tmp_path
):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POLYGON_", "MASSIVE_", "MARKETDATA_", "DAGSTER_"))
    }
    env.update(
        MARKETDATA_HOME=str(tmp_path / "home"),
        MARKETDATA_DATABASE_URL=database_url,
        MARKETDATA_DAGSTER_STORAGE_URL=sqlalchemy_url(fresh_database(pg_server, "guides_dagster")),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        MARKETDATA_START_DATE="2020-01-01",
        POLYGON_API_KEY=simulator_server.api_key,
        POLYGON_BASE_URL=simulator_server.base_url,
        POLYGON_REQUESTS_PER_MINUTE="60000",
        PYTHONWARNINGS="ignore",
    )
    # The guides assume some symbols are tracked already (as after `make demo`).
    seeded = subprocess.run(
        [str(BIN / "marketdata"), "symbols", "add", "AAPL", "MSFT"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seeded.returncode == 0, seeded.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ran = []
    for guide in GUIDES:
        for line in _commands(guide):
            if not line.startswith("marketdata "):
                continue
            if line.startswith("marketdata simulator"):
                _run_simulator_command(line, env)
            else:
                # From another directory: the store is the project's, not the current folder's.
                done = subprocess.run(
                    [str(BIN / "marketdata"), *line.split()[1:]],
                    env=env,
                    cwd=elsewhere,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert done.returncode == 0, f"{guide}: {line}\n{done.stdout}\n{done.stderr}"
            ran.append(line)
    assert any(line.startswith("marketdata backfill") for line in ran)

    # The SQL the guides show runs against the schema, with the data the commands stored.
    with psycopg.connect(database_url) as conn:
        for guide in GUIDES:
            for before, body in _blocks(guide, "sql"):
                if PARTITIONED_MARKER in before:
                    continue
                with conn.transaction(force_rollback=True):
                    conn.execute(body)
    assert query(database_url, "SELECT count(*) FROM marketdata.crypto_daily_candles")[0][0] > 0


def test_partitioned_candle_table_from_the_guide(pg_server, sim):
    [body] = [b for before, b in _blocks("deployment.md", "sql") if PARTITIONED_MARKER in before]
    url = fresh_database(pg_server, "guides_partitioned")
    with psycopg.connect(url) as conn:
        conn.execute(body)
        conn.commit()
        migrate(conn)
    database = PostgresDatabase(url=url)
    resources = {
        "polygon": make_polygon(sim),
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }
    start, end = dt.date(2024, 12, 23), dt.date(2025, 1, 3)
    for _ in range(2):  # the second run replaces the slice across both partitions
        result = materialise(
            start,
            end,
            resources,
            assets=[stock_daily_candles],
            symbols={"stock_daily_candles": ["AAPL"]},
        )
        assert result.success
    rows = query(
        url,
        "SELECT tableoid::regclass::text, count(*) FROM marketdata.stock_daily_candles"
        " GROUP BY 1 ORDER BY 1",
    )
    assert rows == [
        ("marketdata.stock_daily_candles_2024", 6),
        ("marketdata.stock_daily_candles_2025", 2),
    ]
    [(kind,)] = query(
        url,
        "SELECT relkind::text FROM pg_class WHERE oid = 'marketdata.stock_daily_candles'::regclass",
    )
    assert kind == "p"  # still the partitioned table the guide created
