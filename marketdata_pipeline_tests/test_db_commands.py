"""`marketdata db url` starts the embedded Postgres and leaves it running; `marketdata db stop`
stops it (what `make clean` runs first). Real processes on a throwaway MARKETDATA_HOME."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg

from marketdata_pipeline.lib.postgres.embedded import stop_embedded
from marketdata_pipeline_tests.reliability.conftest import cli_env, run_cli


def _accepts_connections(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def test_db_stop_stops_the_embedded_server_that_db_url_started():
    # Not pytest's tmp_path: the server runs as pgserver's own user, which must reach the
    # directory (pytest's base directory is private to the test's user).
    home = Path(tempfile.mkdtemp(prefix="md-test-dbstop-"))
    env = cli_env(home, MARKETDATA_DATABASE_URL=None)
    try:
        shown = run_cli(["db", "url", "--reveal"], env)
        assert shown.returncode == 0, shown.stderr
        url = shown.stdout.strip()
        assert _accepts_connections(url), "db url leaves the server running"

        stopped = run_cli(["db", "stop"], env)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.startswith("stopped the embedded Postgres of ")
        assert not _accepts_connections(url)
        assert not (home / "pgdata" / "postmaster.pid").exists()

        again = run_cli(["db", "stop"], env)
        assert again.returncode == 0 and "is not running" in again.stdout
    finally:
        stop_embedded(home / "pgdata")  # never leave a server behind
        shutil.rmtree(home, ignore_errors=True)


def test_db_stop_leaves_a_configured_database_alone(tmp_path, database_url):
    result = run_cli(["db", "stop"], cli_env(tmp_path, MARKETDATA_DATABASE_URL=database_url))
    assert result.returncode == 0
    assert "not the embedded one, nothing to stop" in result.stdout
    assert _accepts_connections(database_url)
