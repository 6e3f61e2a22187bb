"""The event refreshes behind `stock_splits` and `stock_dividends`: their run config, what
each read and stored, and the once-a-day rule (`lib/corporate_action_plan.py`) applied to them.
"""
# No `from __future__ import annotations`: Dagster reads the config classes' real annotations.

import datetime as dt
from dataclasses import dataclass, field

import dagster as dg
import polars as pl
import psycopg
from pydantic import Field

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
from marketdata_pipeline.lib.postgres.reference_refresh import record_refresh, refresh_lock
from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols
from marketdata_pipeline.lib.settings import parse_date
from marketdata_pipeline.lib.symbols import AssetClass


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
class Refresh:
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


def refresh_splits(
    config: EventWindowConfig,
    polygon: PolygonResource,
    database: PostgresDatabase,
    start_date: dt.date,
) -> Refresh:
    """Read the whole market's splits since `start_date` when today's read is due, and
    upsert them with the read's record, in one transaction."""
    start, end = event_window(config, start_date)
    today = reference_day()
    with refresh_lock(database.resolved_url(), SPLITS):
        with database.connect() as conn:
            read = market_read(conn, SPLITS, start, end, today=today, force=config.force)
        refresh = Refresh(read, pl.DataFrame())
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


def refresh_dividends(
    config: EventWindowConfig,
    polygon: PolygonResource,
    database: PostgresDatabase,
    start_date: dt.date,
) -> Refresh:
    """Read the whole market's recent dividends when today's read is due, plus the history
    since `start_date` of tracked stocks that have none, and upsert them in one transaction."""
    today = reference_day()
    start, end = event_window(config, today - dt.timedelta(days=config.lookback_days))
    with refresh_lock(database.resolved_url(), DIVIDENDS):
        with database.connect() as conn:
            tracked, _invalid = active_symbols(conn, AssetClass.STOCK)
            pending = symbols_without_dividend_history(
                conn, [s.symbol for s in tracked], start_date
            )
            read = market_read(conn, DIVIDENDS, start, end, today=today, force=config.force)
        refresh = Refresh(read, pl.DataFrame(schema=DIVIDEND_SCHEMA), histories=pending)
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
