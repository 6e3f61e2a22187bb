"""Why a run exists: the `marketdata/trigger` tag every run of the instance carries.

Our own launchers tag their runs (`marketdata backfill`, the revision schedule, the symbol
sensor). Runs launched from the UI (a Materialize click, a partition backfill, a re-execution)
carry only Dagster's own tags, so the instance's run coordinator (`run_coordinator.py`) adds the
trigger to every run it is handed without one, at submission: the tag is on the run from the
moment it is queued, and the UI's run list can be filtered by it for every run, whoever launched
it. (No Dagster import here: the CLI reads these names without loading Dagster.)
"""

from __future__ import annotations

from collections.abc import Mapping

TRIGGER_TAG = "marketdata/trigger"
#: Values our own launchers set.
CLI_TRIGGER = "cli-backfill"
SCHEDULE_TRIGGER = "revision-schedule"
HISTORY_TRIGGER = "new-symbols"
#: Values the run coordinator derives from Dagster's tags.
UI_BACKFILL_TRIGGER = "ui-backfill"
RE_EXECUTION_TRIGGER = "re-execution"
UI_LAUNCH_TRIGGER = "ui-launch"

# Dagster's own tags, by which a run launched without our tag is recognised.
_BACKFILL_TAG = "dagster/backfill"
_SCHEDULE_TAG = "dagster/schedule_name"
_SENSOR_TAG = "dagster/sensor_name"
_PARENT_RUN_TAG = "dagster/parent_run_id"


def trigger_for(tags: Mapping[str, str]) -> str:
    """The trigger of a run with `tags`: its own tag if set, else derived from Dagster's.

    Order matters: a backfill's runs also carry no schedule or sensor tag, but a re-executed
    backfill run carries both the backfill and the parent tag, and is a re-execution.
    """
    if tags.get(TRIGGER_TAG):
        return tags[TRIGGER_TAG]
    if tags.get(_PARENT_RUN_TAG):
        return RE_EXECUTION_TRIGGER
    if tags.get(_BACKFILL_TAG):
        return UI_BACKFILL_TRIGGER
    if tags.get(_SCHEDULE_TAG):
        return f"schedule:{tags[_SCHEDULE_TAG]}"
    if tags.get(_SENSOR_TAG):
        return f"sensor:{tags[_SENSOR_TAG]}"
    return UI_LAUNCH_TRIGGER
