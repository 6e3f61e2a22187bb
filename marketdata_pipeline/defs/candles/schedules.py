"""The daily revision schedules, one per candle job.

Polygon revises recent bars after the close, and marks not-yet-final bars DELAYED. Every day each
schedule re-materialises the last complete day plus a trailing window of NYSE sessions (default
5) of its asset class as one run, which replaces revised and provisional bars. The two asset
classes have different partitions (NYSE sessions, UTC days), hence two jobs and two schedules;
the stock run's range is snapped to sessions, since its range tags must name partitions that
exist.
"""

import datetime as dt

import dagster as dg

from marketdata_pipeline.defs.candles.jobs import CandleJobs
from marketdata_pipeline.lib.calendar import last_complete_day, stock_sessions
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.dagster_private import UnresolvedAssetJobDefinition
from marketdata_pipeline.lib.run_triggers import SCHEDULE_TRIGGER, TRIGGER_TAG
from marketdata_pipeline.lib.settings import DEFAULT_REVISION_SESSIONS
from marketdata_pipeline.lib.symbols import AssetClass

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


def build_revision_schedules(
    jobs: CandleJobs, first_day: dt.date, trailing_sessions: int = DEFAULT_REVISION_SESSIONS
) -> list[dg.ScheduleDefinition]:
    """The stock and the crypto revision schedule (see module docstring)."""
    return [
        build_revision_schedule(jobs.for_class(cls), cls, first_day, trailing_sessions)
        for cls in (AssetClass.STOCK, AssetClass.CRYPTO)
    ]


def build_revision_schedule(
    job: UnresolvedAssetJobDefinition,
    asset_class: AssetClass,
    first_day: dt.date,
    trailing_sessions: int = DEFAULT_REVISION_SESSIONS,
) -> dg.ScheduleDefinition:
    """A schedule running `job` (of `asset_class`) over the last complete day and
    `trailing_sessions` before it."""

    @dg.schedule(
        name=f"{asset_class.value}_candle_revisions_schedule",
        cron_schedule=REVISION_CRON,
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Daily: re-fetch the {asset_class.value} candles of the last complete day "
        f"plus {trailing_sessions} trailing NYSE sessions (Polygon revises recent bars).",
    )
    def candle_revisions_schedule(context: dg.ScheduleEvaluationContext):
        """One run over the revision window ending at the last complete day."""
        window = revision_window(context.scheduled_execution_time, trailing_sessions, first_day)
        if window is None:
            return dg.SkipReason(f"no complete day since MARKETDATA_START_DATE {first_day} yet")
        keys = window.trading_window(asset_class)
        if keys is None:
            return dg.SkipReason(f"no {asset_class.value} trading day in {window}")
        return dg.RunRequest(
            run_key=None,
            tags={**keys.run_tags(), TRIGGER_TAG: SCHEDULE_TRIGGER},
        )

    return candle_revisions_schedule
