"""Every Dagster private API the project uses, in one place (pinned: dagster==1.13.27).

Dagster's `dagster._...` modules may change in any release. Importing them only here means an
upgrade that moves one fails in this module and in its test
(`marketdata_pipeline_tests/lib/test_dagster_private.py` imports each name), not somewhere in a
run. Each name is loaded on first use (PEP 562), so a module that needs one pays only for it:
the event log's tables pull in SQLAlchemy and Alembic, which the code location does not need.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Where each private name lives, and why the public API is not enough.
_SOURCES: dict[str, str] = {
    # The return type of `dg.define_asset_job` (the jobs and schedules are annotated with it);
    # Dagster exports no public name for it.
    "UnresolvedAssetJobDefinition": "dagster._core.definitions.unresolved_asset_job_definition",
    # Per-partition metadata of a multi-partition run (`defs/candles/ingest.py`):
    # `context.add_output_metadata` has no partition argument in 1.13, and recording it per
    # partition through the public API costs one event each.
    "AssetMetadataHandle": "dagster._core.execution.context.metadata_logging",
    "OutputMetadataAccumulator": "dagster._core.execution.context.metadata_logging",
    # The event log's batched writes (`lib/postgres/dagster_storage.py`): Dagster writes one row
    # per partition through public calls; the batch needs the planned-event payload, the
    # check-execution status, the storage's tables and a configurable storage's class data.
    "AssetMaterializationPlannedData": "dagster._core.events",
    "AssetCheckExecutionRecordStatus": "dagster._core.storage.asset_check_execution_record",
    "AssetCheckExecutionsTable": "dagster._core.storage.event_log.schema",
    "SqlEventLogStorageTable": "dagster._core.storage.event_log.schema",
    "ConfigurableClassData": "dagster._serdes",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str) -> Any:
    """Import a private name on first use (and keep it, so later uses cost nothing)."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value
