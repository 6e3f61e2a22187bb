"""A snapshot of the code location's shape: what a change to the definitions changes for users.

Asset keys, their checks (and which block), partitions (and their exclusions), backfill policy,
jobs and the executor each runs its steps with (the implicit asset job of the UI's Materialize
included), schedules, sensor, resource keys and the run config schema of the candle assets. A change
that alters any of them shows up as a diff of `snapshots/definitions.json`; regenerate it with
`MARKETDATA_UPDATE_SNAPSHOTS=1 pytest marketdata_pipeline_tests/test_definitions_snapshot.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from marketdata_pipeline.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def shape() -> dict:
    repo = defs.get_repository_def()
    assets = {}
    for key, asset in sorted(repo.assets_defs_by_key.items()):
        name = key.to_user_string()
        if not asset.is_executable:
            assets[name] = {"external": True, "deps": sorted(str(d) for d in asset.asset_deps[key])}
            continue
        partitions = asset.partitions_def
        exclusions = getattr(partitions, "exclusions", None) or ()
        assets[name] = {
            "group": asset.group_names_by_key[key],
            "kinds": sorted(asset.specs_by_key[key].kinds),
            "partitions": type(partitions).__name__ if partitions else None,
            "partition_timezone": getattr(partitions, "timezone", None),
            # Weekend cron rules, and how many single days (NYSE holidays) are excluded.
            "partition_exclusions": {
                "cron": sorted(e for e in exclusions if isinstance(e, str)),
                "days": sum(not isinstance(e, str) for e in exclusions),
            }
            if exclusions
            else None,
            "backfill_policy": str(asset.backfill_policy),
            "checks": {
                spec.name: {"blocking": spec.blocking}
                for spec in sorted(asset.check_specs, key=lambda s: s.name)
            },
            "io_manager": asset.get_io_manager_key_for_asset_key(key),
            "required_resources": sorted(asset.required_resource_keys),
            "config_fields": sorted(
                getattr(asset.op.config_schema.config_type, "fields", None) or []
                if asset.op.config_schema
                else []
            ),
            "freshness_policy": type(asset.specs_by_key[key].freshness_policy).__name__,
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        # In process for every job: one process per run, however it was launched.
        "executors": sorted({j.executor_def.name for j in repo.get_all_jobs()}),
        "schedules": {s.name: s.cron_schedule for s in repo.schedule_defs},
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "resources": sorted(repo.get_top_level_resources()),
    }


def test_definitions_match_the_snapshot():
    current = json.dumps(shape(), indent=2, sort_keys=True) + "\n"
    if os.environ.get("MARKETDATA_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text(), "definitions changed: review, then update snapshot"
