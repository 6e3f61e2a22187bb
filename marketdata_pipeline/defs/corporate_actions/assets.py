"""The corporate-action assets: split and dividend events, and split-adjusted history kept true.

`stock_splits` and `stock_dividends` are not partitioned: they are event tables keyed by event
date, refreshed by one whole-market query over a window (a few pages), so a partition per day
would show thousands of partitions for what is one cheap request. Each store reads that window
at most once a (New York) day, whatever the number of runs (`lib/corporate_action_plan.py`):
a later run that day materialises them without a request. `stock_split_adjustments` is
partitioned like the candles and depends on `stock_daily_candles` and `stock_splits`, so any run
that fetches candles and learns of a split (the revision schedule, `marketdata backfill`, the
symbol sensor's history runs) repairs the older history in the same run.
"""
# No `from __future__ import annotations`: Dagster reads the real annotation objects.

import datetime as dt
from dataclasses import dataclass, field

import dagster as dg
import polars as pl
import psycopg
from pydantic import Field

from marketdata_pipeline.defs.corporate_actions import checks
from marketdata_pipeline.defs.corporate_actions.history import bring_history_current
from marketdata_pipeline.lib.candles.corporate_actions import DIVIDEND_SCHEMA
from marketdata_pipeline.lib.corporate_action_plan import (
    DEFAULT_DIVIDEND_LOOKBACK_DAYS,
    DIVIDENDS,
    MARKET,
    SPLITS,
    MarketRead,
    history_queries,
    market_read,
    reference_day,
)
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.polygon.corporate_actions import fetch_dividends, fetch_splits
from marketdata_pipeline.lib.polygon.planner import DEFAULT_CHUNK_ROWS
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.corporate_actions import (
    UpsertCounts,
    record_dividend_history,
    symbols_without_dividend_history,
    upsert_dividends,
    upsert_splits,
)
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.postgres.reference_refresh import record_refresh, refresh_lock
from marketdata_pipeline.lib.postgres.returns import TABLE as RETURNS_TABLE
from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols
from marketdata_pipeline.lib.settings import parse_date
from marketdata_pipeline.lib.symbols import AssetClass

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
    force: bool = Field(
        default=False,
        description="Read the whole market's window even if today's read already covered it "
        "(by default each store reads it at most once a day).",
    )


class SplitAdjustmentConfig(dg.Config):
    """Run configuration of `stock_split_adjustments` (optional)."""

    rows_per_chunk: int = Field(
        default=DEFAULT_CHUNK_ROWS,
        ge=1,
        description="Stored bars its checks read at a time (memory bound): the symbols are "
        "read in batches whose bars in the window fit this.",
    )


def event_window(config: EventWindowConfig, default_start: dt.date) -> tuple[dt.date, dt.date]:
    """The inclusive event-date window of a refresh, validated."""
    try:
        start = parse_date(config.start, "start") if config.start else default_start
        end = parse_date(config.end, "end") if config.end else reference_day()
    except InputError as exc:
        raise dg.Failure(f"run config: {exc}") from None
    if end < start:
        raise dg.Failure(f"run config: end {end} is before start {start}")
    return start, end


def _record_read(
    conn: psycopg.Connection, read: MarketRead, today: dt.date, requests: int, records: int
) -> None:
    """Record a whole-market read that reached today (a past window does not make today's
    read unnecessary). Two reads of one day both reach today, so together they cover the
    dates from the earlier start on."""
    if read.end < today:
        return
    start = read.start
    if read.last is not None and read.last.refreshed_on == today:
        start = min(start, read.last.covers_from)
    record_refresh(
        conn,
        read.kind,
        MARKET,
        refreshed_on=today,
        covers=(start, read.end),
        requests=requests,
        records=records,
    )


