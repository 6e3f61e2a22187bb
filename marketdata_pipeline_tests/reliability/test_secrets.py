"""Secrets: the API key and database passwords never leave the places they must be.

The key goes in the `Authorization` header and nowhere else: not in a URL the simulator sees,
not in a log line, an exception, a Dagster event (successes, retries, the failure after a 401),
the run's config and tags, or the job snapshot the UI shows. A database password is never
printed by the command line nor recorded by Dagster, even when the database is unreachable.
"""

from __future__ import annotations

import datetime as dt
import logging

import dagster as dg
import psycopg
import pytest
from dagster._serdes import serialize_value

from marketdata_pipeline.defs.resources import build_resources
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.settings import load_settings, redact_url
from marketdata_pipeline_tests.helpers import CANDLE_ASSETS, materialise, stock_daily_candles
from marketdata_pipeline_tests.reliability.conftest import cli_env, run_cli, symbol_status, track
from marketdata_pipeline_tests.resources import TEST_API_KEY

DAY = dt.date(2024, 3, 4)
WEEK = (dt.date(2024, 3, 4), dt.date(2024, 3, 8))  # range plan: one request per symbol
PASSWORD = "secretpw-7c1e5a"


def _env_resources(sim, monkeypatch, database_url: str) -> dict:
    """Resources configured the way definitions.py does it: secrets through EnvVar."""
    monkeypatch.setenv("POLYGON_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("MARKETDATA_DATABASE_URL", database_url)
    database = PostgresDatabase(url=dg.EnvVar("MARKETDATA_DATABASE_URL"))
    polygon = PolygonResource(
        api_key=dg.EnvVar("POLYGON_API_KEY"),
        base_url=sim.base_url,
        requests_per_minute=60_000,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.1,
        max_attempts=4,
    )
    return {
        "polygon": polygon,
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }


def _everything_dagster_kept(instance: dg.DagsterInstance, run_id: str) -> str:
    """Every record of a run the UI can show, serialised: events, run (config, tags), snapshots."""
    run = instance.get_run_by_id(run_id)
    parts = [serialize_value(record) for record in instance.all_logs(run_id)]
    parts.append(serialize_value(run))
    parts.append(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
    parts.append(
        serialize_value(instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id))
    )
    return "\n".join(parts)


def _check_requests(sim) -> None:
    log = sim.stats()["log"]
    assert log, "the run must have sent requests"
    for entry in log:
        assert not entry["api_key_in_query"]
        assert TEST_API_KEY not in entry["path"] + entry["query"]


def test_api_key_is_in_no_log_event_error_snapshot_or_url(
    sim, database_url, monkeypatch, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    track(database_url, ["AAPL", "MSFT"])
    resources = _env_resources(sim, monkeypatch, database_url)
    instance = dg.DagsterInstance.ephemeral()

    # A run with retries (503s and a reset), then a run whose key is refused (401).
    sim.add_fault(kind="status", status_code=503, body="html", ticker="MSFT", times=2)
    sim.add_fault(kind="reset", ticker="AAPL", times=1)
    retried = materialise(*WEEK, resources, assets=[stock_daily_candles], instance=instance)
    assert retried.success
    _check_requests(sim)
    sim.reset()
    sim.add_fault(kind="status", status_code=401)
    refused = materialise(*WEEK, resources, assets=[stock_daily_candles], instance=instance)
    assert not refused.success
    _check_requests(sim)

    kept = "\n".join(_everything_dagster_kept(instance, r.run_id) for r in (retried, refused))
    assert "Unknown API Key" in kept  # the failure is there, with the API's message...
    assert "POLYGON_API_KEY" in kept  # ...and the key is referenced by name, as an EnvVar
    assert TEST_API_KEY not in kept
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert "retry 1/3" in logged and "HTTP 401" in logged
    assert TEST_API_KEY not in logged
    for _, message in symbol_status(database_url).values():
        assert TEST_API_KEY not in (message or "")


def test_production_resources_keep_secrets_out_of_the_job_snapshot(monkeypatch):
    url = f"postgresql://candles:{PASSWORD}@db.example.com:5432/marketdata"
    monkeypatch.setenv("POLYGON_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("MARKETDATA_DATABASE_URL", url)
    defs = dg.Definitions(assets=list(CANDLE_ASSETS), resources=build_resources(load_settings()))
    snapshot = serialize_value(defs.resolve_implicit_global_asset_job_def().get_job_snapshot())
    assert "POLYGON_API_KEY" in snapshot and "MARKETDATA_DATABASE_URL" in snapshot
    assert TEST_API_KEY not in snapshot
    assert PASSWORD not in snapshot


def test_a_literal_key_would_show_in_the_snapshot_which_is_why_envvar_is_used():
    # The control for the test above: configured as a plain string, the key *is* recorded.
    db = PostgresDatabase(url="postgresql://u@127.0.0.1:1/db")
    defs = dg.Definitions(
        assets=list(CANDLE_ASSETS),
        resources={
            "polygon": PolygonResource(api_key=TEST_API_KEY),
            "database": db,
            "candle_io_manager": PostgresCandleIOManager(database=db),
        },
    )
    snapshot = serialize_value(defs.resolve_implicit_global_asset_job_def().get_job_snapshot())
    assert TEST_API_KEY in snapshot


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://user:{PASSWORD}@127.0.0.1:1/db",
        f"postgresql://user@127.0.0.1:1/db?password={PASSWORD}&connect_timeout=3",
    ],
    ids=["password in the authority", "password as a query parameter"],
)
def test_unreachable_database_password_is_not_in_the_dagster_failure(sim, monkeypatch, capfd, url):
    resources = _env_resources(sim, monkeypatch, url)
    instance = dg.DagsterInstance.ephemeral()
    result = materialise(
        DAY,
        DAY,
        resources,
        assets=[stock_daily_candles],
        symbols={"stock_daily_candles": ["AAPL"]},
        instance=instance,
    )
    assert not result.success
    kept = _everything_dagster_kept(instance, result.run_id)
    assert "cannot connect to Postgres at postgresql://user" in kept
    assert "***" in kept
    out, err = capfd.readouterr()
    assert PASSWORD not in kept + out + err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://u:{PASSWORD}@h:5432/db", "postgresql://u:***@h:5432/db"),
        (f"postgresql://u@h/db?sslmode=require&password={PASSWORD}", "password=***"),
        (f"postgres://u:{PASSWORD}@h/db?PASSWORD={PASSWORD}", "u:***@h/db?PASSWORD=***"),
        ("postgresql://postgres:@/marketdata?host=/tmp/x", "postgresql://postgres:@/marketdata"),
    ],
)
def test_redact_url_hides_passwords_wherever_libpq_accepts_them(url, shown):
    assert shown in redact_url(url)
    assert PASSWORD not in redact_url(url)


