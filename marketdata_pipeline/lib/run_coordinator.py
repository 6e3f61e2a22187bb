"""The instance's run coordinator (named in `dagster.yaml`): Dagster's queue, plus the trigger."""

from __future__ import annotations

from dagster import DagsterRun, QueuedRunCoordinator, SubmitRunContext

from marketdata_pipeline.lib.run_triggers import TRIGGER_TAG, trigger_for


class TriggerTaggingRunCoordinator(QueuedRunCoordinator):
    """Dagster's queued run coordinator (same queue, same `concurrency` limits from
    `dagster.yaml`) that first gives every submitted run its `marketdata/trigger` tag."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        """Tag the run if it has no trigger yet, then queue it as Dagster does."""
        run = context.dagster_run
        if not run.tags.get(TRIGGER_TAG):
            self._instance.add_run_tags(run.run_id, {TRIGGER_TAG: trigger_for(run.tags)})
        return super().submit_run(context)
