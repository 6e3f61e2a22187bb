"""Trading calendars: which days have a daily bar, and which day is the last complete one.

Stocks trade on NYSE sessions (exchange-calendars' XNYS, which knows the ad-hoc closures such as
2001-09-11 and hurricane Sandy in 2012, read from its table in `nyse_closures.py`); crypto
trades every UTC day.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from marketdata_pipeline.lib.nyse_closures import FIRST_DAY, LAST_DAY, WEEKDAY_CLOSURES
from marketdata_pipeline.lib.symbols import AssetClass

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC

CALENDAR_FIRST_DAY = FIRST_DAY
CALENDAR_LAST_DAY = LAST_DAY


def _check_range(start: dt.date, end: dt.date) -> None:
    if start < CALENDAR_FIRST_DAY or end > CALENDAR_LAST_DAY:
        raise ValueError(
            f"calendar covers {CALENDAR_FIRST_DAY}..{CALENDAR_LAST_DAY}, asked for {start}..{end}"
        )


def stock_sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    """NYSE sessions from `start` to `end`, both inclusive."""
    if end < start:
        return []
    _check_range(start, end)
    return [d for d in crypto_days(start, end) if is_stock_session(d)]


def is_stock_session(day: dt.date) -> bool:
    """True when NYSE has a regular session on `day`."""
    return day.weekday() < 5 and day not in WEEKDAY_CLOSURES  # 5, 6: Saturday, Sunday


def weekday_closures(start: dt.date, end: dt.date) -> list[dt.date]:
    """Monday-to-Friday days from `start` to `end` (inclusive) without an NYSE session: the
    holidays and the ad-hoc closures (2001-09-11, hurricane Sandy), i.e. what a weekend rule
    alone does not exclude."""
    if end < start:
        return []
    _check_range(start, end)
    return sorted(d for d in WEEKDAY_CLOSURES if start <= d <= end)


def crypto_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every UTC calendar day from `start` to `end`, both inclusive."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def trading_days(asset_class: AssetClass, start: dt.date, end: dt.date) -> list[dt.date]:
    """The days on which `asset_class` has a daily bar, inclusive range."""
    if asset_class is AssetClass.STOCK:
        return stock_sessions(start, end)
    return crypto_days(start, end)


def last_complete_day(now: dt.datetime | None = None) -> dt.date:
    """The last day whose daily bars are complete for both markets: yesterday in UTC.

    A UTC day ends at 19:00/20:00 New York time, after the NYSE close, so it is complete for
    stocks too. This matches the daily partitions (UTC, `end_offset=0`).
    """
    now = now or dt.datetime.now(UTC)
    return now.astimezone(UTC).date() - dt.timedelta(days=1)


def market_day_start(asset_class: AssetClass, day: dt.date) -> dt.datetime:
    """Start of `day` in the market's time zone, as an aware UTC datetime."""
    tz = NEW_YORK if asset_class is AssetClass.STOCK else UTC
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(UTC)
