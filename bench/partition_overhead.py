"""Dagster's per-partition cost of a single-run range: stock event log, batching, pooling.

Through real Dagster instances (runs and events in Postgres, as in production), on the simulator:
`crypto_daily_candles` for one pair over two years (731 daily partitions), one run per setup:

- `stock_unbatched`: dagster-postgres' event log, `DAGSTER_EVENT_BATCH_SIZE=0` (Dagster's default);
- `stock_batched`: the same with `DAGSTER_EVENT_BATCH_SIZE` set (events written N at a time);
- `pooled_batched`: the repository's `dagster.yaml` (the pooled event log that also batches
  planned events) with batching, what the code location runs.

Each run's wall time is split into our pipeline's work and Dagster's bookkeeping (`run_phases`);
the figure is the bookkeeping per partition, against `stock_unbatched` in the same process.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg

from bench.common import (
    REPO_ROOT,
    BenchPostgres,
    Figure,
    SimulatorProcess,
    Timer,
    candle_asset,
    candle_resources,
    candle_run_config,
    dagster_instance,
    emit,
    module_main,
    postgres,
    range_tags,
    run_phases,
)

FULL = {"symbols": ["X:BTCUSD"], "first": "2023-01-01", "last": "2024-12-31", "batch": 5000}
SMOKE = {"symbols": ["X:BTCUSD"], "first": "2024-01-01", "last": "2024-01-10", "batch": 5000}
ASSET = "crypto_daily_candles"


@contextmanager
def repository_instance(storage_url: str) -> Iterator[Any]:
    """A Dagster instance from the repository's dagster.yaml on `storage_url`."""
    from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url

    before = os.environ.get("MARKETDATA_DAGSTER_STORAGE_URL")
    os.environ["MARKETDATA_DAGSTER_STORAGE_URL"] = sqlalchemy_url(storage_url)
    with tempfile.TemporaryDirectory(prefix="md-bench-dagster-") as home:
        shutil.copyfile(REPO_ROOT / "dagster.yaml", Path(home) / "dagster.yaml")
        instance = dg.DagsterInstance.from_config(home)
        try:
            yield instance
        finally:
            instance.dispose()
            if before is None:
                os.environ.pop("MARKETDATA_DAGSTER_STORAGE_URL", None)
            else:
                os.environ["MARKETDATA_DAGSTER_STORAGE_URL"] = before


def _one_run(instance: Any, resources: dict[str, Any], config: dict, tags: dict) -> tuple:
    with Timer() as wall:
        result = dg.materialize(
            [candle_asset(ASSET)], resources=resources, instance=instance, tags=tags,
            run_config=config,
        )  # fmt: skip
    if not result.success:
        raise RuntimeError("the single-run range failed")
    return wall.seconds, run_phases(instance, result.run_id, wall.seconds)


def run(
    *,
    pg: BenchPostgres | None = None,
    sim: Any | None = None,
    symbols: list[str] = FULL["symbols"],
    first: str = FULL["first"],
    last: str = FULL["last"],
    batch: int = FULL["batch"],
) -> list[Figure]:
    """Measure and print the per-partition figures; return them."""
    if sim is None:
        with SimulatorProcess() as own:
            return run(pg=pg, sim=own, symbols=symbols, first=first, last=last, batch=batch)
    figures: list[Figure] = []
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    partitions = (end - start).days + 1
    config = candle_run_config(ASSET, symbols)
    tags = range_tags(start, end, ASSET)
    before = os.environ.get("DAGSTER_EVENT_BATCH_SIZE")
    setups = {
        "stock_unbatched": (dagster_instance, 0),
        "stock_batched": (dagster_instance, batch),
        "pooled_batched": (repository_instance, batch),
    }
    results: dict[str, tuple[float, dict[str, float], int]] = {}
    try:
        with postgres(pg) as server, server.temporary_database("overhead") as url:
            resources = candle_resources(sim, url)
            for name, (make_instance, size) in setups.items():
                with (
                    server.temporary_database("dagster", migrated=False) as storage_url,
                    make_instance(storage_url) as instance,
                ):
                    # Dagster reads the variable at every event, so it can change between runs.
                    os.environ["DAGSTER_EVENT_BATCH_SIZE"] = str(size)
                    # Warm: the instance's tables, the simulator's bodies, the imports.
                    _one_run(instance, resources, config, range_tags(start, start, ASSET))
                    results[name] = (*_one_run(instance, resources, config, tags), size)
    finally:
        if before is None:
            os.environ.pop("DAGSTER_EVENT_BATCH_SIZE", None)
        else:
            os.environ["DAGSTER_EVENT_BATCH_SIZE"] = before

    anchor_ms = results["stock_unbatched"][1]["dagster_seconds"] / partitions * 1000
    for name, (wall, phases, size) in results.items():
        per_partition_ms = phases["dagster_seconds"] / partitions * 1000
        emit(
            Figure(
                f"partition_overhead.{name}",
                per_partition_ms,
                "ms",
                ratio=per_partition_ms / anchor_ms if anchor_ms else None,
                phrase="{ratio:.2f}x stock_unbatched",
                note=(
                    f"DAGSTER_EVENT_BATCH_SIZE={size}: run {wall:.2f} s for {partitions} "
                    f"partitions x {len(symbols)} symbol(s), pipeline "
                    f"{phases['pipeline_seconds']:.2f} s, Dagster {phases['dagster_seconds']:.2f} s"
                ),
            ),
            figures,
        )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.partition_overhead [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv)


if __name__ == "__main__":
    main()
