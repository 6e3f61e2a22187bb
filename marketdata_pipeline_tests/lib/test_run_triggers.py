"""Every run says why it exists: the `marketdata/trigger` tag and the instance's run coordinator."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.run_coordinator.base import SubmitRunContext
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from marketdata_pipeline.lib.run_coordinator import TriggerTaggingRunCoordinator
from marketdata_pipeline.lib.run_triggers import (
    CLI_TRIGGER,
    RE_EXECUTION_TRIGGER,
    TRIGGER_TAG,
    UI_BACKFILL_TRIGGER,
    UI_LAUNCH_TRIGGER,
    trigger_for,
)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({TRIGGER_TAG: CLI_TRIGGER, "dagster/backfill": "x"}, CLI_TRIGGER),
        ({"dagster/backfill": "abcdefgh"}, UI_BACKFILL_TRIGGER),
        ({"dagster/backfill": "abcdefgh", "dagster/parent_run_id": "r1"}, RE_EXECUTION_TRIGGER),
        ({"dagster/schedule_name": "nightly"}, "schedule:nightly"),
        ({"dagster/sensor_name": "watcher"}, "sensor:watcher"),
        ({"dagster/from_ui": "true"}, UI_LAUNCH_TRIGGER),
        ({}, UI_LAUNCH_TRIGGER),
    ],
)
def test_trigger_for(tags: dict[str, str], expected: str):
    assert trigger_for(tags) == expected


@dg.op
def _noop() -> None:
    """Does nothing: the run only has to be submitted."""


@dg.job
def _noop_job() -> None:
    _noop()


def test_the_repository_instance_tags_every_submitted_run(repository_instance):
    instance = repository_instance
    coordinator = instance.run_coordinator
    assert isinstance(coordinator, TriggerTaggingRunCoordinator)
    # Still Dagster's queue with the limits of dagster.yaml's `concurrency` block.
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None and queue.max_concurrent_runs == 4
    assert [(t["key"], t["limit"]) for t in queue.tag_concurrency_limits] == [
        ("dagster/backfill", 2)
    ]

    def submit(tags: dict[str, str]) -> dg.DagsterRun:
        # A queued run needs the origin the webserver or daemon would give it.
        origin = RemoteJobOrigin(
            RemoteRepositoryOrigin(
                InProcessCodeLocationOrigin(LoadableTargetOrigin(python_file=__file__)),
                "__repository__",
            ),
            "_noop_job",
        )
        run = instance.create_run_for_job(_noop_job, tags=tags, remote_job_origin=origin)
        return coordinator.submit_run(SubmitRunContext(run, workspace=None))  # type: ignore[arg-type]

    from_ui_backfill = submit({"dagster/backfill": "qwertyui", "dagster/from_ui": "true"})
    assert from_ui_backfill.status == dg.DagsterRunStatus.QUEUED
    assert instance.get_run_by_id(from_ui_backfill.run_id).tags[TRIGGER_TAG] == (
        UI_BACKFILL_TRIGGER
    )
    launched = submit({})
    assert instance.get_run_by_id(launched.run_id).tags[TRIGGER_TAG] == UI_LAUNCH_TRIGGER
    # A run that already says why it exists keeps it.
    own = submit({TRIGGER_TAG: CLI_TRIGGER, "dagster/backfill": "asdfghjk"})
    assert instance.get_run_by_id(own.run_id).tags[TRIGGER_TAG] == CLI_TRIGGER
