"""Small helpers the tests share: run a partition range through Dagster, read tables back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import polars as pl
import psycopg

from marketdata_pipeline.definitions import defs
from marketdata_pipeline.defs.candles.assets import CandleAssets
from marketdata_pipeline.defs.candles.jobs import build_candle_jobs
from marketdata_pipeline.defs.corporate_actions.assets import CORPORATE_ACTION_NAMES
from marketdata_pipeline.defs.reference.names import REFERENCE_KEYS
from marketdata_pipeline.defs.symbols.sensors import build_tracked_symbols_sensor
from marketdata_pipeline.lib.candles.batch import CandleBatch, SourceFamily
from marketdata_pipeline.lib.candles.schema import CANDLE_ASSET_NAMES, candle_run_config
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.postgres.io_manager import read_slice
from marketdata_pipeline.lib.postgres.store import write_batch
from marketdata_pipeline.lib.settings import load_settings
from marketdata_pipeline.lib.symbols import AssetClass

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
#: The stored returns, which every stock run maintains after the corporate actions.
stock_daily_returns_stored: dg.AssetsDefinition = defs.get_assets_def("stock_daily_returns_stored")
#: The reference assets (the ticker reference, ticker switches confirmed by stored bars).
REFERENCE_ASSETS: tuple[dg.AssetsDefinition, ...] = tuple(
    defs.get_assets_def(key) for key in REFERENCE_KEYS
)
#: The first partition (MARKETDATA_START_DATE of the test environment).
START_DATE: dt.date = load_settings().start_date
#: The code location's jobs and symbol sensor, built directly from the assets above (resolving
#: the whole repository inside `instance_for_test` would tie Dagster's global definitions
#: state to that short-lived instance).
candle_jobs = build_candle_jobs(
    CandleAssets(*CANDLE_ASSETS),
    (*REFERENCE_ASSETS, *CORPORATE_ACTION_ASSETS, stock_daily_returns_stored),
)
tracked_symbols_sensor = build_tracked_symbols_sensor(candle_jobs, START_DATE)


def range_tags(
    start: dt.date, end: dt.date, asset_class: AssetClass = AssetClass.STOCK
) -> dict[str, str]:
    """Run tags for one run over start..end (inclusive) of `asset_class`'s partitions: a stock
    range is snapped to the NYSE sessions inside it (its first and last partition keys)."""
    window = CandleWindow(start, end).trading_window(asset_class)
    if window is None:
        raise ValueError(f"no {asset_class} partition in {start}..{end}")
    return window.run_tags()


@dataclass(frozen=True)
class Runs:
    """The results of a `materialise` that ran stock and crypto assets as one run each (their
    partitions differ), read like one result."""

    results: tuple[dg.ExecuteInProcessResult, ...]

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    @property
    def all_events(self) -> list[dg.DagsterEvent]:
        return [e for r in self.results for e in r.all_events]

    def get_asset_check_evaluations(self) -> list[dg.AssetCheckEvaluation]:
        return [e for r in self.results for e in r.get_asset_check_evaluations()]

    def get_asset_materialization_events(self) -> list[dg.DagsterEvent]:
        return [e for r in self.results for e in r.get_asset_materialization_events()]


def _asset_class(asset: dg.AssetsDefinition) -> AssetClass:
    # Everything but the crypto candles belongs to stocks (the corporate-action companions too).
    return AssetClass.CRYPTO if asset.key == crypto_daily_candles.key else AssetClass.STOCK


def materialise(
    start: dt.date,
    end: dt.date,
    resources: dict,
    *,
    assets: Sequence[dg.AssetsDefinition] = CANDLE_ASSETS,
    symbols: dict[str, list[str]] | None = None,
    config: dict[str, dict] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult | Runs:
    """Materialise `assets` for the partitions start..end (inclusive) as one run per asset
    class, like the code location's jobs: stock assets over the sessions inside the range
    (skipped when it has none), crypto over every day. One class gives its run's result."""
    instance = instance or dg.DagsterInstance.ephemeral()
    results = []
    for cls in AssetClass:
        selected = [a for a in assets if _asset_class(a) is cls]
        window = CandleWindow(start, end).trading_window(cls)
        if not selected or window is None:
            continue
        results.append(
            dg.materialize(
                selected,
                resources=resources,
                instance=instance,
                tags=window.run_tags(),
                run_config=candle_run_config(
                    symbols and _only(symbols, selected), extra=config and _only(config, selected)
                ),
                raise_on_error=False,
            )
        )
    if not results:
        raise ValueError(f"no partition of {[a.key for a in assets]} in {start}..{end}")
    return results[0] if len(results) == 1 else Runs(tuple(results))


def _only(by_asset: dict[str, object], selected: Sequence[dg.AssetsDefinition]) -> dict:
    """The run config entries of the `selected` assets (Dagster refuses config for assets a run
    does not hold)."""
    names = {a.key.to_user_string() for a in selected}
    return {name: value for name, value in by_asset.items() if name in names}


def store_rows(
    conn: psycopg.Connection,
    table: str,
    frame: pl.DataFrame,
    *,
    start: dt.date,
    end_exclusive: dt.date,
    symbols: Sequence[str],
    source_family: SourceFamily = "polygon",
    **options: object,
) -> dict[str, int]:
    """Replace (start..end_exclusive x symbols) of `table` with `frame` through the store's one
    write (`write_batch`), as a run from `source_family` would; `options` go to the write."""
    batch = CandleBatch(
        asset_class=AssetClass.STOCK if table.startswith("stock") else AssetClass.CRYPTO,
        window=CandleWindow(start, end_exclusive - dt.timedelta(days=1)),
        symbols=tuple(symbols),
        source_family=source_family,
        candles=frame,
    )
    return write_batch(conn, table, batch, **options)


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


def reference_reads_age(database_url: str, days: int = 1) -> None:
    """Make the store's recorded reference reads `days` older, as the next day's first run
    finds them (the runs themselves keep today's date)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE marketdata.reference_refresh SET refreshed_on = refreshed_on - %s,"
            " refreshed_at = refreshed_at - make_interval(days => %s)",
            (days, days),
        )


def mark_identified(database_url: str, tickers: list[str]) -> None:
    """Record `tickers` as already identified (`identity_tracked`), as a store that ran
    before has them: a test of the candle requests then sees only those (the identity's own
    requests, once a ticker, are tested in defs/reference/test_hand_typed_identity.py)."""
    from marketdata_pipeline.lib.identity_tracked import IDENTITY_KIND
    from marketdata_pipeline.lib.postgres.universe import record_refresh

    with psycopg.connect(database_url) as conn:
        for ticker in tickers:
            record_refresh(conn, IDENTITY_KIND, ticker, dt.date.today(), 0)
