"""`build_defs`: every Dagster definition of the code location, from one `Settings`."""

from __future__ import annotations

import warnings

import dagster as dg

from marketdata_pipeline.defs.candles.assets import build_candle_assets
from marketdata_pipeline.defs.candles.jobs import build_candle_jobs
from marketdata_pipeline.defs.candles.metadata import EXTERNAL_ASSETS
from marketdata_pipeline.defs.candles.partitions import crypto_partitions, stock_partitions
from marketdata_pipeline.defs.candles.schedules import build_revision_schedules
from marketdata_pipeline.defs.corporate_actions.assets import build_corporate_action_assets
from marketdata_pipeline.defs.examples.assets import build_example_assets
from marketdata_pipeline.defs.exports import candles_parquet
from marketdata_pipeline.defs.reference.assets import build_reference_assets
from marketdata_pipeline.defs.resources import build_resources
from marketdata_pipeline.defs.returns.assets import build_returns_asset
from marketdata_pipeline.defs.symbols.recovery import build_history_recovery_sensor
from marketdata_pipeline.defs.symbols.sensors import build_tracked_symbols_sensor
from marketdata_pipeline.lib.settings import Settings


def build_defs(
    settings: Settings, executor: dg.ExecutorDefinition = dg.in_process_executor
) -> dg.Definitions:
    """Assets, jobs, schedules, sensor and resources for `settings` (nothing else is read).

    Every run executes its steps with `executor`: in the run's own process by default, whoever
    launched it (see "One process per run" in docs/architecture.md). `bench.run_worker` builds
    the same definitions with Dagster's multiprocess executor, its anchor.
    """
    with warnings.catch_warnings():
        # `backfill_policy` is still labelled beta in 1.13, but single-run ranges are the
        # documented way to backfill a rate-limited API in one run, and the Dagster packages
        # are pinned: the label would only add noise to every command's output.
        warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy")
        sessions = stock_partitions(settings.start_date)
        assets = build_candle_assets(sessions, crypto_partitions(settings.start_date))
        # The split repair runs with the stock candles, so it shares their session partitions.
        corporate_actions = build_corporate_action_assets(sessions, settings.start_date)
        # Stored returns follow the candles and the events in every stock run.
        returns = build_returns_asset(sessions)
        # In no job: users materialise the example from the UI.
        examples = build_example_assets(sessions)
    reference = build_reference_assets(settings.start_date)
    # Stock runs load the ticker reference first (at most once a day; see its docstring).
    jobs = build_candle_jobs(assets, (*reference, *corporate_actions, returns))
    return dg.Definitions(
        assets=[
            *EXTERNAL_ASSETS,
            *reference,
            *assets,
            *corporate_actions,
            returns,
            *examples,
            candles_parquet,
        ],
        jobs=list(jobs),
        schedules=build_revision_schedules(jobs, settings.start_date, settings.revision_sessions),
        sensors=[
            build_tracked_symbols_sensor(jobs, settings.start_date),
            # Interrupted history runs are requested again in every deployment with a daemon.
            build_history_recovery_sensor(jobs),
        ],
        # The console shows INFO and above (`python_logs` in dagster.yaml): a single-run range
        # records a DEBUG event per partition. Every event still goes to the event log.
        resources=build_resources(settings),
        # The default for every job, the implicit asset job of the UI's Materialize included.
        executor=executor,
    )
