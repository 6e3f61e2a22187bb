"""The corporate-action assets: split and dividend events, and split-adjusted history kept true.

`stock_splits` and `stock_dividends` are not partitioned: they are event tables keyed by event
date, refreshed by one whole-market query over a window (a few pages), so a partition per day
would show thousands of partitions for what is one cheap request. `stock_split_adjustments` is
partitioned like the candles and depends on `stock_daily_candles` and `stock_splits`, so any run
that fetches candles and learns of a split (the revision schedule, `marketdata backfill`, the
symbol sensor's history runs) repairs the older history in the same run.
"""
# No `from __future__ import annotations`: Dagster reads the real annotation objects.

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
from pydantic import Field

from marketdata_pipeline.defs.corporate_actions import checks
from marketdata_pipeline.defs.corporate_actions.history import bring_history_current
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.polygon.corporate_actions import fetch_dividends, fetch_splits
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.corporate_actions import (
    record_dividend_history,
    symbols_without_dividend_history,
    upsert_dividends,
    upsert_splits,
)
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.returns import TABLE as RETURNS_TABLE
from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols
from marketdata_pipeline.lib.settings import parse_date
from marketdata_pipeline.lib.symbols import AssetClass

NEW_YORK = ZoneInfo("America/New_York")
#: Dividends of the whole market re-read on each refresh: ex-dates this many days back (the
#: vendor adds and corrects records after the fact).
DEFAULT_DIVIDEND_LOOKBACK_DAYS = 45
#: Tickers per dividend-history query (`ticker.any_of`), keeping the URL short.
TICKERS_PER_QUERY = 100
GROUP = "corporate_actions"


class EventWindowConfig(dg.Config):
    """Run configuration of an event refresh (all optional)."""

    start: str | None = Field(
        default=None,
        description="First event date (YYYY-MM-DD) of the whole-market query. Default: "
        "MARKETDATA_START_DATE for splits, today minus lookback_days for dividends.",
    )
    end: str | None = Field(
        default=None, description="Last event date (YYYY-MM-DD). Default: today (New York)."
    )
    lookback_days: int = Field(
        default=DEFAULT_DIVIDEND_LOOKBACK_DAYS,
        ge=0,
        description="Dividends only: days of ex-dates of the whole market re-read each refresh.",
    )


def _today() -> dt.date:
    # Events are dated in New York; a split executing today is already in force.
    return dt.datetime.now(NEW_YORK).date()


def event_window(config: EventWindowConfig, default_start: dt.date) -> tuple[dt.date, dt.date]:
    """The inclusive event-date window of a refresh, validated."""
    try:
        start = parse_date(config.start, "start") if config.start else default_start
        end = parse_date(config.end, "end") if config.end else _today()
    except InputError as exc:
        raise dg.Failure(f"run config: {exc}") from None
    if end < start:
        raise dg.Failure(f"run config: end {end} is before start {start}")
    return start, end


#: The assets a run that fetches stock candles includes to keep history true (and, after them,
#: the stored returns of what changed).
CORPORATE_ACTION_NAMES = ("stock_splits", "stock_dividends", "stock_split_adjustments")
STOCK_COMPANION_KEYS = tuple(dg.AssetKey(name) for name in (*CORPORATE_ACTION_NAMES, RETURNS_TABLE))


