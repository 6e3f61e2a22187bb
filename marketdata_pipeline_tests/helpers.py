"""Small helpers the tests share: run a partition range through Dagster, read tables back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import dagster as dg
import polars as pl
import psycopg

from marketdata_pipeline.definitions import defs
from marketdata_pipeline.defs.candles.assets import CandleAssets
from marketdata_pipeline.defs.candles.jobs import build_candles_job
from marketdata_pipeline.defs.corporate_actions.assets import CORPORATE_ACTION_NAMES
from marketdata_pipeline.defs.symbols.sensors import build_tracked_symbols_sensor
from marketdata_pipeline.lib.candles.schema import CANDLE_ASSET_NAMES, candle_run_config
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.postgres.io_manager import read_slice
from marketdata_pipeline.lib.settings import load_settings

#: The code location's candle assets, built from the test environment's settings.
CANDLE_ASSETS: tuple[dg.AssetsDefinition, ...] = tuple(
    defs.get_assets_def(name) for name in CANDLE_ASSET_NAMES
)
stock_daily_candles, crypto_daily_candles = CANDLE_ASSETS
#: The corporate-action assets (splits, dividends, the split repair), likewise.
CORPORATE_ACTION_ASSETS: tuple[dg.AssetsDefinition, ...] = tuple(
    defs.get_assets_def(name) for name in CORPORATE_ACTION_NAMES
)
stock_splits, stock_dividends, stock_split_adjustments = CORPORATE_ACTION_ASSETS
#: The first partition (MARKETDATA_START_DATE of the test environment).
START_DATE: dt.date = load_settings().start_date
#: The code location's job and symbol sensor, built directly from the assets above (resolving
#: the whole repository inside `instance_for_test` would tie Dagster's global definitions
#: state to that short-lived instance).
candles_job = build_candles_job(CandleAssets(*CANDLE_ASSETS), CORPORATE_ACTION_ASSETS)
tracked_symbols_sensor = build_tracked_symbols_sensor(candles_job, START_DATE)


def range_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    """Run tags for one run over start..end (inclusive)."""
    return CandleWindow(start, end).run_tags()


def materialise(
    start: dt.date,
    end: dt.date,
    resources: dict,
    *,
    assets: Sequence[dg.AssetsDefinition] = CANDLE_ASSETS,
    symbols: dict[str, list[str]] | None = None,
    config: dict[str, dict] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialise `assets` for the partitions start..end (inclusive) as one run."""
    return dg.materialize(
        list(assets),
        resources=resources,
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags=range_tags(start, end),
        run_config=candle_run_config(symbols, extra=config),
        raise_on_error=False,
    )


def read_table(database_url: str, table: str) -> pl.DataFrame:
    """Every row of `marketdata.<table>`, ordered by symbol and day."""
    with psycopg.connect(database_url) as conn:
        return read_slice(conn, table=table)


def query(database_url: str, statement: str, params: Sequence[object] = ()) -> list[tuple]:
    """Rows of a SQL query on the test database."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(statement, params).fetchall()


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    """Check evaluations of a run by "asset:check" name."""
    return {
        f"{e.asset_key.path[-1]}:{e.check_name}": e for e in result.get_asset_check_evaluations()
    }
