"""The daily partitions shared by both candle assets.

One partitions definition for stocks and crypto, on UTC days, so both assets can be backfilled
together in one single-run range (Dagster requires a shared definition for that). A partition
key is the *trading date*: the New York session date for stocks, the UTC date for crypto. A UTC
day ends at 19:00/20:00 New York time, after the NYSE close, so with `end_offset=0` the newest
partition is complete for both markets.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg


def candle_partitions(start_date: dt.date) -> dg.DailyPartitionsDefinition:
    """Daily UTC partitions from `start_date` (the `MARKETDATA_START_DATE` setting)."""
    return dg.DailyPartitionsDefinition(
        start_date=start_date.isoformat(), timezone="UTC", end_offset=0
    )


def first_partition_day(partitions: dg.TimeWindowPartitionsDefinition) -> dt.date:
    """The first day that has a partition."""
    return partitions.start.date()
