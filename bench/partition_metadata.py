"""Per-partition metadata of a single-run range: Dagster's `add_asset_metadata`, key by key,
against `add_partition_metadata` (defs/candles/ingest.py), which adds the same entries at once.

A candle run gives each of its partitions its own `dagster/partition_row_count`. Dagster's
method checks every key against the run's whole partition range and copies all entries added so
far, so a run
over N partitions pays O(N^2); ours checks the keys once and extends the step's metadata once.
Measured in a real Dagster run (in-memory instance) of a daily-partitioned asset, at 1x and 10x the
partitions, inside the asset so only the metadata calls are timed.
"""

# No `from __future__ import annotations`: Dagster reads the asset's context annotation.
import datetime as dt
import time
from typing import Any

import dagster as dg

from bench.common import Figure, emit, module_main

FULL = {"days": 730}
SMOKE = {"days": 20}


def _time_metadata(days: int, method: str) -> float:
    """Seconds the asset spends giving each of `days` partitions its row count via `method`."""
    from marketdata_pipeline.defs.candles.partition_metadata import add_partition_metadata
    from marketdata_pipeline.lib.candles.window import CandleWindow

    partitions = dg.DailyPartitionsDefinition(start_date="2000-01-01", timezone="UTC")
    seconds: list[float] = []

    @dg.asset(partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def ranged(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """A range run that only records per-partition metadata."""
        keys = context.partition_keys
        began = time.perf_counter()
        if method == "dagster":
            for i, key in enumerate(keys):
                context.add_asset_metadata({"dagster/partition_row_count": i}, partition_key=key)
        else:
            add_partition_metadata(
                context, {key: {"dagster/partition_row_count": i} for i, key in enumerate(keys)}
            )
        seconds.append(time.perf_counter() - began)
        return dg.MaterializeResult()

    first = dt.date(2000, 1, 1)
    window = CandleWindow(first, first + dt.timedelta(days=days - 1))
    # An in-memory instance: only the asset's own metadata calls are timed, and writing
    # thousands of partitions' events to a SQLite file would only make the run long.
    result = dg.materialize(
        [ranged], instance=dg.DagsterInstance.ephemeral(), tags=window.run_tags()
    )
    assert result.success
    return seconds[0]


def run(*, days: int = FULL["days"]) -> list[Figure]:
    """Both methods at `days` and 10x `days` partitions; ratios against Dagster's method."""
    figures: list[Figure] = []
    for scale, n in (("1x", days), ("10x", days * 10)):
        anchor = _time_metadata(n, "dagster")
        ours = _time_metadata(n, "ours")
        emit(Figure(f"partition_metadata.dagster_{scale}", anchor, "s", note=f"{n} partitions"),
             figures)  # fmt: skip
        emit(
            Figure(
                f"partition_metadata.ours_{scale}",
                ours,
                "s",
                ratio=ours / anchor if anchor else None,
                anchor=f"add_asset_metadata key by key ({n} partitions)",
            ),
            figures,
        )
    by_name: dict[str, Any] = {f.name: f.value for f in figures}
    for method in ("dagster", "ours"):
        growth = (
            by_name[f"partition_metadata.{method}_10x"] / by_name[f"partition_metadata.{method}_1x"]
        )
        emit(Figure(f"partition_metadata.{method}_growth", growth, "x", note="10x the partitions"),
             figures)  # fmt: skip
    return figures


if __name__ == "__main__":
    module_main(__doc__, run, smoke=SMOKE, full=FULL)
