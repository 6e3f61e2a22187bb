"""What a corporate-action refresh reads today, and what that costs.

Splits and dividends are reference data: the whole market's events change a few times a day at
most, so each store reads them at most once a (New York) day, whatever the number of runs:

- splits: every execution date since the first partition, whole market, once a day;
- dividends: the whole market's last `lookback_days` of ex-dates, once a day, plus the history
  of each tracked stock not loaded yet (a newly tracked one), whenever there is one.

`marketdata.reference_refresh` remembers the day's reads. The assets decide with `market_read`
(and `symbols_without_dividend_history`); the dry run counts with `corporate_action_plan`, so
the estimate and the run follow one rule.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import psycopg

from marketdata_pipeline.lib.polygon.corporate_actions import PAGE_LIMIT
from marketdata_pipeline.lib.postgres.corporate_actions import symbols_without_dividend_history
from marketdata_pipeline.lib.postgres.reference_refresh import RefreshRecord, last_refresh

NEW_YORK = ZoneInfo("America/New_York")
SPLITS = "splits"
DIVIDENDS = "dividends"
#: The scope of a whole-market read.
MARKET = "market"
#: Dividends of the whole market re-read on each daily refresh: ex-dates this many days back
#: (the vendor adds and corrects records after the fact).
DEFAULT_DIVIDEND_LOOKBACK_DAYS = 45
#: Tickers per dividend-history query (`ticker.any_of`), keeping the URL short.
TICKERS_PER_QUERY = 100

# The stored events of each kind, to guess how many pages a whole-market read takes.
_EVENT_COUNT_SQL = {
    SPLITS: "SELECT count(*) FROM marketdata.stock_splits WHERE execution_date BETWEEN %s AND %s",
    DIVIDENDS: "SELECT count(*) FROM marketdata.stock_dividends"
    " WHERE ex_dividend_date BETWEEN %s AND %s",
}


def reference_day() -> dt.date:
    """Today in New York: events are dated there, and a split executing today is in force."""
    return dt.datetime.now(NEW_YORK).date()


@dataclass(frozen=True)
class MarketRead:
    """A whole-market read of one kind over the event dates `start`..`end`, and whether today
    still needs it (`due`); `last` is the read on record."""

    kind: str
    start: dt.date
    end: dt.date
    due: bool
    last: RefreshRecord | None
    today: dt.date
    forced: bool = False

    def reason(self) -> str:
        """Why the read is or is not due, for logs and the dry run."""
        last = self.last
        if last is None:
            return "never read"
        if not self.due:
            return f"read today at {last.refreshed_at.astimezone(NEW_YORK):%H:%M %Z}"
        if self.forced:
            return "read again on request (force)"
        if last.refreshed_on >= self.today:
            return f"today's read covered only {last.covers_from}..{last.covers_to}"
        return f"last read {last.refreshed_on}"


def market_read(
    conn: psycopg.Connection,
    kind: str,
    start: dt.date,
    end: dt.date,
    *,
    today: dt.date,
    force: bool = False,
) -> MarketRead:
    """The whole-market read of `kind` over `start`..`end`: due unless a read on record from
    `today` already covers those dates (or `force`)."""
    last = last_refresh(conn, kind, MARKET)
    due = force or last is None or not last.covers(today, start, end)
    return MarketRead(kind, start, end, due, last, today, forced=force)


def history_queries(symbols: Sequence[str]) -> list[list[str]]:
    """The dividend-history queries for `symbols`: one per `TICKERS_PER_QUERY` tickers."""
    return [
        list(symbols[i : i + TICKERS_PER_QUERY]) for i in range(0, len(symbols), TICKERS_PER_QUERY)
    ]


@dataclass(frozen=True)
class CorporateActionPlan:
    """What the corporate-action assets of a stock run will read today."""

    splits: MarketRead
    dividends: MarketRead
    dividend_histories: tuple[str, ...]
    # Pages a due whole-market read is expected to take, from the events already stored.
    expected_pages: dict[str, int]

    def requests(self) -> dict[str, int]:
        """Requests by kind: a due read's expected pages, a page per history query."""
        return {
            SPLITS: self.expected_pages[SPLITS] if self.splits.due else 0,
            DIVIDENDS: (self.expected_pages[DIVIDENDS] if self.dividends.due else 0)
            + len(history_queries(self.dividend_histories)),
        }

    def describe(self) -> str:
        """One line: the reference requests by kind, and why each is (not) due. E.g.
        "reference data: 3 requests (splits 1: whole market since 2024-01-01, never read;
        dividends 2: whole market's last 45 days, never read, and 1 tracked stock's history)"."""
        requests = self.requests()
        days = (self.dividends.end - self.dividends.start).days
        histories = len(self.dividend_histories)
        if histories == 0:
            history = "every tracked stock's history loaded"
        elif histories == 1:
            history = "1 tracked stock's history"
        else:
            history = f"{histories:,} tracked stocks' histories"
        return (
            f"reference data: {sum(requests.values()):,} requests ("
            f"splits {requests[SPLITS]:,}: whole market since {self.splits.start}, "
            f"{self.splits.reason()}; "
            f"dividends {requests[DIVIDENDS]:,}: whole market's last {days} days, "
            f"{self.dividends.reason()}, and {history})"
        )


def _expected_pages(conn: psycopg.Connection, read: MarketRead) -> int:
    (stored,) = conn.execute(_EVENT_COUNT_SQL[read.kind], (read.start, read.end)).fetchone()
    return max(1, math.ceil(stored / PAGE_LIMIT))


def corporate_action_plan(
    conn: psycopg.Connection,
    tracked: Sequence[str],
    *,
    start_date: dt.date,
    today: dt.date | None = None,
    lookback_days: int = DEFAULT_DIVIDEND_LOOKBACK_DAYS,
) -> CorporateActionPlan:
    """What a stock run's default corporate-action refresh reads today, for the `tracked`
    stocks (the splits since `start_date`, the first partition); sends nothing."""
    today = today or reference_day()
    splits = market_read(conn, SPLITS, start_date, today, today=today)
    dividends = market_read(
        conn, DIVIDENDS, today - dt.timedelta(days=lookback_days), today, today=today
    )
    return CorporateActionPlan(
        splits=splits,
        dividends=dividends,
        dividend_histories=tuple(symbols_without_dividend_history(conn, tracked, start_date)),
        expected_pages={read.kind: _expected_pages(conn, read) for read in (splits, dividends)},
    )
