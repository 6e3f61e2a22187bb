"""The daily revision schedule.

Polygon revises recent bars after the close, and marks not-yet-final bars DELAYED. Every day the
schedule re-materialises the last complete day plus a trailing window of NYSE sessions (default
5) for both assets as one run, which replaces revised and provisional bars.
"""

import datetime as dt
import os

import dagster as dg

from marketdata_pipeline.defs.candles.jobs import candles_job
from marketdata_pipeline.defs.candles.partitions import START_DATE, range_tags
from marketdata_pipeline.lib.calendar import last_complete_day, stock_sessions
from marketdata_pipeline.lib.errors import ConfigError

DEFAULT_TRAILING_SESSIONS = 5
#: 06:00 UTC is 01:00/02:00 New York: after-hours trading is over and bars have settled.
REVISION_CRON = "0 6 * * *"


def trailing_sessions_from_env() -> int:
    """`MARKETDATA_REVISION_SESSIONS` (trailing NYSE sessions re-fetched daily), default 5."""
    raw = os.environ.get("MARKETDATA_REVISION_SESSIONS", "").strip()
    if not raw:
        return DEFAULT_TRAILING_SESSIONS
    if not raw.isdigit() or not 0 <= int(raw) <= 250:
        raise ConfigError(f"MARKETDATA_REVISION_SESSIONS {raw!r} must be a number from 0 to 250")
    return int(raw)


def revision_window(now: dt.datetime, trailing_sessions: int) -> tuple[dt.date, dt.date] | None:
    """The (start, end) days a revision run covers at `now`, or None before the start date.

    End is the last complete day; start goes back `trailing_sessions` NYSE sessions before it
    (calendar days in between are included, which covers crypto's weekends too).
    """
    end = last_complete_day(now)
    if end < START_DATE:
        return None
    sessions = stock_sessions(end - dt.timedelta(days=trailing_sessions * 2 + 10), end)
    before = [d for d in sessions if d < end]
    start = (
        before[-trailing_sessions]
        if trailing_sessions and len(before) >= trailing_sessions
        else end
    )
    return max(start, START_DATE), end


def build_revision_schedule(
    trailing_sessions: int = DEFAULT_TRAILING_SESSIONS,
) -> dg.ScheduleDefinition:
    """A schedule that refreshes the last complete day and `trailing_sessions` before it."""

    @dg.schedule(
        name="candle_revisions_schedule",
        cron_schedule=REVISION_CRON,
        execution_timezone="UTC",
        job=candles_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Daily: re-fetch the last complete day plus {trailing_sessions} trailing "
        "NYSE sessions of both candle assets (Polygon revises recent bars).",
    )
    def candle_revisions_schedule(context: dg.ScheduleEvaluationContext):
        """One run over the revision window ending at the last complete day."""
        window = revision_window(context.scheduled_execution_time, trailing_sessions)
        if window is None:
            return dg.SkipReason(f"no complete day since MARKETDATA_START_DATE {START_DATE} yet")
        start, end = window
        return dg.RunRequest(
            run_key=None,
            tags={**range_tags(start, end), "marketdata/trigger": "revision-schedule"},
        )

    return candle_revisions_schedule
