"""Per-partition metadata of a range run: each partition gets exactly its own entries."""

# No `from __future__ import annotations`: Dagster reads the context annotation itself.
import datetime as dt

import dagster as dg
import pytest
from dagster._core.execution.context.metadata_logging import OutputMetadataAccumulator

from marketdata_pipeline.defs.candles.partition_metadata import add_partition_metadata
from marketdata_pipeline.lib.candles.window import CandleWindow

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2020-01-01", timezone="UTC")


@dg.asset(partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
def ranged(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Gives every partition of its run a count and its own key, twice for one key."""
    # The linear path is taken: if Dagster moves its accumulator, this says so.
    step = context.op_execution_context._step_execution_context
    assert isinstance(step._metadata_accumulator, OutputMetadataAccumulator)
    keys = context.partition_keys
    add_partition_metadata(
        context, {key: {"dagster/row_count": i, "key": key} for i, key in enumerate(keys)}
    )
    # A second call merges into what the first added.
    add_partition_metadata(context, {keys[0]: {"first": True}})
    with pytest.raises(ValueError, match="not partitions of this run"):
        add_partition_metadata(context, {"2019-12-31": {"dagster/row_count": 1}})
    return dg.MaterializeResult()


def test_each_partition_of_a_range_run_carries_its_own_metadata():
    first, last = dt.date(2020, 1, 1), dt.date(2021, 12, 31)
    result = dg.materialize(
        [ranged], instance=dg.DagsterInstance.ephemeral(), tags=CandleWindow(first, last).run_tags()
    )
    assert result.success
    events = {m.partition: m.metadata for m in result.asset_materializations_for_node("ranged")}
    assert len(events) == (last - first).days + 1
    for i, key in enumerate(sorted(events)):
        assert events[key]["dagster/row_count"].value == i
        assert events[key]["key"].value == key
    assert events["2020-01-01"]["first"].value is True
    assert all("first" not in m for key, m in events.items() if key != "2020-01-01")
