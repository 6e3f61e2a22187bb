"""The Dagster code location: candle assets, their checks, job, schedule, sensors, resources."""

from __future__ import annotations

import dagster as dg

from marketdata_pipeline.defs.candles.assets import CANDLE_ASSETS
from marketdata_pipeline.defs.candles.jobs import candles_job
from marketdata_pipeline.defs.candles.schedules import (
    build_revision_schedule,
    trailing_sessions_from_env,
)
from marketdata_pipeline.defs.resources import build_resources
from marketdata_pipeline.defs.symbols.sensors import tracked_symbols_sensor

# "Yesterday's candles exist by 09:00 UTC": partition-aware freshness for both assets.
freshness_checks = dg.build_time_partition_freshness_checks(
    assets=list(CANDLE_ASSETS), deadline_cron="0 9 * * *", timezone="UTC"
)
freshness_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks,
    name="candle_freshness_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
)

defs = dg.Definitions(
    assets=list(CANDLE_ASSETS),
    asset_checks=list(freshness_checks),
    jobs=[candles_job],
    schedules=[build_revision_schedule(trailing_sessions_from_env())],
    sensors=[tracked_symbols_sensor, freshness_sensor],
    resources=build_resources(),
)
