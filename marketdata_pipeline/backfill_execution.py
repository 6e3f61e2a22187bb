"""`marketdata backfill`'s runs: a `BackfillRequest` executed through Dagster, and how each ended.

The runs go through a real Dagster instance (`DAGSTER_HOME`, runs and events on Postgres), so
they show up in the UI next to UI-launched backfills. Each asset class is one single-run range
over its partitions (the assets use `BackfillPolicy.single_run()`) in its own job, since stock
partitions are NYSE sessions and crypto ones UTC days: the stock run (with its corporate-action
companions) covers the sessions inside the range, the crypto run every day. They execute in this
process one after the other, with Dagster's INFO log lines as progress.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marketdata_pipeline.backfill_request import BackfillRequest, BackfillRun
from marketdata_pipeline.backfill_summary import requests_made
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.run_triggers import CLI_TRIGGER, TRIGGER_TAG
from marketdata_pipeline.lib.settings import Settings


@dataclass(frozen=True)
class BackfillOutcome:
    """How one run ended."""

    run_id: str
    job: str
    window: CandleWindow
    success: bool
    failures: list[str]  # step failure messages
    # Stopped by Ctrl-C (SIGINT); `written` names the assets it had materialised by then.
    interrupted: bool = False
    written: tuple[str, ...] = ()
    # The API's dead end the run met (key refused, nothing listening), in one line.
    dead_end: str | None = None
    # Class names of the errors behind the failures (Dagster's wrappers unwrapped).
    error_classes: tuple[str, ...] = ()
    requests: dict[str, int] = field(default_factory=dict)  # sent, by kind (`requests_made`)


def run_backfill(
    settings: Settings,
    request: BackfillRequest,
    announce: Callable[[str], None] = print,
) -> list[BackfillOutcome]:
    """Run the request as one Dagster run per asset class (`BackfillRequest.runs`) on the
    `DAGSTER_HOME` instance, in this process; a failed run does not stop the next, but one
    interrupted (Ctrl-C) or at a dead end of the API (`dead_end`) is the last.

    First, on the same instance (opening one costs a few hundred ms), the runs a killed
    earlier command left STARTED are marked failed, each `announce`d in a line."""
    import dagster as dg

    from marketdata_pipeline.cli_runs import process_tags, settle_dead_cli_runs, terminal_logger
    from marketdata_pipeline.defs.build import build_defs
    from marketdata_pipeline.lib.polygon.resource import DEAD_END_TAG

    # The terminal shows the runs' progress; failures are reported once, by the summary.
    defs = dg.Definitions.merge(
        build_defs(settings), dg.Definitions(loggers={"console": terminal_logger})
    )
    outcomes = []
    with dg.DagsterInstance.get() as instance:
        for line in settle_dead_cli_runs(instance):
            announce(line)
        for run in request.runs():
            try:
                result = defs.resolve_job_def(run.job).execute_in_process(
                    run_config=run.run_config(),
                    instance=instance,
                    tags={**run.window.run_tags(), TRIGGER_TAG: CLI_TRIGGER, **process_tags()},
                    raise_on_error=False,
                )
            except KeyboardInterrupt:
                # Ctrl-C outside Dagster's own handling (while the run is being set up): the run
                # never started a step, so nothing of it was written.
                outcomes.append(BackfillOutcome("", run.job, run.window, False, [], True))
                break
            outcome = _outcome(result, run)
            stored = instance.get_run_by_id(result.run_id)
            if stored is not None and stored.tags.get(DEAD_END_TAG):
                outcome = dataclasses.replace(outcome, dead_end=stored.tags[DEAD_END_TAG])
            outcomes.append(outcome)
            # After Ctrl-C nothing more runs; after a dead end, the next run would meet it too.
            if outcome.interrupted or outcome.dead_end:
                break
    return outcomes


def _outcome(result, run: BackfillRun) -> BackfillOutcome:
    """How one `execute_in_process` result ended."""
    from marketdata_pipeline.cli_runs import INTERRUPTION_ERRORS

    failures, classes = [], []
    interrupted = False
    for event in result.all_events:
        error = None
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            if error is not None and error.cls_name not in INTERRUPTION_ERRORS:
                cause = _unwrapped(error)
                failures.append(f"step {event.step_key} failed: {cause.message.strip()}")
                classes.append(cause.cls_name or "")
        elif event.is_run_failure:
            error = getattr(event.event_specific_data, "error", None)
        interrupted = interrupted or (error is not None and error.cls_name in INTERRUPTION_ERRORS)
    materialisations = result.get_asset_materialization_events()
    written = tuple(sorted({e.asset_key.to_user_string() for e in materialisations}))
    return BackfillOutcome(
        result.run_id,
        run.job,
        run.window,
        result.success,
        failures,
        interrupted,
        written,
        error_classes=tuple(classes),
        requests=requests_made(materialisations),
    )


def _unwrapped(error: Any) -> Any:
    """The error behind Dagster's wrappers ("Error occurred while handling output ..."): the
    one whose message tells the user what happened (a `MixedSourcesError`, ...)."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error
