"""The sensor that turns changes in `marketdata.tracked_symbols` into history backfills.

Each evaluation reads the rows whose `change_seq` (bumped by a trigger on insert and on
re-activation, so plain-SQL changes count too) is newer than the cursor, and requests, per asset
class, one single-run backfill over the whole history window for exactly those symbols. Symbols
already tracked are not re-fetched or touched: the IO manager only replaces the new symbols' slice.
"""

import dagster as dg

from marketdata_pipeline.defs.candles.assets import crypto_daily_candles, stock_daily_candles
from marketdata_pipeline.defs.candles.partitions import START_DATE, range_tags
from marketdata_pipeline.defs.corporate_actions.assets import (
    CORPORATE_ACTION_ASSETS,
    STOCK_COMPANION_KEYS,
)
from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.tracked_symbols import changes_since
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol

ASSET_BY_CLASS = {
    AssetClass.STOCK: stock_daily_candles.key,
    AssetClass.CRYPTO: crypto_daily_candles.key,
}
SENSOR_INTERVAL_SECONDS = 30


@dg.sensor(
    name="tracked_symbols_sensor",
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    target=[stock_daily_candles, crypto_daily_candles, *CORPORATE_ACTION_ASSETS],
    description="Backfills the full history of symbols added to (or re-activated in) "
    "marketdata.tracked_symbols: one run per asset class for all new symbols together.",
)
def tracked_symbols_sensor(
    context: dg.SensorEvaluationContext, database: PostgresDatabase
) -> dg.SensorResult | dg.SkipReason:
    """Request history backfills for newly tracked symbols (see module docstring)."""
    cursor = int(context.cursor) if (context.cursor or "").isdigit() else 0
    with database.connect() as conn:
        changes, newest = changes_since(conn, cursor)
    if not changes:
        return dg.SkipReason(f"no symbols added or re-activated since change {cursor}")
    end = last_complete_day()
    if end < START_DATE:
        return dg.SensorResult(
            skip_reason=f"no complete day since MARKETDATA_START_DATE {START_DATE} yet",
            cursor=str(newest),
        )
    by_class: dict[AssetClass, list[str]] = {}
    for raw, cls in changes:
        try:
            sym = parse_symbol(raw, cls)
        except InputError as exc:
            context.log.warning(f"ignoring invalid tracked symbol: {exc}")
            continue
        by_class.setdefault(sym.asset_class, []).append(sym.symbol)
    requests = []
    for cls, symbols in sorted(by_class.items()):
        asset_key = ASSET_BY_CLASS[cls]
        asset = asset_key.path[-1]
        symbols = sorted(set(symbols))
        requests.append(
            dg.RunRequest(
                run_key=f"{cls.value}-symbols-through-change-{newest}",
                # Stock runs learn splits and repair older history in the same run.
                asset_selection=[
                    asset_key,
                    *(STOCK_COMPANION_KEYS if cls is AssetClass.STOCK else ()),
                ],
                run_config={"ops": {asset: {"config": {"symbols": symbols}}}},
                tags={
                    **range_tags(START_DATE, end),
                    "marketdata/trigger": "new-symbols",
                    "marketdata/symbols": ",".join(symbols)[:200],
                },
            )
        )
        context.log.info(f"requesting {asset} history {START_DATE}..{end} for {symbols}")
    if not requests:
        return dg.SensorResult(skip_reason="only invalid symbols changed", cursor=str(newest))
    return dg.SensorResult(run_requests=requests, cursor=str(newest))
