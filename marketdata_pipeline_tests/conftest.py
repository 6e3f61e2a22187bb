"""Shared fixtures: a throwaway real Postgres, the real simulator over HTTP, wired resources.

The suite never touches the user's environment: the variables below are fixed when this file
loads, before any test module builds the code location from them (importing project modules
reads nothing), and the embedded database home points at a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline_tests.resources import TEST_API_KEY, make_polygon
from polygon_simulator.corporate_actions import NO_CORPORATE_ACTIONS
from polygon_simulator.server import SimulatorServer

for _var in (
    "POLYGON_API_KEY",
    "MASSIVE_API_KEY",
    "POLYGON_BASE_URL",
    "POLYGON_REQUESTS_PER_MINUTE",
    "POLYGON_HISTORY_START",
    "MARKETDATA_DATABASE_URL",
    "MARKETDATA_DAGSTER_STORAGE_URL",
    "DAGSTER_HOME",
    "MARKETDATA_SIMULATED",
):
    os.environ.pop(_var, None)
# A recent start keeps history backfills small: Dagster records one materialisation (and one
# planned check evaluation per check) per partition of a single-run range, ~10 ms each.
os.environ["MARKETDATA_START_DATE"] = "2024-01-01"
os.environ["MARKETDATA_HOME"] = tempfile.mkdtemp(prefix="md-test-home-")

#: The order files go to the workers under `--dist loadfile` (longest first).
pytest_plugins = ("marketdata_pipeline_tests.scheduling",)

TEMPLATE_DB = "md_template"
#: The repository root (its dagster.yaml).
_REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_leftover_dagster_instance():
    """Fail loudly if a test leaves a Dagster instance in Dagster's context variable.

    A Dagster context (sensor, schedule, instance) closed after the instance it entered leaves
    its definitions-state storage in a context variable; every later `Definitions` load then
    fails with "undefined DagsterInstance weakref", in whatever test happens to run next.
    """
    from dagster._core.storage.defs_state import base

    before = base._current_storage.get()
    yield
    leaked = base._current_storage.get()
    if leaked is not None and leaked is not before:
        base._current_storage.set(before)
        pytest.fail("the test left a Dagster instance entered: close contexts inside its scope")


@pytest.fixture(scope="session")
def pg_server():
    """A real Postgres server for the whole session (pgserver: embedded binaries).

    Its data directory comes from `tempfile`, not pytest's tmp_path_factory: pytest prunes old
    basetemp directories, which would delete a server still used by a concurrent session.
    """
    import pgserver

    data_dir = Path(tempfile.mkdtemp(prefix="md-test-pg-"))
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    _without_durability(server)
    yield server
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


#: Durability the suite's throwaway server does without: its data dies with the session. Each
#: test creates and drops a database, and every Dagster event is a commit; without waiting for
#: the disk both cost about half. A crash of Postgres itself (not of the OS) still loses nothing
#: committed, so what the tests see is unchanged; the fault tests' own server keeps the defaults.
_NO_DURABILITY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _without_durability(server) -> None:
    """Turn off the session server's waits for the disk (`ALTER SYSTEM`: kept over restarts)."""
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        for name, value in _NO_DURABILITY.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), value))
        conn.execute("SELECT pg_reload_conf()")


def _url(server, database: str) -> str:
    return server.get_uri(database)


@pytest.fixture(scope="session")
def template_database(pg_server) -> str:
    """A database with the schema migrated, copied for each test (fast and isolated)."""
    admin = _url(pg_server, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    with psycopg.connect(_url(pg_server, TEMPLATE_DB)) as conn:
        migrate(conn)
    return TEMPLATE_DB


@pytest.fixture
def database_url(pg_server, template_database) -> Iterator[str]:
    """URL of a fresh database (schema migrated) for one test; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = _url(pg_server, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database)
            )
        )
    yield _url(pg_server, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def database(database_url: str) -> PostgresDatabase:
    """The `database` resource on the test's fresh database."""
    return PostgresDatabase(url=database_url)


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[SimulatorServer]:
    """The project's Polygon simulator, on a real port, for the whole session."""
    with SimulatorServer(api_key=TEST_API_KEY, **NO_CORPORATE_ACTIONS) as server:
        yield server


@pytest.fixture
def sim(simulator_server: SimulatorServer) -> Iterator[SimulatorServer]:
    """The simulator with counters, faults and config reset around each test.

    Its world has no splits or dividends (the default one has a few): a test configures the
    corporate actions it is about.
    """
    simulator_server.reset(reset_config=True, **NO_CORPORATE_ACTIONS)
    yield simulator_server
    simulator_server.reset(reset_config=True, **NO_CORPORATE_ACTIONS)


@pytest.fixture
def polygon(sim: SimulatorServer) -> PolygonResource:
    """The `polygon` resource pointed at the simulator."""
    return make_polygon(sim)


@pytest.fixture
def resources(polygon: PolygonResource, database: PostgresDatabase) -> dict:
    """Every resource the candle assets need, on real parts."""
    return {
        "polygon": polygon,
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }


@pytest.fixture
def fixtures_dir() -> Path:
    """The real Polygon response samples in ../shared/fixtures/polygon (copied into the repo)."""
    return Path(__file__).parent / "fixtures" / "polygon"


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    """Run `marketdata ARGS...` in process on the test database; returns (code, stdout, stderr)."""
    from marketdata_pipeline.cli import main

    monkeypatch.setenv("MARKETDATA_DATABASE_URL", database_url)
    monkeypatch.setenv("MARKETDATA_DAGSTER_STORAGE_URL", "unused")

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def repository_instance(pg_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Dagster instance from the repository's dagster.yaml (run coordinator, pooled event log)
    on a fresh database."""
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    admin = pg_server.get_uri("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    shutil.copyfile(_REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("MARKETDATA_DAGSTER_STORAGE_URL", sqlalchemy_url(pg_server.get_uri(name)))
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    yield instance
    instance.dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
