"""The Dagster code location: candle and corporate-action assets, checks, job, schedule, sensors,
resources."""

from __future__ import annotations

import dagster as dg

from marketdata_pipeline.defs.candles.assets import CANDLE_ASSETS
from marketdata_pipeline.defs.candles.freshness import freshness_checks, freshness_sensor
from marketdata_pipeline.defs.candles.jobs import candles_job
from marketdata_pipeline.defs.candles.schedules import (
    build_revision_schedule,
    trailing_sessions_from_env,
)
from marketdata_pipeline.defs.corporate_actions.assets import CORPORATE_ACTION_ASSETS
from marketdata_pipeline.defs.resources import build_resources
from marketdata_pipeline.defs.symbols.sensors import tracked_symbols_sensor

defs = dg.Definitions(
    assets=[*CANDLE_ASSETS, *CORPORATE_ACTION_ASSETS],
    asset_checks=list(freshness_checks),
    jobs=[candles_job],
    schedules=[build_revision_schedule(trailing_sessions_from_env())],
    sensors=[tracked_symbols_sensor, freshness_sensor],
    resources=build_resources(),
    # Runs print INFO and above to the terminal: a single-run range records a DEBUG event per
    # partition, which would flood `make dev`. Every event still goes to the event log.
    loggers={"console": dg.colored_console_logger.configured({"log_level": "INFO"})},
)
