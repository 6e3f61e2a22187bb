"""Partition freshness: yesterday's candles must exist by 09:00 UTC.

Dagster's built-in time-partition freshness checks (partition-aware, unlike the newer
asset-level FreshnessPolicy), evaluated by their own sensor.
"""

from __future__ import annotations

import dagster as dg

from marketdata_pipeline.defs.candles.assets import CANDLE_ASSETS

FRESHNESS_DEADLINE_CRON = "0 9 * * *"

freshness_checks = dg.build_time_partition_freshness_checks(
    assets=list(CANDLE_ASSETS), deadline_cron=FRESHNESS_DEADLINE_CRON, timezone="UTC"
)
freshness_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks,
    name="candle_freshness_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
