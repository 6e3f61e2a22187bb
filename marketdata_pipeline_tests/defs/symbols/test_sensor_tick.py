"""The tracked-symbols sensor's tick costs the same whatever the history it requests.

The tick evaluates the sensor and creates its history run, as the daemon does, on an instance of
the repository's `dagster.yaml` (runs and events in Postgres). A run over N daily partitions
records one "planned" row per partition (the UI's in-progress and failed partitions come from
them); written one statement each, a ten-year history made the tick last over a minute. The
property checked here, without timing anything: creating the run sends the event log the same
number of SQL statements for 10 days as for 2,000, with or without `DAGSTER_EVENT_BATCH_SIZE` in
the environment (the daemon's own environment need not have it), and still records every
partition, so a failed history run shows each of its partitions as failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from sqlalchemy import event

from marketdata_pipeline.defs.build import build_defs
from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.settings import load_settings
from marketdata_pipeline.lib.symbols import parse_symbol

SHORT_DAYS, LONG_DAYS = 10, 2_000


@contextmanager
def counted_statements(engine) -> Iterator[list[str]]:
    """The SQL statements `engine` sends during the block."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def sensor_tick(instance: dg.DagsterInstance, database, days: int) -> tuple[dg.DagsterRun, int]:
    """Evaluate the sensor of a code location whose history is `days` days long and create its
    stock history run as the daemon does; the run and the event-log statements it took."""
    first_day = last_complete_day() - dt.timedelta(days=days - 1)
    settings = load_settings(
        {"MARKETDATA_START_DATE": first_day.isoformat(), "MARKETDATA_DATABASE_URL": database.url}
    )
    defs = build_defs(settings)
    sensor = defs.resolve_sensor_def("tracked_symbols_sensor")
    context = dg.build_sensor_context(instance=instance, resources={"database": database})
    result = sensor(context)
    assert isinstance(result, dg.SensorResult), result
    (request,) = [r for r in result.run_requests if r.job_name == "stock_candles_job"]
    job = defs.resolve_job_def(request.job_name)
    with counted_statements(instance.event_log_storage._engine) as statements:
        run = instance.create_run_for_job(
            job,
            run_config=request.run_config,
            tags={**request.tags, "dagster/run_key": request.run_key},
            status=dg.DagsterRunStatus.NOT_STARTED,
        )
    return run, len(statements)


def planned_partitions(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The partitions of the candle asset that the run's planned events name."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=None
    ).records
    return [
        r.event_log_entry.dagster_event.event_specific_data.partition
        for r in records
        if r.event_log_entry.dagster_event.asset_key == dg.AssetKey("stock_daily_candles")
    ]


@pytest.mark.parametrize("batch_size", [None, "1000"], ids=["no-batch-size", "batch-size-1000"])
def test_creating_the_history_run_takes_as_many_statements_for_2000_days_as_for_10(
    repository_instance, database, database_url, monkeypatch: pytest.MonkeyPatch, batch_size
):
    # The job's resources read it when the execution plan is built, as in the daemon.
    monkeypatch.setenv("MARKETDATA_DATABASE_URL", database_url)
    if batch_size is None:
        monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    else:
        monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch_size)
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, [parse_symbol("AAPL")])

    # The instance's first run also creates the assets' rows: compare two later ones.
    sensor_tick(repository_instance, database, SHORT_DAYS)
    short_run, short_statements = sensor_tick(repository_instance, database, SHORT_DAYS)
    long_run, long_statements = sensor_tick(repository_instance, database, LONG_DAYS)

    assert long_statements == short_statements, (short_statements, long_statements)
    # One statement per partition would be thousands (four assets' and checks' events here).
    assert long_statements < 100
    # Every partition of the range is still planned one by one, in order.
    short_keys, long_keys = (
        planned_partitions(repository_instance, r.run_id) for r in (short_run, long_run)
    )
    assert short_keys[0] == short_run.tags["dagster/asset_partition_range_start"]
    assert short_keys[-1] == short_run.tags["dagster/asset_partition_range_end"]
    assert len(long_keys) == len(set(long_keys)) > 1_000
    assert long_keys[0] == long_run.tags["dagster/asset_partition_range_start"]
    assert long_keys[-1] == long_run.tags["dagster/asset_partition_range_end"]


def test_a_failed_history_run_shows_each_partition_as_failed(
    repository_instance, database, database_url, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    monkeypatch.setenv("MARKETDATA_DATABASE_URL", database_url)
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, [parse_symbol("AAPL")])
    run, _ = sensor_tick(repository_instance, database, SHORT_DAYS)
    planned = planned_partitions(repository_instance, run.run_id)
    assert planned
    key = dg.AssetKey("stock_daily_candles")
    partitions_def = (
        build_defs(
            load_settings(
                {"MARKETDATA_START_DATE": planned[0], "MARKETDATA_DATABASE_URL": database.url}
            )
        )
        .get_assets_def(key)
        .partitions_def
    )

    def status():
        return get_and_update_asset_status_cache_value(repository_instance, key, partitions_def)

    in_progress = status().deserialize_in_progress_partition_subsets(partitions_def)
    assert sorted(in_progress.get_partition_keys()) == sorted(planned)
    repository_instance.report_run_failed(run)
    failed = status().deserialize_failed_partition_subsets(partitions_def)
    assert sorted(failed.get_partition_keys()) == sorted(planned)
