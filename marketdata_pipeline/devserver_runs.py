"""The runs `marketdata dev` launched that its stop left in flight: marked failed, then listed.

When the server stops (`devserver.run_dev`), the runs its webserver or daemon launched and that
are still queued or running will never finish: `settle_runs` marks them failed in the Dagster
instance, so none stays "Started" forever holding a slot of the run queue, and prints a line per
run. A symbol-history run of the tracked-symbols sensor that ended that way is requested again
on the next start by the code location's `history_recovery_sensor` (`defs/symbols/recovery.py`).

The instance is opened in a child process (`python -m marketdata_pipeline.devserver_runs`): its
`dagster.yaml` reads the storage URL from the environment of the Dagster processes, not this one.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from marketdata_pipeline.lib.run_triggers import HISTORY_TRIGGER, TRIGGER_TAG

if TYPE_CHECKING:
    import dagster as dg

#: How long the child that settles the runs may take (it imports Dagster, opens the instance).
SETTLE_SECONDS = 120
_RESULT_MARKER = "interrupted-runs: "

IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")
ENDED_BADLY = ("FAILURE", "CANCELED")


@dataclass(frozen=True)
class InterruptedRun:
    """A run of this server that the stop ended (marked failed here, or failed by itself)."""

    run_id: str
    status_before: str
    marked_failed: bool
    trigger: str | None
    job: str
    symbols: tuple[str, ...]


def _symbols_of(run_config: Mapping) -> tuple[str, ...]:
    found: list[str] = []
    for op in (run_config.get("ops") or {}).values():
        found.extend((op.get("config") or {}).get("symbols") or [])
    return tuple(found)


def settle_interrupted_runs(
    instance: dg.DagsterInstance, *, since: dt.datetime, stopping_since: dt.datetime
) -> list[InterruptedRun]:
    """Mark failed the runs touched since `since` that are still in flight; list what stopped.

    "Touched" (updated, not created, since the server started) so that a run queued before it
    and launched by its daemon counts too. Only runs launched through the code location (by the
    daemon or the webserver) count: a `marketdata backfill` executing in its own process at the
    same time shares the instance but is not ours to fail. Also listed: launched runs that
    failed or were canceled by themselves after `stopping_since` (a worker interrupted by the
    stop may record its own failure).
    """
    import dagster as dg

    interrupted = []
    for record in instance.get_run_records(filters=dg.RunsFilter(updated_after=since)):
        run = record.dagster_run
        if run.remote_job_origin is None:
            continue
        status = run.status.value
        if status in IN_FLIGHT:
            instance.report_run_failed(
                run,
                message="marketdata dev stopped while this run was in flight; it did not "
                "finish. Launch it again (a symbol-history run is requested again by the "
                "history_recovery_sensor on the next start).",
            )
            marked = True
        elif status in ENDED_BADLY and (record.end_time or 0) >= stopping_since.timestamp():
            marked = False
        else:
            continue
        interrupted.append(
            InterruptedRun(
                run_id=run.run_id,
                status_before=status,
                marked_failed=marked,
                trigger=run.tags.get(TRIGGER_TAG),
                job=run.job_name,
                symbols=_symbols_of(run.run_config or {}),
            )
        )
    return interrupted


def settle_runs(
    env: Mapping[str, str], since: dt.datetime, stopping_since: dt.datetime
) -> list[InterruptedRun]:
    """Settle the interrupted runs in a child process with `env`; a line per run.

    The instance is built in a child because its `dagster.yaml` reads the storage URL from the
    environment, and this process's own environment is not the Dagster processes'.
    """
    command = [sys.executable, "-m", "marketdata_pipeline.devserver_runs"]
    command += [since.isoformat(), stopping_since.isoformat()]
    try:
        result = subprocess.run(
            command, env=dict(env), capture_output=True, text=True, timeout=SETTLE_SECONDS
        )
        output, problem = result.stdout, (result.stderr or result.stdout).strip()
    except subprocess.TimeoutExpired:
        output, problem = "", f"no answer within {SETTLE_SECONDS} s"
    lines = [ln for ln in output.splitlines() if ln.startswith(_RESULT_MARKER)]
    if not lines:
        reason = problem.splitlines()[-1] if problem else "no answer"
        print(
            f"could not check the instance for runs left in flight ({reason}); see "
            "'Stopping `make dev`, and runs left STARTED' in docs/operations.md",
            flush=True,
        )
        return []
    runs = [
        InterruptedRun(**{**r, "symbols": tuple(r["symbols"])})
        for r in json.loads(lines[-1][len(_RESULT_MARKER) :])
    ]
    for run in runs:
        what = run.job
        if run.symbols:
            what += f" for {len(run.symbols)} symbols"
        # The history_recovery_sensor reads this failure when the daemon is back; a run that
        # recorded its own failure is requested again only if the stop interrupted it.
        again = ""
        if run.trigger == HISTORY_TRIGGER and run.symbols:
            again = "; its history is requested again on the next start" + (
                "" if run.marked_failed else " if the stop interrupted it"
            )
        verb = "marked failed" if run.marked_failed else "ended failed"
        print(f"run {run.run_id[:8]} ({what}, {run.status_before}): {verb}{again}", flush=True)
    return runs


def _main(argv: Sequence[str]) -> int:
    """Child-process entry of `settle_runs`: settle, print the runs as one JSON line."""
    import dagster as dg

    since, stopping_since = (dt.datetime.fromisoformat(a) for a in argv)
    with dg.DagsterInstance.get() as instance:
        runs = settle_interrupted_runs(instance, since=since, stopping_since=stopping_since)
    print(_RESULT_MARKER + json.dumps([asdict(r) for r in runs]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