@dataclass
class _Refresh:
    """What one event refresh read and stored."""

    read: MarketRead
    frame: pl.DataFrame
    pages: int = 0
    requests: int = 0
    rejected: list[str] = field(default_factory=list)
    counts: UpsertCounts | None = None
    histories: list[str] = field(default_factory=list)

    def metadata(self) -> dict:
        """The refresh's Dagster metadata (`requests`: what it sent; the CLI sums them)."""
        counts = self.counts
        return {
            "window": f"{self.read.start}..{self.read.end}",
            "market_read": self.read.due,
            "market_read_reason": self.read.reason(),
            "pages": self.pages,
            "requests": self.requests,
            "records": self.frame.height,
            "records_left_out": len(self.rejected),
            "new": counts.new if counts else 0,
        }


#: The assets a run that fetches stock candles includes to keep history true (and, after them,
#: the stored returns of what changed).
CORPORATE_ACTION_NAMES = ("stock_splits", "stock_dividends", "stock_split_adjustments")
STOCK_COMPANION_KEYS = tuple(dg.AssetKey(name) for name in (*CORPORATE_ACTION_NAMES, RETURNS_TABLE))


def build_corporate_action_assets(
    partitions: dg.PartitionsDefinition, start_date: dt.date
) -> tuple[dg.AssetsDefinition, ...]:
    """`stock_splits`, `stock_dividends` (events since `start_date`, the first partition) and
    `stock_split_adjustments` (on the candles' `partitions`)."""

    def refresh_splits(
        config: EventWindowConfig, polygon: PolygonResource, database: PostgresDatabase
    ) -> _Refresh:
        start, end = event_window(config, start_date)
        today = reference_day()
        with refresh_lock(database.resolved_url(), SPLITS):
            with database.connect() as conn:
                read = market_read(conn, SPLITS, start, end, today=today, force=config.force)
            refresh = _Refresh(read, pl.DataFrame())
            if not read.due:
                return refresh
            client = polygon.get_client()
            before = client.stats.attempts
            fetch = fetch_splits(client, start, end)
            refresh.requests = client.stats.attempts - before
            refresh.frame = fetch.frame
            refresh.pages = fetch.pages
            refresh.rejected = fetch.rejected
            with database.connect() as conn, conn.transaction():
                refresh.counts = upsert_splits(conn, fetch.frame)
                _record_read(conn, read, today, refresh.requests, fetch.frame.height)
        return refresh

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

        One query by execution date over MARKETDATA_START_DATE..today (a page or two: the whole
        market splits a few hundred times a year), so a split the vendor adds or corrects anywhere
        in the stored history is learned. Read at most once a day per store
        (`marketdata.reference_refresh`): a later run that day sends nothing. Splits are upserted,
        keyed (symbol, execution_date); a new one, or a changed ratio, gets a fresh `learned_at`,
        which marks older stored bars of that symbol stale until `stock_split_adjustments`
        re-fetches them.
        """
        refresh = refresh_splits(config, polygon, database)
        read, counts = refresh.read, refresh.counts
        if counts is None:  # today's read is on record
            context.log.info(f"stock_splits {read.start}..{read.end}: {read.reason()}, no request")
            yield checks.records_not_read_result("split", read.reason())
            yield dg.MaterializeResult(metadata=refresh.metadata())
            return
        learned = [f"{symbol} {day}" for symbol, day in counts.learned]
        context.log.info(
            f"stock_splits {read.start}..{read.end}: {refresh.frame.height} splits in "
            f"{refresh.pages} pages, {counts.new} new, {counts.changed} with a changed ratio"
        )
        yield checks.records_result("split", refresh.frame.height, refresh.rejected)
        yield dg.MaterializeResult(
            metadata={
                **refresh.metadata(),
                "ratio_changed": counts.changed,
                "learned": dg.MetadataValue.json(learned[:50]),
            }
        )

    def refresh_dividends(
        config: EventWindowConfig, polygon: PolygonResource, database: PostgresDatabase
    ) -> _Refresh:
        today = reference_day()
        start, end = event_window(config, today - dt.timedelta(days=config.lookback_days))
        with refresh_lock(database.resolved_url(), DIVIDENDS):
            with database.connect() as conn:
                tracked, _invalid = active_symbols(conn, AssetClass.STOCK)
                pending = symbols_without_dividend_history(
                    conn, [s.symbol for s in tracked], start_date
                )
                read = market_read(conn, DIVIDENDS, start, end, today=today, force=config.force)
            refresh = _Refresh(read, pl.DataFrame(schema=DIVIDEND_SCHEMA), histories=pending)
            if not read.due and not pending:
                return refresh
            client = polygon.get_client()
            before = client.stats.attempts
            fetches = [fetch_dividends(client, start, end)] if read.due else []
            market_requests = client.stats.attempts - before
            for chunk in history_queries(pending):
                fetches.append(fetch_dividends(client, start_date, end, tickers=chunk))
            refresh.requests = client.stats.attempts - before
            # The recent window and a symbol's history overlap: keep one row per key.
            refresh.frame = pl.concat([f.frame for f in fetches]).unique(
                ["symbol", "ex_dividend_date", "dividend_id"], keep="first", maintain_order=True
            )
            refresh.rejected = [reason for f in fetches for reason in f.rejected]
            refresh.pages = sum(f.pages for f in fetches)
            with database.connect() as conn, conn.transaction():
                refresh.counts = upsert_dividends(conn, refresh.frame)
                record_dividend_history(conn, pending, start_date)
                if read.due:
                    _record_read(conn, read, today, market_requests, fetches[0].frame.height)
        return refresh

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

        Amounts are per share as paid (never split-adjusted). Once a day per store
        (`marketdata.reference_refresh`) it re-reads the ex-dates of the last `lookback_days`
        for the whole market (a page or two; the market pays tens of thousands of dividends a
        year, so re-reading all history daily would cost dozens of pages). Active tracked stocks
        whose history is not loaded yet (new ones, or all of them on the first run) get their
        dividends since MARKETDATA_START_DATE in one query per 100 tickers, on any run. Feeds
        the total return of `marketdata.stock_daily_returns`.
        """
        refresh = refresh_dividends(config, polygon, database)
        read, pending = refresh.read, refresh.histories
        if refresh.counts is None:
            context.log.info(
                f"stock_dividends {read.start}..{read.end}: {read.reason()}, and every tracked "
                "history is loaded: no request"
            )
            yield checks.records_not_read_result("dividend", read.reason())
        else:
            context.log.info(
                f"stock_dividends {read.start}..{read.end} (whole market: {read.reason()}) and "
                f"{len(pending)} histories since {start_date}: {refresh.frame.height} dividends "
                f"in {refresh.pages} pages, {refresh.counts.new} new"
            )
            yield checks.records_result("dividend", refresh.frame.height, refresh.rejected)
        yield dg.MaterializeResult(
            metadata={**refresh.metadata(), "histories_loaded": len(pending)}
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
        context: dg.AssetExecutionContext,
        config: SplitAdjustmentConfig,
        polygon: PolygonResource,
        database: PostgresDatabase,
        # The repaired spans are written by the candle IO manager, like every candle slice.
        candle_io_manager: dg.ResourceParam[PostgresCandleIOManager],
    ):
        """Keeps `marketdata.stock_daily_candles` split-adjusted as of the latest known split.

        After the run's candles and splits are stored, every active tracked stock whose stored bars
        predate a split they do not reflect gets that span re-fetched (one range request per such
        symbol) and replaced in one transaction by the candle IO manager, so its whole history
        equals the vendor's adjusted bars now. A rerun finds nothing stale and makes no request.
        Its `split_vs_move` check looks for split-like steps without a split event in the run's
        window, reading the stored bars a batch of symbols at a time (`rows_per_chunk`), so
        memory follows the batch, not the window.
        """
        window = context.partition_time_window
        start, end = window.start.date(), window.end.date() - dt.timedelta(days=1)
        report = bring_history_current(polygon, database, candle_io_manager, log=context.log)
        yield checks.history_result(report.failed, len(report.repaired))
        with database.connect() as conn:
            tracked, _invalid = active_symbols(conn, AssetClass.STOCK)
        yield checks.split_vs_move_result(
            database, [s.symbol for s in tracked], start, end, rows_per_chunk=config.rows_per_chunk
        )
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