def build_corporate_action_assets(
    partitions: dg.PartitionsDefinition, start_date: dt.date
) -> tuple[dg.AssetsDefinition, ...]:
    """`stock_splits`, `stock_dividends` (events since `start_date`, the first partition) and
    `stock_split_adjustments` (on the candles' `partitions`)."""

    @dg.asset(
        group_name=GROUP,
        kinds={"polygon", "postgres"},
        check_specs=[checks.records_spec("stock_splits", "split")],
        metadata={"dagster/table_name": "marketdata.stock_splits"},
    )
    def stock_splits(
        context: dg.AssetExecutionContext,
        config: EventWindowConfig,
        polygon: PolygonResource,
        database: PostgresDatabase,
    ):
        """Stock splits of the whole US market, in `marketdata.stock_splits`.

        One query by execution date over MARKETDATA_start_date..today (a page or two: the whole
        market splits a few hundred times a year), so a split the vendor adds or corrects anywhere
        in the stored history is learned. Splits are upserted, keyed (symbol, execution_date); a
        new one, or a changed ratio, gets a fresh `learned_at`, which marks older stored bars of
        that symbol stale until `stock_split_adjustments` re-fetches them.
        """
        start, end = event_window(config, start_date)
        client = polygon.get_client()
        before = client.stats.attempts
        fetch = fetch_splits(client, start, end)
        with database.connect() as conn:
            counts = upsert_splits(conn, fetch.frame)
        requests = client.stats.attempts - before
        learned = [f"{symbol} {day}" for symbol, day in counts.learned]
        context.log.info(
            f"stock_splits {start}..{end}: {fetch.frame.height} splits in {fetch.pages} pages, "
            f"{counts.new} new, {counts.changed} with a changed ratio"
        )
        yield checks.records_result("split", fetch.frame.height, fetch.rejected)
        yield dg.MaterializeResult(
            metadata={
                "window": f"{start}..{end}",
                "pages": fetch.pages,
                "requests": requests,
                "records": fetch.frame.height,
                "records_left_out": len(fetch.rejected),
                "new": counts.new,
                "ratio_changed": counts.changed,
                "learned": dg.MetadataValue.json(learned[:50]),
            }
        )

    @dg.asset(
        group_name=GROUP,
        kinds={"polygon", "postgres"},
        check_specs=[checks.records_spec("stock_dividends", "dividend")],
        metadata={"dagster/table_name": "marketdata.stock_dividends"},
    )
    def stock_dividends(
        context: dg.AssetExecutionContext,
        config: EventWindowConfig,
        polygon: PolygonResource,
        database: PostgresDatabase,
    ):
        """Cash dividends of US stocks, in `marketdata.stock_dividends`.

        Amounts are per share as paid (never split-adjusted). Each refresh re-reads the ex-dates of
        the last `lookback_days` for the whole market (a page or two; the market pays tens of
        thousands of dividends a year, so re-reading all history daily would cost dozens of pages).
        Active tracked stocks whose history is not loaded yet (new ones, or all of them on the first
        run) get their dividends since MARKETDATA_start_date in one query per 100 tickers. Feeds
        the total return of `marketdata.stock_daily_returns`.
        """
        start, end = event_window(config, _today() - dt.timedelta(days=config.lookback_days))
        with database.connect() as conn:
            tracked, _invalid = active_symbols(conn, AssetClass.STOCK)
            pending = symbols_without_dividend_history(
                conn, [s.symbol for s in tracked], start_date
            )
        client = polygon.get_client()
        before = client.stats.attempts
        fetches = [fetch_dividends(client, start, end)]
        for i in range(0, len(pending), TICKERS_PER_QUERY):
            chunk = pending[i : i + TICKERS_PER_QUERY]
            fetches.append(fetch_dividends(client, start_date, end, tickers=chunk))
        # The recent window and a symbol's history overlap: keep one row per key.
        frame = pl.concat([f.frame for f in fetches]).unique(
            ["symbol", "ex_dividend_date", "dividend_id"], keep="first", maintain_order=True
        )
        rejected = [reason for f in fetches for reason in f.rejected]
        with database.connect() as conn:
            counts = upsert_dividends(conn, frame)
            record_dividend_history(conn, pending, start_date)
        requests = client.stats.attempts - before
        pages = sum(f.pages for f in fetches)
        context.log.info(
            f"stock_dividends {start}..{end} (whole market) and {len(pending)} histories since "
            f"{start_date}: {frame.height} dividends in {pages} pages, {counts.new} new"
        )
        yield checks.records_result("dividend", frame.height, rejected)
        yield dg.MaterializeResult(
            metadata={
                "window": f"{start}..{end}",
                "histories_loaded": len(pending),
                "pages": pages,
                "requests": requests,
                "records": frame.height,
                "records_left_out": len(rejected),
                "new": counts.new,
            }
        )

    @dg.asset(
        group_name=GROUP,
        kinds={"polygon", "postgres"},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetKey("stock_daily_candles"), stock_splits],
        check_specs=checks.ADJUSTMENT_SPECS,
    )
    def stock_split_adjustments(
        context: dg.AssetExecutionContext, polygon: PolygonResource, database: PostgresDatabase
    ):
        """Keeps `marketdata.stock_daily_candles` split-adjusted as of the latest known split.

        After the run's candles and splits are stored, every active tracked stock whose stored bars
        predate a split they do not reflect gets that span re-fetched (one range request per such
        symbol) and replaced in one transaction, so its whole history equals the vendor's adjusted
        bars now. A rerun finds nothing stale and makes no request. Its `split_vs_move` check looks
        for split-like steps without a split event in the run's window.
        """
        window = context.partition_time_window
        start, end = window.start.date(), window.end.date() - dt.timedelta(days=1)
        report = bring_history_current(polygon, database, log=context.log)
        yield checks.history_result(report.failed, len(report.repaired))
        with database.connect() as conn:
            tracked, _invalid = active_symbols(conn, AssetClass.STOCK)
        yield checks.split_vs_move_result(database, [s.symbol for s in tracked], start, end)
        yield dg.MaterializeResult(
            metadata={
                **report.as_metadata(),
                # Dagster copies this onto every partition of a single-run range: keep it short.
                "repaired": ", ".join(
                    f"{symbol} {detail['window']}"
                    for symbol, detail in sorted(report.repaired.items())[:20]
                ),
                "window": f"{start}..{end}",
            }
        )

    return (stock_splits, stock_dividends, stock_split_adjustments)
