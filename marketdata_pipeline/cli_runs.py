"""The runs `marketdata backfill` executes in its own process: their terminal output, the
process they belong to, how an interruption is recognised, and settling runs whose process died.

A command-line run executes in the command's process (`execute_in_process`), so no run launcher
watches it and Dagster's run monitoring never sees it: a process killed with SIGKILL (or a lost
machine) would leave its run `STARTED` for good. Every such run is therefore tagged with the host,
process id and process start time of the command, and the next `marketdata backfill`,
`marketdata demo` or `marketdata dev` on that host marks the runs of dead processes failed
(`settle_dead_cli_runs`).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import dagster as dg

from marketdata_pipeline.lib.run_triggers import CLI_TRIGGER, TRIGGER_TAG

HOST_TAG = "marketdata/cli_host"
PID_TAG = "marketdata/cli_pid"
#: The process's start time (Linux clock ticks since boot): a pid reused by another process
#: after a reboot or wrap-around is not mistaken for the run's own.
PROCESS_START_TAG = "marketdata/cli_process_start"
#: Statuses of a run that has not ended.
_IN_FLIGHT = (
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
)
#: Error class names Dagster records for a run or step stopped by Ctrl-C (SIGINT).
INTERRUPTION_ERRORS = frozenset({"DagsterExecutionInterruptedError", "KeyboardInterrupt"})


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` from /proc (None where there is no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may hold spaces, so split after it.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def process_tags() -> dict[str, str]:
    """Tags naming this process, for every run the command line executes."""
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    start = _process_start(os.getpid())
    if start is not None:
        tags[PROCESS_START_TAG] = start
    return tags


def _process_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive, but only the start time says if it is ours
    return start is None or _process_start(pid) in (start, None)


def settle_dead_cli_runs(instance: dg.DagsterInstance | None = None) -> list[str]:
    """Mark failed the command-line runs of this host still in flight whose process is gone;
    a line per run marked. Without `instance`, on the `DAGSTER_HOME` one."""
    if instance is None:
        with dg.DagsterInstance.get() as home_instance:
            return settle_dead_cli_runs(home_instance)
    host = socket.gethostname()
    lines = []
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=list(_IN_FLIGHT), tags={TRIGGER_TAG: CLI_TRIGGER, HOST_TAG: host}
        )
    )
    for run in runs:
        pid_text = run.tags.get(PID_TAG, "")
        if not pid_text.isdigit() or _process_alive(int(pid_text), run.tags.get(PROCESS_START_TAG)):
            continue
        instance.report_run_failed(
            run,
            message=f"the marketdata process that executed this run (pid {pid_text} on {host}) "
            "ended without finishing it (killed?); marked failed by the next marketdata "
            "command. Nothing of an unfinished step was written: rerun its range.",
        )
        window = "..".join(
            run.tags.get(f"dagster/asset_partition_range_{end}", "?") for end in ("start", "end")
        )
        lines.append(
            f"run {run.run_id[:8]} ({run.job_name}, {window}) was left {run.status.value} by a "
            f"process that died (pid {pid_text}): marked failed"
        )
    return lines


class _FailuresInTheSummary(logging.Filter):
    """Drops error records from the terminal: `marketdata backfill` reports every failure once,
    in its summary, and the run's event log (the Dagster UI) keeps them with stack traces."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


@dg.logger(
    dg.colored_console_logger.config_schema,
    description="Dagster's console logger without error records (the command's summary and "
    "the run's event log report failures).",
)
def terminal_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    """The console logger of command-line runs: progress and warnings, not failures."""
    logger = dg.colored_console_logger.logger_fn(init_context)
    logger.addFilter(_FailuresInTheSummary())
    return logger
