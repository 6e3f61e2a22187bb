"""What deployment.md shows is what the e2e deployment runs, and its partitioned table works.

- `dagster ...` process commands and the workspace file of deployment.md must be exactly what the
  e2e deployment (conftest.py) starts, with the guide's default ports.
- The partitioned table of deployment.md is created on an empty database, migrated, and written
  to by the IO manager.

Every other command and SQL block of the README and the guides is run or checked by
test_docs_examples.py.
"""

from __future__ import annotations

import datetime as dt
import re

import psycopg

from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline_tests.e2e.conftest import (
    CODE_SERVER_COMMAND,
    DAEMON_COMMAND,
    DEFAULT_PORTS,
    HEALTH_CHECK_COMMAND,
    REPO,
    WEBSERVER_COMMAND,
    WORKSPACE_YAML,
    fresh_database,
)
from marketdata_pipeline_tests.helpers import materialise, query, stock_daily_candles
from marketdata_pipeline_tests.resources import make_polygon

DOCS = REPO / "docs"
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


def test_the_deployment_guide_shows_the_e2e_commands_word_for_word():
    commands = _commands("deployment.md")
    for template in (CODE_SERVER_COMMAND, HEALTH_CHECK_COMMAND, WEBSERVER_COMMAND, DAEMON_COMMAND):
        assert template.format(**DEFAULT_PORTS) in commands
    workspaces = [body for _, body in _blocks("deployment.md", "yaml") if "grpc_server" in body]
    assert [w.strip() for w in workspaces] == [WORKSPACE_YAML.format(**DEFAULT_PORTS).strip()]


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