def test_cli_backfill_with_a_refused_key_exits_3_in_one_line_and_leaks_nothing(
    sim, database_url, tmp_path
):
    track(database_url, ["AAPL"])
    sim.add_fault(kind="status", status_code=401)
    env = cli_env(
        tmp_path,
        MARKETDATA_DATABASE_URL=database_url,
        POLYGON_API_KEY=TEST_API_KEY,
        POLYGON_BASE_URL=sim.base_url,
        POLYGON_REQUESTS_PER_MINUTE="6000",
    )
    result = run_cli(
        [
            "backfill",
            "--start",
            "2024-03-04",
            "--end",
            "2024-03-05",
            "--asset",
            "stock_daily_candles",
        ],
        env,
    )
    # A refused key is configuration: one line (exit 3), not the refusal once per symbol.
    assert result.returncode == 3, result.stderr[-2000:]
    (line,) = [x for x in result.stderr.splitlines() if "HTTP 401 Unknown API Key" in x]
    assert line.startswith("marketdata: error: ") and "check POLYGON_API_KEY" in line
    assert "Traceback (most recent call last)" not in result.stderr
    assert TEST_API_KEY not in result.stdout + result.stderr
    _check_requests(sim)
    # What the Dagster UI would show: runs and events, stored in Postgres by the CLI's run.
    with psycopg.connect(database_url) as conn:
        runs = conn.execute("SELECT run_body FROM runs").fetchall()
        events = conn.execute("SELECT event FROM event_logs").fetchall()
    assert len(runs) == 1 and len(events) > 5
    stored = "\n".join(r[0] for r in runs) + "\n".join(e[0] for e in events)
    assert "Unknown API Key" in stored
    assert TEST_API_KEY not in stored


def test_cli_db_url_redacts_the_password_unless_asked(database_url, tmp_path):
    # The URL must be reachable for `db url` to print it: reuse the test server's socket URL
    # with a password added (trust authentication ignores it).
    url = database_url.replace("postgresql://postgres:@", f"postgresql://postgres:{PASSWORD}@")
    env = cli_env(tmp_path, MARKETDATA_DATABASE_URL=url)
    shown = run_cli(["db", "url"], env)
    assert shown.returncode == 0, shown.stderr
    assert "postgres:***@" in shown.stdout
    assert PASSWORD not in shown.stdout + shown.stderr
    revealed = run_cli(["db", "url", "--reveal"], env)
    assert PASSWORD in revealed.stdout  # explicitly asked for
