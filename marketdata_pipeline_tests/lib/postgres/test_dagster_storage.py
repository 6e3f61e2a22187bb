"""The pooled, batch-writing event log of the repository's `dagster.yaml`: a range run records
every partition as the stock Postgres event log does."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import dagster as dg
import psycopg
import pytest

from marketdata_pipeline.lib.postgres.dagster_storage import PooledPostgresEventLogStorage
from marketdata_pipeline_tests.helpers import crypto_daily_candles, materialise

FIRST, LAST = dt.date(2024, 3, 1), dt.date(2024, 3, 30)


@pytest.mark.parametrize("batch", ["0", "5000"])
def test_a_range_run_records_every_partition(
    sim, resources, repository_instance, monkeypatch: pytest.MonkeyPatch, batch: str
):
    assert isinstance(repository_instance.event_log_storage, PooledPostgresEventLogStorage)
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch)
    batches: list[int] = []
    store = PooledPostgresEventLogStorage._store_planned_batch

    def spy(self, events):
        batches.append(len(events))
        store(self, events)

    monkeypatch.setattr(PooledPostgresEventLogStorage, "_store_planned_batch", spy)
    result = materialise(
        FIRST,
        LAST,
        resources,
        assets=[crypto_daily_candles],
        symbols={"crypto_daily_candles": ["BTCUSD"]},
        instance=repository_instance,
    )
    assert result.success
    # Batching on or off, the planned events go in as one INSERT.
    assert batches == [30]
    key = crypto_daily_candles.key
    days = {(FIRST + dt.timedelta(days=i)).isoformat() for i in range((LAST - FIRST).days + 1)}
    assert repository_instance.get_materialized_partitions(key) == days
    records = repository_instance.get_records_for_run(result.run_id, limit=None).records
    kinds = Counter(r.event_log_entry.dagster_event_type for r in records)
    assert kinds[dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED] == len(days)
    assert kinds[dg.DagsterEventType.ASSET_MATERIALIZATION] == len(days)
    # The asset's own row knows the run (what the UI's "latest run" shows).
    planned = repository_instance.event_log_storage.get_latest_planned_materialization_info(key)
    assert planned is not None and planned.run_id == result.run_id
    # Per-partition row counts survive the batch write.
    (march_3,) = [
        r.event_log_entry.asset_materialization
        for r in records
        if r.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        and r.event_log_entry.asset_materialization.partition == "2024-03-03"
    ]
    assert march_3.metadata["dagster/partition_row_count"].value == 1
    # Every check is recorded per partition, each row carrying the planned event.
    url = repository_instance.event_log_storage.postgres_url.replace("+psycopg2", "")
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT check_name, count(partition), count(DISTINCT partition),"
            " min(length(evaluation_event))"
            " FROM asset_check_executions WHERE run_id = %s GROUP BY check_name",
            (result.run_id,),
        ).fetchall()
    assert len(rows) == 7
    assert all(count == distinct == len(days) and size > 0 for _, count, distinct, size in rows)


def test_a_pooled_connection_dropped_by_the_server_is_replaced_after_idling(
    repository_instance, monkeypatch: pytest.MonkeyPatch
):
    """A connection the server dropped while it sat in the pool (a database restart under a
    running webserver) is tested and replaced at checkout, so the next read succeeds."""
    import marketdata_pipeline.lib.postgres.dagster_storage as storage_module

    storage = repository_instance.event_log_storage
    assert storage.get_asset_records() is not None  # a connection now sits in the pool
    url = storage.postgres_url.replace("+psycopg2", "")
    with psycopg.connect(url, autocommit=True) as conn:
        dropped = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    assert dropped >= 1
    monkeypatch.setattr(storage_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert storage.get_asset_records() is not None
    # Without the test at checkout the pooled connection is used as it is, and fails.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    monkeypatch.setattr(storage_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
    with pytest.raises(Exception, match=r"(?i)terminat|closed|connection"):
        storage.get_asset_records()
