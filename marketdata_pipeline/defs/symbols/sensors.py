"""The sensor that turns changes in `marketdata.tracked_symbols` into history backfills.

Each evaluation reads the rows whose `change_seq` (bumped by a trigger on insert and on
re-activation, so plain-SQL changes count too) is newer than the cursor, and requests, per asset
class, one single-run backfill over the whole history window for exactly those symbols, as a run
of that class's candle job (the stock window snapped to NYSE sessions, the partitions that exist).
Symbols already tracked are not re-fetched or touched: the IO manager only replaces the new
symbols' slice. A tracking rule added or re-activated (`marketdata.tracking_rules.change_seq`,
migration 20) gets one stock history run of exactly the tickers it expands to (run config
`rules`); the run first loads the ticker reference if today's is not loaded. The cursor holds
both sequences (`{"symbols": N, "rules": M}`; a bare number is read as the symbols' one).
"""

import datetime as dt
import json

import dagster as dg

from marketdata_pipeline.defs.candles.jobs import CANDLE_JOB_BY_CLASS, CandleJobs
from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline.lib.candles.schema import CANDLE_ASSET_BY_CLASS, candle_run_config
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.rule_changes import rule_changes_since
from marketdata_pipeline.lib.postgres.tracked_symbols import changes_since
from marketdata_pipeline.lib.run_triggers import HISTORY_TRIGGER, TRIGGER_TAG
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol

SENSOR_INTERVAL_SECONDS = 30
#: The tag naming a history run's symbols (comma-separated, cut at 200 characters).
SYMBOLS_TAG = "marketdata/symbols"


def build_tracked_symbols_sensor(jobs: CandleJobs, first_day: dt.date) -> dg.SensorDefinition:
    """The sensor requesting history from `first_day` for newly tracked symbols.

    Its runs belong to the named candle jobs (`stock_candles_job`, `crypto_candles_job`), so
    the UI lists them under those names instead of an anonymous job.
    """

    @dg.sensor(
        name="tracked_symbols_sensor",
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        jobs=list(jobs),
        description="Backfills the full history of symbols added to (or re-activated in) "
        "marketdata.tracked_symbols: one run per asset class for all new symbols together.",
    )
    def tracked_symbols_sensor(
        context: dg.SensorEvaluationContext, database: PostgresDatabase
    ) -> dg.SensorResult | dg.SkipReason:
        """Request history backfills for newly tracked symbols (see module docstring)."""
        return history_requests(context, database, first_day)

    return tracked_symbols_sensor


def history_requests(
    context: dg.SensorEvaluationContext, database: PostgresDatabase, first_day: dt.date
) -> dg.SensorResult | dg.SkipReason:
    """One single-run history request per asset class for the symbols changed since the
    cursor, and one stock history request for the tracking rules added since it."""
    cursor, rules_cursor = read_cursor(context.cursor)
    with database.connect() as conn:
        changes, newest = changes_since(conn, cursor)
        new_rules, newest_rule = rule_changes_since(conn, rules_cursor)
    next_cursor = json.dumps({"symbols": newest, "rules": newest_rule})
    if not changes and not new_rules:
        return dg.SkipReason(
            f"no symbols added or re-activated since change {cursor}, and no tracking rule "
            f"since change {rules_cursor}"
        )
    end = last_complete_day()
    if end < first_day:
        return dg.SensorResult(
            skip_reason=f"no complete day since MARKETDATA_START_DATE {first_day} yet",
            cursor=next_cursor,
        )
    history = CandleWindow(first_day, end)
    requests = _symbol_requests(context, changes, history, newest)
    if new_rules:
        requests.extend(_rule_requests(context, new_rules, history, newest_rule))
    if not requests:
        return dg.SensorResult(
            skip_reason="only invalid symbols, or none with a trading day yet, changed",
            cursor=next_cursor,
        )
    return dg.SensorResult(run_requests=requests, cursor=next_cursor)


def read_cursor(cursor: str | None) -> tuple[int, int]:
    """(symbols' change_seq, rules' change_seq) of a cursor; a bare number (the cursor of
    earlier versions) is the symbols' one."""
    text = (cursor or "").strip()
    if text.isdigit():
        return int(text), 0
    try:
        value = json.loads(text) if text else {}
        return int(value.get("symbols", 0)), int(value.get("rules", 0))
    except (ValueError, TypeError, AttributeError):
        return 0, 0


def _symbol_requests(
    context: dg.SensorEvaluationContext,
    changes: list[tuple[str, str]],
    history: CandleWindow,
    newest: int,
) -> list[dg.RunRequest]:
    """One history run per asset class of the changed symbols."""
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
        asset = CANDLE_ASSET_BY_CLASS[cls]
        symbols = sorted(set(symbols))
        window = history.trading_window(cls)
        if window is None:
            context.log.info(f"no {cls.value} trading day in {history} yet for {symbols}")
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{cls.value}-symbols-through-change-{newest}",
                # The job selects the run's assets: a stock run also learns splits, repairs
                # older history and confirms ticker switches (`defs/candles/jobs.py`).
                job_name=CANDLE_JOB_BY_CLASS[cls],
                run_config=candle_run_config({asset: symbols}),
                tags={
                    **window.run_tags(),
                    TRIGGER_TAG: HISTORY_TRIGGER,
                    SYMBOLS_TAG: ",".join(symbols)[:200],
                },
            )
        )
        context.log.info(f"requesting {asset} history {window} for {symbols}")
    return requests


def _rule_requests(
    context: dg.SensorEvaluationContext, rule_ids: list[int], history: CandleWindow, newest: int
) -> list[dg.RunRequest]:
    """One stock history run of the tickers the new rules expand to (`rules` run config)."""
    window = history.trading_window(AssetClass.STOCK)
    if window is None:
        return []
    asset = CANDLE_ASSET_BY_CLASS[AssetClass.STOCK]
    context.log.info(f"requesting {asset} history {window} for tracking rules {rule_ids}")
    return [
        dg.RunRequest(
            run_key=f"stock-rules-through-change-{newest}",
            job_name=CANDLE_JOB_BY_CLASS[AssetClass.STOCK],
            run_config=candle_run_config(extra={asset: {"rules": rule_ids}}),
            tags={
                **window.run_tags(),
                TRIGGER_TAG: HISTORY_TRIGGER,
                SYMBOLS_TAG: "rules " + ",".join(str(r) for r in rule_ids),
            },
        )
    ]
