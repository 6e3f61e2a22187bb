"""`PooledPostgresEventLogStorage`: dagster-postgres' event log, cheaper per partition.

A single-run range over N daily partitions makes Dagster record N "materialisation planned"
events when the run is created and N materialisations when it ends. With the stock
`PostgresEventLogStorage` each planned event is its own INSERT, NOTIFY and index transaction,
each on a new connection (the engine holds none open between statements): about 25-40 ms per
partition on a busy two-core machine (docs/benchmarks.md), most of a long backfill's
bookkeeping. This subclass changes three things and nothing else:

- **One pooled connection per process** (plus a small overflow), recycled hourly and tested
  before use after a second idle (`_ping_when_idle`), instead of a
  new connection per statement.
- **A range's planned events written as one batch, whoever creates the run.** The storage says
  it takes a run's planned partitions as one event per asset
  (`supports_partition_subset_in_asset_materialization_planned_events`, the hook Dagster asks
  before creating a run), and stores that event as exactly the rows Dagster would otherwise
  have sent one by one: one "planned" row per partition, so the UI still shows a failed run's
  partitions as failed and a running one's as in progress. They go in as one INSERT (serialised
  once per asset, see `_planned_rows`) and one index transaction, doing per event what the
  stock `store_event` does (event row, asset-event tags, the asset's row, which keeps the last
  event per asset). Creating a run thus costs a fixed number of statements whatever the range,
  in every process that creates runs: the daemon's sensor and backfill ticks, the webserver,
  the command line, without relying on `DAGSTER_EVENT_BATCH_SIZE` in their environment
  (without it, each of a ten-year history run's 5,000 planned events was its own statement:
  over a minute in the sensor's tick).
  Materialisation batches (`DAGSTER_EVENT_BATCH_SIZE` > 0) already work this way upstream.
- **A planned check serialised once.** A check planned over N partitions is stored as N rows
  that carry the same serialised event; upstream serialises it again for every row (about 4 ms
  a partition per check here), this class once.

Configured in `dagster.yaml` as the instance's `event_log_storage` (same `postgres_url`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from dagster import DagsterEvent, DagsterEventType, EventLogEntry, serialize_value
from dagster_postgres.event_log.event_log import PostgresEventLogStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

from marketdata_pipeline.lib.dagster_private import (
    AssetCheckExecutionRecordStatus,
    AssetCheckExecutionsTable,
    AssetMaterializationPlannedData,
    ConfigurableClassData,
    SqlEventLogStorageTable,
)

#: Connections kept per process: the run worker writes events from one thread at a time.
POOL_SIZE = 1
POOL_OVERFLOW = 4
POOL_RECYCLE_SECONDS = 3600
#: A pooled connection idle longer than this is tested before use (`_ping_when_idle`).
PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN = "marketdata_checked_in"
#: A partition key no real one equals, serialised in place of each key (see `_planned_rows`).
_PLACEHOLDER = f"marketdata-partition-{uuid.uuid4().hex}"
_PLACEHOLDER_JSON = json.dumps(_PLACEHOLDER)


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """`PostgresEventLogStorage` with a pooled connection and batched planned events."""

    def __init__(self, postgres_url: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(postgres_url, *args, **kwargs)
        self._engine.dispose()
        self._engine = create_pg_engine(
            self.postgres_url,
            self._token_provider,
            isolation_level="AUTOCOMMIT",
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            pool_recycle=POOL_RECYCLE_SECONDS,
        )
        _ping_when_idle(self._engine)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresEventLogStorage:
        """Built from the same configuration as the stock Postgres event log."""
        return cls(
            pg_url_from_config(config_value),
            inst_data=inst_data,
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        """Yes: a run's planned partitions arrive as one event per asset (see module doc)."""
        return True

    def store_event(self, event: EventLogEntry) -> None:
        """A planned range as its per-partition rows in one INSERT; anything else as upstream."""
        if _is_planned_range(event):
            self._store_planned_batch(per_partition_planned_events(event))
        else:
            super().store_event(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Write planned-materialisation events in one INSERT; anything else as upstream."""
        planned = [
            one
            for event in events
            if _is_planned(event)
            for one in per_partition_planned_events(event)
        ]
        rest = [e for e in events if not _is_planned(e)]
        if planned:
            self._store_planned_batch(planned)
        if rest:
            super().store_event_batch(rest)

    def _store_planned_batch(self, events: Sequence[EventLogEntry]) -> None:
        rows = self._planned_rows(events)
        if not rows:
            return
        # One INSERT of every row (executemany with a single page): compiling a multi-row
        # VALUES statement instead took longer than the server's work for thousands of rows.
        insert = SqlEventLogStorageTable.insert().returning(
            SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
        )
        with self._connect() as conn:
            result = conn.execution_options(insertmanyvalues_page_size=len(rows)).execute(
                insert, rows
            )
            event_ids = [int(row[0]) for row in result.fetchall()]
        # The asset's own row records its latest event; earlier events of the same asset in
        # the batch would be overwritten by it anyway.
        last: dict[Any, tuple[EventLogEntry, int]] = {}
        for event, event_id in zip(events, event_ids, strict=True):
            last[event.get_dagster_event().asset_key] = (event, event_id)
        with self.index_transaction() as conn:
            self._store_asset_event_tags(conn, events, event_ids)
            for event, event_id in last.values():
                self._store_asset_event(conn, event, event_id)

    def _planned_rows(self, events: Sequence[EventLogEntry]) -> list[dict[str, Any]]:
        """The event-log rows of planned events, as `_event_to_row` makes them.

        The planned events of one range differ only in their partition: each run of such events
        is serialised once, with a placeholder partition that is then replaced by each key's
        JSON (serialising every event was a third of a ten-year run's creation).
        """
        rows: list[dict[str, Any]] = []
        template: tuple[EventLogEntry, dict[str, Any]] | None = None
        for event in events:
            blank = _with_partition(event, None)
            if template is None or template[0] != blank:
                row = self._event_to_row(_with_partition(event, _PLACEHOLDER))
                template = (blank, row) if row["event"].count(_PLACEHOLDER_JSON) == 1 else None
            partition = event.get_dagster_event().event_specific_data.partition
            if template is None:
                rows.append(self._event_to_row(event))
            else:
                text = template[1]["event"].replace(_PLACEHOLDER_JSON, json.dumps(partition))
                rows.append({**template[1], "event": text, "partition": partition})
        return rows

    def _store_asset_check_evaluation_planned(
        self, event: EventLogEntry, event_id: int | None
    ) -> None:
        """One row per planned partition of the check, as upstream, the event serialised once."""
        planned = event.get_dagster_event().asset_check_planned_data
        partition_keys = (
            planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        )
        serialized = serialize_value(event)
        timestamp = self._event_insert_timestamp(event)
        rows = [
            dict(
                asset_key=planned.asset_key.to_string(),
                check_name=planned.check_name,
                partition=partition_key,
                run_id=event.run_id,
                execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
                evaluation_event=serialized,
                evaluation_event_timestamp=timestamp,
                evaluation_event_storage_id=event_id,
            )
            for partition_key in partition_keys
        ]
        # Parameters sent as one executemany page, as `_store_planned_batch` does: a compiled
        # multi-row VALUES of thousands of serialised events cost more than the server's work.
        with self.index_connection() as conn:
            conn.execution_options(insertmanyvalues_page_size=max(1, len(rows))).execute(
                AssetCheckExecutionsTable.insert(), rows
            )


def _ping_when_idle(engine: Any) -> None:
    """Test a pooled connection before use when it sat idle for `PING_AFTER_IDLE_SECONDS`.

    A pooled connection can outlive a database restart (a webserver or daemon kept running
    across `marketdata db stop`/`start`), so it is tested before use, as `pool_pre_ping` does.
    But `pool_pre_ping` tests it at every checkout, and a run checks one out for every
    statement: 214 of a one-day run's 553 statements were pings. A connection checked in
    less than a second ago was working then; a dead one raises `DisconnectionError`, which
    makes the pool discard it and connect again (SQLAlchemy's pessimistic-disconnect recipe).
    """

    @sqlalchemy.event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_SECONDS:
            return  # just connected, or in use a moment ago
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        except Exception as exc:
            raise sqlalchemy.exc.DisconnectionError(str(exc)) from exc
        finally:
            cursor.close()

    @sqlalchemy.event.listens_for(engine, "checkin")
    def _mark(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()


def _is_planned(event: EventLogEntry) -> bool:
    dagster_event = event.dagster_event
    return (
        dagster_event is not None
        and dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    )


def _is_planned_range(event: EventLogEntry) -> bool:
    return (
        _is_planned(event)
        and event.get_dagster_event().event_specific_data.partitions_subset is not None
    )


def _with_partition(event: EventLogEntry, partition: str | None) -> EventLogEntry:
    """A planned event for one partition as the same event for `partition`."""
    dagster_event = event.get_dagster_event()
    planned: AssetMaterializationPlannedData = dagster_event.event_specific_data
    return event._replace(
        dagster_event=dagster_event._replace(
            event_specific_data=planned._replace(partition=partition)
        )
    )


def per_partition_planned_events(event: EventLogEntry) -> list[EventLogEntry]:
    """A planned event over a set of partitions as one planned event per partition.

    Each is the event Dagster itself builds for a partition when its storage does not take
    sets (`DagsterEvent.build_asset_materialization_planned_event`), with the set's run,
    step, level and time. An event for one partition or none is returned as it is.
    """
    dagster_event = event.get_dagster_event()
    planned: AssetMaterializationPlannedData = dagster_event.event_specific_data
    if planned.partitions_subset is None:
        return [event]
    return [
        event._replace(
            dagster_event=DagsterEvent.build_asset_materialization_planned_event(
                dagster_event.job_name,
                dagster_event.step_key,
                AssetMaterializationPlannedData(planned.asset_key, partition=key),
            )
        )
        for key in planned.partitions_subset.get_partition_keys()
    ]
