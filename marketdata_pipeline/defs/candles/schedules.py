"""The daily revision schedule.

Polygon revises recent bars after the close, and marks not-yet-final bars DELAYED. Every day the
schedule re-materialises the last complete day plus a trailing window of NYSE sessions (default
5) for both assets as one run, which replaces revised and provisional bars.
"""

import datetime as dt

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from marketdata_pipeline.lib.calendar import last_complete_day, stock_sessions
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.settings import DEFAULT_REVISION_SESSIONS

#: 06:00 UTC is 01:00/02:00 New York: after-hours trading is over and bars have settled.
REVISION_CRON = "0 6 * * *"


def revision_window(
    now: dt.datetime, trailing_sessions: int, first_day: dt.date
) -> CandleWindow | None:
    """The window a revision run covers at `now`, or None before `first_day`.

    End is the last complete day; start goes back `trailing_sessions` NYSE sessions before it
    (calendar days in between are included, which covers crypto's weekends too).
    """
    end = last_complete_day(now)
    if end < first_day:
        return None
    sessions = stock_sessions(end - dt.timedelta(days=trailing_sessions * 2 + 10), end)
    before = [d for d in sessions if d < end]
    start = (
        before[-trailing_sessions]
        if trailing_sessions and len(before) >= trailing_sessions
        else end
    )
    return CandleWindow(max(start, first_day), end)


def build_revision_schedule(
    job: UnresolvedAssetJobDefinition,
    first_day: dt.date,
    trailing_sessions: int = DEFAULT_REVISION_SESSIONS,
) -> dg.ScheduleDefinition:
    """A schedule that refreshes the last complete day and `trailing_sessions` before it."""

    @dg.schedule(
        name="candle_revisions_schedule",
        cron_schedule=REVISION_CRON,
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Daily: re-fetch the last complete day plus {trailing_sessions} trailing "
        "NYSE sessions of both candle assets (Polygon revises recent bars).",
    )
    def candle_revisions_schedule(context: dg.ScheduleEvaluationContext):
        """One run over the revision window ending at the last complete day."""
        window = revision_window(context.scheduled_execution_time, trailing_sessions, first_day)
        if window is None:
            return dg.SkipReason(f"no complete day since MARKETDATA_START_DATE {first_day} yet")
        return dg.RunRequest(
            run_key=None,
            tags={**window.run_tags(), "marketdata/trigger": "revision-schedule"},
        )

    return candle_revisions_schedule
