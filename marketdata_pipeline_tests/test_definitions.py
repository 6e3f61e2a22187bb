"""The code location loads and exposes the names the docs and contracts promise."""

from __future__ import annotations

import dagster as dg

from marketdata_pipeline.definitions import defs
from marketdata_pipeline.defs.resources import build_resources
from marketdata_pipeline.lib.settings import load_settings


def test_definitions_load_with_the_contract_names():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert keys == {
        "stock_daily_candles",
        "crypto_daily_candles",
        "stock_splits",
        "stock_dividends",
        "stock_split_adjustments",
        "stock_daily_returns_stored",
        # The documented example of a downstream asset (in no job).
        "stock_daily_breadth",
        # The Parquet export, materialised on demand (in no job).
        "candles_parquet",
        # The ticker reference and the switches confirmed by stored bars (security identity).
        "ticker_reference",
        "ticker_switches",
        # External tables shown in the lineage, not materialised by Dagster.
        "tracked_symbols",
        "rejected_candles",
    }
    # Stock and crypto partitions differ (NYSE sessions, UTC days): a job per asset class.
    for job in ("stock_candles_job", "crypto_candles_job"):
        assert defs.resolve_job_def(job) is not None
    sensors = {s.name: s for s in repo.sensor_defs}
    assert {"tracked_symbols_sensor", "history_recovery_sensor"} <= set(sensors)
    # Both run wherever a daemon runs, without being switched on in the UI.
    assert sensors["history_recovery_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
    assert sensors["tracked_symbols_sensor"].default_status == dg.DefaultSensorStatus.RUNNING
    assert {j.name for j in sensors["tracked_symbols_sensor"].jobs} == {
        "stock_candles_job",
        "crypto_candles_job",
    }
    schedules = {s.name: s for s in repo.schedule_defs}
    assert {name: s.job_name for name, s in schedules.items()} == {
        "stock_candle_revisions_schedule": "stock_candles_job",
        "crypto_candle_revisions_schedule": "crypto_candles_job",
    }
    for schedule in schedules.values():
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_candle_assets_are_daily_single_run_with_blocking_structural_checks():
    repo = defs.get_repository_def()
    for name in ("stock_daily_candles", "crypto_daily_candles"):
        asset = repo.assets_defs_by_key[dg.AssetKey(name)]
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
        assert isinstance(asset.partitions_def, dg.DailyPartitionsDefinition)
        specs = {spec.name: spec for spec in asset.check_specs}
        assert specs["ohlcv_schema"].blocking and specs["symbols_fetched"].blocking
        assert not specs["completeness"].blocking
        assert asset.descriptions_by_key[asset.key]


def test_corporate_actions_ride_along_with_every_stock_candle_run():
    repo = defs.get_repository_def()
    for name in ("stock_splits", "stock_dividends"):
        asset = repo.assets_defs_by_key[dg.AssetKey(name)]
        assert asset.partitions_def is None  # event tables refreshed by window, not per day
        assert {spec.name for spec in asset.check_specs} == {"records_valid"}
        assert asset.descriptions_by_key[asset.key]
    repair = repo.assets_defs_by_key[dg.AssetKey("stock_split_adjustments")]
    assert repair.backfill_policy == dg.BackfillPolicy.single_run()
    assert (
        repair.partitions_def
        == repo.assets_defs_by_key[dg.AssetKey("stock_daily_candles")].partitions_def
    )
    assert {spec.name for spec in repair.check_specs} == {
        "history_split_adjusted",
        "split_vs_move",
    }
    assert {k.to_user_string() for k in repair.dependency_keys} == {
        "stock_daily_candles",
        "stock_splits",
    }

    # The job alone selects a run's assets: the stock revision schedule, the CLI backfill and
    # the sensor (test_sensors.py) run stock_candles_job as a whole; the crypto job holds the
    # crypto candles only.
    def job_keys(name: str) -> set[str]:
        job = defs.resolve_job_def(name)
        return {k.to_user_string() for k in job.asset_layer.executable_asset_keys}

    assert job_keys("stock_candles_job") == {
        "stock_daily_candles",
        "stock_splits",
        "stock_dividends",
        "stock_split_adjustments",
        "stock_daily_returns_stored",
        "ticker_reference",
        "ticker_switches",
    }
    assert job_keys("crypto_candles_job") == {"crypto_daily_candles"}


def test_the_api_key_is_an_env_var_reference_not_a_value(monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", "sk-should-not-be-captured")
    resources = build_resources(load_settings())
    polygon = resources["polygon"]
    # Dagster resolves an EnvVar at launch and never shows its value in the UI.
    assert isinstance(polygon.api_key, dg.EnvVar)
    assert polygon.api_key == "POLYGON_API_KEY"
    assert "sk-should-not-be-captured" not in repr(polygon)
