"""The sensor that requests again the history runs an interruption ended.

A history run of `tracked_symbols_sensor` that did not finish because its process went away
(a server stopped under it, a killed or restarted run worker, a worker that never started)
would otherwise never be requested again: the tracked-symbols sensor's cursor is past its
symbols. `history_recovery_sensor` is a Dagster run failure sensor, so it works wherever a
daemon runs (`make dev`, `dagster dev`, a deployed daemon), and it resumes from its own cursor
after a restart: failures recorded while the daemon was down (e.g. by `marketdata dev` marking
its runs in flight failed when it stops) are seen on its first tick back.

For such a run it bumps the symbols' `change_seq` (`request_history_again`), which the
tracked-symbols sensor reads as "new" on its next tick (a new run key). A run that failed by
itself (a failed step: a 401, bad data; an exception in the run) is not requested again: it
would fail the same way, again and again. Nor is a history already interrupted
`MAX_RECOVERIES` times: a worker killed each time (for memory, say) would loop too.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from marketdata_pipeline.cli_runs import INTERRUPTION_ERRORS
from marketdata_pipeline.defs.candles.jobs import CANDLE_JOB_BY_CLASS, CandleJobs
from marketdata_pipeline.defs.symbols.sensors import SENSOR_INTERVAL_SECONDS, SYMBOLS_TAG
from marketdata_pipeline.lib.candles.schema import CANDLE_ASSET_BY_CLASS
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.tracked_symbols import request_history_again
from marketdata_pipeline.lib.run_triggers import HISTORY_TRIGGER, TRIGGER_TAG
from marketdata_pipeline.lib.symbols import AssetClass

#: Dagster's failure reasons (`RunFailureReason`) that say the run's process went away.
INTERRUPTION_REASONS = frozenset({"UNEXPECTED_TERMINATION", "RUN_WORKER_RESTART", "START_TIMEOUT"})
#: The tag Dagster stores a run's failure reason in (absent when none was given).
FAILURE_REASON_TAG = "dagster/failure_reason"
#: A run marked failed from outside (`report_run_failed`) without a reason.
_NO_REASON = (None, "UNKNOWN")
_CLASS_BY_JOB = {job: cls for cls, job in CANDLE_JOB_BY_CLASS.items()}
#: How many times the same symbols' history is requested again after an interruption.
MAX_RECOVERIES = 3


def interruption(
    reason: str | None, step_error_classes: list[str | None], message: str | None = None
) -> str | None:
    """Why a failed run counts as interrupted (a phrase for the log), or None if it failed
    by itself.

    `reason` is the run's Dagster failure reason, `step_error_classes` the error class of each
    failed step. A run marked failed from outside with no reason (by `marketdata dev` when it
    stops, by the next `marketdata` command for a dead process, by Dagster's run monitoring
    for a dead worker) is an interruption unless a step had failed by itself first; so is a
    step failure that is only Dagster's interruption of the step (Ctrl-C, SIGINT).
    """
    if reason in INTERRUPTION_REASONS:
        return f"failure reason {reason}"
    if message and message.startswith("Exceeded maximum runtime"):
        # Run monitoring's time limit: the next run would meet the same limit.
        return None
    own_failures = [c for c in step_error_classes if c not in INTERRUPTION_ERRORS]
    if own_failures:
        return None
    if step_error_classes and reason in (*_NO_REASON, "STEP_FAILURE"):
        return "its steps were interrupted"
    if reason in _NO_REASON:
        return "marked failed from outside the run, with no step failed"
    return None


def history_symbols(run: dg.DagsterRun) -> tuple[AssetClass, list[str]] | None:
    """The asset class and symbols of a tracked-symbols history run; None for other runs."""
    cls = _CLASS_BY_JOB.get(run.job_name)
    if cls is None or run.tags.get(TRIGGER_TAG) != HISTORY_TRIGGER:
        return None
    ops: Mapping = (run.run_config or {}).get("ops") or {}
    config = (ops.get(CANDLE_ASSET_BY_CLASS[cls]) or {}).get("config") or {}
    symbols = list(config.get("symbols") or [])
    return (cls, symbols) if symbols else None


def recover_history(context: dg.RunFailureSensorContext, database: PostgresDatabase) -> None:
    """Request again the history of the failed run in `context` if it was interrupted."""
    run = context.dagster_run
    found = history_symbols(run)
    if found is None:
        return
    cls, symbols = found
    data = context.failure_event.event_specific_data
    reason_enum = getattr(data, "failure_reason", None)
    reason = reason_enum.value if reason_enum is not None else run.tags.get(FAILURE_REASON_TAG)
    step_errors = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error if event.step_failure_data else None
        step_errors.append(error.cls_name if error is not None else None)
    why = interruption(reason, step_errors, context.failure_event.message)
    if why is None:
        context.log.info(
            f"run {run.run_id[:8]} ({len(symbols)} {cls.value} symbols) failed by itself "
            f"(failure reason {reason}): not requested again"
        )
        return
    failed_before = _failed_history_runs(context.instance, run)
    if failed_before > MAX_RECOVERIES:
        context.log.warning(
            f"run {run.run_id[:8]} was interrupted ({why}), but the history of its "
            f"{len(symbols)} {cls.value} symbols already failed {failed_before} times: not "
            "requested again; see why in its runs, then backfill them (`marketdata backfill "
            "--symbols ...`)"
        )
        return
    with database.connect() as conn:
        bumped = request_history_again(conn, cls, symbols)
    context.log.info(
        f"run {run.run_id[:8]} was interrupted ({why}): history of {bumped} of its "
        f"{len(symbols)} {cls.value} symbols requested again"
    )


def _failed_history_runs(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int:
    """How many failed history runs (`run` included) there are of `run`'s symbols."""
    tags = {TRIGGER_TAG: HISTORY_TRIGGER, SYMBOLS_TAG: run.tags.get(SYMBOLS_TAG, "")}
    return instance.get_runs_count(
        dg.RunsFilter(job_name=run.job_name, statuses=[dg.DagsterRunStatus.FAILURE], tags=tags)
    )


def build_history_recovery_sensor(jobs: CandleJobs) -> dg.SensorDefinition:
    """The run failure sensor of the candle jobs that requests interrupted histories again."""

    @dg.run_failure_sensor(
        name="history_recovery_sensor",
        monitored_jobs=list(jobs),
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests again the history of tracked_symbols_sensor runs that an "
        "interruption ended (a stopped server, a killed or restarted run worker, a worker that "
        "never started); runs whose steps failed by themselves are left failed.",
    )
    def history_recovery_sensor(
        context: dg.RunFailureSensorContext, database: PostgresDatabase
    ) -> None:
        """Request interrupted history runs again (see module docstring)."""
        recover_history(context, database)

    return history_recovery_sensor
