"""The tracked-symbols sensor's tick that creates a new symbol's history run, as the daemon runs it.

The daemon's own code path (`dagster._daemon.sensor.execute_sensor_iteration`): the code location
in a code server of its own (started by the workspace, as `dagster dev` and `dagster-daemon run`
do), the sensor evaluated there over gRPC (its `tracked_symbols` query), and the run created in
this process (`instance.create_run`: execution plan, run row, one "planned" event row per
partition of the range) and queued. The symbol is added to `tracked_symbols` just before the
timed tick; the code location is loaded before it. The history runs from `first` to the last
complete day, one stock symbol: its run covers `stock_daily_candles` and its companions.

- **Anchor**: dagster-postgres' stock event log (`storage: postgres`) and no
  `DAGSTER_EVENT_BATCH_SIZE`: what a daemon does without the repository's `dagster.yaml`.
- `repository`: the repository's `dagster.yaml` (the pooled event log), no
  `DAGSTER_EVENT_BATCH_SIZE` (a daemon started by hand, e.g. `dagster-daemon run`).
- `repository_batched`: the same with `DAGSTER_EVENT_BATCH_SIZE=1000`, as `marketdata dev`
  gives its daemon.

Each setup has its own instance database and code server; the figure is the tick's wall time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator
from typing import Any

import psycopg

from bench.common import (
    REPO_ROOT,
    BenchPostgres,
    Figure,
    Timer,
    dagster_instance,
    emit,
    module_main,
    postgres,
)
from bench.partition_overhead import repository_instance
from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.settings import EVENT_BATCH_SIZE
from marketdata_pipeline.lib.symbols import AssetClass, Symbol

FULL = {"first": "2020-01-01"}
SMOKE = {"first": None, "days": 10}
#: What the issue asks: the tick well under the sensor's interval.
TARGET_SECONDS = 10.0
SENSOR_INTERVAL_SECONDS = 30


@contextlib.contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) variables for the block; the code server inherits them."""
    before = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _tick(instance: Any, candles_url: str, symbol: str) -> tuple[float, dict[str, Any]]:
    """Load the code location in a code server, add `symbol`, time one sensor iteration."""
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.sensor import execute_sensor_iteration

    target = ModuleTarget(
        module_name="marketdata_pipeline.definitions",
        attribute="defs",
        working_directory=str(REPO_ROOT),
        location_name="marketdata",
    )
    logger = logging.getLogger("bench.sensor_tick")
    with create_test_daemon_workspace_context(target, instance) as workspace:
        location = workspace.create_request_context().get_code_location("marketdata")
        assert location is not None
        with psycopg.connect(candles_url) as conn:
            add_symbols(conn, [Symbol(symbol, AssetClass.STOCK)])
        with Timer() as timer:
            for _ in execute_sensor_iteration(workspace, logger, None, None):
                pass
    runs = instance.get_runs()
    if len(runs) != 1:
        raise RuntimeError(f"the tick created {len(runs)} runs, expected the history run")
    planned = instance.get_records_for_run(
        runs[0].run_id, of_type=_planned_type(), limit=None
    ).records
    return timer.seconds, {"planned_rows": len(planned), "tags": dict(runs[0].tags)}


def _planned_type() -> Any:
    import dagster as dg

    return dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED


def run(
    *,
    pg: BenchPostgres | None = None,
    first: str | None = FULL["first"],
    days: int | None = None,
) -> list[Figure]:
    """Measure and print the tick of each setup; return the figures."""
    end = last_complete_day()
    start = dt.date.fromisoformat(first) if first else end - dt.timedelta(days=(days or 10) - 1)
    partitions = (end - start).days + 1
    setups = {
        "stock_unbatched": (dagster_instance, None),
        "repository": (repository_instance, None),
        "repository_batched": (repository_instance, EVENT_BATCH_SIZE),
    }
    results: dict[str, tuple[float, dict[str, Any]]] = {}
    with postgres(pg) as server:
        for name, (make_instance, batch_size) in setups.items():
            with (
                server.temporary_database("tick_candles") as candles_url,
                server.temporary_database("tick_dagster", migrated=False) as storage_url,
                _environment(
                    {
                        "MARKETDATA_DATABASE_URL": candles_url,
                        "MARKETDATA_DAGSTER_STORAGE_URL": sqlalchemy_url(storage_url),
                        "MARKETDATA_START_DATE": start.isoformat(),
                        "DAGSTER_EVENT_BATCH_SIZE": batch_size,
                        # The run is only queued here, never launched: no API is called.
                        "POLYGON_API_KEY": "bench-key-not-secret",
                        "POLYGON_BASE_URL": "http://127.0.0.1:9",
                    }
                ),
                make_instance(storage_url) as instance,
            ):
                results[name] = _tick(instance, candles_url, "AAPL")

    figures: list[Figure] = []
    anchor = results["stock_unbatched"][0]
    for name, (seconds, facts) in results.items():
        is_anchor = name == "stock_unbatched"
        emit(
            Figure(
                f"sensor_tick.{name}",
                seconds,
                "s",
                ratio=None if is_anchor else seconds / anchor,
                phrase="{ratio:.3f}x stock_unbatched",
                anchor="anchor" if is_anchor else None,
                target=None if is_anchor else f"<= {TARGET_SECONDS:.0f} s",
                met=None if is_anchor else seconds <= TARGET_SECONDS,
                note=(
                    f"{partitions} daily partitions ({start}..{end}), "
                    f"{facts['planned_rows']} planned rows; sensor interval "
                    f"{SENSOR_INTERVAL_SECONDS} s"
                ),
            ),
            figures,
        )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.sensor_tick [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv)


if __name__ == "__main__":
    main()
