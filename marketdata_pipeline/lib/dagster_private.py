"""Every Dagster private API the project uses, in one place (pinned: dagster==1.13.27).

Dagster's `dagster._...` modules may change in any release. Importing them only here means an
upgrade that moves one fails in this module, at import, and in its test
(`marketdata_pipeline_tests/lib/test_dagster_private.py` imports each name), not somewhere in a
run. Each name says why the public API is not enough.
"""

from __future__ import annotations

# The return type of `dg.define_asset_job` (the jobs and schedules are annotated with it);
# Dagster exports no public name for it.
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

# The event log's batched writes (`lib/postgres/dagster_storage.py`): the planned-event payload,
# the check-execution status, the storage's tables and the class data of a configurable
# storage. Dagster writes one row per partition through public calls; the batch needs these.
from dagster._core.events import AssetMaterializationPlannedData
from dagster._core.execution.context.metadata_logging import (
    AssetMetadataHandle,
    OutputMetadataAccumulator,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)
from dagster._serdes import ConfigurableClassData

# `OutputMetadataAccumulator` / `AssetMetadataHandle` (imported above): per-partition metadata
# of a multi-partition run (`defs/candles/ingest.py`). `context.add_output_metadata` has no
# partition argument in 1.13, and recording it per partition through the public API costs one
# event each.

__all__ = [
    "AssetCheckExecutionRecordStatus",
    "AssetCheckExecutionsTable",
    "AssetMaterializationPlannedData",
    "AssetMetadataHandle",
    "ConfigurableClassData",
    "OutputMetadataAccumulator",
    "SqlEventLogStorageTable",
    "UnresolvedAssetJobDefinition",
]
