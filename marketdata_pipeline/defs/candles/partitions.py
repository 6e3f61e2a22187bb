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

from marketdata_pipeline.lib.settings import load_settings

START_DATE: dt.date = load_settings().start_date

daily_candle_partitions = dg.DailyPartitionsDefinition(
    start_date=START_DATE.isoformat(), timezone="UTC", end_offset=0
)

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def range_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    """Run tags that make one run cover the partitions `start`..`end` (inclusive)."""
    return {RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()}
