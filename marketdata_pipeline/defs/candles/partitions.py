"""The daily partitions of the candle assets: one partition per trading day of each market.

Stocks have a partition per NYSE session only (weekends and exchange holidays are excluded
through the time-window partitions' `exclusions`), crypto one per UTC day, so the partition view
of each asset is its completeness view: a green partition is a day with bars, and no stock
weekend or holiday partition shows green with no rows. A partition key is the *trading date*: the
New York session date for stocks, the UTC date for crypto, both on UTC day windows. A UTC day
ends at 19:00/20:00 New York time, after the NYSE close, so with `end_offset=0` the newest
partition is complete for both markets.

The two definitions differ, so Dagster cannot put both assets in one job or one backfill run:
each asset class has its own job (`jobs.py`).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from marketdata_pipeline.lib.calendar import CALENDAR_LAST_DAY, weekday_closures

#: Saturday and Sunday midnight (UTC, the partitions' time zone): the weekend partitions.
WEEKEND_CRON = "0 0 * * 6,0"


def stock_partitions(start_date: dt.date) -> dg.DailyPartitionsDefinition:
    """One partition per NYSE session from `start_date` (the `MARKETDATA_START_DATE` setting).

    The weekend is one cron exclusion; each weekday closure (about ten a year) is one datetime,
    listed through the end of the trading calendar.
    """
    closures = weekday_closures(start_date, CALENDAR_LAST_DAY)
    return dg.DailyPartitionsDefinition(
        start_date=start_date.isoformat(),
        timezone="UTC",
        end_offset=0,
        exclusions=[WEEKEND_CRON, *(dt.datetime.combine(day, dt.time()) for day in closures)],
    )


def crypto_partitions(start_date: dt.date) -> dg.DailyPartitionsDefinition:
    """One partition per UTC day from `start_date` (crypto trades every day)."""
    return dg.DailyPartitionsDefinition(
        start_date=start_date.isoformat(), timezone="UTC", end_offset=0
    )
